//! Reads the `Context` request headers into a [`Context`] (feature-flags.md §3): items split on
//! commas, trimmed, split at the first `=`. Pure; `routes` calls it through `flags` and maps a
//! [`ContextError`] to 400 (product.md §2.2).

use std::fmt;

use crate::rules::Context;

/// Most `key=value` items accepted across all `Context` headers. Our own bound: far more than
/// any rule reads, small enough that a hostile request costs little.
pub const MAX_CONTEXT_ITEMS: usize = 1_000;

/// Most bytes accepted across all `Context` header values. The server already refuses header
/// blocks over 8 KiB (quality.md), so this only bites when the function is called directly.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// Why `Context` headers were refused; each message names the item and shows the valid form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextError {
    /// The n-th `Context` header (1-based) is not UTF-8.
    InvalidUtf8 {
        header: usize,
    },
    MissingEquals {
        item: String,
    },
    EmptyKey {
        item: String,
    },
    TooManyItems,
    TooLarge {
        bytes: usize,
    },
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "write key=value, such as Context: email=jane@example.org";
        match self {
            Self::InvalidUtf8 { header } => {
                write!(
                    f,
                    "Context header {header} is not valid UTF-8; send key=value as UTF-8"
                )
            }
            Self::MissingEquals { item } => write!(f, "Context item {item:?} has no '='; {FORM}"),
            Self::EmptyKey { item } => write!(f, "Context item {item:?} has an empty key; {FORM}"),
            Self::TooManyItems => write!(
                f,
                "Context has more than {MAX_CONTEXT_ITEMS} items; send only the keys the rules read"
            ),
            Self::TooLarge { bytes } => write!(
                f,
                "Context headers hold {bytes} bytes; the limit is {MAX_CONTEXT_BYTES}"
            ),
        }
    }
}

impl std::error::Error for ContextError {}

/// Parses every `Context` header value of one request, in order. Empty items (`a=1,,b=2`, a
/// trailing comma) are skipped; key and value are trimmed; a repeated key keeps its last value.
pub fn parse_context(header_values: &[&[u8]]) -> Result<Context, ContextError> {
    let bytes: usize = header_values.iter().map(|value| value.len()).sum();
    if bytes > MAX_CONTEXT_BYTES {
        return Err(ContextError::TooLarge { bytes });
    }
    let mut context = Context::new();
    let mut items = 0;
    for (position, raw) in header_values.iter().enumerate() {
        let text = std::str::from_utf8(raw).map_err(|_| ContextError::InvalidUtf8 {
            header: position + 1,
        })?;
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            items += 1;
            if items > MAX_CONTEXT_ITEMS {
                return Err(ContextError::TooManyItems);
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(ContextError::MissingEquals {
                    item: shorten(item),
                });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ContextError::EmptyKey {
                    item: shorten(item),
                });
            }
            context.insert(key, value.trim());
        }
    }
    Ok(context)
}

/// At most 60 characters of an item, so an error never echoes a huge header.
fn shorten(item: &str) -> String {
    match item.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &item[..cut]),
        None => item.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Result<Context, ContextError> {
        let raw: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        parse_context(&raw)
    }

    #[test]
    fn items_split_on_commas_across_headers_and_the_last_repeat_wins() {
        let context = parse(&["email=jane@example.org, tier = gold", "tier=silver,x=a=b"]);
        let context = context.unwrap_or_default();
        assert_eq!(context.len(), 3);
        assert_eq!(context.value("email"), Some("jane@example.org"));
        assert_eq!(context.value("tier"), Some("silver"));
        assert_eq!(context.value("x"), Some("a=b"));
        assert_eq!(context.value("Tier"), None, "keys are case-sensitive");
    }

    #[test]
    fn empty_items_and_empty_values_are_allowed() {
        let context = parse(&["a=1,, b= ,", ""]).unwrap_or_default();
        assert_eq!(context.value("a"), Some("1"));
        assert_eq!(context.value("b"), Some(""));
        assert_eq!(parse(&[]), Ok(Context::new()));
    }

    #[test]
    fn malformed_items_are_errors_that_name_the_item() {
        let missing = parse(&["a=1, oops"]);
        assert_eq!(
            missing,
            Err(ContextError::MissingEquals {
                item: "oops".to_string()
            })
        );
        assert_eq!(
            ContextError::MissingEquals {
                item: "oops".to_string()
            }
            .to_string(),
            "Context item \"oops\" has no '='; write key=value, such as Context: \
             email=jane@example.org"
        );
        assert_eq!(
            parse(&[" =x"]),
            Err(ContextError::EmptyKey {
                item: "=x".to_string()
            })
        );
    }

    #[test]
    fn invalid_utf8_names_the_header() {
        let raw: [&[u8]; 2] = [b"a=1", b"b=\xff"];
        assert_eq!(
            parse_context(&raw),
            Err(ContextError::InvalidUtf8 { header: 2 })
        );
    }

    #[test]
    fn too_many_items_or_bytes_are_refused() {
        let ten_thousand = "a=1,".repeat(10_000);
        assert_eq!(parse(&[&ten_thousand]), Err(ContextError::TooManyItems));
        let split_over_headers: Vec<&str> = vec!["k=v"; 1_001];
        assert_eq!(parse(&split_over_headers), Err(ContextError::TooManyItems));
        let at_limit: String = (0..MAX_CONTEXT_ITEMS).map(|i| format!("k{i}=v,")).collect();
        assert_eq!(parse(&[&at_limit]).map(|c| c.len()), Ok(MAX_CONTEXT_ITEMS));
        let huge = "a".repeat(MAX_CONTEXT_BYTES + 1);
        let error = parse(&[&huge]);
        assert_eq!(
            error,
            Err(ContextError::TooLarge {
                bytes: MAX_CONTEXT_BYTES + 1
            })
        );
    }

    #[test]
    fn errors_quote_at_most_60_characters_of_an_item() {
        let item = "x".repeat(500);
        let Err(ContextError::MissingEquals { item: shown }) = parse(&[&item]) else {
            panic!("expected MissingEquals");
        };
        assert_eq!(shown.chars().count(), 61);
    }
}
