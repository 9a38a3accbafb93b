//! The `pkcs11` root-key provider against a real SoftHSM2 (Debian package `softhsm2`): each test
//! makes its own tokens in a temporary directory named by a private `SOFTHSM2_CONF`, and runs the
//! `ferrokms` binary on them (a PKCS#11 module reads its configuration once per process, so each
//! server is a process of its own).
//!
//! Without SoftHSM2 the tests print `SKIPPED: …` and pass, unless `FERROKMS_REQUIRE_SOFTHSM` is
//! set (as `.ci/run` does).

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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use support::{BIN, Server, client, credentials, try_serve_with};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// A PIN no other string in the data directory or the output could contain by chance.
const PIN: &str = "pin-7c41e09b";
const SO_PIN: &str = "so-pin-1234";

/// A private SoftHSM2 configuration and its token directory.
struct SoftHsm {
    dir: tempfile::TempDir,
}

impl SoftHsm {
    /// A new, empty SoftHSM2 configuration, or `None` (after printing why) when SoftHSM2 is not
    /// installed and the test may skip.
    fn new() -> Option<Self> {
        let util = Command::new("softhsm2-util").arg("--version").output();
        let why = match util {
            Ok(out) if out.status.success() && Path::new(MODULE).is_file() => None,
            Ok(_) => Some(format!("softhsm2-util present but the module {MODULE} is not")),
            Err(e) => Some(format!("softhsm2-util not found ({e}); install the Debian package softhsm2")),
        };
        if let Some(why) = why {
            assert!(std::env::var_os("FERROKMS_REQUIRE_SOFTHSM").is_none(), "SoftHSM2 required: {why}");
            println!("SKIPPED: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(dir.path().join("softhsm2.conf"), conf).unwrap();
        Some(Self { dir })
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn tokens(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// Initializes a token with this label and the user PIN [`PIN`].
    fn init_token(&self, label: &str) {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// `ferrokms` with the pkcs11 provider on this SoftHSM (the flags go in with
    /// [`SoftHsm::args`]).
    fn command(&self, pin: &str) -> Command {
        let mut command = Command::new(BIN);
        command.env("SOFTHSM2_CONF", self.conf()).env("FERROKMS_PKCS11_PIN", pin).env("FERROKMS_PKCS11_MODULE", MODULE);
        command
    }

    /// The provider flags for the token `token`, then `extra`.
    fn args<'a>(token: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--root-key-provider", "pkcs11", "--pkcs11-token-label", token];
        args.extend_from_slice(extra);
        args
    }

    fn serve(&self, data: &Path, token: &str, extra: &[&str]) -> Server {
        try_serve_with(self.command(PIN), data, &Self::args(token, extra))
            .unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// A start that must be refused: its standard error.
    fn refused(&self, data: &Path, token: &str, pin: &str, extra: &[&str]) -> String {
        match try_serve_with(self.command(pin), data, &Self::args(token, extra)) {
            Ok(_) => panic!("the server started"),
            Err(stderr) => stderr,
        }
    }
}

/// Create a key, encrypt, restart, decrypt: the root key stays in the token (no key file), and
/// the store records the provider, token and key labels but never the PIN. Then every start that
/// is not the store's own is refused with the reason: a wrong PIN, a missing token, another key
/// label, another token label, another HSM holding a key with the same labels, another provider,
/// a module that does not load.
#[tokio::test]
async fn an_hsm_root_key_opens_its_store_and_nothing_else_does() {
    let Some(hsm) = SoftHsm::new() else { return };
    hsm.init_token("ferrokms");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = hsm.serve(&data, "ferrokms", &[]);
    assert!(
        server.first_output.iter().any(|l| l.contains("pkcs11:token=ferrokms;object=ferrokms-root")),
        "{:?}",
        server.first_output
    );
    assert!(!data.join("root.key").exists(), "no key file for an HSM root key");
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed = kms.encrypt().key_id(&key).plaintext(Blob::new("in the HSM")).send().await.unwrap();
    let sealed = sealed.ciphertext_blob.unwrap();
    server.stop();

    let db = std::fs::read(data.join("ferrokms.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    assert!(db.contains(r#""provider":"pkcs11""#), "the store records its provider");
    assert!(db.contains(r#""token_label":"ferrokms""#) && db.contains(r#""key_label":"ferrokms-root""#));
    for file in walk(dir.path()).into_iter().chain(walk(&hsm.tokens())) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()), "the PIN is in {}", file.display());
    }

    // The PIN from a file this time.
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let mut command = hsm.command("");
    command.env_remove("FERROKMS_PKCS11_PIN");
    let server =
        try_serve_with(command, &data, &SoftHsm::args("ferrokms", &["--pkcs11-pin-file", pin_file.to_str().unwrap()]))
            .unwrap();
    let kms = client(&server.addr, &creds);
    let opened = kms.decrypt().ciphertext_blob(sealed.clone()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"in the HSM");
    server.stop();

    let stderr = hsm.refused(&data, "ferrokms", "wrong-pin-0000", &[]);
    assert!(stderr.contains("refused the PIN"), "{stderr}");
    assert!(!stderr.contains("wrong-pin-0000"), "the PIN is printed: {stderr}");

    let stderr = hsm.refused(&data, "ferrokms", PIN, &["--pkcs11-key-label", "another-key"]);
    assert!(
        stderr.contains("initialized with the PKCS#11 key 'ferrokms-root' on token 'ferrokms'")
            && stderr.contains("asks for the key 'another-key'"),
        "{stderr}"
    );
    let stderr = hsm.refused(&data, "another-token", PIN, &[]);
    assert!(stderr.contains("on token 'another-token'"), "{stderr}");

    let stderr = hsm.refused(&data, "ferrokms", PIN, &["--pkcs11-module", "/nonexistent/libpkcs11.so"]);
    assert!(stderr.contains("cannot load the PKCS#11 module /nonexistent/libpkcs11.so"), "{stderr}");

    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("FERROKMS_ROOT_KEY_PROVIDER")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("initialized with a pkcs11 root key"), "{stderr}");
    assert!(!data.join("root.key").exists(), "a refused start makes no key file");

    // Another HSM whose token and key carry the same labels holds another key.
    let other = SoftHsm::new().unwrap();
    other.init_token("ferrokms");
    other.serve(&dir.path().join("elsewhere"), "ferrokms", &[]).stop();
    let stderr = other.refused(&data, "ferrokms", PIN, &[]);
    assert!(stderr.contains("does not open its secrets"), "{stderr}");

    // The token gone: refused at start, and no new key is made anywhere.
    let moved = hsm.dir.path().join("tokens.away");
    std::fs::rename(hsm.tokens(), &moved).unwrap();
    std::fs::create_dir(hsm.tokens()).unwrap();
    let stderr = hsm.refused(&data, "ferrokms", PIN, &[]);
    assert!(stderr.contains("no PKCS#11 token labelled 'ferrokms'"), "{stderr}");
    // A new token with the same label but without the key.
    hsm.init_token("ferrokms");
    let stderr = hsm.refused(&data, "ferrokms", PIN, &[]);
    assert!(stderr.contains("holds no AES key labelled 'ferrokms-root'"), "{stderr}");
    std::fs::remove_dir_all(hsm.tokens()).unwrap();
    std::fs::rename(&moved, hsm.tokens()).unwrap();

    let server = hsm.serve(&data, "ferrokms", &[]);
    let kms = client(&server.addr, &creds);
    let opened = kms.decrypt().ciphertext_blob(sealed).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"in the HSM");
    server.stop();
}

/// A new store on a token that does not exist is refused too (nothing is created).
#[test]
fn a_missing_token_is_refused_on_a_new_store() {
    let Some(hsm) = SoftHsm::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let stderr = hsm.refused(&dir.path().join("data"), "absent", PIN, &[]);
    assert!(stderr.contains("no PKCS#11 token labelled 'absent'"), "{stderr}");
}

/// The HSM starts refusing while the server runs (here: its token disappears). A request that
/// needs the root key (a key not yet unwrapped) is answered KMSInternalException (500) promptly;
/// a key already unwrapped keeps working, and the server keeps running.
#[tokio::test]
async fn a_refusing_hsm_fails_requests_cleanly_while_serving() {
    let Some(hsm) = SoftHsm::new() else { return };
    hsm.init_token("ferrokms");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ttl = ["--key-cache-ttl", "600"];
    let server = hsm.serve(&data, "ferrokms", &ttl);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let warm = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let cold = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    server.stop();

    // After a restart nothing is unwrapped; using `warm` unwraps it (and the credentials).
    let server = hsm.serve(&data, "ferrokms", &ttl);
    let kms = client(&server.addr, &creds);
    kms.encrypt().key_id(&warm).plaintext(Blob::new("warm")).send().await.unwrap();

    let moved = hsm.dir.path().join("tokens.away");
    std::fs::rename(hsm.tokens(), &moved).unwrap();
    std::fs::create_dir(hsm.tokens()).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = kms.encrypt().key_id(&cold).plaintext(Blob::new("cold")).send().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "the request hung");
        let service = err.as_service_error().map(|e| e.code().unwrap_or_default().to_owned());
        assert_eq!(service.as_deref(), Some("KMSInternalException"), "{err:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    }
    let sealed = kms.encrypt().key_id(&warm).plaintext(Blob::new("warm")).send().await.unwrap();
    assert!(sealed.ciphertext_blob.is_some());
    let mut server = server;
    assert!(server.child.try_wait().unwrap().is_none(), "the server is still running");

    server.stop();

    // SoftHSM2 does not bring back, within a process, a token it lost; a restart does.
    std::fs::remove_dir_all(hsm.tokens()).unwrap();
    std::fs::rename(&moved, hsm.tokens()).unwrap();
    let server = hsm.serve(&data, "ferrokms", &ttl);
    let kms = client(&server.addr, &creds);
    kms.encrypt().key_id(&cold).plaintext(Blob::new("cold")).send().await.unwrap();
    server.stop();
}

/// Several nodes on one PostgreSQL database share the HSM key; a node on another HSM (a key with
/// the same labels, but not the same key) or asking for another key refuses to join.
#[tokio::test]
async fn postgresql_nodes_share_the_hsm_key_and_others_refuse_to_join() {
    let Some(hsm) = SoftHsm::new() else { return };
    let Some(database) = support::TestDatabase::create("ferrokms_pkcs11") else { return };
    let url = database.url.clone();
    let store = ["--store", url.as_str()];
    hsm.init_token("ferrokms");
    let dir = tempfile::tempdir().unwrap();
    let a = hsm.serve(&dir.path().join("a"), "ferrokms", &store);
    let creds = credentials(&dir.path().join("a"));
    let kms = client(&a.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed = kms.encrypt().key_id(&key).plaintext(Blob::new("shared")).send().await.unwrap();

    // Node B: same database, same token (SoftHSM2 token files shared by both processes).
    let b = hsm.serve(&dir.path().join("b"), "ferrokms", &store);
    let kms_b = client(&b.addr, &creds);
    let opened = kms_b.decrypt().ciphertext_blob(sealed.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"shared");

    // Node C: another HSM with a token and key of the same labels.
    let other = SoftHsm::new().unwrap();
    other.init_token("ferrokms");
    other.serve(&dir.path().join("scratch"), "ferrokms", &[]).stop();
    let stderr = other.refused(&dir.path().join("c"), "ferrokms", PIN, &store);
    assert!(stderr.contains("does not open its secrets"), "{stderr}");
    // Node D: the same HSM, another key label.
    let stderr =
        hsm.refused(&dir.path().join("d"), "ferrokms", PIN, &[&store[..], &["--pkcs11-key-label", "k2"]].concat());
    assert!(stderr.contains("asks for the key 'k2'"), "{stderr}");
    a.stop();
    b.stop();
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `ferrokms root rotate` on an HSM root: a new non-extractable key in the same token wraps
/// every stored secret while the server runs (which takes it from the store's announcement);
/// afterwards a start still configured with the old key label is moved to the new key.
#[tokio::test]
async fn an_hsm_root_rotates_to_a_new_key_in_the_token() {
    let Some(hsm) = SoftHsm::new() else { return };
    hsm.init_token("ferrokms");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = hsm.serve(&data, "ferrokms", &[]);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let mut sealed = Vec::new();
    for n in 0..3 {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        let blob = kms.encrypt().key_id(&key).plaintext(Blob::new(format!("hsm {n}"))).send().await.unwrap();
        sealed.push((blob.ciphertext_blob.unwrap(), format!("hsm {n}")));
    }
    let rotate = |extra: &[&str]| {
        let out = hsm
            .command(PIN)
            .args(["root", "rotate", "--grace", "1", "--data-dir"])
            .arg(&data)
            .args(SoftHsm::args("ferrokms", extra))
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, out) = rotate(&["--new-pkcs11-key-label", "ferrokms-root"]);
    assert!(!ok && out.contains("is the current root"), "{out}");
    let (ok, out) = rotate(&["--new-pkcs11-key-label", "ferrokms-root-2"]);
    assert!(ok && out.contains("root key rotated to pkcs11:token=ferrokms;object=ferrokms-root-2"), "{out}");
    assert!(out.contains("old HSM key 'ferrokms-root' stays in the token"), "{out}");
    assert!(!out.contains(PIN));
    let fresh = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let blob = kms.encrypt().key_id(&fresh).plaintext(Blob::new("after")).send().await.unwrap();
    sealed.push((blob.ciphertext_blob.unwrap(), "after".to_owned()));
    for (blob, text) in &sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }
    server.stop();

    // Still configured with the old label (the default): moved to the new key.
    let server = hsm.serve(&data, "ferrokms", &[]);
    assert!(server.first_output.iter().any(|l| l.contains("object=ferrokms-root-2")), "{:?}", server.first_output);
    let kms = client(&server.addr, &creds);
    for (blob, text) in &sealed {
        let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await.unwrap().plaintext.unwrap();
        assert_eq!(plain.as_ref(), text.as_bytes());
    }
    server.stop();
    // Configured with the new label: the same.
    hsm.serve(&data, "ferrokms", &["--pkcs11-key-label", "ferrokms-root-2"]).stop();
    // The rotation is in the trail, which still verifies.
    let out = hsm.command(PIN).args(["audit", "export", "--data-dir"]).arg(&data).output().unwrap();
    let trail = String::from_utf8_lossy(&out.stdout);
    assert!(trail.contains("\"eventName\":\"RotateRootKey\""), "{trail}");
    let out = hsm.command(PIN).args(["audit", "verify", "--data-dir"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
