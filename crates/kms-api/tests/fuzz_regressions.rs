//! Replays the fuzz corpus kept in the repository through the same invariant checks the
//! `cargo fuzz` targets run (see `fuzz/src/replay.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[path = "../../../fuzz/src/checks/json_request.rs"]
mod json_request;

#[test]
fn json_request_decoder_inputs() {
    replay("json_request", json_request::check);
}
