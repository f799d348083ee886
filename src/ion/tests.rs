//! Tests of the Ion reader: every scalar and container form, errors with positions, depth
//! limits and hostile sizes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on bad fixtures"
)]

use super::*;

fn single(text: &str) -> Value {
    parse_single(text, 64)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .value
}

fn error_of(text: &str) -> IonError {
    match parse_single(text, 64) {
        Ok(element) => panic!("{text:?} parsed as {element:?}"),
        Err(error) => error,
    }
}

fn symbol(text: &str) -> Value {
    Value::Symbol(text.to_string())
}

fn string(text: &str) -> Value {
    Value::String(text.to_string())
}

fn items(value: Value) -> Vec<Value> {
    match value {
        Value::List(items) | Value::SExp(items) => items.into_iter().map(|e| e.value).collect(),
        other => panic!("not a container: {other:?}"),
    }
}

fn timestamp(text: &str) -> Timestamp {
    match single(text) {
        Value::Timestamp(t) => t,
        other => panic!("{text:?} is {other:?}"),
    }
}

#[test]
fn scalars_of_every_kind_are_read() {
    let cases = [
        ("null", Value::Null),
        ("null.string", Value::Null),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("42", Value::Int(42)),
        ("-7", Value::Int(-7)),
        ("0", Value::Int(0)),
        ("1_000", Value::Int(1000)),
        ("0x1F", Value::Int(31)),
        ("-0b101", Value::Int(-5)),
        (
            "7.5",
            Value::Decimal(Decimal {
                coefficient: 75,
                exponent: -1,
            }),
        ),
        (
            "75d-1",
            Value::Decimal(Decimal {
                coefficient: 75,
                exponent: -1,
            }),
        ),
        (
            "1.",
            Value::Decimal(Decimal {
                coefficient: 1,
                exponent: 0,
            }),
        ),
        (
            "-0.25",
            Value::Decimal(Decimal {
                coefficient: -25,
                exponent: -2,
            }),
        ),
        ("2.5e1", Value::Float(25.0)),
        ("-1e-2", Value::Float(-0.01)),
        ("+inf", Value::Float(f64::INFINITY)),
        ("-inf", Value::Float(f64::NEG_INFINITY)),
        ("\"a\\\"b\\n\\u00e9\\x41\"", string("a\"b\néA")),
        (
            "\"\\U0001F600 \\uD83D\\uDE00\"",
            string("\u{1F600} \u{1F600}"),
        ),
        ("'quoted sym'", symbol("quoted sym")),
        ("''", symbol("")),
        ("plain_Sym$1", symbol("plain_Sym$1")),
        ("$email", symbol("$email")),
        ("'$user-id'", symbol("$user-id")),
    ];
    for (text, expected) in cases {
        assert_eq!(single(text), expected, "{text}");
    }
    assert!(matches!(single("nan"), Value::Float(f) if f.is_nan()));
}

#[test]
fn timestamps_of_every_w3c_precision_are_instants() {
    let midnight_2024 = Timestamp {
        epoch_seconds: 1_704_067_200,
        nanoseconds: 0,
    };
    assert_eq!(timestamp("2024T"), midnight_2024);
    assert_eq!(timestamp("2024-01T"), midnight_2024);
    assert_eq!(timestamp("2024-01-01"), midnight_2024);
    assert_eq!(timestamp("2024-01-01T"), midnight_2024);
    assert_eq!(timestamp("2024-01-01T00:00Z"), midnight_2024);
    assert_eq!(timestamp("2024-01-01T01:30:00+01:30"), midnight_2024);
    assert_eq!(timestamp("2023-12-31T23:00:00-01:00"), midnight_2024);
    assert_eq!(
        timestamp("2024-01-01T00:00:00.123456789123Z"),
        Timestamp {
            epoch_seconds: 1_704_067_200,
            nanoseconds: 123_456_789
        }
    );
    assert_eq!(timestamp("1970-01-01T00:00:00Z").epoch_seconds, 0);
    assert_eq!(timestamp("2024-02-29").epoch_seconds, 1_709_164_800);
    assert!(timestamp("2024-03-01") > timestamp("2024-02-29T23:59:59.999Z"));
}

