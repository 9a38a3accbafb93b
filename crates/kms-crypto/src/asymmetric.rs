//! What the asymmetric kinds of key share: the hash of each signing algorithm, `DIGEST`
//! messages, SubjectPublicKeyInfo export, and the public-key-only operations
//! ([`verify_with_public_key`], [`encrypt_with_public_key`]) that pick a kind by algorithm.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use kms_core::key::{EncryptionAlgorithm, MessageType, SigningAlgorithm};

use crate::CryptoError;

/// The hash a signing algorithm applies to a `RAW` message, and so the digest a `DIGEST`
/// message must be; `None` for the algorithms without a caller-visible hash (pure Ed25519,
/// ML-DSA, and SM2DSA, whose digest is SM3(ZA ‖ M)).
pub(crate) fn message_digest(algorithm: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    use SigningAlgorithm as S;
    match algorithm {
        S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => Some(&digest::SHA256),
        S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => Some(&digest::SHA384),
        S::RsassaPssSha512 | S::RsassaPkcs1V15Sha512 | S::EcdsaSha512 | S::Ed25519PhSha512 => Some(&digest::SHA512),
        S::Sm2Dsa | S::MlDsaShake256 | S::Ed25519Sha512 => None,
    }
}

/// A caller's `DIGEST` message as a digest of `algorithm`'s hash.
///
/// # Errors
/// [`CryptoError::UnsupportedMessageType`] for an algorithm without a digest form;
/// [`CryptoError::DigestLength`] when `bytes` is not as long as the hash's output.
pub(crate) fn import_digest(algorithm: SigningAlgorithm, bytes: &[u8]) -> Result<digest::Digest, CryptoError> {
    let hash = message_digest(algorithm)
        .ok_or(CryptoError::UnsupportedMessageType { algorithm, message_type: MessageType::Digest })?;
    if bytes.len() != hash.output_len() {
        return Err(CryptoError::DigestLength { expected: hash.output_len() });
    }
    digest::Digest::import_less_safe(bytes, hash).map_err(|_| CryptoError::DigestLength { expected: hash.output_len() })
}

/// The error for a message type an algorithm does not take.
pub(crate) fn unsupported_message_type(algorithm: SigningAlgorithm, message_type: MessageType) -> CryptoError {
    CryptoError::UnsupportedMessageType { algorithm, message_type }
}

/// A public key's SubjectPublicKeyInfo DER from aws-lc-rs.
///
/// # Errors
/// [`CryptoError::InvalidKey`] if the library cannot encode it (not for a key it loaded).
pub(crate) fn spki_der(key: &impl AsDer<PublicKeyX509Der<'static>>) -> Result<Vec<u8>, CryptoError> {
    key.as_der().map(|der| der.as_ref().to_vec()).map_err(|_| CryptoError::InvalidKey)
}

/// Whether `signature` is `algorithm`'s signature of `message` (of `message_type`) under the
/// public key `spki_der` (a DER SubjectPublicKeyInfo, as GetPublicKey returns it). For
/// verifying outside a key: tests, clients, and keys whose private half is elsewhere.
///
/// # Errors
/// [`CryptoError::InvalidPublicKey`] when `spki_der` is not a public key of a kind that has
/// `algorithm`; [`CryptoError::UnsupportedMessageType`] and [`CryptoError::DigestLength`] for a
/// message the algorithm does not take. A signature that does not verify is `Ok(false)`.
pub fn verify_with_public_key(
    spki_der: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    use SigningAlgorithm as S;
    match algorithm {
        S::RsassaPssSha256
        | S::RsassaPssSha384
        | S::RsassaPssSha512
        | S::RsassaPkcs1V15Sha256
        | S::RsassaPkcs1V15Sha384
        | S::RsassaPkcs1V15Sha512 => {
            crate::rsa::RsaPublic::from_spki(spki_der)?.verify(algorithm, message_type, message, signature)
        }
        S::EcdsaSha256 | S::EcdsaSha384 | S::EcdsaSha512 => crate::ecc::EcPublic::from_spki_for(algorithm, spki_der)?
            .verify(algorithm, message_type, message, signature),
        S::Ed25519Sha512 | S::Ed25519PhSha512 => {
            crate::ed25519::Ed25519Public::from_spki(spki_der)?.verify(algorithm, message_type, message, signature)
        }
        S::MlDsaShake256 => {
            crate::ml_dsa::MlDsaPublic::from_spki(spki_der)?.verify(algorithm, message_type, message, signature)
        }
        S::Sm2Dsa => crate::sm2::Sm2Public::from_spki(spki_der)?.verify(algorithm, message_type, message, signature),
    }
}

/// `plaintext` encrypted with `algorithm` to the public key `spki_der` (a DER
/// SubjectPublicKeyInfo): what a client does with the output of GetPublicKey, so that only
/// Decrypt with the KMS key can read it.
///
/// # Errors
/// [`CryptoError::InvalidPublicKey`] when `spki_der` is not a public key of a kind that has
/// `algorithm` (RSA for OAEP, SM2 for SM2PKE; `SYMMETRIC_DEFAULT` has no public key);
/// [`CryptoError::PlaintextTooLong`] past the key's limit; [`CryptoError::Seal`] if the
/// library refuses.
pub fn encrypt_with_public_key(
    spki_der: &[u8],
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match algorithm {
        EncryptionAlgorithm::RsaesOaepSha1 | EncryptionAlgorithm::RsaesOaepSha256 => {
            crate::rsa::RsaPublic::from_spki(spki_der)?.encrypt(algorithm, plaintext)
        }
        EncryptionAlgorithm::Sm2Pke => crate::sm2::Sm2Public::from_spki(spki_der)?.encrypt(plaintext),
        EncryptionAlgorithm::SymmetricDefault => Err(CryptoError::InvalidPublicKey),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn digest_lengths_are_checked() {
        assert_eq!(import_digest(SigningAlgorithm::EcdsaSha384, &[0; 48]).unwrap().as_ref(), [0; 48]);
        assert_eq!(
            import_digest(SigningAlgorithm::RsassaPssSha256, &[0; 48]).unwrap_err(),
            CryptoError::DigestLength { expected: 32 }
        );
        assert_eq!(
            import_digest(SigningAlgorithm::Ed25519Sha512, &[0; 64]).unwrap_err(),
            CryptoError::UnsupportedMessageType {
                algorithm: SigningAlgorithm::Ed25519Sha512,
                message_type: MessageType::Digest
            }
        );
        assert!(verify_with_public_key(b"junk", SigningAlgorithm::EcdsaSha256, MessageType::Raw, b"m", b"s").is_err());
        assert_eq!(
            encrypt_with_public_key(b"junk", EncryptionAlgorithm::SymmetricDefault, b"m").unwrap_err(),
            CryptoError::InvalidPublicKey
        );
    }
}
