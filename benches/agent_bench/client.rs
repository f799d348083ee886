//! A raw HTTP/1.1 client on one keep-alive connection: GETs to the agent, and the minimal Lambda
//! extension that gives the fake Extensions API's own floor for the INVOKE figure.
//!
//! Owns only framing: `Content-Length` and chunked bodies (tiny_http chunks answers over 32 KiB),
//! no redirects, no proxy (so a proxy variable of the shell can never take loopback traffic
//! away). Used by `lambda`, `memory`
//! and `serve`; it connects to the address it is given, always a loopback one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::BenchError;

/// How long one answer may take; answers from memory take microseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection.
pub struct HttpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// A status and a body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpClient {
    pub fn connect(address: SocketAddr) -> Result<HttpClient, BenchError> {
        let what = format!("connect to {address}");
        let writer = TcpStream::connect(address).map_err(BenchError::io(what.clone()))?;
        // No read timeout on purpose for event/next, which blocks until an event is queued;
        // the GETs set one.
        let _ = writer.set_nodelay(true);
        let reader = BufReader::new(writer.try_clone().map_err(BenchError::io(what))?);
        Ok(HttpClient { reader, writer })
    }

    /// A GET that must be answered within 10 s.
    pub fn get(&mut self, path: &str) -> Result<Answer, BenchError> {
        let _ = self.writer.set_read_timeout(Some(READ_TIMEOUT));
        self.request("GET", path, &[], b"")
    }

    /// Sends one request and reads its answer.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, BenchError> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let what = format!("{method} {path}");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer
            .write_all(&request)
            .map_err(BenchError::io(what.clone()))?;
        self.read_answer(&what)
    }

    fn read_answer(&mut self, what: &str) -> Result<Answer, BenchError> {
        let mut line = String::new();
        self.read_line(&mut line, what)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| BenchError::Unexpected(format!("{what}: bad status line {line:?}")))?;
        let mut length = 0;
        let mut is_chunked = false;
        loop {
            line.clear();
            self.read_line(&mut line, what)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("Content-Length") {
                    length = value.trim().parse().map_err(|_| {
                        BenchError::Unexpected(format!("{what}: Content-Length {value:?}"))
                    })?;
                } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
                    is_chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        let body = if is_chunked {
            self.read_chunks(what)?
        } else {
            self.read_bytes(length, what)?
        };
        Ok(Answer { status, body })
    }

    /// A chunked body: hexadecimal size lines, each chunk followed by CRLF, a zero size, then
    /// trailer lines up to an empty one.
    fn read_chunks(&mut self, what: &str) -> Result<Vec<u8>, BenchError> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.read_line(&mut line, what)?;
            let size_text = line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text.trim(), 16)
                .map_err(|_| BenchError::Unexpected(format!("{what}: chunk size {size_text:?}")))?;
            if size == 0 {
                break;
            }
            body.extend(self.read_bytes(size, what)?);
            line.clear();
            self.read_line(&mut line, what)?;
        }
        loop {
            line.clear();
            self.read_line(&mut line, what)?;
            if line.trim_end().is_empty() {
                return Ok(body);
            }
        }
    }

    fn read_bytes(&mut self, length: usize, what: &str) -> Result<Vec<u8>, BenchError> {
        let mut bytes = vec![0; length];
        self.reader
            .read_exact(&mut bytes)
            .map_err(BenchError::io(format!("{what}: read the body")))?;
        Ok(bytes)
    }

    fn read_line(&mut self, line: &mut String, what: &str) -> Result<(), BenchError> {
        match self.reader.read_line(line) {
            Ok(0) => Err(BenchError::Unexpected(format!(
                "{what}: the connection closed before the answer"
            ))),
            Ok(_) => Ok(()),
            Err(error) => Err(BenchError::io(format!("{what}: read the answer"))(error)),
        }
    }
}
