//! The container credentials endpoint (wire.md §4 step 2): ECS task roles
//! (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`), EKS Pod Identity and Lambda SnapStart
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with an authorization token).
//!
//! Owns the allowed-host rule, the `Authorization` header (token file re-read on every fetch)
//! and the JSON answer. Never logs the token or the answer; never goes through a proxy or
//! follows a redirect, so the token only reaches the host that was checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::refresh::Fetch;
use super::{
    direct_bounded, read_answer, CredentialSettings, Credentials, CredentialsError, HttpContext,
};
use crate::logging::Secret;
use crate::timestamp::parse_rfc3339;

/// Where ECS serves task credentials; `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is a path on it.
pub(super) const RELATIVE_URI_BASE: &str = "http://169.254.170.2";

/// A checked endpoint URL and the variable it came from.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Endpoint {
    pub url: String,
    pub variable: &'static str,
    /// `scheme://host[:port]`, for log lines (the path may identify the task).
    pub origin: String,
}

impl Endpoint {
    /// The endpoint configured in `settings`: the relative URI wins over the full one. `None`
    /// when neither is set; an error when the full URI is not allowed.
    pub fn from_settings(
        settings: &CredentialSettings,
    ) -> Result<Option<Endpoint>, CredentialsError> {
        if let Some(relative) = &settings.container_relative_uri {
            let separator = if relative.starts_with('/') { "" } else { "/" };
            return Ok(Some(Endpoint {
                url: format!("{RELATIVE_URI_BASE}{separator}{relative}"),
                variable: "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                origin: RELATIVE_URI_BASE.to_string(),
            }));
        }
        match &settings.container_full_uri {
            Some(full) => check_full_uri(full).map(Some),
            None => Ok(None),
        }
    }

    pub fn describe(&self) -> String {
        format!("{} ({})", self.origin, self.variable)
    }
}

/// Applies the allowed-host rule to `AWS_CONTAINER_CREDENTIALS_FULL_URI`: any host over
/// `https://`; over `http://` only loopback (127.0.0.0/8, ::1), `localhost`, the ECS and EKS
/// link-local addresses 169.254.170.2 and 169.254.170.23, and fd00:ec2::23. The bearer token
/// must not cross a network in the clear.
pub(super) fn check_full_uri(full: &str) -> Result<Endpoint, CredentialsError> {
    const VARIABLE: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
    let invalid = |why: &str| {
        CredentialsError::Invalid(format!(
            "{VARIABLE} {why}; over http:// give a loopback address, localhost, 169.254.170.2, \
             169.254.170.23 or fd00:ec2::23, or use https://"
        ))
    };

    let lower = full.to_ascii_lowercase();
    let (secure, after_scheme) = if lower.starts_with("https://") {
        (true, &full["https://".len()..])
    } else if lower.starts_with("http://") {
        (false, &full["http://".len()..])
    } else {
        return Err(invalid("is not an http:// or https:// URL"));
    };
    let authority_end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    // Credentials in the URL itself are dropped from what we log.
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = host_of(host_port).ok_or_else(|| invalid("has no host"))?;
    let scheme = if secure { "https" } else { "http" };
    let origin = format!("{scheme}://{host_port}");

    if !secure && !is_allowed_plain_http_host(host) {
        return Err(invalid(&format!(
            "points at {origin}, which is not allowed"
        )));
    }
    Ok(Endpoint {
        url: full.to_string(),
        variable: VARIABLE,
        origin,
    })
}

/// The host of `host[:port]` or `[v6][:port]`, brackets removed.
fn host_of(host_port: &str) -> Option<&str> {
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

fn is_allowed_plain_http_host(host: &str) -> bool {
    const ECS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
    const EKS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 23);
    const EKS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback() || v4 == ECS || v4 == EKS,
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6 == EKS_V6,
        Err(_) => false,
    }
}

/// Where the `Authorization` value comes from.
#[derive(Clone, Debug)]
enum TokenSource {
    None,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: read on every fetch, since EKS rotates it.
    File(PathBuf),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Variable(Secret),
}

