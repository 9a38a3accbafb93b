//! `ferrokms keys …` against a real server: the binary is run with the endpoint and credentials
//! in the usual AWS environment variables, and its effects are checked with `aws-sdk-kms`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::path::Path;
use std::process::Command;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::types::KeyState;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

struct Server {
    server: kms_server::RunningServer,
    id: String,
    secret: String,
    dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("data/admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim_start_matches([' ', '=']).trim().to_owned()
    };
    Server { id: field("aws_access_key_id"), secret: field("aws_secret_access_key"), server, dir }
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.server.local_addr)
    }

    fn sdk(&self) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(Credentials::new(&self.id, &self.secret, None, None, "test"))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Runs `ferrokms keys ARGS` with a clean AWS environment pointing at this server.
    async fn keys(&self, endpoint_var: &str, args: &[&str]) -> (bool, String, String) {
        let mut command = Command::new(BIN);
        command.arg("keys").args(args);
        clean_aws_env(&mut command, self.dir.path());
        command
            .env(endpoint_var, self.url())
            .env("AWS_ACCESS_KEY_ID", &self.id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "us-east-1");
        let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        (out.status.success(), stdout, stderr)
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.keys("AWS_ENDPOINT_URL_KMS", args).await;
        assert!(ok, "keys {args:?} failed: {stderr}");
        stdout
    }
}

/// No profile, config file or instance metadata from the machine running the tests.
fn clean_aws_env(command: &mut Command, home: &Path) {
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.env("HOME", home).env("AWS_EC2_METADATA_DISABLED", "true");
}

/// The cells of the table row that contains `needle`.
fn row<'a>(table: &'a str, needle: &str) -> Vec<&'a str> {
    let line = table.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no row with {needle}:\n{table}"));
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_with_readable_tables() {
    let s = start().await;
    let kms = s.sdk();

    let shown = s
        .ok(&[
            "create",
            "--alias",
            "orders",
            "--description",
            "Order database",
            "--rotate",
            "180",
            "--tag",
            "team=payments",
            "--tag",
            "env=ci",
        ])
        .await;
    assert_eq!(row(&shown, "Aliases"), ["Aliases", "alias/orders"]);
    assert_eq!(row(&shown, "Description"), ["Description", "Order database"]);
    assert_eq!(row(&shown, "Rotation"), ["Rotation", "180 days"]);
    assert_eq!(row(&shown, "State"), ["State", "Enabled"]);
    assert_eq!(row(&shown, "Tags"), ["Tags", "env=ci, team=payments"]);
    let key_id = row(&shown, "Key ID")[1].to_owned();

    let described = kms.describe_key().key_id("alias/orders").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(described.key_id, key_id);
    assert_eq!(described.description.as_deref(), Some("Order database"));
    let rotation = kms.get_key_rotation_status().key_id(&key_id).send().await.unwrap();
    assert!(rotation.key_rotation_enabled);
    assert_eq!(rotation.rotation_period_in_days, Some(180));

    // A key without alias or rotation (asymmetric specs are not served by ferrokms yet).
    let plain = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;

    let list = s.ok(&["list"]).await;
    let header: Vec<&str> = list.lines().next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["ALIAS", "KEY ID", "STATE", "USAGE", "SPEC", "ROTATION", "CREATED"]);
    let orders = row(&list, &key_id);
    assert_eq!(
        &orders[..6],
        ["alias/orders", key_id.as_str(), "Enabled", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "180 days"]
    );
    assert!(orders[6].starts_with("20"), "created date: {orders:?}");
    assert_eq!(
        &row(&list, &plain)[..6],
        ["-", plain.as_str(), "Enabled", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "off"]
    );

    assert!(s.ok(&["disable", "alias/orders"]).await.contains("disabled alias/orders"));
    let state = |kms: aws_sdk_kms::Client, id: String| async move {
        kms.describe_key().key_id(id).send().await.unwrap().key_metadata.unwrap().key_state.unwrap()
    };
    assert_eq!(state(kms.clone(), key_id.clone()).await, KeyState::Disabled);
    s.ok(&["enable", &key_id]).await;
    assert_eq!(state(kms.clone(), key_id.clone()).await, KeyState::Enabled);

    s.ok(&["rotate", "alias/orders"]).await;
    let rotations = kms.list_key_rotations().key_id(&key_id).send().await.unwrap().rotations.unwrap_or_default();
    assert_eq!(rotations.len(), 1);

    let scheduled = s.ok(&["schedule-deletion", &key_id, "--days", "7"]).await;
    assert!(scheduled.contains("PendingDeletion"), "{scheduled}");
    assert_eq!(state(kms.clone(), key_id.clone()).await, KeyState::PendingDeletion);
    assert_eq!(row(&s.ok(&["show", &key_id]).await, "State"), ["State", "PendingDeletion"]);
    s.ok(&["cancel-deletion", &key_id]).await;
    assert_eq!(state(kms.clone(), key_id.clone()).await, KeyState::Disabled);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_aws_exceptions_and_the_generic_endpoint_variable_works() {
    let s = start().await;
    let (ok, _, stderr) = s.keys("AWS_ENDPOINT_URL_KMS", &["show", "alias/missing"]).await;
    assert!(!ok);
    assert!(stderr.contains("NotFoundException"), "{stderr}");
    let (ok, _, stderr) = s.keys("AWS_ENDPOINT_URL_KMS", &["schedule-deletion", "alias/missing", "--days", "3"]).await;
    assert!(!ok);
    assert!(stderr.contains("ValidationException") || stderr.contains("NotFoundException"), "{stderr}");

    // AWS_ENDPOINT_URL (all services) is honoured as well as the KMS-specific variable.
    let (ok, stdout, stderr) = s.keys("AWS_ENDPOINT_URL", &["create", "--alias", "alias/generic"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(row(&stdout, "Aliases"), ["Aliases", "alias/generic"]);
    let (ok, stdout, _) = s.keys("AWS_ENDPOINT_URL", &["list"]).await;
    assert!(ok && stdout.contains("alias/generic"), "{stdout}");
    s.server.shutdown().await;
}
