//! The `lambda` mode: the agent as a Lambda extension under the fake Extensions API, timed with
//! the fakes' own arrival stamps.
//!
//! Owns three measurements: exec → `register` and exec → first `event/next` with 3 prefetched
//! entries (one fresh agent per run), INVOKE with nothing due → next `event/next` (one agent,
//! with the same loop run by a minimal client as the fake's own floor), and CPU per unchanged
//! refresh (`/proc` utime + stime over INVOKEs that each refresh every entry). Uses `process`
//! for the agent, `client` for the minimal extension and `support` for the fakes.

use std::thread;
use std::time::{Duration, Instant};

use crate::client::HttpClient;
use crate::error::BenchError;
use crate::process::{self, Agent};
use crate::stats::{median, percentile};
use crate::support::appconfigdata::{FakeAppConfig, Operation};
use crate::support::extensions::{deadline_in, CallKind, FakeExtensionsApi, BASE_PATH, IDENTIFIER};
use crate::{note, report, Options};

/// How long any one wait for the agent may take; the agent's own bound on a refresh batch is
/// its request timeout (3 s by default), so 10 s means something is broken.
const AGENT_BOUND: Duration = Duration::from_secs(10);
/// INVOKEs sent before the timed ones, so the first connections and page faults are not timed.
const WARMUP_INVOKES: usize = 20;
/// Entries prefetched in the start-up runs (quality.md: 3).
const PREFETCHED: usize = 3;
/// The shortest `POLL_INTERVAL` the agent accepts (product.md §3: 1 s to 24 h), and the wait
/// after an INVOKE before every entry is due again, with a margin for the clock.
const SHORTEST_INTERVAL: &str = "1s";
const ROUND_GAP: Duration = Duration::from_millis(1_050);

pub fn run(options: &Options) -> Result<(), BenchError> {
    let fake =
        FakeAppConfig::start_on_port(0).map_err(BenchError::io("start fake AppConfigData"))?;

    let runs = options.runs.unwrap_or(21);
    eprintln!("lambda: {runs} start-ups, each with {PREFETCHED} prefetched entries");
    let (register_ms, first_next_ms) = start_ups(options, &fake, runs)?;
    describe("exec -> register", &register_ms, "ms");
    describe("exec -> first event/next", &first_next_ms, "ms");
    report("register_ms", median(&register_ms));
    report("first_next_ms", median(&first_next_ms));

    eprintln!("lambda: {} INVOKEs with nothing due", options.invokes);
    let agent_us = idle_invokes(options, &fake)?;
    let floor_us = floor_invokes(options.invokes)?;
    describe("agent: INVOKE queued -> next event/next", &agent_us, "µs");
    describe("minimal client, same loop", &floor_us, "µs");
    report("invoke_idle_us", median(&agent_us));
    report("invoke_idle_p99_us", percentile(&agent_us, 99.0));
    report("invoke_floor_us", median(&floor_us));

    let per_block = options.refresh_entries * options.refresh_rounds;
    eprintln!(
        "lambda: {} blocks of {per_block} unchanged refreshes ({} entries, {} INVOKEs ≥ 1 s apart)",
        options.refresh_blocks, options.refresh_entries, options.refresh_rounds
    );
    let cpu_us = refresh_cpu(options, &fake)?;
    describe("CPU per unchanged refresh, per block", &cpu_us, "µs");
    report("refresh_cpu_us", median(&cpu_us));
    report("refresh_count", per_block as f64);
    Ok(())
}

/// One fresh agent (and fake Extensions API) per run; returns exec → register and exec → first
/// `event/next`, in ms.
fn start_ups(
    options: &Options,
    fake: &FakeAppConfig,
    runs: usize,
) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
    let keys = deploy_small(fake, "startup", PREFETCHED);
    let name = process::extension_name(&options.agent);
    let mut register_ms = Vec::with_capacity(runs);
    let mut first_next_ms = Vec::with_capacity(runs);
    for run in 0..runs {
        let api = start_extensions_api(&name)?;
        let mut vars = process::lambda_vars(fake, &api);
        process::set_var(&mut vars, "PREFETCH_LIST", &keys.join(","));
        let calls_before = fake.calls().len();
        let log = options.work.join(format!("lambda-startup-{run}.log"));
        let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
        if !api.wait_for_next_calls(1, AGENT_BOUND) {
            return Err(agent.failure("the agent did not call event/next within 10 s"));
        }

        let calls = api.calls();
        let arrival = |kind| {
            calls
                .iter()
                .find(|call| call.kind == kind)
                .map(|call| call.time)
        };
        let (Some(register), Some(first_next)) =
            (arrival(CallKind::Register), arrival(CallKind::NextEvent))
        else {
            return Err(agent.failure("the fake saw no register before event/next"));
        };
        // Without this the figure could time an INIT that skipped the prefetch.
        let answered = fake.calls()[calls_before..]
            .iter()
            .filter(|call| call.operation == Operation::GetLatestConfiguration)
            .filter(|call| call.status == Some(200) && call.at < first_next)
            .count();
        if answered < PREFETCHED {
            return Err(agent.failure(&format!(
                "only {answered} of {PREFETCHED} prefetches were answered before event/next"
            )));
        }
        register_ms.push(millis(register.saturating_duration_since(agent.spawned_at)));
        first_next_ms.push(millis(
            first_next.saturating_duration_since(agent.spawned_at),
        ));
        shut_down(&api, &mut agent)?;
    }
    Ok((register_ms, first_next_ms))
}

