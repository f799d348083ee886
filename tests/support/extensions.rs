//! Fake AWS Lambda Extensions API (wire.md §1) for the tests of the agent's Lambda mode.
//!
//! Owns a loopback listener speaking `/2020-01-01/extension`: register, event/next (blocking until
//! the test queues an event), init/error and exit/error, answering errors the way Lambda does. It
//! records every call in arrival order and never talks to anything but the agent under test, which
//! reaches it through `AWS_LAMBDA_RUNTIME_API` = [`FakeExtensionsApi::runtime_api`].
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the fake"
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Every path of the API lives under this prefix (wire.md §1).
pub const BASE_PATH: &str = "/2020-01-01/extension";
/// The identifier handed out by `register`; uuid-shaped like Lambda's.
pub const IDENTIFIER: &str = "6f1c2a9e-3b7d-4e58-9a0f-d2c4b8e71a35";
/// The function ARN sent in every INVOKE event.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:demo";
/// Sent as `accountId` when the agent asks for it with `Lambda-Extension-Accept-Feature`.
pub const ACCOUNT_ID: &str = "123456789012";
/// Requests larger than this are refused: the real agent sends a few hundred bytes at most.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// How `register` shapes its 200 body; wire.md §1 says the agent must tolerate each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterBodyStyle {
    /// `{"functionName","functionVersion","handler"}` and no trailing newline.
    Normal,
    /// `Content-Length: 0` (still labelled `application/json`, the harder case for a parser).
    Empty,
    /// The normal body followed by `\n`.
    TrailingNewline,
}

/// How `event/next` fails once [`FakeExtensionsApi::fail_next_events`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextEventFailure {
    /// A Lambda-shaped error answer: this status, `{"errorMessage","errorType"}` with `errorType`
    /// `Extension.` followed by the given name.
    Status(u16, &'static str),
    /// The connection is closed without an answer, as when the Runtime API goes away.
    Close,
}

/// Which API call a request was, by method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Register,
    NextEvent,
    InitError,
    ExitError,
    /// Any other method or path; answered 404.
    Unknown,
}

/// One request as the fake received it, recorded before it is answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: CallKind,
    pub method: String,
    /// The request target as sent, base path included.
    pub path: String,
    /// Arrival on the monotonic clock, to order calls against other fakes and the agent's log.
    pub time: Instant,
    /// Arrival on the wall clock, to compare with `deadlineMs` values.
    pub wall_time: SystemTime,
    /// Header names and values as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Call {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// What a successful `register` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `Lambda-Extension-Name`.
    pub name: String,
    /// The `events` array, in the order sent.
    pub events: Vec<String>,
    /// `Lambda-Extension-Accept-Feature`, if sent.
    pub accept_feature: Option<String>,
}

/// One accepted `init/error` or `exit/error` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// `Lambda-Extension-Function-Error-Type`, such as `Extension.ConfigInvalid`.
    pub error_type: String,
    /// The request body as sent (may be empty).
    pub body: String,
}

