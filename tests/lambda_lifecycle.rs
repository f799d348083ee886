//! The agent as a Lambda extension (product.md §4–5, wire.md §1), end to end: the real binary
//! under the fake Extensions API, fetching from the fake AppConfigData.
//!
//! Every assertion is on what the fakes recorded (which calls, in which order, with which
//! statuses) or on what a client got; waits use the fakes' wait helpers and
//! `support::wait_until`, whose bounds only limit how long a failing test takes. The fakes live
//! in `tests/support`; this file talks to nothing but them and the agent, all on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step in a test should fail it loudly"
)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use support::agent::{self, AgentProcess, AGENT_BINARY};
use support::appconfigdata::{CallRecord, FakeAppConfig, Fault, FaultScope, Operation};
use support::extensions::{
    deadline_in, Call, CallKind, FakeExtensionsApi, NextEventFailure, RegisterBodyStyle,
};
use support::wait_until;

/// Upper bound for waits that normally end in milliseconds; never a sleep.
const BOUND: Duration = Duration::from_secs(10);
/// Lambda gives all extensions together about 2 s to shut down (wire.md §1).
const SHUTDOWN_BUDGET_MS: u64 = 2000;
/// The shortest poll interval the agent accepts (settings.rs), used where entries must fall due.
const SHORT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The file name the agent runs under in the tests of its registered name.
const RENAMED: &str = "appconfig-lite-test";
const KEY: (&str, &str, &str) = ("orders", "prod", "settings");
const KEY_TEXT: &str = "orders:prod:settings";
const PATH: &str = "/applications/orders/environments/prod/configurations/settings";
const BODY_V1: &[u8] = br#"{"limit":1}"#;
const BODY_V2: &[u8] = br#"{"limit":2}"#;

/// The two fakes of one test. Dropped after the agent (declared before it in each test), so
/// the agent never sees them vanish while it runs.
struct Fakes {
    upstream: FakeAppConfig,
    runtime: FakeExtensionsApi,
}

impl Fakes {
    /// Both fakes, with version 1 of [`KEY`] deployed.
    fn start() -> Fakes {
        let fakes = Fakes {
            upstream: FakeAppConfig::start(),
            runtime: FakeExtensionsApi::start(),
        };
        fakes.deploy(BODY_V1, "1");
        fakes
    }

    fn deploy(&self, body: &[u8], version: &str) {
        let (app, env, profile) = KEY;
        self.upstream
            .deploy(app, env, profile, body, "application/json", Some(version));
    }

    /// The agent's environment inside Lambda, plus `extra`.
    fn vars(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars = self.upstream.agent_vars();
        vars.push((
            "AWS_LAMBDA_RUNTIME_API".to_string(),
            self.runtime.runtime_api(),
        ));
        vars.push(("AWS_LAMBDA_FUNCTION_NAME".to_string(), "demo".to_string()));
        for (name, value) in extra {
            vars.push((name.to_string(), value.to_string()));
        }
        vars
    }

    /// Starts the real binary and waits for it to log its listening address.
    fn start_agent(&self, extra: &[(&str, &str)]) -> AgentProcess {
        AgentProcess::start(&self.vars(extra))
    }

    /// Starts the agent with [`KEY`] in `PREFETCH_LIST` and `extra` on top, and waits for its
    /// first `event/next`: INIT is over.
    fn start_agent_past_init(&self, extra: &[(&str, &str)]) -> AgentProcess {
        let mut vars = vec![("PREFETCH_LIST", KEY_TEXT)];
        vars.extend_from_slice(extra);
        let agent = self.start_agent(&vars);
        self.expect_next_calls(1, &agent);
        agent
    }

    /// Like [`Fakes::start_agent_past_init`], with [`KEY`] due again every second: the fake
    /// advises, and the agent is set to, the shortest poll interval.
    fn start_agent_polling_every_second(&self, extra: &[(&str, &str)]) -> AgentProcess {
        self.upstream.set_poll_interval(1);
        let mut vars = vec![("POLL_INTERVAL_SECONDS", "1")];
        vars.extend_from_slice(extra);
        self.start_agent_past_init(&vars)
    }

