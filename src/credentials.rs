//! Credentials: where keys come from (wire.md §4), when they expire, and the STS role on top
//! (wire.md §3). Owns the chain, the caching and refresh policy, and every credential endpoint.
//!
//! It must not read the environment (everything comes from the map given to
//! [`CredentialSettings::from_vars`]) and must never log a key, secret or token. It talks to
//! `signing` (to sign AssumeRole) and `logging` ([`Secret`]); `settings` builds its inputs and
//! `lifecycle`/`upstream` call [`build_source`] and [`CredentialSource`].

mod container;
mod imds;
mod profile_files;
mod refresh;
mod sts;
mod xml;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use aws_credential_types::Credentials;

use crate::logging::Secret;
use refresh::Refreshing;

pub use sts::is_valid_session_name;

/// The role to assume for every call (`ROLE_ARN`, `ROLE_EXTERNAL_ID`, `ROLE_SESSION_NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSettings {
    pub arn: String,
    pub external_id: Option<String>,
    /// When absent, each AssumeRole call uses `appconfig-lite-<unix seconds>`.
    pub session_name: Option<String>,
}

/// The raw credential inputs of wire.md §4, read from the environment snapshot by
/// [`CredentialSettings::from_vars`]. Empty variables count as unset, as in the AWS SDKs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialSettings {
    /// `AWS_ACCESS_KEY_ID`. Not a `Secret` for historical reasons, but masked in `Debug`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, a path on `http://169.254.170.2`.
    pub container_relative_uri: Option<String>,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub container_full_uri: Option<String>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`; read on every fetch, wins over the variable.
    pub container_token_file: Option<PathBuf>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub container_token: Option<Secret>,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `$HOME/.aws/credentials`; `None` without either.
    pub shared_credentials_file: Option<PathBuf>,
    /// `AWS_CONFIG_FILE`, else `$HOME/.aws/config`; `None` without either.
    pub config_file: Option<PathBuf>,
    /// `AWS_PROFILE`; `None` means `default`, and a missing `default` is not an error.
    pub profile: Option<String>,
    /// `AWS_EC2_METADATA_DISABLED=true` (any case).
    pub imds_disabled: bool,
    /// Base URL of the instance metadata service: `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else
    /// chosen by `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (`IPv4` default, `IPv6`). No trailing
    /// slash.
    pub imds_endpoint: String,
    /// `AWS_LAMBDA_RUNTIME_API` is set: instance metadata is never tried.
    pub in_lambda: bool,
}

/// The instance metadata address the SDKs use by default (IPv4 mode).
pub const IMDS_IPV4_ENDPOINT: &str = "http://169.254.169.254";
/// The instance metadata address in IPv6 mode.
pub const IMDS_IPV6_ENDPOINT: &str = "http://[fd00:ec2::254]";

impl CredentialSettings {
    /// Reads every credential variable of wire.md §4 from a snapshot of the environment.
    ///
    /// Fails when a key comes without its secret (or the reverse), naming both variables, and
    /// when `AWS_EC2_METADATA_SERVICE_ENDPOINT(_MODE)` holds something unusable. Container URLs
    /// are checked by [`build_source`], and only when the container source is the one chosen,
    /// so an unused variable never stops the agent.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, CredentialsError> {
        let non_empty = |name: &str| vars.get(name).filter(|v| !v.is_empty()).cloned();

        let access_key_id = non_empty("AWS_ACCESS_KEY_ID");
        let secret_access_key = non_empty("AWS_SECRET_ACCESS_KEY").map(Secret::new);
        match (&access_key_id, &secret_access_key) {
            (Some(_), None) => {
                return Err(CredentialsError::Incomplete(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or \
                     neither to use the next credential source"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(CredentialsError::Incomplete(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; set both, or \
                     neither to use the next credential source"
                        .into(),
                ))
            }
            _ => {}
        }

