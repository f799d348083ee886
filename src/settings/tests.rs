//! Table tests of settings parsing: every accepted and malformed form, spellings, endpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should stop at the first unexpected result"
)]
use super::*;

/// A snapshot holding a region (so the region rule stays out of the way) plus `pairs`.
fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = HashMap::from([("AWS_REGION".to_string(), "us-east-1".to_string())]);
    for (name, value) in pairs {
        vars.insert(name.to_string(), value.to_string());
    }
    vars
}

fn parse(pairs: &[(&str, &str)]) -> Settings {
    Settings::from_vars(&vars(pairs)).expect("settings should parse")
}

fn error(pairs: &[(&str, &str)]) -> SettingsError {
    Settings::from_vars(&vars(pairs)).expect_err("settings should be refused")
}

#[test]
fn defaults_follow_the_product_table() {
    let settings = parse(&[]);
    assert_eq!(settings.http_port, 2772);
    assert_eq!(settings.http_host, HttpHost::Localhost);
    assert_eq!(settings.poll_interval, Duration::from_secs(45));
    assert_eq!(settings.request_timeout, Duration::from_millis(3000));
    assert_eq!(settings.max_connections, 3);
    assert_eq!(settings.max_entries, 1000);
    assert_eq!(
        settings.log,
        LogSettings {
            level: LevelFilter::Info,
            path: None,
            json: false
        }
    );
    assert!(settings.prefetch_list.is_empty());
    assert!(settings.wait_on_manifest);
    assert!(settings.preload_backups);
    assert_eq!(settings.role, None);
    assert_eq!(settings.proxy, None);
    assert_eq!(settings.access_token, None);
    assert_eq!(settings.lambda_runtime_api, None);
    assert_eq!(settings.local_development_directory, None);
    assert_eq!(settings.manifest, None);
    assert_eq!(settings.backup_directory, None);
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
}

#[test]
fn poll_interval_accepts_every_documented_form_under_every_name() {
    let cases = [
        ("45", 45),
        ("45s", 45),
        ("5m", 300),
        ("1h", 3600),
        ("90S", 90),
        ("2 M", 120),
        (" 30 ", 30),
        ("1", 1),
        ("86400", 86400),
        ("24h", 86400),
    ];
    let names = [
        "POLL_INTERVAL_SECONDS",
        "POLL_INTERVAL",
        "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS",
        "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL",
    ];
    for name in names {
        for (value, seconds) in cases {
            let settings = parse(&[(name, value)]);
            assert_eq!(
                settings.poll_interval,
                Duration::from_secs(seconds),
                "{name}={value}"
            );
        }
    }
}

#[test]
fn malformed_poll_interval_names_the_variable_and_value() {
    for value in ["4x", "-5", "1.5m", "45ms", "s", "5d", "1h30m", "forty"] {
        let found = error(&[("POLL_INTERVAL_SECONDS", value)]);
        assert_eq!(found.variable, "POLL_INTERVAL_SECONDS");
        assert_eq!(
            found.message,
            format!(
                "POLL_INTERVAL_SECONDS is \"{value}\"; give seconds, such as 45, 45s, 5m or 1h"
            )
        );
    }
    let prefixed = error(&[("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL", "4x")]);
    assert_eq!(
        prefixed.message,
        "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL is \"4x\"; give seconds, such as 45, 45s, 5m \
         or 1h"
    );
    assert_eq!(prefixed.variable, "AWS_APPCONFIG_EXTENSION_POLL_INTERVAL");
}

#[test]
fn poll_interval_outside_one_second_to_a_day_is_refused() {
    for value in [
        "0",
        "0s",
        "0h",
        "25h",
        "86401",
        "1441m",
        "99999999999999999999",
    ] {
        let found = error(&[("POLL_INTERVAL", value)]);
        assert_eq!(
            found.message,
            format!(
                "POLL_INTERVAL is \"{value}\"; give a period from 1 second to 24 hours, such \
                 as 45, 45s, 5m or 1h"
            )
        );
    }
}

#[test]
fn request_timeout_accepts_every_documented_form_under_every_name() {
    let cases = [
        ("3000", 3000),
        ("3000ms", 3000),
        ("5s", 5000),
        ("250 MS", 250),
        ("1m", 60_000),
        ("1", 1),
        ("300s", 300_000),
    ];
    let names = [
        "POLL_TIMEOUT_MILLIS",
        "REQUEST_TIMEOUT",
        "AWS_APPCONFIG_EXTENSION_POLL_TIMEOUT_MILLIS",
        "AWS_APPCONFIG_EXTENSION_REQUEST_TIMEOUT",
    ];
    for name in names {
        for (value, millis) in cases {
            let settings = parse(&[(name, value)]);
            assert_eq!(
                settings.request_timeout,
                Duration::from_millis(millis),
                "{name}"
            );
        }
    }
}

