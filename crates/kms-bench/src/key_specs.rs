//! `key-specs`: the asymmetric and HMAC operations side by side with Encrypt, against one
//! ferrokms (release build, SQLite) started here, in one run:
//!
//! - GenerateMac and VerifyMac (HMAC_256) request rates next to Encrypt's;
//! - Sign with ECC_NIST_P256, ED25519 and ML_DSA_44: the server's CPU per request minus the
//!   primitive's own cost (`KeyHandle::sign` timed in this process), next to Encrypt's (minus
//!   `KeyHandle::encrypt`'s): what the request path adds around the primitive;
//! - Sign with RSA_2048: the request rate against the primitive's rate in-process on as many
//!   threads as the machine has cores;
//! - Encrypt's p99 while CreateKey RSA_4096 runs in a loop on other connections, against its
//!   p99 alone (turn by turn, in the same rounds).
//!
//! It measures and reports; it asserts nothing about timing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kms_core::context::EncryptionContext;
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use kms_crypto::{KeyHandle, SystemRng};

use crate::compare::{self, MICROS_PER_TICK, Row, Running, Server};
use crate::load::{self, Endpoint, Operation, Report, Shape, Workload};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `ferrokms` binary.
    pub ferrokms: PathBuf,
    /// Connections of the rate runs and of the Encrypt side of the contention run.
    pub connections: usize,
    /// Connections running CreateKey RSA_4096 in the contention run.
    pub create_connections: usize,
    /// Measured seconds per run.
    pub duration: Duration,
    /// Warm-up per run.
    pub warmup: Duration,
    /// Rounds: every operation runs once per round, in turn.
    pub rounds: usize,
    /// Where to write the Markdown report.
    pub markdown: Option<PathBuf>,
    /// The commit measured.
    pub commit: Option<String>,
}

/// The operations of the rate runs, Encrypt first (the reference).
const RATE_OPERATIONS: [Operation; 7] = [
    Operation::Encrypt32,
    Operation::GenerateMac,
    Operation::VerifyMac,
    Operation::SignP256,
    Operation::SignEd25519,
    Operation::SignMlDsa44,
    Operation::SignRsa2048,
];

const MESSAGE: [u8; 32] = [0x5a; 32];

/// An operation's primitive, set up in this process, called as the server calls it.
struct Primitive {
    key: KeyHandle,
    call: fn(&KeyHandle) -> bool,
}

fn spec_of(operation: Operation) -> Option<(KeySpec, Option<SigningAlgorithm>)> {
    match operation {
        Operation::Encrypt32 => Some((KeySpec::SymmetricDefault, None)),
        Operation::GenerateMac | Operation::VerifyMac => Some((KeySpec::Hmac256, None)),
        Operation::SignP256 => Some((KeySpec::EccNistP256, Some(SigningAlgorithm::EcdsaSha256))),
        Operation::SignEd25519 => Some((KeySpec::EccNistEdwards25519, Some(SigningAlgorithm::Ed25519Sha512))),
        Operation::SignMlDsa44 => Some((KeySpec::MlDsa44, Some(SigningAlgorithm::MlDsaShake256))),
        Operation::SignRsa2048 => Some((KeySpec::Rsa2048, Some(SigningAlgorithm::RsassaPkcs1V15Sha256))),
        _ => None,
    }
}

fn primitive(operation: Operation) -> Result<Primitive, String> {
    let (spec, _) = spec_of(operation).ok_or("no primitive")?;
    let (key, _) = KeyHandle::generate(spec, KeyId::from_bytes([3; 16]), MaterialId::from_bytes([4; 32]), &SystemRng)
        .map_err(|e| format!("{spec:?}: {e}"))?;
    let call: fn(&KeyHandle) -> bool = match operation {
        Operation::Encrypt32 => |k| k.encrypt(&SystemRng, &EncryptionContext::empty(), &MESSAGE).is_ok(),
        Operation::GenerateMac => |k| k.generate_mac(MacAlgorithm::HmacSha256, &MESSAGE).is_ok(),
        Operation::VerifyMac => |k| {
            // Generating is what verifying costs (HMAC, then a constant-time comparison).
            k.generate_mac(MacAlgorithm::HmacSha256, &MESSAGE).is_ok()
        },
        Operation::SignP256 => |k| k.sign(SigningAlgorithm::EcdsaSha256, MessageType::Raw, &MESSAGE).is_ok(),
        Operation::SignEd25519 => |k| k.sign(SigningAlgorithm::Ed25519Sha512, MessageType::Raw, &MESSAGE).is_ok(),
        Operation::SignMlDsa44 => |k| k.sign(SigningAlgorithm::MlDsaShake256, MessageType::Raw, &MESSAGE).is_ok(),
        Operation::SignRsa2048 => {
            |k| k.sign(SigningAlgorithm::RsassaPkcs1V15Sha256, MessageType::Raw, &MESSAGE).is_ok()
        }
        _ => return Err(format!("{} has no primitive here", operation.label())),
    };
    if !call(&key) {
        return Err(format!("{}: the primitive fails", operation.label()));
    }
    Ok(Primitive { key, call })
}