/// INVOKE queued → the agent's next `event/next` arrives, in µs, with nothing due: 3 entries
/// prefetched and a one-hour poll interval.
fn idle_invokes(options: &Options, fake: &FakeAppConfig) -> Result<Vec<f64>, BenchError> {
    let keys = deploy_small(fake, "invoke", PREFETCHED);
    let api = start_extensions_api(&process::extension_name(&options.agent))?;
    let mut vars = process::lambda_vars(fake, &api);
    process::set_var(&mut vars, "PREFETCH_LIST", &keys.join(","));
    process::set_var(&mut vars, "POLL_INTERVAL", "1h");
    let log = options.work.join("lambda-invoke.log");
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    if !api.wait_for_next_calls(1, AGENT_BOUND) {
        return Err(agent.failure("the agent did not finish INIT within 10 s"));
    }
    let polls_before = fake.get_latest_calls();
    let samples = time_invokes(&api, options.invokes).map_err(|what| agent.failure(&what))?;
    if fake.get_latest_calls() != polls_before {
        return Err(agent.failure("the agent polled during INVOKEs that had nothing due"));
    }
    shut_down(&api, &mut agent)?;
    Ok(samples)
}

/// The same INVOKE loop answered by a minimal extension in this process: what the fake, the
/// loopback and the thread wake-ups cost by themselves.
fn floor_invokes(count: usize) -> Result<Vec<f64>, BenchError> {
    let api = FakeExtensionsApi::try_start().map_err(BenchError::io("start the Extensions API"))?;
    let address = api
        .runtime_api()
        .parse()
        .map_err(|_| BenchError::Unexpected("the fake's address is not IP:PORT".to_string()))?;
    let mut client = HttpClient::connect(address)?;
    let register = format!("{BASE_PATH}/register");
    let body = br#"{"events":["INVOKE","SHUTDOWN"]}"#;
    let answer = client.request(
        "POST",
        &register,
        &[("Lambda-Extension-Name", "floor")],
        body,
    )?;
    if answer.status != 200 {
        return Err(BenchError::Unexpected(format!(
            "the minimal extension's register got {}",
            answer.status
        )));
    }
    let extension = thread::spawn(move || -> Result<(), BenchError> {
        let next = format!("{BASE_PATH}/event/next");
        loop {
            let event = client.request(
                "GET",
                &next,
                &[("Lambda-Extension-Identifier", IDENTIFIER)],
                b"",
            )?;
            if event.status != 200 || event.body.windows(8).any(|part| part == b"SHUTDOWN") {
                return Ok(());
            }
        }
    });
    let timed = time_invokes(&api, count);
    api.shutdown("spindown", deadline_in(2_000));
    let joined = extension
        .join()
        .map_err(|_| BenchError::Unexpected("the minimal extension panicked".to_string()));
    joined??;
    timed.map_err(BenchError::Unexpected)
}

/// Sends `WARMUP_INVOKES + count` INVOKEs one at a time to an extension waiting on its first
/// `event/next`; returns, for the last `count`, µs from queueing to the next `event/next`.
fn time_invokes(api: &FakeExtensionsApi, count: usize) -> Result<Vec<f64>, String> {
    let total = WARMUP_INVOKES + count;
    let mut queued = Vec::with_capacity(total);
    for sent in 1..=total {
        if !api.wait_for_next_calls(sent, AGENT_BOUND) {
            return Err(format!("event/next #{sent} did not come within 10 s"));
        }
        queued.push(Instant::now());
        api.invoke(deadline_in(3_000));
    }
    if !api.wait_for_next_calls(total + 1, AGENT_BOUND) {
        return Err(format!(
            "event/next #{} did not come within 10 s",
            total + 1
        ));
    }
    let nexts: Vec<Instant> = api
        .calls()
        .into_iter()
        .filter(|call| call.kind == CallKind::NextEvent)
        .map(|call| call.time)
        .collect();
    // Invoke i (from 0) went to event/next #i+1; the agent's answer to it is event/next #i+2.
    Ok(queued
        .iter()
        .zip(nexts.iter().skip(1))
        .skip(WARMUP_INVOKES)
        .map(|(queued, next)| next.saturating_duration_since(*queued).as_secs_f64() * 1e6)
        .collect())
}

