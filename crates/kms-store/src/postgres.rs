//! The PostgreSQL backend: several stateless ferrokms nodes share one database.
//!
//! It mirrors the SQLite backend table for table and behaviour for behaviour (the conformance
//! suite runs on both). What differs is concurrency, since other nodes write at the same time:
//!
//! - Every statement runs in PostgreSQL's default `READ COMMITTED` isolation.
//! - Uniqueness (key ids, alias names, access keys, principals) is left to primary keys and unique
//!   indexes: the loser of a race gets SQLSTATE 23505, which becomes [`StoreError::AlreadyExists`].
//! - `update_key` is a compare-and-swap in one `UPDATE … WHERE revision = $previous`; a concurrent
//!   writer that committed first makes PostgreSQL re-check the condition, so exactly one wins.
//! - Per-key limits (tags, grants) are counted in a transaction that first locks the key's row
//!   (`FOR NO KEY UPDATE`): two writers for one key take turns, so they cannot both pass the check.
//! - Text columns that are ordered or compared use `COLLATE "C"`, byte order, as SQLite does;
//!   listings and pagination tokens are identical on both backends.
//! - The audit trail is kept in compressed blocks, one per append, as on SQLite (see
//!   [`crate::audit_block`] and ADR 0019). Audit appends take a transaction-scoped advisory lock
//!   before reading the chain's head, so appenders on all nodes take turns and each block extends
//!   the head the previous one left (see [`append_audit_tx`]); retention takes it too. A mutation that carries audit events (see [`Store`]) appends them in
//!   its own transaction, as its last statement, so the change and its record commit together;
//!   a refused change returns before the append and its transaction rolls back.
//!
//! Migrations run at [`PostgresStore::connect`], forward only, in one transaction that holds a
//! transaction-scoped advisory lock, so nodes starting together apply them exactly once.
//!
//! Connections come from a small pool (deadpool-postgres). TLS to the database is not supported
//! yet: `sslmode=require` in the URL fails at connect rather than falling back to plaintext.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use kms_core::Timestamp;
use kms_core::audit::{AuditEvent, CRYPTOGRAPHIC_OPERATIONS};
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::KeyRecord;
use kms_core::tag::Tag;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

use crate::audit::{AuditDigest, AuditFilter, AuditRow, GENESIS};
use crate::audit_block::{BlockBuffers, BlockWriter, RowRef, distinct_keys};
use crate::invalidation::{CHANNEL, Invalidation, InvalidationFeed};
use crate::records::{self, Columns, backend};
use crate::statements::{audit_log_columns, postgres as sql};
use crate::{
    AccessKeyRecord, AliasRecord, GrantRecord, IdentityPolicyRecord, KeyUpdate, KeyUse, ManagedPolicyRecord,
    MaterialRecord, PrincipalRecord, PrincipalType, Store, StoreError, StoreResult,
};

/// Forward-only migrations, one file each in `migrations/postgres/`; entry `i` moves the schema from
/// version `i` to `i + 1`. The version record (the `schema_version` table) is as it always was.
///
/// Version numbers match the SQLite backend's: version N means the same tables on both.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_keys_aliases_access_keys.sql"),
    include_str!("../migrations/postgres/0002_principals_grants.sql"),
    include_str!("../migrations/postgres/0003_audit_log.sql"),
    include_str!("../migrations/postgres/0004_material_rotation_type.sql"),
    include_str!("../migrations/postgres/0005_due_time_indexes.sql"),
    include_str!("../migrations/postgres/0006_material_expiry_index.sql"),
    include_str!("../migrations/postgres/0007_audit_other_key.sql"),
    include_str!("../migrations/postgres/0008_iam_attributes.sql"),
    include_str!("../migrations/postgres/0009_audit_blocks.sql"),
];

/// The migration (its number, from 1) that introduced audit blocks: [`move_audit_log_into_blocks`]
/// runs after it, in the same transaction.
const AUDIT_BLOCKS_MIGRATION: usize = 9;

/// The advisory-lock key that serializes migrations across nodes: "ferrokms" in ASCII.
/// Other advisory locks (the scheduler leader) must use different keys.
const MIGRATION_LOCK: i64 = 0x6665_7272_6f6b_6d73;

/// The advisory-lock key that serializes audit appenders across nodes: "ferroaud" in ASCII.
const AUDIT_LOCK: i64 = 0x6665_7272_6f61_7564;

/// Connections per node. With PostgreSQL's default `max_connections` of 100, six nodes fit.
const POOL_SIZE: usize = 16;

/// How long to wait for a TCP connection when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a free pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The PostgreSQL store: a connection pool to one database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    description: String,
    /// For the change feed's own connection (LISTEN needs one outside the pool).
    config: tokio_postgres::Config,
    /// The buffers the audit writer's blocks are built and compressed in, kept from one batch
    /// to the next (see [`BlockWriter::finish_into`]); an append that finds them taken by
    /// another uses fresh ones.
    block_buffers: Arc<Mutex<BlockBuffers>>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore").field("database", &self.description).finish_non_exhaustive()
    }
}

/// A database failure, displayed with the server's message and SQLSTATE (tokio-postgres alone
/// says only "db error"). The server's DETAIL line, which can quote row values, is left out.
#[derive(Debug)]
struct PostgresError(tokio_postgres::Error);

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code()),
            None => match std::error::Error::source(&self.0) {
                Some(cause) => write!(f, "{}: {cause}", self.0),
                None => write!(f, "{}", self.0),
            },
        }
    }
}

impl std::error::Error for PostgresError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => Self::AlreadyExists,
            Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => Self::NotFound,
            _ => backend(PostgresError(e)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => backend(PostgresError(e)),
            other => backend(other),
        }
    }
}

impl PostgresStore {
    /// The schema version this build creates and expects.
    // INVARIANT: a handful of migrations, far below u32::MAX, so the cast cannot truncate.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// Connects to the database at `url` (`postgres://user[:password]@host:port/dbname`, or the
    /// `key=value` form) and applies pending migrations.
    ///
    /// Safe to call from several nodes at once: one applies the migrations, the others wait for it
    /// and find nothing left to do.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the database cannot be reached or
    /// migrated; [`StoreError::Corrupt`] if its schema is newer than this build.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| backend(PostgresError(e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let description = describe(&config);
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(backend)?;
        let store = Self { pool, description, config, block_buffers: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version of the database.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database cannot be read.
    pub async fn schema_version(&self) -> StoreResult<u32> {
        let client = self.pool.get().await?;
        let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[]).await?;
        u32::try_from(column::<i64>(&row, 0)?).map_err(backend)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Everything below, including creating the version table, happens under the lock: two
        // concurrent `CREATE TABLE IF NOT EXISTS` can otherwise both try to create it.
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version BIGINT PRIMARY KEY,
                applied TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await?;
        let row = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[]).await?;
        let current = usize::try_from(column::<i64>(&row, 0)?).map_err(backend)?;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "the database schema is version {current}, newer than this build knows ({}); upgrade ferrokms",
                MIGRATIONS.len()
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.batch_execute(sql).await?;
            if index + 1 == AUDIT_BLOCKS_MIGRATION {
                move_audit_log_into_blocks(&tx).await?;
            }
            let version = i64::try_from(index + 1).map_err(backend)?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&version]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }
}

