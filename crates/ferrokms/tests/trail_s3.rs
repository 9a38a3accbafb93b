//! The audit trail delivered to an S3-compatible bucket (`serve --cloudtrail-s3-bucket`),
//! against a real S3-compatible server the test starts (moto's server, from PyPI): CloudTrail's
//! object names under the prefix, every record delivered exactly once and every log file listed
//! by exactly one digest across an outage of the bucket and a kill -9 of ferrokms, the backlog
//! gauge rising during the outage and back to 0 after it, and the real `aws cloudtrail
//! validate-logs` finding every file valid, then naming a removed log file, an edited log file
//! and a removed digest.
//!
//! moto keeps its objects in memory, so the outage is made between ferrokms and moto: ferrokms
//! reaches the bucket through a TCP relay this test runs, which for the outage stops accepting
//! and cuts every open connection (connections are refused), then listens again.
//!
//! Without `moto_server` or the aws CLI the test prints `SKIPPED: …` and passes, unless
//! `FERROKMS_REQUIRE_S3` is set (CI sets it, after installing both).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods, // deadlines in wall time
    missing_docs
)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use serde_json::Value;

const BUCKET: &str = "audit-trail";
const PREFIX: &str = "org/kms";
const TRAIL: &str = "kms-trail";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn found(program: &str) -> bool {
    Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A `moto_server` on a free port; killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, port }
}

/// A TCP relay from `port` to `upstream`, which can be taken down (connections refused, open
/// ones cut) and brought back on the same port.
struct Relay {
    port: u16,
    upstream: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(upstream: u16) -> Self {
        let mut relay = Self {
            port: free_port(),
            upstream,
            down: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
            accepting: None,
        };
        relay.up();
        relay
    }

    fn up(&mut self) {
        self.down.store(false, Ordering::SeqCst);
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (down, open, upstream) = (Arc::clone(&self.down), Arc::clone(&self.open), self.upstream);
        self.accepting = Some(std::thread::spawn(move || {
            while !down.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                open.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        }));
    }

