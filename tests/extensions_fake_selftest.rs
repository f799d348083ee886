//! Proves the fake Lambda Extensions API (tests/support/extensions.rs) speaks wire.md §1, so the
//! Lambda lifecycle tests can trust what it answers and records.
//!
//! Drives the fake with a raw keep-alive HTTP/1.1 client over loopback, and once with ureq (the
//! agent's own client); it talks to no agent and no other fake.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step in a test should fail it loudly"
)]

mod support;

use support::extensions;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use extensions::{
    CallKind, FakeExtensionsApi, NextEventFailure, RegisterBodyStyle, BASE_PATH, IDENTIFIER,
};

/// Generous upper bound for waits that normally end in microseconds; never a sleep.
const BOUND: Duration = Duration::from_secs(10);
const NAME: &str = "appconfig-lite";
const REGISTER_BODY: &str = r#"{"events":["INVOKE","SHUTDOWN"]}"#;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name));
        found.next().map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("reply body is JSON")
    }

    fn error_type(&self) -> String {
        self.json()["errorType"]
            .as_str()
            .expect("errorType is a string")
            .to_owned()
    }
}

/// A raw HTTP/1.1 client keeping one connection open across requests.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(fake: &FakeExtensionsApi) -> Client {
        let stream = TcpStream::connect(fake.runtime_api()).expect("connect to the fake");
        // A fake that wrongly holds an answer back fails the test instead of hanging it.
        stream.set_read_timeout(Some(BOUND)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut request = format!("{method} {BASE_PATH}{path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();

        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let reply = Reply {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = reply.header("Content-Length").unwrap().parse().unwrap();
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Reply {
            body: String::from_utf8(body).unwrap(),
            ..reply
        }
    }

    fn register(&mut self) -> Reply {
        self.send(
            "POST",
            "/register",
            &[("Lambda-Extension-Name", NAME)],
            REGISTER_BODY,
        )
    }

    fn next(&mut self) -> Reply {
        self.send(
            "GET",
            "/event/next",
            &[("Lambda-Extension-Identifier", IDENTIFIER)],
            "",
        )
    }
}

#[test]
fn register_answers_an_identifier_and_the_function_details() {
    let fake = FakeExtensionsApi::start();
    fake.expect_name(NAME);
    let mut client = Client::connect(&fake);

    let headers = [
        ("Lambda-Extension-Name", NAME),
        ("Lambda-Extension-Accept-Feature", "accountId"),
    ];
    let reply = client.send("POST", "/register", &headers, REGISTER_BODY);

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("Lambda-Extension-Identifier"),
        Some(IDENTIFIER)
    );
    let body = reply.json();
    assert_eq!(body["functionName"], "demo");
    assert_eq!(body["functionVersion"], "$LATEST");
    assert_eq!(body["handler"], "index.handler");
    assert_eq!(body["accountId"], "123456789012");
    assert!(!reply.body.ends_with('\n'));
    let registration = fake.registered().expect("registration recorded");
    assert_eq!(registration.name, NAME);
    assert_eq!(registration.events, ["INVOKE", "SHUTDOWN"]);
    assert_eq!(registration.accept_feature.as_deref(), Some("accountId"));
}

#[test]
fn register_body_can_be_empty_or_end_in_a_newline() {
    let fake = FakeExtensionsApi::start();
    fake.register_body_style(RegisterBodyStyle::Empty);
    let reply = Client::connect(&fake).register();
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    assert_eq!(
        reply.header("Lambda-Extension-Identifier"),
        Some(IDENTIFIER)
    );

    let fake = FakeExtensionsApi::start();
    fake.register_body_style(RegisterBodyStyle::TrailingNewline);
    let reply = Client::connect(&fake).register();
    assert_eq!(reply.status, 200);
    assert!(reply.body.ends_with("}\n"), "body was {:?}", reply.body);
    assert_eq!(reply.json()["functionName"], "demo");
    assert!(reply.json().get("accountId").is_none());
}

