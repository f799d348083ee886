//! Settings: reads the environment once, under both spellings (product.md §3), validates every
//! value and owns every validation message. No other module reads the environment.
//!
//! It must not log (the logger is built from these settings, so warnings are handed back in
//! [`Settings::warnings`]), open files or touch the network. It asks `credentials` to read its own
//! variables and uses `cache::ConfigKey` and `logging::Secret` for the values it hands out.
//! Single values are parsed in `values`, the region and endpoints resolved in `endpoints`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use crate::cache::{percent_decode, ConfigKey};
use crate::credentials::{CredentialSettings, RoleSettings};
use crate::logging::Secret;

mod endpoints;
mod values;

pub use endpoints::regional_endpoint;
use endpoints::{has_http_authority, mask_url_userinfo, read_endpoints, read_region};
use values::*;

/// Prefix of the Lambda spelling of every agent variable (product.md §3); the prefixed name wins
/// over the bare one.
pub const PREFIX: &str = "AWS_APPCONFIG_EXTENSION_";

/// The port of the AWS agent (product.md §3), so users switch without touching their code.
pub const DEFAULT_HTTP_PORT: u16 = 2772;

/// product.md §3.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(45);
/// product.md §3.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(3000);
/// product.md §3.
const DEFAULT_MAX_CONNECTIONS: usize = 3;
/// quality.md (Security): the number of cache entries is capped, default 1,000.
const MAX_ENTRIES: usize = 1000;
/// Configuration tokens live at most 24 h (wire.md §2), so a longer period would always poll
/// with a dead token.
const LONGEST_POLL_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// A single call to AWS that needs more than 5 minutes is a hung call, not a slow one.
const LONGEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Keeps a typo such as `30000` for `3` from starting thousands of outbound connections.
const MOST_CONNECTIONS: usize = 1024;
/// wire.md §2: identifiers are 1–128 characters; product.md §2.1 bounds path segments in bytes.
const LONGEST_IDENTIFIER_BYTES: usize = 128;
/// STS AssumeRole limits (wire.md §3 and the STS API reference).
const ROLE_ARN_BYTES: std::ops::RangeInclusive<usize> = 20..=2048;
const EXTERNAL_ID_CHARS: std::ops::RangeInclusive<usize> = 2..=1224;
const SESSION_NAME_CHARS: std::ops::RangeInclusive<usize> = 2..=64;
/// Values longer than this are cut in error messages so one bad variable cannot flood the log.
const LONGEST_SHOWN_VALUE_CHARS: usize = 200;

/// Where the listener binds (product.md §2: loopback unless `HTTP_HOST` says otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpHost {
    /// `127.0.0.1` and, where available, `[::1]`.
    Localhost,
    /// `0.0.0.0` (and `[::]` where available).
    All,
    Address(IpAddr),
}

impl HttpHost {
    /// True when only this machine can connect; anything else is a risky setting
    /// (quality.md, Security) and [`Settings::from_vars`] warns about it.
    pub fn is_loopback(&self) -> bool {
        match self {
            HttpHost::Localhost => true,
            HttpHost::All => false,
            HttpHost::Address(address) => address.is_loopback(),
        }
    }
}

impl fmt::Display for HttpHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpHost::Localhost => f.write_str("localhost"),
            HttpHost::All => f.write_str("all"),
            HttpHost::Address(address) => write!(f, "{address}"),
        }
    }
}

/// Log settings (product.md §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// `none` maps to `LevelFilter::Off`, `fatal` to `Error`.
    pub level: log::LevelFilter,
    pub path: Option<PathBuf>,
    /// `AWS_LAMBDA_LOG_FORMAT=JSON`.
    pub json: bool,
}

/// An HTTP(S) proxy for calls to AWS.
///
/// `Debug` masks the user and password of the URL and every header value: both often carry
/// proxy credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxySettings {
    pub url: String,
    pub headers: Vec<(String, Secret)>,
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("url", &mask_url_userinfo(&self.url))
            .field("headers", &self.headers)
            .finish()
    }
}

