//! Routing: turns a request line and headers into a typed request, asks the cache, and maps
//! the outcome to a status, headers and a one-line error body (product.md §2).
//!
//! It never calls AWS itself and never touches sockets: `server` hands it a [`RequestView`]
//! and writes the [`Reply`] it returns.

use std::sync::Arc;

use crate::cache::{etag_of, percent_decode, Cache, CacheError, ConfigKey, Snapshot};
use crate::credentials::CredentialsError;
use crate::flags::{parse_context, FlagError};
use crate::logging::Secret;
use crate::upstream::UpstreamError;

/// Longest accepted identifier, in bytes after decoding (AppConfig's own limit, wire.md §2).
const MAX_SEGMENT_BYTES: usize = 128;

/// What `server` passes in: the method, the raw request target, and the headers.
pub struct RequestView<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
}

impl RequestView<'_> {
    fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The body of a reply: a cached snapshot served without copying, or owned bytes.
pub enum ReplyBody {
    Empty,
    Snapshot(Arc<Snapshot>),
    Bytes(Vec<u8>),
}

impl ReplyBody {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            ReplyBody::Empty => &[],
            ReplyBody::Snapshot(snapshot) => &snapshot.bytes,
            ReplyBody::Bytes(bytes) => bytes,
        }
    }
}

/// What to send back. For `HEAD`, `server` sends the headers and the length but no body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReplyBody,
}

impl Reply {
    fn error(status: u16, code: &str, message: impl std::fmt::Display) -> Reply {
        let line = format!("{code}: {message}");
        // One line, as product.md §2.4 asks, whatever the message carried.
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Reply {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            body: ReplyBody::Bytes(line.into_bytes()),
        }
    }
}

/// The routing table and what it needs: the cache and the optional bearer token.
pub struct Router {
    cache: Arc<Cache>,
    access_token: Option<Secret>,
}

/// A request the router understood.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Ping,
    Configuration { key: ConfigKey, flags: Vec<String> },
}

/// Why a request was refused before reaching the cache.
#[derive(Debug, PartialEq, Eq)]
enum RouteError {
    /// The path is not one of ours.
    UnknownPath,
    /// A configuration path with a bad segment or the wrong number of segments.
    BadPath(String),
}

impl Router {
    pub fn new(cache: Arc<Cache>, access_token: Option<Secret>) -> Self {
        Router {
            cache,
            access_token,
        }
    }

    /// Answers one request. Never panics on what a caller sends.
    pub fn handle(&self, request: &RequestView<'_>) -> Reply {
        let target = origin_form(request.target);
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, query),
            None => (target, ""),
        };
        let route = match parse_route(path, query) {
            Ok(route) => route,
            Err(RouteError::UnknownPath) => {
                return Reply::error(404, "NotFound", format!("no route for {}", printable(path)))
            }
            Err(RouteError::BadPath(reason)) => return Reply::error(400, "BadRequest", reason),
        };
        if request.method != "GET" && request.method != "HEAD" {
            let mut reply = Reply::error(
                405,
                "MethodNotAllowed",
                format!(
                    "{} is not allowed here; use GET or HEAD",
                    printable(request.method)
                ),
            );
            reply.headers.push(("Allow", "GET, HEAD".to_string()));
            return reply;
        }
        match route {
            Route::Ping => Reply {
                status: 200,
                headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
                body: ReplyBody::Bytes(b"healthy".to_vec()),
            },
            Route::Configuration { key, flags } => {
                if !self.is_authorized(request) {
                    let mut reply = Reply::error(
                        401,
                        "Unauthorized",
                        "send the header Authorization: Bearer <ACCESS_TOKEN>",
                    );
                    reply
                        .headers
                        .push(("WWW-Authenticate", "Bearer".to_string()));
                    return reply;
                }
                self.configuration(request, &key, &flags)
            }
        }
    }

    fn configuration(&self, request: &RequestView<'_>, key: &ConfigKey, flags: &[String]) -> Reply {
        let snapshot = match self.cache.get(key) {
            Ok(snapshot) => snapshot,
            Err(error) => return cache_error_reply(key, &error),
        };
        let evaluated = if flags.is_empty() {
            snapshot.variant_flags().map(|set| (set, None))
        } else {
            match snapshot.flags() {
                Ok(set) => Some((set, Some(flags))),
                Err(error) => {
                    return Reply::error(400, "BadRequest", format!("{key}: {error}"));
                }
            }
        };
        let Some((set, keys)) = evaluated else {
            return answer(
                request,
                snapshot.content_type.clone(),
                snapshot.etag.clone(),
                &snapshot.version,
                ReplyBody::Snapshot(Arc::clone(&snapshot)),
            );
        };

        // Variant answers depend on the caller's context (feature-flags.md §3).
        let values: Vec<&[u8]> = request
            .header_values("context")
            .map(str::as_bytes)
            .collect();
        let context = match parse_context(&values) {
            Ok(context) => context,
            Err(error) => return Reply::error(400, "BadRequest", error),
        };
        let bytes = match keys {
            None => set.evaluate_all(&context),
            Some(keys) => match set.evaluate(keys, &context) {
                Ok(bytes) => bytes,
                Err(FlagError::UnknownFlag(flag)) => {
                    return Reply::error(
                        404,
                        "ResourceNotFoundException",
                        format!("flag {flag:?} was not found in {key}"),
                    );
                }
                Err(error) => return Reply::error(400, "BadRequest", format!("{key}: {error}")),
            },
        };
        let etag = etag_of(&bytes);
        answer(
            request,
            "application/json".to_string(),
            etag,
            &snapshot.version,
            ReplyBody::Bytes(bytes),
        )
    }

    /// `Authorization: Bearer <token>` when `ACCESS_TOKEN` is set, compared in constant time.
    fn is_authorized(&self, request: &RequestView<'_>) -> bool {
        let Some(expected) = &self.access_token else {
            return true;
        };
        request.header_values("authorization").any(|value| {
            let value = value.trim();
            let presented = match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
                _ => return false,
            };
            constant_time_eq(presented.as_bytes(), expected.expose().as_bytes())
        })
    }
}

