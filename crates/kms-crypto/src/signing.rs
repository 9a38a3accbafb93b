//! Signing primitives outside the KMS key kinds: Ed25519, the signing key of the audit trail's
//! digests and the verification `ferrokms audit verify` does, and SHA256withRSA (RSA 2048,
//! PKCS#1 v1.5), the signing key of delivered CloudTrail digest files, which
//! `aws cloudtrail validate-logs` checks. (The *KMS key* kinds are variants of
//! [`crate::KeyHandle`] built on the same calls.)

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ED25519, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, UnparsedPublicKey,
};

use crate::{CryptoError, SecretBytes};

/// Length of an Ed25519 public key in bytes.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// An Ed25519 private key.
pub struct Ed25519SigningKey(Ed25519KeyPair);

impl Ed25519SigningKey {
    /// A new key whose 32-byte seed comes from `rng` (the injected generator, never one of
    /// the library's own).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the library rejects the seed (it accepts every 32 bytes).
    pub fn generate(rng: &dyn kms_core::Rng) -> Result<Self, CryptoError> {
        let seed = zeroize::Zeroizing::new(crate::random_array::<32>(rng));
        Ed25519KeyPair::from_seed_unchecked(seed.as_ref()).map(Self).map_err(|_| CryptoError::InvalidKey)
    }

    /// Loads a key from its PKCS#8 document (v1 or v2), as [`Ed25519SigningKey::to_pkcs8`]
    /// writes it.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the document is not an Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &SecretBytes) -> Result<Self, CryptoError> {
        Ed25519KeyPair::from_pkcs8(pkcs8.expose_secret()).map(Self).map_err(|_| CryptoError::InvalidKey)
    }

    /// The key as a PKCS#8 v2 document (private and public key), for wrapping by the root key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the library cannot serialize the key.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let document = self.0.to_pkcs8().map_err(|_| CryptoError::InvalidKey)?;
        Ok(SecretBytes::new(document.as_ref().to_vec()))
    }

    /// The public key.
    pub fn public_key(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

impl std::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519SigningKey([REDACTED])")
    }
}

/// Whether `signature` is a valid Ed25519 signature of `message` by `public_key`.
pub fn ed25519_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key).verify(message, signature).is_ok()
}

/// An RSA 2048 private key that signs with SHA256withRSA (RSASSA-PKCS1-v1_5 over SHA-256), as
/// CloudTrail signs its digest files.
pub struct RsaSha256SigningKey(RsaKeyPair);

impl RsaSha256SigningKey {
    /// A new 2048-bit key. aws-lc-rs generates RSA keys only from its own CSPRNG, so the
    /// injected `Rng` cannot be used (as for RSA KMS keys, docs/adr/0013).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if generation fails.
    pub fn generate() -> Result<Self, CryptoError> {
        RsaKeyPair::generate(KeySize::Rsa2048).map(Self).map_err(|_| CryptoError::InvalidKey)
    }

    /// Loads a key from its PKCS#8 v1 document, as [`RsaSha256SigningKey::to_pkcs8`] writes it.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the document is not an RSA private key of 2048 to 8192 bits.
    pub fn from_pkcs8(pkcs8: &SecretBytes) -> Result<Self, CryptoError> {
        RsaKeyPair::from_pkcs8(pkcs8.expose_secret()).map(Self).map_err(|_| CryptoError::InvalidKey)
    }

    /// The key as a PKCS#8 v1 document, for wrapping by the root key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the library cannot serialize the key.
    pub fn to_pkcs8(&self) -> Result<SecretBytes, CryptoError> {
        let document: Pkcs8V1Der<'_> = self.0.as_der().map_err(|_| CryptoError::InvalidKey)?;
        Ok(SecretBytes::new(document.as_ref().to_vec()))
    }

