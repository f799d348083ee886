//! Number and timestamp tokens of Ion text, and the timestamp reader that rules also use on
//! context values (feature-flags.md §4.2). Pure; used only through `ion`.

use super::{IonErrorKind, Value};

/// An Ion decimal, kept exact as `coefficient × 10^exponent` so that `pct::7.25` means exactly
/// 725 buckets in a split (feature-flags.md §4.3) rather than a float just above or below it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decimal {
    pub coefficient: i128,
    pub exponent: i32,
}

impl Decimal {
    /// The nearest float, for comparisons with context values.
    pub fn to_f64(self) -> f64 {
        format!("{}e{}", self.coefficient, self.exponent)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

/// A point in time, UTC, at nanosecond resolution. Timestamps of any precision compare as the
/// first instant they cover (`2024-01T` is 2024-01-01T00:00:00Z), as feature-flags.md §4.2 asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub epoch_seconds: i64,
    pub nanoseconds: u32,
}

/// Reads a context value as a timestamp: every W3C precision Ion accepts, and also the forms
/// people type without Ion's markers (`2024`, `2024-01`, a time without an offset, read as UTC).
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    read_timestamp(text.as_bytes(), true)
}

/// Classifies and converts one token that began with a digit, `-` or `+`.
pub(super) fn parse_number_or_timestamp(token: &str) -> Result<Value, IonErrorKind> {
    let invalid = || IonErrorKind::InvalidNumber(shorten(token));
    match token {
        "+inf" => return Ok(Value::Float(f64::INFINITY)),
        "-inf" => return Ok(Value::Float(f64::NEG_INFINITY)),
        _ if token.starts_with('+') => return Err(invalid()),
        _ => {}
    }
    let (negative, body) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let bytes = body.as_bytes();
    let looks_like_timestamp = bytes.len() > 4
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && matches!(bytes[4], b'T' | b'-');
    if looks_like_timestamp {
        if negative {
            return Err(invalid());
        }
        return match read_timestamp(bytes, false) {
            Some(timestamp) => Ok(Value::Timestamp(timestamp)),
            None => Err(IonErrorKind::InvalidTimestamp(shorten(token))),
        };
    }

    if let Some(digits) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return parse_integer(digits, 16, negative, token);
    }
    if let Some(digits) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return parse_integer(digits, 2, negative, token);
    }
    if body.contains(['e', 'E']) {
        return parse_float(body, negative, token);
    }
    if body.contains(['.', 'd', 'D']) {
        return parse_decimal(body, negative, token);
    }
    if !is_whole_number(body) {
        return Err(invalid());
    }
    parse_integer(body, 10, negative, token)
}

fn parse_integer(
    digits: &str,
    radix: u32,
    negative: bool,
    token: &str,
) -> Result<Value, IonErrorKind> {
    let clean = remove_underscores(digits, radix)
        .ok_or_else(|| IonErrorKind::InvalidNumber(shorten(token)))?;
    let magnitude = u64::from_str_radix(&clean, radix)
        .map_err(|_| IonErrorKind::NumberOutOfRange(shorten(token)))?;
    let signed = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i64::try_from(signed)
        .map(Value::Int)
        .map_err(|_| IonErrorKind::NumberOutOfRange(shorten(token)))
}

/// `int ( '.' digits? )? ( [dD] [+-]? digits )?` with at least the dot or the exponent.
fn parse_decimal(body: &str, negative: bool, token: &str) -> Result<Value, IonErrorKind> {
    let invalid = || IonErrorKind::InvalidNumber(shorten(token));
    let (mantissa, exponent_text) = match body.split_once(['d', 'D']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !is_whole_number(whole) {
        return Err(invalid());
    }
    let whole = remove_underscores(whole, 10).ok_or_else(invalid)?;
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        remove_underscores(fraction, 10).ok_or_else(invalid)?
    };
    let exponent = match exponent_text {
        Some(text) => parse_exponent(text).ok_or_else(invalid)?,
        None => 0,
    };

    let out_of_range = || IonErrorKind::NumberOutOfRange(shorten(token));
    let coefficient: i128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| out_of_range())?;
    let fraction_digits = i32::try_from(fraction.len()).map_err(|_| out_of_range())?;
    let exponent = exponent
        .checked_sub(fraction_digits)
        .ok_or_else(out_of_range)?;
    let coefficient = if negative { -coefficient } else { coefficient };
    Ok(Value::Decimal(Decimal {
        coefficient,
        exponent,
    }))
}

fn parse_float(body: &str, negative: bool, token: &str) -> Result<Value, IonErrorKind> {
    let invalid = || IonErrorKind::InvalidNumber(shorten(token));
    let (mantissa, exponent) = body.split_once(['e', 'E']).ok_or_else(invalid)?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !is_whole_number(whole) {
        return Err(invalid());
    }
    let whole = remove_underscores(whole, 10).ok_or_else(invalid)?;
    let fraction = if fraction.is_empty() {
        "0".to_string()
    } else {
        remove_underscores(fraction, 10).ok_or_else(invalid)?
    };
    let exponent = parse_exponent(exponent).ok_or_else(invalid)?;
    let sign = if negative { "-" } else { "" };
    let value: f64 = format!("{sign}{whole}.{fraction}e{exponent}")
        .parse()
        .map_err(|_| invalid())?;
    if value.is_infinite() {
        return Err(IonErrorKind::NumberOutOfRange(shorten(token)));
    }
    Ok(Value::Float(value))
}

