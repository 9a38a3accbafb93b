//! Round trips with the official AWS signer (`aws-sigv4`, the signer of the
//! AWS SDK for Rust): KMS-like requests it signs must verify, and tampered or
//! out-of-scope ones must not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderValue;
use http::request::Parts;
use kms_sigv4::{SigV4Error, SigningKey, parse};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 2023-11-14T22:13:20Z.
const SIGNED_AT: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"KeyId":"alias/ferrokms-test","Plaintext":"aGVsbG8gd29ybGQ="}"#;

struct Signing<'a> {
    secret: &'a str,
    service: &'a str,
    region: &'a str,
    token: Option<&'a str>,
    content_sha256_header: bool,
}

const KMS: Signing<'static> =
    Signing { secret: SECRET, service: "kms", region: "us-east-1", token: None, content_sha256_header: false };

/// Signs a KMS `Encrypt` request as the SDK does and returns what the server
/// receives (origin-form URI).
fn signed_request(signing: &Signing<'_>, body: &[u8]) -> Parts {
    let mut request = http::Request::post("https://kms.us-east-1.amazonaws.com/")
        .header("host", "kms.us-east-1.amazonaws.com")
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "TrentService.Encrypt")
        .header("user-agent", "aws-sdk-rust/1.0 test")
        .body(body.to_vec())
        .unwrap();
    let identity: Identity =
        Credentials::new(AKID, signing.secret, signing.token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    if signing.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(signing.region)
        .name(signing.service)
        .time(UNIX_EPOCH + Duration::from_secs(u64::try_from(SIGNED_AT).unwrap()))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        request.headers().iter().map(|(name, value)| (name.as_str(), value.to_str().unwrap())),
        SignableBody::Bytes(request.body()),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    let (mut parts, _body) = request.into_parts();
    parts.uri = "/".parse().unwrap();
    parts
}

fn verify(parts: &Parts, body: &[u8], secret: &str, now: i64) -> Result<(), SigV4Error> {
    let pending = parse(parts)?;
    assert_eq!(pending.access_key_id(), AKID);
    let key = SigningKey::derive(secret.as_bytes(), pending.scope_date(), pending.region(), pending.service());
    pending.verify(parts, body, &key, now, "kms")
}

#[test]
fn accepts_sdk_signed_kms_request() {
    let parts = signed_request(&KMS, BODY);
    let pending = parse(&parts).unwrap();
    assert_eq!(pending.region(), "us-east-1");
    assert_eq!(pending.service(), "kms");
    assert_eq!(pending.scope_date(), "20231114");
    assert_eq!(pending.request_time_unix(), SIGNED_AT);
    assert_eq!(pending.security_token(), None);
    assert_eq!(pending.check_region("us-east-1"), Ok(()));
    for now in [SIGNED_AT, SIGNED_AT + 60, SIGNED_AT - 60, SIGNED_AT + 15 * 60] {
        assert_eq!(verify(&parts, BODY, SECRET, now), Ok(()));
    }
}

#[test]
fn accepts_session_token_and_content_sha256_header() {
    let signing = Signing { token: Some("FQoGZXIvYXdzEXAMPLETOKEN//////////"), content_sha256_header: true, ..KMS };
    let parts = signed_request(&signing, BODY);
    assert!(parts.headers.contains_key("x-amz-content-sha256"));
    let pending = parse(&parts).unwrap();
    assert_eq!(pending.security_token(), signing.token);
    assert_eq!(verify(&parts, BODY, SECRET, SIGNED_AT), Ok(()));
    // The header pins the body: another body fails before the signature.
    assert_eq!(verify(&parts, b"{}", SECRET, SIGNED_AT), Err(SigV4Error::ContentSha256Mismatch));
}

#[test]
fn accepts_empty_and_non_ascii_bodies() {
    for body in [&b""[..], "{\"Plaintext\":\"żółć ሴ\"}".as_bytes()] {
        let parts = signed_request(&KMS, body);
        assert_eq!(verify(&parts, body, SECRET, SIGNED_AT), Ok(()));
    }
}

