//! Parsers for single setting values: ports, hosts, durations, levels, booleans, the prefetch
//! list, the role, the proxy and the access token. Each names the variable and the accepted forms
//! in its error; `settings` decides which variable is read.

use super::*;

pub(super) fn parse_port(found: &Found<'_>) -> Result<u16, SettingsError> {
    found
        .text()
        .parse::<u16>()
        .map_err(|_| found.invalid("give a port number from 0 to 65535 (0 picks a free port)"))
}

pub(super) fn parse_host(found: &Found<'_>) -> Result<HttpHost, SettingsError> {
    let text = found.text();
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(HttpHost::Localhost);
    }
    if text.eq_ignore_ascii_case("all") {
        return Ok(HttpHost::All);
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    unbracketed
        .parse::<IpAddr>()
        .map(HttpHost::Address)
        .map_err(|_| {
            found.invalid("give localhost, all, or an IP address such as 127.0.0.1 or ::1")
        })
}

pub(super) const POLL_INTERVAL_FORMS: &str = "such as 45, 45s, 5m or 1h";
pub(super) const REQUEST_TIMEOUT_FORMS: &str = "such as 3000, 3000ms or 5s";

/// The refresh period: a bare number is seconds; `s`, `m` and `h` suffixes, any case. From 1 s
/// to 24 h (configuration tokens die after 24 h, wire.md §2).
pub(super) fn parse_poll_interval(found: &Found<'_>) -> Result<Duration, SettingsError> {
    let period = parse_duration(
        found.text(),
        Unit::Seconds,
        &[Unit::Seconds, Unit::Minutes, Unit::Hours],
    )
    .ok_or_else(|| found.invalid(&format!("give seconds, {POLL_INTERVAL_FORMS}")))?;
    if period.is_zero() || period > LONGEST_POLL_INTERVAL {
        return Err(found.invalid(&format!(
            "give a period from 1 second to 24 hours, {POLL_INTERVAL_FORMS}"
        )));
    }
    Ok(period)
}

/// The bound on one call to AWS: a bare number is milliseconds; `ms`, `s` and `m` suffixes, any
/// case. From 1 ms to 5 minutes.
pub(super) fn parse_request_timeout(found: &Found<'_>) -> Result<Duration, SettingsError> {
    let timeout = parse_duration(
        found.text(),
        Unit::Milliseconds,
        &[Unit::Milliseconds, Unit::Seconds, Unit::Minutes],
    )
    .ok_or_else(|| found.invalid(&format!("give milliseconds, {REQUEST_TIMEOUT_FORMS}")))?;
    if timeout.is_zero() || timeout > LONGEST_REQUEST_TIMEOUT {
        return Err(found.invalid(&format!(
            "give a timeout from 1 ms to 5 minutes, {REQUEST_TIMEOUT_FORMS}"
        )));
    }
    Ok(timeout)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Unit {
    fn from_suffix(suffix: &str) -> Option<Unit> {
        match suffix.to_ascii_lowercase().as_str() {
            "ms" => Some(Unit::Milliseconds),
            "s" => Some(Unit::Seconds),
            "m" => Some(Unit::Minutes),
            "h" => Some(Unit::Hours),
            _ => None,
        }
    }

    fn milliseconds(self) -> u64 {
        match self {
            Unit::Milliseconds => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
        }
    }
}

/// Digits, optional spaces, an optional unit from `allowed`. A number too large for a
/// `Duration` in milliseconds becomes `Duration::MAX`, which every caller refuses as out of
/// range (it is well formed, just too long).
fn parse_duration(text: &str, bare: Unit, allowed: &[Unit]) -> Option<Duration> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let suffix = suffix.trim_start();
    let unit = if suffix.is_empty() {
        bare
    } else {
        Unit::from_suffix(suffix)?
    };
    if !allowed.contains(&unit) {
        return None;
    }
    let milliseconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit.milliseconds()));
    Some(milliseconds.map_or(Duration::MAX, Duration::from_millis))
}

pub(super) fn parse_max_connections(found: &Found<'_>) -> Result<usize, SettingsError> {
    match found.text().parse::<usize>() {
        Ok(count) if (1..=MOST_CONNECTIONS).contains(&count) => Ok(count),
        _ => Err(found.invalid("give a whole number from 1 to 1024")),
    }
}

