//! Replays the fuzz corpus kept in the repository (`fuzz/seeds/` and every input a fuzzer once
//! crashed on, `fuzz/regressions/`) through the same invariant checks the `cargo fuzz` targets
//! run, so that plain `cargo test` on the stable toolchain guards against regressions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::path::PathBuf;

/// Every kept input of a fuzz target, with its path for the failure message.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

/// Runs `check` on every kept input of `target`, naming the input that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no kept inputs for {target}");
    for (path, bytes) in inputs {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz input {} fails its check", path.display());
        }
    }
}

#[path = "../../../fuzz/src/checks/sigv4_headers.rs"]
mod sigv4_headers;

#[test]
fn sigv4_header_parser_inputs() {
    replay("sigv4_headers", sigv4_headers::check);
}
