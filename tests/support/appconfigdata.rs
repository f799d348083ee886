//! A fake AppConfigData service on `127.0.0.1:0` that speaks wire.md §2 and can misbehave.
//!
//! Owns deployments, sessions, single-use tokens, scripted faults and the record of every call
//! and connection. It must never talk to anything but its own loopback listener. Uses `sigv4` to
//! check every request's signature and `http_wire` for HTTP/1.1 framing; one thread per TCP
//! connection, with keep-alive, so connection counts are what the agent's pool really opened.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::http_wire::{self, RawRequest, RawResponse};
use super::sigv4::{ExpectedCredentials, ReceivedRequest, Verifier, DEFAULT_MAX_CLOCK_SKEW};

/// Access key the fake expects until [`FakeAppConfig::set_credentials`] is called.
pub const TEST_ACCESS_KEY: &str = "AKIDFAKEAPPCONFIG";
/// Secret key the fake expects until [`FakeAppConfig::set_credentials`] is called.
pub const TEST_SECRET_KEY: &str = "fakeSecret/With+Odd=Chars";
/// Region the fake expects in the credential scope until [`FakeAppConfig::set_region`].
pub const TEST_REGION: &str = "us-east-1";
/// SigV4 signing name of AppConfigData (wire.md §2).
const SIGNING_NAME: &str = "appconfig";
/// Poll interval AWS applies when `RequiredMinimumPollIntervalInSeconds` is absent.
const DEFAULT_POLL_INTERVAL_SECONDS: u64 = 60;
/// A connection with no new request for this long is closed, so no thread outlives its test.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A `Hang` fault gives up after this long even if never released.
const HANG_BOUND: Duration = Duration::from_secs(120);
const BASE64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two AppConfigData operations, plus anything else that reached the fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    StartConfigurationSession,
    GetLatestConfiguration,
    /// Any other method or path (answered 404 `UnknownOperationException`).
    Unknown,
}

/// A misbehaviour to inject with [`FakeAppConfig::inject_fault`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 `InternalServerException`; the request is not processed (a token stays valid).
    Status500,
    /// 503 `ServiceUnavailableException`; not processed.
    Status503,
    /// 429 `ThrottlingException`; not processed.
    Throttle429,
    /// 403 `AccessDeniedException`; not processed.
    Forbidden403,
    /// 400 `BadRequestException`, problem `Expired`; the token received is dead afterwards.
    ExpiredToken400,
    /// 400 `BadRequestException`, problem `Corrupted`; the token received is dead afterwards.
    CorruptedToken400,
    /// The request is processed (a token is consumed, a session created), then the head and
    /// half the body are sent and the connection is shut down.
    ResetMidBody,
    /// The request is read and never answered until [`FakeAppConfig::release_hung_requests`],
    /// the fake is dropped, or two minutes pass; then the connection is closed. Not processed.
    Hang,
    /// StartConfigurationSession: `201` with a body that is not JSON (no session created).
    /// GetLatestConfiguration: processed (token consumed), `200` without
    /// `Next-Poll-Configuration-Token`.
    MalformedBody,
}

/// Which calls an injected fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope {
    StartConfigurationSession,
    GetLatestConfiguration,
    /// The next calls of either operation.
    AnyOperation,
}

/// One call as the fake saw it.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub operation: Operation,
    /// `app:env:profile` as the client named it: from the body of StartConfigurationSession, from
    /// the token's session for GetLatestConfiguration; `None` when unknown.
    pub key: Option<String>,
    /// The configuration token received, percent-decoded (GetLatestConfiguration only).
    pub token: Option<String>,
    /// `RequiredMinimumPollIntervalInSeconds` sent to StartConfigurationSession, if any.
    pub required_minimum_poll_interval: Option<u64>,
    pub at: Instant,
    pub signature_ok: bool,
    /// Why the signature was refused, when it was.
    pub signature_error: Option<String>,
    /// The fault injected into this call, if any.
    pub fault: Option<Fault>,
    /// The status sent, `None` when the call hung or was cut mid-body.
    pub status: Option<u16>,
    /// A GetLatestConfiguration that came sooner than the interval advised to its session.
    pub early: bool,
    /// Which TCP connection carried the call, numbered from 1 in accept order.
    pub connection: u64,
}

