//! Server-side verification of AWS Signature Version 4 (`AWS4-HMAC-SHA256`,
//! header form), as used by AWS JSON-protocol clients talking to KMS.
//!
//! Verification is split in two so that the caller can look up the secret
//! asynchronously and cache derived keys:
//!
//! 1. [`parse`] reads the `Authorization`, `X-Amz-Date` (or `Date`) and
//!    `X-Amz-Security-Token` headers into a [`PendingRequest`], which exposes
//!    the access key id, credential scope and request time.
//! 2. The caller finds the secret for [`PendingRequest::access_key_id`],
//!    derives (or fetches from its cache) a [`SigningKey`] for the scope, and
//!    calls [`PendingRequest::verify`] with the request, body and current time.
//!
//! Failures are [`SigV4Error`]s carrying the AWS error code and message.
//!
//! What this crate does not do: it performs no I/O, never reads the clock
//! (the caller passes the current time as unix seconds), does not look up
//! secrets or validate security tokens (it only exposes them), and does not
//! support presigned (query-string) authentication, SigV4a, S3's single
//! URI encoding or `UNSIGNED-PAYLOAD`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let now_unix = 1_440_938_160;
//! # let authorization = "AWS4-HMAC-SHA256 \
//! #     Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
//! #     SignedHeaders=host;x-amz-date, \
//! #     Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
//! # let (parts, body) = http::Request::post("/")
//! #     .header("host", "example.amazonaws.com")
//! #     .header("x-amz-date", "20150830T123600Z")
//! #     .header("authorization", authorization)
//! #     .body(Vec::new())?
//! #     .into_parts();
//! # let lookup_secret = |_: &str| Some(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec());
//! use kms_sigv4::{SigV4Error, SigningKey};
//!
//! let pending = kms_sigv4::parse(&parts)?;
//! let secret = lookup_secret(pending.access_key_id()).ok_or(SigV4Error::UnrecognizedClient)?;
//! let key = SigningKey::derive(&secret, pending.scope_date(), pending.region(), pending.service());
//! pending.verify(&parts, &body, &key, now_unix, "service")?;
//! # Ok(())
//! # }
//! ```

mod canonical;
mod error;
mod time;

pub use error::{ErrorClass, SigV4Error};

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use kms_crypto::MacKey;
use kms_crypto::digest::{Sha256, sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use canonical::RequestParts;

/// The only supported signing algorithm.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of a SigV4 credential scope.
const TERMINATOR: &str = "aws4_request";

/// How far the request time may be from the server's time, in seconds: AWS
/// accepts requests up to 15 minutes early or late.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// AWS's message for a signature that does not match.
const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// A SigV4 signing key (`kSigning`): the secret access key folded with the
/// credential scope's date, region and service.
///
/// A key is valid for one access key, day, region and service, so callers may
/// cache it under that tuple instead of keeping the secret around. It is held
/// as keyed HMAC state (a [`MacKey`]: the key's inner and outer pads already
/// hashed), so a signature costs only the string to sign's own hashing; that
/// state is cleansed on drop, and it is never printed.
#[derive(Clone)]
pub struct SigningKey(MacKey);

impl SigningKey {
    /// Derives the signing key: `kDate = HMAC("AWS4" + secret, date)`,
    /// `kRegion = HMAC(kDate, region)`, `kService = HMAC(kRegion, service)`,
    /// `kSigning = HMAC(kService, "aws4_request")`, all HMAC-SHA256.
    ///
    /// `date` is the credential scope date, `YYYYMMDD`.
    #[must_use]
    pub fn derive(secret_access_key: &[u8], date: &str, region: &str, service: &str) -> Self {
        let k_signing = derive_bytes(secret_access_key, date, region, service);
        Self(MacKey::from_bytes(&*k_signing))
    }

    /// `HMAC-SHA256(kSigning, data)`.
    fn sign(&self, data: &[u8]) -> [u8; 32] {
        self.0.sign(data)
    }
}

/// The bytes of `kSigning` (see [`SigningKey::derive`]).
fn derive_bytes(secret_access_key: &[u8], date: &str, region: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(secret_access_key.len() + 4));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key);
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&*k_date, region.as_bytes());
    let k_service = hmac_sha256(&*k_region, service.as_bytes());
    hmac_sha256(&*k_service, TERMINATOR.as_bytes())
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // Written in place, so a zeroizing buffer holds the only copy outside the HMAC.
    let mut out = Zeroizing::new([0u8; 32]);
    MacKey::from_bytes(key).sign_into(data, &mut out);
    out
}

/// Lowercase hex of the SHA-256 of `data`, without allocating.
fn sha256_hex(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(sha256(data), &mut out);
    out
}

