//! A fake AppConfigData service on `127.0.0.1:0` that speaks wire.md §2 and can misbehave.
//!
//! Owns deployments, sessions, single-use tokens, scripted faults and the record of every call
//! and connection. It must never talk to anything but its own loopback listener. Uses `sigv4` to
//! check every request's signature and `http_wire` for HTTP/1.1 framing; one thread per TCP
//! connection, with keep-alive, so connection counts are what the agent's pool really opened.
//! This file holds the control and observation API and the sockets; `operations` holds what each
//! request does.

use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http_wire::{self, RawRequest, RawResponse};
use super::sigv4::{ExpectedCredentials, DEFAULT_MAX_CLOCK_SKEW};

mod operations;

use operations::{handle, triple, Deployment, Reply, State, TokenState};

/// Access key the fake expects until [`FakeAppConfig::set_credentials`] is called.
pub const TEST_ACCESS_KEY: &str = "AKIDFAKEAPPCONFIG";
/// Secret key the fake expects until [`FakeAppConfig::set_credentials`] is called.
pub const TEST_SECRET_KEY: &str = "fakeSecret/With+Odd=Chars";
/// Region the fake expects in the credential scope until [`FakeAppConfig::set_region`].
pub const TEST_REGION: &str = "us-east-1";
/// A connection with no new request for this long is closed, so no thread outlives its test.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A `Hang` fault gives up after this long even if never released.
const HANG_BOUND: Duration = Duration::from_secs(120);

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
    /// 403 `AccessDeniedException` whose JSON body is padded past 64 KiB, as a front end's
    /// error page may be; not processed.
    Forbidden403LongBody,
    /// 403 `ExpiredTokenException`: the credentials that signed the call have expired, as AWS's
    /// front end answers; not processed (a token stays valid). After it, the fake expects the
    /// credentials given to [`FakeAppConfig::rotate_credentials_on_expiry`], if any.
    ExpiredCredentials403,
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

impl FakeAppConfig {
    /// Binds `127.0.0.1:0` and starts accepting. Expects [`TEST_ACCESS_KEY`] /
    /// [`TEST_SECRET_KEY`] with no session token, region [`TEST_REGION`], and a 5-minute clock
    /// skew bound. Panics if loopback cannot be bound.
    pub fn start() -> Self {
        Self::start_on_port(0).expect("bind the fake AppConfigData on 127.0.0.1:0")
    }

    /// Like [`Self::start`] on `127.0.0.1:port` (`0` picks a free port), for the `fake-aws`
    /// demo program, whose user may want a fixed endpoint. Fails if the port cannot be bound.
    pub fn start_on_port(port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let port = listener.local_addr()?.port();
        let state = State {
            credentials: ExpectedCredentials {
                access_key: TEST_ACCESS_KEY.to_string(),
                secret_key: TEST_SECRET_KEY.to_string(),
                session_token: None,
            },
            region: TEST_REGION.to_string(),
            max_clock_skew: Some(DEFAULT_MAX_CLOCK_SKEW),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
        });
        let acceptor = spawn_acceptor(listener, Arc::clone(&shared));
        Ok(Self {
            shared,
            port,
            acceptor: Mutex::new(Some(acceptor)),
        })
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
        self.lock().credentials = ExpectedCredentials {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: session_token.map(str::to_string),
        };
    }

    /// Models credentials that run out: the next `ExpiredCredentials403` fault answered also
    /// makes the fake expect these credentials from then on (the old ones are expired), so a
    /// client must fetch new ones before its retry is accepted.
    pub fn rotate_credentials_on_expiry(
        &self,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) {
        self.lock().credentials_after_expiry = Some(ExpectedCredentials {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            session_token: session_token.map(str::to_string),
        });
    }

    /// The credentials currently expected, for tests that sign requests themselves.
    pub fn credentials(&self) -> ExpectedCredentials {
        self.lock().credentials.clone()
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

    /// The key of each StartConfigurationSession call, in arrival order.
    pub fn session_keys(&self) -> Vec<Option<String>> {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.operation == Operation::StartConfigurationSession)
            .map(|call| call.key.clone())
            .collect()
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// Every configuration token handed out so far (initial and next ones, used or not), as
    /// issued, in no particular order; for tests that look for them where they must not be.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().tokens.keys().cloned().collect()
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
            // Registered here, before the thread starts, so that a test that has just connected
            // sees the connection counted and `stop_listening` can always close it.
            let id = register_connection(&shared, &stream);
            let shared = Arc::clone(&shared);
            thread::spawn(move || serve_connection(&shared, stream, id));
        }
    });
    Acceptor { stop, thread }
}

/// Counts a new connection and keeps a handle to shut it down; returns its number.
fn register_connection(shared: &Shared, stream: &TcpStream) -> u64 {
    let mut state = shared.lock();
    state.connections_accepted += 1;
    let id = state.connections_accepted;
    if let Ok(clone) = stream.try_clone() {
        state.connections.insert(id, clone);
    }
    state.max_open_connections = state.max_open_connections.max(state.connections.len());
    id
}

/// Serves requests on one connection until the client closes it, it idles out, or a reply ends it.
fn serve_connection(shared: &Shared, stream: TcpStream, id: u64) {
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
    // The hang generation is read under the same lock as the request is handled, so a release
    // that comes before the wait starts is not missed.
    let (reply, delay, generation) = {
        let mut state = shared.lock();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        let reply = handle(&mut state, request, connection);
        (reply, state.response_delay, state.hang_generation)
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
            let deadline = Instant::now() + HANG_BOUND;
            while state.hang_generation == generation {
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
