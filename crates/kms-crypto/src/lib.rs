//! ferrokms cryptography.
//!
//! AES-256-GCM on aws-lc-rs for KMS keys' material and for wrapping everything under the root
//! key; secret-holding types that zeroize on drop and never print their contents; the system
//! CSPRNG; and the [`RootKeyProvider`] abstraction (a key file today, a passphrase or an HSM
//! later). It knows nothing of HTTP or storage.

mod mac;
mod rng;
mod root;
mod secret;
mod symmetric;

pub use mac::{MacKey, TAG_LEN as MAC_TAG_LEN};
pub use rng::{PublicRandom, SystemRng};
pub use root::{FileRootKey, RootKeyError, RootKeyProvider};
pub use secret::{KeyMaterial, SecretBytes};
pub use symmetric::{CryptoError, SymmetricKey};

/// Fills a fresh array with random bytes from `rng`.
pub fn random_array<const N: usize>(rng: &dyn kms_core::Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}