    /// Sends SHUTDOWN and expects the agent to exit with code 0.
    fn shut_down(&self, agent: &mut AgentProcess, context: &str) {
        self.runtime
            .shutdown("spindown", deadline_in(SHUTDOWN_BUDGET_MS));
        let status = agent.wait_exit(BOUND).expect("the agent exits on SHUTDOWN");
        assert_eq!(status.code(), Some(0), "{context}: {}", agent.stderr_text());
    }

    /// `event/next` calls so far, in arrival order.
    fn next_calls(&self) -> Vec<Call> {
        self.calls_of(CallKind::NextEvent)
    }

    fn calls_of(&self, kind: CallKind) -> Vec<Call> {
        let calls = self.runtime.calls();
        calls.into_iter().filter(|call| call.kind == kind).collect()
    }

    /// Waits until the agent has called `event/next` `n` times, failing the test if not.
    fn expect_next_calls(&self, n: usize, agent: &AgentProcess) {
        assert!(
            self.runtime.wait_for_next_calls(n, BOUND),
            "the agent did not make event/next call number {n}; calls: {:?}; log:\n{}",
            kinds(&self.runtime.calls()),
            agent.stderr_text()
        );
    }

    /// Delivers one INVOKE and waits until the agent is back in `event/next`; `nexts` is the
    /// number of `event/next` calls so far and is updated.
    fn invoke(&self, nexts: &mut usize, agent: &AgentProcess) {
        self.runtime.invoke(deadline_in(3000));
        *nexts += 1;
        self.expect_next_calls(*nexts, agent);
    }

    /// Delivers INVOKEs one at a time (each after the agent is back in `event/next`) until the
    /// fake AppConfigData has received more than `before` calls, i.e. until an INVOKE found an
    /// entry due. The poll interval is real time (1 s in these tests): the wait for it to pass
    /// since the last upstream call only saves INVOKEs, the loop does not rely on it.
    fn invoke_until_upstream_called(&self, before: usize, nexts: &mut usize, agent: &AgentProcess) {
        self.wait_out_poll_interval();
        let called = wait_until(BOUND, || {
            self.invoke(nexts, agent);
            self.upstream.calls().len() > before
        });
        assert!(
            called,
            "no INVOKE refreshed anything; log:\n{}",
            agent.stderr_text()
        );
    }

    /// When the agent asked for the event after the INVOKE that made it call upstream at
    /// `first_upstream_call`: the `event/next` following the last one that arrived before that
    /// call (that one delivered the INVOKE).
    fn next_call_after_invoke(&self, first_upstream_call: Instant) -> Instant {
        let nexts = self.next_calls();
        let delivering = nexts
            .iter()
            .rposition(|call| call.time < first_upstream_call)
            .expect("an event/next delivered the INVOKE");
        nexts
            .get(delivering + 1)
            .expect("the agent asked for the next event")
            .time
    }

    /// Waits until [`SHORT_POLL_INTERVAL`] has passed since the last upstream call.
    fn wait_out_poll_interval(&self) {
        if let Some(last) = self.upstream.calls().last().map(|call| call.at) {
            assert!(wait_until(BOUND, || last.elapsed() >= SHORT_POLL_INTERVAL));
        }
    }
}

fn kinds(calls: &[Call]) -> Vec<CallKind> {
    calls.iter().map(|call| call.kind).collect()
}

fn operations(calls: &[CallRecord]) -> Vec<(Operation, Option<u16>)> {
    calls
        .iter()
        .map(|call| (call.operation, call.status))
        .collect()
}

/// Asserts a 200 with `body` for [`PATH`].
fn expect_data(agent: &AgentProcess, body: &[u8], version: &str) {
    let response = agent.get(PATH);
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, String::from_utf8_lossy(body).as_ref()),
        "log:\n{}",
        agent.stderr_text()
    );
    assert_eq!(response.header("Configuration-Version"), Some(version));
}

