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
use kms_core::key::{EncryptionAlgorithm, KeySpec};

use crate::error::{CryptoError, KeyOperation};
use crate::key::KeyHandle;
use crate::secret::SecretBytes;

/// How imported material is wrapped (AWS's `WrappingAlgorithm`, without the PKCS#1 v1.5 and SM2
/// forms AWS no longer offers or offers only in China regions).
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
}

impl WrappingAlgorithm {
    /// The algorithm named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RSAES_OAEP_SHA_1" => Self::RsaesOaepSha1,
            "RSAES_OAEP_SHA_256" => Self::RsaesOaepSha256,
            "RSA_AES_KEY_WRAP_SHA_1" => Self::RsaAesKeyWrapSha1,
            "RSA_AES_KEY_WRAP_SHA_256" => Self::RsaAesKeyWrapSha256,
            _ => return None,
        })
    }

    /// The RSA-OAEP scheme of the RSA part.
    const fn oaep(self) -> EncryptionAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => EncryptionAlgorithm::RsaesOaepSha1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => EncryptionAlgorithm::RsaesOaepSha256,
        }
    }

    /// Whether the material follows an RSA-wrapped AES key.
    const fn with_aes_key_wrap(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }
}

/// Length of the ephemeral AES key of the `RSA_AES_KEY_WRAP` algorithms.
const AES_KEY_LEN: usize = 32;

/// Unwraps `wrapped` (AWS's `EncryptedKeyMaterial`) with `wrapping_key`, an RSA key pair of
/// usage ENCRYPT_DECRYPT made for this import.
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
        return wrapping_key.decrypt_asymmetric(algorithm.oaep(), wrapped);
    }
    let modulus_len = match wrapping_key.spec() {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        spec => return Err(CryptoError::UnsupportedOperation { spec, operation: KeyOperation::Decrypt }),
    };
    let (rsa_part, wrapped_material) = wrapped.split_at_checked(modulus_len).ok_or(CryptoError::Open)?;
    let aes_key = wrapping_key.decrypt_asymmetric(algorithm.oaep(), rsa_part)?;
    if aes_key.expose_secret().len() != AES_KEY_LEN {
        return Err(CryptoError::Open);
    }
    let kek = AesKek::new(&AES_256, aes_key.expose_secret()).map_err(|_| CryptoError::Open)?;
    let mut out = SecretBytes::new(vec![0u8; wrapped_material.len()]);
    let len = kek.unwrap_with_padding(wrapped_material, out.expose_secret_mut()).map_err(|_| CryptoError::Open)?.len();
    Ok(SecretBytes::new(out.expose_secret().get(..len).ok_or(CryptoError::Open)?.to_vec()))
}
