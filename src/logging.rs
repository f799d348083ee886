//! Logging: env_logger set-up, the line format of product.md §8, and [`Secret`], the wrapper
//! that keeps key material, tokens and header values out of every log line.
//!
//! Other modules log through the `log` macros only; they never format a secret themselves.

use std::fmt;

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
