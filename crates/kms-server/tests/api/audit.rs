//! The audit trail end to end: every request leaves one CloudTrail-shaped record, allowed or
//! denied, authenticated or not; records carry no secrets; the chain detects tampering.

use aws_sdk_kms::primitives::Blob;
use kms_store::audit::{ChainBreak, verify_store};
use kms_store::{SqliteStore, Store};
use serde_json::{Value, json};

use crate::common::{client_for, code_of, signed, start};

async fn records(dir: &std::path::Path) -> Vec<Value> {
    let store = SqliteStore::open(&dir.join("ferrokms.db")).unwrap();
    let rows = store.audit_after(0, 10_000).await.unwrap();
    rows.iter().map(|r| serde_json::from_str(&r.record).unwrap()).collect()
}

#[tokio::test]
async fn every_request_is_recorded_without_secrets() {
    let t = start().await;
    let kms = t.client();
    let key = kms.create_key().description("audited").send().await.unwrap().key_metadata.unwrap();
    let plaintext = "AUDIT-PLAINTEXT-CANARY-91ab";
    let ct = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(plaintext))
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let dk = kms.generate_data_key().key_id(key.key_id()).number_of_bytes(32).send().await.unwrap();
    let data_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, dk.plaintext().unwrap().as_ref());
    assert_eq!(code_of(kms.decrypt().ciphertext_blob(ct).send().await), "InvalidCiphertextException");
    assert_eq!(code_of(kms.describe_key().key_id("alias/none").send().await), "NotFoundException");
    let (alice, alice_arn) = t.user("alice").await;
    assert_eq!(
        code_of(alice.encrypt().key_id(key.key_id()).plaintext(Blob::new("x")).send().await),
        "AccessDeniedException"
    );
    let stranger = client_for(t.server.local_addr, "AKIASTRANGER00000000", "nope", "us-east-1");
    assert_eq!(code_of(stranger.list_keys().send().await), "UnrecognizedClientException");
    let (status, _) = signed(
        t.server.local_addr,
        (&t.admin_id, &t.admin_secret, None),
        "sts",
        None,
        "application/x-www-form-urlencoded",
        b"Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert!(status.contains("200"));
    let alice_secret = {
        let k = t.admin("CreateAccessKey", json!({"UserName": "alice"})).await;
        k["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned()
    };
    // Import parameters and wrapped key material stay out of the trail (with the root key, the
    // token opens the wrapped material: recorded, deleted material could be recovered).
    let external = kms
        .create_key()
        .origin(aws_sdk_kms::types::OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let params = kms
        .get_parameters_for_import()
        .key_id(&external)
        .wrapping_algorithm(aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(aws_sdk_kms::types::WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    let token = params.import_token.unwrap();
    let wrapped = vec![0x5a_u8; 256];
    let imported = kms
        .import_key_material()
        .key_id(&external)
        .import_token(token.clone())
        .encrypted_key_material(Blob::new(wrapped.clone()))
        .expiration_model(aws_sdk_kms::types::ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await;
    assert_eq!(code_of(imported), "InvalidCiphertextException");
    let b64 = |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let (token_b64, wrapped_b64) = (b64(token.as_ref()), b64(&wrapped));
    let dir = t.dir.path().to_path_buf();
    let admin_secret = t.admin_secret.clone();
    t.server.shutdown().await;

    let all = records(&dir).await;
    let find = |name: &str, error: Option<&str>| {
        all.iter()
            .find(|r| r["eventName"] == name && r["errorCode"].as_str() == error)
            .unwrap_or_else(|| panic!("no {name} / {error:?} record in {all:#?}"))
            .clone()
    };
    let created = find("CreateKey", None);
    assert_eq!(created["eventSource"], "kms.amazonaws.com");
    assert_eq!(created["userIdentity"]["type"], "IAMUser");
    assert_eq!(created["userIdentity"]["userName"], "admin");
    assert_eq!(created["requestParameters"]["description"], "audited");
    assert_eq!(created["responseElements"]["keyMetadata"]["keyId"], key.key_id());
    assert_eq!(created["resources"][0]["ARN"], key.arn().unwrap());
    assert_eq!(created["readOnly"], false);
    let encrypt = find("Encrypt", None);
    assert_eq!(encrypt["requestParameters"]["encryptionContext"]["tenant"], "a");
    assert_eq!(encrypt["readOnly"], true);
    assert!(encrypt["responseElements"].is_null());
    assert_eq!(encrypt["awsRegion"], "us-east-1");
    assert!(encrypt["sourceIPAddress"].as_str().unwrap().starts_with("127."));
    assert!(encrypt["userAgent"].as_str().unwrap().contains("aws-sdk-rust"));
    find("GenerateDataKey", None);
    find("Decrypt", Some("InvalidCiphertextException"));
    find("DescribeKey", Some("NotFoundException"));
    let denied = find("Encrypt", Some("AccessDeniedException"));
    assert_eq!(denied["userIdentity"]["arn"], alice_arn.as_str());
    let unknown = find("ListKeys", Some("UnrecognizedClientException"));
    assert_eq!(unknown["userIdentity"]["type"], "Unknown");
    assert_eq!(unknown["userIdentity"]["accessKeyId"], "AKIASTRANGER00000000");
    let sts = find("GetCallerIdentity", None);
    assert_eq!(sts["eventSource"], "sts.amazonaws.com");
    let admin = find("CreateUser", None);
    assert_eq!(admin["eventSource"], "ferrokms.admin");
    find("CreateAccessKey", None);
    find("GetParametersForImport", None);
    let import = find("ImportKeyMaterial", Some("InvalidCiphertextException"));
    assert_eq!(import["requestParameters"]["expirationModel"], "KEY_MATERIAL_DOES_NOT_EXPIRE");
    let ids: std::collections::HashSet<_> = all.iter().map(|r| r["eventID"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), all.len(), "one record per request, each with its own id");

    let text = all.iter().map(Value::to_string).collect::<String>();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, plaintext);
    for secret in [
        plaintext,
        b64.as_str(),
        data_key.as_str(),
        admin_secret.as_str(),
        alice_secret.as_str(),
        token_b64.as_str(),
        wrapped_b64.as_str(),
    ] {
        assert!(!text.contains(secret), "a secret is in the audit trail");
    }
    let store = SqliteStore::open(&dir.join("ferrokms.db")).unwrap();
    let public_key = hex::decode(store.setting("audit_public_key").await.unwrap().unwrap()).unwrap();
    let report = verify_store(&store, Some(&public_key)).await.unwrap();
    assert_eq!(report.records, all.len() as u64);
    assert!(report.digests >= 1, "a clean shutdown signs a digest");
}

#[tokio::test]
async fn tampering_with_the_stored_trail_is_detected() {
    let t = start().await;
    let kms = t.client();
    for i in 0..6 {
        kms.create_key().description(format!("k{i}")).send().await.unwrap();
    }
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let db = dir.join("ferrokms.db");
    let store = SqliteStore::open(&db).unwrap();
    assert!(verify_store(&store, None).await.is_ok());
    use kms_store::test_support::{replace_sqlite_audit_rows, sqlite_audit_rows};
    let original = sqlite_audit_rows(&db).unwrap();
    let tamper = |change: &dyn Fn(&mut Vec<kms_store::audit::AuditRow>)| {
        let mut rows = original.clone();
        change(&mut rows);
        replace_sqlite_audit_rows(&db, &rows).unwrap();
    };
    let restore = || replace_sqlite_audit_rows(&db, &original).unwrap();

    tamper(&|rows| rows[3].record = rows[3].record.replace("\"k3\"", "\"k9\""));
    assert_eq!(verify_store(&store, None).await.err().unwrap().unwrap(), ChainBreak::Edited(4));
    restore();
    assert!(verify_store(&store, None).await.is_ok(), "restored");

    tamper(&|rows| {
        rows.remove(2);
    });
    let broken = verify_store(&store, None).await.err().unwrap().unwrap();
    assert!(matches!(broken, ChainBreak::Removed { first_missing: 3, .. }), "{broken}");
    restore();

    // Swap the contents of two records (a reordering).
    tamper(&|rows| {
        let (two, five) = (rows[1].clone(), rows[4].clone());
        rows[1] = kms_store::audit::AuditRow { seq: 2, ..five };
        rows[4] = kms_store::audit::AuditRow { seq: 5, ..two };
    });
    let broken = verify_store(&store, None).await.err().unwrap().unwrap();
    assert_eq!(broken, ChainBreak::Unlinked(2));
    restore();

    // Removing the newest records is caught by the signed digest of the clean shutdown.
    let count = original.len();
    tamper(&|rows| {
        rows.pop();
    });
    let broken = verify_store(&store, None).await.err().unwrap().unwrap();
    assert_eq!(broken, ChainBreak::DigestMismatch(count as u64));
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn key_last_usage_and_metrics_come_from_the_same_requests() {
    let t = start().await;
    let kms = t.client();
    let key = t.create_key().await;
    let before = kms.get_key_last_usage().key_id(&key).send().await.unwrap();
    assert!(before.key_last_usage().is_none(), "never used");
    assert!(before.tracking_start_date().is_some() && before.key_creation_date().is_some());
    for _ in 0..3 {
        kms.encrypt().key_id(&key).plaintext(Blob::new("m")).send().await.unwrap();
    }
    let (alice, _) = t.user("alice").await;
    assert_eq!(code_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    // Usage comes from the audit trail, which trails requests by the writer's linger interval.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = kms.get_key_last_usage().key_id(&key).send().await.unwrap();
    let usage = after.key_last_usage().unwrap();
    assert_eq!(usage.operation().unwrap().as_str(), "Encrypt");
    let event_id = usage.cloud_trail_event_id().unwrap().to_owned();
    assert!(after.key_id().unwrap().ends_with(&key));

    let metrics = http_get(t.server.local_addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"Success\"} 3"), "{metrics}");
    assert!(metrics.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"AccessDeniedException\"} 1"));
    assert!(metrics.contains("ferrokms_request_duration_seconds_count{operation=\"Encrypt\"} 4"));
    assert!(metrics.contains("ferrokms_keys{state=\"Enabled\"} 1"), "{metrics}");
    assert!(metrics.contains("ferrokms_key_cache_hit_ratio"));
    assert!(metrics.contains("ferrokms_audit_backlog"));

    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let all = records(&dir).await;
    let used = all.iter().find(|r| r["eventID"] == event_id.as_str()).unwrap();
    assert_eq!(used["eventName"], "Encrypt");
    assert!(used["errorCode"].is_null());
}

/// AWS KMS developer guide, "Determining past usage of a KMS key" / GetKeyLastUsage: a ReEncrypt
/// uses two keys, and CloudTrail's ReEncrypt record names both in `resources`; so it is the last
/// use of the source key and of the destination key.
#[tokio::test]
async fn re_encrypt_is_the_last_use_of_both_keys() {
    let t = start().await;
    let kms = t.client();
    let source = t.create_key().await;
    let destination = t.create_key().await;
    let ct = kms.encrypt().key_id(&source).plaintext(Blob::new("m")).send().await.unwrap().ciphertext_blob.unwrap();
    kms.encrypt().key_id(&destination).plaintext(Blob::new("n")).send().await.unwrap();
    kms.re_encrypt().ciphertext_blob(ct).destination_key_id(&destination).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut ids = Vec::new();
    for key in [&source, &destination] {
        let usage = kms.get_key_last_usage().key_id(key).send().await.unwrap().key_last_usage.unwrap();
        assert_eq!(usage.operation().map(|o| o.as_str()), Some("ReEncrypt"), "{key}");
        ids.push(usage.cloud_trail_event_id.unwrap());
    }
    assert_eq!(ids[0], ids[1], "the same request");
    let account = t.server.account.to_string();
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let all = records(&dir).await;
    let record = all.iter().find(|r| r["eventID"] == ids[0].as_str()).unwrap();
    let mut named: Vec<String> =
        record["resources"].as_array().unwrap().iter().map(|r| r["ARN"].as_str().unwrap().to_owned()).collect();
    named.sort();
    let mut expected: Vec<String> =
        [&source, &destination].iter().map(|k| format!("arn:aws:kms:us-east-1:{account}:key/{k}")).collect();
    expected.sort();
    assert_eq!(named, expected);
}

/// The records in the store right now, read through a second connection while the server runs
/// (SQLite's WAL lets it see everything committed).
async fn committed(store: &SqliteStore) -> Vec<Value> {
    let rows = store.audit_after(0, 10_000).await.unwrap();
    rows.iter().map(|r| serde_json::from_str(&r.record).unwrap()).collect()
}

fn named<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["eventName"] == name).collect()
}

/// A control-plane change and its record are committed together: the record is in the store
/// when the response arrives, without going through the batching writer (whose backlog stays
/// empty; it would hold the event for at least its linger interval). A refused change leaves
/// no success record, only its failure record, which the batching writer adds later.
#[tokio::test]
async fn control_plane_changes_commit_their_records_in_the_same_transaction() {
    let t = start().await;
    let kms = t.client();
    let svc = t.server.service.clone();
    let account = t.server.account.to_string();
    let store = SqliteStore::open(&t.dir.path().join("ferrokms.db")).unwrap();

    let key = kms.create_key().description("atomic").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(svc.audit_backlog(), 0, "CreateKey's event was queued for the batching writer");
    let now = committed(&store).await;
    let created = named(&now, "CreateKey");
    assert_eq!(created.len(), 1, "{now:#?}");
    // The same record the batching writer would have written.
    assert_eq!(created[0]["eventSource"], "kms.amazonaws.com");
    assert_eq!(created[0]["userIdentity"]["userName"], "admin");
    assert_eq!(created[0]["requestParameters"]["description"], "atomic");
    assert_eq!(created[0]["responseElements"]["keyMetadata"]["keyId"], key.key_id());
    assert_eq!(created[0]["resources"][0]["ARN"], key.arn().unwrap());
    assert_eq!(created[0]["readOnly"], false);
    assert!(created[0]["userAgent"].as_str().unwrap().contains("aws-sdk-rust"));
    assert!(created[0]["sourceIPAddress"].as_str().unwrap().starts_with("127."));
    assert!(created[0]["errorCode"].is_null());

    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"}]});
    kms.put_key_policy().key_id(key.key_id()).policy(policy.to_string()).send().await.unwrap();
    assert_eq!(svc.audit_backlog(), 0);
    let now = committed(&store).await;
    let put = named(&now, "PutKeyPolicy");
    assert_eq!(put.len(), 1, "{now:#?}");
    assert_eq!(put[0]["requestParameters"]["keyId"], key.key_id());
    assert!(put[0]["responseElements"].is_null(), "CloudTrail records null for an empty response");

    let scheduled = kms.schedule_key_deletion().key_id(key.key_id()).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(svc.audit_backlog(), 0);
    let now = committed(&store).await;
    let deletion = named(&now, "ScheduleKeyDeletion");
    assert_eq!(deletion.len(), 1, "{now:#?}");
    let response = &deletion[0]["responseElements"];
    assert_eq!(response["keyId"], key.arn().unwrap());
    assert_eq!(response["keyState"], "PendingDeletion");
    assert_eq!(response["pendingWindowInDays"], 7);
    let date = scheduled.deletion_date().unwrap();
    assert_eq!(response["deletionDate"].as_f64().unwrap().floor(), date.secs() as f64);

    t.admin("CreateUser", json!({"UserName": "bob"})).await;
    assert_eq!(svc.audit_backlog(), 0);
    let now = committed(&store).await;
    assert_eq!(named(&now, "CreateUser")[0]["eventSource"], "ferrokms.admin");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:user/admin")}, "Action": "sts:AssumeRole"}]});
    t.admin("CreateRole", json!({"RoleName": "auditor", "AssumeRolePolicyDocument": trust.to_string()})).await;
    let (status, xml) = signed(
        t.server.local_addr,
        (&t.admin_id, &t.admin_secret, None),
        "sts",
        None,
        "application/x-www-form-urlencoded",
        format!("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::{account}:role/auditor&RoleSessionName=s1")
            .as_bytes(),
    )
    .await;
    assert!(status.contains("200"), "{status} {xml}");
    assert_eq!(svc.audit_backlog(), 0);
    let now = committed(&store).await;
    let assumed = named(&now, "AssumeRole");
    assert_eq!(assumed.len(), 1, "{now:#?}");
    assert_eq!(assumed[0]["eventSource"], "sts.amazonaws.com");
    let credentials = &assumed[0]["responseElements"]["credentials"];
    assert!(credentials["accessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(credentials.get("secretAccessKey").is_none() && credentials.get("sessionToken").is_none());
    let secret = xml.split("<SecretAccessKey>").nth(1).unwrap().split('<').next().unwrap();
    assert!(!assumed[0].to_string().contains(secret), "the session's secret is in the audit trail");

    // A refused change: the alias exists. Only the first CreateAlias is recorded as a success.
    let target = t.create_key().await;
    kms.create_alias().alias_name("alias/atomic").target_key_id(&target).send().await.unwrap();
    let refused = kms.create_alias().alias_name("alias/atomic").target_key_id(&target).send().await;
    assert_eq!(code_of(refused), "AlreadyExistsException");
    let now = committed(&store).await;
    let aliases = named(&now, "CreateAlias");
    assert!(aliases.iter().all(|r| r["errorCode"].is_null()), "{aliases:#?}");
    assert_eq!(aliases.len(), 1, "no record for the refused change yet: {aliases:#?}");

    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let all = records(&dir).await;
    let aliases = named(&all, "CreateAlias");
    assert_eq!(aliases.len(), 2, "{aliases:#?}");
    assert!(aliases[0]["errorCode"].is_null());
    assert_eq!(aliases[1]["errorCode"], "AlreadyExistsException");
    assert!(aliases[1]["responseElements"].is_null());
    let ids: std::collections::HashSet<_> = all.iter().map(|r| r["eventID"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), all.len(), "one record per request");
    let public_key = hex::decode(store.setting("audit_public_key").await.unwrap().unwrap()).unwrap();
    let report = verify_store(&store, Some(&public_key)).await.unwrap();
    assert_eq!(report.records, all.len() as u64);
}

/// Retention removes records older than the period, up to a signed digest that then anchors the
/// rest: the trail still verifies, and removing the anchor is detected.
#[tokio::test]
async fn retention_prunes_and_the_rest_still_verifies() {
    let (t, clock) = crate::common::start_with_clock().await;
    for _ in 0..3 {
        t.create_key().await;
    }
    let dir = t.dir;
    t.server.shutdown().await; // the clean stop signs a digest over everything

    clock.advance_millis(8 * 365 * 86_400_000);
    let mut later = crate::common::config(dir.path());
    later.clock = clock.clone();
    let t = crate::common::start_with(later, dir).await;
    let pruned = t.server.service.prune_audit_trail().await.unwrap();
    assert_eq!(pruned, 2, "all but the record the digest pins");
    assert_eq!(t.server.service.prune_audit_trail().await.unwrap(), 0, "nothing left to prune");
    let dir = t.dir;
    t.server.shutdown().await;

    let db = dir.path().join("ferrokms.db");
    let store = SqliteStore::open(&db).unwrap();
    let event = kms_core::audit::AuditEvent {
        event_id: "after-retention".into(),
        time: kms_core::Clock::now(clock.as_ref()),
        event_name: "ListKeys".into(),
        key_arn: None,
        other_key_arn: None,
        principal: "arn:aws:iam::111122223333:root".into(),
        error_code: None,
        record: json!({"eventName": "ListKeys"}).to_string(),
    };
    store.append_audit([event].into()).await.unwrap();
    let public_key = hex::decode(store.setting("audit_public_key").await.unwrap().unwrap()).unwrap();
    let report = verify_store(&store, Some(&public_key)).await.unwrap();
    assert_eq!(report.records, 2, "the anchor and the record written after the prune");

    rusqlite::Connection::open(&db).unwrap().execute_batch("DELETE FROM audit_digests").unwrap();
    let broken = verify_store(&store, None).await.err().unwrap().unwrap();
    assert!(matches!(broken, ChainBreak::Removed { first_missing: 1, .. }), "{broken}");
}

/// Sends `head` (with `Expect: 100-continue`) and the body only if the server asks for it, so
/// that a request refused before its body is read gets its answer instead of a reset
/// connection. Returns the final (status line, body).
async fn post_expecting_continue(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    async fn response_head(stream: &mut tokio::net::TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = head.replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = response_head(&mut stream).await;
    if answer.starts_with("HTTP/1.1 100") {
        stream.write_all(body).await.unwrap();
        answer = response_head(&mut stream).await;
    }
    let length: usize = answer
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut text = vec![0u8; length];
    stream.read_exact(&mut text).await.unwrap();
    (answer.lines().next().unwrap().to_owned(), String::from_utf8(text).unwrap())
}

/// Anonymous requests cannot fill the audit trail: the first few (the source's burst) are
/// recorded as CloudTrail records them, without their parameters, and past the burst they are
/// answered `ThrottlingException` without being read or recorded; a request that fails its
/// signature from the same address is throttled too, while a correctly signed one is served.
/// (Before, each 1 MiB body was stored whole, for seven years, without limit.)
#[tokio::test]
async fn anonymous_requests_cannot_fill_the_audit_trail() {
    const REQUESTS: usize = 10;
    const BURST: u32 = 3;
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.connections.failed_auth_burst = BURST;
    config.connections.failed_auth_per_second = 0;
    let t = crate::common::start_with(config, dir).await;
    let addr = t.server.local_addr;
    let canary = "ANONYMOUS-BODY-CANARY-";
    let filler = canary.repeat((1024 * 1024 - 64) / canary.len());
    let body = format!(r#"{{"KeyId":"alias/x","Description":"{filler}"}}"#);
    assert!(body.len() <= 1024 * 1024);
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amz-target: TrentService.CreateKey\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut answers = Vec::new();
    for _ in 0..REQUESTS {
        answers.push(post_expecting_continue(addr, &head, body.as_bytes()).await);
    }
    let code = |text: &str| serde_json::from_str::<Value>(text).unwrap()["__type"].as_str().unwrap().to_owned();
    let codes: Vec<String> = answers.iter().map(|(_, text)| code(text)).collect();
    let burst = usize::try_from(BURST).unwrap();
    assert!(codes[..burst].iter().all(|c| c == "MissingAuthenticationTokenException"), "{codes:?}");
    assert!(codes[burst..].iter().all(|c| c == "ThrottlingException"), "{codes:?}");
    let (status, text) = &answers[REQUESTS - 1];
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(serde_json::from_str::<Value>(text).unwrap()["message"], "Rate exceeded");

    // A bad signature from the same address is throttled as well; a good one is served.
    let stranger = client_for(addr, &t.admin_id, "not-the-secret", "us-east-1");
    assert_eq!(code_of(stranger.list_keys().send().await), "ThrottlingException");
    t.client().list_keys().send().await.expect("a signed request from the same address is served");

    let metrics = http_get(addr, "/metrics").await;
    let refused = REQUESTS - burst + 1;
    assert!(metrics.contains(&format!("ferrokms_unauthenticated_throttled_total {refused}")), "{metrics}");
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;

    let all = records(&dir).await;
    let anonymous: Vec<&Value> =
        all.iter().filter(|r| r["errorCode"] == "MissingAuthenticationTokenException").collect();
    assert_eq!(anonymous.len(), burst, "only the burst is recorded");
    assert!(anonymous.iter().all(|r| r["requestParameters"].is_null()), "recorded without parameters");
    assert!(!all.iter().any(|r| r["errorCode"] == "ThrottlingException"), "refusals are not recorded");
    let stored: usize = all.iter().map(|r| r.to_string().len()).sum();
    assert!(!all.iter().any(|r| r.to_string().contains(canary)), "no anonymous body in the trail");
    assert!(stored < 16 * 1024, "{REQUESTS} anonymous 1 MiB requests stored {stored} bytes of audit records");
}

/// A request whose credential cannot be loaded because the store fails (as while a PostgreSQL
/// standby is being promoted) failed by the server's fault, not its source's: it is answered
/// `KMSInternalException` however often it happens, recorded, and does not count towards the
/// source's failed-authentication limit. (Before, past the burst it was answered
/// `ThrottlingException` and not recorded.)
#[tokio::test]
async fn a_store_failure_during_authentication_is_not_held_against_the_source() {
    const BURST: u32 = 2;
    const FAILING: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::config(dir.path());
    config.connections.failed_auth_burst = BURST;
    config.connections.failed_auth_per_second = 0;
    let t = crate::common::start_with(config, dir).await;
    // The credential is not cached yet: the first request reads it, and cannot.
    let db = rusqlite::Connection::open(t.dir.path().join("ferrokms.db")).unwrap();
    db.execute_batch("ALTER TABLE access_keys RENAME TO access_keys_away").unwrap();
    let kms = t.client();
    for _ in 0..FAILING {
        assert_eq!(code_of(kms.list_keys().send().await), "KMSInternalException");
    }
    db.execute_batch("ALTER TABLE access_keys_away RENAME TO access_keys").unwrap();
    kms.list_keys().send().await.expect("served once the store answers");
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let all = records(&dir).await;
    let failed = all.iter().filter(|r| r["errorCode"] == "KMSInternalException").count();
    assert_eq!(failed, FAILING, "every failure is recorded");
}
