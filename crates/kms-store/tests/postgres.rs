//! The conformance suite on PostgreSQL, migrations under concurrent start-up, races between
//! nodes, and agreement with SQLite on ordering.
//!
//! Each test creates its own database (`ferrokms_test_<random>`) on the server at
//! `FERROKMS_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and drops
//! it afterwards, also when the test fails. If the server is unreachable the tests print
//! `SKIPPED: …` and pass, unless `FERROKMS_REQUIRE_POSTGRES` is set (CI sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::hash::{BuildHasher, RandomState};

use kms_core::Timestamp;
use kms_core::audit::AuditEvent;
use kms_core::ids::{AliasName, KeyId};
use kms_core::key::KeyRecord;
use kms_core::tag::Tag;
use kms_store::audit::{AuditDigest, AuditFilter};
use kms_store::{AliasRecord, GrantRecord, PostgresStore, SqliteStore, Store, StoreError};
use tokio_postgres::NoTls;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database of its own for one test, dropped when this guard is.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates the database, or returns `None` (after saying so) when PostgreSQL is unreachable.
    async fn create(label: &str) -> Option<Self> {
        Self::create_with(label, &[""]).await
    }

    /// Like [`Self::create`], with the first of `options` (`CREATE DATABASE` clauses) that the
    /// server accepts.
    async fn create_with(label: &str, options: &[&str]) -> Option<Self> {
        let admin_url = std::env::var("FERROKMS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let admin = match admin_client(&admin_url).await {
            Ok(client) => client,
            Err(e) if std::env::var_os("FERROKMS_REQUIRE_POSTGRES").is_none() => {
                eprintln!("SKIPPED: PostgreSQL not reachable at {}: {}", redacted(&admin_url), chain(&e));
                return None;
            }
            Err(e) => {
                panic!(
                    "PostgreSQL not reachable at {} (FERROKMS_REQUIRE_POSTGRES is set): {}",
                    redacted(&admin_url),
                    chain(&e)
                )
            }
        };
        let random = RandomState::new().hash_one((std::process::id(), label));
        let name = format!("ferrokms_test_{label}_{random:016x}");
        let mut created = Err(None);
        for option in options {
            created = admin.batch_execute(&format!("CREATE DATABASE {name} {option}")).await.map_err(Some);
            if created.is_ok() {
                break;
            }
        }
        created.unwrap();
        let url = with_database(&admin_url, &name);
        Some(Self { admin_url, name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime (possibly while unwinding), which cannot be blocked
        // on: drop the database from a thread with a runtime of its own. FORCE ends the sessions
        // that the test's pools still hold.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = admin_client(&admin_url).await?;
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

async fn admin_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database replaced by `name` (`postgres://u@h:p/old?x=y` → `…/name?x=y`).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{}/{name}{query}", &base[..path_start])
}

/// An error with its causes (tokio-postgres alone says only "error connecting to server").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// `url` without a password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let user = url[scheme_end + 3..at].split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let Some(db) = TestDatabase::create("conformance").await else { return };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    kms_store::conformance::run_all(&store, 1).await;
    kms_store::conformance::run_all(&store, 2).await;
    kms_store::conformance::run_reset(&store).await;
}

#[tokio::test]
async fn postgres_audit_trail() {
    let Some(db) = TestDatabase::create("audit").await else { return };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    kms_store::conformance::run_audit(&store).await;
    let report = kms_store::audit::verify_store(&store, None).await.unwrap();
    // Five appended directly, five by mutations that carried their events, one by a key deletion.
    assert_eq!((report.records, report.digests), (11, 1));
}

#[tokio::test]
async fn postgres_audit_trail_across_batches() {
    let Some(db) = TestDatabase::create("audit_batches").await else { return };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    kms_store::conformance::run_audit_across_batches(&store).await;
}

/// Nodes append at the same time; the chain must stay one chain, each batch contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_on_two_nodes_keep_one_chain() {
    let Some(db) = TestDatabase::create("audit_race").await else { return };
    let (one, two) = tokio::join!(PostgresStore::connect(&db.url), PostgresStore::connect(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    const BATCHES: usize = 50;
    const PER_BATCH: usize = 3;
    let mut tasks = tokio::task::JoinSet::new();
    for (node, store) in [(1, one.clone()), (2, two.clone())] {
        for batch in 0..BATCHES {
            let store = store.clone();
            tasks.spawn(async move {
                let events: Vec<AuditEvent> =
                    (0..PER_BATCH).map(|i| audit_event(&format!("node{node}-batch{batch}-{i}"))).collect();
                store.append_audit(events.into()).await
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    for store in [&one, &two] {
        let report = kms_store::audit::verify_store(store, None).await.unwrap();
        assert_eq!(report.records, (2 * BATCHES * PER_BATCH) as u64);
    }
    let rows = one.audit_after(0, 1000).await.unwrap();
    assert_eq!(rows.len(), 2 * BATCHES * PER_BATCH);
    assert_eq!(one.audit_head().await.unwrap().unwrap(), (rows.len() as u64, rows.last().unwrap().hash.clone()));
    // Every event once, and each batch's events consecutive and in order.
    let mut ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    for batch in rows.chunks(PER_BATCH) {
        let prefix = batch[0].event_id.strip_suffix("-0").unwrap();
        let expected: Vec<String> = (0..PER_BATCH).map(|i| format!("{prefix}-{i}")).collect();
        assert_eq!(batch.iter().map(|r| r.event_id.clone()).collect::<Vec<_>>(), expected);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 2 * BATCHES * PER_BATCH);
}

/// Mutations that commit their audit events race, on two nodes, with each other and with batch
/// appends: one chain still, every successful change recorded exactly once, every refused one
/// not at all, and no deadlock between the key's row lock and the audit lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutations_and_batches_on_two_nodes_share_one_chain() {
    let Some(db) = TestDatabase::create("audit_mixed").await else { return };
    let (one, two) = tokio::join!(PostgresStore::connect(&db.url), PostgresStore::connect(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    let k = key(9, "111111111111");
    one.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    let base = k.clone();
    const ROUNDS: u8 = 15;
    const GRANTS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for (node, store) in [(1u8, one.clone()), (2, two.clone())] {
        for i in 0..ROUNDS {
            let (s, k) = (store.clone(), base.clone());
            tasks.spawn(async move {
                let tags = [tag(&format!("n{node}-{i}"), "")];
                s.put_tags(k.key_id, &tags, 50, &[audit_event(&format!("tags-{node}-{i}"))]).await.map(|()| true)
            });
            let (s, k) = (store.clone(), base.clone());
            tasks.spawn(async move {
                let id = format!("grant-{node}-{i}");
                match s.create_grant(&grant(&k, node * 100 + i), GRANTS, &[audit_event(&id)]).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::LimitExceeded(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            });
            let (s, k) = (store.clone(), base.clone());
            tasks.spawn(async move {
                // Compare-and-swap with retries, as the service does.
                loop {
                    let current = s.key(k.key_id).await?.unwrap();
                    let mut next = current.clone();
                    next.description = format!("by {node}-{i}");
                    next.revision += 1;
                    match s.update_key(&next, &[audit_event(&format!("update-{node}-{i}"))]).await {
                        Err(StoreError::Conflict) => continue,
                        other => return other.map(|()| true),
                    }
                }
            });
            let s = store.clone();
            tasks.spawn(async move {
                let batch = [audit_event(&format!("batch-{node}-{i}-0")), audit_event(&format!("batch-{node}-{i}-1"))];
                s.append_audit(batch.into()).await.map(|()| true)
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    let report = kms_store::audit::verify_store(&two, None).await.unwrap();
    let rows = one.audit_after(0, 10_000).await.unwrap();
    assert_eq!(report.records, rows.len() as u64);
    let rounds = usize::from(ROUNDS);
    assert_eq!(rows.len(), 2 * rounds /* tags */ + GRANTS + 2 * rounds /* updates */ + 2 * 2 * rounds);
    let mut ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    // Exactly the grants that exist have a record.
    let mut granted: Vec<String> = one
        .grants(k.key_id)
        .await
        .unwrap()
        .iter()
        .map(|g| {
            let n = u8::from_str_radix(&g.grant_id[..2], 16).unwrap();
            format!("grant-{}-{}", n / 100, n % 100)
        })
        .collect();
    granted.sort_unstable();
    let mut recorded: Vec<String> = ids.iter().filter(|i| i.starts_with("grant-")).map(|i| (*i).to_owned()).collect();
    recorded.sort_unstable();
    assert_eq!(recorded, granted);
    assert_eq!(one.tags(k.key_id).await.unwrap().len(), 2 * rounds);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "every event once");
}

/// The same events give the same chain (hashes included) and the same query answers on both
/// backends.
#[tokio::test]
async fn audit_trail_matches_sqlite() {
    let Some(db) = TestDatabase::create("audit_same").await else { return };
    let postgres = PostgresStore::connect(&db.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    let key_a = "arn:aws:kms:us-east-1:111122223333:key/a";
    let key_b = "arn:aws:kms:us-east-1:111122223333:key/B";
    let mut answers = Vec::new();
    for store in [&postgres as &dyn Store, &sqlite] {
        let mut seen = Vec::new();
        seen.push(format!("empty head: {:?}", store.audit_head().await.unwrap()));
        seen.push(format!("empty append: {:?}", store.append_audit(Vec::new().into()).await));
        seen.push(format!("empty after: {:?}", store.audit_after(0, 10).await.unwrap()));
        let mut events = Vec::new();
        for (n, (name, key, error)) in [
            ("Encrypt", Some(key_a), None),
            ("Decrypt", Some(key_b), Some("AccessDeniedException")),
            ("Sign", Some(key_b), None),
            ("DescribeKey", Some(key_a), None),
            ("GenerateDataKey", Some(key_a), Some("DisabledException")),
            ("ListKeys", None, None),
            ("Encrypt", Some("arn:aws:kms:us-east-1:111122223333:key/A"), None),
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = audit_event(&format!("e{n}"));
            e.time = Timestamp::from_unix_millis(1_700_000_000_000 + n as i64 * 1000);
            e.event_name = name.into();
            e.key_arn = key.map(str::to_owned);
            e.error_code = error.map(str::to_owned);
            e.principal = format!("arn:aws:iam::111122223333:user/u{}", n % 2);
            e.record =
                serde_json::json!({"eventName": name, "n": n, "é": "\u{0}\"", "b": [1, {"z": null}]}).to_string();
            events.push(e);
        }
        store.append_audit(events[..3].into()).await.unwrap();
        store.append_audit(events[3..4].into()).await.unwrap();
        store.append_audit(events[4..].into()).await.unwrap();
        seen.push(format!("chain: {:?}", store.audit_after(0, 100).await.unwrap()));
        seen.push(format!("page: {:?}", store.audit_after(2, 3).await.unwrap()));
        seen.push(format!("past the end: {:?}", store.audit_after(7, 3).await.unwrap()));
        seen.push(format!("head: {:?}", store.audit_head().await.unwrap()));
        let filters = [
            AuditFilter { limit: 100, ..AuditFilter::default() },
            AuditFilter { limit: 0, ..AuditFilter::default() },
            AuditFilter { limit: 2, ..AuditFilter::default() },
            AuditFilter { key_arn: Some(key_a.into()), limit: 100, ..AuditFilter::default() },
            AuditFilter {
                key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/A".into()),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                principal: Some("arn:aws:iam::111122223333:user/u1".into()),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter { event_name: Some("Encrypt".into()), limit: 100, ..AuditFilter::default() },
            AuditFilter { error_code: Some("-".into()), limit: 100, ..AuditFilter::default() },
            AuditFilter { error_code: Some("DisabledException".into()), limit: 100, ..AuditFilter::default() },
            AuditFilter {
                key_arn: Some(key_b.into()),
                error_code: Some("-".into()),
                from: Some(Timestamp::from_unix_millis(1_700_000_001_000)),
                to: Some(Timestamp::from_unix_millis(1_700_000_003_000)),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                from: Some(Timestamp::from_unix_millis(1_700_000_005_000)),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                to: Some(Timestamp::from_unix_millis(1_700_000_001_000)),
                limit: usize::MAX,
                ..AuditFilter::default()
            },
        ];
        for filter in &filters {
            let seqs: Vec<u64> = store.audit_query(filter).await.unwrap().iter().map(|r| r.seq).collect();
            seen.push(format!("{filter:?}: {seqs:?}"));
        }
        for key in [key_a, key_b, "arn:aws:kms:us-east-1:111122223333:key/A", "none"] {
            seen.push(format!("last use of {key}: {:?}", store.last_key_usage(key).await.unwrap().map(|r| r.seq)));
        }
        let digest =
            AuditDigest { seq: 7, hash: vec![7; 32], created: Timestamp::from_unix_millis(5), signature: vec![1, 2] };
        seen.push(format!("digest: {:?}", store.put_audit_digest(&digest).await));
        seen.push(format!("digest again: {:?}", store.put_audit_digest(&digest).await));
        let early = AuditDigest { seq: 3, ..digest.clone() };
        seen.push(format!("earlier digest: {:?}", store.put_audit_digest(&early).await));
        seen.push(format!("digests: {:?}", store.audit_digests().await.unwrap()));
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].iter().any(|a| a.starts_with("last use of") && a.ends_with("Some(3)")), "{:?}", answers[0]);
}

#[tokio::test]
async fn describe_names_the_database_but_never_the_password() {
    let Some(db) = TestDatabase::create("describe").await else { return };
    // The server trusts local connections, so it ignores the password; the store must not print it.
    let with_password = db.url.replacen("://postgres@", "://postgres:hunter2-secret@", 1);
    assert_ne!(with_password, db.url, "the test URL names the user postgres");
    let store = PostgresStore::connect(&with_password).await.unwrap();
    let described = store.describe();
    assert!(described.starts_with("postgres://") && described.ends_with(&format!("/{}", db.name)), "{described}");
    assert!(!described.contains("hunter2") && !described.contains("postgres@"), "{described}");
    assert!(!format!("{store:?}").contains("hunter2"));
    if db.url.contains("@127.0.0.1:5432/") {
        assert_eq!(described, format!("postgres://127.0.0.1:5432/{}", db.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_are_idempotent_and_safe_when_nodes_start_together() {
    let Some(db) = TestDatabase::create("migrations").await else { return };
    let (a, b, c) =
        tokio::join!(PostgresStore::connect(&db.url), PostgresStore::connect(&db.url), PostgresStore::connect(&db.url));
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    for store in [&a, &b, &c] {
        assert_eq!(store.schema_version().await.unwrap(), PostgresStore::SCHEMA_VERSION);
    }
    const { assert!(PostgresStore::SCHEMA_VERSION >= 3) };
    assert!(a.init_setting("account", "111122223333").await.unwrap());
    assert!(!b.init_setting("account", "444455556666").await.unwrap());

    // Connecting again applies nothing and loses nothing.
    let again = PostgresStore::connect(&db.url).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), PostgresStore::SCHEMA_VERSION);
    assert_eq!(again.setting("account").await.unwrap().as_deref(), Some("111122223333"));
    let admin = admin_client(&db.url).await.unwrap();
    let applied: i64 = admin.query_one("SELECT COUNT(*) FROM schema_version", &[]).await.unwrap().get(0);
    assert_eq!(applied, i64::from(PostgresStore::SCHEMA_VERSION), "each migration applied once");

    // A database from a newer build is refused, not misread.
    admin.batch_execute("INSERT INTO schema_version (version) VALUES (1000)").await.unwrap();
    assert!(matches!(PostgresStore::connect(&db.url).await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn unreachable_or_invalid_databases_are_backend_errors() {
    // Port 1 on loopback refuses connections; nothing here needs a server.
    let refused = PostgresStore::connect("postgres://postgres:pw@127.0.0.1:1/ferrokms").await;
    let Err(StoreError::Backend(e)) = refused else { panic!("expected a backend error") };
    assert!(!e.to_string().contains("pw@"), "{e}");
    for url in ["", "postgres://", "not a url", "postgres://h:notaport/db", "host=127.0.0.1 port=1 dbname=x"] {
        assert!(matches!(PostgresStore::connect(url).await, Err(StoreError::Backend(_))), "{url}");
    }
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let Some(db) = TestDatabase::create("corrupt").await else { return };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    let k = key(1, "111111111111");
    store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    let admin = admin_client(&db.url).await.unwrap();
    // Text that is not JSON at all cannot be written any more (the due-time indexes read the
    // record as JSON); JSON that is not a key record is the corruption left to report.
    assert!(admin.batch_execute("UPDATE keys SET record = '{not json'").await.is_err());
    admin.batch_execute(r#"UPDATE keys SET record = '{"not": "a key"}'"#).await.unwrap();
    assert!(matches!(store.key(k.key_id).await, Err(StoreError::Corrupt(_))));
    admin.batch_execute("UPDATE key_materials SET material_id = '\\x0102'").await.unwrap();
    assert!(matches!(store.materials(k.key_id).await, Err(StoreError::Corrupt(_))));
    admin
        .batch_execute(&format!(
            "INSERT INTO aliases VALUES ('111111111111', 'us-east-1', 'no-prefix', '{}', 0, 0)",
            k.key_id
        ))
        .await
        .unwrap();
    let (account, region) = (k.account.clone(), k.region.clone());
    assert!(matches!(store.list_aliases(&account, &region, None, None, 10).await, Err(StoreError::Corrupt(_))));
}

/// Two nodes (two stores, two pools) race on the same rows; PostgreSQL must pick one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_nodes_cannot_break_compare_and_swap_uniqueness_or_limits() {
    let Some(db) = TestDatabase::create("races").await else { return };
    let (one, two) = tokio::join!(PostgresStore::connect(&db.url), PostgresStore::connect(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    const ROUNDS: u8 = 25;

    // update_key from the same revision: one wins, the other gets Conflict.
    let k = key(1, "111111111111");
    one.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    for round in 0..ROUNDS {
        let current = one.key(k.key_id).await.unwrap().unwrap();
        let next = |by: &str| KeyRecord {
            description: format!("{by} {round}"),
            revision: current.revision + 1,
            ..current.clone()
        };
        let (a, b) = (next("one"), next("two"));
        let (ra, rb) = tokio::join!(one.update_key(&a, &[]), two.update_key(&b, &[]));
        let stored = one.key(k.key_id).await.unwrap().unwrap();
        match (ra, rb) {
            (Ok(()), Err(StoreError::Conflict)) => assert_eq!(stored, a),
            (Err(StoreError::Conflict), Ok(())) => assert_eq!(stored, b),
            other => panic!("round {round}: expected one winner and one Conflict, got {other:?}"),
        }
    }
    assert_eq!(one.key(k.key_id).await.unwrap().unwrap().revision, u64::from(ROUNDS));

    // create_alias with one name: one wins, the other gets AlreadyExists.
    for round in 0..ROUNDS {
        let alias = kms_store::conformance::alias(&k, &format!("alias/race-{round}"));
        let (ra, rb) = tokio::join!(one.create_alias(&alias, &[]), two.create_alias(&alias, &[]));
        assert!(
            matches!((&ra, &rb), (Ok(()), Err(StoreError::AlreadyExists)) | (Err(StoreError::AlreadyExists), Ok(()))),
            "round {round}: {ra:?} {rb:?}"
        );
    }

    // put_tags that fit alone but not together: the limit holds.
    for round in 0..ROUNDS {
        let k = key(round + 10, "222222222222");
        one.create_key(&k, &[material(&k)], "{}", &[tag("base", "0")], &[], &[]).await.unwrap();
        let (first, second) = ([tag("a", "1"), tag("b", "1")], [tag("c", "2"), tag("d", "2")]);
        let (ra, rb) = tokio::join!(one.put_tags(k.key_id, &first, 3, &[]), two.put_tags(k.key_id, &second, 3, &[]));
        assert!(
            matches!(
                (&ra, &rb),
                (Ok(()), Err(StoreError::LimitExceeded(3))) | (Err(StoreError::LimitExceeded(3)), Ok(()))
            ),
            "round {round}: {ra:?} {rb:?}"
        );
        assert_eq!(one.tags(k.key_id).await.unwrap().len(), 3, "round {round}");
    }

    // create_grant with room for one more: one wins, the other gets LimitExceeded.
    for round in 0..ROUNDS {
        let k = key(round + 100, "333333333333");
        one.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
        let (first, second) = (grant(&k, 1), grant(&k, 2));
        let (ra, rb) = tokio::join!(one.create_grant(&first, 1, &[]), two.create_grant(&second, 1, &[]));
        assert!(
            matches!(
                (&ra, &rb),
                (Ok(()), Err(StoreError::LimitExceeded(1))) | (Err(StoreError::LimitExceeded(1)), Ok(()))
            ),
            "round {round}: {ra:?} {rb:?}"
        );
        assert_eq!(one.grants(k.key_id).await.unwrap().len(), 1, "round {round}");
    }
}

/// Ordering and pagination must not depend on the backend (or on the database's collation):
/// the same writes give the same listings on SQLite and PostgreSQL.
#[tokio::test]
async fn listings_match_sqlite_byte_order() {
    // A natural-language default collation, under which "alias/a" < "alias/B": the store must
    // not depend on the database's default.
    let icu = "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0";
    let Some(db) = TestDatabase::create_with("ordering", &[icu, ""]).await else { return };
    let postgres = PostgresStore::connect(&db.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    // Names whose order differs between byte order and natural-language collations.
    let names =
        ["alias/b", "alias/B", "alias/a", "alias/_x", "alias/-y", "alias/A-1", "alias/a1", "alias/Z", "alias/z"];
    let tag_keys = ["b", "B", "a", "_x", "-y", "A-1", "a1", "Z", "é", "a b"];
    let mut listings = Vec::new();
    for store in [&postgres as &dyn Store, &sqlite] {
        let keys: Vec<KeyRecord> = (0..7).map(|n| key(200 - n * 30, "444444444444")).collect();
        for k in &keys {
            store.create_key(k, &[material(k)], "{}", &[], &[], &[]).await.unwrap();
        }
        let target = &keys[0];
        for name in names {
            store.create_alias(&kms_store::conformance::alias(target, name), &[]).await.unwrap();
        }
        let tags: Vec<Tag> = tag_keys.iter().map(|k| tag(k, "v")).collect();
        store.put_tags(target.key_id, &tags, 50, &[]).await.unwrap();

        let (account, region) = (target.account.clone(), target.region.clone());
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_keys(&account, &region, after, 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().copied();
            pages.push(page);
        }
        let mut alias_pages = Vec::new();
        let mut after: Option<AliasName> = None;
        loop {
            let page = store.list_aliases(&account, &region, None, after.as_ref(), 4).await.unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|a| a.name.clone());
            alias_pages.push(page.into_iter().map(|a| a.name.to_string()).collect::<Vec<_>>());
        }
        let tags = store.tags(target.key_id).await.unwrap();
        listings.push((pages, alias_pages, tags));
    }
    assert_eq!(listings[0], listings[1]);
    let (_, alias_pages, tags) = &listings[0];
    let mut sorted: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    sorted.sort();
    assert_eq!(alias_pages.concat(), sorted, "byte order");
    let mut sorted_tags: Vec<&str> = tag_keys.to_vec();
    sorted_tags.sort_unstable();
    assert_eq!(tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), sorted_tags);
}

/// Inputs SQLite accepts must not make PostgreSQL fail differently: repeated tag keys in one
/// call, an empty tag list, and writes to keys that do not exist.
#[tokio::test]
async fn edge_cases_behave_like_sqlite() {
    let Some(db) = TestDatabase::create("edges").await else { return };
    let postgres = PostgresStore::connect(&db.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
    let mut outcomes = Vec::new();
    for store in [&postgres as &dyn Store, &sqlite] {
        let k = key(7, "555555555555");
        let ghost = key(8, "555555555555");
        let mut seen = Vec::new();
        let mut record = |what: &str, r: Result<(), StoreError>| seen.push(format!("{what}: {r:?}"));
        record(
            "create with repeated tag",
            store.create_key(&k, &[material(&k)], "{}", &[tag("a", "1"), tag("a", "2")], &[], &[]).await,
        );
        record("create", store.create_key(&k, &[material(&k)], "{}", &[tag("z", "0")], &[], &[]).await);
        record("put repeated", store.put_tags(k.key_id, &[tag("a", "1"), tag("a", "2"), tag("b", "")], 3, &[]).await);
        record("put empty over limit", store.put_tags(k.key_id, &[], 1, &[]).await);
        record("put empty", store.put_tags(k.key_id, &[], 3, &[]).await);
        record("put to ghost", store.put_tags(ghost.key_id, &[tag("a", "1")], 3, &[]).await);
        record("put empty to ghost", store.put_tags(ghost.key_id, &[], 3, &[]).await);
        record("remove from ghost", store.remove_tags(ghost.key_id, &["a".into()], &[]).await);
        record("remove none", store.remove_tags(k.key_id, &[], &[]).await);
        record("policy of ghost", store.put_policy(ghost.key_id, "{}", &[]).await);
        record("grant on ghost", store.create_grant(&grant(&ghost, 1), 5, &[]).await);
        record("grant with no room", store.create_grant(&grant(&k, 1), 0, &[]).await);
        record("grant", store.create_grant(&grant(&k, 1), 5, &[]).await);
        record("grant again", store.create_grant(&grant(&k, 1), 5, &[]).await);
        record("revision zero", store.update_key(&k, &[]).await);
        record("ghost revision zero", store.update_key(&ghost, &[]).await);
        let alias = AliasRecord {
            account: k.account.clone(),
            region: k.region.clone(),
            name: AliasName::parse("alias/to-ghost").unwrap(),
            target: ghost.key_id,
            created: k.created,
            updated: k.created,
        };
        record("alias to ghost", store.create_alias(&alias, &[]).await);
        seen.push(format!("tags: {:?}", store.tags(k.key_id).await.unwrap()));
        seen.push(format!("ghost: {:?}", store.key(ghost.key_id).await.unwrap()));
        seen.push(format!("ghost materials: {:?}", store.materials(ghost.key_id).await.unwrap()));
        seen.push(format!("setting: {:?}", store.setting("absent").await.unwrap()));
        seen.push(format!("limit zero: {:?}", store.list_keys(&k.account, &k.region, None, 0).await.unwrap()));
        outcomes.push(seen);
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

fn audit_event(id: &str) -> AuditEvent {
    AuditEvent {
        event_id: id.into(),
        time: Timestamp::from_unix_millis(1_700_000_000_000),
        event_name: "Encrypt".into(),
        key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k1".into()),
        other_key_arn: None,
        principal: "arn:aws:iam::111122223333:user/alice".into(),
        error_code: None,
        record: serde_json::json!({"eventID": id, "eventName": "Encrypt"}).to_string(),
    }
}

fn key(n: u8, account: &str) -> KeyRecord {
    kms_store::conformance::key(0xfe, n, account)
}

use kms_store::conformance::{material, tag};

fn grant(k: &KeyRecord, n: u8) -> GrantRecord {
    GrantRecord {
        grantee_id: None,
        grant_id: format!("{n:02x}{}", hex_of(&k.key_id)),
        key_id: k.key_id,
        account: k.account.clone(),
        region: k.region.clone(),
        name: None,
        grantee_principal: "arn:aws:iam::111111111111:role/app".into(),
        retiring_principal: None,
        grantee_service_principal: None,
        retiring_service_principal: None,
        source_arn: None,
        operations: vec!["Decrypt".into()],
        context_equals: None,
        context_subset: None,
        issuing_principal: "arn:aws:iam::111111111111:root".into(),
        created: Timestamp::from_unix_millis(9),
    }
}

fn hex_of(id: &KeyId) -> String {
    id.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The change feed names what each committed mutation changed, once it commits and in commit
/// order, and nothing for a refused change; a lost connection is announced (everything may have
/// been missed) and the feed goes on after reconnecting.
#[tokio::test]
async fn the_change_feed_names_committed_changes_and_announces_a_lost_connection() {
    use kms_store::Invalidation;

    let Some(db) = TestDatabase::create("feed").await else { return };
    let writer = PostgresStore::connect(&db.url).await.unwrap();
    let follower = PostgresStore::connect(&db.url).await.unwrap();
    let mut feed = follower.invalidations().await.unwrap().expect("PostgreSQL has a change feed");
    let mut next =
        async || tokio::time::timeout(std::time::Duration::from_secs(5), feed.next()).await.unwrap().unwrap();
    let k = key(9, "666666666666");
    let ghost = key(10, "666666666666");
    writer.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    assert!(writer.put_policy(ghost.key_id, "{}", &[]).await.is_err());
    assert!(!writer.delete_access_key("AKIAMISSING", &[]).await.unwrap());
    writer.create_grant(&grant(&k, 1), 5, &[]).await.unwrap();
    assert!(writer.delete_grant(&grant(&k, 1).grant_id, &[]).await.unwrap());
    assert!(writer.delete_identity_policy("arn:aws:iam::666666666666:user/nobody", "p", &[]).await.is_ok());
    writer.put_policy(k.key_id, "{}", &[]).await.unwrap();
    // Refused and no-op changes published nothing: the first notification is the grant's.
    for _ in 0..3 {
        assert_eq!(next().await, Invalidation::Key(k.key_id));
    }

    let admin = admin_client(&db.url).await.unwrap();
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&kms_store::FEED_APPLICATION_NAME],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1);
    assert_eq!(next().await, Invalidation::All, "the loss");
    assert_eq!(next().await, Invalidation::All, "the reconnection");
    writer.put_policy(k.key_id, "{}", &[]).await.unwrap();
    assert_eq!(next().await, Invalidation::Key(k.key_id));
}

/// The migrations before audit blocks (schema version 8), applied by hand.
const MIGRATIONS_BEFORE_BLOCKS: [&str; 8] = [
    include_str!("../migrations/postgres/0001_keys_aliases_access_keys.sql"),
    include_str!("../migrations/postgres/0002_principals_grants.sql"),
    include_str!("../migrations/postgres/0003_audit_log.sql"),
    include_str!("../migrations/postgres/0004_material_rotation_type.sql"),
    include_str!("../migrations/postgres/0005_due_time_indexes.sql"),
    include_str!("../migrations/postgres/0006_material_expiry_index.sql"),
    include_str!("../migrations/postgres/0007_audit_other_key.sql"),
    include_str!("../migrations/postgres/0008_iam_attributes.sql"),
];

/// A database written by a build that kept one row per audit record (schema version 8) opens,
/// on two nodes starting together, with the same records in blocks of consecutive records (a
/// gap left by retention ends a block), the old table gone, both key columns still found, and
/// the chain going on from its head.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_of_the_one_row_per_record_table_move_into_blocks() {
    use kms_store::audit::{AuditRow, GENESIS, chain_hash, verify_run};

    let Some(db) = TestDatabase::create("audit_move").await else { return };
    let key_a = "arn:aws:kms:us-east-1:111122223333:key/a";
    let key_b = "arn:aws:kms:us-east-1:111122223333:key/b";
    let mut rows = Vec::new();
    let mut prev = GENESIS.to_vec();
    for seq in 1..=600_u64 {
        let mut e = audit_event(&format!("e{seq}"));
        e.time = Timestamp::from_unix_millis(1_700_000_000_000 + seq as i64 * 1000);
        e.event_name = if seq % 2 == 0 { "Encrypt" } else { "ReEncrypt" }.into();
        e.key_arn = (seq % 5 != 0).then(|| key_a.to_owned());
        e.other_key_arn = (seq % 2 == 1).then(|| key_b.to_owned());
        e.error_code = (seq == 7).then(|| "AccessDeniedException".to_owned());
        let record = e.canonical_json().to_owned();
        let hash = chain_hash(&prev, seq, &record);
        rows.push(AuditRow {
            seq,
            event_id: e.event_id.clone(),
            time: e.time,
            event_name: e.event_name.clone(),
            key_arn: e.key_arn.clone(),
            other_key_arn: e.other_key_arn.clone(),
            principal: e.principal.clone(),
            error_code: e.error_code.clone(),
            record,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    // Retention removed 1..=20 and, say, a hole 300..=310 (a gap ends a block).
    rows.retain(|r| r.seq > 20 && !(300..=310).contains(&r.seq));
    let admin = admin_client(&db.url).await.unwrap();
    admin
        .batch_execute(
            "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for (n, sql) in MIGRATIONS_BEFORE_BLOCKS.iter().enumerate() {
        admin.batch_execute(sql).await.unwrap();
        admin.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(n as i64 + 1)]).await.unwrap();
    }
    for r in &rows {
        admin
            .execute(
                "INSERT INTO audit_log (seq, event_id, event_time, event_name, key_arn, principal, error_code, \
                 record, prev_hash, hash, other_key_arn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &(r.seq as i64),
                    &r.event_id,
                    &r.time.unix_millis(),
                    &r.event_name,
                    &r.key_arn,
                    &r.principal,
                    &r.error_code,
                    &r.record,
                    &r.prev_hash,
                    &r.hash,
                    &r.other_key_arn,
                ],
            )
            .await
            .unwrap();
    }

    let (one, two) = tokio::join!(PostgresStore::connect(&db.url), PostgresStore::connect(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(two.schema_version().await.unwrap(), PostgresStore::SCHEMA_VERSION);
    assert_eq!(one.audit_after(0, 10_000).await.unwrap(), rows, "every record, unchanged");
    let spans: Vec<(i64, i64)> = admin
        .query("SELECT first_seq, last_seq FROM audit_blocks ORDER BY first_seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(spans, vec![(21, 270), (271, 299), (311, 560), (561, 600)]);
    let old: i64 =
        admin.query_one("SELECT COUNT(*) FROM pg_class WHERE relname = 'audit_log'", &[]).await.unwrap().get(0);
    assert_eq!(old, 0, "the old table is dropped");
    // Both key columns are indexed: the other key's newest use is found through the blocks.
    assert_eq!(two.last_key_usage(key_b).await.unwrap().map(|r| r.seq), Some(599));
    assert_eq!(two.last_key_usage(key_a).await.unwrap().map(|r| r.seq), Some(599));
    let by_b = AuditFilter { key_arn: Some(key_b.into()), before_seq: Some(312), limit: 3, ..AuditFilter::default() };
    let seqs: Vec<u64> = two.audit_query(&by_b).await.unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![311, 299, 297], "across the gap, newest first");
    // The chain goes on from the moved head.
    one.append_audit(vec![audit_event("after")].into()).await.unwrap();
    let tail = two.audit_after(600, 10).await.unwrap();
    verify_run(Some((600, &rows.last().unwrap().hash)), &tail).unwrap();
    assert_eq!(tail.len(), 1);
}

/// Retention on one node while another appends: the two take turns on the audit lock, so the
/// records left are one unbroken run up to the head, and every prune removed exactly what was
/// before its cutoff (a block cut through is rewritten, never lost or duplicated).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_on_one_node_while_another_appends_keeps_one_chain() {
    use kms_store::audit::verify_run;

    let Some(db) = TestDatabase::create("audit_prune_race").await else { return };
    let (one, two) = (PostgresStore::connect(&db.url).await.unwrap(), PostgresStore::connect(&db.url).await.unwrap());
    one.append_audit((0..7).map(|i| audit_event(&format!("seed-{i}"))).collect::<Vec<_>>().into()).await.unwrap();
    let appender = tokio::spawn(async move {
        for batch in 0..60 {
            let events: Vec<_> = (0..5).map(|i| audit_event(&format!("b{batch}-{i}"))).collect();
            one.append_audit(events.into()).await.unwrap();
        }
        one
    });
    let mut cutoff = 1;
    let mut removed = 0;
    while !appender.is_finished() {
        let head = two.audit_head().await.unwrap().unwrap().0;
        // Cut through the middle of a block now and then (blocks here hold 5 records).
        let next = head.saturating_sub(12).max(cutoff);
        removed += two.prune_audit(next).await.unwrap();
        cutoff = next;
    }
    appender.await.unwrap();
    eprintln!("retention ran up to record {cutoff} while the other node appended");
    let rows = two.audit_after(0, 10_000).await.unwrap();
    let first = rows.first().unwrap();
    assert_eq!(first.seq, cutoff, "the first record left is the last cutoff");
    assert_eq!(removed, cutoff - 1, "every prune removed exactly the records before its cutoff");
    verify_run(Some((first.seq - 1, &first.prev_hash)), &rows).unwrap();
    let (head, hash) = two.audit_head().await.unwrap().unwrap();
    assert_eq!((head, &hash), (7 + 300, &rows.last().unwrap().hash));
    assert_eq!(rows.len() as u64, head - cutoff + 1);
}