#[test]
fn rejects_changed_body() {
    let parts = signed_request(&KMS, BODY);
    let mut body = BODY.to_vec();
    body[10] ^= 1;
    assert_eq!(verify(&parts, &body, SECRET, SIGNED_AT), Err(SigV4Error::SignatureMismatch));
}

#[test]
fn rejects_changed_signed_header() {
    let mut parts = signed_request(&KMS, BODY);
    parts.headers.insert("x-amz-target", HeaderValue::from_static("TrentService.Decrypt"));
    assert_eq!(verify(&parts, BODY, SECRET, SIGNED_AT), Err(SigV4Error::SignatureMismatch));
    // The user agent is not signed by the SDK, so changing it is harmless.
    let mut parts = signed_request(&KMS, BODY);
    parts.headers.insert("user-agent", HeaderValue::from_static("something else"));
    assert_eq!(verify(&parts, BODY, SECRET, SIGNED_AT), Ok(()));
}

#[test]
fn rejects_wrong_secret() {
    let parts = signed_request(&KMS, BODY);
    let err = verify(&parts, BODY, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ", SIGNED_AT).unwrap_err();
    assert_eq!(err, SigV4Error::SignatureMismatch);
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");
}

#[test]
fn rejects_wrong_service_and_region() {
    let signing = Signing { service: "sqs", ..KMS };
    let parts = signed_request(&signing, BODY);
    let err = verify(&parts, BODY, SECRET, SIGNED_AT).unwrap_err();
    assert_eq!(err, SigV4Error::WrongService { expected: "kms".into() });
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");

    let signing = Signing { region: "eu-west-1", ..KMS };
    let parts = signed_request(&signing, BODY);
    let pending = parse(&parts).unwrap();
    assert_eq!(pending.check_region("us-east-1"), Err(SigV4Error::WrongRegion { region: "eu-west-1".into() }));
}

#[test]
fn rejects_requests_outside_the_clock_skew_window() {
    let parts = signed_request(&KMS, BODY);
    let err = verify(&parts, BODY, SECRET, SIGNED_AT + 16 * 60).unwrap_err();
    assert!(matches!(err, SigV4Error::SignatureExpired { .. }), "{err}");
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20231114T221320Z is now earlier than 20231114T221420Z \
         (20231114T222920Z - 15 min.)"
    );

    let err = verify(&parts, BODY, SECRET, SIGNED_AT - 16 * 60).unwrap_err();
    assert!(matches!(err, SigV4Error::SignatureNotYetCurrent { .. }), "{err}");
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20231114T221320Z is still later than 20231114T221220Z \
         (20231114T215720Z + 15 min.)"
    );
}

#[test]
fn rejects_scope_date_not_matching_x_amz_date() {
    // Credential scope of the day before.
    let mut parts = signed_request(&KMS, BODY);
    let authorization = parts.headers["authorization"].to_str().unwrap();
    let altered = authorization.replace("/20231114/", "/20231113/");
    assert_ne!(altered, authorization);
    parts.headers.insert("authorization", HeaderValue::from_str(&altered).unwrap());
    let err = parse(&parts).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::ScopeDateMismatch {
            scope_date: "20231113".into(),
            request_date: "20231114".into(),
            request_time: "20231114T221320Z".into(),
        }
    );
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");

    // X-Amz-Date moved to the next day.
    let mut parts = signed_request(&KMS, BODY);
    parts.headers.insert("x-amz-date", HeaderValue::from_static("20231115T001320Z"));
    assert!(matches!(parse(&parts), Err(SigV4Error::ScopeDateMismatch { .. })));
}

#[test]
fn rejects_moved_x_amz_date_within_the_day() {
    let mut parts = signed_request(&KMS, BODY);
    parts.headers.insert("x-amz-date", HeaderValue::from_static("20231114T221321Z"));
    assert_eq!(verify(&parts, BODY, SECRET, SIGNED_AT), Err(SigV4Error::SignatureMismatch));
}