/// The agent binary copied under the file name [`RENAMED`], made once per test run.
fn renamed_binary() -> &'static str {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    let path = COPY.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lambda_lifecycle");
        std::fs::create_dir_all(&dir).expect("create the directory for the renamed agent");
        let path = dir.join(RENAMED);
        // Copied beside and renamed into place, so an earlier run's copy being executed by
        // another test binary is replaced, never written to.
        let staging = dir.join(format!("{RENAMED}.{}", std::process::id()));
        std::fs::copy(AGENT_BINARY, &staging).expect("copy the agent binary");
        std::fs::rename(&staging, &path).expect("rename the copied agent binary");
        path
    });
    path.to_str().expect("the target directory is UTF-8")
}

/// The wall clock in epoch milliseconds, to compare with a `deadlineMs`.
fn now_ms() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    u64::try_from(ms).unwrap()
}

#[test]
fn the_listener_serves_requests_while_register_is_still_unanswered() {
    let fakes = Fakes::start();
    fakes.runtime.hold_register();
    let agent = fakes.start_agent(&[("PREFETCH_LIST", KEY_TEXT)]);
    assert!(fakes.runtime.wait_for_calls(CallKind::Register, 1, BOUND));

    let ping = agent.get("/ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "healthy"));
    // A handler calling during INIT gets its data even before the agent is registered.
    expect_data(&agent, BODY_V1, "1");
    assert_eq!(fakes.runtime.registered(), None, "register was answered");
    assert_eq!(kinds(&fakes.runtime.calls()), [CallKind::Register]);

    fakes.runtime.release_register();
    fakes.expect_next_calls(1, &agent);
    // The prefetch found the entry already fetched and did not start a second session.
    assert_eq!(fakes.upstream.start_session_calls(), 1);
    assert_eq!(fakes.upstream.get_latest_calls(), 1);
}

#[test]
fn it_registers_for_invoke_and_shutdown_under_the_executables_file_name() {
    for style in [
        RegisterBodyStyle::Normal,
        RegisterBodyStyle::Empty,
        RegisterBodyStyle::TrailingNewline,
    ] {
        let fakes = Fakes::start();
        // Any other name would register an internal extension, refused SHUTDOWN (wire.md §1).
        fakes.runtime.expect_name(RENAMED);
        fakes.runtime.register_body_style(style);
        let mut agent = AgentProcess::start_program(renamed_binary(), &[], &fakes.vars(&[]));
        fakes.expect_next_calls(1, &agent);

        let registration = fakes.runtime.registered().expect("the agent registered");
        assert_eq!(registration.name, RENAMED, "{style:?}");
        assert_eq!(registration.events, ["INVOKE", "SHUTDOWN"], "{style:?}");
        assert_eq!(
            kinds(&fakes.runtime.calls()),
            [CallKind::Register, CallKind::NextEvent],
            "{style:?}"
        );

        fakes.shut_down(&mut agent, &format!("{style:?}"));
    }
}

#[test]
fn a_request_during_init_for_a_prefetched_entry_joins_the_prefetch_and_gets_the_data() {
    let fakes = Fakes::start();
    // Each upstream call takes this long, so the prefetch is still running when the request
    // comes.
    fakes
        .upstream
        .set_response_delay(Duration::from_millis(400));
    let agent = fakes.start_agent(&[("PREFETCH_LIST", KEY_TEXT)]);
    assert!(wait_until(BOUND, || fakes.upstream.start_session_calls() == 1));
    assert!(
        fakes.next_calls().is_empty(),
        "INIT ended before the prefetch"
    );

    let sent = Instant::now();
    expect_data(&agent, BODY_V1, "1");
    fakes.expect_next_calls(1, &agent);
    assert!(
        fakes.next_calls()[0].time > sent,
        "the request was not made during INIT"
    );
    assert_eq!(fakes.upstream.start_session_calls(), 1, "no single flight");
    assert_eq!(fakes.upstream.get_latest_calls(), 1);
}

#[test]
fn the_first_event_next_comes_only_after_every_prefetch_finished() {
    let fakes = Fakes::start();
    let keys = ["orders:prod:a", "orders:prod:b", "orders:prod:c"];
    for key in keys {
        let parts: Vec<&str> = key.split(':').collect();
        let body = format!(r#"{{"key":"{key}"}}"#);
        fakes.upstream.deploy(
            parts[0],
            parts[1],
            parts[2],
            body.as_bytes(),
            "application/json",
            Some("1"),
        );
    }
    let delay = Duration::from_millis(150);
    fakes.upstream.set_response_delay(delay);
    let agent = fakes.start_agent(&[("PREFETCH_LIST", &keys.join(","))]);
    fakes.expect_next_calls(1, &agent);

    let first_next = fakes.next_calls()[0].time;
    let calls = fakes.upstream.calls();
    for key in keys {
        let latest = calls
            .iter()
            .find(|call| {
                call.operation == Operation::GetLatestConfiguration
                    && call.key.as_deref() == Some(key)
            })
            .unwrap_or_else(|| panic!("no GetLatestConfiguration for {key}: {calls:?}"));
        assert_eq!(latest.status, Some(200), "{key}");
        // The fake answers no sooner than `delay` after the call arrived.
        assert!(
            latest.at + delay <= first_next,
            "event/next came before the prefetch of {key} was answered"
        );
    }

    // The prefetched data is cached: served with AppConfigData gone.
    fakes.upstream.stop_listening();
    for key in keys {
        let profile = key.rsplit(':').next().unwrap();
        let path = format!("/applications/orders/environments/prod/configurations/{profile}");
        let response = agent.get(&path);
        assert_eq!(response.status, 200, "{key}: {response}");
        assert_eq!(response.text(), format!(r#"{{"key":"{key}"}}"#));
    }
}

#[test]
fn a_hung_prefetch_ends_init_within_the_request_timeout() {
    let fakes = Fakes::start();
    fakes
        .upstream
        .inject_fault(FaultScope::AnyOperation, Fault::Hang, 1);
    // The hang lasts two minutes unless released; INIT must not wait for it.
    let agent = fakes.start_agent_past_init(&[("REQUEST_TIMEOUT", "300ms")]);
    let calls = fakes.upstream.calls();
    assert_eq!(
        operations(&calls),
        [(Operation::StartConfigurationSession, None)],
        "the hung call is still unanswered"
    );
    assert!(calls[0].at < fakes.next_calls()[0].time);
    assert!(fakes.runtime.init_errors().is_empty());

    // Once AppConfigData answers again, the entry is fetched on first use.
    fakes.upstream.release_hung_requests();
    expect_data(&agent, BODY_V1, "1");
}

#[test]
fn a_failed_prefetch_does_not_fail_init_and_the_entry_is_fetched_on_first_use() {
    for fault in ["500", "404"] {
        let fakes = Fakes {
            upstream: FakeAppConfig::start(),
            runtime: FakeExtensionsApi::start(),
        };
        if fault == "500" {
            fakes.deploy(BODY_V1, "1");
            fakes
                .upstream
                .inject_fault(FaultScope::StartConfigurationSession, Fault::Status500, 1);
        }
        let mut agent = fakes.start_agent_past_init(&[]);

        let expected_status = if fault == "500" { 500 } else { 404 };
        assert_eq!(
            operations(&fakes.upstream.calls()),
            [(Operation::StartConfigurationSession, Some(expected_status))],
            "{fault}"
        );
        assert!(fakes.runtime.init_errors().is_empty(), "{fault}");
        assert!(fakes.runtime.exit_errors().is_empty(), "{fault}");

        // The fault has cleared (the 500 was a single one; the 404 ends with a deployment).
        if fault == "404" {
            fakes.deploy(BODY_V1, "1");
        }
        expect_data(&agent, BODY_V1, "1");

        fakes.shut_down(&mut agent, fault);
    }
}

#[test]
fn invoke_with_a_due_entry_refreshes_it_once_before_the_next_event_next() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_polling_every_second(&[]);
    let mut nexts = 1;
    let before = fakes.upstream.calls().len();
    assert_eq!(before, 2, "prefetch: one session, one poll");

    fakes.deploy(BODY_V2, "2");
    let delay = Duration::from_millis(300);
    fakes.upstream.set_response_delay(delay);
    fakes.invoke_until_upstream_called(before, &mut nexts, &agent);

    let calls = fakes.upstream.calls();
    let refresh = &calls[before..];
    assert_eq!(
        operations(refresh),
        [(Operation::GetLatestConfiguration, Some(200))],
        "exactly one refresh"
    );
    // The agent asked for the next event only once the refresh was answered.
    assert!(
        refresh[0].at + delay <= fakes.next_call_after_invoke(refresh[0].at),
        "event/next came before the refresh was answered"
    );
    // And the new version is already in the cache, without another upstream call.
    fakes.upstream.stop_listening();
    expect_data(&agent, BODY_V2, "2");
    assert_eq!(fakes.upstream.calls().len(), before + 1);
}

#[test]
fn a_request_for_a_due_entry_is_answered_from_cache_while_the_invoke_refreshes_it() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_polling_every_second(&[]);
    let mut nexts = 1;

    fakes.deploy(BODY_V2, "2");
    // The refresh takes long enough that the request below surely comes while it runs.
    fakes.upstream.set_response_delay(Duration::from_secs(2));
    fakes.wait_out_poll_interval();
    let refreshing = wait_until(BOUND, || {
        fakes.runtime.invoke(deadline_in(3000));
        // Either the agent refreshes (and stays out of event/next for the delay), or it found
        // nothing due yet and is back in event/next.
        let answered = wait_until(BOUND, || {
            fakes.upstream.get_latest_calls() == 2 || fakes.next_calls().len() > nexts
        });
        assert!(
            answered,
            "the agent neither refreshed nor asked for the next event"
        );
        if fakes.upstream.get_latest_calls() == 2 {
            return true;
        }
        nexts += 1;
        false
    });
    assert!(refreshing, "no INVOKE refreshed the entry");

    expect_data(&agent, BODY_V1, "1");
    assert_eq!(
        fakes.next_calls().len(),
        nexts,
        "the refresh had already finished"
    );
    nexts += 1;
    fakes.expect_next_calls(nexts, &agent);
    expect_data(&agent, BODY_V2, "2");
}

/// Regression: a request-started refresh could still be running when Lambda froze the
/// environment after the handler returned; in Lambda only INVOKE refreshes (README, Lambda).
#[test]
fn a_request_for_a_due_entry_between_invokes_starts_no_refresh_of_its_own() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_polling_every_second(&[]);
    let before = fakes.upstream.calls().len();

    fakes.deploy(BODY_V2, "2");
    fakes.wait_out_poll_interval();
    for _ in 0..20 {
        expect_data(&agent, BODY_V1, "1");
    }
    assert_eq!(
        fakes.upstream.calls().len(),
        before,
        "a request refreshed a due entry outside INVOKE"
    );

    let mut nexts = 1;
    fakes.invoke_until_upstream_called(before, &mut nexts, &agent);
    expect_data(&agent, BODY_V2, "2");
}

#[test]
fn invoke_with_a_hung_refresh_returns_to_event_next_within_the_request_timeout() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_polling_every_second(&[("REQUEST_TIMEOUT", "300ms")]);
    let mut nexts = 1;
    let before = fakes.upstream.calls().len();

    fakes
        .upstream
        .inject_fault(FaultScope::GetLatestConfiguration, Fault::Hang, 1);
    fakes.invoke_until_upstream_called(before, &mut nexts, &agent);
    // `invoke` saw the agent back in event/next while the fake still holds the call.
    assert_eq!(
        operations(&fakes.upstream.calls()[before..]),
        [(Operation::GetLatestConfiguration, None)]
    );
    assert!(fakes.runtime.exit_errors().is_empty());
    expect_data(&agent, BODY_V1, "1");
    fakes.upstream.release_hung_requests();
}