/// Every setting of the agent, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub http_port: u16,
    pub http_host: HttpHost,
    pub poll_interval: Duration,
    /// Bound on one call to AWS and on a first fetch.
    pub request_timeout: Duration,
    pub prefetch_list: Vec<ConfigKey>,
    pub max_connections: usize,
    /// Cap on cache entries (quality.md: default 1,000).
    pub max_entries: usize,
    pub log: LogSettings,
    /// The region to call and sign for. Empty only in local development mode.
    pub region: String,
    /// Base URL of AppConfigData, resolved per wire.md §2 (no trailing slash).
    pub appconfigdata_endpoint: String,
    /// Base URL of STS, resolved per wire.md §3 (no trailing slash).
    pub sts_endpoint: String,
    pub credentials: CredentialSettings,
    pub role: Option<RoleSettings>,
    pub proxy: Option<ProxySettings>,
    pub access_token: Option<Secret>,
    /// `AWS_LAMBDA_RUNTIME_API` (`host:port`); set means Lambda extension mode.
    pub lambda_runtime_api: Option<String>,
    pub local_development_directory: Option<PathBuf>,
    pub manifest: Option<String>,
    pub wait_on_manifest: bool,
    pub backup_directory: Option<PathBuf>,
    pub preload_backups: bool,
    /// Warnings found while parsing (unknown variable names with a suggestion), logged once the
    /// logger is up.
    pub warnings: Vec<String>,
}

/// A malformed setting. The message names the variable, shows the value (unless secret) and
/// gives the accepted forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    pub variable: String,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SettingsError {}

/// Every agent variable (product.md §3), unprefixed. Each is read as
/// `AWS_APPCONFIG_EXTENSION_<name>` first, then as `<name>`; unknown prefixed names are compared
/// with this list to suggest the closest.
pub const SETTING_NAMES: &[&str] = &[
    "HTTP_PORT",
    "HTTP_HOST",
    "POLL_INTERVAL_SECONDS",
    "POLL_INTERVAL",
    "POLL_TIMEOUT_MILLIS",
    "REQUEST_TIMEOUT",
    "PREFETCH_LIST",
    "MAX_CONNECTIONS",
    "LOG_LEVEL",
    "LOG_PATH",
    "ROLE_ARN",
    "ROLE_EXTERNAL_ID",
    "ROLE_SESSION_NAME",
    "SERVICE_REGION",
    "PROXY_URL",
    "PROXY_HEADERS",
    "MANIFEST",
    "WAIT_ON_MANIFEST",
    "ACCESS_TOKEN",
    "BACKUP_DIRECTORY",
    "PRELOAD_BACKUPS",
    "LOCAL_DEVELOPMENT_DIRECTORY",
];

/// The settings table for `--help` (product.md §9): every agent variable with what it accepts
/// and its default, then the AWS variables honoured as well.
pub const HELP_TEXT: &str = "\
usage: appconfig-lite [--help | --version]

A local cache and HTTP server for AWS AppConfig data (a drop-in for the AWS AppConfig Agent).
It is configured only through environment variables; it runs as a Lambda extension when
AWS_LAMBDA_RUNTIME_API is set, else as a standalone agent.