        let home = non_empty("HOME").map(PathBuf::from);
        let aws_file = |variable: &str, default_name: &str| match non_empty(variable) {
            Some(path) => Some(expand_home(&path, home.as_ref())),
            None => home.as_ref().map(|h| h.join(".aws").join(default_name)),
        };

        Ok(CredentialSettings {
            access_key_id,
            secret_access_key,
            session_token: non_empty("AWS_SESSION_TOKEN").map(Secret::new),
            container_relative_uri: non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            container_full_uri: non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            container_token_file: non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                .map(PathBuf::from),
            container_token: non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Secret::new),
            shared_credentials_file: aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            config_file: aws_file("AWS_CONFIG_FILE", "config"),
            profile: non_empty("AWS_PROFILE"),
            imds_disabled: non_empty("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            imds_endpoint: imds_endpoint(
                non_empty("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
                non_empty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
            )?,
            in_lambda: non_empty("AWS_LAMBDA_RUNTIME_API").is_some(),
        })
    }

    /// The profile to read from the shared files.
    pub fn profile_name(&self) -> &str {
        self.profile.as_deref().unwrap_or("default")
    }
}

impl fmt::Debug for CredentialSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The access key id is an account identifier: masked like the rest (quality.md).
        let masked_key = self.access_key_id.as_ref().map(|_| Secret::default());
        f.debug_struct("CredentialSettings")
            .field("access_key_id", &masked_key)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("container_relative_uri", &self.container_relative_uri)
            .field("container_full_uri", &self.container_full_uri)
            .field("container_token_file", &self.container_token_file)
            .field("container_token", &self.container_token)
            .field("shared_credentials_file", &self.shared_credentials_file)
            .field("config_file", &self.config_file)
            .field("profile", &self.profile)
            .field("imds_disabled", &self.imds_disabled)
            .field("imds_endpoint", &self.imds_endpoint)
            .field("in_lambda", &self.in_lambda)
            .finish()
    }
}

/// `~/x` in a file variable means `$HOME/x`, as the SDKs read it.
fn expand_home(path: &str, home: Option<&PathBuf>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

fn imds_endpoint(
    endpoint: Option<String>,
    mode: Option<String>,
) -> Result<String, CredentialsError> {
    if let Some(endpoint) = endpoint {
        let lower = endpoint.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(CredentialsError::Invalid(format!(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT is \"{endpoint}\"; give a URL such as \
                 http://169.254.169.254"
            )));
        }
        return Ok(endpoint.trim_end_matches('/').to_string());
    }
    match mode.as_deref() {
        None => Ok(IMDS_IPV4_ENDPOINT.to_string()),
        Some(m) if m.eq_ignore_ascii_case("ipv4") => Ok(IMDS_IPV4_ENDPOINT.to_string()),
        Some(m) if m.eq_ignore_ascii_case("ipv6") => Ok(IMDS_IPV6_ENDPOINT.to_string()),
        Some(other) => Err(CredentialsError::Invalid(format!(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is \"{other}\"; give IPv4 or IPv6"
        ))),
    }
}

/// Why no credentials could be had. Messages name variables, files and hosts, never key
/// material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// A source is half configured (for example a key without a secret).
    Incomplete(String),
    /// No source in the chain had credentials.
    NotFound(String),
    /// A source answered, but with an error or a body that could not be used, or did not
    /// answer in time.
    Source(String),
    /// STS refused AssumeRole: its error code and message, passed to the caller as a 403.
    AssumeRole { code: String, message: String },
    /// A credential setting holds a value that cannot be used (a container URL on a host that
    /// is not allowed, a token with a line break, a malformed session name).
    Invalid(String),
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsError::Incomplete(message) => write!(f, "credentials: {message}"),
            CredentialsError::NotFound(message) => write!(f, "no credentials: {message}"),
            CredentialsError::Source(message) => write!(f, "credentials: {message}"),
            CredentialsError::AssumeRole { code, message } => write!(f, "{code}: {message}"),
            CredentialsError::Invalid(message) => write!(f, "credentials: {message}"),
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

