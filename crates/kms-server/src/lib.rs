//! ferrokms service wiring.
//!
//! Turns an HTTP request into a KMS answer: the listener ([`http`]), SigV4 authentication
//! against access keys that ferrokms issues ([`auth`]), key resolution through an in-memory key
//! cache ([`cache`]) so that cryptographic operations need no database read once a key is warm,
//! one handler per AWS operation ([`ops`]), and first-start bootstrap of the root key and the
//! admin credentials ([`bootstrap`]).

pub mod admin;
pub mod audit;
pub mod auth;
pub mod authz;
mod aws_managed;
pub mod body;
pub mod bootstrap;
pub mod cache;
pub mod clock;
pub mod cloudtrail;
mod commit;
pub mod config;
pub mod console;
pub mod error;
pub mod events;
pub mod forward_access;
mod header_timer;
pub mod http;
pub mod iam;
pub mod invalidation;
pub mod metrics;
pub mod ops;
mod pipeline;
pub mod principals;
pub mod query;
pub mod quota;
pub mod root_rotation;
pub mod scheduler;
pub mod service;
mod slow_crypto;
pub mod sts;
pub mod tls;
pub mod trail;
mod unauthenticated;

pub use config::ServerConfig;
pub use error::ServiceError;
pub use http::{RunningServer, start};
pub use service::{Caller, RequestContext, Service, Transport};

/// The system CSPRNG, for callers outside the service (the CLI's `init`).
pub fn system_rng() -> kms_crypto::SystemRng {
    kms_crypto::SystemRng
}
