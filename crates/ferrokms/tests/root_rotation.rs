//! `ferrokms root rotate` beside running servers: every stored secret wrapped again under a
//! new root key file (or a new passphrase), both roots working until it finishes, a stopped run
//! completed by running it again, a rotation killed between switching the record and turning the
//! files completed at the next start, nothing left that the old root opens, and PostgreSQL nodes
//! with their own copies of the root key file following the rotation on their own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods,
    missing_docs
)]

mod support;

use std::path::Path;
use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use kms_crypto::{FileRootKey, RootKeyProvider as _};
use kms_server::root_rotation::{self as rotation, NextRoot, Opener};
use kms_store::Store as _;

fn rotate(data: &Path, extra: &[&str]) -> (bool, String) {
    rotate_with(data, extra, &[])
}

fn rotate_with(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(support::BIN)
        .args(["root", "rotate", "--grace", "1", "--data-dir"])
        .arg(data)
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// How many stored materials and access keys `root` opens.
async fn opened_by(data: &Path, root: &FileRootKey) -> usize {
    let store = kms_store::SqliteStore::open(&data.join("ferrokms.db")).unwrap();
    let mut n = 0;
    for m in store.materials_after(None, 10_000).await.unwrap() {
        let key = store.key(m.key_id).await.unwrap().unwrap();
        let arn =
            kms_core::ids::KeyArn { region: key.region.clone(), account: key.account.clone(), key_id: key.key_id };
        n += usize::from(root.unwrap(&kms_server::service::material_aad(&arn, m.material_id), &m.wrapped).is_ok());
    }
    for k in store.access_keys_after("", 10_000).await.unwrap() {
        n += usize::from(root.unwrap(&kms_server::auth::secret_aad(&k.access_key_id), &k.wrapped_secret).is_ok());
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_key_rotates_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // CloudTrail delivery on, so that its digest-signing key is among the stored secrets.
    let trail = dir.path().join("trail");
    let trail_args = ["--cloudtrail-dir", trail.to_str().unwrap(), "--cloudtrail-interval", "1"];
    let server = support::try_serve_with(Command::new(support::BIN), &data, &trail_args).unwrap();
    let kms = support::client(&server.addr, &support::credentials(&data));
    let mut sealed = Vec::new();
    for n in 0..4 {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let blob = kms.encrypt().key_id(&key).plaintext(Blob::new(format!("secret {n}"))).send().await.unwrap();
        sealed.push((blob.ciphertext_blob.unwrap(), format!("secret {n}")));
    }
    let old = FileRootKey::load(&data.join("root.key")).unwrap();
    let before = opened_by(&data, &old).await;
    assert!(before >= 5, "4 materials and the admin's access key: {before}");

    // Stopped early: both roots work, the server keeps serving and creating keys.
    let (ok, out) = rotate(&data, &["--limit", "2"]);
    assert!(ok && out.contains("stopped after 2"), "{out}");
    assert_eq!(opened_by(&data, &old).await, before - 2);
    let fresh = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let blob = kms.encrypt().key_id(&fresh).plaintext(Blob::new("during")).send().await.unwrap();
    sealed.push((blob.ciphertext_blob.unwrap(), "during".to_owned()));

    // Run again: it finishes.
    let (ok, out) = rotate(&data, &[]);
    assert!(ok && out.contains("root key rotated"), "{out}");
    assert!(data.join("root.key.previous").exists() && !data.join("root.key.next").exists());
    assert_eq!(opened_by(&data, &old).await, 0, "nothing stored opens under the old root");
    let new = FileRootKey::load(&data.join("root.key")).unwrap();
    let store = kms_store::SqliteStore::open(&data.join("ferrokms.db")).unwrap();
    let mut settings = Vec::new();
    for (name, aad) in rotation::WRAPPED_SETTINGS {
        let Some(value) = store.setting(name).await.unwrap() else { continue };
        let wrapped = hex::decode(value).unwrap();
        assert!(old.unwrap(aad, &wrapped).is_err() && new.unwrap(aad, &wrapped).is_ok(), "{name}");
        settings.push(*name);
    }
    assert!(settings.contains(&"cloudtrail_signing_key"), "{settings:?}");
    drop(store);
    for (blob, text) in &sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }

    // A fresh start reads everything with the new root alone; the trail still verifies.
    server.kill();
    let server = support::serve(&data);
    let kms = support::client(&server.addr, &support::credentials(&data));
    for (blob, text) in &sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }
    server.stop();
    let (ok, out) = support::audit_verify(&data);
    assert!(ok, "{out}");
    let trail = Command::new(support::BIN).args(["audit", "export", "--data-dir"]).arg(&data).output().unwrap();
    let trail = String::from_utf8_lossy(&trail.stdout);
    assert!(
        trail.contains("\"eventName\":\"StartRootKeyRotation\"") && trail.contains("\"eventName\":\"RotateRootKey\"")
    );

    // Killed after the record switched, before the files turned: the next start turns them.
    let store = kms_store::SqliteStore::open(&data.join("ferrokms.db")).unwrap();
    let root = data.join("root.key");
    let current = FileRootKey::load(&root).unwrap();
    let opener = Opener::File(root.clone());
    let next = rotation::announce(&store, &current, &opener, NextRoot::File, &kms_crypto::SystemRng).await.unwrap();
    rotation::rewrap(&store, &current, next.as_ref(), None, &mut |_| {}).await.unwrap();
    rotation::finish(&store, &opener).await.unwrap();
    std::fs::rename(&root, data.join("root.key.next")).unwrap();
    std::fs::rename(data.join("root.key.previous"), &root).unwrap();
    drop(store);
    let server = support::serve(&data);
    let kms = support::client(&server.addr, &support::credentials(&data));
    for (blob, text) in &sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }
    assert!(!data.join("root.key.next").exists());
    server.stop();
}

