//! STS AssumeRole over the Query protocol (wire.md §3): the form body, the SigV4 signature
//! (through `signing`, name `sts`), and the XML answer or error.
//!
//! The base credentials come from the chain (another [`CredentialSource`]); the assumed ones
//! are cached by `refresh`. Never logs keys, the session token or the external id; STS error
//! codes and messages are passed on as [`CredentialsError::AssumeRole`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::refresh::Fetch;
use super::xml::{self, Element};
use super::{
    read_answer, CredentialSource, Credentials, CredentialsError, HttpContext, RoleSettings,
};
use crate::signing::{sign_request, RequestToSign, STS_SERVICE};
use crate::timestamp::parse_rfc3339;

/// The content type STS's Query protocol expects; signed, so sent byte for byte as here.
pub(super) const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The Query protocol version of AssumeRole.
const API_VERSION: &str = "2011-06-15";
/// Session length asked for inside Lambda: the function's credentials are already an assumed
/// role, and role chaining caps sessions at one hour (wire.md §3). Outside Lambda no duration
/// is sent and STS's own default applies, which is also one hour.
pub(super) const LAMBDA_DURATION_SECONDS: u32 = 3600;

/// Assumes `role` with the credentials of `base`.
pub(super) struct AssumeRole {
    base: Arc<dyn CredentialSource>,
    role: RoleSettings,
    http: HttpContext,
}

impl AssumeRole {
    pub fn new(base: Arc<dyn CredentialSource>, role: RoleSettings, http: HttpContext) -> Self {
        AssumeRole { base, role, http }
    }

    fn call(&self, base: &Credentials) -> Result<Credentials, CredentialsError> {
        let url = format!("{}/", self.http.sts_endpoint.trim_end_matches('/'));
        let session_name = match &self.role.session_name {
            Some(name) => name.clone(),
            None => default_session_name(SystemTime::now()),
        };
        let duration = self.http.is_lambda.then_some(LAMBDA_DURATION_SECONDS);
        let body = request_body(&self.role, &session_name, duration);

        let headers = [("content-type", CONTENT_TYPE)];
        let request = RequestToSign {
            method: "POST",
            url: &url,
            headers: &headers,
            body: body.as_bytes(),
        };
        // Signing time is the real clock at send: STS compares it with its own (wire.md §5).
        let signed = sign_request(
            &request,
            base,
            &self.http.region,
            STS_SERVICE,
            SystemTime::now(),
        )
        .map_err(|e| CredentialsError::Source(format!("AssumeRole: {e}")))?;

        let mut builder = self
            .http
            .agent
            .post(&url)
            .header("content-type", CONTENT_TYPE);
        for (name, value) in &signed {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let result = builder
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(self.http.timeout))
            .build()
            .send(body.as_bytes());
        let (status, answer) = read_answer(result, "STS AssumeRole")?;
        parse_response(status, &answer)
    }
}

impl Fetch for AssumeRole {
    fn describe(&self) -> String {
        format!("STS AssumeRole {}", self.role.arn)
    }

    fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let base = self.base.credentials()?;
        match self.call(&base) {
            // The base credentials went stale under us (a thaw, a rotated key): fetch them
            // again and try once more.
            Err(CredentialsError::AssumeRole { code, .. }) if code == "ExpiredToken" => {
                log::debug!("credentials: STS says the base credentials expired; refetching them");
                self.base.invalidate();
                let base = self.base.credentials()?;
                self.call(&base)
            }
            other => other,
        }
    }

    fn invalidate_upstream(&self) {
        self.base.invalidate();
    }
}

/// Whether `name` is a valid `RoleSessionName`: 2 to 64 characters of `[\w+=,.@-]`.
pub fn is_valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// `appconfig-lite-<unix seconds>`: 25 characters, all valid in a session name, and it tells
/// CloudTrail readers which program and when.
pub(super) fn default_session_name(now: SystemTime) -> String {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("appconfig-lite-{seconds}")
}

