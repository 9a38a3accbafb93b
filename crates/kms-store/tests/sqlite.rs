//! The conformance suite on SQLite, and durability across reopening the file.

#![allow(clippy::unwrap_used)]

use kms_store::{SqliteStore, Store};

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    kms_store::conformance::run_all(&store, 1).await;
    kms_store::conformance::run_all(&store, 2).await;
    kms_store::conformance::run_reset(&store).await;
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.init_setting("account", "111122223333").await.unwrap());
    }
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.setting("account").await.unwrap().as_deref(), Some("111122223333"));
    assert!(reopened.describe().starts_with("sqlite:"));
}

#[tokio::test]
async fn sqlite_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    kms_store::conformance::run_audit(&store).await;
}

#[tokio::test]
async fn sqlite_audit_trail_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    kms_store::conformance::run_audit_across_batches(&store).await;
}
