//! Proves the test fakes themselves, since every other test file trusts them: a fake that
//! drifted from the spec fails here first.
//! - `sigv4_verifier`: the independent SigV4 code against the wire.md §5 vectors.
//! - `fake_protocol`: the fake AppConfigData against wire.md §2.
//! - `fake_faults`: each injected fault, listener control and the counters.
//! - `agent_harness`: the process harness, the raw HTTP client and `wait_until`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

#[path = "fakes_selftest/agent_harness.rs"]
mod agent_harness;
#[path = "fakes_selftest/fake_client.rs"]
mod fake_client;
#[path = "fakes_selftest/fake_faults.rs"]
mod fake_faults;
#[path = "fakes_selftest/fake_protocol.rs"]
mod fake_protocol;
#[path = "fakes_selftest/sigv4_verifier.rs"]
mod sigv4_verifier;
