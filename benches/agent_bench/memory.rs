//! The `memory` mode: the agent's resident memory (`VmRSS` of `/proc/PID/status`).
//!
//! Owns three figures, each a median over runs of a fresh agent: standalone idle after start
//! (listener up, `/ping` answered), Lambda idle after INIT (no prefetch), and standalone with
//! 100 entries of 100 KiB each cached through GETs. Uses `process`, `client` and the fake
//! AppConfigData of `support`; asserts nothing about the figures.

use std::thread;
use std::time::Duration;

use crate::client::HttpClient;
use crate::error::BenchError;
use crate::process::{self, Agent};
use crate::stats::median;
use crate::support::appconfigdata::FakeAppConfig;
use crate::support::extensions::{deadline_in, FakeExtensionsApi};
use crate::{note, report, Options};

/// quality.md: 100 entries × 100 KB; KiB here, so the data is 10,240,000 bytes.
const ENTRIES: usize = 100;
const ENTRY_BYTES: usize = 100 * 1024;
/// Pause before reading VmRSS, so threads that were just started or ended have settled.
const SETTLE: Duration = Duration::from_millis(250);
/// Runs of the 10 MB measurement at most: each one moves 10 MB through the agent.
const MAX_DATA_RUNS: usize = 3;

pub fn run(options: &Options) -> Result<(), BenchError> {
    let runs = options.runs.unwrap_or(5);
    let fake =
        FakeAppConfig::start_on_port(0).map_err(BenchError::io("start fake AppConfigData"))?;
    let paths = deploy_large(&fake);

    eprintln!("memory: idle RSS, {runs} standalone and {runs} Lambda start-ups");
    let mut standalone = Vec::with_capacity(runs);
    let mut lambda = Vec::with_capacity(runs);
    for run in 0..runs {
        standalone.push(idle_standalone(options, &fake, run)?);
        lambda.push(idle_lambda(options, &fake, run)?);
    }
    note(&format!(
        "idle standalone VmRSS (KiB) per run: {standalone:?}"
    ));
    note(&format!("idle Lambda VmRSS (KiB) per run: {lambda:?}"));
    report("idle_rss_kib", median(&standalone));
    report("idle_rss_lambda_kib", median(&lambda));

    let data_runs = runs.min(MAX_DATA_RUNS);
    eprintln!("memory: {ENTRIES} entries × {ENTRY_BYTES} bytes cached, {data_runs} runs");
    let mut loaded = Vec::with_capacity(data_runs);
    for run in 0..data_runs {
        loaded.push(with_data(options, &fake, &paths, run)?);
    }
    note(&format!(
        "VmRSS with the data cached (KiB) per run: {loaded:?}"
    ));
    report("data_rss_kib", median(&loaded));
    report("data_bytes", (ENTRIES * ENTRY_BYTES) as f64);
    Ok(())
}

fn idle_standalone(options: &Options, fake: &FakeAppConfig, run: usize) -> Result<f64, BenchError> {
    let vars = process::standalone_vars(fake);
    let log = options.work.join(format!("memory-idle-{run}.log"));
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    let address = agent.wait_for_listener()?;
    let ping = HttpClient::connect(address)?.get("/ping")?;
    if ping.status != 200 {
        return Err(agent.failure(&format!("/ping answered {}", ping.status)));
    }
    thread::sleep(SETTLE);
    let rss = agent.rss_kib()?;
    stop(&mut agent)?;
    Ok(rss as f64)
}

fn idle_lambda(options: &Options, fake: &FakeAppConfig, run: usize) -> Result<f64, BenchError> {
    let api = FakeExtensionsApi::try_start().map_err(BenchError::io("start the Extensions API"))?;
    api.expect_name(&process::extension_name(&options.agent));
    let vars = process::lambda_vars(fake, &api);
    let log = options.work.join(format!("memory-lambda-{run}.log"));
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    if !api.wait_for_next_calls(1, Duration::from_secs(10)) {
        return Err(agent.failure("the agent did not call event/next within 10 s"));
    }
    thread::sleep(SETTLE);
    let rss = agent.rss_kib()?;
    api.shutdown("spindown", deadline_in(2_000));
    let status = agent.wait_exit()?;
    if !status.success() {
        return Err(agent.failure(&format!("the agent exited with {status} after SHUTDOWN")));
    }
    Ok(rss as f64)
}

fn with_data(
    options: &Options,
    fake: &FakeAppConfig,
    paths: &[String],
    run: usize,
) -> Result<f64, BenchError> {
    let mut vars = process::standalone_vars(fake);
    // No refresh during the measurement: the figure is the cache at rest.
    process::set_var(&mut vars, "POLL_INTERVAL", "1h");
    let log = options.work.join(format!("memory-data-{run}.log"));
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    let address = agent.wait_for_listener()?;
    let mut client = HttpClient::connect(address)?;
    for path in paths {
        let answer = client.get(path)?;
        if answer.status != 200 || answer.body.len() != ENTRY_BYTES {
            return Err(agent.failure(&format!(
                "GET {path} answered {} with {} bytes, not 200 with {ENTRY_BYTES}",
                answer.status,
                answer.body.len()
            )));
        }
    }
    drop(client);
    thread::sleep(SETTLE);
    let rss = agent.rss_kib()?;
    stop(&mut agent)?;
    Ok(rss as f64)
}

/// Deploys the 100 entries, each different bytes (so nothing can be shared between them);
/// returns the agent's path of each.
fn deploy_large(fake: &FakeAppConfig) -> Vec<String> {
    (0..ENTRIES)
        .map(|index| {
            let profile = format!("p{index}");
            let body = filler(index as u64 + 1, ENTRY_BYTES);
            fake.deploy("bench", "memory", &profile, &body, "text/plain", Some("1"));
            format!("/applications/bench/environments/memory/configurations/{profile}")
        })
        .collect()
}

/// `length` printable bytes from a xorshift generator seeded with `seed` (not zero).
fn filler(seed: u64, length: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

fn stop(agent: &mut Agent) -> Result<(), BenchError> {
    let status = agent.terminate()?;
    if !status.success() {
        return Err(agent.failure(&format!("the agent exited with {status} after SIGTERM")));
    }
    Ok(())
}
