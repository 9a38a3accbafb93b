//! ferrokms domain model.
//!
//! `kms-core` holds what a KMS *is*, independent of how it is reached or stored: identifiers
//! (key ids, ARNs, alias names), key records and their state machine, encryption contexts, the
//! ciphertext blob codec, key policy documents, tags, grant tokens and the domain error type.
//!
//! It does no I/O: it never reads the clock, the network or the disk, never spawns tasks and
//! never generates randomness itself. Time comes in through [`Clock`], randomness through
//! [`Rng`]; the edges (`kms-crypto`, `kms-server`) implement them.

pub mod audit;
pub mod ciphertext_blob;
pub mod context;
pub mod error;
pub mod grant_token;
pub mod ids;
pub mod json_text;
pub mod key;
pub mod policy;
pub mod tag;
pub mod time;
pub mod validation;

pub use error::KmsError;
pub use time::{Clock, ManualClock, Timestamp};

/// A source of cryptographically secure random bytes.
///
/// Implemented at the edge by the system CSPRNG; tests may use a seeded generator.
pub trait Rng: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}