Settings (each may also be spelled AWS_APPCONFIG_EXTENSION_<NAME>, which wins):
  HTTP_PORT                    listener port, 0 to 65535 (0: any free port)   2772
  HTTP_HOST                    localhost, all, or an IP address               localhost
  POLL_INTERVAL_SECONDS        refresh period: 45, 45s, 5m, 1h (1 s to 24 h)  45s
  POLL_INTERVAL                container name of POLL_INTERVAL_SECONDS
  POLL_TIMEOUT_MILLIS          bound on one call to AWS: 3000, 3000ms, 5s     3000ms
  REQUEST_TIMEOUT              container name of POLL_TIMEOUT_MILLIS
  PREFETCH_LIST                app:env:profile,... fetched at start           none
  MAX_CONNECTIONS              most simultaneous calls to AWS, 1 to 1024      3
  LOG_LEVEL                    trace debug info warn error fatal none         info
  LOG_PATH                     file to append log lines to                    stderr
  ROLE_ARN                     role to assume for every call                  none
  ROLE_EXTERNAL_ID             external id for ROLE_ARN                       none
  ROLE_SESSION_NAME            session name for ROLE_ARN                      none
  SERVICE_REGION               region to call instead of AWS_REGION           AWS_REGION
  PROXY_URL                    http:// or https:// proxy for calls to AWS     none
  PROXY_HEADERS                not supported yet: ignored with a warning
  MANIFEST                     not supported yet: refused at start
  WAIT_ON_MANIFEST             not supported yet (goes with MANIFEST)
  ACCESS_TOKEN                 bearer token callers must send                 none
  BACKUP_DIRECTORY             not supported yet: ignored with a warning
  PRELOAD_BACKUPS              not supported yet (goes with BACKUP_DIRECTORY)
  LOCAL_DEVELOPMENT_DIRECTORY  not supported yet: refused at start
Also honoured: AWS_REGION, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL,
  AWS_ENDPOINT_URL_APPCONFIGDATA, AWS_ENDPOINT_URL_STS, AWS_USE_FIPS_ENDPOINT,
  AWS_USE_DUALSTACK_ENDPOINT, AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_RUNTIME_API
  and the AWS credential variables.
";

impl Settings {
    /// Reads the process environment once and validates it with [`Settings::from_vars`].
    ///
    /// Fails on the first malformed variable, and on any of our variables (the agent's, in
    /// either spelling, or any `AWS_*` name) whose value is not UTF-8; other variables are
    /// skipped.
    pub fn from_env() -> Result<Settings, SettingsError> {
        let vars = environment_snapshot(std::env::vars_os())?;
        Settings::from_vars(&vars)
    }

