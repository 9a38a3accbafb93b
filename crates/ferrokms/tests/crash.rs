//! Crash consistency: a stream of CreateKey, Encrypt, PutKeyPolicy, RotateKeyOnDemand and
//! CreateAlias requests from several tasks, the server SIGKILLed at a random moment, restarted on
//! the same data directory, and every acknowledged change checked: the key exists, its policy is
//! the last one acknowledged, its rotations and aliases are there, and every acknowledged
//! ciphertext decrypts. Repeated for `FERROKMS_CRASH_KILLS` kills (default 12); the seed is
//! printed and can be replayed with `FERROKMS_CRASH_SEED`. The audit chain is verified at the end.
//!
//! A request in flight at the kill may or may not have happened; the checks accept both for that
//! request only (a rotation may have been counted once more, a policy may be the pending one).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::disallowed_methods,
    missing_docs
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kms::primitives::Blob;

use support::{SeededRng, audit_verify, client, credentials, env_number, serve};

const WORKERS: usize = 4;
const MAX_ROTATIONS: u32 = 6;
/// Stands for "still the default policy" among a key's possible policies.
const DEFAULT_POLICY: &str = "(default)";

#[derive(Default)]
struct KeyState {
    worker: usize,
    /// The policies the key may have: the last acknowledged one and any sent after it whose
    /// answer was lost to a kill. Empty: never changed (the default policy).
    policies: Vec<String>,
    rotations: u32,
    maybe_rotations: u32,
    aliases: Vec<String>,
}

struct Sealed {
    ciphertext: Vec<u8>,
    plaintext: String,
    context: String,
}

#[derive(Default)]
struct Ledger {
    keys: BTreeMap<String, KeyState>,
    sealed: Vec<Sealed>,
    /// Keys changed and ciphertexts made since the last restart (checked at each restart).
    touched: BTreeSet<String>,
    sealed_checked: usize,
    acknowledged: u64,
    /// Failures while the server was meant to be up: each one fails the test.
    unexpected: Vec<String>,
}

fn policy(account: &str, worker: usize, n: u64) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Id":"crash-{worker}-{n}","Statement":[{{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

