//! The side-by-side comparison: ferrokms on SQLite, the bare-hyper ceiling and moto_server,
//! started here as child processes on loopback, each driven by the same load generator with
//! the same operations, connection counts and durations; then the 1,024-connection run and the
//! large-keyring run (seeded data directory: start-up time and resident memory under load).

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::load::{self, Endpoint, Operation, Report, Shape, Workload};

/// The servers a comparison can include.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// ferrokms on SQLite (release build recommended).
    Ferrokms,
    /// The bare-hyper fixed-200 server.
    Hyper,
    /// moto_server from PyPI.
    Moto,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Ferrokms => "ferrokms",
            Server::Hyper => "bare hyper",
            Server::Moto => "moto_server",
        }
    }
}

/// What to compare.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `ferrokms` binary.
    pub ferrokms: PathBuf,
    /// The moto_server command.
    pub moto: String,
    /// Servers to include.
    pub servers: Vec<Server>,
    /// Operations to run.
    pub operations: Vec<Operation>,
    /// Connections for the main runs.
    pub connections: usize,
    /// Connections for the high-concurrency run (0: skip).
    pub high_connections: usize,
    /// Measured seconds per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Keys for the large-keyring run (0: skip).
    pub large_keyring: usize,
    /// Where to write the Markdown report.
    pub markdown: Option<PathBuf>,
    /// The commit measured.
    pub commit: Option<String>,
    /// Exit with failure when ferrokms or the ceiling answered any request with an error.
    pub fail_on_errors: bool,
    /// Turns per operation (each server runs once per turn; its runs are added up).
    pub rounds: usize,
}

/// A child process killed when dropped.
pub(crate) struct Process {
    child: Child,
    started: std::time::Instant,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Spawns `command`, returns it with the first address printed on a stdout line containing
/// `marker` and the time until that line.
fn spawn_with_address(mut command: Command, marker: &'static str) -> Result<(Process, SocketAddr, Duration), String> {
    #[allow(clippy::disallowed_methods)] // start-up time is wall time
    let started = std::time::Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let process = Process { child, started };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.contains(marker) {
                let addr = line.rsplit(['/', ' ']).next().and_then(|a| a.parse::<SocketAddr>().ok());
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(addr)) => {
            let elapsed = process.started.elapsed();
            Ok((process, addr, elapsed))
        }
        _ => Err(format!("{command:?} did not print its address")),
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// The key quota every ferrokms the benchmark starts runs with. AWS's default, 100,000 keys per
/// account and Region, is what an account gets until it asks for more; the CreateKey runs alone
/// create more than that on a fast machine (about 6,000 keys/s for 18 s with the warm-ups), so
/// the benchmark account has the quota raised, as an AWS account would have it raised on
/// request.
pub const BENCH_KEY_QUOTA: &str = "keys=10000000";

pub(crate) fn start_ferrokms(binary: &Path, data_dir: &Path) -> Result<(Process, SocketAddr, Duration), String> {
    start_ferrokms_on(binary, data_dir, None)
}

/// [`start_ferrokms`] on the PostgreSQL database at `store`, if given, instead of SQLite.
pub(crate) fn start_ferrokms_on(
    binary: &Path,
    data_dir: &Path,
    store: Option<&str>,
) -> Result<(Process, SocketAddr, Duration), String> {
    start_ferrokms_with(binary, data_dir, store, &[])
}

/// [`start_ferrokms_on`] with `extra` arguments for `serve`.
pub(crate) fn start_ferrokms_with(
    binary: &Path,
    data_dir: &Path,
    store: Option<&str>,
    extra: &[String],
) -> Result<(Process, SocketAddr, Duration), String> {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--resource-quota", BENCH_KEY_QUOTA, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "warn");
    if let Some(url) = store {
        command.args(["--store", url]);
    }
    spawn_with_address(command, "listening on")
}

fn start_ceiling() -> Result<(Process, SocketAddr, Duration), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["ceiling", "--listen", "127.0.0.1:0"]);
    spawn_with_address(command, "listening on")
}

async fn start_moto(command_line: &str) -> Result<(Process, SocketAddr), String> {
    let port = free_port()?;
    let mut words = command_line.split_whitespace();
    let program = words.next().ok_or("empty moto command")?;
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let child = Command::new(program)
        .args(words)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {command_line}: {e} (pip install 'moto[server]')"))?;
    let process = Process { child, started };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((process, addr));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{command_line} did not start listening on {addr}"))
}

/// The admin access key a fresh ferrokms data directory holds.
///
/// # Errors
/// When the file is missing or malformed.
pub fn admin_credentials(data_dir: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(data_dir.join("admin-credentials")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .ok_or_else(|| format!("admin-credentials has no {name}"))
    };
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?))
}

