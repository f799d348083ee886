//! Logging: env_logger set-up, the line format of product.md §8, and [`Secret`], the wrapper
//! that keeps key material, tokens and header values out of every log line.
//!
//! Other modules log through the `log` macros only; they never format a secret themselves. This
//! module reads no environment (its [`LogSettings`] come from `settings`), and it caps
//! dependencies at `warn` so their trace output (ureq logs request headers) cannot leak.
//! Timestamps come from `timestamp`.

use std::borrow::Cow;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use log::{Level, LevelFilter};

use crate::settings::LogSettings;
use crate::timestamp::format_utc;

/// The target prefix of every record this crate writes (its module paths). Only these follow
/// `LOG_LEVEL` all the way down to `trace`.
const OWN_TARGET: &str = "appconfig_lite";

/// The most verbose level let through for other crates: ureq and rustls log request headers and
/// connection details at `debug`/`trace`, which could carry credentials.
const DEPENDENCY_LEVEL: LevelFilter = LevelFilter::Warn;

/// A value that must never reach a log line: access and secret keys, session and
/// configuration tokens, bearer values, proxy header values. `Debug` and `Display` print a
/// mask; the real value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that sends it (a header, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Why the logger could not be installed.
#[derive(Debug)]
pub enum LoggingError {
    /// `LOG_PATH` could not be opened for appending (missing folder, no permission).
    OpenLogPath {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A logger was installed before; [`init`] runs once per process.
    AlreadyInstalled,
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::OpenLogPath { path, cause } => write!(
                f,
                "LOG_PATH is {path:?} and cannot be opened for appending ({cause}); give a \
                 writable file, or unset LOG_PATH to log to stderr"
            ),
            LoggingError::AlreadyInstalled => {
                f.write_str("a logger is already installed; logging starts once per process")
            }
        }
    }
}

impl std::error::Error for LoggingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoggingError::OpenLogPath { cause, .. } => Some(cause),
            LoggingError::AlreadyInstalled => None,
        }
    }
}

/// Installs the process-wide logger: lines as [`format_line`] writes them, to `settings.path`
/// (opened for appending, created if missing) or stderr. Records of this crate follow
/// `settings.level`; other crates' records are let through only at `warn` and above.
///
/// Fails when the file cannot be opened or a logger is already installed; nothing is logged
/// before this returns, so the caller reports the error on stderr itself.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let logger = build_logger(settings)?;
    let max_level = logger.filter();
    log::set_boxed_logger(Box::new(logger)).map_err(|_| LoggingError::AlreadyInstalled)?;
    log::set_max_level(max_level);
    Ok(())
}

fn build_logger(settings: &LogSettings) -> Result<env_logger::Logger, LoggingError> {
    let json = settings.json;
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(settings.level.min(DEPENDENCY_LEVEL))
        .filter_module(OWN_TARGET, settings.level)
        .format(move |out, record| {
            let line = format_line(
                SystemTime::now(),
                record.level(),
                &record.args().to_string(),
                json,
            );
            out.write_all(line.as_bytes())
        });

    match &settings.path {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|cause| LoggingError::OpenLogPath {
                    path: path.clone(),
                    cause,
                })?;
            builder.target(env_logger::Target::Pipe(Box::new(file)));
        }
        None => {
            builder.target(env_logger::Target::Stderr);
        }
    }
    Ok(builder.build())
}

/// One log line with its newline: `2026-12-04T15:00:00.120Z INFO message` (product.md §8), or
/// with `json` one object `{"timestamp":"…","level":"INFO","message":"…"}` as Lambda's JSON log
/// format expects. In text lines, control characters in the message are escaped (`\n`, `\r`,
/// `\u{1b}`), so a value echoed from a request cannot forge a second line.
pub fn format_line(time: SystemTime, level: Level, message: &str, json: bool) -> String {
    let timestamp = format_utc(time);
    if json {
        let string = |text: &str| serde_json::Value::String(text.to_string()).to_string();
        format!(
            "{{\"timestamp\":{},\"level\":{},\"message\":{}}}\n",
            string(&timestamp),
            string(level.as_str()),
            string(message)
        )
    } else {
        format!(
            "{timestamp} {} {}\n",
            level.as_str(),
            escape_controls(message)
        )
    }
}

fn escape_controls(message: &str) -> Cow<'_, str> {
    if !message.chars().any(char::is_control) {
        return Cow::Borrowed(message);
    }
    let mut escaped = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push('\t'),
            c if c.is_control() => escaped.push_str(&c.escape_unicode().to_string()),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should stop at the first unexpected result"
)]
mod tests {
    use log::{Log, Record};

