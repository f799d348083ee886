//! The AppConfigData operations behind the fake: what each request does to the fake's state
//! and which reply it gets (wire.md §2), including the injected faults.
//!
//! Owns the state shape, sessions, tokens, validation and error bodies. It does no socket I/O:
//! the parent module `appconfigdata` reads requests, calls [`handle`] under its lock, and writes
//! the [`Reply`]. Uses `sigv4` to check signatures.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::super::http_wire::{RawRequest, RawResponse};
use super::super::sigv4::{
    decode_query_component, ExpectedCredentials, ReceivedRequest, SignatureError, Verifier,
};
use super::{CallRecord, Fault, FaultScope, Operation};

/// SigV4 signing name of AppConfigData (wire.md §2).
const SIGNING_NAME: &str = "appconfig";
/// Poll interval AWS applies when `RequiredMinimumPollIntervalInSeconds` is absent.
const DEFAULT_POLL_INTERVAL_SECONDS: u64 = 60;
const BASE64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `[application, environment, profile]` identifiers.
pub(super) type Triple = [String; 3];

/// The configuration currently deployed under one key.
pub(super) struct Deployment {
    pub(super) body: Vec<u8>,
    pub(super) content_type: String,
    pub(super) version_label: Option<String>,
    /// Internal version number, new on every deploy.
    pub(super) version: u64,
}

/// One StartConfigurationSession and the tokens chained from it.
pub(super) struct Session {
    /// `app:env:profile` as the client named it (possibly an alias).
    pub(super) requested: String,
    pub(super) target: Triple,
    pub(super) interval_seconds: u64,
    pub(super) last_version_sent: Option<u64>,
    /// When the last full `200` was produced and the interval it advised.
    pub(super) last_answer: Option<(Instant, u64)>,
}

/// A token handed out, with the index of its session.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenState {
    Live(usize),
    Used(usize),
    Expired(usize),
}

/// What a handled request turns into on the socket.
pub(super) enum Reply {
    Whole(RawResponse),
    Truncated(RawResponse),
    Hang,
}

/// Everything the fake knows, behind one mutex in the parent module.
#[derive(Default)]
pub(super) struct State {
    pub(super) credentials: ExpectedCredentials,
    /// Expected instead of `credentials` once an `ExpiredCredentials403` fault is answered.
    pub(super) credentials_after_expiry: Option<ExpectedCredentials>,
    pub(super) region: String,
    pub(super) max_clock_skew: Option<Duration>,
    pub(super) deployments: HashMap<Triple, Deployment>,
    pub(super) aliases: HashMap<Triple, Triple>,
    pub(super) versions_deployed: u64,
    pub(super) sessions: Vec<Session>,
    pub(super) tokens: HashMap<String, TokenState>,
    /// Every token that ever arrived, to detect a second arrival.
    pub(super) tokens_seen: HashSet<String>,
    pub(super) tokens_received_twice: usize,
    pub(super) tokens_issued: u64,
    pub(super) token_seed: RandomState,
    pub(super) poll_interval_seconds: Option<u64>,
    pub(super) unchanged_as_204: bool,
    /// Queued faults with the number of calls each still applies to.
    pub(super) faults: VecDeque<(FaultScope, Fault, usize)>,
    pub(super) response_delay: Duration,
    pub(super) calls: Vec<CallRecord>,
    pub(super) early_polls: usize,
    /// Open connections by number, kept to shut them down on `stop_listening`.
    pub(super) connections: HashMap<u64, TcpStream>,
    pub(super) connections_accepted: u64,
    pub(super) max_open_connections: usize,
    pub(super) in_flight: usize,
    pub(super) max_in_flight: usize,
    /// Bumped to release every `Hang` in progress.
    pub(super) hang_generation: u64,
}

