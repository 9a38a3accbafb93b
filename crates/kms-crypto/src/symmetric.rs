//! AES-256-GCM with a KMS key's material: seal and open ciphertext blobs.
//!
//! Every blob gets its own AES key, derived from the material and a random 128-bit salt with
//! HMAC-SHA256 in the NIST SP 800-108 counter-mode construction (one block). A (key, nonce)
//! pair therefore repeats only if 224 random bits repeat, so one material can seal far more
//! than the 2^32 messages NIST allows a single GCM key with random nonces.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use kms_core::Rng;
use kms_core::ciphertext_blob::{self as blob, BlobAlgorithm, BlobHeader, NONCE_LEN};
use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};

use crate::error::CryptoError;
use crate::secret::{KeyMaterial, SecretBytes};

/// One version of a symmetric KMS key's material, ready to use: the HMAC key that derives
/// per-blob keys is set up once.
pub struct SymmetricKey {
    key_id: KeyId,
    material_id: MaterialId,
    kdf: hmac::Key,
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
        let kdf = hmac::Key::new(hmac::HMAC_SHA256, material.expose_secret());
        // A multi-Region key's replicas share ciphertext: only the id clients see is bound.
        Ok(Self { key_id: key_id.public(), material_id, kdf })
    }

    /// The AES-256-GCM key of one blob: `HMAC-SHA256(material, 0x00000001 ‖ "ferrokms blob
    /// key" ‖ 0x00 ‖ key id ‖ material id ‖ salt ‖ 0x00000100)`.
    fn blob_key(&self, salt: &[u8; blob::SALT_LEN]) -> Result<LessSafeKey, CryptoError> {
        let mut ctx = hmac::Context::with_key(&self.kdf);
        ctx.update(&1u32.to_be_bytes());
        ctx.update(b"ferrokms blob key\0");
        ctx.update(self.key_id.as_bytes());
        ctx.update(self.material_id.as_bytes());
        ctx.update(salt);
        ctx.update(&256u32.to_be_bytes());
        let tag = ctx.sign();
        let unbound = UnboundKey::new(&AES_256_GCM, tag.as_ref()).map_err(|_| CryptoError::KeyLength)?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Encrypts `plaintext` under this material, binding `context`, with a random nonce.
    ///
    /// # Errors
    /// [`CryptoError::Seal`] if the cipher refuses (not for inputs within KMS limits).
    pub fn seal(&self, rng: &dyn Rng, context: &EncryptionContext, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // The salt and the nonce come from one draw of the RNG (each draw has a fixed cost).
        let draw = crate::random_array::<{ blob::SALT_LEN + NONCE_LEN }>(rng);
        let (salt_part, nonce_part) = draw.split_at(blob::SALT_LEN);
        let mut salt = [0u8; blob::SALT_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        salt.copy_from_slice(salt_part);
        nonce.copy_from_slice(nonce_part);
        let header = BlobHeader {
            algorithm: BlobAlgorithm::SymmetricAes256Gcm,
            key_id: self.key_id,
            material_id: self.material_id,
            salt,
            nonce,
        };
        let cipher = self.blob_key(&header.salt)?;
        let aad = header.aad(&context.canonical_bytes());
        let mut sealed = Vec::with_capacity(plaintext.len() + blob::TAG_LEN);
        sealed.extend_from_slice(plaintext);
        let tag = cipher
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
        let cipher = self.blob_key(&blob.header.salt)?;
        match cipher.open_in_place(nonce, Aad::from(&aad), &mut buf) {
            Ok(plain) => {
                let len = plain.len();
                buf.truncate(len);
                Ok(SecretBytes::new(buf))
            }
            Err(_) => {
                // Whatever the failed open left in the buffer is unauthenticated: wipe it.
                zeroize::Zeroize::zeroize(&mut buf);
                Err(CryptoError::Open)
            }
        }
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

    /// Counts its draws; byte i of a draw is i.
    struct CountingRng(std::sync::atomic::AtomicUsize);

    impl kms_core::Rng for CountingRng {
        fn fill(&self, buf: &mut [u8]) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = u8::try_from(i).unwrap_or(u8::MAX);
            }
        }
    }

    /// The salt and the nonce are the two parts of one draw (each draw of the system RNG has
    /// a fixed cost), and the blob still opens.
    #[test]
    fn seal_draws_salt_and_nonce_at_once() {
        let k = key(7);
        let rng = CountingRng(std::sync::atomic::AtomicUsize::new(0));
        let sealed = k.seal(&rng, &ctx("a"), b"hello").unwrap();
        assert_eq!(rng.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        let decoded = blob::decode(&sealed).unwrap();
        let expected: Vec<u8> = (0..blob::SALT_LEN + NONCE_LEN).map(|i| u8::try_from(i).unwrap()).collect();
        assert_eq!(&decoded.header.salt[..], &expected[..blob::SALT_LEN]);
        assert_eq!(&decoded.header.nonce[..], &expected[blob::SALT_LEN..]);
        assert_eq!(k.open(&decoded, &ctx("a")).unwrap().expose_secret(), b"hello");
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