#[test]
fn malformed_or_out_of_range_request_timeout_is_refused_with_its_value() {
    for value in ["3x", "1.5s", "1h", "ms", "-3000"] {
        let found = error(&[("REQUEST_TIMEOUT", value)]);
        assert_eq!(found.variable, "REQUEST_TIMEOUT");
        assert_eq!(
            found.message,
            format!(
                "REQUEST_TIMEOUT is \"{value}\"; give milliseconds, such as 3000, 3000ms or 5s"
            )
        );
    }
    for value in ["0", "0ms", "301s", "6m", "300001"] {
        let found = error(&[("POLL_TIMEOUT_MILLIS", value)]);
        assert_eq!(
            found.message,
            format!(
                "POLL_TIMEOUT_MILLIS is \"{value}\"; give a timeout from 1 ms to 5 minutes, \
                 such as 3000, 3000ms or 5s"
            )
        );
    }
}

#[test]
fn prefixed_spelling_wins_and_lambda_name_wins_within_a_spelling() {
    let cases: [(&[(&str, &str)], u64); 5] = [
        (
            &[
                ("POLL_INTERVAL", "10"),
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL", "20"),
            ],
            20,
        ),
        (
            &[("POLL_INTERVAL", "10"), ("POLL_INTERVAL_SECONDS", "30")],
            30,
        ),
        (
            &[
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "40"),
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL", "20"),
            ],
            40,
        ),
        (
            &[
                ("POLL_INTERVAL_SECONDS", "30"),
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL", "20"),
            ],
            20,
        ),
        (
            &[
                ("POLL_INTERVAL", "10"),
                ("POLL_INTERVAL_SECONDS", "30"),
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL", "20"),
                ("AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS", "40"),
            ],
            40,
        ),
    ];
    for (pairs, seconds) in cases {
        assert_eq!(
            parse(pairs).poll_interval,
            Duration::from_secs(seconds),
            "{pairs:?}"
        );
    }

    let settings = parse(&[
        ("HTTP_PORT", "1"),
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "2"),
    ]);
    assert_eq!(settings.http_port, 2);
    let settings = parse(&[
        ("REQUEST_TIMEOUT", "1s"),
        ("AWS_APPCONFIG_EXTENSION_POLL_TIMEOUT_MILLIS", "7"),
    ]);
    assert_eq!(settings.request_timeout, Duration::from_millis(7));
}

#[test]
fn a_shadowed_variable_with_another_value_is_reported() {
    let settings = parse(&[
        ("HTTP_PORT", "1"),
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "2"),
    ]);
    assert_eq!(
        settings.warnings,
        [
            "HTTP_PORT is ignored because AWS_APPCONFIG_EXTENSION_HTTP_PORT is set and takes \
          precedence"
        ]
    );
    let same = parse(&[
        ("HTTP_PORT", "2"),
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", " 2"),
    ]);
    assert!(same.warnings.is_empty(), "{:?}", same.warnings);
}

#[test]
fn a_shadowed_malformed_variable_is_not_parsed() {
    let settings = parse(&[
        ("LOG_LEVEL", "loud"),
        ("AWS_APPCONFIG_EXTENSION_LOG_LEVEL", "debug"),
    ]);
    assert_eq!(settings.log.level, LevelFilter::Debug);
}

#[test]
fn a_blank_variable_counts_as_unset() {
    assert_eq!(parse(&[("HTTP_PORT", "")]).http_port, 2772);
    assert_eq!(parse(&[("HTTP_PORT", "  ")]).http_port, 2772);
    let settings = parse(&[
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", ""),
        ("HTTP_PORT", "8080"),
    ]);
    assert_eq!(settings.http_port, 8080);
}

#[test]
fn http_port_accepts_zero_to_65535_only() {
    for (value, port) in [("0", 0), ("2772", 2772), ("65535", 65535), (" 80 ", 80)] {
        assert_eq!(parse(&[("HTTP_PORT", value)]).http_port, port);
    }
    for value in ["65536", "-1", "http", "80.0", "0x50"] {
        assert_eq!(
            error(&[("HTTP_PORT", value)]).message,
            format!(
                "HTTP_PORT is \"{value}\"; give a port number from 0 to 65535 (0 picks a \
                 free port)"
            )
        );
    }
}

