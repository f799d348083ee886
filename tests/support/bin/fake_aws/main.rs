//! `fake-aws`: the loopback fake AWS that `scripts/demo` runs the real agent against.
//!
//! Owns only this program: its command line (`options`), its stdin protocol (`commands`), the
//! one-line answers and the timeline of what the fakes saw (`timeline`). The services are the
//! test fakes of `tests/support`, compiled in unchanged, so the demo and the tests exercise one
//! implementation: `appconfigdata` always, and with `--lambda` the Extensions API of `extensions`
//! (driven by `lambda`). It listens on 127.0.0.1 only and opens no outbound connection.
//!
//! Protocol: stdout gets one `ready NAME=ADDRESS ... region=REGION` line once every fake listens,
//! then exactly one line per command read from stdin, starting with `ok ` or `error `. Notes for
//! people go to stderr. The end of stdin stops the program like `quit`. Each fake is one field of
//! [`Fakes`] and one `NAME=ADDRESS` pair of the ready line; commands are told apart by their
//! first word, so another fake brings its own words without changing the existing ones.

#![forbid(unsafe_code)]

mod commands;
mod error;
mod lambda;
mod options;
mod timeline;

use std::fs;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Instant;

/// The loopback fakes, compiled from `tests/support`. Not `support/mod.rs` itself: it declares
/// the agent harness, which needs `CARGO_BIN_EXE_*`, a variable Cargo sets only for tests.
#[path = "../.."]
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