/// Decides the reply to one request, records the call and updates sessions and tokens.
pub(super) fn handle(state: &mut State, request: &RawRequest, connection: u64) -> Reply {
    let operation = match (request.method.as_str(), request.path()) {
        ("POST", "/configurationsessions") => Operation::StartConfigurationSession,
        ("GET", "/configuration") => Operation::GetLatestConfiguration,
        _ => Operation::Unknown,
    };
    let mut call = CallRecord {
        operation,
        key: None,
        token: None,
        required_minimum_poll_interval: None,
        at: Instant::now(),
        signature_ok: false,
        signature_error: None,
        fault: None,
        status: None,
        early: false,
        connection,
    };
    let start_body: Option<Value> = match operation {
        Operation::StartConfigurationSession => serde_json::from_slice(&request.body).ok(),
        _ => None,
    };
    match operation {
        Operation::StartConfigurationSession => {
            call.key = start_body
                .as_ref()
                .and_then(requested_key)
                .map(|key| key.join(":"));
            call.required_minimum_poll_interval = start_body
                .as_ref()
                .and_then(|body| body.get("RequiredMinimumPollIntervalInSeconds"))
                .and_then(Value::as_u64);
        }
        Operation::GetLatestConfiguration => {
            call.token = query_parameter(request.query(), "configuration_token");
            if let Some(token) = &call.token {
                // Counted on arrival, whatever the answer: single use is the client's duty.
                if !state.tokens_seen.insert(token.clone()) {
                    state.tokens_received_twice += 1;
                }
            }
            let session = call
                .token
                .as_ref()
                .and_then(|token| state.tokens.get(token));
            call.key = session.map(|token_state| {
                let (TokenState::Live(index)
                | TokenState::Used(index)
                | TokenState::Expired(index)) = *token_state;
                state.sessions[index].requested.clone()
            });
        }
        Operation::Unknown => {}
    }

    let verdict = verify_signature(state, request);
    call.signature_ok = verdict.is_ok();
    let reply = match verdict {
        Err((name, message)) => {
            let response = error_response(403, name, &message, None);
            call.signature_error = Some(message);
            Reply::Whole(response)
        }
        Ok(()) => {
            call.fault = take_fault(state, operation);
            if call.fault == Some(Fault::ExpiredCredentials403) {
                if let Some(next) = state.credentials_after_expiry.take() {
                    state.credentials = next;
                }
            }
            match operation {
                Operation::StartConfigurationSession => {
                    start_session(state, request, start_body.as_ref(), call.fault)
                }
                Operation::GetLatestConfiguration => {
                    get_latest(state, call.token.as_deref(), call.fault, &mut call.early)
                }
                Operation::Unknown => Reply::Whole(error_response(
                    404,
                    "UnknownOperationException",
                    &format!("no operation at {} {}", request.method, request.path()),
                    None,
                )),
            }
        }
    };
    call.status = match &reply {
        Reply::Whole(response) => Some(response.status),
        Reply::Truncated(_) | Reply::Hang => None,
    };
    state.calls.push(call);
    reply
}

/// Checks the signature; on failure returns the error name AWS's front end would send.
fn verify_signature(state: &State, request: &RawRequest) -> Result<(), (&'static str, String)> {
    let verifier = Verifier {
        credentials: state.credentials.clone(),
        region: state.region.clone(),
        service: SIGNING_NAME.to_string(),
        max_clock_skew: state.max_clock_skew,
    };
    let received = ReceivedRequest {
        method: &request.method,
        target: &request.target,
        headers: &request.headers,
        body: &request.body,
    };
    verifier
        .verify(&received, SystemTime::now())
        .map_err(|error| {
            let name = match error {
                // AWS answers an unknown key or session token this way, any other fault as below.
                SignatureError::UnknownAccessKey { .. }
                | SignatureError::SecurityTokenMismatch
                | SignatureError::SecurityTokenMissing
                | SignatureError::UnexpectedSecurityToken => "UnrecognizedClientException",
                _ => "InvalidSignatureException",
            };
            (name, error.to_string())
        })
}

fn take_fault(state: &mut State, operation: Operation) -> Option<Fault> {
    let position = state.faults.iter().position(|(scope, _, _)| match scope {
        FaultScope::AnyOperation => operation != Operation::Unknown,
        FaultScope::StartConfigurationSession => operation == Operation::StartConfigurationSession,
        FaultScope::GetLatestConfiguration => operation == Operation::GetLatestConfiguration,
    })?;
    let entry = &mut state.faults[position];
    let fault = entry.1;
    entry.2 -= 1;
    if entry.2 == 0 {
        state.faults.remove(position);
    }
    Some(fault)
}

/// The answers of faults that stop a call before it is processed.
fn front_end_fault(fault: Fault) -> Option<RawResponse> {
    let (status, name, message) = match fault {
        Fault::Status500 => (500, "InternalServerException", "injected internal error"),
        Fault::Status503 => (
            503,
            "ServiceUnavailableException",
            "injected unavailability",
        ),
        Fault::Throttle429 => (429, "ThrottlingException", "Rate exceeded"),
        Fault::Forbidden403 => (403, "AccessDeniedException", "injected access denial"),
        Fault::ExpiredCredentials403 => (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ),
        Fault::Forbidden403LongBody => {
            let padding = json!({ "Padding": "x".repeat(100 * 1024) });
            return Some(error_response(
                403,
                "AccessDeniedException",
                "injected access denial with a long body",
                Some(padding),
            ));
        }
        Fault::ExpiredToken400 => return Some(token_error("Expired")),
        Fault::CorruptedToken400 => return Some(token_error("Corrupted")),
        Fault::ResetMidBody | Fault::Hang | Fault::MalformedBody => return None,
    };
    Some(error_response(status, name, message, None))
}

