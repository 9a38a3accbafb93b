//! The SQLite backend: one database file in the data directory, WAL journal,
//! `synchronous=FULL` so that every acknowledged commit survives power loss.
//!
//! rusqlite is blocking, so each call runs on tokio's blocking pool holding the one connection.
//! SQLite allows one writer at a time anyway; readers of the hot path never get here because the
//! service caches keys.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::KeyRecord;
use kms_core::tag::Tag;
use rusqlite::{Connection, OptionalExtension, params};

use kms_core::audit::AuditEvent;

use crate::audit::{AuditDigest, AuditFilter, AuditRow};
use crate::audit_block::{BlockBuffers, BlockWriter, RowRef, distinct_keys};
use crate::records::{self, Columns, backend};
use crate::statements::{audit_log_columns, sqlite as sql};
use crate::{
    AccessKeyRecord, AliasRecord, GrantRecord, IdentityPolicyRecord, KeyBundle, KeyUpdate, KeyUse, ManagedPolicyRecord,
    MaterialRecord, PrincipalRecord, PrincipalType, Store, StoreError, StoreResult,
};

/// Forward-only migrations, one file each in `migrations/sqlite/`; entry `i` moves the schema from
/// version `i` to `i + 1`. The version record (the `schema_version` table) is as it always was.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_keys_aliases_access_keys.sql"),
    include_str!("../migrations/sqlite/0002_principals_grants.sql"),
    include_str!("../migrations/sqlite/0003_audit_log.sql"),
    include_str!("../migrations/sqlite/0004_material_rotation_type.sql"),
    include_str!("../migrations/sqlite/0005_due_time_indexes.sql"),
    include_str!("../migrations/sqlite/0006_audit_blocks.sql"),
    include_str!("../migrations/sqlite/0007_material_expiry_index.sql"),
    include_str!("../migrations/sqlite/0008_iam_attributes.sql"),
];

/// The migration (its number, from 1) that introduced audit blocks.
const AUDIT_BLOCKS_MIGRATION: usize = 6;

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// Mutations waiting for the next group commit.
    pending: Arc<Mutex<Vec<Box<dyn GroupJob>>>>,
    /// Group-commit transactions committed so far.
    groups: Arc<std::sync::atomic::AtomicU64>,
    /// Checkpoints after writes; stops when the last clone of the store is dropped.
    checkpointer: Arc<Checkpointer>,
    /// The buffers the audit writer's blocks are built and compressed in, kept from one batch
    /// to the next (see [`BlockWriter::finish_into`]).
    block_buffers: Arc<Mutex<BlockBuffers>>,
}

/// Least time between two background checkpoints.
const CHECKPOINT_GAP: std::time::Duration = std::time::Duration::from_millis(20);

/// WAL frames (4 KiB pages) past which the checkpointer stops waiting for a gap between commits
/// (64 MiB): see [`Checkpointer`].
const WAL_LIMIT_FRAMES: i64 = 16_384;

/// A thread that moves committed WAL pages into the database file (`PRAGMA
/// wal_checkpoint(PASSIVE)`, which never blocks the writer) on a connection of its own, soon
/// after each use of the store's connection (at most once per [`CHECKPOINT_GAP`]). Durability
/// does not depend on it: a commit is durable once its WAL frames are synced.
///
/// Why soon rather than every so often: SQLite starts the WAL over from its beginning only when
/// a checkpoint has copied every frame in it. A checkpoint every 500 ms never caught up with a
/// writer committing audit batches every few milliseconds, so under steady load the WAL grew
/// without end (550 MB after ten seconds of Encrypt), and every frame went to a new part of the file
/// — a fresh page-cache page and a block allocation per page, about a fifth of the store's CPU.
/// Checkpointing each batch while the next one gathers lets the WAL restart, so it stays a few
/// batches long and its pages are rewritten in place.
///
/// That needs a checkpoint to finish between two commits, which a slow disk or a writer that
/// never pauses can prevent. So when a passive checkpoint leaves the WAL longer than its limit
/// ([`WAL_LIMIT_FRAMES`]), the thread raises a flag, and the next user of the store's
/// connection, still holding it, runs a RESTART checkpoint (it copies what is left and lets the
/// next commit start the WAL over; `journal_size_limit` then trims the file back to the limit).
/// Run there rather than on this thread, it cannot be starved by commits that follow each other
/// without a gap. Commits wait for that one checkpoint, rarely, instead of the WAL growing
/// without bound.
struct Checkpointer {
    /// A nudge asks for a checkpoint; dropping the sender stops the thread.
    nudge: std::sync::mpsc::SyncSender<()>,
    /// Set when the WAL is past its limit: the connection's next user restarts it.
    over_limit: Arc<std::sync::atomic::AtomicBool>,
}

impl Checkpointer {
    fn start(path: &Path, wal_limit_frames: i64) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let over_limit = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&over_limit);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the store (the sender) is gone.
                while nudged.recv().is_ok() {
                    // (busy, frames in the WAL, frames copied); a failed checkpoint is retried
                    // on the next nudge.
                    let passive =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)).unwrap_or(0);
                    if passive > wal_limit_frames {
                        flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    // Commits that arrive meanwhile leave one nudge waiting: one checkpoint for
                    // them all.
                    std::thread::sleep(CHECKPOINT_GAP);
                }
            })
            .map_err(backend)?;
        Ok(Self { nudge, over_limit })
    }

    /// Asks for a checkpoint (one is already pending when the channel is full).
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

/// Most mutations committed in one transaction.
const MAX_GROUP: usize = 512;

/// Answers a mutation once its group's fate is known: `Ok` after the commit, `Err` with the
/// reason the group was not committed.
type Acknowledgement = Box<dyn FnOnce(Result<(), String>) + Send>;

/// One mutation waiting for a group commit: run it inside the group's transaction (in its own
/// savepoint), or fail it without running.
trait GroupJob: Send {
    /// Runs the change in a savepoint of `tx`. Returns the acknowledgement to send once the
    /// group's fate is known (`Ok` after the commit, `Err` with the reason otherwise), or `None`
    /// when the savepoint could not be handled and the whole transaction must be abandoned (the
    /// job has then been failed already).
    fn run(self: Box<Self>, tx: &rusqlite::Transaction<'_>) -> Option<Acknowledgement>;
    /// Answers the job with an error without running it.
    fn fail(self: Box<Self>, reason: String);
}

struct Mutation<T, F> {
    change: F,
    audit: Vec<AuditEvent>,
    reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
}

fn group_failure(reason: &str) -> StoreError {
    backend(std::io::Error::other(format!("group commit failed: {reason}")))
}

impl<T, F> GroupJob for Mutation<T, F>
where
    T: Changed + Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
{
    fn run(self: Box<Self>, tx: &rusqlite::Transaction<'_>) -> Option<Acknowledgement> {
        let Mutation { change, audit, reply } = *self;
        if let Err(e) = tx.execute_batch("SAVEPOINT mutation") {
            let _ = reply.send(Err(e.into()));
            return None;
        }
        let outcome = change(tx).and_then(|o| {
            if o.changed() {
                append_audit_tx(tx, &audit)?;
            }
            Ok(o)
        });
        // A change that failed or changed nothing leaves no trace; one that changed something
        // stays in the group's transaction.
        let keep = outcome.as_ref().is_ok_and(Changed::changed);
        let end = if keep { "RELEASE mutation" } else { "ROLLBACK TO mutation; RELEASE mutation" };
        if let Err(e) = tx.execute_batch(end) {
            let _ = reply.send(Err(e.into()));
            return None;
        }
        // Even an answer that changed nothing was read inside the group, after the changes
        // before it: it is sent only once those are committed.
        Some(Box::new(move |committed: Result<(), String>| {
            let _ = reply.send(match committed {
                Ok(()) => outcome,
                Err(reason) => Err(group_failure(&reason)),
            });
        }))
    }

    fn fail(self: Box<Self>, reason: String) {
        let _ = self.reply.send(Err(group_failure(&reason)));
    }
}

/// Commits `jobs` in one IMMEDIATE transaction (one fsync), each in its own savepoint, and
/// acknowledges each only after the commit. If the transaction cannot be begun or committed,
/// or a savepoint cannot be handled, nothing of the group is kept and every job gets an error.
fn commit_group(conn: &mut Connection, jobs: Vec<Box<dyn GroupJob>>, groups: &std::sync::atomic::AtomicU64) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            for job in jobs {
                job.fail(e.to_string());
            }
            return;
        }
    };
    let mut acknowledgements = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    let mut broken = false;
    for job in jobs.by_ref() {
        match job.run(&tx) {
            Some(ack) => acknowledgements.push(ack),
            None => {
                broken = true;
                break;
            }
        }
    }
    let result = if broken {
        drop(tx);
        Err("the transaction had to be abandoned".to_owned())
    } else {
        let committed = tx.commit().map_err(|e| e.to_string());
        if committed.is_ok() {
            groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        committed
    };
    for job in jobs {
        job.fail(result.clone().err().unwrap_or_else(|| "the transaction had to be abandoned".to_owned()));
    }
    for ack in acknowledgements {
        ack(result.clone());
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Self::AlreadyExists
            }
            rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                Self::NotFound
            }
            other => backend(other),
        }
    }
}

