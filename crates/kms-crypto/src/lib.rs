//! ferrokms cryptography: the only crate that names the crypto library (aws-lc-rs).
//!
//! The [`KeyHandle`]: one version of a KMS key's material of any kind, which generates, is
//! wrapped and unwrapped by the root key (as a [`KeySecret`]), and performs the key's
//! operations (AES-256-GCM ciphertext blobs today). Generic primitives for the other crates:
//! SHA-256 ([`digest`]), HMAC-SHA-256 ([`MacKey`]), Ed25519 ([`signing`]) and, with the `tls`
//! feature, the rustls crypto provider. Secret-holding types that zeroize on drop and never
//! print their contents; the system CSPRNG; and the [`RootKeyProvider`] abstraction (a key
//! file today, a passphrase or an HSM later). Every random byte comes from a caller's
//! [`kms_core::Rng`]. It knows nothing of HTTP or storage.

pub mod digest;
mod error;
mod key;
mod mac;
mod rng;
mod root;
mod secret;
pub mod signing;
mod symmetric;
#[cfg(feature = "tls")]
mod tls;

pub use error::{CryptoError, KeyOperation};
pub use key::{KeyHandle, KeySecret};
pub use mac::{MacKey, TAG_LEN as MAC_TAG_LEN};
pub use rng::{PublicRandom, SystemRng};
pub use root::{FileRootKey, RootKeyError, RootKeyProvider};
pub use secret::{KeyMaterial, SecretBytes};
#[cfg(feature = "tls")]
pub use tls::tls_provider;

/// Fills a fresh array with random bytes from `rng`.
pub fn random_array<const N: usize>(rng: &dyn kms_core::Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}
