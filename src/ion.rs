//! A small reader for the subset of Amazon Ion text that feature-flag data uses
//! (feature-flags.md §1, §4): annotations, s-expressions, lists, structs, strings and symbols in
//! every quote style, numbers, timestamps, booleans, null and comments.
//! It is pure: no I/O, no logging. `rules` and `flags` call it; it calls only its own `scalar`.
//! It never panics and never recurses deeper than the caller's depth limit.

mod error;
mod scalar;

use std::ops::Range;

pub use error::{IonError, IonErrorKind};
pub use scalar::{parse_timestamp, Decimal, Timestamp};

/// One Ion value with its annotations and the byte range of its text (annotations included).
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub annotations: Vec<String>,
    pub value: Value,
    pub span: Range<usize>,
}

/// The value of an [`Element`]. Symbols keep their text only: `$key`, `'$key'` and `key` are
/// told apart by the caller from that text, as Ion itself does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` and every typed null such as `null.string`.
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    Float(f64),
    Timestamp(Timestamp),
    String(String),
    Symbol(String),
    List(Vec<Element>),
    SExp(Vec<Element>),
    Struct(Vec<(String, Element)>),
    /// A container nested deeper than the depth limit given to the parser. Its text was checked
    /// for balanced brackets and skipped without building anything, so a hostile document costs
    /// no stack; the caller decides what a too-deep value means (for a rule: never true).
    TooDeep,
}

/// Parses every top-level value of `text`. Containers nested deeper than `max_depth` become
/// [`Value::TooDeep`].
pub fn parse_document(text: &str, max_depth: usize) -> Result<Vec<Element>, IonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        max_depth,
    };
    let mut elements = Vec::new();
    loop {
        parser.skip_trivia()?;
        if parser.pos >= parser.bytes.len() {
            return Ok(elements);
        }
        elements.push(parser.parse_element(0, false)?);
    }
}

/// Parses `text` holding exactly one value (a rule, for instance); anything else is an error.
pub fn parse_single(text: &str, max_depth: usize) -> Result<Element, IonError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        max_depth,
    };
    parser.skip_trivia()?;
    if parser.pos >= parser.bytes.len() {
        return Err(parser.error(IonErrorKind::UnexpectedEnd {
            expected: "a value",
        }));
    }
    let element = parser.parse_element(0, false)?;
    parser.skip_trivia()?;
    if parser.pos < parser.bytes.len() {
        return Err(parser.error(IonErrorKind::ExpectedOneValue));
    }
    Ok(element)
}

/// Ion's operator characters, which form symbols of their own inside s-expressions.
const OPERATOR_CHARS: &[u8] = b"!#%&*+-./;<=>?@^`|~";

/// How a token that could be an annotation was written; only symbols may annotate.
enum Atom {
    Value(Value),
    Symbol(String),
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Parser<'a> {
    fn parse_element(&mut self, depth: usize, in_sexp: bool) -> Result<Element, IonError> {
        let start = self.pos;
        let mut annotations = Vec::new();
        loop {
            let atom = self.parse_atom(depth, in_sexp)?;
            let end = self.pos;
            let value = match atom {
                Atom::Value(value) => value,
                Atom::Symbol(text) => {
                    // An annotation is a symbol followed by `::`, with trivia allowed between.
                    if self.skip_trivia().is_ok() && self.bytes[self.pos..].starts_with(b"::") {
                        self.pos += 2;
                        self.skip_trivia()?;
                        annotations.push(text);
                        continue;
                    }
                    self.pos = end;
                    Value::Symbol(text)
                }
            };
            return Ok(Element {
                annotations,
                value,
                span: start..end,
            });
        }
    }

