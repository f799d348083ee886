//! Settings: reads the environment once, under both spellings (product.md §3), validates every
//! value and owns every validation message. No other module reads the environment.
//!
//! It must not log (the logger is built from these settings, so warnings are handed back in
//! [`Settings::warnings`]), open files or touch the network. It asks `credentials` to read its own
//! variables and uses `cache::ConfigKey` and `logging::Secret` for the values it hands out.

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

/// The regional endpoint of `service` (`appconfigdata`, `sts`) in `region`, per wire.md §2:
/// `amazonaws.com` (`amazonaws.com.cn` in `cn-*`); FIPS adds `-fips` to the service label except
/// in `us-gov-*`, where the plain name is already FIPS; dual-stack uses `api.aws`
/// (`api.amazonwebservices.com.cn` in China). No trailing slash.
pub fn regional_endpoint(service: &str, region: &str, fips: bool, dual_stack: bool) -> String {
    let is_china = region.starts_with("cn-");
    let label = if fips && !region.starts_with("us-gov-") {
        format!("{service}-fips")
    } else {
        service.to_string()
    };
    let domain = match (dual_stack, is_china) {
        (false, false) => "amazonaws.com",
        (false, true) => "amazonaws.com.cn",
        (true, false) => "api.aws",
        (true, true) => "api.amazonwebservices.com.cn",
    };
    format!("https://{label}.{region}.{domain}")
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

fn parse_port(found: &Found<'_>) -> Result<u16, SettingsError> {
    found
        .text()
        .parse::<u16>()
        .map_err(|_| found.invalid("give a port number from 0 to 65535 (0 picks a free port)"))
}

fn parse_host(found: &Found<'_>) -> Result<HttpHost, SettingsError> {
    let text = found.text();
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(HttpHost::Localhost);
    }
    if text.eq_ignore_ascii_case("all") {
        return Ok(HttpHost::All);
    }
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    unbracketed
        .parse::<IpAddr>()
        .map(HttpHost::Address)
        .map_err(|_| {
            found.invalid("give localhost, all, or an IP address such as 127.0.0.1 or ::1")
        })
}

const POLL_INTERVAL_FORMS: &str = "such as 45, 45s, 5m or 1h";
const REQUEST_TIMEOUT_FORMS: &str = "such as 3000, 3000ms or 5s";

/// The refresh period: a bare number is seconds; `s`, `m` and `h` suffixes, any case. From 1 s
/// to 24 h (configuration tokens die after 24 h, wire.md §2).
fn parse_poll_interval(found: &Found<'_>) -> Result<Duration, SettingsError> {
    let period = parse_duration(
        found.text(),
        Unit::Seconds,
        &[Unit::Seconds, Unit::Minutes, Unit::Hours],
    )
    .ok_or_else(|| found.invalid(&format!("give seconds, {POLL_INTERVAL_FORMS}")))?;
    if period.is_zero() || period > LONGEST_POLL_INTERVAL {
        return Err(found.invalid(&format!(
            "give a period from 1 second to 24 hours, {POLL_INTERVAL_FORMS}"
        )));
    }
    Ok(period)
}

/// The bound on one call to AWS: a bare number is milliseconds; `ms`, `s` and `m` suffixes, any
/// case. From 1 ms to 5 minutes.
fn parse_request_timeout(found: &Found<'_>) -> Result<Duration, SettingsError> {
    let timeout = parse_duration(
        found.text(),
        Unit::Milliseconds,
        &[Unit::Milliseconds, Unit::Seconds, Unit::Minutes],
    )
    .ok_or_else(|| found.invalid(&format!("give milliseconds, {REQUEST_TIMEOUT_FORMS}")))?;
    if timeout.is_zero() || timeout > LONGEST_REQUEST_TIMEOUT {
        return Err(found.invalid(&format!(
            "give a timeout from 1 ms to 5 minutes, {REQUEST_TIMEOUT_FORMS}"
        )));
    }
    Ok(timeout)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Unit {
    fn from_suffix(suffix: &str) -> Option<Unit> {
        match suffix.to_ascii_lowercase().as_str() {
            "ms" => Some(Unit::Milliseconds),
            "s" => Some(Unit::Seconds),
            "m" => Some(Unit::Minutes),
            "h" => Some(Unit::Hours),
            _ => None,
        }
    }

    fn milliseconds(self) -> u64 {
        match self {
            Unit::Milliseconds => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
        }
    }
}

/// Digits, optional spaces, an optional unit from `allowed`. A number too large for a
/// `Duration` in milliseconds becomes `Duration::MAX`, which every caller refuses as out of
/// range (it is well formed, just too long).
fn parse_duration(text: &str, bare: Unit, allowed: &[Unit]) -> Option<Duration> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    let suffix = suffix.trim_start();
    let unit = if suffix.is_empty() {
        bare
    } else {
        Unit::from_suffix(suffix)?
    };
    if !allowed.contains(&unit) {
        return None;
    }
    let milliseconds = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit.milliseconds()));
    Some(milliseconds.map_or(Duration::MAX, Duration::from_millis))
}