#[test]
fn impossible_timestamps_are_errors_that_quote_the_token() {
    for text in [
        "2023-02-29",
        "2024-13T",
        "2024-01-01T24:00Z",
        "2024-01-01T10:00",
        "0000T",
    ] {
        let error = error_of(text);
        assert!(
            matches!(error.kind, IonErrorKind::InvalidTimestamp(_)),
            "{text}: {error}"
        );
        assert!(error.to_string().contains(text), "{error}");
    }
}

#[test]
fn context_timestamps_may_omit_the_markers_ion_requires() {
    let lenient = |text| parse_timestamp(text).map(|t| t.epoch_seconds);
    assert_eq!(lenient("2024"), Some(1_704_067_200));
    assert_eq!(lenient("2024-01"), Some(1_704_067_200));
    assert_eq!(lenient("2024-01-01T00:00:00"), Some(1_704_067_200));
    assert_eq!(lenient("2024-01-01T00:00:00Z"), Some(1_704_067_200));
    assert_eq!(lenient("yesterday"), None);
    assert_eq!(lenient("2024-01-01 00:00"), None);
}

#[test]
fn bad_numbers_are_errors_not_guesses() {
    for text in [
        "007",
        "1__0",
        "1_",
        "0xZZ",
        "+5",
        "1.2.3",
        "-2024-01-01",
        "1e",
        "12abc",
    ] {
        let error = error_of(text);
        assert!(
            matches!(error.kind, IonErrorKind::InvalidNumber(_)),
            "{text}: {error}"
        );
    }
    for text in [
        "9223372036854775808",
        "1e400",
        "123456789012345678901234567890123456789.0",
    ] {
        let error = error_of(text);
        assert!(
            matches!(error.kind, IonErrorKind::NumberOutOfRange(_)),
            "{text}: {error}"
        );
    }
    assert_eq!(single("-9223372036854775808"), Value::Int(i64::MIN));
}

#[test]
fn annotations_attach_to_the_next_value_with_whitespace_allowed() {
    let element = parse_single("'basic_flag' :: second::\n  \"x\"", 64).unwrap();
    assert_eq!(element.annotations, ["basic_flag", "second"]);
    assert_eq!(element.value, string("x"));
    let inside = items(single("(split pct::10 by::$email seed::'s')"));
    assert_eq!(inside[0], symbol("split"));
    assert_eq!(inside[1], Value::Int(10));
}

#[test]
fn adjacent_long_strings_are_concatenated_across_comments() {
    let text = "'''{\"enabled\": ''' /* between */ '''true}''' // end\n";
    assert_eq!(single(text), string("{\"enabled\": true}"));
    assert_eq!(single("'''line\none'''"), string("line\none"));
    assert_eq!(single("'''a''' \n '''b'''"), string("ab"));
}

#[test]
fn lists_accept_commas_or_none_and_a_trailing_comma() {
    let expected = vec![string("a"), string("b"), Value::Int(3)];
    for text in [
        "[\"a\", \"b\", 3]",
        "[\"a\" \"b\" 3]",
        "[\"a\",\"b\" 3,]",
        "[ \"a\"\n\"b\"//c\n3 ]",
    ] {
        assert_eq!(items(single(text)), expected, "{text}");
    }
    assert!(matches!(
        error_of("[1,,2]").kind,
        IonErrorKind::UnexpectedChar { found: ',', .. }
    ));
}

#[test]
fn sexps_read_operator_symbols_and_negative_numbers() {
    let parts = items(single("(>= $a -5 - x)"));
    assert_eq!(
        parts,
        vec![
            symbol(">="),
            symbol("$a"),
            Value::Int(-5),
            symbol("-"),
            symbol("x")
        ]
    );
    assert!(matches!(
        error_of("[>=]").kind,
        IonErrorKind::UnexpectedChar { found: '>', .. }
    ));
}

#[test]
fn structs_are_read_with_any_field_name_form() {
    let value = single("{a: 1, 'b c': \"x\", \"d\": [true] e:null}");
    let Value::Struct(fields) = value else {
        panic!("not a struct")
    };
    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["a", "b c", "d", "e"]);
    assert!(error_of("{a::b: 1}")
        .to_string()
        .contains("':' after the field name"));
}

