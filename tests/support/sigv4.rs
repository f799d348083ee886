//! An independent SigV4 verifier (and signer) for the loopback fakes.
//!
//! Owns its own canonical-request code, written from the SigV4 rules and wire.md §5, so that a
//! mistake in the agent's signing (`src/signing.rs`, built on aws-sigv4) cannot hide behind the
//! same mistake here. It must not call aws-sigv4 or any crate code. Used by `appconfigdata` (and
//! any other fake that checks signatures) and proven against the wire.md vectors in
//! `tests/fakes_selftest.rs`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm AWS accepts for these services.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `x-amz-date` may be from the server clock before AWS answers
/// "Signature expired" (wire.md §5: skew over 5 min is rejected).
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The credentials a fake expects requests to be signed with.
#[derive(Clone, Debug, Default)]
pub struct ExpectedCredentials {
    pub access_key: String,
    pub secret_key: String,
    /// When set, the request must carry this exact `X-Amz-Security-Token` and sign it; when not
    /// set, the request must not carry one.
    pub session_token: Option<String>,
}

/// A request exactly as it arrived: `target` is the raw path and query from the request line,
/// `headers` keep their received names and values in order.
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What a verifier checks a request against.
#[derive(Clone, Debug)]
pub struct Verifier {
    pub credentials: ExpectedCredentials,
    pub region: String,
    /// The signing name, e.g. `appconfig` for AppConfigData (wire.md §2), `sts` for STS.
    pub service: String,
    /// `None` turns the clock check off, so the 2015 vectors of wire.md §5 can be verified.
    pub max_clock_skew: Option<Duration>,
}