/// ferrokms's audit backlog (`ferrokms_audit_backlog` at `/metrics`), if it answers.
async fn audit_backlog(addr: SocketAddr) -> Option<u64> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n").await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("ferrokms_audit_backlog ")).and_then(|v| v.trim().parse().ok())
}

/// Waits (up to a minute) until ferrokms has written every queued audit event, so that each
/// run starts from a quiet server and pays for its own audit records only.
pub(crate) async fn settle(addr: SocketAddr) {
    for _ in 0..600 {
        if audit_backlog(addr).await.is_none_or(|b| b == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident set size of a process, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time a process has used (user + system) in `/proc` clock ticks (USER_HZ: 100 per second
/// on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime from the text of `/proc/PID/stat`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from after its end.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15; the first field after the name is field 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// Microseconds in one `/proc` clock tick.
pub(crate) const MICROS_PER_TICK: f64 = 10_000.0;

/// Samples a process's RSS every 100 ms until dropped; keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    p.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self { peak, stop }
    }

    fn peak_mib(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let mib = self.peak.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
        mib
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One measured row.
pub(crate) struct Row {
    pub(crate) operation: String,
    pub(crate) server: Server,
    pub(crate) connections: usize,
    pub(crate) report: Report,
    pub(crate) rss_mib: Option<f64>,
    /// The server's CPU time during the measured window(s), in `/proc` ticks.
    pub(crate) cpu_ticks: Option<u64>,
    /// The load generator's (this process's) CPU time during the same window(s).
    pub(crate) load_cpu_ticks: Option<u64>,
}

impl Row {
    /// Adds another run of the same case: requests, errors and time add up, latencies merge,
    /// the peak RSS is the higher one.
    pub(crate) fn add(&mut self, other: Row) {
        self.report.add(other.report);
        self.cpu_ticks = self.cpu_ticks.zip(other.cpu_ticks).map(|(a, b)| a + b);
        self.load_cpu_ticks = self.load_cpu_ticks.zip(other.load_cpu_ticks).map(|(a, b)| a + b);
        self.rss_mib = match (self.rss_mib, other.rss_mib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

pub(crate) struct Running {
    pub(crate) server: Server,
    pub(crate) endpoint: Endpoint,
    pub(crate) process: Process,
}

/// One measured run against a running server (ferrokms first drains its audit queue, so the run
/// pays for its own records), printed as it ends.
pub(crate) async fn measure(r: &Running, label: &str, workload: &Workload, shape: Shape) -> Row {
    if r.server == Server::Ferrokms {
        settle(r.endpoint.addr).await;
    }
    // The server's CPU time is read when the warm-up ends and again after the run, so that it
    // covers the measured window alone, while the connections stay open from the warm-up into
    // the measurement (a warm-up run of its own made the measured run open its connections
    // afresh, and at 1,024 connections their handshakes showed in the tail).
    // The load generator's own CPU time alongside: it shares the machine, and what it spends
    // per request differs by server (it waits longer for a slower one, and parks more).
    let pid = r.process.pid();
    let me = std::process::id();
    let warmup = shape.warmup;
    let at_measure_start = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        (cpu_ticks(pid), cpu_ticks(me))
    });
    let sampler = RssSampler::start(pid);
    let report = load::run(&r.endpoint, workload, shape).await;
    let after = (cpu_ticks(pid), cpu_ticks(me));
    let before = at_measure_start.await.unwrap_or((None, None));
    let spent = |b: Option<u64>, a: Option<u64>| b.zip(a).map(|(b, a)| a.saturating_sub(b));
    let (cpu, load_cpu) = (spent(before.0, after.0), spent(before.1, after.1));
    eprintln!("{:<16} {:<12} {:>5} conns {}", label, r.server.label(), shape.connections, report.line());
    if let Some(e) = &report.first_error {
        eprintln!("    first error: {}", e.chars().take(300).collect::<String>());
    }
    Row {
        operation: label.into(),
        server: r.server,
        connections: shape.connections,
        rss_mib: Some(sampler.peak_mib()),
        cpu_ticks: cpu,
        load_cpu_ticks: load_cpu,
        report,
    }
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| format!(", {} GiB RAM", kb / (1024 * 1024)));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| String::new(), |k| format!(", Linux {}", k.trim()));
    format!("{cores} cores ({cpu}){memory}{kernel}")
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}", a / b) } else { "-".into() }
}

/// Runs the comparison and prints (and optionally writes) the report.
///
/// # Errors
/// When a server cannot be started or set up; with `fail_on_errors`, when a request failed.
#[allow(clippy::too_many_lines)]
pub async fn compare(options: Options) -> Result<(), String> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut running: Vec<Running> = Vec::new();
    for server in &options.servers {
        let (process, endpoint) = match server {
            Server::Ferrokms => {
                let dir = data.path().join("ferrokms");
                let (process, addr, _) = start_ferrokms(&options.ferrokms, &dir)?;
                let (id, secret) = admin_credentials(&dir)?;
                (process, Endpoint { addr, access_key_id: id, secret, region: "us-east-1".into() })
            }
            Server::Hyper => {
                let (process, addr, _) = start_ceiling()?;
                (
                    process,
                    Endpoint {
                        addr,
                        access_key_id: "AKIDBENCH".into(),
                        secret: "x".into(),
                        region: "us-east-1".into(),
                    },
                )
            }
            Server::Moto => {
                let (process, addr) = start_moto(&options.moto).await?;
                (
                    process,
                    Endpoint {
                        addr,
                        access_key_id: "testing".into(),
                        secret: "testing".into(),
                        region: "us-east-1".into(),
                    },
                )
            }
        };
        eprintln!("started {} on {}", server.label(), endpoint.addr);
        running.push(Running { server: *server, endpoint, process });
    }
    let shape = Shape {
        connections: options.connections,
        duration: options.duration,
        warmup: options.warmup,
        timeout: Duration::from_secs(10),
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut idle_round = false;
    for &operation in &options.operations {
        // The ceiling needs a request of the same size: take ferrokms's workload when present.
        let mut reference: Option<Workload> = None;
        let mut workloads = Vec::with_capacity(running.len());
        for r in &running {
            let workload = match r.server {
                Server::Hyper => reference.clone().unwrap_or_else(|| Workload {
                    operation,
                    key_ids: Arc::new(vec!["00000000-0000-0000-0000-000000000000".into()]),
                    ciphertext: Some("A".repeat(200)),
                }),
                _ => load::prepare(&r.endpoint, operation, Vec::new())
                    .await
                    .map_err(|e| format!("{} set-up for {}: {e}", r.server.label(), operation.label()))?,
            };
            if r.server == Server::Ferrokms {
                reference = Some(workload.clone());
            }
            workloads.push(workload);
        }
        let mut totals: Vec<Option<Row>> = running.iter().map(|_| None).collect();
        for _ in 0..options.rounds {
            for ((r, workload), total) in running.iter().zip(&workloads).zip(&mut totals) {
                let row = measure(r, operation.label(), workload, shape).await;
                // A round that completed nothing is a failure even when the others did not.
                idle_round |= r.server != Server::Moto && row.report.ok == 0;
                match total {
                    Some(sum) => sum.add(row),
                    None => *total = Some(row),
                }
            }
        }
        rows.extend(totals.into_iter().flatten());
    }
    if options.high_connections > 0 {
        let high = Shape { connections: options.high_connections, ..shape };
        let mut reference: Option<Workload> = None;
        for r in running.iter().filter(|r| r.server != Server::Moto) {
            let workload = match (r.server, &reference) {
                (Server::Hyper, Some(w)) => w.clone(),
                _ => load::prepare(&r.endpoint, Operation::Encrypt32, Vec::new()).await.map_err(|e| e.to_string())?,
            };
            reference.get_or_insert_with(|| workload.clone());
            rows.push(measure(r, Operation::Encrypt32.label(), &workload, high).await);
        }
    }
    drop(running);

    let mut keyring = None;
    if options.large_keyring > 0 && options.servers.contains(&Server::Ferrokms) {
        keyring = Some(large_keyring(&options, data.path(), shape).await?);
    }

    let text = render(&options, &rows, keyring.as_ref());
    println!("{text}");
    if let Some(path) = &options.markdown {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let failed: u64 = rows.iter().filter(|r| r.server != Server::Moto).map(|r| r.report.errors).sum::<u64>()
        + keyring.as_ref().map_or(0, |k| k.report.errors);
    let idle: bool = idle_round || rows.iter().any(|r| r.server != Server::Moto && r.report.ok == 0);
    if options.fail_on_errors && (failed > 0 || idle) {
        return Err(format!("{failed} requests failed (or a run completed no request)"));
    }
    Ok(())
}

struct Keyring {
    keys: usize,
    seed_seconds: f64,
    startup: Duration,
    idle_rss_mib: f64,
    report: Report,
    rss_mib: f64,
}

async fn large_keyring(options: &Options, base: &Path, shape: Shape) -> Result<Keyring, String> {
    let dir = base.join("keyring");
    #[allow(clippy::disallowed_methods)]
    let seeding = std::time::Instant::now();
    let ids = crate::seed::seed(&dir, options.large_keyring, "us-east-1").await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    eprintln!("seeded {} keys in {seed_seconds:.1} s", ids.len());
    let (process, addr, startup) = start_ferrokms(&options.ferrokms, &dir)?;
    let idle_rss_mib = rss_bytes(process.pid()).map_or(0.0, |b| {
        #[allow(clippy::cast_precision_loss)]
        let mib = b as f64 / (1024.0 * 1024.0);
        mib
    });
    let (id, secret) = admin_credentials(&dir)?;
    let endpoint = Endpoint { addr, access_key_id: id, secret, region: "us-east-1".into() };
    let workload = load::prepare(&endpoint, Operation::Encrypt32, ids).await.map_err(|e| e.to_string())?;
    let sampler = RssSampler::start(process.pid());
    let report = load::run(&endpoint, &workload, shape).await;
    eprintln!(
        "{:<16} {:<12} {:>5} conns {} (keys in turn: {})",
        "Encrypt 32 B",
        "ferrokms",
        shape.connections,
        report.line(),
        options.large_keyring
    );
    Ok(Keyring {
        keys: options.large_keyring,
        seed_seconds,
        startup,
        idle_rss_mib,
        report,
        rss_mib: sampler.peak_mib(),
    })
}

#[allow(clippy::disallowed_methods)] // the report's date is wall time
pub(crate) fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute())
}

fn render(options: &Options, rows: &[Row], keyring: Option<&Keyring>) -> String {
    let mut out = String::new();
    let commit = options.commit.clone().unwrap_or_else(|| "unknown".into());
    out.push_str(&format!(
        "## Side by side: ferrokms, bare hyper, moto_server — {}\n\n\
         `bench/compare.sh` (commit {commit}). Machine: {}. Load generator `ferrokms-bench` on the same machine: \
         SigV4-signed requests over keep-alive HTTP/1.1, one task per connection, {} s warm-up then {} s measured per \
         run{}. ferrokms on SQLite with the default key policy and audit on, its key quota raised \
         from AWS's default 100,000 to 10,000,000 (the CreateKey runs create more); the key is created through the API before \
         each run. Server CPU µs/req: the server process's user + system time over the measured runs \
         (`/proc/PID/stat`) divided by the requests answered, the figure the machine's drift moves least; load \
         generator CPU µs/req: the same for the load generator's own process, which shares the two cores.\n\n",
        today(),
        machine(),
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
        if options.rounds > 1 {
            format!(
                "; {} rounds per operation, the servers taking turns (one run each per round) and each row adding up \
                 its server's runs (the 1,024-connection rows are one run each)",
                options.rounds
            )
        } else {
            String::new()
        }
    ));
    out.push_str(
        "| operation | server | conns | req/s | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | peak RSS MiB | server CPU µs/req | load generator CPU µs/req |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let requests = r.report.ok + r.report.errors;
        #[allow(clippy::cast_precision_loss)] // tick and request counts are far below 2^52
        let per_request =
            |ticks: Option<u64>| ticks.filter(|_| requests > 0).map(|t| t as f64 * MICROS_PER_TICK / requests as f64);
        let micros = |ticks: Option<u64>| per_request(ticks).map_or_else(|| "-".into(), |c| format!("{c:.1}"));
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            r.operation,
            r.server.label(),
            r.connections,
            r.report.rate(),
            r.report.errors,
            r.report.quantile_ms(0.5),
            r.report.quantile_ms(0.9),
            r.report.quantile_ms(0.99),
            r.report.quantile_ms(0.999),
            r.rss_mib.map_or_else(|| "-".into(), |m| format!("{m:.0}")),
            micros(r.cpu_ticks),
            micros(r.load_cpu_ticks)
        ));
    }
    out.push_str("\n| operation | conns | ferrokms / bare hyper | ferrokms / moto_server |\n|---|---:|---:|---:|\n");
    let rate = |op: &str, server: Server, conns: usize| {
        rows.iter()
            .find(|r| r.operation == op && r.server == server && r.connections == conns)
            .map_or(0.0, |r| r.report.rate())
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    for r in rows {
        let key = (r.operation.clone(), r.connections);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let ferro = rate(&r.operation, Server::Ferrokms, r.connections);
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.operation,
            r.connections,
            ratio(ferro, rate(&r.operation, Server::Hyper, r.connections)),
            ratio(ferro, rate(&r.operation, Server::Moto, r.connections))
        ));
    }
    let encrypt = rate("Encrypt 32 B", Server::Ferrokms, options.connections);
    if encrypt > 0.0 {
        // The operations run minutes apart, and the machine's speed drifts in between (the
        // ceiling alone has moved by a fifth within one run). Each operation's own ceiling rows
        // were measured in the same rounds, so dividing by them takes the drift out.
        let ceiling_encrypt = rate("Encrypt 32 B", Server::Hyper, options.connections);
        out.push_str(
            "\n| ferrokms operation | relative to Encrypt 32 B | the same, each against its own rounds' ceiling |\n\
             |---|---:|---:|\n",
        );
        for op in ["Decrypt", "GenerateDataKey", "DescribeKey"] {
            let r = rate(op, Server::Ferrokms, options.connections);
            if r > 0.0 {
                let ceiling = rate(op, Server::Hyper, options.connections);
                let corrected = if ceiling > 0.0 && ceiling_encrypt > 0.0 {
                    ratio(r / ceiling, encrypt / ceiling_encrypt)
                } else {
                    "-".into()
                };
                out.push_str(&format!("| {op} | {} | {corrected} |\n", ratio(r, encrypt)));
            }
        }
    }
    if let Some(k) = keyring {
        out.push_str(&format!(
            "\n**{} keys** (seeded through the store in {:.1} s): start-up to listening {:.2} s, RSS idle after start \
             {:.0} MiB; Encrypt 32 B over all keys in turn at {} connections: {:.0} req/s, {} errors, p99 {:.2} ms, \
             p99.9 {:.2} ms, peak RSS {:.0} MiB (key cache bounded at its default capacity).\n",
            k.keys,
            k.seed_seconds,
            k.startup.as_secs_f64(),
            k.idle_rss_mib,
            options.connections,
            k.report.rate(),
            k.report.errors,
            k.report.quantile_ms(0.99),
            k.report.quantile_ms(0.999),
            k.rss_mib
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(operation: &str, server: Server, ok: u64) -> Row {
        let mut report = Report {
            ok,
            errors: 0,
            timeouts: 0,
            first_error: None,
            seconds: 1.0,
            latency: hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).unwrap(),
        };
        report.latency.record(1_000).unwrap();
        Row {
            operation: operation.into(),
            server,
            connections: 64,
            report,
            rss_mib: None,
            cpu_ticks: None,
            load_cpu_ticks: None,
        }
    }

    /// Decrypt at half Encrypt's rate while the machine ran at half speed (the ceiling halved
    /// too) is, corrected for that, as fast as Encrypt.
    #[test]
    fn relative_rates_are_also_given_against_each_operations_ceiling() {
        let options = Options {
            ferrokms: PathBuf::new(),
            moto: String::new(),
            servers: vec![Server::Ferrokms, Server::Hyper],
            operations: Vec::new(),
            connections: 64,
            high_connections: 0,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            large_keyring: 0,
            markdown: None,
            commit: None,
            fail_on_errors: false,
            rounds: 1,
        };
        let rows = [
            row("Encrypt 32 B", Server::Ferrokms, 40_000),
            row("Encrypt 32 B", Server::Hyper, 80_000),
            row("Decrypt", Server::Ferrokms, 20_000),
            row("Decrypt", Server::Hyper, 40_000),
        ];
        let text = render(&options, &rows, None);
        assert!(text.contains("| Decrypt | 0.50 | 1.00 |"), "{text}");

        // Two runs of a case add up their CPU: the server's and the load generator's, each per
        // request answered (a tick is 10,000 µs).
        let mut encrypt = row("Encrypt 32 B", Server::Ferrokms, 1_000);
        encrypt.cpu_ticks = Some(30);
        encrypt.load_cpu_ticks = Some(10);
        let mut again = row("Encrypt 32 B", Server::Ferrokms, 1_000);
        again.cpu_ticks = Some(70);
        again.load_cpu_ticks = Some(50);
        encrypt.add(again);
        let text = render(&options, &[encrypt], None);
        assert!(text.contains("| 500.0 | 300.0 |"), "{text}");
    }

    /// utime and stime are read after the command name, whatever characters it holds.
    #[test]
    fn cpu_ticks_from_proc_stat() {
        let stat = "4242 (serve (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0\n";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("4242 (truncated) S 1"), None);
        // This process: readable, and it grows with work (a busy loop, for at most 10 s).
        let before = cpu_ticks(std::process::id()).unwrap();
        let mut x = 0_u64;
        #[allow(clippy::disallowed_methods)] // a bound on a busy loop, not domain time
        let started = std::time::Instant::now();
        while cpu_ticks(std::process::id()).unwrap() == before && started.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
        assert!(cpu_ticks(std::process::id()).unwrap() > before);
    }
}
