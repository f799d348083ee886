//! The credential chain of wire.md §4 and AssumeRole of wire.md §3 (issue 4), driven through
//! `credentials::build_source_with_clock` against loopback fakes: which source is chosen,
//! container tokens, instance metadata, refresh before expiry with an injected clock, one
//! AssumeRole for many callers, STS errors, and no secret in the log at trace.
//!
//! Every test sets the instance metadata endpoint to loopback (and disables it unless the test
//! is about it), and never sets `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, whose host is fixed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use appconfig_lite::credentials::{
    build_source_with_clock, Clock, CredentialSettings, CredentialSource, Credentials,
    CredentialsError, HttpContext, RoleSettings, SystemClock,
};
use support::container_credentials::{ContainerAnswer, FakeContainerCredentials};
use support::imds::FakeImds;
use support::sigv4::ExpectedCredentials;
use support::sts::{FakeSts, StsAnswer};
use support::temp_dir::TempDir;

/// 2099-12-31T12:00:00Z, the expiry the fakes use by default.
const EXPIRY_2099: u64 = 4_102_401_600;
/// Bound on waiting for a fake or a thread to reach a point; a guard against hanging.
const PATIENCE: Duration = Duration::from_secs(20);
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/appconfig-reader";

// ----- log capture -----

static LOG_LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        LOG_LINES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    fn flush(&self) {}
}

/// Every test starts here, so whatever any test logs, at any level, is captured.
fn capture_logs() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_boxed_logger(Box::new(CaptureLogger)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn log_lines() -> Vec<String> {
    LOG_LINES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

// ----- clock -----

/// A wall clock the test sets, which also notes which threads have read it.
struct TestClock {
    now: Mutex<SystemTime>,
    readers: Mutex<HashSet<ThreadId>>,
    read: Condvar,
}

impl TestClock {
    /// A clock `seconds_before` the default 2099 expiry.
    fn before_expiry(seconds_before: u64) -> Arc<TestClock> {
        let clock = TestClock {
            now: Mutex::new(UNIX_EPOCH),
            readers: Mutex::new(HashSet::new()),
            read: Condvar::new(),
        };
        clock.set_before_expiry(seconds_before);
        Arc::new(clock)
    }

    fn set_before_expiry(&self, seconds_before: u64) {
        *self.now.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(EXPIRY_2099 - seconds_before);
    }

    fn set_after_expiry(&self, seconds_after: u64) {
        *self.now.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(EXPIRY_2099 + seconds_after);
    }

    /// Waits until `count` different threads have read the clock.
    fn wait_for_readers(&self, count: usize) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let mut readers = self.readers.lock().unwrap();
        while readers.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            readers = self.read.wait_timeout(readers, left).unwrap().0;
        }
        true
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.readers
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        self.read.notify_all();
        *self.now.lock().unwrap()
    }
}

// ----- helpers -----

/// Variables for one test. Instance metadata points at a closed loopback port and is off,
/// unless the pairs say otherwise, so nothing can reach a real metadata address.
fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = [
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in pairs {
        map.insert(name.to_string(), value.to_string());
    }
    map
}

fn settings(pairs: &[(&str, &str)]) -> CredentialSettings {
    CredentialSettings::from_vars(&vars(pairs)).unwrap()
}

fn http(sts_endpoint: &str, is_lambda: bool) -> HttpContext {
    let agent = ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .new_agent();
    HttpContext {
        agent,
        region: "eu-west-1".into(),
        sts_endpoint: sts_endpoint.into(),
        timeout: Duration::from_secs(10),
        is_lambda,
    }
}

/// An STS endpoint nothing listens on, for tests without a role.
fn no_sts() -> HttpContext {
    http("http://127.0.0.1:9", false)
}

fn build(
    settings: &CredentialSettings,
    role: Option<&RoleSettings>,
    http: &HttpContext,
    clock: Arc<dyn Clock>,
) -> Arc<dyn CredentialSource> {
    build_source_with_clock(settings, role, http, clock).unwrap()
}

