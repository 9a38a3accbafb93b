//! The audit trail delivered as CloudTrail delivers it (`serve --cloudtrail-dir`): gzip log files
//! of `{"Records": [...]}` laid out as CloudTrail lays them out, signed and chained digests, no
//! record lost or duplicated across a kill -9, and `ferrokms audit validate-logs` naming a log
//! file edited or removed and a digest removed. And the CloudTrail API that describes the trail
//! and its digest keys (DescribeTrails, GetTrail, GetTrailStatus, ListTrails, ListPublicKeys),
//! through boto3: CloudTrail's shapes and exceptions, authorized by `cloudtrail:` actions. (The
//! bucket delivery and `aws cloudtrail validate-logs` are tested in `trail_s3.rs`.)

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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use serde_json::Value;

fn serve(data: &Path, trail: &Path) -> support::Server {
    serve_with(Command::new(support::BIN), data, trail)
}

fn serve_with(mut command: Command, data: &Path, trail: &Path) -> support::Server {
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
    support::recorded_event_ids(data, &["CreateKey", "Encrypt"])
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

/// The CloudTrail API over the configured trail, as boto3 calls it.
const BOTO3_TRAIL_API: &str = r#"
import boto3, datetime, json, os, time, rsa
from botocore.exceptions import ClientError
endpoint = os.environ['ENDPOINT']
client = lambda service, **kw: boto3.client(service, endpoint_url=endpoint, region_name='us-east-1', **kw)
ct, iam, sts = client('cloudtrail'), client('iam'), client('sts')
account = sts.get_caller_identity()['Account']
arn = f'arn:aws:cloudtrail:us-east-1:{account}:trail/audit.main'
def code(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    raise AssertionError(f'{call} {kw} went through')

trails = ct.describe_trails()['trailList']
assert len(trails) == 1, trails
trail = trails[0]
assert trail['TrailARN'] == arn and trail['Name'] == 'audit.main' and trail['HomeRegion'] == 'us-east-1', trail
assert trail['S3BucketName'] == 'local' and 'S3KeyPrefix' not in trail, trail
assert trail['LogFileValidationEnabled'] and trail['IsMultiRegionTrail'] and not trail['IsOrganizationTrail'], trail
assert ct.describe_trails(trailNameList=['audit.main'])['trailList'] == trails
assert ct.describe_trails(trailNameList=['other', arn])['trailList'] == trails
assert ct.describe_trails(trailNameList=['other'])['trailList'] == []
assert ct.describe_trails(trailNameList=[arn.replace(account, '999988887777')])['trailList'] == []
assert code(ct.describe_trails, trailNameList=['-bad']) == 'InvalidTrailNameException'
assert code(ct.describe_trails, trailNameList=['arn:aws:cloudtrail:us-east-1:12:trail/x']) == 'CloudTrailARNInvalidException'
assert ct.get_trail(Name='audit.main')['Trail'] == trail
assert ct.get_trail(Name=arn)['Trail'] == trail
assert code(ct.get_trail, Name='other') == 'TrailNotFoundException'
assert code(ct.get_trail_status, Name=arn.replace('audit.main', 'other')) == 'TrailNotFoundException'
assert code(ct.get_trail, Name='a..b') == 'InvalidTrailNameException'
assert ct.list_trails()['Trails'] == [{'TrailARN': arn, 'Name': 'audit.main', 'HomeRegion': 'us-east-1'}]

# Once delivery has run: its status, and the digest key.
deadline = time.time() + 15
while True:
    keys = ct.list_public_keys()['PublicKeyList']
    status = ct.get_trail_status(Name=arn)
    if keys and 'LatestDigestDeliveryTime' in status and 'LatestDeliveryTime' in status:
        break
    assert time.time() < deadline, (keys, status)
    time.sleep(0.2)
assert status['IsLogging'] and 'LatestDeliveryError' not in status, status
assert len(keys) == 1, keys
key = keys[0]
public = rsa.PublicKey.load_pkcs1(key['Value'], format='DER')  # PKCS#1 RSAPublicKey, as validate-logs loads it
assert public.n.bit_length() == 2048, public
assert len(key['Fingerprint']) == 64 and 'ValidityEndTime' not in key, key
now = datetime.datetime.now(datetime.timezone.utc)
assert key['ValidityStartTime'] <= now, key
long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
assert ct.list_public_keys(StartTime=long_ago, EndTime=long_ago + datetime.timedelta(days=1))['PublicKeyList'] == []
assert ct.list_public_keys(StartTime=long_ago)['PublicKeyList'] == keys
assert code(ct.list_public_keys, StartTime=now, EndTime=now - datetime.timedelta(days=1)) == 'InvalidTimeRangeException'
assert code(ct.list_public_keys, NextToken='x') == 'InvalidTokenException'
print(key['Fingerprint'])

# Authorized by cloudtrail: actions: a user allowed DescribeTrails and ListPublicKeys only.
iam.create_user(UserName='reader')
made = iam.create_access_key(UserName='reader')['AccessKey']
iam.put_user_policy(UserName='reader', PolicyName='read', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [
    {'Effect': 'Allow', 'Action': ['cloudtrail:DescribeTrails', 'cloudtrail:ListPublicKeys'], 'Resource': '*'}]}))