#[test]
fn http_host_accepts_localhost_all_and_addresses() {
    let cases = [
        ("localhost", HttpHost::Localhost),
        ("LocalHost", HttpHost::Localhost),
        ("all", HttpHost::All),
        ("ALL", HttpHost::All),
        ("127.0.0.1", HttpHost::Address("127.0.0.1".parse().unwrap())),
        ("::1", HttpHost::Address("::1".parse().unwrap())),
        ("[::1]", HttpHost::Address("::1".parse().unwrap())),
        ("10.0.0.7", HttpHost::Address("10.0.0.7".parse().unwrap())),
    ];
    for (value, host) in cases {
        assert_eq!(parse(&[("HTTP_HOST", value)]).http_host, host, "{value}");
    }
    for value in ["example.com", "127.0.0.1:80", "anywhere", "[::1"] {
        assert_eq!(
            error(&[("AWS_APPCONFIG_EXTENSION_HTTP_HOST", value)]).message,
            format!(
                "AWS_APPCONFIG_EXTENSION_HTTP_HOST is \"{value}\"; give localhost, all, or an \
                 IP address such as 127.0.0.1 or ::1"
            )
        );
    }
}

#[test]
fn a_host_beyond_loopback_warns_and_says_whether_a_token_guards_it() {
    let loopback = parse(&[("HTTP_HOST", "127.0.0.2")]);
    assert!(loopback.warnings.is_empty(), "{:?}", loopback.warnings);

    let open = parse(&[("HTTP_HOST", "all")]);
    assert_eq!(open.warnings.len(), 1);
    assert!(
        open.warnings[0].contains("without ACCESS_TOKEN"),
        "{}",
        open.warnings[0]
    );

    let guarded = parse(&[("HTTP_HOST", "10.0.0.7"), ("ACCESS_TOKEN", "s3cret")]);
    assert_eq!(guarded.warnings.len(), 1);
    assert!(guarded.warnings[0].starts_with("HTTP_HOST is 10.0.0.7: "));
    assert!(
        !guarded.warnings[0].contains("without"),
        "{}",
        guarded.warnings[0]
    );
}

#[test]
fn max_connections_is_a_whole_number_from_1_to_1024() {
    for (value, count) in [("1", 1), ("3", 3), ("1024", 1024)] {
        assert_eq!(parse(&[("MAX_CONNECTIONS", value)]).max_connections, count);
    }
    for value in ["0", "1025", "-1", "three"] {
        assert_eq!(
            error(&[("MAX_CONNECTIONS", value)]).message,
            format!("MAX_CONNECTIONS is \"{value}\"; give a whole number from 1 to 1024")
        );
    }
}

#[test]
fn log_level_accepts_every_documented_name_in_any_case() {
    let cases = [
        ("trace", LevelFilter::Trace),
        ("DEBUG", LevelFilter::Debug),
        ("Info", LevelFilter::Info),
        ("warn", LevelFilter::Warn),
        ("warning", LevelFilter::Warn),
        ("error", LevelFilter::Error),
        ("FATAL", LevelFilter::Error),
        ("none", LevelFilter::Off),
        ("off", LevelFilter::Off),
    ];
    for (value, level) in cases {
        assert_eq!(parse(&[("LOG_LEVEL", value)]).log.level, level, "{value}");
    }
    assert_eq!(
        error(&[("LOG_LEVEL", "loud")]).message,
        "LOG_LEVEL is \"loud\"; give one of trace, debug, info, warn, error, fatal or none"
    );
}

