//! The independent SigV4 verifier and signer (`support::sigv4`): all five wire.md §5 vectors,
//! agreement with the crate's aws-sigv4 signer, and refusal of tampered requests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use appconfig_lite::signing::{sign_request, RequestToSign};
use aws_credential_types::Credentials;

use crate::support::sigv4::{self, ExpectedCredentials, ReceivedRequest, SignatureError, Verifier};

const VECTOR_ACCESS_KEY: &str = "AKIDEXAMPLE";
const VECTOR_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const VECTOR_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+token/with=chars";
const V1_BODY: &str = concat!(
    r#"{"ApplicationIdentifier":"my-app","EnvironmentIdentifier":"prod","#,
    r#""ConfigurationProfileIdentifier":"flags","RequiredMinimumPollIntervalInSeconds":15}"#
);
const V3_BODY: &str = concat!(
    "Action=AssumeRole&Version=2011-06-15",
    "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdemo",
    "&RoleSessionName=appconfig-ext&ExternalId=ext-123&DurationSeconds=900"
);
const V2_TARGET: &str = "/configuration?configuration_token=AYADeJx%2Babc%2Fdef%3D%3D";
const AWS_HOST: &str = "appconfigdata.us-east-1.amazonaws.com";

/// One wire.md §5 vector.
#[derive(Clone, Copy)]
struct Vector {
    name: &'static str,
    method: &'static str,
    host: &'static str,
    target: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    service: &'static str,
    token: Option<&'static str>,
    signature: &'static str,
}

const VECTORS: [Vector; 5] = [
    Vector {
        name: "V1",
        method: "POST",
        host: AWS_HOST,
        target: "/configurationsessions",
        content_type: Some("application/json"),
        body: V1_BODY,
        service: "appconfig",
        token: Some(VECTOR_TOKEN),
        signature: "62beb4b068418de17ce02c9818eec3765dfafb39cdb044fb6324311553fb32ad",
    },
    Vector {
        name: "V2",
        method: "GET",
        host: AWS_HOST,
        target: V2_TARGET,
        content_type: None,
        body: "",
        service: "appconfig",
        token: Some(VECTOR_TOKEN),
        signature: "5d4822e0c958acf2226b4bef4d15eb02326fb4cd66f82ee73df3c8a25f73d7d1",
    },
    Vector {
        name: "V3",
        method: "POST",
        host: "sts.us-east-1.amazonaws.com",
        target: "/",
        content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
        body: V3_BODY,
        service: "sts",
        token: Some(VECTOR_TOKEN),
        signature: "3038e2b0fe4aa8536542808fa14dc75fa5225b55f0c78f8b6fde765dbb09b025",
    },
    Vector {
        name: "V4",
        method: "GET",
        host: "127.0.0.1:8080",
        target: V2_TARGET,
        content_type: None,
        body: "",
        service: "appconfig",
        token: Some(VECTOR_TOKEN),
        signature: "3c5e9a8e5d9c7f0316c6612c17142c9f3e8465d069f2703ccb10aceba718cadf",
    },
    Vector {
        name: "V5",
        method: "GET",
        host: AWS_HOST,
        target: V2_TARGET,
        content_type: None,
        body: "",
        service: "appconfig",
        token: None,
        signature: "4daa080f9fb0ebb24a0a82f5f807424af8a8249cf2ee111eaa8cda613eabf855",
    },
];

/// 2015-08-30T12:36:00Z, the signing time of every vector.
fn vector_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn vector_credentials(token: Option<&str>) -> ExpectedCredentials {
    ExpectedCredentials {
        access_key: VECTOR_ACCESS_KEY.to_string(),
        secret_key: VECTOR_SECRET.to_string(),
        session_token: token.map(str::to_string),
    }
}

/// Signs a vector with the support signer; returns its headers (authorization last).
fn sign_vector(vector: &Vector) -> Vec<(String, String)> {
    let Vector {
        method,
        host,
        target,
        content_type,
        body,
        service,
        token,
        ..
    } = *vector;
    let mut headers = vec![("host".to_string(), host.to_string())];
    if let Some(content_type) = content_type {
        headers.push(("content-type".to_string(), content_type.to_string()));
    }
    let credentials = vector_credentials(token);
    let request = ReceivedRequest {
        method,
        target,
        headers: &headers,
        body: body.as_bytes(),
    };
    sigv4::sign_headers(&request, &credentials, "us-east-1", service, vector_time())
}

fn signature_of(headers: &[(String, String)]) -> String {
    let authorization = sigv4::header_value(headers, "authorization").unwrap_or_default();
    authorization
        .rsplit("Signature=")
        .next()
        .unwrap_or_default()
        .to_string()
}

fn vector_verifier(vector: &Vector) -> Verifier {
    Verifier {
        credentials: vector_credentials(vector.token),
        region: "us-east-1".to_string(),
        service: vector.service.to_string(),
        max_clock_skew: None,
    }
}

fn verify_vector(
    vector: &Vector,
    headers: &[(String, String)],
    target: &str,
    body: &str,
) -> Result<(), SignatureError> {
    let request = ReceivedRequest {
        method: vector.method,
        target,
        headers,
        body: body.as_bytes(),
    };
    vector_verifier(vector).verify(&request, vector_time())
}

#[test]
fn signer_reproduces_the_five_published_vectors() {
    for vector in &VECTORS {
        let headers = sign_vector(vector);
        assert_eq!(
            signature_of(&headers),
            vector.signature,
            "vector {}",
            vector.name
        );
        assert_eq!(
            verify_vector(vector, &headers, vector.target, vector.body),
            Ok(()),
            "{}",
            vector.name
        );
    }
}

