//! The key handle: one version of a KMS key's material, of any kind, ready to use.
//!
//! [`KeyHandle`] is the only thing that knows what a key's material is. The cache, CreateKey,
//! rotation and the data-plane handlers hold handles and [`KeySecret`]s without looking inside:
//! they ask a handle to encrypt or decrypt, and a kind of key that does not have an operation
//! answers [`CryptoError::UnsupportedOperation`].
//!
//! Adding a kind of key (HMAC, RSA, ECC, Ed25519, ML-DSA, SM2) is adding a variant to `Kind`,
//! its arms in [`KeySecret::generate`] and [`KeyHandle::from_secret`] (how its material is
//! generated and what its storage encoding is — PKCS#8 for the asymmetric kinds), and the
//! operations it has. Nothing outside this crate changes but the handlers of the new
//! operations.

use kms_core::Rng;
use kms_core::ciphertext_blob::Blob;
use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::KeySpec;

use crate::error::{CryptoError, KeyOperation};
use crate::root::{RootKeyError, RootKeyProvider};
use crate::secret::{KeyMaterial, SecretBytes};
use crate::symmetric::SymmetricKey;

/// Length of `SYMMETRIC_DEFAULT` material: a 256-bit key.
const SYMMETRIC_MATERIAL_LEN: usize = 32;

/// The secret material of one version of a KMS key, in its storage encoding (32 random bytes
/// for `SYMMETRIC_DEFAULT`): what the root key wraps. Zeroized on drop, never printed.
pub struct KeySecret {
    spec: KeySpec,
    bytes: SecretBytes,
}

impl KeySecret {
    /// Fresh material for a key of `spec`, every secret byte drawn from `rng`.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedKeySpec`] for a spec no kind of key handles yet.
    pub fn generate(spec: KeySpec, rng: &dyn Rng) -> Result<Self, CryptoError> {
        match spec {
            KeySpec::SymmetricDefault => {
                let mut bytes = SecretBytes::new(vec![0u8; SYMMETRIC_MATERIAL_LEN]);
                rng.fill(bytes.expose_secret_mut());
                Ok(Self { spec, bytes })
            }
            _ => Err(CryptoError::UnsupportedKeySpec(spec)),
        }
    }

    /// Material of `spec` as it was stored (after unwrapping); checked when it becomes a handle.
    pub fn from_bytes(spec: KeySpec, bytes: SecretBytes) -> Self {
        Self { spec, bytes }
    }

    /// Unwraps material that [`KeySecret::wrap`] wrapped with the same `aad`.
    ///
    /// # Errors
    /// [`RootKeyError::Unwrap`] when `wrapped` was not wrapped by this root key for `aad`.
    pub fn unwrap(spec: KeySpec, root: &dyn RootKeyProvider, aad: &[u8], wrapped: &[u8]) -> Result<Self, RootKeyError> {
        Ok(Self { spec, bytes: root.unwrap(aad, wrapped)? })
    }

    /// The material wrapped by `root`, binding `aad` (the key ARN and material id).
    ///
    /// # Errors
    /// [`RootKeyError`] when the root key cannot wrap.
    pub fn wrap(&self, root: &dyn RootKeyProvider, aad: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        root.wrap(aad, self.bytes.expose_secret())
    }

    /// The key spec the material is for.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The material in its storage encoding. Every read is greppable.
    pub fn expose_secret(&self) -> &[u8] {
        self.bytes.expose_secret()
    }
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySecret").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// What a handle holds, by kind of key. The one place a new kind is added.
enum Kind {
    /// `SYMMETRIC_DEFAULT`: AES-256-GCM ciphertext blobs.
    Symmetric(SymmetricKey),
}

/// One version of a KMS key's material, ready to use: set up once (when the key is loaded into
/// the cache or created), then shared by every request without allocation or locking.
pub struct KeyHandle {
    spec: KeySpec,
    key_id: KeyId,
    material_id: MaterialId,
    kind: Kind,
}

impl KeyHandle {
    /// Fresh material for a key of `spec` and the handle over it: the handle to use now, the
    /// secret to wrap and store.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedKeySpec`] for a spec no kind of key handles yet.
    pub fn generate(
        spec: KeySpec,
        key_id: KeyId,
        material_id: MaterialId,
        rng: &dyn Rng,
    ) -> Result<(Self, KeySecret), CryptoError> {
        let secret = KeySecret::generate(spec, rng)?;
        Ok((Self::from_secret(key_id, material_id, &secret)?, secret))
    }

