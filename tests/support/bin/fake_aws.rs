//! `fake-aws`: the loopback fake AWS that `scripts/demo` runs the real agent against.
//!
//! Owns only this program's command line, its stdin control protocol and the one-line answers;
//! the services are the test fakes of `tests/support`, compiled in unchanged, so the demo and the
//! tests exercise one implementation. It listens on 127.0.0.1 only and opens no outbound
//! connection. Uses `support::appconfigdata` (which uses `sigv4` and `http_wire`).
//!
//! Protocol: stdout gets one `ready NAME=URL ... region=REGION` line once every fake listens,
//! then exactly one line per command read from stdin, starting with `ok ` or `error `. Notes for
//! people go to stderr. The end of stdin stops the program like `quit`. Each fake is one field of
//! [`Fakes`] and one `NAME=URL` pair of the ready line; commands are told apart by their first
//! word, so another fake brings its own words without changing the existing ones.

#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The loopback fakes, compiled from `tests/support`. Not `support/mod.rs` itself: it declares
/// the agent harness, which needs `CARGO_BIN_EXE_*`, a variable Cargo sets only for tests.
#[path = ".."]
#[allow(
    dead_code,
    reason = "this program uses only part of the test support code"
)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support code; this program calls only its non-panicking constructor"
)]
mod support {
    pub mod appconfigdata;
    pub mod http_wire;
    pub mod sigv4;
}

use support::appconfigdata::{
    FakeAppConfig, Operation, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY,
};

const USAGE: &str = "\
usage: fake-aws [OPTIONS]

A fake AWS AppConfigData service on 127.0.0.1, to try appconfig-lite without AWS. It checks
every request's SigV4 signature against the credentials below.

options:
  --port PORT               listen on 127.0.0.1:PORT (default 0: a free port)
  --deploy APP:ENV:PROFILE=FILE@VERSION
                            serve FILE's bytes as VERSION (repeatable)
  --content-type TYPE       content type of the --deploy just before; default from the file
                            extension: .json, .yaml/.yml, .txt, else application/octet-stream
  --poll-interval SECONDS   Next-Poll-Interval-In-Seconds to answer (default: the client's
                            RequiredMinimumPollIntervalInSeconds, else 60)
  --access-key KEY          access key requests must be signed with (default AKIDFAKEAPPCONFIG)
  --secret-key KEY          secret key requests must be signed with (default
                            fakeSecret/With+Odd=Chars)
  --region REGION           region of the signing scope (default us-east-1)
  -h, --help                this text

stdout: `ready appconfigdata=http://127.0.0.1:PORT region=REGION`, then one line per command,
starting with `ok ` or `error `. Commands on stdin, one per line:
  deploy APP:ENV:PROFILE FILE VERSION [CONTENT_TYPE]   serve a new version
  poll-interval SECONDS                                 change Next-Poll-Interval-In-Seconds
  calls                                                 count the calls received so far
  help                                                  list the commands
  quit                                                  stop (so does the end of stdin)
";