    /// Reads settings from a snapshot of the environment.
    ///
    /// Rules that apply to every agent variable:
    /// - `AWS_APPCONFIG_EXTENSION_X` wins over `X`.
    /// - For the two settings that have a Lambda name and a container name, the Lambda name wins
    ///   within one spelling: `AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS`, then
    ///   `AWS_APPCONFIG_EXTENSION_POLL_INTERVAL`, then `POLL_INTERVAL_SECONDS`, then
    ///   `POLL_INTERVAL` (the same for `POLL_TIMEOUT_MILLIS` over `REQUEST_TIMEOUT`). A losing
    ///   variable with a different value adds a warning.
    /// - A variable set to an empty or blank value counts as unset, except `ACCESS_TOKEN`, where
    ///   an empty value is an error (so a broken template cannot switch authentication off).
    /// - Values are trimmed, except `ACCESS_TOKEN`, which must not contain whitespace at all.
    /// - Booleans are `true`/`false` in any case, or `1`/`0`.
    ///
    /// The error names the variable as the user wrote it, shows the value (never a secret) and
    /// gives the accepted forms.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        let mut reader = Reader {
            vars,
            warnings: Vec::new(),
        };

        let http_port = match reader.agent_setting(&["HTTP_PORT"]) {
            Some(found) => parse_port(&found)?,
            None => DEFAULT_HTTP_PORT,
        };
        let http_host = match reader.agent_setting(&["HTTP_HOST"]) {
            Some(found) => parse_host(&found)?,
            None => HttpHost::Localhost,
        };
        let poll_interval = match reader.agent_setting(&["POLL_INTERVAL_SECONDS", "POLL_INTERVAL"])
        {
            Some(found) => parse_poll_interval(&found)?,
            None => DEFAULT_POLL_INTERVAL,
        };
        let request_timeout =
            match reader.agent_setting(&["POLL_TIMEOUT_MILLIS", "REQUEST_TIMEOUT"]) {
                Some(found) => parse_request_timeout(&found)?,
                None => DEFAULT_REQUEST_TIMEOUT,
            };
        let prefetch_list = match reader.agent_setting(&["PREFETCH_LIST"]) {
            Some(found) => parse_prefetch_list(&found)?,
            None => Vec::new(),
        };
        let max_connections = match reader.agent_setting(&["MAX_CONNECTIONS"]) {
            Some(found) => parse_max_connections(&found)?,
            None => DEFAULT_MAX_CONNECTIONS,
        };

        let log = LogSettings {
            level: match reader.agent_setting(&["LOG_LEVEL"]) {
                Some(found) => parse_log_level(&found)?,
                None => LevelFilter::Info,
            },
            path: reader
                .agent_setting(&["LOG_PATH"])
                .map(|found| PathBuf::from(found.text())),
            json: reader
                .plain("AWS_LAMBDA_LOG_FORMAT")
                .is_some_and(|found| found.text().eq_ignore_ascii_case("json")),
        };

        let role = read_role(&mut reader)?;
        let proxy = read_proxy(&mut reader)?;
        let access_token = read_access_token(&mut reader)?;

        let manifest = reader
            .agent_setting(&["MANIFEST"])
            .map(|found| found.text().to_string());
        let wait_on_manifest = match reader.agent_setting(&["WAIT_ON_MANIFEST"]) {
            Some(found) => parse_bool(&found)?,
            None => true,
        };
        let backup_directory = reader
            .agent_setting(&["BACKUP_DIRECTORY"])
            .map(|found| PathBuf::from(found.text()));
        let preload_backups = match reader.agent_setting(&["PRELOAD_BACKUPS"]) {
            Some(found) => parse_bool(&found)?,
            None => true,
        };
        let local_development_directory = reader
            .agent_setting(&["LOCAL_DEVELOPMENT_DIRECTORY"])
            .map(|found| PathBuf::from(found.text()));
        let lambda_runtime_api = match reader.plain("AWS_LAMBDA_RUNTIME_API") {
            Some(found) => Some(parse_runtime_api(&found)?),
            None => None,
        };

        // Local development never calls AWS (product.md §7), so it is the one mode that may run
        // without a region.
        let region = read_region(&mut reader, local_development_directory.is_some())?;
        let (appconfigdata_endpoint, sts_endpoint) = read_endpoints(&mut reader, &region)?;

        let credentials = CredentialSettings::from_vars(vars).map_err(|error| {
            let message = error.to_string();
            let variable = first_variable_name(&message).unwrap_or("AWS_ACCESS_KEY_ID");
            SettingsError {
                variable: variable.to_string(),
                message,
            }
        })?;

        if !http_host.is_loopback() {
            reader
                .warnings
                .push(exposed_listener_warning(&http_host, access_token.is_some()));
        }
        reader.warnings.extend(unknown_name_warnings(vars));

        Ok(Settings {
            http_port,
            http_host,
            poll_interval,
            request_timeout,
            prefetch_list,
            max_connections,
            max_entries: MAX_ENTRIES,
            log,
            region,
            appconfigdata_endpoint,
            sts_endpoint,
            credentials,
            role,
            proxy,
            access_token,
            lambda_runtime_api,
            local_development_directory,
            manifest,
            wait_on_manifest,
            backup_directory,
            preload_backups,
            warnings: reader.warnings,
        })
    }

    /// The effective settings on one line, for the `debug` log (product.md §3). Secrets (the
    /// access token, proxy user and password, proxy header values, credentials) are masked;
    /// free text is quoted so a newline cannot split the line.
    pub fn describe(&self) -> String {
        let or_none = |text: Option<String>| text.unwrap_or_else(|| "none".to_string());
        let quoted = |path: &Option<PathBuf>| or_none(path.as_ref().map(|p| format!("{p:?}")));
        let prefetch: Vec<String> = self
            .prefetch_list
            .iter()
            .map(|key| format!("{:?}", key.to_string()))
            .collect();
        let role = self.role.as_ref().map(|role| {
            let external_id = if role.external_id.is_some() {
                "set"
            } else {
                "none"
            };
            let session_name = role.session_name.as_deref().unwrap_or("default");
            format!(
                "{} (external id {external_id}, session name {session_name})",
                role.arn
            )
        });
        let proxy = self.proxy.as_ref().map(|proxy| {
            let headers: Vec<String> = proxy
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            format!(
                "{} headers [{}]",
                mask_url_userinfo(&proxy.url),
                headers.join(", ")
            )
        });
        let credentials = if self.credentials.access_key_id.is_some() {
            "environment keys"
        } else {
            "chain"
        };

        format!(
            "http_host={} http_port={} poll_interval={}s request_timeout={}ms \
             max_connections={} max_entries={} log_level={} log_path={} log_format={} region={} \
             appconfigdata_endpoint={} sts_endpoint={} credentials={credentials} role={} \
             proxy={} access_token={} prefetch_list=[{}] lambda_runtime_api={} \
             local_development_directory={} manifest={} wait_on_manifest={} \
             backup_directory={} preload_backups={}",
            self.http_host,
            self.http_port,
            self.poll_interval.as_secs(),
            self.request_timeout.as_millis(),
            self.max_connections,
            self.max_entries,
            self.log.level.as_str().to_ascii_lowercase(),
            self.log
                .path
                .as_ref()
                .map_or_else(|| "stderr".to_string(), |p| format!("{p:?}")),
            if self.log.json { "json" } else { "text" },
            or_none(Some(self.region.clone()).filter(|region| !region.is_empty())),
            self.appconfigdata_endpoint,
            self.sts_endpoint,
            or_none(role),
            or_none(proxy),
            if self.access_token.is_some() {
                "****"
            } else {
                "none"
            },
            prefetch.join(", "),
            or_none(self.lambda_runtime_api.clone()),
            quoted(&self.local_development_directory),
            or_none(
                self.manifest
                    .as_ref()
                    .map(|manifest| format!("{:?}", shorten(manifest)))
            ),
            self.wait_on_manifest,
            quoted(&self.backup_directory),
            self.preload_backups,
        )
    }
}