/// The advisory-lock key of a background role: the first 8 bytes of SHA-256("ferrokms-role:" ‖
/// role), different from the migration and audit locks.
fn role_lock_key(role: &str) -> i64 {
    let digest = kms_crypto::digest::sha256(format!("ferrokms-role:{role}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
    i64::from_be_bytes(bytes)
}

/// `postgres://host:port/dbname`: where the store is, never who connects or with what password.
fn describe(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            // libpq semantics: one port applies to every host, otherwise one port per host.
            let port = ports.get(i).or_else(|| ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display().to_string().replace('/', "%2F")),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    // Like libpq, the database defaults to the user's name.
    let dbname = config.get_dbname().or_else(|| config.get_user()).unwrap_or_default();
    format!("postgres://{hosts}/{dbname}")
}

/// Reads a column, reporting a value of the wrong type as a corrupt row.
fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> StoreResult<T> {
    row.try_get(index).map_err(|e| StoreError::Corrupt(PostgresError(e).to_string()))
}

/// Runs a statement through the connection's prepared-statement cache.
async fn execute(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

async fn query(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

async fn query_opt(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}

async fn query_one(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Row> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_one(&statement, params).await?)
}

async fn count(client: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<usize> {
    let row = query_one(client, sql, params).await?;
    usize::try_from(column::<i64>(&row, 0)?).map_err(backend)
}

/// Locks a key's row until the end of the transaction, so that writers that count the key's
/// tags or grants take turns. A missing key is not an error here: the insert that follows fails
/// on the foreign key and reports [`StoreError::NotFound`], as on SQLite.
///
/// `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it still excludes the other counters and
/// `update_key`, but not inserts elsewhere that merely reference the key (aliases, materials).
async fn lock_key(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    query_opt(client, "SELECT 1 FROM keys WHERE key_id = $1 FOR NO KEY UPDATE", &[&id]).await?;
    Ok(())
}

/// Publishes what the open transaction changes on the change feed (see [`crate::invalidation`]).
/// PostgreSQL delivers a `NOTIFY` when, and only if, its transaction commits, so every node
/// hears of the change once it is visible and never of one that rolled back.
async fn notify(client: &impl GenericClient, change: &Invalidation) -> StoreResult<()> {
    execute(client, "SELECT pg_notify($1, $2)", &[&CHANNEL, &change.encode()]).await?;
    Ok(())
}

/// [`notify`] of a key.
async fn notify_key(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    execute(client, "SELECT pg_notify($1, 'k ' || $2)", &[&CHANNEL, &id]).await?;
    Ok(())
}

/// [`notify`] of every alias naming a key (before they are deleted with it), in the form of
/// [`Invalidation::encode`].
async fn notify_aliases_of(client: &impl GenericClient, id: &str) -> StoreResult<()> {
    execute(
        client,
        "SELECT pg_notify($1, 'a ' || account || ' ' || region || ' ' || name) FROM aliases WHERE key_id = $2",
        &[&CHANNEL, &id],
    )
    .await?;
    Ok(())
}

/// Replaces a key whose stored revision is `key.revision - 1`, in one statement: if another
/// writer committed the same row first, READ COMMITTED re-checks `revision = $4` against its
/// version, so exactly one of them changes the row ([`StoreError::Conflict`] for the other;
/// [`StoreError::NotFound`] if the key is gone).
/// Inserts materials of the key stored as `id`.
async fn insert_materials(client: &impl GenericClient, id: &str, materials: &[MaterialRecord]) -> StoreResult<()> {
    for m in materials {
        execute(
            client,
            sql::INSERT_MATERIAL,
            &[
                &id,
                &m.material_id.as_bytes().as_slice(),
                &m.wrapped,
                &m.created.unix_millis(),
                &m.rotation.map(kms_core::key::RotationKind::as_str),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Applies key updates (compare-and-swap each record, then its materials), announcing each
/// key to the other nodes.
async fn apply_updates(client: &impl GenericClient, updates: &[KeyUpdate]) -> StoreResult<()> {
    for u in updates {
        let id = u.key.key_id.storage();
        cas_update_key(client, &u.key).await?;
        notify_key(client, &id).await?;
        for material in &u.remove {
            execute(client, sql::DELETE_MATERIAL, &[&id, &material.as_bytes().as_slice()]).await?;
        }
        insert_materials(client, &id, &u.add).await?;
    }
    Ok(())
}

async fn cas_update_key(client: &impl GenericClient, key: &KeyRecord) -> StoreResult<()> {
    let rev = records::revision(key)?;
    let previous = rev.checked_sub(1).ok_or(StoreError::Conflict)?;
    let (record, id) = (records::encode_key(key)?, key.key_id.storage());
    let row = query_one(
        client,
        "WITH changed AS (
            UPDATE keys SET record = $1, revision = $2 WHERE key_id = $3 AND revision = $4 RETURNING 1
         )
         SELECT (SELECT COUNT(*) FROM changed), EXISTS (SELECT 1 FROM keys WHERE key_id = $3)",
        &[&record, &rev, &id, &previous],
    )
    .await?;
    if column::<i64>(&row, 0)? == 1 {
        Ok(())
    } else if column::<bool>(&row, 1)? {
        Err(StoreError::Conflict)
    } else {
        Err(StoreError::NotFound)
    }
}

/// Decodes every row with one of the shared decoders (see [`crate::records`]).
fn decode_all<T>(rows: &[Row], decode: impl Fn(&dyn Columns) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(|row| decode(row)).collect()
}

/// Decodes a row, if there is one, with one of the shared decoders.
fn decode_first<T>(row: Option<Row>, decode: impl FnOnce(&dyn Columns) -> StoreResult<T>) -> StoreResult<Option<T>> {
    row.map(|row| decode(&row)).transpose()
}

impl Columns for Row {
    fn text(&self, index: usize) -> StoreResult<String> {
        column(self, index)
    }
    fn optional_text(&self, index: usize) -> StoreResult<Option<String>> {
        column(self, index)
    }
    fn integer(&self, index: usize) -> StoreResult<i64> {
        column(self, index)
    }
    fn optional_integer(&self, index: usize) -> StoreResult<Option<i64>> {
        column(self, index)
    }
    fn bytes(&self, index: usize) -> StoreResult<Vec<u8>> {
        column(self, index)
    }
    fn optional_bytes(&self, index: usize) -> StoreResult<Option<Vec<u8>>> {
        column(self, index)
    }
}

/// Appends events to the audit chain inside an open transaction, which the caller commits: one
/// block (see [`crate::audit_block`]) holding all of them.
///
/// Appenders on every node take turns: the transaction first takes the [`AUDIT_LOCK`] advisory
/// lock, held until it commits or rolls back, and only then reads the head. Under `READ
/// COMMITTED` (every transaction here) that read is a fresh snapshot taken after the previous
/// holder committed, so the batch gets the next sequence numbers and links to the real head.
/// Should the lock ever be bypassed (another isolation level, a manual insert), the primary key
/// on the block's first number turns a would-be fork into [`StoreError::Conflict`] instead of a
/// second chain.
///
/// Callers embedding this in another mutation call it last, just before committing: the lock
/// then is held only briefly, and its holder never waits for another lock (such as a key's
/// row), so it cannot deadlock with transactions that hold such a lock while waiting for it.
pub(crate) async fn append_audit_tx(tx: &deadpool_postgres::Transaction<'_>, events: &[AuditEvent]) -> StoreResult<()> {
    append_audit_tx_with(tx, events, &mut BlockBuffers::default()).await
}

/// [`append_audit_tx`] building the block in `buffers`.
async fn append_audit_tx_with(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[AuditEvent],
    buffers: &mut BlockBuffers,
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).await?;
    // A statement of its own, so that its snapshot is taken after the lock was granted.
    let (head_seq, prev) = match audit_head_of(tx).await? {
        Some(head) => head,
        None => (0, GENESIS.to_vec()),
    };
    let mut block = BlockWriter::reusing(std::mem::take(&mut buffers.body));
    let prev = crate::audit_block::chain_events(&mut block, head_seq, prev, events);
    let key_arns = events.iter().flat_map(|e| [e.key_arn.as_deref(), e.other_key_arn.as_deref()]);
    match store_block(tx, block, &prev, key_arns, buffers).await {
        Err(StoreError::AlreadyExists) => Err(StoreError::Conflict),
        other => other,
    }
}

/// Inserts a finished block (its first and last records, their time span and the keys its
/// records concern come from the writer) and indexes it by key, in one statement (one round
/// trip while the audit lock is held). `last_hash` is the hash of its last record.
async fn store_block<'a>(
    client: &impl GenericClient,
    block: BlockWriter,
    last_hash: &[u8],
    key_arns: impl Iterator<Item = Option<&'a str>>,
    buffers: &mut BlockBuffers,
) -> StoreResult<()> {
    let Some(span) = block.span() else { return Ok(()) };
    let (body, size) = block.finish_into(&mut buffers.compressed);
    buffers.body = body;
    let keys = distinct_keys(key_arns);
    let params: [&(dyn ToSql + Sync); 8] = [
        &seq_param(span.first_seq)?,
        &seq_param(span.last_seq)?,
        &span.first_time.unix_millis(),
        &span.last_time.unix_millis(),
        &last_hash,
        &i64::try_from(size).map_err(backend)?,
        &buffers.compressed.as_slice(),
        &keys,
    ];
    execute(client, STORE_BLOCK, &params).await?;
    Ok(())
}

/// Inserts a block and its key index rows (`$8`, the distinct key ARNs).
const STORE_BLOCK: &str = "WITH block AS ( \
     INSERT INTO audit_blocks (first_seq, last_seq, first_time, last_time, last_hash, size, body) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING first_seq) \
     INSERT INTO audit_block_keys (first_seq, key_arn) SELECT block.first_seq, arn FROM block, unnest($8::text[]) AS arn";

/// Stores rows already chained (consecutive, in order) as one block.
async fn insert_block(client: &impl GenericClient, rows: &[AuditRow]) -> StoreResult<()> {
    let Some(last) = rows.last() else { return Ok(()) };
    let block: BlockWriter = rows.iter().map(RowRef::from).collect();
    let key_arns = rows.iter().flat_map(|r| [r.key_arn.as_deref(), r.other_key_arn.as_deref()]);
    store_block(client, block, &last.hash, key_arns, &mut BlockBuffers::default()).await
}

/// The chain's newest record: its number and hash.
async fn audit_head_of(client: &impl GenericClient) -> StoreResult<Option<(u64, Vec<u8>)>> {
    let row =
        query_opt(client, "SELECT last_seq, last_hash FROM audit_blocks ORDER BY first_seq DESC LIMIT 1", &[]).await?;
    row.map(|r| Ok((seq_column(&r, 0)?, column(&r, 1)?))).transpose()
}

/// The rows of a block read from a row whose first two columns are `size, body`.
fn block_rows(row: &Row) -> StoreResult<Vec<AuditRow>> {
    let size = usize::try_from(column::<i64>(row, 0)?)
        .map_err(|_| StoreError::Corrupt("an audit block has a negative size".into()))?;
    crate::audit_block::decode(column::<&[u8]>(row, 1)?, size)
}

/// Blocks fetched per round trip by [`each_block`]: most queries stop within the first few.
const BLOCKS_PER_FETCH: i32 = 8;

/// Visits the blocks a query selects (columns `size, body`), in its order, until `visit`
/// returns false. The blocks come a few at a time through a portal in a read-only transaction,
/// so a query that stops early never reads the rest of the trail.
async fn each_block(
    client: &mut deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    mut visit: impl FnMut(Vec<AuditRow>) -> bool,
) -> StoreResult<()> {
    let tx = client.build_transaction().read_only(true).start().await?;
    let statement = tx.prepare_cached(sql).await?;
    let portal = tx.bind(&statement, params).await?;
    'fetch: loop {
        let rows = tx.query_portal(&portal, BLOCKS_PER_FETCH).await?;
        for row in &rows {
            if !visit(block_rows(row)?) {
                break 'fetch;
            }
        }
        if rows.len() < BLOCKS_PER_FETCH as usize {
            break;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Copies the records of the table that held one row per record (migrations 3–8) into blocks
/// of at most [`MIGRATION_BLOCK_ROWS`] records, then drops it, in the migration's transaction.
/// Gaps (records already removed by retention) end a block, so a block always holds
/// consecutive records.
async fn move_audit_log_into_blocks(tx: &deadpool_postgres::Transaction<'_>) -> StoreResult<()> {
    let mut rows: Vec<AuditRow> = Vec::with_capacity(MIGRATION_BLOCK_ROWS);
    let mut after = i64::MIN;
    loop {
        // A page at a time, in order: the table may hold millions of records.
        let page = query(tx, LEGACY_AUDIT_ROWS, &[&after, &MIGRATION_PAGE]).await?;
        for r in &page {
            let row = records::audit_row(r)?;
            after = seq_param(row.seq)?;
            let consecutive = rows.last().is_none_or(|last| last.seq + 1 == row.seq);
            if rows.len() == MIGRATION_BLOCK_ROWS || !consecutive {
                insert_block(tx, &rows).await?;
                rows.clear();
            }
            rows.push(row);
        }
        if page.len() < MIGRATION_BLOCK_ROWS {
            break;
        }
    }
    insert_block(tx, &rows).await?;
    tx.batch_execute("DROP TABLE audit_log").await?;
    Ok(())
}

/// Records per block moved by [`move_audit_log_into_blocks`], as many as the writer's batches.
const MIGRATION_BLOCK_ROWS: usize = 250;
/// Records read per query by [`move_audit_log_into_blocks`] (as many as a block holds).
const MIGRATION_PAGE: i64 = 250;

/// The records of the table that held one row per record before audit blocks, after `$1`.
const LEGACY_AUDIT_ROWS: &str =
    concat!("SELECT ", audit_log_columns!(), ", other_key_arn FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");

/// Removes the records numbered below `seq`: whole blocks, and the older part of the block
/// that holds `seq` (rewritten without it), as the SQLite store does. Returns how many records
/// went. Holds the audit lock, so that appenders and another node's retention take turns with
/// it.
async fn prune_blocks(tx: &deadpool_postgres::Transaction<'_>, seq: u64) -> StoreResult<u64> {
    let below = seq_param(seq)?;
    execute(tx, "SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).await?;
    let whole = query_one(
        tx,
        "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0)::bigint FROM audit_blocks \
         WHERE first_seq < $1 AND last_seq < $1",
        &[&below],
    )
    .await?;
    let whole = u64::try_from(column::<i64>(&whole, 0)?).map_err(backend)?;
    let straddling =
        query_opt(tx, "SELECT size, body FROM audit_blocks WHERE first_seq < $1 AND last_seq >= $1", &[&below]).await?;
    // Every block starting before `seq` goes (the one cut through comes back below, starting
    // at `seq`), and with them every key index row before `seq`.
    execute(tx, "DELETE FROM audit_blocks WHERE first_seq < $1", &[&below]).await?;
    execute(tx, "DELETE FROM audit_block_keys WHERE first_seq < $1", &[&below]).await?;
    let mut removed = whole;
    if let Some(block) = straddling {
        let (gone, kept): (Vec<_>, Vec<_>) = block_rows(&block)?.into_iter().partition(|r| r.seq < seq);
        insert_block(tx, &kept).await?;
        removed += gone.len() as u64;
    }
    Ok(removed)
}

/// The blocks holding the records after `$1`, in order: from the block that holds record
/// `$1 + 1` (the latest block starting at or before it), found through the primary key.
const AUDIT_AFTER: &str = "SELECT size, body FROM audit_blocks WHERE first_seq >= \
     (SELECT COALESCE(MAX(first_seq), 0) FROM audit_blocks WHERE first_seq <= $1::bigint + 1) ORDER BY first_seq";

/// The blocks an audit query without a key reads, newest first: those whose time span meets
/// the window (`$1`, `$2`), before the cursor `$3`.
const AUDIT_QUERY: &str = "SELECT size, body FROM audit_blocks \
     WHERE ($1::bigint IS NULL OR last_time >= $1) AND ($2::bigint IS NULL OR first_time < $2) \
     AND ($3::bigint IS NULL OR first_seq < $3) ORDER BY first_seq DESC";

/// The same for a query by key (`$4`): only blocks holding a record for it, found through the
/// block key index.
const AUDIT_QUERY_BY_KEY: &str = "SELECT b.size, b.body FROM audit_block_keys k \
     JOIN audit_blocks b ON b.first_seq = k.first_seq WHERE k.key_arn = $4 \
     AND ($1::bigint IS NULL OR b.last_time >= $1) AND ($2::bigint IS NULL OR b.first_time < $2) \
     AND ($3::bigint IS NULL OR k.first_seq < $3) ORDER BY k.first_seq DESC";

/// The block holding the newest record (by time) older than a cutoff, through the time index:
/// the block whose earliest record is the latest one before the cutoff (see the SQLite store's
/// `AUDIT_SEQ_BEFORE`: records are numbered in about the order of their times).
const AUDIT_SEQ_BEFORE: &str =
    "SELECT size, body FROM audit_blocks WHERE first_time < $1 ORDER BY first_time DESC LIMIT 1";

/// Ends a delete that reports whether it found its row: commits with the audit events (appended
/// last, as [`append_audit_tx`] requires) when a row changed; otherwise rolls back, recording
/// nothing, since nothing changed.
async fn commit_if_changed(
    tx: deadpool_postgres::Transaction<'_>,
    changed: u64,
    audit: &[AuditEvent],
) -> StoreResult<bool> {
    if changed == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    append_audit_tx(&tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

fn seq_param(seq: u64) -> StoreResult<i64> {
    i64::try_from(seq).map_err(backend)
}

fn seq_column(row: &Row, index: usize) -> StoreResult<u64> {
    records::seq(row, index)
}

fn alias_invalidation(alias: &AliasRecord) -> Invalidation {
    Invalidation::Alias { account: alias.account.clone(), region: alias.region.clone(), name: alias.name.clone() }
}

/// How often the change feed's connection is checked; one that does not answer within as long
/// is replaced (a half-open TCP connection would otherwise go unnoticed for hours).
const FEED_HEARTBEAT: Duration = Duration::from_secs(5);

/// The `application_name` of the change feed's connection.
pub const FEED_APPLICATION_NAME: &str = "ferrokms change feed";

/// How long to wait before connecting the change feed again after losing it.
const FEED_RETRY: Duration = Duration::from_millis(500);

/// A connection that LISTENs on the change feed's channel: the client (for heartbeats) and the
/// payloads of its notifications, which end when the connection does.
struct Listening {
    client: tokio_postgres::Client,
    payloads: tokio::sync::mpsc::UnboundedReceiver<String>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

async fn listen(config: &tokio_postgres::Config) -> StoreResult<Listening> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, payloads) = tokio::sync::mpsc::unbounded_channel();
    // The connection makes progress (requests and notifications alike) only while polled.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(note))) => {
                    if sender.send(note.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("change feed connection failed: {}", PostgresError(e));
                    return;
                }
                None => return,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Listening { client, payloads, driver })
}

/// Forwards the feed until nobody follows it, reconnecting when the connection is lost. A loss
/// is announced as [`Invalidation::All`], and so is the reconnection: changes committed in
/// between were never heard of.
async fn follow(
    config: tokio_postgres::Config,
    mut listening: Listening,
    out: tokio::sync::mpsc::UnboundedSender<Invalidation>,
) {
    loop {
        let mut heartbeat = tokio::time::interval(FEED_HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = out.closed() => return,
                payload = listening.payloads.recv() => match payload {
                    Some(payload) => {
                        if out.send(Invalidation::decode(&payload)).is_err() {
                            return;
                        }
                    }
                    None => break,
                },
                _ = heartbeat.tick() => {
                    let answered = tokio::time::timeout(FEED_HEARTBEAT, listening.client.simple_query("")).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        tracing::warn!("lost the change feed's connection; caches are emptied and it reconnects");
        drop(listening);
        if out.send(Invalidation::All).is_err() {
            return;
        }
        listening = loop {
            tokio::select! {
                () = out.closed() => return,
                () = tokio::time::sleep(FEED_RETRY) => {}
            }
            match listen(&config).await {
                Ok(listening) => break listening,
                Err(e) => tracing::warn!("cannot reconnect the change feed: {e}"),
            }
        };
        if out.send(Invalidation::All).is_err() {
            return;
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn invalidations(&self) -> StoreResult<Option<InvalidationFeed>> {
        let mut config = self.config.clone();
        // Named, for operators looking at pg_stat_activity.
        config.application_name(FEED_APPLICATION_NAME);
        let listening = listen(&config).await?;
        let (sender, feed) = InvalidationFeed::channel();
        tokio::spawn(follow(config, listening, sender));
        Ok(Some(feed))
    }

    async fn try_lead(&self, role: &str) -> StoreResult<Option<crate::Leadership>> {
        let client = self.client().await?;
        let row = query_one(&client, "SELECT pg_try_advisory_lock($1)", &[&role_lock_key(role)]).await?;
        if !column::<bool>(&row, 0)? {
            return Ok(None);
        }
        // The session lock lives as long as this connection: take it out of the pool for good,
        // so that dropping the leadership (or the node dying) closes it and frees the role.
        let client = deadpool_postgres::Object::take(client);
        let client = std::sync::Arc::new(client);
        let held = std::sync::Arc::clone(&client);
        Ok(Some(crate::Leadership::while_alive(move || !held.is_closed())))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::SETTING, &[&name]).await?, |r| r.text(0))
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let client = self.client().await?;
        execute(&client, sql::SET_SETTING, &[&name, &value]).await?;
        Ok(())
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(execute(&client, sql::INIT_SETTING, &[&name, &value]).await? == 1)
    }

    async fn create_key(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
        policy: &str,
        tags: &[Tag],
        updates: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let (record, rev) = (records::encode_key(key)?, records::revision(key)?);
        let id = key.key_id.storage();
        let tag_keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
        let tag_values: Vec<&str> = tags.iter().map(|t| t.value.as_str()).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(&tx, sql::INSERT_KEY, &[&id, &key.account.as_str(), &key.region.as_str(), &rev, &record]).await?;
        insert_materials(&tx, &id, materials).await?;
        execute(&tx, sql::INSERT_POLICY, &[&id, &policy]).await?;
        // A repeated tag key fails on the primary key (AlreadyExists), as on SQLite.
        execute(
            &tx,
            "INSERT INTO key_tags (key_id, tag_key, tag_value) \
             SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)",
            &[&id, &tag_keys, &tag_values],
        )
        .await?;
        apply_updates(&tx, updates).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn key(&self, id: KeyId) -> StoreResult<Option<KeyRecord>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::KEY, &[&id.storage()]).await?, records::key_record)
    }

    async fn update_key(&self, key: &KeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        cas_update_key(&tx, key).await?;
        notify(&tx, &Invalidation::Key(key.key_id)).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_keys(&self, updates: &[KeyUpdate], audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        apply_updates(&tx, updates).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_keys(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<KeyId>> {
        let limit = records::limit(limit)?;
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT key_id FROM keys WHERE ((record::json)->'rotation'->>'next')::bigint <= $1 \
             OR ((record::json)->'deletion'->>'date')::bigint <= $1 \
             OR ((record::json)->>'material_expires')::bigint <= $1 ORDER BY key_id LIMIT $2",
            &[&now.unix_millis(), &limit],
        )
        .await?;
        decode_all(&rows, records::key_id)
    }

    async fn delete_key(
        &self,
        id: KeyId,
        revision: u64,
        updates: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let rev = i64::try_from(revision).map_err(backend)?;
        let id = id.storage();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let still =
            query_opt(&tx, "SELECT 1 FROM keys WHERE key_id = $1 AND revision = $2 FOR UPDATE", &[&id, &rev]).await?;
        if still.is_none() {
            return Ok(false);
        }
        notify_key(&tx, &id).await?;
        notify_aliases_of(&tx, &id).await?;
        for part in [
            sql::DELETE_KEY_MATERIALS,
            sql::DELETE_KEY_POLICY,
            sql::DELETE_KEY_TAGS,
            sql::DELETE_KEY_ALIASES,
            sql::DELETE_KEY_GRANTS,
        ] {
            execute(&tx, part, &[&id]).await?;
        }
        let n = execute(&tx, sql::DELETE_KEY, &[&id]).await?;
        apply_updates(&tx, updates).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn reset(&self, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Every node empties every cache when this commits.
        notify(&tx, &Invalidation::All).await?;
        tx.batch_execute(crate::statements::RESET).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_keys(
        &self,
        account: &AccountId,
        region: &Region,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<KeyId>> {
        let after = after.map(|k| k.storage()).unwrap_or_default();
        let limit = records::limit(limit)?;
        let client = self.client().await?;
        let rows = query(&client, sql::LIST_KEYS, &[&account.as_str(), &region.as_str(), &after, &limit]).await?;
        decode_all(&rows, records::key_id)
    }

    async fn materials(&self, id: KeyId) -> StoreResult<Vec<MaterialRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::MATERIALS, &[&id.storage()]).await?;
        decode_all(&rows, |r| records::material_record(id, r))
    }

    async fn create_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            sql::INSERT_ALIAS,
            &[
                &alias.account.as_str(),
                &alias.region.as_str(),
                &alias.name.as_str(),
                &alias.target.storage(),
                &alias.created.unix_millis(),
                &alias.updated.unix_millis(),
            ],
        )
        .await?;
        // The target's `kms:ResourceAliases` changed too.
        notify(&tx, &Invalidation::Key(alias.target)).await?;
        notify(&tx, &alias_invalidation(alias)).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The previous target loses the alias (its `kms:ResourceAliases`): name it too.
        execute(
            &tx,
            "SELECT pg_notify($1, 'k ' || key_id) FROM aliases WHERE account = $2 AND region = $3 AND name = $4",
            &[&CHANNEL, &alias.account.as_str(), &alias.region.as_str(), &alias.name.as_str()],
        )
        .await?;
        let n = execute(
            &tx,
            sql::UPDATE_ALIAS,
            &[
                &alias.target.storage(),
                &alias.updated.unix_millis(),
                &alias.account.as_str(),
                &alias.region.as_str(),
                &alias.name.as_str(),
            ],
        )
        .await?;
        if n != 1 {
            return Err(StoreError::NotFound);
        }
        notify(&tx, &Invalidation::Key(alias.target)).await?;
        notify(&tx, &alias_invalidation(alias)).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &AliasName,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = query(&tx, sql::DELETE_ALIAS, &[&account.as_str(), &region.as_str(), &name.as_str()]).await?;
        for row in &deleted {
            notify_key(&tx, column::<&str>(row, 0)?).await?;
        }
        let change = Invalidation::Alias { account: account.clone(), region: region.clone(), name: name.clone() };
        notify(&tx, &change).await?;
        commit_if_changed(tx, deleted.len() as u64, audit).await
    }

    async fn alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> StoreResult<Option<AliasRecord>> {
        let client = self.client().await?;
        let row = query_opt(&client, sql::ALIAS, &[&account.as_str(), &region.as_str(), &name.as_str()]).await?;
        decode_first(row, records::alias_record)
    }

    async fn list_aliases(
        &self,
        account: &AccountId,
        region: &Region,
        target: Option<KeyId>,
        after: Option<&AliasName>,
        limit: usize,
    ) -> StoreResult<Vec<AliasRecord>> {
        let target = target.map(|k| k.storage());
        let after = after.map(AliasName::as_str).unwrap_or_default();
        let limit = records::limit(limit)?;
        let client = self.client().await?;
        let rows =
            query(&client, sql::LIST_ALIASES, &[&account.as_str(), &region.as_str(), &target, &after, &limit]).await?;
        decode_all(&rows, records::alias_record)
    }

    async fn tags(&self, id: KeyId) -> StoreResult<Vec<Tag>> {
        let client = self.client().await?;
        let rows = query(&client, sql::TAGS, &[&id.storage()]).await?;
        decode_all(&rows, records::tag)
    }

    async fn put_tags(&self, id: KeyId, tags: &[Tag], max: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        // The last value of a repeated key wins, as with SQLite's one upsert per tag. Writing in
        // key order (Rust's byte order, the index's "C" order) keeps concurrent writers' row
        // locks in one order, so they cannot deadlock.
        let merged: BTreeMap<&str, &str> = tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect();
        let keys: Vec<&str> = merged.keys().copied().collect();
        let values: Vec<&str> = merged.values().copied().collect();
        let id = id.storage();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_key(&tx, &id).await?;
        execute(
            &tx,
            "INSERT INTO key_tags (key_id, tag_key, tag_value) \
             SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v) \
             ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
            &[&id, &keys, &values],
        )
        .await?;
        if count(&tx, sql::COUNT_TAGS, &[&id]).await? > max {
            return Err(StoreError::LimitExceeded(max)); // dropping `tx` rolls back
        }
        notify_key(&tx, &id).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_tags(&self, id: KeyId, keys: &[String], audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(&tx, "DELETE FROM key_tags WHERE key_id = $1 AND tag_key = ANY ($2)", &[&id.storage(), &keys]).await?;
        notify(&tx, &Invalidation::Key(id)).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn policy(&self, id: KeyId) -> StoreResult<Option<String>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::POLICY, &[&id.storage()]).await?, |r| r.text(0))
    }

    async fn put_policy(&self, id: KeyId, document: &str, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if execute(&tx, sql::UPDATE_POLICY, &[&document, &id.storage()]).await? != 1 {
            return Err(StoreError::NotFound);
        }
        notify(&tx, &Invalidation::Key(id)).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::ACCESS_KEY, &[&id]).await?, records::access_key_record)
    }

    async fn create_access_key(&self, record: &AccessKeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let session = record.session.as_ref();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            sql::INSERT_ACCESS_KEY,
            &[
                &record.access_key_id,
                &record.account.as_str(),
                &record.principal_arn,
                &record.wrapped_secret,
                &record.created.unix_millis(),
                &session.map(|s| s.session_name.as_str()),
                &session.map(|s| s.token_digest.as_slice()),
                &session.map(|s| s.expires.unix_millis()),
                &(!record.active).then_some(crate::INACTIVE),
                &records::session_tags(session)?,
                &records::key_use(record.last_used.as_ref())?,
            ],
        )
        .await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_access_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = execute(&tx, sql::DELETE_ACCESS_KEY, &[&id]).await?;
        notify(&tx, &Invalidation::AccessKey(id.to_owned())).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn materials_after(
        &self,
        after: Option<(KeyId, MaterialId)>,
        limit: usize,
    ) -> StoreResult<Vec<MaterialRecord>> {
        let (key, material) = after.map_or((String::new(), Vec::new()), |(k, m)| (k.storage(), m.as_bytes().to_vec()));
        let client = self.client().await?;
        let rows = query(&client, sql::MATERIALS_AFTER, &[&key, &material, &records::limit(limit)?]).await?;
        decode_all(&rows, records::material_with_key)
    }

    async fn rewrap_material(
        &self,
        key_id: KeyId,
        material_id: MaterialId,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = execute(
            &client,
            sql::REWRAP_MATERIAL,
            &[&key_id.storage(), &material_id.as_bytes().as_slice(), &old, &new],
        )
        .await?;
        Ok(n > 0)
    }

    async fn access_keys_after(&self, after: &str, limit: usize) -> StoreResult<Vec<AccessKeyRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::ACCESS_KEYS_AFTER, &[&after, &records::limit(limit)?]).await?;
        decode_all(&rows, records::access_key_record)
    }

    async fn rewrap_access_key(&self, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(execute(&client, sql::REWRAP_ACCESS_KEY, &[&id, &old, &new]).await? > 0)
    }

    async fn record_key_use(&self, id: &str, used: &KeyUse) -> StoreResult<()> {
        let client = self.client().await?;
        execute(&client, sql::SET_ACCESS_KEY_USE, &[&id, &records::key_use(Some(used))?]).await.map(drop)
    }

    async fn set_access_key_active(&self, id: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = execute(&tx, sql::SET_ACCESS_KEY_STATUS, &[&id, &(!active).then_some(crate::INACTIVE)]).await?;
        notify(&tx, &Invalidation::AccessKey(id.to_owned())).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn access_keys_of(&self, principal_arn: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::ACCESS_KEYS_OF, &[&principal_arn]).await?;
        decode_all(&rows, records::access_key_record)
    }

    async fn create_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            sql::INSERT_PRINCIPAL,
            &[
                &record.arn,
                &record.account.as_str(),
                &record.kind.as_str(),
                &record.name,
                &record.principal_id,
                &record.trust_policy,
                &record.created.unix_millis(),
                &record.attributes.to_stored(),
            ],
        )
        .await?;
        notify(&tx, &Invalidation::Principal(record.arn.clone())).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::PRINCIPAL, &[&arn]).await?, records::principal_record)
    }

    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalType,
        name: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        let client = self.client().await?;
        let row = query_opt(&client, sql::PRINCIPAL_BY_NAME, &[&account.as_str(), &kind.as_str(), &name]).await?;
        decode_first(row, records::principal_record)
    }

    async fn rename_principal(
        &self,
        old_arn: &str,
        renamed: &PrincipalRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if query(&tx, sql::PRINCIPAL_ID, &[&old_arn]).await?.is_empty() {
            return Ok(false);
        }
        notify(&tx, &Invalidation::Principal(old_arn.to_owned())).await?;
        notify(&tx, &Invalidation::Principal(renamed.arn.clone())).await?;
        execute(
            &tx,
            "SELECT pg_notify($1, 'c ' || access_key_id) FROM access_keys WHERE principal_arn = $2",
            &[&CHANNEL, &old_arn],
        )
        .await?;
        // Identity policies reference the principal: out while it is renamed, back after.
        let policies =
            decode_all(&query(&tx, sql::IDENTITY_POLICIES, &[&old_arn]).await?, records::identity_policy_record)?;
        execute(&tx, sql::DELETE_IDENTITY_POLICIES_OF, &[&old_arn]).await?;
        execute(&tx, sql::MOVE_ACCESS_KEYS, &[&old_arn, &renamed.arn]).await?;
        let attributes = renamed.attributes.to_stored();
        execute(&tx, sql::RENAME_PRINCIPAL, &[&old_arn, &renamed.arn, &renamed.name, &attributes]).await?;
        for p in policies {
            execute(&tx, sql::PUT_IDENTITY_POLICY, &[&renamed.arn, &p.name, &p.document]).await?;
        }
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn update_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let attributes = record.attributes.to_stored();
        let n = execute(&tx, sql::UPDATE_PRINCIPAL, &[&record.arn, &record.trust_policy, &attributes]).await?;
        notify(&tx, &Invalidation::Principal(record.arn.clone())).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn create_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let json = records::encode_managed_policy(record)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(&tx, sql::INSERT_MANAGED_POLICY, &[&record.arn, &record.account.as_str(), &record.name, &json]).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<ManagedPolicyRecord>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::MANAGED_POLICY, &[&arn]).await?, records::managed_policy_record)
    }

    async fn managed_policies(&self, account: &AccountId) -> StoreResult<Vec<ManagedPolicyRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::MANAGED_POLICIES, &[&account.as_str()]).await?;
        decode_all(&rows, records::managed_policy_record)
    }

    async fn update_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let json = records::encode_managed_policy(record)?;
        let revision = i64::try_from(record.revision).map_err(backend)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if execute(&tx, sql::UPDATE_MANAGED_POLICY, &[&record.arn, &json, &revision]).await? != 1 {
            let exists = query_opt(&tx, sql::MANAGED_POLICY, &[&record.arn]).await?.is_some();
            return Err(if exists { StoreError::Conflict } else { StoreError::NotFound });
        }
        // Every principal it is attached to (directly or through a group) decides anew.
        notify(&tx, &Invalidation::Principal(record.arn.clone())).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_managed_policy(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = execute(&tx, sql::DELETE_MANAGED_POLICY, &[&arn]).await?;
        notify(&tx, &Invalidation::Principal(arn.to_owned())).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn list_principals(&self, account: &AccountId) -> StoreResult<Vec<PrincipalRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::LIST_PRINCIPALS, &[&account.as_str()]).await?;
        decode_all(&rows, records::principal_record)
    }

    async fn delete_principal(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        notify(&tx, &Invalidation::Principal(arn.to_owned())).await?;
        execute(
            &tx,
            "SELECT pg_notify($1, 'c ' || access_key_id) FROM access_keys WHERE principal_arn = $2",
            &[&CHANNEL, &arn],
        )
        .await?;
        let id = query(&tx, sql::PRINCIPAL_ID, &[&arn]).await?;
        if let Some(row) = id.first() {
            let id: String = row.try_get(0)?;
            let (named, unique) = records::principal_rebinding(arn, &id);
            execute(
                &tx,
                "SELECT pg_notify($1, 'k ' || key_id) FROM key_policies WHERE strpos(document, $2) > 0",
                &[&CHANNEL, &named],
            )
            .await?;
            execute(
                &tx,
                "UPDATE key_policies SET document = replace(document, $1, $2) WHERE strpos(document, $1) > 0",
                &[&named, &unique],
            )
            .await?;
            execute(
                &tx,
                "UPDATE principals SET trust_policy = replace(trust_policy, $1, $2) \
                 WHERE trust_policy IS NOT NULL AND strpos(trust_policy, $1) > 0",
                &[&named, &unique],
            )
            .await?;
        }
        execute(&tx, sql::DELETE_ACCESS_KEYS_OF, &[&arn]).await?;
        execute(&tx, sql::DELETE_IDENTITY_POLICIES_OF, &[&arn]).await?;
        let n = execute(&tx, sql::DELETE_PRINCIPAL, &[&arn]).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn put_identity_policy(&self, record: &IdentityPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(&tx, sql::PUT_IDENTITY_POLICY, &[&record.principal_arn, &record.name, &record.document]).await?;
        notify(&tx, &Invalidation::Principal(record.principal_arn.clone())).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_identity_policy(&self, principal_arn: &str, name: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = execute(&tx, sql::DELETE_IDENTITY_POLICY, &[&principal_arn, &name]).await?;
        notify(&tx, &Invalidation::Principal(principal_arn.to_owned())).await?;
        commit_if_changed(tx, n, audit).await
    }

    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<IdentityPolicyRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::IDENTITY_POLICIES, &[&principal_arn]).await?;
        decode_all(&rows, records::identity_policy_record)
    }

    async fn create_grant(&self, grant: &GrantRecord, max_per_key: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        let record = records::encode_grant(grant)?;
        let key = grant.key_id.storage();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_key(&tx, &key).await?;
        if count(&tx, sql::COUNT_GRANTS, &[&key]).await? >= max_per_key {
            return Err(StoreError::LimitExceeded(max_per_key));
        }
        execute(&tx, sql::INSERT_GRANT, &[&grant.grant_id, &key, &record]).await?;
        notify_key(&tx, &key).await?;
        append_audit_tx(&tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn grants(&self, key_id: KeyId) -> StoreResult<Vec<GrantRecord>> {
        let client = self.client().await?;
        let rows = query(&client, sql::GRANTS, &[&key_id.storage()]).await?;
        decode_all(&rows, records::grant_record)
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        let client = self.client().await?;
        decode_first(query_opt(&client, sql::GRANT, &[&grant_id]).await?, records::grant_record)
    }

    async fn grants_for_retiring(&self, account: &AccountId, principal: &str) -> StoreResult<Vec<GrantRecord>> {
        // The retiring principal lives only inside the JSON record, as on SQLite: read every
        // grant and filter here, so that a corrupt record is reported the same way on both.
        let client = self.client().await?;
        let rows = query(&client, sql::ALL_GRANTS, &[]).await?;
        Ok(decode_all(&rows, records::grant_record)?
            .into_iter()
            .filter(|g| {
                &g.account == account
                    && (g.retiring_principal.as_deref() == Some(principal)
                        || g.retiring_service_principal.as_deref() == Some(principal))
            })
            .collect())
    }

    async fn delete_grant(&self, grant_id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = query(&tx, sql::DELETE_GRANT, &[&grant_id]).await?;
        for row in &deleted {
            notify_key(&tx, column::<&str>(row, 0)?).await?;
        }
        commit_if_changed(tx, deleted.len() as u64, audit).await
    }

    async fn append_audit(&self, events: std::sync::Arc<[AuditEvent]>) -> StoreResult<()> {
        // The writer's buffers, unless another append holds them (then fresh ones).
        let mut buffers = std::mem::take(&mut *self.block_buffers.lock().unwrap_or_else(PoisonError::into_inner));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        append_audit_tx_with(&tx, &events, &mut buffers).await?;
        tx.commit().await?;
        if buffers.worth_keeping() {
            *self.block_buffers.lock().unwrap_or_else(PoisonError::into_inner) = buffers;
        }
        Ok(())
    }

    async fn audit_after(&self, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let after = seq_param(after_seq)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut client = self.client().await?;
        each_block(&mut client, AUDIT_AFTER, &[&after], |rows| {
            out.extend(rows.into_iter().filter(|r| r.seq > after_seq).take(limit - out.len()));
            out.len() < limit
        })
        .await?;
        Ok(out)
    }

    async fn audit_query(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let f = filter;
        let mut out = Vec::new();
        if f.limit == 0 {
            return Ok(out);
        }
        // Blocks newest first; the rows of each newest first.
        let from = f.from.map(Timestamp::unix_millis);
        let to = f.to.map(Timestamp::unix_millis);
        let before = f.before_seq.map(i64::try_from).transpose().map_err(backend)?;
        let mut client = self.client().await?;
        let visit = |rows: Vec<AuditRow>| {
            out.extend(rows.into_iter().rev().filter(|r| f.matches(r)).take(f.limit - out.len()));
            out.len() < f.limit
        };
        match &f.key_arn {
            Some(arn) => each_block(&mut client, AUDIT_QUERY_BY_KEY, &[&from, &to, &before, arn], visit).await?,
            None => each_block(&mut client, AUDIT_QUERY, &[&from, &to, &before], visit).await?,
        }
        Ok(out)
    }

    async fn last_key_usage(&self, key_arn: &str) -> StoreResult<Option<AuditRow>> {
        let mut client = self.client().await?;
        let mut found = None;
        let none: Option<i64> = None;
        each_block(&mut client, AUDIT_QUERY_BY_KEY, &[&none, &none, &none, &key_arn], |rows| {
            found = rows.into_iter().rev().find(|r| {
                r.concerns_key(key_arn)
                    && r.error_code.is_none()
                    && CRYPTOGRAPHIC_OPERATIONS.contains(&r.event_name.as_str())
            });
            found.is_none()
        })
        .await?;
        Ok(found)
    }

    async fn audit_head(&self) -> StoreResult<Option<(u64, Vec<u8>)>> {
        let client = self.client().await?;
        audit_head_of(&client).await
    }

    async fn audit_seq_before(&self, cutoff: Timestamp) -> StoreResult<Option<u64>> {
        let client = self.client().await?;
        let block = query_opt(&client, AUDIT_SEQ_BEFORE, &[&cutoff.unix_millis()]).await?;
        let Some(block) = block else { return Ok(None) };
        Ok(block_rows(&block)?.iter().filter(|r| r.time < cutoff).map(|r| r.seq).max())
    }

    async fn prune_audit(&self, seq: u64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = prune_blocks(&tx, seq).await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn key_states(&self) -> StoreResult<Vec<(String, u64)>> {
        let client = self.client().await?;
        let rows =
            query(&client, "SELECT (record::json)->>'state' AS state, COUNT(*) FROM keys GROUP BY 1 ORDER BY 1", &[])
                .await?;
        decode_all(&rows, records::state_count)
    }

    async fn put_audit_digest(&self, digest: &AuditDigest) -> StoreResult<()> {
        let client = self.client().await?;
        let params: [&(dyn ToSql + Sync); 4] =
            [&seq_param(digest.seq)?, &digest.hash, &digest.created.unix_millis(), &digest.signature];
        execute(&client, sql::INSERT_AUDIT_DIGEST, &params).await?;
        Ok(())
    }

    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>> {
        let client = self.client().await?;
        let rows = query(&client, sql::AUDIT_DIGESTS, &[]).await?;
        decode_all(&rows, records::audit_digest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every file in `migrations/postgres/` is listed in [`MIGRATIONS`], in the order of their
    /// numbers: a file added without its entry (or an entry out of order) fails here, not in a
    /// deployment.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        assert_eq!(texts, MIGRATIONS);
        for (n, file) in files.iter().enumerate() {
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(&format!("{:04}_", n + 1)) && name.ends_with(".sql"), "{name}");
        }
    }

    /// A primary and its standby in one URL (as for failover): both servers are named, with
    /// their own ports, and neither the user, the password nor the parameters are.
    #[test]
    fn a_multi_host_url_is_described_without_its_secrets() {
        let url = "postgres://kms:s3cret@10.0.0.1:5432,10.0.0.2:5433,[::1]/ferrokms?target_session_attrs=read-write";
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(describe(&config), "postgres://10.0.0.1:5432,10.0.0.2:5433,[::1]:5432/ferrokms");
    }
}
