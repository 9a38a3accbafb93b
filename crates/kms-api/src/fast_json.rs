//! The bodies of the hot responses (Encrypt, Decrypt, GenerateDataKey) written directly.
//!
//! serde_json tests every byte of every string for escaping, which for a base64 blob (never in
//! need of it) was most of the cost of encoding these responses: about 6,000 instructions of an
//! Encrypt's 145,000. Here blobs are base64-encoded straight into the body, other strings are
//! copied when nothing in them needs escaping (and handed to serde_json when something does),
//! and the body is sized up front, so that a plaintext is never left behind in an outgrown
//! buffer. The text is byte for byte what serde_json writes for the same DTO (tested).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::dto::{DecryptResponse, EncryptResponse, GenerateDataKeyResponse};

/// One JSON object's text, member by member, in the order given.
struct Object {
    out: Vec<u8>,
    members: usize,
}

/// Room for a member's name, quotes, colon and comma.
const MEMBER_OVERHEAD: usize = 6;

impl Object {
    /// An object whose members' values add up to about `values` bytes, named in `names`.
    fn with_room(names: &[&str], values: usize) -> Self {
        let room = 2 + values + names.iter().map(|n| n.len() + MEMBER_OVERHEAD).sum::<usize>();
        let mut out = Vec::with_capacity(room);
        out.push(b'{');
        Self { out, members: 0 }
    }

    fn name(&mut self, name: &str) {
        if self.members > 0 {
            self.out.push(b',');
        }
        self.members += 1;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A base64 member (standard alphabet, padded: never escaped).
    fn base64(&mut self, name: &str, bytes: &[u8]) {
        self.name(name);
        self.out.push(b'"');
        let start = self.out.len();
        self.out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or_default(), 0);
        if let Some(tail) = self.out.get_mut(start..) {
            // The tail has exactly the encoded length.
            let _ = STANDARD.encode_slice(bytes, tail);
        }
        self.out.push(b'"');
    }

    /// A string member, escaped as serde_json escapes it.
    fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        if kms_core::audit::needs_escape(value.as_bytes()) {
            // Rare (our ARNs and ids never need it), and the buffer may grow: callers write such
            // strings only before a secret member.
            self.out.extend_from_slice(serde_json::to_string(value).unwrap_or_default().as_bytes());
        } else {
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

fn base64_room(bytes: &[u8]) -> usize {
    base64::encoded_len(bytes.len(), true).unwrap_or_default()
}

impl EncryptResponse {
    /// The response body (the same text as [`crate::encode_response`] gives).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let values = base64_room(&self.ciphertext_blob.0) + self.key_id.len() + self.encryption_algorithm.len();
        let mut o = Object::with_room(&["CiphertextBlob", "KeyId", "EncryptionAlgorithm"], values);
        o.base64("CiphertextBlob", &self.ciphertext_blob.0);
        o.str("KeyId", &self.key_id);
        o.str("EncryptionAlgorithm", self.encryption_algorithm);
        o.finish()
    }
}

impl DecryptResponse {
    /// The response body (the same text as [`crate::encode_response`] gives). It holds the
    /// plaintext: the caller wipes it once sent.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let plaintext = self.plaintext.expose_secret();
        // The strings after the secret are copied only when they need no escaping (ours never
        // do), so that the buffer cannot grow once it holds the plaintext; otherwise the whole
        // body goes through the wiping serializer.
        if [self.encryption_algorithm, &self.key_material_id]
            .iter()
            .any(|s| kms_core::audit::needs_escape(s.as_bytes()))
        {
            return crate::encode_response(self);
        }
        let values =
            self.key_id.len() + base64_room(plaintext) + self.encryption_algorithm.len() + self.key_material_id.len();
        let mut o = Object::with_room(&["KeyId", "Plaintext", "EncryptionAlgorithm", "KeyMaterialId"], values);
        o.str("KeyId", &self.key_id);
        o.base64("Plaintext", plaintext);
        o.str("EncryptionAlgorithm", self.encryption_algorithm);
        o.str("KeyMaterialId", &self.key_material_id);
        o.finish()
    }
}

