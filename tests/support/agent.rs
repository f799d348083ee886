//! Runs the real agent binary for integration tests, and a raw HTTP/1.1 client to talk to it.
//!
//! Owns the child process (clean environment, captured output, start-up and exit waits,
//! signals) and the byte-exact client. It must not reach beyond loopback: it refuses variables
//! that point at a metadata address or a non-loopback AWS endpoint, and points the AWS endpoints
//! at a closed loopback port when a test leaves them unset. Uses `support::wait_until` and, for
//! chunked answers, `http_wire`.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{http_wire, wait_until};

/// The agent binary Cargo built for this test run.
pub const AGENT_BINARY: &str = env!("CARGO_BIN_EXE_appconfig-lite");
/// How long the agent may take to log its listening address, or to exit when expected to.
const START_BOUND: Duration = Duration::from_secs(10);
/// Read timeout of the raw client.
const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// AWS endpoints used when a test sets none: a loopback port nothing listens on (the TCP
/// "discard" port, reserved), so a missing override can never send traffic off the machine.
const UNUSED_LOOPBACK_ENDPOINT: &str = "http://127.0.0.1:9";
/// Marker of the agent's start-up log line (brief: `listening on 127.0.0.1:PORT`).
const LISTENING_MARKER: &str = "listening on ";

/// A signal to send with [`AgentProcess::send_signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
    Hup,
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Self::Term => "TERM",
            Self::Int => "INT",
            Self::Hup => "HUP",
            Self::Kill => "KILL",
        }
    }
}

/// A running agent. Dropping it kills the process.
pub struct AgentProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl AgentProcess {
    /// Starts the agent with exactly `vars` (plus `PATH`; `HTTP_PORT=0`, loopback AWS endpoints
    /// and `AWS_EC2_METADATA_DISABLED=true` unless given) and waits up to 10 s for the log line
    /// `listening on ADDR` on stderr (so not with `LOG_PATH`; a JSON log line works too).
    /// Panics, showing the log, if the agent exits or never logs it.
    pub fn start<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> Self {
        Self::start_program(AGENT_BINARY, &[], vars)
    }

    /// Like [`Self::start`] for any program and arguments: a copy of the agent under another
    /// file name (the Lambda extension name is the basename of argv[0]), or a stand-in in the
    /// harness's own tests.
    pub fn start_program<K: AsRef<str>, V: AsRef<str>>(
        program: &str,
        args: &[&str],
        vars: &[(K, V)],
    ) -> Self {
        let mut agent = Self::spawn(program, args, vars);
        let found = wait_until(START_BOUND, || {
            listening_addr(&agent.stderr_text()).is_some() || agent.has_exited()
        });
        match listening_addr(&agent.stderr_text()) {
            Some(addr) if found => agent.addr = addr,
            _ => panic!(
                "the agent did not log `{LISTENING_MARKER}ADDR` within {START_BOUND:?} \
                 (exit: {:?}); stderr:\n{}",
                agent.child.try_wait().ok().flatten(),
                agent.stderr_text()
            ),
        }
        agent
    }

    /// The address the agent said it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the agent wrote to stderr so far (its log), lossily decoded.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Everything the agent wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits up to `bound` for a log line containing `needle`; returns whether one appeared.
    pub fn wait_for_log(&self, needle: &str, bound: Duration) -> bool {
        wait_until(bound, || self.stderr_text().contains(needle))
    }

    /// Sends `signal` with the `kill` command (no `unsafe`, no libc). Panics if `kill` fails.
    pub fn send_signal(&self, signal: Signal) {
        let status = Command::new("kill")
            .arg(format!("-{}", signal.name()))
            .arg(self.pid().to_string())
            .status()
            .expect("run the kill command");
        assert!(
            status.success(),
            "kill -{} {} failed: {status}",
            signal.name(),
            self.pid()
        );
    }