/// CPU microseconds per call of the primitive on one thread, over `duration` (this process's
/// CPU time, so that other load on the machine does not count; nothing else runs in it then).
fn primitive_cpu_micros(primitive: &Primitive, duration: Duration) -> Option<f64> {
    let me = std::process::id();
    let before = compare::cpu_ticks(me)?;
    #[allow(clippy::disallowed_methods)] // a bound on a timing loop, not domain time
    let started = std::time::Instant::now();
    let mut calls = 0_u64;
    while started.elapsed() < duration {
        for _ in 0..16 {
            std::hint::black_box((primitive.call)(std::hint::black_box(&primitive.key)));
        }
        calls += 16;
    }
    let ticks = compare::cpu_ticks(me)?.saturating_sub(before);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let micros = ticks as f64 * MICROS_PER_TICK / calls.max(1) as f64;
    Some(micros)
}

/// Calls per second of the primitive on `threads` threads at once for `duration`.
fn primitive_rate(primitive: &Arc<Primitive>, threads: usize, duration: Duration) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (p, total, stop) = (Arc::clone(primitive), Arc::clone(&total), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box((p.call)(&p.key));
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = total.load(Ordering::Relaxed) as f64 / seconds.max(1e-9);
    rate
}

/// One operation's runs, added up, with each round's rate kept (the spread is the noise).
struct Measured {
    operation: Operation,
    total: Option<Row>,
    round_rates: Vec<f64>,
    primitive_micros: Option<f64>,
    /// Wall microseconds per call per core with the primitive on every core at once (the
    /// server runs with every core busy, where a call costs more than on an idle machine).
    primitive_busy_micros: Option<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.total.as_ref().map_or(0.0, |r| r.report.rate())
    }

    fn server_cpu_micros(&self) -> Option<f64> {
        let row = self.total.as_ref()?;
        let requests = row.report.ok + row.report.errors;
        #[allow(clippy::cast_precision_loss)]
        let micros = row.cpu_ticks.filter(|_| requests > 0).map(|t| t as f64 * MICROS_PER_TICK / requests as f64);
        micros
    }

    fn spread(&self) -> String {
        let min = self.round_rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.round_rates.iter().copied().fold(0.0, f64::max);
        if self.round_rates.is_empty() { "-".into() } else { format!("{min:.0}–{max:.0}") }
    }
}

/// Encrypt's p99 alone and with CreateKey RSA_4096 alongside, added up over the rounds.
struct Contention {
    alone: Option<Report>,
    contended: Option<Report>,
    creates: Option<Report>,
    round_ratios: Vec<f64>,
}

fn add(total: &mut Option<Report>, report: Report) {
    match total {
        Some(t) => t.add(report),
        None => *total = Some(report),
    }
}

