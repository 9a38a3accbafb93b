//! Shared by the crash and fault tests: start the real `ferrokms` binary, read its admin
//! credentials, build an SDK client, and a small seeded random number generator.

#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::print_stdout, clippy::indexing_slicing)] // tests say why they skip; JSON fields by name

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

/// A running `ferrokms serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// What the server printed on standard output up to its `ready;` line.
    pub first_output: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM (a clean stop), and wait for the exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap();
    }
}

/// Starts `ferrokms serve` on a free port with `command` (the binary, or a wrapper around it)
/// and waits until it is ready; `None` (with its output) if it exits first.
pub fn try_serve(command: Command, dir: &Path) -> Result<Server, String> {
    try_serve_with(command, dir, &[])
}

/// [`try_serve`] with `extra` arguments after `serve`'s own.
pub fn try_serve_with(mut command: Command, dir: &Path, extra: &[&str]) -> Result<Server, String> {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = None;
    let mut ready = false;
    let mut first_output = Vec::new();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        if let Some(a) = line.strip_prefix("ferrokms listening on http://") {
            addr = Some(a.to_owned());
        }
        ready = line.starts_with("ready;");
        first_output.push(line);
        if ready {
            break;
        }
    }
    if !ready {
        let output = child.wait_with_output().unwrap();
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    // Keep draining both pipes so the server never blocks on a full one.
    std::thread::spawn(move || for _ in lines {});
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    Ok(Server { child, addr: addr.expect("server printed its address"), first_output })
}

pub fn serve(dir: &Path) -> Server {
    try_serve(Command::new(BIN), dir).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

pub fn credentials(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .unwrap()
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

/// An SDK client without retries (a failed call is reported, not hidden) and with a timeout, so
/// that a call in flight when the server dies ends.
pub fn client(addr: &str, (id, secret): &(String, String)) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "robust-test"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_kms::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(30)).build(),
        )
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// `ferrokms audit verify` on a stopped server's data directory: (success, output).
pub fn audit_verify(dir: &Path) -> (bool, String) {
    let out = Command::new(BIN).args(["audit", "verify", "--data-dir"]).arg(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// SplitMix64: a tiny seeded generator, so that a failing run can be repeated from its seed.
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A number from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A PostgreSQL database of the test's own on the server at `FERROKMS_TEST_POSTGRES_URL`
/// (default 127.0.0.1:5432), dropped when this is.
pub struct TestDatabase {
    base: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates `<prefix>_<pid>`, or prints why it cannot and returns `None` (failing instead
    /// when `FERROKMS_REQUIRE_POSTGRES` is set).
    pub fn create(prefix: &str) -> Option<Self> {
        let base =
            std::env::var("FERROKMS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let base = base
            .trim_end_matches('/')
            .rsplit_once('/')
            .filter(|(_, db)| !db.contains(':'))
            .map_or(base.clone(), |(b, _)| b.to_owned());
        let name = format!("{prefix}_{}", std::process::id());
        match psql(&base, &format!("CREATE DATABASE {name}")) {
            Ok(out) if out.status.success() => {}
            other => {
                let why =
                    other.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string());
                assert!(
                    std::env::var_os("FERROKMS_REQUIRE_POSTGRES").is_none(),
                    "PostgreSQL required but not reachable: {why}"
                );
                println!("SKIPPED: PostgreSQL not reachable at {base}: {why}");
                return None;
            }
        }
        let url = format!("{base}/{name}");
        Some(Self { base, name, url })
    }
}

fn psql(base: &str, sql: &str) -> std::io::Result<std::process::Output> {
    Command::new("psql").args([&format!("{base}/postgres"), "-q", "-c", sql]).output()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = psql(&self.base, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The event ids of the records with one of `names` in the data directory's trail
/// (`ferrokms audit export`).
pub fn recorded_event_ids(data: &Path, names: &[&str]) -> Vec<String> {
    let out = Command::new(BIN).args(["audit", "export", "--data-dir"]).arg(data).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["eventName"].as_str().is_some_and(|n| names.contains(&n)))
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect()
}
