//! Feature flags through the HTTP path (product.md §2.2–2.4, feature-flags.md): `?flag=`
//! selection, `Context` headers, multi-variant evaluation of the Ion and deployment-time JSON
//! forms, hostile input, rule warnings once per version, `If-None-Match` on evaluated answers and
//! new versions after the poll interval. Each test drives the real binary against the loopback
//! fake AppConfigData.
//!
//! Agents that must not refresh keep the default 45 s poll interval; the two that must run with
//! `POLL_INTERVAL=1` and wait with bounded `wait_until`, never a sleep.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed step should panic with its message"
)]

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use support::agent::{AgentProcess, Connection, Response};
use support::appconfigdata::{FakeAppConfig, Fault, FaultScope};
use support::{start_agent, wait_until};

/// Content type of the Ion multi-variant form (feature-flags.md §1).
const ION_TYPE: &str = "application/ion; type=AWS.AppConfig.FeatureFlags";
/// Bound on waiting for something a working agent does within a few seconds.
const PATIENCE: Duration = Duration::from_secs(15);
/// The Ion example of feature-flags.md §1, exactly.
const SPEC_ION: &str = r#"'basic_flag'::'''{"enabled": true, "color": "orange"}'''
'ui_refresh'::[
  [ (ends_with $email "qa-testers.mycompany.com"), '''{"_variant":"QA","enabled":true,"dark_mode_support":true}''' ],
  [ (exists key::"opted_in_to_beta"),               '''{"_variant":"Beta Testers","enabled":true,"dark_mode_support":true}''' ],
  [ (split pct::10 by::$email),                    '''{"_variant":"Sample Population","enabled":true,"dark_mode_support":false}''' ],
  '''{"_variant":"Default Variant","enabled":false}'''
]
"#;

fn path(profile: &str) -> String {
    format!("/applications/shop/environments/prod/configurations/{profile}")
}

/// A fake serving `shop:prod:{profile}` for each `(profile, body, content type)`, as version 1.
fn fake_with(deployments: &[(&str, &[u8], &str)]) -> FakeAppConfig {
    let fake = FakeAppConfig::start();
    for (profile, body, content_type) in deployments {
        fake.deploy("shop", "prod", profile, body, content_type, Some("1"));
    }
    fake
}

/// One `Context` header per item of `contexts`.
fn context_headers<'a>(contexts: &[&'a str]) -> Vec<(&'static str, &'a str)> {
    contexts.iter().map(|value| ("Context", *value)).collect()
}

/// `GET target` with one `Context` header per item, expecting a `200` evaluated answer: JSON
/// with `Content-Type: application/json`.
fn get_json(agent: &AgentProcess, target: &str, contexts: &[&str]) -> (Response, Value) {
    let response = agent.request("GET", target, &context_headers(contexts));
    assert_json_answer(target, contexts, response)
}

fn assert_json_answer(target: &str, contexts: &[&str], response: Response) -> (Response, Value) {
    assert_eq!(
        response.status, 200,
        "GET {target} with Context {contexts:?}: {response}"
    );
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json"),
        "GET {target}"
    );
    let value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("GET {target}: not JSON ({e}): {}", response.text()));
    (response, value)
}

/// product.md §2.4: the status, and a plain-text body of one line starting with `code: `.
fn assert_error_line(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{response}");
    let text = response.text();
    assert!(
        text.starts_with(&format!("{code}: ")) && !text.contains(['\n', '\r']),
        "one line starting with `{code}: `: {text:?}"
    );
}

fn assert_pings(agent: &AgentProcess) {
    let ping = agent.get("/ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "healthy"));
}

/// The `split` bucket of feature-flags.md §4.3, computed independently of the agent.
fn bucket(seed: &str, value: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(seed.as_bytes())
        .chain_update([0x1f])
        .chain_update(value.as_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10_000
}

/// Sends `GET /log-mark/{name}` (a 404) and waits for its trace line, so that every line logged
/// while answering the requests before it has been captured. Needs `LOG_LEVEL=trace`.
fn settle_log(agent: &AgentProcess, name: &str) {
    let mark = format!("/log-mark/{name}");
    assert_eq!(agent.get(&mark).status, 404);
    assert!(
        agent.wait_for_log(&format!("GET {mark} -> 404"), PATIENCE),
        "no trace line for {mark}; log:\n{}",
        agent.stderr_text()
    );
}

/// The log lines that contain `needle`, in order.
fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|line| line.contains(needle)).collect()
}