/// A `200` with the headers of product.md §2.3, or a `304` when the caller's `If-None-Match`
/// names this ETag.
fn answer(
    request: &RequestView<'_>,
    content_type: String,
    etag: String,
    version: &Option<String>,
    body: ReplyBody,
) -> Reply {
    let matched = request
        .header_values("if-none-match")
        .any(|v| etag_matches(v, &etag));
    let mut headers = vec![("Content-Type", content_type), ("ETag", etag)];
    if let Some(version) = version {
        headers.push(("Configuration-Version", version.clone()));
    }
    if matched {
        return Reply {
            status: 304,
            headers,
            body: ReplyBody::Empty,
        };
    }
    Reply {
        status: 200,
        headers,
        body,
    }
}

fn parse_route(path: &str, query: &str) -> Result<Route, RouteError> {
    if path == "/ping" {
        return Ok(Route::Ping);
    }
    let Some(rest) = path.strip_prefix("/applications/") else {
        return Err(if path == "/applications" {
            bad_shape()
        } else {
            RouteError::UnknownPath
        });
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() != 5 || segments[1] != "environments" || segments[3] != "configurations" {
        return Err(bad_shape());
    }
    let key = ConfigKey {
        application: decode_segment("application", segments[0])?,
        environment: decode_segment("environment", segments[2])?,
        profile: decode_segment("configuration", segments[4])?,
    };
    let mut flags = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "flag" {
            let flag = percent_decode(value)
                .filter(|f| !f.is_empty())
                .ok_or_else(|| {
                    RouteError::BadPath(format!(
                        "flag \"{}\" is not a valid flag key",
                        printable(value)
                    ))
                })?;
            flags.push(flag);
        }
    }
    Ok(Route::Configuration { key, flags })
}

/// The target without the `scheme://authority` of the absolute form, which a server must
/// accept (RFC 9112 §3.2.2) and clients send when they take the agent for a proxy. An absolute
/// form without a path stands for `/`.
fn origin_form(target: &str) -> &str {
    let scheme_length = ["http://", "https://"].into_iter().find_map(|scheme| {
        let prefix = target.get(..scheme.len())?;
        prefix.eq_ignore_ascii_case(scheme).then_some(scheme.len())
    });
    let Some(scheme_length) = scheme_length else {
        return target;
    };
    let rest = &target[scheme_length..];
    match rest.find(['/', '?']) {
        Some(path_start) if rest[path_start..].starts_with('/') => &rest[path_start..],
        _ => "/",
    }
}

fn bad_shape() -> RouteError {
    RouteError::BadPath(
        "the path must be /applications/{app}/environments/{env}/configurations/{profile}".into(),
    )
}

fn decode_segment(what: &str, raw: &str) -> Result<String, RouteError> {
    let decoded = percent_decode(raw).ok_or_else(|| {
        RouteError::BadPath(format!(
            "the {what} \"{}\" is not valid percent-encoded UTF-8",
            printable(raw)
        ))
    })?;
    if decoded.is_empty() {
        return Err(RouteError::BadPath(format!(
            "the {what} is empty; give a name or an ID"
        )));
    }
    if decoded.len() > MAX_SEGMENT_BYTES {
        return Err(RouteError::BadPath(format!(
            "the {what} is {} bytes long; names and IDs are 1 to {MAX_SEGMENT_BYTES} bytes",
            decoded.len()
        )));
    }
    Ok(decoded)
}