/// The one-line list of commands that `help` answers.
const COMMANDS: &str = "commands: deploy APP:ENV:PROFILE FILE VERSION [CONTENT_TYPE] | \
                        poll-interval SECONDS | calls | help | quit";

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
    let fakes = match Fakes::start(&options) {
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

/// The running fakes and the settings they were started with.
struct Fakes {
    appconfig: FakeAppConfig,
    region: String,
}

impl Fakes {
    /// Binds every fake on loopback and applies the command-line deployments and interval.
    fn start(options: &Options) -> Result<Self, FakeAwsError> {
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
        let fakes = Self {
            appconfig,
            region: options.region.clone(),
        };
        for deployment in &options.deployments {
            let note = fakes.deploy(deployment)?;
            eprintln!("fake-aws: {note}");
        }
        Ok(fakes)
    }

    /// Prints the ready line, then answers stdin commands until `quit` or the end of stdin.
    fn serve_commands(&self) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        writeln!(
            stdout,
            "ready appconfigdata={} region={}",
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

    fn execute(&self, command: &Command) -> Result<String, FakeAwsError> {
        match command {
            Command::Deploy(deployment) => self.deploy(deployment),
            Command::PollInterval(seconds) => {
                self.appconfig.set_poll_interval(*seconds);
                Ok(format!("Next-Poll-Interval-In-Seconds is now {seconds}"))
            }
            Command::Calls => Ok(self.describe_calls()),
            Command::Help => Ok(COMMANDS.to_string()),
            Command::Quit => Ok("bye".to_string()),
        }
    }

    /// Reads the file now and deploys its bytes; returns the note to print.
    fn deploy(&self, deployment: &Deployment) -> Result<String, FakeAwsError> {
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
        Ok(format!(
            "deployed {app}:{env}:{profile} version {} ({} bytes, {content_type})",
            deployment.version,
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
        format!(
            "StartConfigurationSession={} GetLatestConfiguration={} bad-signatures={refused} \
             token-reused={reused}",
            count(Operation::StartConfigurationSession),
            count(Operation::GetLatestConfiguration),
        )
    }
}

/// What `--help` or a normal run was asked for.
enum Parsed {
    Run(Options),
    Help,
}

/// The command line.
struct Options {
    port: u16,
    deployments: Vec<Deployment>,
    poll_interval_seconds: Option<u64>,
    access_key: String,
    secret_key: String,
    region: String,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, FakeAwsError> {
        let mut options = Options {
            port: 0,
            deployments: Vec::new(),
            poll_interval_seconds: None,
            access_key: TEST_ACCESS_KEY.to_string(),
            secret_key: TEST_SECRET_KEY.to_string(),
            region: TEST_REGION.to_string(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            // Both `--name VALUE` and `--name=VALUE`.
            let (name, inline_value) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value)),
                _ => (arg.clone(), None),
            };
            let mut value = || match inline_value {
                Some(value) => Ok(value.to_string()),
                None => args
                    .next()
                    .ok_or_else(|| FakeAwsError::MissingValue(name.clone())),
            };
            match name.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--port" => {
                    options.port = parse_number(&name, &value()?, "a port from 0 to 65535")?;
                }
                "--deploy" => options
                    .deployments
                    .push(Deployment::from_option(&value()?)?),
                "--content-type" => {
                    let content_type = value()?;
                    let last = options
                        .deployments
                        .last_mut()
                        .filter(|deployment| deployment.content_type.is_none())
                        .ok_or(FakeAwsError::ContentTypeWithoutDeploy)?;
                    last.content_type = Some(content_type);
                }
                "--poll-interval" => {
                    let seconds = parse_number(&name, &value()?, "whole seconds, such as 2 or 45")?;
                    options.poll_interval_seconds = Some(seconds);
                }
                "--access-key" => options.access_key = value()?,
                "--secret-key" => options.secret_key = value()?,
                "--region" => options.region = value()?,
                _ => return Err(FakeAwsError::UnknownOption(arg)),
            }
        }
        Ok(Parsed::Run(options))
    }
}

/// One configuration version to serve.
struct Deployment {
    /// `[application, environment, profile]`.
    key: [String; 3],
    file: PathBuf,
    version: String,
    /// `None`: from the file extension.
    content_type: Option<String>,
}

impl Deployment {
    /// `APP:ENV:PROFILE=FILE@VERSION` (the version is after the last `@`).
    fn from_option(value: &str) -> Result<Self, FakeAwsError> {
        let bad = || FakeAwsError::BadDeploy(value.to_string());
        let (key, rest) = value.split_once('=').ok_or_else(bad)?;
        let (file, version) = rest.rsplit_once('@').ok_or_else(bad)?;
        if file.is_empty() || version.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            key: parse_key(key)?,
            file: PathBuf::from(file),
            version: version.to_string(),
            content_type: None,
        })
    }
}

/// A line read on stdin.
enum Command {
    Deploy(Deployment),
    PollInterval(u64),
    Calls,
    Help,
    Quit,
}

impl Command {
    fn parse(line: &str) -> Result<Self, FakeAwsError> {
        let (word, rest) = split_word(line);
        let no_arguments = |command| {
            if rest.is_empty() {
                Ok(command)
            } else {
                Err(FakeAwsError::BadCommand(line.to_string()))
            }
        };
        match word {
            "deploy" => {
                let (key, rest) = split_word(rest);
                let (file, rest) = split_word(rest);
                let (version, content_type) = split_word(rest);
                if version.is_empty() {
                    return Err(FakeAwsError::BadCommand(line.to_string()));
                }
                Ok(Command::Deploy(Deployment {
                    key: parse_key(key)?,
                    file: PathBuf::from(file),
                    version: version.to_string(),
                    content_type: (!content_type.is_empty()).then(|| content_type.to_string()),
                }))
            }
            "poll-interval" => {
                let (seconds, extra) = split_word(rest);
                if seconds.is_empty() || !extra.is_empty() {
                    return Err(FakeAwsError::BadCommand(line.to_string()));
                }
                let seconds = parse_number("poll-interval", seconds, "whole seconds")?;
                Ok(Command::PollInterval(seconds))
            }
            "calls" => no_arguments(Command::Calls),
            "help" => no_arguments(Command::Help),
            "quit" => no_arguments(Command::Quit),
            _ => Err(FakeAwsError::BadCommand(line.to_string())),
        }
    }
}

