//! Replays the fuzz corpus kept in the repository through the same invariant checks the
//! `cargo fuzz` targets run (see `fuzz/src/replay.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[path = "../../../fuzz/src/checks/sigv4_headers.rs"]
mod sigv4_headers;

#[test]
fn sigv4_header_parser_inputs() {
    replay("sigv4_headers", sigv4_headers::check);
}
