//! The AppConfigData client: StartConfigurationSession and GetLatestConfiguration over ureq,
//! signed by `signing`, with failures classified once (wire.md §2).
//!
//! It owns the outbound connection bound (`MAX_CONNECTIONS`) and nothing else: it keeps no
//! cache and knows nothing of HTTP routes. `cache` calls it; `credentials` gives it keys.

use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::cache::ConfigKey;
use crate::credentials::{CredentialSource, CredentialsError};
use crate::logging::Secret;
use crate::signing::{self, RequestToSign, APPCONFIG_SERVICE};

/// Largest configuration accepted (quality.md: far above AppConfig's own 1 MB-class limit, so
/// only a broken or hostile endpoint reaches it).
pub const MAX_CONFIGURATION_BYTES: u64 = 16 * 1024 * 1024;

/// Longest poll interval the service may advise or be asked for: AppConfigData's own bound on
/// `RequiredMinimumPollIntervalInSeconds` (wire.md §2), and the life of a token.
const LONGEST_POLL_INTERVAL_SECONDS: u64 = 86_400;

/// Most bytes of an error body kept; AWS error bodies are a few hundred bytes.
const MAX_SMALL_BODY_BYTES: u64 = 64 * 1024;

/// A single-use configuration token (wire.md §2). Masked in logs.
#[derive(Clone, Debug)]
pub struct SessionToken(Secret);

impl SessionToken {
    pub fn new(value: impl Into<String>) -> Self {
        SessionToken(Secret::new(value))
    }
}

/// What GetLatestConfiguration answered.
#[derive(Debug)]
pub struct Poll {
    /// The token for the next call; always replaces the one just used.
    pub next_token: SessionToken,
    /// `Next-Poll-Interval-In-Seconds`, when the service sent a valid one, at most 24 h.
    pub advised_interval: Option<Duration>,
    /// `None` when the configuration is unchanged (empty body or `204`).
    pub content: Option<Content>,
}

/// A configuration as the service returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub version: Option<String>,
}