    /// The public key as a PKCS#1 `RSAPublicKey` DER (what CloudTrail's ListPublicKeys serves).
    pub fn public_key_pkcs1(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// The SHA256withRSA signature of `message`.
    ///
    /// # Errors
    /// [`CryptoError::Sign`] if the library fails to sign.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.0.public_modulus_len()];
        // aws-lc-rs ignores the generator argument (PKCS#1 v1.5 signing is deterministic).
        self.0
            .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), message, &mut out)
            .map(|()| out)
            .map_err(|_| CryptoError::Sign)
    }
}

impl std::fmt::Debug for RsaSha256SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaSha256SigningKey([REDACTED])")
    }
}

/// Whether `signature` is a valid SHA256withRSA signature of `message` by `public_key` (a
/// PKCS#1 `RSAPublicKey` DER).
pub fn rsa_sha256_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key).verify(message, signature).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Fills with one repeated byte.
    struct Fixed(u8);

    impl kms_core::Rng for Fixed {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(self.0);
        }
    }

    /// The key comes from the injected generator: the same seed gives the same key; it signs,
    /// survives PKCS#8, and verification refuses a changed message or another key.
    #[test]
    fn generate_sign_verify_round_trip() {
        let key = Ed25519SigningKey::generate(&Fixed(7)).unwrap();
        assert_eq!(key.public_key(), Ed25519SigningKey::generate(&Fixed(7)).unwrap().public_key());
        assert_ne!(key.public_key(), Ed25519SigningKey::generate(&Fixed(8)).unwrap().public_key());
        assert_eq!(key.public_key().len(), ED25519_PUBLIC_KEY_LEN);
        let signature = key.sign(b"digest");
        assert_eq!(signature.len(), ED25519_SIGNATURE_LEN);
        assert!(ed25519_verify(key.public_key(), b"digest", &signature));
        assert!(!ed25519_verify(key.public_key(), b"digest!", &signature));
        let loaded = Ed25519SigningKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        let other = Ed25519SigningKey::generate(&Fixed(9)).unwrap();
        assert!(!ed25519_verify(other.public_key(), b"digest", &signature));
        assert!(Ed25519SigningKey::from_pkcs8(&SecretBytes::new(vec![1, 2, 3])).is_err());
        assert_eq!(format!("{key:?}"), "Ed25519SigningKey([REDACTED])");
    }

    /// RFC 8032 section 7.1, test 1: the public key of the all-zero-message key and its
    /// signature of the empty message.
    #[test]
    fn rfc8032_test_1_verifies() {
        let public = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").unwrap();
        let signature = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        assert!(ed25519_verify(&public, b"", &signature));
        assert!(!ed25519_verify(&public, b"x", &signature));
    }

    /// The CloudTrail digest key signs, survives PKCS#8, verifies only its own signature of
    /// the same message, and its public key is a PKCS#1 `RSAPublicKey` (a DER SEQUENCE of two
    /// INTEGERs, not an SPKI with an algorithm identifier).
    #[test]
    fn rsa_digest_key_round_trip() {
        let key = RsaSha256SigningKey::generate().unwrap();
        let public = key.public_key_pkcs1().to_vec();
        assert_eq!(public.first(), Some(&0x30));
        assert_eq!(public.get(4), Some(&0x02), "PKCS#1: the modulus INTEGER comes first");
        let signature = key.sign(b"digest").unwrap();
        assert_eq!(signature.len(), 256);
        assert!(rsa_sha256_verify(&public, b"digest", &signature));
        assert!(!rsa_sha256_verify(&public, b"digest!", &signature));
        let loaded = RsaSha256SigningKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
        assert_eq!(loaded.public_key_pkcs1(), public.as_slice());
        assert_eq!(loaded.sign(b"digest").unwrap(), signature, "PKCS#1 v1.5 is deterministic");
        let other = RsaSha256SigningKey::generate().unwrap();
        assert!(!rsa_sha256_verify(other.public_key_pkcs1(), b"digest", &signature));
        assert!(RsaSha256SigningKey::from_pkcs8(&SecretBytes::new(vec![1, 2, 3])).is_err());
        assert_eq!(format!("{key:?}"), "RsaSha256SigningKey([REDACTED])");
    }
}
