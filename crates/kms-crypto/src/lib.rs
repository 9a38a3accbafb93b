//! ferrokms cryptography: the only crate that names the crypto library (aws-lc-rs).
//!
//! The [`KeyHandle`]: one version of a KMS key's material of any kind (every AWS key spec:
//! symmetric, HMAC, RSA, ECC, Ed25519, ML-DSA, SM2), which generates, is wrapped and unwrapped
//! by the root key (as a [`KeySecret`]), and performs the key's operations: AES-256-GCM
//! ciphertext blobs, signatures, MACs, ECDH, RSA-OAEP and SM2PKE. [`generate_key_pair`] makes
//! data key pairs; [`verify_with_public_key`] and [`encrypt_with_public_key`] work from a
//! public key alone. aws-lc-rs does most of it; RustCrypto `sm2`, `ml-dsa` (external μ) and
//! `ed25519-dalek` (Ed25519ph) fill what it lacks (docs/adr/0013). Generic primitives for the other crates:
//! SHA-256 ([`digest`]), HMAC-SHA-256 ([`MacKey`]), Ed25519 ([`signing`]) and, with the `tls`
//! feature, the rustls crypto provider. Secret-holding types that zeroize on drop and never
//! print their contents; the system CSPRNG; and the [`RootKeyProvider`] abstraction (a key
//! file, a passphrase, or a non-extractable key in an HSM used through PKCS#11 with `cryptoki`). Every secret byte of key material comes from a
//! caller's [`kms_core::Rng`] except RSA keys, which aws-lc-rs generates only from its own
//! CSPRNG; the per-operation randomness of asymmetric signing and encryption is the
//! libraries' own (docs/adr/0013). It knows nothing of HTTP or storage.

mod asymmetric;
pub mod digest;
mod ecc;
mod ed25519;
mod error;
mod hmac_key;
mod import;
pub mod jws;
mod key;
mod mac;
mod ml_dsa;
mod pkcs11;
mod rng;
mod root;
mod rsa;
mod secret;
pub mod signing;
mod sm2;
mod symmetric;
#[cfg(feature = "tls")]
mod tls;

pub use asymmetric::{encrypt_with_public_key, verify_with_public_key};
pub use error::{CryptoError, KeyOperation};
pub use import::{WrappingAlgorithm, imported_material_id, unwrap_imported_material, wrap_for_import};
pub use key::{KeyHandle, KeySecret, generate_key_pair};
pub use mac::{MacKey, TAG_LEN as MAC_TAG_LEN};
pub use ml_dsa::MU_LEN as ML_DSA_MU_LEN;
pub use pkcs11::{
    DEFAULT_PKCS11_KEY_LABEL, DEFAULT_PKCS11_MODULE, MissingKey, Pkcs11Error, Pkcs11Location, Pkcs11RootKey,
};
pub use rng::{PublicRandom, SystemRng};
pub use root::{FileRootKey, PassphraseParams, PassphraseRootKey, RootKeyError, RootKeyProvider, RotatingRoot};
pub use secret::{KeyMaterial, SecretBytes};
pub use sm2::SM2_DISTINGUISHING_ID;
#[cfg(feature = "tls")]
pub use tls::tls_provider;

/// Fills a fresh array with random bytes from `rng`.
pub fn random_array<const N: usize>(rng: &dyn kms_core::Rng) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill(&mut out);
    out
}
