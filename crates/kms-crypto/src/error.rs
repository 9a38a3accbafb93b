//! The one error type of kms-crypto's key operations.

use kms_core::key::KeySpec;

/// An operation a key handle may be asked to perform. A kind of key that does not have it
/// answers [`CryptoError::UnsupportedOperation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOperation {
    /// Encrypt (`Encrypt`, `GenerateDataKey*`, `ReEncrypt`'s second half).
    Encrypt,
    /// Decrypt (`Decrypt`, `ReEncrypt`'s first half).
    Decrypt,
}

impl KeyOperation {
    /// The operation's name, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
        }
    }
}

/// Failures of key operations. Callers map every `Open` to `InvalidCiphertextException`; the
/// others are internal failures (or, for the `Unsupported…` variants, a request the service
/// should have refused before reaching the key).
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
}