/// Weak comparison, as RFC 9110 asks of `If-None-Match`: a list of tags or `*`.
fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (index, byte) in b.iter().enumerate() {
        let other = a.get(index).copied().unwrap_or(0);
        difference |= usize::from(other ^ byte);
    }
    difference == 0
}

/// Caller-supplied text cut short and stripped of control characters, for messages.
fn printable(raw: &str) -> String {
    let mut text: String = raw.chars().take(160).filter(|c| !c.is_control()).collect();
    if raw.chars().count() > 160 {
        text.push('…');
    }
    text
}

/// Maps a cache failure to product.md §2.4.
fn cache_error_reply(key: &ConfigKey, error: &CacheError) -> Reply {
    match error {
        CacheError::FirstFetchTimedOut => Reply::error(
            504,
            "GatewayTimeout",
            format!("{key} was not retrieved within the request timeout; try again"),
        ),
        CacheError::TooManyEntries { .. } => Reply::error(503, "ServiceUnavailable", error),
        CacheError::Upstream(upstream) => {
            let status = match upstream {
                UpstreamError::Throttled { .. } => 429,
                UpstreamError::Denied { .. } => 403,
                UpstreamError::NotFound { .. } => 404,
                UpstreamError::Rejected { status: 400, .. } => 400,
                UpstreamError::Rejected { status: 403, .. } => 403,
                UpstreamError::Timeout { .. } => 504,
                UpstreamError::Credentials(CredentialsError::AssumeRole { .. }) => 403,
                UpstreamError::Credentials(CredentialsError::Source(_)) => 502,
                UpstreamError::Credentials(_) | UpstreamError::Internal { .. } => 500,
                _ => 502,
            };
            let text = upstream.to_string();
            match text.split_once(": ") {
                Some((code, message)) if !code.contains(' ') => Reply::error(status, code, message),
                _ => Reply::error(status, "InternalFailure", text),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str, e: &str, p: &str) -> ConfigKey {
        ConfigKey {
            application: a.into(),
            environment: e.into(),
            profile: p.into(),
        }
    }

    #[test]
    fn configuration_paths_are_decoded_per_segment() {
        let cases = [
            (
                "/applications/shop/environments/prod/configurations/flags",
                key("shop", "prod", "flags"),
            ),
            (
                "/applications/my%20app/environments/a+b/configurations/x%2Fy",
                key("my app", "a+b", "x/y"),
            ),
            (
                "/applications/%C3%A9/environments/e/configurations/p",
                key("é", "e", "p"),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(
                parse_route(path, ""),
                Ok(Route::Configuration {
                    key: expected,
                    flags: vec![]
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn bad_configuration_paths_are_refused_with_a_reason() {
        let long = "a".repeat(129);
        let too_long = format!("/applications/{long}/environments/e/configurations/p");
        let cases = [
            "/applications/shop/environments/prod/configurations",
            "/applications/shop/environments/prod/configurations/flags/extra",
            "/applications//environments/prod/configurations/flags",
            "/applications/shop/environments/prod/configurations/%ZZ",
            "/applications/shop/environments/prod/configurations/%FF",
            "/applications/shop/envs/prod/configurations/flags",
            "/applications",
            too_long.as_str(),
        ];
        for path in cases {
            assert!(
                matches!(parse_route(path, ""), Err(RouteError::BadPath(_))),
                "{path}"
            );
        }
        assert_eq!(parse_route("/nothing", ""), Err(RouteError::UnknownPath));
        assert_eq!(parse_route("/", ""), Err(RouteError::UnknownPath));
    }

    #[test]
    fn flag_parameters_are_collected_in_order() {
        let route = parse_route(
            "/applications/a/environments/e/configurations/p",
            "flag=one&x=1&flag=t%77o",
        );
        assert_eq!(
            route,
            Ok(Route::Configuration {
                key: key("a", "e", "p"),
                flags: vec!["one".into(), "two".into()]
            })
        );
    }

    #[test]
    fn absolute_form_targets_keep_only_path_and_query() {
        let cases = [
            ("/ping", "/ping"),
            ("http://127.0.0.1:2772/ping", "/ping"),
            ("HTTPS://localhost/a?flag=x", "/a?flag=x"),
            ("http://localhost", "/"),
            ("http://localhost?x=/ping", "/"),
            ("*", "*"),
            ("http:/ping", "http:/ping"),
        ];
        for (target, expected) in cases {
            assert_eq!(origin_form(target), expected, "{target}");
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }

    #[test]
    fn bearer_comparison_needs_the_exact_token() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"secrets", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
