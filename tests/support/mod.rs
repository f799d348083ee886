//! Shared test support: loopback fakes and the agent harness.
//!
//! Each fake lives in its own file and binds `127.0.0.1:0`; nothing here talks to any other
//! host. Test files declare `mod support;` and use what they need, so unused items are allowed.
//! - `sigv4`: an independent SigV4 verifier and signer (not aws-sigv4).
//! - `http_wire`: server-side HTTP/1.1 framing shared by the fakes.
//! - `appconfigdata`: the fake AppConfigData service (wire.md §2), with fault injection.
//! - `extensions`: the fake Lambda Extensions API (wire.md §1).
//! - `agent`: runs the real binary and a raw HTTP/1.1 client.
//! - `sts`: the fake STS for AssumeRole (wire.md §3), signatures checked by `sigv4`.
//! - `container_credentials`: the fake container credentials endpoint (wire.md §4).
//! - `imds`: the fake EC2 instance metadata service, IMDSv2 (wire.md §4).
//! - `tiny_server`: the tiny_http server and worker thread the STS, container and IMDS fakes
//!   share.
//! - `temp_dir`: a scratch directory removed on drop.
//!
//! Here: [`wait_until`], and the helpers that join the agent to the fake AppConfigData
//! ([`start_agent`], [`assert_wire_discipline`]).
#![allow(
    dead_code,
    reason = "each test file uses only part of the support code"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failed setup step should panic the test with its message"
)]

pub mod agent;
pub mod appconfigdata;
pub mod container_credentials;
pub mod extensions;
pub mod http_wire;
pub mod imds;
pub mod sigv4;
pub mod sts;
pub mod temp_dir;
pub mod tiny_server;

use std::thread;
use std::time::{Duration, Instant};

use agent::AgentProcess;
use appconfigdata::FakeAppConfig;

/// Polls `condition` every few milliseconds until it holds or `bound` passes; returns whether it
/// held. Use it instead of sleeping: the bound only limits how long a failing test waits.
pub fn wait_until(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The agent pointed at `fake`, with `extra` variables on top (a name given again wins).
pub fn start_agent(fake: &FakeAppConfig, extra: &[(&str, &str)]) -> AgentProcess {
    let mut vars = fake.agent_vars();
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    AgentProcess::start(&vars)
}

/// The rules of wire.md §2 every agent must keep, whatever happened: each request signed
/// correctly, no token sent twice, no poll sooner than the service advised.
pub fn assert_wire_discipline(fake: &FakeAppConfig) {
    let calls = fake.calls();
    assert!(
        calls.iter().all(|call| call.signature_ok),
        "signature failures: {:?}",
        calls
            .iter()
            .filter_map(|call| call.signature_error.as_ref())
            .collect::<Vec<_>>()
    );
    assert!(
        !fake.any_token_received_twice(),
        "a token was sent twice: {calls:#?}"
    );
    assert_eq!(
        fake.early_poll_count(),
        0,
        "a poll came sooner than advised: {calls:#?}"
    );
}
