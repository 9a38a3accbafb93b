//! Key material a caller imports (AWS's GetParametersForImport and ImportKeyMaterial): the
//! material arrives wrapped with the public half of an RSA wrapping key the service made for
//! the import, and is unwrapped here with the private half.
//!
//! - `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the material itself, RSA-OAEP-encrypted (room for
//!   symmetric and HMAC material).
//! - `RSA_AES_KEY_WRAP_SHA_1` / `RSA_AES_KEY_WRAP_SHA_256`: an ephemeral AES-256 key
//!   RSA-OAEP-encrypted (as many bytes as the modulus), followed by the material wrapped with
//!   that key by AES key wrap with padding (RFC 5649), which fits asymmetric private keys.

use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{EncryptionAlgorithm, KeySpec};

use crate::error::{CryptoError, KeyOperation};
use crate::key::KeyHandle;
use crate::secret::SecretBytes;

/// How imported material is wrapped (AWS's `WrappingAlgorithm`, without the PKCS#1 v1.5 form
/// AWS no longer offers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    /// `RSAES_OAEP_SHA_1`.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`.
    RsaesOaepSha256,
    /// `RSA_AES_KEY_WRAP_SHA_1`.
    RsaAesKeyWrapSha1,
    /// `RSA_AES_KEY_WRAP_SHA_256`.
    RsaAesKeyWrapSha256,
    /// `SM2PKE` (China regions): the material SM2-encrypted with an SM2 wrapping key.
    Sm2Pke,
}

impl WrappingAlgorithm {
    /// The algorithm named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RSAES_OAEP_SHA_1" => Self::RsaesOaepSha1,
            "RSAES_OAEP_SHA_256" => Self::RsaesOaepSha256,
            "RSA_AES_KEY_WRAP_SHA_1" => Self::RsaAesKeyWrapSha1,
            "RSA_AES_KEY_WRAP_SHA_256" => Self::RsaAesKeyWrapSha256,
            "SM2PKE" => Self::Sm2Pke,
            _ => return None,
        })
    }

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            Self::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
            Self::Sm2Pke => "SM2PKE",
        }
    }

    /// The public-key encryption of the wrapping key's part.
    const fn asymmetric(self) -> EncryptionAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => EncryptionAlgorithm::RsaesOaepSha1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => EncryptionAlgorithm::RsaesOaepSha256,
            Self::Sm2Pke => EncryptionAlgorithm::Sm2Pke,
        }
    }

    /// Whether the wrapping key of `spec` (an RSA size, or SM2) takes this algorithm.
    pub const fn fits(self, spec: KeySpec) -> bool {
        matches!(
            (self, spec),
            (Self::Sm2Pke, KeySpec::Sm2)
                | (
                    Self::RsaesOaepSha1 | Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256,
                    KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096,
                )
        )
    }

    /// Whether the material follows an RSA-wrapped AES key.
    const fn with_aes_key_wrap(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }
}

/// The id of imported `material` in key `key_id` (AWS's `KeyMaterialId`: 64 hex digits): the
/// same material imported into the same key (or into its multi-Region replicas, which share its
/// id) has the same id, so reimported material is recognized, while the id reveals nothing of
/// the material (an HMAC keyed by it).
pub fn imported_material_id(key_id: KeyId, material: &[u8]) -> MaterialId {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, material);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(b"ferrokms imported key material id v1\0");
    ctx.update(key_id.as_bytes());
    let tag = ctx.sign();
    let mut id = [0u8; 32];
    id.copy_from_slice(tag.as_ref());
    MaterialId::from_bytes(id)
}

/// Wraps `material` as a caller does before ImportKeyMaterial (the inverse of
/// [`unwrap_imported_material`]): with the wrapping public key `spki_der` (GetParametersForImport's
/// `PublicKey`) and `algorithm`; the `RSA_AES_KEY_WRAP` algorithms draw their ephemeral AES key
/// from `rng`. `ferrokms seed` imports development key material with it.
///
/// # Errors
/// [`CryptoError::InvalidPublicKey`] for a public key that does not fit the algorithm;
/// [`CryptoError::Seal`] when the material is too long for RSA-OAEP alone.
pub fn wrap_for_import(
    spki_der: &[u8],
    algorithm: WrappingAlgorithm,
    material: &[u8],
    rng: &dyn kms_core::Rng,
) -> Result<Vec<u8>, CryptoError> {
    if !algorithm.with_aes_key_wrap() {
        return crate::asymmetric::encrypt_with_public_key(spki_der, algorithm.asymmetric(), material);
    }
    let mut aes_key = SecretBytes::new(vec![0u8; AES_KEY_LEN]);
    rng.fill(aes_key.expose_secret_mut());
    let kek = AesKek::new(&AES_256, aes_key.expose_secret()).map_err(|_| CryptoError::Seal)?;
    // Padding to a multiple of 8 bytes plus the 8-byte integrity block.
    let mut wrapped = vec![0u8; material.len() + 16];
    let len = kek.wrap_with_padding(material, &mut wrapped).map_err(|_| CryptoError::Seal)?.len();
    wrapped.truncate(len);
    let mut out =
        crate::asymmetric::encrypt_with_public_key(spki_der, algorithm.asymmetric(), aes_key.expose_secret())?;
    out.extend_from_slice(&wrapped);
    Ok(out)
}

