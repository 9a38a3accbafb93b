//! `audit-size`: the audit trail's bytes on disk per record on PostgreSQL under sustained
//! Encrypt load (issue #27).
//!
//! Creates a database of its own on the server at `--postgres-url`, starts one ferrokms node on
//! it, and runs Encrypt load in rounds; after each round (once the node's audit queue is empty)
//! it reports the round's rate and the trail's size so far: `pg_total_relation_size` (table,
//! TOAST and indexes) of every audit table the schema has, `audit_log` for builds that kept a
//! row per record and `audit_blocks` + `audit_block_keys` for builds with blocks, divided by the
//! records in them. Run it with `--ferrokms` pointing at an older build for the before figure.
//! The database is dropped at the end.

use std::hash::{BuildHasher as _, RandomState};
use std::path::PathBuf;

use tokio_postgres::NoTls;

use crate::compare;
use crate::load::{self, Endpoint, Operation, Shape};

/// What to run.
pub struct Options {
    /// The ferrokms binary.
    pub ferrokms: PathBuf,
    /// A PostgreSQL URL whose user may create and drop databases.
    pub postgres_url: String,
    /// Load rounds (the trail's size is reported after each).
    pub rounds: usize,
    /// The load of each round.
    pub shape: Shape,
}

/// The trail's size: bytes of every audit relation and the records they hold.
struct Size {
    bytes: i64,
    records: i64,
    blocks: Option<i64>,
}

async fn trail_size(client: &tokio_postgres::Client) -> Result<Size, String> {
    let e = |e: tokio_postgres::Error| e.to_string();
    let bytes: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace \
             AND c.relname IN ('audit_log', 'audit_blocks', 'audit_block_keys')",
            &[],
        )
        .await
        .map_err(e)?
        .get(0);
    let blocks_table: bool =
        client.query_one("SELECT to_regclass('audit_blocks') IS NOT NULL", &[]).await.map_err(e)?.get(0);
    let (records, blocks) = if blocks_table {
        let row = client
            .query_one("SELECT COALESCE(SUM(last_seq - first_seq + 1), 0)::bigint, COUNT(*) FROM audit_blocks", &[])
            .await
            .map_err(e)?;
        (row.get(0), Some(row.get(1)))
    } else {
        (client.query_one("SELECT COUNT(*) FROM audit_log", &[]).await.map_err(e)?.get(0), None)
    };
    Ok(Size { bytes, records, blocks })
}

pub(crate) async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database replaced by `name`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base.get(authority..).and_then(|rest| rest.find('/')).map_or(base.len(), |i| authority + i);
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{}/{name}{query}", base.get(..path).unwrap_or(base))
}

/// Runs the measurement and prints one line per round, then a Markdown table.
///
/// # Errors
/// When the database, the server or the load cannot be set up.
pub async fn run(options: Options) -> Result<(), String> {
    let admin = connect(&options.postgres_url).await?;
    let name = format!("ferrokms_bench_audit_{:016x}", RandomState::new().hash_one(std::process::id()));
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
    let url = with_database(&options.postgres_url, &name);
    let outcome = measure(&options, &url).await;
    // The node is stopped by now (dropped inside `measure`); its sessions end with FORCE anyway.
    let dropped = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
    if let Err(e) = dropped {
        eprintln!("could not drop {name}: {e}");
    }
    outcome
}

async fn measure(options: &Options, url: &str) -> Result<(), String> {
    let data_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (server, addr, _) = compare::start_ferrokms_on(&options.ferrokms, data_dir.path(), Some(url))?;
    let (access_key_id, secret) = compare::admin_credentials(data_dir.path())?;
    let endpoint = Endpoint { addr, access_key_id, secret, region: "us-east-1".into() };
    let workload = load::prepare(&endpoint, Operation::Encrypt32, Vec::new()).await.map_err(|e| e.to_string())?;
    let db = connect(url).await?;
    let mut table = String::from(
        "| round | Encrypt req/s | records | audit bytes on disk | bytes/record | records/block |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    for round in 1..=options.rounds {
        let report = load::run(&endpoint, &workload, options.shape).await;
        compare::settle(addr).await;
        let size = trail_size(&db).await?;
        let per_record = size.bytes as f64 / size.records.max(1) as f64;
        let per_block =
            size.blocks.map_or_else(|| "-".to_owned(), |b| format!("{:.0}", size.records as f64 / b.max(1) as f64));
        println!(
            "round {round}: {:.0} req/s ({} errors); {} records, {} bytes on disk: {per_record:.1} bytes/record; {per_block} records/block",
            report.rate(),
            report.errors,
            size.records,
            size.bytes
        );
        table.push_str(&format!(
            "| {round} | {:.0} | {} | {} | {per_record:.1} | {per_block} |\n",
            report.rate(),
            size.records,
            size.bytes
        ));
    }
    drop(server);
    println!(
        "\n## Audit bytes per record on PostgreSQL — {}\n\nMachine: {}. {} connections, {:.0} s per round.\n\n{table}",
        compare::today(),
        compare::machine(),
        options.shape.connections,
        options.shape.duration.as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_the_url() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
