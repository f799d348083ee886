//! A small, tolerant XML reader for STS answers (wire.md §3): elements in any order, namespace
//! prefixes and attributes ignored, the five predefined entities and numeric character
//! references decoded, comments, processing instructions and CDATA understood.
//!
//! It builds a tree of elements with their text and nothing more. Document type declarations
//! with an internal subset are refused (no custom entities, so no entity expansion). Used only
//! by `sts`; it must stay free of I/O.

use std::fmt;

/// Deepest nesting accepted; STS answers are four levels deep.
const MAX_DEPTH: usize = 32;

/// One element: its local name (prefix removed), the text directly inside it and its child
/// elements in document order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Follows child names from this element.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The first element with this local name at any depth, this one included.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// The text of the child `name`, trimmed.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// The document is not XML this reader accepts. The message says what and where; it quotes
/// no content, since the document may hold key material.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct XmlError(String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn error<T>(message: &str, at: usize) -> Result<T, XmlError> {
    Err(XmlError(format!("{message} at byte {at}")))
}

/// Parses a whole document and returns its root element.
pub(super) fn parse(input: &str) -> Result<Element, XmlError> {
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut index = 0;

    while index < input.len() {
        let rest = &input[index..];
        if !rest.starts_with('<') {
            // Text up to the next tag. Every delimiter is ASCII, so slicing at one is always
            // on a character boundary.
            let end = rest.find('<').map_or(input.len(), |offset| index + offset);
            let text = decode_entities(&input[index..end], index)?;
            match open.last_mut() {
                Some(element) => element.text.push_str(&text),
                None if text.trim().is_empty() => {}
                None => return error("text outside the root element", index),
            }
            index = end;
        } else if rest.starts_with("<?") {
            index = skip_past(input, index, "?>")?;
        } else if rest.starts_with("<!--") {
            index = skip_past(input, index, "-->")?;
        } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let Some(end) = cdata.find("]]>") else {
                return error("unterminated CDATA section", index);
            };
            match open.last_mut() {
                Some(element) => element.text.push_str(&cdata[..end]),
                None => return error("CDATA outside the root element", index),
            }
            index += "<![CDATA[".len() + end + "]]>".len();
        } else if rest.starts_with("<!") {
            let end = skip_past(input, index, ">")?;
            if input[index..end].contains('[') {
                return error(
                    "document type declarations with a subset are not accepted",
                    index,
                );
            }
            index = end;
        } else if let Some(closing) = rest.strip_prefix("</") {
            let Some(end) = closing.find('>') else {
                return error("unterminated end tag", index);
            };
            let name = local_name(closing[..end].trim());
            let Some(element) = open.pop() else {
                return error("end tag without a start tag", index);
            };
            if element.name != name {
                return error("end tag does not match its start tag", index);
            }
            attach(element, &mut open, &mut root, index)?;
            index += 2 + end + 1;
        } else {
            let end = tag_end(input, index)?;
            let inside = &input[index + 1..end];
            let (inside, self_closing) = match inside.strip_suffix('/') {
                Some(stripped) => (stripped, true),
                None => (inside, false),
            };
            let raw_name = inside
                .split(|c: char| c.is_ascii_whitespace())
                .next()
                .unwrap_or("");
            if raw_name.is_empty() {
                return error("tag without a name", index);
            }
            let element = Element {
                name: local_name(raw_name).to_string(),
                ..Element::default()
            };
            if self_closing {
                attach(element, &mut open, &mut root, index)?;
            } else {
                if open.len() >= MAX_DEPTH {
                    return error("elements nested too deeply", index);
                }
                if open.is_empty() && root.is_some() {
                    return error("a second root element", index);
                }
                open.push(element);
            }
            index = end + 1;
        }
    }

    if !open.is_empty() {
        return error("unclosed element", input.len());
    }
    match root {
        Some(root) => Ok(root),
        None => error("no root element", input.len()),
    }
}

/// Hands a finished element to its parent, or makes it the root.
fn attach(
    element: Element,
    open: &mut [Element],
    root: &mut Option<Element>,
    at: usize,
) -> Result<(), XmlError> {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return error("a second root element", at),
    }
    Ok(())
}

