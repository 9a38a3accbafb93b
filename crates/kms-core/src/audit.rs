//! Audit events: one CloudTrail-shaped record per request (and per background action).
//!
//! The event is a JSON document in CloudTrail's `AwsApiCall` shape; a few of its fields are also
//! kept as typed columns so that stores can index them. Secrets never enter an event: the
//! builder strips plaintext, ciphertext, data keys, secret access keys and session tokens from
//! request parameters and response elements before they get here.

use serde_json::{Map, Value};

use crate::time::Timestamp;

/// Request and response members that never enter the audit trail.
pub const SENSITIVE_MEMBERS: &[&str] = &[
    "plaintext",
    "ciphertextBlob",
    // Sign, Verify, GenerateMac, VerifyMac: the message (or its digest), the signature, the MAC.
    "message",
    "signature",
    "mac",
    // GenerateDataKeyPair*, DeriveSharedSecret, GetPublicKey.
    "privateKeyPlaintext",
    "privateKeyCiphertextBlob",
    "publicKey",
    "sharedSecret",
    "secretAccessKey",
    "sessionToken",
    "recipient",
    "ciphertextForRecipient",
    "forwardAccessToken",
    // GetParametersForImport, ImportKeyMaterial: the token holds the wrapping private key (sealed
    // by the root key), and with it the wrapped material opens; neither belongs in the trail, or
    // deleted material could be recovered from it.
    "importToken",
    "encryptedKeyMaterial",
];

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
    /// A second key the event concerns: ReEncrypt's other key (both count as used).
    pub other_key_arn: Option<String>,
    /// The acting principal's ARN (or `-` when unauthenticated).
    pub principal: String,
    /// `errorCode`, for failed requests.
    pub error_code: Option<String>,
    /// The full CloudTrail-shaped record in its canonical text (compact JSON, members sorted
    /// by name at every level), exactly as stored and hashed. Built once, when the event is
    /// made ([`CanonicalObject`], or [`canonical_text`] of a JSON value).
    pub record: String,
}

impl AuditEvent {
    /// The exact text stored and hashed.
    pub fn canonical_json(&self) -> &str {
        &self.record
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

/// A JSON value's canonical text: compact, object members sorted by name (`serde_json`'s map
/// is ordered by key).
pub fn canonical_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Writes a JSON object's canonical text straight into a buffer, with no intermediate tree:
/// the audit record is built on every request, and a `serde_json::Value` of it (a map per
/// object, a `String` per member name) cost more than the cryptography it records.
///
/// Members must be written in ascending byte order of their names (the order a
/// `serde_json::Map` keeps), so the text is the same one [`canonical_text`] gives for the same
/// document; debug builds check the order.
pub struct CanonicalObject<'a> {
    out: &'a mut String,
    last: Option<&'static str>,
}

impl<'a> CanonicalObject<'a> {
    /// Opens an object at the end of `out`.
    pub fn open(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, last: None }
    }

    fn name(&mut self, name: &'static str) -> &mut String {
        debug_assert!(self.last.is_none_or(|last| last < name), "member {name:?} out of order after {:?}", self.last);
        if self.last.is_some() {
            self.out.push(',');
        }
        self.last = Some(name);
        // Member names are literals of this crate's callers, none of which needs escaping.
        debug_assert!(!crate::json_text::needs_escape(name.as_bytes()), "member name {name:?} needs escaping");
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    /// A string member.
    pub fn str(&mut self, name: &'static str, value: &str) -> &mut Self {
        let out = self.name(name);
        crate::json_text::push_string(out, value);
        self
    }

    /// A string member, or `null`.
    pub fn opt_str(&mut self, name: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(name, v),
            None => self.null(name),
        }
    }

    /// A `null` member.
    pub fn null(&mut self, name: &'static str) -> &mut Self {
        self.name(name).push_str("null");
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, name: &'static str, value: bool) -> &mut Self {
        self.name(name).push_str(if value { "true" } else { "false" });
        self
    }