#[test]
fn log_path_and_lambda_json_format_are_read() {
    let settings = parse(&[
        ("LOG_PATH", "/tmp/agent.log"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ]);
    assert_eq!(settings.log.path, Some(PathBuf::from("/tmp/agent.log")));
    assert!(settings.log.json);
    for (value, json) in [
        ("json", true),
        ("Json", true),
        ("Text", false),
        ("xml", false),
    ] {
        assert_eq!(
            parse(&[("AWS_LAMBDA_LOG_FORMAT", value)]).log.json,
            json,
            "{value}"
        );
    }
}

#[test]
fn booleans_accept_true_false_one_and_zero() {
    let cases = [
        ("true", true),
        ("TRUE", true),
        ("1", true),
        ("false", false),
        ("False", false),
        ("0", false),
    ];
    for (value, expected) in cases {
        let settings = parse(&[("WAIT_ON_MANIFEST", value), ("PRELOAD_BACKUPS", value)]);
        assert_eq!(settings.wait_on_manifest, expected, "{value}");
        assert_eq!(settings.preload_backups, expected, "{value}");
    }
    for value in ["yes", "no", "2", "t"] {
        assert_eq!(
            error(&[("PRELOAD_BACKUPS", value)]).message,
            format!("PRELOAD_BACKUPS is \"{value}\"; give true or false")
        );
    }
}

#[test]
fn paths_and_manifest_are_taken_as_written() {
    let settings = parse(&[
        ("MANIFEST", "file:/opt/manifest.json"),
        ("BACKUP_DIRECTORY", "/var/backups/appconfig"),
        (
            "AWS_APPCONFIG_EXTENSION_LOCAL_DEVELOPMENT_DIRECTORY",
            "/srv/configs",
        ),
    ]);
    assert_eq!(
        settings.manifest.as_deref(),
        Some("file:/opt/manifest.json")
    );
    assert_eq!(
        settings.backup_directory,
        Some(PathBuf::from("/var/backups/appconfig"))
    );
    assert_eq!(
        settings.local_development_directory,
        Some(PathBuf::from("/srv/configs"))
    );
}

fn key(application: &str, environment: &str, profile: &str) -> ConfigKey {
    ConfigKey {
        application: application.to_string(),
        environment: environment.to_string(),
        profile: profile.to_string(),
    }
}

#[test]
fn prefetch_list_accepts_both_forms_trims_and_skips_empty_items() {
    let cases: [(&str, Vec<ConfigKey>); 6] = [
        ("shop:prod:flags", vec![key("shop", "prod", "flags")]),
        (
            "/applications/shop/environments/prod/configurations/flags",
            vec![key("shop", "prod", "flags")],
        ),
        (
            " a:b:c , ,/applications/x/environments/y/configurations/z,",
            vec![key("a", "b", "c"), key("x", "y", "z")],
        ),
        ("a:b:c,a:b:c", vec![key("a", "b", "c")]),
        (
            "/applications/my%20app/environments/e+1/configurations/a%2Fb",
            vec![key("my app", "e+1", "a/b")],
        ),
        (",,", vec![]),
    ];
    for (value, keys) in cases {
        assert_eq!(
            parse(&[("PREFETCH_LIST", value)]).prefetch_list,
            keys,
            "{value}"
        );
    }
    let longest = "a".repeat(128);
    let settings = parse(&[("PREFETCH_LIST", &format!("{longest}:e:p"))]);
    assert_eq!(settings.prefetch_list, [key(&longest, "e", "p")]);
}

#[test]
fn malformed_prefetch_items_are_quoted_in_the_error() {
    let malformed = [
        "shop:prod",
        "a:b:c:d",
        "/applications/a/environments/e",
        "/applications/a/environments/e/configurations/p/",
        "/apps/a/envs/e/configs/p",
        "/applications/a%zz/environments/e/configurations/p",
        "/applications/%ff/environments/e/configurations/p",
        "/applications/%+1/environments/e/configurations/p",
        "/applications/a%/environments/e/configurations/p",
    ];
    for item in malformed {
        let found = error(&[("PREFETCH_LIST", &format!("ok:ok:ok, {item}"))]);
        assert_eq!(found.variable, "PREFETCH_LIST");
        assert_eq!(
            found.message,
            format!(
                "PREFETCH_LIST item \"{item}\" is malformed; give app:env:profile or \
                 /applications/APP/environments/ENV/configurations/PROFILE, separated by \
                 commas"
            )
        );
    }
    let too_long = format!("{}:e:p", "a".repeat(129));
    for item in ["a::c", ":b:c", too_long.as_str()] {
        let found = error(&[("AWS_APPCONFIG_EXTENSION_PREFETCH_LIST", item)]);
        assert!(
            found.message.starts_with(&format!(
                "AWS_APPCONFIG_EXTENSION_PREFETCH_LIST item \"{}",
                &item[..item.len().min(40)]
            )),
            "{}",
            found.message
        );
        assert!(found
            .message
            .ends_with("each of application, environment and profile is 1 to 128 bytes"));
    }
}

#[test]
fn role_settings_need_an_arn() {
    let arn = "arn:aws:iam::123456789012:role/reader";
    assert_eq!(
        parse(&[("ROLE_ARN", arn)]).role,
        Some(RoleSettings {
            arn: arn.to_string(),
            external_id: None,
            session_name: None
        })
    );
    let full = parse(&[
        (
            "AWS_APPCONFIG_EXTENSION_ROLE_ARN",
            "arn:aws-cn:iam::123456789012:role/path/reader",
        ),
        ("ROLE_EXTERNAL_ID", "partner:42/x"),
        ("ROLE_SESSION_NAME", "agent@host.example_1"),
    ]);
    assert_eq!(
        full.role,
        Some(RoleSettings {
            arn: "arn:aws-cn:iam::123456789012:role/path/reader".to_string(),
            external_id: Some("partner:42/x".to_string()),
            session_name: Some("agent@host.example_1".to_string()),
        })
    );

    assert_eq!(
        error(&[("ROLE_EXTERNAL_ID", "partner")]),
        SettingsError {
            variable: "ROLE_EXTERNAL_ID".to_string(),
            message: "ROLE_EXTERNAL_ID is set but ROLE_ARN is not; set ROLE_ARN to the role \
                      to assume, or unset ROLE_EXTERNAL_ID"
                .to_string(),
        }
    );
    let orphan = error(&[("AWS_APPCONFIG_EXTENSION_ROLE_SESSION_NAME", "agent")]);
    assert_eq!(orphan.variable, "AWS_APPCONFIG_EXTENSION_ROLE_SESSION_NAME");
}

#[test]
fn malformed_role_values_are_refused_with_their_value() {
    let arn = ("ROLE_ARN", "arn:aws:iam::123456789012:role/reader");
    for value in [
        "reader",
        "arn:aws:iam::123456789012:user/bob",
        "arn:aws:s3:::bucket/x",
    ] {
        assert_eq!(
            error(&[("ROLE_ARN", value)]).message,
            format!(
                "ROLE_ARN is \"{value}\"; give a role ARN such as \
                 arn:aws:iam::123456789012:role/name"
            )
        );
    }
    let longest = "s".repeat(64);
    assert!(parse(&[arn, ("ROLE_SESSION_NAME", &longest)])
        .role
        .is_some());
    for value in [
        "a",
        "has space",
        "semi;colon",
        "s".repeat(65).as_str(),
        "ünïcode",
    ] {
        assert_eq!(
            error(&[arn, ("ROLE_SESSION_NAME", value)]).message,
            format!(
                "ROLE_SESSION_NAME is \"{value}\"; give 2 to 64 characters of letters, digits \
                 and _ + = , . @ -"
            )
        );
    }
    for value in ["x", "has space", "quote\"d"] {
        let found = error(&[arn, ("ROLE_EXTERNAL_ID", value)]);
        assert_eq!(found.variable, "ROLE_EXTERNAL_ID");
        assert!(
            found.message.starts_with("ROLE_EXTERNAL_ID is \""),
            "{}",
            found.message
        );
    }
}

#[test]
fn proxy_headers_are_parsed_and_their_values_kept_secret() {
    let settings = parse(&[
        ("PROXY_URL", "http://proxy.internal:3128"),
        (
            "PROXY_HEADERS",
            "Proxy-Authorization: Basic cGxhbnRlZA==, X-Trace:  abc ,",
        ),
    ]);
    let proxy = settings.proxy.expect("proxy");
    assert_eq!(proxy.url, "http://proxy.internal:3128");
    assert_eq!(
        proxy.headers,
        [
            (
                "Proxy-Authorization".to_string(),
                Secret::new("Basic cGxhbnRlZA==")
            ),
            ("X-Trace".to_string(), Secret::new("abc")),
        ]
    );
    assert!(!format!("{proxy:?}").contains("cGxhbnRlZA"));
    assert_eq!(
        parse(&[("PROXY_URL", "https://p:8443")])
            .proxy
            .unwrap()
            .headers,
        []
    );
}

#[test]
fn malformed_proxy_settings_never_show_header_values() {
    let url = ("PROXY_URL", "http://proxy:3128");
    let cases = [
        (
            "X-A: one, planted-secret",
            "PROXY_HEADERS item 2 has no \":\" (values are not shown)",
        ),
        (
            "X-A: one, Bearer planted:x",
            "PROXY_HEADERS item 2 does not start with a valid HTTP header name (values",
        ),
        ("X-A:", "PROXY_HEADERS value of header \"X-A\" is empty"),
        (
            "X-A: planted\u{7}secret",
            "PROXY_HEADERS value of header \"X-A\" is empty or holds",
        ),
    ];
    for (value, start) in cases {
        let found = error(&[url, ("PROXY_HEADERS", value)]);
        assert!(found.message.starts_with(start), "{}", found.message);
        assert!(found
            .message
            .ends_with("give headers as \"Name: value, Name2: value2\""));
        assert!(!found.message.contains("planted"), "{}", found.message);
    }
    assert_eq!(
        error(&[("PROXY_HEADERS", "X-A: b")]).message,
        "PROXY_HEADERS is set but PROXY_URL is not; set PROXY_URL to the proxy, or unset \
         PROXY_HEADERS"
    );
    for value in [
        "proxy:3128",
        "socks5://proxy:1080",
        "http://",
        "http:///path",
    ] {
        assert_eq!(
            error(&[("PROXY_URL", value)]).message,
            format!(
                "PROXY_URL is \"{value}\"; give a URL starting with http:// or https://, such \
                 as http://proxy.internal:3128"
            )
        );
    }
}

#[test]
fn proxy_passwords_are_masked_in_debug_messages_and_the_description() {
    let settings = parse(&[("PROXY_URL", "http://user:planted@proxy:3128/")]);
    let proxy = settings.proxy.clone().expect("proxy");
    assert_eq!(proxy.url, "http://user:planted@proxy:3128/");
    assert!(format!("{proxy:?}").contains("http://****@proxy:3128/"));
    assert!(!format!("{settings:?}").contains("planted"));
    assert!(!settings.describe().contains("planted"));

    let found = error(&[("PROXY_URL", "ftp://user:planted@proxy")]);
    assert!(
        found
            .message
            .starts_with("PROXY_URL is \"ftp://****@proxy\"; "),
        "{}",
        found.message
    );
}

#[test]
fn access_token_must_be_a_single_non_empty_word() {
    let settings = parse(&[("ACCESS_TOKEN", "s3cret-Token_1")]);
    assert_eq!(settings.access_token, Some(Secret::new("s3cret-Token_1")));

    let empty = error(&[("AWS_APPCONFIG_EXTENSION_ACCESS_TOKEN", "")]);
    assert_eq!(empty.variable, "AWS_APPCONFIG_EXTENSION_ACCESS_TOKEN");
    assert!(empty
        .message
        .starts_with("AWS_APPCONFIG_EXTENSION_ACCESS_TOKEN is empty; "));

    for value in [" planted", "planted secret", "planted\n"] {
        let found = error(&[("ACCESS_TOKEN", value)]);
        assert!(
            found
                .message
                .starts_with("ACCESS_TOKEN contains whitespace"),
            "{}",
            found.message
        );
        assert!(!found.message.contains("planted"));
    }
}

#[test]
fn region_comes_from_service_region_then_aws_region_then_default_region() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("AWS_DEFAULT_REGION", "eu-west-1")], "eu-west-1"),
        (
            &[
                ("AWS_REGION", "eu-west-2"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
            ],
            "eu-west-2",
        ),
        (
            &[
                ("AWS_REGION", "eu-west-2"),
                ("SERVICE_REGION", "ap-south-1"),
            ],
            "ap-south-1",
        ),
        (
            &[
                ("AWS_REGION", "eu-west-2"),
                ("SERVICE_REGION", "ap-south-1"),
                ("AWS_APPCONFIG_EXTENSION_SERVICE_REGION", "sa-east-1"),
            ],
            "sa-east-1",
        ),
    ];
    for (pairs, region) in cases {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let settings = Settings::from_vars(&vars).expect("settings");
        assert_eq!(settings.region, region);
        assert_eq!(
            settings.appconfigdata_endpoint,
            format!("https://appconfigdata.{region}.amazonaws.com")
        );
    }
}