/// `trace`, `debug`, `info`, `warn` (or `warning`), `error`, `fatal` (as `error`), `none` (or
/// `off`), in any case.
pub(super) fn parse_log_level(found: &Found<'_>) -> Result<LevelFilter, SettingsError> {
    match found.text().to_ascii_lowercase().as_str() {
        "trace" => Ok(LevelFilter::Trace),
        "debug" => Ok(LevelFilter::Debug),
        "info" => Ok(LevelFilter::Info),
        "warn" | "warning" => Ok(LevelFilter::Warn),
        "error" | "fatal" => Ok(LevelFilter::Error),
        "none" | "off" => Ok(LevelFilter::Off),
        _ => Err(found.invalid("give one of trace, debug, info, warn, error, fatal or none")),
    }
}

/// `true`/`false` in any case, or `1`/`0`.
pub(super) fn parse_bool(found: &Found<'_>) -> Result<bool, SettingsError> {
    let text = found.text();
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Ok(false)
    } else {
        Err(found.invalid("give true or false"))
    }
}

/// `host:port`, as Lambda sets it (`127.0.0.1:9001`); a scheme or path would break every URL
/// built from it.
pub(super) fn parse_runtime_api(found: &Found<'_>) -> Result<String, SettingsError> {
    let text = found.text();
    let well_formed = text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(['/', ' ']) && port.parse::<u16>().is_ok()
    });
    if well_formed {
        Ok(text.to_string())
    } else {
        Err(found.invalid("give host:port, such as 127.0.0.1:9001"))
    }
}

