//! Starting and stopping the real binary (product.md §3, §9, issue 2): malformed settings are
//! refused with a message naming the variable, `--version` and `--help` need no environment,
//! unknown prefixed settings are warned about with a suggestion, SIGTERM and SIGINT stop the
//! agent cleanly, and `PREFETCH_LIST` entries of both forms are fetched at start, in parallel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::process::Command;
use std::time::Duration;

use appconfig_lite::settings::SETTING_NAMES;
use support::agent::{run_to_exit, start_expect_exit, AgentProcess, Signal, AGENT_BINARY};
use support::appconfigdata::{FakeAppConfig, TEST_ACCESS_KEY, TEST_SECRET_KEY};
use support::{start_agent, wait_until};

/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// Valid credentials and region, so that the variable under test is the only thing wrong.
fn valid_vars() -> Vec<(String, String)> {
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

#[test]
fn malformed_settings_stop_the_agent_with_a_message_naming_the_variable_and_value() {
    let cases = [
        ("POLL_INTERVAL", "4x"),
        ("POLL_INTERVAL", "0"),
        ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "soon"),
        ("REQUEST_TIMEOUT", "fast"),
        ("AWS_APPCONFIG_EXTENSION_POLL_TIMEOUT_MILLIS", "-5"),
        ("HTTP_PORT", "70000"),
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "http"),
        ("HTTP_HOST", "somewhere"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "lots"),
        ("LOG_LEVEL", "loud"),
        ("PREFETCH_LIST", "shop:prod"),
        ("WAIT_ON_MANIFEST", "maybe"),
    ];
    for (name, value) in cases {
        let mut vars = valid_vars();
        vars.push((name.to_string(), value.to_string()));
        let (status, stderr) = start_expect_exit(&vars);
        assert!(!status.success(), "{name}={value} was accepted");
        assert!(
            stderr.contains(name) && stderr.contains(&format!("\"{value}\"")),
            "{name}={value}: the message names the variable and shows the value:\n{stderr}"
        );
        assert!(
            !stderr.contains("listening on"),
            "{name}={value}: nothing is served:\n{stderr}"
        );
    }
}

#[test]
fn a_missing_region_stops_the_agent_with_a_message_naming_the_region_variables() {
    let vars: Vec<(String, String)> = valid_vars()
        .into_iter()
        .filter(|(name, _)| name != "AWS_REGION")
        .collect();
    let (status, stderr) = start_expect_exit(&vars);
    assert!(!status.success());
    assert!(
        stderr.contains("AWS_REGION") && stderr.contains("SERVICE_REGION"),
        "{stderr}"
    );
}

#[test]
fn version_and_help_work_without_any_environment() {
    let run = |flag: &str| {
        let output = Command::new(AGENT_BINARY)
            .arg(flag)
            .env_clear()
            .output()
            .expect("run the agent");
        assert!(output.status.success(), "{flag}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };

    let version = run("--version");
    assert_eq!(
        version.trim(),
        format!("appconfig-lite {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run("--help");
    for name in SETTING_NAMES {
        assert!(help.contains(name), "--help lists {name}:\n{help}");
    }
}

#[test]
fn an_unknown_argument_is_refused_with_usage_instead_of_starting() {
    for argument in ["--bogus", "help", "\u{e9}t\u{e9}"] {
        let output = Command::new(AGENT_BINARY)
            .arg(argument)
            .env_clear()
            .output()
            .expect("run the agent");
        assert_eq!(output.status.code(), Some(2), "{argument}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("unknown argument") && stderr.contains("--help"),
            "{argument}: {stderr}"
        );
    }
}

#[test]
fn an_unknown_prefixed_setting_logs_one_warning_with_the_closest_name() {
    let mut vars = valid_vars();
    vars.push((
        "AWS_APPCONFIG_EXTENSION_POLL_INTERVALL_SECONDS".to_string(),
        "5".to_string(),
    ));
    let agent = AgentProcess::start(&vars);

    let expected = "did you mean AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS";
    let log = agent.stderr_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("AWS_APPCONFIG_EXTENSION_POLL_INTERVALL_SECONDS"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{log}");
    assert!(
        warnings[0].contains(" WARN ") && warnings[0].contains(expected),
        "{}",
        warnings[0]
    );
    // A warning, not an error: the agent runs.
    assert_eq!(agent.get("/ping").status, 200);
}

fn signal_stops_the_agent_with_exit_code_0(signal: Signal) {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", b"{}", "application/json", None);
    let mut agent = start_agent(&fake, &[]);
    let response = agent.get("/applications/shop/environments/prod/configurations/flags");
    assert_eq!(response.status, 200, "{response}");

    agent.send_signal(signal);
    let status = agent
        .wait_exit(PATIENCE)
        .unwrap_or_else(|| panic!("still running after {signal:?}"));
    assert_eq!(status.code(), Some(0), "{}", agent.stderr_text());
    let log = agent.stderr_text();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn sigterm_stops_the_agent_with_exit_code_0() {
    signal_stops_the_agent_with_exit_code_0(Signal::Term);
}

#[test]
fn sigint_stops_the_agent_with_exit_code_0() {
    signal_stops_the_agent_with_exit_code_0(Signal::Int);
}

#[test]
fn prefetch_list_entries_of_both_forms_are_fetched_at_start_in_parallel() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "flags", b"flags", "text/plain", Some("1"));
    fake.deploy("my app", "prod", "other", b"other", "text/plain", Some("1"));
    // Slow answers: fetched one after the other, the two entries would never overlap.
    fake.set_response_delay(Duration::from_millis(500));
    let agent = start_agent(
        &fake,
        &[(
            "PREFETCH_LIST",
            "shop:prod:flags, /applications/my%20app/environments/prod/configurations/other",
        )],
    );

    assert!(
        wait_until(PATIENCE, || fake.get_latest_calls() == 2),
        "both entries are fetched without any request; log:\n{}",
        agent.stderr_text()
    );
    assert_eq!(fake.max_in_flight(), 2, "the two fetches overlapped");
    let mut keys: Vec<String> = fake.session_keys().into_iter().flatten().collect();
    keys.sort();
    assert_eq!(keys, ["my app:prod:other", "shop:prod:flags"]);

    let calls_after_prefetch = fake.calls().len();
    for (path, body) in [
        (
            "/applications/shop/environments/prod/configurations/flags",
            "flags",
        ),
        (
            "/applications/my%20app/environments/prod/configurations/other",
            "other",
        ),
    ] {
        let response = agent.get(path);
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, body),
            "{path}"
        );
    }
    assert_eq!(
        fake.calls().len(),
        calls_after_prefetch,
        "requests are served from the prefetched entries"
    );
}

#[test]
fn help_is_not_blocked_by_malformed_settings() {
    let exited = run_to_exit(AGENT_BINARY, &["--help"], &[("POLL_INTERVAL", "4x")]);
    assert!(exited.status.success(), "{}", exited.stderr);
    assert!(exited.stdout.contains("POLL_INTERVAL"));
}
