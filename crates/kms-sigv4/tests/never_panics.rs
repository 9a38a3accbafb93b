//! Property tests: `parse` and `verify` return errors, never panic, whatever
//! the header bytes, path or query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use http::{HeaderValue, Request};
use kms_sigv4::{SigningKey, parse};
use proptest::prelude::*;

/// Builds a request carrying every header value that `http` accepts.
fn request_with(headers: &[(&'static str, Vec<u8>)], path_and_query: &str) -> http::request::Parts {
    let uri = path_and_query.parse::<http::Uri>().unwrap_or_else(|_| http::Uri::from_static("/"));
    let mut parts = Request::post(uri).body(()).unwrap().into_parts().0;
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            parts.headers.append(*name, value);
        }
    }
    parts
}

fn parse_and_verify(parts: &http::request::Parts, now: i64) {
    if let Ok(pending) = parse(parts) {
        let key = SigningKey::derive(b"secret", pending.scope_date(), pending.region(), pending.service());
        let _ = pending.verify(parts, b"body", &key, now, pending.service());
        let _ = pending.verify(parts, b"", &key, now, "kms");
    }
}

/// Authorization values that get past the first checks: the right prefix
/// followed by fragments of the real syntax.
fn sigv4_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just(" ".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("/".to_owned()),
        Just(";".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("AKID/20150830/us-east-1/kms/aws4_request".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b".to_owned()),
        "[ -~]{0,12}",
    ];
    proptest::collection::vec(fragment, 0..16).prop_map(|parts| format!("AWS4-{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_strings(
        authorization in "\\PC*",
        date in prop_oneof!["\\PC*", Just("20150830T123600Z".to_owned())],
        path in "\\PC*",
        now in any::<i64>(),
    ) {
        let parts = request_with(
            &[
                ("authorization", authorization.into_bytes()),
                ("x-amz-date", date.into_bytes()),
                ("host", b"example.amazonaws.com".to_vec()),
            ],
            &path,
        );
        parse_and_verify(&parts, now);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        authorization in proptest::collection::vec(any::<u8>(), 0..256),
        date in proptest::collection::vec(any::<u8>(), 0..40),
        http_date in proptest::collection::vec(any::<u8>(), 0..40),
        token in proptest::collection::vec(any::<u8>(), 0..40),
        content_sha256 in proptest::collection::vec(any::<u8>(), 0..70),
        now in any::<i64>(),
    ) {
        let parts = request_with(
            &[
                ("authorization", authorization),
                ("x-amz-date", date),
                ("date", http_date),
                ("x-amz-security-token", token),
                ("x-amz-content-sha256", content_sha256),
            ],
            "/",
        );
        parse_and_verify(&parts, now);
    }

    #[test]
    fn parse_never_panics_on_sigv4_like_headers(
        authorization in sigv4_like(),
        duplicate in any::<bool>(),
        query in "[a-zA-Z0-9%+=&._~-]{0,24}",
        header_value in proptest::collection::vec(any::<u8>(), 0..24),
        now in 1_440_000_000i64..1_441_000_000,
    ) {
        let mut headers = vec![
            ("authorization", authorization.clone().into_bytes()),
            ("x-amz-date", b"20150830T123600Z".to_vec()),
            ("host", header_value.clone()),
            ("my-header", header_value),
        ];
        if duplicate {
            headers.push(("authorization", authorization.into_bytes()));
        }
        let parts = request_with(&headers, &format!("/a/../b/?{query}"));
        parse_and_verify(&parts, now);
    }
}
