//! The fake AppConfigData's injected faults, listener control and observation counters each do
//! what they claim.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fake_client::{
    encode_token, error_name, fake_with_shop, initial_token, next_token, poll, send_signed,
    send_signed_as, send_signed_on, start_body, start_session, token_problem,
};
use crate::support::agent::Connection;
use crate::support::appconfigdata::{Fault, FaultScope, Operation};
use crate::support::sigv4::ExpectedCredentials;
use crate::support::wait_until;

#[test]
fn front_end_faults_answer_their_status_and_leave_the_token_usable() {
    let cases = [
        (Fault::Status500, 500, "InternalServerException"),
        (Fault::Status503, 503, "ServiceUnavailableException"),
        (Fault::Throttle429, 429, "ThrottlingException"),
        (Fault::Forbidden403, 403, "AccessDeniedException"),
        (Fault::ExpiredCredentials403, 403, "ExpiredTokenException"),
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
fn expired_credentials_rotate_the_expected_credentials_once() {
    let fake = fake_with_shop();
    let old = fake.credentials();
    fake.rotate_credentials_on_expiry("ASIANEWKEY", "new/secret+", Some("new-token=="));
    let new = ExpectedCredentials {
        access_key: "ASIANEWKEY".into(),
        secret_key: "new/secret+".into(),
        session_token: Some("new-token==".into()),
    };
    fake.inject_fault(FaultScope::AnyOperation, Fault::ExpiredCredentials403, 1);
    let target = "/configurationsessions";
    let body = start_body("shop", "prod", "flags");

    let before = send_signed_as(&fake, &old, "POST", target, &body);
    let old_again = send_signed_as(&fake, &old, "POST", target, &body);
    let renewed = send_signed_as(&fake, &new, "POST", target, &body);

    assert_eq!(
        (before.status, error_name(&before)),
        (403, Some("ExpiredTokenException"))
    );
    assert_eq!(
        (old_again.status, error_name(&old_again)),
        (403, Some("UnrecognizedClientException"))
    );
    assert_eq!(renewed.status, 201, "{renewed}");
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
    fake.inject_fault(
        FaultScope::StartConfigurationSession,
        Fault::MalformedBody,
        1,
    );
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
    assert!(wait_until(Duration::from_secs(10), || fake.max_in_flight() == 1));
    assert_eq!(fake.calls()[0].status, None, "recorded as unanswered");

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
    let all_closed = wait_until(Duration::from_secs(5), || fake.open_connections() == 0);
    assert!(all_closed);
    assert_eq!(fake.max_open_connections(), 5);
    fake.reset_peaks();
    assert_eq!((fake.max_open_connections(), fake.max_in_flight()), (0, 0));
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

#[test]
fn a_response_delay_holds_each_answer_back() {
    let fake = fake_with_shop();
    let delay = Duration::from_millis(200);
    fake.set_response_delay(delay);
    let started = Instant::now();
    assert_eq!(start_session(&fake, "shop", "prod", "flags").status, 201);
    // A lower bound only: a slow machine makes it longer, never shorter.
    assert!(started.elapsed() >= delay);
}