#[test]
fn basic_flags_are_served_unchanged_whole_and_as_json_per_flag() {
    // Odd spacing and key order: any re-serialisation of the whole profile would show.
    let basic: &[u8] = b"{ \"beta\": {\"enabled\": false},\n  \"alpha\": {\"color\":\"red\", \
                         \"enabled\": true, \"size\": 3} }";
    let fake = fake_with(&[
        ("flags", basic, "application/json"),
        ("plain", br#"{"x":1}"#, "application/json"),
        ("text", b"just some text", "text/plain"),
    ]);
    let agent = start_agent(&fake, &[]);

    let whole = agent.get(&path("flags"));
    assert_eq!(
        (whole.status, whole.body.as_slice()),
        (200, basic),
        "{whole}"
    );
    assert_eq!(whole.header("Content-Type"), Some("application/json"));
    assert_eq!(whole.header("Configuration-Version"), Some("1"));

    let (one, alpha) = get_json(&agent, &format!("{}?flag=alpha", path("flags")), &[]);
    assert_eq!(alpha, json!({"enabled": true, "color": "red", "size": 3}));
    assert_eq!(one.header("Configuration-Version"), Some("1"));
    let (_, both) = get_json(
        &agent,
        &format!("{}?flag=alpha&flag=beta", path("flags")),
        &[],
    );
    assert_eq!(
        both,
        json!({"alpha": {"enabled": true, "color": "red", "size": 3}, "beta": {"enabled": false}})
    );

    for query in ["flag=nope", "flag=alpha&flag=nope"] {
        let response = agent.get(&format!("{}?{query}", path("flags")));
        assert_error_line(&response, 404, "ResourceNotFoundException");
        assert!(
            response.text().contains("\"nope\""),
            "names the key: {response}"
        );
    }

    // `flag` on data that is not a flag set: a JSON object of non-flags, and plain text.
    for profile in ["plain", "text"] {
        let response = agent.get(&format!("{}?flag=x", path(profile)));
        assert_error_line(&response, 400, "BadRequest");
        assert!(
            response.text().contains(&format!("shop:prod:{profile}")),
            "{response}"
        );
        // Without `flag` the same data is served as it came.
        assert_eq!(agent.get(&path(profile)).status, 200);
    }
    let text = agent.get(&path("text"));
    assert_eq!(
        (text.body.as_slice(), text.header("Content-Type")),
        (&b"just some text"[..], Some("text/plain"))
    );
}

#[test]
fn ion_flags_follow_the_ui_refresh_table_through_context_headers() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    let whole = path("ui");
    let one = format!("{whole}?flag=ui_refresh");
    let default = json!({"_variant": "Default Variant", "enabled": false});
    let qa = json!({"_variant": "QA", "enabled": true, "dark_mode_support": true});
    let beta = json!({"_variant": "Beta Testers", "enabled": true, "dark_mode_support": true});
    let sample =
        json!({"_variant": "Sample Population", "enabled": true, "dark_mode_support": false});

    // No context: every variant flag at its default, basic flags as their JSON.
    let (response, body) = get_json(&agent, &whole, &[]);
    assert_eq!(
        body,
        json!({"basic_flag": {"enabled": true, "color": "orange"}, "ui_refresh": default})
    );
    assert_eq!(response.header("Configuration-Version"), Some("1"));

    // feature-flags.md §4.4, with the split bucket computed here.
    let jane = "email=jane@example.org";
    let jane_variant = if bucket("ui_refresh", "jane@example.org") < 1_000 {
        &sample
    } else {
        &default
    };
    let table: [(&[&str], &Value); 4] = [
        (&[], &default),
        (&["email=jane@qa-testers.mycompany.com"], &qa),
        (&[jane, "opted_in_to_beta=false"], &beta),
        (&[jane], jane_variant),
    ];
    for (contexts, expected) in table {
        assert_eq!(
            &get_json(&agent, &one, contexts).1,
            expected,
            "{contexts:?}"
        );
        let all = get_json(&agent, &whole, contexts).1;
        assert_eq!(&all["ui_refresh"], expected, "{contexts:?}");
        assert_eq!(
            all["basic_flag"],
            json!({"enabled": true, "color": "orange"})
        );
    }

    // A split picks both sides for some addresses, and always the same side for one address.
    let mut sides = Vec::new();
    for i in 0..200 {
        let item = format!("email=user{i}@example.org");
        let expected = if bucket("ui_refresh", &item[6..]) < 1_000 {
            &sample
        } else {
            &default
        };
        assert_eq!(&get_json(&agent, &one, &[&item]).1, expected, "{item}");
        sides.push(expected == &sample);
    }
    assert!(sides.contains(&true) && sides.contains(&false), "{sides:?}");
}

