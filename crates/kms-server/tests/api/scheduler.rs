//! The scheduler: due automatic rotations and deletions happen when the injected clock says so
//! (tests move the clock by days; requests are signed with the wall clock, so the clock is moved
//! back before the next request).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::RotationType;

use crate::common::{code_of, config, start_with, start_with_clock};

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn automatic_rotation_happens_when_due() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    let before = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    let ct = kms.encrypt().key_id(&key).plaintext(Blob::new("old")).send().await.unwrap().ciphertext_blob.unwrap();
    kms.enable_key_rotation().key_id(&key).rotation_period_in_days(90).send().await.unwrap();
    let svc = &t.server.service;

    clock.advance_millis(89 * DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 0, "not due yet");
    clock.advance_millis(DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 1);
    assert_eq!(svc.run_due_work().await.unwrap(), 0, "once");
    assert!(svc.metrics_text().await.contains("ferrokms_scheduler_lag_seconds 0"), "a pass just completed");
    clock.advance_millis(-90 * DAY);

    let after = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    assert_ne!(after.current_key_material_id(), before.current_key_material_id());
    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    assert_eq!(rotations.rotations()[0].rotation_type(), Some(&RotationType::Automatic));
    let status = kms.get_key_rotation_status().key_id(&key).send().await.unwrap();
    let next = status.next_rotation_date().unwrap().secs();
    let now = kms_core::Clock::now(clock.as_ref()).unix_seconds();
    assert_eq!(next, now + 180 * 86_400, "the next rotation is one period after this one");
    let back = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"old");

    // A disabled key's due rotation waits until the key is enabled again.
    kms.disable_key().key_id(&key).send().await.unwrap();
    clock.advance_millis(181 * DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 0);
    clock.advance_millis(-181 * DAY);
    kms.enable_key().key_id(&key).send().await.unwrap();
    clock.advance_millis(181 * DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 1);
    clock.advance_millis(-181 * DAY);
    assert_eq!(kms.list_key_rotations().key_id(&key).send().await.unwrap().rotations().len(), 2);
}

#[tokio::test]
async fn scheduled_deletion_removes_the_key_and_its_aliases() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    let keep = t.create_key().await;
    kms.create_alias().alias_name("alias/doomed").target_key_id(&key).send().await.unwrap();
    let ct =
        kms.encrypt().key_id("alias/doomed").plaintext(Blob::new("x")).send().await.unwrap().ciphertext_blob.unwrap();
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    // Use during the waiting period is refused and counted, the signal to alarm on.
    let (code, _) = crate::common::error_of(kms.decrypt().ciphertext_blob(ct.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    let metrics = t.server.service.metrics_text().await;
    assert!(metrics.contains("ferrokms_pending_deletion_key_use_total{operation=\"Decrypt\"} 1"), "{metrics}");
    let svc = &t.server.service;
    clock.advance_millis(7 * DAY - 1000);
    assert_eq!(svc.run_due_work().await.unwrap(), 0);
    clock.advance_millis(1000);
    assert_eq!(svc.run_due_work().await.unwrap(), 1);
    clock.advance_millis(-7 * DAY);

    assert_eq!(code_of(kms.describe_key().key_id(&key).send().await), "NotFoundException");
    assert_eq!(
        code_of(kms.encrypt().key_id("alias/doomed").plaintext(Blob::new("x")).send().await),
        "NotFoundException"
    );
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(aliases.aliases().iter().all(|a| a.alias_name().unwrap().starts_with("alias/aws/")), "only AWS's");
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(ct).send().await), "InvalidCiphertextException");
    kms.describe_key().key_id(&keep).send().await.unwrap();
    let ids: Vec<String> =
        kms.list_keys().send().await.unwrap().keys().iter().map(|k| k.key_id().unwrap().to_owned()).collect();
    assert_eq!(ids, vec![keep]);
}

/// Work that fell due while the server was down is done by the next server.
#[tokio::test]
async fn due_work_is_picked_up_after_a_restart() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    let dir = t.dir;
    t.server.shutdown().await;

    clock.advance_millis(8 * DAY);
    let mut later = config(dir.path());
    later.clock = clock.clone();
    let t = start_with(later, dir).await;
    // The new server's background scheduler makes its first pass at start-up and may have done
    // the deletion already; either way it is done once.
    let done_here = t.server.service.run_due_work().await.unwrap();
    assert!(done_here <= 1, "{done_here}");
    assert_eq!(t.server.service.run_due_work().await.unwrap(), 0, "due work is done once");
    clock.advance_millis(-8 * DAY);
    assert_eq!(code_of(t.client().describe_key().key_id(&key).send().await), "NotFoundException");
}

/// Without anyone calling it, the background scheduler performs due work on its own.
#[tokio::test]
async fn the_background_scheduler_runs_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let clock = std::sync::Arc::new(kms_core::ManualClock::new(kms_core::Clock::now(&kms_server::clock::SystemClock)));
    cfg.clock = clock.clone();
    cfg.scheduler_interval_millis = 100;
    let t = start_with(cfg, dir).await;
    let kms = t.client();
    let key = t.create_key().await;
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    clock.advance_millis(7 * DAY + 1);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    clock.advance_millis(-(7 * DAY + 1));
    assert_eq!(code_of(kms.describe_key().key_id(&key).send().await), "NotFoundException");
}

/// Five years of yearly rotations: every generation's ciphertext still decrypts, and each new
/// one uses the newest material.
#[tokio::test]
async fn rotation_on_schedule_over_simulated_years() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let svc = &t.server.service;
    let mut generations = Vec::new();
    let mut materials = std::collections::HashSet::new();
    for year in 0..5i64 {
        let ct = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(format!("year {year}")))
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap();
        let material = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
        assert!(materials.insert(material.current_key_material_id().unwrap().to_owned()), "a fresh material each year");
        generations.push((year, ct));
        // The scheduler runs at the end of year `year` (then the clock returns to today so that
        // the wall-clock-signed requests verify); each rotation sets the next one a year later.
        clock.advance_millis((year + 1) * 365 * DAY);
        assert_eq!(svc.run_due_work().await.unwrap(), 1, "one rotation in year {year}");
        clock.advance_millis(-(year + 1) * 365 * DAY);
    }
    for (year, ct) in generations {
        let back = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), format!("year {year}").as_bytes());
    }
    assert_eq!(kms.list_key_rotations().key_id(&key).send().await.unwrap().rotations().len(), 5);
}

/// A deletion cancelled during its window does not happen when the window would have ended.
#[tokio::test]
async fn a_cancelled_deletion_does_not_happen() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    let key = t.create_key().await;
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    clock.advance_millis(8 * DAY);
    assert_eq!(t.server.service.run_due_work().await.unwrap(), 0);
    clock.advance_millis(-8 * DAY);
    let md = kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.key_state().unwrap().as_str(), "Disabled");
}
