//! The SQL both backends run, each statement written once.
//!
//! Statements are written in PostgreSQL's placeholder syntax (`$1`, `$2`…) and in SQL that both
//! databases read alike (`ON CONFLICT … DO UPDATE`, `CAST(… AS TEXT)`, `RETURNING`). The
//! `statements!` macro yields each one twice, at compile time: as written in [`postgres`], and
//! with every `$` turned into `?` in [`sqlite`] (`$3` becomes `?3`, SQLite's numbered parameter).
//! Both are `&'static str` constants, so a backend's hot path binds and runs them exactly as
//! before (rusqlite's and deadpool's statement caches key on the final text); nothing is
//! rewritten per call.
//!
//! What the two dialects do differently stays in the backends, next to the concurrency it
//! serves: SQLite's compare-and-swap and per-tag upserts, PostgreSQL's `unnest` batches, row
//! locks, `pg_notify`, the JSON operators of the due-keys and key-state queries, and the audit
//! trail (compressed blocks on SQLite, one row per record on PostgreSQL).
//!
//! A statement must not contain `$` other than in placeholders (a JSON path such as `'$.state'`
//! is SQLite-only and belongs in the SQLite backend); a test checks that every statement
//! prepares on SQLite with parameters `?1…?n` in order.

/// The columns of an alias, in the order [`crate::records::alias_record`] reads them.
macro_rules! alias_columns {
    () => {
        "account, region, name, key_id, created, updated"
    };
}

/// The columns of an access key, in the order [`crate::records::access_key_record`] reads them.
macro_rules! access_key_columns {
    () => {
        "access_key_id, account, principal_arn, wrapped_secret, created, session_name, token_digest, expires, status, \
         session_tags, last_used"
    };
}

/// The columns of a principal, in the order [`crate::records::principal_record`] reads them.
macro_rules! principal_columns {
    () => {
        "arn, account, kind, name, principal_id, trust_policy, created, attributes"
    };
}

/// The columns of the one-row-per-record audit table (`audit_log`, which both stores kept before
/// audit blocks and their migrations read), in the order [`crate::records::audit_row`] reads them.
macro_rules! audit_log_columns {
    () => {
        "seq, event_id, event_time, event_name, key_arn, principal, error_code, record, prev_hash, hash"
    };
}

pub(crate) use audit_log_columns;

/// `sql` with every `$` replaced by `?`, as bytes (`N` is `sql.len()`). Evaluated at compile
/// time only.
#[allow(clippy::indexing_slicing)] // INVARIANT: `i < N == sql.len()`; evaluated in a constant, so a slip fails the build
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
const fn numbered<const N: usize>(sql: &str) -> [u8; N] {
    let bytes = sql.as_bytes();
    let mut out = [0_u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if bytes[i] == b'$' { b'?' } else { bytes[i] };
        i += 1;
    }
    out
}

