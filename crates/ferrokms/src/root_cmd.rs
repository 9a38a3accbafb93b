//! `ferrokms root rotate`: a new root key for every stored secret, while the server runs (see
//! `kms_server::root_rotation`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use kms_core::Clock as _;
use kms_crypto::{FileRootKey, SystemRng};

use crate::audit_cmd::Source;

/// Root-key commands.
#[derive(Subcommand, Clone)]
pub enum RootCommand {
    /// Wrap every key material, access key secret and stored secret under a new root key file
    /// while the server runs; both roots work until it finishes, then the old file is kept as
    /// `<root>.previous` (destroy it once no backup needs it). Killed at any point, running it
    /// again completes it.
    Rotate(RotateArgs),
}

/// `ferrokms root rotate`.
#[derive(Args, Clone)]
pub struct RotateArgs {
    #[command(flatten)]
    source: Source,
    /// The root key file [default: DATA_DIR/root.key].
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Seconds to let the servers take the new root before re-wrapping (they look twice a
    /// second).
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// Re-wrap at most this many secrets, then stop without finishing (spreads the work; run
    /// again to go on).
    #[arg(long)]
    limit: Option<usize>,
}

/// Runs a root command; `Ok` holds the text to print.
///
/// # Errors
/// A readable message.
pub async fn run(command: &RootCommand) -> Result<String, String> {
    let RootCommand::Rotate(args) = command;
    let store = crate::audit_cmd::open(&args.source).await?;
    let root_path = args.root_key_file.clone().unwrap_or_else(|| args.source.data_dir.join("root.key"));
    let old = FileRootKey::load(&root_path).map_err(|e| e.to_string())?;
    let next = kms_server::root_rotation::announce(store.as_ref(), &root_path, &SystemRng).await?;
    let now = || kms_server::clock::SystemClock.now();
    let audit = |name: &str, details: serde_json::Value| {
        std::sync::Arc::from([kms_server::root_rotation::audit_event(&SystemRng, now(), name, details)])
    };
    store
        .append_audit(audit("StartRootKeyRotation", serde_json::json!({"nextRootKey": next.describe()})))
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("new root key {} announced; waiting {}s for the servers to take it", next.describe(), args.grace);
    let grace = Duration::from_secs_f64(args.grace.max(0.0));
    tokio::time::sleep(grace).await;
    let mut total = kms_server::root_rotation::Progress::default();
    let mut report = |p: &kms_server::root_rotation::Progress| {
        eprintln!(
            "re-wrapped {} materials, {} access keys, {} stored secrets ({} already under the new root)",
            p.materials, p.access_keys, p.settings, p.already
        );
    };
    // Passes until one finds nothing under the old root (a server that took the new root late
    // may have wrapped a secret with the old one meanwhile).
    for pass in 1..=5 {
        let left = args.limit.map(|l| l.saturating_sub(total.rewrapped()));
        let p = kms_server::root_rotation::rewrap(store.as_ref(), &old, next.as_ref(), left, &mut report).await?;
        total.materials += p.materials;
        total.access_keys += p.access_keys;
        total.settings += p.settings;
        if args.limit.is_some_and(|l| total.rewrapped() >= l) {
            return Ok(format!(
                "stopped after {} re-wrapped secrets (--limit); both roots work; run again to go on",
                total.rewrapped()
            ));
        }
        if p.rewrapped() == 0 && pass > 1 {
            kms_server::root_rotation::finish(store.as_ref(), &root_path, next.as_ref()).await?;
            let details = serde_json::json!({"materials": total.materials, "accessKeys": total.access_keys,
                "storedSecrets": total.settings});
            store.append_audit(audit("RotateRootKey", details)).await.map_err(|e| e.to_string())?;
            return Ok(format!(
                "root key rotated: {} materials, {} access keys and {} stored secrets re-wrapped; the old key is {}",
                total.materials,
                total.access_keys,
                total.settings,
                kms_server::root_rotation::previous_path(&root_path).display()
            ));
        }
        tokio::time::sleep(grace).await;
    }
    Err("secrets kept appearing under the old root key; is a server not taking the new one? Run again.".to_owned())
}
