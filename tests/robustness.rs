//! What a hostile or broken peer can do to the agent, driven through the real binary against the
//! loopback fake AppConfigData: upstream answers outside the usual ranges, requests that name
//! configurations which do not exist, the cache's entry cap, and request targets in forms other
//! than the origin form.
//!
//! Each test asserts on statuses, bodies and the fake's call log; waits are bounded
//! `wait_until`s, never sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::agent::{request, AgentProcess, Connection, Response};
use support::appconfigdata::{FakeAppConfig, Fault, FaultScope, Operation};
use support::start_agent;

const V1: &[u8] = br#"{"checkout":{"enabled":false}}"#;
const V2: &[u8] = br#"{"checkout":{"enabled":true}}"#;
const V3: &[u8] = br#"{"checkout":{"enabled":true,"limit":3}}"#;
/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(20);
/// quality.md (Security): the default cap on cache entries.
const MAX_ENTRIES: usize = 1000;
/// Client threads for the tests that send many requests.
const CLIENTS: usize = 8;

fn path(profile: &str) -> String {
    format!("/applications/shop/environments/prod/configurations/{profile}")
}

/// `GET` of every path in `paths`, spread over a few client threads; answers in path order.
fn get_all(agent: &AgentProcess, paths: Vec<String>) -> Vec<Response> {
    let addr = agent.addr();
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let paths = Arc::clone(&paths);
            let next = Arc::clone(&next);
            thread::spawn(move || {
                let mut answers = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(path) = paths.get(index) else {
                        return answers;
                    };
                    let response = request(addr, "GET", path, &[])
                        .unwrap_or_else(|error| panic!("GET {path}: {error}"));
                    answers.push((index, response));
                }
            })
        })
        .collect();
    let mut answers: Vec<(usize, Response)> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    answers.sort_by_key(|(index, _)| *index);
    answers.into_iter().map(|(_, response)| response).collect()
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
    agent.wait_for_body(&path("other"), V2, PATIENCE);
    assert_no_panic(&agent);
}

/// An error answer longer than the 64 KiB the agent reads of error bodies was once reported as
/// `ConfigurationTooLarge` ("over 16777216 bytes") with `502`, hiding the service's own error
/// name and status (product.md §2.4: AccessDenied is `403`).
#[test]
fn a_long_error_answer_keeps_its_error_name_and_status() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    let agent = start_agent(&fake, &[]);

    for scope in [
        FaultScope::StartConfigurationSession,
        FaultScope::GetLatestConfiguration,
    ] {
        fake.inject_fault(scope, Fault::Forbidden403LongBody, 1);
        let denied = agent.get(&path("flags"));
        assert_eq!(denied.status, 403, "{scope:?}: {denied}");
        assert!(
            denied.text().starts_with("AccessDeniedException: "),
            "{scope:?}: {denied}"
        );
    }

    let served = agent.get(&path("flags"));
    assert_eq!(
        (served.status, served.body.as_slice()),
        (200, V1),
        "{served}"
    );
}

/// Requests for configurations the service does not know once left an entry each behind, so a
/// thousand of them (a typo in a loop, a scanner) filled the cap and every configuration asked
/// for afterwards got `503`, however real.
#[test]
fn requests_for_unknown_configurations_do_not_use_up_the_cache() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    let agent = start_agent(&fake, &[]);

    let unknown: Vec<String> = (0..MAX_ENTRIES)
        .map(|index| path(&format!("missing-{index}")))
        .collect();
    for (index, response) in get_all(&agent, unknown).iter().enumerate() {
        assert_eq!(response.status, 404, "missing-{index}: {response}");
    }

    let response = agent.get(&path("flags"));
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, V1),
        "{response}"
    );
    assert_no_panic(&agent);
}

/// Concurrent first requests share one fetch even when it fails (single flight, product.md
/// §4): one session for all of them, and each caller gets the service's error, although the
/// failed entry is dropped from the cache as soon as the fetch ends.
#[test]
fn concurrent_first_requests_that_fail_share_one_fetch_and_all_get_the_error() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    // Slow answers, so that every caller joins the one fetch.
    fake.set_response_delay(Duration::from_millis(400));
    fake.inject_fault(FaultScope::StartConfigurationSession, Fault::Status500, 1);
    let agent = start_agent(&fake, &[]);

    // No more callers than tiny_http has idle connection threads at start (4): a burst of
    // more new connections can leave some unread until another connection closes (see the
    // breaker report), and a caller that arrives after the failure rightly starts a new fetch.
    let callers = 4;
    for response in agent.get_at_once(&path("flags"), callers) {
        assert_eq!(response.status, 502, "{response}");
        assert!(
            response.text().starts_with("InternalServerException: "),
            "{response}"
        );
    }
    assert_eq!(fake.start_session_calls(), 1, "{:#?}", fake.calls());

    let served = agent.get(&path("flags"));
    assert_eq!(
        (served.status, served.body.as_slice()),
        (200, V1),
        "{served}"
    );
    assert_eq!(fake.start_session_calls(), 2);
}