    /// Waits up to `bound` for the agent to exit; `None` if it is still running. After an exit,
    /// the captured output is complete.
    pub fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.join_readers();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends a raw request to the agent; see [`request`].
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr, method, path, headers)
            .unwrap_or_else(|error| panic!("{method} {path} to the agent failed: {error}"))
    }

    /// `GET path` with no extra headers.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[])
    }

    /// Waits up to `bound` until `GET path` serves `body`, asserting that every answer on the
    /// way is a `200` (once data is cached, a refresh never shows the caller an error); returns
    /// the last answer. Panics, showing the log, if `body` never comes.
    pub fn wait_for_body(&self, path: &str, body: &[u8], bound: Duration) -> Response {
        let mut last = None;
        let served = wait_until(bound, || {
            let response = self.get(path);
            assert_eq!(response.status, 200, "GET {path}: {response}");
            let done = response.body == body;
            last = Some(response);
            done
        });
        let last = last.expect("at least one answer");
        assert!(
            served,
            "{path} still serves {:?}; log:\n{}",
            last.text(),
            self.stderr_text()
        );
        last
    }

    /// `GET path` from `callers` threads, each on its own connection, released together by a
    /// barrier; the answers in thread order. Panics if a caller gets no answer.
    pub fn get_at_once(&self, path: &str, callers: usize) -> Vec<Response> {
        let addr = self.addr;
        let barrier = Arc::new(Barrier::new(callers));
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let path = path.to_string();
                thread::spawn(move || {
                    barrier.wait();
                    request(addr, "GET", &path, &[])
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap().expect("an answer"))
            .collect()
    }

    fn spawn<K: AsRef<str>, V: AsRef<str>>(program: &str, args: &[&str], vars: &[(K, V)]) -> Self {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        check_loopback_only(&vars);
        let mut command = Command::new(program);
        command.args(args).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let defaults = [
            ("HTTP_PORT", "0"),
            ("AWS_ENDPOINT_URL_APPCONFIGDATA", UNUSED_LOOPBACK_ENDPOINT),
            ("AWS_ENDPOINT_URL_STS", UNUSED_LOOPBACK_ENDPOINT),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ];
        for (name, value) in defaults {
            if !vars.iter().any(|(given, _)| *given == name) {
                command.env(name, value);
            }
        }
        for (name, value) in &vars {
            command.env(name, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));

        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stderr.take() {
            readers.push(capture(pipe, Arc::clone(&stderr)));
        }
        if let Some(pipe) = child.stdout.take() {
            readers.push(capture(pipe, Arc::clone(&stdout)));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            child,
            addr,
            stderr,
            stdout,
            readers,
        }
    }

    fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for AgentProcess {
    /// Kills the process. The capture threads end by themselves when the pipes close; they are
    /// not joined, so a stray grandchild holding a pipe cannot block the test.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program that ran to its end.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the agent with `vars` (same defaults as [`AgentProcess::start`]) and expects it to exit
/// by itself within 10 s, as on a start-up error. Returns the exit status and stderr. Panics,
/// showing the log, if it is still running.
pub fn start_expect_exit<K: AsRef<str>, V: AsRef<str>>(vars: &[(K, V)]) -> (ExitStatus, String) {
    let exited = run_to_exit(AGENT_BINARY, &[], vars);
    (exited.status, exited.stderr)
}

/// Runs `program` with `args` and `vars` (same defaults as [`AgentProcess::start`]), e.g. the
/// agent with `--version`, and waits up to 10 s for it to exit. Panics if it does not.
pub fn run_to_exit<K: AsRef<str>, V: AsRef<str>>(
    program: &str,
    args: &[&str],
    vars: &[(K, V)],
) -> Exited {
    let mut process = AgentProcess::spawn(program, args, vars);
    match process.wait_exit(START_BOUND) {
        Some(status) => Exited {
            status,
            stdout: process.stdout_text(),
            stderr: process.stderr_text(),
        },
        None => panic!(
            "{program} did not exit within {START_BOUND:?}; stderr:\n{}",
            process.stderr_text()
        ),
    }
}

/// A response read by the raw client.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Header names as sent, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(sent, _)| sent.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of that header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(sent, _)| sent.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.text())
    }
}

/// One request on a fresh connection, closed afterwards; see [`Connection::send`].
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<Response> {
    Connection::open(addr)?.send(method, path, headers, b"")
}

/// Like [`request`], with a body (sent with `Content-Length`).
pub fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    Connection::open(addr)?.send(method, path, headers, body)
}