/// `sts:Credentials` and `Credentials` are the same element to us.
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The index just past `terminator`, searching from `start`.
fn skip_past(input: &str, start: usize, terminator: &str) -> Result<usize, XmlError> {
    match input[start..].find(terminator) {
        Some(offset) => Ok(start + offset + terminator.len()),
        None => error("unterminated markup", start),
    }
}

/// The index of the `>` closing the start tag at `start`, skipping quoted attribute values,
/// which may contain `>`.
fn tag_end(input: &str, start: usize) -> Result<usize, XmlError> {
    let mut quote: Option<u8> = None;
    for (offset, byte) in input.as_bytes()[start..].iter().enumerate() {
        match (quote, byte) {
            (Some(q), b) if *b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(*byte),
            (None, b'>') => return Ok(start + offset),
            (None, b'<') if offset > 0 => return error("'<' inside a tag", start + offset),
            (None, _) => {}
        }
    }
    error("unterminated start tag", start)
}

/// Replaces `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NNN;` and `&#xHH;`. Anything else
/// after `&` is an error: without a DTD no other entity exists.
fn decode_entities(text: &str, at: usize) -> Result<String, XmlError> {
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semicolon) = after.find(';').filter(|&i| i <= 10) else {
            return error("'&' that starts no entity", at);
        };
        let entity = &after[..semicolon];
        let character = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => numeric_reference(entity),
        };
        match character {
            Some(c) => decoded.push(c),
            None => return error("unknown entity", at),
        }
        rest = &after[semicolon + 1..];
    }
    decoded.push_str(rest);
    Ok(decoded)
}

fn numeric_reference(entity: &str) -> Option<char> {
    let number = entity.strip_prefix('#')?;
    let code = match number.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => number.parse::<u32>().ok()?,
    };
    // XML forbids NUL even as a reference.
    char::from_u32(code).filter(|c| *c != '\0')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;

    fn text_at(root: &Element, path: &[&str]) -> Option<String> {
        root.path(path).map(|e| e.text.clone())
    }

    #[test]
    fn reads_nested_elements_with_prolog_namespaces_and_attributes() {
        let document = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- an answer -->
<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/" a='x>y'>
  <AssumeRoleResult>
    <sts:Credentials xmlns:sts="urn:x">
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <Empty/>
      <Empty2 />
    </sts:Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>
"#;
        let root = parse(document).unwrap();
        assert_eq!(root.name, "AssumeRoleResponse");
        assert_eq!(
            text_at(&root, &["AssumeRoleResult", "Credentials", "AccessKeyId"]).as_deref(),
            Some("ASIAEXAMPLE")
        );
        assert_eq!(
            text_at(&root, &["AssumeRoleResult", "Credentials", "Empty"]).as_deref(),
            Some("")
        );
        assert!(root.find("Empty2").is_some());
    }

    #[test]
    fn decodes_entities_references_and_cdata() {
        let cases = [
            ("<a>x&amp;y</a>", "x&y"),
            ("<a>&lt;&gt;&quot;&apos;</a>", "<>\"'"),
            ("<a>&#43;&#x2F;&#X3d;</a>", "+/="),
            ("<a>&#233;t&#xE9;</a>", "été"),
            ("<a><![CDATA[a<b&c]]></a>", "a<b&c"),
            ("<a>line&#10;two</a>", "line\ntwo"),
        ];
        for (document, expected) in cases {
            assert_eq!(
                parse(document).map(|e| e.text),
                Ok(expected.to_string()),
                "{document}"
            );
        }
    }

    #[test]
    fn refuses_broken_documents() {
        for document in [
            "",
            "   ",
            "text",
            "<a>",
            "<a></b>",
            "</a>",
            "<a>&nbsp;</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>& b</a>",
            "<a></a><b></b>",
            "<a><b></a></b>",
            "<!DOCTYPE a [<!ENTITY e \"boom\">]><a>&e;</a>",
            "<a><!-- never closed </a>",
            "<a",
            "<a><b <c></c></b></a>",
            "<>x</>",
        ] {
            assert!(parse(document).is_err(), "{document:?}");
        }
    }

    #[test]
    fn refuses_nesting_past_the_limit() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let fine = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn errors_quote_no_content() {
        let message = parse("<a>secret-value &bogus;</a>")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            !message.contains("secret-value") && !message.contains("bogus"),
            "{message}"
        );
    }
}