#[test]
fn invoke_with_nothing_due_calls_no_upstream_and_returns_to_event_next() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_past_init(&[]);
    let mut nexts = 1;
    let before = fakes.upstream.calls();
    assert_eq!(before.len(), 2, "prefetch: one session, one poll");

    for _ in 0..3 {
        fakes.invoke(&mut nexts, &agent);
    }
    assert_eq!(
        fakes.upstream.calls().len(),
        before.len(),
        "an upstream call"
    );
    expect_data(&agent, BODY_V1, "1");
    assert_eq!(
        fakes.upstream.calls().len(),
        before.len(),
        "an upstream call"
    );
}

#[test]
fn shutdown_exits_0_before_the_deadline_whatever_the_reason() {
    for reason in [
        "spindown",
        "Timeout",
        "SandboxTerminated",
        "eviction-by-gremlins",
    ] {
        let fakes = Fakes::start();
        let mut agent = fakes.start_agent_past_init(&[]);
        let mut nexts = 1;
        fakes.invoke(&mut nexts, &agent);

        let deadline_ms = deadline_in(SHUTDOWN_BUDGET_MS);
        fakes.runtime.shutdown(reason, deadline_ms);
        let status = agent
            .wait_exit(Duration::from_millis(SHUTDOWN_BUDGET_MS))
            .unwrap_or_else(|| panic!("{reason}: still running at the deadline"));
        assert!(
            now_ms() <= deadline_ms,
            "{reason}: exited after the deadline"
        );
        assert_eq!(status.code(), Some(0), "{reason}: {}", agent.stderr_text());
        assert!(fakes.runtime.exit_errors().is_empty(), "{reason}");
        // The SHUTDOWN came on the next event/next, and the agent asked for nothing after it.
        assert_eq!(fakes.next_calls().len(), nexts, "{reason}");
    }
}

