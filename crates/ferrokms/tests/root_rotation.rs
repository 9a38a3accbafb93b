//! `ferrokms root rotate` beside a running server: every stored secret wrapped again under a
//! new root key file, both roots working until it finishes, a stopped run completed by running
//! it again, a rotation killed between switching the record and turning the files completed at
//! the next start, and nothing left that the old root opens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

mod support;

use std::path::Path;
use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use kms_crypto::{FileRootKey, RootKeyProvider as _};
use kms_store::Store as _;

fn rotate(data: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(support::BIN)
        .args(["root", "rotate", "--grace", "1", "--data-dir"])
        .arg(data)
        .args(extra)
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
    let server = support::serve(&data);
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
    let next = kms_server::root_rotation::announce(&store, &root, &kms_crypto::SystemRng).await.unwrap();
    kms_server::root_rotation::rewrap(&store, &current, next.as_ref(), None, &mut |_| {}).await.unwrap();
    kms_server::root_rotation::finish(&store, &root, next.as_ref()).await.unwrap();
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
