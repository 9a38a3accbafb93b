//! ferrokms wire layer: the AWS KMS JSON 1.1 protocol.
//!
//! Operation names (`X-Amz-Target: TrentService.<Operation>`), request and response DTOs with
//! AWS's member names, base64 blob members, and the one mapping from domain errors to AWS
//! exceptions (`__type`, message, HTTP status). It touches no storage and holds no keys; SigV4
//! verification lives in `kms-sigv4` and its errors are mapped here too.

pub mod base64_members;
pub mod constraints;
pub mod exception;
mod hot_response_bodies;
mod key_metadata;
#[rustfmt::skip]
pub mod model;
pub mod operation;

pub use key_metadata::key_metadata;

/// An `EncryptionContext` (or grant constraint) map.
pub type ContextMap = std::collections::BTreeMap<String, String>;

/// The empty response (`{}`) of the operations AWS's model gives no output.
#[derive(Debug, serde::Serialize)]
pub struct Empty {}

pub use exception::{ApiError, Exception};
pub use operation::{Kind, Operation, QuotaClass, Request};

/// The content type of AWS JSON 1.1 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The `X-Amz-Target` prefix of KMS operations.
pub const TARGET_PREFIX: &str = "TrentService.";

/// Decodes a request body into its structure and checks it against AWS's constraints.
///
/// # Errors
/// `SerializationException` for a body that is not UTF-8 or not a JSON object of the right
/// member types (including blob members that are not base64); `ValidationException` listing
/// every violated constraint (a missing required member, a length, range, pattern or value
/// set) in AWS's words.
pub fn decode_request<T: serde::de::DeserializeOwned + constraints::Validate>(body: &[u8]) -> Result<T, ApiError> {
    let request: T = decode_json(body)?;
    let violations = constraints::violations(&request);
    if violations.is_empty() {
        Ok(request)
    } else {
        Err(ApiError::with_message(Exception::Validation, violations.to_string()))
    }
}

/// Decodes a JSON object body into `T` without checking constraints (for requests outside
/// AWS's model, which check their own).
///
/// # Errors
/// `SerializationException`, as [`decode_request`].
pub fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // An empty body is an empty request, as the AWS SDKs send `{}` but some clients send nothing.
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    // JSON text is UTF-8. serde skips unknown members without looking inside their strings, so
    // without this check a body with invalid bytes there would be accepted (found by fuzzing).
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::with_message(Exception::Serialization, "Request body is not valid UTF-8"))?;
    // serde's derived structs also accept an array of all their members in order, which AWS does
    // not: a request is an object (found by fuzzing).
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(ApiError::with_message(Exception::Serialization, "Request body must be a JSON object"));
    }
    serde_json::from_str(text).map_err(|e| ApiError::new(Exception::Serialization, Some(serialization_message(&e))))
}

fn serialization_message(e: &serde_json::Error) -> String {
    // serde's messages name the member and the expected type, never the value itself, so they
    // are safe to return even when the offending member is a plaintext.
    let text = e.to_string();
    match text.split_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}

/// Encodes a response DTO. The text may hold a secret (a data key or a decrypted plaintext, in
/// base64), so the buffer leaves no copy behind as it grows: each outgrown buffer is wiped
/// before it is freed, where `serde_json::to_vec` would let the `Vec` reallocate and free the
/// old copy as it was. (The caller wipes the final buffer once it is sent: [`WipeOnDrop`].)
pub fn encode_response<T: serde::Serialize>(response: &T) -> Vec<u8> {
    let mut out = WipingWriter(Vec::with_capacity(512));
    match serde_json::to_writer(&mut out, response) {
        Ok(()) => out.0,
        Err(_) => {
            zeroize::Zeroize::zeroize(out.0.as_mut_slice());
            b"{}".to_vec()
        }
    }
}

/// A growing output buffer that wipes each buffer it outgrows.
struct WipingWriter(Vec<u8>);

impl WipingWriter {
    /// Makes room for `more` bytes; returns the outgrown buffer, wiped (its length kept, so that
    /// a test can look), when it had to move.
    fn reserve(&mut self, more: usize) -> Option<Vec<u8>> {
        if self.0.capacity() - self.0.len() >= more {
            return None;
        }
        let mut bigger = Vec::with_capacity((self.0.len() + more).max(self.0.capacity() * 2));
        bigger.extend_from_slice(&self.0);
        let mut old = std::mem::replace(&mut self.0, bigger);
        // Only `..len` was ever written.
        zeroize::Zeroize::zeroize(old.as_mut_slice());
        Some(old)
    }
}

impl std::io::Write for WipingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        drop(self.reserve(buf.len()));
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body that is wiped when the last reference to it is dropped (after it was
/// written to the socket): hand it to `bytes::Bytes::from_owner`.
pub struct WipeOnDrop(pub Vec<u8>);

impl WipeOnDrop {
    fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(self.0.as_mut_slice());
    }
}

impl AsRef<[u8]> for WipeOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod wipe_tests {
    use super::*;

    /// A response with a 4 KB secret grows the buffer several times: the text is exactly
    /// serde_json's, and every outgrown buffer was wiped.
    #[test]
    fn encoding_leaves_no_copy_of_a_secret_behind() {
        let secret = base64_members::SecretBlob(zeroize::Zeroizing::new(vec![0xA5; 4096]));
        let response = model::DecryptResponse {
            key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            plaintext: Some(secret),
            encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
            key_material_id: Some("m".into()),
            ciphertext_for_recipient: None,
        };
        assert_eq!(encode_response(&response), serde_json::to_vec(&response).unwrap());

        let mut out = WipingWriter(Vec::with_capacity(4));
        std::io::Write::write_all(&mut out, b"secret").unwrap();
        let old = out.reserve(100).unwrap();
        assert_eq!(old.len(), 6);
        assert!(old.iter().all(|&b| b == 0), "the outgrown buffer still holds {old:?}");
        assert_eq!(out.0, b"secret");
        assert!(out.reserve(10).is_none(), "room enough: no move");
    }

    #[test]
    fn a_sent_body_is_wiped() {
        let mut body = WipeOnDrop(b"{\"Plaintext\":\"c2VjcmV0\"}".to_vec());
        assert_eq!(body.as_ref(), b"{\"Plaintext\":\"c2VjcmV0\"}");
        body.wipe();
        assert!(body.0.iter().all(|&b| b == 0));
    }
}
