//! Everything that stops a bench mode, worded for the person running `scripts/bench`.
//!
//! Owns only the error enum and its messages; every other module returns it and `main` prints
//! it. A failed step ends the mode (exit 1): a figure measured on a misbehaving agent would lie.

use std::fmt;
use std::io;

/// One reason a mode could not measure what it set out to.
#[derive(Debug)]
pub enum BenchError {
    /// A bad command line.
    Usage(String),
    /// A file, socket or process operation failed.
    Io { what: String, error: io::Error },
    /// The agent did not do what the step expects; `log_tail` is the end of its log.
    Agent { what: String, log_tail: String },
    /// A fake or the raw client saw something other than what the step expects.
    Unexpected(String),
}

impl BenchError {
    /// Wraps an I/O error with the step that failed.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> BenchError {
        let what = what.into();
        move |error| BenchError::Io { what, error }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Usage(message) => write!(f, "{message}"),
            BenchError::Io { what, error } => write!(f, "{what}: {error}"),
            BenchError::Agent { what, log_tail } => {
                write!(f, "{what}\n--- end of the agent's log ---\n{log_tail}")
            }
            BenchError::Unexpected(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for BenchError {}
