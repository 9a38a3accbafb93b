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

use crate::{AccessKeyRecord, AliasRecord, MaterialRecord, Store, StoreError, StoreResult};

/// Forward-only migrations; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE keys (
    key_id   TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    revision INTEGER NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX keys_by_owner ON keys (account, region, key_id);
CREATE TABLE key_materials (
    key_id      TEXT NOT NULL REFERENCES keys (key_id),
    material_id BLOB NOT NULL,
    wrapped     BLOB NOT NULL,
    created     INTEGER NOT NULL,
    PRIMARY KEY (key_id, material_id)
);
CREATE TABLE key_policies (
    key_id   TEXT PRIMARY KEY REFERENCES keys (key_id),
    document TEXT NOT NULL
);
CREATE TABLE key_tags (
    key_id    TEXT NOT NULL REFERENCES keys (key_id),
    tag_key   TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (key_id, tag_key)
);
CREATE TABLE aliases (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    key_id  TEXT NOT NULL REFERENCES keys (key_id),
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE INDEX aliases_by_key ON aliases (key_id);
CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    account        TEXT NOT NULL,
    principal_arn  TEXT NOT NULL,
    wrapped_secret BLOB NOT NULL,
    created        INTEGER NOT NULL
);
"];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                Self::AlreadyExists
            }
            other => backend(other),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or migrated.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Self { path: path.to_owned(), conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (transactions roll
            // back on drop), so a poisoned lock is safe to reuse.
            let mut guard = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(backend)?
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
    let latest = i64::try_from(MIGRATIONS.len()).map_err(backend)?;
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [latest])?;
    tx.commit()?;
    Ok(())
}

fn decode_key(text: &str) -> StoreResult<KeyRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("key record: {e}")))
}

fn encode_key(key: &KeyRecord) -> StoreResult<String> {
    serde_json::to_string(key).map_err(backend)
}

fn revision(key: &KeyRecord) -> StoreResult<i64> {
    i64::try_from(key.revision).map_err(backend)
}

fn key_id_column(s: &str) -> StoreResult<KeyId> {
    KeyId::parse(s).ok_or_else(|| StoreError::Corrupt(format!("key id {s}")))
}

fn alias_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn alias_record(raw: (String, String, String, String, i64, i64)) -> StoreResult<AliasRecord> {
    let (account, region, name, key_id, created, updated) = raw;
    let corrupt = |what: &str| StoreError::Corrupt(format!("alias {what}"));
    Ok(AliasRecord {
        account: AccountId::parse(&account).map_err(|_| corrupt("account"))?,
        region: Region::parse(&region).map_err(|_| corrupt("region"))?,
        name: AliasName::parse(&name).map_err(|_| corrupt("name"))?,
        target: key_id_column(&key_id)?,
        created: Timestamp::from_unix_millis(created),
        updated: Timestamp::from_unix_millis(updated),
    })
}