/// The running fake. Dropping it stops the listener, closes every connection and ends hangs.
pub struct FakeAppConfig {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Mutex<Option<Acceptor>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when hung requests are released or the fake shuts down.
    wake: Condvar,
}

struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

type Triple = [String; 3];

struct Deployment {
    body: Vec<u8>,
    content_type: String,
    version_label: Option<String>,
    /// Internal version number, new on every deploy.
    version: u64,
}

struct Session {
    requested: String,
    target: Triple,
    interval_seconds: u64,
    last_version_sent: Option<u64>,
    /// When the last full `200` was produced and the interval it advised.
    last_answer: Option<(Instant, u64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenState {
    Live(usize),
    Used(usize),
    Expired(usize),
}

/// What a handled request turns into on the socket.
enum Reply {
    Whole(RawResponse),
    Truncated(RawResponse),
    Hang,
}

#[derive(Default)]
struct State {
    credentials: Option<ExpectedCredentials>,
    region: String,
    max_clock_skew: Option<Duration>,
    deployments: HashMap<Triple, Deployment>,
    aliases: HashMap<Triple, Triple>,
    versions_deployed: u64,
    sessions: Vec<Session>,
    tokens: HashMap<String, TokenState>,
    tokens_seen: HashSet<String>,
    tokens_received_twice: usize,
    tokens_issued: u64,
    token_seed: RandomState,
    poll_interval_seconds: Option<u64>,
    unchanged_as_204: bool,
    faults: VecDeque<(FaultScope, Fault, usize)>,
    response_delay: Duration,
    calls: Vec<CallRecord>,
    early_polls: usize,
    connections: HashMap<u64, TcpStream>,
    connections_accepted: u64,
    max_open_connections: usize,
    in_flight: usize,
    max_in_flight: usize,
    hang_generation: u64,
    shutting_down: bool,
}

impl FakeAppConfig {
    /// Binds `127.0.0.1:0` and starts accepting. Expects [`TEST_ACCESS_KEY`] /
    /// [`TEST_SECRET_KEY`] with no session token, region [`TEST_REGION`], and a 5-minute clock
    /// skew bound. Panics if loopback cannot be bound.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake AppConfigData");
        let port = listener
            .local_addr()
            .expect("local address of the fake")
            .port();
        let state = State {
            credentials: Some(ExpectedCredentials {
                access_key: TEST_ACCESS_KEY.to_string(),
                secret_key: TEST_SECRET_KEY.to_string(),
                session_token: None,
            }),
            region: TEST_REGION.to_string(),
            max_clock_skew: Some(DEFAULT_MAX_CLOCK_SKEW),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
        });
        let acceptor = spawn_acceptor(listener, Arc::clone(&shared));
        Self {
            shared,
            port,
            acceptor: Mutex::new(Some(acceptor)),
        }
    }

    /// `http://127.0.0.1:PORT`, the value for `AWS_ENDPOINT_URL_APPCONFIGDATA`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Variables that point the agent at this fake with its current credentials and region:
    /// `AWS_ENDPOINT_URL_APPCONFIGDATA`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, and `AWS_SESSION_TOKEN` when one is expected.
    pub fn agent_vars(&self) -> Vec<(String, String)> {
        let credentials = self.credentials();
        let mut vars = vec![
            ("AWS_ENDPOINT_URL_APPCONFIGDATA".to_string(), self.url()),
            ("AWS_REGION".to_string(), self.lock().region.clone()),
            ("AWS_ACCESS_KEY_ID".to_string(), credentials.access_key),
            ("AWS_SECRET_ACCESS_KEY".to_string(), credentials.secret_key),
        ];
        if let Some(token) = credentials.session_token {
            vars.push(("AWS_SESSION_TOKEN".to_string(), token));
        }
        vars
    }