/// Comma-separated items, each `app:env:profile` or
/// `/applications/APP/environments/ENV/configurations/PROFILE` (segments percent-decoded, as the
/// HTTP route decodes them, so a prefetched key matches the key of a later request). Blank items
/// are skipped and repeated keys kept once.
pub(super) fn parse_prefetch_list(found: &Found<'_>) -> Result<Vec<ConfigKey>, SettingsError> {
    let mut keys: Vec<ConfigKey> = Vec::new();
    for item in found
        .text()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let key = parse_prefetch_item(item).map_err(|problem| SettingsError {
            variable: found.name.clone(),
            message: format!("{} item {:?} {problem}", found.name, shorten(item)),
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

pub(super) fn parse_prefetch_item(item: &str) -> Result<ConfigKey, &'static str> {
    const MALFORMED: &str = "is malformed; give app:env:profile or \
        /applications/APP/environments/ENV/configurations/PROFILE, separated by commas";
    const TOO_LONG: &str = "has an empty or over-long identifier; each of application, \
        environment and profile is 1 to 128 bytes";

    let parts: Vec<String> = if let Some(path) = item.strip_prefix('/') {
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["applications", app, "environments", env, "configurations", profile] => {
                let decoded: Option<Vec<String>> = [app, env, profile]
                    .iter()
                    .map(|segment| percent_decode(segment))
                    .collect();
                decoded.ok_or(MALFORMED)?
            }
            _ => return Err(MALFORMED),
        }
    } else {
        let segments: Vec<&str> = item.split(':').collect();
        if segments.len() != 3 {
            return Err(MALFORMED);
        }
        segments.into_iter().map(str::to_string).collect()
    };
    if parts
        .iter()
        .any(|part| part.is_empty() || part.len() > LONGEST_IDENTIFIER_BYTES)
    {
        return Err(TOO_LONG);
    }
    let [application, environment, profile]: [String; 3] =
        parts.try_into().map_err(|_| MALFORMED)?;
    Ok(ConfigKey {
        application,
        environment,
        profile,
    })
}

/// `ROLE_ARN`, with `ROLE_EXTERNAL_ID` and `ROLE_SESSION_NAME` meaningful only beside it.
pub(super) fn read_role(reader: &mut Reader<'_>) -> Result<Option<RoleSettings>, SettingsError> {
    let arn = reader.agent_setting(&["ROLE_ARN"]);
    let external_id = reader.agent_setting(&["ROLE_EXTERNAL_ID"]);
    let session_name = reader.agent_setting(&["ROLE_SESSION_NAME"]);

    let Some(arn) = arn else {
        return match external_id.or(session_name) {
            Some(orphan) => Err(SettingsError {
                message: format!(
                    "{} is set but ROLE_ARN is not; set ROLE_ARN to the role to assume, or \
                     unset {}",
                    orphan.name, orphan.name
                ),
                variable: orphan.name,
            }),
            None => Ok(None),
        };
    };

    if !is_role_arn(arn.text()) {
        return Err(arn.invalid("give a role ARN such as arn:aws:iam::123456789012:role/name"));
    }
    let external_id = match external_id {
        Some(found) => {
            let text = found.text();
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
            if !EXTERNAL_ID_CHARS.contains(&text.chars().count()) || !text.chars().all(allowed) {
                return Err(found.invalid(
                    "give 2 to 1224 characters of letters, digits and _ + = , . @ : / -",
                ));
            }
            Some(text.to_string())
        }
        None => None,
    };
    let session_name = match session_name {
        Some(found) => {
            let text = found.text();
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
            if !SESSION_NAME_CHARS.contains(&text.chars().count()) || !text.chars().all(allowed) {
                return Err(
                    found.invalid("give 2 to 64 characters of letters, digits and _ + = , . @ -")
                );
            }
            Some(text.to_string())
        }
        None => None,
    };
    Ok(Some(RoleSettings {
        arn: arn.text().to_string(),
        external_id,
        session_name,
    }))
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`, checked loosely: STS gives the precise verdict.
pub(super) fn is_role_arn(text: &str) -> bool {
    let fields: Vec<&str> = text.splitn(6, ':').collect();
    ROLE_ARN_BYTES.contains(&text.len())
        && matches!(fields.as_slice(), ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty() && !account.is_empty() && resource.len() > "role/".len()
                && resource.starts_with("role/"))
}

/// `PROXY_URL` and `PROXY_HEADERS`. Header values cannot contain commas (the separator) and are
/// never shown in messages: they often carry proxy credentials.
pub(super) fn read_proxy(reader: &mut Reader<'_>) -> Result<Option<ProxySettings>, SettingsError> {
    let url = reader.agent_setting(&["PROXY_URL"]);
    let headers = reader.agent_setting(&["PROXY_HEADERS"]);

    let Some(url) = url else {
        return match headers {
            Some(headers) => Err(SettingsError {
                message: format!(
                    "{} is set but PROXY_URL is not; set PROXY_URL to the proxy, or unset {}",
                    headers.name, headers.name
                ),
                variable: headers.name,
            }),
            None => Ok(None),
        };
    };

    let url_text = url.text();
    if !has_http_authority(url_text) {
        return Err(SettingsError {
            variable: url.name.clone(),
            message: format!(
                "{} is {:?}; give a URL starting with http:// or https://, such as \
                 http://proxy.internal:3128",
                url.name,
                mask_url_userinfo(url_text)
            ),
        });
    }
    let headers = match headers {
        Some(found) => parse_proxy_headers(&found)?,
        None => Vec::new(),
    };
    Ok(Some(ProxySettings {
        url: url_text.to_string(),
        headers,
    }))
}

pub(super) fn parse_proxy_headers(
    found: &Found<'_>,
) -> Result<Vec<(String, Secret)>, SettingsError> {
    let fail = |problem: String| SettingsError {
        variable: found.name.clone(),
        message: format!(
            "{} {problem}; give headers as \"Name: value, Name2: value2\"",
            found.name
        ),
    };
    let mut headers = Vec::new();
    let items = found
        .text()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty());
    for (position, item) in items.enumerate() {
        let Some((name, value)) = item.split_once(':') else {
            return Err(fail(format!(
                "item {} has no \":\" (values are not shown)",
                position + 1
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        // Not even the name is shown: after a misplaced comma it may be part of a value.
        if !is_header_name(name) {
            return Err(fail(format!(
                "item {} does not start with a valid HTTP header name (values are not shown)",
                position + 1
            )));
        }
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(fail(format!(
                "value of header {name:?} is empty or holds a control character"
            )));
        }
        headers.push((name.to_string(), Secret::new(value)));
    }
    Ok(headers)
}

/// RFC 9110 token characters.
pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Fails closed: a set but empty token is an error rather than "no authentication"; whitespace
/// could never match a `Bearer` value, so it is refused too. The value is never shown.
pub(super) fn read_access_token(reader: &mut Reader<'_>) -> Result<Option<Secret>, SettingsError> {
    let Some(found) = reader.agent_setting_with(&["ACCESS_TOKEN"], true) else {
        return Ok(None);
    };
    let fail = |problem: &str| SettingsError {
        variable: found.name.clone(),
        message: format!(
            "{} {problem}; give the token callers send after \"Authorization: Bearer \", or \
             unset {}",
            found.name, found.name
        ),
    };
    if found.value.is_empty() {
        return Err(fail("is empty"));
    }
    if found
        .value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(fail(
            "contains whitespace or control characters (the value is not shown)",
        ));
    }
    Ok(Some(Secret::new(found.value)))
}
