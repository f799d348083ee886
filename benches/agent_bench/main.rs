//! `agent_bench`: the measuring half of `scripts/bench`. It runs the release agent against the
//! loopback fakes of `tests/support` (compiled in unchanged, as `fake-aws` does) and prints what
//! it measured as `result NAME VALUE` lines on stdout, with notes for people on stderr.
//!
//! Owns the command line and the three modes: `lambda` (start-up, idle INVOKE, refresh CPU; in
//! `lambda`), `memory` (RSS; in `memory`) and `serve` (an agent with one cached entry for wrk;
//! in `serve`). `process` runs the agent and reads /proc, `client` is a raw HTTP/1.1 client,
//! `stats` takes medians. It asserts no timing: figures are reported, and `scripts/bench`
//! compares them with the targets. Every socket it opens is on 127.0.0.1.

#![forbid(unsafe_code)]

mod client;
mod error;
mod lambda;
mod memory;
mod process;
mod serve;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use error::BenchError;

/// The loopback fakes, compiled from `tests/support`. Not `support/mod.rs` itself: it declares
/// the agent harness, which needs `CARGO_BIN_EXE_*`, a variable Cargo sets only for tests.
#[path = "../../tests/support"]
#[allow(
    dead_code,
    reason = "this program uses only part of the test support code"
)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support code; this program calls only its non-panicking constructors"
)]
mod support {
    pub mod appconfigdata;
    pub mod extensions;
    pub mod http_wire;
    pub mod sigv4;
}

const USAGE: &str = "\
usage: agent_bench MODE --agent BINARY --work DIR [OPTIONS]

Runs the appconfig-lite BINARY against loopback fakes and prints `result NAME VALUE` lines.
modes:
  lambda   exec -> register and -> first event/next (3 prefetched entries), INVOKE with nothing
           due -> next event/next, CPU per unchanged refresh
  memory   VmRSS idle after start, and with 100 entries x 100 KiB cached
  serve    a standalone agent with one cached entry (--body FILE, application/json); prints
           `ready url=URL pid=PID`, then serves until stdin ends or says `quit`
options (defaults in brackets):
  --runs N              lambda: start-up runs [21]; memory: runs per RSS figure [5]
  --invokes N           lambda: timed INVOKEs with nothing due [500]
  --refresh-entries N   lambda: entries refreshed by each INVOKE [100]
  --refresh-rounds N    lambda: INVOKEs per block of refreshes [10]
  --refresh-blocks N    lambda: blocks, each one CPU figure [3]
  --body FILE           serve: the bytes to deploy and serve
Logs of every agent started go to DIR.
";

/// The command line: a mode and its numbers.
pub struct Options {
    pub mode: String,
    pub agent: PathBuf,
    pub work: PathBuf,
    pub runs: Option<usize>,
    pub invokes: usize,
    pub refresh_entries: usize,
    pub refresh_rounds: usize,
    pub refresh_blocks: usize,
    pub body: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("agent_bench: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match options.mode.as_str() {
        "lambda" => lambda::run(&options),
        "memory" => memory::run(&options),
        "serve" => serve::run(&options),
        other => Err(BenchError::Usage(format!(
            "unknown mode {other:?}; give lambda, memory or serve"
        ))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agent_bench {}: {error}", options.mode);
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` for `--help` (and for `--bench`, which `cargo bench` passes).
fn parse_options(args: impl Iterator<Item = String>) -> Result<Option<Options>, BenchError> {
    let mut args = args.peekable();
    let mode = match args.next() {
        None => return Ok(None),
        Some(first) if matches!(first.as_str(), "-h" | "--help" | "--bench") => return Ok(None),
        Some(first) => first,
    };
    let mut options = Options {
        mode,
        agent: PathBuf::new(),
        work: PathBuf::new(),
        runs: None,
        invokes: 500,
        refresh_entries: 100,
        refresh_rounds: 10,
        refresh_blocks: 3,
        body: None,
    };
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| BenchError::Usage(format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--agent" => options.agent = PathBuf::from(value()?),
            "--work" => options.work = PathBuf::from(value()?),
            "--body" => options.body = Some(PathBuf::from(value()?)),
            "--runs" => options.runs = Some(count(&arg, &value()?)?),
            "--invokes" => options.invokes = count(&arg, &value()?)?,
            "--refresh-entries" => options.refresh_entries = count(&arg, &value()?)?,
            "--refresh-rounds" => options.refresh_rounds = count(&arg, &value()?)?,
            "--refresh-blocks" => options.refresh_blocks = count(&arg, &value()?)?,
            "-h" | "--help" => return Ok(None),
            _ => return Err(BenchError::Usage(format!("unknown argument {arg:?}"))),
        }
    }
    if options.agent.as_os_str().is_empty() || options.work.as_os_str().is_empty() {
        return Err(BenchError::Usage(
            "--agent BINARY and --work DIR are required".to_string(),
        ));
    }
    Ok(Some(options))
}

/// A whole number from 1 to 100,000, the range where every mode stays bounded in time.
fn count(name: &str, text: &str) -> Result<usize, BenchError> {
    text.parse()
        .ok()
        .filter(|number| (1..=100_000).contains(number))
        .ok_or_else(|| BenchError::Usage(format!("{name} is {text:?}; give 1 to 100000")))
}

/// Prints one figure for `scripts/bench`.
pub fn report(name: &str, value: f64) {
    println!("result {name} {value:.3}");
}

/// Prints a note for the person running the bench.
pub fn note(text: &str) {
    eprintln!("   {text}");
}