/// One task's stream of requests, until the kill.
async fn worker(
    id: usize,
    kms: aws_sdk_kms::Client,
    ledger: Arc<Mutex<Ledger>>,
    killing: Arc<AtomicBool>,
    account: String,
    mut rng: SeededRng,
) {
    let mut n = 0u64;
    while !killing.load(Ordering::SeqCst) {
        n += 1;
        let mine: Vec<(String, u32)> = {
            let l = ledger.lock().unwrap();
            l.keys
                .iter()
                .filter(|(_, k)| k.worker == id)
                .map(|(id, k)| (id.clone(), k.rotations + k.maybe_rotations))
                .collect()
        };
        let choice = if mine.is_empty() { 0 } else { rng.below(10) };
        let (key, rotations) = mine.get(rng.below(mine.len().max(1) as u64) as usize).cloned().unwrap_or_default();
        let outcome: Result<(), String> = match choice {
            0 | 1 => match kms.create_key().description(format!("crash {id}-{n}")).send().await {
                Ok(out) => {
                    let key_id = out.key_metadata.unwrap().key_id;
                    let mut l = ledger.lock().unwrap();
                    l.keys.insert(key_id.clone(), KeyState { worker: id, ..KeyState::default() });
                    l.touched.insert(key_id);
                    Ok(())
                }
                Err(e) => Err(format!("CreateKey: {e:?}")),
            },
            6 => {
                let text = policy(&account, id, n);
                {
                    let mut l = ledger.lock().unwrap();
                    let k = l.keys.get_mut(&key).unwrap();
                    if k.policies.is_empty() {
                        k.policies.push(DEFAULT_POLICY.to_owned());
                    }
                    k.policies.push(text.clone());
                }
                match kms.put_key_policy().key_id(&key).policy_name("default").policy(&text).send().await {
                    Ok(_) => {
                        let mut l = ledger.lock().unwrap();
                        l.keys.get_mut(&key).unwrap().policies = vec![text];
                        l.touched.insert(key.clone());
                        Ok(())
                    }
                    Err(e) => Err(format!("PutKeyPolicy: {e:?}")),
                }
            }
            7 if rotations < MAX_ROTATIONS => {
                ledger.lock().unwrap().keys.get_mut(&key).unwrap().maybe_rotations += 1;
                match kms.rotate_key_on_demand().key_id(&key).send().await {
                    Ok(_) => {
                        let mut l = ledger.lock().unwrap();
                        let k = l.keys.get_mut(&key).unwrap();
                        k.maybe_rotations -= 1;
                        k.rotations += 1;
                        l.touched.insert(key.clone());
                        Ok(())
                    }
                    Err(e) => Err(format!("RotateKeyOnDemand: {e:?}")),
                }
            }
            8 => {
                // Unique across rounds too (n restarts with each round).
                let alias = format!("alias/crash-{id}-{n}-{:016x}", rng.next_u64());
                match kms.create_alias().alias_name(&alias).target_key_id(&key).send().await {
                    Ok(_) => {
                        let mut l = ledger.lock().unwrap();
                        l.keys.get_mut(&key).unwrap().aliases.push(alias);
                        l.touched.insert(key.clone());
                        Ok(())
                    }
                    Err(e) => Err(format!("CreateAlias: {e:?}")),
                }
            }
            _ => {
                let plaintext = format!("plaintext {id}-{n}-{}", rng.next_u64());
                let context = format!("ctx-{}", rng.below(1000));
                let sent = kms
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(plaintext.clone()))
                    .encryption_context("purpose", &context)
                    .send()
                    .await;
                match sent {
                    Ok(out) => {
                        let ciphertext = out.ciphertext_blob.unwrap().into_inner();
                        ledger.lock().unwrap().sealed.push(Sealed { ciphertext, plaintext, context });
                        Ok(())
                    }
                    Err(e) => Err(format!("Encrypt: {e:?}")),
                }
            }
        };
        let mut l = ledger.lock().unwrap();
        match outcome {
            Ok(()) => l.acknowledged += 1,
            Err(e) => {
                // After the kill began, failures are the point; before it, a bug.
                if !killing.load(Ordering::SeqCst) {
                    l.unexpected.push(e);
                }
                return;
            }
        }
    }
}

