//! Tests of flag sets: the worked examples of feature-flags.md §4.4, both input forms giving
//! identical answers, refusals of non-flag data, and hostile rules inside documents.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on bad fixtures"
)]

use sha2::{Digest, Sha256};

use super::*;

const ION: &str = "application/ion; type=AWS.AppConfig.FeatureFlags";

/// The multi-variant document of feature-flags.md §1, with a comment and split long strings.
const UI_REFRESH_ION: &str = r#"
'basic_flag'::'''{"enabled": true, "color": "orange"}'''
// variants are tried in order
'ui_refresh'::[
  [ (ends_with $email "qa-testers.mycompany.com"),
    '''{"_variant":"QA","enabled":true,"dark_mode_support":true}''' ],
  [ (exists key::"opted_in_to_beta"),
    '''{"_variant":"Beta Testers",''' /* joined */ '''"enabled":true,"dark_mode_support":true}''' ],
  [ (split pct::10 by::$email),
    '''{"_variant":"Sample Population",'''
    '''"enabled":true,"dark_mode_support":false}''' ],
  '''{"_variant":"Default Variant","enabled":false}'''
]
"#;

/// The same flags as deployment-time JSON with `_variants` under `values`.
const UI_REFRESH_JSON: &str = r#"{
  "version": "1",
  "flags": {"basic_flag": {"name": "basic"}, "ui_refresh": {"name": "ui"}},
  "values": {
    "basic_flag": {"enabled": true, "color": "orange"},
    "ui_refresh": {"_variants": [
      {"name": "QA", "enabled": true, "rule": "(ends_with $email \"qa-testers.mycompany.com\")",
       "attributeValues": {"dark_mode_support": true}},
      {"name": "Beta Testers", "enabled": true, "rule": "(exists key::\"opted_in_to_beta\")",
       "attributeValues": {"dark_mode_support": true}},
      {"name": "Sample Population", "enabled": true, "rule": "(split pct::10 by::$email)",
       "attributeValues": {"dark_mode_support": false}},
      {"name": "Default Variant", "enabled": false}
    ]}
  }
}"#;

const TIERED_RELEASE_ION: &str = r#"
'tiered_release'::[
  [ (or (and (eq $group "Tier1") (split by::$userId pct::1 seed::"2025.01.01"))
        (and (eq $group "Tier2") (split by::$userId pct::7 seed::"2025.01.01"))),
    '''{"_variant":"ShowFeature","enabled":true}''' ],
  '''{"_variant":"HideFeature","enabled":false}'''
]"#;

const COLORWAY_ION: &str = r#"
'colorway'::[
  [ (contains $userId "beta") '''{"_variant":"BetaTesters","enabled":true}''' ]
  [ (split by::$userId pct::10) '''{"_variant":"SplitRollOut","enabled":true}''' ]
  '''{"_variant":"Default","enabled":false}'''
]"#;

fn context(pairs: &[(&str, &str)]) -> Context {
    pairs.iter().copied().collect()
}

fn flag_set(body: &str, content_type: &str) -> FlagSet {
    FlagSet::parse(body.as_bytes(), content_type).unwrap_or_else(|e| panic!("{e}"))
}

fn answer(flags: &FlagSet, key: &str, pairs: &[(&str, &str)]) -> String {
    String::from_utf8(flags.evaluate(&[key], &context(pairs)).unwrap()).unwrap()
}

fn variant_of(flags: &FlagSet, key: &str, pairs: &[(&str, &str)]) -> String {
    let answer: Json = serde_json::from_str(&answer(flags, key, pairs)).unwrap();
    answer["_variant"].as_str().unwrap_or("").to_string()
}

fn not_a_flag_set_reason(body: &str, content_type: &str) -> String {
    match FlagSet::parse(body.as_bytes(), content_type) {
        Err(FlagError::NotAFlagSet { reason }) => reason,
        other => panic!("{body:?} gave {other:?}"),
    }
}

#[test]
fn ui_refresh_worked_examples_pick_the_documented_variants() {
    let flags = flag_set(UI_REFRESH_ION, ION);
    assert!(flags.has_variants());
    assert_eq!(flags.warnings(), &[] as &[String]);
    assert_eq!(
        answer(&flags, "ui_refresh", &[]),
        r#"{"_variant":"Default Variant","enabled":false}"#
    );
    assert_eq!(
        answer(
            &flags,
            "ui_refresh",
            &[("email", "jane@qa-testers.mycompany.com")]
        ),
        r#"{"_variant":"QA","enabled":true,"dark_mode_support":true}"#
    );
    let beta = [("email", "jane@example.org"), ("opted_in_to_beta", "false")];
    assert_eq!(variant_of(&flags, "ui_refresh", &beta), "Beta Testers");

    let mut hasher = Sha256::new();
    hasher.update(b"ui_refresh\x1fjane@example.org");
    let digest = hasher.finalize();
    let bucket = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10_000;
    let expected = if bucket < 1_000 {
        "Sample Population"
    } else {
        "Default Variant"
    };
    assert_eq!(
        variant_of(&flags, "ui_refresh", &[("email", "jane@example.org")]),
        expected
    );
}