/// Encrypts `n` values under `n` new keys: (ciphertext, plaintext) pairs.
async fn seal(kms: &aws_sdk_kms::Client, n: usize, tag: &str) -> Vec<(Blob, String)> {
    let mut sealed = Vec::new();
    for i in 0..n {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let text = format!("{tag} {i}");
        let blob = kms.encrypt().key_id(&key).plaintext(Blob::new(text.clone())).send().await.unwrap();
        sealed.push((blob.ciphertext_blob.unwrap(), text));
    }
    sealed
}

async fn open_all(kms: &aws_sdk_kms::Client, sealed: &[(Blob, String)]) {
    for (blob, text) in sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }
}

/// A passphrase root rotates to a new passphrase while the server runs: the server takes the
/// next root from the store (it never sees the new passphrase), a stopped run goes on only with
/// the same new passphrase, and afterwards the next start needs the new passphrase and refuses
/// the old one.
#[tokio::test(flavor = "multi_thread")]
async fn a_passphrase_root_rotates_to_a_new_passphrase() {
    const OLD: &str = "the old passphrase of the root";
    const NEW: &str = "a brand new passphrase for the root";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let provider = ["--root-key-provider", "passphrase"];
    let start = |passphrase: &str| {
        let mut command = Command::new(support::BIN);
        command.env("FERROKMS_ROOT_PASSPHRASE", passphrase);
        support::try_serve_with(command, &data, &provider)
    };
    let server = start(OLD).unwrap();
    let kms = support::client(&server.addr, &support::credentials(&data));
    let mut sealed = seal(&kms, 3, "before").await;

    let (ok, out) = rotate_with(
        &data,
        &[&provider[..], &["--limit", "1"]].concat(),
        &[("FERROKMS_ROOT_PASSPHRASE", OLD), ("FERROKMS_NEW_ROOT_PASSPHRASE", NEW)],
    );
    assert!(ok && out.contains("stopped after 1"), "{out}");
    sealed.extend(seal(&kms, 1, "during").await);
    open_all(&kms, &sealed).await;
    let (ok, out) = rotate_with(
        &data,
        &provider,
        &[("FERROKMS_ROOT_PASSPHRASE", OLD), ("FERROKMS_NEW_ROOT_PASSPHRASE", "not the one announced")],
    );
    assert!(!ok && out.contains("another passphrase is under way"), "{out}");
    let (ok, out) =
        rotate_with(&data, &provider, &[("FERROKMS_ROOT_PASSPHRASE", OLD), ("FERROKMS_NEW_ROOT_PASSPHRASE", NEW)]);
    assert!(ok && out.contains("root key rotated"), "{out}");
    assert!(out.contains("new passphrase at its next start"), "{out}");
    // The running server followed without a restart.
    sealed.extend(seal(&kms, 1, "after").await);
    open_all(&kms, &sealed).await;
    server.stop();

    let refused = start(OLD).map(|_| ()).unwrap_err();
    assert!(refused.contains("does not open its secrets"), "{refused}");
    let server = start(NEW).unwrap();
    let kms = support::client(&server.addr, &support::credentials(&data));
    open_all(&kms, &sealed).await;
    server.stop();
    let store = kms_store::SqliteStore::open(&data.join("ferrokms.db")).unwrap();
    let next = store.setting(rotation::NEXT_SETTING).await.unwrap().unwrap_or_default();
    assert!(next.is_empty(), "the announcement (the next root wrapped by the old) is gone: {next}");
    let (ok, out) = support::audit_verify(&data);
    assert!(ok, "{out}");
}