/// CPU µs per unchanged refresh, one figure per block of `refresh_rounds` INVOKEs.
///
/// A standalone agent cannot refresh more often than once a second per entry, so 1,000
/// refreshes of one entry would take 17 minutes. Instead `refresh_entries` entries are cached
/// with the shortest poll interval (1 s) and the fake advising 1 s, and an INVOKE at least
/// 1.05 s after the previous one finished finds every entry due: the agent refreshes them all
/// (one thread each, over its pooled connections) before its next `event/next`. Between
/// INVOKEs a Lambda agent does nothing, so utime + stime over a block is the CPU of its
/// refreshes plus the INVOKE handling shared among them; the count comes from the fake.
fn refresh_cpu(options: &Options, fake: &FakeAppConfig) -> Result<Vec<f64>, BenchError> {
    fake.set_poll_interval(1);
    let keys = deploy_small(fake, "refresh", options.refresh_entries);
    let api = start_extensions_api(&process::extension_name(&options.agent))?;
    let mut vars = process::lambda_vars(fake, &api);
    process::set_var(&mut vars, "PREFETCH_LIST", &keys.join(","));
    process::set_var(&mut vars, "POLL_INTERVAL", SHORTEST_INTERVAL);
    let log = options.work.join("lambda-refresh.log");
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    if !api.wait_for_next_calls(1, AGENT_BOUND) {
        return Err(agent.failure("the agent did not finish INIT within 10 s"));
    }
    let refresh_polls = || {
        fake.calls()
            .iter()
            .filter(|call| call.operation == Operation::GetLatestConfiguration)
            .filter(|call| call.status == Some(200))
            .filter(|call| {
                call.key
                    .as_deref()
                    .is_some_and(|key| key.starts_with("bench:refresh:"))
            })
            .count()
    };
    if refresh_polls() != keys.len() {
        return Err(agent.failure("the prefetch of the refresh entries did not finish in INIT"));
    }

    let ticks_per_second = process::clock_ticks_per_second();
    let mut figures = Vec::with_capacity(options.refresh_blocks);
    let mut invokes = 0;
    let mut last_round = Instant::now();
    for _ in 0..options.refresh_blocks {
        let (ticks_before, polls_before) = (agent.cpu_ticks()?, refresh_polls());
        for _ in 0..options.refresh_rounds {
            thread::sleep((last_round + ROUND_GAP).saturating_duration_since(Instant::now()));
            api.invoke(deadline_in(10_000));
            invokes += 1;
            if !api.wait_for_next_calls(invokes + 1, AGENT_BOUND) {
                return Err(agent.failure("the agent did not finish its refreshes within 10 s"));
            }
            last_round = Instant::now();
        }
        let ticks = agent.cpu_ticks()?.saturating_sub(ticks_before);
        let refreshes = refresh_polls() - polls_before;
        let expected = options.refresh_entries * options.refresh_rounds;
        if refreshes != expected {
            note(&format!(
                "this block refreshed {refreshes} entries, not {expected}"
            ));
        }
        if refreshes == 0 {
            return Err(agent.failure("no INVOKE refreshed anything"));
        }
        figures.push(ticks as f64 / ticks_per_second * 1e6 / refreshes as f64);
    }
    if fake.early_poll_count() > 0 || fake.any_token_received_twice() {
        note("the fake saw an early poll or a reused token; the figures may not be comparable");
    }
    note(&format!("clock ticks per second: {ticks_per_second}"));
    shut_down(&api, &mut agent)?;
    Ok(figures)
}

/// Deploys `count` small JSON configurations `bench:GROUP:pN`; returns their keys.
fn deploy_small(fake: &FakeAppConfig, group: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|index| {
            let profile = format!("p{index}");
            let body = format!("{{\"group\":\"{group}\",\"entry\":{index},\"enabled\":true}}");
            fake.deploy(
                "bench",
                group,
                &profile,
                body.as_bytes(),
                "application/json",
                Some("1"),
            );
            format!("bench:{group}:{profile}")
        })
        .collect()
}

fn start_extensions_api(name: &str) -> Result<FakeExtensionsApi, BenchError> {
    let api = FakeExtensionsApi::try_start().map_err(BenchError::io("start the Extensions API"))?;
    api.expect_name(name);
    Ok(api)
}

/// Queues SHUTDOWN and waits for exit status 0.
fn shut_down(api: &FakeExtensionsApi, agent: &mut Agent) -> Result<(), BenchError> {
    api.shutdown("spindown", deadline_in(2_000));
    let status = agent.wait_exit()?;
    if !status.success() {
        return Err(agent.failure(&format!("the agent exited with {status} after SHUTDOWN")));
    }
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// One note line: median, 90th percentile and the range.
fn describe(what: &str, samples: &[f64], unit: &str) {
    let lowest = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    note(&format!(
        "{what}: median {:.3} {unit}, p90 {:.3}, min {lowest:.3}, max {highest:.3} ({} samples)",
        median(samples),
        percentile(samples, 90.0),
        samples.len()
    ));
}
