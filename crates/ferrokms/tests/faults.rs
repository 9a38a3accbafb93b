//! Storage faults: a read-only data directory and a full disk. Each gives a clear error (a
//! start-up refusal naming the problem; `KMSInternalException` with HTTP 500 to a client whose
//! change could not be stored, as AWS answers an internal failure) and loses nothing that was
//! acknowledged: once the fault is gone, every acknowledged key, policy and ciphertext is there.
//!
//! Both faults are real file-system states made with `mount` (a read-only bind mount, which
//! even root cannot write through; a small tmpfs that fills up), so the tests need the
//! privilege to mount. Without it they print why they skip, unless `FERROKMS_REQUIRE_FAULTS` is
//! set (as `.ci/run` does where it can mount). A second server on the same data directory is
//! tested in `cli.rs` (`a_second_server_on_the_same_data_directory_is_refused`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;

use support::{BIN, client, credentials, serve, try_serve};

/// A mount that is undone when dropped (lazily, so that a failing test cannot leave it busy).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Says why the test skips, or fails it when the fault tests are required.
fn skip(what: &str) {
    assert!(std::env::var_os("FERROKMS_REQUIRE_FAULTS").is_none(), "{what}, and FERROKMS_REQUIRE_FAULTS is set");
    println!("SKIPPED: {what} (needs the privilege to mount)");
}

/// Makes `dir` read-only with a read-only bind mount of itself.
fn bind_read_only(dir: &Path) -> Option<Mount> {
    let ok = Command::new("mount").arg("--bind").arg(dir).arg(dir).status().is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let mount = Mount(dir.to_owned());
    let ok = Command::new("mount").args(["-o", "remount,ro,bind"]).arg(dir).status().is_ok_and(|s| s.success());
    ok.then_some(mount)
}

#[tokio::test]
async fn a_read_only_data_directory_is_refused_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let ciphertext =
        kms.encrypt().key_id(&key).plaintext(Blob::new("kept")).send().await.unwrap().ciphertext_blob.unwrap();
    server.stop();

    let Some(mount) = bind_read_only(&data) else {
        skip("cannot make a read-only bind mount");
        return;
    };
    assert!(std::fs::write(data.join("probe"), b"x").is_err(), "the bind mount is not read-only");
    let refused = try_serve(Command::new(BIN), &data);
    let stderr = match refused {
        Ok(_) => panic!("the server started on a read-only data directory"),
        Err(stderr) => stderr,
    };
    assert!(!stderr.contains("panicked"), "a panic, not an error: {stderr}");
    assert!(stderr.to_lowercase().contains("read-only"), "the error does not say what is wrong: {stderr}");
    assert!(stderr.contains(&data.display().to_string()), "the error does not name the directory: {stderr}");

    drop(mount);
    let server = serve(&data);
    let kms = client(&server.addr, &creds);
    let back = kms.decrypt().ciphertext_blob(ciphertext).send().await.unwrap();
    assert_eq!(back.plaintext.unwrap().as_ref(), b"kept");
    assert!(kms.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap().enabled);
}

/// The HTTP status, code and message of a failed call.
fn failure_of<E: ProvideErrorMetadata>(
    e: aws_sdk_kms::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> (u16, String, String) {
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    (status, code, message)
}

/// A policy of about 30 KB (the limit is 32 KB), to fill the disk quickly.
fn big_policy(account: &str, n: usize) -> String {
    let padding = "x".repeat(29_000);
    format!(
        r#"{{"Version":"2012-10-17","Id":"fill-{n}-{padding}","Statement":[{{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

#[tokio::test]
async fn a_full_disk_gives_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&data)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        skip("cannot mount a small tmpfs");
        return;
    }
    let _mount = Mount(data.clone());
    let server = serve(&data);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let account = kms.create_key().send().await.unwrap().key_metadata.unwrap().aws_account_id.unwrap();

    // Write until the disk is full, remembering everything acknowledged.
    let mut keys: Vec<(String, Option<String>)> = Vec::new();
    let mut sealed = Vec::new();
    let mut failure = None;
    for n in 0..2000 {
        let result = match n % 3 {
            0 => kms
                .create_key()
                .send()
                .await
                .map(|out| keys.push((out.key_metadata.unwrap().key_id, None)))
                .map_err(failure_of),
            1 => {
                let (key, _) = keys.last().unwrap().clone();
                let text = big_policy(&account, n);
                kms.put_key_policy()
                    .key_id(&key)
                    .policy_name("default")
                    .policy(&text)
                    .send()
                    .await
                    .map(|_| keys.last_mut().unwrap().1 = Some(text))
                    .map_err(failure_of)
            }
            _ => {
                let (key, _) = keys.last().unwrap().clone();
                let plaintext = format!("sealed {n}");
                kms.encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(plaintext.clone()))
                    .send()
                    .await
                    .map(|out| sealed.push((out.ciphertext_blob.unwrap(), plaintext)))
                    .map_err(failure_of)
            }
        };
        if let Err(meta) = result {
            failure = Some(meta);
            break;
        }
    }
    let (status, code, message) = failure.expect("3 MiB never filled up");
    assert_eq!((status, code.as_str()), (500, "KMSInternalException"), "{message}");
    assert!(message.contains("internal error") && message.contains("Request id"), "{message}");
    assert!(!keys.is_empty() && keys.iter().any(|(_, p)| p.is_some()), "nothing was written before the disk filled");

    // While the disk is full, what was acknowledged is still served.
    for (ciphertext, plaintext) in sealed.iter().take(3) {
        let back = kms.decrypt().ciphertext_blob(ciphertext.clone()).send().await.unwrap();
        assert_eq!(back.plaintext.unwrap().as_ref(), plaintext.as_bytes());
    }

    // Remove the fault: the running server writes again, and after a kill -9 and a restart
    // everything acknowledged is there.
    assert!(Command::new("mount").args(["-o", "remount,size=64m"]).arg(&data).status().unwrap().success());
    let recovered = kms.create_key().send().await;
    assert!(recovered.is_ok(), "the server does not recover once there is space: {recovered:?}");
    server.kill();
    let server = serve(&data);
    let kms = client(&server.addr, &creds);
    for (key, policy) in &keys {
        kms.describe_key().key_id(key).send().await.unwrap();
        if let Some(policy) = policy {
            let stored = kms.get_key_policy().key_id(key).policy_name("default").send().await.unwrap().policy.unwrap();
            assert_eq!(&stored, policy);
        }
    }
    for (ciphertext, plaintext) in &sealed {
        let back = kms.decrypt().ciphertext_blob(ciphertext.clone()).send().await.unwrap();
        assert_eq!(back.plaintext.unwrap().as_ref(), plaintext.as_bytes());
    }
    println!(
        "full disk: {} keys, {} policies, {} ciphertexts acknowledged before ENOSPC; all found after the fault was \
         removed and the server restarted; the failing request got {}: {message}",
        keys.len(),
        keys.iter().filter(|(_, p)| p.is_some()).count(),
        sealed.len(),
        code
    );
    server.stop();
    let (ok, out) = support::audit_verify(&data);
    assert!(ok, "the audit chain does not verify after the disk filled: {out}");
}
