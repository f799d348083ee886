//! The `--lambda` half of `fake-aws`: drives the fake Extensions API of `tests/support` (one
//! implementation for the tests and the demo) and describes the calls it received.
//!
//! Owns the order of the events this program queued and the waits for the agent to come back to
//! `event/next`; it answers no HTTP itself (that is `support::extensions`). `main` runs its
//! commands, and it adds notes to the `timeline`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::FakeAwsError;
use crate::support::extensions::{
    deadline_in, Call, CallKind, FakeExtensionsApi, Registration, IDENTIFIER,
};
use crate::timeline::{Entry, Timeline};

/// How long `invoke` and `wait-idle` wait for the agent's next `event/next`. An agent bounds its
/// refreshes by its poll timeout (3 s by default, product.md §3), so 10 s means it is stuck.
const AGENT_BOUND: Duration = Duration::from_secs(10);

/// The running fake Extensions API and what was queued on it.
pub struct LambdaFake {
    api: FakeExtensionsApi,
    /// Each queued event, as shown (`INVOKE <requestId>`, `SHUTDOWN <reason>`), in queue order.
    /// The fake answers accepted `event/next` calls first in, first out, and this program is
    /// its only producer, so the n-th accepted call receives the n-th event.
    events: Vec<String>,
    /// How long to wait for the agent; [`AGENT_BOUND`] except in tests.
    bound: Duration,
}

impl LambdaFake {
    /// Binds the fake Extensions API on a free loopback port. With `extension_name`, a register
    /// under any other name is an internal extension, refused `SHUTDOWN` as Lambda does.
    pub fn start(extension_name: Option<&str>) -> Result<Self, FakeAwsError> {
        let api = FakeExtensionsApi::try_start().map_err(FakeAwsError::CannotListenExtensions)?;
        if let Some(name) = extension_name {
            api.expect_name(name);
        }
        Ok(Self {
            api,
            events: Vec::new(),
            bound: AGENT_BOUND,
        })
    }

    /// `127.0.0.1:PORT`, the value for the agent's `AWS_LAMBDA_RUNTIME_API`.
    pub fn runtime_api(&self) -> String {
        self.api.runtime_api()
    }

    /// Queues an INVOKE, then waits until the agent has taken it and called `event/next` again,
    /// which is when Lambda would consider the extension done with this invoke.
    pub fn invoke(
        &mut self,
        deadline_after_ms: u64,
        timeline: &mut Timeline,
    ) -> Result<String, FakeAwsError> {
        let queued_at = Instant::now();
        let request_id = self.api.invoke(deadline_in(deadline_after_ms));
        let number = self.queued(queued_at, format!("INVOKE {request_id}"), timeline);

        if !self.api.wait_for_next_calls(number + 1, self.bound) {
            return Err(FakeAwsError::AgentSilent {
                waiting_for: format!("INVOKE {request_id} was queued for event/next #{number}"),
                bound: self.bound,
            });
        }
        Ok(format!(
            "INVOKE {request_id} went to event/next #{number}; the agent called event/next #{} \
             {} ms later",
            number + 1,
            queued_at.elapsed().as_millis()
        ))
    }

    /// Queues a SHUTDOWN with `shutdownReason` exactly as given; does not wait for the agent,
    /// which is expected to exit.
    pub fn shutdown(
        &mut self,
        reason: &str,
        deadline_after_ms: u64,
        timeline: &mut Timeline,
    ) -> Result<String, FakeAwsError> {
        let queued_at = Instant::now();
        self.api.shutdown(reason, deadline_in(deadline_after_ms));
        let number = self.queued(queued_at, format!("SHUTDOWN {reason}"), timeline);
        Ok(format!(
            "SHUTDOWN {reason} queued for event/next #{number}, deadlineMs {deadline_after_ms} ms \
             from now"
        ))
    }

    /// Waits until the agent waits on `event/next` for an event not queued yet: the end of its
    /// INIT, or of the event before.
    pub fn wait_idle(&self) -> Result<String, FakeAwsError> {
        let number = self.events.len() + 1;
        if self.api.wait_for_next_calls(number, self.bound) {
            Ok(format!("the agent waits on event/next #{number}"))
        } else {
            Err(FakeAwsError::AgentSilent {
                waiting_for: format!("wait-idle expected event/next #{number}"),
                bound: self.bound,
            })
        }
    }