#[test]
fn a_missing_region_names_all_three_variables() {
    let found = Settings::from_vars(&HashMap::new()).expect_err("no region");
    assert_eq!(found.variable, "AWS_REGION");
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION", "SERVICE_REGION"] {
        assert!(found.message.contains(name), "{}", found.message);
    }
    let blank = HashMap::from([("AWS_REGION".to_string(), " ".to_string())]);
    assert_eq!(
        Settings::from_vars(&blank).expect_err("blank region"),
        found
    );
}

#[test]
fn local_development_runs_without_a_region() {
    let vars = HashMap::from([(
        "LOCAL_DEVELOPMENT_DIRECTORY".to_string(),
        "/srv".to_string(),
    )]);
    let settings = Settings::from_vars(&vars).expect("settings");
    assert_eq!(settings.region, "");
    assert_eq!(settings.appconfigdata_endpoint, "");
    assert_eq!(settings.sts_endpoint, "");
}

#[test]
fn malformed_region_is_refused_with_its_value() {
    for value in ["us east 1", "us_east_1", "-us-east-1", "us-east-1.evil.com"] {
        assert_eq!(
            error(&[("AWS_REGION", value)]).message,
            format!(
                "AWS_REGION is \"{value}\"; give a region name of letters, digits and \
                 dashes, such as us-east-1"
            )
        );
    }
}

