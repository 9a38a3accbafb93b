//! Two nodes on one PostgreSQL database: background work (the scheduler, event delivery) runs
//! on one node at a time, and the other takes over when that node stops.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{client_for, config, signed};
use crate::events::{slow_receiver, wait_for};

const DAY: i64 = 86_400_000;

struct Database {
    admin_url: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = Command::new("psql").args([&self.admin_url, "-q", "-c", &sql]).output();
    }
}

fn database(label: &str) -> Option<(Database, String)> {
    let base =
        std::env::var("FERROKMS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("ferrokms_cluster_{label}_{}", std::process::id());
    let admin_url = format!("{base}/postgres");
    let created = Command::new("psql").args([&admin_url, "-q", "-c", &format!("CREATE DATABASE {name}")]).output();
    match created {
        Ok(out) if out.status.success() => Some((Database { admin_url, name: name.clone() }, format!("{base}/{name}"))),
        other => {
            let why = other.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string());
            assert!(std::env::var_os("FERROKMS_REQUIRE_POSTGRES").is_none(), "PostgreSQL required: {why}");
            println!("SKIPPED: PostgreSQL not reachable: {why}");
            None
        }
    }
}

/// A node's configuration: its own data directory under `dir`, the shared database `url`, and
/// the root key file every node of the cluster shares.
fn node_config(dir: &std::path::Path, url: &str, name: &str) -> kms_server::ServerConfig {
    let mut cfg = config(&dir.join(name));
    cfg.store_url = Some(url.to_owned());
    cfg.root_key_file = Some(dir.join("root.key"));
    cfg
}

