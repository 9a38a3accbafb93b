//! PostgreSQL failover as operators run it: a primary with a synchronous streaming standby, two
//! ferrokms nodes on a multi-host URL (`host1,host2/db?target_session_attrs=read-write`), a
//! steady CreateKey + Encrypt load through the AWS SDK, the primary's postmaster SIGKILLed, the
//! standby promoted with `pg_ctl promote`, and the nodes left running.
//!
//! Checked afterwards: both nodes serve writes again within [`RECOVERY_BOUND`] of the promotion
//! without a restart (the outage each node saw is printed); every request during the outage
//! failed with a clean `KMSInternalException` (HTTP 500) within [`REQUEST_BOUND`], never a hang
//! or a dropped connection; every acknowledged key exists and every acknowledged ciphertext
//! decrypts; every acknowledged request has its audit record and the chain verifies; the
//! scheduler has exactly one leader on the new primary; and the change feed works again (a key
//! disabled through one node is refused by the other, whose cache TTL is ten minutes).
//!
//! The test starts its own two PostgreSQL servers from the binaries in
//! `/usr/lib/postgresql/15/bin` (or `FERROKMS_TEST_POSTGRES_BIN`) in a temporary directory, as the
//! `postgres` OS user when run as root (initdb and postgres refuse root). Without those binaries
//! it prints `SKIPPED: …` and passes, unless `FERROKMS_REQUIRE_POSTGRES` is set.

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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;

/// The longest any single request may take, outage or not: past it, the request hung.
const REQUEST_BOUND: Duration = Duration::from_secs(10);
/// How long after `pg_ctl promote` returns both nodes must serve writes again.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);
/// How long the primary stays dead before the standby is promoted (the time a failover manager
/// or an operator takes to decide).
const DECISION_TIME: Duration = Duration::from_millis(1000);
/// Load workers, alternating between the two nodes.
const WORKERS: usize = 4;

const BINARIES: [&str; 5] = ["initdb", "pg_ctl", "pg_basebackup", "postgres", "psql"];

/// The PostgreSQL binaries, or `None` (after printing why) when they are absent and the test may
/// skip.
fn postgres_binaries() -> Option<PathBuf> {
    let dir = std::env::var_os("FERROKMS_TEST_POSTGRES_BIN")
        .map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from);
    let missing: Vec<&str> = BINARIES.into_iter().filter(|b| !dir.join(b).is_file()).collect();
    if missing.is_empty() {
        return Some(dir);
    }
    let why = format!("PostgreSQL binaries {missing:?} not found in {}", dir.display());
    assert!(std::env::var_os("FERROKMS_REQUIRE_POSTGRES").is_none(), "PostgreSQL required: {why}");
    println!("SKIPPED: {why}");
    None
}

/// A TCP port on 127.0.0.1 that was free when asked (another process could take it before
/// PostgreSQL binds it; a race the test accepts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One PostgreSQL server: its data directory, port and log.
struct Instance {
    data: PathBuf,
    port: u16,
    log: PathBuf,
    /// Whether it may still be running (and so must be stopped at the end).
    running: bool,
    /// The System V shared memory segment a SIGKILLed postmaster leaves behind (its id).
    orphaned_segment: Option<String>,
}