fn role(external_id: Option<&str>, session_name: Option<&str>) -> RoleSettings {
    RoleSettings {
        arn: ROLE_ARN.into(),
        external_id: external_id.map(str::to_string),
        session_name: session_name.map(str::to_string),
    }
}

fn key_of(result: Result<Credentials, CredentialsError>) -> String {
    match result {
        Ok(credentials) => credentials.access_key_id().to_string(),
        Err(error) => format!("error: {error}"),
    }
}

/// A source with only the container endpoint of `container`, reading the time from `clock`.
fn container_source(
    container: &FakeContainerCredentials,
    clock: Arc<dyn Clock>,
) -> Arc<dyn CredentialSource> {
    let settings = settings(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url())]);
    build(&settings, None, &no_sts(), clock)
}

/// A source assuming [`ROLE_ARN`] (no external id, the default session name, outside Lambda)
/// through `sts`, with `base` as the base credentials.
fn assumed_role_source(
    base: &CredentialSettings,
    sts: &FakeSts,
    clock: Arc<dyn Clock>,
) -> Arc<dyn CredentialSource> {
    build(
        base,
        Some(&role(None, None)),
        &http(&sts.endpoint(), false),
        clock,
    )
}

/// Sets `clock` to each step, `(seconds before the first expiry, key expected, calls so far)`,
/// and checks the key `source` gives and the calls `calls_so_far` counts.
fn assert_refresh_steps(
    clock: &TestClock,
    source: &Arc<dyn CredentialSource>,
    steps: &[(u64, &str, usize)],
    calls_so_far: impl Fn() -> usize,
) {
    for &(before, expected, calls) in steps {
        clock.set_before_expiry(before);
        assert_eq!(
            key_of(source.credentials()),
            expected,
            "{before} s before expiry"
        );
        assert_eq!(calls_so_far(), calls, "{before} s before expiry");
    }
}

// ----- which source is chosen -----

#[test]
fn environment_keys_win_over_every_other_source() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    let metadata = FakeImds::start("role", "ASIAIMDS", "imds-secret", "imds-token");
    let home = TempDir::new("env-wins");
    home.write(
        "credentials",
        "[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n",
    );
    let settings = settings(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            &home.0.join("credentials").to_string_lossy(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.endpoint()),
    ]);

    let source = build(&settings, None, &no_sts(), Arc::new(SystemClock));
    let credentials = source.credentials().unwrap();

    assert_eq!(credentials.access_key_id(), "AKIAENVIRONMENT");
    assert_eq!(credentials.secret_access_key(), "env-secret");
    assert_eq!(credentials.session_token(), Some("env-token"));
    assert_eq!(container.call_count(), 0);
    assert_eq!(metadata.call_count(), 0);
}

#[test]
fn partial_environment_keys_are_rejected_naming_both_variables() {
    capture_logs();
    for pairs in [
        [("AWS_ACCESS_KEY_ID", "AKIAONLYKEY")],
        [("AWS_SECRET_ACCESS_KEY", "only-secret")],
    ] {
        let error = CredentialSettings::from_vars(&vars(&pairs)).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, CredentialsError::Incomplete(_)),
            "{error:?}"
        );
        assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
        assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
        assert!(!message.contains("only-secret") && !message.contains("AKIAONLYKEY"));
    }
}