#[tokio::test]
async fn background_work_runs_once_and_fails_over() {
    let Some((_db, url)) = database("failover") else { return };
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/", hook.local_addr().unwrap());
    // A slow receiver keeps deliveries in flight long enough that two delivering nodes would
    // both send the same event.
    let received = slow_receiver(hook, Duration::from_millis(300));
    let clock = Arc::new(kms_core::ManualClock::new(kms_core::Clock::now(&kms_server::clock::SystemClock)));
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let mut cfg = node_config(dir.path(), &url, name);
        cfg.clock = clock.clone();
        cfg.scheduler_interval_millis = 100;
        cfg.event_poll_millis = 50;
        cfg.event_sinks =
            vec![kms_server::events::Sink::Webhook { url: hook_url.clone(), secret: "hook-secret".into() }];
        cfg
    };
    let a = kms_server::start(node("a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let id = admin.access_key_id.clone();
    let b = kms_server::start(node("b")).await.unwrap();
    assert!(b.new_admin.is_none());
    let kms_a = client_for(a.local_addr, &id, &secret, "us-east-1");
    let kms_b = client_for(b.local_addr, &id, &secret, "us-east-1");
    let key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms_a.enable_key_rotation().key_id(&key).rotation_period_in_days(90).send().await.unwrap();

    // Both nodes' schedulers tick every 100 ms; the due rotation happens once, one event goes out.
    clock.advance_millis(90 * DAY);
    tokio::time::sleep(Duration::from_millis(800)).await;
    clock.advance_millis(-90 * DAY);
    assert_eq!(kms_b.list_key_rotations().key_id(&key).send().await.unwrap().rotations().len(), 1);
    let events = wait_for(&received, 1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once: {events:?}");

    // The first node stops; the other takes over the scheduler and the deliveries.
    a.shutdown().await;
    clock.advance_millis(180 * DAY);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    clock.advance_millis(-180 * DAY);
    assert_eq!(kms_b.list_key_rotations().key_id(&key).send().await.unwrap().rotations().len(), 2);
    let events = wait_for(&received, 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(received.lock().unwrap().len(), 2, "{events:?}");
    b.shutdown().await;
}

/// Conflicting requests through two nodes at once keep AWS's rules: one alias per name, the
/// on-demand rotation limit, and a single audit chain that verifies.
#[tokio::test]
async fn conflicting_requests_through_two_nodes() {
    let Some((_db, url)) = database("conflicts") else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| node_config(dir.path(), &url, name);
    let a = kms_server::start(node("a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let id = admin.access_key_id.clone();
    let b = kms_server::start(node("b")).await.unwrap();
    let (kms_a, kms_b) =
        (client_for(a.local_addr, &id, &secret, "us-east-1"), client_for(b.local_addr, &id, &secret, "us-east-1"));
    let key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;

    for round in 0..5 {
        let name = format!("alias/contested-{round}");
        let (ra, rb) = tokio::join!(
            kms_a.create_alias().alias_name(&name).target_key_id(&key).send(),
            kms_b.create_alias().alias_name(&name).target_key_id(&key).send()
        );
        assert!(ra.is_ok() != rb.is_ok(), "exactly one node creates {name}");
    }

    // 30 on-demand rotations requested through both nodes at once: exactly 25 happen.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let kms = if i % 2 == 0 { kms_a.clone() } else { kms_b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            // A client retries ConflictException, as the SDKs' retry policies do.
            loop {
                let result = kms.rotate_key_on_demand().key_id(&key).send().await;
                let code = match &result {
                    Ok(_) => return true,
                    Err(e) => aws_sdk_kms::error::ProvideErrorMetadata::code(e).unwrap_or_default().to_owned(),
                };
                if code == "ConflictException" {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                assert_eq!(code, "LimitExceededException");
                return false;
            }
        }));
    }
    let mut succeeded = 0;
    for t in tasks {
        if t.await.unwrap() {
            succeeded += 1;
        }
    }
    assert_eq!(succeeded, 25);
    assert_eq!(kms_b.list_key_rotations().key_id(&key).send().await.unwrap().rotations().len(), 25);

    a.shutdown().await;
    b.shutdown().await;
    let store = kms_store::PostgresStore::connect(&url).await.unwrap();
    let report = kms_store::audit::verify_store(&store, None).await.unwrap();
    assert!(report.records >= 40, "{report:?}");
}

const JSON: &str = "application/x-amz-json-1.1";

/// Calls the admin API through the node at `addr` and returns its answer (panics on failure).
async fn admin_call(
    addr: std::net::SocketAddr,
    creds: (&str, &str),
    operation: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let target = format!("FerrokmsAdmin.{operation}");
    let (status, text) =
        signed(addr, (creds.0, creds.1, None), "kms", Some(&target), JSON, body.to_string().as_bytes()).await;
    assert!(status.contains("200"), "{operation}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// The error code of a refused Encrypt, `None` if it was allowed.
async fn encrypt_refusal(kms: &aws_sdk_kms::Client, key: &str) -> Option<String> {
    let result = kms.encrypt().key_id(key).plaintext(aws_sdk_kms::primitives::Blob::new(&b"x"[..])).send().await;
    result.err().map(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(&e).unwrap_or("no code").to_owned())
}

/// How long after now Encrypt through `kms` starts being refused with `expected`, polling until
/// a deadline of five seconds.
async fn time_until_refused(kms: &aws_sdk_kms::Client, key: &str, expected: &str) -> Duration {
    let start = std::time::Instant::now();
    loop {
        match encrypt_refusal(kms, key).await {
            Some(code) => {
                assert_eq!(code, expected);
                return start.elapsed();
            }
            None => assert!(start.elapsed() < Duration::from_secs(5), "still allowed 5 s after the change"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Revocations made through one node are enforced by the other within a second, although the
/// other had the revoked credentials, session, identity policies, key policy, grant and key
/// state cached: its cache TTL is ten minutes, so only the change feed can have told it.
#[tokio::test]
async fn revocations_reach_the_other_node_within_a_second() {
    let Some((_db, url)) = database("revocations") else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let mut cfg = node_config(dir.path(), &url, name);
        cfg.key_cache_ttl_millis = 600_000;
        cfg
    };
    let a = kms_server::start(node("a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let id = admin.access_key_id.clone();
    let b = kms_server::start(node("b")).await.unwrap();
    let (kms_a, kms_b) =
        (client_for(a.local_addr, &id, &secret, "us-east-1"), client_for(b.local_addr, &id, &secret, "us-east-1"));
    let admin =
        |operation: &'static str, body: serde_json::Value| admin_call(a.local_addr, (&id, &secret), operation, body);
    let account = a.account.to_string();
    let use_keys = serde_json::json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    // Users u1..u5, each with an access key and a client of node b; u1..u3 may use every key.
    let mut users = Vec::new();
    for n in 1..=5 {
        let name = format!("u{n}");
        admin("CreateUser", serde_json::json!({"UserName": name})).await;
        let key = admin("CreateAccessKey", serde_json::json!({"UserName": name})).await;
        let (key_id, key_secret) =
            (key["AccessKey"]["AccessKeyId"].as_str().unwrap(), key["AccessKey"]["SecretAccessKey"].as_str().unwrap());
        if n <= 3 {
            let policy = serde_json::json!({"UserName": name, "PolicyName": "use", "PolicyDocument": use_keys});
            admin("PutUserPolicy", policy).await;
        }
        users.push((key_id.to_owned(), client_for(b.local_addr, key_id, key_secret, "us-east-1")));
    }
    let user_arn = |n: usize| format!("arn:aws:iam::{account}:user/u{n}");

    // A role whose session may use every key.
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:user/admin")}, "Action": "sts:AssumeRole"}]});
    admin("CreateRole", serde_json::json!({"RoleName": "r", "AssumeRolePolicyDocument": trust.to_string()})).await;
    admin("PutRolePolicy", serde_json::json!({"RoleName": "r", "PolicyName": "use", "PolicyDocument": use_keys})).await;
    let assume =
        format!("Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::{account}:role/r&RoleSessionName=s1");
    let form = "application/x-www-form-urlencoded";
    let (status, xml) = signed(a.local_addr, (&id, &secret, None), "sts", None, form, assume.as_bytes()).await;
    assert!(status.contains("200"), "{status} {xml}");
    let field = |name: &str| xml.split(&format!("<{name}>")).nth(1).unwrap().split('<').next().unwrap().to_owned();
    let session = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", b.local_addr))
            .credentials_provider(aws_credential_types::Credentials::new(
                field("AccessKeyId"),
                field("SecretAccessKey"),
                Some(field("SessionToken")),
                None,
                "session",
            ))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build(),
    );

    // Keys: one for the users, one whose policy names u4, one granted to u5, one to disable.
    let shared = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let statement = |sid: &str, principal: String, action: &str| serde_json::json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"});
    let root = statement("root", format!("arn:aws:iam::{account}:root"), "kms:*");
    let with_u4 = serde_json::json!({"Version": "2012-10-17",
        "Statement": [root.clone(), statement("u4", user_arn(4), "kms:Encrypt")]});
    let policy_key = kms_a.create_key().policy(with_u4.to_string()).send().await.unwrap().key_metadata.unwrap().key_id;
    let grant_key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let grant = kms_a
        .create_grant()
        .key_id(&grant_key)
        .grantee_principal(user_arn(5))
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap()
        .grant_id
        .unwrap();
    let disabled_key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;

    // Everything is allowed on node b, twice: the second time from its caches.
    let probes = [
        (&users[0].1, &shared),
        (&users[1].1, &shared),
        (&users[2].1, &shared),
        (&session, &shared),
        (&users[3].1, &policy_key),
        (&users[4].1, &grant_key),
        (&kms_b, &disabled_key),
    ];
    for _ in 0..2 {
        for (kms, key) in probes {
            assert_eq!(encrypt_refusal(kms, key).await, None);
        }
    }
    assert!(b.service.cached_keys() >= 4);

    let mut delays = Vec::new();
    admin("DeleteAccessKey", serde_json::json!({"AccessKeyId": users[0].0, "UserName": "u1"})).await;
    delays.push(("DeleteAccessKey", time_until_refused(&users[0].1, &shared, "UnrecognizedClientException").await));
    admin("DeleteUserPolicy", serde_json::json!({"UserName": "u2", "PolicyName": "use"})).await;
    delays.push(("DeleteUserPolicy", time_until_refused(&users[1].1, &shared, "AccessDeniedException").await));
    admin("DeleteUser", serde_json::json!({"UserName": "u3"})).await;
    delays.push(("DeleteUser", time_until_refused(&users[2].1, &shared, "UnrecognizedClientException").await));
    admin("DeleteRole", serde_json::json!({"RoleName": "r"})).await;
    delays.push(("DeleteRole (session)", time_until_refused(&session, &shared, "UnrecognizedClientException").await));
    let without_u4 = serde_json::json!({"Version": "2012-10-17", "Statement": [root]});
    kms_a.put_key_policy().key_id(&policy_key).policy(without_u4.to_string()).send().await.unwrap();
    delays.push(("PutKeyPolicy", time_until_refused(&users[3].1, &policy_key, "AccessDeniedException").await));
    kms_a.revoke_grant().key_id(&grant_key).grant_id(&grant).send().await.unwrap();
    delays.push(("RevokeGrant", time_until_refused(&users[4].1, &grant_key, "AccessDeniedException").await));
    kms_a.disable_key().key_id(&disabled_key).send().await.unwrap();
    delays.push(("DisableKey", time_until_refused(&kms_b, &disabled_key, "DisabledException").await));
    println!("revocation delays on the other node: {delays:?}");
    for (change, delay) in delays {
        assert!(delay < Duration::from_secs(1), "{change} took {delay:?} to reach the other node");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// IAM changes made through one node are enforced by the other within a second, although the
/// other had the credentials and identity policies cached for ten minutes: a managed policy
/// detached, a user removed from the group the policy reaches it through, an access key made
/// inactive.
#[tokio::test]
async fn iam_changes_reach_the_other_node_within_a_second() {
    let Some((_db, url)) = database("iam_revocations") else { return };
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let mut cfg = node_config(dir.path(), &url, name);
        cfg.key_cache_ttl_millis = 600_000;
        cfg
    };
    let a = kms_server::start(node("a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let id = admin.access_key_id.clone();
    let b = kms_server::start(node("b")).await.unwrap();
    let iam = |params: String| {
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let body = format!("Version=2010-05-08&{params}");
            let form = "application/x-www-form-urlencoded";
            let (status, xml) = signed(a.local_addr, (&id, &secret, None), "iam", None, form, body.as_bytes()).await;
            assert!(status.contains("200"), "{params}: {status} {xml}");
            xml
        }
    };
    let field =
        |xml: &str, name: &str| xml.split(&format!("<{name}>")).nth(1).unwrap().split('<').next().unwrap().to_owned();
    let document = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22kms%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D";
    let policy = field(&iam(format!("Action=CreatePolicy&PolicyName=use&PolicyDocument={document}")).await, "Arn");
    let policy = policy.replace(':', "%3A").replace('/', "%2F");
    iam("Action=CreateGroup&GroupName=g".to_owned()).await;
    iam(format!("Action=AttachGroupPolicy&GroupName=g&PolicyArn={policy}")).await;
    let (mut clients, mut key_ids) = (Vec::new(), Vec::new());
    for n in 1..=3 {
        iam(format!("Action=CreateUser&UserName=v{n}")).await;
        let key = iam(format!("Action=CreateAccessKey&UserName=v{n}")).await;
        clients.push(client_for(
            b.local_addr,
            &field(&key, "AccessKeyId"),
            &field(&key, "SecretAccessKey"),
            "us-east-1",
        ));
        key_ids.push(field(&key, "AccessKeyId"));
    }
    iam(format!("Action=AttachUserPolicy&UserName=v1&PolicyArn={policy}")).await;
    iam("Action=AddUserToGroup&GroupName=g&UserName=v2".to_owned()).await;
    iam(format!("Action=AttachUserPolicy&UserName=v3&PolicyArn={policy}")).await;
    let kms_a = client_for(a.local_addr, &id, &secret, "us-east-1");
    let key = kms_a.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    // Allowed on node b, twice: the second time from its caches.
    for _ in 0..2 {
        for kms in &clients {
            assert_eq!(encrypt_refusal(kms, &key).await, None);
        }
    }
    let mut delays = Vec::new();
    iam(format!("Action=DetachUserPolicy&UserName=v1&PolicyArn={policy}")).await;
    delays.push(("DetachUserPolicy", time_until_refused(&clients[0], &key, "AccessDeniedException").await));
    iam("Action=RemoveUserFromGroup&GroupName=g&UserName=v2".to_owned()).await;
    delays.push(("RemoveUserFromGroup", time_until_refused(&clients[1], &key, "AccessDeniedException").await));
    iam(format!("Action=UpdateAccessKey&UserName=v3&AccessKeyId={}&Status=Inactive", key_ids[2])).await;
    delays.push(("UpdateAccessKey", time_until_refused(&clients[2], &key, "UnrecognizedClientException").await));
    println!("IAM change delays on the other node: {delays:?}");
    for (change, delay) in delays {
        assert!(delay < Duration::from_secs(1), "{change} took {delay:?} to reach the other node");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Nodes that serve different regions from one database see the same multi-Region keys: a
/// replica made through one node decrypts, through the other, what the primary encrypted.
#[tokio::test]
async fn nodes_serving_different_regions_share_multi_region_keys() {
    let Some((_db, url)) = database("regions") else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = kms_server::start(node_config(dir.path(), &url, "a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let id = admin.access_key_id.clone();
    let b = kms_server::start(node_config(dir.path(), &url, "b")).await.unwrap();
    let east = client_for(a.local_addr, &id, &secret, "us-east-1");
    let west = client_for(b.local_addr, &id, &secret, "eu-west-1");
    let key = east.create_key().multi_region(true).send().await.unwrap().key_metadata.unwrap().key_id;
    let sealed = east
        .encrypt()
        .key_id(&key)
        .plaintext(aws_sdk_kms::primitives::Blob::new("across nodes"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    east.replicate_key().key_id(&key).replica_region("eu-west-1").send().await.unwrap();
    let opened = west.decrypt().ciphertext_blob(sealed).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"across nodes");
    // A rotation through the east node reaches the replica the west node serves (its cache
    // hears of the change through the store's change feed, within moments).
    east.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    let primary = east.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
    let mut replica = None;
    for _ in 0..50 {
        let seen = west.describe_key().key_id(&key).send().await.unwrap().key_metadata.unwrap();
        if seen.current_key_material_id() == primary.current_key_material_id() {
            replica = Some(seen);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(replica.is_some(), "the west node serves the rotated replica");
    a.shutdown().await;
    b.shutdown().await;
}

/// Every node of a cluster must use the store's root key: a node with another one refuses to
/// start, before serving anything.
#[tokio::test]
async fn a_node_with_another_root_key_refuses_to_join() {
    let Some((_db, url)) = database("roots") else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = kms_server::start(node_config(dir.path(), &url, "a")).await.unwrap();
    let mut other = node_config(dir.path(), &url, "b");
    other.root_key_file = Some(dir.path().join("another-root.key"));
    kms_crypto::FileRootKey::create(&dir.path().join("another-root.key"), &kms_crypto::SystemRng).unwrap();
    let refused = kms_server::start(other).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().unwrap_or_default().contains("does not open its secrets"), "{refused:?}");
    a.shutdown().await;
}