#[test]
fn shutdown_while_64_clients_are_reading_exits_0_before_the_deadline() {
    const CLIENTS: usize = 64;
    let fakes = Fakes::start();
    let mut agent = fakes.start_agent_past_init(&[]);

    let addr = agent.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let answered: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let wrong = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            let (stop, answered, wrong) =
                (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&wrong));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match agent::request(addr, "GET", PATH, &[]) {
                        Ok(response) if response.status == 200 && response.body == BODY_V1 => {
                            answered[index].fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(response) => wrong.lock().unwrap().push(response.to_string()),
                        // The agent has stopped listening or exited.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    let all_reading = wait_until(BOUND, || {
        answered
            .iter()
            .all(|count| count.load(Ordering::SeqCst) > 0)
    });
    assert!(all_reading, "not every client got an answer");

    let deadline_ms = deadline_in(SHUTDOWN_BUDGET_MS);
    fakes.runtime.shutdown("spindown", deadline_ms);
    let status = agent.wait_exit(Duration::from_millis(SHUTDOWN_BUDGET_MS));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let status = status.expect("still running at the deadline");
    assert!(now_ms() <= deadline_ms, "exited after the deadline");
    assert_eq!(status.code(), Some(0), "{}", agent.stderr_text());
    assert!(fakes.runtime.exit_errors().is_empty());
    assert_eq!(*wrong.lock().unwrap(), Vec::<String>::new());
}

