//! Replays the inputs kept for a fuzz target (`fuzz/seeds/<target>/` and every input a fuzzer
//! once crashed on, `fuzz/regressions/<target>/`) through its check. Included with `#[path]` by
//! the `fuzz_regressions` tests of kms-api, kms-core and kms-sigv4, so that plain `cargo test`
//! on the stable toolchain guards against regressions.

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
pub fn replay(target: &str, check: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no kept inputs for {target}");
    for (path, bytes) in inputs {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz input {} fails its check", path.display());
        }
    }
}
