//! Helpers shared by the fake AppConfigData self-tests: requests signed by the crate's signer
//! (aws-sigv4) or by the support signer, and readers for the fake's answers.

use std::io;
use std::time::SystemTime;

use appconfig_lite::signing::{sign_request, RequestToSign};
use aws_credential_types::Credentials;
use serde_json::Value;

use crate::support::agent::{Connection, Response};
use crate::support::appconfigdata::FakeAppConfig;
use crate::support::sigv4::{self, ExpectedCredentials, ReceivedRequest};

/// Percent-encodes a token for the query, as the agent must (wire.md §5).
pub fn encode_token(token: &str) -> String {
    sigv4::encode_component(token.as_bytes())
}

/// Sends a request signed by the crate's signer (aws-sigv4) with the fake's credentials, on a
/// fresh raw connection.
pub fn send_signed(
    fake: &FakeAppConfig,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut connection = Connection::open(fake.addr())?;
    send_signed_on(&mut connection, fake, method, target, body)
}

/// Like [`send_signed`], on a given connection (to reuse it or to set its timeouts).
pub fn send_signed_on(
    connection: &mut Connection,
    fake: &FakeAppConfig,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<Response> {
    let credentials = fake.credentials();
    let credentials = Credentials::new(
        credentials.access_key,
        credentials.secret_key,
        credentials.session_token,
        None,
        "test",
    );
    let url = format!("{}{target}", fake.url());
    let content_type: &[(&str, &str)] = if method == "POST" {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    let request = RequestToSign {
        method,
        url: &url,
        headers: content_type,
        body,
    };
    let added = sign_request(
        &request,
        &credentials,
        "us-east-1",
        "appconfig",
        SystemTime::now(),
    )
    .unwrap();
    let mut headers: Vec<(&str, &str)> = content_type.to_vec();
    headers.extend(
        added
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    connection.send(method, target, &headers, body)
}

/// Sends a request signed by the support signer with `credentials`, for deliberately wrong
/// signatures.
pub fn send_signed_as(
    fake: &FakeAppConfig,
    credentials: &ExpectedCredentials,
    method: &str,
    target: &str,
    body: &[u8],
) -> Response {
    let mut base = vec![("host".to_string(), fake.addr().to_string())];
    if method == "POST" {
        base.push(("content-type".to_string(), "application/json".to_string()));
    }
    let now = SystemTime::now();
    let request = ReceivedRequest {
        method,
        target,
        headers: &base,
        body,
    };
    let headers = sigv4::sign_headers(&request, credentials, "us-east-1", "appconfig", now);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut connection = Connection::open(fake.addr()).unwrap();
    connection.send(method, target, &headers, body).unwrap()
}

/// A StartConfigurationSession body for `app:env:profile` with a 15 s minimum interval.
pub fn start_body(app: &str, env: &str, profile: &str) -> Vec<u8> {
    serde_json::json!({
        "ApplicationIdentifier": app,
        "EnvironmentIdentifier": env,
        "ConfigurationProfileIdentifier": profile,
        "RequiredMinimumPollIntervalInSeconds": 15,
    })
    .to_string()
    .into_bytes()
}

/// Starts a session for `app:env:profile`; panics only if the connection fails.
pub fn start_session(fake: &FakeAppConfig, app: &str, env: &str, profile: &str) -> Response {
    send_signed(
        fake,
        "POST",
        "/configurationsessions",
        &start_body(app, env, profile),
    )
    .unwrap()
}

/// The `InitialConfigurationToken` of a `201`; panics on any other answer.
pub fn initial_token(response: &Response) -> String {
    assert_eq!(response.status, 201, "{response}");
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["InitialConfigurationToken"]
        .as_str()
        .unwrap()
        .to_string()
}

/// GetLatestConfiguration with `token`, percent-encoded.
pub fn poll(fake: &FakeAppConfig, token: &str) -> Response {
    let target = format!("/configuration?configuration_token={}", encode_token(token));
    send_signed(fake, "GET", &target, b"").unwrap()
}

/// The `Next-Poll-Configuration-Token` header; panics when absent.
pub fn next_token(response: &Response) -> String {
    response
        .header("Next-Poll-Configuration-Token")
        .expect("a next token")
        .to_string()
}

/// A fake with `shop:prod:flags` deployed as version "v1".
pub fn fake_with_shop() -> FakeAppConfig {
    let fake = FakeAppConfig::start();
    fake.deploy(
        "shop",
        "prod",
        "flags",
        br#"{"a":1}"#,
        "application/json",
        Some("v1"),
    );
    fake
}

/// The error name in `x-amzn-ErrorType`.
pub fn error_name(response: &Response) -> Option<&str> {
    response.header("x-amzn-ErrorType")
}

/// `Details.InvalidParameters.ConfigurationToken.Problem` of a token error; panics unless
/// `Reason` is `InvalidParameters`.
pub fn token_problem(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["Reason"], "InvalidParameters", "{response}");
    let problem = &body["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"];
    problem.as_str().unwrap_or_default().to_string()
}
