//! The audit trail delivered as CloudTrail delivers it (`serve --cloudtrail-dir`): gzip log files
//! of `{"Records": [...]}` laid out as CloudTrail lays them out, signed and chained digests, no
//! record lost or duplicated across a kill -9, and `ferrokms audit validate-logs` naming a log
//! file edited or removed and a digest removed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::disallowed_methods, // deadlines in wall time
    missing_docs
)]

mod support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use serde_json::Value;

fn serve(data: &Path, trail: &Path) -> support::Server {
    let mut command = Command::new(support::BIN);
    command
        .env("FERROKMS_CLOUDTRAIL_DIR", trail)
        .env("FERROKMS_CLOUDTRAIL_INTERVAL", "0.2")
        .env("FERROKMS_CLOUDTRAIL_DIGEST_INTERVAL", "1");
    support::try_serve(command, data).unwrap_or_else(|e| panic!("server did not start: {e}"))
}

fn files(dir: &Path, part: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.to_string_lossy().ends_with(".json.gz") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.retain(|p| p.to_string_lossy().contains(part));
    out.sort();
    out
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

/// Every delivered record's event id, with how many times it was delivered.
fn delivered(trail: &Path) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for path in files(trail, "/CloudTrail/") {
        let doc: Value = serde_json::from_slice(&gunzip(&path)).unwrap();
        for record in doc["Records"].as_array().unwrap() {
            *seen.entry(record["eventID"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    seen
}

/// The event ids of the CreateKey and Encrypt records in the data directory's trail.
fn recorded(data: &Path) -> Vec<String> {
    let out = Command::new(support::BIN).args(["audit", "export", "--data-dir"]).arg(data).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["eventName"] == "CreateKey" || r["eventName"] == "Encrypt")
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect()
}

fn validate(data: &Path, trail: &Path) -> (bool, String) {
    let out = Command::new(support::BIN)
        .args(["audit", "validate-logs", "--data-dir"])
        .arg(data)
        .arg("--dir")
        .arg(trail)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Waits until every id in `expected` is delivered and listed by a valid digest.
fn wait_delivered(data: &Path, trail: &Path, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = delivered(trail);
        let listed: usize = validate(data, trail)
            .1
            .split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if expected.iter().all(|id| seen.contains_key(id)) && listed == files(trail, "/CloudTrail/").len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered in time: {} of {}; {:?}; {listed} listed of {:?}",
            seen.len(),
            expected.len(),
            validate(data, trail),
            files(trail, "/CloudTrail/")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_is_delivered_as_cloudtrail_files_and_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (data, trail) = (dir.path().join("data"), dir.path().join("trail"));
    let server = serve(&data, &trail);
    let kms = support::client(&server.addr, &support::credentials(&data));
    for _ in 0..3 {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        kms.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = recorded(&data);
    assert_eq!(first.len(), 6);
    wait_delivered(&data, &trail, &first);

    // CloudTrail's layout and shape.
    let logs = files(&trail, "/CloudTrail/");
    let name = logs[0].strip_prefix(&trail).unwrap().to_string_lossy().into_owned();
    let parts: Vec<&str> = name.split('/').collect();
    assert_eq!((parts[0], parts[2], parts[3]), ("AWSLogs", "CloudTrail", "us-east-1"), "{name}");
    assert!(
        parts[7].starts_with(&format!("{}_CloudTrail_us-east-1_", parts[1])) && name.ends_with(".json.gz"),
        "{name}"
    );
    let digests = files(&trail, "/CloudTrail-Digest/");
    assert!(!digests.is_empty());
    let digest: Value = serde_json::from_slice(&gunzip(digests.last().unwrap())).unwrap();
    assert_eq!(digest["digestSignatureAlgorithm"], "SHA256withRSA");

    // Killed and restarted, delivery resumes: nothing lost, nothing delivered twice.
    server.kill();
    let server = serve(&data, &trail);
    let kms = support::client(&server.addr, &support::credentials(&data));
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.encrypt().key_id(&key).plaintext(Blob::new("y")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = recorded(&data);
    assert_eq!(all.len(), 8);
    wait_delivered(&data, &trail, &all);
    let seen = delivered(&trail);
    assert!(seen.values().all(|n| *n == 1), "a record delivered twice: {seen:?}");
    // Digests keep coming (one a second here), empty ones included.
    let deadline = Instant::now() + Duration::from_secs(10);
    while files(&trail, "/CloudTrail-Digest/").len() < 3 {
        assert!(Instant::now() < deadline, "no third digest");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
    let (ok, out) = validate(&data, &trail);
    assert!(ok, "{out}");

    // An edited log file, a removed log file, a removed digest: each named.
    let logs = files(&trail, "/CloudTrail/");
    let edited = &logs[0];
    let text = String::from_utf8(gunzip(edited)).unwrap().replacen("Encrypt", "Decrypt", 1).replacen(
        "CreateKey",
        "DeleteKey",
        1,
    );
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(edited).unwrap(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
    let (ok, out) = validate(&data, &trail);
    let edited_name = edited.strip_prefix(&trail).unwrap().to_string_lossy().into_owned();
    assert!(!ok && out.contains(&edited_name) && out.contains("edited"), "{out}");
    std::fs::remove_file(&logs[1]).unwrap();
    let (ok, out) = validate(&data, &trail);
    assert!(!ok && out.contains("missing"), "{out}");
    let digests = files(&trail, "/CloudTrail-Digest/");
    std::fs::remove_file(&digests[1]).unwrap();
    let (ok, out) = validate(&data, &trail);
    assert!(!ok && out.contains("a digest was removed"), "{out}");
}
