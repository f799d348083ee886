//! The HTTP contract of product.md §2, driven through the real binary against the loopback fake
//! AppConfigData: the configuration route and `/ping`, headers, `HEAD`, `If-None-Match`, the
//! 400/401/404/405 answers, percent-decoding of path segments and the one-line error bodies.
//!
//! Every agent here keeps the default 45 s poll interval, so no background refresh runs while a
//! test looks at the fake's call log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use support::agent::{request_with_body, Connection, Response};
use support::appconfigdata::{FakeAppConfig, Operation};
use support::start_agent;

const SHOP_PATH: &str = "/applications/shop/environments/prod/configurations/flags";

/// A fake with `shop:prod:flags` deployed as version `7`.
fn shop_fake() -> FakeAppConfig {
    let fake = FakeAppConfig::start();
    fake.deploy(
        "shop",
        "prod",
        "flags",
        br#"{"checkout":{"enabled":true}}"#,
        "application/json",
        Some("7"),
    );
    fake
}

/// product.md §2.4: the status, and a plain-text body of one line starting with `code: `.
fn assert_error_line(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response}");
    let text = response.text();
    assert!(
        text.starts_with(&format!("{code}: ")),
        "the body should start with `{code}: `: {text:?}"
    );
    assert!(
        !text.contains(['\n', '\r']) && text.len() > code.len() + 2,
        "the body should be one non-empty line: {text:?}"
    );
}

/// Headers a `HEAD` or `304` must repeat from the `200`.
fn representation_headers(response: &Response) -> Vec<(String, Option<String>)> {
    ["Content-Type", "ETag", "Configuration-Version"]
        .iter()
        .map(|name| (name.to_string(), response.header(name).map(str::to_string)))
        .collect()
}

#[test]
fn ping_answers_healthy_without_calling_the_service() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);

    let response = agent.get("/ping");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "healthy")
    );
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn first_request_fetches_and_serves_the_bytes_exactly_with_their_headers() {
    let fake = FakeAppConfig::start();
    // Odd spacing, a newline, a NUL and a byte that is not UTF-8: any re-serialisation shows.
    let bytes: &[u8] = b"{ \"a\" :1,\n  \"b\":[true ] }\x00\xff";
    fake.deploy(
        "shop",
        "prod",
        "flags",
        bytes,
        "application/json",
        Some("7"),
    );
    let agent = start_agent(&fake, &[]);

    let response = agent.get(SHOP_PATH);
    assert_eq!(response.status, 200, "{response}");
    assert_eq!(response.body, bytes);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("Configuration-Version"), Some("7"));
    assert_eq!(
        response.header("Content-Length"),
        Some(bytes.len().to_string().as_str())
    );
    let etag = response.header("ETag").expect("an ETag");
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "a strong, quoted validator: {etag}"
    );

    let calls = fake.calls();
    let operations: Vec<Operation> = calls.iter().map(|call| call.operation).collect();
    assert_eq!(
        operations,
        [
            Operation::StartConfigurationSession,
            Operation::GetLatestConfiguration
        ]
    );
    assert!(calls
        .iter()
        .all(|call| call.key.as_deref() == Some("shop:prod:flags") && call.signature_ok));
    // The default 45 s poll interval is what the session asks for (product.md §4).
    assert_eq!(calls[0].required_minimum_poll_interval, Some(45));

    let again = agent.get(SHOP_PATH);
    assert_eq!((again.status, again.body.as_slice()), (200, bytes));
    assert_eq!(again.header("ETag"), Some(etag));
    assert_eq!(
        fake.calls().len(),
        2,
        "the second request is served from cache"
    );
}

#[test]
fn a_configuration_without_label_or_type_omits_the_version_and_is_octet_stream() {
    let fake = FakeAppConfig::start();
    fake.deploy("shop", "prod", "blob", b"raw bytes", "", None);
    let agent = start_agent(&fake, &[]);

    let response = agent.get("/applications/shop/environments/prod/configurations/blob");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"raw bytes"[..])
    );
    assert_eq!(
        response.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.header("Configuration-Version"), None);
    assert!(response.header("ETag").is_some());
}