#[test]
fn container_endpoint_is_used_when_there_are_no_environment_keys() {
    capture_logs();
    // The SnapStart shape: a loopback FULL_URI and a token variable, inside Lambda.
    let container =
        FakeContainerCredentials::start("/2021-04-23/credentials", Some("snapstart-token"));
    container.push_answer(ContainerAnswer::new(
        "ASIACONTAINER",
        "container-secret",
        "container-token+/=",
        "2099-12-31T12:00:00.123456Z",
    ));
    let metadata = FakeImds::start("role", "ASIAIMDS", "imds-secret", "imds-token");
    let home = TempDir::new("container-wins");
    home.write(
        "credentials",
        "[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n",
    );
    let settings = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "snapstart-token"),
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("HOME", &home.0.to_string_lossy()),
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.endpoint()),
    ]);

    let source = build(
        &settings,
        None,
        &http("http://127.0.0.1:9", true),
        Arc::new(SystemClock),
    );
    let credentials = source.credentials().unwrap();

    assert_eq!(credentials.access_key_id(), "ASIACONTAINER");
    assert_eq!(credentials.secret_access_key(), "container-secret");
    assert_eq!(credentials.session_token(), Some("container-token+/="));
    assert_eq!(
        credentials.expiry(),
        Some(UNIX_EPOCH + Duration::new(EXPIRY_2099, 123_456_000))
    );
    let calls = container.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].authorization.as_deref(), Some("snapstart-token"));
    assert_eq!(metadata.call_count(), 0);
}

#[test]
fn profile_files_are_used_when_there_is_no_container_endpoint() {
    capture_logs();
    let metadata = FakeImds::start("role", "ASIAIMDS", "imds-secret", "imds-token");
    let home = TempDir::new("profile-wins");
    let credentials_file = home.write(
        "credentials",
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = default-secret\n\
         [dev]\naws_access_key_id = AKIADEVCREDENTIALS\naws_secret_access_key = dev-secret\n\
         aws_session_token = dev-token\n",
    );
    let config_file = home.write(
        "config",
        "[profile dev]\naws_access_key_id = AKIADEVCONFIG\naws_secret_access_key = other\n\
         [profile only-in-config]\nregion = eu-west-1\naws_access_key_id = AKIACONFIGONLY\n\
         aws_secret_access_key = config-secret\n",
    );
    let base = [
        ("AWS_SHARED_CREDENTIALS_FILE", credentials_file.as_str()),
        ("AWS_CONFIG_FILE", config_file.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "false"),
    ];
    let endpoint = metadata.endpoint();
    let cases = [
        (None, "AKIADEFAULT"),
        (Some("dev"), "AKIADEVCREDENTIALS"),
        (Some("only-in-config"), "AKIACONFIGONLY"),
    ];

    for (profile, expected) in cases {
        let mut pairs = base.to_vec();
        pairs.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint));
        if let Some(profile) = profile {
            pairs.push(("AWS_PROFILE", profile));
        }
        let source = build(&settings(&pairs), None, &no_sts(), Arc::new(SystemClock));
        assert_eq!(key_of(source.credentials()), expected, "{profile:?}");
    }
    assert_eq!(metadata.call_count(), 0);

    let missing = build_source_with_clock(
        &settings(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &credentials_file),
            ("AWS_PROFILE", "nobody"),
        ]),
        None,
        &no_sts(),
        Arc::new(SystemClock),
    );
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("\"nobody\""), "{message}");
}

#[test]
fn instance_metadata_is_the_last_resort_over_imdsv2() {
    capture_logs();
    let metadata = FakeImds::start("ec2-role", "ASIAIMDS", "imds-secret", "imds-token");
    let settings = settings(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.endpoint()),
    ]);

    let source = build(&settings, None, &no_sts(), Arc::new(SystemClock));
    let credentials = source.credentials().unwrap();

    assert_eq!(credentials.access_key_id(), "ASIAIMDS");
    assert_eq!(credentials.secret_access_key(), "imds-secret");
    assert_eq!(credentials.session_token(), Some("imds-token"));
    assert_eq!(
        metadata.calls(),
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/ec2-role",
        ]
    );
    // Cached: a second use makes no call.
    source.credentials().unwrap();
    assert_eq!(metadata.call_count(), 3);
}