fn start_session(
    state: &mut State,
    request: &RawRequest,
    body: Option<&Value>,
    fault: Option<Fault>,
) -> Reply {
    match fault {
        Some(Fault::Hang) => return Reply::Hang,
        Some(Fault::MalformedBody) => {
            let response = RawResponse::new(201, b"<html>not json".to_vec());
            return Reply::Whole(response.with_header("Content-Type", "application/json"));
        }
        Some(other) => {
            if let Some(response) = front_end_fault(other) {
                return Reply::Whole(response);
            }
        }
        None => {}
    }

    let content_type = request.header("content-type").unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        let message = format!("Content-Type is {content_type:?}; expected application/json");
        return Reply::Whole(error_response(400, "BadRequestException", &message, None));
    }
    let (requested, interval) = match validate_start_body(body) {
        Ok(valid) => valid,
        Err(message) => {
            return Reply::Whole(error_response(400, "BadRequestException", &message, None))
        }
    };
    let target = state
        .aliases
        .get(&requested)
        .cloned()
        .unwrap_or_else(|| requested.clone());
    if !state.deployments.contains_key(&target) {
        let (resource, name) = missing_resource(state, &requested);
        let message = format!("{resource} '{name}' was not found");
        let extra = json!({ "ResourceType": resource });
        return Reply::Whole(error_response(
            404,
            "ResourceNotFoundException",
            &message,
            Some(extra),
        ));
    }

    state.sessions.push(Session {
        requested: requested.join(":"),
        target,
        interval_seconds: interval,
        last_version_sent: None,
        last_answer: None,
    });
    let token = issue_token(state, state.sessions.len() - 1);
    let body = json!({ "InitialConfigurationToken": token })
        .to_string()
        .into_bytes();
    let response = RawResponse::new(201, body).with_header("Content-Type", "application/json");
    if fault == Some(Fault::ResetMidBody) {
        Reply::Truncated(response)
    } else {
        Reply::Whole(response)
    }
}

fn get_latest(
    state: &mut State,
    token: Option<&str>,
    fault: Option<Fault>,
    early: &mut bool,
) -> Reply {
    let Some(token) = token else {
        let message = "ConfigurationToken is required";
        return Reply::Whole(error_response(400, "BadRequestException", message, None));
    };
    match fault {
        Some(Fault::Hang) => return Reply::Hang,
        Some(fault @ (Fault::ExpiredToken400 | Fault::CorruptedToken400)) => {
            if let Some(TokenState::Live(session)) = state.tokens.get(token).copied() {
                state
                    .tokens
                    .insert(token.to_string(), TokenState::Expired(session));
            }
            return Reply::Whole(front_end_fault(fault).unwrap_or_else(|| token_error("Expired")));
        }
        Some(other) => {
            if let Some(response) = front_end_fault(other) {
                return Reply::Whole(response);
            }
        }
        None => {}
    }

    let index = match state.tokens.get(token).copied() {
        None => return Reply::Whole(token_error("Corrupted")),
        // A token already used is refused like an expired one: it can never be valid again.
        Some(TokenState::Used(_) | TokenState::Expired(_)) => {
            return Reply::Whole(token_error("Expired"))
        }
        Some(TokenState::Live(index)) => index,
    };
    state
        .tokens
        .insert(token.to_string(), TokenState::Used(index));
    let now = Instant::now();
    if let Some((answered, advised)) = state.sessions[index].last_answer {
        if now.duration_since(answered) < Duration::from_secs(advised) {
            *early = true;
            state.early_polls += 1;
        }
    }

    let next_token = issue_token(state, index);
    let interval = state
        .poll_interval_seconds
        .unwrap_or(state.sessions[index].interval_seconds);
    let session = &state.sessions[index];
    let Some(deployment) = state.deployments.get(&session.target) else {
        let message = format!("Configuration '{}' was not found", session.requested);
        let extra = json!({ "ResourceType": "Configuration" });
        return Reply::Whole(error_response(
            404,
            "ResourceNotFoundException",
            &message,
            Some(extra),
        ));
    };
    let changed = session.last_version_sent != Some(deployment.version);
    let (status, body) = match (changed, state.unchanged_as_204) {
        (true, _) => (200, deployment.body.clone()),
        (false, false) => (200, Vec::new()),
        (false, true) => (204, Vec::new()),
    };
    let mut response = RawResponse::new(status, body)
        .with_header("Next-Poll-Interval-In-Seconds", &interval.to_string())
        .with_header("Content-Type", &deployment.content_type);
    if fault != Some(Fault::MalformedBody) {
        response = response.with_header("Next-Poll-Configuration-Token", &next_token);
    }
    if let Some(label) = &deployment.version_label {
        response = response.with_header("Version-Label", label);
    }
    let version = deployment.version;
    let session = &mut state.sessions[index];
    session.last_version_sent = Some(version);
    match fault {
        Some(Fault::ResetMidBody) => Reply::Truncated(response),
        Some(Fault::MalformedBody) => Reply::Whole(response),
        _ => {
            session.last_answer = Some((now, interval));
            Reply::Whole(response)
        }
    }
}

