//! Fake STS for AssumeRole over the Query protocol (wire.md §3), on `127.0.0.1:0`.
//!
//! It records every call in order, checks the request shape (method, path, content type, no
//! JSON `Accept`, strict form encoding, `Action`, `Version`, `RoleArn`, `RoleSessionName`,
//! `ExternalId`, `DurationSeconds`), and answers from a script: credentials as XML in rotating
//! element orders with namespaces, comments, entities and fractional seconds, or an
//! `ErrorResponse`. A request that breaks the shape gets a 400 `FakeStsRejected` naming the
//! problem. With [`FakeSts::start_verifying`], signatures are checked by the shared independent
//! verifier (`sigv4`, signing name `sts`), as the fake AppConfigData checks its own. Answers can
//! be held back until the test releases them. Never talks to anything but its loopback listener,
//! which `tiny_server` runs.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::sigv4::{self, ExpectedCredentials, ReceivedRequest, SignatureError};
use super::tiny_server::TinyServer;

/// The content type STS expects, byte for byte.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// Expiration of the default answer: far enough that nothing refreshes unless a test moves its
/// clock there.
pub const DEFAULT_EXPIRATION: &str = "2099-12-31T12:00:00.250Z";
/// SigV4 signing name of STS (wire.md §3).
const SIGNING_NAME: &str = "sts";

/// One request as received.
#[derive(Clone, Debug)]
pub struct StsCall {
    pub method: String,
    pub url: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The decoded form parameters, in body order.
    pub form: Vec<(String, String)>,
    /// Why the signature was refused, in full (canonical request included); `None` when it was
    /// accepted or not checked. The caller only gets a short AWS-style message.
    pub signature_error: Option<String>,
}

impl StsCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake answers next.
#[derive(Clone, Debug)]
pub enum StsAnswer {
    Credentials {
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
        /// Written as given, so tests choose the form (fractions, offsets).
        expiration: String,
    },
    Error {
        status: u16,
        code: String,
        message: String,
    },
}

impl StsAnswer {
    pub fn credentials(key: &str, secret: &str, token: &str, expiration: &str) -> StsAnswer {
        StsAnswer::Credentials {
            access_key_id: key.into(),
            secret_access_key: secret.into(),
            session_token: token.into(),
            expiration: expiration.into(),
        }
    }

    pub fn error(status: u16, code: &str, message: &str) -> StsAnswer {
        StsAnswer::Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn access_denied(message: &str) -> StsAnswer {
        StsAnswer::error(403, "AccessDenied", message)
    }
}

pub struct FakeSts {
    endpoint: String,
    shared: Arc<Shared>,
    /// Dropped after `drop` below has released any held answer.
    _server: TinyServer,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    verifier: Option<sigv4::Verifier>,
}

#[derive(Default)]
struct State {
    calls: Vec<StsCall>,
    answers: VecDeque<StsAnswer>,
    held: bool,
    credentials_issued: usize,
}

impl FakeSts {
    /// Starts a fake that checks no signature.
    pub fn start() -> FakeSts {
        FakeSts::launch(None)
    }

    /// Starts a fake that checks every call's SigV4 signature with the shared verifier: signed
    /// for `sts` in `region` with `credentials` (the base credentials the agent was given; a
    /// session token there must be sent and signed), `x-amz-date` within 5 minutes of now. A
    /// refused call is answered 403 (`InvalidClientTokenId` for an unknown key or token, else
    /// `SignatureDoesNotMatch`) and its reason kept in [`StsCall::signature_error`].
    pub fn start_verifying(credentials: ExpectedCredentials, region: &str) -> FakeSts {
        FakeSts::launch(Some(sigv4::Verifier {
            credentials,
            region: region.to_string(),
            service: SIGNING_NAME.to_string(),
            max_clock_skew: Some(sigv4::DEFAULT_MAX_CLOCK_SKEW),
        }))
    }