#[test]
fn instance_metadata_is_never_tried_when_disabled_or_in_lambda() {
    capture_logs();
    let metadata = FakeImds::start("ec2-role", "ASIAIMDS", "imds-secret", "imds-token");
    let endpoint = metadata.endpoint();
    let cases = [
        (vec![("AWS_EC2_METADATA_DISABLED", "TRUE")], false),
        (
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false"),
                ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ],
            false,
        ),
        (vec![("AWS_EC2_METADATA_DISABLED", "false")], true),
    ];
    for (mut pairs, is_lambda) in cases {
        pairs.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint));
        let result = build_source_with_clock(
            &settings(&pairs),
            None,
            &http("http://127.0.0.1:9", is_lambda),
            Arc::new(SystemClock),
        );
        assert!(
            matches!(result, Err(CredentialsError::NotFound(_))),
            "{pairs:?}"
        );
    }
    assert_eq!(metadata.call_count(), 0);
}

// ----- container endpoint details -----

#[test]
fn container_token_file_beats_the_variable_and_is_read_on_every_fetch() {
    capture_logs();
    let container = FakeContainerCredentials::start("/v1/credentials", Some("file-token-1"));
    let dir = TempDir::new("token-file");
    let token_file = dir.write("token", "file-token-1\n");
    let settings = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "variable-token"),
    ]);
    let source = build(&settings, None, &no_sts(), Arc::new(SystemClock));
    assert_eq!(key_of(source.credentials()), "ASIAFAKECONTAINER000");

    // The token is rotated on disk (EKS does this); the next fetch sends the new one.
    dir.write("token", "file-token-2");
    container.expect_authorization(Some("file-token-2"));
    source.invalidate();
    assert_eq!(key_of(source.credentials()), "ASIAFAKECONTAINER001");

    let sent: Vec<_> = container
        .calls()
        .into_iter()
        .map(|c| c.authorization)
        .collect();
    assert_eq!(
        sent,
        [
            Some("file-token-1".to_string()),
            Some("file-token-2".to_string())
        ]
    );
}

#[test]
fn a_plain_http_container_host_that_is_not_allowed_is_refused_at_build() {
    capture_logs();
    // Nothing is sent: the build fails and the source is never used.
    for uri in [
        "http://192.0.2.10/creds",
        "http://169.254.169.254/creds",
        "http://example.com/x",
    ] {
        let result = build_source_with_clock(
            &settings(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)]),
            None,
            &no_sts(),
            Arc::new(SystemClock),
        );
        let Err(CredentialsError::Invalid(message)) = result else {
            panic!("{uri} was not refused");
        };
        assert!(
            message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            "{message}"
        );
    }
}

#[test]
fn a_container_token_with_a_line_break_is_refused_before_any_request() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    let settings = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "abc\r\nX-Injected: yes",
        ),
    ]);
    let source = build(&settings, None, &no_sts(), Arc::new(SystemClock));

    let error = source.credentials().unwrap_err();

    assert!(matches!(error, CredentialsError::Invalid(_)), "{error:?}");
    assert!(error
        .to_string()
        .contains("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
    assert_eq!(container.call_count(), 0);
}

#[test]
fn a_rejected_container_token_is_an_error_naming_the_status() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", Some("right-token"));
    let settings = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token"),
    ]);
    let source = build(&settings, None, &no_sts(), Arc::new(SystemClock));

    let message = source.credentials().unwrap_err().to_string();

    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("wrong-token"), "{message}");
}

// ----- refresh -----

#[test]
fn container_credentials_near_expiry_are_refreshed_before_use() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    container.push_answer(ContainerAnswer::new(
        "ASIAFIRST",
        "s1",
        "t1",
        "2099-12-31T12:00:00.500Z",
    ));
    // 14:00 at +01:00 is 13:00 UTC, an hour after the first.
    container.push_answer(ContainerAnswer::new(
        "ASIASECOND",
        "s2",
        "t2",
        "2099-12-31T14:00:00+01:00",
    ));
    let clock = TestClock::before_expiry(3600);
    let source = container_source(&container, clock.clone());

    // (seconds before the first expiry, key expected, calls so far)
    let steps = [
        (3600, "ASIAFIRST", 1),
        (301, "ASIAFIRST", 1),
        (299, "ASIASECOND", 2),
        (0, "ASIASECOND", 2),
    ];
    assert_refresh_steps(&clock, &source, &steps, || container.call_count());
}

