//! The `ferrokms` binary itself: first start, kill -9 and restart, the data-directory lock,
//! configuration sources, and the README's aws CLI walkthrough.

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
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

struct Server {
    child: Child,
    addr: String,
    first_output: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ferrokms serve` and waits for its "listening" line.
fn serve(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first_output = Vec::new();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("ferrokms listening on http://") {
            addr = Some(a.to_owned());
        }
        let ready = line.starts_with("ready;");
        first_output.push(line);
        if ready {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr: addr.expect("server printed its address"), first_output }
}

fn credentials(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .unwrap()
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

fn client(addr: &str, (id, secret): &(String, String)) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "cli-test"))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

#[tokio::test]
async fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data, &[], &[]);
    assert!(
        server.first_output.iter().any(|l| l.starts_with("Created admin credentials")),
        "{:?}",
        server.first_output
    );
    let creds = credentials(&data);
    assert!(server.first_output.iter().any(|l| l.contains(&creds.0)), "the access key id is printed once");
    // Under systemd or in a container stdout is the log: the secret is only in the 0600 file,
    // and the output says where.
    assert!(
        !server.first_output.iter().any(|l| l.contains(&creds.1)),
        "the secret is printed: {:?}",
        server.first_output
    );
    let file = data.join("admin-credentials").display().to_string();
    assert!(
        server
            .first_output
            .iter()
            .any(|l| l.contains(&format!("AWS_SHARED_CREDENTIALS_FILE={file} AWS_PROFILE=ferrokms"))),
        "{:?}",
        server.first_output
    );
    let kms = client(&server.addr, &creds);
    let mut ciphertexts = Vec::new();
    let mut keys = Vec::new();
    for i in 0..5 {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        kms.create_alias().alias_name(format!("alias/k{i}")).target_key_id(&key).send().await.unwrap();
        let ct = kms
            .encrypt()
            .key_id(format!("alias/k{i}"))
            .plaintext(Blob::new(format!("message {i}")))
            .encryption_context("i", i.to_string())
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap();
        keys.push(key);
        ciphertexts.push(ct);
    }
    kms.disable_key().key_id(&keys[4]).send().await.unwrap();
    server.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    server.child.wait().unwrap();
    drop(server);

    let server = serve(&data, &[], &[]);
    assert!(!server.first_output.iter().any(|l| l.starts_with("Created admin")), "credentials are not re-created");
    let kms = client(&server.addr, &creds);
    for (i, ct) in ciphertexts.into_iter().enumerate().take(4) {
        let back = kms.decrypt().ciphertext_blob(ct).encryption_context("i", i.to_string()).send().await.unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), format!("message {i}").as_bytes());
    }
    let md = kms.describe_key().key_id("alias/k4").send().await.unwrap().key_metadata.unwrap();
    assert!(!md.enabled(), "the acknowledged DisableKey survived");
    let aliases = kms.list_aliases().send().await.unwrap();
    let customer = aliases.aliases().iter().filter(|a| !a.alias_name().unwrap().starts_with("alias/aws/"));
    assert_eq!(customer.count(), 5);
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = serve(dir.path(), &[], &[]);
    let second =
        Command::new(BIN).args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another ferrokms process"), "{stderr}");
}

#[test]
fn init_then_config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-env");
    let out = Command::new(BIN).arg("init").env("FERROKMS_DATA_DIR", &data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("root.key").exists() && data.join("admin-credentials").exists());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (id, secret) = credentials(&data);
    assert!(stdout.contains(&format!("access key {id}")), "{stdout}");
    assert!(!stdout.contains(&secret), "init printed the secret: {stdout}");
    assert!(stdout.contains("AWS_SHARED_CREDENTIALS_FILE="), "{stdout}");

    let config = dir.path().join("ferrokms.toml");
    std::fs::write(&config, format!("data_dir = {:?}\nregion = \"eu-west-1\"\n", data.display().to_string())).unwrap();
    let server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server { child: server, addr: String::new(), first_output: vec![] };
    let mut lines = BufReader::new(server.child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(5) {
        seen.push(line.unwrap());
    }
    assert!(seen.iter().any(|l| l.contains(&data.display().to_string())), "config file's data_dir is used: {seen:?}");
    assert!(!seen.iter().any(|l| l.starts_with("Created admin")), "init already created the credentials");

    let bad = Command::new(BIN).args(["serve", "--config"]).arg(dir.path().join("missing.toml")).output().unwrap();
    assert!(!bad.status.success());
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in
        ["--listen", "--data-dir", "--region", "--insecure-dev-credentials", "FERROKMS_LISTEN", "FERROKMS_DATA_DIR"]
    {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[], &[]);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = server.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(status.expect("exited within 5 s").success());
}

/// A supervisor's SIGTERM sent the moment the server says anything (its first line, or
/// "ready") starts the clean shutdown: the handlers exist before the first line is printed.
/// Before, they were installed only when the shutdown future was first polled, after "ready",
/// and a SIGTERM sent earlier killed the process with the default action.
#[cfg(unix)]
#[test]
fn sigterm_right_at_start_up_shuts_down_cleanly() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id().to_string();
        // Mostly at the first line, which the old code had printed before it could catch it.
        let at_first_line = round % 3 != 2;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let now = if at_first_line { seen.is_empty() } else { line.starts_with("ready;") };
            seen.push(line);
            if now {
                assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let mut status = None;
        for _ in 0..200 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let Some(status) = status else {
            let _ = child.kill();
            panic!("round {round}: still running 5 s after SIGTERM: {seen:?}");
        };
        assert!(
            status.success(),
            "round {round} (at {}): {status}: {seen:?}",
            if at_first_line { "the first line" } else { "ready" }
        );
    }
}

/// The README's walkthrough with the real aws CLI: create a key and an alias, encrypt and
/// decrypt with an encryption context, restart, decrypt the old ciphertext again.
#[test]
fn readme_walkthrough_with_the_aws_cli() {
    if Command::new("aws").arg("--version").output().is_err() {
        println!("SKIPPED: the aws CLI is not installed (pip install awscli)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ferrokms-data");
    let server = serve(&data, &[], &[]);
    let aws = |server: &Server, args: &[&str]| aws_cli(&server.addr, &data, dir.path(), args);
    let key = aws(
        &server,
        &["kms", "create-key", "--description", "demo", "--query", "KeyMetadata.KeyId", "--output", "text"],
    );
    aws(&server, &["kms", "create-alias", "--alias-name", "alias/demo", "--target-key-id", &key]);
    std::fs::write(dir.path().join("secret.txt"), "hello, kms").unwrap();
    let ct = aws(
        &server,
        &[
            "kms",
            "encrypt",
            "--key-id",
            "alias/demo",
            "--plaintext",
            "fileb://secret.txt",
            "--encryption-context",
            "app=demo",
            "--query",
            "CiphertextBlob",
            "--output",
            "text",
        ],
    );
    let ct_bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &ct).unwrap();
    std::fs::write(dir.path().join("secret.bin"), ct_bytes).unwrap();
    let decrypt = [
        "kms",
        "decrypt",
        "--ciphertext-blob",
        "fileb://secret.bin",
        "--encryption-context",
        "app=demo",
        "--query",
        "Plaintext",
        "--output",
        "text",
    ];
    let b64 = |text: &str| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text).unwrap();
    assert_eq!(b64(&aws(&server, &decrypt)), b"hello, kms");
    drop(server);
    let server = serve(&data, &[], &[]);
    assert_eq!(b64(&aws(&server, &decrypt)), b"hello, kms", "old ciphertext decrypts after a restart");
}

/// Runs the aws CLI against `addr` with the admin credentials of `data` and returns its stdout.
/// Runs the README's example that starts with `first_line` as written (bash and the aws CLI,
/// in a fresh directory holding `secret.txt`) against a fresh server; returns the server, its
/// data directory, the working directory and the script's last output line (`echo "$KEY"`).
fn run_readme_example(first_line: &str) -> Option<(Server, std::path::PathBuf, tempfile::TempDir, String)> {
    let missing = ["aws", "openssl"].into_iter().find(|tool| Command::new(tool).arg("--version").output().is_err());
    if let Some(tool) = missing {
        println!("SKIPPED: the {tool} command is not installed");
        return None;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find(first_line).expect("the README's example");
    let script = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "hello, kms").unwrap();
    let data = dir.path().join("ferrokms-data");
    let server = serve(&data, &[], &[]);
    let out = aws_env(Command::new("bash"), &server.addr, &data)
        .args(["-euo", "pipefail", "-c", &format!("{script}\necho \"$KEY\"")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let key = stdout.lines().last().unwrap().trim().to_owned();
    Some((server, data, dir, key))
}

/// The README's import example, run as written (bash, the aws CLI and openssl), then the key it
/// made is enabled and encrypts.
#[test]
fn readme_import_example_with_the_aws_cli_and_openssl() {
    let Some((server, data, dir, key)) = run_readme_example("KEY=$(aws kms create-key --origin EXTERNAL") else {
        return;
    };
    let aws = |args: &[&str]| aws_cli(&server.addr, &data, dir.path(), args);
    let state = aws(&["kms", "describe-key", "--key-id", &key, "--query", "KeyMetadata.KeyState", "--output", "text"]);
    assert_eq!(state, "Enabled");
    let origin = aws(&["kms", "describe-key", "--key-id", &key, "--query", "KeyMetadata.Origin", "--output", "text"]);
    assert_eq!(origin, "EXTERNAL");
    let ct = aws(&[
        "kms",
        "encrypt",
        "--key-id",
        &key,
        "--plaintext",
        "fileb://secret.txt",
        "--query",
        "CiphertextBlob",
        "--output",
        "text",
    ]);
    assert!(!ct.is_empty());
}

/// The README's multi-Region example, run as written: after it, the primary is in eu-west-1 and
/// us-east-1 holds a replica.
#[test]
fn readme_multi_region_example_with_the_aws_cli() {
    let Some((server, data, dir, key)) = run_readme_example("KEY=$(aws kms create-key --multi-region") else {
        return;
    };
    assert!(key.starts_with("mrk-"), "{key}");
    let aws = |args: &[&str]| aws_cli(&server.addr, &data, dir.path(), args);
    let kind = |region: &str| {
        let query = "KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType";
        aws(&["kms", "describe-key", "--region", region, "--key-id", &key, "--query", query, "--output", "text"])
    };
    assert_eq!((kind("eu-west-1"), kind("us-east-1")), ("PRIMARY".to_owned(), "REPLICA".to_owned()));
}

/// `command` with the environment the README's walkthrough sets for the aws CLI.
fn aws_env(mut command: Command, addr: &str, data: &Path) -> Command {
    command
        .env("AWS_ENDPOINT_URL_KMS", format!("http://{addr}"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("admin-credentials"))
        .env("AWS_PROFILE", "ferrokms")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    command
}

fn aws_cli(addr: &str, data: &Path, cwd: &Path, args: &[&str]) -> String {
    let out = aws_env(Command::new("aws"), addr, data).args(args).current_dir(cwd).output().unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `ferrokms admin` against a running server, then the new user through the aws CLI's STS
/// commands and the SDK.
#[tokio::test]
async fn admin_commands_manage_principals_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &[], &[]);
    let endpoint = format!("http://{}", server.addr);
    let admin = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("admin")
            .args(["--endpoint", &endpoint, "--credentials-file"])
            .arg(data.join("admin-credentials"))
            .args(args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let (ok, out, err) = admin(&["create-user", "alice"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(":user/alice"), "{out}");
    let (ok, out, err) = admin(&["create-access-key", "--user", "alice"]);
    assert!(ok, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let creds = (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let kms_admin = client(&server.addr, &credentials(&data));
    let key_id = kms_admin.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let alice = client(&server.addr, &creds);
    let denied = alice.encrypt().key_id(&key_id).plaintext(Blob::new("x")).send().await;
    assert!(denied.is_err(), "no identity policy yet");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
    let (ok, _, err) = admin(&["put-user-policy", "alice", "encrypt", "--document", policy]);
    assert!(ok, "{err}");
    alice.encrypt().key_id(&key_id).plaintext(Blob::new("x")).send().await.unwrap();
    let (ok, out, _) = admin(&["list"]);
    assert!(ok && out.contains("alice") && out.contains("admin"), "{out}");
    let (ok, _, err) = admin(&["create-user", "alice"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // A user without iam permissions cannot administer.
    let out = Command::new(BIN)
        .args(["admin", "--endpoint", &endpoint, "create-user", "eve"])
        .env("AWS_ACCESS_KEY_ID", &creds.0)
        .env("AWS_SECRET_ACCESS_KEY", &creds.1)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"));

    if Command::new("aws").arg("--version").output().is_err() {
        println!("SKIPPED (aws CLI part): the aws CLI is not installed (pip install awscli)");
        return;
    }
    let out = Command::new("aws")
        .args(["sts", "get-caller-identity", "--endpoint-url", &endpoint, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", &creds.0)
        .env("AWS_SECRET_ACCESS_KEY", &creds.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(identity["Arn"].as_str().unwrap().ends_with(":user/alice"), "{identity}");
}

fn audit_cli(data: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).arg("audit").args(args).arg("--data-dir").arg(data).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The audit loss bound: after a clean stop every answered request is recorded; after kill -9,
/// every request answered more than the writer's linger interval before the kill is recorded.
#[tokio::test]
async fn audit_records_survive_clean_stops_and_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = serve(&data, &[], &[]);
    let creds = credentials(&data);
    let kms = client(&server.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    for _ in 0..20 {
        kms.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    }
    // Stop at once after the last answer: the clean shutdown must write everything.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.child.wait().unwrap();
    drop(server);
    let (ok, out) = audit_cli(&data, &["query", "--event-name", "Encrypt", "--json", "--limit", "1000"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 20, "{out}");

    let mut server = serve(&data, &[], &[]);
    let kms = client(&server.addr, &creds);
    for _ in 0..30 {
        kms.decrypt()
            .ciphertext_blob(
                kms.encrypt().key_id(&key).plaintext(Blob::new("y")).send().await.unwrap().ciphertext_blob.unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    // Wait well past the linger interval (50 ms) plus a commit, then kill without warning.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let (ok, out) = audit_cli(&data, &["query", "--event-name", "Decrypt", "--json", "--limit", "1000"]);
    assert!(ok, "{out}");
    assert_eq!(out.lines().count(), 30, "{out}");
    let (ok, out) = audit_cli(&data, &["verify"]);
    assert!(ok && out.contains("intact"), "{out}");
    let (ok, out) = audit_cli(&data, &["export"]);
    assert!(ok);
    assert!(out.lines().count() >= 81, "{}", out.lines().count());

    // Edit one stored record: verify names it and fails.
    let db = data.join("ferrokms.db");
    let mut rows = kms_store::test_support::sqlite_audit_rows(&db).unwrap();
    let row = rows.iter_mut().find(|r| r.seq == 41).unwrap();
    row.record = row.record.replace("Decrypt", "Encrypt");
    kms_store::test_support::replace_sqlite_audit_rows(&db, &rows).unwrap();
    let (ok, out) = audit_cli(&data, &["verify"]);
    assert!(!ok, "{out}");
    assert!(out.contains("record 41 was edited"), "{out}");
}

/// `serve --store postgres://…`: keys survive kill -9, and a second node with the same root
/// key file serves the same keys.
#[tokio::test]
async fn serve_on_postgresql_with_two_nodes() {
    let base =
        std::env::var("FERROKMS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let base = base
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(_, db)| !db.contains(':'))
        .map_or(base.clone(), |(b, _)| b.to_owned());
    let name = format!("ferrokms_cli_{}", std::process::id());
    let psql = |sql: &str| Command::new("psql").args([&format!("{base}/postgres"), "-q", "-c", sql]).output();
    match psql(&format!("CREATE DATABASE {name}")) {
        Ok(out) if out.status.success() => {}
        other => {
            let why = other.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string());
            assert!(
                std::env::var_os("FERROKMS_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL required but not reachable: {why}"
            );
            println!("SKIPPED: PostgreSQL not reachable at {base}: {why}");
            return;
        }
    }
    struct DropDatabase(Box<dyn Fn()>);
    impl Drop for DropDatabase {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let drop_sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let base2 = base.clone();
    let _cleanup = DropDatabase(Box::new(move || {
        let _ = Command::new("psql").args([&format!("{base2}/postgres"), "-q", "-c", &drop_sql]).output();
    }));
    let url = format!("{base}/{name}");
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let root_key = dir.path().join("root.key");
    let args = ["--store", url.as_str(), "--root-key-file", root_key.to_str().unwrap(), "--key-cache-ttl", "1"];
    let mut a = serve(&a_dir, &args, &[]);
    assert!(a.first_output.iter().any(|l| l.contains("postgres://")), "{:?}", a.first_output);
    let creds = credentials(&a_dir);
    let kms = client(&a.addr, &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.create_alias().alias_name("alias/pg").target_key_id(&key).send().await.unwrap();
    let ct = kms
        .encrypt()
        .key_id("alias/pg")
        .plaintext(Blob::new("on postgres"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();

    // A second node: same database, same root key, its own data directory.
    let b = serve(&b_dir, &args, &[]);
    assert!(!b.first_output.iter().any(|l| l.starts_with("Created admin")), "the store already has its admin");
    let kms_b = client(&b.addr, &creds);
    let back = kms_b.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"on postgres");
    kms_b.describe_key().key_id("alias/pg").send().await.unwrap();
    // A key disabled through node A is refused by node B within B's cache TTL (1 s here).
    kms.disable_key().key_id(&key).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refused = kms_b.encrypt().key_id(&key).plaintext(Blob::new("late")).send().await;
    let err = refused.expect_err("node B must see the disable within its TTL");
    assert!(format!("{err:?}").contains("DisabledException"), "{err:?}");
    kms.enable_key().key_id(&key).send().await.unwrap();

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    drop(a);
    drop(b);
    let a = serve(&a_dir, &args, &[]);
    let kms = client(&a.addr, &creds);
    let back = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"on postgres");
    // Without the root key file a node refuses to start on an initialized store.
    let refused = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &url, "--data-dir"])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("root key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(a);
}

/// JSON logs: every line is a JSON object; request lines carry the request id that the audit
/// record repeats; no plaintext appears.
#[tokio::test]
async fn json_logs_carry_the_audit_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("FERROKMS_LOG", "debug")
        .env("FERROKMS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("ferrokms listening on http://") {
            addr = a.to_owned();
        }
        if line.starts_with("ready;") {
            break;
        }
    }
    let mut server = Server { child, addr, first_output: vec![] };
    let kms = client(&server.addr, &credentials(&data));
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.encrypt().key_id(&key).plaintext(Blob::new("JSON-LOG-CANARY")).send().await.unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.child.wait().unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains("JSON-LOG-CANARY") && !text.contains("SlNPTi1MT0ctQ0FOQVJZ"), "plaintext in the logs");
    let parsed: Vec<serde_json::Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let encrypt_line = parsed
        .iter()
        .find(|l| l["fields"]["target"] == "TrentService.Encrypt")
        .unwrap_or_else(|| panic!("no Encrypt request line in {text}"));
    let request_id = encrypt_line["fields"]["request_id"].as_str().unwrap().to_owned();
    let (ok, out) = audit_cli(&data, &["query", "--event-name", "Encrypt", "--json"]);
    assert!(ok, "{out}");
    let record: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(record["requestID"], request_id.as_str());
}

