//! Cache and refresh semantics of product.md §4, driven through the real binary against the
//! loopback fake AppConfigData: one entry per key as written, single flight, unchanged polls,
//! new versions after the interval, token handling (encoding, single use, expiry), the advised
//! poll interval and the `MAX_CONNECTIONS` bound.
//!
//! Refreshing tests run the agent with `POLL_INTERVAL=1` and make the fake advise 1 s (or more),
//! so a refresh comes about a second after the last poll; every wait is a bounded
//! `wait_until`, never a sleep.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use support::agent::{request, AgentProcess, Response};
use support::appconfigdata::{FakeAppConfig, Operation};
use support::{assert_wire_discipline, start_agent, wait_until};

const SHOP_PATH: &str = "/applications/shop/environments/prod/configurations/flags";
const V1: &[u8] = br#"{"checkout":{"enabled":false}}"#;
const V2: &[u8] = br#"{"checkout":{"enabled":true}}"#;
/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// A fake with `shop:prod:flags` deployed as version `1`, advising `poll_seconds` between polls.
fn shop_fake(poll_seconds: u64) -> FakeAppConfig {
    let fake = FakeAppConfig::start();
    fake.set_poll_interval(poll_seconds);
    fake.deploy("shop", "prod", "flags", V1, "application/json", Some("1"));
    fake
}

/// `GET path`, expecting a `200`.
fn get_ok(agent: &AgentProcess, path: &str) -> Response {
    let response = agent.get(path);
    assert_eq!(response.status, 200, "GET {path}: {response}");
    response
}

#[test]
fn a_name_and_an_id_of_the_same_configuration_are_separate_entries() {
    let fake = shop_fake(60);
    fake.add_alias(["a1b2c3d", "e4f5g6h", "p7q8r9s"], ["shop", "prod", "flags"]);
    let agent = start_agent(&fake, &[]);
    let id_path = "/applications/a1b2c3d/environments/e4f5g6h/configurations/p7q8r9s";

    assert_eq!(get_ok(&agent, SHOP_PATH).body, V1);
    assert_eq!(fake.start_session_calls(), 1);
    assert_eq!(get_ok(&agent, id_path).body, V1);
    assert_eq!(
        fake.start_session_calls(),
        2,
        "the ID is its own entry, with its own session"
    );
    assert_eq!(get_ok(&agent, SHOP_PATH).body, V1);
    assert_eq!(get_ok(&agent, id_path).body, V1);

    assert_eq!(
        fake.session_keys(),
        [
            Some("shop:prod:flags".to_string()),
            Some("a1b2c3d:e4f5g6h:p7q8r9s".to_string())
        ]
    );
    assert_eq!(
        fake.calls().len(),
        4,
        "later requests are served from cache"
    );
}

#[test]
fn two_hundred_concurrent_first_requests_share_one_session() {
    let fake = shop_fake(60);
    // A slow service, so that every worker of the agent waits on the first fetch at once.
    fake.set_response_delay(Duration::from_millis(400));
    let agent = start_agent(&fake, &[]);

    for response in agent.get_at_once(SHOP_PATH, 200) {
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, V1),
            "{response}"
        );
    }

    assert_eq!(fake.start_session_calls(), 1);
    assert_eq!(fake.get_latest_calls(), 1);
}

/// Shared by the two spellings of "unchanged" (wire.md §2): an empty `200` or a `204`.
fn unchanged_polls_keep_the_data_and_its_headers(answer_with_204: bool) {
    let fake = shop_fake(1);
    fake.answer_unchanged_with_204(answer_with_204);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    let first = get_ok(&agent, SHOP_PATH);
    assert!(
        wait_until(PATIENCE, || fake.get_latest_calls() >= 3),
        "the agent should poll every second; log:\n{}",
        agent.stderr_text()
    );
    let unchanged_status = if answer_with_204 { 204 } else { 200 };
    let polls: Vec<Option<u16>> = fake
        .calls()
        .iter()
        .filter(|call| call.operation == Operation::GetLatestConfiguration)
        .map(|call| call.status)
        .collect();
    assert_eq!(
        polls[..3],
        [Some(200), Some(unchanged_status), Some(unchanged_status)]
    );

    let later = get_ok(&agent, SHOP_PATH);
    assert_eq!(later.body, V1);
    for name in ["Content-Type", "Configuration-Version", "ETag"] {
        assert_eq!(later.header(name), first.header(name), "{name}");
    }
    assert_eq!(later.header("Configuration-Version"), Some("1"));
    assert_eq!(
        fake.start_session_calls(),
        1,
        "one session serves every poll"
    );
    assert_wire_discipline(&fake);
}

#[test]
fn an_empty_poll_answer_keeps_the_data_and_its_headers() {
    unchanged_polls_keep_the_data_and_its_headers(false);
}

#[test]
fn a_204_poll_answer_keeps_the_data_and_its_headers() {
    unchanged_polls_keep_the_data_and_its_headers(true);
}