#[test]
fn context_in_repeated_headers_or_one_header_gives_the_same_answer_and_the_last_repeat_wins() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    let whole = path("ui");
    let qa_email = "email=jane@qa-testers.mycompany.com";
    let other_email = "email=someone@example.org";

    let repeated = get_json(&agent, &whole, &[qa_email, "opted_in_to_beta=false"]).1;
    let combined = get_json(
        &agent,
        &whole,
        &[&format!("{qa_email}, opted_in_to_beta=false")],
    )
    .1;
    assert_eq!(repeated, combined);
    assert_eq!(repeated["ui_refresh"]["_variant"], "QA");
    let beta_first = get_json(
        &agent,
        &whole,
        &["opted_in_to_beta=1 ,  email=x@example.org"],
    )
    .1;
    assert_eq!(beta_first["ui_refresh"]["_variant"], "Beta Testers");

    // A repeated key keeps its last value, across headers and within one header.
    let qa_last = format!("{other_email},{qa_email}");
    let other_last = format!("{qa_email}, {other_email}");
    let cases: [(&[&str], bool); 4] = [
        (&[other_email, qa_email], true),
        (&[&qa_last], true),
        (&[qa_email, other_email], false),
        (&[&other_last], false),
    ];
    for (contexts, is_qa) in cases {
        let body = get_json(&agent, &whole, contexts).1;
        assert_eq!(
            body["ui_refresh"]["_variant"] == "QA",
            is_qa,
            "{contexts:?}: {body}"
        );
    }
}

/// One flag set in the Ion form: the §1 example, the §4.4 flags, and a flag using typed
/// comparisons, `in`, `not` and `matches`, written with comments and concatenated long strings.
const EQUIVALENT_ION: &str = include_str!("fixtures/flags/equivalent.ion");
/// The same flag set as deployment-time JSON with `_variants`, default variants in each of the
/// shapes §1 allows (no rule, `"rule": null`, no or empty `attributeValues`).
const EQUIVALENT_VARIANTS: &str = include_str!("fixtures/flags/equivalent_variants.json");

/// Contexts that reach every variant of the equivalence fixtures.
fn equivalence_contexts() -> Vec<Vec<String>> {
    let mut contexts: Vec<Vec<String>> = [
        &[][..],
        &["email=jane@qa-testers.mycompany.com"],
        &["email=jane@example.org", "opted_in_to_beta=false"],
        &["email=jane@example.org"],
        &["userId=beta-42"],
        &["group=Tier3,userId=u1"],
        &["age=70, country=US, member_since=2021-05, plan=gold"],
        &[
            "age=65",
            "country=CA",
            "member_since=2020-01-01",
            "plan=platinum",
        ],
        &["age=70, country=US, member_since=2019-12-31T23:59:59Z, plan=gold"],
        &["age=64, country=US, member_since=2021, plan=gold"],
        &["age=old, country=US, member_since=2021, plan=gold"],
        &["age=70, country=FR, member_since=2021, plan=gold"],
        &["age=70, country=MX, member_since=2021, plan=goldish"],
        &["age=70, country=MX, plan=gold"],
    ]
    .iter()
    .map(|items| items.iter().map(|item| item.to_string()).collect())
    .collect();
    for i in 0..150 {
        contexts.push(vec![format!("email=user{i}@example.org")]);
        contexts.push(vec![format!("group=Tier1, userId=id-{i}")]);
        contexts.push(vec!["group=Tier2".to_string(), format!("userId=id-{i}")]);
    }
    contexts
}