/// A primary and its synchronous streaming standby in one temporary directory; both are stopped
/// and the directory removed when this is dropped, also when the test fails.
struct Cluster {
    bin: PathBuf,
    /// Root runs the binaries through `runuser -u postgres`.
    as_postgres: bool,
    primary: Instance,
    standby: Instance,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A PostgreSQL command, run as `postgres` when this process is root, in the cluster's
    /// directory (a working directory the `postgres` user may enter).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.current_dir(self.dir.path());
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs one SQL statement on the server at `port` and returns its unaligned output, or the
    /// error.
    fn sql(&self, port: u16, database: &str, sql: &str) -> Result<String, String> {
        let port = port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", database, "-XAtq", "-c", sql])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Creates the primary and the standby and waits until the standby is the primary's
    /// synchronous standby.
    fn start(bin: PathBuf) -> Self {
        let as_postgres = rustix::process::geteuid().is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let chown = Command::new("chown").arg("postgres:").arg(dir.path()).status().unwrap();
            assert!(chown.success(), "chown postgres: {}", dir.path().display());
        }
        let instance = |name: &str| Instance {
            data: dir.path().join(name),
            port: free_port(),
            log: dir.path().join(format!("{name}.log")),
            running: false,
            orphaned_segment: None,
        };
        let (primary, standby) = (instance("primary"), instance("standby"));
        let mut cluster = Self { bin, as_postgres, primary, standby, dir };
        let socket_dir = cluster.dir.path().display().to_string();

        let primary_data = cluster.primary.data.display().to_string();
        cluster
            .run("initdb", &["-D", &primary_data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "-N"]);
        // Commits wait until the standby has the WAL ('*': whichever standby is connected).
        // fsync is off because only processes are killed here, never the machine: written pages
        // survive in the page cache, and the test does not wait for the disk.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{socket_dir}'\n\
             wal_level = replica\nmax_wal_senders = 4\nmax_replication_slots = 4\nhot_standby = on\n\
             synchronous_standby_names = '*'\nsynchronous_commit = on\nfsync = off\n\
             shared_buffers = 16MB\nmax_connections = 80\n",
            cluster.primary.port
        );
        append(&cluster.primary.data.join("postgresql.conf"), &settings);
        append(&cluster.primary.data.join("pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n");
        let primary_log = cluster.primary.log.display().to_string();
        cluster.primary.running = true;
        cluster.run("pg_ctl", &["-D", &primary_data, "-l", &primary_log, "-w", "-t", "30", "start"]);

        // The standby: a base backup streaming from a replication slot, with standby.signal and
        // primary_conninfo written by -R.
        let standby_data = cluster.standby.data.display().to_string();
        let primary_port = cluster.primary.port.to_string();
        let source = ["-h", "127.0.0.1", "-p", &primary_port, "-U", "postgres"];
        let how = ["-R", "-X", "stream", "-C", "-S", "ferrokms_standby", "-c", "fast"];
        cluster.run("pg_basebackup", &[&source[..], &["-D", &standby_data], &how[..]].concat());
        // Once promoted it has no standby of its own: with the primary's '*' every commit there
        // would wait forever for one.
        append(
            &cluster.standby.data.join("postgresql.auto.conf"),
            &format!("port = {}\nsynchronous_standby_names = ''\n", cluster.standby.port),
        );
        let standby_log = cluster.standby.log.display().to_string();
        cluster.standby.running = true;
        cluster.run("pg_ctl", &["-D", &standby_data, "-l", &standby_log, "-w", "-t", "30", "start"]);

        let synchronous = poll(Duration::from_secs(15), || {
            cluster
                .sql(cluster.primary.port, "postgres", "SELECT sync_state FROM pg_stat_replication")
                .is_ok_and(|s| s == "sync")
        });
        assert!(synchronous, "the standby did not become synchronous");
        cluster.sql(cluster.primary.port, "postgres", "CREATE DATABASE ferrokms").unwrap();
        cluster
    }

    /// The multi-host URL the nodes use: whichever of the two servers accepts writes.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/ferrokms?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// SIGKILLs the primary's postmaster (its backends notice and exit on their own).
    fn kill_primary(&mut self) {
        // postmaster.pid: the pid on line 1, "shared-memory-key shmid" on line 7.
        let pid_file = std::fs::read_to_string(self.primary.data.join("postmaster.pid")).unwrap();
        let lines: Vec<&str> = pid_file.lines().collect();
        let pid: i32 = lines[0].trim().parse().unwrap();
        self.primary.orphaned_segment = lines.get(6).and_then(|l| l.split_whitespace().nth(1)).map(str::to_owned);
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), rustix::process::Signal::KILL)
            .unwrap();
        // A SIGKILLed postmaster leaves its pid file: `pg_ctl stop` would wait on it in vain.
        self.primary.running = false;
    }

    fn promote_standby(&self) {
        let data = self.standby.data.display().to_string();
        self.run("pg_ctl", &["-D", &data, "-w", "-t", "30", "promote"]);
    }

    /// The last lines of a server's log, for a failure report.
    fn log_tail(instance: &Instance) -> String {
        let text = std::fs::read_to_string(&instance.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            println!("primary log:\n{}", Self::log_tail(&self.primary));
            println!("standby log:\n{}", Self::log_tail(&self.standby));
        }
        for instance in [&self.primary, &self.standby] {
            if instance.running {
                let data = instance.data.display().to_string();
                let _ =
                    self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "-t", "20", "stop"]).output();
            }
        }
        // Only a clean stop removes it; it would otherwise outlive the test (56 bytes).
        if let Some(id) = &self.primary.orphaned_segment {
            let _ = Command::new("ipcrm").args(["-m", id]).output();
        }
        // The temporary directory goes with `self.dir`.
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// Polls `done` every 100 ms until it holds or `bound` has passed; returns whether it held.
fn poll(bound: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs blocking work (a PostgreSQL command) off the runtime's worker threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    CreateKey,
    Encrypt,
}