impl TokenSource {
    fn from_settings(settings: &CredentialSettings) -> TokenSource {
        match (&settings.container_token_file, &settings.container_token) {
            (Some(path), _) => TokenSource::File(path.clone()),
            (None, Some(token)) => TokenSource::Variable(token.clone()),
            (None, None) => TokenSource::None,
        }
    }

    /// The header value, or `None` to send no header. A file's trailing line break (as `echo`
    /// writes it) is dropped; any other CR or LF is refused, since it would split the header.
    fn read(&self) -> Result<Option<Secret>, CredentialsError> {
        let (token, origin) = match self {
            TokenSource::None => return Ok(None),
            TokenSource::Variable(token) => (
                token.expose().to_string(),
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
            ),
            TokenSource::File(path) => {
                let content = std::fs::read_to_string(path).map_err(|e| {
                    CredentialsError::Source(format!(
                        "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {e}",
                        path.display()
                    ))
                })?;
                let trimmed = content.strip_suffix('\n').unwrap_or(&content);
                let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
                (
                    trimmed.to_string(),
                    format!("the token in {}", path.display()),
                )
            }
        };
        check_token(&token, &origin)?;
        Ok((!token.is_empty()).then(|| Secret::new(token)))
    }
}

/// Refuses a token holding CR or LF. `origin` names the variable or file, never the value.
pub(super) fn check_token(token: &str, origin: &str) -> Result<(), CredentialsError> {
    if token.contains(['\r', '\n']) {
        return Err(CredentialsError::Invalid(format!(
            "{origin} contains a line break; give the token on one line"
        )));
    }
    Ok(())
}

/// Fetches from the container endpoint.
pub(super) struct ContainerCredentials {
    endpoint: Endpoint,
    token: TokenSource,
    agent: ureq::Agent,
    timeout: Duration,
}

impl ContainerCredentials {
    pub fn new(endpoint: Endpoint, settings: &CredentialSettings, http: &HttpContext) -> Self {
        ContainerCredentials {
            endpoint,
            token: TokenSource::from_settings(settings),
            agent: http.agent.clone(),
            timeout: http.timeout,
        }
    }
}

impl Fetch for ContainerCredentials {
    fn describe(&self) -> String {
        format!("container endpoint {}", self.endpoint.describe())
    }

    fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let token = self.token.read()?;
        let mut request = self
            .agent
            .get(&self.endpoint.url)
            .header("accept", "application/json");
        if let Some(token) = &token {
            request = request.header("authorization", token.expose());
        }
        let result = direct_bounded(request, self.timeout).call();
        let (status, body) = read_answer(result, "the container credentials endpoint")?;
        parse_answer(status, &body, "container")
    }
}