    use super::*;
    use crate::timestamp::at_milliseconds;

    #[test]
    fn text_lines_have_time_level_and_message() {
        let time = at_milliseconds(1_796_396_400_120);
        let cases = [
            (Level::Error, "ERROR"),
            (Level::Warn, "WARN"),
            (Level::Info, "INFO"),
            (Level::Debug, "DEBUG"),
            (Level::Trace, "TRACE"),
        ];
        for (level, name) in cases {
            assert_eq!(
                format_line(time, level, "retrieved shop:prod:flags version 7", false),
                format!("2026-12-04T15:00:00.120Z {name} retrieved shop:prod:flags version 7\n")
            );
        }
    }

    #[test]
    fn text_lines_escape_control_characters_so_one_event_stays_one_line() {
        let line = format_line(
            at_milliseconds(0),
            Level::Warn,
            "bad\nname\r\u{1b}[31m\tx",
            false,
        );
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z WARN bad\\nname\\r\\u{1b}[31m\tx\n"
        );
    }

    #[test]
    fn json_lines_are_one_object_with_timestamp_level_and_message() {
        let line = format_line(
            at_milliseconds(1_796_396_400_120),
            Level::Info,
            "say \"hi\"\nnow",
            true,
        );
        assert_eq!(
            line,
            "{\"timestamp\":\"2026-12-04T15:00:00.120Z\",\"level\":\"INFO\",\
             \"message\":\"say \\\"hi\\\"\\nnow\"}\n"
        );
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(value["message"], "say \"hi\"\nnow");
    }

    fn log_file(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "appconfig-lite-logging-{}-{name}.log",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn write_records(logger: &env_logger::Logger) {
        let records = [
            ("appconfig_lite::upstream", Level::Debug, "own debug"),
            ("appconfig_lite::server", Level::Info, "own info"),
            (
                "ureq::unversioned::transport",
                Level::Trace,
                "authorization: planted",
            ),
            ("rustls::conn", Level::Debug, "planted session"),
            ("rustls::conn", Level::Warn, "peer warning"),
        ];
        for (target, level, message) in records {
            logger.log(
                &Record::builder()
                    .target(target)
                    .level(level)
                    .args(format_args!("{message}"))
                    .build(),
            );
        }
        logger.flush();
    }

    #[test]
    fn the_log_file_gets_own_records_at_the_level_and_only_warnings_from_dependencies() {
        let path = log_file("levels");
        std::fs::write(&path, "earlier line\n").unwrap();
        let settings = LogSettings {
            level: LevelFilter::Trace,
            path: Some(path.clone()),
            json: false,
        };
        write_records(&build_logger(&settings).unwrap());

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "earlier line");
        assert!(lines[1].ends_with("Z DEBUG own debug"), "{}", lines[1]);
        assert!(lines[2].ends_with("Z INFO own info"), "{}", lines[2]);
        assert!(lines[3].ends_with("Z WARN peer warning"), "{}", lines[3]);
        assert!(!text.contains("planted"));
        let timestamp = lines[1].split(' ').next().unwrap();
        assert_eq!(
            timestamp.len(),
            "2026-12-04T15:00:00.120Z".len(),
            "{timestamp}"
        );
    }

    #[test]
    fn the_level_filters_own_records_and_none_writes_nothing() {
        let path = log_file("info");
        let settings = LogSettings {
            level: LevelFilter::Info,
            path: Some(path.clone()),
            json: true,
        };
        write_records(&build_logger(&settings).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let messages: Vec<String> = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .map(|value| value["message"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(messages, ["own info", "peer warning"]);

        let path = log_file("off");
        let settings = LogSettings {
            level: LevelFilter::Off,
            path: Some(path.clone()),
            json: false,
        };
        write_records(&build_logger(&settings).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "");
    }

    #[test]
    fn an_unopenable_log_path_is_an_error_naming_it() {
        let path = PathBuf::from("/nonexistent-appconfig-lite-folder/agent.log");
        let settings = LogSettings {
            level: LevelFilter::Info,
            path: Some(path),
            json: false,
        };
        let error = build_logger(&settings).expect_err("the folder does not exist");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "LOG_PATH is \"/nonexistent-appconfig-lite-folder/agent.log\" and cannot be opened"
            ),
            "{message}"
        );
        assert!(
            message.ends_with("or unset LOG_PATH to log to stderr"),
            "{message}"
        );
    }

    #[test]
    fn secrets_print_as_a_mask() {
        let secret = Secret::new("planted");
        assert_eq!(format!("{secret} {secret:?}"), "**** ****");
        assert_eq!(secret.expose(), "planted");
    }
}