    /// Requests must from now on be signed with these credentials (and carry exactly this
    /// session token, signed, when `Some`).
    pub fn set_credentials(&self, access_key: &str, secret_key: &str, session_token: Option<&str>) {
        self.lock().credentials = Some(ExpectedCredentials {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: session_token.map(str::to_string),
        });
    }

    /// The credentials currently expected, for tests that sign requests themselves.
    pub fn credentials(&self) -> ExpectedCredentials {
        self.lock()
            .credentials
            .clone()
            .unwrap_or_else(|| ExpectedCredentials {
                access_key: String::new(),
                secret_key: String::new(),
                session_token: None,
            })
    }

    /// The region expected in the credential scope.
    pub fn set_region(&self, region: &str) {
        self.lock().region = region.to_string();
    }

    /// How far `x-amz-date` may be from now; `None` turns the check off.
    pub fn set_max_clock_skew(&self, bound: Option<Duration>) {
        self.lock().max_clock_skew = bound;
    }

    /// Deploys a new version of `app:env:profile` (callable any time). Every open session gets
    /// the new body on its next poll. `version_label` becomes the `Version-Label` header.
    pub fn deploy(
        &self,
        app: &str,
        env: &str,
        profile: &str,
        body: &[u8],
        content_type: &str,
        version_label: Option<&str>,
    ) {
        let mut state = self.lock();
        state.versions_deployed += 1;
        let deployment = Deployment {
            body: body.to_vec(),
            content_type: content_type.to_string(),
            version_label: version_label.map(str::to_string),
            version: state.versions_deployed,
        };
        state
            .deployments
            .insert(triple([app, env, profile]), deployment);
    }

    /// Makes `alias` (`[app, env, profile]`, e.g. with IDs instead of names) start sessions on the
    /// configuration deployed under `target`. Sessions remember the alias they were started with.
    pub fn add_alias(&self, alias: [&str; 3], target: [&str; 3]) {
        self.lock().aliases.insert(triple(alias), triple(target));
    }

    /// The `Next-Poll-Interval-In-Seconds` to send. Until called, the session's
    /// `RequiredMinimumPollIntervalInSeconds` is sent (60 when absent, as AWS does).
    pub fn set_poll_interval(&self, seconds: u64) {
        self.lock().poll_interval_seconds = Some(seconds);
    }

    /// Answer an unchanged poll with `204` instead of `200` and an empty body, as some
    /// emulators do (wire.md §2).
    pub fn answer_unchanged_with_204(&self, enabled: bool) {
        self.lock().unchanged_as_204 = enabled;
    }

    /// Every token handed out so far now answers 400 `Expired`, as after 24 hours.
    pub fn expire_all_tokens(&self) {
        for token_state in self.lock().tokens.values_mut() {
            if let TokenState::Live(session) = *token_state {
                *token_state = TokenState::Expired(session);
            }
        }
    }

    /// Makes the next `calls` correctly signed calls in `scope` fail with `fault`. Faults queue in
    /// order; a call takes the first queued fault whose scope matches it.
    pub fn inject_fault(&self, scope: FaultScope, fault: Fault, calls: usize) {
        if calls > 0 {
            self.lock().faults.push_back((scope, fault, calls));
        }
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Ends every `Hang` in progress: those connections are closed without an answer.
    pub fn release_hung_requests(&self) {
        self.lock().hang_generation += 1;
        self.shared.wake.notify_all();
    }

    /// Waits this long before answering each request (after counting it in flight), so that
    /// concurrent calls overlap.
    pub fn set_response_delay(&self, delay: Duration) {
        self.lock().response_delay = delay;
    }

    /// Stops listening (new connections are refused), closes every open connection and ends
    /// hangs. State (deployments, sessions, tokens, records) is kept.
    pub fn stop_listening(&self) {
        let acceptor = self
            .acceptor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(acceptor) = acceptor {
            acceptor.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept() so the thread sees the flag and drops the listener.
            let _ = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1));
            let _ = acceptor.thread.join();
        }
        let mut state = self.lock();
        for stream in state.connections.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        state.hang_generation += 1;
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Listens again on the same port after [`Self::stop_listening`]. Does nothing if already
    /// listening.
    pub fn resume_listening(&self) -> io::Result<()> {
        let mut acceptor = self.acceptor.lock().unwrap_or_else(PoisonError::into_inner);
        if acceptor.is_none() {
            let listener = TcpListener::bind(self.addr())?;
            *acceptor = Some(spawn_acceptor(listener, Arc::clone(&self.shared)));
        }
        Ok(())
    }