#[test]
fn endpoints_follow_partition_fips_and_dual_stack_rules() {
    let cases = [
        (
            "us-east-1",
            "false",
            "false",
            "appconfigdata.us-east-1.amazonaws.com",
        ),
        (
            "us-east-1",
            "true",
            "false",
            "appconfigdata-fips.us-east-1.amazonaws.com",
        ),
        (
            "us-east-1",
            "false",
            "true",
            "appconfigdata.us-east-1.api.aws",
        ),
        (
            "us-east-1",
            "true",
            "true",
            "appconfigdata-fips.us-east-1.api.aws",
        ),
        (
            "cn-north-1",
            "false",
            "false",
            "appconfigdata.cn-north-1.amazonaws.com.cn",
        ),
        (
            "cn-north-1",
            "false",
            "true",
            "appconfigdata.cn-north-1.api.amazonwebservices.com.cn",
        ),
        (
            "us-gov-west-1",
            "false",
            "false",
            "appconfigdata.us-gov-west-1.amazonaws.com",
        ),
        (
            "us-gov-west-1",
            "TRUE",
            "false",
            "appconfigdata.us-gov-west-1.amazonaws.com",
        ),
        (
            "us-gov-west-1",
            "1",
            "true",
            "appconfigdata.us-gov-west-1.api.aws",
        ),
    ];
    for (region, fips, dual_stack, host) in cases {
        let settings = parse(&[
            ("AWS_REGION", region),
            ("AWS_USE_FIPS_ENDPOINT", fips),
            ("AWS_USE_DUALSTACK_ENDPOINT", dual_stack),
        ]);
        assert_eq!(settings.appconfigdata_endpoint, format!("https://{host}"));
        let sts_host = host.replacen("appconfigdata", "sts", 1);
        assert_eq!(settings.sts_endpoint, format!("https://{sts_host}"));
    }
}