    fn parse_atom(&mut self, depth: usize, in_sexp: bool) -> Result<Atom, IonError> {
        let Some(&first) = self.bytes.get(self.pos) else {
            return Err(self.error(IonErrorKind::UnexpectedEnd {
                expected: "a value",
            }));
        };
        let next = self.bytes.get(self.pos + 1).copied();
        match first {
            b'(' | b'[' | b'{' if depth >= self.max_depth => {
                self.skip_container()?;
                Ok(Atom::Value(Value::TooDeep))
            }
            b'(' => self.parse_sexp(depth + 1).map(Atom::Value),
            b'[' => self.parse_list(depth + 1).map(Atom::Value),
            b'{' if next == Some(b'{') => {
                Err(self.error(IonErrorKind::Unsupported("blobs and clobs ({{ }})")))
            }
            b'{' => self.parse_struct(depth + 1).map(Atom::Value),
            b'"' => self
                .parse_short_quoted(b'"')
                .map(|s| Atom::Value(Value::String(s))),
            b'\'' if self.bytes[self.pos..].starts_with(b"'''") => self
                .parse_long_strings()
                .map(|s| Atom::Value(Value::String(s))),
            b'\'' => self.parse_short_quoted(b'\'').map(Atom::Symbol),
            b'0'..=b'9' => self.parse_number_token().map(Atom::Value),
            b'-' | b'+' if next.is_some_and(|c| c.is_ascii_digit()) || self.is_infinity() => {
                self.parse_number_token().map(Atom::Value)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' => Ok(self.parse_identifier()),
            c if in_sexp && OPERATOR_CHARS.contains(&c) => Ok(self.parse_operator()),
            _ => Err(self.unexpected_char("a value")),
        }
    }

    fn parse_sexp(&mut self, depth: usize) -> Result<Value, IonError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            match self.bytes.get(self.pos) {
                None => return Err(self.error(IonErrorKind::UnexpectedEnd { expected: "')'" })),
                Some(b')') => {
                    self.pos += 1;
                    return Ok(Value::SExp(items));
                }
                Some(_) => items.push(self.parse_element(depth, true)?),
            }
        }
    }

    /// Lists accept commas between elements but do not require them (feature-flags.md §4.1).
    fn parse_list(&mut self, depth: usize) -> Result<Value, IonError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_trivia()?;
            match self.bytes.get(self.pos) {
                None => return Err(self.error(IonErrorKind::UnexpectedEnd { expected: "']'" })),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::List(items));
                }
                Some(_) => items.push(self.parse_element(depth, false)?),
            }
            self.skip_trivia()?;
            if self.bytes.get(self.pos) == Some(&b',') {
                self.pos += 1;
            }
        }
    }

    fn parse_struct(&mut self, depth: usize) -> Result<Value, IonError> {
        self.pos += 1;
        let mut fields = Vec::new();
        loop {
            self.skip_trivia()?;
            let name = match self.bytes.get(self.pos) {
                None => return Err(self.error(IonErrorKind::UnexpectedEnd { expected: "'}'" })),
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Struct(fields));
                }
                Some(b'"') => self.parse_short_quoted(b'"')?,
                Some(b'\'') if self.bytes[self.pos..].starts_with(b"'''") => {
                    self.parse_long_strings()?
                }
                Some(b'\'') => self.parse_short_quoted(b'\'')?,
                Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b'$' => self
                    .take_while(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
                    .to_string(),
                Some(_) => return Err(self.unexpected_char("a field name")),
            };
            self.skip_trivia()?;
            if self.bytes.get(self.pos) != Some(&b':')
                || self.bytes.get(self.pos + 1) == Some(&b':')
            {
                return self.expect_failure("':' after the field name");
            }
            self.pos += 1;
            self.skip_trivia()?;
            fields.push((name, self.parse_element(depth, false)?));
            self.skip_trivia()?;
            if self.bytes.get(self.pos) == Some(&b',') {
                self.pos += 1;
            }
        }
    }

    /// Walks over a too-deep container without building it, keeping only a stack of the closing
    /// brackets still expected (heap, not call stack), and lexing strings so their brackets
    /// don't count.
    fn skip_container(&mut self) -> Result<(), IonError> {
        let mut closers = Vec::new();
        loop {
            self.skip_trivia()?;
            let Some(&c) = self.bytes.get(self.pos) else {
                return Err(self.error(IonErrorKind::UnexpectedEnd {
                    expected: "a closing bracket",
                }));
            };
            match c {
                b'(' => closers.push(b')'),
                b'[' => closers.push(b']'),
                b'{' => closers.push(b'}'),
                b')' | b']' | b'}' => {
                    let expected = closers.pop().unwrap_or(c);
                    if c != expected {
                        let kind = IonErrorKind::MismatchedBracket {
                            found: char::from(c),
                            expected: char::from(expected),
                        };
                        return Err(self.error(kind));
                    }
                }
                b'"' => {
                    self.parse_short_quoted(b'"')?;
                    continue;
                }
                b'\'' if self.bytes[self.pos..].starts_with(b"'''") => {
                    self.parse_long_strings()?;
                    continue;
                }
                b'\'' => {
                    self.parse_short_quoted(b'\'')?;
                    continue;
                }
                _ => {}
            }
            self.advance_char();
            if closers.is_empty() {
                return Ok(());
            }
        }
    }

    /// Reads `"string"` or `'symbol'` (the opening quote is at `pos`), resolving escapes.
    fn parse_short_quoted(&mut self, quote: u8) -> Result<String, IonError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.current_char() else {
                self.pos = open;
                return Err(self.error(IonErrorKind::UnterminatedString));
            };
            match c {
                '\n' | '\r' => return Err(self.error(IonErrorKind::NewlineInString)),
                '\\' => self.parse_escape(&mut out)?,
                c if c as u32 == u32::from(quote) => {
                    self.pos += 1;
                    return Ok(out);
                }
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    /// Reads one `'''long string'''` and every long string that follows it with only
    /// whitespace or comments between: Ion joins them into one value.
    fn parse_long_strings(&mut self) -> Result<String, IonError> {
        let mut out = String::new();
        loop {
            let open = self.pos;
            self.pos += 3;
            loop {
                if self.bytes[self.pos..].starts_with(b"'''") {
                    self.pos += 3;
                    break;
                }
                match self.current_char() {
                    None => {
                        self.pos = open;
                        return Err(self.error(IonErrorKind::UnterminatedString));
                    }
                    Some('\\') => self.parse_escape(&mut out)?,
                    Some(c) => {
                        out.push(c);
                        self.pos += c.len_utf8();
                    }
                }
            }
            let end = self.pos;
            if self.skip_trivia().is_ok() && self.bytes[self.pos..].starts_with(b"'''") {
                continue;
            }
            self.pos = end;
            return Ok(out);
        }
    }

    /// Resolves the escape whose backslash is at `pos` and appends its character to `out`.
    fn parse_escape(&mut self, out: &mut String) -> Result<(), IonError> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.current_char() else {
            self.pos = start;
            return Err(self.error(IonErrorKind::UnterminatedString));
        };
        self.pos += c.len_utf8();
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            't' => Some('\t'),
            'n' => Some('\n'),
            'f' => Some('\u{c}'),
            'r' => Some('\r'),
            'v' => Some('\u{b}'),
            '0' => Some('\0'),
            '"' | '\'' | '?' | '\\' | '/' => Some(c),
            _ => None,
        };
        if let Some(resolved) = simple {
            out.push(resolved);
            return Ok(());
        }
        let code = match c {
            // A backslash before a line break continues the string on the next line.
            '\n' => return Ok(()),
            '\r' => {
                if self.bytes.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                return Ok(());
            }
            'x' => self.parse_hex_digits(start, 2)?,
            'u' => self.parse_hex_digits(start, 4)?,
            'U' => self.parse_hex_digits(start, 8)?,
            _ => return Err(self.invalid_escape(start)),
        };
        let code = if (0xD800..0xDC00).contains(&code) && self.bytes[self.pos..].starts_with(b"\\u")
        {
            // A UTF-16 surrogate pair written as two \u escapes.
            self.pos += 2;
            let low = self.parse_hex_digits(start, 4)?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.invalid_escape(start));
            }
            0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        } else {
            code
        };
        match char::from_u32(code) {
            Some(resolved) => {
                out.push(resolved);
                Ok(())
            }
            None => Err(self.invalid_escape(start)),
        }
    }

    fn parse_hex_digits(&mut self, escape_start: usize, count: usize) -> Result<u32, IonError> {
        let digits = self.bytes.get(self.pos..self.pos + count);
        let text = digits.and_then(|d| std::str::from_utf8(d).ok());
        match text.and_then(|t| {
            t.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u32::from_str_radix(t, 16).ok())?
        }) {
            Some(code) => {
                self.pos += count;
                Ok(code)
            }
            None => Err(self.invalid_escape(escape_start)),
        }
    }

    fn invalid_escape(&mut self, start: usize) -> IonError {
        let end = (start + 2).min(self.bytes.len());
        let shown = String::from_utf8_lossy(&self.bytes[start..end]).into_owned();
        self.pos = start;
        self.error(IonErrorKind::InvalidEscape(shown))
    }

    fn parse_number_token(&mut self) -> Result<Value, IonError> {
        let start = self.pos;
        let token = self.take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-' | b':')
        });
        scalar::parse_number_or_timestamp(token).map_err(|kind| {
            self.pos = start;
            self.error(kind)
        })
    }

    fn is_infinity(&self) -> bool {
        let rest = &self.bytes[self.pos + 1..];
        rest.starts_with(b"inf")
            && !rest
                .get(3)
                .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$')
    }

    fn parse_identifier(&mut self) -> Atom {
        let word = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
        match word {
            "true" => Atom::Value(Value::Bool(true)),
            "false" => Atom::Value(Value::Bool(false)),
            "nan" => Atom::Value(Value::Float(f64::NAN)),
            "null" => {
                // A typed null such as `null.string` is still null.
                let after = &self.bytes[self.pos..];
                if after.first() == Some(&b'.') && after.get(1).is_some_and(u8::is_ascii_alphabetic)
                {
                    self.pos += 1;
                    self.take_while(|c| c.is_ascii_alphabetic());
                }
                Atom::Value(Value::Null)
            }
            other => Atom::Symbol(other.to_string()),
        }
    }

    fn parse_operator(&mut self) -> Atom {
        let start = self.pos;
        while let Some(&c) = self.bytes.get(self.pos) {
            let starts_comment = self.bytes[self.pos..].starts_with(b"//")
                || self.bytes[self.pos..].starts_with(b"/*");
            if !OPERATOR_CHARS.contains(&c) || (starts_comment && self.pos > start) {
                break;
            }
            self.pos += 1;
        }
        Atom::Value(Value::Symbol(self.text[start..self.pos].to_string()))
    }

    /// Skips whitespace and comments. Leaves `pos` at the next meaningful byte or the end.
    fn skip_trivia(&mut self) -> Result<(), IonError> {
        loop {
            let rest = &self.bytes[self.pos..];
            match rest.first() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') => self.pos += 1,
                Some(b'/') if rest.get(1) == Some(&b'/') => {
                    let line_end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
                    self.pos += line_end;
                }
                Some(b'/') if rest.get(1) == Some(&b'*') => {
                    let Some(close) = rest[2..].windows(2).position(|w| w == b"*/") else {
                        return Err(self.error(IonErrorKind::UnterminatedComment));
                    };
                    self.pos += close + 4;
                }
                _ => return Ok(()),
            }
        }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let text: &'a str = self.text;
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(|&c| keep(c)) {
            self.pos += 1;
        }
        // Only ASCII bytes are ever kept, so both ends fall on character boundaries.
        text.get(start..self.pos).unwrap_or("")
    }

    fn current_char(&self) -> Option<char> {
        self.text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn advance_char(&mut self) {
        self.pos += self.current_char().map_or(1, char::len_utf8);
    }

    fn unexpected_char(&self, expected: &'static str) -> IonError {
        match self.current_char() {
            Some(found) => self.error(IonErrorKind::UnexpectedChar { found, expected }),
            None => self.error(IonErrorKind::UnexpectedEnd { expected }),
        }
    }

    fn expect_failure<T>(&self, expected: &'static str) -> Result<T, IonError> {
        Err(self.unexpected_char(expected))
    }

    fn error(&self, kind: IonErrorKind) -> IonError {
        let before = &self.bytes[..self.pos.min(self.bytes.len())];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        // Count characters, not bytes: UTF-8 continuation bytes look like 0b10xxxxxx.
        let column = before[line_start..]
            .iter()
            .filter(|&&c| c & 0xC0 != 0x80)
            .count()
            + 1;
        IonError { line, column, kind }
    }
}

#[cfg(test)]
mod tests;