/// A failed call to AppConfigData, classified once (wire.md §2, product.md §2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// `ThrottlingException` / 429.
    Throttled { message: String },
    /// `BadRequestException` on a configuration token: expired, corrupted or already used.
    TokenRejected { message: String },
    /// The front end refused the call: `AccessDenied`, `UnrecognizedClient`, `ExpiredToken`,
    /// `InvalidSignature` (403).
    Denied { code: String, message: String },
    /// `ResourceNotFoundException` (404).
    NotFound { message: String },
    /// Another 4xx: the request itself was refused.
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// 5xx from the service.
    ServerError {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer in time; `phase` names the step that ran out of time.
    Timeout { phase: &'static str },
    /// Refused, reset, TLS or proxy failure.
    Connection { message: String },
    /// An answer that breaks wire.md §2 (missing token header, body not JSON).
    Malformed { message: String },
    /// A configuration over [`MAX_CONFIGURATION_BYTES`].
    TooLarge,
    /// No credentials to sign with, or the role could not be assumed.
    Credentials(CredentialsError),
    /// The request could not be built or signed (a bug or an unusable endpoint URL).
    Internal { message: String },
}

impl UpstreamError {
    /// Transient failures are retried with backoff; the rest wait for the next interval.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::Throttled { .. }
                | UpstreamError::ServerError { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Connection { .. }
                | UpstreamError::Malformed { .. }
        )
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Throttled { message } => write!(f, "ThrottlingException: {message}"),
            UpstreamError::TokenRejected { message } => {
                write!(f, "BadRequestException: {message}")
            }
            UpstreamError::Denied { code, message }
            | UpstreamError::Rejected { code, message, .. }
            | UpstreamError::ServerError { code, message, .. } => write!(f, "{code}: {message}"),
            UpstreamError::NotFound { message } => {
                write!(f, "ResourceNotFoundException: {message}")
            }
            UpstreamError::Timeout { phase } => {
                write!(f, "Timeout: AppConfigData did not answer in time ({phase})")
            }
            UpstreamError::Connection { message } => {
                write!(
                    f,
                    "ConnectionFailure: AppConfigData could not be reached: {message}"
                )
            }
            UpstreamError::Malformed { message } => {
                write!(f, "MalformedResponse: AppConfigData answered {message}")
            }
            UpstreamError::TooLarge => write!(
                f,
                "ConfigurationTooLarge: the configuration is over {MAX_CONFIGURATION_BYTES} bytes"
            ),
            UpstreamError::Credentials(e) => write!(f, "{e}"),
            UpstreamError::Internal { message } => write!(f, "InternalFailure: {message}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Settings the client needs, taken from `Settings` by `lifecycle`.
pub struct UpstreamConfig {
    /// Base URL, no trailing slash.
    pub endpoint: String,
    pub region: String,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub proxy: Option<String>,
}

/// The AppConfigData client. Cheap to share behind an `Arc`.
pub struct Upstream {
    agent: ureq::Agent,
    endpoint: String,
    region: String,
    credentials: Arc<dyn CredentialSource>,
    slots: ConnectionSlots,
}

impl Upstream {
    /// Builds the client. Fails only on an unusable proxy URL.
    pub fn new(
        config: &UpstreamConfig,
        credentials: Arc<dyn CredentialSource>,
    ) -> Result<Self, UpstreamError> {
        let agent = http_agent(
            config.request_timeout,
            config.max_connections,
            &config.proxy,
        )?;
        Ok(Upstream {
            agent,
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            credentials,
            slots: ConnectionSlots::new(config.max_connections),
        })
    }

    /// StartConfigurationSession for `key`, asking for `min_poll_interval` (clamped to
    /// 15..=86400 s, the range the service accepts).
    pub fn start_session(
        &self,
        key: &ConfigKey,
        min_poll_interval: Duration,
    ) -> Result<SessionToken, UpstreamError> {
        let body = serde_json::json!({
            "ApplicationIdentifier": key.application,
            "EnvironmentIdentifier": key.environment,
            "ConfigurationProfileIdentifier": key.profile,
            "RequiredMinimumPollIntervalInSeconds":
                min_poll_interval.as_secs().clamp(15, LONGEST_POLL_INTERVAL_SECONDS),
        })
        .to_string();
        let url = format!("{}/configurationsessions", self.endpoint);
        // Sending it again after a reset costs at most an unused session.
        let answer = self.call(
            "StartConfigurationSession",
            "POST",
            &url,
            body.as_bytes(),
            true,
        )?;
        if !(200..300).contains(&answer.status) {
            return Err(classify_error(&answer));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&answer.body).map_err(|_| UpstreamError::Malformed {
                message: "a session body that is not JSON".into(),
            })?;
        match json
            .get("InitialConfigurationToken")
            .and_then(|t| t.as_str())
        {
            Some(token) if !token.is_empty() => Ok(SessionToken::new(token)),
            _ => Err(UpstreamError::Malformed {
                message: "a session without InitialConfigurationToken".into(),
            }),
        }
    }

    /// GetLatestConfiguration with `token`, which is spent whatever the outcome. A connection
    /// reset is returned as `Connection`, not retried with the same token.
    pub fn latest(&self, token: &SessionToken) -> Result<Poll, UpstreamError> {
        let url = format!(
            "{}/configuration?configuration_token={}",
            self.endpoint,
            percent_encode_query_value(token.0.expose())
        );
        // Never sent again after a reset: the service may have received the single-use token
        // (wire.md §2); the caller starts a new session instead.
        let answer = self.call("GetLatestConfiguration", "GET", &url, b"", false)?;
        if !(200..300).contains(&answer.status) {
            return Err(classify_error(&answer));
        }
        let next_token = match answer.header("next-poll-configuration-token") {
            Some(token) if !token.is_empty() => SessionToken::new(token),
            _ => {
                return Err(UpstreamError::Malformed {
                    message: "without a Next-Poll-Configuration-Token header".into(),
                })
            }
        };
        // Capped, so that the cache can add it to an `Instant` whatever the service sent.
        let advised_interval = answer
            .header("next-poll-interval-in-seconds")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|seconds| Duration::from_secs(seconds.min(LONGEST_POLL_INTERVAL_SECONDS)));
        let content = if answer.status == 204 || answer.body.is_empty() {
            None
        } else {
            Some(Content {
                content_type: answer
                    .header("content-type")
                    .filter(|v| !v.is_empty())
                    .unwrap_or("application/octet-stream")
                    .to_string(),
                version: answer
                    .header("version-label")
                    .filter(|v| !v.is_empty())
                    .map(str::to_string),
                bytes: answer.body,
            })
        };
        Ok(Poll {
            next_token,
            advised_interval,
            content,
        })
    }

    /// One signed call. A 403 `ExpiredTokenException` makes the credentials be fetched again
    /// and the call be made once more; so does a reset on a pooled connection that a thaw or
    /// an idle timeout killed (product.md §4), when `resend_after_reset` allows it.
    fn call(
        &self,
        operation: &'static str,
        method: &str,
        url: &str,
        body: &[u8],
        resend_after_reset: bool,
    ) -> Result<Answer, UpstreamError> {
        let mut retried_credentials = false;
        let mut retried_connection = false;
        loop {
            let started = Instant::now();
            let result = self.send_once(method, url, body);
            match &result {
                Ok(answer) => log::debug!(
                    "{operation}: status {} in {} ms",
                    answer.status,
                    started.elapsed().as_millis()
                ),
                Err(SendFailure::Reset(e) | SendFailure::Final(e)) => {
                    log::debug!(
                        "{operation}: {e} after {} ms",
                        started.elapsed().as_millis()
                    )
                }
            }
            match result {
                Ok(answer)
                    if answer.status == 403
                        && error_code(&answer) == "ExpiredTokenException"
                        && !retried_credentials =>
                {
                    retried_credentials = true;
                    self.credentials.invalidate();
                }
                Err(SendFailure::Reset(_)) if resend_after_reset && !retried_connection => {
                    retried_connection = true
                }
                Ok(answer) => return Ok(answer),
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    fn send_once(&self, method: &str, url: &str, body: &[u8]) -> Result<Answer, SendFailure> {
        // Wait for a connection slot before signing: a signature made before a long wait could
        // be older than the five minutes AWS accepts (wire.md §5).
        let _slot = self.slots.acquire();
        let credentials = self
            .credentials
            .credentials()
            .map_err(UpstreamError::Credentials)?;
        let content_type: &[(&str, &str)] = if method == "POST" {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let request = RequestToSign {
            method,
            url,
            headers: content_type,
            body,
        };
        let signed = signing::sign_request(
            &request,
            &credentials,
            &self.region,
            APPCONFIG_SERVICE,
            SystemTime::now(),
        )
        .map_err(|e| UpstreamError::Internal {
            message: e.to_string(),
        })?;

        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in content_type.iter().copied() {
            builder = builder.header(name, value);
        }
        for (name, value) in &signed {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(body.to_vec())
            .map_err(|e| UpstreamError::Internal {
                message: format!("bad request: {e}"),
            })?;

        let response = self.agent.run(request).map_err(SendFailure::from_ureq)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|v| (name.as_str().to_string(), v.to_string()))
            })
            .collect();
        let limit = if (200..300).contains(&status) {
            MAX_CONFIGURATION_BYTES
        } else {
            MAX_SMALL_BODY_BYTES
        };
        let mut body = Vec::new();
        let read = response
            .into_body()
            .into_reader()
            .take(limit + 1)
            .read_to_end(&mut body);
        if let Err(e) = read {
            // The request reached the service (a status came back), so its token is spent:
            // never resend it, whatever broke the body.
            return Err(SendFailure::Final(SendFailure::from_io(e).into()));
        }
        if body.len() as u64 > limit {
            if (200..300).contains(&status) {
                return Err(SendFailure::Final(UpstreamError::TooLarge));
            }
            // An error answer is read only for its name and message; a long one (a front
            // end's error page) is cut, and the status and `x-amzn-ErrorType` still classify it.
            body.truncate(MAX_SMALL_BODY_BYTES as usize);
        }
        // The buffer grew by doubling; the cache keeps it for a whole version, so give back the
        // slack (quality.md: cached data may cost at most 1.2 × its size).
        body.shrink_to_fit();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Builds the ureq agent for AWS calls: AWS error bodies readable (status is not an error),
/// every call bounded by the request timeout, at most `max_connections` kept idle, and the
/// proxy only when configured (never taken from the environment behind our back).
pub fn http_agent(
    timeout: Duration,
    max_connections: usize,
    proxy: &Option<String>,
) -> Result<ureq::Agent, UpstreamError> {
    let proxy = match proxy {
        Some(url) => Some(ureq::Proxy::new(url).map_err(|e| UpstreamError::Internal {
            message: format!("PROXY_URL cannot be used: {e}"),
        })?),
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_idle_connections(max_connections)
        .max_idle_connections_per_host(max_connections)
        .max_redirects(0)
        .proxy(proxy)
        .user_agent(concat!("appconfig-lite/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.new_agent())
}

/// Percent-encodes a query value: everything but SigV4's unreserved set, uppercase hex, so a
/// token's `+`, `/` and `=` go out as `%2B`, `%2F`, `%3D` and are signed the same way
/// (wire.md §5).
pub fn percent_encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A raw answer: status, headers (names lowercase), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why one send failed: a reset (worth one retry on a fresh connection) or anything else.
enum SendFailure {
    Reset(UpstreamError),
    Final(UpstreamError),
}

impl SendFailure {
    fn from_ureq(error: ureq::Error) -> SendFailure {
        match error {
            ureq::Error::Io(e) => SendFailure::from_io(e),
            ureq::Error::Timeout(phase) => SendFailure::Final(UpstreamError::Timeout {
                phase: timeout_phase(phase),
            }),
            other => SendFailure::Final(UpstreamError::Connection {
                message: other.to_string(),
            }),
        }
    }

    fn from_io(error: io::Error) -> SendFailure {
        let connection = UpstreamError::Connection {
            message: error.to_string(),
        };
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => SendFailure::Reset(connection),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                SendFailure::Final(UpstreamError::Timeout {
                    phase: "reading the answer",
                })
            }
            _ => match error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            {
                Some(ureq::Error::Timeout(phase)) => SendFailure::Final(UpstreamError::Timeout {
                    phase: timeout_phase(*phase),
                }),
                _ => SendFailure::Final(connection),
            },
        }
    }
}

impl From<UpstreamError> for SendFailure {
    fn from(error: UpstreamError) -> Self {
        SendFailure::Final(error)
    }
}

impl From<SendFailure> for UpstreamError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::Reset(e) | SendFailure::Final(e) => e,
        }
    }
}

fn timeout_phase(phase: ureq::Timeout) -> &'static str {
    match phase {
        ureq::Timeout::Resolve => "resolving the host",
        ureq::Timeout::Connect => "connecting",
        ureq::Timeout::SendRequest | ureq::Timeout::SendBody => "sending the request",
        ureq::Timeout::RecvResponse => "waiting for the answer",
        ureq::Timeout::RecvBody => "reading the answer",
        _ => "the whole call",
    }
}

/// The error name of wire.md §2: `x-amzn-ErrorType`, else the body's `code`/`Code`/`__type`,
/// cut at the first `:` and after the last `#`.
fn error_code(answer: &Answer) -> String {
    let raw = answer
        .header("x-amzn-errortype")
        .map(str::to_string)
        .or_else(|| {
            let json: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
            ["code", "Code", "__type"]
                .iter()
                .find_map(|k| json.get(*k).and_then(|v| v.as_str()).map(str::to_string))
        });
    let raw = raw.unwrap_or_default();
    let before_colon = raw.split(':').next().unwrap_or_default();
    before_colon
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn error_message(answer: &Answer) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    let message = json.as_ref().and_then(|json| {
        ["Message", "message"]
            .iter()
            .find_map(|k| json.get(*k).and_then(|v| v.as_str()))
    });
    match message {
        Some(m) => m.chars().filter(|c| !c.is_control()).take(512).collect(),
        None => format!("AppConfigData answered status {}", answer.status),
    }
}

fn classify_error(answer: &Answer) -> UpstreamError {
    let mut code = error_code(answer);
    let message = error_message(answer);
    let status = answer.status;
    if code.is_empty() {
        code = match status {
            400 => "BadRequestException",
            403 => "AccessDeniedException",
            404 => "ResourceNotFoundException",
            429 => "ThrottlingException",
            _ if status >= 500 => "InternalServerException",
            _ => "UnknownError",
        }
        .to_string();
    }
    match (status, code.as_str()) {
        (_, "ThrottlingException") | (429, _) => UpstreamError::Throttled { message },
        (_, "ResourceNotFoundException") => UpstreamError::NotFound { message },
        (400, "BadRequestException") if is_token_problem(answer) => {
            UpstreamError::TokenRejected { message }
        }
        (403, _)
        | (
            _,
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException",
        ) => UpstreamError::Denied { code, message },
        (500.., _) => UpstreamError::ServerError {
            status,
            code,
            message,
        },
        _ => UpstreamError::Rejected {
            status,
            code,
            message,
        },
    }
}

/// A `BadRequestException` is about the token when its details name the token parameter or
/// its message does (the service is not consistent about `Details`).
fn is_token_problem(answer: &Answer) -> bool {
    let json: serde_json::Value = match serde_json::from_slice(&answer.body) {
        Ok(json) => json,
        Err(_) => return false,
    };
    let in_details = json
        .pointer("/Details/InvalidParameters")
        .and_then(|p| p.as_object())
        .is_some_and(|params| {
            params
                .keys()
                .any(|k| k.to_ascii_lowercase().contains("token"))
        });
    let in_message = ["Message", "message"].iter().any(|k| {
        json.get(*k)
            .and_then(|v| v.as_str())
            .is_some_and(|m| m.to_ascii_lowercase().contains("token"))
    });
    in_details || in_message
}

/// A counting semaphore bounding simultaneous outbound calls to `MAX_CONNECTIONS`.
struct ConnectionSlots {
    free: Mutex<usize>,
    released: Condvar,
}

struct Slot<'a>(&'a ConnectionSlots);

impl ConnectionSlots {
    fn new(max: usize) -> Self {
        ConnectionSlots {
            free: Mutex::new(max.max(1)),
            released: Condvar::new(),
        }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = crate::cache::lock(&self.free);
        while *free == 0 {
            free = self
                .released
                .wait(free)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *crate::cache::lock(&self.0.free) += 1;
        self.0.released.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, error_type: Option<&str>, body: &str) -> Answer {
        let headers = error_type
            .map(|t| vec![("x-amzn-errortype".to_string(), t.to_string())])
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn tokens_are_encoded_with_uppercase_hex() {
        assert_eq!(
            percent_encode_query_value("AYADeJx+abc/def=="),
            "AYADeJx%2Babc%2Fdef%3D%3D"
        );
        assert_eq!(percent_encode_query_value("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn error_names_are_cut_at_colon_and_hash() {
        let cases = [
            (
                answer(429, Some("ThrottlingException:http://x"), ""),
                "ThrottlingException",
            ),
            (
                answer(
                    404,
                    None,
                    r#"{"__type":"com.amazon#ResourceNotFoundException"}"#,
                ),
                "ResourceNotFoundException",
            ),
            (
                answer(400, None, r#"{"code":"BadRequestException"}"#),
                "BadRequestException",
            ),
        ];
        for (answer, expected) in cases {
            assert_eq!(error_code(&answer), expected);
        }
    }

    #[test]
    fn failures_are_classified_once() {
        let expired = r#"{"Message":"Token expired","Reason":"InvalidParameters","Details":{"InvalidParameters":{"ConfigurationToken":{"Problem":"Expired"}}}}"#;
        let cases = [
            (
                answer(400, Some("BadRequestException"), expired),
                "TokenRejected",
            ),
            (
                answer(400, Some("BadRequestException"), r#"{"Message":"bad app"}"#),
                "Rejected",
            ),
            (answer(429, None, ""), "Throttled"),
            (
                answer(403, Some("AccessDeniedException"), r#"{"Message":"no"}"#),
                "Denied",
            ),
            (
                answer(404, Some("ResourceNotFoundException"), "{}"),
                "NotFound",
            ),
            (answer(503, None, "oops"), "ServerError"),
        ];
        for (answer, expected) in cases {
            let classified = format!("{:?}", classify_error(&answer));
            assert!(
                classified.starts_with(expected),
                "{classified} is not {expected}"
            );
        }
    }

    #[test]
    fn only_transient_failures_are_retried_with_backoff() {
        assert!(UpstreamError::Throttled {
            message: String::new()
        }
        .is_transient());
        assert!(UpstreamError::Timeout {
            phase: "connecting"
        }
        .is_transient());
        assert!(!UpstreamError::NotFound {
            message: String::new()
        }
        .is_transient());
        assert!(!UpstreamError::Denied {
            code: String::new(),
            message: String::new()
        }
        .is_transient());
    }
}