    /// The handle over stored material of `spec` (unwrapped by the root key).
    ///
    /// # Errors
    /// [`CryptoError::KeyLength`] or [`CryptoError::InvalidKey`] when the bytes are not a key
    /// of `spec`; [`CryptoError::UnsupportedKeySpec`] for a spec no kind handles yet.
    pub fn from_material(
        spec: KeySpec,
        key_id: KeyId,
        material_id: MaterialId,
        material: SecretBytes,
    ) -> Result<Self, CryptoError> {
        Self::from_secret(key_id, material_id, &KeySecret::from_bytes(spec, material))
    }

    /// The handle over `secret` for version `material_id` of key `key_id`.
    ///
    /// # Errors
    /// As [`KeyHandle::from_material`].
    pub fn from_secret(key_id: KeyId, material_id: MaterialId, secret: &KeySecret) -> Result<Self, CryptoError> {
        let kind = match secret.spec {
            KeySpec::SymmetricDefault => {
                let material = KeyMaterial::from_slice(secret.expose_secret()).ok_or(CryptoError::KeyLength)?;
                Kind::Symmetric(SymmetricKey::new(key_id, material_id, material)?)
            }
            spec => return Err(CryptoError::UnsupportedKeySpec(spec)),
        };
        Ok(Self { spec: secret.spec, key_id, material_id, kind })
    }

    /// The key spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The key this material belongs to.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The material id.
    pub fn material_id(&self) -> MaterialId {
        self.material_id
    }

    /// Encrypts `plaintext` into a ciphertext blob bound to `context`; `rng` supplies the
    /// public per-blob randomness (salt and nonce).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for a kind of key that does not encrypt this way;
    /// [`CryptoError::Seal`] if the cipher refuses (not for inputs within KMS limits).
    #[inline]
    pub fn encrypt(
        &self,
        rng: &dyn Rng,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.kind {
            Kind::Symmetric(key) => key.seal(rng, context, plaintext),
        }
    }

    /// Decrypts a decoded ciphertext blob that names this key and material.
    ///
    /// # Errors
    /// [`CryptoError::Open`] when the blob was not sealed by this material with this context;
    /// [`CryptoError::UnsupportedOperation`] for a kind of key that does not decrypt blobs.
    #[inline]
    pub fn decrypt(&self, blob: &Blob<'_>, context: &EncryptionContext) -> Result<SecretBytes, CryptoError> {
        match &self.kind {
            Kind::Symmetric(key) => key.open(blob, context),
        }
    }