impl GenerateDataKeyResponse {
    /// The response body (the same text as [`crate::encode_response`] gives). It may hold the
    /// data key's plaintext: the caller wipes it once sent.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let plaintext = self.plaintext.as_ref().map(super::blob::SecretBlob::expose_secret);
        // As for Decrypt: the strings after the secret must not need escaping.
        if [&self.key_id, &self.key_material_id].iter().any(|s| kms_core::audit::needs_escape(s.as_bytes())) {
            return crate::encode_response(self);
        }
        let values = base64_room(&self.ciphertext_blob.0)
            + plaintext.map_or(0, base64_room)
            + self.key_id.len()
            + self.key_material_id.len();
        let mut o = Object::with_room(&["CiphertextBlob", "Plaintext", "KeyId", "KeyMaterialId"], values);
        o.base64("CiphertextBlob", &self.ciphertext_blob.0);
        if let Some(plaintext) = plaintext {
            o.base64("Plaintext", plaintext);
        }
        o.str("KeyId", &self.key_id);
        o.str("KeyMaterialId", &self.key_material_id);
        o.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use zeroize::Zeroizing;

    use crate::blob::{Blob, SecretBlob};
    use crate::dto::{DecryptResponse, EncryptResponse, GenerateDataKeyResponse};

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// Texts that need escaping, and blobs of every length modulo 3 (base64 padding).
    fn cases() -> Vec<(String, Vec<u8>)> {
        let ids = [ARN.to_owned(), String::new(), "quote\" back\\slash \u{1} é".to_owned()];
        let blobs: Vec<Vec<u8>> =
            (0..7).map(|n| (0..n).map(|i| u8::try_from(i * 37 % 256).unwrap()).collect()).collect();
        ids.iter().flat_map(|id| blobs.iter().map(move |b| (id.clone(), b.clone()))).collect()
    }

    #[test]
    fn encrypt_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            let r =
                EncryptResponse { ciphertext_blob: Blob(blob), key_id: id, encryption_algorithm: "SYMMETRIC_DEFAULT" };
            assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
        }
    }

    #[test]
    fn decrypt_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            for material in ["m".to_owned(), id.clone()] {
                let r = DecryptResponse {
                    key_id: id.clone(),
                    plaintext: SecretBlob(Zeroizing::new(blob.clone())),
                    encryption_algorithm: "SYMMETRIC_DEFAULT",
                    key_material_id: material,
                };
                assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
            }
        }
    }

    #[test]
    fn generate_data_key_responses_are_serde_json_text() {
        for (id, blob) in cases() {
            for plaintext in [None, Some(SecretBlob(Zeroizing::new(blob.clone())))] {
                let r = GenerateDataKeyResponse {
                    ciphertext_blob: Blob(blob.clone()),
                    plaintext,
                    key_id: id.clone(),
                    key_material_id: "0123".repeat(16),
                };
                assert_eq!(r.to_json(), serde_json::to_vec(&r).unwrap());
            }
        }
    }

    /// The body is sized up front: writing it never moves it (a move would leave a copy of the
    /// plaintext behind in the old buffer).
    #[test]
    fn bodies_with_a_plaintext_are_written_without_growing() {
        let plaintext = SecretBlob(Zeroizing::new(vec![7u8; 4096]));
        let r = DecryptResponse {
            key_id: ARN.into(),
            plaintext: plaintext.clone(),
            encryption_algorithm: "SYMMETRIC_DEFAULT",
            key_material_id: "0123".repeat(16),
        };
        let body = r.to_json();
        assert!(body.len() <= body.capacity());
        let values = ARN.len() + 5464 + 17 + 64;
        let names = ["KeyId", "Plaintext", "EncryptionAlgorithm", "KeyMaterialId"];
        let room = 2 + values + names.iter().map(|n| n.len() + super::MEMBER_OVERHEAD).sum::<usize>();
        assert_eq!(body.capacity(), room, "allocated once, at the size computed up front");
        let g = GenerateDataKeyResponse {
            ciphertext_blob: Blob(vec![1; 200]),
            plaintext: Some(plaintext),
            key_id: ARN.into(),
            key_material_id: "m".into(),
        };
        let body = g.to_json();
        assert!(body.capacity() >= body.len());
        assert_eq!(body, serde_json::to_vec(&g).unwrap());
    }
}
