//! The bodies of the hot responses (Encrypt, Decrypt, GenerateDataKey*, Sign) written directly.
//!
//! serde_json tests every byte of every string for escaping, which for a base64 blob (never in
//! need of it) was most of the cost of encoding these responses: about 6,000 instructions of an
//! Encrypt's 145,000. Here blobs are base64-encoded straight into the body, other strings are
//! copied when nothing in them needs escaping (and handed to serde_json when something does),
//! and the body is sized up front, so that a plaintext is never left behind in an outgrown
//! buffer. The text is byte for byte what serde_json writes for the same DTO (tested).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::base64_members::{Blob, SecretBlob};
use crate::model::{
    DecryptResponse, EncryptResponse, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse, SignResponse,
};

/// A member's value.
#[derive(Clone, Copy)]
enum Member<'a> {
    /// A string, escaped as serde_json escapes it.
    Str(&'a str),
    /// Bytes in base64 (standard alphabet, padded: never escaped).
    Base64(&'a [u8]),
    /// A plaintext in base64: the body must not grow once it holds one (growing leaves a copy
    /// behind in the old buffer).
    Secret(&'a [u8]),
}

/// Room for a member's name, quotes, colon and comma.
const MEMBER_OVERHEAD: usize = 6;

fn base64_room(bytes: &[u8]) -> usize {
    base64::encoded_len(bytes.len(), true).unwrap_or_default()
}

/// The text of an object of `members`, in order, in a body sized up front; `None` when a
/// string after a secret needs escaping (its escaped length is not known up front, so the body
/// could grow), which our ARNs and ids never do: the caller then uses the wiping serializer.
fn object<'a>(members: impl Iterator<Item = (&'a str, Member<'a>)> + Clone) -> Option<Vec<u8>> {
    let mut room = 2;
    let mut after_secret = false;
    for (name, value) in members.clone() {
        room += name.len() + MEMBER_OVERHEAD;
        match value {
            Member::Str(text) if after_secret && kms_core::json_text::needs_escape(text.as_bytes()) => return None,
            Member::Str(text) => room += text.len(),
            Member::Base64(bytes) => room += base64_room(bytes),
            Member::Secret(bytes) => {
                room += base64_room(bytes);
                after_secret = true;
            }
        }
    }
    let mut out = Vec::with_capacity(room);
    out.push(b'{');
    for (i, (name, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            // Rare, and only before any secret (checked above): the body may grow.
            Member::Str(text) if kms_core::json_text::needs_escape(text.as_bytes()) => {
                out.extend_from_slice(serde_json::to_string(text).unwrap_or_default().as_bytes());
            }
            Member::Str(text) => {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            Member::Base64(bytes) | Member::Secret(bytes) => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + base64_room(bytes), 0);
                if let Some(tail) = out.get_mut(start..) {
                    // The tail has exactly the encoded length.
                    let _ = STANDARD.encode_slice(bytes, tail);
                }
                out.push(b'"');
            }
        }
    }
    out.push(b'}');
    Some(out)
}

/// The text of `response` with `members` (the present ones, in serde's order), written
/// directly; serde_json's when that cannot be done without the body growing (see [`object`]).
fn body<'a, T: serde::Serialize, const N: usize>(response: &T, members: [Option<(&'a str, Member<'a>)>; N]) -> Vec<u8> {
    object(members.into_iter().flatten()).unwrap_or_else(|| crate::encode_response(response))
}

/// A member that is present.
fn some<'a>(name: &'a str, value: Option<Member<'a>>) -> Option<(&'a str, Member<'a>)> {
    value.map(|v| (name, v))
}

fn text(value: Option<&String>) -> Option<Member<'_>> {
    value.map(|t| Member::Str(t))
}

fn blob(value: Option<&Blob>) -> Option<Member<'_>> {
    value.map(|b| Member::Base64(&b.0))
}

fn secret(value: Option<&SecretBlob>) -> Option<Member<'_>> {
    value.map(|b| Member::Secret(b.expose_secret()))
}

// The members in the generated structures' order (the model's), as serde writes them.

impl EncryptResponse {
    /// The response body (the same text as [`crate::encode_response`] gives).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        body(
            self,
            [
                some("CiphertextBlob", blob(self.ciphertext_blob.as_ref())),
                some("EncryptionAlgorithm", text(self.encryption_algorithm.as_ref())),
                some("KeyId", text(self.key_id.as_ref())),
            ],
        )
    }
}

impl DecryptResponse {
    /// The response body (the same text as [`crate::encode_response`] gives). It holds the
    /// plaintext: the caller wipes it once sent.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        body(
            self,
            [
                some("CiphertextForRecipient", blob(self.ciphertext_for_recipient.as_ref())),
                some("EncryptionAlgorithm", text(self.encryption_algorithm.as_ref())),
                some("KeyId", text(self.key_id.as_ref())),
                some("KeyMaterialId", text(self.key_material_id.as_ref())),
                some("Plaintext", secret(self.plaintext.as_ref())),
            ],
        )
    }
}

