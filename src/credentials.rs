//! Credentials: where keys come from (wire.md §4), when they expire, and the STS role on top.
//!
//! placeholder: environment keys only until the chain lands; the shape below is the contract.

use std::collections::HashMap;
use std::fmt;

pub use aws_credential_types::Credentials;

use crate::logging::Secret;

/// The role to assume for every call (`ROLE_ARN`, `ROLE_EXTERNAL_ID`, `ROLE_SESSION_NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSettings {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

/// The raw credential inputs of wire.md §4, read from the environment snapshot by
/// [`CredentialSettings::from_vars`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialSettings {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
}

impl CredentialSettings {
    /// Reads the credential variables (`AWS_ACCESS_KEY_ID`, …). A key without a secret, or a
    /// secret without a key, is an error naming both variables.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, CredentialsError> {
        let non_empty = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();
        let access_key_id = non_empty("AWS_ACCESS_KEY_ID");
        let secret_access_key = non_empty("AWS_SECRET_ACCESS_KEY").map(Secret::new);
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err(CredentialsError::Incomplete(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
            ));
        }
        Ok(CredentialSettings {
            access_key_id,
            secret_access_key,
            session_token: non_empty("AWS_SESSION_TOKEN").map(Secret::new),
        })
    }
}

/// Why no credentials could be had. Messages never contain key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// A source is half configured (for example a key without a secret).
    Incomplete(String),
    /// No source in the chain had credentials.
    NotFound(String),
    /// A source answered, but with an error or a body that could not be used.
    Source(String),
    /// STS refused AssumeRole: its error code and message, passed to the caller as a 403.
    AssumeRole { code: String, message: String },
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Incomplete(message) => write!(f, "credentials: {message}"),
            CredentialsError::NotFound(message) => write!(f, "no credentials: {message}"),
            CredentialsError::Source(message) => write!(f, "credentials: {message}"),
            CredentialsError::AssumeRole { code, message } => write!(f, "{code}: {message}"),
        }
    }
}

impl std::error::Error for CredentialsError {}

/// Something that hands out credentials for signing. Implementations cache and refresh.
pub trait CredentialSource: Send + Sync {
    /// Current credentials, refreshed first when near expiry.
    fn credentials(&self) -> Result<Credentials, CredentialsError>;
    /// Forget cached credentials (AppConfigData said `ExpiredTokenException`, or a thaw).
    fn invalidate(&self);
}

/// Static keys from the environment.
pub struct EnvironmentCredentials(Option<Credentials>);

impl EnvironmentCredentials {
    pub fn new(settings: &CredentialSettings) -> Self {
        let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(key), Some(secret)) => Some(Credentials::new(
                key.clone(),
                secret.expose().to_string(),
                settings
                    .session_token
                    .as_ref()
                    .map(|t| t.expose().to_string()),
                None,
                "environment",
            )),
            _ => None,
        };
        EnvironmentCredentials(credentials)
    }
}

impl CredentialSource for EnvironmentCredentials {
    fn credentials(&self) -> Result<Credentials, CredentialsError> {
        self.0.clone().ok_or_else(|| {
            CredentialsError::NotFound("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into())
        })
    }

    fn invalidate(&self) {}
}