    /// A member holding any JSON value (its canonical text), or `null`.
    pub fn value(&mut self, name: &'static str, value: Option<&Value>) -> &mut Self {
        let out = self.name(name);
        match value {
            Some(v) => push_value(out, v),
            None => out.push_str("null"),
        }
        self
    }

    /// A member holding an object, written by `fill`.
    pub fn object(&mut self, name: &'static str, fill: impl FnOnce(&mut CanonicalObject<'_>)) -> &mut Self {
        let out = self.name(name);
        let mut inner = CanonicalObject::open(out);
        fill(&mut inner);
        inner.close();
        self
    }

    /// A member holding an array of objects, one per item, each written by `fill`.
    pub fn array_of<T>(
        &mut self,
        name: &'static str,
        items: impl IntoIterator<Item = T>,
        fill: impl Fn(&mut CanonicalObject<'_>, T),
    ) -> &mut Self {
        let out = self.name(name);
        out.push('[');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut inner = CanonicalObject::open(out);
            fill(&mut inner, item);
            inner.close();
        }
        out.push(']');
        self
    }

    /// Ends the object.
    pub fn close(self) {
        self.out.push('}');
    }
}

fn push_value(out: &mut String, value: &Value) {
    out.push_str(&canonical_text(value));
}

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
/// camelCase at every level, sensitive members removed. Takes the value, so that what is kept
/// is moved rather than copied.
pub fn scrub(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let name = lower_first(k);
                if SENSITIVE_MEMBERS.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
                    continue;
                }
                // Encryption-context keys are data, not member names: keep them as given.
                let inner = if name == "encryptionContext"
                    || name.ends_with("EncryptionContext")
                    || name.starts_with("encryptionContext")
                {
                    v
                } else {
                    scrub(v)
                };
                out.insert(name, inner);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
        other => other,
    }
}

/// [`camel`] in place when the first letter is ASCII (every AWS member name's is).
fn lower_first(mut name: String) -> String {
    match name.get_mut(..1) {
        Some(first) => {
            first.make_ascii_lowercase();
            name
        }
        None => camel(&name),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Written member by member, the object has the same text as the same document built as a
    /// `Value` and serialized: compact, sorted, escaped alike.
    #[test]
    fn a_canonical_object_is_the_canonical_text_of_its_document() {
        let nested = json!({"b": [1, "two", null], "a": {"é": "\u{7}"}});
        let mut text = String::from("prefix:");
        let mut o = CanonicalObject::open(&mut text);
        o.str("Upper", "first: capitals sort before lower case")
            .opt_str("absent", None)
            .str("escaped", "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} emoji 🔑")
            .bool("false", false)
            .value("nested", Some(&nested))
            .value("nothing", None)
            .object("object", |inner| {
                inner.null("a").array_of("b", ["y", "z"], |one, v| {
                    one.str("x", v);
                });
            })
            .bool("true", true);
        o.close();
        let expected = json!({
            "Upper": "first: capitals sort before lower case",
            "absent": null,
            "escaped": "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} emoji 🔑",
            "false": false,
            "nested": nested,
            "nothing": null,
            "object": {"a": null, "b": [{"x": "y"}, {"x": "z"}]},
            "true": true,
        });
        assert_eq!(text, format!("prefix:{}", canonical_text(&expected)));
    }

    #[test]
    #[should_panic(expected = "out of order")]
    #[cfg(debug_assertions)]
    fn members_out_of_order_are_caught_in_debug_builds() {
        let mut text = String::new();
        let mut o = CanonicalObject::open(&mut text);
        o.str("b", "1").str("a", "2");
    }

    #[test]
    fn scrub_renames_and_removes_secrets() {
        let request = json!({
            "KeyId": "alias/a",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"Tenant": "a"},
            "Nested": {"SecretAccessKey": "x", "AccessKeyId": "AKIA"}
        });
        let scrubbed = scrub(request.clone());
        assert_eq!(
            scrubbed,
            json!({"keyId": "alias/a", "encryptionContext": {"Tenant": "a"}, "nested": {"accessKeyId": "AKIA"}})
        );
        assert!(!scrubbed.to_string().contains("c2VjcmV0"));
    }
}