/// `serve --root-key-provider passphrase`: the root key comes from FERROKMS_ROOT_PASSPHRASE (or
/// a file), no key file is written, and a start with another passphrase stops with the reason.
#[test]
fn a_passphrase_root_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let provider = ["--root-key-provider", "passphrase"];
    let server = serve(&data, &provider, &[("FERROKMS_ROOT_PASSPHRASE", "a long passphrase for the root")]);
    assert!(server.first_output.iter().any(|l| l.contains("passphrase (Argon2id)")), "{:?}", server.first_output);
    assert!(!data.join("root.key").exists());
    drop(server);
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(provider)
        .env("FERROKMS_ROOT_PASSPHRASE", "another passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not open its secrets"), "{stderr}");
    let file = dir.path().join("passphrase.txt");
    std::fs::write(&file, "a long passphrase for the root\n").unwrap();
    let server =
        serve(&data, &["--root-key-provider", "passphrase", "--root-passphrase-file", file.to_str().unwrap()], &[]);
    drop(server);
}

/// Without FERROKMS_ROOT_PASSPHRASE or a file, `init` asks for the passphrase on the terminal
/// with echo off (driven through a pseudo-terminal by Python's `pty`), and the store it creates
/// opens with that passphrase and no other. Without a terminal it says what it needs.
#[test]
fn a_passphrase_root_key_asked_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    const TYPED: &str = "typed at the prompt, never echoed";
    let script = r#"