    /// StartConfigurationSession calls received, whatever their outcome.
    pub fn start_session_calls(&self) -> usize {
        self.count(Operation::StartConfigurationSession)
    }

    /// GetLatestConfiguration calls received, whatever their outcome.
    pub fn get_latest_calls(&self) -> usize {
        self.count(Operation::GetLatestConfiguration)
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// Whether any configuration token arrived more than once (wire.md §2: single use).
    pub fn any_token_received_twice(&self) -> bool {
        self.lock().tokens_received_twice > 0
    }

    /// GetLatestConfiguration calls that came sooner than the interval advised to their session.
    pub fn early_poll_count(&self) -> usize {
        self.lock().early_polls
    }

    /// TCP connections open right now.
    pub fn open_connections(&self) -> usize {
        self.lock().connections.len()
    }

    /// The most TCP connections ever open at once (since start or [`Self::reset_peaks`]).
    pub fn max_open_connections(&self) -> usize {
        self.lock().max_open_connections
    }

    /// TCP connections accepted since start.
    pub fn connections_accepted(&self) -> u64 {
        self.lock().connections_accepted
    }

    /// The most requests ever being handled at once (read, not yet answered).
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Sets both peaks back to the current values, to measure one phase of a test.
    pub fn reset_peaks(&self) {
        let mut state = self.lock();
        state.max_open_connections = state.connections.len();
        state.max_in_flight = state.in_flight;
    }

    fn count(&self, operation: Operation) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.operation == operation)
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Drop for FakeAppConfig {
    fn drop(&mut self) {
        self.lock().shutting_down = true;
        self.stop_listening();
    }
}

impl Shared {
    /// The one place lock poisoning is handled: a panicking test thread must not hide the state
    /// from the assertions that follow.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn spawn_acceptor(listener: TcpListener, shared: Arc<Shared>) -> Acceptor {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = Arc::clone(&stop);
    let thread = thread::spawn(move || {
        for stream in listener.incoming() {
            if stop_flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve_connection(&shared, stream));
        }
    });
    Acceptor { stop, thread }
}

/// Serves requests on one connection until the client closes it, it idles out, or a reply ends it.
fn serve_connection(shared: &Shared, stream: TcpStream) {
    let id = {
        let mut state = shared.lock();
        state.connections_accepted += 1;
        let id = state.connections_accepted;
        if let Ok(clone) = stream.try_clone() {
            state.connections.insert(id, clone);
        }
        state.max_open_connections = state.max_open_connections.max(state.connections.len());
        id
    };
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let mut writer = stream;
    if let Ok(read_half) = writer.try_clone() {
        let mut reader = BufReader::new(read_half);
        loop {
            let request = match http_wire::read_request(&mut reader) {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                    let response = RawResponse::new(400, error.to_string().into_bytes());
                    let _ = http_wire::write_response(&mut writer, &response, true);
                    break;
                }
                Err(_) => break,
            };
            if !exchange(shared, &request, &mut writer, id) {
                break;
            }
        }
    }
    shared.lock().connections.remove(&id);
}