#[test]
fn register_refuses_bad_names_events_and_a_second_registration() {
    let fake = FakeExtensionsApi::start();
    fake.expect_name(NAME);
    let mut client = Client::connect(&fake);

    let register = |client: &mut Client, name: &str, body: &str| {
        client.send(
            "POST",
            "/register",
            &[("Lambda-Extension-Name", name)],
            body,
        )
    };
    let other_name = register(&mut client, "bootstrap", REGISTER_BODY);
    let unknown_event = register(&mut client, NAME, r#"{"events":["INVOKE","RESTORE"]}"#);
    let not_json = register(&mut client, NAME, "events=INVOKE");
    let no_name = client.send("POST", "/register", &[], REGISTER_BODY);
    assert!(fake.registered().is_none());
    let first = register(&mut client, NAME, REGISTER_BODY);
    let second = register(&mut client, NAME, REGISTER_BODY);

    let refusals = [
        (other_name, "Extension.InvalidEventType"),
        (unknown_event, "Extension.InvalidEventType"),
        (not_json, "InvalidRequestFormat"),
        (no_name, "Extension.InvalidExtensionName"),
        (second, "Extension.InvalidExtensionState"),
    ];
    for (reply, error_type) in refusals {
        assert_eq!(
            (reply.status, reply.error_type()),
            (403, error_type.to_owned())
        );
        assert!(reply.json()["errorMessage"].is_string());
    }
    assert_eq!(first.status, 200);
}

#[test]
fn calls_without_a_valid_identifier_are_forbidden() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);
    let before_register = client.next();
    client.register();

    let missing = client.send("GET", "/event/next", &[], "");
    let malformed = client.send(
        "GET",
        "/event/next",
        &[("Lambda-Extension-Identifier", "x")],
        "",
    );
    let unknown_id = "00000000-0000-4000-8000-000000000000";
    let unknown = client.send(
        "GET",
        "/event/next",
        &[("Lambda-Extension-Identifier", unknown_id)],
        "",
    );
    let error_type = (
        "Lambda-Extension-Function-Error-Type",
        "Extension.ConfigInvalid",
    );
    let init_error = client.send("POST", "/init/error", &[error_type], "");
    let exit_error = client.send("POST", "/exit/error", &[error_type], "");

    let refusals = [
        (before_register, "Extension.UnknownExtensionIdentifier"),
        (missing, "Extension.MissingExtensionIdentifier"),
        (malformed, "Extension.InvalidExtensionIdentifier"),
        (unknown, "Extension.UnknownExtensionIdentifier"),
        (init_error, "Extension.MissingExtensionIdentifier"),
        (exit_error, "Extension.MissingExtensionIdentifier"),
    ];
    for (reply, error_type) in refusals {
        assert_eq!(
            (reply.status, reply.error_type()),
            (403, error_type.to_owned())
        );
    }
    assert!(fake.init_errors().is_empty() && fake.exit_errors().is_empty());
    assert!(
        !fake.wait_for_next_calls(1, Duration::ZERO),
        "refused calls do not count as idle"
    );
}

#[test]
fn next_event_blocks_until_the_test_queues_an_invoke() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);
    client.register();
    let (replies, received) = mpsc::channel();
    let waiting = thread::spawn(move || {
        replies.send(client.next()).unwrap();
        replies.send(client.next()).unwrap();
    });

    assert!(fake.wait_for_next_calls(1, BOUND));
    assert!(
        !fake.wait_for_next_calls(2, Duration::ZERO),
        "the second call needs the first answer"
    );
    // The request id is minted only now, so an answer carrying it was held until this point.
    let deadline_ms = extensions::deadline_in(3_000);
    let request_id = fake.invoke(deadline_ms);
    let reply = received
        .recv_timeout(BOUND)
        .expect("next answered after the invoke");
    assert!(fake.wait_for_next_calls(2, BOUND));
    let second_id = fake.invoke_without_tracing(deadline_ms);
    let second = received.recv_timeout(BOUND).expect("second next answered");
    waiting.join().unwrap();

    assert_eq!(reply.status, 200);
    assert!(reply.header("Lambda-Extension-Event-Identifier").is_some());
    let event = reply.json();
    assert_eq!(event["eventType"], "INVOKE");
    assert_eq!(event["deadlineMs"], deadline_ms);
    assert_eq!(event["requestId"], request_id.as_str());
    assert_eq!(event["invokedFunctionArn"], extensions::FUNCTION_ARN);
    assert_eq!(event["tracing"]["type"], "X-Amzn-Trace-Id");
    assert!(event["tracing"]["value"]
        .as_str()
        .unwrap()
        .starts_with("Root="));
    let event = second.json();
    assert_eq!(event["requestId"], second_id.as_str());
    assert_ne!(second_id, request_id);
    assert!(event.get("tracing").is_none());
}

