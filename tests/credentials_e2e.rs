//! The credential chain (wire.md §4) and AssumeRole (wire.md §3) through the real agent binary
//! (issue 4): each source signs the agent's AppConfigData calls, one AssumeRole serves many
//! requests, STS errors and `ExpiredTokenException` reach the caller or are absorbed as the
//! spec says, and nothing secret reaches the log at `trace`.
//!
//! Every agent points only at loopback fakes (the harness refuses anything else); instance
//! metadata stays off except in its own test, where its endpoint is a loopback fake.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::{Duration, SystemTime};

use support::agent::{self, AgentProcess, Response, Signal};
use support::appconfigdata::{FakeAppConfig, Fault, FaultScope, Operation, TEST_REGION};
use support::container_credentials::{ContainerAnswer, ContainerCall, FakeContainerCredentials};
use support::imds::FakeImds;
use support::sigv4::{encode_component, format_amz_date, ExpectedCredentials};
use support::sts::{FakeSts, StsAnswer};
use support::temp_dir::TempDir;
use support::wait_until;

/// Bound on waiting for a fake or the agent to reach a point; a guard against hanging only.
const PATIENCE: Duration = Duration::from_secs(10);
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/appconfig-reader";
/// What the container fake issues first when nothing is scripted (its numbered defaults).
const CONTAINER_KEY_0: (&str, &str, &str) = (
    "ASIAFAKECONTAINER000",
    "fake-container-secret-0",
    "fake-container-token-0+/=",
);
const CONTAINER_KEY_1: (&str, &str, &str) = (
    "ASIAFAKECONTAINER001",
    "fake-container-secret-1",
    "fake-container-token-1+/=",
);

// ----- helpers -----

/// A fake AppConfigData with `shop:prod:flags0` .. `flags{count - 1}` deployed, each with its
/// own body (see [`body_of`]).
fn fake_with_profiles(count: usize) -> FakeAppConfig {
    let fake = FakeAppConfig::start();
    for n in 0..count {
        let profile = format!("flags{n}");
        fake.deploy(
            "shop",
            "prod",
            &profile,
            body_of(n).as_bytes(),
            "application/json",
            Some("v1"),
        );
    }
    fake
}

fn body_of(profile: usize) -> String {
    format!("{{\"profile\":{profile}}}")
}

fn path_of(profile: usize) -> String {
    format!("/applications/shop/environments/prod/configurations/flags{profile}")
}

/// Variables pointing the agent at `fake`, with no credentials of their own.
fn vars_for(fake: &FakeAppConfig, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = vec![
        ("AWS_ENDPOINT_URL_APPCONFIGDATA".to_string(), fake.url()),
        ("AWS_REGION".to_string(), TEST_REGION.to_string()),
        ("POLL_TIMEOUT_MILLIS".to_string(), "8000".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    vars
}

fn expect(fake: &FakeAppConfig, (key, secret, token): (&str, &str, &str)) {
    fake.set_credentials(key, secret, Some(token));
}

/// Asserts a 200 with the body of `profile`, showing the agent's log otherwise.
fn assert_served(agent: &AgentProcess, response: &Response, profile: usize) {
    assert_eq!(
        (response.status, response.text()),
        (200, body_of(profile)),
        "agent log:\n{}",
        agent.stderr_text()
    );
}

/// Every call reached the fake correctly signed.
fn assert_all_signed(fake: &FakeAppConfig) {
    for call in fake.calls() {
        assert!(call.signature_ok, "{call:?}");
    }
}

/// `now + seconds` as RFC 3339 UTC with milliseconds, e.g. `2026-12-04T15:00:00.120Z`.
fn rfc3339_in(seconds: u64) -> String {
    let amz = format_amz_date(SystemTime::now() + Duration::from_secs(seconds));
    format!(
        "{}-{}-{}T{}:{}:{}.120Z",
        &amz[0..4],
        &amz[4..6],
        &amz[6..8],
        &amz[9..11],
        &amz[11..13],
        &amz[13..15]
    )
}

/// Stops the agent with SIGTERM and returns its complete log.
fn stop_and_read_log(mut agent: AgentProcess) -> String {
    agent.send_signal(Signal::Term);
    assert!(
        agent.wait_exit(PATIENCE).is_some(),
        "the agent did not stop; log:\n{}",
        agent.stderr_text()
    );
    agent.stderr_text()
}

// ----- each source signs the agent's calls -----

#[test]
fn container_credentials_from_a_full_uri_and_token_file_sign_the_agents_calls() {
    let fake = fake_with_profiles(1);
    expect(&fake, CONTAINER_KEY_0);
    let token = "e2e-container-authorization-token";
    let container = FakeContainerCredentials::start("/2023-06-01/credentials", Some(token));
    let dir = TempDir::new("container");
    let token_file = dir.write("token", &format!("{token}\n"));
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                "the-file-wins-over-this",
            ),
        ],
    ));

    assert_served(&agent, &agent.get(&path_of(0)), 0);
    assert_served(&agent, &agent.get(&path_of(0)), 0);

    assert_all_signed(&fake);
    assert_eq!(fake.start_session_calls(), 1);
    assert_eq!(
        container.calls(),
        [ContainerCall {
            method: "GET".into(),
            path: "/2023-06-01/credentials".into(),
            authorization: Some(token.into()),
        }]
    );
}