/// Runs the key-spec benchmark and prints (and optionally writes) the report.
///
/// # Errors
/// When ferrokms cannot be started or set up, or a primitive fails in-process.
pub async fn run(options: Options) -> Result<(), String> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = data.path().join("ferrokms");
    let (process, addr, _) = compare::start_ferrokms(&options.ferrokms, &dir)?;
    let (id, secret) = compare::admin_credentials(&dir)?;
    let endpoint = Endpoint { addr, access_key_id: id, secret, region: "us-east-1".into() };
    eprintln!("started ferrokms on {addr}");
    let running = Running { server: Server::Ferrokms, endpoint: endpoint.clone(), process };
    let shape = Shape {
        connections: options.connections.max(1),
        duration: options.duration,
        warmup: options.warmup,
        timeout: Duration::from_secs(30),
    };

    let mut measured = Vec::new();
    let mut workloads: Vec<Workload> = Vec::new();
    for operation in RATE_OPERATIONS {
        let workload = load::prepare(&endpoint, operation, Vec::new())
            .await
            .map_err(|e| format!("set-up for {}: {e}", operation.label()))?;
        workloads.push(workload);
        measured.push(Measured {
            operation,
            total: None,
            round_rates: Vec::new(),
            primitive_micros: None,
            primitive_busy_micros: None,
        });
    }
    let encrypt = workloads.first().cloned().ok_or("no Encrypt workload")?;
    let creates = load::prepare(&endpoint, Operation::CreateKeyRsa4096, Vec::new())
        .await
        .map_err(|e| format!("set-up for CreateKey RSA_4096: {e}"))?;
    let create_shape = Shape { connections: options.create_connections.max(1), ..shape };
    let mut contention = Contention { alone: None, contended: None, creates: None, round_ratios: Vec::new() };
    // The RSA primitive's rate is measured in every round, right after the server's RSA run, so
    // that the machine's drift between rounds falls on both sides of the ratio alike.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let rsa = Arc::new(primitive(Operation::SignRsa2048)?);
    let mut rsa_rates: Vec<(f64, f64)> = Vec::new();

    for round in 0..options.rounds {
        eprintln!("round {} of {}", round + 1, options.rounds);
        for (m, workload) in measured.iter_mut().zip(&workloads) {
            let row = compare::measure(&running, m.operation.label(), workload, shape).await;
            m.round_rates.push(row.report.rate());
            if m.operation == Operation::SignRsa2048 {
                let (p, d) = (Arc::clone(&rsa), options.duration);
                let alone = tokio::task::spawn_blocking(move || primitive_rate(&p, cores, d)).await.unwrap_or(0.0);
                eprintln!("{:<28} {cores} threads {alone:>10.0} signatures/s", "RSA_2048 primitive");
                rsa_rates.push((row.report.rate(), alone));
            }
            match &mut m.total {
                Some(t) => t.add(row),
                None => m.total = Some(row),
            }
        }
        // Encrypt alone, then Encrypt with CreateKey RSA_4096 looping on other connections.
        compare::settle(addr).await;
        let alone = load::run(&endpoint, &encrypt, shape).await;
        compare::settle(addr).await;
        let (contended, made) =
            tokio::join!(load::run(&endpoint, &encrypt, shape), load::run(&endpoint, &creates, create_shape));
        eprintln!("{:<28} {:>5} conns {}", "Encrypt 32 B alone", shape.connections, alone.line());
        eprintln!("{:<28} {:>5} conns {}", "Encrypt 32 B + RSA_4096 keygen", shape.connections, contended.line());
        eprintln!("{:<28} {:>5} conns {}", "CreateKey RSA_4096", create_shape.connections, made.line());
        let (a, c) = (alone.quantile_ms(0.99), contended.quantile_ms(0.99));
        if a > 0.0 {
            contention.round_ratios.push(c / a);
        }
        add(&mut contention.alone, alone);
        add(&mut contention.contended, contended);
        add(&mut contention.creates, made);
    }
    drop(running);

    // The primitives in this process, with the server stopped (nothing else of ours running).
    let primitive_duration = options.duration.max(Duration::from_secs(1));
    for m in &mut measured {
        let p = primitive(m.operation)?;
        m.primitive_micros = primitive_cpu_micros(&p, primitive_duration);
        let rate = primitive_rate(&Arc::new(p), cores, primitive_duration);
        #[allow(clippy::cast_precision_loss)] // a handful of cores
        let per_core = cores as f64 * 1e6;
        m.primitive_busy_micros = (rate > 0.0).then(|| per_core / rate);
    }
    let text = render(&options, &measured, &contention, &rsa_rates, cores);
    println!("{text}");
    if let Some(path) = &options.markdown {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let failed: u64 = measured.iter().filter_map(|m| m.total.as_ref()).map(|r| r.report.errors).sum::<u64>()
        + [&contention.alone, &contention.contended, &contention.creates]
            .iter()
            .filter_map(|r| r.as_ref())
            .map(|r| r.errors)
            .sum::<u64>();
    if failed > 0 {
        eprintln!("{failed} requests failed (see the errors column)");
    }
    Ok(())
}