    fn launch(verifier: Option<sigv4::Verifier>) -> FakeSts {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            verifier,
        });
        let server = {
            let shared = Arc::clone(&shared);
            TinyServer::start(move |request| shared.handle(request))
        };
        FakeSts {
            endpoint: format!("http://127.0.0.1:{}", server.port()),
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash (what `AWS_ENDPOINT_URL_STS` would hold).
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Queues an answer; with the queue empty the fake issues fresh credentials numbered by
    /// call, expiring at [`DEFAULT_EXPIRATION`].
    pub fn push_answer(&self, answer: StsAnswer) {
        self.shared.state.lock().unwrap().answers.push_back(answer);
    }

    pub fn calls(&self) -> Vec<StsCall> {
        self.shared.state.lock().unwrap().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.shared.state.lock().unwrap().calls.len()
    }

    /// From now on, calls are recorded but not answered until [`FakeSts::release`].
    pub fn hold(&self) {
        self.shared.state.lock().unwrap().held = true;
    }

    pub fn release(&self) {
        self.shared.state.lock().unwrap().held = false;
        self.shared.changed.notify_all();
    }

    /// Waits until at least `count` calls have arrived; false after `limit`. A guard against
    /// hanging, not a timing assertion.
    pub fn wait_for_calls(&self, count: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut state = self.shared.state.lock().unwrap();
        while state.calls.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        true
    }
}

impl Drop for FakeSts {
    /// Releases held answers, so the worker can finish the request in hand when the server
    /// field is dropped next.
    fn drop(&mut self) {
        self.release();
    }
}

impl Shared {
    fn handle(&self, mut request: tiny_http::Request) {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let mut call = StsCall {
            method: request.method().to_string(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.to_string(),
                    )
                })
                .collect(),
            form: decode_form(&body).unwrap_or_default(),
            body,
            signature_error: None,
        };
        let refusal = self.verifier.as_ref().and_then(|verifier| {
            let received = ReceivedRequest {
                method: &call.method,
                target: &call.url,
                headers: &call.headers,
                body: call.body.as_bytes(),
            };
            verifier.verify(&received, SystemTime::now()).err()
        });
        call.signature_error = refusal.as_ref().map(ToString::to_string);

        let mut state = self.state.lock().unwrap();
        state.calls.push(call.clone());
        self.changed.notify_all();
        while state.held {
            state = self.changed.wait(state).unwrap();
        }

        let problems = check_shape(&call);
        let (status, xml) = if !problems.is_empty() {
            (400, error_xml("FakeStsRejected", &problems.join("; ")))
        } else if let Some(refusal) = &refusal {
            let (code, message) = refusal_answer(refusal);
            (403, error_xml(code, &message))
        } else {
            let answer = state.answers.pop_front().unwrap_or_else(|| {
                let n = state.credentials_issued;
                StsAnswer::credentials(
                    &format!("ASIAFAKESTS{n:05}"),
                    &format!("fake-sts-secret-{n}&<>\"'"),
                    &format!("fake-sts-token-{n}+/="),
                    DEFAULT_EXPIRATION,
                )
            });
            match answer {
                StsAnswer::Credentials {
                    access_key_id,
                    secret_access_key,
                    session_token,
                    expiration,
                } => {
                    let variant = state.credentials_issued % 3;
                    state.credentials_issued += 1;
                    let values = [access_key_id, secret_access_key, session_token, expiration];
                    (200, credentials_xml(variant, &values))
                }
                StsAnswer::Error {
                    status,
                    code,
                    message,
                } => (status, error_xml(&code, &message)),
            }
        };
        drop(state);

        let content_type = tiny_http::Header::from_bytes("Content-Type", "text/xml").unwrap();
        let response = tiny_http::Response::from_string(xml)
            .with_status_code(status)
            .with_header(content_type);
        let _ = request.respond(response);
    }
}

/// Everything wrong with the request's shape, per wire.md §3.
fn check_shape(call: &StsCall) -> Vec<String> {
    let mut problems = Vec::new();
    if call.method != "POST" || call.url != "/" {
        problems.push(format!("expected POST /, got {} {}", call.method, call.url));
    }
    if call.header("content-type") != Some(FORM_CONTENT_TYPE) {
        problems.push(format!("content-type is {:?}", call.header("content-type")));
    }
    if call.header("accept").is_some_and(|a| a.contains("json")) {
        problems.push("Accept asks for JSON".into());
    }
    for name in ["authorization", "x-amz-date"] {
        if call.header(name).is_none() {
            problems.push(format!("no {name} header"));
        }
    }
    let Some(form) = decode_form(&call.body) else {
        problems.push("body is not a form".into());
        return problems;
    };
    if encode_form(&form) != call.body {
        problems
            .push("body is not strictly percent-encoded (unreserved kept, upper-case hex)".into());
    }
    if call.param("Action") != Some("AssumeRole") {
        problems.push("Action is not AssumeRole".into());
    }
    if call.param("Version") != Some("2011-06-15") {
        problems.push("Version is not 2011-06-15".into());
    }
    if !call
        .param("RoleArn")
        .is_some_and(|arn| arn.starts_with("arn:") && arn.len() >= 20)
    {
        problems.push("RoleArn missing or not an ARN".into());
    }
    if !call.param("RoleSessionName").is_some_and(is_session_name) {
        problems.push("RoleSessionName missing or not 2-64 of [\\w+=,.@-]".into());
    }
    if let Some(external_id) = call.param("ExternalId") {
        if external_id.len() < 2 || external_id.len() > 1224 {
            problems.push("ExternalId length out of 2..1224".into());
        }
    }
    if let Some(duration) = call.param("DurationSeconds") {
        if !duration
            .parse::<u32>()
            .is_ok_and(|d| (900..=43_200).contains(&d))
        {
            problems.push("DurationSeconds out of 900..43200".into());
        }
    }
    let known = [
        "Action",
        "Version",
        "RoleArn",
        "RoleSessionName",
        "ExternalId",
        "DurationSeconds",
    ];
    for (name, _) in &form {
        if !known.contains(&name.as_str()) {
            problems.push(format!("unexpected parameter {name}"));
        }
    }
    problems
}

