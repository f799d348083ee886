//! The Lambda Extensions API client (wire.md §1): register, next event, init and exit errors.
//!
//! Plain HTTP to `AWS_LAMBDA_RUNTIME_API`, no signing and no client timeout on `event/next`
//! (it blocks until Lambda has an event, across freezes). `lifecycle` drives it.

use std::fmt;
use std::io::Read;

/// Largest body read from the Extensions API; events are a few hundred bytes.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// One event from `event/next`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Invoke {
        deadline_ms: u64,
        request_id: String,
    },
    Shutdown {
        deadline_ms: u64,
        reason: String,
    },
}

/// A failed call to the Extensions API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionError {
    pub call: &'static str,
    pub message: String,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions API {}: {}", self.call, self.message)
    }
}

impl std::error::Error for ExtensionError {}

/// A client bound to one runtime API address; after [`ExtensionsClient::register`] it carries
/// the extension identifier.
pub struct ExtensionsClient {
    agent: ureq::Agent,
    base: String,
    identifier: Option<String>,
}

impl ExtensionsClient {
    /// `runtime_api` is `host:port`, as Lambda sets `AWS_LAMBDA_RUNTIME_API`.
    pub fn new(runtime_api: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build()
            .new_agent();
        ExtensionsClient {
            agent,
            base: format!("http://{runtime_api}/2020-01-01/extension"),
            identifier: None,
        }
    }

    /// Registers for INVOKE and SHUTDOWN under `name`, which must be the executable's file
    /// name, or Lambda takes it for an internal extension that may not receive SHUTDOWN.
    pub fn register(&mut self, name: &str) -> Result<(), ExtensionError> {
        let call = "register";
        let response = self
            .agent
            .post(&format!("{}/register", self.base))
            .header("Lambda-Extension-Name", name)
            .header("Content-Type", "application/json")
            .send(r#"{"events":["INVOKE","SHUTDOWN"]}"#.as_bytes())
            .map_err(unanswered(call))?;
        let status = response.status().as_u16();
        let identifier = response
            .headers()
            .get("Lambda-Extension-Identifier")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // The body (function name, version, handler) may be empty or end in a newline; we
        // need none of it, so it is read only for the error message.
        let body = read_body(response);
        if status != 200 {
            return Err(ExtensionError {
                call,
                message: api_error(status, &body),
            });
        }
        match identifier {
            Some(id) if !id.is_empty() => {
                self.identifier = Some(id);
                Ok(())
            }
            _ => Err(ExtensionError {
                call,
                message: "no Lambda-Extension-Identifier header in the answer".into(),
            }),
        }
    }

    /// Blocks until Lambda sends the next event. Unknown event types are skipped.
    pub fn next_event(&self) -> Result<Event, ExtensionError> {
        let call = "event/next";
        loop {
            let response = self
                .identified(self.agent.get(&format!("{}/event/next", self.base)))
                .call()
                .map_err(unanswered(call))?;
            let status = response.status().as_u16();
            let body = read_body(response);
            if status != 200 {
                return Err(ExtensionError {
                    call,
                    message: api_error(status, &body),
                });
            }
            match parse_event(&body) {
                Ok(Some(event)) => return Ok(event),
                Ok(None) => continue,
                Err(message) => return Err(ExtensionError { call, message }),
            }
        }
    }

    /// Reports a failed INIT (`init/error`) with `error_type` such as `Extension.ConfigInvalid`.
    pub fn init_error(&self, error_type: &str, message: &str) -> Result<(), ExtensionError> {
        self.report_error("init/error", error_type, message)
    }

    /// Reports a fatal error after INIT (`exit/error`).
    pub fn exit_error(&self, error_type: &str, message: &str) -> Result<(), ExtensionError> {
        self.report_error("exit/error", error_type, message)
    }

    /// `request` with the identifier [`ExtensionsClient::register`] got (empty before that).
    fn identified<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request.header(
            "Lambda-Extension-Identifier",
            self.identifier.as_deref().unwrap_or(""),
        )
    }

