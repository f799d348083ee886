//! Everything that can go wrong in `fake-aws`, worded for the person or script driving it.
//!
//! Owns only the error enum and its messages; it decides nothing. `options`, `commands`,
//! `lambda` and `main` return these errors, and `main` prints them (`error ...` answers on
//! stdout, start-up failures on stderr).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::commands::COMMANDS;

/// One failure of the program, a command-line option or a stdin command.
#[derive(Debug)]
pub enum FakeAwsError {
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
    ExtensionNameWithoutLambda,
    BadCommand(String),
    /// A Lambda command (its first word) while the program runs without `--lambda`.
    NeedsLambda(&'static str),
    /// The agent did not call `event/next` as expected within the bound.
    AgentSilent {
        waiting_for: String,
        bound: Duration,
    },
    CannotRead {
        path: PathBuf,
        error: io::Error,
    },
    CannotListen {
        port: u16,
        error: io::Error,
    },
    CannotListenExtensions(io::Error),
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
            Self::ExtensionNameWithoutLambda => write!(
                f,
                "--extension-name names the extension the fake Extensions API expects; give \
                 --lambda too"
            ),
            Self::BadCommand(line) => write!(f, "cannot understand {line:?}; {COMMANDS}"),
            Self::NeedsLambda(word) => write!(
                f,
                "{word} drives the fake Extensions API, which runs only under fake-aws --lambda"
            ),
            Self::AgentSilent { waiting_for, bound } => write!(
                f,
                "{waiting_for}, but the agent did not call event/next within {} s; is it \
                 running with AWS_LAMBDA_RUNTIME_API set to the extensions= address?",
                bound.as_secs()
            ),
            Self::CannotRead { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            Self::CannotListen { port, error } => {
                write!(f, "cannot listen on 127.0.0.1:{port}: {error}")
            }
            Self::CannotListenExtensions(error) => write!(
                f,
                "cannot listen on 127.0.0.1 (any port) for the Extensions API: {error}"
            ),
        }
    }
}

impl std::error::Error for FakeAwsError {}