fn parse_max_connections(found: &Found<'_>) -> Result<usize, SettingsError> {
    match found.text().parse::<usize>() {
        Ok(count) if (1..=MOST_CONNECTIONS).contains(&count) => Ok(count),
        _ => Err(found.invalid("give a whole number from 1 to 1024")),
    }
}

/// `trace`, `debug`, `info`, `warn` (or `warning`), `error`, `fatal` (as `error`), `none` (or
/// `off`), in any case.
fn parse_log_level(found: &Found<'_>) -> Result<LevelFilter, SettingsError> {
    match found.text().to_ascii_lowercase().as_str() {
        "trace" => Ok(LevelFilter::Trace),
        "debug" => Ok(LevelFilter::Debug),
        "info" => Ok(LevelFilter::Info),
        "warn" | "warning" => Ok(LevelFilter::Warn),
        "error" | "fatal" => Ok(LevelFilter::Error),
        "none" | "off" => Ok(LevelFilter::Off),
        _ => Err(found.invalid("give one of trace, debug, info, warn, error, fatal or none")),
    }
}

/// `true`/`false` in any case, or `1`/`0`.
fn parse_bool(found: &Found<'_>) -> Result<bool, SettingsError> {
    let text = found.text();
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Ok(false)
    } else {
        Err(found.invalid("give true or false"))
    }
}

/// `host:port`, as Lambda sets it (`127.0.0.1:9001`); a scheme or path would break every URL
/// built from it.
fn parse_runtime_api(found: &Found<'_>) -> Result<String, SettingsError> {
    let text = found.text();
    let well_formed = text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains(['/', ' ']) && port.parse::<u16>().is_ok()
    });
    if well_formed {
        Ok(text.to_string())
    } else {
        Err(found.invalid("give host:port, such as 127.0.0.1:9001"))
    }
}

/// Comma-separated items, each `app:env:profile` or
/// `/applications/APP/environments/ENV/configurations/PROFILE` (segments percent-decoded, as the
/// HTTP route decodes them, so a prefetched key matches the key of a later request). Blank items
/// are skipped and repeated keys kept once.
fn parse_prefetch_list(found: &Found<'_>) -> Result<Vec<ConfigKey>, SettingsError> {
    let mut keys: Vec<ConfigKey> = Vec::new();
    for item in found
        .text()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let key = parse_prefetch_item(item).map_err(|problem| SettingsError {
            variable: found.name.clone(),
            message: format!("{} item {:?} {problem}", found.name, shorten(item)),
        })?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn parse_prefetch_item(item: &str) -> Result<ConfigKey, &'static str> {
    const MALFORMED: &str = "is malformed; give app:env:profile or \
        /applications/APP/environments/ENV/configurations/PROFILE, separated by commas";
    const TOO_LONG: &str = "has an empty or over-long identifier; each of application, \
        environment and profile is 1 to 128 bytes";

    let parts: Vec<String> = if let Some(path) = item.strip_prefix('/') {
        let segments: Vec<&str> = path.split('/').collect();
        match segments.as_slice() {
            ["applications", app, "environments", env, "configurations", profile] => {
                let decoded: Option<Vec<String>> = [app, env, profile]
                    .iter()
                    .map(|segment| percent_decode(segment))
                    .collect();
                decoded.ok_or(MALFORMED)?
            }
            _ => return Err(MALFORMED),
        }
    } else {
        let segments: Vec<&str> = item.split(':').collect();
        if segments.len() != 3 {
            return Err(MALFORMED);
        }
        segments.into_iter().map(str::to_string).collect()
    };
    if parts
        .iter()
        .any(|part| part.is_empty() || part.len() > LONGEST_IDENTIFIER_BYTES)
    {
        return Err(TOO_LONG);
    }
    let [application, environment, profile]: [String; 3] =
        parts.try_into().map_err(|_| MALFORMED)?;
    Ok(ConfigKey {
        application,
        environment,
        profile,
    })
}