#[test]
fn whole_profile_answers_evaluate_every_flag_in_key_order() {
    let flags = flag_set(UI_REFRESH_ION, ION);
    let body = flags.evaluate_all(&context(&[("email", "a@qa-testers.mycompany.com")]));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        concat!(
            r#"{"basic_flag":{"enabled":true,"color":"orange"},"#,
            r#""ui_refresh":{"_variant":"QA","enabled":true,"dark_mode_support":true}}"#
        )
    );
    assert!(!flags.is_served_unchanged());
}

#[test]
fn tiered_release_shows_to_about_7_percent_of_tier2_and_includes_all_of_tier1() {
    let flags = flag_set(TIERED_RELEASE_ION, ION);
    assert_eq!(
        variant_of(
            &flags,
            "tiered_release",
            &[("group", "Tier3"), ("userId", "u1")]
        ),
        "HideFeature"
    );
    let mut tier2 = 0;
    let mut tier1 = 0;
    for i in 0..10_000 {
        let user = format!("user-{i}");
        let shows = |group| {
            variant_of(
                &flags,
                "tiered_release",
                &[("group", group), ("userId", &user)],
            ) == "ShowFeature"
        };
        let at_tier1 = shows("Tier1");
        let at_tier2 = shows("Tier2");
        assert!(
            !at_tier1 || at_tier2,
            "{user} shows at Tier1 but not at Tier2"
        );
        tier1 += usize::from(at_tier1);
        tier2 += usize::from(at_tier2);
    }
    assert!(
        (650..=750).contains(&tier2),
        "Tier2 showed to {tier2} of 10,000"
    );
    assert!(
        (50..=150).contains(&tier1),
        "Tier1 showed to {tier1} of 10,000"
    );
}

#[test]
fn colorway_puts_beta_ids_first_and_splits_about_10_percent_of_the_rest() {
    let flags = flag_set(COLORWAY_ION, ION);
    assert_eq!(
        variant_of(&flags, "colorway", &[("userId", "beta-42")]),
        "BetaTesters"
    );
    let rolled_out = (0..10_000)
        .filter(|i| {
            variant_of(&flags, "colorway", &[("userId", &format!("user-{i}"))]) == "SplitRollOut"
        })
        .count();
    assert!(
        (900..=1_100).contains(&rolled_out),
        "SplitRollOut got {rolled_out} of 10,000"
    );
}

#[test]
fn ion_and_deployment_time_json_give_identical_answers() {
    let ion = flag_set(UI_REFRESH_ION, ION);
    let json = flag_set(UI_REFRESH_JSON, "application/json");
    let mut contexts = vec![
        Context::new(),
        context(&[("email", "jane@qa-testers.mycompany.com")]),
        context(&[("email", "jane@example.org"), ("opted_in_to_beta", "false")]),
    ];
    contexts.extend((0..500).map(|i| context(&[("email", &format!("person{i}@example.org"))])));
    for ctx in &contexts {
        assert_eq!(ion.evaluate_all(ctx), json.evaluate_all(ctx), "{ctx:?}");
        let keys = ["ui_refresh", "basic_flag"];
        assert_eq!(
            ion.evaluate(&keys, ctx).unwrap(),
            json.evaluate(&keys, ctx).unwrap()
        );
    }
    assert_eq!(json.warnings().len(), 1, "{:?}", json.warnings());
    assert!(json.warnings()[0].contains("deployment-time document"));
}

#[test]
fn basic_json_flags_answer_one_or_several_keys_and_name_unknown_ones() {
    let body = r#"{"a": {"enabled": true, "limit": 5, "tags": ["x"]}, "b": {"enabled": false}}"#;
    let flags = flag_set(body, "application/json");
    assert!(!flags.has_variants());
    assert!(flags.is_served_unchanged());
    assert_eq!(flags.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        answer(&flags, "a", &[]),
        r#"{"enabled":true,"limit":5,"tags":["x"]}"#
    );
    let both = flags.evaluate(&["b", "a", "b"], &Context::new()).unwrap();
    assert_eq!(
        String::from_utf8(both).unwrap(),
        r#"{"b":{"enabled":false},"a":{"enabled":true,"limit":5,"tags":["x"]}}"#
    );
    let none: [&str; 0] = [];
    assert_eq!(
        flags.evaluate(&none, &Context::new()).unwrap(),
        flags.evaluate_all(&Context::new())
    );
    assert_eq!(
        flags.evaluate(&["a", "nope"], &Context::new()),
        Err(FlagError::UnknownFlag("nope".to_string()))
    );
    assert_eq!(
        FlagError::UnknownFlag("nope".to_string()).to_string(),
        "flag \"nope\" does not exist in this configuration"
    );
    assert!(flag_set("{}", "application/json").keys().next().is_none());
}

