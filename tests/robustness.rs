//! What a hostile or broken peer can do to the agent, driven through the real binary against the
//! loopback fake AppConfigData: upstream answers outside the usual ranges.
//!
//! Each test asserts on statuses, bodies and the fake's call log; waits are bounded
//! `wait_until`s, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::time::Duration;

use support::agent::AgentProcess;
use support::appconfigdata::FakeAppConfig;
use support::wait_until;

const V1: &[u8] = br#"{"checkout":{"enabled":false}}"#;
const V2: &[u8] = br#"{"checkout":{"enabled":true}}"#;
/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(20);

fn path(profile: &str) -> String {
    format!("/applications/shop/environments/prod/configurations/{profile}")
}

/// The agent pointed at `fake`, with `extra` variables on top.
fn start_agent(fake: &FakeAppConfig, extra: &[(&str, &str)]) -> AgentProcess {
    let mut vars = fake.agent_vars();
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    AgentProcess::start(&vars)
}

/// Waits until `GET path` serves `body`; every answer on the way must be a `200`.
fn wait_for_body(agent: &AgentProcess, path: &str, body: &[u8]) {
    let mut last = String::new();
    let served = wait_until(PATIENCE, || {
        let response = agent.get(path);
        assert_eq!(response.status, 200, "GET {path}: {response}");
        last = response.text();
        response.body == body
    });
    assert!(
        served,
        "{path} still serves {last:?}; log:\n{}",
        agent.stderr_text()
    );
}

fn assert_no_panic(agent: &AgentProcess) {
    let log = agent.stderr_text();
    assert!(!log.contains("panicked"), "a thread panicked; log:\n{log}");
}

/// A `Next-Poll-Interval-In-Seconds` of `u64::MAX` once made every later look at the entry add
/// it to an `Instant`, which panics: each request for the entry killed a worker thread (the
/// whole process in a release build, which aborts on panic) and the refresh timer died too.
#[test]
fn a_huge_advised_poll_interval_neither_crashes_workers_nor_stops_the_refresh_timer() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "huge", V1, "application/json", Some("1"));
    fake.deploy("shop", "prod", "other", V1, "application/json", Some("1"));
    fake.set_poll_interval(u64::MAX);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    // More requests than the agent has worker threads.
    for attempt in 0..20 {
        let response = agent.get(&path("huge"));
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, V1),
            "request {attempt}: {response}"
        );
    }

    // The timer still refreshes another entry, which the service advises to poll every second.
    fake.set_poll_interval(1);
    let first = agent.get(&path("other"));
    assert_eq!((first.status, first.body.as_slice()), (200, V1), "{first}");
    fake.deploy("shop", "prod", "other", V2, "application/json", Some("2"));
    wait_for_body(&agent, &path("other"), V2);
    assert_no_panic(&agent);
}