#[test]
fn credentials_are_fetched_again_after_a_long_gap() {
    capture_logs();
    // A thaw: the process slept for days; the wall clock moved on, so the cached credentials
    // are seen as expired on first use.
    let container = FakeContainerCredentials::start("/creds", None);
    container.push_answer(ContainerAnswer::new(
        "ASIABEFORE",
        "s1",
        "t1",
        "2099-12-31T12:00:00Z",
    ));
    container.push_answer(ContainerAnswer::new(
        "ASIAAFTER",
        "s2",
        "t2",
        "2100-01-09T12:00:00Z",
    ));
    let clock = TestClock::before_expiry(3600);
    let source = container_source(&container, clock.clone());
    assert_eq!(key_of(source.credentials()), "ASIABEFORE");

    clock.set_after_expiry(5 * 86_400);

    assert_eq!(key_of(source.credentials()), "ASIAAFTER");
    assert_eq!(container.call_count(), 2);
}

#[test]
fn invalidate_makes_the_next_use_fetch_again() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    let source = container_source(&container, TestClock::before_expiry(3600));
    assert_eq!(key_of(source.credentials()), "ASIAFAKECONTAINER000");
    assert_eq!(key_of(source.credentials()), "ASIAFAKECONTAINER000");

    // What the upstream client does on 403 ExpiredTokenException.
    source.invalidate();

    assert_eq!(key_of(source.credentials()), "ASIAFAKECONTAINER001");
    assert_eq!(container.call_count(), 2);
}

// ----- AssumeRole -----

fn environment_base() -> CredentialSettings {
    settings(&[
        ("AWS_ACCESS_KEY_ID", "AKIABASEKEY"),
        ("AWS_SECRET_ACCESS_KEY", "base-secret"),
        ("AWS_SESSION_TOKEN", "base-token"),
    ])
}

/// A fake STS that accepts only calls signed for `sts` in eu-west-1 (the region of [`http`])
/// with the keys of [`environment_base`], checked by the shared SigV4 verifier.
fn sts_verifying_the_base_keys() -> FakeSts {
    FakeSts::start_verifying(
        ExpectedCredentials {
            access_key: "AKIABASEKEY".into(),
            secret_key: "base-secret".into(),
            session_token: Some("base-token".into()),
        },
        "eu-west-1",
    )
}

#[test]
fn assume_role_sends_arn_session_name_and_external_id_signed_by_the_base_keys() {
    capture_logs();
    let sts = sts_verifying_the_base_keys();
    let role = role(Some("external id/with+odd=chars"), Some("my-session@app"));
    let source = build(
        &environment_base(),
        Some(&role),
        &http(&sts.endpoint(), false),
        Arc::new(SystemClock),
    );

    let credentials = source.credentials().unwrap();

    assert_eq!(credentials.access_key_id(), "ASIAFAKESTS00000");
    assert_eq!(credentials.secret_access_key(), "fake-sts-secret-0&<>\"'");
    assert_eq!(credentials.session_token(), Some("fake-sts-token-0+/="));
    assert_eq!(
        credentials.expiry(),
        Some(UNIX_EPOCH + Duration::new(EXPIRY_2099, 250_000_000))
    );
    let calls = sts.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].signature_error, None);
    let form: Vec<(&str, &str)> = calls[0]
        .form
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        form,
        [
            ("Action", "AssumeRole"),
            ("Version", "2011-06-15"),
            ("RoleArn", ROLE_ARN),
            ("RoleSessionName", "my-session@app"),
            ("ExternalId", "external id/with+odd=chars"),
        ]
    );
}