#[test]
fn configured_endpoints_win_and_ignore_fips_and_dual_stack() {
    let settings = parse(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/"),
        ("AWS_USE_FIPS_ENDPOINT", "true"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
    ]);
    assert_eq!(settings.appconfigdata_endpoint, "http://127.0.0.1:4566");
    assert_eq!(settings.sts_endpoint, "http://127.0.0.1:4566");

    let settings = parse(&[
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_ENDPOINT_URL_APPCONFIGDATA", "HTTP://127.0.0.1:1001//"),
    ]);
    assert_eq!(settings.appconfigdata_endpoint, "HTTP://127.0.0.1:1001");
    assert_eq!(settings.sts_endpoint, "http://127.0.0.1:4566");

    let settings = parse(&[
        ("AWS_ENDPOINT_URL_STS", "https://sts.local/base/"),
        ("AWS_USE_FIPS_ENDPOINT", "true"),
    ]);
    assert_eq!(settings.sts_endpoint, "https://sts.local/base");
    assert_eq!(
        settings.appconfigdata_endpoint,
        "https://appconfigdata-fips.us-east-1.amazonaws.com"
    );
}

#[test]
fn malformed_endpoint_settings_are_refused_with_their_value() {
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_APPCONFIGDATA",
        "AWS_ENDPOINT_URL_STS",
    ] {
        for value in ["127.0.0.1:4566", "ftp://host", "https://", "http://a b"] {
            assert_eq!(
                error(&[(name, value)]).message,
                format!(
                    "{name} is \"{value}\"; give a URL starting with http:// or https://, \
                     such as http://127.0.0.1:4566"
                )
            );
        }
    }
    assert_eq!(
        error(&[("AWS_USE_FIPS_ENDPOINT", "yes")]).message,
        "AWS_USE_FIPS_ENDPOINT is \"yes\"; give true or false"
    );
}

#[test]
fn regional_endpoint_builds_sts_names_too() {
    assert_eq!(
        regional_endpoint("sts", "cn-northwest-1", false, false),
        "https://sts.cn-northwest-1.amazonaws.com.cn"
    );
    assert_eq!(
        regional_endpoint("sts", "us-west-2", true, false),
        "https://sts-fips.us-west-2.amazonaws.com"
    );
}

#[test]
fn lambda_runtime_api_must_be_host_and_port() {
    let settings = parse(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]);
    assert_eq!(
        settings.lambda_runtime_api.as_deref(),
        Some("127.0.0.1:9001")
    );
    for value in [
        "http://127.0.0.1:9001",
        "127.0.0.1",
        "127.0.0.1:port",
        ":9001",
    ] {
        assert_eq!(
            error(&[("AWS_LAMBDA_RUNTIME_API", value)]).message,
            format!(
                "AWS_LAMBDA_RUNTIME_API is \"{value}\"; give host:port, such as 127.0.0.1:9001"
            )
        );
    }
}

#[test]
fn credential_errors_name_the_variable_they_mention() {
    let found = error(&[("AWS_ACCESS_KEY_ID", "AKIDPLANTED")]);
    assert_eq!(found.variable, "AWS_ACCESS_KEY_ID");
    assert!(!found.message.contains("AKIDPLANTED"), "{}", found.message);

    let cases = [
        (
            "credentials: AWS_SECRET_ACCESS_KEY is missing",
            Some("AWS_SECRET_ACCESS_KEY"),
        ),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI is \"x\"",
            Some("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ),
        ("credentials: no source", None),
        ("HTTP or A_ or A_B", Some("A_B")),
    ];
    for (message, variable) in cases {
        assert_eq!(first_variable_name(message), variable, "{message}");
    }
}

#[test]
fn unknown_prefixed_names_suggest_the_closest_known_name() {
    let settings = parse(&[
        ("AWS_APPCONFIG_EXTENSION_POLL_INTERVALL_SECONDS", "45"),
        ("AWS_APPCONFIG_EXTENSION_LOGLEVEL", "debug"),
        ("aws_appconfig_extension_http_port", "1"),
        ("AWS_APPCONFIG_EXTENSION_FLAVOUR", "mint"),
        ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "2772"),
        ("POLL_INTERVALL", "45"),
    ]);
    assert_eq!(
        settings.warnings,
        [
            "unknown setting AWS_APPCONFIG_EXTENSION_FLAVOUR is ignored; run with --help for \
             the settings",
            "unknown setting AWS_APPCONFIG_EXTENSION_LOGLEVEL; did you mean \
             AWS_APPCONFIG_EXTENSION_LOG_LEVEL?",
            "unknown setting AWS_APPCONFIG_EXTENSION_POLL_INTERVALL_SECONDS; did you mean \
             AWS_APPCONFIG_EXTENSION_POLL_INTERVAL_SECONDS?",
            "unknown setting aws_appconfig_extension_http_port; did you mean \
             AWS_APPCONFIG_EXTENSION_HTTP_PORT?",
        ]
    );
}

