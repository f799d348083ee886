//! Seeded, bounded generated input for every parser (the deterministic companion of the
//! cargo-fuzz target in fuzz/): nothing may panic, and evaluation must be repeatable.

use super::context;
use crate::ion;
use crate::rules::Rule;

/// A xorshift generator: deterministic, so a failure reproduces from the same seed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Pieces of the rule and flag syntax, so that generated text often gets deep into the parsers.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "{{",
    ",",
    " ",
    "\n",
    "::",
    ":",
    "'",
    "\"",
    "'''",
    "\\",
    "\\u",
    "\\x4",
    "$",
    "$id",
    "$a",
    "eq",
    "ne",
    "gt",
    "and",
    "or",
    "not",
    "in",
    "split",
    "matches",
    "exists",
    "contains",
    "pct",
    "by",
    "seed",
    "key",
    "pattern",
    "10",
    "-5",
    "7.5",
    "1e3",
    "1d-2",
    "0x1F",
    "1_0",
    "2024-01-01T",
    "2024T",
    "2024-02-30",
    "T10:00Z",
    "+01:00",
    "null",
    "null.int",
    "true",
    "nan",
    "+inf",
    "//",
    "/*",
    "*/",
    "é",
    "\u{1F600}",
    "\"a\"",
    "'f'::",
    "'''{\"enabled\":true}'''",
    "(.*)+$",
    ">=",
    "-",
];

const SEED_RULES: &[&str] = &[
    "(and (eq $a \"1\") (or (split pct::7.5 by::$id seed::\"s\") (not (exists key::\"c\"))))",
    "(matches in::$a pattern::\"^(a|b)+$\")",
    "(in $a [1, 2.5, \"x\" 2024-01-01T10:00:00.5+02:00 true null])",
    "(gt $a 2024-01T) // comment\n",
];

#[test]
fn generated_garbage_never_panics_any_parser() {
    let mut generator = Generator(0x5EED_F1A6_2026_0001);
    let ctx = context(&[("id", "u1"), ("a", "1"), ("c", "")]);
    let ion_type = "application/ion; type=AWS.AppConfig.FeatureFlags";
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..generator.below(32) {
            text.push_str(FRAGMENTS[generator.below(FRAGMENTS.len())]);
        }
        let rule = Rule::parse(&text, "k");
        let _ = rule.evaluate(&ctx);
        let _ = ion::parse_document(&text, 4);
        let _ = crate::flags::FlagSet::parse(text.as_bytes(), ion_type);
        let _ = crate::flags::FlagSet::parse(text.as_bytes(), "application/json");
        let _ = crate::flags::parse_context(&[text.as_bytes()]);
    }
}

#[test]
fn mutated_valid_rules_never_panic_and_stay_deterministic() {
    let mut generator = Generator(0xC0FF_EE00_1234_5678);
    let ctx = context(&[("id", "u1"), ("a", "b"), ("c", "")]);
    for _ in 0..20_000 {
        let mut bytes = SEED_RULES[generator.below(SEED_RULES.len())]
            .as_bytes()
            .to_vec();
        for _ in 0..=generator.below(4) {
            let at = generator.below(bytes.len() + 1);
            let byte = generator.next() as u8;
            match generator.below(3) {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        let body = [b"'f'::[[".as_slice(), &bytes, b" '''{}''']'''{}''']"].concat();
        let _ = crate::flags::FlagSet::parse(&body, "application/ion")
            .map(|flags| flags.evaluate_all(&ctx));
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let rule = Rule::parse(text, "k");
        assert_eq!(rule.evaluate(&ctx), rule.evaluate(&ctx), "{text:?}");
    }
}
