//! Feeds arbitrary bytes to the Ion reader, the rule compiler and evaluator, the flag-set
//! readers and the `Context` parser (quality.md: Ion and rule parsing, `Context` parsing).
//! Any panic, overflow or hang is a finding; keep each one as a unit test in src/rules/tests/.
#![no_main]

use appconfig_lite::flags::{parse_context, Context, FlagSet};
use appconfig_lite::ion;
use appconfig_lite::rules::Rule;
use libfuzzer_sys::fuzz_target;

const ION_FLAGS: &str = "application/ion; type=AWS.AppConfig.FeatureFlags";

fuzz_target!(|data: &[u8]| {
    // Bytes after the first 0xFF become Context headers (split again at 0xFE), so one input
    // drives both the data and the request.
    let (document, headers) = match data.iter().position(|&b| b == 0xFF) {
        Some(cut) => (&data[..cut], &data[cut + 1..]),
        None => (data, &[][..]),
    };
    let header_values: Vec<&[u8]> = headers.split(|&b| b == 0xFE).collect();
    let context = parse_context(&header_values).unwrap_or_else(|_| {
        let mut fallback = Context::new();
        fallback.insert("id", "user-1");
        fallback.insert("a", "1");
        fallback
    });

    if let Ok(text) = std::str::from_utf8(document) {
        let _ = ion::parse_document(text, 66);
        let rule = Rule::parse(text, "flag");
        let first = rule.evaluate(&context);
        assert_eq!(
            first,
            rule.evaluate(&context),
            "evaluation must be deterministic"
        );
        if first {
            assert!(rule.error().is_none(), "a rule with an error was true");
        }
    }
    for content_type in [ION_FLAGS, "application/json"] {
        if let Ok(flags) = FlagSet::parse(document, content_type) {
            let _ = flags.evaluate_all(&context);
            let keys: Vec<String> = flags.keys().take(3).map(str::to_string).collect();
            let _ = flags.evaluate(&keys, &context);
        }
    }
});