#[test]
fn a_held_register_is_recorded_but_answered_only_once_released() {
    let fake = FakeExtensionsApi::start();
    fake.hold_register();
    let mut client = Client::connect(&fake);
    let (replies, received) = mpsc::channel();
    let registering = thread::spawn(move || replies.send(client.register()).unwrap());

    assert!(fake.wait_for_calls(CallKind::Register, 1, BOUND));
    assert!(
        received.try_recv().is_err(),
        "register was answered while held"
    );
    assert_eq!(fake.registered(), None);

    fake.release_register();
    let reply = received.recv_timeout(BOUND).expect("register answered");
    registering.join().unwrap();
    assert_eq!(reply.status, 200);
    assert!(fake.registered().is_some());
}

#[test]
fn failing_next_events_answer_an_error_or_close_the_connection() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);
    client.register();
    fake.fail_next_events(NextEventFailure::Status(500, "ServiceException"));
    fake.invoke(extensions::deadline_in(3_000));
    let reply = client.next();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.error_type(), "Extension.ServiceException");
    assert!(
        !fake.wait_for_next_calls(1, Duration::ZERO),
        "counted as accepted"
    );

    fake.fail_next_events(NextEventFailure::Close);
    let mut stream = TcpStream::connect(fake.runtime_api()).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let request = format!(
        "GET {BASE_PATH}/event/next HTTP/1.1\r\nHost: localhost\r\n\
         Lambda-Extension-Identifier: {IDENTIFIER}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(
        answer.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&answer)
    );
    let kinds: Vec<CallKind> = fake.calls().iter().map(|call| call.kind).collect();
    let expected = [CallKind::Register, CallKind::NextEvent, CallKind::NextEvent];
    assert_eq!(kinds, expected);
}

#[test]
fn shutdown_is_delivered_with_the_reason_exactly_as_given() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);
    client.register();

    for reason in ["spindown", "Timeout", "SandboxTerminated", "something-new"] {
        let deadline_ms = extensions::deadline_in(1_700);
        fake.shutdown(reason, deadline_ms);
        let event = client.next().json();
        assert_eq!(event["eventType"], "SHUTDOWN");
        assert_eq!(event["shutdownReason"], reason);
        assert_eq!(event["deadlineMs"], deadline_ms);
    }
}

#[test]
fn init_and_exit_errors_are_accepted_and_recorded() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);
    client.register();
    let id = ("Lambda-Extension-Identifier", IDENTIFIER);
    let body = r#"{"errorMessage":"POLL_INTERVAL_SECONDS is \"4x\"","errorType":"ConfigInvalid"}"#;

    let config_invalid = (
        "Lambda-Extension-Function-Error-Type",
        "Extension.ConfigInvalid",
    );
    let init = client.send("POST", "/init/error", &[id, config_invalid], body);
    let crash = ("Lambda-Extension-Function-Error-Type", "Extension.Crash");
    let exit = client.send("POST", "/exit/error", &[id, crash], "");
    let untyped = client.send("POST", "/exit/error", &[id], "");

    for reply in [&init, &exit] {
        assert_eq!(
            (reply.status, reply.json()),
            (202, serde_json::json!({ "status": "OK" }))
        );
    }
    assert_eq!(
        (untyped.status, untyped.error_type()),
        (403, "Extension.MissingHeader".to_owned())
    );
    let init_errors = fake.init_errors();
    assert_eq!(init_errors.len(), 1);
    assert_eq!(init_errors[0].error_type, "Extension.ConfigInvalid");
    assert_eq!(init_errors[0].body, body);
    let exit_errors = fake.exit_errors();
    assert_eq!(exit_errors.len(), 1);
    assert_eq!(exit_errors[0].error_type, "Extension.Crash");
    assert_eq!(exit_errors[0].body, "");
}