#[test]
fn head_answers_the_same_status_and_headers_as_get_without_a_body() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);
    let mut connection = Connection::open(agent.addr()).unwrap();

    let get = connection.send("GET", SHOP_PATH, &[], b"").unwrap();
    assert_eq!(get.status, 200, "{get}");
    let head = connection.send("HEAD", SHOP_PATH, &[], b"").unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(representation_headers(&head), representation_headers(&get));
    assert_eq!(
        head.header("Content-Length"),
        Some(get.body.len().to_string().as_str()),
        "HEAD keeps the length GET would send"
    );
    // Had HEAD sent a body, these next answers on the same connection would not parse.
    let ping_head = connection.send("HEAD", "/ping", &[], b"").unwrap();
    assert_eq!(
        (ping_head.status, ping_head.header("Content-Length")),
        (200, Some("7"))
    );
    let after = connection.send("GET", "/ping", &[], b"").unwrap();
    assert_eq!((after.status, after.text().as_str()), (200, "healthy"));
    assert_eq!(fake.get_latest_calls(), 1, "HEAD was served from cache");
}

#[test]
fn if_none_match_with_the_current_etag_gets_304_without_a_body() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);
    let mut connection = Connection::open(agent.addr()).unwrap();

    let first = connection.send("GET", SHOP_PATH, &[], b"").unwrap();
    let etag = first.header("ETag").expect("an ETag").to_string();
    let weak = format!("W/{etag}");
    let listed = format!("\"something-else\", {etag}");
    for validator in [etag.as_str(), weak.as_str(), listed.as_str()] {
        let response = connection
            .send("GET", SHOP_PATH, &[("If-None-Match", validator)], b"")
            .unwrap();
        assert_eq!(response.status, 304, "If-None-Match: {validator}");
        assert_eq!(response.header("ETag"), Some(etag.as_str()));
        assert!(
            response
                .header("Content-Length")
                .is_none_or(|length| length == "0"),
            "a 304 announces no body: {:?}",
            response.headers
        );
    }
    // A body after a 304 would make this answer on the same connection unreadable.
    let stale = connection
        .send("GET", SHOP_PATH, &[("If-None-Match", "\"stale\"")], b"")
        .unwrap();
    assert_eq!(
        (stale.status, stale.body.as_slice()),
        (200, first.body.as_slice())
    );
}

#[test]
fn unknown_paths_get_404_and_never_reach_the_service() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);

    for path in [
        "/",
        "/nothing",
        "/ping/extra",
        "/application/shop/environments/prod/configurations/flags",
        "/applicationsX/shop",
    ] {
        assert_error_line(&agent.get(path), 404, "NotFound");
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn other_methods_on_known_paths_get_405_with_allow_get_head() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);

    for path in [SHOP_PATH, "/ping"] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let response =
                request_with_body(agent.addr(), method, path, &[], b"{}").expect("an answer");
            assert_error_line(&response, 405, "MethodNotAllowed");
            assert_eq!(
                response.header("Allow"),
                Some("GET, HEAD"),
                "{method} {path}"
            );
        }
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn malformed_configuration_paths_get_400_and_never_reach_the_service() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);
    let too_long = "a".repeat(129);
    let too_long_path = format!("/applications/{too_long}/environments/prod/configurations/flags");
    // 43 three-byte characters: 129 bytes after decoding, from a 387-byte segment.
    let too_long_decoded = "%E2%82%AC".repeat(43);
    let too_long_decoded_path =
        format!("/applications/shop/environments/{too_long_decoded}/configurations/flags");

    let paths = [
        "/applications//environments/prod/configurations/flags",
        "/applications/shop/environments//configurations/flags",
        "/applications/shop/environments/prod/configurations/",
        "/applications/shop/environments/prod/configurations/%ZZ",
        "/applications/shop/environments/prod/configurations/fl%2",
        "/applications/shop/environments/prod/configurations/%FF",
        "/applications/%C3%28/environments/prod/configurations/flags",
        too_long_path.as_str(),
        too_long_decoded_path.as_str(),
        "/applications/shop/environments/prod/configurations/flags/extra",
        "/applications/shop/environments/prod/configurations",
        "/applications/shop/environments/prod",
        "/applications/shop",
        "/applications/shop/profiles/prod/configurations/flags",
    ];
    for path in paths {
        let response = agent.get(path);
        assert_error_line(&response, 400, "BadRequest");
        assert_eq!(response.header("Allow"), None, "{path}");
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn a_segment_of_exactly_128_bytes_is_accepted() {
    let fake = FakeAppConfig::start();
    let longest = "b".repeat(128);
    fake.deploy(&longest, "prod", "flags", b"long", "text/plain", None);
    let agent = start_agent(&fake, &[]);

    let response = agent.get(&format!(
        "/applications/{longest}/environments/prod/configurations/flags"
    ));
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"long"[..]),
        "{response}"
    );
}