/// Why a request's signature was refused. Messages never contain the secret key; the canonical
/// request shown by `SignatureMismatch` holds the signed header values, session token included
/// (these are test credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// A header SigV4 needs (`authorization`, `x-amz-date`, `host`) was not sent.
    MissingHeader(&'static str),
    /// The `Authorization` header did not have the `AWS4-HMAC-SHA256 Credential=…,
    /// SignedHeaders=…, Signature=…` shape.
    MalformedAuthorization(String),
    /// The credential named an access key other than the expected one.
    UnknownAccessKey { received: String },
    /// A part of the credential scope (date, region, service, terminator) was wrong.
    WrongScope {
        part: &'static str,
        received: String,
        expected: String,
    },
    /// `x-amz-date` was not `YYYYMMDDTHHMMSSZ`.
    MalformedDate(String),
    /// `x-amz-date` was further from the server clock than allowed.
    ClockSkew {
        request_time: String,
        skew_seconds: u64,
    },
    /// A header that must be covered (`host`, `x-amz-date`, `x-amz-security-token`) was not in
    /// `SignedHeaders`.
    HeaderNotSigned(String),
    /// `SignedHeaders` named a header that the request did not carry.
    SignedHeaderAbsent(String),
    /// A session token was expected but none was sent.
    SecurityTokenMissing,
    /// The session token sent differs from the expected one.
    SecurityTokenMismatch,
    /// A session token was sent although the credentials have none.
    UnexpectedSecurityToken,
    /// Everything parsed, but the signature does not match what the verifier computed. The
    /// canonical request is included to show what was signed on this side.
    SignatureMismatch {
        received: String,
        expected: String,
        canonical_request: String,
    },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "the request has no {name} header"),
            Self::MalformedAuthorization(detail) => {
                write!(f, "the authorization header is malformed: {detail}")
            }
            Self::UnknownAccessKey { received } => {
                write!(f, "the access key {received:?} is not the expected one")
            }
            Self::WrongScope {
                part,
                received,
                expected,
            } => write!(
                f,
                "the credential scope {part} is {received:?}; expected {expected:?}"
            ),
            Self::MalformedDate(value) => {
                write!(
                    f,
                    "x-amz-date is {value:?}; expected the form 20150830T123600Z"
                )
            }
            Self::ClockSkew {
                request_time,
                skew_seconds,
            } => write!(
                f,
                "signature expired: x-amz-date {request_time} is {skew_seconds} s from now"
            ),
            Self::HeaderNotSigned(name) => write!(f, "the {name} header is not signed"),
            Self::SignedHeaderAbsent(name) => {
                write!(
                    f,
                    "SignedHeaders names {name}, but the request has no such header"
                )
            }
            Self::SecurityTokenMissing => write!(f, "the x-amz-security-token header is missing"),
            Self::SecurityTokenMismatch => {
                write!(
                    f,
                    "the x-amz-security-token header is not the expected token"
                )
            }
            Self::UnexpectedSecurityToken => write!(
                f,
                "an x-amz-security-token header was sent but the credentials have no token"
            ),
            Self::SignatureMismatch {
                received,
                expected,
                canonical_request,
            } => write!(
                f,
                "signature {received} does not match {expected}; canonical request:\n\
                 {canonical_request}"
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

/// The parts of an `Authorization` header.
struct Authorization<'a> {
    access_key: &'a str,
    scope_date: &'a str,
    scope_region: &'a str,
    scope_service: &'a str,
    scope_terminator: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl Verifier {
    /// Checks `request` against the expected credentials, region and service, with `now` as the
    /// server clock. Returns the first problem found.
    pub fn verify(
        &self,
        request: &ReceivedRequest<'_>,
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let authorization = header_value(request.headers, "authorization")
            .ok_or(SignatureError::MissingHeader("authorization"))?;
        let auth = parse_authorization(authorization)?;
        let amz_date = header_value(request.headers, "x-amz-date")
            .ok_or(SignatureError::MissingHeader("x-amz-date"))?;
        let request_time = parse_amz_date(amz_date)
            .ok_or_else(|| SignatureError::MalformedDate(amz_date.to_string()))?;
        if header_value(request.headers, "host").is_none() {
            return Err(SignatureError::MissingHeader("host"));
        }

        if auth.access_key != self.credentials.access_key {
            return Err(SignatureError::UnknownAccessKey {
                received: auth.access_key.to_string(),
            });
        }
        let scope_checks = [
            // `parse_amz_date` accepted it, so it is 16 ASCII characters.
            ("date", auth.scope_date, &amz_date[..8]),
            ("region", auth.scope_region, self.region.as_str()),
            ("service", auth.scope_service, self.service.as_str()),
            ("terminator", auth.scope_terminator, "aws4_request"),
        ];
        for (part, received, expected) in scope_checks {
            if received != expected {
                return Err(SignatureError::WrongScope {
                    part,
                    received: received.to_string(),
                    expected: expected.to_string(),
                });
            }
        }

        if let Some(max_skew) = self.max_clock_skew {
            let skew = match now.duration_since(request_time) {
                Ok(behind) => behind,
                Err(ahead) => ahead.duration(),
            };
            if skew > max_skew {
                return Err(SignatureError::ClockSkew {
                    request_time: amz_date.to_string(),
                    skew_seconds: skew.as_secs(),
                });
            }
        }

        for required in ["host", "x-amz-date"] {
            if !auth.signed_headers.contains(&required) {
                return Err(SignatureError::HeaderNotSigned(required.to_string()));
            }
        }
        self.check_security_token(request, &auth.signed_headers)?;

        let canonical = canonical_request(request, &auth.signed_headers)?;
        let expected = compute_signature(
            &self.credentials.secret_key,
            amz_date,
            &self.region,
            &self.service,
            &canonical,
        );
        if expected != auth.signature {
            return Err(SignatureError::SignatureMismatch {
                received: auth.signature.to_string(),
                expected,
                canonical_request: canonical,
            });
        }
        Ok(())
    }

    /// wire.md §5: `X-Amz-Security-Token` is sent unencoded and signed, and must be the
    /// credentials' own token.
    fn check_security_token(
        &self,
        request: &ReceivedRequest<'_>,
        signed_headers: &[&str],
    ) -> Result<(), SignatureError> {
        let sent = header_value(request.headers, "x-amz-security-token");
        match (&self.credentials.session_token, sent) {
            (Some(_), None) => Err(SignatureError::SecurityTokenMissing),
            (None, Some(_)) => Err(SignatureError::UnexpectedSecurityToken),
            (Some(expected), Some(sent)) if expected != sent => {
                Err(SignatureError::SecurityTokenMismatch)
            }
            (Some(_), Some(_)) if !signed_headers.contains(&"x-amz-security-token") => Err(
                SignatureError::HeaderNotSigned("x-amz-security-token".to_string()),
            ),
            _ => Ok(()),
        }
    }
}

/// Signs a request with this module's own SigV4 code, for the self-tests and for tests that need
/// a deliberately odd or wrongly signed request. `request.headers` must contain `host` (with
/// `:port` when not the default). Adds `x-amz-date` (from `time`) and, when the credentials carry
/// one, `x-amz-security-token`; signs every header present; returns the full header list with
/// `authorization` last.
pub fn sign_headers(
    request: &ReceivedRequest<'_>,
    credentials: &ExpectedCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = format_amz_date(time);
    let mut all = request.headers.to_vec();
    all.push(("x-amz-date".to_string(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        all.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let mut names: Vec<String> = all
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();

    let request = ReceivedRequest {
        headers: &all,
        ..*request
    };
    // Every name in `name_refs` comes from `all`, so no signed header can be absent.
    let canonical = canonical_request(&request, &name_refs).unwrap_or_default();
    let scope = format!("{}/{region}/{service}/aws4_request", &amz_date[..8]);
    let signature = compute_signature(
        &credentials.secret_key,
        &amz_date,
        region,
        service,
        &canonical,
    );
    all.push((
        "authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key,
            names.join(";")
        ),
    ));
    all
}

/// Builds the SigV4 canonical request: method, canonical URI, canonical query, the signed
/// headers (lowercase names, trimmed values with inner runs of spaces folded, sorted), the signed
/// header list and the hex SHA-256 of the exact body bytes.
pub fn canonical_request(
    request: &ReceivedRequest<'_>,
    signed_headers: &[&str],
) -> Result<String, SignatureError> {
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (request.target, ""),
    };
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort();
    let mut header_block = String::new();
    for name in &names {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(received, _)| received.eq_ignore_ascii_case(name))
            .map(|(_, value)| fold_spaces(value))
            .collect();
        if values.is_empty() {
            return Err(SignatureError::SignedHeaderAbsent(name.clone()));
        }
        header_block.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(path),
        canonical_query(query),
        header_block,
        names.join(";"),
        hex(&Sha256::digest(request.body))
    ))
}