/// The wall clock that expiry decisions read. Tests inject their own; production uses
/// [`SystemClock`].
///
/// Expiry is always judged against `SystemTime`, never `Instant`, on every use: while a Lambda
/// environment is frozen or a snapshot waits to be restored the monotonic clock may stand
/// still, but the wall clock has moved on, so the first use after a thaw sees the credentials
/// as expired (or near it) and fetches new ones before signing.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// [`Clock`] backed by `SystemTime::now`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// What the credential sources need to make HTTP calls.
#[derive(Clone)]
pub struct HttpContext {
    /// The shared outbound agent. STS calls use its proxy settings; container and instance
    /// metadata calls never go through a proxy.
    pub agent: ureq::Agent,
    /// The region to sign AssumeRole for.
    pub region: String,
    /// Base URL of STS (wire.md §3), for example `https://sts.eu-west-1.amazonaws.com`.
    pub sts_endpoint: String,
    /// Bound on one STS or container-endpoint call (`REQUEST_TIMEOUT`).
    pub timeout: Duration,
    /// Running as a Lambda extension: AssumeRole asks for 3600 s (wire.md §3) and instance
    /// metadata is never tried.
    pub is_lambda: bool,
}

impl fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The agent is left out: its configuration may carry proxy settings.
        f.debug_struct("HttpContext")
            .field("region", &self.region)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("timeout", &self.timeout)
            .field("is_lambda", &self.is_lambda)
            .finish_non_exhaustive()
    }
}

/// How long before expiry fetched credentials (container endpoint, instance metadata) are
/// replaced: the AWS SDKs use the same five-minute buffer.
pub const FETCHED_REFRESH_LEAD: Duration = Duration::from_secs(5 * 60);
/// How long before expiry assumed-role credentials are replaced (wire.md §3: at least 10 min).
pub const ASSUMED_ROLE_REFRESH_LEAD: Duration = Duration::from_secs(10 * 60);
/// Bound on each instance metadata call: off EC2 the address does not answer at all, and the
/// agent must not hang its start on that.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest answer read from a credential endpoint or STS; real ones are a few KiB.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Builds the credential source for the agent: the first available base source of wire.md §4,
/// wrapped in AssumeRole when `role` is set. Uses the system clock; see
/// [`build_source_with_clock`].
pub fn build_source(
    settings: &CredentialSettings,
    role: Option<&RoleSettings>,
    http: &HttpContext,
) -> Result<Arc<dyn CredentialSource>, CredentialsError> {
    build_source_with_clock(settings, role, http, Arc::new(SystemClock))
}