    /// Counts per call kind, for the `calls` command.
    pub fn describe_calls(&self) -> String {
        let calls = self.api.calls();
        let count = |kind| calls.iter().filter(|call| call.kind == kind).count();
        format!(
            "register={} event/next={} init/error={} exit/error={}",
            count(CallKind::Register),
            count(CallKind::NextEvent),
            count(CallKind::InitError),
            count(CallKind::ExitError),
        )
    }

    /// One timeline entry per call received, saying what it carried or got. The fake records
    /// requests, not answers, so each answer shown is worked out from the fake's own rules.
    pub fn entries(&self) -> Vec<Entry> {
        let calls = self.api.calls();
        let accepted_register = self.api.registered().and_then(|registration| {
            calls
                .iter()
                .position(|call| is_registration(call, &registration))
        });
        let mut next_calls = 0;
        let mut entries = Vec::with_capacity(calls.len());
        for (index, call) in calls.iter().enumerate() {
            let is_registered = accepted_register.is_some_and(|register| register < index);
            let text = match call.kind {
                CallKind::Register => {
                    let status = if Some(index) == accepted_register {
                        "200"
                    } else {
                        "403"
                    };
                    let name = call.header("Lambda-Extension-Name").unwrap_or_default();
                    let events = registered_events(&call.body).join(",");
                    format!("register name={name} events={events} -> {status}")
                }
                CallKind::NextEvent if is_registered && has_identifier(call) => {
                    next_calls += 1;
                    match self.events.get(next_calls - 1) {
                        Some(event) => format!("event/next #{next_calls} -> {event}"),
                        None => format!("event/next #{next_calls} (waits for an event)"),
                    }
                }
                CallKind::NextEvent => "event/next without a valid identifier -> 403".to_string(),
                CallKind::InitError => error_report("init/error", call, is_registered),
                CallKind::ExitError => error_report("exit/error", call, is_registered),
                CallKind::Unknown => format!("{} {} -> 404", call.method, call.path),
            };
            entries.push((call.time, text));
        }
        entries
    }

    /// Remembers an event queued at `at` and notes it; returns the `event/next` call it goes to.
    fn queued(&mut self, at: Instant, event: String, timeline: &mut Timeline) -> usize {
        let number = self.events.len() + 1;
        timeline.note(at, format!("{event} queued for event/next #{number}"));
        self.events.push(event);
        number
    }
}

/// Whether `call` is the register that produced `registration`.
fn is_registration(call: &Call, registration: &Registration) -> bool {
    call.kind == CallKind::Register
        && call.header("Lambda-Extension-Name") == Some(registration.name.as_str())
        && registered_events(&call.body) == registration.events
}

/// Whether `call` carries the identifier that `register` hands out.
fn has_identifier(call: &Call) -> bool {
    call.header("Lambda-Extension-Identifier") == Some(IDENTIFIER)
}

/// The `events` array of a register body, or nothing when it is not one.
fn registered_events(body: &str) -> Vec<String> {
    let body: Value = serde_json::from_str(body).unwrap_or_default();
    let events = body.get("events").and_then(Value::as_array);
    events
        .into_iter()
        .flatten()
        .filter_map(|event| event.as_str().map(str::to_string))
        .collect()
}