#[test]
fn verifier_accepts_what_the_agent_signer_produces() {
    for vector in &VECTORS {
        let Vector {
            name,
            method,
            host,
            target,
            content_type,
            body,
            service,
            token,
            signature: published,
        } = *vector;
        let scheme = if host.starts_with("127.") {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}{target}");
        let extra: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        let request = RequestToSign {
            method,
            url: &url,
            headers: &extra,
            body: body.as_bytes(),
        };
        let credentials = Credentials::new(
            VECTOR_ACCESS_KEY,
            VECTOR_SECRET,
            token.map(str::to_string),
            None,
            "t",
        );
        let added =
            sign_request(&request, &credentials, "us-east-1", service, vector_time()).unwrap();
        let mut headers = vec![("Host".to_string(), host.to_string())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        headers.extend(added);
        assert_eq!(signature_of(&headers), published, "{name}");
        assert_eq!(
            verify_vector(vector, &headers, target, body),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn verifier_rejects_tampered_requests() {
    let v1 = &VECTORS[0];
    let signed = sign_vector(v1);
    let with = |name: &str, value: &str| -> Vec<(String, String)> {
        signed
            .iter()
            .map(|(n, v)| {
                if n == name {
                    (n.clone(), value.to_string())
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect()
    };
    let mismatch = |result: Result<(), SignatureError>| {
        matches!(result, Err(SignatureError::SignatureMismatch { .. }))
    };

    let other_body = V1_BODY.replace("prod", "beta");
    assert!(
        mismatch(verify_vector(v1, &signed, v1.target, &other_body)),
        "body changed"
    );
    assert!(
        mismatch(verify_vector(
            v1,
            &signed,
            "/configurationsessions?x=1",
            V1_BODY
        )),
        "query"
    );
    assert!(
        mismatch(verify_vector(
            v1,
            &with("host", "127.0.0.1:9"),
            v1.target,
            V1_BODY
        )),
        "host"
    );
    let content_type = with("content-type", "application/json; charset=utf-8");
    assert!(
        mismatch(verify_vector(v1, &content_type, v1.target, V1_BODY)),
        "content-type"
    );
    assert_eq!(
        verify_vector(
            v1,
            &with("x-amz-security-token", "other"),
            v1.target,
            V1_BODY
        ),
        Err(SignatureError::SecurityTokenMismatch)
    );
    let forged = signature_of(&signed).replace('6', "7");
    let authorization = sigv4::header_value(&signed, "authorization").unwrap();
    let forged_auth = authorization.replace(&signature_of(&signed), &forged);
    assert!(mismatch(verify_vector(
        v1,
        &with("authorization", &forged_auth),
        v1.target,
        V1_BODY
    )));

    // A token sent but left out of SignedHeaders.
    let mut unsigned_token = sign_vector(&VECTORS[4]);
    unsigned_token.insert(
        0,
        ("x-amz-security-token".to_string(), VECTOR_TOKEN.to_string()),
    );
    assert_eq!(
        verify_vector(v1, &unsigned_token, V2_TARGET, ""),
        Err(SignatureError::HeaderNotSigned(
            "x-amz-security-token".to_string()
        ))
    );

    let mut wrong_key = vector_verifier(v1);
    wrong_key.credentials.access_key = "AKIDOTHER".to_string();
    let request = ReceivedRequest {
        method: "POST",
        target: v1.target,
        headers: &signed,
        body: V1_BODY.as_bytes(),
    };
    assert!(matches!(
        wrong_key.verify(&request, vector_time()),
        Err(SignatureError::UnknownAccessKey { .. })
    ));
    let mut wrong_region = vector_verifier(v1);
    wrong_region.region = "eu-west-1".to_string();
    assert!(matches!(
        wrong_region.verify(&request, vector_time()),
        Err(SignatureError::WrongScope { part: "region", .. })
    ));
}

#[test]
fn clock_check_allows_five_minutes_of_skew_when_enabled() {
    let v2 = &VECTORS[1];
    let headers = sign_vector(v2);
    let request = ReceivedRequest {
        method: "GET",
        target: V2_TARGET,
        headers: &headers,
        body: b"",
    };
    let mut verifier = vector_verifier(v2);
    verifier.max_clock_skew = Some(sigv4::DEFAULT_MAX_CLOCK_SKEW);
    let four_minutes = Duration::from_secs(240);
    let six_minutes = Duration::from_secs(360);
    assert_eq!(
        verifier.verify(&request, vector_time() + four_minutes),
        Ok(())
    );
    assert_eq!(
        verifier.verify(&request, vector_time() - four_minutes),
        Ok(())
    );
    for now in [
        vector_time() + six_minutes,
        vector_time() - six_minutes,
        SystemTime::now(),
    ] {
        assert!(matches!(
            verifier.verify(&request, now),
            Err(SignatureError::ClockSkew { .. })
        ));
    }
}

#[test]
fn canonical_query_reads_raw_plus_as_space_and_sorts() {
    assert_eq!(
        sigv4::canonical_query("configuration_token=a+b"),
        "configuration_token=a%20b"
    );
    assert_eq!(sigv4::canonical_query("t=a%2Bb%2fc%3D"), "t=a%2Bb%2Fc%3D");
    assert_eq!(
        sigv4::canonical_query("b=2&a=1&a=0&flag"),
        "a=0&a=1&b=2&flag="
    );
    assert_eq!(sigv4::canonical_uri("/a b/./c/../d"), "/a%20b/d");
    assert_eq!(sigv4::format_amz_date(vector_time()), "20150830T123600Z");
    assert_eq!(
        sigv4::parse_amz_date("20150830T123600Z"),
        Some(vector_time())
    );
    assert_eq!(sigv4::parse_amz_date("2015-08-30T12:36:00Z"), None);
}
