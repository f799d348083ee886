//! The shared credentials and config files (wire.md §4 step 3), for local runs: static keys of
//! one profile (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`).
//!
//! Owns the INI reading and the rule that the credentials file wins over the config file for
//! the same profile, as a whole (keys are never mixed across files). Profiles that get keys
//! another way (SSO, `credential_process`, `role_arn`) are not read. Logs paths, never values.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::refresh::Fetch;
use super::{CredentialSettings, Credentials, CredentialsError};

/// What the files say about the profile.
#[derive(Debug)]
pub(super) enum Lookup {
    /// Static keys, and the file they came from.
    Found(Found),
    /// The profile exists but holds no `aws_access_key_id`; the text says where.
    NoKeys(String),
    /// Neither file has the profile (or neither file exists).
    Missing,
}

#[derive(Debug)]
pub(super) struct Found {
    pub credentials: Credentials,
    pub path: PathBuf,
    pub profile: String,
}

impl Found {
    pub fn describe(&self) -> String {
        format!("profile \"{}\" in {}", self.profile, self.path.display())
    }
}

/// Which file, and how its sections are named.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FileKind {
    /// `[name]`.
    Credentials,
    /// `[default]` or `[profile name]`.
    Config,
}

/// Looks the profile up: the credentials file first, then the config file.
pub(super) fn lookup(settings: &CredentialSettings) -> Result<Lookup, CredentialsError> {
    let profile = settings.profile_name();
    let files = [
        (
            settings.shared_credentials_file.as_ref(),
            FileKind::Credentials,
        ),
        (settings.config_file.as_ref(), FileKind::Config),
    ];
    let mut no_keys: Option<String> = None;
    for (path, kind) in files {
        let Some(path) = path else { continue };
        let Some(text) = read_if_present(path)? else {
            continue;
        };
        let Some(properties) = profile_properties(&text, kind, profile) else {
            continue;
        };
        let value = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let where_ = format!("profile \"{profile}\" in {}", path.display());
        match (value("aws_access_key_id"), value("aws_secret_access_key")) {
            (Some(key), Some(secret)) => {
                let credentials =
                    Credentials::new(key, secret, value("aws_session_token"), None, "profile");
                return Ok(Lookup::Found(Found {
                    credentials,
                    path: path.clone(),
                    profile: profile.to_string(),
                }));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(CredentialsError::Incomplete(format!(
                    "{where_} has only one of aws_access_key_id and aws_secret_access_key; \
                     give both"
                )))
            }
            (None, None) => {
                no_keys.get_or_insert(where_);
            }
        }
    }
    Ok(no_keys.map_or(Lookup::Missing, Lookup::NoKeys))
}

/// The two files, for messages.
pub(super) fn describe_files(settings: &CredentialSettings) -> String {
    let show = |path: &Option<PathBuf>| {
        path.as_ref()
            .map_or("(no HOME)".to_string(), |p| p.display().to_string())
    };
    format!(
        "{} or {}",
        show(&settings.shared_credentials_file),
        show(&settings.config_file)
    )
}

/// Re-reads the files after an invalidation, so keys rotated on disk are picked up.
pub(super) struct ProfileCredentials {
    settings: CredentialSettings,
}

impl ProfileCredentials {
    pub fn new(settings: CredentialSettings) -> Self {
        ProfileCredentials { settings }
    }
}

impl Fetch for ProfileCredentials {
    fn describe(&self) -> String {
        format!(
            "profile \"{}\" in {}",
            self.settings.profile_name(),
            describe_files(&self.settings)
        )
    }

    fn fetch(&self) -> Result<Credentials, CredentialsError> {
        match lookup(&self.settings)? {
            Lookup::Found(found) => Ok(found.credentials),
            Lookup::NoKeys(where_) => Err(CredentialsError::NotFound(format!(
                "{where_} no longer has aws_access_key_id"
            ))),
            Lookup::Missing => Err(CredentialsError::NotFound(format!(
                "{} is no longer in the shared files",
                self.describe()
            ))),
        }
    }
}

/// A missing file is normal (`None`); any other read error names the file.
fn read_if_present(path: &Path) -> Result<Option<String>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CredentialsError::Source(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// The `key = value` pairs of `profile` in an INI text, keys lower-cased; `None` when the
/// profile has no section. Repeated sections add up; a later key wins.
fn profile_properties(text: &str, kind: FileKind, profile: &str) -> Option<Vec<(String, String)>> {
    let mut found = false;
    let mut in_profile = false;
    let mut properties: Vec<(String, String)> = Vec::new();
    let mut in_sub_properties = false;

    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("").trim();
            in_profile = section_profile(name, kind) == Some(profile);
            found |= in_profile;
            in_sub_properties = false;
            continue;
        }
        // Indented lines under `key =` are nested settings (for example `s3 =`), not keys.
        if in_sub_properties && raw.starts_with([' ', '\t']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        in_sub_properties = value.is_empty();
        if in_profile {
            properties.retain(|(k, _)| *k != key);
            properties.push((key, value.to_string()));
        }
    }
    found.then_some(properties)
}

