//! Proves the test fakes themselves: the SigV4 verifier against the wire.md §5 vectors, and the
//! fake AppConfigData against wire.md §2 and each fault it claims to inject. Other test files
//! trust these fakes, so a fake that drifted from the spec fails here first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use appconfig_lite::signing::{sign_request, RequestToSign};
use aws_credential_types::Credentials;
use serde_json::Value;

use support::agent::{Connection, Response};
use support::appconfigdata::{FakeAppConfig, Fault, FaultScope, Operation};
use support::sigv4::{self, ExpectedCredentials, ReceivedRequest, SignatureError, Verifier};
use support::wait_until;

const VECTOR_ACCESS_KEY: &str = "AKIDEXAMPLE";
const VECTOR_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const VECTOR_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+token/with=chars";
const V1_BODY: &str = r#"{"ApplicationIdentifier":"my-app","EnvironmentIdentifier":"prod","ConfigurationProfileIdentifier":"flags","RequiredMinimumPollIntervalInSeconds":15}"#;
const V3_BODY: &str = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo&RoleSessionName=appconfig-ext&ExternalId=ext-123&DurationSeconds=900";
const V2_TARGET: &str = "/configuration?configuration_token=AYADeJx%2Babc%2Fdef%3D%3D";
const AWS_HOST: &str = "appconfigdata.us-east-1.amazonaws.com";

/// One wire.md §5 vector: (name, method, host, target, content type, body, service, token,
/// published signature).
type Vector = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const VECTORS: [Vector; 5] = [
    (
        "V1",
        "POST",
        AWS_HOST,
        "/configurationsessions",
        Some("application/json"),
        V1_BODY,
        "appconfig",
        Some(VECTOR_TOKEN),
        "62beb4b068418de17ce02c9818eec3765dfafb39cdb044fb6324311553fb32ad",
    ),
    (
        "V2",
        "GET",
        AWS_HOST,
        V2_TARGET,
        None,
        "",
        "appconfig",
        Some(VECTOR_TOKEN),
        "5d4822e0c958acf2226b4bef4d15eb02326fb4cd66f82ee73df3c8a25f73d7d1",
    ),
    (
        "V3",
        "POST",
        "sts.us-east-1.amazonaws.com",
        "/",
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        V3_BODY,
        "sts",
        Some(VECTOR_TOKEN),
        "3038e2b0fe4aa8536542808fa14dc75fa5225b55f0c78f8b6fde765dbb09b025",
    ),
    (
        "V4",
        "GET",
        "127.0.0.1:8080",
        V2_TARGET,
        None,
        "",
        "appconfig",
        Some(VECTOR_TOKEN),
        "3c5e9a8e5d9c7f0316c6612c17142c9f3e8465d069f2703ccb10aceba718cadf",
    ),
    (
        "V5",
        "GET",
        AWS_HOST,
        V2_TARGET,
        None,
        "",
        "appconfig",
        None,
        "4daa080f9fb0ebb24a0a82f5f807424af8a8249cf2ee111eaa8cda613eabf855",
    ),
];

/// 2015-08-30T12:36:00Z, the signing time of every vector.
fn vector_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn vector_credentials(token: Option<&str>) -> ExpectedCredentials {
    ExpectedCredentials {
        access_key: VECTOR_ACCESS_KEY.to_string(),
        secret_key: VECTOR_SECRET.to_string(),
        session_token: token.map(str::to_string),
    }
}

/// Signs a vector with the support signer; returns its headers (authorization last).
fn sign_vector(vector: &Vector) -> Vec<(String, String)> {
    let (_, method, host, target, content_type, body, service, token, _) = *vector;
    let mut headers = vec![("host".to_string(), host.to_string())];
    if let Some(content_type) = content_type {
        headers.push(("content-type".to_string(), content_type.to_string()));
    }
    let credentials = vector_credentials(token);
    let request = ReceivedRequest {
        method,
        target,
        headers: &headers,
        body: body.as_bytes(),
    };
    sigv4::sign_headers(&request, &credentials, "us-east-1", service, vector_time())
}