/// Handles one request and writes its reply. Returns whether the connection stays open.
fn exchange(
    shared: &Shared,
    request: &RawRequest,
    writer: &mut TcpStream,
    connection: u64,
) -> bool {
    let (reply, delay) = {
        let mut state = shared.lock();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        let reply = handle(&mut state, request, connection);
        (reply, state.response_delay)
    };
    if !delay.is_zero() {
        thread::sleep(delay);
    }

    let keep_open = match reply {
        Reply::Whole(response) => {
            let written = http_wire::write_response(writer, &response, request.wants_close);
            written.is_ok() && !request.wants_close
        }
        Reply::Truncated(response) => {
            let _ = http_wire::write_truncated_response(writer, &response);
            false
        }
        Reply::Hang => {
            let mut state = shared.lock();
            let generation = state.hang_generation;
            let deadline = Instant::now() + HANG_BOUND;
            while state.hang_generation == generation && !state.shutting_down {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                state = shared
                    .wake
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            false
        }
    };
    shared.lock().in_flight -= 1;
    keep_open
}

/// Decides the reply to one request, records the call and updates sessions and tokens.
fn handle(state: &mut State, request: &RawRequest, connection: u64) -> Reply {
    let operation = match (request.method.as_str(), request.path()) {
        ("POST", "/configurationsessions") => Operation::StartConfigurationSession,
        ("GET", "/configuration") => Operation::GetLatestConfiguration,
        _ => Operation::Unknown,
    };
    let mut call = CallRecord {
        operation,
        key: None,
        token: None,
        required_minimum_poll_interval: None,
        at: Instant::now(),
        signature_ok: false,
        signature_error: None,
        fault: None,
        status: None,
        early: false,
        connection,
    };
    let start_body: Option<Value> = serde_json::from_slice(&request.body).ok();
    match operation {
        Operation::StartConfigurationSession => {
            call.key = start_body
                .as_ref()
                .and_then(requested_key)
                .map(|key| key.join(":"));
            call.required_minimum_poll_interval = start_body
                .as_ref()
                .and_then(|body| body.get("RequiredMinimumPollIntervalInSeconds"))
                .and_then(Value::as_u64);
        }
        Operation::GetLatestConfiguration => {
            call.token = query_parameter(request.query(), "configuration_token");
            let session = call
                .token
                .as_ref()
                .and_then(|token| state.tokens.get(token));
            call.key = session.map(|token_state| {
                let (TokenState::Live(index)
                | TokenState::Used(index)
                | TokenState::Expired(index)) = *token_state;
                state.sessions[index].requested.clone()
            });
        }
        Operation::Unknown => {}
    }

    let verdict = verify_signature(state, request);
    call.signature_ok = verdict.is_ok();
    let reply = match verdict {
        Err((name, message)) => {
            let response = error_response(403, name, &message, None);
            call.signature_error = Some(message);
            Reply::Whole(response)
        }
        Ok(()) => {
            call.fault = take_fault(state, operation);
            match operation {
                Operation::StartConfigurationSession => {
                    start_session(state, request, start_body.as_ref(), call.fault)
                }
                Operation::GetLatestConfiguration => {
                    get_latest(state, call.token.as_deref(), call.fault, &mut call.early)
                }
                Operation::Unknown => Reply::Whole(error_response(
                    404,
                    "UnknownOperationException",
                    &format!("no operation at {} {}", request.method, request.path()),
                    None,
                )),
            }
        }
    };
    call.status = match &reply {
        Reply::Whole(response) => Some(response.status),
        Reply::Truncated(_) | Reply::Hang => None,
    };
    state.calls.push(call);
    reply
}

/// Checks the signature; on failure returns the error name AWS's front end would send.
fn verify_signature(state: &State, request: &RawRequest) -> Result<(), (&'static str, String)> {
    let Some(credentials) = state.credentials.clone() else {
        return Err((
            "UnrecognizedClientException",
            "no credentials configured".to_string(),
        ));
    };
    let verifier = Verifier {
        credentials,
        region: state.region.clone(),
        service: SIGNING_NAME.to_string(),
        max_clock_skew: state.max_clock_skew,
    };
    let received = ReceivedRequest {
        method: &request.method,
        target: &request.target,
        headers: &request.headers,
        body: &request.body,
    };
    verifier
        .verify(&received, SystemTime::now())
        .map_err(|error| {
            use super::sigv4::SignatureError as E;
            let name = match error {
                // AWS answers an unknown key or session token this way, any other fault as below.
                E::UnknownAccessKey { .. } | E::SecurityTokenMismatch | E::SecurityTokenMissing => {
                    "UnrecognizedClientException"
                }
                _ => "InvalidSignatureException",
            };
            (name, error.to_string())
        })
}

fn take_fault(state: &mut State, operation: Operation) -> Option<Fault> {
    let position = state.faults.iter().position(|(scope, _, _)| match scope {
        FaultScope::AnyOperation => operation != Operation::Unknown,
        FaultScope::StartConfigurationSession => operation == Operation::StartConfigurationSession,
        FaultScope::GetLatestConfiguration => operation == Operation::GetLatestConfiguration,
    })?;
    let entry = &mut state.faults[position];
    let fault = entry.1;
    entry.2 -= 1;
    if entry.2 == 0 {
        state.faults.remove(position);
    }
    Some(fault)
}

/// The answers of faults that stop a call before it is processed.
fn front_end_fault(fault: Fault) -> Option<RawResponse> {
    let (status, name, message) = match fault {
        Fault::Status500 => (500, "InternalServerException", "injected internal error"),
        Fault::Status503 => (
            503,
            "ServiceUnavailableException",
            "injected unavailability",
        ),
        Fault::Throttle429 => (429, "ThrottlingException", "Rate exceeded"),
        Fault::Forbidden403 => (403, "AccessDeniedException", "injected access denial"),
        Fault::ExpiredToken400 => return Some(token_error("Expired")),
        Fault::CorruptedToken400 => return Some(token_error("Corrupted")),
        Fault::ResetMidBody | Fault::Hang | Fault::MalformedBody => return None,
    };
    Some(error_response(status, name, message, None))
}

fn start_session(
    state: &mut State,
    request: &RawRequest,
    body: Option<&Value>,
    fault: Option<Fault>,
) -> Reply {
    match fault {
        Some(Fault::Hang) => return Reply::Hang,
        Some(Fault::MalformedBody) => {
            let response = RawResponse::new(201, b"<html>not json".to_vec());
            return Reply::Whole(response.with_header("Content-Type", "application/json"));
        }
        Some(other) => {
            if let Some(response) = front_end_fault(other) {
                return Reply::Whole(response);
            }
        }
        None => {}
    }

    let content_type = request.header("content-type").unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        let message = format!("Content-Type is {content_type:?}; expected application/json");
        return Reply::Whole(error_response(400, "BadRequestException", &message, None));
    }
    let (requested, interval) = match validate_start_body(body) {
        Ok(valid) => valid,
        Err(message) => {
            return Reply::Whole(error_response(400, "BadRequestException", &message, None))
        }
    };
    let target = state
        .aliases
        .get(&requested)
        .cloned()
        .unwrap_or_else(|| requested.clone());
    if !state.deployments.contains_key(&target) {
        let (resource, name) = missing_resource(state, &requested);
        let message = format!("{resource} '{name}' was not found");
        let extra = json!({ "ResourceType": resource });
        return Reply::Whole(error_response(
            404,
            "ResourceNotFoundException",
            &message,
            Some(extra),
        ));
    }

    state.sessions.push(Session {
        requested: requested.join(":"),
        target,
        interval_seconds: interval,
        last_version_sent: None,
        last_answer: None,
    });
    let token = issue_token(state, state.sessions.len() - 1);
    let body = json!({ "InitialConfigurationToken": token })
        .to_string()
        .into_bytes();
    let response = RawResponse::new(201, body).with_header("Content-Type", "application/json");
    if fault == Some(Fault::ResetMidBody) {
        Reply::Truncated(response)
    } else {
        Reply::Whole(response)
    }
}