/// The profile a section header names, or `None` for other sections (`sso-session`,
/// `services`) and, in the config file, for bare names other than `default`.
fn section_profile(header: &str, kind: FileKind) -> Option<&str> {
    match kind {
        FileKind::Credentials => Some(header),
        FileKind::Config if header == "default" => Some("default"),
        FileKind::Config => {
            let rest = header.strip_prefix("profile")?;
            rest.starts_with([' ', '\t']).then(|| rest.trim())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;

    const CREDENTIALS: &str = "\
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[dev]
AWS_ACCESS_KEY_ID=AKIADEV
aws_secret_access_key=dev-secret+/=
aws_session_token = dev-token
; another comment
[half]
aws_access_key_id = AKIAHALF
";

    const CONFIG: &str = "\
[default]
region = eu-west-1
[profile dev]
aws_access_key_id = AKIACONFIGDEV
aws_secret_access_key = config-dev-secret
[profile ops]
region = us-east-1
s3 =
  aws_access_key_id = AKIANESTED
aws_access_key_id = AKIAOPS
aws_secret_access_key = ops-secret
[ops2]
aws_access_key_id = AKIAWRONGSECTION
aws_secret_access_key = wrong
[sso-session corp]
sso_region = eu-west-1
[profile  sso]
sso_session = corp
";

    #[test]
    fn sections_and_keys_are_read_per_file_kind() {
        let get = |text, kind, profile| {
            profile_properties(text, kind, profile).map(|props| {
                props
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("aws_"))
                    .collect::<Vec<_>>()
            })
        };
        let pairs = |list: &[(&str, &str)]| {
            Some(
                list.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            get(CREDENTIALS, FileKind::Credentials, "dev"),
            pairs(&[
                ("aws_access_key_id", "AKIADEV"),
                ("aws_secret_access_key", "dev-secret+/="),
                ("aws_session_token", "dev-token"),
            ])
        );
        assert_eq!(
            get(CONFIG, FileKind::Config, "ops"),
            pairs(&[
                ("aws_access_key_id", "AKIAOPS"),
                ("aws_secret_access_key", "ops-secret")
            ])
        );
        assert_eq!(get(CONFIG, FileKind::Config, "default"), pairs(&[]));
        assert_eq!(get(CONFIG, FileKind::Config, "sso"), pairs(&[]));
        assert_eq!(get(CONFIG, FileKind::Config, "ops2"), None);
        assert_eq!(get(CONFIG, FileKind::Config, "corp"), None);
        assert_eq!(get(CREDENTIALS, FileKind::Credentials, "nobody"), None);
    }

    fn write_files(
        name: &str,
        credentials: Option<&str>,
        config: Option<&str>,
    ) -> (PathBuf, CredentialSettings) {
        let dir = std::env::temp_dir().join(format!(
            "appconfig-lite-profiles-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let credentials_path = dir.join("credentials");
        let config_path = dir.join("config");
        if let Some(text) = credentials {
            std::fs::write(&credentials_path, text).unwrap();
        }
        if let Some(text) = config {
            std::fs::write(&config_path, text).unwrap();
        }
        let settings = CredentialSettings {
            shared_credentials_file: Some(credentials_path),
            config_file: Some(config_path),
            ..CredentialSettings::default()
        };
        (dir, settings)
    }

    fn key_of(lookup: Result<Lookup, CredentialsError>) -> String {
        match lookup {
            Ok(Lookup::Found(found)) => found.credentials.access_key_id().to_string(),
            Ok(Lookup::NoKeys(_)) => "no keys".into(),
            Ok(Lookup::Missing) => "missing".into(),
            Err(CredentialsError::Incomplete(_)) => "incomplete".into(),
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn credentials_file_wins_and_config_file_fills_in() {
        let (dir, settings) = write_files("both", Some(CREDENTIALS), Some(CONFIG));
        let with_profile = |profile: Option<&str>| CredentialSettings {
            profile: profile.map(str::to_string),
            ..settings.clone()
        };
        let cases = [
            (None, "AKIADEFAULT"),
            (Some("dev"), "AKIADEV"),
            (Some("ops"), "AKIAOPS"),
            (Some("half"), "incomplete"),
            (Some("sso"), "no keys"),
            (Some("absent"), "missing"),
        ];
        for (profile, expected) in cases {
            assert_eq!(
                key_of(lookup(&with_profile(profile))),
                expected,
                "{profile:?}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn config_file_alone_and_no_files_at_all() {
        let (dir, settings) = write_files("config-only", None, Some(CONFIG));
        assert_eq!(key_of(lookup(&settings)), "no keys");
        let dev = CredentialSettings {
            profile: Some("dev".into()),
            ..settings.clone()
        };
        assert_eq!(key_of(lookup(&dev)), "AKIACONFIGDEV");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(key_of(lookup(&settings)), "missing");
        assert_eq!(key_of(lookup(&CredentialSettings::default())), "missing");
    }

    #[test]
    fn a_session_token_comes_along_and_no_expiry_is_set() {
        let (dir, settings) = write_files("token", Some(CREDENTIALS), None);
        let dev = CredentialSettings {
            profile: Some("dev".into()),
            ..settings
        };
        let Ok(Lookup::Found(found)) = lookup(&dev) else {
            panic!("dev not found")
        };
        assert_eq!(found.credentials.session_token(), Some("dev-token"));
        assert_eq!(found.credentials.expiry(), None);
        assert!(found.describe().contains("\"dev\""));
        assert!(!found.describe().contains("dev-secret"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