fn signature_of(headers: &[(String, String)]) -> String {
    let authorization = sigv4::header_value(headers, "authorization").unwrap_or_default();
    authorization
        .rsplit("Signature=")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn vector_verifier(vector: &Vector) -> Verifier {
    Verifier {
        credentials: vector_credentials(vector.7),
        region: "us-east-1".to_string(),
        service: vector.6.to_string(),
        max_clock_skew: None,
    }
}

fn verify_vector(
    vector: &Vector,
    headers: &[(String, String)],
    target: &str,
    body: &str,
) -> Result<(), SignatureError> {
    let request = ReceivedRequest {
        method: vector.1,
        target,
        headers,
        body: body.as_bytes(),
    };
    vector_verifier(vector).verify(&request, vector_time())
}

#[test]
fn sigv4_signer_reproduces_the_five_published_vectors() {
    for vector in &VECTORS {
        let headers = sign_vector(vector);
        assert_eq!(signature_of(&headers), vector.8, "vector {}", vector.0);
        assert_eq!(
            verify_vector(vector, &headers, vector.3, vector.5),
            Ok(()),
            "{}",
            vector.0
        );
    }
}

#[test]
fn sigv4_verifier_accepts_what_the_agent_signer_produces() {
    for vector in &VECTORS {
        let (name, method, host, target, content_type, body, service, token, published) = *vector;
        let scheme = if host.starts_with("127.") {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}{target}");
        let extra: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        let request = RequestToSign {
            method,
            url: &url,
            headers: &extra,
            body: body.as_bytes(),
        };
        let credentials = Credentials::new(
            VECTOR_ACCESS_KEY,
            VECTOR_SECRET,
            token.map(str::to_string),
            None,
            "t",
        );
        let added =
            sign_request(&request, &credentials, "us-east-1", service, vector_time()).unwrap();
        let mut headers = vec![("Host".to_string(), host.to_string())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        headers.extend(added);
        assert_eq!(signature_of(&headers), published, "{name}");
        assert_eq!(
            verify_vector(vector, &headers, target, body),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn sigv4_verifier_rejects_tampered_requests() {
    let v1 = &VECTORS[0];
    let signed = sign_vector(v1);
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        signed
            .iter()
            .map(|(n, v)| {
                if n == name {
                    (n.clone(), value.to_string())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    };
    let mismatch = |result: Result<(), SignatureError>| {
        matches!(result, Err(SignatureError::SignatureMismatch { .. }))
    };

    let other_body = V1_BODY.replace("prod", "beta");
    assert!(
        mismatch(verify_vector(v1, &signed, v1.3, &other_body)),
        "body changed"
    );
    assert!(
        mismatch(verify_vector(
            v1,
            &signed,
            "/configurationsessions?x=1",
            V1_BODY
        )),
        "query"
    );
    assert!(
        mismatch(verify_vector(
            v1,
            &with("host", "127.0.0.1:9"),
            v1.3,
            V1_BODY
        )),
        "host"
    );
    let content_type = with("content-type", "application/json; charset=utf-8");
    assert!(
        mismatch(verify_vector(v1, &content_type, v1.3, V1_BODY)),
        "content-type"
    );
    assert_eq!(
        verify_vector(v1, &with("x-amz-security-token", "other"), v1.3, V1_BODY),
        Err(SignatureError::SecurityTokenMismatch)
    );
    let forged = signature_of(&signed).replace('6', "7");
    let authorization = sigv4::header_value(&signed, "authorization").unwrap();
    let forged_auth = authorization.replace(&signature_of(&signed), &forged);
    assert!(mismatch(verify_vector(
        v1,
        &with("authorization", &forged_auth),
        v1.3,
        V1_BODY
    )));

    // A token sent but left out of SignedHeaders.
    let mut unsigned_token = sign_vector(&VECTORS[4]);
    unsigned_token.insert(
        0,
        ("x-amz-security-token".to_string(), VECTOR_TOKEN.to_string()),
    );
    assert_eq!(
        verify_vector(v1, &unsigned_token, V2_TARGET, ""),
        Err(SignatureError::HeaderNotSigned(
            "x-amz-security-token".to_string()
        ))
    );

    let mut wrong_key = vector_verifier(v1);
    wrong_key.credentials.access_key = "AKIDOTHER".to_string();
    let request = ReceivedRequest {
        method: "POST",
        target: v1.3,
        headers: &signed,
        body: V1_BODY.as_bytes(),
    };
    assert!(matches!(
        wrong_key.verify(&request, vector_time()),
        Err(SignatureError::UnknownAccessKey { .. })
    ));
    let mut wrong_region = vector_verifier(v1);
    wrong_region.region = "eu-west-1".to_string();
    assert!(matches!(
        wrong_region.verify(&request, vector_time()),
        Err(SignatureError::WrongScope { part: "region", .. })
    ));
}

#[test]
fn sigv4_clock_check_allows_five_minutes_of_skew_when_enabled() {
    let v2 = &VECTORS[1];
    let headers = sign_vector(v2);
    let request = ReceivedRequest {
        method: "GET",
        target: V2_TARGET,
        headers: &headers,
        body: b"",
    };
    let mut verifier = vector_verifier(v2);
    verifier.max_clock_skew = Some(sigv4::DEFAULT_MAX_CLOCK_SKEW);
    let four_minutes = Duration::from_secs(240);
    let six_minutes = Duration::from_secs(360);
    assert_eq!(
        verifier.verify(&request, vector_time() + four_minutes),
        Ok(())
    );
    assert_eq!(
        verifier.verify(&request, vector_time() - four_minutes),
        Ok(())
    );
    for now in [
        vector_time() + six_minutes,
        vector_time() - six_minutes,
        SystemTime::now(),
    ] {
        assert!(matches!(
            verifier.verify(&request, now),
            Err(SignatureError::ClockSkew { .. })
        ));
    }
}

#[test]
fn sigv4_canonical_query_reads_raw_plus_as_space_and_sorts() {
    assert_eq!(
        sigv4::canonical_query("configuration_token=a+b"),
        "configuration_token=a%20b"
    );
    assert_eq!(sigv4::canonical_query("t=a%2Bb%2fc%3D"), "t=a%2Bb%2Fc%3D");
    assert_eq!(
        sigv4::canonical_query("b=2&a=1&a=0&flag"),
        "a=0&a=1&b=2&flag="
    );
    assert_eq!(sigv4::canonical_uri("/a b/./c/../d"), "/a%20b/d");
    assert_eq!(sigv4::format_amz_date(vector_time()), "20150830T123600Z");
    assert_eq!(
        sigv4::parse_amz_date("20150830T123600Z"),
        Some(vector_time())
    );
    assert_eq!(sigv4::parse_amz_date("2015-08-30T12:36:00Z"), None);
}

// ---- The fake AppConfigData ------------------------------------------------------------------

/// Percent-encodes a token for the query, as the agent must (wire.md §5).
fn encode_token(token: &str) -> String {
    sigv4::encode_component(token.as_bytes())
}

/// Sends a request signed by the crate's signer (aws-sigv4) with the fake's credentials, on a
/// fresh raw connection.
fn send_signed(
    fake: &FakeAppConfig,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut connection = Connection::open(fake.addr())?;
    send_signed_on(&mut connection, fake, method, target, body)
}

fn send_signed_on(
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
fn send_signed_as(
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

fn start_body(app: &str, env: &str, profile: &str) -> Vec<u8> {
    serde_json::json!({
        "ApplicationIdentifier": app,
        "EnvironmentIdentifier": env,
        "ConfigurationProfileIdentifier": profile,
        "RequiredMinimumPollIntervalInSeconds": 15,
    })
    .to_string()
    .into_bytes()
}

fn start_session(fake: &FakeAppConfig, app: &str, env: &str, profile: &str) -> Response {
    send_signed(
        fake,
        "POST",
        "/configurationsessions",
        &start_body(app, env, profile),
    )
    .unwrap()
}

fn initial_token(response: &Response) -> String {
    assert_eq!(response.status, 201, "{response}");
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    body["InitialConfigurationToken"]
        .as_str()
        .unwrap()
        .to_string()
}

fn poll(fake: &FakeAppConfig, token: &str) -> Response {
    let target = format!("/configuration?configuration_token={}", encode_token(token));
    send_signed(fake, "GET", &target, b"").unwrap()
}

fn next_token(response: &Response) -> String {
    response
        .header("Next-Poll-Configuration-Token")
        .expect("a next token")
        .to_string()
}

/// A fake with `shop:prod:flags` deployed as version "v1".
fn fake_with_shop() -> FakeAppConfig {
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

fn error_name(response: &Response) -> Option<&str> {
    response.header("x-amzn-ErrorType")
}

fn token_problem(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["Reason"], "InvalidParameters", "{response}");
    let problem = &body["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"];
    problem.as_str().unwrap_or_default().to_string()
}

#[test]
fn first_poll_returns_the_configuration_and_an_unchanged_poll_is_empty() {
    let fake = fake_with_shop();
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let first = poll(&fake, &token);
    assert_eq!(first.status, 200, "{first}");
    assert_eq!(first.body, br#"{"a":1}"#);
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.header("Version-Label"), Some("v1"));
    assert_eq!(first.header("Next-Poll-Interval-In-Seconds"), Some("15"));

    let second = poll(&fake, &next_token(&first));
    assert_eq!(second.status, 200, "{second}");
    assert!(second.body.is_empty());
    assert_eq!(
        (fake.start_session_calls(), fake.get_latest_calls()),
        (1, 2)
    );
    assert!(!fake.any_token_received_twice());
}

#[test]
fn tokens_always_contain_plus_slash_and_equals() {
    let fake = fake_with_shop();
    let mut token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    for _ in 0..5 {
        assert!(
            token.contains('+') && token.contains('/') && token.contains('='),
            "{token}"
        );
        token = next_token(&poll(&fake, &token));
    }
}

#[test]
fn a_reused_token_is_refused_as_expired_and_reported() {
    let fake = fake_with_shop();
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    assert_eq!(poll(&fake, &token).status, 200);
    let reused = poll(&fake, &token);
    assert_eq!(reused.status, 400);
    assert_eq!(error_name(&reused), Some("BadRequestException"));
    assert_eq!(token_problem(&reused), "Expired");
    assert!(fake.any_token_received_twice());
}

#[test]
fn unknown_and_unencoded_tokens_are_refused_as_corrupted() {
    let fake = fake_with_shop();
    let unknown = poll(&fake, "AYADeJxnot+a/token==");
    assert_eq!(
        (unknown.status, token_problem(&unknown)),
        (400, "Corrupted".to_string())
    );

    // A raw `+` reads as a space (wire.md §5), so a token sent unencoded does not match.
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let raw = send_signed(
        &fake,
        "GET",
        &format!("/configuration?configuration_token={token}"),
        b"",
    );
    let raw = raw.unwrap();
    assert_eq!(
        (raw.status, token_problem(&raw)),
        (400, "Corrupted".to_string()),
        "{raw}"
    );
    assert_eq!(
        poll(&fake, &token).status,
        200,
        "the real token is still unused"
    );
}

#[test]
fn deploy_then_poll_returns_the_new_body_and_version() {
    let fake = fake_with_shop();
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let first = poll(&fake, &token);
    fake.deploy(
        "shop",
        "prod",
        "flags",
        b"v: 2",
        "application/x-yaml",
        Some("v2"),
    );
    let second = poll(&fake, &next_token(&first));
    assert_eq!(second.body, b"v: 2");
    assert_eq!(second.header("Version-Label"), Some("v2"));
    assert_eq!(second.header("Content-Type"), Some("application/x-yaml"));
    let third = poll(&fake, &next_token(&second));
    assert!(
        third.body.is_empty(),
        "unchanged after the new version was seen"
    );
}

#[test]
fn an_alias_reaches_the_same_configuration_as_its_own_key() {
    let fake = fake_with_shop();
    fake.add_alias(["app123", "env456", "prof789"], ["shop", "prod", "flags"]);
    let token = initial_token(&start_session(&fake, "app123", "env456", "prof789"));
    assert_eq!(poll(&fake, &token).body, br#"{"a":1}"#);
    let keys: Vec<Option<String>> = fake.calls().into_iter().map(|call| call.key).collect();
    assert_eq!(keys, vec![Some("app123:env456:prof789".to_string()); 2]);
}

#[test]
fn unknown_resources_get_404_naming_the_resource_type() {
    let fake = fake_with_shop();
    for (key, resource) in [
        (["nope", "prod", "flags"], "Application"),
        (["shop", "nope", "flags"], "Environment"),
        (["shop", "prod", "nope"], "ConfigurationProfile"),
    ] {
        let response = start_session(&fake, key[0], key[1], key[2]);
        assert_eq!(response.status, 404, "{response}");
        assert_eq!(error_name(&response), Some("ResourceNotFoundException"));
        let body: Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["ResourceType"], resource);
        assert!(body["Message"].as_str().unwrap().contains("nope"));
    }
}

#[test]
fn start_session_validates_identifiers_and_poll_interval() {
    let fake = FakeAppConfig::start();
    let long = "x".repeat(128);
    fake.deploy(&long, "prod", "flags", b"{}", "application/json", None);
    assert_eq!(start_session(&fake, &long, "prod", "flags").status, 201);

    let too_long = "x".repeat(129);
    for body in [
        start_body(&too_long, "prod", "flags"),
        start_body("", "prod", "flags"),
        br#"{"ApplicationIdentifier":"a","EnvironmentIdentifier":"b"}"#.to_vec(),
        format!(r#"{{"ApplicationIdentifier":"{long}","EnvironmentIdentifier":"prod","ConfigurationProfileIdentifier":"flags","RequiredMinimumPollIntervalInSeconds":14}}"#).into_bytes(),
        b"not json".to_vec(),
    ] {
        let response = send_signed(&fake, "POST", "/configurationsessions", &body).unwrap();
        assert_eq!(response.status, 400, "{response}");
        assert_eq!(error_name(&response), Some("BadRequestException"));
    }
}

#[test]
fn bad_signatures_get_403_and_are_logged() {
    let fake = fake_with_shop();
    let body = start_body("shop", "prod", "flags");
    let good = fake.credentials();
    let wrong_secret = ExpectedCredentials {
        secret_key: "a-wrong-secret".to_string(),
        ..good.clone()
    };
    let wrong_key = ExpectedCredentials {
        access_key: "AKIDSOMEONEELSE".to_string(),
        ..good.clone()
    };

    let response = send_signed_as(
        &fake,
        &wrong_secret,
        "POST",
        "/configurationsessions",
        &body,
    );
    assert_eq!(
        (response.status, error_name(&response)),
        (403, Some("InvalidSignatureException"))
    );
    let response = send_signed_as(&fake, &wrong_key, "POST", "/configurationsessions", &body);
    assert_eq!(
        (response.status, error_name(&response)),
        (403, Some("UnrecognizedClientException"))
    );
    let response = send_signed_as(&fake, &good, "POST", "/configurationsessions", &body);
    assert_eq!(response.status, 201, "{response}");

    let calls = fake.calls();
    let signature_flags: Vec<bool> = calls.iter().map(|call| call.signature_ok).collect();
    assert_eq!(signature_flags, [false, false, true]);
    assert!(calls[0]
        .signature_error
        .as_deref()
        .unwrap()
        .contains("does not match"));
    assert_eq!(fake.start_session_calls(), 3);
}

#[test]
fn a_session_token_must_be_sent_and_signed() {
    let fake = fake_with_shop();
    fake.set_credentials(
        "AKIDFAKEAPPCONFIG",
        "fakeSecret/With+Odd=Chars",
        Some("session+tok/en="),
    );
    let body = start_body("shop", "prod", "flags");
    let without = ExpectedCredentials {
        session_token: None,
        ..fake.credentials()
    };
    let other = ExpectedCredentials {
        session_token: Some("other".to_string()),
        ..fake.credentials()
    };
    for credentials in [without, other] {
        let refused = send_signed_as(&fake, &credentials, "POST", "/configurationsessions", &body);
        assert_eq!(
            (refused.status, error_name(&refused)),
            (403, Some("UnrecognizedClientException"))
        );
    }
    assert_eq!(
        start_session(&fake, "shop", "prod", "flags").status,
        201,
        "signed with the token"
    );
}

#[test]
fn expire_all_tokens_makes_outstanding_tokens_answer_expired() {
    let fake = fake_with_shop();
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    fake.expire_all_tokens();
    let response = poll(&fake, &token);
    assert_eq!(
        (response.status, token_problem(&response)),
        (400, "Expired".to_string())
    );
    let fresh = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    assert_eq!(poll(&fake, &fresh).status, 200);
}

#[test]
fn an_unchanged_poll_can_be_answered_with_204() {
    let fake = fake_with_shop();
    fake.answer_unchanged_with_204(true);
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let first = poll(&fake, &token);
    let second = poll(&fake, &next_token(&first));
    assert_eq!((first.status, second.status), (200, 204));
    assert!(second.body.is_empty() && second.header("Next-Poll-Configuration-Token").is_some());
}

#[test]
fn front_end_faults_answer_their_status_and_leave_the_token_usable() {
    let cases = [
        (Fault::Status500, 500, "InternalServerException"),
        (Fault::Status503, 503, "ServiceUnavailableException"),
        (Fault::Throttle429, 429, "ThrottlingException"),
        (Fault::Forbidden403, 403, "AccessDeniedException"),
    ];
    for (fault, status, name) in cases {
        let fake = fake_with_shop();
        fake.inject_fault(FaultScope::StartConfigurationSession, fault, 2);
        for _ in 0..2 {
            let response = start_session(&fake, "shop", "prod", "flags");
            assert_eq!(
                (response.status, error_name(&response)),
                (status, Some(name))
            );
        }
        let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));

        fake.inject_fault(FaultScope::GetLatestConfiguration, fault, 1);
        let response = poll(&fake, &token);
        assert_eq!(
            (response.status, error_name(&response)),
            (status, Some(name))
        );
        assert_eq!(
            poll(&fake, &token).status,
            200,
            "{fault:?} left the token usable"
        );
        let faults: Vec<Option<Fault>> = fake.calls().iter().map(|call| call.fault).collect();
        assert_eq!(
            faults,
            vec![Some(fault), Some(fault), None, Some(fault), None]
        );
    }
}

#[test]
fn token_faults_answer_400_and_kill_the_token() {
    for (fault, problem) in [
        (Fault::ExpiredToken400, "Expired"),
        (Fault::CorruptedToken400, "Corrupted"),
    ] {
        let fake = fake_with_shop();
        let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
        fake.inject_fault(FaultScope::AnyOperation, fault, 1);
        let response = poll(&fake, &token);
        assert_eq!(
            (response.status, token_problem(&response)),
            (400, problem.to_string())
        );
        assert_eq!(
            poll(&fake, &token).status,
            400,
            "the token stays dead after {fault:?}"
        );
    }
}

#[test]
fn reset_mid_body_cuts_the_reply_and_consumes_the_token() {
    let fake = fake_with_shop();
    fake.deploy("shop", "prod", "flags", &[b'x'; 1000], "text/plain", None);
    fake.inject_fault(
        FaultScope::StartConfigurationSession,
        Fault::ResetMidBody,
        1,
    );
    let cut = send_signed(
        &fake,
        "POST",
        "/configurationsessions",
        &start_body("shop", "prod", "flags"),
    );
    assert_eq!(cut.unwrap_err().kind(), ErrorKind::UnexpectedEof);

    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    fake.inject_fault(FaultScope::GetLatestConfiguration, Fault::ResetMidBody, 1);
    let target = format!(
        "/configuration?configuration_token={}",
        encode_token(&token)
    );
    let cut = send_signed(&fake, "GET", &target, b"");
    assert_eq!(cut.unwrap_err().kind(), ErrorKind::UnexpectedEof);
    assert_eq!(
        poll(&fake, &token).status,
        400,
        "the server consumed the token"
    );
    assert_eq!(fake.calls()[2].status, None);
}

#[test]
fn malformed_body_faults_send_unparseable_answers() {
    let fake = fake_with_shop();
    fake.inject_fault(FaultScope::StartConfigurationSession, Fault::MalformedBody, 1);
    fake.inject_fault(FaultScope::GetLatestConfiguration, Fault::MalformedBody, 1);
    let start = start_session(&fake, "shop", "prod", "flags");
    assert_eq!(start.status, 201);
    assert!(serde_json::from_slice::<Value>(&start.body).is_err());

    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let latest = poll(&fake, &token);
    assert_eq!(latest.status, 200);
    assert_eq!(latest.header("Next-Poll-Configuration-Token"), None);
    assert_eq!(poll(&fake, &token).status, 400, "the token was consumed");
}

#[test]
fn hang_holds_the_request_until_released_then_closes() {
    let fake = fake_with_shop();
    fake.inject_fault(FaultScope::StartConfigurationSession, Fault::Hang, 1);
    let mut connection = Connection::open(fake.addr()).unwrap();
    connection
        .stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let body = start_body("shop", "prod", "flags");
    let waited = send_signed_on(
        &mut connection,
        &fake,
        "POST",
        "/configurationsessions",
        &body,
    );
    let kind = waited.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{kind:?}"
    );
    assert_eq!(fake.start_session_calls(), 1);

    fake.release_hung_requests();
    connection
        .stream()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        connection.stream().read_to_end(&mut rest).unwrap(),
        0,
        "closed, no answer"
    );
    assert_eq!(start_session(&fake, "shop", "prod", "flags").status, 201);
}

#[test]
fn stop_listening_refuses_connections_until_resumed_on_the_same_port() {
    let fake = fake_with_shop();
    let mut held = Connection::open(fake.addr()).unwrap();
    assert!(wait_until(Duration::from_secs(5), || fake
        .open_connections()
        == 1));
    fake.stop_listening();
    let refused = TcpStream::connect(fake.addr()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let mut rest = Vec::new();
    assert_eq!(
        held.stream().read_to_end(&mut rest).unwrap_or(0),
        0,
        "open connections closed"
    );

    fake.resume_listening().unwrap();
    assert_eq!(start_session(&fake, "shop", "prod", "flags").status, 201);
}

#[test]
fn connection_counters_see_keep_alive_reuse_and_parallel_connections() {
    let fake = fake_with_shop();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    for _ in 0..3 {
        // Unsigned: refused with 403, which is enough to exercise the connection.
        let url = format!("{}/configurationsessions", fake.url());
        let mut response = agent.post(url).send("{}").unwrap();
        assert_eq!(response.status().as_u16(), 403);
        // ureq pools the connection only once the body has been read.
        response.body_mut().read_to_vec().unwrap();
    }
    assert_eq!(
        (fake.connections_accepted(), fake.max_open_connections()),
        (1, 1)
    );
    assert!(fake
        .calls()
        .iter()
        .all(|call| call.connection == 1 && !call.signature_ok));

    fake.inject_fault(FaultScope::StartConfigurationSession, Fault::Hang, 4);
    let addr = fake.addr();
    let mut hung = Vec::new();
    for _ in 0..4 {
        let mut connection = Connection::open(addr).unwrap();
        connection
            .stream()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let body = start_body("shop", "prod", "flags");
        let _ = send_signed_on(
            &mut connection,
            &fake,
            "POST",
            "/configurationsessions",
            &body,
        );
        hung.push(connection);
    }
    assert!(wait_until(Duration::from_secs(5), || fake.max_in_flight() == 4));
    assert_eq!(
        fake.open_connections(),
        5,
        "four hung plus the ureq pool's idle one"
    );
    fake.release_hung_requests();
    drop(hung);
    drop(agent);
    assert!(wait_until(Duration::from_secs(5), || fake
        .open_connections()
        == 0));
    assert!(fake.max_open_connections() >= 5);
}

#[test]
fn an_early_poll_is_counted() {
    let fake = fake_with_shop();
    fake.set_poll_interval(3600);
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    let first = poll(&fake, &token);
    assert_eq!(first.header("Next-Poll-Interval-In-Seconds"), Some("3600"));
    assert_eq!(
        fake.early_poll_count(),
        0,
        "a session's first poll is never early"
    );
    poll(&fake, &next_token(&first));
    assert_eq!(fake.early_poll_count(), 1);
    let calls = fake.calls();
    assert_eq!(calls.last().map(|call| call.early), Some(true));
}

#[test]
fn the_call_log_records_operation_key_token_and_interval() {
    let fake = fake_with_shop();
    let token = initial_token(&start_session(&fake, "shop", "prod", "flags"));
    poll(&fake, &token);
    let unknown = send_signed(&fake, "GET", "/somewhere", b"").unwrap();
    assert_eq!(
        (unknown.status, error_name(&unknown)),
        (404, Some("UnknownOperationException"))
    );

    let calls = fake.calls();
    let operations: Vec<Operation> = calls.iter().map(|call| call.operation).collect();
    assert_eq!(
        operations,
        [
            Operation::StartConfigurationSession,
            Operation::GetLatestConfiguration,
            Operation::Unknown
        ]
    );
    assert_eq!(calls[0].key.as_deref(), Some("shop:prod:flags"));
    assert_eq!(calls[0].required_minimum_poll_interval, Some(15));
    assert_eq!(calls[1].key.as_deref(), Some("shop:prod:flags"));
    assert_eq!(calls[1].token.as_deref(), Some(token.as_str()));
    assert_eq!(
        calls.iter().map(|call| call.status).collect::<Vec<_>>(),
        [Some(201), Some(200), Some(404)]
    );
    assert!(calls.windows(2).all(|pair| pair[0].at <= pair[1].at));
}