#[test]
fn sts_refuses_assume_role_signed_with_another_secret_or_session_token() {
    capture_logs();
    let cases = [
        (
            [
                ("AWS_ACCESS_KEY_ID", "AKIABASEKEY"),
                ("AWS_SECRET_ACCESS_KEY", "not-the-base-secret"),
                ("AWS_SESSION_TOKEN", "base-token"),
            ],
            "SignatureDoesNotMatch",
            "does not match",
        ),
        (
            [
                ("AWS_ACCESS_KEY_ID", "AKIABASEKEY"),
                ("AWS_SECRET_ACCESS_KEY", "base-secret"),
                ("AWS_SESSION_TOKEN", "another-token"),
            ],
            "InvalidClientTokenId",
            "not the expected token",
        ),
    ];
    for (pairs, code, reason) in cases {
        let sts = sts_verifying_the_base_keys();
        let source = assumed_role_source(&settings(&pairs), &sts, Arc::new(SystemClock));

        let error = source.credentials().unwrap_err();

        let CredentialsError::AssumeRole {
            code: sent,
            message,
        } = &error
        else {
            panic!("expected an STS error, got {error:?}");
        };
        assert_eq!(sent, code);
        assert!(!message.contains("base-token"), "{message}");
        let refused = sts.calls()[0].signature_error.clone().unwrap_or_default();
        assert!(refused.contains(reason), "{refused}");
    }
}

#[test]
fn assume_role_in_lambda_asks_for_one_hour_under_a_default_session_name() {
    capture_logs();
    let sts = sts_verifying_the_base_keys();
    let role = role(None, None);
    let source = build(
        &environment_base(),
        Some(&role),
        &http(&sts.endpoint(), true),
        Arc::new(SystemClock),
    );

    source.credentials().unwrap();

    let call = &sts.calls()[0];
    assert_eq!(call.param("DurationSeconds"), Some("3600"));
    assert_eq!(call.param("ExternalId"), None);
    let name = call.param("RoleSessionName").unwrap();
    let digits = name.strip_prefix("appconfig-lite-").unwrap();
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
}

#[test]
fn assume_role_is_called_once_for_many_concurrent_requests() {
    capture_logs();
    const CALLERS: usize = 16;
    let sts = sts_verifying_the_base_keys();
    sts.hold();
    let clock = TestClock::before_expiry(3600);
    let source = assumed_role_source(&environment_base(), &sts, clock.clone());

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let source = Arc::clone(&source);
            std::thread::spawn(move || key_of(source.credentials()))
        })
        .collect();
    // Every caller is inside `credentials()` (each reads the clock on entry) while the one
    // STS call is held open; only then does STS answer.
    assert!(
        sts.wait_for_calls(1, PATIENCE),
        "no AssumeRole call arrived"
    );
    assert!(
        clock.wait_for_readers(CALLERS),
        "not every caller reached the source"
    );
    sts.release();
    let keys: Vec<String> = callers.into_iter().map(|c| c.join().unwrap()).collect();

    assert_eq!(keys, vec!["ASIAFAKESTS00000".to_string(); CALLERS]);
    assert_eq!(sts.call_count(), 1);
}

#[test]
fn sts_access_denied_reaches_the_caller_with_code_and_message() {
    capture_logs();
    let sts = sts_verifying_the_base_keys();
    let message = "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: \
                   sts:AssumeRole on resource: arn:aws:iam::123456789012:role/appconfig-reader";
    sts.push_answer(StsAnswer::access_denied(message));
    let source = assumed_role_source(&environment_base(), &sts, Arc::new(SystemClock));

    let error = source.credentials().unwrap_err();

    assert_eq!(
        error,
        CredentialsError::AssumeRole {
            code: "AccessDenied".into(),
            message: message.into()
        }
    );
    assert_eq!(error.to_string(), format!("AccessDenied: {message}"));
}