/// `ROLE_ARN`, with `ROLE_EXTERNAL_ID` and `ROLE_SESSION_NAME` meaningful only beside it.
fn read_role(reader: &mut Reader<'_>) -> Result<Option<RoleSettings>, SettingsError> {
    let arn = reader.agent_setting(&["ROLE_ARN"]);
    let external_id = reader.agent_setting(&["ROLE_EXTERNAL_ID"]);
    let session_name = reader.agent_setting(&["ROLE_SESSION_NAME"]);

    let Some(arn) = arn else {
        return match external_id.or(session_name) {
            Some(orphan) => Err(SettingsError {
                message: format!(
                    "{} is set but ROLE_ARN is not; set ROLE_ARN to the role to assume, or \
                     unset {}",
                    orphan.name, orphan.name
                ),
                variable: orphan.name,
            }),
            None => Ok(None),
        };
    };

    if !is_role_arn(arn.text()) {
        return Err(arn.invalid("give a role ARN such as arn:aws:iam::123456789012:role/name"));
    }
    let external_id = match external_id {
        Some(found) => {
            let text = found.text();
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
            if !EXTERNAL_ID_CHARS.contains(&text.chars().count()) || !text.chars().all(allowed) {
                return Err(found.invalid(
                    "give 2 to 1224 characters of letters, digits and _ + = , . @ : / -",
                ));
            }
            Some(text.to_string())
        }
        None => None,
    };
    let session_name = match session_name {
        Some(found) => {
            let text = found.text();
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
            if !SESSION_NAME_CHARS.contains(&text.chars().count()) || !text.chars().all(allowed) {
                return Err(
                    found.invalid("give 2 to 64 characters of letters, digits and _ + = , . @ -")
                );
            }
            Some(text.to_string())
        }
        None => None,
    };
    Ok(Some(RoleSettings {
        arn: arn.text().to_string(),
        external_id,
        session_name,
    }))
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME`, checked loosely: STS gives the precise verdict.
fn is_role_arn(text: &str) -> bool {
    let fields: Vec<&str> = text.splitn(6, ':').collect();
    ROLE_ARN_BYTES.contains(&text.len())
        && matches!(fields.as_slice(), ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty() && !account.is_empty() && resource.len() > "role/".len()
                && resource.starts_with("role/"))
}

/// `PROXY_URL` and `PROXY_HEADERS`. Header values cannot contain commas (the separator) and are
/// never shown in messages: they often carry proxy credentials.
fn read_proxy(reader: &mut Reader<'_>) -> Result<Option<ProxySettings>, SettingsError> {
    let url = reader.agent_setting(&["PROXY_URL"]);
    let headers = reader.agent_setting(&["PROXY_HEADERS"]);

    let Some(url) = url else {
        return match headers {
            Some(headers) => Err(SettingsError {
                message: format!(
                    "{} is set but PROXY_URL is not; set PROXY_URL to the proxy, or unset {}",
                    headers.name, headers.name
                ),
                variable: headers.name,
            }),
            None => Ok(None),
        };
    };

    let url_text = url.text();
    if !has_http_authority(url_text) {
        return Err(SettingsError {
            variable: url.name.clone(),
            message: format!(
                "{} is {:?}; give a URL starting with http:// or https://, such as \
                 http://proxy.internal:3128",
                url.name,
                mask_url_userinfo(url_text)
            ),
        });
    }
    let headers = match headers {
        Some(found) => parse_proxy_headers(&found)?,
        None => Vec::new(),
    };
    Ok(Some(ProxySettings {
        url: url_text.to_string(),
        headers,
    }))
}

fn parse_proxy_headers(found: &Found<'_>) -> Result<Vec<(String, Secret)>, SettingsError> {
    let fail = |problem: String| SettingsError {
        variable: found.name.clone(),
        message: format!(
            "{} {problem}; give headers as \"Name: value, Name2: value2\"",
            found.name
        ),
    };
    let mut headers = Vec::new();
    let items = found
        .text()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty());
    for (position, item) in items.enumerate() {
        let Some((name, value)) = item.split_once(':') else {
            return Err(fail(format!(
                "item {} has no \":\" (values are not shown)",
                position + 1
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        // Not even the name is shown: after a misplaced comma it may be part of a value.
        if !is_header_name(name) {
            return Err(fail(format!(
                "item {} does not start with a valid HTTP header name (values are not shown)",
                position + 1
            )));
        }
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(fail(format!(
                "value of header {name:?} is empty or holds a control character"
            )));
        }
        headers.push((name.to_string(), Secret::new(value)));
    }
    Ok(headers)
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// Fails closed: a set but empty token is an error rather than "no authentication"; whitespace
/// could never match a `Bearer` value, so it is refused too. The value is never shown.
fn read_access_token(reader: &mut Reader<'_>) -> Result<Option<Secret>, SettingsError> {
    let Some(found) = reader.agent_setting_with(&["ACCESS_TOKEN"], true) else {
        return Ok(None);
    };
    let fail = |problem: &str| SettingsError {
        variable: found.name.clone(),
        message: format!(
            "{} {problem}; give the token callers send after \"Authorization: Bearer \", or \
             unset {}",
            found.name, found.name
        ),
    };
    if found.value.is_empty() {
        return Err(fail("is empty"));
    }
    if found
        .value
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(fail(
            "contains whitespace or control characters (the value is not shown)",
        ));
    }
    Ok(Some(Secret::new(found.value)))
}

/// `SERVICE_REGION` (either spelling), else `AWS_REGION`, else `AWS_DEFAULT_REGION`.
fn read_region(
    reader: &mut Reader<'_>,
    is_local_development: bool,
) -> Result<String, SettingsError> {
    let found = reader
        .agent_setting(&["SERVICE_REGION"])
        .or_else(|| reader.plain("AWS_REGION"))
        .or_else(|| reader.plain("AWS_DEFAULT_REGION"));
    let Some(found) = found else {
        if is_local_development {
            return Ok(String::new());
        }
        return Err(SettingsError {
            variable: "AWS_REGION".to_string(),
            message: "no region is set; set AWS_REGION, AWS_DEFAULT_REGION or SERVICE_REGION \
                      (AWS_APPCONFIG_EXTENSION_SERVICE_REGION), for example AWS_REGION=us-east-1"
                .to_string(),
        });
    };
    let text = found.text();
    let well_formed = text.len() <= 64
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if !well_formed {
        return Err(
            found.invalid("give a region name of letters, digits and dashes, such as us-east-1")
        );
    }
    Ok(text.to_string())
}

/// Endpoints of AppConfigData and STS (wire.md §2, §3): the service-specific override, then
/// `AWS_ENDPOINT_URL`, then the regional name. A configured endpoint is used as written, so FIPS
/// and dual-stack only shape computed names. Empty when no region is set (local development).
fn read_endpoints(
    reader: &mut Reader<'_>,
    region: &str,
) -> Result<(String, String), SettingsError> {
    let fips = match reader.plain("AWS_USE_FIPS_ENDPOINT") {
        Some(found) => parse_bool(&found)?,
        None => false,
    };
    let dual_stack = match reader.plain("AWS_USE_DUALSTACK_ENDPOINT") {
        Some(found) => parse_bool(&found)?,
        None => false,
    };
    let resolve = |service: &str, variable: &str| -> Result<String, SettingsError> {
        let configured = reader
            .plain(variable)
            .or_else(|| reader.plain("AWS_ENDPOINT_URL"));
        match configured {
            Some(found) => parse_endpoint_url(&found),
            None if region.is_empty() => Ok(String::new()),
            None => Ok(regional_endpoint(service, region, fips, dual_stack)),
        }
    };
    let appconfigdata = resolve("appconfigdata", "AWS_ENDPOINT_URL_APPCONFIGDATA")?;
    let sts = resolve("sts", "AWS_ENDPOINT_URL_STS")?;
    Ok((appconfigdata, sts))
}

fn parse_endpoint_url(found: &Found<'_>) -> Result<String, SettingsError> {
    let text = found.text();
    if !has_http_authority(text) {
        return Err(found.invalid(
            "give a URL starting with http:// or https://, such as http://127.0.0.1:4566",
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// `http://` or `https://` (any case) followed by a host, with no whitespace anywhere.
fn has_http_authority(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with(['/', '?', '#'])
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// The URL with any `user:password@` replaced by `****@`, for messages and logs.
fn mask_url_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}****{}", &url[..authority_start], &rest[at..]),
        None => url.to_string(),
    }
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