const ALIAS_COLUMNS: &str = "account, region, name, key_id, created, updated";

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.run(move |c| {
            Ok(c.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0)).optional()?)
        })
        .await
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<bool> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |c| {
            Ok(c.execute("INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)", [name, value])? == 1)
        })
        .await
    }

    async fn create_key(
        &self,
        key: &KeyRecord,
        material: &MaterialRecord,
        policy: &str,
        tags: &[Tag],
    ) -> StoreResult<()> {
        let (key, material, policy, tags) = (key.clone(), material.clone(), policy.to_owned(), tags.to_vec());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id = key.key_id.to_string();
            tx.execute(
                "INSERT INTO keys (key_id, account, region, revision, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, key.account.as_str(), key.region.as_str(), revision(&key)?, encode_key(&key)?],
            )?;
            tx.execute(
                "INSERT INTO key_materials (key_id, material_id, wrapped, created) VALUES (?1, ?2, ?3, ?4)",
                params![id, material.material_id.as_bytes(), material.wrapped, material.created.unix_millis()],
            )?;
            tx.execute("INSERT INTO key_policies (key_id, document) VALUES (?1, ?2)", params![id, policy])?;
            for tag in &tags {
                tx.execute(
                    "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3)",
                    params![id, tag.key, tag.value],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn key(&self, id: KeyId) -> StoreResult<Option<KeyRecord>> {
        self.run(move |c| {
            let text: Option<String> =
                c.query_row("SELECT record FROM keys WHERE key_id = ?1", [id.to_string()], |r| r.get(0)).optional()?;
            text.as_deref().map(decode_key).transpose()
        })
        .await
    }

    async fn update_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let key = key.clone();
        self.run(move |c| {
            let previous = revision(&key)?.checked_sub(1).ok_or(StoreError::Conflict)?;
            let id = key.key_id.to_string();
            let changed = c.execute(
                "UPDATE keys SET record = ?1, revision = ?2 WHERE key_id = ?3 AND revision = ?4",
                params![encode_key(&key)?, revision(&key)?, id, previous],
            )?;
            if changed == 1 {
                return Ok(());
            }
            let exists: Option<i64> =
                c.query_row("SELECT 1 FROM keys WHERE key_id = ?1", [id], |r| r.get(0)).optional()?;
            Err(if exists.is_some() { StoreError::Conflict } else { StoreError::NotFound })
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
        let after = after.map(|k| k.to_string()).unwrap_or_default();
        let limit = i64::try_from(limit).map_err(backend)?;
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT key_id FROM keys WHERE account = ?1 AND region = ?2 AND key_id > ?3 ORDER BY key_id LIMIT ?4",
            )?;
            let ids = stmt
                .query_map(params![account, region, after, limit], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            ids.iter().map(|s| key_id_column(s)).collect()
        })
        .await
    }

    async fn materials(&self, id: KeyId) -> StoreResult<Vec<MaterialRecord>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT material_id, wrapped, created FROM key_materials WHERE key_id = ?1 ORDER BY created, material_id",
            )?;
            let rows = stmt
                .query_map([id.to_string()], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(mid, wrapped, created)| {
                    let mid: [u8; 32] =
                        mid.try_into().map_err(|_| StoreError::Corrupt("material id length".into()))?;
                    Ok(MaterialRecord {
                        key_id: id,
                        material_id: MaterialId::from_bytes(mid),
                        wrapped,
                        created: Timestamp::from_unix_millis(created),
                    })
                })
                .collect()
        })
        .await
    }

    async fn create_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let a = alias.clone();
        self.run(move |c| {
            c.execute(
                &format!("INSERT INTO aliases ({ALIAS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    a.account.as_str(),
                    a.region.as_str(),
                    a.name.as_str(),
                    a.target.to_string(),
                    a.created.unix_millis(),
                    a.updated.unix_millis()
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn update_alias(&self, alias: &AliasRecord) -> StoreResult<()> {
        let a = alias.clone();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE aliases SET key_id = ?1, updated = ?2 WHERE account = ?3 AND region = ?4 AND name = ?5",
                params![
                    a.target.to_string(),
                    a.updated.unix_millis(),
                    a.account.as_str(),
                    a.region.as_str(),
                    a.name.as_str()
                ],
            )?;
            if n == 1 { Ok(()) } else { Err(StoreError::NotFound) }
        })
        .await
    }

    async fn delete_alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> StoreResult<bool> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
                [account, region, name],
            )? == 1)
        })
        .await
    }

    async fn alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> StoreResult<Option<AliasRecord>> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_string());
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {ALIAS_COLUMNS} FROM aliases WHERE account = ?1 AND region = ?2 AND name = ?3"),
                [account, region, name],
                alias_from_row,
            )
            .optional()?
            .map(alias_record)
            .transpose()
        })
        .await
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
        let target = target.map(|k| k.to_string());
        let after = after.map(ToString::to_string).unwrap_or_default();
        let limit = i64::try_from(limit).map_err(backend)?;
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ALIAS_COLUMNS} FROM aliases WHERE account = ?1 AND region = ?2 \
                 AND (?3 IS NULL OR key_id = ?3) AND name > ?4 ORDER BY name LIMIT ?5"
            ))?;
            let rows = stmt
                .query_map(params![account, region, target, after, limit], alias_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(alias_record).collect()
        })
        .await
    }

    async fn tags(&self, id: KeyId) -> StoreResult<Vec<Tag>> {
        self.run(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT tag_key, tag_value FROM key_tags WHERE key_id = ?1 ORDER BY tag_key")?;
            let tags = stmt
                .query_map([id.to_string()], |r| Ok(Tag { key: r.get(0)?, value: r.get(1)? }))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(tags)
        })
        .await
    }

    async fn put_tags(&self, id: KeyId, tags: &[Tag], max: usize) -> StoreResult<()> {
        let tags = tags.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let id = id.to_string();
            for tag in &tags {
                tx.execute(
                    "INSERT INTO key_tags (key_id, tag_key, tag_value) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                    params![id, tag.key, tag.value],
                )?;
            }
            let count: i64 = tx.query_row("SELECT COUNT(*) FROM key_tags WHERE key_id = ?1", [&id], |r| r.get(0))?;
            if usize::try_from(count).map_err(backend)? > max {
                return Err(StoreError::LimitExceeded(max)); // dropping `tx` rolls back
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn remove_tags(&self, id: KeyId, keys: &[String]) -> StoreResult<()> {
        let keys = keys.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            for k in &keys {
                tx.execute("DELETE FROM key_tags WHERE key_id = ?1 AND tag_key = ?2", params![id.to_string(), k])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn policy(&self, id: KeyId) -> StoreResult<Option<String>> {
        self.run(move |c| {
            Ok(c.query_row("SELECT document FROM key_policies WHERE key_id = ?1", [id.to_string()], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn put_policy(&self, id: KeyId, document: &str) -> StoreResult<()> {
        let document = document.to_owned();
        self.run(move |c| {
            let n = c.execute(
                "UPDATE key_policies SET document = ?1 WHERE key_id = ?2",
                params![document, id.to_string()],
            )?;
            if n == 1 { Ok(()) } else { Err(StoreError::NotFound) }
        })
        .await
    }

    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let id = id.to_owned();
        self.run(move |c| {
            let row = c
                .query_row(
                    "SELECT access_key_id, account, principal_arn, wrapped_secret, created FROM access_keys \
                     WHERE access_key_id = ?1",
                    [id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(access_key_id, account, principal_arn, wrapped_secret, created)| {
                Ok(AccessKeyRecord {
                    access_key_id,
                    account: AccountId::parse(&account)
                        .map_err(|_| StoreError::Corrupt("access key account".into()))?,
                    principal_arn,
                    wrapped_secret,
                    created: Timestamp::from_unix_millis(created),
                })
            })
            .transpose()
        })
        .await
    }

    async fn create_access_key(&self, record: &AccessKeyRecord) -> StoreResult<()> {
        let r = record.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO access_keys (access_key_id, account, principal_arn, wrapped_secret, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    r.access_key_id,
                    r.account.as_str(),
                    r.principal_arn,
                    r.wrapped_secret,
                    r.created.unix_millis()
                ],
            )?;
            Ok(())
        })
        .await
    }
}
