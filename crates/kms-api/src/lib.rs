//! ferrokms wire layer: the AWS KMS JSON 1.1 protocol.
//!
//! Operation names (`X-Amz-Target: TrentService.<Operation>`), request and response DTOs with
//! AWS's member names, base64 blob members, and the one mapping from domain errors to AWS
//! exceptions (`__type`, message, HTTP status). It touches no storage and holds no keys; SigV4
//! verification lives in `kms-sigv4` and its errors are mapped here too.

pub mod blob;
pub mod dto;
pub mod exception;
pub mod operation;

pub use exception::{ApiError, Exception};
pub use operation::Operation;

/// The content type of AWS JSON 1.1 requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The `X-Amz-Target` prefix of KMS operations.
pub const TARGET_PREFIX: &str = "TrentService.";

/// Decodes a request body into its DTO.
///
/// # Errors
/// `SerializationException` for a body that is not UTF-8 or not a JSON object of the right
/// member types (including blob members that are not base64).
pub fn decode_request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
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

/// Encodes a response DTO.
pub fn encode_response<T: serde::Serialize>(response: &T) -> Vec<u8> {
    serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec())
}