/// Validates a StartConfigurationSession body (wire.md §2) into the requested key and the poll
/// interval the session will advise.
fn validate_start_body(body: Option<&Value>) -> Result<(Triple, u64), String> {
    let body = body
        .filter(|body| body.is_object())
        .ok_or("the body is not a JSON object")?;
    let mut key: Vec<String> = Vec::new();
    for field in [
        "ApplicationIdentifier",
        "EnvironmentIdentifier",
        "ConfigurationProfileIdentifier",
    ] {
        let value = body.get(field).and_then(Value::as_str).unwrap_or("");
        let length = value.chars().count();
        if !(1..=128).contains(&length) {
            return Err(format!("{field} must be 1 to 128 characters, got {length}"));
        }
        key.push(value.to_string());
    }
    let interval = match body.get("RequiredMinimumPollIntervalInSeconds") {
        None => DEFAULT_POLL_INTERVAL_SECONDS,
        Some(value) => match value.as_u64() {
            Some(seconds) if (15..=86_400).contains(&seconds) => seconds,
            _ => {
                return Err(format!(
                    "RequiredMinimumPollIntervalInSeconds is {value}; expected 15 to 86400"
                ))
            }
        },
    };
    let key: Triple = [key[0].clone(), key[1].clone(), key[2].clone()];
    Ok((key, interval))
}

fn requested_key(body: &Value) -> Option<Triple> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    Some([
        field("ApplicationIdentifier")?,
        field("EnvironmentIdentifier")?,
        field("ConfigurationProfileIdentifier")?,
    ])
}

/// Which level of `requested` is unknown, judged against every deployed key and alias.
fn missing_resource(state: &State, requested: &Triple) -> (&'static str, String) {
    let known: Vec<&Triple> = state
        .deployments
        .keys()
        .chain(state.aliases.keys())
        .collect();
    if !known.iter().any(|key| key[0] == requested[0]) {
        ("Application", requested[0].clone())
    } else if !known
        .iter()
        .any(|key| key[0] == requested[0] && key[1] == requested[1])
    {
        ("Environment", requested[1].clone())
    } else {
        ("ConfigurationProfile", requested[2].clone())
    }
}

/// Makes a fresh token for `session`: random-looking base64 text that always contains `+`, `/`
/// and `=`, so a client that forgets to percent-encode it is caught (wire.md §5).
fn issue_token(state: &mut State, session: usize) -> String {
    state.tokens_issued += 1;
    let mut token = String::from("AYADeJx");
    for round in 0..6u64 {
        let mut bits = state.token_seed.hash_one((state.tokens_issued, round));
        for _ in 0..10 {
            token.push(char::from(BASE64_ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
        match round {
            1 => token.push('+'),
            3 => token.push('/'),
            _ => {}
        }
    }
    token.push_str("==");
    state
        .tokens
        .insert(token.clone(), TokenState::Live(session));
    token
}

/// The 400 AppConfigData sends for a bad token (wire.md §2).
fn token_error(problem: &str) -> RawResponse {
    let extra = json!({
        "Reason": "InvalidParameters",
        "Details": { "InvalidParameters": { "ConfigurationToken": { "Problem": problem } } },
    });
    let message = format!(
        "The configuration token is {}",
        problem.to_ascii_lowercase()
    );
    error_response(400, "BadRequestException", &message, Some(extra))
}

/// A restJson1 error: the name in `x-amzn-ErrorType`, a JSON body with `Message` plus `extra`.
fn error_response(status: u16, name: &str, message: &str, extra: Option<Value>) -> RawResponse {
    let mut body = json!({ "Message": message });
    if let (Some(map), Some(Value::Object(extra))) = (body.as_object_mut(), extra) {
        map.extend(extra);
    }
    RawResponse::new(status, body.to_string().into_bytes())
        .with_header("x-amzn-ErrorType", name)
        .with_header("Content-Type", "application/json")
}

/// The first query parameter called `name`, percent-decoded as AWS decodes it (a raw `+` is a
/// space, so an unencoded token does not match).
fn query_parameter(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_component(key);
        (key == name.as_bytes())
            .then(|| String::from_utf8_lossy(&decode_query_component(value)).into_owned())
    })
}

pub(super) fn triple(parts: [&str; 3]) -> Triple {
    parts.map(str::to_string)
}