use commands::{Command, LambdaCommand, COMMANDS};
use error::FakeAwsError;
use lambda::LambdaFake;
use options::{content_type_of, Deployment, Options, Parsed, USAGE};
use support::appconfigdata::{FakeAppConfig, Operation};
use timeline::{appconfig_entries, Timeline};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("fake-aws: {error}\n(see fake-aws --help)");
            return ExitCode::from(2);
        }
    };
    let mut fakes = match Fakes::start(&options) {
        Ok(fakes) => fakes,
        Err(error) => {
            eprintln!("fake-aws: {error}");
            return ExitCode::FAILURE;
        }
    };
    match fakes.serve_commands() {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout means whoever drove us is gone; there is nobody to tell.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fake-aws: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The running fakes, the settings they were started with and the timeline of what they saw.
struct Fakes {
    appconfig: FakeAppConfig,
    /// `Some` with `--lambda`.
    lambda: Option<LambdaFake>,
    timeline: Timeline,
    region: String,
}

impl Fakes {
    /// Binds every fake on loopback and applies the command-line deployments and interval.
    fn start(options: &Options) -> Result<Self, FakeAwsError> {
        let start = Instant::now();
        let appconfig = FakeAppConfig::start_on_port(options.port).map_err(|error| {
            FakeAwsError::CannotListen {
                port: options.port,
                error,
            }
        })?;
        appconfig.set_credentials(&options.access_key, &options.secret_key, None);
        appconfig.set_region(&options.region);
        if let Some(seconds) = options.poll_interval_seconds {
            appconfig.set_poll_interval(seconds);
        }
        let lambda = match options.is_lambda {
            true => Some(LambdaFake::start(options.extension_name.as_deref())?),
            false => None,
        };
        let mut fakes = Self {
            appconfig,
            lambda,
            timeline: Timeline::new(start),
            region: options.region.clone(),
        };
        for deployment in &options.deployments {
            let note = fakes.deploy(deployment)?;
            eprintln!("fake-aws: {note}");
        }
        Ok(fakes)
    }

    /// Prints the ready line, then answers stdin commands until `quit` or the end of stdin.
    fn serve_commands(&mut self) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        let extensions = match &self.lambda {
            Some(lambda) => format!(" extensions={}", lambda.runtime_api()),
            None => String::new(),
        };
        writeln!(
            stdout,
            "ready appconfigdata={}{extensions} region={}",
            self.appconfig.url(),
            self.region
        )?;
        stdout.flush()?;

        for line in io::stdin().lock().lines() {
            let line = line?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let command = Command::parse(line);
            let quit = matches!(command, Ok(Command::Quit));
            match command.and_then(|command| self.execute(&command)) {
                Ok(message) => writeln!(stdout, "ok {message}")?,
                Err(error) => writeln!(stdout, "error {error}")?,
            }
            stdout.flush()?;
            if quit {
                break;
            }
        }
        Ok(())
    }

    fn execute(&mut self, command: &Command) -> Result<String, FakeAwsError> {
        match command {
            Command::Deploy(deployment) => self.deploy(deployment),
            Command::PollInterval(seconds) => {
                self.appconfig.set_poll_interval(*seconds);
                Ok(format!("Next-Poll-Interval-In-Seconds is now {seconds}"))
            }
            Command::Calls => Ok(self.describe_calls()),
            Command::Events { is_all } => {
                let extensions = self.lambda.as_ref().map(LambdaFake::entries);
                let appconfig = appconfig_entries(&self.appconfig.calls());
                let extensions = extensions.unwrap_or_default();
                Ok(self.timeline.render(appconfig, extensions, *is_all))
            }
            Command::Lambda(command) => self.execute_lambda(command),
            Command::Help => Ok(COMMANDS.to_string()),
            Command::Quit => Ok("bye".to_string()),
        }
    }

    fn execute_lambda(&mut self, command: &LambdaCommand) -> Result<String, FakeAwsError> {
        let Some(lambda) = self.lambda.as_mut() else {
            return Err(FakeAwsError::NeedsLambda(command.word()));
        };
        match command {
            LambdaCommand::Invoke { deadline_after_ms } => {
                let before = self.appconfig.calls().len();
                let answer = lambda.invoke(*deadline_after_ms, &mut self.timeline)?;
                let during = self.appconfig.calls().len() - before;
                Ok(format!("{answer}; AppConfigData calls meanwhile: {during}"))
            }
            LambdaCommand::Shutdown {
                reason,
                deadline_after_ms,
            } => lambda.shutdown(reason, *deadline_after_ms, &mut self.timeline),
            LambdaCommand::WaitIdle => lambda.wait_idle(),
        }
    }

    /// Reads the file now and deploys its bytes; returns the note to print.
    fn deploy(&mut self, deployment: &Deployment) -> Result<String, FakeAwsError> {
        let deployed_at = Instant::now();
        let body = fs::read(&deployment.file).map_err(|error| FakeAwsError::CannotRead {
            path: deployment.file.clone(),
            error,
        })?;
        let content_type = deployment
            .content_type
            .clone()
            .unwrap_or_else(|| content_type_of(&deployment.file).to_string());
        let [app, env, profile] = &deployment.key;
        self.appconfig.deploy(
            app,
            env,
            profile,
            &body,
            &content_type,
            Some(&deployment.version),
        );
        let version = &deployment.version;
        let note = format!("deploy {app}:{env}:{profile} version {version}");
        self.timeline.note(deployed_at, note);
        Ok(format!(
            "deployed {app}:{env}:{profile} version {version} ({} bytes, {content_type})",
            body.len()
        ))
    }

    fn describe_calls(&self) -> String {
        let calls = self.appconfig.calls();
        let count = |operation| calls.iter().filter(|c| c.operation == operation).count();
        let refused = calls.iter().filter(|c| !c.signature_ok).count();
        let reused = if self.appconfig.any_token_received_twice() {
            "yes"
        } else {
            "no"
        };
        let appconfig = format!(
            "StartConfigurationSession={} GetLatestConfiguration={} bad-signatures={refused} \
             token-reused={reused}",
            count(Operation::StartConfigurationSession),
            count(Operation::GetLatestConfiguration),
        );
        match &self.lambda {
            Some(lambda) => format!("{appconfig} {}", lambda.describe_calls()),
            None => appconfig,
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed step should panic with its error"
)]
mod tests {
    use super::*;

    fn options(line: &str) -> Options {
        match Options::parse(line.split_whitespace().map(str::to_string)).unwrap() {
            Parsed::Run(options) => options,
            Parsed::Help => panic!("{line:?} asked for help"),
        }
    }

    fn run(fakes: &mut Fakes, line: &str) -> Result<String, String> {
        let command = Command::parse(line).map_err(|error| error.to_string())?;
        fakes.execute(&command).map_err(|error| error.to_string())
    }

    #[test]
    fn deploy_command_reads_the_file_and_reports_what_it_deployed() {
        let directory = std::env::temp_dir().join(format!("fake-aws-test-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        let file = directory.join("v1.json");
        fs::write(&file, b"{\"a\":1}").unwrap();
        let mut fakes = Fakes::start(&options("--poll-interval 7")).unwrap();

        let note = run(&mut fakes, &format!("deploy x:y:z {} 3", file.display())).unwrap();
        assert_eq!(note, "deployed x:y:z version 3 (7 bytes, application/json)");
        let missing = run(&mut fakes, "deploy x:y:z /nonexistent/file 4");
        assert!(missing
            .unwrap_err()
            .starts_with("cannot read /nonexistent/file"));
        assert_eq!(
            run(&mut fakes, "calls").unwrap(),
            "StartConfigurationSession=0 GetLatestConfiguration=0 bad-signatures=0 \
             token-reused=no"
        );
        let events = run(&mut fakes, "events").unwrap();
        assert!(events.ends_with("s deploy x:y:z version 3"), "{events}");
        assert_eq!(run(&mut fakes, "events").unwrap(), "(none)");
        fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn credential_and_region_options_reach_the_fake() {
        let fakes = Fakes::start(&options(
            "--access-key AKIDOTHER --secret-key other/Secret --region ap-south-2",
        ))
        .unwrap();
        let expected = fakes.appconfig.credentials();
        assert_eq!(expected.access_key, "AKIDOTHER");
        assert_eq!(expected.secret_key, "other/Secret");
        assert_eq!(expected.session_token, None);
        let vars = fakes.appconfig.agent_vars();
        assert!(vars.contains(&("AWS_REGION".to_string(), "ap-south-2".to_string())));
        assert!(fakes.appconfig.url().starts_with("http://127.0.0.1:"));
        assert!(fakes.lambda.is_none());
    }

    #[test]
    fn extensions_api_commands_are_refused_without_lambda() {
        let mut fakes = Fakes::start(&options("")).unwrap();
        for (line, word) in [
            ("invoke", "invoke"),
            ("shutdown spindown", "shutdown"),
            ("wait-idle", "wait-idle"),
        ] {
            let error = run(&mut fakes, line).unwrap_err();
            assert_eq!(
                error,
                format!(
                    "{word} drives the fake Extensions API, which runs only under fake-aws \
                     --lambda"
                )
            );
        }
    }

    #[test]
    fn lambda_option_starts_the_extensions_api_on_loopback_and_counts_its_calls() {
        let mut fakes = Fakes::start(&options("--lambda --extension-name appconfig-lite")).unwrap();
        let lambda = fakes.lambda.as_ref().unwrap();
        assert!(lambda.runtime_api().starts_with("127.0.0.1:"));
        assert_eq!(
            run(&mut fakes, "calls").unwrap(),
            "StartConfigurationSession=0 GetLatestConfiguration=0 bad-signatures=0 \
             token-reused=no register=0 event/next=0 init/error=0 exit/error=0"
        );
        let shutdown = run(&mut fakes, "shutdown Timeout 500").unwrap();
        assert_eq!(
            shutdown,
            "SHUTDOWN Timeout queued for event/next #1, deadlineMs 500 ms from now"
        );
        let events = run(&mut fakes, "events").unwrap();
        assert!(
            events.ends_with("s SHUTDOWN Timeout queued for event/next #1"),
            "{events}"
        );
    }
}