/// Creates the database file with mode 0600 before SQLite opens it, and takes group and world
/// access away from an existing one and its `-wal` and `-shm` files (with a warning when it
/// cannot). SQLite creates the
/// `-wal` and `-shm` files with the database file's permissions, so they are private too;
/// left to SQLite, the database would be created 0644 (0666 less the usual umask) and other
/// local users could read the wrapped key material and the audit trail.
fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let companions = ["", "-wal", "-shm"].map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        });
        for file in companions {
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    // Another user (an auditor reading a copy) may open a file it cannot chmod:
                    // that is worth a warning, not a refusal.
                    if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                        tracing::warn!(
                            "{} is readable by group or others and cannot be made private: {e}",
                            file.display()
                        );
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Writes a consistent snapshot of the database at `source` to the new file `dest` (SQLite's
    /// `VACUUM INTO`, read in one transaction while a running server keeps writing): key
    /// material in it is wrapped by the root key, which it does not contain.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `source` cannot be read or `dest` written (it must not exist).
    pub fn snapshot(source: &Path, dest: &Path) -> StoreResult<()> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let c = Connection::open_with_flags(source, flags)?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        let dest_text = dest.to_str().ok_or_else(|| StoreError::Corrupt(format!("path {}", dest.display())))?;
        c.execute("VACUUM INTO ?1", [dest_text])?;
        std::fs::File::open(dest).and_then(|f| f.sync_all()).map_err(backend)?;
        Ok(())
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or migrated.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_wal_limit(path, WAL_LIMIT_FRAMES)
    }

    /// [`SqliteStore::open`] with another WAL length limit, in frames (tests use a small one).
    fn open_with_wal_limit(path: &Path, wal_limit_frames: i64) -> StoreResult<Self> {
        owner_only(path).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 8 MiB of page cache instead of SQLite's 2 MiB: the pages appends touch (the audit
        // blocks' and the block key index's) stay in memory, so appending does not re-read
        // them from the file on every batch. 16 MiB served the one-row-per-record trail and
        // its two indexes; with blocks it only held more memory (about 20 MB more at the peak
        // of the 100,000-key run, no faster).
        conn.pragma_update(None, "cache_size", -8_192)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        // Checkpoints run on their own connection and thread (below), not inside whichever
        // commit happens to cross the WAL threshold: a checkpoint copies and fsyncs the
        // database file, and doing it while holding the one writer connection stalled every
        // request queued behind it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts over after a long stretch, its file is cut back to the limit.
        conn.pragma_update(None, "journal_size_limit", wal_limit_frames * 4096)?;
        let checkpointer = Arc::new(Checkpointer::start(path, wal_limit_frames)?);
        Ok(Self {
            path: path.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            pending: Arc::default(),
            groups: Arc::default(),
            checkpointer,
            block_buffers: Arc::default(),
        })
    }

    /// Runs `change` in an IMMEDIATE transaction. When it succeeds and changed something, the
    /// audit events are appended to the chain in the same transaction; otherwise (an error, or
    /// nothing to change) its statements are rolled back and nothing is recorded.
    ///
    /// Group commit: mutations that arrive while another transaction is committing wait in a
    /// queue; whoever takes the connection next runs every waiting mutation in one transaction,
    /// each in its own savepoint (so one's failure undoes only its own statements), and commits
    /// once, with one fsync for the lot. Each caller is answered only after the commit that
    /// holds its change, so an acknowledged change is as durable as before; the results are
    /// those of running the mutations one after the other in queue order.
    async fn mutate<T, F>(&self, audit: &[AuditEvent], change: F) -> StoreResult<T>
    where
        T: Changed + Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Box<dyn GroupJob> = Box::new(Mutation { change, audit: audit.to_vec(), reply });
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(job);
        let (pending, groups) = (Arc::clone(&self.pending), Arc::clone(&self.groups));
        self.run(move |c| {
            let jobs: Vec<Box<dyn GroupJob>> = {
                let mut queue = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let take = queue.len().min(MAX_GROUP);
                queue.drain(..take).collect()
            };
            // An empty queue means an earlier group took this caller's mutation.
            if !jobs.is_empty() {
                commit_group(c, jobs, &groups);
            }
            Ok(())
        })
        .await?;
        answer.await.map_err(|_| group_failure("the mutation was dropped unanswered"))?
    }

    /// How many group-commit transactions (each one fsync) have committed mutations.
    pub fn group_commits(&self) -> u64 {
        self.groups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let over_limit = Arc::clone(&self.checkpointer.over_limit);
        let result = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (transactions roll
            // back on drop), so a poisoned lock is safe to reuse.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let result = f(&mut guard);
            if over_limit.swap(false, std::sync::atomic::Ordering::Relaxed) {
                restart_wal(&guard);
            }
            result
        })
        .await
        .map_err(backend)?;
        // Whatever `f` committed is copied into the database file soon.
        self.checkpointer.nudge();
        result
    }
}

/// Rows of the shared statement `sql` decoded by `decode`, in order, through the connection's
/// statement cache.
fn query_all<T>(
    c: &Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
    decode: impl Fn(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// The first row of `sql` decoded by `decode`, if there is one.
fn query_first<T>(
    c: &Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
    decode: impl FnOnce(&dyn Columns) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(|row| decode(row)).transpose()
}

/// Runs `sql` and returns how many rows it returned (a `DELETE … RETURNING` reports whether it
/// found its row this way).
fn count_returned(c: &Connection, sql: &'static str, params: impl rusqlite::Params) -> StoreResult<usize> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// The number in column 0 of `sql`'s one row (a `COUNT(*)`).
fn count(c: &Connection, sql: &'static str, params: impl rusqlite::Params) -> StoreResult<usize> {
    let n: i64 = c.prepare_cached(sql)?.query_row(params, |r| r.get(0))?;
    usize::try_from(n).map_err(backend)
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, index: usize) -> StoreResult<String> {
        Ok(self.get(index)?)
    }
    fn optional_text(&self, index: usize) -> StoreResult<Option<String>> {
        Ok(self.get(index)?)
    }
    fn integer(&self, index: usize) -> StoreResult<i64> {
        Ok(self.get(index)?)
    }
    fn optional_integer(&self, index: usize) -> StoreResult<Option<i64>> {
        Ok(self.get(index)?)
    }
    fn bytes(&self, index: usize) -> StoreResult<Vec<u8>> {
        Ok(self.get(index)?)
    }
    fn optional_bytes(&self, index: usize) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.get(index)?)
    }
}