/// One request and what came of it; times are from the start of the load.
#[derive(Debug)]
struct Attempt {
    node: usize,
    operation: Operation,
    started: Duration,
    finished: Duration,
    /// `Ok` or the clean failure's code; unclean failures are in [`Ledger::unclean`].
    outcome: Result<(), String>,
}

#[derive(Default)]
struct Ledger {
    attempts: Vec<Attempt>,
    /// Acknowledged keys.
    keys: Vec<String>,
    /// Acknowledged ciphertexts with their plaintexts.
    sealed: Vec<(Blob, String)>,
    /// Request ids of acknowledged requests (each must have its audit record).
    request_ids: Vec<String>,
    /// Requests that hung or did not end in an AWS error.
    unclean: Vec<String>,
}

/// What a request's result means for the ledger: its output, or the failure's code when it was
/// a clean AWS error (`KMSInternalException`, 500); anything else is recorded as unclean. (A
/// request whose credential could not be loaded during the outage was once counted as a failed
/// authentication: past its source's burst of 20, `ThrottlingException` and no audit record.)
fn classify<T: RequestId, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>, tokio::time::error::Elapsed>,
    unclean: &mut Vec<String>,
    what: &str,
) -> Result<T, String> {
    match result {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(SdkError::ServiceError(e))) => {
            let (code, status) = (e.err().code().unwrap_or_default().to_owned(), e.raw().status().as_u16());
            if code != "KMSInternalException" || status != 500 {
                unclean.push(format!("{what}: {code} ({status}): {:?}", e.err().message()));
            }
            Err(code)
        }
        Ok(Err(other)) => {
            unclean.push(format!("{what}: not an AWS error: {other:?}"));
            Err("unclean".into())
        }
        Err(_) => {
            unclean.push(format!("{what}: no answer within {REQUEST_BOUND:?}"));
            Err("hung".into())
        }
    }
}

/// Times one request and records what came of it.
async fn attempt<T: RequestId, E: ProvideErrorMetadata + std::fmt::Debug>(
    ledger: &Mutex<Ledger>,
    node: usize,
    operation: Operation,
    epoch: Instant,
    request: impl Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
) -> Result<T, String> {
    let started = epoch.elapsed();
    let result = tokio::time::timeout(REQUEST_BOUND, request).await;
    let finished = epoch.elapsed();
    let mut l = ledger.lock().unwrap();
    let result = classify(result, &mut l.unclean, &format!("{operation:?} on node {node}"));
    let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
    l.attempts.push(Attempt { node, operation, started, finished, outcome });
    if let Ok(output) = &result {
        l.request_ids.push(output.request_id().unwrap().to_owned());
    }
    result
}

/// CreateKey then Encrypt under the new key, again and again, until `stop`. A client backs off
/// a little after a server error, as the SDKs' retry policies do.
async fn load(
    worker: usize,
    node: usize,
    kms: aws_sdk_kms::Client,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let back_off = || tokio::time::sleep(Duration::from_millis(50));
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let Ok(created) = attempt(&ledger, node, Operation::CreateKey, epoch, kms.create_key().send()).await else {
            back_off().await;
            continue;
        };
        let key = created.key_metadata.unwrap().key_id;
        ledger.lock().unwrap().keys.push(key.clone());
        let plaintext = format!("worker {worker} round {round}");
        let encrypt = kms.encrypt().key_id(&key).plaintext(Blob::new(plaintext.clone())).send();
        match attempt(&ledger, node, Operation::Encrypt, epoch, encrypt).await {
            Ok(sealed) => ledger.lock().unwrap().sealed.push((sealed.ciphertext_blob.unwrap(), plaintext)),
            Err(_) => back_off().await,
        }
    }
}

/// The outage `node` saw: when its first request failed after `killed`, and when the first write
/// (CreateKey, which always reaches the database) it was asked after that was acknowledged.
fn outage(ledger: &Ledger, node: usize, killed: Duration) -> (Option<Duration>, Option<Duration>) {
    let mine = || ledger.attempts.iter().filter(move |a| a.node == node);
    let failed = mine().filter(|a| a.outcome.is_err() && a.finished >= killed).map(|a| a.finished).min();
    let recovered = failed.and_then(|failed| {
        mine()
            .filter(|a| a.operation == Operation::CreateKey && a.outcome.is_ok() && a.started >= failed)
            .map(|a| a.finished)
            .min()
    });
    (failed, recovered)
}