/// A request whose SigV4 headers have been parsed but whose signature has not
/// been checked yet. Obtained from [`parse`]; finish with
/// [`verify`](Self::verify).
#[derive(Clone)]
pub struct PendingRequest {
    /// The `Credential` value: `access-key-id/date/region/service/aws4_request`.
    credential: String,
    /// Where the access key id, date, region and service are in `credential`.
    scope: [std::ops::Range<usize>; 4],
    signed_headers: String,
    /// The canonical request up to the payload hash, built once the headers were parsed.
    canonical_head: Vec<u8>,
    signature: [u8; 32],
    request_time: String,
    request_time_unix: i64,
    security_token: Option<String>,
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("access_key_id", &self.access_key_id())
            .field("scope_date", &self.scope_date())
            .field("region", &self.region())
            .field("service", &self.service())
            .field("signed_headers", &self.signed_headers)
            .field("request_time", &self.request_time)
            .field("security_token", &self.security_token.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

impl PendingRequest {
    /// The access key id from the credential.
    #[must_use]
    pub fn access_key_id(&self) -> &str {
        self.scope_part(0)
    }

    /// The region of the credential scope.
    #[must_use]
    pub fn region(&self) -> &str {
        self.scope_part(2)
    }

    /// The service of the credential scope (`kms` for KMS clients).
    #[must_use]
    pub fn service(&self) -> &str {
        self.scope_part(3)
    }

    /// The date of the credential scope, `YYYYMMDD` (equal to the date of the
    /// request time).
    #[must_use]
    pub fn scope_date(&self) -> &str {
        self.scope_part(1)
    }

    fn scope_part(&self, index: usize) -> &str {
        self.scope.get(index).and_then(|range| self.credential.get(range.clone())).unwrap_or_default()
    }

    /// The request time (`X-Amz-Date`, or `Date` without it) in unix seconds.
    #[must_use]
    pub fn request_time_unix(&self) -> i64 {
        self.request_time_unix
    }

    /// Whether `name` (lowercase) is among the signed headers.
    #[must_use]
    pub fn is_signed(&self, name: &str) -> bool {
        self.signed_headers.split(';').any(|h| h == name)
    }

    /// The `X-Amz-Security-Token` header, if any, for the caller to validate
    /// (this crate does not check it, nor whether it was signed).
    #[must_use]
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Checks that the credential scope names `expected_region`.
    ///
    /// # Errors
    ///
    /// [`SigV4Error::WrongRegion`] if it names another region.
    pub fn check_region(&self, expected_region: &str) -> Result<(), SigV4Error> {
        if self.region() == expected_region {
            Ok(())
        } else {
            Err(SigV4Error::WrongRegion { region: self.region().to_owned() })
        }
    }

    /// Verifies the signature of the request `parts` + `body` with `key`
    /// (derived for this request's access key and scope), at server time
    /// `now_unix`, for service `expected_service`.
    ///
    /// `parts` must be the same request that was given to [`parse`]: the
    /// canonical request's method, path (as received on the wire), query and
    /// signed headers were taken from it there; here only its
    /// `X-Amz-Content-Sha256` is read.
    ///
    /// # Errors
    ///
    /// - [`SigV4Error::SignatureExpired`] / [`SigV4Error::SignatureNotYetCurrent`]
    ///   if the request time is more than [`MAX_CLOCK_SKEW_SECS`] from
    ///   `now_unix`;
    /// - [`SigV4Error::WrongService`] if the scope's service differs;
    /// - [`SigV4Error::DuplicateHeader`] / [`SigV4Error::ContentSha256Mismatch`]
    ///   if `X-Amz-Content-Sha256` is repeated or is not the body's SHA-256;
    /// - [`SigV4Error::SignatureMismatch`] if the signature does not match.
    pub fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &SigningKey,
        now_unix: i64,
        expected_service: &str,
    ) -> Result<(), SigV4Error> {
        let skew = now_unix.saturating_sub(self.request_time_unix);
        if skew > MAX_CLOCK_SKEW_SECS {
            return Err(SigV4Error::SignatureExpired { request_time: self.request_time_unix, now: now_unix });
        }
        if skew < -MAX_CLOCK_SKEW_SECS {
            return Err(SigV4Error::SignatureNotYetCurrent { request_time: self.request_time_unix, now: now_unix });
        }
        if self.service() != expected_service {
            return Err(SigV4Error::WrongService { expected: expected_service.to_owned() });
        }
        let payload_hash = sha256_hex(body);
        if let Some(claimed) = single_header(&parts.headers, &X_AMZ_CONTENT_SHA256)?
            && claimed.as_bytes() != payload_hash
        {
            return Err(SigV4Error::ContentSha256Mismatch);
        }
        let expected = self.signature_of(&self.canonical_head, &payload_hash, key);
        if bool::from(expected.ct_eq(&self.signature)) { Ok(()) } else { Err(SigV4Error::SignatureMismatch) }
    }

    /// The signature of `req` with payload hash `payload_hash` under `key`,
    /// for this request's time and credential scope.
    #[cfg(test)]
    fn signature_for(
        &self,
        req: &RequestParts<'_>,
        payload_hash: &[u8],
        key: &SigningKey,
    ) -> Result<[u8; 32], SigV4Error> {
        Ok(self.signature_of(&canonical::canonical_head(req, &self.signed_headers)?, payload_hash, key))
    }

    /// The signature of the canonical request `head` + `payload_hash` under `key`.
    fn signature_of(&self, head: &[u8], payload_hash: &[u8], key: &SigningKey) -> [u8; 32] {
        let mut canonical_request = Sha256::new();
        canonical_request.update(head);
        canonical_request.update(payload_hash);
        let mut canonical_hash = [0u8; 64];
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(canonical_request.finish(), &mut canonical_hash);
        // ALGORITHM \n request time \n date/region/service/aws4_request \n hex(SHA-256(canonical request))
        let mut string_to_sign = Vec::with_capacity(160);
        for (piece, separator) in [
            (ALGORITHM, b'\n'),
            (self.request_time.as_str(), b'\n'),
            (self.scope_date(), b'/'),
            (self.region(), b'/'),
            (self.service(), b'/'),
            (TERMINATOR, b'\n'),
        ] {
            string_to_sign.extend_from_slice(piece.as_bytes());
            string_to_sign.push(separator);
        }
        string_to_sign.extend_from_slice(&canonical_hash);
        key.sign(&string_to_sign)
    }
}

fn request_parts(parts: &Parts) -> RequestParts<'_> {
    RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        authority: parts.uri.authority().map(http::uri::Authority::as_str),
    }
}