/// The first whitespace-separated word and the rest, both trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim()),
        None => (text, ""),
    }
}

/// `app:env:profile`, three non-empty parts.
fn parse_key(text: &str) -> Result<[String; 3], FakeAwsError> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [app, env, profile] if parts.iter().all(|part| !part.is_empty()) => {
            Ok([app.to_string(), env.to_string(), profile.to_string()])
        }
        _ => Err(FakeAwsError::BadKey(text.to_string())),
    }
}

fn parse_number<T: std::str::FromStr>(
    name: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, FakeAwsError> {
    value.parse().map_err(|_| FakeAwsError::BadNumber {
        name: name.to_string(),
        value: value.to_string(),
        expected,
    })
}

/// The content type for a file, by extension, as product.md §7 maps local development files.
fn content_type_of(file: &Path) -> &'static str {
    let extension = file
        .extension()
        .map(|extension| extension.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/x-yaml",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Everything that can go wrong in this program, worded for its user.
#[derive(Debug)]
enum FakeAwsError {
    UnknownOption(String),
    MissingValue(String),
    BadNumber {
        name: String,
        value: String,
        expected: &'static str,
    },
    BadDeploy(String),
    BadKey(String),
    ContentTypeWithoutDeploy,
    BadCommand(String),
    CannotRead {
        path: PathBuf,
        error: io::Error,
    },
    CannotListen {
        port: u16,
        error: io::Error,
    },
}

impl fmt::Display for FakeAwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOption(arg) => write!(f, "unknown option {arg:?}"),
            Self::MissingValue(name) => write!(f, "{name} needs a value"),
            Self::BadNumber {
                name,
                value,
                expected,
            } => write!(f, "{name} is {value:?}; give {expected}"),
            Self::BadDeploy(value) => write!(
                f,
                "--deploy is {value:?}; give APP:ENV:PROFILE=FILE@VERSION, such as \
                 shop:prod:settings=settings.json@1"
            ),
            Self::BadKey(value) => write!(
                f,
                "configuration {value:?} is not APP:ENV:PROFILE (three names joined by colons)"
            ),
            Self::ContentTypeWithoutDeploy => write!(
                f,
                "--content-type sets the type of the --deploy just before it: give it after a \
                 --deploy, at most once per --deploy"
            ),
            Self::BadCommand(line) => write!(f, "cannot understand {line:?}; {COMMANDS}"),
            Self::CannotRead { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            Self::CannotListen { port, error } => {
                write!(f, "cannot listen on 127.0.0.1:{port}: {error}")
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a failed parse should panic with its error"
)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn options(line: &str) -> Options {
        match Options::parse(args(line)).unwrap() {
            Parsed::Run(options) => options,
            Parsed::Help => panic!("{line:?} asked for help"),
        }
    }

    fn option_error(line: &str) -> String {
        match Options::parse(args(line)) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("{line:?} was accepted"),
        }
    }

    #[test]
    fn deploy_option_takes_key_file_and_version_after_the_last_at() {
        let parsed = options("--deploy shop:prod:settings=dir@2/settings.json@v7");
        let deployment = &parsed.deployments[0];
        assert_eq!(deployment.key, ["shop", "prod", "settings"]);
        assert_eq!(deployment.file, PathBuf::from("dir@2/settings.json"));
        assert_eq!(deployment.version, "v7");
        assert_eq!(deployment.content_type, None);
    }

    #[test]
    fn content_type_option_belongs_to_the_deploy_before_it() {
        let parsed = options(
            "--deploy a:b:c=one.bin@1 --content-type text/csv --deploy a:b:d=two.json@1 \
             --poll-interval=3 --port 4000 --region eu-west-1",
        );
        assert_eq!(
            parsed.deployments[0].content_type.as_deref(),
            Some("text/csv")
        );
        assert_eq!(parsed.deployments[1].content_type, None);
        assert_eq!(parsed.poll_interval_seconds, Some(3));
        assert_eq!(parsed.port, 4000);
        assert_eq!(parsed.region, "eu-west-1");
    }

    #[test]
    fn defaults_are_the_test_fake_credentials_on_a_free_port() {
        let parsed = options("");
        assert_eq!(parsed.port, 0);
        assert_eq!(parsed.access_key, TEST_ACCESS_KEY);
        assert_eq!(parsed.secret_key, TEST_SECRET_KEY);
        assert_eq!(parsed.region, TEST_REGION);
        assert!(parsed.deployments.is_empty());
    }

    #[test]
    fn malformed_command_lines_are_refused_with_the_accepted_form() {
        let cases = [
            (
                "--deploy shop:prod:settings",
                "give APP:ENV:PROFILE=FILE@VERSION",
            ),
            (
                "--deploy shop:prod:settings=file.json",
                "give APP:ENV:PROFILE=FILE@VERSION",
            ),
            ("--deploy shop:prod=file.json@1", "is not APP:ENV:PROFILE"),
            ("--deploy a::c=file.json@1", "is not APP:ENV:PROFILE"),
            ("--content-type text/plain", "give it after a --deploy"),
            (
                "--deploy a:b:c=f@1 --content-type x/y --content-type x/z",
                "at most once per --deploy",
            ),
            (
                "--port 70000",
                "--port is \"70000\"; give a port from 0 to 65535",
            ),
            (
                "--poll-interval soon",
                "--poll-interval is \"soon\"; give whole seconds",
            ),
            ("--region", "--region needs a value"),
            ("--lambda-mode", "unknown option \"--lambda-mode\""),
        ];
        for (line, expected) in cases {
            let message = option_error(line);
            assert!(message.contains(expected), "{line:?} gave {message:?}");
        }
    }

    #[test]
    fn help_option_wins() {
        assert!(matches!(
            Options::parse(args("--port 1 --help")),
            Ok(Parsed::Help)
        ));
    }

    #[test]
    fn deploy_command_keeps_the_rest_of_the_line_as_content_type() {
        let Ok(Command::Deploy(deployment)) =
            Command::parse("deploy  a:b:c   /tmp/v2.json 2  application/json; charset=utf-8")
        else {
            panic!("not parsed as a deploy");
        };
        assert_eq!(deployment.key, ["a", "b", "c"]);
        assert_eq!(deployment.file, PathBuf::from("/tmp/v2.json"));
        assert_eq!(deployment.version, "2");
        assert_eq!(
            deployment.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
    }

    #[test]
    fn simple_commands_parse_and_extra_words_are_refused() {
        assert!(matches!(Command::parse("calls"), Ok(Command::Calls)));
        assert!(matches!(Command::parse("help"), Ok(Command::Help)));
        assert!(matches!(Command::parse("quit"), Ok(Command::Quit)));
        assert!(matches!(
            Command::parse("poll-interval 5"),
            Ok(Command::PollInterval(5))
        ));
        for line in [
            "quit now",
            "calls 1",
            "poll-interval",
            "poll-interval 5 6",
            "poll-interval -1",
            "deploy a:b:c file",
            "deploy a:b file 2",
            "frobnicate",
        ] {
            assert!(Command::parse(line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn content_type_comes_from_the_file_extension() {
        let cases = [
            ("settings.json", "application/json"),
            ("SETTINGS.JSON", "application/json"),
            ("settings.yaml", "application/x-yaml"),
            ("settings.yml", "application/x-yaml"),
            ("notes.txt", "text/plain"),
            ("blob", "application/octet-stream"),
            ("blob.bin", "application/octet-stream"),
        ];
        for (file, expected) in cases {
            assert_eq!(content_type_of(Path::new(file)), expected, "{file}");
        }
    }

    #[test]
    fn deploy_command_reads_the_file_and_reports_what_it_deployed() {
        let directory = std::env::temp_dir().join(format!("fake-aws-test-{}", std::process::id()));
        fs::create_dir_all(&directory).unwrap();
        let file = directory.join("v1.json");
        fs::write(&file, b"{\"a\":1}").unwrap();
        let fakes = Fakes::start(&options("--poll-interval 7")).unwrap();

        let note = fakes
            .execute(&Command::parse(&format!("deploy x:y:z {} 3", file.display())).unwrap())
            .unwrap();
        assert_eq!(note, "deployed x:y:z version 3 (7 bytes, application/json)");
        let missing = fakes.execute(&Command::parse("deploy x:y:z /nonexistent/file 4").unwrap());
        assert!(missing
            .unwrap_err()
            .to_string()
            .starts_with("cannot read /nonexistent/file"));
        assert_eq!(
            fakes.execute(&Command::Calls).unwrap(),
            "StartConfigurationSession=0 GetLatestConfiguration=0 bad-signatures=0 \
             token-reused=no"
        );
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
    }
}