/// A raw keep-alive client connection, for tests that send several requests on one socket or
/// hold connections open.
pub struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects with a 10 s read timeout.
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(CLIENT_READ_TIMEOUT))?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// The underlying socket, e.g. to write bytes slowly or shut it down.
    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Sends `METHOD path HTTP/1.1` with `path` exactly as given (so tests can send odd bytes),
    /// `headers` as given, plus `Host` and `Content-Length` (when there is a body) unless given,
    /// then reads one response: by `Content-Length`, chunked, or until the server closes. `HEAD`
    /// and `204`/`304` answers have no body.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let has = |name: &str| {
            headers
                .iter()
                .any(|(given, _)| given.eq_ignore_ascii_case(name))
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() && !has("content-length") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        read_response(&mut self.reader, method.eq_ignore_ascii_case("HEAD"))
    }
}

fn read_response(reader: &mut BufReader<TcpStream>, is_head: bool) -> io::Result<Response> {
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before a status line",
        ));
    }
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(&format!("status line {:?}", status_line.trim_end())))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid(line))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if is_head || matches!(status, 204 | 304) || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        response.body = http_wire::read_chunked_body(reader, usize::MAX)?;
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().map_err(|_| invalid(length))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        response.body = body;
    } else {
        reader.read_to_end(&mut response.body)?;
    }
    Ok(response)
}

fn invalid(detail: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed response: {detail}"),
    )
}

/// Copies a pipe into a shared buffer until it closes.
fn capture(mut pipe: impl Read + Send + 'static, buffer: Arc<Mutex<String>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(read) = pipe.read(&mut chunk) {
            if read == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&chunk[..read]);
            buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&text);
        }
    })
}

/// The address in the first `listening on ADDR` log line, if one was logged.
fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|line| {
        let rest = &line[line.find(LISTENING_MARKER)? + LISTENING_MARKER.len()..];
        let word = rest.split_whitespace().next()?;
        word.trim_end_matches([',', '.', ';', ')', '"', '}'])
            .parse()
            .ok()
    })
}

/// Refuses variables that could send traffic off the machine (brief: loopback only): metadata
/// addresses anywhere, AWS endpoint overrides (`AWS_ENDPOINT_URL*`, the container `FULL_URI`,
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`) whose host is not loopback, instance metadata switched on
/// without its endpoint pointed at a loopback fake (the default is 169.254.169.254), and
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, which always means `http://169.254.170.2` (wire.md
/// §4); a test of it needs the agent's host override pointed at a loopback fake, and then this
/// check must learn that override's name.
fn check_loopback_only(vars: &[(&str, &str)]) {
    for (name, value) in vars {
        assert!(
            !name.ends_with("CONTAINER_CREDENTIALS_RELATIVE_URI"),
            "{name} would send the agent to 169.254.170.2; use FULL_URI with a loopback fake"
        );
        let lower = value.to_ascii_lowercase();
        assert!(
            !lower.contains("169.254.") && !lower.contains("fd00:ec2"),
            "{name}={value} points at a metadata address; use a loopback fake"
        );
        if name.starts_with("AWS_ENDPOINT_URL")
            || name.ends_with("CREDENTIALS_FULL_URI")
            || *name == "AWS_EC2_METADATA_SERVICE_ENDPOINT"
        {
            assert!(
                is_loopback_url(value),
                "{name}={value} is not a loopback URL"
            );
        }
    }
    let metadata_on = vars.iter().any(|(name, value)| {
        *name == "AWS_EC2_METADATA_DISABLED" && !value.eq_ignore_ascii_case("true")
    });
    if metadata_on {
        assert!(
            vars.iter()
                .any(|(name, _)| *name == "AWS_EC2_METADATA_SERVICE_ENDPOINT"),
            "AWS_EC2_METADATA_DISABLED is not true but AWS_EC2_METADATA_SERVICE_ENDPOINT is \
             unset, so the agent would call 169.254.169.254; point it at a loopback fake"
        );
    }
}

/// Whether `url` is `scheme://host[:port][/...]` with a loopback host: `127.0.0.0/8`, `[::1]`
/// or `localhost`. User info before `@` is skipped, so `http://127.0.0.1@example.com` is not
/// loopback.
fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}