#[test]
fn assumed_credentials_are_refreshed_ten_minutes_before_expiry() {
    capture_logs();
    let sts = sts_verifying_the_base_keys();
    sts.push_answer(StsAnswer::credentials(
        "ASIAROLEFIRST",
        "s",
        "t",
        "2099-12-31T12:00:00Z",
    ));
    sts.push_answer(StsAnswer::credentials(
        "ASIAROLESECOND",
        "s",
        "t",
        "2099-12-31T13:00:00.9Z",
    ));
    let clock = TestClock::before_expiry(3600);
    let source = assumed_role_source(&environment_base(), &sts, clock.clone());

    let steps = [
        (3600, "ASIAROLEFIRST", 1),
        (601, "ASIAROLEFIRST", 1),
        (599, "ASIAROLESECOND", 2),
        (0, "ASIAROLESECOND", 2),
    ];
    assert_refresh_steps(&clock, &source, &steps, || sts.call_count());
}

#[test]
fn sts_answers_in_every_element_order_are_understood() {
    capture_logs();
    let sts = sts_verifying_the_base_keys();
    let source = assumed_role_source(&environment_base(), &sts, Arc::new(SystemClock));

    // The fake rotates through three layouts; each must give the same fields.
    for n in 0..3 {
        let credentials = source.credentials().unwrap();
        assert_eq!(credentials.access_key_id(), format!("ASIAFAKESTS{n:05}"));
        assert_eq!(
            credentials.secret_access_key(),
            format!("fake-sts-secret-{n}&<>\"'")
        );
        assert_eq!(
            credentials.session_token(),
            Some(format!("fake-sts-token-{n}+/=").as_str())
        );
        source.invalidate();
    }
    assert_eq!(sts.call_count(), 3);
}

#[test]
fn assume_role_uses_chain_credentials_and_refetches_them_when_sts_says_expired() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    let sts = FakeSts::start();
    sts.push_answer(StsAnswer::error(
        403,
        "ExpiredToken",
        "The security token included in the request is expired",
    ));
    let settings = settings(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url())]);
    let source = assumed_role_source(&settings, &sts, Arc::new(SystemClock));

    assert_eq!(key_of(source.credentials()), "ASIAFAKESTS00000");

    let signers: Vec<String> = sts
        .calls()
        .iter()
        .map(|call| {
            let authorization = call.header("authorization").unwrap_or_default();
            let credential = authorization
                .split("Credential=")
                .nth(1)
                .unwrap_or_default();
            credential.split('/').next().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(signers, ["ASIAFAKECONTAINER000", "ASIAFAKECONTAINER001"]);
    assert_eq!(container.call_count(), 2);
}

#[test]
fn invalidating_an_assumed_role_refetches_the_base_credentials_too() {
    capture_logs();
    let container = FakeContainerCredentials::start("/creds", None);
    let sts = FakeSts::start();
    let settings = settings(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url())]);
    let source = assumed_role_source(&settings, &sts, Arc::new(SystemClock));
    source.credentials().unwrap();

    source.invalidate();
    source.credentials().unwrap();

    assert_eq!(sts.call_count(), 2);
    assert_eq!(container.call_count(), 2);
}

#[test]
fn an_invalid_session_name_is_refused_at_build() {
    capture_logs();
    let role = role(None, Some("has spaces"));
    let result = build_source_with_clock(
        &environment_base(),
        Some(&role),
        &no_sts(),
        Arc::new(SystemClock),
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("ROLE_SESSION_NAME"), "{message}");
}

// ----- secrets -----