impl GenerateDataKeyResponse {
    /// The response body (the same text as [`crate::encode_response`] gives). It holds the
    /// data key's plaintext: the caller wipes it once sent.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        body(
            self,
            [
                some("CiphertextBlob", blob(self.ciphertext_blob.as_ref())),
                some("CiphertextForRecipient", blob(self.ciphertext_for_recipient.as_ref())),
                some("KeyId", text(self.key_id.as_ref())),
                some("KeyMaterialId", text(self.key_material_id.as_ref())),
                some("Plaintext", secret(self.plaintext.as_ref())),
            ],
        )
    }
}

impl SignResponse {
    /// The response body (the same text as [`crate::encode_response`] gives).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        body(
            self,
            [
                some("KeyId", text(self.key_id.as_ref())),
                some("Signature", blob(self.signature.as_ref())),
                some("SigningAlgorithm", text(self.signing_algorithm.as_ref())),
            ],
        )
    }
}

impl GenerateDataKeyWithoutPlaintextResponse {
    /// The response body (the same text as [`crate::encode_response`] gives).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        body(
            self,
            [
                some("CiphertextBlob", blob(self.ciphertext_blob.as_ref())),
                some("KeyId", text(self.key_id.as_ref())),
                some("KeyMaterialId", text(self.key_material_id.as_ref())),
            ],
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use zeroize::Zeroizing;

    use crate::base64_members::{Blob, SecretBlob};
    use crate::model::{
        DecryptResponse, EncryptResponse, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextResponse,
        SignResponse,
    };

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// Texts that need escaping, and blobs of every length modulo 3 (base64 padding).
    fn cases() -> Vec<(String, Vec<u8>)> {
        let ids = [ARN.to_owned(), String::new(), "quote\" back\\slash \u{1} é".to_owned()];
        let blobs: Vec<Vec<u8>> =
            (0..7).map(|n| (0..n).map(|i| u8::try_from(i * 37 % 256).unwrap()).collect()).collect();
        ids.iter().flat_map(|id| blobs.iter().map(move |b| (id.clone(), b.clone()))).collect()
    }

    fn secret(bytes: &[u8]) -> SecretBlob {
        SecretBlob(Zeroizing::new(bytes.to_vec()))
    }

    #[test]
    fn encrypt_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            let r = EncryptResponse {
                ciphertext_blob: Some(Blob(blob)),
                key_id: Some(id),
                encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
            };
            assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
        }
        let empty = EncryptResponse::default();
        assert_eq!(empty.to_json(), b"{}");
        for (id, blob) in cases() {
            let r = SignResponse {
                key_id: Some(id),
                signature: Some(Blob(blob)),
                signing_algorithm: Some("ECDSA_SHA_256".into()),
            };
            assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
        }
    }

    #[test]
    fn decrypt_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            for material in ["m".to_owned(), id.clone()] {
                let r = DecryptResponse {
                    key_id: Some(id.clone()),
                    plaintext: Some(secret(&blob)),
                    encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
                    key_material_id: Some(material),
                    ciphertext_for_recipient: None,
                };
                assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
            }
        }
    }

    #[test]
    fn generate_data_key_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            for plaintext in [None, Some(secret(&blob))] {
                let r = GenerateDataKeyResponse {
                    ciphertext_blob: Some(Blob(blob.clone())),
                    plaintext,
                    key_id: Some(id.clone()),
                    key_material_id: Some("0123".repeat(16)),
                    ciphertext_for_recipient: None,
                };
                assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
            }
            let r = GenerateDataKeyWithoutPlaintextResponse {
                ciphertext_blob: Some(Blob(blob.clone())),
                key_id: Some(id.clone()),
                key_material_id: Some("m".into()),
            };
            assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
        }
    }

    /// The body is sized up front: writing it never moves it (a move would leave a copy of the
    /// plaintext behind in the old buffer).
    #[test]
    fn bodies_with_a_plaintext_are_written_without_growing() {
        let plaintext = secret(&[7u8; 4096]);
        let r = DecryptResponse {
            key_id: Some(ARN.into()),
            plaintext: Some(plaintext.clone()),
            encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
            key_material_id: Some("0123".repeat(16)),
            ciphertext_for_recipient: None,
        };
        let body = r.to_json();
        assert!(body.len() <= body.capacity());
        let values = ARN.len() + 5464 + 17 + 64;
        let names = ["KeyId", "Plaintext", "EncryptionAlgorithm", "KeyMaterialId"];
        let room = 2 + values + names.iter().map(|n| n.len() + super::MEMBER_OVERHEAD).sum::<usize>();
        assert_eq!(body.capacity(), room, "allocated once, at the size computed up front");
        let g = GenerateDataKeyResponse {
            ciphertext_blob: Some(Blob(vec![1; 200])),
            plaintext: Some(plaintext),
            key_id: Some(ARN.into()),
            key_material_id: Some("m".into()),
            ciphertext_for_recipient: None,
        };
        let body = g.to_json();
        assert!(body.capacity() >= body.len());
        assert_eq!(body, serde_json::to_vec(&g).unwrap());
    }
}
