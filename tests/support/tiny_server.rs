//! The HTTP plumbing of the fakes built on tiny_http (`sts`, `container_credentials`, `imds`): a
//! server on `127.0.0.1:0` whose one worker thread hands every request to the fake, stopped and
//! joined when dropped, and a header lookup.
//!
//! It knows no protocol and must not bind anything but loopback. Fakes that count TCP
//! connections or misbehave at the socket level use `http_wire` instead. Talks to no other
//! support module.

use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// A running server. Dropping it stops accepting, then waits for the request in hand.
pub struct TinyServer {
    server: Arc<tiny_http::Server>,
    worker: Option<JoinHandle<()>>,
}

impl TinyServer {
    /// Binds `127.0.0.1:0` and answers requests one at a time, in arrival order, with `handle`.
    pub fn start(mut handle: impl FnMut(tiny_http::Request) + Send + 'static) -> TinyServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let worker = {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    handle(request);
                }
            })
        };
        TinyServer {
            server,
            worker: Some(worker),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.server_addr().to_ip().unwrap().port()
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The first value of the header `name`, compared case-insensitively.
pub fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.to_string())
}