#[test]
fn a_profile_in_the_shared_credentials_file_named_by_aws_profile_signs_the_agents_calls() {
    let fake = fake_with_profiles(1);
    let profile = (
        "AKIAE2EDEVPROFILE",
        "dev/secret+key=",
        "dev-session-token==",
    );
    expect(&fake, profile);
    let dir = TempDir::new("profile");
    let credentials = dir.write(
        "credentials",
        "[default]\n\
         aws_access_key_id = AKIADEFAULTPROFILE\n\
         aws_secret_access_key = default-secret\n\
         \n\
         [e2e-dev]\n\
         aws_access_key_id = AKIAE2EDEVPROFILE\n\
         aws_secret_access_key = dev/secret+key=\n\
         aws_session_token = dev-session-token==\n",
    );
    let config = dir.write(
        "config",
        "[profile e2e-dev]\n\
         aws_access_key_id = AKIACONFIGFILE\n\
         aws_secret_access_key = config-secret\n",
    );
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", &credentials),
            ("AWS_CONFIG_FILE", &config),
            ("AWS_PROFILE", "e2e-dev"),
        ],
    ));

    assert_served(&agent, &agent.get(&path_of(0)), 0);

    assert_all_signed(&fake);
    assert_eq!(fake.calls().len(), 2);
}

#[test]
fn instance_metadata_on_a_loopback_endpoint_signs_the_agents_calls() {
    let fake = fake_with_profiles(1);
    let instance = ("ASIAE2EIMDSKEY", "imds/secret+key=", "imds-session-token==");
    expect(&fake, instance);
    let metadata = FakeImds::start("e2e-instance-role", instance.0, instance.1, instance.2);
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.endpoint()),
        ],
    ));

    assert_served(&agent, &agent.get(&path_of(0)), 0);

    assert_all_signed(&fake);
    assert_eq!(
        metadata.calls(),
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/e2e-instance-role",
        ]
    );
}

// ----- AssumeRole -----

/// Base keys for AssumeRole, and a fake STS that accepts only calls signed with them.
const BASE_KEYS: (&str, &str, &str) = ("AKIAE2EBASEKEY", "base/secret+key=", "base-token==");

fn sts_verifying_base_keys() -> FakeSts {
    FakeSts::start_verifying(
        ExpectedCredentials {
            access_key: BASE_KEYS.0.into(),
            secret_key: BASE_KEYS.1.into(),
            session_token: Some(BASE_KEYS.2.into()),
        },
        TEST_REGION,
    )
}

fn role_vars<'a>(sts: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", BASE_KEYS.0),
        ("AWS_SECRET_ACCESS_KEY", BASE_KEYS.1),
        ("AWS_SESSION_TOKEN", BASE_KEYS.2),
        ("AWS_ENDPOINT_URL_STS", sts),
        ("ROLE_ARN", ROLE_ARN),
    ];
    vars.extend_from_slice(extra);
    vars
}