    /// The error for `operation` on a kind of key that does not have it.
    #[cfg_attr(not(test), expect(dead_code, reason = "the first kind without encrypt or decrypt uses it"))]
    fn unsupported(&self, operation: KeyOperation) -> CryptoError {
        CryptoError::UnsupportedOperation { spec: self.spec, operation }
    }
}

impl std::fmt::Debug for KeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyHandle")
            .field("spec", &self.spec)
            .field("key_id", &self.key_id)
            .field("material_id", &self.material_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SystemRng;

    const KEY: KeyId = KeyId::from_bytes([1; 16]);

    fn material(byte: u8) -> MaterialId {
        MaterialId::from_bytes([byte; 32])
    }

    #[test]
    fn generated_symmetric_handle_round_trips_and_reloads_from_its_secret() {
        let (handle, secret) = KeyHandle::generate(KeySpec::SymmetricDefault, KEY, material(2), &SystemRng).unwrap();
        assert_eq!(secret.expose_secret().len(), 32);
        assert_eq!(
            (handle.spec(), handle.key_id(), handle.material_id()),
            (KeySpec::SymmetricDefault, KEY, material(2))
        );
        let context = EncryptionContext::empty();
        let blob = handle.encrypt(&SystemRng, &context, b"hello").unwrap();
        let decoded = kms_core::ciphertext_blob::decode(&blob).unwrap();
        let reloaded = KeyHandle::from_material(
            KeySpec::SymmetricDefault,
            KEY,
            material(2),
            SecretBytes::new(secret.expose_secret().to_vec()),
        )
        .unwrap();
        assert_eq!(reloaded.decrypt(&decoded, &context).unwrap().expose_secret(), b"hello");
        let other = KeyHandle::from_secret(KEY, material(3), &secret).unwrap();
        assert_eq!(other.decrypt(&decoded, &context).unwrap_err(), CryptoError::Open, "another material id");
    }

    #[test]
    fn wrong_length_and_unsupported_specs_are_typed_errors() {
        let short =
            KeyHandle::from_material(KeySpec::SymmetricDefault, KEY, material(2), SecretBytes::new(vec![0; 31]));
        assert_eq!(short.unwrap_err(), CryptoError::KeyLength);
        for spec in [KeySpec::Rsa2048, KeySpec::Hmac256, KeySpec::EccNistP256, KeySpec::MlDsa44] {
            assert_eq!(KeySecret::generate(spec, &SystemRng).unwrap_err(), CryptoError::UnsupportedKeySpec(spec));
            let loaded = KeyHandle::from_material(spec, KEY, material(2), SecretBytes::new(vec![0; 32]));
            assert_eq!(loaded.unwrap_err(), CryptoError::UnsupportedKeySpec(spec));
        }
        let (handle, _) = KeyHandle::generate(KeySpec::SymmetricDefault, KEY, material(2), &SystemRng).unwrap();
        assert_eq!(handle.unsupported(KeyOperation::Decrypt).to_string(), "a SYMMETRIC_DEFAULT key cannot Decrypt");
    }

    #[test]
    fn debug_never_shows_material() {
        let secret = KeySecret::from_bytes(KeySpec::SymmetricDefault, SecretBytes::new(vec![0x41; 32]));
        let handle = KeyHandle::from_secret(KEY, material(2), &secret).unwrap();
        for text in [format!("{secret:?}"), format!("{handle:?}")] {
            assert!(!text.contains("41, 65") && !text.contains("4141"), "{text}");
        }
    }

    /// Wrapping goes through the root key with the caller's AAD; unwrapping gives back a
    /// secret that makes the same handle.
    #[test]
    fn wrap_unwrap_through_the_root_key() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::FileRootKey::create(&dir.path().join("root"), &SystemRng).unwrap();
        let (handle, secret) = KeyHandle::generate(KeySpec::SymmetricDefault, KEY, material(2), &SystemRng).unwrap();
        let wrapped = secret.wrap(&root, b"aad").unwrap();
        assert!(KeySecret::unwrap(KeySpec::SymmetricDefault, &root, b"other", &wrapped).is_err());
        let back = KeySecret::unwrap(KeySpec::SymmetricDefault, &root, b"aad", &wrapped).unwrap();
        assert_eq!(back.spec(), KeySpec::SymmetricDefault);
        let blob = handle.encrypt(&SystemRng, &EncryptionContext::empty(), b"x").unwrap();
        let reloaded = KeyHandle::from_secret(KEY, material(2), &back).unwrap();
        let decoded = kms_core::ciphertext_blob::decode(&blob).unwrap();
        assert_eq!(reloaded.decrypt(&decoded, &EncryptionContext::empty()).unwrap().expose_secret(), b"x");
    }
}