import os, pty, sys
binary, data, typed = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "init", "--data-dir", data, "--root-key-provider", "passphrase"])
seen = b""
while b"passphrase for the root key: " not in seen:
    chunk = os.read(fd, 1024)
    if not chunk:
        break
    seen += chunk
os.write(fd, typed.encode() + b"\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = match Command::new("python3").args(["-c", script, BIN]).arg(&data).arg(TYPED).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(std::env::var_os("FERROKMS_REQUIRE_PYTHON_CLIENTS").is_none(), "python3 required: {e}");
            println!("SKIPPED: python3 not found ({e})");
            return;
        }
    };
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}{}", String::from_utf8_lossy(&out.stderr));
    assert!(terminal.contains("passphrase for the root key: "), "{terminal}");
    assert!(!terminal.contains(TYPED), "the passphrase was echoed: {terminal}");
    assert!(terminal.contains("passphrase (Argon2id)"), "{terminal}");
    let provider = ["--root-key-provider", "passphrase"];
    drop(serve(&data, &provider, &[("FERROKMS_ROOT_PASSPHRASE", TYPED)]));
    let refused = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(provider)
        .env("FERROKMS_ROOT_PASSPHRASE", "not what was typed")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("does not open its secrets"));
    // No terminal, no variable, no file: the reason, not a hang.
    let out = Command::new(BIN)
        .args(["init", "--data-dir"])
        .arg(dir.path().join("other"))
        .args(provider)
        .env_remove("FERROKMS_ROOT_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs FERROKMS_ROOT_PASSPHRASE or --root-passphrase-file"), "{stderr}");
}

/// The server keeps secrets out of core dumps: its core file size limit is 0 (Linux).
#[cfg(target_os = "linux")]
#[test]
fn the_server_writes_no_core_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("data"), &[], &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
