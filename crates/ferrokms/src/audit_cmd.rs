//! `ferrokms audit verify | export | query`: read the audit trail from the store directly (the
//! server may be running; SQLite readers do not block it).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kms_core::Timestamp;
use kms_store::audit::{AuditFilter, AuditRow, verify_store};
use kms_store::{SqliteStore, Store};

/// Which trail to read.
#[derive(Args, Clone)]
pub struct Source {
    /// The data directory whose SQLite store holds the trail.
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "./ferrokms-data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL store instead (postgres://user@host:5432/db).
    #[arg(long, env = "FERROKMS_STORE", value_name = "URL")]
    pub store: Option<String>,
}

/// Audit commands.
#[derive(Subcommand, Clone)]
pub enum AuditCommand {
    /// Check every record's link and hash and every signed digest; exits non-zero naming the
    /// first record that was removed, reordered or edited.
    Verify {
        #[command(flatten)]
        source: Source,
        /// Ed25519 public key (hex) to check digest signatures with, kept apart from the
        /// database; defaults to the one stored with the trail.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Check a trail delivered with `serve --cloudtrail-dir`: every digest's signature (by the
    /// trail's RSA digest keys, or the audit trail's Ed25519 key for digests written before
    /// digests were RSA-signed) and chain, every log file against its digest; exits non-zero
    /// naming what was removed or edited. (A trail delivered to a bucket is checked with
    /// `aws cloudtrail validate-logs`.)
    ValidateLogs {
        #[command(flatten)]
        source: Source,
        /// The directory the trail was delivered to (holding `AWSLogs/`).
        #[arg(long)]
        dir: PathBuf,
        /// Ed25519 public key (hex) to check digests written before digests were RSA-signed;
        /// defaults to the one stored with the trail. (RSA digest keys are read from the store.)
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print records as JSON lines, oldest first.
    Export {
        #[command(flatten)]
        source: Source,
        /// Earliest event time (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Latest event time (RFC 3339), exclusive.
        #[arg(long)]
        to: Option<String>,
    },
    /// Search records, newest first.
    Query {
        #[command(flatten)]
        source: Source,
        /// Key ARN.
        #[arg(long)]
        key_arn: Option<String>,
        /// Principal ARN.
        #[arg(long)]
        principal: Option<String>,
        /// Event name (Encrypt, CreateKey, …).
        #[arg(long)]
        event_name: Option<String>,
        /// Error code (AccessDeniedException, …); `-` for successful events only.
        #[arg(long)]
        error_code: Option<String>,
        /// Earliest event time (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Latest event time (RFC 3339), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Most records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn time(arg: Option<&str>) -> Result<Option<Timestamp>, String> {
    arg.map(|s| {
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("'{s}' is not an RFC 3339 time: {e}"))?;
        Ok(Timestamp::from_unix_millis(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)))
    })
    .transpose()
}

pub async fn open(source: &Source) -> Result<Box<dyn Store>, String> {
    if let Some(url) = &source.store {
        return Ok(Box::new(kms_store::PostgresStore::connect(url).await.map_err(|e| e.to_string())?));
    }
    let path = source.data_dir.join("ferrokms.db");
    if !path.exists() {
        return Err(format!("no ferrokms database at {}", path.display()));
    }
    Ok(Box::new(SqliteStore::open(&path).map_err(|e| e.to_string())?))
}

fn row_line(r: &AuditRow) -> String {
    format!(
        "{:>8}  {:<24}  {:<32}  {:<28}  {}",
        r.seq,
        r.time.rfc3339(),
        r.event_name,
        r.error_code.as_deref().unwrap_or("-"),
        r.key_arn.as_deref().unwrap_or(&r.principal)
    )
}

/// The Ed25519 public key digests are checked with: the one given (hex), else the one stored
/// with the trail.
async fn ed25519_public_key(store: &dyn kms_store::Store, given: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    match given {
        Some(k) => Ok(Some(hex::decode(k).map_err(|e| format!("--public-key: {e}"))?)),
        None => {
            Ok(store.setting("audit_public_key").await.map_err(|e| e.to_string())?.and_then(|k| hex::decode(k).ok()))
        }
    }
}

/// Runs an audit command; `Ok` holds the text to print.
///
/// # Errors
/// A readable message; for `verify`, the first break in the chain.
pub async fn run(command: &AuditCommand) -> Result<String, String> {
    match command {
        AuditCommand::Verify { source, public_key } => {
            let store = open(source).await?;
            let key = ed25519_public_key(store.as_ref(), public_key.as_deref()).await?;
            match verify_store(store.as_ref(), key.as_deref()).await {
                Ok(report) => Ok(format!(
                    "audit trail intact: {} records, {} signed digests verified",
                    report.records, report.digests
                )),
                Err(Ok(broken)) => Err(format!("audit trail BROKEN: {broken}")),
                Err(Err(e)) => Err(format!("cannot read the audit trail: {e}")),
            }
        }
        AuditCommand::ValidateLogs { source, dir, public_key } => {
            let store = open(source).await?;
            let ed25519 = ed25519_public_key(store.as_ref(), public_key.as_deref()).await?;
            let rsa = kms_server::trail::public_keys(store.as_ref()).await.map_err(|e| e.to_string())?;
            let keys = kms_server::trail::VerificationKeys { ed25519, rsa };
            match kms_server::trail::validate(dir, &keys) {
                Ok(v) => Ok(format!("delivered trail valid: {} digests, {} log files", v.digests, v.log_files)),
                Err(problems) => Err(format!("delivered trail INVALID:\n{}", problems.join("\n"))),
            }
        }
        AuditCommand::Export { source, from, to } => {
            let store = open(source).await?;
            let (from, to) = (time(from.as_deref())?, time(to.as_deref())?);
            let mut out = String::new();
            let mut after = 0;
            loop {
                let rows = store.audit_after(after, 5000).await.map_err(|e| e.to_string())?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                for r in rows.iter().filter(|r| from.is_none_or(|f| r.time >= f) && to.is_none_or(|t| r.time < t)) {
                    out.push_str(&r.record);
                    out.push('\n');
                }
            }
            Ok(out.trim_end().to_owned())
        }
        AuditCommand::Query { source, key_arn, principal, event_name, error_code, from, to, limit, json } => {
            let store = open(source).await?;
            let filter = AuditFilter {
                key_arn: key_arn.clone(),
                principal: principal.clone(),
                event_name: event_name.clone(),
                error_code: error_code.clone(),
                from: time(from.as_deref())?,
                to: time(to.as_deref())?,
                limit: *limit,
                before_seq: None,
            };
            let rows = store.audit_query(&filter).await.map_err(|e| e.to_string())?;
            if *json {
                return Ok(rows.iter().map(|r| r.record.as_str()).collect::<Vec<_>>().join("\n"));
            }
            let mut out =
                format!("{:>8}  {:<24}  {:<32}  {:<28}  {}\n", "SEQ", "TIME", "EVENT", "ERROR", "KEY OR PRINCIPAL");
            for r in &rows {
                out.push_str(&row_line(r));
                out.push('\n');
            }
            Ok(out.trim_end().to_owned())
        }
    }
}