#[test]
fn a_malformed_setting_is_reported_through_init_error_then_exit_1() {
    let missing_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-directory");
    let log_path = missing_dir.join("agent.log");
    let cases = [
        ("POLL_INTERVAL_SECONDS", "4x", "4x"),
        ("PREFETCH_LIST", "orders:prod", "orders:prod"),
        // Parsed, but refused as unsupported once the agent runs (lifecycle, not settings).
        (
            "LOCAL_DEVELOPMENT_DIRECTORY",
            "/srv/config",
            "LOCAL_DEVELOPMENT_DIRECTORY",
        ),
        // Valid text, but the file cannot be opened: found after the settings are read.
        ("LOG_PATH", log_path.to_str().unwrap(), "agent.log"),
    ];
    for (variable, value, shown) in cases {
        let fakes = Fakes::start();
        let exited = agent::run_to_exit(AGENT_BINARY, &[], &fakes.vars(&[(variable, value)]));
        let context = format!("{variable}={value}; stderr:\n{}", exited.stderr);
        assert_eq!(exited.status.code(), Some(1), "{context}");
        expect_one_init_error(&fakes, &[variable, shown], &context);
    }
}

#[test]
fn missing_credentials_are_reported_through_init_error_then_exit_1() {
    let fakes = Fakes::start();
    let vars: Vec<(String, String)> = fakes
        .vars(&[])
        .into_iter()
        .filter(|(name, _)| !name.starts_with("AWS_ACCESS_KEY") && !name.starts_with("AWS_SECRET"))
        .collect();
    let exited = agent::run_to_exit(AGENT_BINARY, &[], &vars);
    let context = format!("stderr:\n{}", exited.stderr);
    assert_eq!(exited.status.code(), Some(1), "{context}");
    expect_one_init_error(&fakes, &[], &context);
}