fn read_key(c: &Connection, id: KeyId) -> StoreResult<Option<KeyRecord>> {
    query_first(c, sql::KEY, [id.storage()], records::key_record)
}

fn read_materials(c: &Connection, id: KeyId) -> StoreResult<Vec<MaterialRecord>> {
    query_all(c, sql::MATERIALS, [id.storage()], |r| records::material_record(id, r))
}

fn read_tags(c: &Connection, id: KeyId) -> StoreResult<Vec<Tag>> {
    query_all(c, sql::TAGS, [id.storage()], records::tag)
}

fn read_policy(c: &Connection, id: KeyId) -> StoreResult<Option<String>> {
    query_first(c, sql::POLICY, [id.storage()], |r| r.text(0))
}

fn read_grants(c: &Connection, key_id: KeyId) -> StoreResult<Vec<GrantRecord>> {
    query_all(c, sql::GRANTS, [key_id.storage()], records::grant_record)
}

/// The aliases naming a key, in name order, found through the key-id index (an account's
/// aliases are not scanned: it may have many).
const KEY_ALIASES: &str = "SELECT account, region, name, key_id, created, updated FROM aliases \
     INDEXED BY aliases_by_key WHERE key_id = ?1 AND account = ?2 AND region = ?3 ORDER BY name";

fn read_key_aliases(c: &Connection, key: &KeyRecord) -> StoreResult<Vec<AliasRecord>> {
    let key_params = params![key.key_id.storage(), key.account.to_string(), key.region.to_string()];
    query_all(c, KEY_ALIASES, key_params, records::alias_record)
}

/// The WAL outgrew its limit (see [`Checkpointer`]): copies the rest into the database file
/// and lets the next commit start the WAL over, on the connection its caller holds. A failure
/// leaves it for the next time the limit is passed. Logged with how long it took.
fn restart_wal(conn: &Connection) {
    #[allow(clippy::disallowed_methods)] // how long the connection was held, for the log
    let started = std::time::Instant::now();
    let outcome = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    let held_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok((busy, frames, copied)) => {
            tracing::warn!(held_ms, busy, frames, copied, "SQLite WAL past its limit: forced a RESTART checkpoint");
        }
        Err(e) => tracing::warn!(held_ms, error = %e, "SQLite WAL past its limit: RESTART checkpoint failed"),
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: Option<i64> = tx.query_row("SELECT version FROM schema_version", [], |r| r.get(0)).optional()?;
    let current = usize::try_from(current.unwrap_or(0)).map_err(backend)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database schema is version {current}, newer than this build knows ({}); upgrade ferrokms",
            MIGRATIONS.len()
        )));
    }
    for sql in MIGRATIONS.iter().skip(current) {
        tx.execute_batch(sql)?;
    }
    if current < AUDIT_BLOCKS_MIGRATION {
        move_audit_log_into_blocks(&tx)?;
    }
    let latest = i64::try_from(MIGRATIONS.len()).map_err(backend)?;
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [latest])?;
    tx.commit()?;
    Ok(())
}

/// Replaces a key whose stored revision is `key.revision - 1`: [`StoreError::Conflict`] if
/// another writer changed it meanwhile, [`StoreError::NotFound`] if it is gone.
/// Inserts materials of `key`.
fn insert_materials(tx: &rusqlite::Transaction<'_>, key: &KeyRecord, materials: &[MaterialRecord]) -> StoreResult<()> {
    let id = key.key_id.storage();
    for m in materials {
        execute(
            tx,
            sql::INSERT_MATERIAL,
            params![
                id,
                m.material_id.as_bytes(),
                m.wrapped,
                m.created.unix_millis(),
                m.rotation.map(kms_core::key::RotationKind::as_str)
            ],
        )?;
    }
    Ok(())
}

/// Applies key updates (compare-and-swap each record, then its materials).
fn apply_updates(tx: &rusqlite::Transaction<'_>, updates: &[KeyUpdate]) -> StoreResult<()> {
    for u in updates {
        cas_update_key(tx, &u.key)?;
        let id = u.key.key_id.storage();
        for material in &u.remove {
            execute(tx, sql::DELETE_MATERIAL, params![id, material.as_bytes()])?;
        }
        insert_materials(tx, &u.key, &u.add)?;
    }
    Ok(())
}

fn cas_update_key(tx: &rusqlite::Transaction<'_>, key: &KeyRecord) -> StoreResult<()> {
    let previous = records::revision(key)?.checked_sub(1).ok_or(StoreError::Conflict)?;
    let id = key.key_id.storage();
    let changed = tx
        .prepare_cached("UPDATE keys SET record = ?1, revision = ?2 WHERE key_id = ?3 AND revision = ?4")?
        .execute(params![records::encode_key(key)?, records::revision(key)?, id, previous])?;
    if changed == 1 {
        return Ok(());
    }
    let exists = query_first(tx, "SELECT 1 FROM keys WHERE key_id = ?1", [id], |_| Ok(()))?;
    Err(if exists.is_some() { StoreError::Conflict } else { StoreError::NotFound })
}

/// Runs a shared statement that changes rows, through the statement cache; returns how many.
fn execute(c: &Connection, sql: &'static str, params: impl rusqlite::Params) -> StoreResult<usize> {
    Ok(c.prepare_cached(sql)?.execute(params)?)
}

