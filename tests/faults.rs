//! Every upstream fault of quality.md (Reliability), driven through the real binary against the
//! loopback fake AppConfigData: on a first fetch the caller gets the status of product.md §2.4
//! with a one-line error body; on a refresh with data cached the caller keeps getting `200` with
//! the old data; in both, once the fault clears, the next try brings the newly deployed data.
//! Throughout, no token is sent twice, no poll comes early and every call is signed correctly.
//!
//! A first fetch is tried with the fault on each of its two calls (StartConfigurationSession,
//! then GetLatestConfiguration), on two entries of one agent. Faults stay injected until the test
//! clears them, so what the caller sees while they last does not depend on retry timing. A token
//! refused once (400 expired or corrupted) and a poll whose connection drops are recovered within
//! one fetch on a new session, so the caller never sees them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::time::Duration;

use support::agent::{AgentProcess, Response};
use support::appconfigdata::{FakeAppConfig, Fault, FaultScope, Operation};
use support::{assert_wire_discipline, start_agent, wait_until};

const V1: &[u8] = br#"{"limit":1}"#;
const V2: &[u8] = br#"{"limit":2}"#;
/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(20);
/// Calls a fault lasts for: more than any test makes, so it holds until cleared.
const UNTIL_CLEARED: usize = 10_000;
/// `REQUEST_TIMEOUT` for the tests whose fault is a hang: short, to keep them quick, yet far
/// above what a loopback call takes.
const SHORT_TIMEOUT: &str = "500ms";

/// What a caller must get when a fault hits a first fetch: the status, and the error code the
/// one-line body starts with when it is the service's own error name.
struct Expected {
    status: u16,
    code: Option<&'static str>,
}

/// A fake and an agent polling every second, with `profiles` of `shop:prod` deployed as `1`.
fn start(profiles: &[&str], extra: &[(&str, &str)]) -> (FakeAppConfig, AgentProcess) {
    let fake = FakeAppConfig::start();
    fake.set_poll_interval(1);
    deploy(&fake, profiles, V1, "1");
    let mut vars = vec![("POLL_INTERVAL", "1")];
    vars.extend_from_slice(extra);
    let agent = start_agent(&fake, &vars);
    (fake, agent)
}

fn deploy(fake: &FakeAppConfig, profiles: &[&str], body: &[u8], label: &str) {
    for profile in profiles {
        fake.deploy(
            "shop",
            "prod",
            profile,
            body,
            "application/json",
            Some(label),
        );
    }
}

fn path(profile: &str) -> String {
    format!("/applications/shop/environments/prod/configurations/{profile}")
}

/// product.md §2.4: the status, and a plain-text body of one line that starts with an error
/// code (`Code: message`), the given one when known.
fn assert_error_line(response: &Response, expected: &Expected, context: &str) {
    assert_eq!(response.status, expected.status, "{context}: {response}");
    let text = response.text();
    let code = text.split(": ").next().unwrap_or("");
    assert!(
        !code.is_empty()
            && code.chars().all(|c| c.is_ascii_alphanumeric())
            && text.len() > code.len() + 2,
        "{context}: the body should start with `Code: `: {text:?}"
    );
    assert!(
        !text.contains(['\n', '\r']),
        "{context}: one line: {text:?}"
    );
    if let Some(expected_code) = expected.code {
        assert_eq!(code, expected_code, "{context}: {text:?}");
    }
}

/// Waits until the fake has answered `path`'s first fetch, after a failed one.
fn wait_for_recovery(agent: &AgentProcess, path: &str, body: &[u8]) {
    let mut last = String::new();
    let served = wait_until(PATIENCE, || {
        let response = agent.get(path);
        last = response.to_string();
        response.status == 200 && response.body == body
    });
    assert!(
        served,
        "{path} never recovered; last answer {last:?}; log:\n{}",
        agent.stderr_text()
    );
}

fn faulted_calls(fake: &FakeAppConfig, fault: Fault) -> usize {
    fake.calls()
        .iter()
        .filter(|call| call.fault == Some(fault))
        .count()
}

