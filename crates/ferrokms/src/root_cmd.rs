//! `ferrokms root rotate`: a new root key for every stored secret, while the servers run (see
//! `kms_server::root_rotation`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use kms_core::Clock as _;
use kms_crypto::SystemRng;
use kms_server::root_rotation::{self, NextRoot, Opener, Progress};

use crate::CommonArgs;

/// Root-key commands.
#[derive(Subcommand, Clone)]
pub enum RootCommand {
    /// Wrap every key material, access key secret and stored secret under a new root key while
    /// the servers run: a new key file (file roots; the old one is kept as `<root>.previous`,
    /// destroy it once no backup needs it), a new passphrase (passphrase roots; give it to every
    /// node at its next start), or a new key in the same token (HSM roots; the old key stays in
    /// the token until you destroy it). Both roots work until it finishes; killed at any point,
    /// running it again completes it.
    Rotate(RotateArgs),
}

/// `ferrokms root rotate`.
#[derive(Args, Clone)]
pub struct RotateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Passphrase roots: read the new passphrase from this file (its first line), or `-` for
    /// standard input. Otherwise FERROKMS_NEW_ROOT_PASSPHRASE holds it.
    #[arg(long, value_name = "FILE")]
    new_root_passphrase_file: Option<PathBuf>,
    /// HSM roots: the label of the new AES key, generated (non-extractable) in the same token.
    /// [default: the current label with a time suffix]
    #[arg(long, value_name = "LABEL")]
    new_pkcs11_key_label: Option<String>,
    /// Seconds to let the servers take the new root before re-wrapping (they look twice a
    /// second).
    #[arg(long, default_value_t = 2.0)]
    grace: f64,
    /// Re-wrap at most this many secrets, then stop without finishing (spreads the work; run
    /// again to go on).
    #[arg(long)]
    limit: Option<usize>,
}

fn report(p: &Progress) {
    eprintln!(
        "re-wrapped {} materials, {} access keys, {} stored secrets ({} already under the new root)",
        p.materials, p.access_keys, p.settings, p.already
    );
}

/// Runs a root command; `Ok` holds the text to print.
///
/// # Errors
/// A readable message.
pub async fn run(command: &RootCommand) -> Result<String, String> {
    let RootCommand::Rotate(args) = command;
    let config = crate::config_of(args.common.clone())?;
    let store = kms_server::bootstrap::open_store(&config).await.map_err(|e| e.to_string())?;
    let opener = Opener::new(&config);
    let next = match &config.root_key_provider {
        kms_server::config::RootKeySource::File => NextRoot::File,
        kms_server::config::RootKeySource::Passphrase(_) => NextRoot::Passphrase(crate::read_secret(
            args.new_root_passphrase_file.as_deref(),
            "--new-root-passphrase-file",
            "FERROKMS_NEW_ROOT_PASSPHRASE",
            "new passphrase for the root key",
        )?),
        kms_server::config::RootKeySource::Pkcs11 { .. } => NextRoot::Pkcs11(args.new_pkcs11_key_label.clone()),
    };
    if root_rotation::complete_switched(store.as_ref(), &opener).await? {
        return Ok("the rotation killed after switching the root record is now finished".to_owned());
    }
    let old = root_rotation::current_root(&config, store.as_ref(), &SystemRng).await?;
    let next = root_rotation::announce(store.as_ref(), old.as_ref(), &opener, next, &SystemRng).await?;
    let now = || kms_server::clock::SystemClock.now();
    let audit = |name: &str, details: serde_json::Value| {
        std::sync::Arc::from([root_rotation::audit_event(&SystemRng, now(), name, details)])
    };
    store
        .append_audit(audit("StartRootKeyRotation", serde_json::json!({"nextRootKey": next.describe()})))
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("new root key {} announced; waiting {}s for the servers to take it", next.describe(), args.grace);
    let grace = Duration::from_secs_f64(args.grace.max(0.0));
    tokio::time::sleep(grace).await;
    let mut total = Progress::default();
    // Passes until one finds nothing under the old root (a server that took the new root late
    // may have wrapped a secret with the old one meanwhile).
    for pass in 1..=5 {
        let left = args.limit.map(|l| l.saturating_sub(total.rewrapped()));
        let p = root_rotation::rewrap(store.as_ref(), old.as_ref(), next.as_ref(), left, &mut report).await?;
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
            root_rotation::finish(store.as_ref(), &opener).await?;
            let details = serde_json::json!({"materials": total.materials, "accessKeys": total.access_keys,
                "storedSecrets": total.settings, "rootKey": next.describe()});
            store.append_audit(audit("RotateRootKey", details)).await.map_err(|e| e.to_string())?;
            let kept = match &opener {
                Opener::File(root) => format!("the old key is {}", root_rotation::previous_path(root).display()),
                Opener::Passphrase => "give every node the new passphrase at its next start".to_owned(),
                Opener::Pkcs11 { location, .. } => {
                    format!("the old HSM key '{}' stays in the token until you destroy it", location.key_label)
                }
            };
            return Ok(format!(
                "root key rotated to {}: {} materials, {} access keys and {} stored secrets re-wrapped; {kept}",
                next.describe(),
                total.materials,
                total.access_keys,
                total.settings,
            ));
        }
        tokio::time::sleep(grace).await;
    }
    Err("secrets kept appearing under the old root key; is a server not taking the new one? Run again.".to_owned())
}
