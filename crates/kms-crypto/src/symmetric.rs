//! AES-256-GCM with a KMS key's material: seal and open ciphertext blobs.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use kms_core::Rng;
use kms_core::blob::{self, BlobAlgorithm, BlobHeader, NONCE_LEN};
use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};

use crate::secret::{KeyMaterial, SecretBytes};

/// Failures of symmetric operations. Callers map every `Open` to `InvalidCiphertextException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong context or altered bytes.
    #[error("ciphertext failed authentication")]
    Open,
    /// The cipher refused the input (cannot happen for in-range lengths).
    #[error("the cipher refused to seal")]
    Seal,
    /// Key material of the wrong length.
    #[error("key material has the wrong length")]
    KeyLength,
}

/// One version of a symmetric KMS key's material, ready to use: the AES key schedule is built
/// once, so sealing from the cache costs no key setup.
pub struct SymmetricKey {
    key_id: KeyId,
    material_id: MaterialId,
    cipher: LessSafeKey,
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricKey")
            .field("key_id", &self.key_id)
            .field("material_id", &self.material_id)
            .finish_non_exhaustive()
    }
}

impl SymmetricKey {
    /// Prepares `material` (which is dropped, and so zeroized, here) for use.
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] cannot happen for 32-byte material but is reported, not
    /// panicked on.
    pub fn new(key_id: KeyId, material_id: MaterialId, material: KeyMaterial) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, material.expose_secret()).map_err(|_| CryptoError::KeyLength)?;
        Ok(Self { key_id, material_id, cipher: LessSafeKey::new(unbound) })
    }

    /// The material id.
    pub fn material_id(&self) -> MaterialId {
        self.material_id
    }

    /// Encrypts `plaintext` under this material, binding `context`, with a random nonce.
    ///
    /// # Errors
    /// [`CryptoError::Seal`] if the cipher refuses (not for inputs within KMS limits).
    pub fn seal(&self, rng: &dyn Rng, context: &EncryptionContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let header = BlobHeader {
            algorithm: BlobAlgorithm::SymmetricAes256Gcm,
            key_id: self.key_id,
            material_id: self.material_id,
            nonce: crate::random_array::<NONCE_LEN>(rng),
        };
        let aad = header.aad(&context.canonical_bytes());
        let mut sealed = Vec::with_capacity(plaintext.len() + blob::TAG_LEN);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(header.nonce), Aad::from(&aad), &mut sealed)
            .map_err(|_| CryptoError::Seal)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(blob::encode(&header, &sealed))
    }

    /// Decrypts a decoded blob that names this key and material.
    ///
    /// # Errors
    /// [`CryptoError::Open`] when the blob was not sealed by this material with this context.
    pub fn open(&self, blob: &blob::Blob<'_>, context: &EncryptionContext) -> Result<SecretBytes, CryptoError> {
        if blob.header.key_id != self.key_id || blob.header.material_id != self.material_id {
            return Err(CryptoError::Open);
        }
        let aad = blob.header.aad(&context.canonical_bytes());
        let mut buf = blob.sealed.to_vec();
        let nonce = Nonce::assume_unique_for_key(blob.header.nonce);
        let len = self.cipher.open_in_place(nonce, Aad::from(&aad), &mut buf).map_err(|_| CryptoError::Open)?.len();
        buf.truncate(len);
        Ok(SecretBytes::new(buf))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::SystemRng;

    fn key(byte: u8) -> SymmetricKey {
        SymmetricKey::new(KeyId::from_bytes([1; 16]), MaterialId::from_bytes([2; 32]), KeyMaterial::new([byte; 32]))
            .unwrap()
    }

    fn ctx(v: &str) -> EncryptionContext {
        [("purpose".to_owned(), v.to_owned())].into_iter().collect()
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let k = key(7);
        let blob = k.seal(&SystemRng, &ctx("a"), b"hello").unwrap();
        let decoded = blob::decode(&blob).unwrap();
        assert_eq!(k.open(&decoded, &ctx("a")).unwrap().expose_secret(), b"hello");
        assert!(matches!(k.open(&decoded, &ctx("b")), Err(CryptoError::Open)));
        assert!(matches!(k.open(&decoded, &EncryptionContext::empty()), Err(CryptoError::Open)));
        assert!(matches!(key(8).open(&decoded, &ctx("a")), Err(CryptoError::Open)));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let k = key(7);
        let blob = k.seal(&SystemRng, &ctx("a"), b"hello world").unwrap();
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x01;
            if let Ok(decoded) = blob::decode(&tampered) {
                assert!(k.open(&decoded, &ctx("a")).is_err(), "byte {i}");
            }
        }
    }
}
