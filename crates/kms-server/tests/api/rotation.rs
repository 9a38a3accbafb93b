//! Key rotation: automatic schedules, on-demand rotation with its limit, old ciphertext still
//! decrypting, ReEncrypt moving ciphertext to the current material.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::RotationType;

use crate::common::{code_of, error_of, start, start_with_clock};

#[tokio::test]
async fn automatic_rotation_settings() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    let status = kms.get_key_rotation_status().key_id(&key).send().await.unwrap();
    assert!(!status.key_rotation_enabled());
    assert!(status.rotation_period_in_days().is_none() && status.next_rotation_date().is_none());
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let status = kms.get_key_rotation_status().key_id(&key).send().await.unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(365));
    let expected = kms_core::Clock::now(clock.as_ref()).unix_seconds() + 365 * 86_400;
    assert_eq!(
        status.next_rotation_date().unwrap().secs(),
        expected,
        "one period after enabling, by the server's clock"
    );
    kms.enable_key_rotation().key_id(&key).rotation_period_in_days(90).send().await.unwrap();
    assert_eq!(kms.get_key_rotation_status().key_id(&key).send().await.unwrap().rotation_period_in_days(), Some(90));
    for bad in [89, 2561] {
        let r = kms.enable_key_rotation().key_id(&key).rotation_period_in_days(bad).send().await;
        assert_eq!(code_of(r), "ValidationException", "{bad}");
    }
    kms.disable_key_rotation().key_id(&key).send().await.unwrap();
    assert!(!kms.get_key_rotation_status().key_id(&key).send().await.unwrap().key_rotation_enabled());
    kms.disable_key().key_id(&key).send().await.unwrap();
    assert_eq!(code_of(kms.enable_key_rotation().key_id(&key).send().await), "DisabledException");
    // Status is readable whatever the state.
    kms.get_key_rotation_status().key_id(&key).send().await.unwrap();
}

#[tokio::test]
async fn on_demand_rotation_keeps_old_ciphertext_decrypting() {
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    let first = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    let old_material = first.current_key_material_id().unwrap().to_owned();
    let old = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("before"))
        .encryption_context("v", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let rotated = kms.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    assert_eq!(rotated.key_id(), first.arn());
    let after = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    let new_material = after.current_key_material_id().unwrap().to_owned();
    assert_ne!(old_material, new_material, "DescribeKey reports the new current material");

    let back = kms.decrypt().ciphertext_blob(old.clone()).encryption_context("v", "1").send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"before");
    assert_eq!(back.key_material_id(), Some(old_material.as_str()), "old ciphertext names its own material");
    let fresh = kms.encrypt().key_id(&key).plaintext(Blob::new("after")).send().await.unwrap().ciphertext_blob.unwrap();
    let back = kms.decrypt().ciphertext_blob(fresh).send().await.unwrap();
    assert_eq!(back.key_material_id(), Some(new_material.as_str()), "new ciphertext uses the new material");
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(old)
        .source_encryption_context("v", "1")
        .destination_key_id(&key)
        .destination_encryption_context("v", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.source_key_material_id(), Some(old_material.as_str()));
    assert_eq!(moved.destination_key_material_id(), Some(new_material.as_str()));

    let listed = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(listed.rotations().len(), 1);
    assert_eq!(listed.rotations()[0].rotation_type(), Some(&RotationType::OnDemand));
    assert_eq!(listed.rotations()[0].key_material_id(), Some(new_material.as_str()));
    assert!(!listed.truncated());
}

#[tokio::test]
async fn on_demand_rotation_limit_and_pagination() {
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    for _ in 0..25 {
        kms.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    }
    let (code, message) = error_of(kms.rotate_key_on_demand().key_id(&key).send().await);
    assert_eq!(code, "LimitExceededException");
    assert!(message.contains("25"), "{message}");
    let page = kms.list_key_rotations().key_id(&key).limit(10).send().await.unwrap();
    assert!(page.truncated());
    assert_eq!(page.rotations().len(), 10);
    let mut seen = page.rotations().len();
    let mut marker = page.next_marker().map(str::to_owned);
    while let Some(m) = marker {
        let next = kms.list_key_rotations().key_id(&key).limit(10).marker(m).send().await.unwrap();
        seen += next.rotations().len();
        marker = next.next_marker().map(str::to_owned);
    }
    assert_eq!(seen, 25);
    assert_eq!(code_of(kms.list_key_rotations().key_id(&key).marker("nope").send().await), "InvalidMarkerException");
    kms.disable_key().key_id(&key).send().await.unwrap();
    let other = t.create_key().await;
    kms.disable_key().key_id(&other).send().await.unwrap();
    assert_eq!(code_of(kms.rotate_key_on_demand().key_id(&other).send().await), "DisabledException");
}