#[test]
fn data_that_is_not_a_flag_set_is_refused_with_the_reason() {
    let cases = [
        ("[1, 2]", "application/json", "not a JSON object"),
        ("db: {host: x}", "application/x-yaml", "not JSON"),
        (
            r#"{"db": {"host": "x"}}"#,
            "application/json",
            "neither \"enabled\"",
        ),
        (
            r#"{"a": 1}"#,
            "application/json",
            "value of \"a\" is not an object",
        ),
        (
            r#"{"a": {"_variants": {}}}"#,
            "application/json",
            "not a list",
        ),
        (
            r#"{"a": {"_variants": [{"enabled": true}]}}"#,
            "application/json",
            "no \"name\"",
        ),
        (
            r#"{"a": {"_variants": [{"name": "v", "rule": 5}]}}"#,
            "application/json",
            "\"rule\"",
        ),
        (
            "'a'::[ (eq $x 1) ",
            ION,
            "Ion text is not valid (line 1, column 18",
        ),
        (
            "\"no annotation\"",
            ION,
            "line 1 is not annotated with one flag name",
        ),
        ("'a'::'''not json'''", ION, "flag \"a\" holds invalid JSON"),
        ("'a'::'''[1]'''", ION, "JSON that is not an object"),
        ("'a'::42", ION, "neither a JSON string nor a list"),
        ("'a'::[\n [ (eq $x 1) ]\n]", ION, "variant on line 2"),
    ];
    for (body, content_type, expected) in cases {
        let reason = not_a_flag_set_reason(body, content_type);
        assert!(reason.contains(expected), "{body:?}: {reason}");
    }
    let invalid_utf8 = FlagSet::parse(b"'a'::'''\xff'''", ION).unwrap_err();
    assert!(
        invalid_utf8.to_string().contains("not UTF-8 (at byte 8)"),
        "{invalid_utf8}"
    );
}

#[test]
fn a_bad_rule_falls_through_to_the_next_variant_with_one_warning() {
    let body = r#"'f'::[
      [ (exist key::"a") '''{"_variant":"Broken","enabled":true}''' ]
      [ (exists key::"a") '''{"_variant":"Good","enabled":true}''' ]
      '''{"_variant":"Default","enabled":false}''' ]"#;
    let flags = flag_set(body, ION);
    assert_eq!(variant_of(&flags, "f", &[("a", "1")]), "Good");
    assert_eq!(flags.warnings().len(), 1);
    assert!(
        flags.warnings()[0].starts_with("flag \"f\" variant \"Broken\": the rule is never true")
    );
}

#[test]
fn hostile_rules_inside_a_document_become_never_true() {
    let deep = format!(
        "{}(exists key::\"a\"){}",
        "(not ".repeat(70),
        ")".repeat(70)
    );
    let huge = format!("(in $a [{}])", "\"x\" ".repeat(10_000));
    let very_deep = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
    for rule in [deep, huge, very_deep] {
        let body = format!(
            "'f'::[ [ {rule} '''{{\"_variant\":\"Hit\"}}''' ] '''{{\"_variant\":\"Default\"}}''' ]"
        );
        let flags = flag_set(&body, ION);
        assert_eq!(variant_of(&flags, "f", &[("a", "x")]), "Default");
        assert_eq!(flags.warnings().len(), 1, "{:?}", flags.warnings());
    }
}

#[test]
fn variant_flags_without_a_default_answer_disabled_and_warn() {
    let body = r#"{"f": {"_variants": [
        {"name": "Only", "enabled": true, "rule": "(exists key::\"a\")"}]}}"#;
    let flags = flag_set(body, "application/json");
    assert_eq!(
        answer(&flags, "f", &[("a", "1")]),
        r#"{"_variant":"Only","enabled":true}"#
    );
    assert_eq!(answer(&flags, "f", &[]), r#"{"enabled":false}"#);
    assert!(
        flags.warnings()[0].contains("has no default variant"),
        "{:?}",
        flags.warnings()
    );
}

#[test]
fn media_type_parameters_and_case_do_not_matter() {
    let flags = flag_set(
        COLORWAY_ION,
        "Application/ION ; type=AWS.AppConfig.FeatureFlags",
    );
    assert!(flags.has_variants());
}

#[test]
fn a_repeated_ion_flag_keeps_the_last_definition_and_warns() {
    let flags = flag_set(
        "'a'::'''{\"enabled\":true}''' 'a'::'''{\"enabled\":false}'''",
        ION,
    );
    assert_eq!(answer(&flags, "a", &[]), r#"{"enabled":false}"#);
    assert_eq!(
        flags.warnings(),
        ["flag \"a\" is defined twice; the last one is used"]
    );
}

#[test]
fn flag_sets_can_be_shared_between_worker_threads() {
    fn assert_shareable<T: Send + Sync + 'static>() {}
    assert_shareable::<FlagSet>();
    assert_shareable::<Context>();
}