/// Handle on a running fake; dropping it wakes every blocked `event/next` and stops accepting.
pub struct FakeExtensionsApi {
    shared: Arc<Shared>,
    address: SocketAddr,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    expected_name: Option<String>,
    register_body_style: Option<RegisterBodyStyle>,
    is_register_held: bool,
    next_event_failure: Option<NextEventFailure>,
    calls: Vec<Call>,
    pending_events: VecDeque<Value>,
    invokes_queued: u64,
    registered: Option<Registration>,
    accepted_next_calls: usize,
    init_errors: Vec<ErrorReport>,
    exit_errors: Vec<ErrorReport>,
    first_connection_at: Option<Instant>,
    connection_count: usize,
    is_closed: bool,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl FakeExtensionsApi {
    /// Binds `127.0.0.1:0` and serves each connection on its own thread (HTTP/1.1 keep-alive).
    #[allow(
        clippy::expect_used,
        reason = "a fake that cannot bind must fail the test"
    )]
    pub fn start() -> FakeExtensionsApi {
        Self::try_start().expect("bind the fake Extensions API on 127.0.0.1:0")
    }

    /// Like [`Self::start`], but returns the error when loopback cannot be bound; for the
    /// `fake-aws` demo program, which reports it instead of panicking.
    pub fn try_start() -> std::io::Result<FakeExtensionsApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || accept_connections(&listener, &accepting));
        Ok(FakeExtensionsApi { shared, address })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`: `127.0.0.1:PORT`, no scheme.
    pub fn runtime_api(&self) -> String {
        self.address.to_string()
    }

    /// Registers under any other `Lambda-Extension-Name` become internal extensions, which Lambda
    /// refuses `SHUTDOWN` with 403 `Extension.InvalidEventType` (wire.md §1).
    pub fn expect_name(&self, name: &str) {
        self.shared.lock().expected_name = Some(name.to_owned());
    }

    /// Shapes the body of later successful `register` answers.
    pub fn register_body_style(&self, style: RegisterBodyStyle) {
        self.shared.lock().register_body_style = Some(style);
    }

    /// Holds every later `register` call (recorded on arrival) unanswered until
    /// [`Self::release_register`], so a test can act while the agent waits for its registration.
    pub fn hold_register(&self) {
        self.shared.lock().is_register_held = true;
    }

    /// Answers the held `register` calls, and those arriving later, at once.
    pub fn release_register(&self) {
        self.shared.lock().is_register_held = false;
        self.shared.changed.notify_all();
    }

    /// Makes every later `event/next` from a registered extension fail as `failure` instead of
    /// delivering events (recorded, not counted by [`Self::wait_for_next_calls`]).
    pub fn fail_next_events(&self, failure: NextEventFailure) {
        self.shared.lock().next_event_failure = Some(failure);
        self.shared.changed.notify_all();
    }

    /// Queues an INVOKE with a `tracing` object; returns its fresh `requestId`.
    pub fn invoke(&self, deadline_ms: u64) -> String {
        self.queue_invoke(deadline_ms, true)
    }

    /// Queues an INVOKE without the optional `tracing` field; returns its fresh `requestId`.
    pub fn invoke_without_tracing(&self, deadline_ms: u64) -> String {
        self.queue_invoke(deadline_ms, false)
    }

    /// Queues a SHUTDOWN; `reason` is sent exactly as given, case included.
    pub fn shutdown(&self, reason: &str, deadline_ms: u64) {
        let event = json!({
            "eventType": "SHUTDOWN",
            "deadlineMs": deadline_ms,
            "shutdownReason": reason,
        });
        self.shared.lock().pending_events.push_back(event);
        self.shared.changed.notify_all();
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Waits at most `bound` until the agent has made its `n`-th accepted `event/next`, i.e. is
    /// idle waiting for an event; `false` if it has not by then. Use it instead of sleeping.
    pub fn wait_for_next_calls(&self, n: usize, bound: Duration) -> bool {
        self.shared
            .wait_until(bound, |state| state.accepted_next_calls >= n)
    }

    /// Waits at most `bound` until `n` calls of `kind` (accepted or not) have arrived.
    pub fn wait_for_calls(&self, kind: CallKind, n: usize, bound: Duration) -> bool {
        let count = move |state: &State| state.calls.iter().filter(|c| c.kind == kind).count();
        self.shared.wait_until(bound, |state| count(state) >= n)
    }

    /// The successful registration, if any.
    pub fn registered(&self) -> Option<Registration> {
        self.shared.lock().registered.clone()
    }

    /// Accepted `init/error` reports, in order.
    pub fn init_errors(&self) -> Vec<ErrorReport> {
        self.shared.lock().init_errors.clone()
    }

    /// Accepted `exit/error` reports, in order.
    pub fn exit_errors(&self) -> Vec<ErrorReport> {
        self.shared.lock().exit_errors.clone()
    }

    /// When the first connection was accepted, to compare with the agent's listener readiness.
    pub fn first_connection_at(&self) -> Option<Instant> {
        self.shared.lock().first_connection_at
    }

    /// How many connections were accepted; 1 after several calls proves keep-alive reuse.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().connection_count
    }

    fn queue_invoke(&self, deadline_ms: u64, has_tracing: bool) -> String {
        let mut state = self.shared.lock();
        state.invokes_queued += 1;
        let number = state.invokes_queued;
        let request_id = format!("8e4f0c6a-1d2b-4c7e-9f3a-{number:012x}");
        let mut event = json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": FUNCTION_ARN,
        });
        if has_tracing {
            let root = format!("Root=1-67a0b1c2-{number:024x};Sampled=0");
            event["tracing"] = json!({ "type": "X-Amzn-Trace-Id", "value": root });
        }
        state.pending_events.push_back(event);
        self.shared.changed.notify_all();
        request_id
    }
}

impl Drop for FakeExtensionsApi {
    fn drop(&mut self) {
        self.shared.lock().is_closed = true;
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees the flag and lets the listener go.
        let _ = TcpStream::connect(self.address);
    }
}

/// The wall-clock time `ms` milliseconds from now, in epoch milliseconds (`deadlineMs`).
pub fn deadline_in(ms: u64) -> u64 {
    let now_ms = UNIX_EPOCH.elapsed().unwrap_or_default().as_millis();
    u64::try_from(now_ms).unwrap_or(u64::MAX).saturating_add(ms)
}

impl Shared {
    /// One place for poisoning: a panicking connection thread must not hide the test's own result.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_until(&self, bound: Duration, is_done: impl Fn(&State) -> bool) -> bool {
        let waited = self
            .changed
            .wait_timeout_while(self.lock(), bound, |s| !is_done(s));
        let (state, _) = waited.unwrap_or_else(PoisonError::into_inner);
        is_done(&state)
    }

    /// Records the call, then answers it; `None` closes the connection (the fake was dropped
    /// while an `event/next` was waiting, or [`NextEventFailure::Close`] is set).
    fn answer(&self, call: Call) -> Option<Response> {
        let mut state = self.lock();
        state.calls.push(call.clone());
        self.changed.notify_all();

        let identifier_refusal = match call.kind {
            CallKind::Unknown => {
                let message = format!("no route for {} {}", call.method, call.path);
                return Some(refusal(404, "InvalidRequest", &message));
            }
            CallKind::Register => {
                let is_held = |s: &mut State| s.is_register_held && !s.is_closed;
                let waited = self.changed.wait_while(state, is_held);
                let mut state = waited.unwrap_or_else(PoisonError::into_inner);
                return Some(register(&mut state, &call));
            }
            _ => check_identifier(&state, &call),
        };
        if identifier_refusal.is_some() {
            return identifier_refusal;
        }
        if call.kind != CallKind::NextEvent {
            return Some(report_error(&mut state, call));
        }

        match state.next_event_failure {
            Some(NextEventFailure::Status(status, name)) => {
                let message = "the Runtime API failed to deliver the next event";
                return Some(refusal(status, &format!("Extension.{name}"), message));
            }
            Some(NextEventFailure::Close) => return None,
            None => {}
        }
        state.accepted_next_calls += 1;
        self.changed.notify_all();
        let is_idle = |s: &mut State| s.pending_events.is_empty() && !s.is_closed;
        let waited = self.changed.wait_while(state, is_idle);
        let mut state = waited.unwrap_or_else(PoisonError::into_inner);
        let event = state.pending_events.pop_front()?;
        let event_id = format!("0b9d5e2f-7c41-4a86-b3e0-{:012x}", state.calls.len());
        let answer = json_response(200, &event);
        Some(answer.with_header("Lambda-Extension-Event-Identifier", event_id))
    }
}

/// Lambda's checks, in its order: name, body, event types (stricter for internal extensions),
/// then a second registration.
fn register(state: &mut State, call: &Call) -> Response {
    let name = call.header("Lambda-Extension-Name").unwrap_or_default();
    if name.is_empty() {
        return forbidden("InvalidExtensionName", "Empty extension name");
    }
    let Some(events) = parse_events(&call.body) else {
        let message = format!("register body is not {{\"events\":[...]}}: {:?}", call.body);
        return refusal(403, "InvalidRequestFormat", &message);
    };
    let is_internal = state
        .expected_name
        .as_ref()
        .is_some_and(|expected| expected != name);
    for event in &events {
        if event != "INVOKE" && (event != "SHUTDOWN" || is_internal) {
            let message = format!("{event}: event not allowed for extension {name}");
            return forbidden("InvalidEventType", &message);
        }
    }
    if state.registered.is_some() {
        return forbidden("InvalidExtensionState", "Extension already registered");
    }

    let accept_feature = call.header("Lambda-Extension-Accept-Feature");
    let mut body = json!({
        "functionName": "demo",
        "functionVersion": "$LATEST",
        "handler": "index.handler",
    });
    if accept_feature.is_some_and(|features| features.split(',').any(|f| f.trim() == "accountId")) {
        body["accountId"] = json!(ACCOUNT_ID);
    }
    state.registered = Some(Registration {
        name: name.to_owned(),
        events,
        accept_feature: accept_feature.map(str::to_owned),
    });
    let mut answer = json_response(200, &body);
    match state.register_body_style {
        Some(RegisterBodyStyle::Empty) => answer.body.clear(),
        Some(RegisterBodyStyle::TrailingNewline) => answer.body.push('\n'),
        Some(RegisterBodyStyle::Normal) | None => {}
    }
    answer.with_header("Lambda-Extension-Identifier", IDENTIFIER.to_owned())
}

/// The `events` array of a register body; `None` unless it is a JSON array of strings.
fn parse_events(body: &str) -> Option<Vec<String>> {
    let body: Value = serde_json::from_str(body).ok()?;
    let list = body.get("events")?.as_array()?;
    list.iter()
        .map(|event| event.as_str().map(str::to_owned))
        .collect()
}

/// Lambda's checks on `Lambda-Extension-Identifier`: missing, not a uuid, or not issued.
fn check_identifier(state: &State, call: &Call) -> Option<Response> {
    let (error_type, problem) = match call.header("Lambda-Extension-Identifier") {
        None | Some("") => ("MissingExtensionIdentifier", "Missing"),
        Some(id) if !is_uuid_shaped(id) => ("InvalidExtensionIdentifier", "Invalid"),
        Some(id) if id != IDENTIFIER || state.registered.is_none() => {
            ("UnknownExtensionIdentifier", "Unknown")
        }
        Some(_) => return None,
    };
    Some(forbidden(
        error_type,
        &format!("{problem} Lambda-Extension-Identifier"),
    ))
}

fn report_error(state: &mut State, call: Call) -> Response {
    let header = "Lambda-Extension-Function-Error-Type";
    let Some(error_type) = call.header(header).filter(|t| !t.is_empty()) else {
        return forbidden("MissingHeader", &format!("{header} not found"));
    };
    let report = ErrorReport {
        error_type: error_type.to_owned(),
        body: call.body.clone(),
    };
    if call.kind == CallKind::InitError {
        state.init_errors.push(report);
    } else {
        state.exit_errors.push(report);
    }
    json_response(202, &json!({ "status": "OK" }))
}

/// A 403 with an `Extension.`-prefixed type, as Lambda answers most refusals (wire.md §1).
fn forbidden(error_type: &str, message: &str) -> Response {
    refusal(403, &format!("Extension.{error_type}"), message)
}

/// Lambda's error shape: `{"errorMessage","errorType"}`.
fn refusal(status: u16, error_type: &str, message: &str) -> Response {
    let body = json!({ "errorMessage": message, "errorType": error_type });
    json_response(status, &body)
}

fn json_response(status: u16, body: &Value) -> Response {
    let headers = vec![("Content-Type", "application/json".to_owned())];
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

impl Response {
    fn with_header(mut self, name: &'static str, value: String) -> Response {
        self.headers.push((name, value));
        self
    }
}

fn accept_connections(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        let mut state = shared.lock();
        if state.is_closed {
            return;
        }
        state.connection_count += 1;
        state.first_connection_at.get_or_insert_with(Instant::now);
        drop(state);
        if let Ok(stream) = stream {
            let serving = Arc::clone(shared);
            thread::spawn(move || serve_connection(stream, &serving));
        }
    }
}

/// Answers requests on one connection until the client closes it or asks to; a request the
/// minimal parser cannot read gets a 400 and the connection closes.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut writer = stream;
    loop {
        let call = match read_request(&mut reader) {
            Ok(Some(call)) => call,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                let answer = refusal(400, "InvalidRequestFormat", &e.to_string());
                let _ = write_response(&mut writer, &answer, true);
                return;
            }
            Ok(None) | Err(_) => return,
        };
        let wants_close = call
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let Some(answer) = shared.answer(call) else {
            return;
        };
        if write_response(&mut writer, &answer, wants_close).is_err() || wants_close {
            return;
        }
    }
}

/// Reads one request with a `Content-Length` body and stamps its arrival; `Ok(None)` on a clean
/// end of stream between requests, `InvalidData` for what this parser does not speak (chunked).
fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Call>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!("malformed request line {line:?}")));
    };
    let (method, path) = (method.to_owned(), path.to_owned());

    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(invalid("connection closed inside the headers".to_owned()));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            return Err(invalid(format!("malformed header line {trimmed:?}")));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if header_value(&headers, "Transfer-Encoding").is_some() {
        return Err(invalid(
            "send Content-Length; chunked bodies are not read".to_owned(),
        ));
    }

    let length = header_value(&headers, "Content-Length").unwrap_or("0");
    let length = length
        .parse()
        .map_err(|_| invalid(format!("Content-Length {length:?}")))?;
    if length > MAX_REQUEST_BYTES {
        return Err(invalid(format!("body of {length} bytes is too large")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8(body).map_err(|_| invalid("body is not UTF-8".to_owned()))?;
    let kind = match (method.as_str(), path.strip_prefix(BASE_PATH)) {
        ("POST", Some("/register")) => CallKind::Register,
        ("GET", Some("/event/next")) => CallKind::NextEvent,
        ("POST", Some("/init/error")) => CallKind::InitError,
        ("POST", Some("/exit/error")) => CallKind::ExitError,
        _ => CallKind::Unknown,
    };
    let (time, wall_time) = (Instant::now(), SystemTime::now());
    Ok(Some(Call {
        kind,
        method,
        path,
        time,
        wall_time,
        headers,
        body,
    }))
}

fn write_response(writer: &mut impl Write, answer: &Response, closes: bool) -> std::io::Result<()> {
    let reason = match answer.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if closes {
        head.push_str("Connection: close\r\n");
    }
    let length = answer.body.len();
    head.push_str(&format!("Content-Length: {length}\r\n\r\n{}", answer.body));
    writer.write_all(head.as_bytes())?;
    writer.flush()
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut matching = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name));
    matching.next().map(|(_, value)| value.as_str())
}

fn is_uuid_shaped(id: &str) -> bool {
    let is_expected = |(i, c): (usize, char)| match i {
        8 | 13 | 18 | 23 => c == '-',
        _ => c.is_ascii_hexdigit(),
    };
    id.len() == 36 && id.char_indices().all(is_expected)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, message)
}