/// Asserts the agent registered, then reported one `init/error` with an `Extension.` type and a
/// message containing each of `needles`, and made no other call to either fake.
fn expect_one_init_error(fakes: &Fakes, needles: &[&str], context: &str) {
    assert_eq!(
        kinds(&fakes.runtime.calls()),
        [CallKind::Register, CallKind::InitError],
        "{context}"
    );
    let reports = fakes.runtime.init_errors();
    let report = &reports[0];
    assert!(report.error_type.starts_with("Extension."), "{report:?}");
    let body: Value = serde_json::from_str(&report.body).expect("init/error body is JSON");
    assert_eq!(body["errorType"].as_str(), Some(report.error_type.as_str()));
    let message = body["errorMessage"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(message.contains(needle), "{needle} not in {message:?}");
    }
    assert!(fakes.upstream.calls().is_empty(), "{context}");
}

#[test]
fn an_expired_token_after_a_long_freeze_starts_a_fresh_session_invisibly() {
    let fakes = Fakes::start();
    let agent = fakes.start_agent_polling_every_second(&[]);
    let mut nexts = 1;
    let before = fakes.upstream.calls().len();

    // The environment was frozen for more than a day: every token is dead.
    fakes.upstream.expire_all_tokens();
    let delay = Duration::from_millis(100);
    fakes.upstream.set_response_delay(delay);
    fakes.invoke_until_upstream_called(before, &mut nexts, &agent);
    let calls = fakes.upstream.calls();
    let recovery = &calls[before..];
    assert_eq!(
        operations(recovery),
        [
            (Operation::GetLatestConfiguration, Some(400)),
            (Operation::StartConfigurationSession, Some(201)),
            (Operation::GetLatestConfiguration, Some(200)),
        ]
    );
    // The whole recovery happened before the agent let Lambda freeze it again.
    assert!(
        recovery[2].at + delay <= fakes.next_call_after_invoke(recovery[0].at),
        "event/next came before the new session's first poll was answered"
    );
    expect_data(&agent, BODY_V1, "1");

    // The new session's token works: a new deployment arrives on a later INVOKE.
    fakes.deploy(BODY_V2, "2");
    let before = fakes.upstream.calls().len();
    fakes.invoke_until_upstream_called(before, &mut nexts, &agent);
    assert_eq!(
        operations(&fakes.upstream.calls()[before..]),
        [(Operation::GetLatestConfiguration, Some(200))]
    );
    expect_data(&agent, BODY_V2, "2");
    assert!(!fakes.upstream.any_token_received_twice());
    assert!(fakes.runtime.exit_errors().is_empty());
}

#[test]
fn a_failing_event_next_is_reported_through_exit_error_with_a_non_zero_exit() {
    for failure in [
        NextEventFailure::Status(500, "ServiceException"),
        NextEventFailure::Close,
    ] {
        let fakes = Fakes::start();
        let mut agent = fakes.start_agent_past_init(&[]);
        let mut nexts = 1;
        fakes.invoke(&mut nexts, &agent);

        fakes.runtime.fail_next_events(failure);
        // The agent waits in event/next: this INVOKE reaches it, the call after it fails.
        fakes.runtime.invoke(deadline_in(3000));
        let status = agent
            .wait_exit(BOUND)
            .unwrap_or_else(|| panic!("{failure:?}: the agent kept running"));
        assert_ne!(status.code(), Some(0), "{failure:?}");

        let reports = fakes.runtime.exit_errors();
        assert_eq!(reports.len(), 1, "{failure:?}: {}", agent.stderr_text());
        assert!(
            reports[0].error_type.starts_with("Extension."),
            "{failure:?}: {:?}",
            reports[0]
        );
        assert!(fakes.runtime.init_errors().is_empty(), "{failure:?}");
        let calls = kinds(&fakes.runtime.calls());
        assert_eq!(calls.last(), Some(&CallKind::ExitError), "{failure:?}");
    }
}
