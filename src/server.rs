//! The HTTP listener: binds the address of product.md §2, runs a pool of worker threads over
//! `tiny_http`, and writes what `routes` answers.
//!
//! It never calls AWS and holds no configuration data; `lifecycle` starts and stops it.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{Header, Response, Server};

use crate::cache::lock;
use crate::routes::{Reply, ReplyBody, RequestView, Router};
use crate::settings::HttpHost;

/// Worker threads per listener: requests are answered from memory in microseconds, so a few
/// threads keep both cores busy while a slow first fetch holds one.
const WORKERS: usize = 8;

/// The listener could not be started.
#[derive(Debug)]
pub struct ServerError {
    pub address: String,
    pub reason: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot listen on {}: {}; set HTTP_PORT to a free port",
            self.address, self.reason
        )
    }
}

impl std::error::Error for ServerError {}

/// A running listener (one socket per address) and its workers.
pub struct HttpServer {
    servers: Vec<Arc<Server>>,
    workers: usize,
    running: Arc<(Mutex<usize>, Condvar)>,
    address: SocketAddr,
}

impl HttpServer {
    /// Binds and starts serving. With `HttpHost::Localhost` it binds 127.0.0.1 and, when the
    /// machine has IPv6 loopback, `[::1]` on the same port.
    pub fn start(
        host: &HttpHost,
        port: u16,
        router: Arc<Router>,
    ) -> Result<HttpServer, ServerError> {
        let primary = match host {
            HttpHost::Localhost => IpAddr::V4(Ipv4Addr::LOCALHOST),
            HttpHost::All => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            HttpHost::Address(address) => *address,
        };
        let first = bind(SocketAddr::new(primary, port))?;
        let address = first.server_addr().to_ip().ok_or_else(|| ServerError {
            address: format!("{primary}:{port}"),
            reason: "the listener has no IP address".into(),
        })?;
        let mut servers = vec![Arc::new(first)];
        let second = match host {
            HttpHost::Localhost => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            HttpHost::All => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            HttpHost::Address(_) => None,
        };
        if let Some(ip) = second {
            match bind(SocketAddr::new(ip, address.port())) {
                Ok(server) => servers.push(Arc::new(server)),
                Err(e) => log::debug!("not listening on IPv6 as well: {e}"),
            }
        }

        let running = Arc::new((Mutex::new(0usize), Condvar::new()));
        let mut workers = 0;
        for (position, server) in servers.iter().enumerate() {
            let count = if position == 0 { WORKERS } else { WORKERS / 4 };
            for index in 0..count {
                let server = Arc::clone(server);
                let router = Arc::clone(&router);
                let done = Arc::clone(&running);
                *lock(&running.0) += 1;
                let spawned =
                    thread::Builder::new()
                        .name(format!("http-{index}"))
                        .spawn(move || {
                            serve(&server, &router);
                            *lock(&done.0) -= 1;
                            done.1.notify_all();
                        });
                if let Err(e) = spawned {
                    *lock(&running.0) -= 1;
                    return Err(ServerError {
                        address: address.to_string(),
                        reason: format!("cannot start a worker thread: {e}"),
                    });
                }
                workers += 1;
            }
        }
        Ok(HttpServer {
            servers,
            workers,
            running,
            address,
        })
    }

    /// The bound address (the real port when `HTTP_PORT=0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting and gives the requests being answered up to `grace` to finish; any
    /// still running after that (a caller waiting on a slow first fetch) is dropped when the
    /// process exits.
    pub fn shutdown(self, grace: Duration) {
        for server in &self.servers {
            for _ in 0..self.workers {
                server.unblock();
            }
        }
        let deadline = Instant::now() + grace;
        let (count, finished) = &*self.running;
        let mut running = lock(count);
        while *running > 0 {
            let now = Instant::now();
            if now >= deadline {
                log::debug!("shutdown: {} requests still running are dropped", *running);
                return;
            }
            running = match finished.wait_timeout(running, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn bind(address: SocketAddr) -> Result<Server, ServerError> {
    Server::http(address).map_err(|e| ServerError {
        address: address.to_string(),
        reason: e.to_string(),
    })
}

/// One worker: take a request, route it, write the answer, until `unblock`.
fn serve(server: &Server, router: &Router) {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let method = request.method().to_string();
        let started = std::time::Instant::now();
        let reply = {
            let view = RequestView {
                method: &method,
                target: request.url(),
                headers: request
                    .headers()
                    .iter()
                    .map(|h| (h.field.as_str().as_str(), h.value.as_str()))
                    .collect(),
            };
            router.handle(&view)
        };
        log::trace!(
            "{method} {} -> {} in {} µs",
            request.url().split('?').next().unwrap_or_default(),
            reply.status,
            started.elapsed().as_micros()
        );
        let is_head = method == "HEAD";
        if let Err(e) = request.respond(into_response(reply, is_head)) {
            log::trace!("client went away before the answer was written: {e}");
        }
    }
}

fn into_response(reply: Reply, is_head: bool) -> Response<BodyReader> {
    let length = reply.body.as_slice().len();
    let headers = reply
        .headers
        .into_iter()
        .filter_map(|(name, value)| Header::from_bytes(name.as_bytes(), value.as_bytes()).ok())
        .collect();
    let body = if is_head {
        ReplyBody::Empty
    } else {
        reply.body
    };
    // For HEAD the length is still the real one, so clients see what GET would send.
    Response::new(
        reply.status.into(),
        headers,
        BodyReader { body, position: 0 },
        Some(length),
        None,
    )
}

/// Streams a reply body without copying a cached snapshot.
struct BodyReader {
    body: ReplyBody,
    position: usize,
}

impl Read for BodyReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = self
            .body
            .as_slice()
            .get(self.position..)
            .unwrap_or_default();
        let count = remaining.len().min(buffer.len());
        buffer[..count].copy_from_slice(&remaining[..count]);
        self.position += count;
        Ok(count)
    }
}
