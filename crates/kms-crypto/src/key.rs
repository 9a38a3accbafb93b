//! The key handle: one version of a KMS key's material, of any kind, ready to use.
//!
//! [`KeyHandle`] is the only thing that knows what a key's material is. The cache, CreateKey,
//! rotation and the data-plane handlers hold handles and [`KeySecret`]s without looking inside:
//! they ask a handle to encrypt, decrypt, sign, verify, make or check a MAC, derive a shared
//! secret or export its public key, and a kind of key that does not have an operation (or an
//! algorithm) answers [`CryptoError::UnsupportedOperation`].
//!
//! Every AWS key spec has a kind: a variant of `Kind` (one module each: `symmetric`,
//! `hmac_key`, `rsa`, `ecc`, `ed25519`, `ml_dsa`, `sm2`), its arms in [`KeySecret::generate`]
//! and `Kind::new` (how its material is generated and what its storage encoding is — the raw
//! key for HMAC, PKCS#8 for the asymmetric kinds), and the operations it has. Every match is
//! exhaustive, so a new spec in kms-core does not compile until it has a kind here.

use kms_core::Rng;
use kms_core::ciphertext_blob::Blob;
use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{
    DataKeyPairSpec, EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm,
};

use crate::ecc::{EcPublic, EccKey};
use crate::ed25519::{Ed25519Key, Ed25519Public};
use crate::error::{CryptoError, KeyOperation};
use crate::hmac_key::HmacKey;
use crate::ml_dsa::{MlDsaKey, MlDsaPublic};
use crate::root::{RootKeyError, RootKeyProvider};
use crate::rsa::{RsaKey, RsaPublic};
use crate::secret::{KeyMaterial, SecretBytes};
use crate::sm2::{Sm2Key, Sm2Public};
use crate::symmetric::SymmetricKey;

/// Length of `SYMMETRIC_DEFAULT` material: a 256-bit key.
const SYMMETRIC_MATERIAL_LEN: usize = 32;

/// The secret material of one version of a KMS key, in its storage encoding (32 random bytes
/// for `SYMMETRIC_DEFAULT`, the raw key for `HMAC_*`, a PKCS#8 document for every asymmetric
/// spec): what the root key wraps. Zeroized on drop, never printed.
pub struct KeySecret {
    spec: KeySpec,
    bytes: SecretBytes,
}

impl KeySecret {
    /// Fresh material for a key of `spec`. Every secret byte is drawn from `rng` except for
    /// RSA, whose keys aws-lc-rs generates only from its own CSPRNG (docs/adr/0013).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] if the library fails to make a key (or `rng` keeps
    /// returning out-of-range scalars).
    pub fn generate(spec: KeySpec, rng: &dyn Rng) -> Result<Self, CryptoError> {
        let bytes = match spec {
            KeySpec::SymmetricDefault => {
                let mut bytes = SecretBytes::new(vec![0u8; SYMMETRIC_MATERIAL_LEN]);
                rng.fill(bytes.expose_secret_mut());
                bytes
            }
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => HmacKey::generate(spec, rng)?,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => RsaKey::generate(spec)?,
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::EccSecgP256k1 => {
                EccKey::generate(spec, rng)?
            }
            KeySpec::EccNistEdwards25519 => Ed25519Key::generate(rng)?,
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => MlDsaKey::generate(spec, rng)?,
            KeySpec::Sm2 => Sm2Key::generate(rng)?,
        };
        Ok(Self { spec, bytes })
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
    /// `HMAC_*`: GenerateMac and VerifyMac.
    Hmac(HmacKey),
    /// `RSA_*`: signatures and OAEP.
    Rsa(RsaKey),
    /// NIST P-curves and secp256k1: ECDSA, and ECDH on the NIST curves.
    Ecc(EccKey),
    /// Ed25519 and Ed25519ph.
    Ed25519(Ed25519Key),
    /// ML-DSA.
    MlDsa(MlDsaKey),
    /// SM2: SM2DSA, SM2PKE and ECDH.
    Sm2(Sm2Key),
}

impl Kind {
    /// Parses stored material of `spec` (once: the handle keeps the parsed key).
    fn new(spec: KeySpec, material: &[u8]) -> Result<Self, CryptoError> {
        Ok(match spec {
            // Symmetric keys bind their key and material ids; `KeyHandle::from_secret` makes them.
            KeySpec::SymmetricDefault => return Err(CryptoError::UnsupportedKeySpec(spec)),
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                Self::Hmac(HmacKey::new(spec, material)?)
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => Self::Rsa(RsaKey::from_pkcs8(spec, material)?),
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::EccSecgP256k1 => {
                Self::Ecc(EccKey::from_pkcs8(spec, material)?)
            }
            KeySpec::EccNistEdwards25519 => Self::Ed25519(Ed25519Key::from_pkcs8(material)?),
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
                Self::MlDsa(MlDsaKey::from_pkcs8(spec, material)?)
            }
            KeySpec::Sm2 => Self::Sm2(Sm2Key::from_pkcs8(material)?),
        })
    }