/// `init/error TYPE: MESSAGE -> STATUS`, the message from the JSON body or the body as sent.
/// The status follows the fake's checks: a registered identifier and a non-empty error type.
fn error_report(path: &str, call: &Call, is_registered: bool) -> String {
    let error_type = call
        .header("Lambda-Extension-Function-Error-Type")
        .filter(|error_type| !error_type.is_empty());
    let is_accepted = is_registered && error_type.is_some() && has_identifier(call);
    let status = if is_accepted { "202" } else { "403" };
    let body: Value = serde_json::from_str(&call.body).unwrap_or_default();
    let message = body
        .get("errorMessage")
        .and_then(Value::as_str)
        .unwrap_or(&call.body);
    let error_type = error_type.unwrap_or("(no error type)");
    format!("{path} {error_type}: {message} -> {status}")
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its error"
)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::thread;

    /// A minimal extension on one keep-alive connection, standing in for the agent.
    struct Extension {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    impl Extension {
        fn connect(runtime_api: &str) -> Self {
            let writer = TcpStream::connect(runtime_api).unwrap();
            let reader = BufReader::new(writer.try_clone().unwrap());
            Self { reader, writer }
        }

        /// Sends one request and returns the answer's body.
        fn call(
            &mut self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: &str,
        ) -> String {
            let mut request = format!("{method} /2020-01-01/extension{path} HTTP/1.1\r\n");
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            self.writer.write_all(request.as_bytes()).unwrap();

            let mut length = 0;
            let mut line = String::new();
            while self.reader.read_line(&mut line).unwrap() > 2 {
                if let Some((name, value)) = line.trim_end().split_once(':') {
                    if name.eq_ignore_ascii_case("Content-Length") {
                        length = value.trim().parse().unwrap();
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).unwrap();
            String::from_utf8(body).unwrap()
        }

        fn register(&mut self, name: &str) {
            let body = r#"{"events":["INVOKE","SHUTDOWN"]}"#;
            self.call(
                "POST",
                "/register",
                &[("Lambda-Extension-Name", name)],
                body,
            );
        }

        fn next_event(&mut self) -> Value {
            let identifier = [("Lambda-Extension-Identifier", IDENTIFIER)];
            serde_json::from_str(&self.call("GET", "/event/next", &identifier, "")).unwrap()
        }
    }

    #[test]
    fn invoke_answers_once_the_agent_is_back_on_event_next_and_events_tell_the_story() {
        let mut lambda = LambdaFake::start(Some("appconfig-lite")).unwrap();
        let mut timeline = Timeline::new(Instant::now());
        let mut extension = Extension::connect(&lambda.runtime_api());
        extension.register("appconfig-lite");
        let agent = thread::spawn(move || {
            let first = extension.next_event();
            let second = extension.next_event();
            (first, second)
        });

        assert_eq!(
            lambda.wait_idle().unwrap(),
            "the agent waits on event/next #1"
        );
        let answer = lambda.invoke(3_000, &mut timeline).unwrap();
        assert!(answer.contains("went to event/next #1; the agent called event/next #2"));
        lambda.shutdown("spindown", 2_000, &mut timeline).unwrap();
        let (first, second) = agent.join().unwrap();
        assert_eq!(first["eventType"], "INVOKE");
        assert_eq!(second["eventType"], "SHUTDOWN");
        assert_eq!(second["shutdownReason"], "spindown");

        let texts: Vec<String> = lambda.entries().into_iter().map(|(_, text)| text).collect();
        let request_id = first["requestId"].as_str().unwrap();
        assert_eq!(
            texts,
            [
                "register name=appconfig-lite events=INVOKE,SHUTDOWN -> 200".to_string(),
                format!("event/next #1 -> INVOKE {request_id}"),
                "event/next #2 -> SHUTDOWN spindown".to_string(),
            ]
        );
        assert_eq!(
            lambda.describe_calls(),
            "register=1 event/next=2 init/error=0 exit/error=0"
        );
    }

    #[test]
    fn register_under_another_name_is_refused_shutdown_and_init_errors_are_shown() {
        let lambda = LambdaFake::start(Some("appconfig-lite")).unwrap();
        let mut extension = Extension::connect(&lambda.runtime_api());
        let report = |extension: &mut Extension| {
            extension.call(
                "POST",
                "/init/error",
                &[
                    ("Lambda-Extension-Identifier", IDENTIFIER),
                    (
                        "Lambda-Extension-Function-Error-Type",
                        "Extension.ConfigInvalid",
                    ),
                ],
                r#"{"errorMessage":"POLL_INTERVAL_SECONDS is \"4x\"","errorType":"x"}"#,
            );
        };
        extension.register("renamed-binary");
        report(&mut extension);
        extension.register("appconfig-lite");
        report(&mut extension);

        let texts: Vec<String> = lambda.entries().into_iter().map(|(_, text)| text).collect();
        let message = "init/error Extension.ConfigInvalid: POLL_INTERVAL_SECONDS is \"4x\"";
        assert_eq!(
            texts,
            [
                "register name=renamed-binary events=INVOKE,SHUTDOWN -> 403".to_string(),
                format!("{message} -> 403"),
                "register name=appconfig-lite events=INVOKE,SHUTDOWN -> 200".to_string(),
                format!("{message} -> 202"),
            ]
        );
    }

    #[test]
    fn invoke_without_an_agent_says_what_it_waited_for() {
        let mut lambda = LambdaFake::start(None).unwrap();
        lambda.bound = Duration::from_millis(20);
        let mut timeline = Timeline::new(Instant::now());

        let error = lambda.invoke(3_000, &mut timeline).unwrap_err().to_string();
        assert!(error.starts_with("INVOKE 8e4f0c6a-"), "{error}");
        assert!(error.contains("was queued for event/next #1, but the agent did not call"));
        let error = lambda.wait_idle().unwrap_err().to_string();
        assert!(
            error.starts_with("wait-idle expected event/next #2, but the agent"),
            "{error}"
        );
    }
}
