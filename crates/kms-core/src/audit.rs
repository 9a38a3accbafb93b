//! Audit events: one CloudTrail-shaped record per request (and per background action).
//!
//! The event is a JSON document in CloudTrail's `AwsApiCall` shape; a few of its fields are also
//! kept as typed columns so that stores can index them. Secrets never enter an event: the
//! builder strips plaintext, ciphertext, data keys, secret access keys and session tokens from
//! request parameters and response elements before they get here.

use serde_json::{Map, Value};

use crate::time::Timestamp;

/// Request and response members that never enter the audit trail.
pub const SENSITIVE_MEMBERS: &[&str] =
    &["plaintext", "ciphertextBlob", "secretAccessKey", "sessionToken", "recipient", "ciphertextForRecipient"];

/// One audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// CloudTrail `eventID` (a UUID).
    pub event_id: String,
    /// When it happened.
    pub time: Timestamp,
    /// `eventName` (the operation, or a background action such as `RotateKey`).
    pub event_name: String,
    /// The key ARN the event concerns, if any.
    pub key_arn: Option<String>,
    /// The acting principal's ARN (or `-` when unauthenticated).
    pub principal: String,
    /// `errorCode`, for failed requests.
    pub error_code: Option<String>,
    /// The full CloudTrail-shaped record.
    pub record: Value,
}

impl AuditEvent {
    /// The exact text stored and hashed: the record as compact JSON with sorted members.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&self.record).unwrap_or_default()
    }

    /// Whether this is a successful cryptographic operation (what GetKeyLastUsage reports).
    pub fn is_cryptographic_success(&self) -> bool {
        self.error_code.is_none() && CRYPTOGRAPHIC_OPERATIONS.contains(&self.event_name.as_str())
    }
}

/// The operations that count as use of a key.
pub const CRYPTOGRAPHIC_OPERATIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

/// `KeyId` → `keyId`: CloudTrail's member names are the wire names with a lowercase first
/// letter.
pub fn camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Request parameters or response elements as CloudTrail records them: members renamed to
/// camelCase at every level, sensitive members removed.
pub fn scrub(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let name = camel(k);
                if SENSITIVE_MEMBERS.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                    continue;
                }
                // Encryption-context keys are data, not member names: keep them as given.
                let inner = if name == "encryptionContext"
                    || name.ends_with("EncryptionContext")
                    || name.starts_with("encryptionContext")
                {
                    v.clone()
                } else {
                    scrub(v)
                };
                out.insert(name, inner);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(scrub).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scrub_renames_and_removes_secrets() {
        let request = json!({
            "KeyId": "alias/a",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"Tenant": "a"},
            "Nested": {"SecretAccessKey": "x", "AccessKeyId": "AKIA"}
        });
        let scrubbed = scrub(&request);
        assert_eq!(
            scrubbed,
            json!({"keyId": "alias/a", "encryptionContext": {"Tenant": "a"}, "nested": {"accessKeyId": "AKIA"}})
        );
        assert!(!scrubbed.to_string().contains("c2VjcmV0"));
    }
}