/// Checks the listed keys and the ciphertexts from `sealed_from` on: returns the number of
/// ciphertexts decrypted.
async fn check(kms: &aws_sdk_kms::Client, ledger: &Arc<Mutex<Ledger>>, keys: &[String], sealed_from: usize) -> usize {
    for key_id in keys {
        let (policies, rotations, maybe, aliases) = {
            let l = ledger.lock().unwrap();
            let k = &l.keys[key_id];
            (k.policies.clone(), k.rotations, k.maybe_rotations, k.aliases.clone())
        };
        let described = kms.describe_key().key_id(key_id).send().await;
        assert!(described.is_ok(), "acknowledged key {key_id} is gone: {described:?}");
        if !policies.is_empty() && !policies.iter().any(|p| p == DEFAULT_POLICY) {
            let text = kms.get_key_policy().key_id(key_id).policy_name("default").send().await.unwrap().policy.unwrap();
            // Only the last acknowledged policy (first entry) or one sent after it.
            assert!(policies.contains(&text), "key {key_id}: policy {text} is not the acknowledged one {policies:?}");
        }
        let listed = kms.list_key_rotations().key_id(key_id).limit(1000).send().await.unwrap();
        let count = u32::try_from(listed.rotations().len()).unwrap();
        assert!(
            (rotations..=rotations + maybe).contains(&count),
            "key {key_id}: {count} rotations, {rotations} acknowledged (+{maybe} unanswered)"
        );
        if !aliases.is_empty() {
            let listed = kms.list_aliases().key_id(key_id).limit(100).send().await.unwrap();
            let names: BTreeSet<&str> = listed.aliases().iter().filter_map(|a| a.alias_name()).collect();
            for alias in &aliases {
                assert!(names.contains(alias.as_str()), "key {key_id}: acknowledged alias {alias} is gone");
            }
        }
    }
    let sealed: Vec<(Vec<u8>, String, String)> = {
        let l = ledger.lock().unwrap();
        l.sealed
            .iter()
            .skip(sealed_from)
            .map(|s| (s.ciphertext.clone(), s.plaintext.clone(), s.context.clone()))
            .collect()
    };
    for (ciphertext, plaintext, context) in &sealed {
        let out = kms
            .decrypt()
            .ciphertext_blob(Blob::new(ciphertext.clone()))
            .encryption_context("purpose", context)
            .send()
            .await;
        let out = out.unwrap_or_else(|e| panic!("an acknowledged ciphertext does not decrypt: {e:?}"));
        assert_eq!(out.plaintext.unwrap().as_ref(), plaintext.as_bytes());
    }
    sealed.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let kills = env_number("FERROKMS_CRASH_KILLS", 12);
    #[allow(clippy::cast_possible_truncation)] // any 64 bits make a seed
    let seed = env_number(
        "FERROKMS_CRASH_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    );
    println!("crash test: seed {seed} (replay with FERROKMS_CRASH_SEED={seed}), {kills} kills");
    let mut rng = SeededRng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    let mut server = serve(&data);
    let creds = credentials(&data);
    let account = {
        let kms = client(&server.addr, &creds);
        kms.create_key().send().await.unwrap().key_metadata.unwrap().aws_account_id.unwrap()
    };
    let mut decrypted = 0;
    for round in 0..kills {
        let killing = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..WORKERS)
            .map(|id| {
                tokio::spawn(worker(
                    id,
                    client(&server.addr, &creds),
                    Arc::clone(&ledger),
                    Arc::clone(&killing),
                    account.clone(),
                    SeededRng::new(rng.next_u64()),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(700))).await;
        killing.store(true, Ordering::SeqCst);
        server.kill();
        for task in tasks {
            task.await.unwrap();
        }
        {
            let l = ledger.lock().unwrap();
            assert!(l.unexpected.is_empty(), "round {round}: requests failed before the kill: {:?}", l.unexpected);
        }

        server = serve(&data);
        let kms = client(&server.addr, &creds);
        let (touched, from) = {
            let mut l = ledger.lock().unwrap();
            let touched: Vec<String> = std::mem::take(&mut l.touched).into_iter().collect();
            (touched, l.sealed_checked)
        };
        decrypted += check(&kms, &ledger, &touched, from).await;
        let mut l = ledger.lock().unwrap();
        l.sealed_checked = l.sealed.len();
    }

    // After the last restart, everything once more.
    let kms = client(&server.addr, &creds);
    let all: Vec<String> = ledger.lock().unwrap().keys.keys().cloned().collect();
    decrypted += check(&kms, &ledger, &all, 0).await;
    server.stop();
    let (ok, out) = audit_verify(&data);
    assert!(ok, "the audit chain does not verify after {kills} kills: {out}");

    let l = ledger.lock().unwrap();
    println!(
        "crash test: seed {seed}: {kills} SIGKILLs survived; {} requests acknowledged, 0 failed while the server was \
         up; {} keys, {} ciphertexts, {} rotations, {} aliases acknowledged and found after restarts; {decrypted} \
         decryptions checked; audit chain intact",
        l.acknowledged,
        l.keys.len(),
        l.sealed.len(),
        l.keys.values().map(|k| k.rotations).sum::<u32>(),
        l.keys.values().map(|k| k.aliases.len()).sum::<usize>(),
    );
}
