//! SigV4 request signing for AppConfigData and STS, through `aws-sigv4`.
//!
//! Takes a request that is already encoded exactly as it will be sent (URL, headers, body) and
//! returns the headers to add. It never builds URLs or bodies itself, so what is signed is what
//! goes on the wire (wire.md §5). Only this module and `credentials` handle key material.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

/// The SigV4 signing name of AppConfigData (its host label is `appconfigdata`, wire.md §2).
pub const APPCONFIG_SERVICE: &str = "appconfig";
/// The SigV4 signing name of STS (wire.md §3).
pub const STS_SERVICE: &str = "sts";

/// One request to sign, in wire form.
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The full URL with the query already percent-encoded as it will be sent.
    pub url: &'a str,
    /// Headers that will be sent and must be covered by the signature (for example
    /// `content-type`). `host` is derived from the URL, so callers leave it out.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Signing failed: the URL did not parse or the parameters were incomplete. The message never
/// contains key material.
#[derive(Debug)]
pub struct SigningError(String);

impl fmt::Display for SigningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request signing failed: {}", self.0)
    }
}

impl std::error::Error for SigningError {}

/// Signs `request` for `service` in `region` at `time` and returns the headers to add
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` when the credentials carry a
/// session token). The time is taken by the caller right before sending, because AWS rejects
/// signatures more than five minutes off (wire.md §5).
pub fn sign_request(
    request: &RequestToSign<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SigningError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigningError(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| SigningError(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| SigningError(e.to_string()))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+token/with=chars";

    fn vector_time() -> SystemTime {
        // 2015-08-30T12:36:00Z, the time of wire.md §5's vectors.
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_string),
            None,
            "test",
        )
    }

    fn signature(headers: &[(String, String)]) -> String {
        let auth = headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        auth.rsplit("Signature=")
            .next()
            .unwrap_or_default()
            .to_string()
    }

    fn sign_vector(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        service: &str,
        token: Option<&str>,
    ) -> Vec<(String, String)> {
        let request = RequestToSign {
            method,
            url,
            headers,
            body,
        };
        sign_request(
            &request,
            &credentials(token),
            "us-east-1",
            service,
            vector_time(),
        )
        .unwrap_or_default()
    }

    #[test]
    fn wire_vectors_give_the_published_signatures() {
        let v1_body = br#"{"ApplicationIdentifier":"my-app","EnvironmentIdentifier":"prod","ConfigurationProfileIdentifier":"flags","RequiredMinimumPollIntervalInSeconds":15}"#;
        let v3_body = b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=appconfig-ext&ExternalId=ext-123&DurationSeconds=900";
        let cases: Vec<(&str, Vec<(String, String)>)> = vec![
            (
                "62beb4b068418de17ce02c9818eec3765dfafb39cdb044fb6324311553fb32ad",
                sign_vector(
                    "POST",
                    "https://appconfigdata.us-east-1.amazonaws.com/configurationsessions",
                    &[("content-type", "application/json")],
                    v1_body,
                    APPCONFIG_SERVICE,
                    Some(TOKEN),
                ),
            ),
            (
                "5d4822e0c958acf2226b4bef4d15eb02326fb4cd66f82ee73df3c8a25f73d7d1",
                sign_vector(
                    "GET",
                    "https://appconfigdata.us-east-1.amazonaws.com/configuration?configuration_token=AYADeJx%2Babc%2Fdef%3D%3D",
                    &[],
                    b"",
                    APPCONFIG_SERVICE,
                    Some(TOKEN),
                ),
            ),
            (
                "3038e2b0fe4aa8536542808fa14dc75fa5225b55f0c78f8b6fde765dbb09b025",
                sign_vector(
                    "POST",
                    "https://sts.us-east-1.amazonaws.com/",
                    &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
                    v3_body,
                    STS_SERVICE,
                    Some(TOKEN),
                ),
            ),
            (
                "3c5e9a8e5d9c7f0316c6612c17142c9f3e8465d069f2703ccb10aceba718cadf",
                sign_vector(
                    "GET",
                    "http://127.0.0.1:8080/configuration?configuration_token=AYADeJx%2Babc%2Fdef%3D%3D",
                    &[],
                    b"",
                    APPCONFIG_SERVICE,
                    Some(TOKEN),
                ),
            ),
            (
                "4daa080f9fb0ebb24a0a82f5f807424af8a8249cf2ee111eaa8cda613eabf855",
                sign_vector(
                    "GET",
                    "https://appconfigdata.us-east-1.amazonaws.com/configuration?configuration_token=AYADeJx%2Babc%2Fdef%3D%3D",
                    &[],
                    b"",
                    APPCONFIG_SERVICE,
                    None,
                ),
            ),
        ];
        for (index, (expected, headers)) in cases.iter().enumerate() {
            assert_eq!(signature(headers), *expected, "vector V{}", index + 1);
        }
    }

    #[test]
    fn session_token_is_sent_unencoded_and_no_content_hash_header() {
        let headers = sign_vector(
            "GET",
            "https://appconfigdata.us-east-1.amazonaws.com/configuration?configuration_token=a%2Bb",
            &[],
            b"",
            APPCONFIG_SERVICE,
            Some(TOKEN),
        );
        let token = headers
            .iter()
            .find(|(name, _)| name == "x-amz-security-token");
        assert_eq!(token.map(|(_, v)| v.as_str()), Some(TOKEN));
        assert!(headers
            .iter()
            .all(|(name, _)| name != "x-amz-content-sha256"));
    }
}