#[test]
fn unknown_paths_and_methods_get_a_json_404() {
    let fake = FakeExtensionsApi::start();
    let mut client = Client::connect(&fake);

    let unknown_path = client.send("POST", "/telemetry", &[], "{}");
    let wrong_method = client.send("GET", "/register", &[], "");

    for reply in [unknown_path, wrong_method] {
        assert_eq!(reply.status, 404);
        assert!(reply.json()["errorType"].is_string() && reply.json()["errorMessage"].is_string());
    }
    assert!(fake
        .calls()
        .iter()
        .all(|call| call.kind == CallKind::Unknown));
}

#[test]
fn calls_are_recorded_in_arrival_order_with_headers_and_bodies() {
    let fake = FakeExtensionsApi::start();
    assert!(fake.first_connection_at().is_none());
    let mut client = Client::connect(&fake);
    client.register();
    fake.invoke(extensions::deadline_in(1_000));
    client.next();
    let error_type = ("Lambda-Extension-Function-Error-Type", "Extension.Crash");
    client.send(
        "POST",
        "/exit/error",
        &[("Lambda-Extension-Identifier", IDENTIFIER), error_type],
        "",
    );

    let calls = fake.calls();
    let kinds: Vec<CallKind> = calls.iter().map(|call| call.kind).collect();
    assert_eq!(
        kinds,
        [CallKind::Register, CallKind::NextEvent, CallKind::ExitError]
    );
    assert_eq!(calls[0].path, format!("{BASE_PATH}/register"));
    assert_eq!(calls[0].header("lambda-extension-name"), Some(NAME));
    assert_eq!(calls[0].body, REGISTER_BODY);
    assert_eq!(calls[1].method, "GET");
    assert!(calls.windows(2).all(|pair| pair[0].time <= pair[1].time));
    assert!(calls
        .windows(2)
        .all(|pair| pair[0].wall_time <= pair[1].wall_time));
    assert!(fake
        .first_connection_at()
        .is_some_and(|first| first <= calls[0].time));
    assert_eq!(
        fake.connection_count(),
        1,
        "all calls share one keep-alive connection"
    );
    assert!(fake.wait_for_calls(CallKind::ExitError, 1, Duration::ZERO));
}

#[test]
fn the_agents_http_client_can_register_and_receive_events_over_one_connection() {
    let fake = FakeExtensionsApi::start();
    fake.register_body_style(RegisterBodyStyle::TrailingNewline);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(BOUND))
        .build()
        .into();
    let base = format!("http://{}{BASE_PATH}", fake.runtime_api());

    let mut registered = agent
        .post(format!("{base}/register"))
        .header("Lambda-Extension-Name", NAME)
        .send(REGISTER_BODY)
        .unwrap();
    let body = registered.body_mut().read_to_string().unwrap();
    fake.shutdown("Timeout", extensions::deadline_in(1_700));
    let mut next = agent
        .get(format!("{base}/event/next"))
        .header("Lambda-Extension-Identifier", IDENTIFIER)
        .call()
        .unwrap();
    let event: Value = serde_json::from_str(&next.body_mut().read_to_string().unwrap()).unwrap();

    assert_eq!(registered.status(), 200);
    assert!(body.ends_with('\n'));
    assert_eq!(next.status(), 200);
    assert_eq!(event["shutdownReason"], "Timeout");
    assert_eq!(
        fake.connection_count(),
        1,
        "ureq reused its pooled connection"
    );
}
