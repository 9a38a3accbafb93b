//! Replays the fuzz corpus kept in the repository through the same invariant checks the
//! `cargo fuzz` targets run (see `fuzz/src/replay.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[path = "../../../fuzz/src/checks/blob.rs"]
mod blob;
#[path = "../../../fuzz/src/checks/policy.rs"]
mod policy;

#[test]
fn blob_codec_inputs() {
    replay("blob", blob::check);
}

#[test]
fn policy_parser_inputs() {
    replay("policy", policy::check);
}