/// A fault that answers or breaks a call: first fetches fail with `expected` while it lasts,
/// whichever of the two calls it hits, and succeed with the new data once it clears.
fn fault_on_first_fetch(fault: Fault, expected: &Expected) {
    let extra: &[(&str, &str)] = if fault == Fault::Hang {
        &[("REQUEST_TIMEOUT", SHORT_TIMEOUT)]
    } else {
        &[]
    };
    let (fake, agent) = start(&["on-session", "on-poll"], extra);

    for (scope, profile) in [
        (FaultScope::StartConfigurationSession, "on-session"),
        (FaultScope::GetLatestConfiguration, "on-poll"),
    ] {
        fake.inject_fault(scope, fault, UNTIL_CLEARED);
        let response = agent.get(&path(profile));
        assert_error_line(&response, expected, &format!("{fault:?} on {scope:?}"));
        let hit = fake.calls().iter().any(|call| {
            call.fault == Some(fault)
                && match scope {
                    FaultScope::StartConfigurationSession => {
                        call.operation == Operation::StartConfigurationSession
                    }
                    _ => call.operation == Operation::GetLatestConfiguration,
                }
        });
        assert!(hit, "the fault hit {scope:?}: {:?}", fake.calls());
        fake.clear_faults();
        fake.release_hung_requests();
    }

    deploy(&fake, &["on-session", "on-poll"], V2, "2");
    for profile in ["on-session", "on-poll"] {
        wait_for_recovery(&agent, &path(profile), V2);
    }
    assert_wire_discipline(&fake);
}

/// A fault that hits every refresh of a cached entry until cleared: the caller keeps getting
/// the old data and headers, and the new version once the fault clears.
fn fault_on_refresh(fault: Fault) {
    let extra: &[(&str, &str)] = if fault == Fault::Hang {
        &[("REQUEST_TIMEOUT", SHORT_TIMEOUT)]
    } else {
        &[]
    };
    let (fake, agent) = start(&["flags"], extra);
    let flags = path("flags");
    let first = agent.get(&flags);
    assert_eq!((first.status, first.body.as_slice()), (200, V1), "{first}");

    fake.inject_fault(FaultScope::GetLatestConfiguration, fault, UNTIL_CLEARED);
    deploy(&fake, &["flags"], V2, "2");
    assert!(
        agent.wait_for_log("refresh of shop:prod:flags failed", PATIENCE),
        "a refresh should fail under {fault:?}; log:\n{}",
        agent.stderr_text()
    );
    assert!(faulted_calls(&fake, fault) > 0);
    assert_serves_old_data(&agent, &flags, &first);
    assert!(
        agent.stderr_text().contains("next try at"),
        "the failure is logged with the time of the next try"
    );

    fake.clear_faults();
    fake.release_hung_requests();
    agent.wait_for_body(&flags, V2, PATIENCE);
    assert_wire_discipline(&fake);
}

fn assert_serves_old_data(agent: &AgentProcess, path: &str, first: &Response) {
    let during = agent.get(path);
    assert_eq!(
        (during.status, during.body.as_slice()),
        (200, V1),
        "{during}"
    );
    for name in ["Content-Type", "Configuration-Version", "ETag"] {
        assert_eq!(during.header(name), first.header(name), "{name}");
    }
}

#[test]
fn status_500_fails_a_first_fetch_with_502_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 502,
        code: Some("InternalServerException"),
    };
    fault_on_first_fetch(Fault::Status500, &expected);
    fault_on_refresh(Fault::Status500);
}

#[test]
fn status_503_fails_a_first_fetch_with_502_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 502,
        code: Some("ServiceUnavailableException"),
    };
    fault_on_first_fetch(Fault::Status503, &expected);
    fault_on_refresh(Fault::Status503);
}

#[test]
fn throttling_fails_a_first_fetch_with_429_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 429,
        code: Some("ThrottlingException"),
    };
    fault_on_first_fetch(Fault::Throttle429, &expected);
    fault_on_refresh(Fault::Throttle429);
}

#[test]
fn access_denied_fails_a_first_fetch_with_403_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 403,
        code: Some("AccessDeniedException"),
    };
    fault_on_first_fetch(Fault::Forbidden403, &expected);
    fault_on_refresh(Fault::Forbidden403);
}

#[test]
fn a_reset_mid_body_fails_a_first_fetch_with_502_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 502,
        code: None,
    };
    fault_on_first_fetch(Fault::ResetMidBody, &expected);
    fault_on_refresh(Fault::ResetMidBody);
}

#[test]
fn a_malformed_answer_fails_a_first_fetch_with_502_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 502,
        code: None,
    };
    fault_on_first_fetch(Fault::MalformedBody, &expected);
    fault_on_refresh(Fault::MalformedBody);
}

#[test]
fn a_hang_past_the_request_timeout_fails_a_first_fetch_with_504_and_keeps_old_data_on_refresh() {
    let expected = Expected {
        status: 504,
        code: None,
    };
    fault_on_first_fetch(Fault::Hang, &expected);
    fault_on_refresh(Fault::Hang);
}

