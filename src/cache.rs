//! The configuration cache: one entry per (app, env, profile) as requested.
//!
//! placeholder until the cache lands.

use std::fmt;

/// The three identifiers of a configuration, each a name or an ID exactly as the caller wrote
/// it (percent-decoded). A name and an ID of the same profile are two different keys
/// (product.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigKey {
    pub application: String,
    pub environment: String,
    pub profile: String,
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.application, self.environment, self.profile)
    }
}
