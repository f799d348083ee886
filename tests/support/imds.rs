//! Fake EC2 instance metadata service, IMDSv2 only (wire.md §4), on `127.0.0.1:0`; tests point
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT` at it.
//!
//! `PUT /latest/api/token` needs `X-aws-ec2-metadata-token-ttl-seconds` (1–21600) and returns a
//! session token; the two `GET`s under `/latest/meta-data/iam/security-credentials/` need that
//! token in `X-aws-ec2-metadata-token` (401 otherwise) and return the role name, then the
//! role's credentials JSON (`Code: Success`). Records each call as `METHOD path`, in order.
//! Served by `tiny_server`.

use std::sync::{Arc, Mutex};

use super::tiny_server::{header, TinyServer};

const TOKEN_PATH: &str = "/latest/api/token";
const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";
/// Credentials expire far ahead: these tests are about the protocol, not refresh.
pub const EXPIRATION: &str = "2099-12-31T12:00:00Z";

pub struct FakeImds {
    endpoint: String,
    /// The session token the fake hands out; a test may plant it as a secret.
    pub session_token: String,
    state: Arc<Mutex<State>>,
    _server: TinyServer,
}

struct State {
    role: String,
    session_token: String,
    access_key_id: String,
    secret_access_key: String,
    token: String,
    calls: Vec<String>,
}

impl FakeImds {
    /// A fake whose instance profile is `role` and whose credentials are the given values.
    pub fn start(
        role: &str,
        access_key_id: &str,
        secret_access_key: &str,
        token: &str,
    ) -> FakeImds {
        let state = Arc::new(Mutex::new(State {
            role: role.into(),
            session_token: String::new(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            token: token.into(),
            calls: Vec::new(),
        }));
        let server = {
            let state = Arc::clone(&state);
            TinyServer::start(move |request| handle(&state, request))
        };
        // No request can come before this: only `start` knows the port yet.
        let port = server.port();
        let session_token = format!("fake-imds-session-{port}==");
        state.lock().unwrap().session_token = session_token.clone();
        FakeImds {
            endpoint: format!("http://127.0.0.1:{port}"),
            session_token,
            state,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Every call as `METHOD path`, in arrival order.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }
}

fn handle(state: &Mutex<State>, request: tiny_http::Request) {
    let method = request.method().to_string();
    let path = request.url().to_string();
    let mut state = state.lock().unwrap();
    state.calls.push(format!("{method} {path}"));

    let ttl = header(&request, "X-aws-ec2-metadata-token-ttl-seconds");
    let token = header(&request, "X-aws-ec2-metadata-token");
    let role_path = format!("{ROLES_PATH}{}", state.role);
    let (status, body) = match (method.as_str(), path.as_str()) {
        ("PUT", TOKEN_PATH) => match ttl.and_then(|t| t.parse::<u32>().ok()) {
            Some(1..=21_600) => (200, state.session_token.clone()),
            _ => (400, String::new()),
        },
        ("GET", _) if token.as_deref() != Some(state.session_token.as_str()) => {
            (401, String::new())
        }
        ("GET", ROLES_PATH) => (200, format!("{}\n", state.role)),
        ("GET", p) if p == role_path => {
            let json = serde_json::json!({
                "Code": "Success",
                "LastUpdated": "2026-12-04T14:00:00Z",
                "Type": "AWS-HMAC",
                "AccessKeyId": state.access_key_id,
                "SecretAccessKey": state.secret_access_key,
                "Token": state.token,
                "Expiration": EXPIRATION,
            });
            (200, json.to_string())
        }
        ("GET", _) => (404, String::new()),
        _ => (405, String::new()),
    };
    drop(state);

    let response = tiny_http::Response::from_string(body).with_status_code(status);
    let _ = request.respond(response);
}