fn get_latest(
    state: &mut State,
    token: Option<&str>,
    fault: Option<Fault>,
    early: &mut bool,
) -> Reply {
    let Some(token) = token else {
        let message = "ConfigurationToken is required";
        return Reply::Whole(error_response(400, "BadRequestException", message, None));
    };
    if !state.tokens_seen.insert(token.to_string()) {
        state.tokens_received_twice += 1;
    }
    match fault {
        Some(Fault::Hang) => return Reply::Hang,
        Some(fault @ (Fault::ExpiredToken400 | Fault::CorruptedToken400)) => {
            if let Some(TokenState::Live(session)) = state.tokens.get(token).copied() {
                state
                    .tokens
                    .insert(token.to_string(), TokenState::Expired(session));
            }
            return Reply::Whole(front_end_fault(fault).unwrap_or_else(|| token_error("Expired")));
        }
        Some(other) => {
            if let Some(response) = front_end_fault(other) {
                return Reply::Whole(response);
            }
        }
        None => {}
    }

    let index = match state.tokens.get(token).copied() {
        None => return Reply::Whole(token_error("Corrupted")),
        // A token already used is refused like an expired one: it can never be valid again.
        Some(TokenState::Used(_) | TokenState::Expired(_)) => {
            return Reply::Whole(token_error("Expired"))
        }
        Some(TokenState::Live(index)) => index,
    };
    state
        .tokens
        .insert(token.to_string(), TokenState::Used(index));
    let now = Instant::now();
    if let Some((answered, advised)) = state.sessions[index].last_answer {
        if now.duration_since(answered) < Duration::from_secs(advised) {
            *early = true;
            state.early_polls += 1;
        }
    }

    let next_token = issue_token(state, index);
    let interval = state
        .poll_interval_seconds
        .unwrap_or(state.sessions[index].interval_seconds);
    let session = &state.sessions[index];
    let Some(deployment) = state.deployments.get(&session.target) else {
        let message = format!("Configuration '{}' was not found", session.requested);
        let extra = json!({ "ResourceType": "Configuration" });
        return Reply::Whole(error_response(
            404,
            "ResourceNotFoundException",
            &message,
            Some(extra),
        ));
    };
    let changed = session.last_version_sent != Some(deployment.version);
    let (status, body) = match (changed, state.unchanged_as_204) {
        (true, _) => (200, deployment.body.clone()),
        (false, false) => (200, Vec::new()),
        (false, true) => (204, Vec::new()),
    };
    let mut response = RawResponse::new(status, body)
        .with_header("Next-Poll-Interval-In-Seconds", &interval.to_string())
        .with_header("Content-Type", &deployment.content_type);
    if fault != Some(Fault::MalformedBody) {
        response = response.with_header("Next-Poll-Configuration-Token", &next_token);
    }
    if let Some(label) = &deployment.version_label {
        response = response.with_header("Version-Label", label);
    }
    let version = deployment.version;
    let session = &mut state.sessions[index];
    session.last_version_sent = Some(version);
    match fault {
        Some(Fault::ResetMidBody) => Reply::Truncated(response),
        Some(Fault::MalformedBody) => Reply::Whole(response),
        _ => {
            session.last_answer = Some((now, interval));
            Reply::Whole(response)
        }
    }
}