#[test]
fn no_planted_secret_reaches_the_log_at_trace() {
    capture_logs();
    let mut planted: Vec<String> = Vec::new();
    let mut plant = |value: &str| {
        planted.push(value.to_string());
        value.to_string()
    };

    // Environment keys, assumed through STS with an external id; then STS refusing.
    let env_key = plant("AKIAPLANTEDENVKEY");
    let env_secret = plant("planted-env-secret");
    let env_token = plant("planted-env-session-token");
    let external_id = plant("planted-external-id");
    let sts = FakeSts::start();
    sts.push_answer(StsAnswer::credentials(
        &plant("ASIAPLANTEDSTSKEY"),
        &plant("planted-sts-secret"),
        &plant("planted-sts-session-token"),
        "2099-12-31T12:00:00Z",
    ));
    sts.push_answer(StsAnswer::access_denied("denied for this test"));
    sts.push_answer(StsAnswer::access_denied("denied again"));
    let environment = settings(&[
        ("AWS_ACCESS_KEY_ID", &env_key),
        ("AWS_SECRET_ACCESS_KEY", &env_secret),
        ("AWS_SESSION_TOKEN", &env_token),
    ]);
    let assumed = role(Some(&external_id), None);
    let clock = TestClock::before_expiry(3600);
    let source = build(
        &environment,
        Some(&assumed),
        &http(&sts.endpoint(), false),
        clock.clone(),
    );
    source.credentials().unwrap();
    clock.set_before_expiry(60);
    source.credentials().unwrap(); // refresh fails, old credentials kept and a warning logged
    clock.set_after_expiry(1);
    source.credentials().unwrap_err();

    // The container endpoint with a token file, with a token variable, and refusing a token.
    let file_token = plant("planted-container-file-token");
    let variable_token = plant("planted-container-variable-token");
    let container = FakeContainerCredentials::start("/creds", Some(&file_token));
    container.push_answer(ContainerAnswer::new(
        &plant("ASIAPLANTEDCONTAINERKEY"),
        &plant("planted-container-secret"),
        &plant("planted-container-session-token"),
        "2099-12-31T12:00:00Z",
    ));
    let dir = TempDir::new("planted");
    let token_file = dir.write("token", &file_token);
    let with_file = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", &variable_token),
    ]);
    build(&with_file, None, &no_sts(), Arc::new(SystemClock))
        .credentials()
        .unwrap();
    let with_variable = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", &variable_token),
    ]);
    build(&with_variable, None, &no_sts(), Arc::new(SystemClock))
        .credentials()
        .unwrap_err();
    let broken_token = format!("{}\r\nX: y", plant("planted-broken-token"));
    let with_broken = settings(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container.url()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", &broken_token),
    ]);
    build(&with_broken, None, &no_sts(), Arc::new(SystemClock))
        .credentials()
        .unwrap_err();

    // A profile, then instance metadata.
    let profile_text = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
        plant("AKIAPLANTEDPROFILEKEY"),
        plant("planted-profile-secret"),
        plant("planted-profile-session-token"),
    );
    let profile_file = dir.write("credentials", &profile_text);
    let profile = settings(&[("AWS_SHARED_CREDENTIALS_FILE", &profile_file)]);
    let profile_source = build(&profile, None, &no_sts(), Arc::new(SystemClock));
    profile_source.credentials().unwrap();
    profile_source.invalidate();
    profile_source.credentials().unwrap();

    let metadata = FakeImds::start(
        "ec2-role",
        &plant("ASIAPLANTEDIMDSKEY"),
        &plant("planted-imds-secret"),
        &plant("planted-imds-session-token"),
    );
    plant(&metadata.session_token);
    let imds = settings(&[
        ("AWS_EC2_METADATA_DISABLED", "false"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &metadata.endpoint()),
    ]);
    build(&imds, None, &no_sts(), Arc::new(SystemClock))
        .credentials()
        .unwrap();
    // Debug output of the settings themselves (what `settings` logs at debug).
    log::debug!("effective credential settings: {environment:?} {with_file:?} {imds:?}");

    let lines = log_lines();
    // The paths above did log (so the search below is not vacuous).
    for expected in [
        "using the container endpoint",
        "assuming role",
        "fetched from STS AssumeRole",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "no log line with {expected:?}"
        );
    }
    for line in &lines {
        for secret in &planted {
            assert!(
                !line.contains(secret.as_str()),
                "secret {secret:?} in log line {line:?}"
            );
        }
    }
}