/// The error code and message STS sends for a refused signature. The message never carries the
/// canonical request (it holds the session token), since it travels back to the agent and may
/// reach its log and its caller.
fn refusal_answer(refusal: &SignatureError) -> (&'static str, String) {
    match refusal {
        SignatureError::UnknownAccessKey { .. }
        | SignatureError::SecurityTokenMissing
        | SignatureError::SecurityTokenMismatch
        | SignatureError::UnexpectedSecurityToken => (
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".to_string(),
        ),
        SignatureError::SignatureMismatch { .. } => (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method."
                .to_string(),
        ),
        other => ("SignatureDoesNotMatch", other.to_string()),
    }
}

fn is_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// Decodes `a=b&c=d` with `%XX` escapes and `+` as space.
fn decode_form(body: &str) -> Option<Vec<(String, String)>> {
    if body.is_empty() {
        return Some(Vec::new());
    }
    body.split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((decode_component(name)?, decode_component(value)?))
        })
        .collect()
}

fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = text.get(index + 1..index + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The one encoding SigV4 and STS agree on: unreserved characters as they are, everything
/// else `%XX` with upper-case hex.
fn encode_form(pairs: &[(String, String)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        // Numeric references too, as some XML writers emit them.
        .replace('+', "&#43;")
        .replace('=', "&#x3D;")
}

/// A success answer in one of three shapes: the documented order; credentials reversed
/// after the metadata with a prefixed namespace, a prolog and comments; fields interleaved
/// with unknown elements, attributes and CDATA-free whitespace.
fn credentials_xml(variant: usize, values: &[String; 4]) -> String {
    let [key, secret, token, expiration] = values.each_ref().map(|v| escape(v));
    match variant {
        0 => format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
             <AssumeRoleResult>\n\
             <AssumedRoleUser><AssumedRoleId>AROAFAKE:session</AssumedRoleId>\
             <Arn>arn:aws:sts::123456789012:assumed-role/demo/session</Arn></AssumedRoleUser>\n\
             <Credentials>\n\
             <AccessKeyId>{key}</AccessKeyId>\n\
             <SecretAccessKey>{secret}</SecretAccessKey>\n\
             <SessionToken>{token}</SessionToken>\n\
             <Expiration>{expiration}</Expiration>\n\
             </Credentials>\n\
             <PackedPolicySize>6</PackedPolicySize>\n\
             </AssumeRoleResult>\n\
             <ResponseMetadata><RequestId>fake-1</RequestId></ResponseMetadata>\n\
             </AssumeRoleResponse>\n"
        ),
        1 => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!-- fake STS, variant 1 -->\n\
             <sts:AssumeRoleResponse xmlns:sts=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <sts:ResponseMetadata><sts:RequestId>fake-2</sts:RequestId></sts:ResponseMetadata>\
             <sts:AssumeRoleResult><sts:Credentials>\
             <sts:Expiration>{expiration}</sts:Expiration>\
             <sts:SessionToken>{token}</sts:SessionToken>\
             <!-- between fields -->\
             <sts:SecretAccessKey>{secret}</sts:SecretAccessKey>\
             <sts:AccessKeyId>{key}</sts:AccessKeyId>\
             </sts:Credentials></sts:AssumeRoleResult></sts:AssumeRoleResponse>"
        ),
        _ => format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\" \
             xmlns:x='urn:extra' x:note='a > b'>\r\n\
             \t<AssumeRoleResult>\r\n\
             \t\t<SourceIdentity/>\r\n\
             \t\t<Credentials kind=\"temporary\">\r\n\
             \t\t\t<SessionToken>{token}</SessionToken>\r\n\
             \t\t\t<x:Unknown>ignored</x:Unknown>\r\n\
             \t\t\t<AccessKeyId>{key}</AccessKeyId>\r\n\
             \t\t\t<Expiration>{expiration}</Expiration>\r\n\
             \t\t\t<SecretAccessKey>{secret}</SecretAccessKey>\r\n\
             \t\t</Credentials>\r\n\
             \t</AssumeRoleResult>\r\n\
             </AssumeRoleResponse>"
        ),
    }
}

fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
         <Error>\n<Type>Sender</Type>\n<Code>{}</Code>\n<Message>{}</Message>\n</Error>\n\
         <RequestId>fake-error</RequestId>\n</ErrorResponse>\n",
        escape(code),
        escape(message)
    )
}
