//! `ferrokms seed FILE` and `ferrokms serve --seed FILE` against real servers: what a file
//! declares exists afterwards, a second run changes nothing and says so, changes are reconciled,
//! seeded access keys work with their declared ids, and invalid files are refused clearly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");
const CI_KEY: &str = "AKIACISEED00000001";
const SECRET_1: &str = "seed-secret-one-0123456789abcdefghijklmnopqrstuv";
const SECRET_2: &str = "seed-secret-two-0123456789abcdefghijklmnopqrstuv";

fn sdk(addr: &str, id: &str, secret: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

fn admin_credentials(data: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data.join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim_start_matches([' ', '=']).trim().to_owned()
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

/// The seed file of these tests; `v2` is the edited version.
fn seed_yaml(account: &str, v2: bool) -> String {
    let (description, tags, rotation, actions, archive) = if v2 {
        (
            "Orders v2",
            "{team: payments, tier: gold}",
            "false",
            r#"["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]"#,
            "true",
        )
    } else {
        ("Order database", "{team: payments, env: ci}", "180", r#"["kms:Encrypt", "kms:Decrypt"]"#, "false")
    };
    format!(
        r#"version: 1
users:
  - name: ci
    policies:
      use-keys:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: {actions}
            Resource: "*"
    access_keys:
      - id: {CI_KEY}
        secret_env: SEED_CI_SECRET
roles:
  - name: app
    trust_policy: {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:user/ci"}}, "Action": "sts:AssumeRole"}}]}}
    policies:
      read: '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}]}}'
services:
  - name: logs.us-east-1.amazonaws.com
keys:
  - alias: orders
    aliases: [alias/orders-current]
    description: {description}
    rotation: {rotation}
    tags: {tags}
    policy:
      Version: "2012-10-17"
      Statement:
        - Sid: root
          Effect: Allow
          Principal: {{AWS: "arn:aws:iam::{account}:root"}}
          Action: "kms:*"
          Resource: "*"
  - alias: alias/archive
    enabled: {archive}
"#
    )
}

/// Runs `ferrokms seed ARGS` as the admin against `addr`; returns (success, stdout, stderr).
async fn seed(addr: &str, admin: &(String, String), secret: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .arg("seed")
        .args(args)
        .args(["--endpoint", &format!("http://{addr}")])
        .env("AWS_ACCESS_KEY_ID", &admin.0)
        .env("AWS_SECRET_ACCESS_KEY", &admin.1)
        .env("SEED_CI_SECRET", secret);
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn changed_lines(report: &str) -> Vec<&str> {
    report.lines().filter(|l| l.starts_with("created") || l.starts_with("updated") || l.starts_with("error")).collect()
}

/// Every byte under `dir`, file by file.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_idempotent_and_reconciles_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = kms_server::ServerConfig::new(data.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let addr = server.local_addr.to_string();
    let account = server.account.to_string();
    let admin = admin_credentials(&data);
    let file = dir.path().join("seed.yaml");
    std::fs::write(&file, seed_yaml(&account, false)).unwrap();
    let file = file.to_str().unwrap().to_owned();

    let (ok, report, stderr) = seed(&addr, &admin, SECRET_1, &[&file]).await;
    assert!(ok, "{report}\n{stderr}");
    for expected in [
        "created    user ci",
        "created    policy use-keys of user ci",
        &format!("created    access key {CI_KEY} of ci"),
        "created    role app",
        "created    policy read of role app",
        "created    service principal logs.us-east-1.amazonaws.com",
        "created    key alias/orders (",
        "created    key alias/archive (",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
    assert!(report.trim_end().ends_with("seed: 8 created, 0 updated, 0 unchanged, 0 errors"), "{report}");

    let kms = sdk(&addr, &admin.0, &admin.1);
    let orders = kms.describe_key().key_id("alias/orders").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(orders.description.as_deref(), Some("Order database"));
    let via_second = kms.describe_key().key_id("alias/orders-current").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(via_second.key_id, orders.key_id);
    let rotation = kms.get_key_rotation_status().key_id(&orders.key_id).send().await.unwrap();
    assert_eq!((rotation.key_rotation_enabled, rotation.rotation_period_in_days), (true, Some(180)));
    let tags = |kms: aws_sdk_kms::Client, id: String| async move {
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap().tags.unwrap_or_default();
        tags.into_iter().map(|t| (t.tag_key, t.tag_value)).collect::<BTreeMap<_, _>>()
    };
    let expected: BTreeMap<String, String> =
        [("env", "ci"), ("team", "payments")].map(|(k, v)| (k.into(), v.into())).into();
    assert_eq!(tags(kms.clone(), orders.key_id.clone()).await, expected);
    let archive = kms.describe_key().key_id("alias/archive").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(archive.key_state, Some(KeyState::Disabled));

    // The seeded access key works with its declared id and secret, within its identity policy.
    let ci = sdk(&addr, CI_KEY, SECRET_1);
    let sealed = ci.encrypt().key_id("alias/orders").plaintext(Blob::new(b"order 1".to_vec())).send().await.unwrap();
    let opened = ci.decrypt().ciphertext_blob(sealed.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext.unwrap().as_ref(), b"order 1");
    let denied = ci.generate_data_key().key_id("alias/orders").number_of_bytes(32).send().await.unwrap_err();
    assert_eq!(denied.code(), Some("AccessDeniedException"));

    // Twice: nothing changes, and the report says so.
    let (ok, report, stderr) = seed(&addr, &admin, SECRET_1, &[&file]).await;
    assert!(ok, "{stderr}");
    assert!(changed_lines(&report).is_empty(), "{report}");
    assert!(report.trim_end().ends_with("seed: nothing to change (8 already as declared)"), "{report}");
    assert_eq!(kms.list_keys().send().await.unwrap().keys.unwrap().len(), 2, "no second key");

    // Edited: description, tags, rotation, an identity policy, a secret and an enabled state.
    std::fs::write(&file, seed_yaml(&account, true)).unwrap();
    let (ok, report, stderr) = seed(&addr, &admin, SECRET_2, &[&file]).await;
    assert!(ok, "{report}\n{stderr}");
    let mut changed = changed_lines(&report);
    changed.sort_unstable();
    assert_eq!(changed.len(), 4, "{report}");
    assert!(changed[0].starts_with(&format!("updated    access key {CI_KEY} of ci (secret changed)")), "{report}");
    assert!(changed[1].starts_with("updated    key alias/archive (") && changed[1].ends_with("): enabled"), "{report}");
    assert!(changed[2].ends_with("): description, tags, rotation"), "{report}");
    assert_eq!(changed[3], "updated    policy use-keys of user ci");

    let orders = kms.describe_key().key_id("alias/orders").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(orders.description.as_deref(), Some("Orders v2"));
    let expected: BTreeMap<String, String> =
        [("team", "payments"), ("tier", "gold")].map(|(k, v)| (k.into(), v.into())).into();
    assert_eq!(tags(kms.clone(), orders.key_id.clone()).await, expected, "the undeclared tag is gone");
    assert!(!kms.get_key_rotation_status().key_id(&orders.key_id).send().await.unwrap().key_rotation_enabled);
    let archive = kms.describe_key().key_id("alias/archive").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(archive.key_state, Some(KeyState::Enabled));
    let old = sdk(&addr, CI_KEY, SECRET_1).list_aliases().send().await.unwrap_err();
    assert_eq!(old.code(), Some("InvalidSignatureException"), "{old:?}");
    let ci = sdk(&addr, CI_KEY, SECRET_2);
    ci.generate_data_key().key_id("alias/orders").number_of_bytes(32).send().await.unwrap();

    let (ok, report, _) = seed(&addr, &admin, SECRET_2, &[&file]).await;
    assert!(ok && changed_lines(&report).is_empty(), "{report}");

    // Declared secrets are stored wrapped only: not in the database, its WAL or the audit trail.
    for (path, bytes) in files_under(&data) {
        for secret in [SECRET_1, SECRET_2] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} found in {path}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_files_and_ids_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "keys:\n  - alias: orders\n    description: x\n    rotate: 90\n").unwrap();
    let out = Command::new(BIN).args(["seed", "--check"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("unknown field `rotate`") && stderr.contains("line 4"),
        "{stderr}"
    );

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "keys:\n  - alias: orders\n    rotation: 90\n").unwrap();
    let out = Command::new(BIN).args(["seed", "--check"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.yaml: valid"));

    // The server checks chosen access key ids: a session-style id is refused.
    let mut config = kms_server::ServerConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let admin = admin_credentials(&dir.path().join("data"));
    let file = dir.path().join("ids.yaml");
    std::fs::write(&file, "users:\n  - name: ci\n    access_keys:\n      - id: ASIAWRONGPREFIX00001\n        secret_env: SEED_CI_SECRET\n").unwrap();
    let (ok, report, stderr) = seed(&server.local_addr.to_string(), &admin, SECRET_1, &[file.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        report.contains(
            "error      access key ASIAWRONGPREFIX00001 of ci: ValidationException: AccessKeyId must be AKIA"
        ),
        "{report}"
    );
    assert!(stderr.contains("1 entries failed"), "{stderr}");

    // A declared id that another principal holds is refused, not taken over.
    let addr = server.local_addr.to_string();
    let one = dir.path().join("one.yaml");
    std::fs::write(
        &one,
        format!("users:\n  - name: one\n    access_keys:\n      - id: {CI_KEY}\n        secret_env: SEED_CI_SECRET\n"),
    )
    .unwrap();
    let (ok, report, _) = seed(&addr, &admin, SECRET_1, &[one.to_str().unwrap()]).await;
    assert!(ok, "{report}");
    std::fs::write(
        &one,
        format!("users:\n  - name: two\n    access_keys:\n      - id: {CI_KEY}\n        secret_env: SEED_CI_SECRET\n"),
    )
    .unwrap();
    let (ok, report, _) = seed(&addr, &admin, SECRET_2, &[one.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        report.contains(&format!("error      access key {CI_KEY} of two: the id is taken by another principal")),
        "{report}"
    );
    // The first owner's secret still authenticates (it has no permissions, hence the denial).
    let still = sdk(&addr, CI_KEY, SECRET_1).list_aliases().send().await.unwrap_err();
    assert_eq!(still.code(), Some("AccessDeniedException"), "{still:?}");
    server.shutdown().await;
}

/// `serve --seed`: (whether it got ready, every stdout line up to "ready" or exit, stderr if it
/// exited), and the child when it runs.
fn serve_with_seed(data: &Path, seed_file: &Path) -> (Option<std::process::Child>, Vec<String>, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--seed")
        .arg(seed_file)
        .env("SEED_CI_SECRET", SECRET_1)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let ready = line.starts_with("ready;");
        seen.push(line);
        if ready {
            std::thread::spawn(move || for _ in lines {});
            return (Some(child), seen, String::new());
        }
    }
    let out = child.wait_with_output().unwrap();
    (None, seen, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_applies_the_seed_before_it_reports_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("seed.yaml");
    // The account is not known before the first start, so this file's key policy names none.
    std::fs::write(
        &file,
        format!(
            "users:\n  - name: ci\n    policies:\n      all: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 'kms:*', Resource: '*'}}]}}\n    access_keys:\n      - id: {CI_KEY}\n        secret_env: SEED_CI_SECRET\nkeys:\n  - alias: app\n    description: seeded at start\n"
        ),
    )
    .unwrap();

    let (child, lines, stderr) = tokio::task::spawn_blocking({
        let (data, file) = (data.clone(), file.clone());
        move || serve_with_seed(&data, &file)
    })
    .await
    .unwrap();
    let mut child = child.unwrap_or_else(|| panic!("did not get ready: {lines:?} {stderr}"));
    let summary = lines.iter().position(|l| l.starts_with("seed: 4 created")).expect("seed summary");
    assert_eq!(summary + 1, lines.len() - 1, "the seed is reported just before ready: {lines:?}");
    let addr = lines.iter().find_map(|l| l.strip_prefix("ferrokms listening on http://")).unwrap().to_owned();
    let ci = sdk(&addr, CI_KEY, SECRET_1);
    let key = ci.describe_key().key_id("alias/app").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(key.description.as_deref(), Some("seeded at start"));
    child.kill().unwrap();
    child.wait().unwrap();

    // A restart with the same file finds everything in place.
    let (child, lines, stderr) = tokio::task::spawn_blocking({
        let (data, file) = (data.clone(), file.clone());
        move || serve_with_seed(&data, &file)
    })
    .await
    .unwrap();
    let mut child = child.unwrap_or_else(|| panic!("did not get ready: {lines:?} {stderr}"));
    assert!(lines.iter().any(|l| l == "seed: nothing to change (4 already as declared)"), "{lines:?}");
    child.kill().unwrap();
    child.wait().unwrap();

    // An invalid file stops start-up with the file, line and reason, and never reports ready.
    std::fs::write(&file, "keys:\n  - alias: app\n    enabled: maybe\n").unwrap();
    let (child, lines, stderr) = tokio::task::spawn_blocking(move || serve_with_seed(&data, &file)).await.unwrap();
    assert!(child.is_none(), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("ready")));
    assert!(stderr.contains("seed.yaml") && stderr.contains("line 3"), "{stderr}");
}

/// Starts a server in `data`, for development or not.
async fn dev_server(data: &Path, development: bool) -> kms_server::RunningServer {
    let mut config = kms_server::ServerConfig::new(data.to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.insecure_dev_credentials = development;
    kms_server::start(config).await.unwrap()
}

/// Development key material: a seed file that pins a key's id and its material makes a key whose
/// ciphertext a fresh server (another data directory, another root key) seeded with the same file
/// decrypts; deleted material comes back on the next run; a server not started for development
/// refuses the pinned id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_development_keys_keep_test_data_decryptable_across_fresh_starts() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let material = base64::engine::general_purpose::STANDARD.encode([0x42u8; 32]);
    let pinned = "0f0e0d0c-0b0a-4908-8706-050403020100";
    let file = dir.path().join("dev.yaml");
    std::fs::write(
        &file,
        format!("keys:\n  - alias: fixtures\n    key_id: {pinned}\n    key_material_env: DEV_KEY_MATERIAL\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap().to_owned();
    let run = |addr: String, admin: (String, String), file: String, material: String| async move {
        let mut command = Command::new(BIN);
        command
            .args(["seed", &file, "--endpoint", &format!("http://{addr}")])
            .env("AWS_ACCESS_KEY_ID", &admin.0)
            .env("AWS_SECRET_ACCESS_KEY", &admin.1)
            .env("DEV_KEY_MATERIAL", material);
        let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };

    let first = dir.path().join("first");
    let server = dev_server(&first, true).await;
    let admin = admin_credentials(&first);
    let (ok, report) = run(server.local_addr.to_string(), admin.clone(), file.clone(), material.clone()).await;
    assert!(ok, "{report}");
    assert!(report.contains(&format!("created    key alias/fixtures ({pinned}, imported key material)")), "{report}");
    let kms = sdk(&server.local_addr.to_string(), &admin.0, &admin.1);
    let sealed = kms
        .encrypt()
        .key_id("alias/fixtures")
        .plaintext(Blob::new("fixture data"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    // Material deleted by hand is imported again by the next run.
    kms.delete_imported_key_material().key_id(pinned).send().await.unwrap();
    let (ok, report) = run(server.local_addr.to_string(), admin.clone(), file.clone(), material.clone()).await;
    assert!(ok && report.contains("key material imported"), "{report}");
    let (ok, report) = run(server.local_addr.to_string(), admin, file.clone(), material.clone()).await;
    assert!(ok && report.contains("nothing to change"), "{report}");
    server.shutdown().await;

    let fresh = dir.path().join("fresh");
    let server = dev_server(&fresh, true).await;
    let admin = admin_credentials(&fresh);
    let (ok, report) = run(server.local_addr.to_string(), admin.clone(), file.clone(), material.clone()).await;
    assert!(ok, "{report}");
    let kms = sdk(&server.local_addr.to_string(), &admin.0, &admin.1);
    let opened = kms.decrypt().ciphertext_blob(sealed).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"fixture data");
    server.shutdown().await;

    let production = dir.path().join("production");
    let server = dev_server(&production, false).await;
    let admin = admin_credentials(&production);
    let (ok, report) = run(server.local_addr.to_string(), admin, file, material).await;
    assert!(!ok, "{report}");
    assert!(report.contains("only for a server started for development"), "{report}");
    server.shutdown().await;
}