    /// The public half of an asymmetric key.
    fn public(&self) -> Option<Public<'_>> {
        match self {
            Self::Symmetric(_) | Self::Hmac(_) => None,
            Self::Rsa(key) => Some(Public::Rsa(key.public())),
            Self::Ecc(key) => Some(Public::Ecc(key.public())),
            Self::Ed25519(key) => Some(Public::Ed25519(key.public())),
            Self::MlDsa(key) => Some(Public::MlDsa(key.public())),
            Self::Sm2(key) => Some(Public::Sm2(key.public())),
        }
    }
}

/// The public half of an asymmetric key, by kind.
#[derive(Clone, Copy)]
enum Public<'a> {
    Rsa(&'a RsaPublic),
    Ecc(&'a EcPublic),
    Ed25519(&'a Ed25519Public),
    MlDsa(&'a MlDsaPublic),
    Sm2(&'a Sm2Public),
}

impl<'a> Public<'a> {
    fn spki_der(self) -> &'a [u8] {
        match self {
            Self::Rsa(key) => key.spki_der(),
            Self::Ecc(key) => key.spki_der(),
            Self::Ed25519(key) => key.spki_der(),
            Self::MlDsa(key) => key.spki_der(),
            Self::Sm2(key) => key.spki_der(),
        }
    }

    fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        match self {
            Self::Rsa(key) => key.verify(algorithm, message_type, message, signature),
            Self::Ecc(key) => key.verify(algorithm, message_type, message, signature),
            Self::Ed25519(key) => key.verify(algorithm, message_type, message, signature),
            Self::MlDsa(key) => key.verify(algorithm, message_type, message, signature),
            Self::Sm2(key) => key.verify(algorithm, message_type, message, signature),
        }
    }
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
    /// As [`KeySecret::generate`].
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
    /// of `spec` (a 32-byte AES key, an HMAC key of an accepted length, a PKCS#8 document of the
    /// spec's algorithm, curve or size).
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
            spec => Kind::new(spec, secret.expose_secret())?,
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
            _ => Err(self.unsupported(KeyOperation::Encrypt)),
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
            _ => Err(self.unsupported(KeyOperation::Decrypt)),
        }
    }

    /// The signature of `message` (or of the digest or μ it is, per `message_type`) with
    /// `algorithm`: DER for ECDSA and SM2DSA, 64 bytes for Ed25519, the modulus length for RSA,
    /// the parameter set's length for ML-DSA.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] when the key cannot sign or not with `algorithm`
    /// (`InvalidKeyUsageException`); [`CryptoError::UnsupportedMessageType`] and
    /// [`CryptoError::DigestLength`] for a message the algorithm does not take
    /// (`ValidationException`); [`CryptoError::Sign`] if the library fails.
    pub fn sign(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.kind {
            Kind::Rsa(key) => key.sign(algorithm, message_type, message),
            Kind::Ecc(key) => key.sign(algorithm, message_type, message),
            Kind::Ed25519(key) => key.sign(algorithm, message_type, message),
            Kind::MlDsa(key) => key.sign(algorithm, message_type, message),
            Kind::Sm2(key) => key.sign(algorithm, message_type, message),
            Kind::Symmetric(_) | Kind::Hmac(_) => Err(self.unsupported(KeyOperation::Sign)),
        }
    }

    /// Whether `signature` is the key's `algorithm` signature of `message`. A signature that
    /// does not verify (including a malformed one) is `Ok(false)` (`KMSInvalidSignatureException`).
    ///
    /// # Errors
    /// As [`KeyHandle::sign`], with [`KeyOperation::Verify`].
    pub fn verify(
        &self,
        algorithm: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        let public = self.kind.public().ok_or_else(|| self.unsupported(KeyOperation::Verify))?;
        public.verify(algorithm, message_type, message, signature)
    }

    /// The public key as a DER SubjectPublicKeyInfo (GetPublicKey's `PublicKey`).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for symmetric and HMAC keys
    /// (`UnsupportedOperationException`).
    pub fn public_key_der(&self) -> Result<&[u8], CryptoError> {
        let public = self.kind.public().ok_or_else(|| self.unsupported(KeyOperation::GetPublicKey))?;
        Ok(public.spki_der())
    }

    /// The MAC of `message` with `algorithm`.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for a key that is not an HMAC key or whose
    /// algorithm is another (`InvalidKeyUsageException`).
    pub fn generate_mac(&self, algorithm: MacAlgorithm, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.kind {
            Kind::Hmac(key) => key.generate_mac(algorithm, message),
            _ => Err(self.unsupported(KeyOperation::GenerateMac)),
        }
    }

    /// Whether `mac` is the MAC of `message`, compared in constant time (`false` is
    /// `KMSInvalidMacException`).
    ///
    /// # Errors
    /// As [`KeyHandle::generate_mac`], with [`KeyOperation::VerifyMac`].
    pub fn verify_mac(&self, algorithm: MacAlgorithm, message: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
        match &self.kind {
            Kind::Hmac(key) => key.verify_mac(algorithm, message, mac),
            _ => Err(self.unsupported(KeyOperation::VerifyMac)),
        }
    }

    /// The raw ECDH shared secret with the peer's public key (a DER SubjectPublicKeyInfo on the
    /// key's curve), as DeriveSharedSecret returns it.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for a key without key agreement
    /// (`InvalidKeyUsageException`); [`CryptoError::InvalidPeerKey`] for a peer key that is not
    /// SubjectPublicKeyInfo DER on the key's curve (`ValidationException`).
    pub fn derive_shared_secret(
        &self,
        algorithm: KeyAgreementAlgorithm,
        peer_public_key_der: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        match &self.kind {
            Kind::Ecc(key) => key.derive_shared_secret(algorithm, peer_public_key_der),
            Kind::Sm2(key) => key.derive_shared_secret(algorithm, peer_public_key_der),
            _ => Err(self.unsupported(KeyOperation::DeriveSharedSecret)),
        }
    }

    /// `plaintext` encrypted with an RSA (OAEP) or SM2 (SM2PKE) key's public half: the raw
    /// ciphertext Encrypt returns for those keys (no ferrokms blob around it). Randomness comes
    /// from the library (docs/adr/0013).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for another kind of key or algorithm
    /// (`InvalidKeyUsageException`); [`CryptoError::PlaintextTooLong`] past the key's limit
    /// (`ValidationException`); [`CryptoError::Seal`] if the library fails.
    pub fn encrypt_asymmetric(&self, algorithm: EncryptionAlgorithm, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.kind {
            Kind::Rsa(key) => key.public().encrypt(algorithm, plaintext),
            Kind::Sm2(key) if algorithm == EncryptionAlgorithm::Sm2Pke => key.public().encrypt(plaintext),
            _ => Err(self.unsupported(KeyOperation::Encrypt)),
        }
    }

    /// Decrypts what [`KeyHandle::encrypt_asymmetric`] (or anyone with the public key)
    /// encrypted.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedOperation`] for another kind of key or algorithm;
    /// [`CryptoError::Open`] when the ciphertext does not decrypt (`InvalidCiphertextException`).
    pub fn decrypt_asymmetric(
        &self,
        algorithm: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        match &self.kind {
            Kind::Rsa(key) => key.decrypt(algorithm, ciphertext),
            Kind::Sm2(key) if algorithm == EncryptionAlgorithm::Sm2Pke => key.decrypt(ciphertext),
            _ => Err(self.unsupported(KeyOperation::Decrypt)),
        }
    }

    /// The error for `operation` on a kind of key that does not have it.
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

/// A fresh data key pair for GenerateDataKeyPair: the private key as PKCS#8 DER and the
/// public key as SubjectPublicKeyInfo DER. Secret bytes come from `rng` as in
/// [`KeySecret::generate`] (RSA from aws-lc's own generator).
///
/// # Errors
/// [`CryptoError::InvalidKey`] if the library fails to make or encode the key.
pub fn generate_key_pair(spec: DataKeyPairSpec, rng: &dyn Rng) -> Result<(SecretBytes, Vec<u8>), CryptoError> {
    let secret = KeySecret::generate(spec.key_spec(), rng)?;
    let kind = Kind::new(secret.spec, secret.expose_secret())?;
    // INVARIANT: every data key pair spec is an asymmetric key spec, so the kind has a public
    // half; the error is unreachable but typed.
    let public = kind.public().ok_or(CryptoError::UnsupportedKeySpec(secret.spec))?.spki_der().to_vec();
    Ok((secret.bytes.clone(), public))
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
    fn wrong_length_and_malformed_material_are_typed_errors() {
        let short =
            KeyHandle::from_material(KeySpec::SymmetricDefault, KEY, material(2), SecretBytes::new(vec![0; 31]));
        assert_eq!(short.unwrap_err(), CryptoError::KeyLength);
        for spec in
            [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::MlDsa44, KeySpec::Sm2, KeySpec::EccNistEdwards25519]
        {
            let loaded = KeyHandle::from_material(spec, KEY, material(2), SecretBytes::new(vec![0; 32]));
            assert_eq!(loaded.unwrap_err(), CryptoError::InvalidKey, "{spec:?}");
        }
        let hmac = KeyHandle::from_material(KeySpec::Hmac384, KEY, material(2), SecretBytes::new(vec![0; 32]));
        assert_eq!(hmac.unwrap_err(), CryptoError::KeyLength);
        let (handle, _) = KeyHandle::generate(KeySpec::SymmetricDefault, KEY, material(2), &SystemRng).unwrap();
        assert_eq!(handle.unsupported(KeyOperation::Decrypt).to_string(), "a SYMMETRIC_DEFAULT key cannot Decrypt");
        assert_eq!(
            handle.sign(SigningAlgorithm::EcdsaSha256, MessageType::Raw, b"m").unwrap_err(),
            CryptoError::UnsupportedOperation { spec: KeySpec::SymmetricDefault, operation: KeyOperation::Sign }
        );
        assert!(handle.public_key_der().is_err());
    }

    /// Fills with a counter that starts at the seed: a seeded, repeatable generator.
    struct Seeded(std::sync::atomic::AtomicU8);

    impl Rng for Seeded {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Every spec but RSA takes its secret from the injected generator: the same seed gives
    /// the same material (and so the same public key). RSA keys come from aws-lc's own CSPRNG
    /// (checked on RSA_2048 only: the larger sizes take the same path, slowly in debug builds).
    #[test]
    fn material_comes_from_the_injected_rng() {
        let slow = [KeySpec::Rsa3072, KeySpec::Rsa4096];
        for spec in KeySpec::ALL.iter().map(|name| KeySpec::parse(name).unwrap()).filter(|s| !slow.contains(s)) {
            let first = KeySecret::generate(spec, &Seeded(1.into())).unwrap();
            let again = KeySecret::generate(spec, &Seeded(1.into())).unwrap();
            let other = KeySecret::generate(spec, &Seeded(2.into())).unwrap();
            let rsa = matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096);
            assert_eq!(first.expose_secret() == again.expose_secret(), !rsa, "{spec:?}");
            assert_ne!(first.expose_secret(), other.expose_secret(), "{spec:?}");
        }
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
