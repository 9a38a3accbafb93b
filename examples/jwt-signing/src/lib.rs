//! JWTs signed by KMS keys: the private key stays in ferrokms, the signer sends the JWS signing
//! input (`base64url(header).base64url(claims)`) to KMS Sign, and any verifier checks the token
//! offline with the key's public half (GetPublicKey, fetched once).
//!
//! Two JOSE algorithms (RFC 7518 §3):
//! - `ES256`: an `ECC_NIST_P256` key, `ECDSA_SHA_256` over the RAW message. KMS returns the
//!   signature in DER (`SEQUENCE { r INTEGER, s INTEGER }`); JOSE wants the fixed-width `r ‖ s`
//!   (32 bytes each), so [`ecdsa_der_to_jose`] converts it.
//! - `RS256`: an `RSA_*` key, `RSASSA_PKCS1_V1_5_SHA_256`; the signature is used as it is.
//!
//! What this does not do: verify tokens (that is the verifier's side, with any JWT library), or
//! cache public keys.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

/// What can go wrong.
#[derive(Debug)]
pub enum Error {
    /// A KMS call failed (the SDK's error, rendered).
    Kms(String),
    /// KMS answered without a field the example needs.
    MissingField(&'static str),
    /// The ECDSA signature is not the DER form KMS documents.
    MalformedSignature,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Kms(e) => write!(f, "KMS: {e}"),
            Error::MissingField(name) => write!(f, "KMS answered without {name}"),
            Error::MalformedSignature => f.write_str("the ECDSA signature is not DER SEQUENCE { r, s }"),
        }
    }
}

impl std::error::Error for Error {}

fn kms_error(e: impl std::fmt::Debug) -> Error {
    Error::Kms(format!("{e:?}"))
}

/// A JOSE signing algorithm this example supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// The KMS key spec a new key for this algorithm gets.
    pub fn key_spec(self) -> KeySpec {
        match self {
            Algorithm::Es256 => KeySpec::EccNistP256,
            Algorithm::Rs256 => KeySpec::Rsa2048,
        }
    }

    /// The KMS signing algorithm.
    pub fn signing_algorithm(self) -> SigningAlgorithmSpec {
        match self {
            Algorithm::Es256 => SigningAlgorithmSpec::EcdsaSha256,
            Algorithm::Rs256 => SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
        }
    }
}

/// Creates a `SIGN_VERIFY` key for `algorithm` and returns its id.
///
/// # Errors
/// [`Error::Kms`] when CreateKey fails.
pub async fn create_signing_key(kms: &Client, algorithm: Algorithm) -> Result<String, Error> {
    let created = kms
        .create_key()
        .key_spec(algorithm.key_spec())
        .key_usage(KeyUsageType::SignVerify)
        .description(format!("JWT {} signing key", algorithm.name()))
        .send()
        .await
        .map_err(kms_error)?;
    Ok(created.key_metadata.ok_or(Error::MissingField("KeyMetadata"))?.key_id)
}

