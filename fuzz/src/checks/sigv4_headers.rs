//! SigV4 header parsing (`kms_sigv4::parse`) and the checks of `verify` that come before the
//! signature: never panics, every refusal names an AWS exception, and the 15-minute window holds
//! for every request that parses.

use http::header::{HeaderName, HeaderValue};
use kms_sigv4::{MAX_CLOCK_SKEW_SECS, SigV4Error, SigningKey};

/// The AWS exceptions a SigV4 failure may map to.
const CODES: [&str; 4] = [
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];

/// Splits fuzz input into fields on NUL bytes.
fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0).collect()
}

fn field<'a>(fields: &[&'a [u8]], at: usize) -> &'a [u8] {
    fields.get(at).copied().unwrap_or_default()
}

/// Builds a request from fuzz input. With an odd first byte the input fills a well-formed
/// template (credential pieces, signed headers, signature, date) so that the fuzzer reaches the
/// later checks; otherwise the fields are raw header values.
fn request(data: &[u8]) -> Option<http::request::Parts> {
    let (mode, rest) = data.split_first()?;
    let f = fields(rest);
    let mut builder = http::Request::post("/").header("host", "kms.us-east-1.amazonaws.com");
    let value = |bytes: &[u8]| HeaderValue::from_bytes(bytes).ok();
    if mode % 2 == 1 {
        let text = |at: usize| String::from_utf8_lossy(field(&f, at)).into_owned();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/{}, SignedHeaders={}, Signature={}",
            text(0),
            text(1),
            text(2),
            text(3),
            text(4),
            text(5),
            text(6)
        );
        builder = builder.header("authorization", value(authorization.as_bytes())?);
        builder = builder.header("x-amz-date", value(field(&f, 7))?);
        for pair in f.iter().skip(8) {
            let text = String::from_utf8_lossy(pair);
            if let Some((name, v)) = text.split_once(':')
                && let (Ok(name), Some(v)) = (HeaderName::from_bytes(name.as_bytes()), value(v.as_bytes()))
            {
                builder = builder.header(name, v);
            }
        }
    } else {
        let names = ["authorization", "x-amz-date", "date", "x-amz-security-token", "x-amz-content-sha256"];
        for (at, name) in names.iter().enumerate() {
            let raw = field(&f, at);
            if !raw.is_empty()
                && let Some(v) = value(raw)
            {
                builder = builder.header(*name, v);
            }
        }
        // Repeated headers are a case of their own (DuplicateHeader).
        if field(&f, 5) == b"dup"
            && let Some(v) = value(field(&f, 0))
        {
            builder = builder.header("authorization", v);
        }
    }
    builder.body(()).ok().map(|r| r.into_parts().0)
}

fn assert_named(e: &SigV4Error) {
    assert!(CODES.contains(&e.aws_error_code()), "unknown AWS error code {}", e.aws_error_code());
    let _ = e.to_string();
}

/// Checks parsing and the pre-signature checks of verification on arbitrary input.
pub fn check(data: &[u8]) {
    let Some(parts) = request(data) else {
        return;
    };
    let pending = match kms_sigv4::parse(&parts) {
        Ok(p) => p,
        Err(e) => return assert_named(&e),
    };
    assert!(!pending.access_key_id().is_empty());
    assert!(pending.is_signed("host"), "a request that does not sign host parsed");
    let t = pending.request_time_unix();
    let key = SigningKey::derive(b"fuzz-secret", pending.scope_date(), pending.region(), pending.service());
    // The replay window: refused just outside 15 minutes on either side, whatever else is wrong.
    let late = pending.verify(&parts, b"", &key, t.saturating_add(MAX_CLOCK_SKEW_SECS + 1), "kms");
    assert!(matches!(late, Err(SigV4Error::SignatureExpired { .. })), "{late:?}");
    let early = pending.verify(&parts, b"", &key, t.saturating_sub(MAX_CLOCK_SKEW_SECS + 1), "kms");
    assert!(matches!(early, Err(SigV4Error::SignatureNotYetCurrent { .. })), "{early:?}");
    // Inside the window the verdict is an AWS exception (a fuzzer cannot forge the HMAC, so it is
    // never a success unless the input carries a real signature for this secret).
    for now in [t, t.saturating_add(MAX_CLOCK_SKEW_SECS), t.saturating_sub(MAX_CLOCK_SKEW_SECS)] {
        if let Err(e) = pending.verify(&parts, b"", &key, now, "kms") {
            assert_named(&e);
            assert!(!matches!(e, SigV4Error::SignatureExpired { .. } | SigV4Error::SignatureNotYetCurrent { .. }));
        }
    }
}