/// The form body, in the order of wire.md §3.
pub(super) fn request_body(
    role: &RoleSettings,
    session_name: &str,
    duration: Option<u32>,
) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        ("Action", "AssumeRole".into()),
        ("Version", API_VERSION.into()),
        ("RoleArn", role.arn.clone()),
        ("RoleSessionName", session_name.to_string()),
    ];
    if let Some(external_id) = &role.external_id {
        pairs.push(("ExternalId", external_id.clone()));
    }
    if let Some(seconds) = duration {
        pairs.push(("DurationSeconds", seconds.to_string()));
    }
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but the unreserved characters (`A-Z a-z 0-9 - _ . ~`), with
/// upper-case hex: the form SigV4 canonicalizes to, so nothing is read differently by STS.
pub(super) fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Reads an STS answer: credentials from a 2xx `AssumeRoleResponse`, STS's code and message
/// from an `ErrorResponse` (any status), anything else an error naming the status.
pub(super) fn parse_response(status: u16, body: &str) -> Result<Credentials, CredentialsError> {
    let document = xml::parse(body);
    let ok = (200..300).contains(&status);

    if let Ok(root) = &document {
        if let Some(error) = root.find("Error").filter(|e| e.child("Code").is_some()) {
            return Err(CredentialsError::AssumeRole {
                code: error.child_text("Code").unwrap_or_default().to_string(),
                message: error
                    .child_text("Message")
                    .unwrap_or("(no message)")
                    .to_string(),
            });
        }
    }
    let root = match document {
        Ok(root) if ok => root,
        Ok(_) => return Err(CredentialsError::Source(format!("STS answered {status}"))),
        Err(e) if ok => {
            return Err(CredentialsError::Source(format!(
                "STS answered {status} with a body that is not XML ({e})"
            )))
        }
        Err(_) => return Err(CredentialsError::Source(format!("STS answered {status}"))),
    };

    let Some(credentials) = credentials_element(&root) else {
        return Err(CredentialsError::Source(format!(
            "STS answered {status} without AssumeRoleResult/Credentials"
        )));
    };
    let field = |name: &str| {
        credentials
            .child_text(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                CredentialsError::Source(format!("STS answered credentials without {name}"))
            })
    };
    let expiration = field("Expiration")?;
    let expiry = parse_rfc3339(expiration).ok_or_else(|| {
        CredentialsError::Source(format!(
            "STS answered an Expiration that is not an ISO-8601 time: \"{expiration}\""
        ))
    })?;
    Ok(Credentials::new(
        field("AccessKeyId")?,
        field("SecretAccessKey")?,
        Some(field("SessionToken")?.to_string()),
        Some(expiry),
        "sts",
    ))
}