fn micros(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn render(
    options: &Options,
    measured: &[Measured],
    contention: &Contention,
    rsa_rates: &[(f64, f64)],
    cores: usize,
) -> String {
    let mut out = String::new();
    let commit = options.commit.clone().unwrap_or_else(|| "unknown".into());
    out.push_str(&format!(
        "## Key specs side by side: MAC, Sign and RSA key generation next to Encrypt — {}\n\n\
         `ferrokms-bench key-specs` (commit {commit}). Machine: {}. One ferrokms (release, SQLite, audit on) and the \
         load generator on the same machine; {} connections, {} s warm-up then {} s measured per run, {} rounds with \
         the operations taking turns (each row adds up its rounds; the per-round range is the noise). Every request \
         is a 32-byte RAW message or plaintext. Server CPU µs/req: the server's user + system time over the measured \
         windows divided by the requests answered. Primitive µs/op: the same key kind's `KeyHandle` call timed in \
         the bench process's CPU time on one thread after the server has stopped.\n\n",
        compare::today(),
        compare::machine(),
        options.connections,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
        options.rounds,
    ));
    let encrypt = measured.first();
    let encrypt_rate = encrypt.map_or(0.0, Measured::rate);
    let encrypt_overhead = encrypt.and_then(|e| e.server_cpu_micros().zip(e.primitive_micros).map(|(s, p)| s - p));
    let encrypt_busy_overhead =
        encrypt.and_then(|e| e.server_cpu_micros().zip(e.primitive_busy_micros).map(|(s, p)| s - p));
    out.push_str(
        "| operation | req/s | per-round req/s | rate / Encrypt | errors | p50 ms | p99 ms | server CPU µs/req | \
         primitive µs/op | server CPU − primitive µs/req | that / Encrypt's | primitive µs/op, all cores busy | \
         server CPU − that | that / Encrypt's |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for m in measured {
        let Some(row) = &m.total else { continue };
        let overhead = m.server_cpu_micros().zip(m.primitive_micros).map(|(s, p)| s - p);
        let relative = overhead
            .zip(encrypt_overhead)
            .filter(|(_, e)| *e > 0.0)
            .map_or_else(|| "-".into(), |(o, e)| format!("{:.2}", o / e));
        let busy_overhead = m.server_cpu_micros().zip(m.primitive_busy_micros).map(|(s, p)| s - p);
        let busy_relative = busy_overhead
            .zip(encrypt_busy_overhead)
            .filter(|(_, e)| *e > 0.0)
            .map_or_else(|| "-".into(), |(o, e)| format!("{:.2}", o / e));
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.operation.label(),
            m.rate(),
            m.spread(),
            if encrypt_rate > 0.0 { format!("{:.2}", m.rate() / encrypt_rate) } else { "-".into() },
            row.report.errors,
            row.report.quantile_ms(0.5),
            row.report.quantile_ms(0.99),
            micros(m.server_cpu_micros()),
            micros(m.primitive_micros),
            micros(overhead),
            relative,
            micros(m.primitive_busy_micros),
            micros(busy_overhead),
            busy_relative,
        ));
    }
    if !rsa_rates.is_empty() {
        #[allow(clippy::cast_precision_loss)]
        let n = rsa_rates.len() as f64;
        let server = rsa_rates.iter().map(|r| r.0).sum::<f64>() / n;
        let alone = rsa_rates.iter().map(|r| r.1).sum::<f64>() / n;
        let per_round: Vec<String> = rsa_rates
            .iter()
            .map(|(s, a)| if *a > 0.0 { format!("{s:.0}/{a:.0} = {:.2}", s / a) } else { "-".into() })
            .collect();
        out.push_str(&format!(
            "\n**Sign RSA_2048**: {server:.0} req/s through ferrokms; the primitive alone (`KeyHandle::sign`, \
             RSASSA_PKCS1_V1_5_SHA_256) on {cores} threads, one per core, measured right after the server's run in \
             each round: {alone:.0} signatures/s; ratio {}. Per round: {}.\n",
            if alone > 0.0 { format!("{:.2}", server / alone) } else { "-".into() },
            per_round.join("; "),
        ));
    }
    if let (Some(alone), Some(contended), Some(creates)) =
        (&contention.alone, &contention.contended, &contention.creates)
    {
        let ratios: Vec<String> = contention.round_ratios.iter().map(|r| format!("{r:.2}")).collect();
        out.push_str(&format!(
            "\n**Encrypt 32 B while CreateKey RSA_4096 loops on {} other connection(s)** ({} Encrypt connections):\n\n\
             | run | Encrypt req/s | Encrypt p50 ms | Encrypt p99 ms | Encrypt p99.9 ms | errors |\n\
             |---|---:|---:|---:|---:|---:|\n\
             | alone | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n\
             | with RSA_4096 key generation | {:.0} | {:.2} | {:.2} | {:.2} | {} |\n\n\
             p99 with / alone: {}; per round: {}. CreateKey RSA_4096 meanwhile: {:.1} keys/s, p50 {:.0} ms, \
             p99 {:.0} ms, {} errors. (As in every run, a request still unanswered when the window ends is not \
             counted, so when Encrypt stalls its p99 understates the stall and its rate shows it.)\n",
            options.create_connections,
            options.connections,
            alone.rate(),
            alone.quantile_ms(0.5),
            alone.quantile_ms(0.99),
            alone.quantile_ms(0.999),
            alone.errors,
            contended.rate(),
            contended.quantile_ms(0.5),
            contended.quantile_ms(0.99),
            contended.quantile_ms(0.999),
            contended.errors,
            if alone.quantile_ms(0.99) > 0.0 {
                format!("{:.2}", contended.quantile_ms(0.99) / alone.quantile_ms(0.99))
            } else {
                "-".into()
            },
            ratios.join(", "),
            creates.rate(),
            creates.quantile_ms(0.5),
            creates.quantile_ms(0.99),
            creates.errors,
        ));
    }
    out
}