/// Length of the ephemeral AES key of the `RSA_AES_KEY_WRAP` algorithms.
const AES_KEY_LEN: usize = 32;

/// Unwraps `wrapped` (AWS's `EncryptedKeyMaterial`) with `wrapping_key`, the RSA or SM2 key
/// pair made for this import.
///
/// # Errors
/// [`CryptoError::Open`] when the bytes were not wrapped with this key and algorithm;
/// [`CryptoError::UnsupportedOperation`] when the wrapping key is not an RSA key.
pub fn unwrap_imported_material(
    wrapping_key: &KeyHandle,
    algorithm: WrappingAlgorithm,
    wrapped: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if !algorithm.with_aes_key_wrap() {
        return wrapping_key.decrypt_asymmetric(algorithm.asymmetric(), wrapped);
    }
    let modulus_len = match wrapping_key.spec() {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        spec => return Err(CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Decrypt }),
    };
    let (rsa_part, wrapped_material) = wrapped.split_at_checked(modulus_len).ok_or(CryptoError::Open)?;
    let aes_key = wrapping_key.decrypt_asymmetric(algorithm.asymmetric(), rsa_part)?;
    if aes_key.expose_secret().len() != AES_KEY_LEN {
        return Err(CryptoError::Open);
    }
    let kek = AesKek::new(&AES_256, aes_key.expose_secret()).map_err(|_| CryptoError::Open)?;
    let mut out = SecretBytes::new(vec![0u8; wrapped_material.len()]);
    let len = kek.unwrap_with_padding(wrapped_material, out.expose_secret_mut()).map_err(|_| CryptoError::Open)?.len();
    Ok(SecretBytes::new(out.expose_secret().get(..len).ok_or(CryptoError::Open)?.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn material_ids_follow_the_key_and_the_material() {
        let (a, b) = (KeyId::from_bytes([1; 16]), KeyId::from_bytes([2; 16]));
        let id = imported_material_id(a, &[7; 32]);
        assert_eq!(id, imported_material_id(a, &[7; 32]));
        assert_ne!(id, imported_material_id(b, &[7; 32]));
        assert_ne!(id, imported_material_id(a, &[8; 32]));
        assert_eq!(id.to_string().len(), 64);
    }

    #[test]
    fn material_wrapped_for_import_unwraps_with_the_private_key() {
        let secret = crate::KeySecret::generate(KeySpec::Rsa2048, &crate::SystemRng).unwrap();
        let wrapping =
            KeyHandle::from_secret(KeyId::from_bytes([0; 16]), MaterialId::from_bytes([0; 32]), &secret).unwrap();
        let public = wrapping.public_key_der().unwrap().to_vec();
        let long = vec![7u8; 1217];
        for (algorithm, material) in [
            (WrappingAlgorithm::RsaesOaepSha256, &[9u8; 32][..]),
            (WrappingAlgorithm::RsaAesKeyWrapSha1, &long[..]),
            (WrappingAlgorithm::RsaAesKeyWrapSha256, &long[..]),
        ] {
            let wrapped = wrap_for_import(&public, algorithm, material, &crate::SystemRng).unwrap();
            let unwrapped = unwrap_imported_material(&wrapping, algorithm, &wrapped).unwrap();
            assert_eq!(unwrapped.expose_secret(), material, "{algorithm:?}");
        }
        assert!(wrap_for_import(&public, WrappingAlgorithm::RsaesOaepSha256, &long, &crate::SystemRng).is_err());
    }

    #[test]
    fn wrapping_algorithms_fit_their_key_specs() {
        for name in ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"] {
            let algorithm = WrappingAlgorithm::parse(name).unwrap_or(WrappingAlgorithm::Sm2Pke);
            assert_eq!(algorithm.as_str(), name);
            assert!(algorithm.fits(KeySpec::Rsa3072) && !algorithm.fits(KeySpec::Sm2));
        }
        assert!(WrappingAlgorithm::Sm2Pke.fits(KeySpec::Sm2) && !WrappingAlgorithm::Sm2Pke.fits(KeySpec::Rsa2048));
        assert_eq!(WrappingAlgorithm::parse("RSAES_PKCS1_V1_5"), None);
    }
}