/// Two PostgreSQL nodes, each with its own copy of the root key file in its own directory (as
/// on two machines): `ferrokms root rotate` run against one node's file rotates both — the
/// other node takes the next root from the store, writes its own `<root>.next`, and turns its
/// own files when the rotation finishes — and both restart on the new root.
#[tokio::test(flavor = "multi_thread")]
async fn postgresql_nodes_with_their_own_root_files_follow_a_rotation() {
    let Some(database) = support::TestDatabase::create("ferrokms_rootrot") else { return };
    let url = database.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = support::try_serve_with(Command::new(support::BIN), &a_dir, &["--store", &url]).unwrap();
    let creds = support::credentials(&a_dir);
    // Node B: its own directory and its own copy of the root key file.
    std::fs::create_dir(&b_dir).unwrap();
    let b_root = b_dir.join("root.key");
    std::fs::copy(a_dir.join("root.key"), &b_root).unwrap();
    let b = support::try_serve_with(Command::new(support::BIN), &b_dir, &["--store", &url]).unwrap();
    let (kms_a, kms_b) = (support::client(&a.addr, &creds), support::client(&b.addr, &creds));
    let mut sealed = seal(&kms_a, 2, "a").await;
    sealed.extend(seal(&kms_b, 2, "b").await);
    let old_root = std::fs::read(&b_root).unwrap();

    let (ok, out) = rotate(&a_dir, &["--store", &url]);
    assert!(ok && out.contains("root key rotated"), "{out}");
    let new_root = std::fs::read(a_dir.join("root.key")).unwrap();
    assert_ne!(new_root, old_root);
    // Node B turns its own files within its poll (twice a second).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(&b_root).unwrap() != new_root {
        assert!(std::time::Instant::now() < deadline, "node B never turned its root key file");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(b_dir.join("root.key.previous")).unwrap(), old_root);
    assert!(!b_dir.join("root.key.next").exists());
    sealed.extend(seal(&kms_b, 1, "b after").await);
    open_all(&kms_a, &sealed).await;
    open_all(&kms_b, &sealed).await;
    let old = FileRootKey::load(&b_dir.join("root.key.previous")).unwrap();
    let store = kms_store::PostgresStore::connect(&url).await.unwrap();
    for m in store.materials_after(None, 10_000).await.unwrap() {
        let key = store.key(m.key_id).await.unwrap().unwrap();
        let arn =
            kms_core::ids::KeyArn { region: key.region.clone(), account: key.account.clone(), key_id: key.key_id };
        assert!(old.unwrap(&kms_server::service::material_aad(&arn, m.material_id), &m.wrapped).is_err());
    }
    drop(store);

    // Both restart on the new root.
    a.stop();
    b.stop();
    for node in [&a_dir, &b_dir] {
        let server = support::try_serve_with(Command::new(support::BIN), node, &["--store", &url]).unwrap();
        open_all(&support::client(&server.addr, &creds), &sealed).await;
        server.stop();
    }
}