/// `AWS_LAMBDA_RUNTIME_API` alone, for reporting a settings error to Lambda when the rest of
/// the settings could not be read (product.md §5).
pub fn lambda_runtime_api() -> Option<String> {
    std::env::var("AWS_LAMBDA_RUNTIME_API")
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// One variable as found: the name as the user wrote it and its raw value.
struct Found<'a> {
    name: String,
    value: &'a str,
}

impl Found<'_> {
    /// The value without surrounding whitespace; what every parser but the token's reads.
    fn text(&self) -> &str {
        self.value.trim()
    }

    /// `NAME is "value"; expected`: the shape of every validation message.
    fn invalid(&self, expected: &str) -> SettingsError {
        SettingsError {
            variable: self.name.clone(),
            message: format!("{} is {:?}; {expected}", self.name, shorten(self.text())),
        }
    }
}

/// Looks variables up in the snapshot and collects warnings along the way.
struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    warnings: Vec<String>,
}

impl<'a> Reader<'a> {
    /// An agent variable under any of `names` (highest precedence first): every prefixed
    /// spelling, then every bare one. Blank values count as unset.
    fn agent_setting(&mut self, names: &[&str]) -> Option<Found<'a>> {
        self.agent_setting_with(names, false)
    }

    fn agent_setting_with(&mut self, names: &[&str], keep_blank: bool) -> Option<Found<'a>> {
        let prefixed = names.iter().map(|name| format!("{PREFIX}{name}"));
        let bare = names.iter().map(|name| name.to_string());
        let mut winner: Option<Found<'a>> = None;
        for candidate in prefixed.chain(bare) {
            let Some(value) = self.vars.get(&candidate) else {
                continue;
            };
            if value.trim().is_empty() && !keep_blank {
                continue;
            }
            match &winner {
                None => {
                    winner = Some(Found {
                        name: candidate,
                        value,
                    })
                }
                Some(first) if first.value.trim() != value.trim() => self.warnings.push(format!(
                    "{candidate} is ignored because {} is set and takes precedence",
                    first.name
                )),
                Some(_) => {}
            }
        }
        winner
    }

    /// A variable that has one spelling only (AWS SDK and Lambda variables). Blank is unset.
    fn plain(&self, name: &str) -> Option<Found<'a>> {
        let value = self.vars.get(name)?;
        if value.trim().is_empty() {
            return None;
        }
        Some(Found {
            name: name.to_string(),
            value,
        })
    }
}