/// Inserts or overwrites one tag (SQLite has no arrays: one statement per tag).
const UPSERT_TAG: &str = "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3) \
     ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value";

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.run(move |c| query_first(c, sql::SETTING, [name], |r| r.text(0))).await
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |c| execute(c, sql::SET_SETTING, [name, value]).map(drop)).await
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<bool> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |c| Ok(execute(c, sql::INIT_SETTING, [name, value])? == 1)).await
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
        let (key, materials, policy, tags) = (key.clone(), materials.to_vec(), policy.to_owned(), tags.to_vec());
        let updates = updates.to_vec();
        self.mutate(audit, move |tx| {
            let id = key.key_id.storage();
            execute(
                tx,
                sql::INSERT_KEY,
                params![
                    id,
                    key.account.as_str(),
                    key.region.as_str(),
                    records::revision(&key)?,
                    records::encode_key(&key)?
                ],
            )?;
            insert_materials(tx, &key, &materials)?;
            execute(tx, sql::INSERT_POLICY, params![id, policy])?;
            for tag in &tags {
                // A repeated tag key fails on the primary key (AlreadyExists).
                execute(
                    tx,
                    "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
                    params![id, tag.key, tag.value],
                )?;
            }
            apply_updates(tx, &updates)?;
            Ok(())
        })
        .await
    }

    async fn key(&self, id: KeyId) -> StoreResult<Option<KeyRecord>> {
        self.run(move |c| read_key(c, id)).await
    }

    async fn update_key(&self, key: &KeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let key = key.clone();
        self.mutate(audit, move |tx| cas_update_key(tx, &key)).await
    }

    async fn update_keys(&self, updates: &[KeyUpdate], audit: &[AuditEvent]) -> StoreResult<()> {
        let updates = updates.to_vec();
        self.mutate(audit, move |tx| apply_updates(tx, &updates)).await
    }

    async fn due_keys(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<KeyId>> {
        let (now, limit) = (now.unix_millis(), records::limit(limit)?);
        self.run(move |c| query_all(c, DUE_KEYS, params![now, limit], records::key_id)).await
    }

    async fn delete_key(
        &self,
        id: KeyId,
        revision: u64,
        updates: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let revision = i64::try_from(revision).map_err(backend)?;
        let updates = updates.to_vec();
        self.mutate(audit, move |tx| {
            let id = id.storage();
            let sql = "SELECT 1 FROM keys WHERE key_id = ?1 AND revision = ?2";
            if query_first(tx, sql, params![id, revision], |_| Ok(()))?.is_none() {
                return Ok(false);
            }
            for part in [
                sql::DELETE_KEY_MATERIALS,
                sql::DELETE_KEY_POLICY,
                sql::DELETE_KEY_TAGS,
                sql::DELETE_KEY_ALIASES,
                sql::DELETE_KEY_GRANTS,
                sql::DELETE_KEY,
            ] {
                execute(tx, part, [&id])?;
            }
            apply_updates(tx, &updates)?;
            Ok(true)
        })
        .await
    }

    async fn reset(&self, audit: &[AuditEvent]) -> StoreResult<()> {
        self.mutate(audit, move |tx| {
            tx.execute_batch(crate::statements::RESET)?;
            Ok(())
        })
        .await
    }

    async fn list_keys(
        &self,
        account: &AccountId,
        region: &Region,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<KeyId>> {
        let (account, region) = (account.to_string(), region.to_string());
        let after = after.map(|k| k.storage()).unwrap_or_default();
        let limit = records::limit(limit)?;
        self.run(move |c| query_all(c, sql::LIST_KEYS, params![account, region, after, limit], records::key_id)).await
    }

    async fn materials(&self, id: KeyId) -> StoreResult<Vec<MaterialRecord>> {
        self.run(move |c| read_materials(c, id)).await
    }

    async fn key_bundle(&self, id: KeyId) -> StoreResult<Option<KeyBundle>> {
        // One blocking call instead of six (each a hand-off to the blocking pool and back, on
        // every key-cache miss), in one read transaction: the parts are of one moment.
        self.run(move |c| {
            let tx = c.transaction()?;
            let Some(record) = read_key(&tx, id)? else { return Ok(None) };
            let bundle = KeyBundle {
                materials: read_materials(&tx, id)?,
                policy: read_policy(&tx, id)?,
                grants: read_grants(&tx, id)?,
                tags: read_tags(&tx, id)?,
                aliases: read_key_aliases(&tx, &record)?,
                record,
            };
            tx.commit()?;
            Ok(Some(bundle))
        })
        .await
    }

    async fn create_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let a = alias.clone();
        self.mutate(audit, move |tx| {
            execute(
                tx,
                sql::INSERT_ALIAS,
                params![
                    a.account.as_str(),
                    a.region.as_str(),
                    a.name.as_str(),
                    a.target.storage(),
                    a.created.unix_millis(),
                    a.updated.unix_millis()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn update_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let a = alias.clone();
        self.mutate(audit, move |tx| {
            let n = execute(
                tx,
                sql::UPDATE_ALIAS,
                params![
                    a.target.storage(),
                    a.updated.unix_millis(),
                    a.account.as_str(),
                    a.region.as_str(),
                    a.name.as_str()
                ],
            )?;
            if n != 1 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &AliasName,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.mutate(audit, move |tx| Ok(count_returned(tx, sql::DELETE_ALIAS, [account, region, name])? > 0)).await
    }

    async fn alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> StoreResult<Option<AliasRecord>> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.run(move |c| query_first(c, sql::ALIAS, [account, region, name], records::alias_record)).await
    }

    async fn list_aliases(
        &self,
        account: &AccountId,
        region: &Region,
        target: Option<KeyId>,
        after: Option<&AliasName>,
        limit: usize,
    ) -> StoreResult<Vec<AliasRecord>> {
        let (account, region) = (account.to_string(), region.to_string());
        let target = target.map(|k| k.storage());
        let after = after.map(ToString::to_string).unwrap_or_default();
        let limit = records::limit(limit)?;
        self.run(move |c| {
            query_all(c, sql::LIST_ALIASES, params![account, region, target, after, limit], records::alias_record)
        })
        .await
    }

    async fn tags(&self, id: KeyId) -> StoreResult<Vec<Tag>> {
        self.run(move |c| read_tags(c, id)).await
    }

    async fn put_tags(&self, id: KeyId, tags: &[Tag], max: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        let tags = tags.to_vec();
        self.mutate(audit, move |tx| {
            let id = id.storage();
            for tag in &tags {
                execute(tx, UPSERT_TAG, params![id, tag.key, tag.value])?;
            }
            if count(tx, sql::COUNT_TAGS, [&id])? > max {
                return Err(StoreError::LimitExceeded(max)); // the savepoint is rolled back
            }
            Ok(())
        })
        .await
    }

    async fn remove_tags(&self, id: KeyId, keys: &[String], audit: &[AuditEvent]) -> StoreResult<()> {
        let keys = keys.to_vec();
        self.mutate(audit, move |tx| {
            for k in &keys {
                execute(tx, "DELETE FROM key_tags WHERE key_id = ?1 AND tag_key = ?2", params![id.storage(), k])?;
            }
            Ok(())
        })
        .await
    }

    async fn policy(&self, id: KeyId) -> StoreResult<Option<String>> {
        self.run(move |c| read_policy(c, id)).await
    }

    async fn put_policy(&self, id: KeyId, document: &str, audit: &[AuditEvent]) -> StoreResult<()> {
        let document = document.to_owned();
        self.mutate(audit, move |tx| {
            if execute(tx, sql::UPDATE_POLICY, params![document, id.storage()])? != 1 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = id.to_owned();
        self.run(move |c| query_first(c, sql::ACCESS_KEY, [id], records::access_key_record)).await
    }

    async fn create_access_key(&self, record: &AccessKeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let r = record.clone();
        self.mutate(audit, move |tx| {
            let session = r.session.as_ref();
            execute(
                tx,
                sql::INSERT_ACCESS_KEY,
                params![
                    r.access_key_id,
                    r.account.as_str(),
                    r.principal_arn,
                    r.wrapped_secret,
                    r.created.unix_millis(),
                    session.map(|s| s.session_name.as_str()),
                    session.map(|s| s.token_digest.as_slice()),
                    session.map(|s| s.expires.unix_millis()),
                    (!r.active).then_some(crate::INACTIVE),
                    records::session_tags(session)?,
                    records::key_use(r.last_used.as_ref())?,
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn delete_access_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let id = id.to_owned();
        self.mutate(audit, move |tx| Ok(execute(tx, sql::DELETE_ACCESS_KEY, [id])? > 0)).await
    }

    async fn materials_after(
        &self,
        after: Option<(KeyId, MaterialId)>,
        limit: usize,
    ) -> StoreResult<Vec<MaterialRecord>> {
        let (key, material) = after.map_or((String::new(), Vec::new()), |(k, m)| (k.storage(), m.as_bytes().to_vec()));
        let limit = records::limit(limit)?;
        self.run(move |c| query_all(c, sql::MATERIALS_AFTER, params![key, material, limit], records::material_with_key))
            .await
    }

    async fn rewrap_material(
        &self,
        key_id: KeyId,
        material_id: MaterialId,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        let (key, material, old, new) = (key_id.storage(), material_id.as_bytes().to_vec(), old.to_vec(), new.to_vec());
        self.mutate(&[], move |tx| Ok(execute(tx, sql::REWRAP_MATERIAL, params![key, material, old, new])? > 0)).await
    }

    async fn access_keys_after(&self, after: &str, limit: usize) -> StoreResult<Vec<AccessKeyRecord>> {
        let (after, limit) = (after.to_owned(), records::limit(limit)?);
        self.run(move |c| query_all(c, sql::ACCESS_KEYS_AFTER, params![after, limit], records::access_key_record)).await
    }

    async fn rewrap_access_key(&self, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let (id, old, new) = (id.to_owned(), old.to_vec(), new.to_vec());
        self.mutate(&[], move |tx| Ok(execute(tx, sql::REWRAP_ACCESS_KEY, params![id, old, new])? > 0)).await
    }

    async fn record_key_use(&self, id: &str, used: &KeyUse) -> StoreResult<()> {
        let id = id.to_owned();
        let used = records::key_use(Some(used))?;
        self.mutate(&[], move |tx| execute(tx, sql::SET_ACCESS_KEY_USE, params![id, used]).map(drop)).await
    }

    async fn set_access_key_active(&self, id: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<bool> {
        let id = id.to_owned();
        self.mutate(audit, move |tx| {
            Ok(execute(tx, sql::SET_ACCESS_KEY_STATUS, params![id, (!active).then_some(crate::INACTIVE)])? > 0)
        })
        .await
    }

    async fn access_keys_of(&self, principal_arn: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        let arn = principal_arn.to_owned();
        self.run(move |c| query_all(c, sql::ACCESS_KEYS_OF, [arn], records::access_key_record)).await
    }

    async fn create_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let r = record.clone();
        self.mutate(audit, move |tx| {
            execute(
                tx,
                sql::INSERT_PRINCIPAL,
                params![
                    r.arn,
                    r.account.as_str(),
                    r.kind.as_str(),
                    r.name,
                    r.principal_id,
                    r.trust_policy,
                    r.created.unix_millis(),
                    r.attributes.to_stored()
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>> {
        let arn = arn.to_owned();
        self.run(move |c| query_first(c, sql::PRINCIPAL, [arn], records::principal_record)).await
    }

    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalType,
        name: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        let key = [account.to_string(), kind.as_str().to_owned(), name.to_owned()];
        self.run(move |c| query_first(c, sql::PRINCIPAL_BY_NAME, key, records::principal_record)).await
    }

    async fn rename_principal(
        &self,
        old_arn: &str,
        renamed: &PrincipalRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        let old = old_arn.to_owned();
        let r = renamed.clone();
        self.mutate(audit, move |tx| {
            if query_first(tx, sql::PRINCIPAL_ID, [&old], |row| row.text(0))?.is_none() {
                return Ok(false);
            }
            // Identity policies reference the principal: out while it is renamed, back after.
            let policies = query_all(tx, sql::IDENTITY_POLICIES, [&old], records::identity_policy_record)?;
            execute(tx, sql::DELETE_IDENTITY_POLICIES_OF, [&old])?;
            execute(tx, sql::MOVE_ACCESS_KEYS, [&old, &r.arn])?;
            execute(tx, sql::RENAME_PRINCIPAL, params![old, r.arn, r.name, r.attributes.to_stored()])?;
            for p in policies {
                execute(tx, sql::PUT_IDENTITY_POLICY, params![r.arn, p.name, p.document])?;
            }
            Ok(true)
        })
        .await
    }

    async fn update_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<bool> {
        let r = record.clone();
        self.mutate(audit, move |tx| {
            Ok(execute(tx, sql::UPDATE_PRINCIPAL, params![r.arn, r.trust_policy, r.attributes.to_stored()])? > 0)
        })
        .await
    }

    async fn create_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let r = record.clone();
        let json = records::encode_managed_policy(record)?;
        self.mutate(audit, move |tx| {
            execute(tx, sql::INSERT_MANAGED_POLICY, params![r.arn, r.account.as_str(), r.name, json]).map(drop)
        })
        .await
    }

    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<ManagedPolicyRecord>> {
        let arn = arn.to_owned();
        self.run(move |c| query_first(c, sql::MANAGED_POLICY, [arn], records::managed_policy_record)).await
    }

    async fn managed_policies(&self, account: &AccountId) -> StoreResult<Vec<ManagedPolicyRecord>> {
        let account = account.to_string();
        self.run(move |c| query_all(c, sql::MANAGED_POLICIES, [account], records::managed_policy_record)).await
    }

    async fn update_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let arn = record.arn.clone();
        let revision = i64::try_from(record.revision).map_err(backend)?;
        let json = records::encode_managed_policy(record)?;
        self.mutate(audit, move |tx| {
            if execute(tx, sql::UPDATE_MANAGED_POLICY, params![arn, json, revision])? == 1 {
                return Ok(());
            }
            let exists = query_first(tx, sql::MANAGED_POLICY, [&arn], |_| Ok(()))?.is_some();
            Err(if exists { StoreError::Conflict } else { StoreError::NotFound })
        })
        .await
    }

    async fn delete_managed_policy(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let arn = arn.to_owned();
        self.mutate(audit, move |tx| Ok(execute(tx, sql::DELETE_MANAGED_POLICY, [arn])? > 0)).await
    }

    async fn list_principals(&self, account: &AccountId) -> StoreResult<Vec<PrincipalRecord>> {
        let account = account.to_string();
        self.run(move |c| query_all(c, sql::LIST_PRINCIPALS, [account], records::principal_record)).await
    }

    async fn delete_principal(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let arn = arn.to_owned();
        self.mutate(audit, move |tx| {
            if let Some(id) = query_first(tx, sql::PRINCIPAL_ID, [&arn], |r| r.text(0))? {
                let (named, unique) = records::principal_rebinding(&arn, &id);
                execute(
                    tx,
                    "UPDATE key_policies SET document = replace(document, ?1, ?2) WHERE instr(document, ?1) > 0",
                    [&named, &unique],
                )?;
                execute(
                    tx,
                    "UPDATE principals SET trust_policy = replace(trust_policy, ?1, ?2) \
                     WHERE trust_policy IS NOT NULL AND instr(trust_policy, ?1) > 0",
                    [&named, &unique],
                )?;
            }
            execute(tx, sql::DELETE_ACCESS_KEYS_OF, [&arn])?;
            execute(tx, sql::DELETE_IDENTITY_POLICIES_OF, [&arn])?;
            Ok(execute(tx, sql::DELETE_PRINCIPAL, [&arn])? > 0)
        })
        .await
    }

    async fn put_identity_policy(&self, record: &IdentityPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        let r = record.clone();
        self.mutate(audit, move |tx| {
            execute(tx, sql::PUT_IDENTITY_POLICY, params![r.principal_arn, r.name, r.document]).map(drop)
        })
        .await
    }

    async fn delete_identity_policy(&self, principal_arn: &str, name: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let (arn, name) = (principal_arn.to_owned(), name.to_owned());
        self.mutate(audit, move |tx| Ok(execute(tx, sql::DELETE_IDENTITY_POLICY, [arn, name])? > 0)).await
    }

    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<IdentityPolicyRecord>> {
        let arn = principal_arn.to_owned();
        self.run(move |c| query_all(c, sql::IDENTITY_POLICIES, [arn], records::identity_policy_record)).await
    }

    async fn create_grant(&self, grant: &GrantRecord, max_per_key: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        let g = grant.clone();
        self.mutate(audit, move |tx| {
            let key = g.key_id.storage();
            if count(tx, sql::COUNT_GRANTS, [&key])? >= max_per_key {
                return Err(StoreError::LimitExceeded(max_per_key));
            }
            execute(tx, sql::INSERT_GRANT, params![g.grant_id, key, records::encode_grant(&g)?]).map(drop)
        })
        .await
    }

    async fn grants(&self, key_id: KeyId) -> StoreResult<Vec<GrantRecord>> {
        self.run(move |c| read_grants(c, key_id)).await
    }

    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        let id = grant_id.to_owned();
        self.run(move |c| query_first(c, sql::GRANT, [id], records::grant_record)).await
    }

    async fn grants_for_retiring(&self, account: &AccountId, principal: &str) -> StoreResult<Vec<GrantRecord>> {
        let (account, principal) = (account.clone(), principal.to_owned());
        self.run(move |c| {
            let all = query_all(c, sql::ALL_GRANTS, [], records::grant_record)?;
            Ok(all
                .into_iter()
                .filter(|g| {
                    g.account == account
                        && (g.retiring_principal.as_deref() == Some(principal.as_str())
                            || g.retiring_service_principal.as_deref() == Some(principal.as_str()))
                })
                .collect())
        })
        .await
    }

    async fn delete_grant(&self, grant_id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        let id = grant_id.to_owned();
        self.mutate(audit, move |tx| Ok(count_returned(tx, sql::DELETE_GRANT, [id])? > 0)).await
    }

    async fn key_states(&self) -> StoreResult<Vec<(String, u64)>> {
        self.run(move |c| {
            let sql = "SELECT json_extract(record, '$.state'), COUNT(*) FROM keys GROUP BY 1 ORDER BY 1";
            query_all(c, sql, [], records::state_count)
        })
        .await
    }

    async fn append_audit(&self, events: Arc<[AuditEvent]>) -> StoreResult<()> {
        // The blocking task shares the batch: no record is copied.
        let buffers = Arc::clone(&self.block_buffers);
        self.run(move |c| {
            let mut buffers = buffers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            append_audit_tx_with(&tx, &events, &mut buffers)?;
            tx.commit()?;
            if !buffers.worth_keeping() {
                *buffers = BlockBuffers::default();
            }
            Ok(())
        })
        .await
    }

    async fn audit_after(&self, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let after = i64::try_from(after_seq).map_err(backend)?;
        self.run(move |c| {
            let mut out = Vec::new();
            if limit == 0 {
                return Ok(out);
            }
            each_block(c, AUDIT_AFTER, [after], |rows| {
                out.extend(rows.into_iter().filter(|r| r.seq > after_seq).take(limit - out.len()));
                out.len() < limit
            })?;
            Ok(out)
        })
        .await
    }

    async fn audit_query(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let f = filter.clone();
        self.run(move |c| {
            let mut out = Vec::new();
            if f.limit == 0 {
                return Ok(out);
            }
            // Blocks newest first; the rows of each newest first.
            let before = f.before_seq.map(i64::try_from).transpose().map_err(backend)?;
            let window =
                params![f.from.map(Timestamp::unix_millis), f.to.map(Timestamp::unix_millis), f.key_arn, before];
            let sql = if f.key_arn.is_some() { AUDIT_QUERY_BY_KEY } else { AUDIT_QUERY };
            each_block(c, sql, window, |rows| {
                out.extend(rows.into_iter().rev().filter(|r| f.matches(r)).take(f.limit - out.len()));
                out.len() < f.limit
            })?;
            Ok(out)
        })
        .await
    }

    async fn last_key_usage(&self, key_arn: &str) -> StoreResult<Option<AuditRow>> {
        let arn = key_arn.to_owned();
        self.run(move |c| {
            let mut found = None;
            let no_window: Option<i64> = None;
            each_block(c, AUDIT_QUERY_BY_KEY, params![no_window, no_window, arn, no_window], |rows| {
                found = rows.into_iter().rev().find(|r| {
                    r.concerns_key(&arn)
                        && r.error_code.is_none()
                        && kms_core::audit::CRYPTOGRAPHIC_OPERATIONS.contains(&r.event_name.as_str())
                });
                found.is_none()
            })?;
            Ok(found)
        })
        .await
    }

    async fn audit_head(&self) -> StoreResult<Option<(u64, Vec<u8>)>> {
        self.run(move |c| audit_head_tx(c)).await
    }

    async fn audit_seq_before(&self, cutoff: Timestamp) -> StoreResult<Option<u64>> {
        self.run(move |c| {
            let mut found = None;
            each_block(c, AUDIT_SEQ_BEFORE, [cutoff.unix_millis()], |rows| {
                found = rows.iter().filter(|r| r.time < cutoff).map(|r| r.seq).max();
                false
            })?;
            Ok(found)
        })
        .await
    }

    async fn prune_audit(&self, seq: u64) -> StoreResult<u64> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let removed = prune_blocks(&tx, seq)?;
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    async fn put_audit_digest(&self, digest: &AuditDigest) -> StoreResult<()> {
        let d = digest.clone();
        self.run(move |c| {
            let seq = i64::try_from(d.seq).map_err(backend)?;
            execute(c, sql::INSERT_AUDIT_DIGEST, params![seq, d.hash, d.created.unix_millis(), d.signature]).map(drop)
        })
        .await
    }

    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>> {
        self.run(move |c| query_all(c, sql::AUDIT_DIGESTS, [], records::audit_digest)).await
    }
}

// The audit chain is appended inside an open transaction, which the caller commits.
// Mutations append after their own statements succeeded, so that a refused change appends
// nothing. SQLite has one writer at a time (every writing transaction here starts `IMMEDIATE`,
// taking the write lock up front), so the head read in `append_audit_tx` is the head the
// append extends.

/// Appends events to the chain inside an open transaction, which the caller commits: one
/// block (see [`crate::audit_block`]) holding all of them.
fn append_audit_tx(tx: &rusqlite::Transaction<'_>, events: &[AuditEvent]) -> StoreResult<()> {
    append_audit_tx_with(tx, events, &mut BlockBuffers::default())
}

/// [`append_audit_tx`] building the block in `buffers`.
fn append_audit_tx_with(
    tx: &rusqlite::Transaction<'_>,
    events: &[AuditEvent],
    buffers: &mut BlockBuffers,
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (head_seq, prev) = match audit_head_tx(tx)? {
        Some(head) => head,
        None => (0, crate::audit::GENESIS.to_vec()),
    };
    let mut block = BlockWriter::reusing(std::mem::take(&mut buffers.body));
    let prev = crate::audit_block::chain_events(&mut block, head_seq, prev, events);
    let key_arns = events.iter().flat_map(|e| [e.key_arn.as_deref(), e.other_key_arn.as_deref()]);
    store_block(tx, block, &prev, key_arns, buffers)
}

/// Inserts a finished block (its first and last records, their time span and the keys its
/// records concern come from the writer) and indexes it by key. `last_hash` is the hash of
/// its last record.
fn store_block<'a>(
    tx: &rusqlite::Transaction<'_>,
    block: BlockWriter,
    last_hash: &[u8],
    key_arns: impl Iterator<Item = Option<&'a str>>,
    buffers: &mut BlockBuffers,
) -> StoreResult<()> {
    let Some(span) = block.span() else { return Ok(()) };
    let (body, size) = block.finish_into(&mut buffers.compressed);
    buffers.body = body;
    let body = buffers.compressed.as_slice();
    let first_seq = i64::try_from(span.first_seq).map_err(backend)?;
    tx.prepare_cached(
        "INSERT INTO audit_blocks (first_seq, last_seq, first_time, last_time, last_hash, size, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        first_seq,
        i64::try_from(span.last_seq).map_err(backend)?,
        span.first_time.unix_millis(),
        span.last_time.unix_millis(),
        last_hash,
        i64::try_from(size).map_err(backend)?,
        body
    ])?;
    let mut key_row =
        tx.prepare_cached("INSERT OR IGNORE INTO audit_block_keys (key_arn, first_seq) VALUES (?1, ?2)")?;
    for arn in distinct_keys(key_arns) {
        key_row.execute(params![arn, first_seq])?;
    }
    Ok(())
}

/// The chain's newest record: its number and hash.
fn audit_head_tx(c: &Connection) -> StoreResult<Option<(u64, Vec<u8>)>> {
    let head: Option<(i64, Vec<u8>)> = c
        .prepare_cached("SELECT last_seq, last_hash FROM audit_blocks ORDER BY first_seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    head.map(|(s, h)| Ok((u64::try_from(s).map_err(backend)?, h))).transpose()
}

/// The rows of a block read from a statement whose first two columns are `size, body`.
fn block_rows(r: &rusqlite::Row<'_>) -> StoreResult<Vec<AuditRow>> {
    let size = usize::try_from(r.get::<_, i64>(0)?).map_err(|_| StoreError::Corrupt("an audit block size".into()))?;
    let body = r.get_ref(1)?.as_blob().map_err(backend)?;
    crate::audit_block::decode(body, size)
}

/// Visits the blocks a query selects (columns `size, body`), in its order, until `visit`
/// returns false.
pub(crate) fn each_block(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut visit: impl FnMut(Vec<AuditRow>) -> bool,
) -> StoreResult<()> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    while let Some(r) = rows.next()? {
        if !visit(block_rows(r)?) {
            break;
        }
    }
    Ok(())
}

/// Copies the records of the table that held one row per record (migrations 2–5) into blocks
/// of at most [`MIGRATION_BLOCK_ROWS`] records, then drops it. Gaps (records already removed
/// by retention) end a block, so a block always holds consecutive records.
fn move_audit_log_into_blocks(tx: &rusqlite::Transaction<'_>) -> StoreResult<()> {
    const MIGRATION_BLOCK_ROWS: usize = 250;
    let mut rows: Vec<AuditRow> = Vec::with_capacity(MIGRATION_BLOCK_ROWS);
    {
        let mut stmt = tx.prepare(LEGACY_AUDIT_ROWS)?;
        let mut cursor = stmt.query([])?;
        while let Some(r) = cursor.next()? {
            let row = records::audit_row(r)?;
            let consecutive = rows.last().is_none_or(|last| last.seq + 1 == row.seq);
            if rows.len() == MIGRATION_BLOCK_ROWS || !consecutive {
                insert_block(tx, &rows)?;
                rows.clear();
            }
            rows.push(row);
        }
    }
    insert_block(tx, &rows)?;
    tx.execute_batch("DROP TABLE audit_log")?;
    Ok(())
}

/// Stores rows already chained (consecutive, in order) as one block.
pub(crate) fn insert_block(tx: &rusqlite::Transaction<'_>, rows: &[AuditRow]) -> StoreResult<()> {
    let Some(last) = rows.last() else { return Ok(()) };
    let block: BlockWriter = rows.iter().map(RowRef::from).collect();
    let key_arns = rows.iter().flat_map(|r| [r.key_arn.as_deref(), r.other_key_arn.as_deref()]);
    store_block(tx, block, &last.hash, key_arns, &mut BlockBuffers::default())
}

/// Ends a delete that reports whether it found its row: commits with the audit events when one
/// row changed, and otherwise commits nothing (there was no change to record).
/// What a mutation reports: whether it changed anything (only then is its audit event kept).
trait Changed {
    fn changed(&self) -> bool;
}

impl Changed for () {
    fn changed(&self) -> bool {
        true
    }
}

impl Changed for bool {
    fn changed(&self) -> bool {
        *self
    }
}

/// Keys with a rotation or a deletion due, through the two due-time indexes (SQLite reads both
/// and merges them). `+key_id` keeps the planner from walking the primary key in order to save
/// the sort, which reads every row: the due keys are few, the keys many.
const DUE_KEYS: &str = "SELECT key_id FROM keys WHERE json_extract(record, '$.rotation.next') <= ?1 \
     OR json_extract(record, '$.deletion.date') <= ?1 OR json_extract(record, '$.material_expires') <= ?1 \
     ORDER BY +key_id LIMIT ?2";

/// The block holding the newest record (by time) older than a cutoff, found through the time
/// index: the block whose earliest record is the latest one before the cutoff. The scheduler
/// asks every pass, so this must not walk the trail (it did once, a full scan per second that
/// grew with the trail). Records are numbered in about the order of their times, so the newest
/// by time is, at worst, a little before the newest by number: retention then keeps a few
/// records longer.
const AUDIT_SEQ_BEFORE: &str = "SELECT size, body FROM audit_blocks INDEXED BY audit_blocks_by_time \
     WHERE first_time < ?1 ORDER BY first_time DESC LIMIT 1";

/// The blocks an audit query without a key (`?3` is null) reads, newest first: those whose
/// time span meets the window (`?1`, `?2`).
const AUDIT_QUERY: &str = "SELECT size, body FROM audit_blocks WHERE (?1 IS NULL OR last_time >= ?1) \
     AND (?2 IS NULL OR first_time < ?2) AND ?3 IS NULL AND (?4 IS NULL OR first_seq < ?4) \
     ORDER BY first_seq DESC";

/// The same for a query by key (`?3`): only blocks holding a record for it, found through the
/// block key index.
const AUDIT_QUERY_BY_KEY: &str = "SELECT b.size, b.body FROM audit_block_keys k \
     JOIN audit_blocks b ON b.first_seq = k.first_seq WHERE k.key_arn = ?3 \
     AND (?1 IS NULL OR b.last_time >= ?1) AND (?2 IS NULL OR b.first_time < ?2) \
     AND (?4 IS NULL OR k.first_seq < ?4) ORDER BY k.first_seq DESC";

/// The records of the table that held one row per record before audit blocks.
const LEGACY_AUDIT_ROWS: &str = concat!("SELECT ", audit_log_columns!(), ", NULL FROM audit_log ORDER BY seq");

/// Removes the records numbered below `seq`: whole blocks, and the older part of the block
/// that holds `seq` (rewritten without it). Returns how many records went.
fn prune_blocks(tx: &rusqlite::Transaction<'_>, seq: u64) -> StoreResult<u64> {
    let below = i64::try_from(seq).map_err(backend)?;
    let whole: i64 = tx.query_row(PRUNED_RECORDS, [below], |r| r.get(0))?;
    let mut straddling = None;
    each_block(tx, STRADDLING_BLOCK, [below], |rows| {
        straddling = Some(rows);
        false
    })?;
    // Every block starting before `seq` goes (the one cut through comes back below, starting
    // at `seq`), and with them every key index row before `seq`.
    tx.execute(PRUNE_BLOCKS, [below])?;
    tx.execute(PRUNE_BLOCK_KEYS, [below])?;
    let mut removed = u64::try_from(whole).map_err(backend)?;
    if let Some(rows) = straddling {
        let (gone, kept): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.seq < seq);
        insert_block(tx, &kept)?;
        removed += gone.len() as u64;
    }
    Ok(removed)
}

/// Pruning (`?1` is the first record kept). Each reads the primary key's range below `?1`,
/// which holds only what is about to go: retention asks on every scheduler pass.
const PRUNED_RECORDS: &str =
    "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM audit_blocks WHERE first_seq < ?1 AND last_seq < ?1";
const PRUNE_BLOCKS: &str = "DELETE FROM audit_blocks WHERE first_seq < ?1";
const STRADDLING_BLOCK: &str = "SELECT size, body FROM audit_blocks WHERE first_seq < ?1 AND last_seq >= ?1";
const PRUNE_BLOCK_KEYS: &str = "DELETE FROM audit_block_keys WHERE first_seq < ?1";

/// The blocks holding the records after `?1`, in order: from the block that holds record
/// `?1 + 1` (the latest block starting at or before it), found through the primary key.
const AUDIT_AFTER: &str = "SELECT size, body FROM audit_blocks \
     WHERE first_seq >= (SELECT IFNULL(MAX(first_seq), 0) FROM audit_blocks WHERE first_seq <= ?1 + 1) ORDER BY first_seq";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::conformance::{event, key, material};

    /// Every file in `migrations/sqlite/` is listed in [`MIGRATIONS`], in the order of their
    /// numbers: a file added without its entry (or an entry out of order) fails here, not in a
    /// deployment.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        assert_eq!(texts, MIGRATIONS);
        for (n, file) in files.iter().enumerate() {
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(&format!("{:04}_", n + 1)) && name.ends_with(".sql"), "{name}");
        }
    }

    /// A database written by a build that kept one row per audit record (schema version 5)
    /// opens with the same records, in blocks, and the old table gone; a gap left by retention
    /// stays a gap.
    #[test]
    fn records_of_the_one_row_per_record_table_move_into_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let mut rows = Vec::new();
        let mut prev = crate::audit::GENESIS.to_vec();
        for seq in 1..=600_u64 {
            let e = event(seq, if seq % 2 == 0 { "Encrypt" } else { "Decrypt" }, (seq % 5 != 0).then_some("k"), None);
            let hash = crate::audit::chain_hash(&prev, seq, &e.record);
            rows.push(AuditRow {
                seq,
                event_id: e.event_id,
                time: e.time,
                event_name: e.event_name,
                key_arn: e.key_arn,
                other_key_arn: None,
                principal: e.principal,
                error_code: (seq == 7).then(|| "AccessDeniedException".to_owned()),
                record: e.record,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        // Retention removed 1..=20 and, say, a hole 300..=310 (a gap ends a block).
        rows.retain(|r| r.seq > 20 && !(300..=310).contains(&r.seq));
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)").unwrap();
            for sql in &MIGRATIONS[..AUDIT_BLOCKS_MIGRATION - 1] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [i64::try_from(AUDIT_BLOCKS_MIGRATION - 1).unwrap()],
            )
            .unwrap();
            for r in &rows {
                conn.execute(
                    concat!(
                        "INSERT INTO audit_log (",
                        audit_log_columns!(),
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        i64::try_from(r.seq).unwrap(),
                        r.event_id,
                        r.time.unix_millis(),
                        r.event_name,
                        r.key_arn,
                        r.principal,
                        r.error_code,
                        r.record,
                        r.prev_hash,
                        r.hash
                    ],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let moved = runtime.block_on(store.audit_after(0, 10_000)).unwrap();
        assert_eq!(moved, rows);
        let conn = store.conn.lock().unwrap();
        let spans: Vec<(i64, i64)> = conn
            .prepare("SELECT first_seq, last_seq FROM audit_blocks ORDER BY first_seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(spans, vec![(21, 270), (271, 299), (311, 560), (561, 600)]);
        let old: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_log'", [], |r| r.get(0)).unwrap();
        assert_eq!(old, 0, "the old table is dropped");
    }

    /// Paging through the trail and pruning it read the primary key's range they need, never
    /// the whole trail (the event sinks page every poll, retention runs every pass).
    #[test]
    fn paging_and_pruning_read_ranges_not_the_trail() {
        for sql in [AUDIT_AFTER, PRUNED_RECORDS, PRUNE_BLOCKS, STRADDLING_BLOCK, PRUNE_BLOCK_KEYS] {
            let plan = plan_of(sql, &[&5_i64]);
            assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{sql}: {plan:?}");
        }
    }

    /// Queries by key start from the key's entries in the block index, not from a scan.
    #[test]
    fn key_queries_read_the_block_key_index() {
        let plan = plan_of(
            AUDIT_QUERY_BY_KEY,
            &[&rusqlite::types::Null, &rusqlite::types::Null, &"k", &rusqlite::types::Null],
        );
        assert!(plan.iter().any(|step| step.starts_with("SEARCH") && step.contains("(key_arn=?)")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{plan:?}");
    }

    /// The steps of SQLite's plan for `sql` on a fresh, migrated database.
    fn plan_of(sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        let conn = store.conn.lock().unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params, |r| r.get(3)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    /// Retention asks for the newest record before a cutoff on every scheduler pass: the answer
    /// comes from the time index, never from a scan of the trail (which grows without bound).
    #[test]
    fn the_retention_query_reads_the_time_index() {
        let plan = plan_of(AUDIT_SEQ_BEFORE, &[&0_i64]);
        assert!(plan.iter().any(|step| step.contains("INDEX audit_blocks_by_time (first_time<?)")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{plan:?}");
    }

    /// A writer that never pauses leaves no gap for a passive checkpoint to finish in, so the WAL
    /// would grow with everything written; past its limit the checkpointer forces a restart and
    /// the file is cut back, so it stays a small fraction of the bytes appended. (Before the
    /// limit, and with the old checkpoint every 500 ms, the WAL held all of it.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_without_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        // 500 frames: 2 MiB.
        let store = SqliteStore::open_with_wal_limit(&path, 500).unwrap();
        // Three writers, so that a commit is always waiting when one ends.
        let padding = "x".repeat(1000);
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..3_u64 {
            let (store, padding) = (store.clone(), padding.clone());
            writers.spawn(async move {
                let mut written = 0_u64;
                for b in 0..50_u64 {
                    let batch: Vec<_> = (0..200_u64)
                        .map(|i| {
                            let n = (writer * 50 + b) * 200 + i + 1;
                            let mut e = event(n, "Encrypt", Some("arn:aws:kms:us-east-1:111122223333:key/k"), None);
                            e.record = serde_json::json!({"eventName": "Encrypt", "n": n, "pad": padding}).to_string();
                            written += e.record.len() as u64;
                            e
                        })
                        .collect();
                    store.append_audit(batch.into()).await.unwrap();
                }
                written
            });
        }
        let written: u64 = writers.join_all().await.into_iter().sum();
        let n = 3 * 50 * 200;
        let wal = std::fs::metadata(dir.path().join("kms.db-wal")).unwrap().len();
        assert!(wal < written / 4, "WAL {wal} bytes after appending {written} bytes of records");
        assert_eq!(store.audit_head().await.unwrap().map(|(seq, _)| seq), Some(n));
    }

    /// The scheduler's due-keys query reads the two due-time indexes, never the whole table
    /// (it runs on every pass, and the table can hold 100,000 keys).
    #[test]
    fn the_due_keys_query_reads_the_due_time_indexes() {
        let plan = plan_of(DUE_KEYS, &[&0_i64, &10_i64]);
        assert!(plan.iter().any(|step| step.contains("INDEX keys_by_rotation_due")), "{plan:?}");
        assert!(plan.iter().any(|step| step.contains("INDEX keys_by_deletion_due")), "{plan:?}");
        assert!(plan.iter().any(|step| step.contains("INDEX keys_by_material_expiry")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN keys")), "{plan:?}");
    }

    /// Mutations that queue while the connection is busy commit together in one transaction,
    /// each answered after it; a failing one (a duplicate key) undoes only itself, and the
    /// audit chain of the group is intact and durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_mutations_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        let store = SqliteStore::open(&path).unwrap();
        // Hold the connection as a long commit would.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let conn = Arc::clone(&store.conn);
        let holder = std::thread::spawn(move || {
            let _guard = conn.lock().unwrap();
            held_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        held_rx.recv().unwrap();

        let account = "111122223333";
        let mut tasks = Vec::new();
        for n in 0..40u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let k = key(9, n, account);
                let audit = [event(u64::from(n) + 1, "CreateKey", None, None)];
                store.create_key(&k, &[material(&k)], "{}", &[], &[], &audit).await
            }));
        }
        // The same key again: refused, and its audit event must not be recorded.
        let duplicate = {
            let store = store.clone();
            tokio::spawn(async move {
                let k = key(9, 0, account);
                store.create_key(&k, &[material(&k)], "{}", &[], &[], &[event(99, "CreateKey", None, None)]).await
            })
        };
        while store.pending.lock().unwrap().len() < 41 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();

        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        outcomes.push(duplicate.await.unwrap());
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 40);
        assert!(outcomes.iter().any(|o| matches!(o, Err(StoreError::AlreadyExists))));
        assert_eq!(store.group_commits(), 1, "all 41 waiting mutations went into one transaction");
        drop(store);

        let reopened = SqliteStore::open(&path).unwrap();
        for n in 0..40u8 {
            assert!(reopened.key(key(9, n, account).key_id).await.unwrap().is_some());
        }
        let rows = reopened.audit_after(0, 1000).await.unwrap();
        assert_eq!(rows.len(), 40);
        crate::audit::verify_run(None, &rows).unwrap();
    }

    /// Without contention every mutation still commits on its own, immediately.
    #[tokio::test]
    async fn a_lone_mutation_commits_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("kms.db")).unwrap();
        for n in 0..3u8 {
            let k = key(7, n, "111122223333");
            store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
            assert_eq!(store.group_commits(), u64::from(n) + 1);
        }
    }
}