/// `AssumeRoleResponse/AssumeRoleResult/Credentials`, tolerating a missing wrapper level.
fn credentials_element(root: &Element) -> Option<&Element> {
    root.path(&["AssumeRoleResult", "Credentials"])
        .or_else(|| {
            root.find("AssumeRoleResult")
                .and_then(|r| r.child("Credentials"))
        })
        .or_else(|| root.find("Credentials"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;
    use std::time::Duration;

    fn role(external_id: Option<&str>) -> RoleSettings {
        RoleSettings {
            arn: "arn:aws:iam::123456789012:role/demo".into(),
            external_id: external_id.map(str::to_string),
            session_name: None,
        }
    }

    #[test]
    fn body_matches_the_wire_vector() {
        let body = request_body(&role(Some("ext-123")), "appconfig-ext", Some(900));
        assert_eq!(
            body,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3A\
             role%2Fdemo&RoleSessionName=appconfig-ext&ExternalId=ext-123&DurationSeconds=900"
        );
        let body = request_body(&role(None), "s", None);
        assert_eq!(
            body,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3A\
             role%2Fdemo&RoleSessionName=s"
        );
    }

    #[test]
    fn percent_encoding_leaves_only_unreserved_characters() {
        let cases = [
            ("abc-_.~XYZ019", "abc-_.~XYZ019"),
            ("a b+c/d=e&f", "a%20b%2Bc%2Fd%3De%26f"),
            ("@,:", "%40%2C%3A"),
            ("é", "%C3%A9"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(percent_encode(input), expected);
        }
    }

    #[test]
    fn session_names_follow_the_sts_pattern() {
        let cases = [
            ("ab", true),
            ("appconfig-lite-1796396400", true),
            ("a+b=c,d.e@f_g-h", true),
            (&"x".repeat(64), true),
            ("a", false),
            (&"x".repeat(65), false),
            ("has space", false),
            ("slash/", false),
            ("ünï", false),
            ("", false),
        ];
        for (name, valid) in cases {
            assert_eq!(is_valid_session_name(name), valid, "{name}");
        }
        let default = default_session_name(UNIX_EPOCH + Duration::from_secs(1_796_396_400));
        assert_eq!(default, "appconfig-lite-1796396400");
        assert!(is_valid_session_name(&default));
    }

    const ORDERED: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/s3-access-example</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>
      <SecretAccessKey>9drTJvcXLB89EXAMPLELB8923FB892xMFI</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLE</SessionToken>
      <Expiration>2026-12-04T15:00:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

    const SHUFFLED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<sts:AssumeRoleResponse xmlns:sts=\"https://sts.amazonaws.com/doc/2011-06-15/\" extra='1'>\
<sts:ResponseMetadata><sts:RequestId>r</sts:RequestId></sts:ResponseMetadata>\
<sts:AssumeRoleResult><sts:Credentials>\
<sts:Expiration>2026-12-04T15:00:00.120Z</sts:Expiration>\
<!-- comment between fields -->\
<sts:SessionToken>tok&#43;en/with&#x3D;chars&amp;more</sts:SessionToken>\
<sts:SecretAccessKey>se&lt;cr&gt;et&quot;&apos;</sts:SecretAccessKey>\
<sts:AccessKeyId>ASIASHUFFLED</sts:AccessKeyId>\
</sts:Credentials></sts:AssumeRoleResult></sts:AssumeRoleResponse>";

    #[test]
    fn answers_are_read_in_any_order_with_entities_and_fractions() {
        let credentials = parse_response(200, ORDERED).unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAJEXAMPLEXEG2JICEA");
        assert_eq!(
            credentials.secret_access_key(),
            "9drTJvcXLB89EXAMPLELB8923FB892xMFI"
        );
        assert_eq!(credentials.session_token(), Some("IQoJb3JpZ2luX2VjEXAMPLE"));
        assert_eq!(
            credentials.expiry(),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_396_400))
        );

        let credentials = parse_response(200, SHUFFLED).unwrap();
        assert_eq!(credentials.access_key_id(), "ASIASHUFFLED");
        assert_eq!(credentials.secret_access_key(), "se<cr>et\"'");
        assert_eq!(credentials.session_token(), Some("tok+en/with=chars&more"));
        assert_eq!(
            credentials.expiry(),
            Some(UNIX_EPOCH + Duration::new(1_796_396_400, 120_000_000))
        );
    }

    #[test]
    fn error_responses_carry_code_and_message() {
        let cases = [
            (
                403,
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                 <Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::1:user/x \
                 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::2:role/y\
                 </Message></Error><RequestId>r</RequestId></ErrorResponse>",
                "AccessDenied",
                "User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on \
                 resource: arn:aws:iam::2:role/y",
            ),
            (
                400,
                "<ErrorResponse><RequestId>r</RequestId><Error><Message>a &amp; b</Message>\
                 <Code>ValidationError</Code></Error></ErrorResponse>",
                "ValidationError",
                "a & b",
            ),
            (
                403,
                "<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>",
                "ExpiredToken",
                "(no message)",
            ),
        ];
        for (status, body, code, message) in cases {
            assert_eq!(
                parse_response(status, body).unwrap_err(),
                CredentialsError::AssumeRole {
                    code: code.into(),
                    message: message.into()
                }
            );
        }
    }

    #[test]
    fn unusable_answers_are_source_errors_without_secrets() {
        let missing_token =
            ORDERED.replace("<SessionToken>IQoJb3JpZ2luX2VjEXAMPLE</SessionToken>", "");
        let bad_expiration = ORDERED.replace("2026-12-04T15:00:00Z", "next tuesday");
        let cases = [
            (200, missing_token.as_str(), "without SessionToken"),
            (200, bad_expiration.as_str(), "\"next tuesday\""),
            (200, "<AssumeRoleResponse/>", "without AssumeRoleResult"),
            (200, "{\"json\":true}", "not XML"),
            (
                200,
                "<a>9drTJvcXLB89EXAMPLELB8923FB892xMFI &bad;</a>",
                "not XML",
            ),
            (503, "Service Unavailable", "STS answered 503"),
            (500, "<html><body>oops</body></html>", "STS answered 500"),
        ];
        for (status, body, expected) in cases {
            let error = parse_response(status, body).unwrap_err();
            assert!(matches!(error, CredentialsError::Source(_)), "{error:?}");
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(
                !message.contains("9drTJvcXLB89EXAMPLELB8923FB892xMFI"),
                "{message}"
            );
        }
    }
}
