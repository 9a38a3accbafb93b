//! End-to-end tests: the real server on 127.0.0.1:0, driven over HTTP by `aws-sdk-kms` with
//! real SigV4 signatures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::print_stdout,
    missing_docs
)]

mod aliases;
mod audit;
mod auth;
mod authz;
mod aws_managed;
mod cluster;
mod common;
mod connections;
mod crypto;
mod decision_cache;
mod events;
mod fidelity;
mod files;
mod hot_path;
mod import;
mod key_spec_interop;
mod key_specs;
mod keys;
mod malformed;
mod metrics;
mod multi_region;
mod persistence;
mod policies;
mod quotas;
mod replay;
mod revocation;
mod rotation;
mod scheduler;
mod security;
mod tags;
mod tls;
mod wire;