/// Derives the signing key (secret → date → region → service → `aws4_request`) and signs the
/// string to sign built from `amz_date`, the credential scope and the canonical request.
/// Returns lowercase hex.
pub fn compute_signature(
    secret_key: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), date.as_bytes());
    let key = hmac_sha256(&key, region.as_bytes());
    let key = hmac_sha256(&key, service.as_bytes());
    let key = hmac_sha256(&key, b"aws4_request");
    hex(&hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// The canonical URI: the path with `.` and `..` segments resolved, then every byte outside the
/// unreserved set and `/` percent-encoded. An already percent-encoded path is thereby encoded a
/// second time, as SigV4 requires for every service but S3.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let normalized = format!("/{}", segments.join("/"));
    let mut encoded = String::new();
    for byte in normalized.bytes() {
        if byte == b'/' {
            encoded.push('/');
        } else {
            push_encoded(&mut encoded, byte);
        }
    }
    encoded
}

/// The canonical query string: each `name=value` pair decoded (a raw `+` reads as a space, as
/// AWS and aws-sigv4 read it), re-encoded with uppercase hex and only the unreserved set left
/// bare, sorted by name then value, joined by `&`. A pair without `=` gets an empty value.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = encode_component(&decode_query_component(name));
            let value = encode_component(&decode_query_component(value));
            (name, value)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-decodes one query component the way AWS does: `+` is a space, `%XX` is a byte, and
/// a `%` not followed by two hex digits stays a literal `%`.
pub fn decode_query_component(component: &str) -> Vec<u8> {
    let bytes = component.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let high = bytes
                    .get(index + 1)
                    .and_then(|b| char::from(*b).to_digit(16));
                let low = bytes
                    .get(index + 2)
                    .and_then(|b| char::from(*b).to_digit(16));
                if let (Some(high), Some(low)) = (high, low) {
                    // Two hex digits make one byte below 256.
                    decoded.push((high * 16 + low) as u8);
                    index += 3;
                    continue;
                }
                decoded.push(b'%');
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    decoded
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~`, with uppercase hex.
pub fn encode_component(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len());
    for &byte in bytes {
        push_encoded(&mut encoded, byte);
    }
    encoded
}

/// Formats a time as `YYYYMMDDTHHMMSSZ` (UTC), the `x-amz-date` form.
pub fn format_amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let in_day = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Parses `YYYYMMDDTHHMMSSZ` (UTC). `None` for any other shape or an impossible date.
pub fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let bytes = value.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = value.get(range)?;
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let seconds = days as u64 * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Finds a header by case-insensitive name; the first one wins.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(received, _)| received.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SignatureError> {
    let malformed = |detail: &str| SignatureError::MalformedAuthorization(detail.to_string());
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| malformed("no space after the algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(malformed(&format!(
            "algorithm {algorithm:?}, expected {ALGORITHM}"
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, field) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed(&format!("component {:?} has no '='", part.trim())))?;
        match name {
            "Credential" => credential = Some(field),
            "SignedHeaders" => signed = Some(field),
            "Signature" => signature = Some(field),
            other => return Err(malformed(&format!("unknown component {other:?}"))),
        }
    }
    let credential = credential.ok_or_else(|| malformed("no Credential"))?;
    let signed = signed.ok_or_else(|| malformed("no SignedHeaders"))?;
    let signature = signature.ok_or_else(|| malformed("no Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = parts[..] else {
        return Err(malformed(
            "Credential is not key/date/region/service/aws4_request",
        ));
    };
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers
        .iter()
        .any(|name| name.is_empty() || *name != name.to_ascii_lowercase())
    {
        return Err(malformed(
            "SignedHeaders must be lowercase names separated by ';'",
        ));
    }
    Ok(Authorization {
        access_key,
        scope_date: date,
        scope_region: region,
        scope_service: service,
        scope_terminator: terminator,
        signed_headers,
        signature,
    })
}

/// Trims a header value and folds each run of spaces inside it into one space.
fn fold_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn push_encoded(out: &mut String, byte: u8) {
    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
        out.push(char::from(byte));
    } else {
        out.push_str(&format!("%{byte:02X}"));
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length, so this arm is never taken.
        Err(_) => return Vec::new(),
    };
    Mac::update(&mut mac, data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