/// Validates a StartConfigurationSession body (wire.md §2) into the requested key and the poll
/// interval the session will advise.
fn validate_start_body(body: Option<&Value>) -> Result<(Triple, u64), String> {
    let body = body
        .filter(|body| body.is_object())
        .ok_or("the body is not a JSON object")?;
    let mut key: Vec<String> = Vec::new();
    for field in [
        "ApplicationIdentifier",
        "EnvironmentIdentifier",
        "ConfigurationProfileIdentifier",
    ] {
        let value = body.get(field).and_then(Value::as_str).unwrap_or("");
        let length = value.chars().count();
        if !(1..=128).contains(&length) {
            return Err(format!("{field} must be 1 to 128 characters, got {length}"));
        }
        key.push(value.to_string());
    }
    let interval = match body.get("RequiredMinimumPollIntervalInSeconds") {
        None => DEFAULT_POLL_INTERVAL_SECONDS,
        Some(value) => match value.as_u64() {
            Some(seconds) if (15..=86_400).contains(&seconds) => seconds,
            _ => {
                return Err(format!(
                    "RequiredMinimumPollIntervalInSeconds is {value}; expected 15 to 86400"
                ))
            }
        },
    };
    let key: Triple = [key[0].clone(), key[1].clone(), key[2].clone()];
    Ok((key, interval))
}

