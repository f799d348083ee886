//! Minimal server side of HTTP/1.1 for the loopback fakes: read one request from a keep-alive
//! connection, write one response (whole, or cut short on purpose).
//!
//! Owns only framing (request line, headers, `Content-Length` and chunked bodies, `Connection`);
//! it knows nothing of AWS. Used by `appconfigdata`, and by `agent`'s client for chunked
//! answers; kept apart so other fakes can share it. The fakes write their own parser instead of
//! using tiny_http so they can count TCP connections and misbehave at the socket level.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};

/// Longest request head (request line plus headers) accepted, far above anything the agent sends.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted; AppConfigData and STS request bodies are a few hundred bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One request as received.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// The request target exactly as sent: raw path and query, no decoding.
    pub target: String,
    /// Header names and values in the order received, names as sent, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client asked to close after this exchange (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    pub wants_close: bool,
}

impl RawRequest {
    /// The target's path, before any `?`.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The target's raw query, after the first `?` (empty when none).
    pub fn query(&self) -> &str {
        self.target
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or("")
    }

    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(received, _)| received.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A response to write.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`, which the writer adds.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A response with no headers yet.
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// Reads the next request from a connection. `Ok(None)` means the client closed the connection
/// cleanly between requests. Errors are framing faults (the caller answers 400 and closes) or
/// I/O errors including the idle read timeout.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<RawRequest>> {
    let mut head_bytes = 0;
    let mut request_line = String::new();
    // RFC 9112 §2.2: a server should ignore empty lines before the request line.
    while request_line.trim().is_empty() {
        request_line.clear();
        let read = read_line(reader, &mut request_line, &mut head_bytes)?;
        if read == 0 {
            return Ok(None);
        }
    }
    let mut parts = request_line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(&format!(
            "malformed request line {:?}",
            request_line.trim_end()
        )));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err(invalid(&format!(
            "malformed request line {:?}",
            request_line.trim_end()
        )));
    }

    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if read_line(reader, &mut line, &mut head_bytes)? == 0 {
            return Err(invalid("connection closed inside the request head"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(&format!("header line {line:?}")))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }

    let mut request = RawRequest {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: Vec::new(),
        wants_close: false,
    };
    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    request.wants_close = connection.contains("close")
        || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked_body(reader, MAX_BODY_BYTES)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(&format!("Content-Length {length:?}")))?;
        if length > MAX_BODY_BYTES {
            return Err(invalid(&format!("body of {length} bytes is too large")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

/// Writes a whole response. `close` adds `Connection: close`; the caller then drops the stream.
/// A `204` or `304` carries no `Content-Length` and no body.
pub fn write_response(
    stream: &mut TcpStream,
    response: &RawResponse,
    close: bool,
) -> io::Result<()> {
    let bodyless = matches!(response.status, 204 | 304);
    let length = if bodyless {
        None
    } else {
        Some(response.body.len())
    };
    let mut bytes = response_head(response, length, close);
    if !bodyless {
        bytes.extend_from_slice(&response.body);
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

/// Writes the head of `response` with its full `Content-Length` (at least 1), then only the first
/// half of the body, then shuts the socket down in both directions: the client sees the
/// connection end in the middle of the body. (std cannot set `SO_LINGER` without `unsafe`, so
/// the end is a FIN, not an RST.)
pub fn write_truncated_response(stream: &mut TcpStream, response: &RawResponse) -> io::Result<()> {
    let declared = response.body.len().max(1);
    let mut bytes = response_head(response, Some(declared), false);
    bytes.extend_from_slice(&response.body[..response.body.len() / 2]);
    let written = stream.write_all(&bytes).and_then(|()| stream.flush());
    let _ = stream.shutdown(Shutdown::Both);
    written
}

/// The standard reason phrase for the statuses the fakes send.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn response_head(response: &RawResponse, length: Option<usize>, close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads one line into `line`, counting it against the head limit. Returns bytes read.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut String,
    head_bytes: &mut usize,
) -> io::Result<usize> {
    let mut raw = Vec::new();
    let read = reader
        .take((MAX_HEAD_BYTES - *head_bytes + 1) as u64)
        .read_until(b'\n', &mut raw)?;
    *head_bytes += read;
    if *head_bytes > MAX_HEAD_BYTES {
        return Err(invalid("request head too large"));
    }
    line.push_str(&String::from_utf8_lossy(&raw));
    Ok(read)
}

/// Reads a chunked body (RFC 9112 §7.1) up to its last chunk and trailer section; refuses one
/// of more than `max_bytes`. The agent harness's client uses it for the agent's answers too.
pub fn read_chunked_body(reader: &mut impl BufRead, max_bytes: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(&format!("chunk size {size_text:?}")))?;
        if size > max_bytes - body.len() {
            return Err(invalid("chunked body too large"));
        }
        if size == 0 {
            // Skip any trailer fields up to the final empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

fn invalid(detail: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail.to_string())
}
