//! The agent harness (`support::agent`) and `wait_until`, run against stand-in programs since
//! the agent itself is driven by the other test files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::panic;
use std::thread;
use std::time::Duration;

use crate::support::agent::{run_to_exit, AgentProcess, Connection, Signal};
use crate::support::wait_until;

#[test]
fn agent_harness_finds_the_listening_address_and_delivers_signals() {
    // A stand-in for the agent: logs the start-up line, shows its environment, then waits.
    let script = "echo '2026-12-04T15:00:00.120Z INFO listening on 127.0.0.1:4321' >&2; \
                  echo \"port=$HTTP_PORT home=${HOME:-unset} extra=$EXTRA\" >&2; exec sleep 30";
    let mut agent = AgentProcess::start_program("sh", &["-c", script], &[("EXTRA", "yes")]);
    assert_eq!(agent.addr(), "127.0.0.1:4321".parse().unwrap());
    assert!(agent.wait_for_log("port=0 home=unset extra=yes", Duration::from_secs(10)));

    agent.send_signal(Signal::Term);
    let status = agent
        .wait_exit(Duration::from_secs(10))
        .expect("exit after SIGTERM");
    assert_eq!(status.signal(), Some(15));
}

#[test]
fn agent_harness_reads_the_address_from_a_json_log_line() {
    let script =
        r#"echo '{"level":"INFO","message":"listening on [::1]:2772"}' >&2; exec sleep 30"#;
    let agent =
        AgentProcess::start_program("sh", &["-c", script], &[("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    assert_eq!(agent.addr(), "[::1]:2772".parse().unwrap());
}

#[test]
fn agent_harness_returns_the_status_and_output_of_a_program_that_exits() {
    let script = "echo out; echo 'HTTP_PORT is \"x\"' >&2; exit 3";
    let exited = run_to_exit("sh", &["-c", script], &[("HTTP_PORT", "x")]);
    assert_eq!(exited.status.code(), Some(3));
    assert_eq!(exited.stdout, "out\n");
    assert_eq!(exited.stderr, "HTTP_PORT is \"x\"\n");
}

#[test]
fn agent_harness_refuses_variables_that_leave_loopback() {
    for (name, value) in [
        (
            "AWS_ENDPOINT_URL_STS",
            "https://sts.us-east-1.amazonaws.com",
        ),
        ("AWS_ENDPOINT_URL_APPCONFIGDATA", "http://10.0.0.1:80"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/creds",
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        ),
        ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1.example.com"),
        ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1@example.com/"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.1.2.3"),
        ("AWS_EC2_METADATA_DISABLED", "false"),
    ] {
        let outcome = panic::catch_unwind(|| run_to_exit("true", &[], &[(name, value)]));
        assert!(outcome.is_err(), "{name}={value} was accepted");
    }
    let metadata_on_loopback = run_to_exit(
        "true",
        &[],
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[::1]:9"),
        ],
    );
    assert!(metadata_on_loopback.status.success());
    let loopback = run_to_exit(
        "true",
        &[],
        &[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1")],
    );
    assert!(loopback.status.success());
}

#[test]
fn raw_client_sends_the_path_verbatim_and_reads_every_body_framing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut heads = Vec::new();
        for answer in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a\r\nx-thing: b\r\n\r\nhello",
            concat!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
            ),
            "HTTP/1.1 404 Not Found\r\n\r\nuntil close",
        ] {
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                reader.read_line(&mut head).unwrap();
            }
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "));
            let mut body = vec![0; length.map_or(0, |n| n.trim().parse().unwrap())];
            reader.read_exact(&mut body).unwrap();
            heads.push(head);
            writer.write_all(answer.as_bytes()).unwrap();
        }
        // Dropping the stream closes it: the last answer's body ends there.
        heads
    });

    let mut connection = Connection::open(addr).unwrap();
    let odd_path = "/a%2Fb/../c?x=+&y=%zz";
    let first = connection
        .send("GET", odd_path, &[("Context", "k=v")], b"")
        .unwrap();
    assert_eq!((first.status, first.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(first.header_values("X-THING"), ["a", "b"]);
    let second = connection.send("GET", "/two", &[], b"").unwrap();
    assert_eq!(second.body, b"abcde");
    let third = connection.send("POST", "/three", &[], b"{}").unwrap();
    assert_eq!((third.status, third.text().as_str()), (404, "until close"));
    let heads = server.join().unwrap();
    assert!(heads[2].contains("Content-Length: 2\r\n"), "{}", heads[2]);
    assert!(
        heads[0].starts_with(&format!("GET {odd_path} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains(&format!("Host: {addr}\r\n")) && heads[0].contains("Context: k=v"));
}

#[test]
fn wait_until_reports_whether_the_condition_came_true() {
    assert!(!wait_until(Duration::from_millis(20), || false));
    let mut calls = 0;
    assert!(wait_until(Duration::from_secs(10), || {
        calls += 1;
        calls == 3
    }));
}