fn parse_exponent(text: &str) -> Option<i32> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude: i32 = remove_underscores(digits, 10)?.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Ion forbids leading zeros on the whole part (`007`), so they are refused rather than guessed.
fn is_whole_number(text: &str) -> bool {
    !text.is_empty() && (text == "0" || !text.starts_with('0'))
}

/// Checks that `text` is digits of `radix` with single underscores only between digits, and
/// returns the digits alone.
fn remove_underscores(text: &str, radix: u32) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes[0] == b'_' || bytes[bytes.len() - 1] == b'_' {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut previous_underscore = false;
    for &byte in bytes {
        if byte == b'_' {
            if previous_underscore {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        if !char::from(byte).is_digit(radix) {
            return None;
        }
        previous_underscore = false;
        out.push(char::from(byte));
    }
    Some(out)
}

/// Quotes at most 40 characters of a bad token, so an error never echoes a huge input.
fn shorten(token: &str) -> String {
    match token.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &token[..cut]),
        None => token.to_string(),
    }
}

/// Reads a timestamp. Strict mode is Ion's grammar: year and month precision end in `T`, and a
/// time of day carries an offset. Lenient mode, for context values, relaxes exactly those two.
fn read_timestamp(bytes: &[u8], lenient: bool) -> Option<Timestamp> {
    let mut cursor = Cursor { bytes, pos: 0 };
    let year = cursor.number(4)?;
    if year == 0 {
        return None;
    }
    if cursor.is_done() {
        return lenient.then(|| instant(year, 1, 1, 0, 0)).flatten();
    }
    if cursor.eat(b'T') {
        return cursor
            .is_done()
            .then(|| instant(year, 1, 1, 0, 0))
            .flatten();
    }

    cursor.expect(b'-')?;
    let month = cursor.number(2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if cursor.is_done() {
        return lenient.then(|| instant(year, month, 1, 0, 0)).flatten();
    }
    if cursor.eat(b'T') {
        return cursor
            .is_done()
            .then(|| instant(year, month, 1, 0, 0))
            .flatten();
    }

    cursor.expect(b'-')?;
    let day = cursor.number(2)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if cursor.is_done() || (cursor.eat(b'T') && cursor.is_done()) {
        return instant(year, month, day, 0, 0);
    }

    let hour = cursor.number(2)?;
    cursor.expect(b':')?;
    let minute = cursor.number(2)?;
    let mut second = 0;
    let mut nanoseconds = 0;
    if cursor.eat(b':') {
        second = cursor.number(2)?;
        if cursor.eat(b'.') {
            nanoseconds = cursor.fraction_as_nanoseconds()?;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_minutes = if cursor.eat(b'Z') || cursor.eat(b'z') {
        0
    } else if cursor.eat(b'+') || cursor.peek() == Some(b'-') {
        let sign = if cursor.eat(b'-') { -1 } else { 1 };
        let offset_hours = cursor.number(2)?;
        cursor.expect(b':')?;
        let offset_rest = cursor.number(2)?;
        if offset_hours > 23 || offset_rest > 59 {
            return None;
        }
        sign * (offset_hours * 60 + offset_rest)
    } else if lenient && cursor.is_done() {
        0
    } else {
        return None;
    };
    if !cursor.is_done() {
        return None;
    }

    let start_of_day = instant(year, month, day, 0, 0)?;
    let seconds_in_day = hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp {
        epoch_seconds: start_of_day.epoch_seconds + seconds_in_day,
        nanoseconds,
    })
}

fn instant(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> Option<Timestamp> {
    let days = days_since_epoch(year, month, day)?;
    Some(Timestamp {
        epoch_seconds: days * 86_400 + hour * 3600 + minute * 60,
        nanoseconds: 0,
    })
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar.
fn days_since_epoch(year: i64, month: i64, day: i64) -> Option<i64> {
    let full_years = year - 1;
    let days_before_year = 365 * full_years + full_years / 4 - full_years / 100 + full_years / 400;
    let days_before_month: i64 = (1..month).map(|m| days_in_month(year, m)).sum();
    // 719,162 days lie between 0001-01-01 and 1970-01-01.
    Some(days_before_year + days_before_month + day - 1 - 719_162)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn is_done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, wanted: u8) -> bool {
        let found = self.peek() == Some(wanted);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        self.eat(wanted).then_some(())
    }

    /// Exactly `count` ASCII digits as a number.
    fn number(&mut self, count: usize) -> Option<i64> {
        let digits = self.bytes.get(self.pos..self.pos + count)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += count;
        Some(
            digits
                .iter()
                .fold(0, |total, d| total * 10 + i64::from(d - b'0')),
        )
    }

    /// One or more fraction digits; those beyond nanoseconds are read and dropped.
    fn fraction_as_nanoseconds(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        if digits.is_empty() {
            return None;
        }
        let mut nanoseconds = 0u32;
        for position in 0..9 {
            let digit = digits.get(position).map_or(0, |d| u32::from(d - b'0'));
            nanoseconds = nanoseconds * 10 + digit;
        }
        Some(nanoseconds)
    }
}