#[test]
fn the_same_flag_set_as_ion_and_as_deployment_time_json_gives_identical_answers() {
    let values: Value = serde_json::from_str(EQUIVALENT_VARIANTS).unwrap();
    let top_level = serde_json::to_vec(&json!({
        "version": "1",
        "flags": {"ui_refresh": {"name": "UI refresh"}},
        "values": values,
    }))
    .unwrap();
    let fake = fake_with(&[
        ("ion", EQUIVALENT_ION.as_bytes(), ION_TYPE),
        (
            "variants",
            EQUIVALENT_VARIANTS.as_bytes(),
            "application/json",
        ),
        ("top", &top_level, "application/json"),
    ]);
    let agent = start_agent(&fake, &[("LOG_LEVEL", "trace")]);
    let mut connection = Connection::open(agent.addr()).unwrap();
    let mut variants_seen = std::collections::BTreeSet::new();

    for contexts in equivalence_contexts() {
        let items: Vec<&str> = contexts.iter().map(String::as_str).collect();
        for query in ["", "?flag=colorway", "?flag=tiered_release&flag=basic_flag"] {
            let mut answers = Vec::new();
            for profile in ["ion", "variants", "top"] {
                let target = format!("{}{query}", path(profile));
                let response = connection
                    .send("GET", &target, &context_headers(&items), b"")
                    .unwrap();
                answers.push(assert_json_answer(&target, &items, response).1);
            }
            assert_eq!(
                answers[0], answers[1],
                "Ion vs _variants, {query} {items:?}"
            );
            assert_eq!(
                answers[0], answers[2],
                "Ion vs top-level, {query} {items:?}"
            );
            if query.is_empty() {
                let flags = answers[0].as_object().unwrap();
                let names = flags.values().filter_map(|f| f["_variant"].as_str());
                variants_seen.extend(names.map(str::to_string));
            }
        }
    }
    assert_eq!(
        variants_seen.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "Beta Testers",
            "BetaTesters",
            "Default",
            "Default Variant",
            "HideFeature",
            "None",
            "QA",
            "Sample Population",
            "Senior",
            "ShowFeature",
            "SplitRollOut"
        ],
        "the contexts reach every variant"
    );

    // feature-flags.md §1: the top-level form gets one warning for its version.
    settle_log(&agent, "equivalence");
    let log = agent.stderr_text();
    let warnings = lines_with(&log, "deployment-time document");
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("shop:prod:top version 1"), "{log}");
}

#[test]
fn malformed_context_items_get_400_naming_the_item() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    let cases: [(&[&str], &str); 4] = [
        (&["nokey"], "\"nokey\""),
        (&["=v"], "\"=v\""),
        (&["email=a@example.org, nokey"], "\"nokey\""),
        (&["email=a@example.org", " = v"], "\"= v\""),
    ];
    for (contexts, named) in cases {
        for target in [path("ui"), format!("{}?flag=ui_refresh", path("ui"))] {
            let response = agent.request("GET", &target, &context_headers(contexts));
            assert_error_line(&response, 400, "BadRequest");
            assert!(response.text().contains(named), "{contexts:?} → {response}");
        }
    }
    // Well-formed items next to those cases are still accepted.
    get_json(&agent, &path("ui"), &["email=a@example.org, x = y", "z="]);
}

/// Sends raw header bytes (not UTF-8) with `Connection: close` and reads until the agent closes.
fn send_raw_context(agent: &AgentProcess, value: &[u8]) -> Vec<u8> {
    let mut connection = Connection::open(agent.addr()).unwrap();
    let mut raw = format!("GET {} HTTP/1.1\r\nHost: test\r\nContext: ", path("ui")).into_bytes();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let stream = connection.stream();
    stream.write_all(&raw).unwrap();
    let mut answer = Vec::new();
    // A reset instead of an orderly close is a refusal too; what matters is what came before.
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn invalid_utf8_in_a_context_header_is_refused_and_the_agent_keeps_answering() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    get_json(&agent, &path("ui"), &[]);

    for value in [&b"email=\xff\xfe"[..], b"a=1, email=\xc3", b"\x80=1"] {
        let answer = send_raw_context(&agent, value);
        // Either a 400 or the connection closed without an answer; never data, never a 5xx.
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 400 "),
            "{value:?} → {}",
            String::from_utf8_lossy(&answer)
        );
        assert_pings(&agent);
    }
    let after = get_json(
        &agent,
        &path("ui"),
        &["email=jane@qa-testers.mycompany.com"],
    )
    .1;
    assert_eq!(after["ui_refresh"]["_variant"], "QA");
}