#[test]
fn edit_distance_counts_single_character_edits() {
    let cases = [
        ("", "", 0),
        ("LOG_LEVEL", "LOG_LEVEL", 0),
        ("LOGLEVEL", "LOG_LEVEL", 1),
        ("LOG_LEVLE", "LOG_LEVEL", 2),
        ("kitten", "sitting", 3),
        ("", "ABC", 3),
    ];
    for (left, right, distance) in cases {
        assert_eq!(edit_distance(left, right), distance, "{left} {right}");
        assert_eq!(edit_distance(right, left), distance, "{right} {left}");
    }
}

#[test]
fn the_description_is_one_line_and_masks_every_secret() {
    let settings = parse(&[
        ("ACCESS_TOKEN", "planted-token"),
        ("AWS_ACCESS_KEY_ID", "AKIDPLANTED"),
        ("AWS_SECRET_ACCESS_KEY", "planted-secret-key"),
        ("AWS_SESSION_TOKEN", "planted-session"),
        ("PROXY_URL", "http://user:planted-password@proxy:3128"),
        ("PROXY_HEADERS", "Proxy-Authorization: Basic planted-header"),
        ("ROLE_ARN", "arn:aws:iam::123456789012:role/reader"),
        ("ROLE_EXTERNAL_ID", "planted-external"),
        ("MANIFEST", "{\n\"a:b:c\": {}\n}"),
        ("PREFETCH_LIST", "shop:prod:flags"),
        ("LOG_PATH", "/var/log/agent log"),
    ]);
    let line = settings.describe();
    assert!(!line.contains('\n'), "{line}");
    assert!(!line.to_ascii_lowercase().contains("planted"), "{line}");
    assert!(!line.contains("AKID"), "{line}");
    for part in [
        "http_host=localhost http_port=2772 poll_interval=45s request_timeout=3000ms ",
        "log_level=info log_path=\"/var/log/agent log\" log_format=text region=us-east-1 ",
        "appconfigdata_endpoint=https://appconfigdata.us-east-1.amazonaws.com ",
        "credentials=environment keys ",
        "role=arn:aws:iam::123456789012:role/reader (external id set, session name default)",
        "proxy=http://****@proxy:3128 headers [Proxy-Authorization: ****]",
        "access_token=****",
        "prefetch_list=[\"shop:prod:flags\"]",
        "manifest=\"{\\n\\\"a:b:c\\\": {}\\n}\"",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
}

#[cfg(unix)]
#[test]
fn non_utf8_values_of_our_variables_are_refused_and_others_skipped() {
    use std::os::unix::ffi::OsStringExt;

    let bad = || OsString::from_vec(vec![b'a', 0xff, b'b']);
    let snapshot = environment_snapshot([
        (OsString::from("HOME"), bad()),
        (OsString::from_vec(vec![0xff]), OsString::from("x")),
        (OsString::from("AWS_REGION"), OsString::from("us-east-1")),
    ])
    .expect("only foreign variables are not UTF-8");
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot["AWS_REGION"], "us-east-1");

    for name in [
        "LOG_PATH",
        "AWS_APPCONFIG_EXTENSION_ACCESS_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        let found = environment_snapshot([(OsString::from(name), bad())]).expect_err(name);
        assert_eq!(found.variable, name);
        assert_eq!(
            found.message,
            format!("{name} is not valid UTF-8; give its value in UTF-8")
        );
    }
}

#[test]
fn help_text_lists_every_setting() {
    for name in SETTING_NAMES {
        assert!(
            HELP_TEXT.contains(&format!("\n  {name} ")),
            "{name} missing from --help"
        );
    }
}

#[test]
fn long_values_are_cut_in_messages() {
    let value = "x".repeat(500);
    let found = error(&[("HTTP_PORT", &value)]);
    assert!(found.message.len() < 300, "{}", found.message);
    assert!(found.message.contains(&format!("\"{}…\"", "x".repeat(200))));
}
