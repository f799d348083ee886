//! EC2 instance metadata, version 2 only (wire.md §4 step 4), for the standalone agent: a
//! session token from `PUT /latest/api/token`, the role name from
//! `GET /latest/meta-data/iam/security-credentials/`, then that role's credentials.
//!
//! Each call is bounded by [`IMDS_TIMEOUT`], never goes through a proxy and follows no
//! redirect. The session token is only ever held in a [`Secret`]; nothing read here is logged.

use super::container::parse_answer;
use super::refresh::Fetch;
use super::{direct_bounded, read_answer, Credentials, CredentialsError, IMDS_TIMEOUT};
use crate::logging::Secret;

/// Lifetime asked for the metadata session token. It is used for three calls in a row, so the
/// smallest sensible value would do; six hours is what the SDKs ask and cache.
const TOKEN_TTL_SECONDS: &str = "21600";
const TOKEN_PATH: &str = "/latest/api/token";
const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";

pub(super) struct InstanceMetadata {
    endpoint: String,
    agent: ureq::Agent,
}

impl InstanceMetadata {
    /// `endpoint` is the base URL without a trailing slash.
    pub fn new(endpoint: String, agent: ureq::Agent) -> Self {
        InstanceMetadata { endpoint, agent }
    }

    fn session_token(&self) -> Result<Secret, CredentialsError> {
        let request = self
            .agent
            .put(format!("{}{TOKEN_PATH}", self.endpoint))
            .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS);
        let result = direct_bounded(request, IMDS_TIMEOUT).send_empty();
        let (status, body) = read_answer(result, "instance metadata (token)")?;
        if status != 200 || body.trim().is_empty() {
            return Err(CredentialsError::Source(format!(
                "instance metadata answered {status} to the token request"
            )));
        }
        Ok(Secret::new(body.trim()))
    }

    fn get(
        &self,
        path: &str,
        token: &Secret,
        what: &str,
    ) -> Result<(u16, String), CredentialsError> {
        let request = self
            .agent
            .get(format!("{}{path}", self.endpoint))
            .header("x-aws-ec2-metadata-token", token.expose());
        let result = direct_bounded(request, IMDS_TIMEOUT).call();
        read_answer(result, what)
    }
}

impl Fetch for InstanceMetadata {
    fn describe(&self) -> String {
        format!("EC2 instance metadata at {}", self.endpoint)
    }

    fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let token = self.session_token()?;

        let (status, body) = self.get(ROLES_PATH, &token, "instance metadata (role name)")?;
        if status == 404 {
            return Err(CredentialsError::NotFound(
                "this EC2 instance has no instance profile (IAM role) attached".into(),
            ));
        }
        if status != 200 {
            return Err(CredentialsError::Source(format!(
                "instance metadata answered {status} to the role name request"
            )));
        }
        let Some(role) = body.lines().map(str::trim).find(|line| !line.is_empty()) else {
            return Err(CredentialsError::NotFound(
                "instance metadata lists no IAM role for this instance".into(),
            ));
        };
        if role.contains(['/', '?', '#', '%']) {
            return Err(CredentialsError::Source(format!(
                "instance metadata gave an unusable role name \"{role}\""
            )));
        }

        let path = format!("{ROLES_PATH}{role}");
        let (status, body) = self.get(&path, &token, "instance metadata (credentials)")?;
        parse_answer(status, &body, "imds")
    }
}