/// [`build_source`] with an injected clock for expiry decisions.
///
/// The base source is chosen once, here, without any network traffic, by what is configured:
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (static);
/// 2. `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, else `_FULL_URI` (URL checked now: a host
///    that is not allowed over `http://` fails the build);
/// 3. the shared credentials file, then the config file, when the profile there has
///    `aws_access_key_id`; a profile named by `AWS_PROFILE` that is in neither file fails;
/// 4. EC2 instance metadata, unless `AWS_EC2_METADATA_DISABLED=true` or in Lambda.
///
/// Nothing configured is [`CredentialsError::NotFound`]. A later source is never tried when an
/// earlier one fails at use time: the failure is reported, as the SDKs do.
pub fn build_source_with_clock(
    settings: &CredentialSettings,
    role: Option<&RoleSettings>,
    http: &HttpContext,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialSource>, CredentialsError> {
    let base = base_source(settings, http, Arc::clone(&clock))?;
    let Some(role) = role else {
        return Ok(base);
    };
    if let Some(name) = &role.session_name {
        if !is_valid_session_name(name) {
            return Err(CredentialsError::Invalid(format!(
                "ROLE_SESSION_NAME is \"{name}\"; give 2 to 64 characters of letters, digits \
                 and +=,.@_-"
            )));
        }
    }
    if http.region.is_empty() {
        return Err(CredentialsError::Invalid(
            "ROLE_ARN is set but no region is known to call STS in; set AWS_REGION or \
             SERVICE_REGION"
                .into(),
        ));
    }
    log::debug!(
        "credentials: assuming role {} through {}",
        role.arn,
        http.sts_endpoint
    );
    let fetcher = sts::AssumeRole::new(base, role.clone(), http.clone());
    Ok(Arc::new(Refreshing::new(
        fetcher,
        clock,
        ASSUMED_ROLE_REFRESH_LEAD,
    )))
}

fn base_source(
    settings: &CredentialSettings,
    http: &HttpContext,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn CredentialSource>, CredentialsError> {
    if settings.access_key_id.is_some() || settings.secret_access_key.is_some() {
        if settings.access_key_id.is_none() || settings.secret_access_key.is_none() {
            return Err(CredentialsError::Incomplete(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
            ));
        }
        log::debug!("credentials: using AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
        return Ok(Arc::new(EnvironmentCredentials::new(settings)));
    }

    if let Some(endpoint) = container::Endpoint::from_settings(settings)? {
        log::debug!(
            "credentials: using the container endpoint {}",
            endpoint.describe()
        );
        let fetcher = container::ContainerCredentials::new(endpoint, settings, http);
        return Ok(Arc::new(Refreshing::new(
            fetcher,
            clock,
            FETCHED_REFRESH_LEAD,
        )));
    }

    match profile_files::lookup(settings)? {
        profile_files::Lookup::Found(found) => {
            log::debug!("credentials: using {}", found.describe());
            let initial = found.credentials.clone();
            let fetcher = profile_files::ProfileCredentials::new(settings.clone());
            return Ok(Arc::new(Refreshing::with_initial(
                fetcher,
                clock,
                FETCHED_REFRESH_LEAD,
                initial,
            )));
        }
        profile_files::Lookup::NoKeys(where_) => {
            log::debug!(
                "credentials: {where_} has no aws_access_key_id (only static keys are read \
                 from profiles); trying the next source"
            );
        }
        profile_files::Lookup::Missing => {
            if let Some(profile) = &settings.profile {
                return Err(CredentialsError::NotFound(format!(
                    "AWS_PROFILE is \"{profile}\" but no such profile is in {}",
                    profile_files::describe_files(settings)
                )));
            }
        }
    }

    if settings.imds_disabled || settings.in_lambda || http.is_lambda {
        return Err(CredentialsError::NotFound(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a container credentials \
             endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI) or a profile in the shared files; \
             instance metadata is off (AWS_EC2_METADATA_DISABLED or Lambda)"
                .into(),
        ));
    }
    log::debug!(
        "credentials: no keys, container endpoint or profile; using EC2 instance metadata at {}",
        settings.imds_endpoint
    );
    let fetcher = imds::InstanceMetadata::new(settings.imds_endpoint.clone(), http.agent.clone());
    Ok(Arc::new(Refreshing::new(
        fetcher,
        clock,
        FETCHED_REFRESH_LEAD,
    )))
}

/// `request` set up as the container endpoint and instance metadata are called: an error status
/// is an answer to read, not a failure; the whole call is bounded by `timeout`; no redirect is
/// followed and no proxy is used.
fn direct_bounded<B>(
    request: ureq::RequestBuilder<B>,
    timeout: Duration,
) -> ureq::RequestBuilder<B> {
    request
        .config()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .proxy(None)
        .build()
}

/// Reads the status and body of an answer from a credential endpoint, bounded in size. `what`
/// names the call for the error ("container endpoint", "STS AssumeRole").
fn read_answer(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    what: &str,
) -> Result<(u16, String), CredentialsError> {
    let mut response =
        result.map_err(|e| CredentialsError::Source(format!("{what} did not answer: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| {
            CredentialsError::Source(format!("{what} answered {status} but its body failed: {e}"))
        })?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_key_without_a_secret_names_both_variables() {
        for pairs in [
            vec![("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")],
            vec![("AWS_SECRET_ACCESS_KEY", "secret")],
            vec![
                ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
                ("AWS_SECRET_ACCESS_KEY", ""),
            ],
        ] {
            let error = CredentialSettings::from_vars(&vars(&pairs)).err();
            let Some(CredentialsError::Incomplete(message)) = error else {
                panic!("expected Incomplete for {pairs:?}, got {error:?}");
            };
            assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
            assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
        }
    }

    #[test]
    fn shared_files_default_under_home_and_expand_a_tilde() {
        let settings = CredentialSettings::from_vars(&vars(&[("HOME", "/home/ann")]));
        let settings = settings.unwrap();
        assert_eq!(
            settings.shared_credentials_file,
            Some(PathBuf::from("/home/ann/.aws/credentials"))
        );
        assert_eq!(
            settings.config_file,
            Some(PathBuf::from("/home/ann/.aws/config"))
        );
        assert_eq!(settings.profile_name(), "default");

        let settings = CredentialSettings::from_vars(&vars(&[
            ("HOME", "/home/ann"),
            ("AWS_SHARED_CREDENTIALS_FILE", "~/keys/creds"),
            ("AWS_CONFIG_FILE", "/etc/aws-config"),
            ("AWS_PROFILE", "dev"),
        ]))
        .unwrap();
        assert_eq!(
            settings.shared_credentials_file,
            Some(PathBuf::from("/home/ann/keys/creds"))
        );
        assert_eq!(settings.config_file, Some(PathBuf::from("/etc/aws-config")));
        assert_eq!(settings.profile_name(), "dev");

        let settings = CredentialSettings::from_vars(&vars(&[])).unwrap();
        assert_eq!(settings.shared_credentials_file, None);
    }

    #[test]
    fn metadata_switches_and_endpoint_are_read() {
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a str);
        let cases: &[Case] = &[
            (&[], false, IMDS_IPV4_ENDPOINT),
            (
                &[("AWS_EC2_METADATA_DISABLED", "TRUE")],
                true,
                IMDS_IPV4_ENDPOINT,
            ),
            (
                &[("AWS_EC2_METADATA_DISABLED", "false")],
                false,
                IMDS_IPV4_ENDPOINT,
            ),
            (
                &[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")],
                false,
                IMDS_IPV6_ENDPOINT,
            ),
            (
                &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/")],
                false,
                "http://127.0.0.1:9",
            ),
        ];
        for (pairs, disabled, endpoint) in cases {
            let settings = CredentialSettings::from_vars(&vars(pairs));
            let settings = settings.unwrap();
            assert_eq!(settings.imds_disabled, *disabled, "{pairs:?}");
            assert_eq!(settings.imds_endpoint, *endpoint, "{pairs:?}");
        }
        for (name, value) in [
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv5"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "169.254.169.254"),
        ] {
            let error = CredentialSettings::from_vars(&vars(&[(name, value)])).err();
            assert!(
                matches!(&error, Some(CredentialsError::Invalid(m)) if m.contains(name)),
                "{error:?}"
            );
        }
    }

    #[test]
    fn lambda_is_detected_by_the_runtime_api_variable() {
        let settings =
            CredentialSettings::from_vars(&vars(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]));
        assert!(settings.unwrap().in_lambda);
    }

    #[test]
    fn debug_output_masks_every_key() {
        let settings = CredentialSettings::from_vars(&vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIAPLANTEDKEYID"),
            ("AWS_SECRET_ACCESS_KEY", "planted-secret"),
            ("AWS_SESSION_TOKEN", "planted-token"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "planted-bearer"),
        ]))
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in [
            "AKIAPLANTEDKEYID",
            "planted-secret",
            "planted-token",
            "planted-bearer",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }
}
