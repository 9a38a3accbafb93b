//! The checked-in `crates/kms-api/src/model.rs` is exactly what the model and the generator
//! produce: a change to either without regenerating fails here.

use std::path::Path;

#[test]
fn the_checked_in_model_code_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = std::fs::read_to_string(dir.join(kms_codegen::MODEL_PATH)).unwrap_or_default();
    let generated = kms_codegen::generate(&model).map_err(|e| e.to_string());
    let checked_in = std::fs::read_to_string(dir.join(kms_codegen::OUTPUT_PATH)).unwrap_or_default();
    assert!(
        generated.as_deref() == Ok(checked_in.as_str()),
        "crates/kms-api/src/model.rs is stale: run `cargo run -p kms-codegen` and commit the result"
    );
}

#[test]
fn member_names_become_snake_case() {
    assert_eq!(kms_codegen::snake("KeyId"), "key_id");
    assert_eq!(kms_codegen::snake("AWSAccountId"), "aws_account_id");
    assert_eq!(kms_codegen::snake("CloudHsmClusterId"), "cloud_hsm_cluster_id");
    assert_eq!(kms_codegen::snake("GrantTokens"), "grant_tokens");
}