/// The text of [`numbered`]'s bytes (ASCII `$` replaced by ASCII `?` keeps UTF-8 valid).
#[allow(clippy::panic)] // evaluated in a constant: a panic here is a compile error, never a runtime one
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
const fn text(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("a statement is not UTF-8"),
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Reset, as one batch (no parameters): every key with its materials, policy, tags, aliases
/// and grants; every identity policy but each account admin's AdministratorAccess; every
/// access key and session but each account admin's long-term keys; every user, role and
/// service principal but each account's admin.
pub(crate) const RESET: &str = "DELETE FROM key_materials; DELETE FROM key_policies; DELETE FROM key_tags; DELETE FROM aliases; \
     DELETE FROM grants; DELETE FROM keys; \
     DELETE FROM identity_policies \
     WHERE NOT (principal_arn LIKE 'arn:aws:iam::%:user/admin' AND name = 'AdministratorAccess'); \
     DELETE FROM access_keys WHERE NOT (principal_arn LIKE 'arn:aws:iam::%:user/admin' AND session_name IS NULL); \
     DELETE FROM principals WHERE arn NOT LIKE 'arn:aws:iam::%:user/admin'";

/// Declares each statement once; yields it in [`postgres`] as written and in [`sqlite`] with
/// numbered `?` parameters, and lists them all in `ALL` (for the test that prepares them).
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// The statements in PostgreSQL's syntax.
        #[cfg(feature = "postgres")]
        pub(crate) mod postgres {
            $($(#[$doc])* pub(crate) const $name: &str = $sql;)*
        }

        /// The statements in SQLite's syntax.
        #[cfg(feature = "sqlite")]
        pub(crate) mod sqlite {
            $($(#[$doc])* pub(crate) const $name: &str = {
                const BYTES: [u8; $sql.len()] = super::numbered($sql);
                super::text(&BYTES)
            };)*
        }

        /// Every statement (name, as written, SQLite's form), for the test that prepares them.
        #[cfg(all(test, feature = "sqlite"))]
        const ALL: &[(&str, &str, &str)] = &[$((stringify!($name), $sql, sqlite::$name)),*];
    };
}

statements! {
    /// A setting's value (`$1` name).
    SETTING = "SELECT value FROM settings WHERE name = $1";
    /// Writes a setting, overwriting it.
    SET_SETTING = "INSERT INTO settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value";
    /// Writes a setting unless it is set (one row changed when it wrote).
    INIT_SETTING = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";

    /// A key's record (column 0, JSON).
    KEY = "SELECT record FROM keys WHERE key_id = $1";
    /// Creates a key.
    INSERT_KEY = "INSERT INTO keys (key_id, account, region, revision, record) VALUES ($1, $2, $3, $4, $5)";
    /// A material (`$5`: the rotation that added it, if one did).
    INSERT_MATERIAL = "INSERT INTO key_materials (key_id, material_id, wrapped, created, rotation_type) \
         VALUES ($1, $2, $3, $4, $5)";
    /// Deletes one material of a key (`$1` key, `$2` material id).
    DELETE_MATERIAL = "DELETE FROM key_materials WHERE key_id = $1 AND material_id = $2";
    /// A key's materials, oldest first, as [`crate::records::material_record`] reads them.
    MATERIALS = "SELECT material_id, wrapped, created, rotation_type FROM key_materials WHERE key_id = $1 \
         ORDER BY created, material_id";
    /// Every key's materials after (`$1`, `$2`), at most `$3` (a root-key rotation's walk).
    MATERIALS_AFTER = "SELECT key_id, material_id, wrapped, created, rotation_type FROM key_materials \
         WHERE key_id > $1 OR (key_id = $1 AND material_id > $2) ORDER BY key_id, material_id LIMIT $3";
    /// Replaces a material's wrapping if it is still `$3`.
    REWRAP_MATERIAL = "UPDATE key_materials SET wrapped = $4 WHERE key_id = $1 AND material_id = $2 AND wrapped = $3";
    /// Every access key after `$1`, at most `$2`.
    ACCESS_KEYS_AFTER = concat!(
        "SELECT ",
        access_key_columns!(),
        " FROM access_keys WHERE access_key_id > $1 ORDER BY access_key_id LIMIT $2"
    );
    /// Replaces an access key's wrapped secret if it is still `$2`.
    REWRAP_ACCESS_KEY = "UPDATE access_keys SET wrapped_secret = $3 WHERE access_key_id = $1 AND wrapped_secret = $2";
    /// Key ids of an account in a region after `$3`, at most `$4`.
    LIST_KEYS =
        "SELECT key_id FROM keys WHERE account = $1 AND region = $2 AND key_id > $3 ORDER BY key_id LIMIT $4";
    /// Deleting a key: its materials.
    DELETE_KEY_MATERIALS = "DELETE FROM key_materials WHERE key_id = $1";
    /// Deleting a key: its policy.
    DELETE_KEY_POLICY = "DELETE FROM key_policies WHERE key_id = $1";
    /// Deleting a key: its tags.
    DELETE_KEY_TAGS = "DELETE FROM key_tags WHERE key_id = $1";
    /// Deleting a key: the aliases naming it.
    DELETE_KEY_ALIASES = "DELETE FROM aliases WHERE key_id = $1";
    /// Deleting a key: its grants.
    DELETE_KEY_GRANTS = "DELETE FROM grants WHERE key_id = $1";
    /// Deleting a key: its record (after the rows that refer to it).
    DELETE_KEY = "DELETE FROM keys WHERE key_id = $1";

    /// A key's policy document.
    POLICY = "SELECT document FROM key_policies WHERE key_id = $1";

    /// Creates a key's policy.
    INSERT_POLICY = "INSERT INTO key_policies (key_id, document) VALUES ($1, $2)";
    /// Replaces a key's policy (`$1` document, `$2` key).
    UPDATE_POLICY = "UPDATE key_policies SET document = $1 WHERE key_id = $2";

    /// A key's tags in key order.
    TAGS = "SELECT tag_key, tag_value FROM key_tags WHERE key_id = $1 ORDER BY tag_key";
    /// How many tags a key has.
    COUNT_TAGS = "SELECT COUNT(*) FROM key_tags WHERE key_id = $1";

    /// Creates an alias.
    INSERT_ALIAS = concat!("INSERT INTO aliases (", alias_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6)");
    /// Points an alias at another key (`$1` key, `$2` updated, `$3..$5` account, region, name).
    UPDATE_ALIAS = "UPDATE aliases SET key_id = $1, updated = $2 WHERE account = $3 AND region = $4 AND name = $5";
    /// Deletes an alias, returning the key it named (no row: there was none).
    DELETE_ALIAS = "DELETE FROM aliases WHERE account = $1 AND region = $2 AND name = $3 RETURNING key_id";
    /// An alias by account, region and name.
    ALIAS = concat!("SELECT ", alias_columns!(), " FROM aliases WHERE account = $1 AND region = $2 AND name = $3");
    /// Aliases of an account in a region (naming `$3`, unless null), after `$4`, at most `$5`.
    LIST_ALIASES = concat!(
        "SELECT ",
        alias_columns!(),
        " FROM aliases WHERE account = $1 AND region = $2 \
         AND (CAST($3 AS TEXT) IS NULL OR key_id = $3) AND name > $4 ORDER BY name LIMIT $5"
    );

    /// An access key by id.
    ACCESS_KEY = concat!("SELECT ", access_key_columns!(), " FROM access_keys WHERE access_key_id = $1");
    /// Creates an access key.
    INSERT_ACCESS_KEY =
        concat!("INSERT INTO access_keys (", access_key_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    /// Records an access key's last use.
    SET_ACCESS_KEY_USE = "UPDATE access_keys SET last_used = $2 WHERE access_key_id = $1";
    /// Sets an access key's status (NULL: Active).
    SET_ACCESS_KEY_STATUS = "UPDATE access_keys SET status = $2 WHERE access_key_id = $1";
    /// Deletes an access key.
    DELETE_ACCESS_KEY = "DELETE FROM access_keys WHERE access_key_id = $1";
    /// A principal's access keys, by id.
    ACCESS_KEYS_OF = concat!(
        "SELECT ",
        access_key_columns!(),
        " FROM access_keys WHERE principal_arn = $1 ORDER BY access_key_id"
    );
    /// Deleting a principal: its access keys.
    DELETE_ACCESS_KEYS_OF = "DELETE FROM access_keys WHERE principal_arn = $1";

    /// Creates a principal.
    INSERT_PRINCIPAL =
        concat!("INSERT INTO principals (", principal_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    /// A principal by account, kind and name.
    PRINCIPAL_BY_NAME =
        concat!("SELECT ", principal_columns!(), " FROM principals WHERE account = $1 AND kind = $2 AND name = $3");
    /// Renames a principal (a new ARN, name and attributes; its children moved first).
    RENAME_PRINCIPAL = "UPDATE principals SET arn = $2, name = $3, attributes = $4 WHERE arn = $1";
    /// Renaming a principal: its access keys follow it.
    MOVE_ACCESS_KEYS = "UPDATE access_keys SET principal_arn = $2 WHERE principal_arn = $1";
    /// Replaces a principal's trust policy and attributes.
    UPDATE_PRINCIPAL = "UPDATE principals SET trust_policy = $2, attributes = $3 WHERE arn = $1";

    /// Creates a managed policy.
    INSERT_MANAGED_POLICY =
        "INSERT INTO managed_policies (arn, account, name, revision, record) VALUES ($1, $2, $3, 1, $4)";
    /// A managed policy by ARN.
    MANAGED_POLICY = "SELECT record, revision FROM managed_policies WHERE arn = $1";
    /// An account's managed policies, by name.
    MANAGED_POLICIES = "SELECT record, revision FROM managed_policies WHERE account = $1 ORDER BY name";
    /// Replaces a managed policy read at revision $3.
    UPDATE_MANAGED_POLICY =
        "UPDATE managed_policies SET record = $2, revision = revision + 1 WHERE arn = $1 AND revision = $3";
    /// Deletes a managed policy.
    DELETE_MANAGED_POLICY = "DELETE FROM managed_policies WHERE arn = $1";
    /// A principal by ARN.
    PRINCIPAL = concat!("SELECT ", principal_columns!(), " FROM principals WHERE arn = $1");
    /// The principals of an account.
    LIST_PRINCIPALS = concat!("SELECT ", principal_columns!(), " FROM principals WHERE account = $1 ORDER BY kind, name");
    /// A principal's unique id, by ARN.
    PRINCIPAL_ID = "SELECT principal_id FROM principals WHERE arn = $1";
    /// Deletes a principal.
    DELETE_PRINCIPAL = "DELETE FROM principals WHERE arn = $1";

    /// Adds or replaces an identity policy.
    PUT_IDENTITY_POLICY = "INSERT INTO identity_policies (principal_arn, name, document) VALUES ($1, $2, $3) \
         ON CONFLICT (principal_arn, name) DO UPDATE SET document = excluded.document";
    /// Deletes an identity policy.
    DELETE_IDENTITY_POLICY = "DELETE FROM identity_policies WHERE principal_arn = $1 AND name = $2";
    /// Deleting a principal: its identity policies.
    DELETE_IDENTITY_POLICIES_OF = "DELETE FROM identity_policies WHERE principal_arn = $1";
    /// A principal's identity policies, by name.
    IDENTITY_POLICIES =
        "SELECT principal_arn, name, document FROM identity_policies WHERE principal_arn = $1 ORDER BY name";

    /// How many grants a key has.
    COUNT_GRANTS = "SELECT COUNT(*) FROM grants WHERE key_id = $1";
    /// Creates a grant.
    INSERT_GRANT = "INSERT INTO grants (grant_id, key_id, record) VALUES ($1, $2, $3)";
    /// A key's grants (column 0, JSON), by id.
    GRANTS = "SELECT record FROM grants WHERE key_id = $1 ORDER BY grant_id";
    /// A grant by id.
    GRANT = "SELECT record FROM grants WHERE grant_id = $1";
    /// Every grant, by id (the retiring principal is only inside the record).
    ALL_GRANTS = "SELECT record FROM grants ORDER BY grant_id";
    /// Deletes a grant, returning its key (no row: there was none).
    DELETE_GRANT = "DELETE FROM grants WHERE grant_id = $1 RETURNING key_id";

    /// Stores a signed digest.
    INSERT_AUDIT_DIGEST = "INSERT INTO audit_digests (seq, hash, created, signature) VALUES ($1, $2, $3, $4)";
    /// Every signed digest, as [`crate::records::audit_digest`] reads them.
    AUDIT_DIGESTS = "SELECT seq, hash, created, signature FROM audit_digests ORDER BY seq";
}

#[cfg(all(test, feature = "sqlite"))]
#[allow(clippy::unwrap_used)]
mod tests {
    /// Every statement prepares on a migrated SQLite database, its parameters are `?1…?n` in
    /// that order, and its SQLite form differs from the one written only in `?` for `$`.
    #[test]
    fn every_statement_prepares_on_sqlite_with_numbered_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kms.db");
        drop(crate::SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (name, written, sqlite) in super::ALL {
            assert_eq!(written.replace('$', "?"), *sqlite, "{name}");
            let stmt = conn.prepare(sqlite).unwrap_or_else(|e| panic!("{name}: {e}"));
            let names: Vec<String> =
                (1..=stmt.parameter_count()).map(|i| stmt.parameter_name(i).unwrap_or_default().to_owned()).collect();
            let expected: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            assert_eq!(names, expected, "{name}: {sqlite}");
        }
    }
}
