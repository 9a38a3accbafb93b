//! Encrypt (32 bytes) throughput through real HTTP and SigV4 with `aws-sdk-kms` clients:
//! one node on SQLite, one node on PostgreSQL, two nodes on one PostgreSQL database (clients
//! split between them). Everything (servers, database, clients) shares this machine, so the
//! figures compare configurations; they are not a ceiling.
//!
//! Run: `cargo bench -p kms-server --bench cluster_throughput` (needs PostgreSQL on
//! 127.0.0.1:5432 and `psql`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    missing_docs
)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;

const CLIENTS: usize = 16;
const SECONDS: u64 = 5;

fn client(addr: std::net::SocketAddr, id: &str, secret: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "bench"))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

async fn run(clients: Vec<aws_sdk_kms::Client>, key: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let kms = clients[i % clients.len()].clone();
        let (key, done) = (key.to_owned(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if kms.encrypt().key_id(&key).plaintext(Blob::new([7u8; 32])).send().await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / SECONDS as f64
}

fn config(dir: &std::path::Path, store: Option<&str>, root_key: &std::path::Path) -> kms_server::ServerConfig {
    let mut cfg = kms_server::ServerConfig::new(dir.to_path_buf());
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.store_url = store.map(str::to_owned);
    cfg.root_key_file = Some(root_key.to_path_buf());
    cfg
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        kms_server::start(config(&dir.path().join("sqlite"), None, &dir.path().join("sqlite.key"))).await.unwrap();
    let admin = sqlite.new_admin.as_ref().unwrap();
    let (id, secret) =
        (admin.access_key_id.clone(), String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap());
    let kms = client(sqlite.local_addr, &id, &secret);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let sqlite_rate = run(vec![kms], &key).await;
    sqlite.shutdown().await;

    let name = format!("ferrokms_bench_{}", std::process::id());
    let base = "postgres://postgres@127.0.0.1:5432";
    let created = Command::new("psql")
        .args([&format!("{base}/postgres"), "-q", "-c", &format!("CREATE DATABASE {name}")])
        .output();
    if !created.is_ok_and(|o| o.status.success()) {
        println!(
            "Encrypt (32 B), {CLIENTS} clients, {SECONDS} s: SQLite one node {sqlite_rate:.0} req/s; PostgreSQL not reachable, skipped"
        );
        return;
    }
    let url = format!("{base}/{name}");
    let pg_key = dir.path().join("pg.key");
    let a = kms_server::start(config(&dir.path().join("a"), Some(&url), &pg_key)).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let (id, secret) =
        (admin.access_key_id.clone(), String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap());
    let kms_a = client(a.local_addr, &id, &secret);
    let key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let one_node = run(vec![kms_a.clone()], &key).await;
    let b = kms_server::start(config(&dir.path().join("b"), Some(&url), &pg_key)).await.unwrap();
    let kms_b = client(b.local_addr, &id, &secret);
    let two_nodes = run(vec![kms_a, kms_b], &key).await;
    a.shutdown().await;
    b.shutdown().await;
    let _ = Command::new("psql")
        .args([&format!("{base}/postgres"), "-q", "-c", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
        .output();

    println!("Encrypt (32 B) through HTTP+SigV4, {CLIENTS} aws-sdk-kms clients, {SECONDS} s each, all on this machine");
    println!("{:<36} {:>10} {:>7}", "configuration", "req/s", "ratio");
    for (label, rate) in [
        ("one node, SQLite", sqlite_rate),
        ("one node, PostgreSQL", one_node),
        ("two nodes, one PostgreSQL", two_nodes),
    ] {
        println!("{label:<36} {rate:>10.0} {:>7.2}", rate / sqlite_rate);
    }
}
