//! Two nodes on one PostgreSQL database: background work (the scheduler, event delivery) runs
//! on one node at a time, and the other takes over when that node stops.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{client_for, config};
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
    let root_key = dir.path().join("root.key");
    let node = |name: &str| {
        let mut cfg = config(&dir.path().join(name));
        cfg.store_url = Some(url.clone());
        cfg.root_key_file = Some(root_key.clone());
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
    let root_key = dir.path().join("root.key");
    let node = |name: &str| {
        let mut cfg = config(&dir.path().join(name));
        cfg.store_url = Some(url.clone());
        cfg.root_key_file = Some(root_key.clone());
        cfg
    };
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
