//! The one error type of kms-crypto's key operations.

use kms_core::key::{KeySpec, MessageType, SigningAlgorithm};

/// An operation a key handle may be asked to perform. A kind of key that does not have it
/// answers [`CryptoError::UnsupportedOperation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOperation {
    /// Encrypt (`Encrypt`, `GenerateDataKey*`, `ReEncrypt`'s second half).
    Encrypt,
    /// Decrypt (`Decrypt`, `ReEncrypt`'s first half).
    Decrypt,
    /// Sign (`Sign`).
    Sign,
    /// Verify (`Verify`).
    Verify,
    /// Make a MAC (`GenerateMac`).
    GenerateMac,
    /// Check a MAC (`VerifyMac`).
    VerifyMac,
    /// ECDH with a peer's public key (`DeriveSharedSecret`).
    DeriveSharedSecret,
    /// Export the public key (`GetPublicKey`).
    GetPublicKey,
}

impl KeyOperation {
    /// The operation's name, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
            Self::GenerateMac => "GenerateMac",
            Self::VerifyMac => "VerifyMac",
            Self::DeriveSharedSecret => "DeriveSharedSecret",
            Self::GetPublicKey => "GetPublicKey",
        }
    }
}

/// Failures of key operations. Callers map every `Open` to `InvalidCiphertextException`;
/// `DigestLength`, `UnsupportedMessageType`, `PlaintextTooLong`, `InvalidPeerKey` and
/// `InvalidPublicKey` are the caller's input (`ValidationException` or
/// `InvalidKeyUsageException`); the others are internal failures (or, for the `Unsupported…`
/// variants, a request the service should have refused before reaching the key).
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
    /// Key material that is not a valid key of its kind (a malformed private key document).
    #[error("key material is not a valid key")]
    InvalidKey,
    /// No key of this spec can be generated or loaded (yet).
    #[error("key spec {} is not supported", .0.as_str())]
    UnsupportedKeySpec(KeySpec),
    /// A key of this spec does not have this operation (signing with an AES key, say).
    #[error("a {} key cannot {}", spec.as_str(), operation.as_str())]
    UnsupportedOperation {
        /// The key's spec.
        spec: KeySpec,
        /// What it was asked to do.
        operation: KeyOperation,
    },
    /// The message type does not go with the signing algorithm (`DIGEST` for pure Ed25519 or
    /// ML-DSA, `EXTERNAL_MU` for anything but ML-DSA).
    #[error("{} cannot sign or verify a message of type {}", algorithm.as_str(), message_type.as_str())]
    UnsupportedMessageType {
        /// The signing algorithm.
        algorithm: SigningAlgorithm,
        /// The message type it was given.
        message_type: MessageType,
    },
    /// A `DIGEST` (or `EXTERNAL_MU`) message whose length is not the digest's.
    #[error("the digest must be {expected} bytes long")]
    DigestLength {
        /// The length the algorithm's digest has.
        expected: usize,
    },
    /// The plaintext is longer than the key and algorithm can encrypt.
    #[error("the plaintext is longer than {max} bytes")]
    PlaintextTooLong {
        /// The longest plaintext the key and algorithm encrypt.
        max: usize,
    },
    /// A peer public key for key agreement that is not a DER SubjectPublicKeyInfo of the key's
    /// curve.
    #[error("the peer public key is not a DER SubjectPublicKeyInfo of the key's curve")]
    InvalidPeerKey,
    /// A public key that is not a DER SubjectPublicKeyInfo of a kind that has the algorithm.
    #[error("the public key is not a DER SubjectPublicKeyInfo for the algorithm")]
    InvalidPublicKey,
    /// The library refused to sign (cannot happen for a valid key and in-range input).
    #[error("the signer failed")]
    Sign,
}
