//! Runs the release agent for one measurement and reads what Linux says about it.
//!
//! Owns the child process: a cleared environment whose every AWS endpoint is on loopback, the
//! log in a file, the exec time taken just before the spawn, waits bounded in time, stopping it
//! (SIGTERM through `kill`, then SIGKILL) and `/proc/PID` (VmRSS, utime + stime). A dropped
//! [`Agent`] is killed, so an early return leaves nothing running. Used by every mode.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::support::appconfigdata::FakeAppConfig;
use crate::support::extensions::FakeExtensionsApi;

/// STS endpoint: the reserved TCP "discard" port on loopback, where nothing listens, so a call
/// the bench did not mean to cause fails here instead of leaving the machine.
const UNUSED_LOOPBACK_ENDPOINT: &str = "http://127.0.0.1:9";
/// How long the agent may take to log its listener or to exit when told to.
const PROCESS_BOUND: Duration = Duration::from_secs(10);
/// How often a wait looks again at the log or the process.
const POLL_STEP: Duration = Duration::from_millis(2);
/// The start-up log line that carries the bound address (brief: `listening on 127.0.0.1:PORT`).
const LISTENING_MARKER: &str = "listening on 127.0.0.1:";

/// A running agent. Dropping it kills the process if it still runs.
pub struct Agent {
    child: Child,
    log: PathBuf,
    /// The monotonic time just before the spawn: the launcher's exec time.
    pub spawned_at: Instant,
}

impl Agent {
    /// Starts `binary` with exactly `vars`, stdin and stdout on /dev/null and stderr in `log`.
    pub fn spawn(
        binary: &Path,
        vars: &[(String, String)],
        log: &Path,
    ) -> Result<Agent, BenchError> {
        let log_file = File::create(log).map_err(BenchError::io(format!(
            "cannot create the log file {}",
            log.display()
        )))?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(vars.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let spawned_at = Instant::now();
        let child = command
            .spawn()
            .map_err(BenchError::io(format!("cannot start {}", binary.display())))?;
        Ok(Agent {
            child,
            log: log.to_path_buf(),
            spawned_at,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log names the listening address; fails if the agent exits first.
    pub fn wait_for_listener(&mut self) -> Result<SocketAddr, BenchError> {
        let deadline = Instant::now() + PROCESS_BOUND;
        loop {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(address) = listening_address(&log) {
                return Ok(address);
            }
            if self.has_exited() {
                return Err(self.failure("the agent exited before it logged its listener"));
            }
            if Instant::now() >= deadline {
                return Err(self.failure("the agent did not log its listener within 10 s"));
            }
            thread::sleep(POLL_STEP);
        }
    }

    /// `VmRSS` of `/proc/PID/status`, in KiB.
    pub fn rss_kib(&self) -> Result<u64, BenchError> {
        let path = format!("/proc/{}/status", self.pid());
        let status = fs::read_to_string(&path).map_err(BenchError::io(format!("read {path}")))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError::Unexpected(format!("no VmRSS line in {path}")))
    }

    /// utime + stime of `/proc/PID/stat` in clock ticks: every thread of the process, those
    /// that have exited included.
    pub fn cpu_ticks(&self) -> Result<u64, BenchError> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = fs::read_to_string(&path).map_err(BenchError::io(format!("read {path}")))?;
        // The command name may hold spaces and parentheses; the fields after the last `)`
        // start with field 3 (state), so utime (field 14) and stime (15) are at 11 and 12.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |index: usize| fields.get(index).and_then(|text| text.parse::<u64>().ok());
        match (field(11), field(12)) {
            (Some(user), Some(system)) => Ok(user + system),
            _ => Err(BenchError::Unexpected(format!(
                "no utime and stime fields in {path}"
            ))),
        }
    }

    /// Waits for the agent to exit by itself (after SHUTDOWN), at most 10 s.
    pub fn wait_exit(&mut self) -> Result<ExitStatus, BenchError> {
        let deadline = Instant::now() + PROCESS_BOUND;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_STEP),
                Ok(None) => return Err(self.failure("the agent did not exit within 10 s")),
                Err(error) => return Err(BenchError::io("wait for the agent")(error)),
            }
        }
    }

    /// Sends SIGTERM (the standalone agent's stop signal) and waits for the exit.
    pub fn terminate(&mut self) -> Result<ExitStatus, BenchError> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(BenchError::io("run kill -TERM"))?;
        if !sent.success() {
            return Err(BenchError::Unexpected(format!(
                "kill -TERM {} failed ({sent})",
                self.pid()
            )));
        }
        self.wait_exit()
    }

    /// An error about this agent, with the end of its log.
    pub fn failure(&self, what: &str) -> BenchError {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        BenchError::Agent {
            what: what.to_string(),
            log_tail: tail,
        }
    }

    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The agent's variables for the standalone mode: credentials, region and endpoint of `fake`,
/// STS on a closed loopback port, no instance metadata, any free port, log level info.
pub fn standalone_vars(fake: &FakeAppConfig) -> Vec<(String, String)> {
    let mut vars = fake.agent_vars();
    for (name, value) in [
        ("AWS_ENDPOINT_URL_STS", UNUSED_LOOPBACK_ENDPOINT),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HTTP_PORT", "0"),
        ("LOG_LEVEL", "info"),
    ] {
        vars.push((name.to_string(), value.to_string()));
    }
    vars
}

/// [`standalone_vars`] plus the Lambda environment pointing at the fake Extensions API `api`.
pub fn lambda_vars(fake: &FakeAppConfig, api: &FakeExtensionsApi) -> Vec<(String, String)> {
    let mut vars = standalone_vars(fake);
    vars.push(("AWS_LAMBDA_RUNTIME_API".to_string(), api.runtime_api()));
    vars.push(("AWS_LAMBDA_FUNCTION_NAME".to_string(), "bench".to_string()));
    vars.push((
        "AWS_LAMBDA_FUNCTION_VERSION".to_string(),
        "$LATEST".to_string(),
    ));
    vars
}

/// Adds or replaces one variable.
pub fn set_var(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
    vars.retain(|(existing, _)| existing != name);
    vars.push((name.to_string(), value.to_string()));
}

/// The name Lambda knows an extension by: the file name of its executable.
pub fn extension_name(binary: &Path) -> String {
    binary
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`; 100, Linux's usual value,
/// when getconf is missing).
pub fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

fn listening_address(log: &str) -> Option<SocketAddr> {
    let start = log.find(LISTENING_MARKER)? + "listening on ".len();
    let rest = &log[start..];
    let port_end = "127.0.0.1:".len()
        + rest["127.0.0.1:".len()..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - "127.0.0.1:".len());
    rest[..port_end].parse().ok()
}