#[test]
fn ten_thousand_context_items_get_400_and_the_agent_keeps_answering() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    // 40,000 bytes in one header: within the byte bound, so the item bound refuses it.
    let one_header = "a=1,".repeat(10_000);
    let response = agent.request("GET", &path("ui"), &[("Context", &one_header)]);
    assert_error_line(&response, 400, "BadRequest");
    assert!(
        response.text().contains("items"),
        "names the limit: {response}"
    );
    assert_pings(&agent);

    // 10,000 headers with distinct keys: refused by one of the two bounds.
    let many_headers: Vec<String> = (0..10_000).map(|i| format!("key{i}=v")).collect();
    let many_headers: Vec<&str> = many_headers.iter().map(String::as_str).collect();
    let response = agent.request("GET", &path("ui"), &context_headers(&many_headers));
    assert_error_line(&response, 400, "BadRequest");
    assert!(response.text().contains("Context"), "{response}");
    assert_pings(&agent);

    let after = get_json(&agent, &path("ui"), &["opted_in_to_beta=yes"]).1;
    assert_eq!(after["ui_refresh"]["_variant"], "Beta Testers");
}

#[test]
fn a_pathological_regex_against_a_50000_character_value_answers_and_the_agent_keeps_going() {
    let ion = r#"'risky'::[
  [ (matches in::$g pattern::"(a+)+$"), '''{"_variant":"Matched","enabled":true}''' ],
  '''{"_variant":"Default","enabled":false}'''
]
"#;
    let fake = fake_with(&[("regex", ion.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    let target = format!("{}?flag=risky", path("regex"));
    let matching = format!("g={}", "a".repeat(50_000));
    // The classic catastrophic case for a backtracking engine: a long run then a mismatch.
    let failing = format!("g={}!", "a".repeat(49_999));

    let (_, matched) = get_json(&agent, &target, &[&matching]);
    assert_eq!(matched["_variant"], "Matched");
    assert_pings(&agent);
    let (_, missed) = get_json(&agent, &target, &[&failing]);
    assert_eq!(missed["_variant"], "Default");
    assert_pings(&agent);
}

#[test]
fn a_rule_with_an_unknown_operator_never_matches_and_is_warned_about_once_per_version() {
    let ion = r#"'checkout'::[
  [ (equals $tier "gold"), '''{"_variant":"Broken","enabled":true}''' ],
  [ (eq $tier "gold"),     '''{"_variant":"Gold","enabled":true}''' ],
  '''{"_variant":"Off","enabled":false}'''
]
"#;
    let fake = fake_with(&[("rules", ion.as_bytes(), ION_TYPE)]);
    fake.set_poll_interval(1);
    let agent = start_agent(&fake, &[("LOG_LEVEL", "trace"), ("POLL_INTERVAL", "1")]);
    let whole = path("rules");
    let one = format!("{whole}?flag=checkout");

    for i in 0..40 {
        let tier = ["gold", "silver", "equals", ""][i % 4];
        let context = format!("tier={tier}");
        let expected = if tier == "gold" { "Gold" } else { "Off" };
        assert_eq!(
            get_json(&agent, &one, &[&context]).1["_variant"],
            expected,
            "{context}"
        );
        let all = get_json(&agent, &whole, &[&context]).1;
        assert_eq!(all["checkout"]["_variant"], expected, "{context}");
    }
    assert_eq!(get_json(&agent, &one, &[]).1["_variant"], "Off");

    // A token refused on a refresh makes the agent start a new session, which sends the same
    // version again: that is still the same version, so no second warning.
    fake.inject_fault(
        FaultScope::GetLatestConfiguration,
        Fault::ExpiredToken400,
        1,
    );
    assert!(
        agent.wait_for_log("shop:prod:rules sent again unchanged", PATIENCE),
        "{}",
        agent.stderr_text()
    );
    assert_eq!(get_json(&agent, &one, &["tier=gold"]).1["_variant"], "Gold");
    settle_log(&agent, "bad-rule");
    let log = agent.stderr_text();
    let warnings = lines_with(&log, "\"Broken\"");
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains(" WARN ")
            && warnings[0].contains("shop:prod:rules")
            && warnings[0].contains("version 1")
            && warnings[0].contains("equals"),
        "the warning names the configuration, version, flag and operator: {}",
        warnings[0]
    );
}

