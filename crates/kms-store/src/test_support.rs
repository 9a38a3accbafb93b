//! For tests that play the attacker: read a SQLite store's audit trail as rows, change it,
//! and write it back, bypassing the chain. Compiled only with the `test-support` feature.

use rusqlite::Connection;

use crate::audit::AuditRow;
use crate::{StoreError, StoreResult};

/// Every stored audit row of the SQLite database at `path`, in the order stored.
///
/// # Errors
/// The database or a block could not be read.
pub fn sqlite_audit_rows(path: &std::path::Path) -> StoreResult<Vec<AuditRow>> {
    let conn = Connection::open(path)?;
    let mut out = Vec::new();
    crate::sqlite::each_block(&conn, "SELECT size, body FROM audit_blocks ORDER BY first_seq", [], |rows| {
        out.extend(rows);
        true
    })?;
    Ok(out)
}

/// Replaces the stored trail with `rows`, one block, as given (no hash is recomputed).
///
/// # Errors
/// The database could not be written.
pub fn replace_sqlite_audit_rows(path: &std::path::Path, rows: &[AuditRow]) -> StoreResult<()> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    tx.execute_batch("DELETE FROM audit_blocks; DELETE FROM audit_block_keys")?;
    crate::sqlite::insert_block(&tx, rows)?;
    tx.commit().map_err(StoreError::from)
}