#[test]
fn a_new_version_is_served_after_the_poll_interval() {
    let fake = shop_fake(1);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    let first = get_ok(&agent, SHOP_PATH);
    assert_eq!(first.header("Configuration-Version"), Some("1"));
    fake.deploy(
        "shop",
        "prod",
        "flags",
        V2,
        "application/json; charset=utf-8",
        Some("2"),
    );

    let second = agent.wait_for_body(SHOP_PATH, V2, PATIENCE);
    assert_eq!(second.header("Configuration-Version"), Some("2"));
    assert_eq!(
        second.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_ne!(second.header("ETag"), first.header("ETag"));
    let stale = agent.request(
        "GET",
        SHOP_PATH,
        &[("If-None-Match", first.header("ETag").unwrap())],
    );
    assert_eq!(stale.status, 200, "the old ETag no longer matches");
    assert!(agent.wait_for_log("changed from version 1 to 2", PATIENCE));
    assert_eq!(
        fake.start_session_calls(),
        1,
        "the change came on the same session"
    );
    assert_wire_discipline(&fake);
}

#[test]
fn tokens_with_plus_slash_and_equals_are_signed_and_sent_intact() {
    let fake = shop_fake(1);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    get_ok(&agent, SHOP_PATH);
    assert!(
        wait_until(PATIENCE, || fake.get_latest_calls() >= 4),
        "log:\n{}",
        agent.stderr_text()
    );

    let polls: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|call| call.operation == Operation::GetLatestConfiguration)
        .collect();
    for call in &polls {
        let token = call.token.as_deref().expect("a token in the query");
        assert!(
            token.contains('+') && token.contains('/') && token.contains('='),
            "the fake issues tokens with + / =: {token}"
        );
        // A `+` sent raw would arrive as a space and the fake would refuse the token.
        assert_eq!(
            (call.signature_ok, call.status),
            (true, Some(200)),
            "{call:?}"
        );
    }
    let distinct: HashSet<&str> = polls
        .iter()
        .filter_map(|call| call.token.as_deref())
        .collect();
    assert_eq!(
        distinct.len(),
        polls.len(),
        "every poll carries a new token"
    );
    assert_eq!(fake.start_session_calls(), 1, "no token was refused");
    assert_wire_discipline(&fake);
}

#[test]
fn polls_wait_for_the_advised_interval_when_it_is_longer_than_poll_interval() {
    // POLL_INTERVAL says 1 s; the service advises 2 s, which must win (product.md §4).
    let fake = shop_fake(2);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    get_ok(&agent, SHOP_PATH);
    assert!(
        wait_until(PATIENCE, || fake.get_latest_calls() >= 3),
        "log:\n{}",
        agent.stderr_text()
    );
    get_ok(&agent, SHOP_PATH);

    assert_eq!(
        fake.early_poll_count(),
        0,
        "a poll came sooner than advised"
    );
    let sessions: Vec<Option<u64>> = fake
        .calls()
        .iter()
        .filter(|call| call.operation == Operation::StartConfigurationSession)
        .map(|call| call.required_minimum_poll_interval)
        .collect();
    assert_eq!(
        sessions,
        [Some(15)],
        "1 s is clamped to the service's 15 s minimum"
    );
    assert_wire_discipline(&fake);
}

#[test]
fn an_expired_token_is_replaced_by_a_new_session_without_the_caller_noticing() {
    let fake = shop_fake(1);
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);

    assert_eq!(get_ok(&agent, SHOP_PATH).body, V1);
    fake.expire_all_tokens();
    fake.deploy("shop", "prod", "flags", V2, "application/json", Some("2"));

    let served = agent.wait_for_body(SHOP_PATH, V2, PATIENCE);
    assert_eq!(served.header("Configuration-Version"), Some("2"));
    let calls = fake.calls();
    let refused = calls
        .iter()
        .position(|call| call.status == Some(400))
        .expect("the expired token was sent once and refused");
    assert_eq!(
        calls[refused + 1].operation,
        Operation::StartConfigurationSession,
        "a new session follows the refusal at once: {calls:?}"
    );
    assert_eq!(
        calls[refused + 2].operation,
        Operation::GetLatestConfiguration
    );
    assert_eq!(fake.start_session_calls(), 2);
    assert!(
        !agent
            .stderr_text()
            .contains("refresh of shop:prod:flags failed"),
        "the refusal is handled, not reported as a failure:\n{}",
        agent.stderr_text()
    );
    assert_wire_discipline(&fake);
}

#[test]
fn max_connections_bounds_the_upstream_connections_for_twenty_entries_at_once() {
    let fake = FakeAppConfig::start();
    fake.set_poll_interval(60);
    let entries = 20;
    for index in 0..entries {
        let profile = format!("profile-{index}");
        let body = format!("body of {index}");
        fake.deploy(
            "shop",
            "prod",
            &profile,
            body.as_bytes(),
            "text/plain",
            None,
        );
    }
    // Slow answers, so the 20 first fetches overlap and contend for connections.
    fake.set_response_delay(Duration::from_millis(50));
    let agent = start_agent(&fake, &[("MAX_CONNECTIONS", "3")]);
    let addr = agent.addr();

    let barrier = Arc::new(Barrier::new(entries));
    let threads: Vec<_> = (0..entries)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let path =
                    format!("/applications/shop/environments/prod/configurations/profile-{index}");
                barrier.wait();
                (index, request(addr, "GET", &path, &[]))
            })
        })
        .collect();
    for thread in threads {
        let (index, response) = thread.join().unwrap();
        let response = response.expect("an answer");
        assert_eq!(response.status, 200, "{response}");
        assert_eq!(response.text(), format!("body of {index}"));
    }

    assert_eq!(fake.start_session_calls(), entries);
    assert!(
        fake.max_open_connections() <= 3,
        "{} connections were open at once",
        fake.max_open_connections()
    );
    assert!(
        fake.max_in_flight() <= 3,
        "{} calls at once",
        fake.max_in_flight()
    );
    assert_wire_discipline(&fake);
}