#[test]
fn documents_hold_many_top_level_values_and_spans_cover_annotations() {
    let text = "a::1 // one\n b::\"two\" /* block */ c::[x]";
    let elements = parse_document(text, 64).unwrap();
    assert_eq!(elements.len(), 3);
    assert_eq!(&text[elements[1].span.clone()], "b::\"two\"");
    assert_eq!(
        parse_document("  // only a comment\n", 64).unwrap(),
        Vec::new()
    );
}

#[test]
fn errors_name_line_and_column() {
    let error = error_of("[\n  1,\n  ]x]");
    assert_eq!((error.line, error.column), (3, 4), "{error}");
    let error = parse_document("a::1\n  é::\"x\" )", 64).unwrap_err();
    assert_eq!((error.line, error.column), (2, 3), "{error}");
    assert_eq!(
        error.to_string(),
        "line 2, column 3: found 'é' where a value was expected"
    );
    let error = error_of("\"ab");
    assert_eq!(
        error.to_string(),
        "line 1, column 1: a string or quoted symbol is never closed"
    );
}

type KindCheck = fn(&IonErrorKind) -> bool;

#[test]
fn malformed_text_gives_the_matching_error_kind() {
    let cases: [(&str, KindCheck); 9] = [
        ("/* open", |k| {
            matches!(k, IonErrorKind::UnterminatedComment)
        }),
        ("'''open", |k| matches!(k, IonErrorKind::UnterminatedString)),
        ("\"a\nb\"", |k| matches!(k, IonErrorKind::NewlineInString)),
        ("\"\\q\"", |k| matches!(k, IonErrorKind::InvalidEscape(_))),
        ("\"\\uD800\"", |k| {
            matches!(k, IonErrorKind::InvalidEscape(_))
        }),
        ("{{ aGVsbG8= }}", |k| {
            matches!(k, IonErrorKind::Unsupported(_))
        }),
        ("(a b", |k| matches!(k, IonErrorKind::UnexpectedEnd { .. })),
        ("a::", |k| matches!(k, IonErrorKind::UnexpectedEnd { .. })),
        ("1 2", |k| matches!(k, IonErrorKind::ExpectedOneValue)),
    ];
    for (text, is_expected) in cases {
        let error = error_of(text);
        assert!(is_expected(&error.kind), "{text:?} gave {error}");
    }
}

#[test]
fn containers_beyond_the_depth_limit_are_skipped_not_recursed() {
    let deep = format!("{}{}", "(".repeat(100_000), ")".repeat(100_000));
    let element = parse_single(&deep, 64).unwrap();
    let mut depth = 0;
    let mut value = element.value;
    loop {
        match value {
            Value::SExp(mut inner) => {
                depth += 1;
                value = inner.remove(0).value;
            }
            Value::TooDeep => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(depth, 64);
}

#[test]
fn skipped_containers_still_need_balanced_brackets_outside_strings() {
    let nested = "[[[ \"]]]\" '''(''' ')' ]]]";
    assert_eq!(items(single(nested)).len(), 1);
    assert!(parse_single(nested, 1).is_ok());
    let unbalanced = parse_single(&"[".repeat(10_000), 8).unwrap_err();
    assert!(matches!(
        unbalanced.kind,
        IonErrorKind::UnexpectedEnd { .. }
    ));
    let mismatched = parse_single("[[[ ( ] ]]]", 1).unwrap_err();
    assert!(matches!(
        mismatched.kind,
        IonErrorKind::MismatchedBracket { found: ']', .. }
    ));
}

#[test]
fn huge_flat_lists_parse_without_trouble() {
    let text = format!("[{}]", "1 ".repeat(200_000));
    assert_eq!(items(single(&text)).len(), 200_000);
}

#[test]
fn every_prefix_of_a_real_document_parses_or_errors_without_panic() {
    let text = "'ui'::[ [ (ends_with $email \"qa.example.com\"), '''{\"_variant\":\"QA\"}''' ], \
                [(split pct::7.5 by::$id seed::\"s\") '''{\"e\": \"\\u00e9\"}'''] /* c */ \
                '''{\"_variant\":\"Default\"}''' ] 'x'::2024-01-01T10:00:00.5+02:00";
    let mut boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    boundaries.push(text.len());
    for end in boundaries {
        let _ = parse_document(&text[..end], 64);
        let _ = parse_document(&text[end..], 64);
    }
    assert_eq!(parse_document(text, 64).unwrap().len(), 2);
}
