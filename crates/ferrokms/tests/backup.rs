//! `ferrokms backup` and `ferrokms restore`: a snapshot taken while the server runs and keeps
//! serving holds only wrapped material; restored into a new data directory with the original
//! root key it serves the keys and ciphertext from before the backup, and its audit chain
//! verifies; restoring with another root key stops before anything is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

mod support;

use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use support::{BIN, audit_verify, client, credentials, serve, try_serve};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_taken_while_serving_restores_with_its_root_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let (data, snapshot) = (dir.path().join("data"), dir.path().join("snapshot.db"));
    let server = serve(&data);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed =
        kms.encrypt().key_id(&key).plaintext(Blob::new("from before")).send().await.unwrap().ciphertext_blob.unwrap();

    let (ok, text) = run(&["backup", "--data-dir", data.to_str().unwrap(), snapshot.to_str().unwrap()]);
    assert!(ok, "{text}");
    // The server keeps serving; what comes after the snapshot is not in it.
    let later = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    server.stop();
    let bytes = std::fs::read(&snapshot).unwrap();
    let root = std::fs::read_to_string(data.join("root.key")).unwrap();
    let root_hex = root.lines().nth(1).unwrap().trim();
    let root_bytes = (0..root_hex.len()).step_by(2).map(|i| u8::from_str_radix(&root_hex[i..i + 2], 16).unwrap());
    let root_bytes: Vec<u8> = root_bytes.collect();
    assert!(
        !bytes.windows(root_bytes.len()).any(|w| w == root_bytes.as_slice()),
        "the root key is not in the snapshot"
    );

    // Another root key: refused, nothing written.
    let wrong = dir.path().join("wrong");
    let other_root = dir.path().join("other-root.key");
    kms_crypto::FileRootKey::create(&other_root, &kms_crypto::SystemRng).unwrap();
    let (ok, text) = run(&[
        "restore",
        "--data-dir",
        wrong.to_str().unwrap(),
        "--root-key-file",
        other_root.to_str().unwrap(),
        snapshot.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("does not open its secrets"), "{text}");
    assert!(!wrong.join("ferrokms.db").exists());
    // Without the root key: refused too.
    let (ok, text) = run(&["restore", "--data-dir", wrong.to_str().unwrap(), snapshot.to_str().unwrap()]);
    assert!(!ok && text.contains("root key file"), "{text}");

    // The original root key: restored, serving what was there before the backup.
    let restored = dir.path().join("restored");
    let root_file = data.join("root.key");
    let (ok, text) = run(&[
        "restore",
        "--data-dir",
        restored.to_str().unwrap(),
        "--root-key-file",
        root_file.to_str().unwrap(),
        snapshot.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    std::fs::copy(data.join("admin-credentials"), restored.join("admin-credentials")).unwrap();
    let mut command = Command::new(BIN);
    command.env("FERROKMS_ROOT_KEY_FILE", &root_file);
    let server = try_serve(command, &restored).unwrap();
    let kms = client(&server.addr, &creds);
    let opened = kms.decrypt().ciphertext_blob(sealed).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"from before");
    assert_eq!(
        kms.describe_key().key_id(&later).send().await.unwrap_err().into_service_error().meta().code(),
        Some("NotFoundException")
    );
    server.stop();
    let (ok, text) = audit_verify(&restored);
    assert!(ok, "{text}");
}
