//! The stdin control protocol of `fake-aws`: one command per line, told apart by its first word.
//!
//! Owns only parsing a line into a [`Command`]; running it is `main`'s job (and `lambda`'s for
//! the Extensions API commands). Uses the parsing helpers of `options`.

use std::path::PathBuf;

use crate::error::FakeAwsError;
use crate::options::{parse_key, parse_number, Deployment};

/// The one-line list of commands that `help` answers.
pub const COMMANDS: &str = "commands: deploy APP:ENV:PROFILE FILE VERSION [CONTENT_TYPE] | \
                            poll-interval SECONDS | calls | events [all] | help | quit; with \
                            --lambda also: invoke [DEADLINE_MS] | shutdown REASON [DEADLINE_MS] \
                            | wait-idle";

/// How far ahead an INVOKE's `deadlineMs` is by default: Lambda's default function timeout, 3 s.
pub const DEFAULT_INVOKE_DEADLINE_MS: u64 = 3_000;

/// How far ahead a SHUTDOWN's `deadlineMs` is by default: Lambda's shutdown phase is about 2 s
/// for the runtime and every extension together (wire.md §1).
pub const DEFAULT_SHUTDOWN_DEADLINE_MS: u64 = 2_000;

/// A line read on stdin.
pub enum Command {
    Deploy(Deployment),
    PollInterval(u64),
    Calls,
    /// `events` (new since the last `events`) or `events all`.
    Events {
        is_all: bool,
    },
    /// A command for the fake Extensions API, which needs `--lambda`.
    Lambda(LambdaCommand),
    Help,
    Quit,
}

/// A command that drives the fake Extensions API.
pub enum LambdaCommand {
    /// `deadline_after_ms`: how far ahead of now `deadlineMs` is.
    Invoke {
        deadline_after_ms: u64,
    },
    Shutdown {
        reason: String,
        deadline_after_ms: u64,
    },
    WaitIdle,
}

impl LambdaCommand {
    /// The command's first word, to name it in messages.
    pub fn word(&self) -> &'static str {
        match self {
            LambdaCommand::Invoke { .. } => "invoke",
            LambdaCommand::Shutdown { .. } => "shutdown",
            LambdaCommand::WaitIdle => "wait-idle",
        }
    }
}

impl Command {
    pub fn parse(line: &str) -> Result<Self, FakeAwsError> {
        let bad = || FakeAwsError::BadCommand(line.to_string());
        let (word, rest) = split_word(line);
        let no_arguments = |command| {
            if rest.is_empty() {
                Ok(command)
            } else {
                Err(bad())
            }
        };
        match word {
            "deploy" => {
                let (key, rest) = split_word(rest);
                let (file, rest) = split_word(rest);
                let (version, content_type) = split_word(rest);
                if version.is_empty() {
                    return Err(bad());
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
                    return Err(bad());
                }
                let seconds = parse_number("poll-interval", seconds, "whole seconds")?;
                Ok(Command::PollInterval(seconds))
            }
            "events" => match rest {
                "" => Ok(Command::Events { is_all: false }),
                "all" => Ok(Command::Events { is_all: true }),
                _ => Err(bad()),
            },
            "invoke" => {
                let (deadline, extra) = split_word(rest);
                if !extra.is_empty() {
                    return Err(bad());
                }
                let deadline_after_ms =
                    deadline_after_ms(word, deadline, DEFAULT_INVOKE_DEADLINE_MS)?;
                Ok(Command::Lambda(LambdaCommand::Invoke { deadline_after_ms }))
            }
            "shutdown" => {
                let (reason, rest) = split_word(rest);
                let (deadline, extra) = split_word(rest);
                if reason.is_empty() || !extra.is_empty() {
                    return Err(bad());
                }
                let deadline_after_ms =
                    deadline_after_ms(word, deadline, DEFAULT_SHUTDOWN_DEADLINE_MS)?;
                Ok(Command::Lambda(LambdaCommand::Shutdown {
                    reason: reason.to_string(),
                    deadline_after_ms,
                }))
            }
            "wait-idle" => no_arguments(Command::Lambda(LambdaCommand::WaitIdle)),
            "calls" => no_arguments(Command::Calls),
            "help" => no_arguments(Command::Help),
            "quit" => no_arguments(Command::Quit),
            _ => Err(bad()),
        }
    }
}

/// An optional `DEADLINE_MS` argument: milliseconds from now, `default` when absent.
fn deadline_after_ms(command: &str, text: &str, default: u64) -> Result<u64, FakeAwsError> {
    if text.is_empty() {
        return Ok(default);
    }
    let name = format!("{command} DEADLINE_MS");
    parse_number(&name, text, "milliseconds from now, such as 3000")
}

/// The first whitespace-separated word and the rest, both trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim()),
        None => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Command::parse("wait-idle"),
            Ok(Command::Lambda(LambdaCommand::WaitIdle))
        ));
        assert!(matches!(
            Command::parse("events"),
            Ok(Command::Events { is_all: false })
        ));
        assert!(matches!(
            Command::parse("events all"),
            Ok(Command::Events { is_all: true })
        ));
        assert!(matches!(
            Command::parse("poll-interval 5"),
            Ok(Command::PollInterval(5))
        ));
        for line in [
            "quit now",
            "calls 1",
            "wait-idle 5",
            "events some",
            "poll-interval",
            "poll-interval 5 6",
            "poll-interval -1",
            "deploy a:b:c file",
            "deploy a:b file 2",
            "invoke 100 200",
            "shutdown",
            "shutdown spindown 100 200",
            "frobnicate",
        ] {
            assert!(Command::parse(line).is_err(), "{line:?} was accepted");
        }
    }

    #[test]
    fn invoke_and_shutdown_take_an_optional_deadline_in_milliseconds() {
        let cases = [("invoke", DEFAULT_INVOKE_DEADLINE_MS), ("invoke 250", 250)];
        for (line, expected) in cases {
            let Ok(Command::Lambda(LambdaCommand::Invoke { deadline_after_ms })) =
                Command::parse(line)
            else {
                panic!("{line:?} is not an invoke");
            };
            assert_eq!(deadline_after_ms, expected, "{line}");
        }
        let cases = [
            (
                "shutdown spindown",
                "spindown",
                DEFAULT_SHUTDOWN_DEADLINE_MS,
            ),
            ("shutdown SandboxTerminated 500", "SandboxTerminated", 500),
        ];
        for (line, expected_reason, expected_ms) in cases {
            let Ok(Command::Lambda(LambdaCommand::Shutdown {
                reason,
                deadline_after_ms,
            })) = Command::parse(line)
            else {
                panic!("{line:?} is not a shutdown");
            };
            assert_eq!(
                (reason.as_str(), deadline_after_ms),
                (expected_reason, expected_ms)
            );
        }
        let Err(error) = Command::parse("invoke soon") else {
            panic!("a word was taken as a deadline");
        };
        assert_eq!(
            error.to_string(),
            "invoke DEADLINE_MS is \"soon\"; give milliseconds from now, such as 3000"
        );
    }

    #[test]
    fn only_extensions_api_commands_need_lambda() {
        let words: Vec<_> = ["invoke", "shutdown timeout", "wait-idle", "events", "calls"]
            .into_iter()
            .filter_map(|line| match Command::parse(line) {
                Ok(Command::Lambda(command)) => Some(command.word()),
                _ => None,
            })
            .collect();
        assert_eq!(words, ["invoke", "shutdown", "wait-idle"]);
    }
}
