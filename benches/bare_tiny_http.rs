//! `bare_tiny_http`: the baseline server of `scripts/bench`, a tiny_http server that answers every
//! request with the same bytes, so the agent's HTTP figures can be read as ratios to it.
//!
//! Owns only this program: its arguments and its worker threads. It uses the agent's own
//! tiny_http version (the one in Cargo.lock) and nothing of the agent's code: no routing, no
//! cache, no logging. It listens on 127.0.0.1 only, prints `listening on 127.0.0.1:PORT` on
//! stdout once bound, and serves until it is killed; `scripts/bench` stops it by its process id.
//! Built with `cargo build --release --bench bare_tiny_http` (the agent's release profile, so
//! the two are compiled alike); `bench = false` keeps `cargo bench` from starting it.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use tiny_http::{Header, Response, Server};

/// Worker threads: the calibration of quality.md used 4.
const DEFAULT_WORKERS: usize = 4;

const USAGE: &str = "\
usage: bare_tiny_http --body FILE [--header 'Name: value']... [--port PORT] [--workers N]

Answers every request on 127.0.0.1:PORT (default 0: a free port) with 200, FILE's bytes and the
given headers, from N worker threads (default 4). Prints `listening on 127.0.0.1:PORT` once bound
and serves until killed.
";

/// What the command line asked for.
struct Options {
    body: PathBuf,
    headers: Vec<Header>,
    port: u16,
    workers: usize,
}

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("bare_tiny_http: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bare_tiny_http: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` for `--help`; `Err` names the argument that is wrong and what it should be.
fn parse_options(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut body = None;
    let mut headers = Vec::new();
    let mut port = 0;
    let mut workers = DEFAULT_WORKERS;
    let mut args = args;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--body" => body = Some(PathBuf::from(value("--body")?)),
            "--header" => {
                let line = value("--header")?;
                let header = line
                    .split_once(':')
                    .and_then(|(name, value)| {
                        Header::from_bytes(name.trim().as_bytes(), value.trim().as_bytes()).ok()
                    })
                    .ok_or_else(|| format!("--header is {line:?}; give 'Name: value'"))?;
                headers.push(header);
            }
            "--port" => {
                let text = value("--port")?;
                port = text
                    .parse()
                    .map_err(|_| format!("--port is {text:?}; give a port from 0 to 65535"))?;
            }
            "--workers" => {
                let text = value("--workers")?;
                workers = text
                    .parse()
                    .ok()
                    .filter(|count| (1..=256).contains(count))
                    .ok_or_else(|| format!("--workers is {text:?}; give 1 to 256"))?;
            }
            "-h" | "--help" => return Ok(None),
            // `cargo bench` passes `--bench` to every bench target it runs.
            "--bench" => return Ok(None),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let body = body.ok_or_else(|| "--body FILE is required".to_string())?;
    Ok(Some(Options {
        body,
        headers,
        port,
        workers,
    }))
}

fn serve(options: &Options) -> Result<(), String> {
    let body = fs::read(&options.body)
        .map_err(|error| format!("cannot read {}: {error}", options.body.display()))?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let server =
        Server::http(address).map_err(|error| format!("cannot listen on {address}: {error}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| "the listener has no IP address".to_string())?;
    let server = Arc::new(server);
    let body: Arc<[u8]> = body.into();
    let headers: Arc<[Header]> = options.headers.clone().into();

    let mut workers = Vec::with_capacity(options.workers);
    for _ in 0..options.workers {
        let server = Arc::clone(&server);
        let body = Arc::clone(&body);
        let headers = Arc::clone(&headers);
        workers.push(thread::spawn(move || {
            answer_requests(&server, &body, &headers)
        }));
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {bound}").map_err(|error| error.to_string())?;
    stdout.flush().map_err(|error| error.to_string())?;
    drop(stdout);

    for worker in workers {
        if worker.join().is_err() {
            return Err("a worker thread panicked".to_string());
        }
    }
    Ok(())
}

/// One worker: the same answer to every request, until the listener fails.
fn answer_requests(server: &Server, body: &[u8], headers: &[Header]) {
    loop {
        let request = match server.recv() {
            Ok(request) => request,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut response = Response::from_data(body.to_vec());
        for header in headers {
            response.add_header(header.clone());
        }
        // A client that went away is not this server's problem; the next request is.
        let _ = request.respond(response);
    }
}