// Header names parsed once (a lookup by `&str` parses the name every time).
static X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
static X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
static X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");

/// The value of a header that may appear at most once.
fn single_header<'a>(headers: &'a HeaderMap, name: &'static HeaderName) -> Result<Option<&'a HeaderValue>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) | (None, Some(_)) => Err(SigV4Error::DuplicateHeader { name: name.as_str() }),
    }
}

/// An `Authorization` parameter counts as missing when empty, as in AWS.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses the SigV4 `Authorization` header and date of a request.
///
/// The checks follow the order of AWS's JSON-protocol services: presence of
/// the header, its `key=value` syntax, presence of `Credential`, `Signature`,
/// `SignedHeaders` and a date header, date format, `SignedHeaders` syntax and
/// `host` being signed,
/// algorithm, credential shape, credential scope (terminator, and date equal
/// to the request date), then the signed headers' presence and the
/// signature's shape. The date is `X-Amz-Date` in ISO 8601 basic format
/// (`20150830T123600Z`); without `X-Amz-Date`, AWS accepts a `Date` header,
/// here in ISO 8601 basic format or as an HTTP date
/// (`Sun, 30 Aug 2015 12:36:00 GMT`).
///
/// # Errors
///
/// - [`SigV4Error::MissingAuthenticationToken`] if there is no
///   `Authorization` header or it does not start with `AWS4-`;
/// - `IncompleteSignatureException` errors ([`SigV4Error::MissingParameters`],
///   [`SigV4Error::InvalidKeyValuePair`], [`SigV4Error::DuplicateParameter`],
///   [`SigV4Error::DuplicateHeader`], [`SigV4Error::MalformedAuthorization`],
///   [`SigV4Error::MalformedDate`], [`SigV4Error::UnsupportedAlgorithm`],
///   [`SigV4Error::MalformedCredential`], [`SigV4Error::MalformedSignedHeaders`])
///   for a header that is not well formed;
/// - `InvalidSignatureException` errors ([`SigV4Error::HostNotSigned`],
///   [`SigV4Error::InvalidTerminator`], [`SigV4Error::ScopeDateMismatch`],
///   [`SigV4Error::SignedHeaderMissing`], and
///   [`SigV4Error::SignatureMismatch`] for a signature that is not 64
///   lowercase hex digits);
/// - [`SigV4Error::UnrecognizedClient`] for a security token that is not
///   visible ASCII.
pub fn parse(parts: &Parts) -> Result<PendingRequest, SigV4Error> {
    let headers = &parts.headers;
    let authorization = single_header(headers, &http::header::AUTHORIZATION)?
        .filter(|value| value.as_bytes().trim_ascii_start().starts_with(b"AWS4-"))
        .ok_or(SigV4Error::MissingAuthenticationToken)?;
    let authorization = authorization
        .to_str()
        .map_err(|_| SigV4Error::MalformedAuthorization { authorization: lossy(authorization.as_bytes()) })?
        .trim();
    let (algorithm, params) = authorization.split_once([' ', '\t']).unwrap_or((authorization, ""));

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for item in params.split(',').map(|item| item.trim_matches([' ', '\t'])) {
        if item.is_empty() {
            continue;
        }
        let Some((name, value)) = item.split_once('=') else {
            return Err(SigV4Error::InvalidKeyValuePair {
                pair: item.to_owned(),
                authorization: authorization.to_owned(),
            });
        };
        let slot = match name.trim_end() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(value.trim_start()).is_some() {
            return Err(SigV4Error::DuplicateParameter {
                name: name.trim_end().to_owned(),
                authorization: authorization.to_owned(),
            });
        }
    }

    let x_amz_date = single_header(headers, &X_AMZ_DATE)?;
    let date_header = match x_amz_date {
        Some(_) => None,
        None => single_header(headers, &http::header::DATE)?,
    };
    let (Some(credential), Some(signature), Some(signed_headers), Some(date)) =
        (present(credential), present(signature), present(signed_headers), x_amz_date.or(date_header))
    else {
        return Err(SigV4Error::MissingParameters {
            credential: present(credential).is_none(),
            signature: present(signature).is_none(),
            signed_headers: present(signed_headers).is_none(),
            date: x_amz_date.is_none() && date_header.is_none(),
            authorization: authorization.to_owned(),
        });
    };

    let date = date.as_bytes();
    // An ISO 8601 basic time (what X-Amz-Date holds) is already the string to sign's form:
    // `parse_iso_basic` accepts exactly `YYYYMMDDTHHMMSSZ` in digits, which formatting the
    // parsed time gives back unchanged. Only a `Date` header's HTTP date is rewritten.
    let (request_time_unix, request_time) = match time::parse_iso_basic(date) {
        Some(unix) => (unix, String::from_utf8_lossy(date).into_owned()),
        None => {
            let unix = date_header
                .and_then(|_| time::parse_http_date(date))
                .ok_or_else(|| SigV4Error::MalformedDate { value: lossy(date) })?;
            (unix, time::format_iso_basic(unix))
        }
    };

    let valid_name = |name: &str| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !signed_headers.split(';').all(valid_name) {
        return Err(SigV4Error::MalformedSignedHeaders { signed_headers: signed_headers.to_owned() });
    }
    if !signed_headers.split(';').any(|name| name == "host") {
        return Err(SigV4Error::HostNotSigned);
    }
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm { algorithm: algorithm.to_owned() });
    }

    // Five non-empty parts: access key id, date, region, service, terminator.
    let mut scope: [std::ops::Range<usize>; 5] = Default::default();
    let mut pieces = credential.split('/');
    let mut start = 0;
    for range in &mut scope {
        let Some(piece) = pieces.next().filter(|p| !p.is_empty()) else {
            return Err(SigV4Error::MalformedCredential { credential: credential.to_owned() });
        };
        *range = start..start + piece.len();
        start = range.end + 1;
    }
    if pieces.next().is_some() {
        return Err(SigV4Error::MalformedCredential { credential: credential.to_owned() });
    }
    let [access_key_id, date, region, service, terminator] = scope;
    let scope_date = credential.get(date.clone()).unwrap_or_default();
    let terminator = credential.get(terminator).unwrap_or_default();
    if terminator != TERMINATOR {
        return Err(SigV4Error::InvalidTerminator { terminator: terminator.to_owned() });
    }
    let request_date = request_time.get(..8).unwrap_or_default();
    if scope_date != request_date {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: scope_date.to_owned(),
            request_date: request_date.to_owned(),
            request_time,
        });
    }

    let canonical_head = canonical::canonical_head(&request_parts(parts), signed_headers)?;

    let mut signature_bytes = [0u8; 32];
    let lowercase_hex = signature.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !lowercase_hex || hex::decode_to_slice(signature, &mut signature_bytes).is_err() {
        return Err(SigV4Error::SignatureMismatch);
    }

    let security_token = single_header(headers, &X_AMZ_SECURITY_TOKEN)?
        .map(|token| token.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| SigV4Error::UnrecognizedClient)?;

    Ok(PendingRequest {
        credential: credential.to_owned(),
        scope: [access_key_id, date, region, service],
        signed_headers: signed_headers.to_owned(),
        canonical_head,
        signature: signature_bytes,
        request_time,
        request_time_unix,
        security_token,
    })
}

#[cfg(test)]
mod tests;
