//! Fake container credentials endpoint (ECS, EKS Pod Identity, Lambda SnapStart; wire.md §4)
//! on `127.0.0.1:0`.
//!
//! Serves one path; checks the `Authorization` header against the expected token (401 JSON
//! error otherwise); answers `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration` from a
//! script or, with the script empty, numbered credentials expiring at [`DEFAULT_EXPIRATION`].
//! Records each call's path and `Authorization` value, in order. Served by `tiny_server`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::tiny_server::{self, TinyServer};

/// Far enough ahead that nothing refreshes unless a test moves its clock there.
pub const DEFAULT_EXPIRATION: &str = "2099-12-31T12:00:00Z";

/// One request as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCall {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct ContainerAnswer {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: Option<String>,
    /// Written as given (fractions, offsets); `None` leaves the field out.
    pub expiration: Option<String>,
}

impl ContainerAnswer {
    pub fn new(key: &str, secret: &str, token: &str, expiration: &str) -> ContainerAnswer {
        ContainerAnswer {
            access_key_id: key.into(),
            secret_access_key: secret.into(),
            token: Some(token.into()),
            expiration: Some(expiration.into()),
        }
    }
}

pub struct FakeContainerCredentials {
    url: String,
    state: Arc<Mutex<State>>,
    _server: TinyServer,
}

struct State {
    path: String,
    expected_authorization: Option<String>,
    answers: VecDeque<ContainerAnswer>,
    calls: Vec<ContainerCall>,
    issued: usize,
}

impl FakeContainerCredentials {
    /// Serves `path` (for example `/2021-04-23/credentials`); with `expected_authorization`
    /// set, any other `Authorization` value (or none) gets a 401.
    pub fn start(path: &str, expected_authorization: Option<&str>) -> FakeContainerCredentials {
        let state = Arc::new(Mutex::new(State {
            path: path.to_string(),
            expected_authorization: expected_authorization.map(str::to_string),
            answers: VecDeque::new(),
            calls: Vec::new(),
            issued: 0,
        }));
        let server = {
            let state = Arc::clone(&state);
            TinyServer::start(move |request| handle(&state, request))
        };
        FakeContainerCredentials {
            url: format!("http://127.0.0.1:{}{path}", server.port()),
            state,
            _server: server,
        }
    }

    /// The full URL, for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn push_answer(&self, answer: ContainerAnswer) {
        self.state.lock().unwrap().answers.push_back(answer);
    }

    /// Changes the token the fake accepts (a rotated token file).
    pub fn expect_authorization(&self, token: Option<&str>) {
        self.state.lock().unwrap().expected_authorization = token.map(str::to_string);
    }

    pub fn calls(&self) -> Vec<ContainerCall> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }
}

fn handle(state: &Mutex<State>, request: tiny_http::Request) {
    let authorization = tiny_server::header(&request, "Authorization");
    let call = ContainerCall {
        method: request.method().to_string(),
        path: request.url().to_string(),
        authorization: authorization.clone(),
    };

    let mut state = state.lock().unwrap();
    state.calls.push(call.clone());
    let (status, body) = if call.method != "GET" || call.path != state.path {
        (
            404,
            r#"{"code":"NotFound","message":"no such path"}"#.to_string(),
        )
    } else if state.expected_authorization.is_some()
        && authorization != state.expected_authorization
    {
        (
            401,
            r#"{"code":"Unauthorized","message":"authorization token rejected"}"#.to_string(),
        )
    } else {
        let answer = state.answers.pop_front().unwrap_or_else(|| {
            let n = state.issued;
            ContainerAnswer::new(
                &format!("ASIAFAKECONTAINER{n:03}"),
                &format!("fake-container-secret-{n}"),
                &format!("fake-container-token-{n}+/="),
                DEFAULT_EXPIRATION,
            )
        });
        state.issued += 1;
        let mut json = serde_json::json!({
            "AccessKeyId": answer.access_key_id,
            "SecretAccessKey": answer.secret_access_key,
            "RoleArn": "arn:aws:iam::123456789012:role/fake",
        });
        if let Some(token) = answer.token {
            json["Token"] = token.into();
        }
        if let Some(expiration) = answer.expiration {
            json["Expiration"] = expiration.into();
        }
        (200, json.to_string())
    };
    drop(state);

    let content_type = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(content_type);
    let _ = request.respond(response);
}
