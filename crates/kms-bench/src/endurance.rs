//! `endurance`: Encrypt load for a long time (30 minutes by default) against one or two
//! ferrokms nodes on SQLite or PostgreSQL, optionally with CloudTrail delivery on, to show that
//! the service does not slow down as its audit trail grows (issue #27).
//!
//! The run is cut into windows (a minute by default). Each window reports the rate, the p99
//! latency and the CPU the server side used per request: the ferrokms processes and, on
//! PostgreSQL, every `postgres` process on the machine (so run it on an otherwise quiet
//! database server). CPU per request is the steadier figure on a shared machine: a build
//! running beside the benchmark lowers the rate but not the work each request costs. The end
//! compares the first five minutes with the last five.

use std::hash::{BuildHasher as _, RandomState};
use std::path::PathBuf;
use std::time::Duration;

use crate::compare::{self, Process};
use crate::load::{self, Endpoint, Operation, Report, Shape};

/// Where the nodes keep their state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// SQLite in a temporary data directory (one node).
    Sqlite,
    /// A fresh PostgreSQL database (one or more nodes).
    Postgres,
}

/// What to run.
pub struct Options {
    /// The ferrokms binary.
    pub ferrokms: PathBuf,
    /// The store.
    pub store: StoreKind,
    /// A PostgreSQL URL whose user may create and drop databases.
    pub postgres_url: String,
    /// Nodes (PostgreSQL only; SQLite is one node).
    pub nodes: usize,
    /// Total measured time.
    pub total: Duration,
    /// One window.
    pub window: Duration,
    /// Connections in all (split across the nodes).
    pub connections: usize,
    /// CloudTrail delivery to a local directory on every node.
    pub delivery: bool,
    /// Also write the Markdown report here.
    pub markdown: Option<PathBuf>,
}

/// One window's outcome.
struct Window {
    report: Report,
    /// Server-side CPU seconds in the window.
    cpu: f64,
}

impl Window {
    #[allow(clippy::cast_precision_loss)]
    fn cpu_us_per_request(&self) -> f64 {
        self.cpu * 1e6 / (self.report.ok.max(1) as f64)
    }
}

/// CPU clock ticks (1/100 s) of every process named `postgres`.
fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .filter_map(compare::cpu_ticks)
        .sum()
}

fn server_ticks(nodes: &[(Process, Endpoint)], postgres: bool) -> u64 {
    let own: u64 = nodes.iter().filter_map(|(p, _)| compare::cpu_ticks(p.pid())).sum();
    own + if postgres { postgres_ticks() } else { 0 }
}

/// Runs the measurement and prints a line per window, then a Markdown report.
///
/// # Errors
/// When the database, the servers or the load cannot be set up.
pub async fn run(options: Options) -> Result<(), String> {
    match options.store {
        StoreKind::Sqlite => measure(&options, None).await,
        StoreKind::Postgres => {
            let admin = crate::audit_size::connect(&options.postgres_url).await?;
            let name = format!("ferrokms_bench_endurance_{:016x}", RandomState::new().hash_one(std::process::id()));
            admin.batch_execute(&format!("CREATE DATABASE {name}")).await.map_err(|e| e.to_string())?;
            let url = crate::audit_size::with_database(&options.postgres_url, &name);
            let outcome = measure(&options, Some(&url)).await;
            if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await {
                eprintln!("could not drop {name}: {e}");
            }
            outcome
        }
    }
}