#[test]
fn segments_are_percent_decoded_once_and_a_plus_stays_a_plus() {
    let fake = FakeAppConfig::start();
    fake.deploy("my app", "a+b", "x/y", b"decoded", "text/plain", Some("1"));
    fake.deploy("100%", "é", "p", b"literal", "text/plain", Some("1"));
    let agent = start_agent(&fake, &[]);

    let response = agent.get("/applications/my%20app/environments/a+b/configurations/x%2Fy");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"decoded"[..]),
        "{response}"
    );
    let response = agent.get("/applications/100%25/environments/%c3%a9/configurations/p");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"literal"[..]),
        "{response}"
    );

    assert_eq!(
        fake.session_keys(),
        [
            Some("my app:a+b:x/y".to_string()),
            Some("100%:é:p".to_string())
        ],
        "each segment reaches the service as one identifier, decoded once"
    );
}

#[test]
fn access_token_guards_configurations_but_not_ping() {
    let fake = shop_fake();
    let token = "s3cr3t-Token_value";
    let agent = start_agent(&fake, &[("ACCESS_TOKEN", token)]);

    let right = format!("Bearer {token}");
    let near_miss = format!("Bearer {token}x");
    let wrong_scheme = format!("Basic {token}");
    let refused: [&[(&str, &str)]; 5] = [
        &[],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", near_miss.as_str())],
        &[("Authorization", wrong_scheme.as_str())],
        &[("Authorization", "Bearer ")],
    ];
    for headers in refused {
        let response = agent.request("GET", SHOP_PATH, headers);
        assert_error_line(&response, 401, "Unauthorized");
        assert!(
            !response.text().contains(token),
            "the answer never echoes the token"
        );
        let head = agent.request("HEAD", SHOP_PATH, headers);
        assert_eq!(head.status, 401);
    }
    assert!(
        fake.calls().is_empty(),
        "refused callers cause no call: {:?}",
        fake.calls()
    );

    let ping = agent.get("/ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "healthy"));
    let allowed = agent.request("GET", SHOP_PATH, &[("Authorization", right.as_str())]);
    assert_eq!(
        (allowed.status, allowed.text().as_str()),
        (200, r#"{"checkout":{"enabled":true}}"#)
    );
    // Cached data is guarded too, not only the first fetch.
    assert_error_line(&agent.get(SHOP_PATH), 401, "Unauthorized");
}

#[test]
fn a_configuration_the_service_does_not_know_is_404_with_its_error_name() {
    let fake = shop_fake();
    let agent = start_agent(&fake, &[]);

    let response = agent.get("/applications/nope/environments/prod/configurations/flags");
    assert_error_line(&response, 404, "ResourceNotFoundException");
    assert_eq!(
        response.text(),
        "ResourceNotFoundException: Application 'nope' was not found"
    );
    let response = agent.get("/applications/shop/environments/prod/configurations/missing");
    assert_eq!(
        (response.status, response.text().as_str()),
        (
            404,
            "ResourceNotFoundException: ConfigurationProfile 'missing' was not found"
        )
    );
    // The known entry next to them still works.
    assert_eq!(agent.get(SHOP_PATH).status, 200);
}