#[test]
fn one_assume_role_serves_fifty_concurrent_requests_and_its_keys_sign_every_call() {
    const ENTRIES: usize = 5;
    const REQUESTS: usize = 50;
    let fake = fake_with_profiles(ENTRIES);
    // What the fake STS issues first when nothing is scripted.
    expect(
        &fake,
        (
            "ASIAFAKESTS00000",
            "fake-sts-secret-0&<>\"'",
            "fake-sts-token-0+/=",
        ),
    );
    let sts = sts_verifying_base_keys();
    let sts_url = sts.endpoint();
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &role_vars(
            &sts_url,
            &[
                ("ROLE_EXTERNAL_ID", "partner:42/x+y=z"),
                ("ROLE_SESSION_NAME", "e2e-session@agent"),
            ],
        ),
    ));
    // STS holds its answer until the first AssumeRole arrived, so the requests pile up behind
    // the one call instead of finding credentials already cached.
    sts.hold();

    let addr = agent.addr();
    let clients: Vec<_> = (0..REQUESTS)
        .map(|n| {
            std::thread::spawn(move || {
                let profile = n % ENTRIES;
                (profile, agent::request(addr, "GET", &path_of(profile), &[]))
            })
        })
        .collect();
    assert!(
        sts.wait_for_calls(1, PATIENCE),
        "no AssumeRole call arrived"
    );
    sts.release();
    for client in clients {
        let (profile, response) = client.join().unwrap();
        assert_served(&agent, &response.unwrap(), profile);
    }

    assert_eq!(sts.call_count(), 1);
    let call = &sts.calls()[0];
    assert_eq!(call.signature_error, None);
    assert_eq!(call.param("RoleArn"), Some(ROLE_ARN));
    assert_eq!(call.param("ExternalId"), Some("partner:42/x+y=z"));
    assert_eq!(call.param("RoleSessionName"), Some("e2e-session@agent"));
    assert_eq!(call.param("DurationSeconds"), None);
    assert_all_signed(&fake);
    assert_eq!(fake.start_session_calls(), ENTRIES);
}

#[test]
fn sts_access_denied_reaches_the_caller_as_403_with_code_and_message() {
    let fake = fake_with_profiles(1);
    let sts = sts_verifying_base_keys();
    let message = "User: arn:aws:sts::123456789012:assumed-role/app/i-1 is not authorized to \
                   perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/\
                   appconfig-reader";
    sts.push_answer(StsAnswer::access_denied(message));
    let sts_url = sts.endpoint();
    let agent = AgentProcess::start(&vars_for(&fake, &role_vars(&sts_url, &[])));

    let response = agent.get(&path_of(0));

    assert_eq!(
        (response.status, response.text()),
        (403, format!("AccessDenied: {message}")),
        "agent log:\n{}",
        agent.stderr_text()
    );
    assert_eq!(sts.calls()[0].signature_error, None);
    assert_eq!(fake.calls().len(), 0, "nothing reached AppConfigData");
}

// ----- expired credentials -----

#[test]
fn an_expired_token_answer_refetches_container_credentials_and_the_retry_succeeds() {
    let fake = fake_with_profiles(1);
    expect(&fake, CONTAINER_KEY_0);
    let (key, secret, token) = CONTAINER_KEY_1;
    fake.rotate_credentials_on_expiry(key, secret, Some(token));
    fake.inject_fault(
        FaultScope::StartConfigurationSession,
        Fault::ExpiredCredentials403,
        1,
    );
    let container = FakeContainerCredentials::start("/creds", None);
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url())],
    ));

    assert_served(&agent, &agent.get(&path_of(0)), 0);

    assert_eq!(container.call_count(), 2);
    let calls: Vec<(Operation, Option<u16>, bool)> = fake
        .calls()
        .iter()
        .map(|call| (call.operation, call.status, call.signature_ok))
        .collect();
    assert_eq!(
        calls,
        [
            (Operation::StartConfigurationSession, Some(403), true),
            (Operation::StartConfigurationSession, Some(201), true),
            (Operation::GetLatestConfiguration, Some(200), true),
        ]
    );
}

// ----- secrets -----

