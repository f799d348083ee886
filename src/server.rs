//! The HTTP listener: binds the address of product.md §2, runs a pool of worker threads over
//! `tiny_http`, and writes what `routes` answers.
//!
//! It never calls AWS and holds no configuration data; `lifecycle` starts and stops it.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tiny_http::{Header, Response, Server};

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
    workers: Vec<JoinHandle<()>>,
    address: SocketAddr,
}

impl HttpServer {
    /// Binds and starts serving. With `HttpHost::Localhost` it binds 127.0.0.1 and, when the
    /// machine has IPv6 loopback, `[::1]` on the same port.
    pub fn start(host: &HttpHost, port: u16, router: Arc<Router>) -> Result<HttpServer, ServerError> {
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

        let mut workers = Vec::new();
        for server in &servers {
            let count = if workers.is_empty() { WORKERS } else { WORKERS / 4 };
            for index in 0..count {
                let server = Arc::clone(server);
                let router = Arc::clone(&router);
                let worker = thread::Builder::new()
                    .name(format!("http-{index}"))
                    .spawn(move || serve(&server, &router))
                    .map_err(|e| ServerError {
                        address: address.to_string(),
                        reason: format!("cannot start a worker thread: {e}"),
                    })?;
                workers.push(worker);
            }
        }
        Ok(HttpServer { servers, workers, address })
    }

    /// The bound address (the real port when `HTTP_PORT=0`).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets each worker finish the request it is writing, and joins them.
    pub fn shutdown(self) {
        for server in &self.servers {
            for _ in 0..self.workers.len() {
                server.unblock();
            }
        }
        for worker in self.workers {
            if worker.join().is_err() {
                log::error!("an HTTP worker panicked; please report this as a bug");
            }
        }
    }
}

fn bind(address: SocketAddr) -> Result<Server, ServerError> {
    Server::http(address)
        .map_err(|e| ServerError { address: address.to_string(), reason: e.to_string() })
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
    let body = if is_head { ReplyBody::Empty } else { reply.body };
    // For HEAD the length is still the real one, so clients see what GET would send.
    Response::new(reply.status.into(), headers, BodyReader { body, position: 0 }, Some(length), None)
}

/// Streams a reply body without copying a cached snapshot.
struct BodyReader {
    body: ReplyBody,
    position: usize,
}

impl Read for BodyReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let remaining = self.body.as_slice().get(self.position..).unwrap_or_default();
        let count = remaining.len().min(buffer.len());
        buffer[..count].copy_from_slice(&remaining[..count]);
        self.position += count;
        Ok(count)
    }
}