#[test]
fn if_none_match_on_an_evaluated_answer_is_304_for_the_same_context_only() {
    let fake = fake_with(&[("ui", SPEC_ION.as_bytes(), ION_TYPE)]);
    let agent = start_agent(&fake, &[]);
    let qa = "email=jane@qa-testers.mycompany.com";
    let beta = "opted_in_to_beta=true";

    for target in [path("ui"), format!("{}?flag=ui_refresh", path("ui"))] {
        let (first, body) = get_json(&agent, &target, &[qa]);
        let etag = first.header("ETag").expect("an ETag").to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

        let same = agent.request("GET", &target, &[("Context", qa), ("If-None-Match", &etag)]);
        assert_eq!(same.status, 304, "{target}: {same}");
        assert_eq!(same.header("ETag"), Some(etag.as_str()));
        assert!(same.body.is_empty());

        let other = agent.request(
            "GET",
            &target,
            &[("Context", beta), ("If-None-Match", &etag)],
        );
        let (other, other_body) = assert_json_answer(&target, &[beta], other);
        assert_ne!(other_body, body);
        let other_etag = other.header("ETag").expect("an ETag");
        assert_ne!(other_etag, etag, "{target}");

        let back = agent.request(
            "GET",
            &target,
            &[("Context", beta), ("If-None-Match", other_etag)],
        );
        assert_eq!(back.status, 304, "{target}: {back}");
    }
}

#[test]
fn a_new_version_with_changed_rules_is_evaluated_after_the_poll_interval() {
    let version = |tier: &str| {
        format!(
            r#"'rollout'::[
  [ (eq $tier "{tier}"), '''{{"_variant":"Early","enabled":true,"tier":"{tier}"}}''' ],
  [ (bogus_operator $tier), '''{{"_variant":"Broken","enabled":true}}''' ],
  '''{{"_variant":"Off","enabled":false}}'''
]
"#
        )
    };
    let fake = FakeAppConfig::start();
    fake.set_poll_interval(1);
    fake.deploy(
        "shop",
        "prod",
        "rollout",
        version("gold").as_bytes(),
        ION_TYPE,
        Some("1"),
    );
    let agent = start_agent(&fake, &[("POLL_INTERVAL", "1")]);
    let target = format!("{}?flag=rollout", path("rollout"));

    let (first, gold) = get_json(&agent, &target, &["tier=gold"]);
    assert_eq!(gold["_variant"], "Early");
    assert_eq!(first.header("Configuration-Version"), Some("1"));
    assert_eq!(
        get_json(&agent, &target, &["tier=silver"]).1["_variant"],
        "Off"
    );

    fake.deploy(
        "shop",
        "prod",
        "rollout",
        version("silver").as_bytes(),
        ION_TYPE,
        Some("2"),
    );
    let picked_up = wait_until(PATIENCE, || {
        get_json(&agent, &target, &["tier=silver"]).1["_variant"] == "Early"
    });
    assert!(
        picked_up,
        "version 2 never answered; log:\n{}",
        agent.stderr_text()
    );
    let (second, silver) = get_json(&agent, &target, &["tier=silver"]);
    assert_eq!(
        silver,
        json!({"_variant": "Early", "enabled": true, "tier": "silver"})
    );
    assert_eq!(second.header("Configuration-Version"), Some("2"));
    let (_, gold) = get_json(&agent, &target, &["tier=gold"]);
    assert_eq!(gold["_variant"], "Off", "the old rule is gone");

    // Each version's rules were read once: one warning for each.
    assert!(agent.wait_for_log("flags of shop:prod:rollout version 2", PATIENCE));
    let log = agent.stderr_text();
    let warnings = lines_with(&log, "\"Broken\"");
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings[0].contains("shop:prod:rollout version 1:"),
        "{log}"
    );
    assert!(
        warnings[1].contains("shop:prod:rollout version 2:"),
        "{log}"
    );
}
