//! The command line of `fake-aws` and the parsing helpers its stdin commands share.
//!
//! Owns `--help` text, option parsing and the `APP:ENV:PROFILE=FILE@VERSION` deployment form;
//! it starts nothing and reads no file. `main` builds the fakes from [`Options`]; `commands`
//! reuses [`parse_key`], [`parse_number`] and [`Deployment`].

use std::path::{Path, PathBuf};

use crate::error::FakeAwsError;
use crate::support::appconfigdata::{TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY};

pub const USAGE: &str = "\
usage: fake-aws [OPTIONS]

A fake AWS AppConfigData service on 127.0.0.1, to try appconfig-lite without AWS. It checks
every request's SigV4 signature against the credentials below. With --lambda it also runs a fake
Lambda Extensions API, so the agent can run as a Lambda extension.

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
  --lambda                  also run the fake Extensions API on a free 127.0.0.1 port; point
                            the agent's AWS_LAMBDA_RUNTIME_API at the extensions= address
  --extension-name NAME     with --lambda: the extension's file name; a register under another
                            name is an internal extension, refused SHUTDOWN as Lambda does
                            (default: any name registers as an external extension)
  -h, --help                this text

stdout: `ready appconfigdata=http://127.0.0.1:PORT region=REGION` (with --lambda:
`ready appconfigdata=http://127.0.0.1:PORT extensions=127.0.0.1:PORT region=REGION`), then one
line per command, starting with `ok ` or `error `. Commands on stdin, one per line:
  deploy APP:ENV:PROFILE FILE VERSION [CONTENT_TYPE]   serve a new version
  poll-interval SECONDS                                 change Next-Poll-Interval-In-Seconds
  calls                                                 count the calls received so far
  events [all]                                          what the fakes saw since the last
                                                        `events` (or since the start), in
                                                        order, as `SECONDS WHAT` items joined
                                                        by ` | `
  help                                                  list the commands
  quit                                                  stop (so does the end of stdin)
with --lambda also:
  invoke [DEADLINE_MS]        send an INVOKE (deadlineMs that far ahead, default 3000), then
                              wait until the agent calls event/next again (at most 10 s)
  shutdown REASON [DEADLINE_MS]
                              send a SHUTDOWN with that shutdownReason (deadline default 2000)
  wait-idle                   wait until the agent waits on event/next for a new event, such
                              as at the end of its INIT (at most 10 s)
";

/// What `--help` or a normal run was asked for.
pub enum Parsed {
    Run(Options),
    Help,
}

/// The command line.
pub struct Options {
    pub port: u16,
    pub deployments: Vec<Deployment>,
    pub poll_interval_seconds: Option<u64>,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// `--lambda`: run the fake Extensions API too.
    pub is_lambda: bool,
    /// `--extension-name`: the only name that registers as an external extension.
    pub extension_name: Option<String>,
}

impl Options {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, FakeAwsError> {
        let mut options = Options {
            port: 0,
            deployments: Vec::new(),
            poll_interval_seconds: None,
            access_key: TEST_ACCESS_KEY.to_string(),
            secret_key: TEST_SECRET_KEY.to_string(),
            region: TEST_REGION.to_string(),
            is_lambda: false,
            extension_name: None,
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
                "--lambda" if inline_value.is_none() => options.is_lambda = true,
                "--extension-name" => options.extension_name = Some(value()?),
                _ => return Err(FakeAwsError::UnknownOption(arg)),
            }
        }
        if options.extension_name.is_some() && !options.is_lambda {
            return Err(FakeAwsError::ExtensionNameWithoutLambda);
        }
        Ok(Parsed::Run(options))
    }
}

/// One configuration version to serve.
pub struct Deployment {
    /// `[application, environment, profile]`.
    pub key: [String; 3],
    pub file: PathBuf,
    pub version: String,
    /// `None`: from the file extension.
    pub content_type: Option<String>,
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

/// `app:env:profile`, three non-empty parts.
pub fn parse_key(text: &str) -> Result<[String; 3], FakeAwsError> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [app, env, profile] if parts.iter().all(|part| !part.is_empty()) => {
            Ok([app.to_string(), env.to_string(), profile.to_string()])
        }
        _ => Err(FakeAwsError::BadKey(text.to_string())),
    }
}

/// `value` as a number; the error names the option or command and the accepted form.
pub fn parse_number<T: std::str::FromStr>(
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
pub fn content_type_of(file: &Path) -> &'static str {
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
    fn defaults_are_the_test_fake_credentials_on_a_free_port_without_lambda() {
        let parsed = options("");
        assert_eq!(parsed.port, 0);
        assert_eq!(parsed.access_key, TEST_ACCESS_KEY);
        assert_eq!(parsed.secret_key, TEST_SECRET_KEY);
        assert_eq!(parsed.region, TEST_REGION);
        assert!(parsed.deployments.is_empty());
        assert!(!parsed.is_lambda);
        assert_eq!(parsed.extension_name, None);
    }

    #[test]
    fn lambda_option_is_a_flag_and_takes_an_extension_name() {
        let parsed = options("--lambda --extension-name appconfig-lite --poll-interval 2");
        assert!(parsed.is_lambda);
        assert_eq!(parsed.extension_name.as_deref(), Some("appconfig-lite"));
        assert_eq!(parsed.poll_interval_seconds, Some(2));
        let parsed = options("--extension-name=agent --lambda");
        assert_eq!(parsed.extension_name.as_deref(), Some("agent"));
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
            ("--lambda=yes", "unknown option \"--lambda=yes\""),
            ("--extension-name agent", "give --lambda too"),
            (
                "--lambda --extension-name",
                "--extension-name needs a value",
            ),
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
}
