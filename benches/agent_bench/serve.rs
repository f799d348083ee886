//! The `serve` mode: a standalone agent with one cached entry, for `scripts/bench` to load with
//! wrk while this program keeps the fake AppConfigData behind it.
//!
//! Owns the deployment (`--body FILE` as `bench:http:small`, application/json, version 1), the
//! first GET that caches it, the `ready url=URL pid=PID` line and the stop when stdin ends or
//! says `quit`. Uses `process`, `client` and the fake AppConfigData of `support`.

use std::fs;
use std::io::{self, BufRead, Write};

use crate::client::HttpClient;
use crate::error::BenchError;
use crate::process::{self, Agent};
use crate::support::appconfigdata::FakeAppConfig;
use crate::Options;

const PATH: &str = "/applications/bench/environments/http/configurations/small";

pub fn run(options: &Options) -> Result<(), BenchError> {
    let Some(body_file) = &options.body else {
        return Err(BenchError::Usage("serve needs --body FILE".to_string()));
    };
    let body = fs::read(body_file).map_err(BenchError::io(format!(
        "cannot read {}",
        body_file.display()
    )))?;
    let fake =
        FakeAppConfig::start_on_port(0).map_err(BenchError::io("start fake AppConfigData"))?;
    fake.deploy(
        "bench",
        "http",
        "small",
        &body,
        "application/json",
        Some("1"),
    );

    let mut vars = process::standalone_vars(&fake);
    // No refresh while wrk runs: the figure is the cached path alone.
    process::set_var(&mut vars, "POLL_INTERVAL", "1h");
    let log = options.work.join("serve.log");
    let mut agent = Agent::spawn(&options.agent, &vars, &log)?;
    let address = agent.wait_for_listener()?;
    let answer = HttpClient::connect(address)?.get(PATH)?;
    if answer.status != 200 || answer.body != body {
        return Err(agent.failure(&format!(
            "the first GET answered {} with {} bytes, not 200 with the deployed bytes",
            answer.status,
            answer.body.len()
        )));
    }

    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "ready url=http://{address}{PATH} pid={}",
        agent.pid()
    )
    .and_then(|()| stdout.flush())
    .map_err(BenchError::io("write the ready line"))?;
    drop(stdout);
    for line in io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim() == "quit" => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }

    let status = agent.terminate()?;
    if !status.success() {
        return Err(agent.failure(&format!("the agent exited with {status} after SIGTERM")));
    }
    Ok(())
}