/// The token `base64url(header).base64url(claims).base64url(signature)`, signed by `key_id`
/// through KMS Sign. The header is `{"alg", "typ": "JWT", "kid": key_id}`, so a verifier knows
/// which public key to use.
///
/// # Errors
/// [`Error::Kms`] when Sign fails (wrong key spec or usage, no permission);
/// [`Error::MalformedSignature`] if an ECDSA signature is not DER.
pub async fn sign_jwt(kms: &Client, key_id: &str, algorithm: Algorithm, claims: &Value) -> Result<String, Error> {
    let header = serde_json::json!({ "alg": algorithm.name(), "typ": "JWT", "kid": key_id });
    let signing_input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    // The message is the signing input itself (RAW): KMS hashes it with SHA-256. KMS takes at
    // most 4096 bytes of RAW message; a larger token would be hashed here and sent as DIGEST.
    let signed = kms
        .sign()
        .key_id(key_id)
        .message(Blob::new(signing_input.as_bytes()))
        .message_type(MessageType::Raw)
        .signing_algorithm(algorithm.signing_algorithm())
        .send()
        .await
        .map_err(kms_error)?;
    let signature = signed.signature.ok_or(Error::MissingField("Signature"))?.into_inner();
    let signature = match algorithm {
        Algorithm::Es256 => ecdsa_der_to_jose(&signature, 32)?,
        Algorithm::Rs256 => signature,
    };
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The key's public half as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo), what
/// JWT libraries and openssl load.
///
/// # Errors
/// [`Error::Kms`] when GetPublicKey fails.
pub async fn public_key_pem(kms: &Client, key_id: &str) -> Result<String, Error> {
    let public = kms.get_public_key().key_id(key_id).send().await.map_err(kms_error)?;
    let der = public.public_key.ok_or(Error::MissingField("PublicKey"))?.into_inner();
    Ok(pem("PUBLIC KEY", &der))
}

/// Registered claims (RFC 7519 §4.1) for a token issued at `issued_at` (seconds since the Unix
/// epoch) and valid for `lifetime_seconds`.
pub fn claims(issuer: &str, subject: &str, issued_at: u64, lifetime_seconds: u64) -> Value {
    serde_json::json!({
        "iss": issuer,
        "sub": subject,
        "iat": issued_at,
        "exp": issued_at.saturating_add(lifetime_seconds),
    })
}

/// `der` in PEM armour with `label`, 64 base64 characters a line (RFC 7468).
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A DER ECDSA signature (`SEQUENCE { r INTEGER, s INTEGER }`) as JOSE's `r ‖ s`, each
/// left-padded to `width` bytes (32 for P-256).
///
/// # Errors
/// [`Error::MalformedSignature`] when `der` is not that structure or an integer is wider than
/// `width`.
pub fn ecdsa_der_to_jose(der: &[u8], width: usize) -> Result<Vec<u8>, Error> {
    let (body, rest) = der_element(der, 0x30)?;
    if !rest.is_empty() {
        return Err(Error::MalformedSignature);
    }
    let (r, rest) = der_element(body, 0x02)?;
    let (s, rest) = der_element(rest, 0x02)?;
    if !rest.is_empty() {
        return Err(Error::MalformedSignature);
    }
    let mut out = Vec::with_capacity(2 * width);
    for integer in [r, s] {
        // A DER INTEGER is minimal and signed: a leading zero only keeps a high bit positive.
        let magnitude = match integer {
            [0, tail @ ..] if !tail.is_empty() => tail,
            other => other,
        };
        if magnitude.len() > width || magnitude.is_empty() {
            return Err(Error::MalformedSignature);
        }
        out.resize(out.len() + width - magnitude.len(), 0);
        out.extend_from_slice(magnitude);
    }
    Ok(out)
}

/// The contents of the DER element with `tag` at the start of `input`, and what follows it.
/// Lengths in short form and in the long forms an ECDSA signature can need (1 or 2 bytes).
fn der_element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), Error> {
    let (&found, rest) = input.split_first().ok_or(Error::MalformedSignature)?;
    if found != tag {
        return Err(Error::MalformedSignature);
    }
    let (&first, rest) = rest.split_first().ok_or(Error::MalformedSignature)?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => {
            let (&n, rest) = rest.split_first().ok_or(Error::MalformedSignature)?;
            (usize::from(n), rest)
        }
        0x82 => match rest {
            [hi, lo, rest @ ..] => (usize::from(*hi) << 8 | usize::from(*lo), rest),
            _ => return Err(Error::MalformedSignature),
        },
        _ => return Err(Error::MalformedSignature),
    };
    if rest.len() < length {
        return Err(Error::MalformedSignature);
    }
    Ok(rest.split_at(length))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_fixed_width() {
        // r with a high bit (so DER prepends 0x00) and a short s (leading zero bytes dropped).
        let mut r = vec![0x00, 0x80];
        r.extend([0x11; 31]);
        let s = [0x01, 0x02];
        let mut der = vec![0x30, u8::try_from(2 + r.len() + 2 + s.len()).unwrap(), 0x02, 33];
        der.extend(&r);
        der.extend([0x02, 2]);
        der.extend(s);
        let jose = ecdsa_der_to_jose(&der, 32).unwrap();
        assert_eq!(jose.len(), 64);
        assert_eq!(&jose[..32], &r[1..]);
        assert_eq!(&jose[32..62], &[0; 30]);
        assert_eq!(&jose[62..], &s);
    }

    #[test]
    fn malformed_signatures_are_refused() {
        for bad in [&[][..], &[0x30], &[0x30, 0x03, 0x02, 0x01], &[0x31, 0x00], &[0x30, 0x00, 0x00]] {
            assert!(ecdsa_der_to_jose(bad, 32).is_err(), "{bad:?}");
        }
        // An integer wider than the curve.
        let mut der = vec![0x30, 37, 0x02, 33];
        der.extend([0x7f; 33]);
        der.extend([0x02, 0x00]);
        assert!(ecdsa_der_to_jose(&der, 32).is_err());
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let text = pem("PUBLIC KEY", &[7; 91]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), 124 - 64);
        assert_eq!(lines[3], "-----END PUBLIC KEY-----");
    }
}
