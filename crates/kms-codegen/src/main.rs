//! Rewrites `crates/kms-api/src/model.rs` from `model/kms.json`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let result = std::fs::read_to_string(dir.join(kms_codegen::MODEL_PATH))
        .map_err(|e| format!("reading the model: {e}"))
        .and_then(|model| kms_codegen::generate(&model).map_err(|e| e.to_string()))
        .and_then(|code| {
            std::fs::write(dir.join(kms_codegen::OUTPUT_PATH), code).map_err(|e| format!("writing the output: {e}"))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