/// Copies the environment into a map, refusing non-UTF-8 values of our variables (their bytes
/// would otherwise be silently changed or dropped) and skipping everyone else's.
fn environment_snapshot(
    variables: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<HashMap<String, String>, SettingsError> {
    let mut snapshot = HashMap::new();
    for (name, value) in variables {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => {
                snapshot.insert(name, value);
            }
            Err(_) if is_our_variable(&name) => {
                // The value is not shown: it may be a secret, and it cannot be printed as is.
                return Err(SettingsError {
                    message: format!("{name} is not valid UTF-8; give its value in UTF-8"),
                    variable: name,
                });
            }
            Err(_) => {}
        }
    }
    Ok(snapshot)
}

fn is_our_variable(name: &str) -> bool {
    name.starts_with("AWS_") || SETTING_NAMES.contains(&name)
}

/// The first word of `message` shaped like an environment variable (`AWS_ACCESS_KEY_ID`).
fn first_variable_name(message: &str) -> Option<&str> {
    message
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .find(|word| {
            word.contains('_')
                && word.starts_with(|c: char| c.is_ascii_uppercase())
                && word.len() > 2
        })
}

fn exposed_listener_warning(host: &HttpHost, has_access_token: bool) -> String {
    if has_access_token {
        format!(
            "HTTP_HOST is {host}: the agent listens beyond loopback; callers must send the \
             ACCESS_TOKEN bearer value"
        )
    } else {
        format!(
            "HTTP_HOST is {host}: the agent listens beyond loopback without ACCESS_TOKEN, so \
             anyone who can reach the port can read every configuration it can fetch; set \
             ACCESS_TOKEN"
        )
    }
}

/// One warning per `AWS_APPCONFIG_EXTENSION_*` name we do not know, sorted, with the closest
/// known name when one is near enough to be a plausible typo. Prefix and name are compared
/// without regard to case, so `aws_appconfig_extension_log_level` is caught too.
fn unknown_name_warnings(vars: &HashMap<String, String>) -> Vec<String> {
    let mut unknown: Vec<&String> = vars
        .keys()
        .filter(|name| name.to_ascii_uppercase().starts_with(PREFIX))
        .filter(|name| {
            !name
                .strip_prefix(PREFIX)
                .is_some_and(|bare| SETTING_NAMES.contains(&bare))
        })
        .collect();
    unknown.sort();
    unknown
        .into_iter()
        .map(|name| {
            let suffix = name[PREFIX.len()..].to_ascii_uppercase();
            let closest = SETTING_NAMES
                .iter()
                .map(|known| (edit_distance(&suffix, known), *known))
                .min_by_key(|(distance, _)| *distance);
            match closest {
                Some((distance, known)) if distance <= (suffix.len() / 3).max(2) => {
                    format!("unknown setting {name}; did you mean {PREFIX}{known}?")
                }
                _ => format!("unknown setting {name} is ignored; run with --help for the settings"),
            }
        })
        .collect()
}

/// Levenshtein distance over bytes (names are ASCII).
fn edit_distance(left: &str, right: &str) -> usize {
    let right = right.as_bytes();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    let mut current = vec![0; right.len() + 1];
    for (i, left_byte) in left.bytes().enumerate() {
        current[0] = i + 1;
        for (j, right_byte) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_byte != *right_byte);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[right.len()]
}

/// The value cut to a readable length for messages.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(LONGEST_SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests;
