//! The generated model: its patterns compile, its value sets agree with kms-core's enums, and
//! decoding a request reports AWS's violations.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use kms_api::model::{self, PATTERNS};
use kms_api::{Exception, Operation, Request};
use kms_core::key::{DataKeySpec, EncryptionAlgorithm, KeySpec, KeyUsage, Origin};

#[test]
fn every_pattern_of_the_model_compiles() {
    assert!(!PATTERNS.is_empty());
    for p in PATTERNS {
        assert!(p.compiles(), "{p:?} does not compile");
    }
}

/// kms-core's enums name only values AWS's model has (a typo there would accept a value AWS
/// refuses, or name one AWS never sends).
#[test]
fn core_enums_are_within_the_models_value_sets() {
    let within = |core: &[&str], model: &[&str], name: &str| {
        for v in core {
            assert!(model.contains(v), "{name}: {v} is not in AWS's model");
        }
    };
    within(KeySpec::ALL, model::KEY_SPEC_VALUES, "KeySpec");
    within(KeyUsage::ALL, model::KEY_USAGE_TYPE_VALUES, "KeyUsage");
    within(Origin::ALL, model::ORIGIN_TYPE_VALUES, "Origin");
    within(EncryptionAlgorithm::ALL, model::ENCRYPTION_ALGORITHM_SPEC_VALUES, "EncryptionAlgorithm");
    within(DataKeySpec::ALL, model::DATA_KEY_SPEC_VALUES, "DataKeySpec");
    assert_eq!(KeySpec::ALL.len(), model::KEY_SPEC_VALUES.len(), "every key spec of the model is known");
}

fn validation_message(op: Operation, body: &str) -> String {
    let e = Request::decode(op, body.as_bytes()).expect_err("refused");
    assert_eq!(e.exception, Exception::Validation, "{e:?}");
    e.message.unwrap_or_default()
}

#[test]
fn decoding_reports_every_violation_in_model_order() {
    let long = "d".repeat(8193);
    assert_eq!(
        validation_message(Operation::UpdateKeyDescription, &format!("{{\"Description\": \"{long}\"}}")),
        format!(
            "2 validation errors detected: Value '{long}' at 'description' failed to satisfy constraint: Member \
             must have length less than or equal to 8192; Value null at 'keyId' failed to satisfy constraint: \
             Member must not be null"
        )
    );
    assert_eq!(
        validation_message(Operation::TagResource, "{\"KeyId\": \"k\", \"Tags\": [{\"TagKey\": \"\"}]}"),
        "2 validation errors detected: Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: Member \
         must have length greater than or equal to 1; Value null at 'tags.1.member.tagValue' failed to satisfy \
         constraint: Member must not be null"
    );
    assert_eq!(
        validation_message(Operation::ListKeys, "{\"Limit\": 1001}"),
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have \
         value less than or equal to 1000"
    );
    let tokens: Vec<String> = (0..11).map(|i| format!("\"t{i}\"")).collect();
    assert!(
        validation_message(
            Operation::Encrypt,
            &format!("{{\"KeyId\": \"k\", \"Plaintext\": \"AA==\", \"GrantTokens\": [{}]}}", tokens.join(","))
        )
        .contains("at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10")
    );
}

#[test]
fn a_plaintext_is_never_echoed() {
    let big = base64_of(&[b'x'; 4097]);
    let message = validation_message(Operation::Encrypt, &format!("{{\"KeyId\": \"k\", \"Plaintext\": \"{big}\"}}"));
    assert_eq!(
        message,
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length \
         less than or equal to 4096"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