reader = client('cloudtrail', aws_access_key_id=made['AccessKeyId'], aws_secret_access_key=made['SecretAccessKey'])
assert reader.describe_trails()['trailList'] == trails
assert reader.list_public_keys()['PublicKeyList'] == keys
for call in (reader.get_trail, reader.get_trail_status):
    assert code(call, Name=arn) == 'AccessDeniedException'
assert code(reader.list_trails) == 'AccessDeniedException'

# A server delivering no trail has none to describe.
bare = boto3.client('cloudtrail', endpoint_url=os.environ['BARE_ENDPOINT'], region_name='us-east-1',
                    aws_access_key_id=os.environ['BARE_ID'], aws_secret_access_key=os.environ['BARE_SECRET'])
assert bare.describe_trails()['trailList'] == []
assert bare.list_public_keys()['PublicKeyList'] == []
assert code(bare.get_trail, Name='audit.main') == 'TrailNotFoundException'
"#;

#[test]
fn boto3_describes_the_trail_and_its_digest_keys() {
    let python = Command::new("python3").args(["-c", "import boto3, rsa"]).output().is_ok_and(|o| o.status.success());
    if !python {
        assert!(
            std::env::var_os("FERROKMS_REQUIRE_PYTHON_CLIENTS").is_none(),
            "boto3 is required (FERROKMS_REQUIRE_PYTHON_CLIENTS is set) but not installed"
        );
        println!("SKIPPED: boto3 (with rsa) is not installed (pip install awscli boto3)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, trail, bare) = (dir.path().join("data"), dir.path().join("trail"), dir.path().join("bare"));
    let mut command = Command::new(support::BIN);
    command.env("FERROKMS_CLOUDTRAIL_NAME", "audit.main");
    let server = serve_with(command, &data, &trail);
    let other = support::serve(&bare);
    let (bare_id, bare_secret) = support::credentials(&bare);
    let out = Command::new("python3")
        .args(["-c", BOTO3_TRAIL_API])
        .env("ENDPOINT", format!("http://{}", server.addr))
        .env("BARE_ENDPOINT", format!("http://{}", other.addr))
        .env("BARE_ID", bare_id)
        .env("BARE_SECRET", bare_secret)
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("admin-credentials"))
        .env("AWS_PROFILE", "ferrokms")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // The digests name the key ListPublicKeys serves.
    let fingerprint = stdout.trim();
    let digests = files(&trail, "/CloudTrail-Digest/");
    let digest: Value = serde_json::from_slice(&gunzip(digests.last().unwrap())).unwrap();
    assert_eq!(digest["digestPublicKeyFingerprint"], fingerprint);
    assert!(digests.last().unwrap().to_string_lossy().contains("_CloudTrail-Digest_us-east-1_audit.main_us-east-1_"));
}