    fn down(&mut self) {
        self.down.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accepting.take() {
            thread.join().unwrap();
        }
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn s3_client(port: u16) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .force_path_style(true)
        .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "moto"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// What the bucket holds: log files (name → records' event ids) and digests (name → document,
/// signature metadata).
#[derive(Default)]
struct Bucket {
    logs: BTreeMap<String, Vec<String>>,
    digests: BTreeMap<String, (Value, BTreeMap<String, String>)>,
    other: Vec<String>,
}

impl Bucket {
    /// How many times each log file is listed by a digest.
    fn listings(&self) -> BTreeMap<String, usize> {
        let mut listed = BTreeMap::new();
        for (digest, _) in self.digests.values() {
            for file in digest["logFiles"].as_array().unwrap() {
                *listed.entry(file["s3Object"].as_str().unwrap().to_owned()).or_insert(0) += 1;
            }
        }
        listed
    }

    /// How many times each event id was delivered.
    fn deliveries(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for ids in self.logs.values() {
            for id in ids {
                *seen.entry(id.clone()).or_insert(0) += 1;
            }
        }
        seen
    }
}

async fn read_bucket(s3: &aws_sdk_s3::Client) -> Bucket {
    let mut bucket = Bucket::default();
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(BUCKET).into_paginator().send();
    while let Some(page) = pages.next().await {
        keys.extend(page.unwrap().contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    for key in keys {
        let object = s3.get_object().bucket(BUCKET).key(&key).send().await.unwrap();
        let metadata: BTreeMap<String, String> = object.metadata().cloned().unwrap_or_default().into_iter().collect();
        let body = gunzip(&object.body.collect().await.unwrap().into_bytes());
        let doc: Value = serde_json::from_slice(&body).unwrap();
        if key.contains("/CloudTrail-Digest/") {
            bucket.digests.insert(key, (doc, metadata));
        } else if key.contains("/CloudTrail/") {
            let ids = doc["Records"].as_array().unwrap().iter().map(|r| r["eventID"].as_str().unwrap().to_owned());
            bucket.logs.insert(key, ids.collect());
        } else {
            bucket.other.push(key);
        }
    }
    bucket
}

/// The event ids of the CreateKey and Encrypt records in the data directory's trail.
fn recorded(data: &Path) -> Vec<String> {
    support::recorded_event_ids(data, &["CreateKey", "Encrypt"])
}

/// [`recorded`], once the audit writer committed `n` of them (it commits in batches).
fn recorded_n(data: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = recorded(data);
        if ids.len() >= n {
            assert_eq!(ids.len(), n, "more records than calls");
            return ids;
        }
        assert!(Instant::now() < deadline, "{} of {n} records committed", ids.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every id in `expected` is delivered and every log file is listed by a digest.
async fn wait_delivered(s3: &aws_sdk_s3::Client, expected: &[String]) -> Bucket {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bucket = read_bucket(s3).await;
        let seen = bucket.deliveries();
        let listed = bucket.listings();
        if expected.iter().all(|id| seen.contains_key(id)) && bucket.logs.keys().all(|k| listed.contains_key(k)) {
            return bucket;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered in time: {} of {} records, {} of {} log files listed",
            expected.iter().filter(|id| seen.contains_key(*id)).count(),
            expected.len(),
            listed.len(),
            bucket.logs.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The server's `/metrics` value of `name`.
fn gauge(addr: &str, name: &str) -> Option<u64> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn serve(data: &Path, relay_port: u16) -> support::Server {
    let mut command = Command::new(support::BIN);
    command
        .env("FERROKMS_CLOUDTRAIL_INTERVAL", "0.2")
        .env("FERROKMS_CLOUDTRAIL_DIGEST_INTERVAL", "1")
        .env("FERROKMS_CLOUDTRAIL_S3_SECRET_ACCESS_KEY", "test");
    let endpoint = format!("http://127.0.0.1:{relay_port}");
    let flags = [
        "--cloudtrail-s3-bucket",
        BUCKET,
        "--cloudtrail-s3-prefix",
        PREFIX,
        "--cloudtrail-s3-endpoint",
        &endpoint,
        "--cloudtrail-s3-access-key-id",
        "test",
        "--cloudtrail-name",
        TRAIL,
    ];
    support::try_serve_with(command, data, &flags).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

async fn calls(kms: &aws_sdk_kms::Client, n: usize) {
    for _ in 0..n {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        kms.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    }
}

/// The aws CLI against ferrokms (CloudTrail) and moto (S3): (exit success, stdout, stderr).
fn aws(server: &str, moto: u16, (id, secret): &(String, String), args: &[&str]) -> (bool, String, String) {
    let out = Command::new("aws")
        .args(args)
        .args(["--endpoint-url", &format!("http://{server}"), "--region", "us-east-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_ENDPOINT_URL_S3", format!("http://127.0.0.1:{moto}"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_is_delivered_to_a_bucket_and_validate_logs_checks_it() {
    let required = std::env::var_os("FERROKMS_REQUIRE_S3").is_some();
    for (program, install) in [("moto_server", "pip install 'moto[server]'"), ("aws", "pip install awscli")] {
        if !found(program) {
            assert!(!required, "FERROKMS_REQUIRE_S3 is set but {program} is not installed ({install})");
            println!("SKIPPED: {program} is not installed ({install}); set FERROKMS_REQUIRE_S3=1 to fail instead");
            return;
        }
    }
    let started = Instant::now();
    let moto = start_moto();
    let s3 = s3_client(moto.port);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let mut relay = Relay::start(moto.port);
    let test_start = time::OffsetDateTime::now_utc() - time::Duration::minutes(2);

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, relay.port);
    let credentials = support::credentials(&data);
    let kms = support::client(&server.addr, &credentials);
    calls(&kms, 3).await;
    let first = recorded_n(&data, 6);
    let bucket = wait_delivered(&s3, &first).await;

    // CloudTrail's names, under the prefix.
    let account = bucket.logs.keys().next().unwrap().split('/').nth(3).unwrap().to_owned();
    for name in bucket.logs.keys() {
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts[..6], ["org", "kms", "AWSLogs", &account, "CloudTrail", "us-east-1"], "{name}");
        assert!(parts[9].starts_with(&format!("{account}_CloudTrail_us-east-1_")), "{name}");
        assert!(
            name.ends_with(".json.gz")
                && parts[9].len()
                    == format!("{account}_CloudTrail_us-east-1_20261207T0745Z_0123456789abcdef.json.gz").len(),
            "{name}"
        );
    }
    let (digest_name, (digest, metadata)) = bucket.digests.iter().next_back().unwrap();
    assert!(
        digest_name.starts_with(&format!("{PREFIX}/AWSLogs/{account}/CloudTrail-Digest/us-east-1/"))
            && digest_name.contains(&format!("/{account}_CloudTrail-Digest_us-east-1_{TRAIL}_us-east-1_")),
        "{digest_name}"
    );
    assert_eq!(digest["digestSignatureAlgorithm"], "SHA256withRSA");
    assert_eq!(digest["digestS3Bucket"], BUCKET);
    assert_eq!(digest["digestS3Object"], digest_name.as_str());
    assert_eq!(metadata.get("signature-algorithm").map(String::as_str), Some("SHA256withRSA"));
    assert_eq!(metadata.get("signature").map(String::len), Some(512), "RSA 2048, hex: {metadata:?}");
    assert!(bucket.other.is_empty(), "{:?}", bucket.other);
    assert_eq!(gauge(&server.addr, "ferrokms_cloudtrail_backlog_files"), Some(0));

    // The bucket is unreachable for a while: records wait (the backlog gauge says how many),
    // nothing reaches the bucket, the trail's status names the error; then all of it arrives.
    relay.down();
    let before_outage = read_bucket(&s3).await.logs.len();
    calls(&kms, 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = gauge(&server.addr, "ferrokms_cloudtrail_backlog_records").unwrap();
        if waiting >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the backlog gauge did not rise during the outage: {waiting}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(gauge(&server.addr, "ferrokms_cloudtrail_backlog_records").unwrap() >= 4);
    assert!(gauge(&server.addr, "ferrokms_cloudtrail_backlog_files").unwrap() >= 1, "a planned batch waits");
    assert_eq!(read_bucket(&s3).await.logs.len(), before_outage, "nothing was delivered during the outage");
    let trail_arn = format!("arn:aws:cloudtrail:us-east-1:{account}:trail/{TRAIL}");
    let (ok, out, err) =
        aws(&server.addr, moto.port, &credentials, &["cloudtrail", "get-trail-status", "--name", &trail_arn]);
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["IsLogging"], true);
    assert!(status["LatestDeliveryError"].as_str().is_some_and(|e| e.contains(BUCKET)), "{status}");
    relay.up();
    let second = recorded_n(&data, 10);
    wait_delivered(&s3, &second).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&server.addr, "ferrokms_cloudtrail_backlog_records") != Some(0)
        || gauge(&server.addr, "ferrokms_cloudtrail_backlog_files") != Some(0)
    {
        assert!(Instant::now() < deadline, "the backlog did not return to 0");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Killed (kill -9) mid-way and restarted: delivery resumes, nothing lost or duplicated.
    calls(&kms, 2).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.kill();
    let server = serve(&data, relay.port);
    let kms = support::client(&server.addr, &credentials);
    calls(&kms, 1).await;
    let all = recorded_n(&data, 16);
    // Digests follow every second: wait for one after the last log file, then check the whole.
    let bucket = wait_delivered(&s3, &all).await;
    let deliveries = bucket.deliveries();
    assert!(deliveries.values().all(|n| *n == 1), "a record delivered twice: {deliveries:?}");
    let listings = bucket.listings();
    assert!(listings.values().all(|n| *n == 1), "a log file listed by two digests: {listings:?}");
    assert_eq!(listings.len(), bucket.logs.len(), "a log file no digest lists");
    assert!(bucket.other.is_empty(), "{:?}", bucket.other);

    // The CloudTrail API validate-logs relies on, through the aws CLI.
    let (ok, out, err) = aws(&server.addr, moto.port, &credentials, &["cloudtrail", "describe-trails"]);
    assert!(ok, "{err}");
    let trails: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(trails["trailList"][0]["TrailARN"], trail_arn.as_str(), "{trails}");
    assert_eq!(trails["trailList"][0]["S3BucketName"], BUCKET);
    assert_eq!(trails["trailList"][0]["S3KeyPrefix"], PREFIX);
    let (ok, out, err) = aws(&server.addr, moto.port, &credentials, &["cloudtrail", "list-public-keys"]);
    assert!(ok, "{err}");
    let keys: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys["PublicKeyList"][0]["Fingerprint"], digest["digestPublicKeyFingerprint"], "{keys}");

    // The real validate-logs: everything valid.
    let start = test_start.format(&time::format_description::well_known::Rfc3339).unwrap();
    let validate = |server: &str| {
        aws(
            server,
            moto.port,
            &credentials,
            &["cloudtrail", "validate-logs", "--trail-arn", &trail_arn, "--start-time", &start, "--verbose"],
        )
    };
    let (ok, out, err) = validate(&server.addr);
    let logs = bucket.logs.len();
    assert!(ok, "validate-logs failed:\n{out}\n{err}");
    // (The CloudTrail calls above are audited too: more log files may have come since.)
    let count = |what: &str| {
        let line = out.lines().find(|l| l.ends_with(&format!(" {what} files valid"))).unwrap_or_default();
        let (valid, total) = line.split(' ').next().unwrap_or_default().split_once('/').unwrap_or_default();
        (valid.parse::<usize>().unwrap_or(0), total.parse::<usize>().unwrap_or(0))
    };
    let (valid_logs, all_logs) = count("log");
    assert!(valid_logs == all_logs && valid_logs >= logs, "{logs} log files delivered:\n{out}\n{err}");
    let (valid_digests, all_digests) = count("digest");
    assert!(valid_digests == all_digests && valid_digests >= 3, "{out}\n{err}");
    assert!(
        out.contains(" digest files valid") && !out.contains("INVALID") && !err.contains("INVALID"),
        "{out}\n{err}"
    );

    // A digest removed, a log file removed, another edited (two that the removed digest does
    // not list: validate-logs reaches a log file only through its digest): validate-logs names
    // each.
    let digests: Vec<&String> = bucket.digests.keys().collect();
    assert!(digests.len() >= 3, "{digests:?}");
    let removed_digest = digests[digests.len() / 2].clone();
    let unlisted: Vec<&String> = bucket
        .logs
        .keys()
        .filter(|name| {
            !bucket.digests[&removed_digest].0["logFiles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["s3Object"] == name.as_str())
        })
        .collect();
    let (removed, edited) = (unlisted[0].clone(), unlisted[1].clone());
    s3.delete_object().bucket(BUCKET).key(&removed_digest).send().await.unwrap();
    s3.delete_object().bucket(BUCKET).key(&removed).send().await.unwrap();
    let object = s3.get_object().bucket(BUCKET).key(&edited).send().await.unwrap();
    let text = String::from_utf8(gunzip(&object.body.collect().await.unwrap().into_bytes())).unwrap();
    let text = text.replacen("Encrypt", "Decrypt", 1).replacen("CreateKey", "DeleteKey", 1);
    s3.put_object()
        .bucket(BUCKET)
        .key(&edited)
        .body(aws_sdk_s3::primitives::ByteStream::from(gzip(text.as_bytes())))
        .send()
        .await
        .unwrap();
    let (ok, out, err) = validate(&server.addr);
    assert!(!ok, "validate-logs passed a tampered trail:\n{out}\n{err}");
    assert!(err.contains(&format!("Log file\ts3://{BUCKET}/{removed}\tINVALID: not found")), "{err}");
    assert!(err.contains(&format!("Log file\ts3://{BUCKET}/{edited}\tINVALID: hash value doesn't match")), "{err}");
    assert!(err.contains(&format!("Digest file\ts3://{BUCKET}/{removed_digest}\tINVALID: not found")), "{err}");
    server.stop();
    println!(
        "bucket delivery test: validate-logs found {valid_logs} log files and {valid_digests} digests valid, then \
         named the removed digest, the removed and the edited log file; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