fn requested_key(body: &Value) -> Option<Triple> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    Some([
        field("ApplicationIdentifier")?,
        field("EnvironmentIdentifier")?,
        field("ConfigurationProfileIdentifier")?,
    ])
}

/// Which level of `requested` is unknown, judged against every deployed key and alias.
fn missing_resource(state: &State, requested: &Triple) -> (&'static str, String) {
    let known: Vec<&Triple> = state
        .deployments
        .keys()
        .chain(state.aliases.keys())
        .collect();
    if !known.iter().any(|key| key[0] == requested[0]) {
        ("Application", requested[0].clone())
    } else if !known
        .iter()
        .any(|key| key[0] == requested[0] && key[1] == requested[1])
    {
        ("Environment", requested[1].clone())
    } else {
        ("ConfigurationProfile", requested[2].clone())
    }
}

/// Makes a fresh token for `session`: random-looking base64 text that always contains `+`, `/`
/// and `=`, so a client that forgets to percent-encode it is caught (wire.md §5).
fn issue_token(state: &mut State, session: usize) -> String {
    state.tokens_issued += 1;
    let mut token = String::from("AYADeJx");
    for round in 0..6u64 {
        let mut bits = state.token_seed.hash_one((state.tokens_issued, round));
        for _ in 0..10 {
            token.push(char::from(BASE64_ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
        match round {
            1 => token.push('+'),
            3 => token.push('/'),
            _ => {}
        }
    }
    token.push_str("==");
    state
        .tokens
        .insert(token.clone(), TokenState::Live(session));
    token
}

/// The 400 AppConfigData sends for a bad token (wire.md §2).
fn token_error(problem: &str) -> RawResponse {
    let extra = json!({
        "Reason": "InvalidParameters",
        "Details": { "InvalidParameters": { "ConfigurationToken": { "Problem": problem } } },
    });
    let message = format!("Request contains an {} token", problem.to_ascii_lowercase());
    error_response(400, "BadRequestException", &message, Some(extra))
}

/// A restJson1 error: the name in `x-amzn-ErrorType`, a JSON body with `Message` plus `extra`.
fn error_response(status: u16, name: &str, message: &str, extra: Option<Value>) -> RawResponse {
    let mut body = json!({ "Message": message });
    if let (Some(map), Some(Value::Object(extra))) = (body.as_object_mut(), extra) {
        map.extend(extra);
    }
    RawResponse::new(status, body.to_string().into_bytes())
        .with_header("x-amzn-ErrorType", name)
        .with_header("Content-Type", "application/json")
}

/// The first query parameter called `name`, percent-decoded as AWS decodes it (a raw `+` is a
/// space, so an unencoded token does not match).
fn query_parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = super::sigv4::decode_query_component(key);
        (key == name.as_bytes()).then(|| {
            String::from_utf8_lossy(&super::sigv4::decode_query_component(value)).into_owned()
        })
    })
}

fn triple(parts: [&str; 3]) -> Triple {
    parts.map(str::to_string)
}
