//! `ferrokms init --self-signed` and `serve --tls-cert/--tls-key`, driven by the real aws CLI
//! (`--ca-bundle`) and boto3 (`AWS_CA_BUNDLE`); plain HTTP off loopback is refused.
//!
//! The aws CLI and boto3 parts print `SKIPPED` when the tool is missing, unless
//! `FERROKMS_REQUIRE_PYTHON_CLIENTS` is set (`.ci/run` sets it after installing them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ferrokms serve` with `extra` flags and waits for its "listening" line.
fn serve(data: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("ferrokms listening on ") {
            addr = Some(a.to_owned());
        }
        if line.starts_with("ready;") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr: addr.expect("server printed its address") }
}

fn required(tool: &str) -> bool {
    let present = match tool {
        "aws" => Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success()),
        _ => Command::new("python3").args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success()),
    };
    if !present {
        assert!(
            std::env::var_os("FERROKMS_REQUIRE_PYTHON_CLIENTS").is_none(),
            "{tool} is required (FERROKMS_REQUIRE_PYTHON_CLIENTS is set) but not installed"
        );
        println!("SKIPPED: {tool} is not installed (pip install awscli boto3)");
    }
    present
}

/// Gives a python/aws command the admin credentials of `data` and nothing else from the
/// environment that could change where it connects or what it trusts.
fn credentials_env<'a>(command: &'a mut Command, data: &Path) -> &'a mut Command {
    command
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("admin-credentials"))
        .env("AWS_PROFILE", "ferrokms")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        // A refused certificate is final; do not wait for retries.
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KMS")
}

const BOTO3: &str = "import boto3, os
kms = boto3.client('kms', endpoint_url=os.environ['ENDPOINT'], region_name='us-east-1')
key = kms.create_key(Description='boto3 over tls')['KeyMetadata']['KeyId']
blob = kms.encrypt(KeyId=key, Plaintext=b'hello tls')['CiphertextBlob']
assert kms.decrypt(CiphertextBlob=blob)['Plaintext'] == b'hello tls'
print('ok', key)
";

#[test]
fn init_self_signed_then_the_aws_cli_and_boto3_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = Command::new(BIN)
        .args(["init", "--self-signed", "--san", "kms.test.internal", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let (cert, key, ca) = (data.join("tls/cert.pem"), data.join("tls/key.pem"), data.join("tls/ca.pem"));
    assert!(String::from_utf8_lossy(&init.stdout).contains(&*ca.to_string_lossy()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let server = serve(&data, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let port = server.addr.strip_prefix("https://").expect("serves https").rsplit(':').next().unwrap().to_owned();

    if required("aws") {
        let endpoint = format!("https://127.0.0.1:{port}");
        let aws = |extra: &[&str]| -> Output {
            let mut command = Command::new("aws");
            command.args(["kms", "create-key", "--endpoint-url", &endpoint, "--query", "KeyMetadata.KeyId"]);
            command.args(["--output", "text"]).args(extra);
            credentials_env(&mut command, &data).output().unwrap()
        };
        let trusted = aws(&["--ca-bundle", ca.to_str().unwrap()]);
        assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
        assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim().len(), 36, "a key id");
        let untrusted = aws(&[]);
        assert!(!untrusted.status.success(), "verification fails without the CA bundle");
        let stderr = String::from_utf8_lossy(&untrusted.stderr);
        assert!(stderr.contains("SSL") || stderr.contains("certificate"), "{stderr}");
    }

    if required("boto3") {
        let endpoint = format!("https://localhost:{port}");
        let boto3 = |ca_bundle: Option<&Path>| -> Output {
            let mut command = Command::new("python3");
            command.args(["-c", BOTO3]).env("ENDPOINT", &endpoint);
            credentials_env(&mut command, &data);
            if let Some(ca) = ca_bundle {
                command.env("AWS_CA_BUNDLE", ca);
            }
            command.output().unwrap()
        };
        let untrusted = boto3(None);
        assert!(!untrusted.status.success(), "boto3 must not trust the certificate without the CA bundle");
        let out = boto3(Some(&ca));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
    }
}

#[test]
fn plain_http_off_loopback_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        Command::new(BIN).args(["serve", "--listen", "0.0.0.0:0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to serve plain HTTP") && stderr.contains("--insecure-http"), "{stderr}");
    let half = Command::new(BIN).args(["serve", "--tls-cert", "x.pem", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!half.status.success(), "--tls-cert needs --tls-key");
}

/// Runs a `ferrokms` client command against `endpoint` as the admin of `data`, trusting
/// `ca_bundle` through `AWS_CA_BUNDLE` when given.
fn ferrokms_client(data: &Path, endpoint: &str, ca_bundle: Option<&Path>, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut command = Command::new(BIN);
    credentials_env(&mut command, data);
    command.args(args).env("AWS_ENDPOINT_URL_KMS", endpoint).env("FERROKMS_ENDPOINT", endpoint);
    command.env("FERROKMS_CREDENTIALS_FILE", data.join("admin-credentials"));
    if let Some(ca) = ca_bundle {
        command.env("AWS_CA_BUNDLE", ca);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn serve_seed_and_the_ferrokms_clients_work_over_tls_with_the_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = Command::new(BIN).args(["init", "--self-signed", "--data-dir"]).arg(&data).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let (cert, key, ca) = (data.join("tls/cert.pem"), data.join("tls/key.pem"), data.join("tls/ca.pem"));
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, "keys:\n  - alias: tls-seeded\n    description: seeded over TLS\n").unwrap();
    // `serve --seed` reaches its own TLS listener: without trusting the chain it serves, the
    // seed could not connect and start-up would fail.
    let server = serve(
        &data,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--seed", seed.to_str().unwrap()],
    );
    let port = server.addr.strip_prefix("https://").expect("serves https").rsplit(':').next().unwrap().to_owned();
    let endpoint = format!("https://localhost:{port}");

    let listed = ferrokms_client(&data, &endpoint, Some(&ca), &["keys", "list"], b"");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("alias/tls-seeded"));
    let untrusted = ferrokms_client(&data, &endpoint, None, &["keys", "list"], b"");
    assert!(!untrusted.status.success(), "the self-signed CA is not trusted without AWS_CA_BUNDLE");

    let encrypted =
        ferrokms_client(&data, &endpoint, Some(&ca), &["encrypt", "--key-id", "alias/tls-seeded"], b"over tls");
    assert!(encrypted.status.success(), "{}", String::from_utf8_lossy(&encrypted.stderr));
    let decrypted = ferrokms_client(&data, &endpoint, Some(&ca), &["decrypt"], &encrypted.stdout);
    assert!(decrypted.status.success(), "{}", String::from_utf8_lossy(&decrypted.stderr));
    assert_eq!(decrypted.stdout, b"over tls");

    let user = ferrokms_client(&data, &endpoint, Some(&ca), &["admin", "create-user", "tls-admin-user"], b"");
    assert!(user.status.success(), "{}", String::from_utf8_lossy(&user.stderr));
    let refused = ferrokms_client(&data, &endpoint, None, &["admin", "create-user", "never-created"], b"");
    assert!(!refused.status.success(), "admin over https without the CA bundle must fail verification");
}