async fn measure(options: &Options, url: Option<&str>) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let count = if url.is_some() { options.nodes.max(1) } else { 1 };
    let mut nodes: Vec<(Process, Endpoint)> = Vec::new();
    for n in 0..count {
        let data = dir.path().join(format!("node{n}"));
        if n > 0 {
            // Every node of a cluster needs the same root key.
            std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
            std::fs::copy(dir.path().join("node0").join("root.key"), data.join("root.key"))
                .map_err(|e| e.to_string())?;
        }
        let mut extra = Vec::new();
        if options.delivery {
            let trail = dir.path().join(format!("trail{n}"));
            extra.extend(["--cloudtrail-dir".to_owned(), trail.display().to_string()]);
            extra.extend(["--cloudtrail-interval".to_owned(), "60".to_owned()]);
        }
        let (process, addr, _) = compare::start_ferrokms_with(&options.ferrokms, &data, url, &extra)?;
        let (access_key_id, secret) = compare::admin_credentials(&dir.path().join("node0"))?;
        nodes.push((process, Endpoint { addr, access_key_id, secret, region: "us-east-1".into() }));
    }
    let first = &nodes.first().ok_or("no node")?.1;
    let workload = load::prepare(first, Operation::Encrypt32, Vec::new()).await.map_err(|e| e.to_string())?;
    let per_node = (options.connections / count).max(1);
    let shape = Shape {
        connections: per_node,
        duration: options.window,
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(10),
    };
    let windows = (options.total.as_secs_f64() / options.window.as_secs_f64()).ceil().max(1.0) as usize;
    let postgres = url.is_some();
    let mut results: Vec<Window> = Vec::new();
    let mut requests = 0u64;
    for w in 1..=windows {
        let before = server_ticks(&nodes, postgres);
        let runs: Vec<_> = nodes
            .iter()
            .map(|(_, endpoint)| {
                let (endpoint, workload) = (endpoint.clone(), workload.clone());
                tokio::spawn(async move { load::run(&endpoint, &workload, shape).await })
            })
            .collect();
        let mut reports = Vec::new();
        for run in runs {
            reports.push(run.await.map_err(|e| e.to_string())?);
        }
        let mut reports = reports.into_iter();
        let mut report = reports.next().ok_or("no report")?;
        for other in reports {
            // Concurrent runs over the same window: add the requests, keep one window's time.
            let seconds = report.seconds;
            report.add(other);
            report.seconds = seconds;
        }
        #[allow(clippy::cast_precision_loss)]
        let cpu = server_ticks(&nodes, postgres).saturating_sub(before) as f64 / 100.0;
        requests += report.ok;
        let window = Window { report, cpu };
        println!(
            "window {w:>3}: {:>7.0} req/s  p99 {:>7.3} ms  server CPU {:>6.1} µs/request  errors {}  requests so far {requests}",
            window.report.rate(),
            window.report.quantile_ms(0.99),
            window.cpu_us_per_request(),
            window.report.errors,
        );
        results.push(window);
    }
    drop(nodes);
    let span = (Duration::from_secs(300).as_secs_f64() / options.window.as_secs_f64()).round().max(1.0) as usize;
    let span = span.min(results.len());
    let average = |ws: &[Window]| {
        #[allow(clippy::cast_precision_loss)]
        let n = ws.len().max(1) as f64;
        (
            ws.iter().map(|w| w.report.rate()).sum::<f64>() / n,
            ws.iter().map(Window::cpu_us_per_request).sum::<f64>() / n,
        )
    };
    let (first_rate, first_cpu) = average(results.get(..span).unwrap_or_default());
    let (last_rate, last_cpu) = average(results.get(results.len() - span..).unwrap_or_default());
    let store = match options.store {
        StoreKind::Sqlite => "SQLite".to_owned(),
        StoreKind::Postgres => format!("PostgreSQL, {count} node{}", if count > 1 { "s" } else { "" }),
    };
    let mut text = format!(
        "## Endurance: Encrypt for {:.0} minutes on {store}{} — {}\n\nMachine: {}. {} connections, {:.0} s windows, {requests} requests (each an audit record).\n\n\
         | window | req/s | p99 ms | server CPU µs/request |\n|---:|---:|---:|---:|\n",
        options.total.as_secs_f64() / 60.0,
        if options.delivery { ", CloudTrail delivery on" } else { "" },
        compare::today(),
        compare::machine(),
        options.connections,
        options.window.as_secs_f64(),
    );
    for (i, w) in results.iter().enumerate() {
        text.push_str(&format!(
            "| {} | {:.0} | {:.3} | {:.1} |\n",
            i + 1,
            w.report.rate(),
            w.report.quantile_ms(0.99),
            w.cpu_us_per_request()
        ));
    }
    let ratio = |last: f64, first: f64| if first > 0.0 { last / first } else { 0.0 };
    text.push_str(&format!(
        "\nFirst {span} windows: {first_rate:.0} req/s, {first_cpu:.1} µs CPU/request. Last {span}: {last_rate:.0} req/s ({:.2}×), {last_cpu:.1} µs CPU/request ({:.2}×).\n",
        ratio(last_rate, first_rate),
        ratio(last_cpu, first_cpu),
    ));
    println!("\n{text}");
    if let Some(path) = &options.markdown {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
