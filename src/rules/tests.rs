//! Tests of the rule language: a table per operator, typing, split against the formula of
//! feature-flags.md §4.3, limits, and seeded generated garbage for every parser.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on bad fixtures"
)]

use sha2::{Digest, Sha256};

use super::*;

fn context(pairs: &[(&str, &str)]) -> Context {
    pairs.iter().copied().collect()
}

fn compiled(text: &str) -> Rule {
    let rule = Rule::parse(text, "flag_key");
    assert_eq!(rule.error(), None, "{text}");
    rule
}

fn error_of(text: &str) -> RuleError {
    let rule = Rule::parse(text, "flag_key");
    let error = rule
        .error()
        .cloned()
        .unwrap_or_else(|| panic!("{text:?} compiled"));
    assert!(
        !rule.evaluate(&Context::new()),
        "a broken rule must never be true"
    );
    error
}

/// A rule, its context pairs and the expected result.
type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

/// Runs (rule, context pairs, expected) rows; no pairs means an empty context.
fn check_table(rows: &[Row]) {
    for (text, pairs, expected) in rows {
        let actual = compiled(text).evaluate(&context(pairs));
        assert_eq!(actual, *expected, "{text} with {pairs:?}");
    }
}

/// The bucket of feature-flags.md §4.3, computed here from the formula as written.
fn bucket(seed: &str, value: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update([0x1F]);
    hasher.update(value.as_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10_000
}

#[test]
fn eq_and_ne_type_the_context_value_by_the_literal() {
    check_table(&[
        ("(eq $tier \"gold\")", &[("tier", "gold")], true),
        ("(eq $tier \"gold\")", &[("tier", "Gold")], false),
        ("(eq $tier \"gold\")", &[], false),
        ("(eq $age 30)", &[("age", "30")], true),
        ("(eq $age 30)", &[("age", "30.0")], true),
        ("(eq $age 30)", &[("age", "thirty")], false),
        ("(eq $age 7.5)", &[("age", "7.50")], true),
        ("(eq $beta true)", &[("beta", "true")], true),
        ("(eq $beta true)", &[("beta", "TRUE")], false),
        ("(eq $beta false)", &[("beta", "true")], false),
        (
            "(eq $day 2024-01-01)",
            &[("day", "2024-01-01T00:00:00Z")],
            true,
        ),
        ("(eq $day 2024-01-01)", &[("day", "Monday")], false),
        ("(eq $a $b)", &[("a", "x"), ("b", "x")], true),
        ("(eq $a $b)", &[("a", "x")], false),
        ("(eq $a null)", &[("a", "null")], false),
        ("(ne $tier \"gold\")", &[("tier", "silver")], true),
        ("(ne $tier \"gold\")", &[("tier", "gold")], false),
        ("(ne $tier \"gold\")", &[], false),
        ("(ne $age 30)", &[("age", "thirty")], false),
        ("(ne $beta true)", &[("beta", "false")], true),
        ("(not (ne $tier \"gold\"))", &[], true),
    ]);
}

#[test]
fn ordered_comparisons_cover_numbers_timestamps_and_strings() {
    check_table(&[
        ("(gt $age 65)", &[("age", "70")], true),
        ("(gt $age 65)", &[("age", "65")], false),
        ("(gt $age 65)", &[], false),
        ("(gt $age 65)", &[("age", "old")], false),
        ("(gt $age 65)", &[("age", "inf")], false),
        ("(gte $age 65)", &[("age", "65")], true),
        ("(gte $age 65)", &[("age", "64.5")], false),
        ("(lt $age 18.5)", &[("age", "18")], true),
        ("(lt $age 18.5)", &[("age", "18.5")], false),
        ("(lte $age 18)", &[("age", "18")], true),
        ("(lte $age 18)", &[("age", "1e3")], false),
        ("(gt $since 2024-01T)", &[("since", "2024-02-01")], true),
        (
            "(gt $since 2024-01T)",
            &[("since", "2023-12-31T23:59:59Z")],
            false,
        ),
        ("(gt $since 2024-01T)", &[("since", "soon")], false),
        (
            "(lt $at 2024-06-01T12:00:00+02:00)",
            &[("at", "2024-06-01T09:59:59Z")],
            true,
        ),
        (
            "(lt $at 2024-06-01T12:00:00+02:00)",
            &[("at", "2024-06-01T10:00:00Z")],
            false,
        ),
        ("(lt $name \"m\")", &[("name", "alice")], true),
        ("(lt $name \"m\")", &[("name", "zed")], false),
        ("(gt $beta false)", &[("beta", "true")], false),
        ("(gt 5 $age)", &[("age", "3")], true),
        ("(gt 5 $age)", &[("age", "9")], false),
        ("(lt 1 2)", &[], true),
        ("(gt -2.5e0 -3)", &[], true),
    ]);
}

#[test]
fn text_tests_are_case_sensitive_substring_checks() {
    check_table(&[
        (
            "(begins_with $email \"jane\")",
            &[("email", "jane@example.org")],
            true,
        ),
        (
            "(begins_with $email \"jane\")",
            &[("email", "Jane@example.org")],
            false,
        ),
        ("(begins_with $email \"jane\")", &[], false),
        (
            "(ends_with $email \"@example.org\")",
            &[("email", "bob@example.org")],
            true,
        ),
        (
            "(ends_with $email \"@example.org\")",
            &[("email", "bob@example.com")],
            false,
        ),
        ("(contains $code \"WIN\")", &[("code", "SUMMERWIN24")], true),
        (
            "(contains $code \"WIN\")",
            &[("code", "summerwin24")],
            false,
        ),
        (
            "(contains $code $part)",
            &[("code", "abc"), ("part", "b")],
            true,
        ),
        ("(contains $code $part)", &[("code", "abc")], false),
    ]);
    let error = error_of("(contains $code 5)");
    assert_eq!(
        error.to_string(),
        "contains expects a context reference such as $key or a string, found 5"
    );
}

#[test]
fn in_compares_against_each_list_element_with_optional_commas() {
    check_table(&[
        ("(in $id [\"a\", \"b\"])", &[("id", "b")], true),
        ("(in $id [\"a\" \"b\"])", &[("id", "b")], true),
        ("(in $id [\"a\", \"b\",])", &[("id", "c")], false),
        ("(in $id [\"a\" \"b\"])", &[], false),
        ("(in $n [1 2 3])", &[("n", "2.0")], true),
        ("(in $n [1 2 3])", &[("n", "two")], false),
        ("(in $id [])", &[("id", "a")], false),
    ]);
    assert!(matches!(
        error_of("(in $id \"a\")"),
        RuleError::InvalidOperand { operator: "in", .. }
    ));
}

#[test]
fn matches_finds_the_pattern_anywhere_with_named_arguments_in_any_order() {
    check_table(&[
        (
            "(matches in::$g pattern::\"h.*y\")",
            &[("g", "oh happy day")],
            true,
        ),
        ("(matches in::$g pattern::\"h.*y\")", &[("g", "sad")], false),
        ("(matches in::$g pattern::\"h.*y\")", &[], false),
        (
            "(matches pattern::\"^[0-9]+$\" in::$n)",
            &[("n", "12345")],
            true,
        ),
        (
            "(matches pattern::\"^[0-9]+$\" in::$n)",
            &[("n", "12a45")],
            false,
        ),
        ("(matches $n \"^a\")", &[("n", "abc")], true),
    ]);
    assert!(matches!(
        error_of("(matches in::$g pattern::\"(\")"),
        RuleError::InvalidPattern(_)
    ));
    assert!(matches!(
        error_of("(matches in::$g pattern::$p)"),
        RuleError::InvalidOperand {
            operator: "matches",
            ..
        }
    ));
    let long = format!(
        "(matches in::$g pattern::\"{}\")",
        "a".repeat(MAX_PATTERN_BYTES + 1)
    );
    assert_eq!(
        error_of(&long),
        RuleError::PatternTooLong {
            bytes: MAX_PATTERN_BYTES + 1
        }
    );
}

#[test]
fn exists_checks_presence_only() {
    check_table(&[
        ("(exists key::\"country\")", &[("country", "")], true),
        ("(exists key::\"country\")", &[("country", "false")], true),
        ("(exists key::\"country\")", &[("Country", "DE")], false),
        ("(exists $country)", &[("country", "DE")], true),
        ("(exists $country)", &[], false),
        ("(exists key::country)", &[("country", "DE")], true),
    ]);
}

#[test]
fn and_or_not_nest_and_short_circuit() {
    let rule = "(and (eq $a \"1\") (or (eq $b \"2\") (not (exists key::\"c\"))))";
    check_table(&[
        (rule, &[("a", "1"), ("b", "2"), ("c", "x")], true),
        (rule, &[("a", "1"), ("b", "3")], true),
        (rule, &[("a", "1"), ("b", "3"), ("c", "x")], false),
        (rule, &[("b", "2")], false),
        (
            "(or (eq $a \"1\") (eq $a \"2\") (eq $a \"3\"))",
            &[("a", "3")],
            true,
        ),
        (
            "(and (exists $a) (exists $b) (exists $c))",
            &[("a", ""), ("b", "")],
            false,
        ),
    ]);
}

#[test]
fn split_matches_the_formula_of_section_4_3_at_the_exact_boundary() {
    let id = "user-1234";
    let expected = bucket("s", id);
    let at = |hundredths: u64| {
        let pct = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        compiled(&format!("(split pct::{pct} by::$id seed::\"s\")"))
            .evaluate(&context(&[("id", id)]))
    };
    assert!(!at(expected), "bucket {expected} is not below itself");
    assert!(
        at(expected + 1),
        "bucket {expected} is below {}",
        expected + 1
    );
    assert!(compiled("(split pct::100 by::$id)").evaluate(&context(&[("id", "x")])));
    assert!(!compiled("(split pct::0 by::$id)").evaluate(&context(&[("id", "x")])));
    assert!(!compiled("(split pct::100 by::$id)").evaluate(&Context::new()));
}

#[test]
fn split_decimal_percentages_are_exact_not_floating_point() {
    // 0.07 % is exactly 7 buckets; as a float, 0.07 × 100 is just above 7.
    let ids: Vec<String> = (0..200_000).map(|i| format!("id-{i}")).collect();
    let rule = compiled("(split pct::0.07 by::$id seed::\"s\")");
    for id in &ids {
        let expected = bucket("s", id) < 7;
        assert_eq!(rule.evaluate(&context(&[("id", id)])), expected, "{id}");
    }
    assert!(
        ids.iter().any(|id| bucket("s", id) == 7),
        "the sample reaches bucket 7"
    );
}

#[test]
fn split_arguments_work_in_any_order_and_the_seed_defaults_to_the_flag_key() {
    let orders = [
        "(split pct::30 by::$id seed::\"s\")",
        "(split by::$id seed::\"s\" pct::30)",
        "(split seed::\"s\" pct::30 by::$id)",
        "(split 30 $id seed::\"s\")",
    ];
    let rules: Vec<Rule> = orders.iter().map(|text| compiled(text)).collect();
    let unseeded = Rule::parse("(split pct::30 by::$id)", "s");
    for i in 0..2_000 {
        let ctx = context(&[("id", &format!("u{i}"))]);
        let expected = bucket("s", &format!("u{i}")) < 3000;
        for (rule, text) in rules.iter().zip(orders) {
            assert_eq!(rule.evaluate(&ctx), expected, "{text} u{i}");
        }
        assert_eq!(
            unseeded.evaluate(&ctx),
            expected,
            "seed defaults to the flag key"
        );
    }
}

#[test]
fn split_variants_share_buckets_without_a_seed_and_are_independent_with_seeds() {
    let count = |first: &Rule, second: &Rule| {
        (0..10_000)
            .filter(|i| {
                let ctx = context(&[("id", &format!("user-{i}"))]);
                !first.evaluate(&ctx) && second.evaluate(&ctx)
            })
            .count()
    };
    let a = Rule::parse("(split pct::20 by::$id)", "flag");
    let b_same = Rule::parse("(split pct::20 by::$id)", "flag");
    let b_wider = Rule::parse("(split pct::25 by::$id)", "flag");
    assert_eq!(
        count(&a, &b_same),
        0,
        "A at 20 % then B at 20 % leaves B nothing"
    );
    let wider = count(&a, &b_wider);
    assert!(
        (400..=600).contains(&wider),
        "B at 25 % after A at 20 % got {wider} of 10,000"
    );

    let a_x = Rule::parse("(split pct::20 by::$id seed::\"x\")", "flag");
    let b_y = Rule::parse("(split pct::25 by::$id seed::\"y\")", "flag");
    let independent = count(&a_x, &b_y);
    assert!(
        (1_850..=2_150).contains(&independent),
        "seeded B got {independent} of 10,000"
    );
}

#[test]
fn split_refuses_percentages_outside_0_to_100() {
    for text in [
        "(split pct::100.01 by::$id)",
        "(split pct::-1 by::$id)",
        "(split pct::-0.001 by::$id)",
        "(split pct::1e3 by::$id)",
        "(split pct::nan by::$id)",
        "(split pct::99999999999999999 by::$id)",
        "(split pct::1d40 by::$id)",
    ] {
        assert!(
            matches!(error_of(text), RuleError::PercentOutOfRange(_)),
            "{text}"
        );
    }
    assert!(compiled("(split pct::100.00 by::$id)").evaluate(&context(&[("id", "x")])));
    assert!(compiled("(split pct::1d-50 by::$id seed::\"s\")")
        .error()
        .is_none());
    assert!(matches!(
        error_of("(split pct::\"10\" by::$id)"),
        RuleError::InvalidOperand {
            operator: "split",
            ..
        }
    ));
}

type ErrorCheck = fn(&RuleError) -> bool;

#[test]
fn malformed_rules_compile_to_never_true_with_a_reason() {
    let cases: [(&str, ErrorCheck); 15] = [
        ("", |e| matches!(e, RuleError::Syntax(_))),
        ("(eq $a", |e| matches!(e, RuleError::Syntax(_))),
        ("(eq $a 1) (eq $b 2)", |e| matches!(e, RuleError::Syntax(_))),
        ("eq", |e| matches!(e, RuleError::NotAnExpression { .. })),
        ("x::(eq $a 1)", |e| {
            matches!(e, RuleError::NotAnExpression { .. })
        }),
        ("()", |e| matches!(e, RuleError::EmptyExpression)),
        (
            "(exist key::\"a\")",
            |e| matches!(e, RuleError::UnknownOperator(name) if name == "exist"),
        ),
        ("(eq $a)", |e| {
            matches!(e, RuleError::ArgumentCount { found: 1, .. })
        }),
        ("(and (eq $a 1))", |e| {
            matches!(
                e,
                RuleError::ArgumentCount {
                    operator: "and",
                    ..
                }
            )
        }),
        ("(not (eq $a 1) (eq $a 2))", |e| {
            matches!(e, RuleError::ArgumentCount { .. })
        }),
        ("(eq a::$a 1)", |e| {
            matches!(e, RuleError::NamedArgumentNotAccepted { .. })
        }),
        ("(split pct::1 by::$a pct::2)", |e| {
            matches!(e, RuleError::DuplicateArgument { .. })
        }),
        ("(split pct::1 who::$a)", |e| {
            matches!(e, RuleError::UnknownArgument { .. })
        }),
        ("(split by::$a)", |e| {
            matches!(e, RuleError::MissingArgument { name: "pct", .. })
        }),
        ("(eq $a plain)", |e| {
            matches!(e, RuleError::InvalidOperand { .. })
        }),
    ];
    for (text, is_expected) in cases {
        let error = error_of(text);
        assert!(is_expected(&error), "{text:?} gave {error}");
    }
}

#[test]
fn error_messages_say_what_is_accepted() {
    assert_eq!(
        error_of("(exist key::\"a\")").to_string(),
        "unknown operator \"exist\"; use eq, ne, gt, gte, lt, lte, and, or, not, begins_with, \
         ends_with, contains, in, matches, exists or split"
    );
    assert_eq!(
        error_of("(split pct::1 who::$a)").to_string(),
        "split has no argument \"who\"; it accepts pct::, by:: and seed::"
    );
    assert_eq!(
        error_of("(split pct::150 by::$a)").to_string(),
        "split pct is 150; give a number from 0 to 100, such as 10 or 7.5"
    );
    assert!(error_of("(eq $a \"x)")
        .to_string()
        .starts_with("rule is not valid Ion: line 1, column 8"));
}

fn nested_nots(levels: usize) -> String {
    format!(
        "{}(exists key::\"a\"){}",
        "(not ".repeat(levels - 1),
        ")".repeat(levels - 1)
    )
}

#[test]
fn rules_nest_to_64_levels_and_no_deeper() {
    let at_limit = compiled(&nested_nots(MAX_RULE_DEPTH));
    // 63 nots around exists: odd count, so true when the key is missing.
    assert!(at_limit.evaluate(&Context::new()));
    assert_eq!(
        error_of(&nested_nots(MAX_RULE_DEPTH + 1)),
        RuleError::TooDeep
    );
    assert_eq!(error_of(&nested_nots(2_500)), RuleError::TooDeep);
    assert!(matches!(
        error_of(&nested_nots(10_000)),
        RuleError::TooLong { .. }
    ));
    let list_too_deep = format!("{}(in $a [1]){}", "(not ".repeat(63), ")".repeat(63));
    assert_eq!(error_of(&list_too_deep), RuleError::TooDeep);
}

#[test]
fn rules_longer_than_16_kib_are_refused_before_parsing() {
    let items = "\"abcdefgh\" ".repeat(2_000);
    let text = format!("(in $id [{items}])");
    assert_eq!(error_of(&text), RuleError::TooLong { bytes: text.len() });
    let fits = format!("(in $id [{}])", "\"abcdefgh\" ".repeat(1_000));
    assert!(compiled(&fits).evaluate(&context(&[("id", "abcdefgh")])));
}

#[test]
fn catastrophic_regex_patterns_run_in_linear_time_on_long_input() {
    let rule = compiled("(matches in::$v pattern::\"(a+)+$\")");
    let hostile = format!("{}!", "a".repeat(50_000));
    assert!(!rule.evaluate(&context(&[("v", &hostile)])));
    assert!(rule.evaluate(&context(&[("v", &hostile[..50_000])])));
    let rule = compiled("(matches in::$v pattern::\"^(a|aa)+$\")");
    assert!(!rule.evaluate(&context(&[("v", &hostile)])));
    assert!(matches!(
        error_of("(matches in::$v pattern::\"a{1000}{1000}\")"),
        RuleError::InvalidPattern(_)
    ));
}

mod generated;