#[test]
fn no_planted_secret_reaches_the_log_at_trace_through_every_credential_path() {
    const ENTRIES: usize = 3;
    let mut planted: Vec<String> = Vec::new();
    let mut plant = |value: &str| {
        planted.push(value.to_string());
        value.to_string()
    };
    let container_token = plant("planted-container-authorization-token");
    let container_keys = (
        plant("ASIAPLANTEDCONTAINERKEY"),
        plant("planted/container+secret="),
        plant("planted-container-session-token+/="),
    );
    let assumed_keys = (
        plant("ASIAPLANTEDASSUMEDKEY"),
        plant("planted/assumed+secret="),
        plant("planted-assumed-session-token+/="),
    );
    let external_id = plant("planted-external-id-42");
    let bearer = plant("planted-bearer-access-token");

    // Container credentials inside the 5-minute lead and assumed ones inside the 10-minute
    // lead: every AppConfigData call refreshes both, with the same values each time.
    let container = FakeContainerCredentials::start("/creds", Some(&container_token));
    for _ in 0..200 {
        container.push_answer(ContainerAnswer::new(
            &container_keys.0,
            &container_keys.1,
            &container_keys.2,
            &rfc3339_in(120),
        ));
    }
    let sts = FakeSts::start_verifying(
        ExpectedCredentials {
            access_key: container_keys.0.clone(),
            secret_key: container_keys.1.clone(),
            session_token: Some(container_keys.2.clone()),
        },
        TEST_REGION,
    );
    sts.push_answer(StsAnswer::access_denied(
        "planted test: role not trusted yet",
    ));
    for _ in 0..200 {
        sts.push_answer(StsAnswer::credentials(
            &assumed_keys.0,
            &assumed_keys.1,
            &assumed_keys.2,
            &rfc3339_in(300),
        ));
    }
    let fake = fake_with_profiles(ENTRIES);
    fake.set_credentials(&assumed_keys.0, &assumed_keys.1, Some(&assumed_keys.2));
    fake.set_poll_interval(1);
    let dir = TempDir::new("planted");
    let token_file = dir.write("token", &container_token);
    let sts_url = sts.endpoint();
    let agent = AgentProcess::start(&vars_for(
        &fake,
        &[
            ("LOG_LEVEL", "trace"),
            ("POLL_INTERVAL_SECONDS", "1"),
            ("ACCESS_TOKEN", &bearer),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
            ("AWS_ENDPOINT_URL_STS", &sts_url),
            ("ROLE_ARN", ROLE_ARN),
            ("ROLE_EXTERNAL_ID", &external_id),
        ],
    ));
    let authorization = format!("Bearer {bearer}");
    let get = |profile: usize| {
        agent.request(
            "GET",
            &path_of(profile),
            &[("Authorization", authorization.as_str())],
        )
    };

    let wrong_bearer = agent.request(
        "GET",
        &path_of(0),
        &[("Authorization", "Bearer not-the-token")],
    );
    assert_eq!(wrong_bearer.status, 401, "{wrong_bearer}");
    let denied = get(0);
    assert_eq!(denied.status, 403, "{denied}");
    assert!(denied.text().starts_with("AccessDenied: "), "{denied}");
    assert_served(&agent, &get(1), 1);
    // Whichever session start comes next (this request's, or the timer's retry of flags0) gets
    // the 403 and is retried with credentials fetched again.
    fake.inject_fault(
        FaultScope::StartConfigurationSession,
        Fault::ExpiredCredentials403,
        1,
    );
    assert_served(&agent, &get(2), 2);
    // The timer refreshes every entry each second: wait for a few polls of each.
    let polled = wait_until(PATIENCE, || fake.get_latest_calls() >= 8);
    assert!(
        polled,
        "the agent did not refresh; log:\n{}",
        agent.stderr_text()
    );
    assert_served(&agent, &get(1), 1);
    let log = stop_and_read_log(agent);

    let tokens = fake.issued_tokens();
    assert!(!tokens.is_empty());
    planted.extend(tokens);
    assert!(container.call_count() >= 4, "{}", container.call_count());
    assert!(sts.call_count() >= 4, "{}", sts.call_count());
    assert!(
        fake.calls()
            .iter()
            .any(|call| call.fault == Some(Fault::ExpiredCredentials403)),
        "the injected 403 was never answered"
    );
    // The paths above did log, so the search below is not vacuous.
    for expected in [
        "listening on 127.0.0.1:",
        "credentials: fetching from container endpoint http://127.0.0.1:",
        "credentials: fetched from STS AssumeRole arn:aws:iam::123456789012:role/",
        "AccessDenied: planted test: role not trusted yet",
        "StartConfigurationSession: status 403",
        "GetLatestConfiguration: status 200",
        "TRACE",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
    // A secret percent-encoded (a configuration token in a URL) is still a secret.
    let encoded: Vec<String> = planted
        .iter()
        .map(|secret| encode_component(secret.as_bytes()))
        .collect();
    planted.extend(encoded);
    for secret in &planted {
        let leak = log.lines().find(|line| line.contains(secret.as_str()));
        assert_eq!(leak, None, "secret {secret:?} in the log");
    }
}