/// Reads the JSON both the container endpoint and instance metadata answer with:
/// `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` (RFC 3339). A `Code` other than
/// `Success` (instance metadata) is an error. Errors name fields, never values.
pub(super) fn parse_answer(
    status: u16,
    body: &str,
    provider: &'static str,
) -> Result<Credentials, CredentialsError> {
    let what = match provider {
        "imds" => "instance metadata",
        _ => "the container credentials endpoint",
    };
    let json: serde_json::Value = match serde_json::from_str(body) {
        Ok(json) => json,
        Err(_) if !(200..300).contains(&status) => {
            return Err(CredentialsError::Source(format!(
                "{what} answered {status}"
            )))
        }
        Err(e) => {
            return Err(CredentialsError::Source(format!(
                "{what} answered {status} with a body that is not JSON ({e})"
            )))
        }
    };
    let field = |name: &str| json.get(name).and_then(serde_json::Value::as_str);

    if !(200..300).contains(&status) {
        let code = field("code").or(field("Code")).unwrap_or("no code");
        let message = field("message")
            .or(field("Message"))
            .unwrap_or("no message");
        return Err(CredentialsError::Source(format!(
            "{what} answered {status}: {code}: {message}"
        )));
    }
    if let Some(code) = field("Code").filter(|c| *c != "Success") {
        return Err(CredentialsError::Source(format!(
            "{what} answered Code {code}"
        )));
    }

    let required = |name: &str| {
        field(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            CredentialsError::Source(format!("{what} answered {status} without {name}"))
        })
    };
    let access_key_id = required("AccessKeyId")?;
    let secret_access_key = required("SecretAccessKey")?;
    let expiry = match field("Expiration") {
        Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
            CredentialsError::Source(format!(
                "{what} answered an Expiration that is not an RFC 3339 time: \"{text}\""
            ))
        })?),
        None => None,
    };
    Ok(Credentials::new(
        access_key_id,
        secret_access_key,
        field("Token").filter(|t| !t.is_empty()).map(str::to_string),
        expiry,
        provider,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;
    use std::time::UNIX_EPOCH;

    fn settings(relative: Option<&str>, full: Option<&str>) -> CredentialSettings {
        CredentialSettings {
            container_relative_uri: relative.map(str::to_string),
            container_full_uri: full.map(str::to_string),
            ..CredentialSettings::default()
        }
    }

    #[test]
    fn relative_uri_is_a_path_on_the_ecs_address_and_wins_over_full_uri() {
        let cases = [
            (
                Some("/v2/credentials/abc"),
                None,
                "http://169.254.170.2/v2/credentials/abc",
            ),
            (
                Some("v2/credentials/abc"),
                None,
                "http://169.254.170.2/v2/credentials/abc",
            ),
            (
                Some("/v2/x"),
                Some("http://127.0.0.1:9/creds"),
                "http://169.254.170.2/v2/x",
            ),
            (
                None,
                Some("http://127.0.0.1:9/creds"),
                "http://127.0.0.1:9/creds",
            ),
        ];
        for (relative, full, expected) in cases {
            let endpoint = Endpoint::from_settings(&settings(relative, full))
                .unwrap()
                .unwrap();
            assert_eq!(endpoint.url, expected);
        }
        assert_eq!(Endpoint::from_settings(&settings(None, None)), Ok(None));
    }

    #[test]
    fn allowed_host_rule() {
        let cases = [
            ("http://127.0.0.1:9001/2021-04-23/credentials", true),
            ("http://127.255.3.4/creds", true),
            ("http://[::1]:8080/creds", true),
            ("http://localhost/creds", true),
            ("http://LOCALHOST:80/creds", true),
            ("HTTP://169.254.170.2/v2/credentials", true),
            ("http://169.254.170.23/v1/credentials", true),
            ("http://[fd00:ec2::23]/v1/credentials", true),
            ("http://[fd00:0ec2:0:0:0:0:0:23]:80/v1", true),
            ("http://user:pass@127.0.0.1/creds", true),
            ("https://creds.example.com/creds", true),
            ("https://10.0.0.8:8443/creds", true),
            ("http://10.0.0.8/creds", false),
            ("http://169.254.169.254/latest/meta-data", false),
            ("http://169.254.170.3/creds", false),
            ("http://[fd00:ec2::254]/creds", false),
            ("http://[::ffff:127.0.0.1]/creds", false),
            ("http://localhost.example.com/creds", false),
            ("http://127.0.0.1.example.com/creds", false),
            ("http://example.com@10.0.0.8/creds", false),
            ("http://0.0.0.0/creds", false),
            ("ftp://127.0.0.1/creds", false),
            ("127.0.0.1:9001/creds", false),
            ("http:///creds", false),
        ];
        for (uri, allowed) in cases {
            let result = check_full_uri(uri);
            assert_eq!(result.is_ok(), allowed, "{uri}: {result:?}");
            if let Err(error) = result {
                assert!(
                    error
                        .to_string()
                        .contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn origin_for_logs_drops_the_path_and_any_user_info() {
        let endpoint = check_full_uri("http://user:pw@127.0.0.1:9/v1/credentials/secret-id");
        let endpoint = endpoint.unwrap();
        assert_eq!(endpoint.origin, "http://127.0.0.1:9");
        assert!(!endpoint.describe().contains("secret-id"));
        assert!(!endpoint.describe().contains("pw"));
    }

    #[test]
    fn tokens_with_line_breaks_are_refused_without_echoing_them() {
        for token in ["abc\r\nX-Injected: 1", "abc\ndef", "abc\r", "\nabc"] {
            let error = check_token(token, "AWS_CONTAINER_AUTHORIZATION_TOKEN").unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
                "{message}"
            );
            assert!(!message.contains("abc"), "{message}");
        }
        assert_eq!(check_token("Bearer abc+/=", "x"), Ok(()));
        let variable = TokenSource::Variable(Secret::new("one\ntwo"));
        assert!(matches!(variable.read(), Err(CredentialsError::Invalid(_))));
    }

    #[test]
    fn token_file_wins_over_the_variable_and_loses_one_trailing_line_break() {
        let dir = std::env::temp_dir().join(format!("appconfig-lite-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("from-file", Ok(Some("from-file"))),
            ("from-file\n", Ok(Some("from-file"))),
            ("from-file\r\n", Ok(Some("from-file"))),
            ("from-file\n\n", Err(())),
            ("two\nlines", Err(())),
            ("", Ok(None)),
        ];
        for (index, (content, expected)) in cases.into_iter().enumerate() {
            let path = dir.join(format!("token-{index}"));
            std::fs::write(&path, content).unwrap();
            let settings = CredentialSettings {
                container_token_file: Some(path),
                container_token: Some(Secret::new("from-variable")),
                ..CredentialSettings::default()
            };
            let read = TokenSource::from_settings(&settings).read();
            let read = read
                .map(|t| t.map(|t| t.expose().to_string()))
                .map_err(|_| ());
            assert_eq!(read, expected.map(|t| t.map(str::to_string)), "{content:?}");
        }
        let missing = TokenSource::File(dir.join("missing")).read();
        assert!(matches!(missing, Err(CredentialsError::Source(m)) if m.contains("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn answers_are_read_with_or_without_token_and_fractions() {
        let body = r#"{"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t",
            "Token":"tok+/=","Expiration":"2026-12-04T15:00:00.120Z","RoleArn":"ignored"}"#;
        let credentials = parse_answer(200, body, "container").unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "s3cr3t");
        assert_eq!(credentials.session_token(), Some("tok+/="));
        assert_eq!(
            credentials.expiry(),
            Some(UNIX_EPOCH + Duration::new(1_796_396_400, 120_000_000))
        );

        let body = r#"{"Code":"Success","AccessKeyId":"A","SecretAccessKey":"S",
            "Expiration":"2026-12-04T16:00:00+01:00"}"#;
        let credentials = parse_answer(200, body, "imds").unwrap();
        assert_eq!(credentials.session_token(), None);
        assert_eq!(
            credentials.expiry(),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_396_400))
        );
    }

    #[test]
    fn unusable_answers_are_errors_that_quote_no_secret() {
        let cases = [
            (
                200,
                r#"{"SecretAccessKey":"s3cr3t"}"#,
                "without AccessKeyId",
            ),
            (200, r#"{"AccessKeyId":"A"}"#, "without SecretAccessKey"),
            (
                200,
                r#"{"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Expiration":"tomorrow"}"#,
                "\"tomorrow\"",
            ),
            (200, "s3cr3t", "not JSON"),
            (
                401,
                r#"{"code":"Unauthorized","message":"bad token"}"#,
                "401: Unauthorized: bad token",
            ),
            (500, "s3cr3t", "answered 500"),
            (
                200,
                r#"{"Code":"Failed","AccessKeyId":"A","SecretAccessKey":"s3cr3t"}"#,
                "Failed",
            ),
        ];
        for (status, body, expected) in cases {
            let message = parse_answer(status, body, "imds").unwrap_err().to_string();
            assert!(message.contains(expected), "{body}: {message}");
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }
}