/// `to - from` in milliseconds, negative if `to` came first.
fn millis(from: Duration, to: Duration) -> i128 {
    i128::try_from(to.as_millis()).unwrap() - i128::try_from(from.as_millis()).unwrap()
}

/// The advisory lock of the scheduler's leadership as `pg_locks` shows it: (classid, objid) of
/// the first 8 bytes of SHA-256("ferrokms-role:scheduler"), as the PostgreSQL store takes it.
fn scheduler_lock() -> (u32, u32) {
    let digest = kms_crypto::digest::sha256(b"ferrokms-role:scheduler");
    let key = u64::from_be_bytes(digest[..8].try_into().unwrap());
    ((key >> 32) as u32, key as u32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_a_promoted_standby() {
    let Some(bin) = postgres_binaries() else { return };
    let cluster = Arc::new(Mutex::new(blocking(move || Cluster::start(bin)).await));
    let url = cluster.lock().unwrap().url();

    // Two nodes on the multi-host URL, sharing a root key; caches trusted for ten minutes, so
    // that only the change feed can explain a node hearing of the other's change.
    let dir = tempfile::tempdir().unwrap();
    let node_config = |name: &str| {
        let mut cfg = kms_server::ServerConfig::new(dir.path().join(name));
        cfg.listen = "127.0.0.1:0".parse().unwrap();
        cfg.store_url = Some(url.clone());
        cfg.root_key_file = Some(dir.path().join("root.key"));
        cfg.scheduler_interval_millis = 200;
        cfg.key_cache_ttl_millis = 600_000;
        cfg
    };
    let a = kms_server::start(node_config("a")).await.unwrap();
    let admin = a.new_admin.as_ref().unwrap();
    let creds =
        (admin.access_key_id.clone(), String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap());
    let b = kms_server::start(node_config("b")).await.unwrap();
    let (primary_port, standby_port) = {
        let c = cluster.lock().unwrap();
        (c.primary.port, c.standby.port)
    };
    assert_eq!(a.store_description, format!("postgres://127.0.0.1:{primary_port},127.0.0.1:{standby_port}/ferrokms"));
    let kms = [support::client(&a.local_addr.to_string(), &creds), support::client(&b.local_addr.to_string(), &creds)];

    let (classid, objid) = scheduler_lock();
    let leaders_sql = format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = {classid} \
         AND objid = {objid} AND objsubid = 1"
    );
    let feeds_sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'",
        kms_store::FEED_APPLICATION_NAME
    );
    let (c, sql) = (Arc::clone(&cluster), leaders_sql.clone());
    let led = blocking(move || {
        poll(Duration::from_secs(5), || c.lock().unwrap().sql(primary_port, "ferrokms", &sql).is_ok_and(|n| n == "1"))
    })
    .await;
    assert!(led, "one node leads the scheduler before the failover");

    // The load, then the failover under it.
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let node = w % 2;
            tokio::spawn(load(w, node, kms[node].clone(), epoch, Arc::clone(&stop), Arc::clone(&ledger)))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = ledger.lock().unwrap().keys.len();
    assert!(before > 0, "the load runs before the failover");

    let killed = epoch.elapsed();
    cluster.lock().unwrap().kill_primary();
    tokio::time::sleep(DECISION_TIME).await;
    let c = Arc::clone(&cluster);
    let promoting = epoch.elapsed();
    blocking(move || c.lock().unwrap().promote_standby()).await;
    let promoted = epoch.elapsed();

    // Both nodes write again, without a restart, within the bound.
    let deadline = Instant::now() + RECOVERY_BOUND;
    loop {
        let recovered = {
            let l = ledger.lock().unwrap();
            (0..2).all(|node| outage(&l, node, killed).1.is_some())
        };
        if recovered || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // More load on the new primary, then stop.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();

    // What each node saw.
    for node in 0..2 {
        let failed_requests: Vec<&Attempt> =
            ledger.attempts.iter().filter(|a| a.node == node && a.outcome.is_err()).collect();
        let failures = failed_requests.len();
        let slowest = failed_requests.iter().map(|a| a.finished - a.started).max().unwrap_or_default();
        let (Some(failed), Some(recovered)) = outage(&ledger, node, killed) else {
            panic!("node {node} did not write again within {RECOVERY_BOUND:?} of the promotion ({failures} failures)")
        };
        println!(
            "node {node}: an outage of {} ms: requests failed from {} ms after the kill; a write succeeded again \
             {} ms after `pg_ctl promote` started (it returned after {} ms); {failures} requests failed, the \
             slowest in {} ms",
            millis(failed, recovered),
            millis(killed, failed),
            millis(promoting, recovered),
            millis(promoting, promoted),
            slowest.as_millis(),
        );
        // Nothing could take a write between the kill and the promotion.
        assert!(recovered > promoting, "node {node} wrote with no primary");
        assert!(recovered.saturating_sub(promoted) < RECOVERY_BOUND);
        // Recovered for good: nothing it was asked afterwards failed.
        let late: Vec<_> =
            ledger.attempts.iter().filter(|a| a.node == node && a.started > recovered && a.outcome.is_err()).collect();
        assert!(late.is_empty(), "node {node} failed again after recovering: {late:?}");
    }
    assert!(ledger.unclean.is_empty(), "requests that did not fail cleanly: {:#?}", ledger.unclean);
    println!(
        "{} keys and {} ciphertexts acknowledged ({} before the kill); {} requests in all",
        ledger.keys.len(),
        ledger.sealed.len(),
        before,
        ledger.attempts.len()
    );

    // Every acknowledged key exists and every acknowledged ciphertext decrypts, on both nodes.
    for (i, key) in ledger.keys.iter().enumerate() {
        let described = kms[i % 2].describe_key().key_id(key).send().await.unwrap();
        assert_eq!(described.key_metadata.unwrap().key_state, Some(KeyState::Enabled), "{key}");
    }
    for (i, (ciphertext, plaintext)) in ledger.sealed.iter().enumerate() {
        let back = kms[(i + 1) % 2].decrypt().ciphertext_blob(ciphertext.clone()).send().await.unwrap();
        assert_eq!(back.plaintext.unwrap().as_ref(), plaintext.as_bytes());
    }

    // One scheduler leader on the new primary; both change feeds listen there, and a change made
    // through one node reaches the other.
    let c = Arc::clone(&cluster);
    let (led, listening) = blocking(move || {
        let c = c.lock().unwrap();
        let led =
            poll(Duration::from_secs(5), || c.sql(standby_port, "ferrokms", &leaders_sql).is_ok_and(|n| n == "1"));
        let listening =
            poll(Duration::from_secs(5), || c.sql(standby_port, "ferrokms", &feeds_sql).is_ok_and(|n| n == "2"));
        (led, listening)
    })
    .await;
    assert!(led, "exactly one node leads the scheduler on the new primary");
    assert!(listening, "both nodes' change feeds listen on the new primary");
    let key = &ledger.keys[0];
    kms[1].encrypt().key_id(key).plaintext(Blob::new("cached")).send().await.unwrap();
    kms[0].disable_key().key_id(key).send().await.unwrap();
    let heard = Instant::now();
    loop {
        let refused = kms[1].encrypt().key_id(key).plaintext(Blob::new("late")).send().await;
        match refused {
            Err(e) if e.code() == Some("DisabledException") => break,
            Ok(_) if heard.elapsed() < Duration::from_secs(2) => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("node 1 did not hear that node 0 disabled {key}: {other:?}"),
        }
    }

    // Every acknowledged request has its audit record (those still queued when the primary died
    // are written once the writer's retries reach the new primary), and the chain verifies.
    let store = kms_store::PostgresStore::connect(&url).await.unwrap();
    let wanted: BTreeSet<&str> = ledger.request_ids.iter().map(String::as_str).collect();
    let audit_deadline = Instant::now() + Duration::from_secs(15);
    let missing = loop {
        let mut recorded = BTreeSet::new();
        let mut after = 0;
        loop {
            let rows = kms_store::Store::audit_after(&store, after, 5000).await.unwrap();
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for row in &rows {
                let record: serde_json::Value = serde_json::from_str(&row.record).unwrap();
                if let Some(id) = record["requestID"].as_str() {
                    recorded.insert(id.to_owned());
                }
            }
        }
        let missing: Vec<&str> = wanted.iter().copied().filter(|id| !recorded.contains(*id)).collect();
        if missing.is_empty() || Instant::now() > audit_deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(missing.is_empty(), "{} acknowledged requests have no audit record: {missing:?}", missing.len());
    let report = kms_store::audit::verify_store(&store, None).await.unwrap();
    println!("audit chain intact: {} records", report.records);

    a.shutdown().await;
    b.shutdown().await;
}