    fn report_error(
        &self,
        call: &'static str,
        error_type: &str,
        message: &str,
    ) -> Result<(), ExtensionError> {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        let response = self
            .identified(self.agent.post(&format!("{}/{call}", self.base)))
            .header("Lambda-Extension-Function-Error-Type", error_type)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(unanswered(call))?;
        let status = response.status().as_u16();
        let body = read_body(response);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ExtensionError {
                call,
                message: api_error(status, &body),
            })
        }
    }
}

/// The error for a `call` that got no HTTP answer at all (refused, reset, malformed).
fn unanswered(call: &'static str) -> impl FnOnce(ureq::Error) -> ExtensionError {
    move |error| ExtensionError {
        call,
        message: error.to_string(),
    }
}

fn read_body(response: ureq::http::Response<ureq::Body>) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body);
    body
}

/// The API's error shape `{"errorMessage","errorType"}`, or the status when there is none.
fn api_error(status: u16, body: &[u8]) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    match (field("errorType"), field("errorMessage")) {
        (Some(kind), Some(message)) => format!("status {status}, {kind}: {message}"),
        (Some(kind), None) => format!("status {status}, {kind}"),
        _ => format!("status {status}"),
    }
}

/// Parses an event; `Ok(None)` for an event type this agent did not ask for.
fn parse_event(body: &[u8]) -> Result<Option<Event>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("an event that is not JSON: {e}"))?;
    let deadline_ms = json.get("deadlineMs").and_then(|v| v.as_u64()).unwrap_or(0);
    let text = |name: &str| {
        json.get(name)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    match json.get("eventType").and_then(|v| v.as_str()) {
        Some(kind) if kind.eq_ignore_ascii_case("INVOKE") => Ok(Some(Event::Invoke {
            deadline_ms,
            request_id: text("requestId"),
        })),
        Some(kind) if kind.eq_ignore_ascii_case("SHUTDOWN") => Ok(Some(Event::Shutdown {
            deadline_ms,
            reason: text("shutdownReason"),
        })),
        Some(other) => {
            log::debug!("ignoring Extensions API event {other}");
            Ok(None)
        }
        None => Err("an event without eventType".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_with_or_without_optional_fields() {
        let invoke = br#"{"eventType":"INVOKE","deadlineMs":1700000000000,"requestId":"r1","invokedFunctionArn":"arn","tracing":{"type":"X"}}"#;
        assert_eq!(
            parse_event(invoke),
            Ok(Some(Event::Invoke {
                deadline_ms: 1_700_000_000_000,
                request_id: "r1".into()
            }))
        );
        let bare = br#"{"eventType":"INVOKE","deadlineMs":5,"requestId":"r2"}"#;
        assert!(matches!(parse_event(bare), Ok(Some(Event::Invoke { .. }))));
        for reason in ["spindown", "Timeout", "SandboxTerminated", "whatever"] {
            let body =
                format!(r#"{{"eventType":"SHUTDOWN","deadlineMs":9,"shutdownReason":"{reason}"}}"#);
            assert_eq!(
                parse_event(body.as_bytes()),
                Ok(Some(Event::Shutdown {
                    deadline_ms: 9,
                    reason: reason.into()
                }))
            );
        }
        assert_eq!(parse_event(br#"{"eventType":"RESTORE"}"#), Ok(None));
        assert!(parse_event(b"not json").is_err());
    }

    #[test]
    fn api_errors_show_type_and_message() {
        let body = br#"{"errorMessage":"bad name","errorType":"Extension.InvalidEventType"}"#;
        assert_eq!(
            api_error(403, body),
            "status 403, Extension.InvalidEventType: bad name"
        );
        assert_eq!(api_error(500, b""), "status 500");
    }
}
