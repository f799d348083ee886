//! The fake AppConfigData speaks wire.md §2: sessions, single-use tokens, full and empty
//! bodies, deployments, aliases, validation, 404s and signature checks.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::fake_client::{
    error_name, fake_with_shop, initial_token, next_token, poll, send_signed, send_signed_as,
    start_body, start_session, token_problem,
};
use crate::support::agent::{Connection, Response};
use crate::support::appconfigdata::FakeAppConfig;
use crate::support::sigv4::{self, ExpectedCredentials, ReceivedRequest};

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
        serde_json::json!({
            "ApplicationIdentifier": long,
            "EnvironmentIdentifier": "prod",
            "ConfigurationProfileIdentifier": "flags",
            "RequiredMinimumPollIntervalInSeconds": 14,
        })
        .to_string()
        .into_bytes(),
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
fn region_and_clock_skew_are_checked_as_configured() {
    let fake = fake_with_shop();
    let body = start_body("shop", "prod", "flags");
    let credentials = fake.credentials();
    let eleven_minutes_ago = SystemTime::now() - Duration::from_secs(660);
    let stale = send_signed_at(&fake, &credentials, eleven_minutes_ago, &body);
    assert_eq!(
        (stale.status, error_name(&stale)),
        (403, Some("InvalidSignatureException"))
    );
    assert!(fake.calls()[0]
        .signature_error
        .as_deref()
        .unwrap()
        .contains("expired"));
    fake.set_max_clock_skew(None);
    assert_eq!(
        send_signed_at(&fake, &credentials, eleven_minutes_ago, &body).status,
        201
    );

    fake.set_region("eu-west-1");
    assert_eq!(
        start_session(&fake, "shop", "prod", "flags").status,
        403,
        "signed for us-east-1"
    );
    let vars = fake.agent_vars();
    assert!(vars.contains(&("AWS_REGION".to_string(), "eu-west-1".to_string())));
    assert!(vars.contains(&("AWS_ENDPOINT_URL_APPCONFIGDATA".to_string(), fake.url())));
}

/// A StartConfigurationSession signed by the support signer at `time`.
fn send_signed_at(
    fake: &FakeAppConfig,
    credentials: &ExpectedCredentials,
    time: SystemTime,
    body: &[u8],
) -> Response {
    let base = [
        ("host".to_string(), fake.addr().to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let target = "/configurationsessions";
    let request = ReceivedRequest {
        method: "POST",
        target,
        headers: &base,
        body,
    };
    let headers = sigv4::sign_headers(&request, credentials, "us-east-1", "appconfig", time);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut connection = Connection::open(fake.addr()).unwrap();
    connection.send("POST", target, &headers, body).unwrap()
}