/// A configuration that failed its first fetch is fetched again when it is next asked for
/// (product.md §5: "retried on first use"), not polled in the background every interval for
/// as long as the agent runs.
#[test]
fn a_configuration_that_failed_its_first_fetch_is_not_polled_in_the_background() {
    let fake = FakeAppConfig::start();
    fake.set_poll_interval(1);
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    let missing = agent.get(&path("missing"));
    assert_eq!(missing.status, 404, "{missing}");
    let first = agent.get(&path("flags"));
    assert_eq!((first.status, first.body.as_slice()), (200, V1), "{first}");

    // Two refreshes of the known entry, each due after the unknown one would have been.
    fake.deploy("shop", "prod", "flags", V2, "application/json", Some("2"));
    agent.wait_for_body(&path("flags"), V2, PATIENCE);
    fake.deploy("shop", "prod", "flags", V3, "application/json", Some("3"));
    agent.wait_for_body(&path("flags"), V3, PATIENCE);

    let sessions_for_missing = fake
        .calls()
        .iter()
        .filter(|call| {
            call.operation == Operation::StartConfigurationSession
                && call.key.as_deref() == Some("shop:prod:missing")
        })
        .count();
    assert_eq!(sessions_for_missing, 1, "calls: {:#?}", fake.calls());

    // Asked for again, it is fetched again, and found once deployed.
    fake.deploy("shop", "prod", "missing", V1, "application/json", Some("1"));
    let found = agent.get(&path("missing"));
    assert_eq!((found.status, found.body.as_slice()), (200, V1), "{found}");
}

/// quality.md (Security): the cache holds at most 1,000 entries; a new one beyond that gets
/// `503`, and the existing ones keep working.
#[test]
fn a_full_cache_refuses_new_configurations_with_503_and_keeps_serving_the_others() {
    let fake = FakeAppConfig::start();
    for index in 0..=MAX_ENTRIES {
        let profile = format!("profile-{index}");
        fake.deploy(
            "shop",
            "prod",
            &profile,
            profile.as_bytes(),
            "text/plain",
            None,
        );
    }
    let agent = start_agent(&fake, &[]);

    let paths: Vec<String> = (0..MAX_ENTRIES)
        .map(|index| path(&format!("profile-{index}")))
        .collect();
    for (index, response) in get_all(&agent, paths).iter().enumerate() {
        assert_eq!(
            (response.status, response.text()),
            (200, format!("profile-{index}")),
            "profile-{index}"
        );
    }

    let refused = agent.get(&path(&format!("profile-{MAX_ENTRIES}")));
    assert_eq!(refused.status, 503, "{refused}");
    assert!(
        refused.text().starts_with("ServiceUnavailable: "),
        "{refused}"
    );
    let kept = agent.get(&path("profile-7"));
    assert_eq!((kept.status, kept.text().as_str()), (200, "profile-7"));
    assert_no_panic(&agent);
}

/// RFC 9112 §3.2.2: a server must accept a request target in absolute form
/// (`GET http://host/path`), which clients send when they believe they talk to a proxy.
#[test]
fn a_request_target_in_absolute_form_is_routed_by_its_path() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    let agent = start_agent(&fake, &[]);
    let origin = format!("http://{}", agent.addr());

    let mut connection = Connection::open(agent.addr()).unwrap();
    let ping = connection
        .send("GET", &format!("{origin}/ping"), &[], b"")
        .unwrap();
    assert_eq!((ping.status, ping.text().as_str()), (200, "healthy"));
    let data = connection
        .send("GET", &format!("{origin}{}?x=1", path("flags")), &[], b"")
        .unwrap();
    assert_eq!((data.status, data.body.as_slice()), (200, V1), "{data}");
    let upper = connection
        .send(
            "GET",
            &format!("HTTP://{}{}", agent.addr(), path("flags")),
            &[],
            b"",
        )
        .unwrap();
    assert_eq!(upper.status, 200, "{upper}");
    let elsewhere = connection
        .send("GET", &format!("{origin}/nothing"), &[], b"")
        .unwrap();
    assert_eq!(elsewhere.status, 404, "{elsewhere}");
}