#[test]
fn a_refused_connection_fails_a_first_fetch_with_502_and_keeps_old_data_on_refresh() {
    let (fake, agent) = start(&["first", "cached"], &[]);
    let cached = path("cached");
    let before = agent.get(&cached);
    assert_eq!(
        (before.status, before.body.as_slice()),
        (200, V1),
        "{before}"
    );

    fake.stop_listening();
    let calls_before = fake.calls().len();
    let response = agent.get(&path("first"));
    let expected = Expected {
        status: 502,
        code: None,
    };
    assert_error_line(&response, &expected, "connection refused");
    deploy(&fake, &["first", "cached"], V2, "2");
    assert!(
        agent.wait_for_log("refresh of shop:prod:cached failed", PATIENCE),
        "the refresh should fail while nothing listens; log:\n{}",
        agent.stderr_text()
    );
    assert_serves_old_data(&agent, &cached, &before);
    assert_eq!(fake.calls().len(), calls_before, "nothing reached the fake");

    fake.resume_listening()
        .expect("listen again on the same port");
    wait_for_recovery(&agent, &path("first"), V2);
    agent.wait_for_body(&cached, V2, PATIENCE);
    assert_wire_discipline(&fake);
}

/// Regression: a GetLatestConfiguration whose connection closed before the answer was resent
/// with the same token on a fresh connection (the reset retry meant for dead pooled
/// connections), so the service got a single-use token twice.
#[test]
fn a_connection_dropped_during_a_poll_is_recovered_with_a_new_session_not_the_same_token() {
    // One entry, so no other poll can take the fault; the default 3 s request timeout, so the
    // dropped connection, not a timeout, ends each faulted call.
    let (fake, agent) = start(&["flags"], &[]);
    let flags = path("flags");

    // On a first fetch: the poll is received, then its connection closes without an answer,
    // while the caller waits for the data.
    fake.inject_fault(FaultScope::GetLatestConfiguration, Fault::Hang, 1);
    let first = std::thread::spawn({
        let addr = agent.addr();
        let flags = flags.clone();
        move || support::agent::request(addr, "GET", &flags, &[])
    });
    assert!(wait_until(PATIENCE, || faulted_calls(&fake, Fault::Hang) == 1));
    fake.release_hung_requests();
    let response = first.join().unwrap().expect("an answer");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, V1),
        "{response}"
    );
    assert!(
        !fake.any_token_received_twice(),
        "the lost token was sent again"
    );
    assert_eq!(
        fake.start_session_calls(),
        2,
        "a new session replaced the lost token"
    );

    // On a refresh.
    fake.inject_fault(FaultScope::GetLatestConfiguration, Fault::Hang, 1);
    deploy(&fake, &["flags"], V2, "2");
    assert!(wait_until(PATIENCE, || faulted_calls(&fake, Fault::Hang) == 2));
    fake.release_hung_requests();
    agent.wait_for_body(&flags, V2, PATIENCE);
    assert_eq!(
        fake.start_session_calls(),
        3,
        "a new session replaced the lost token"
    );
    assert_nothing_reported(&agent);
    assert_wire_discipline(&fake);
}

/// A fault handled inside one fetch leaves no warning or error in the log.
fn assert_nothing_reported(agent: &AgentProcess) {
    let log = agent.stderr_text();
    assert!(
        !log.lines()
            .any(|line| line.contains(" WARN ") || line.contains(" ERROR ")),
        "the fault is handled, not reported:\n{log}"
    );
}

/// A token fault once: the agent starts a new session and retries at once, so the caller never
/// sees it (product.md §4): on a first fetch the caller gets the data straight away, on a
/// refresh the new version. One entry, so no other poll can take the fault.
fn token_fault_once(fault: Fault) {
    let (fake, agent) = start(&["flags"], &[]);
    let flags = path("flags");

    fake.inject_fault(FaultScope::GetLatestConfiguration, fault, 1);
    let response = agent.get(&flags);
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, V1),
        "{fault:?} on a first fetch: {response}"
    );
    assert_eq!(faulted_calls(&fake, fault), 1);
    assert_eq!(
        fake.start_session_calls(),
        2,
        "one new session for the refused token"
    );

    fake.inject_fault(FaultScope::GetLatestConfiguration, fault, 1);
    deploy(&fake, &["flags"], V2, "2");
    agent.wait_for_body(&flags, V2, PATIENCE);
    assert_eq!(faulted_calls(&fake, fault), 2);
    assert_eq!(
        fake.start_session_calls(),
        3,
        "one new session for the refused token"
    );
    assert_nothing_reported(&agent);
    assert_wire_discipline(&fake);
}

/// A token fault that lasts: the one retry on a new session is refused too, so the refresh
/// fails and the old data is served until the fault clears.
fn token_fault_lasting(fault: Fault) {
    fault_on_refresh(fault);
}

#[test]
fn an_expired_token_is_recovered_invisibly_on_first_fetch_and_refresh() {
    token_fault_once(Fault::ExpiredToken400);
    token_fault_lasting(Fault::ExpiredToken400);
}

#[test]
fn a_corrupted_token_is_recovered_invisibly_on_first_fetch_and_refresh() {
    token_fault_once(Fault::CorruptedToken400);
    token_fault_lasting(Fault::CorruptedToken400);
}
