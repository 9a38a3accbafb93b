//! `ferrokms-bench`: a load generator for AWS KMS endpoints (SigV4-signed AWS JSON 1.1 over
//! keep-alive HTTP/1.1), the bare-hyper ceiling server, a store-level seeder for large
//! keyrings, `compare`, which runs ferrokms, the ceiling and moto_server side by side, and
//! `audit-size`, the audit trail's bytes on disk per record on PostgreSQL under Encrypt load.
//!
//! It measures; it asserts nothing about timing. `compare --fail-on-errors` fails only when
//! requests fail, which is what CI's smoke run checks.

#![allow(clippy::print_stdout)] // a command-line tool reports on stdout

mod audit_size;
mod ceiling;
mod compare;
mod endurance;
mod key_specs;
mod load;
mod seed;
mod sign;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::compare::Server;
use crate::load::{Endpoint, Operation, Shape};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Copy)]
struct ShapeArgs {
    /// Concurrent keep-alive connections (one task each).
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up seconds before the measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

#[derive(Subcommand)]
enum Command {
    /// Send one operation to an endpoint and report req/s, errors and latency quantiles.
    Load {
        /// The endpoint, e.g. http://127.0.0.1:4599.
        #[arg(long, default_value = "http://127.0.0.1:4599")]
        endpoint: String,
        /// Access key id.
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key_id: String,
        /// Secret access key.
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        secret_access_key: String,
        /// Region of the credential scope.
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        /// The operation.
        #[arg(long, value_enum, default_value = "encrypt32")]
        operation: Operation,
        /// Key to use (repeatable; used in turn). Without one, a key is created first.
        #[arg(long = "key-id")]
        key_ids: Vec<String>,
        /// A file of key ids, one a line (e.g. DATA_DIR/bench-key-ids from `seed`).
        #[arg(long)]
        key_ids_file: Option<PathBuf>,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Serve a fixed `200 {}` to every request: the HTTP stack's ceiling.
    Ceiling {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:4598")]
        listen: SocketAddr,
    },
    /// Create many keys in a ferrokms data directory through the store (the server must not be
    /// running on it).
    Seed {
        /// The data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// How many keys.
        #[arg(long, default_value_t = 100_000)]
        keys: usize,
        /// Their region.
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// Run ferrokms (SQLite), the bare-hyper ceiling and moto_server side by side and report.
    Compare {
        /// The ferrokms binary. [default: `ferrokms` next to this binary]
        #[arg(long)]
        ferrokms: Option<PathBuf>,
        /// How to start moto_server (host and port are appended).
        #[arg(long, default_value = "moto_server")]
        moto: String,
        /// Servers to include.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "ferrokms,hyper,moto")]
        servers: Vec<Server>,
        /// Operations to run.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "encrypt32,encrypt4k,decrypt,generate-data-key,describe-key,create-key"
        )]
        operations: Vec<Operation>,
        /// Connections for the high-concurrency Encrypt run (0 skips it).
        #[arg(long, default_value_t = 1024)]
        high_connections: usize,
        /// Keys for the large-keyring run (0 skips it).
        #[arg(long, default_value_t = 100_000)]
        large_keyring: usize,
        /// Also write the Markdown report here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// The commit being measured, for the report.
        #[arg(long)]
        commit: Option<String>,
        /// Exit with failure if ferrokms or the ceiling answered any request with an error.
        #[arg(long)]
        fail_on_errors: bool,
        /// Rounds per operation: the servers take turns, one run each per round, and each
        /// server's runs are added up. Turns spread the machine's drift over all servers alike.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Run one ferrokms node on a fresh PostgreSQL database under Encrypt load and report the
    /// audit trail's bytes on disk per record (tables, TOAST and indexes) after each round.
    AuditSize {
        /// The ferrokms binary. [default: `ferrokms` next to this binary]
        #[arg(long)]
        ferrokms: Option<PathBuf>,
        /// A PostgreSQL URL whose user may create databases (one is created and dropped).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres_url: String,
        /// Load rounds; the size is reported after each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[command(flatten)]
        shape: ShapeArgs,
    },
    /// Encrypt for a long time (30 minutes by default) on SQLite or PostgreSQL (one or more
    /// nodes, CloudTrail delivery optional), a line per window (rate, p99, server CPU per
    /// request), then the last five minutes against the first five.
    Endurance {
        /// The ferrokms binary. [default: `ferrokms` next to this binary]
        #[arg(long)]
        ferrokms: Option<PathBuf>,
        /// The store.
        #[arg(long, value_enum, default_value = "sqlite")]
        store: endurance::StoreKind,
        /// A PostgreSQL URL whose user may create databases (one is created and dropped).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        postgres_url: String,
        /// Nodes on the PostgreSQL database.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// Minutes of load.
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Seconds per window.
        #[arg(long, default_value_t = 60.0)]
        window: f64,
        /// Connections in all (split across the nodes).
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// CloudTrail delivery on (to a local directory, every minute).
        #[arg(long)]
        delivery: bool,
        /// Also write the Markdown report here.
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
    /// Run one ferrokms and report, side by side with Encrypt: GenerateMac/VerifyMac rates; Sign
    /// (P-256, Ed25519, ML-DSA-44) server CPU per request minus the primitive's in-process cost;
    /// Sign RSA_2048's rate against the primitive's on all cores; Encrypt's p99 while CreateKey
    /// RSA_4096 loops on other connections.
    KeySpecs {
        /// The ferrokms binary. [default: `ferrokms` next to this binary]
        #[arg(long)]
        ferrokms: Option<PathBuf>,
        /// Connections running CreateKey RSA_4096 during the contention run.
        #[arg(long, default_value_t = 2)]
        create_connections: usize,
        /// Rounds: the operations take turns, one run each per round.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Also write the Markdown report here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// The commit being measured, for the report.
        #[arg(long)]
        commit: Option<String>,
        #[command(flatten)]
        shape: ShapeArgs,
    },
}

fn shape(args: ShapeArgs) -> Shape {
    Shape {
        connections: args.connections.max(1),
        duration: Duration::from_secs_f64(args.duration.max(0.1)),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        timeout: Duration::from_secs(10),
    }
}

fn endpoint_addr(endpoint: &str) -> Result<SocketAddr, String> {
    let rest = endpoint.strip_prefix("http://").ok_or("only http:// endpoints are supported")?;
    let hostport = rest.trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Load {
            endpoint,
            access_key_id,
            secret_access_key,
            region,
            operation,
            mut key_ids,
            key_ids_file,
            shape: shape_args,
        } => {
            if let Some(file) = key_ids_file {
                let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                key_ids.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned()));
            }
            let endpoint =
                Endpoint { addr: endpoint_addr(&endpoint)?, access_key_id, secret: secret_access_key, region };
            let workload = load::prepare(&endpoint, operation, key_ids).await.map_err(|e| format!("set-up: {e}"))?;
            let shape = shape(shape_args);
            let report = load::run(&endpoint, &workload, shape).await;
            println!("{} {} conns: {}", operation.label(), shape.connections, report.line());
            if let Some(e) = &report.first_error {
                println!("first error: {e}");
            }
            Ok(())
        }
        Command::Ceiling { listen } => ceiling::serve(listen, |addr| println!("ceiling listening on {addr}"))
            .await
            .map_err(|e| format!("{listen}: {e}")),
        Command::Seed { data_dir, keys, region } => {
            let ids = seed::seed(&data_dir, keys, &region).await?;
            println!("created {} keys; ids in {}", ids.len(), data_dir.join("bench-key-ids").display());
            Ok(())
        }
        Command::Compare {
            ferrokms,
            moto,
            servers,
            operations,
            high_connections,
            large_keyring,
            markdown,
            commit,
            fail_on_errors,
            rounds,
            shape: shape_args,
        } => {
            let ferrokms = match ferrokms {
                Some(p) => p,
                None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ferrokms"),
            };
            let s = shape(shape_args);
            compare::compare(compare::Options {
                ferrokms,
                moto,
                servers,
                operations,
                connections: s.connections,
                high_connections,
                duration: s.duration,
                warmup: s.warmup,
                large_keyring,
                markdown,
                commit,
                fail_on_errors,
                rounds: rounds.max(1),
            })
            .await
        }
        Command::AuditSize { ferrokms, postgres_url, rounds, shape: shape_args } => {
            let ferrokms = match ferrokms {
                Some(p) => p,
                None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ferrokms"),
            };
            audit_size::run(audit_size::Options {
                ferrokms,
                postgres_url,
                rounds: rounds.max(1),
                shape: shape(shape_args),
            })
            .await
        }
        Command::Endurance {
            ferrokms,
            store,
            postgres_url,
            nodes,
            minutes,
            window,
            connections,
            delivery,
            markdown,
        } => {
            let ferrokms = match ferrokms {
                Some(p) => p,
                None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ferrokms"),
            };
            endurance::run(endurance::Options {
                ferrokms,
                store,
                postgres_url,
                nodes,
                total: Duration::from_secs_f64(minutes.max(0.05) * 60.0),
                window: Duration::from_secs_f64(window.max(1.0)),
                connections,
                delivery,
                markdown,
            })
            .await
        }
        Command::KeySpecs { ferrokms, create_connections, rounds, markdown, commit, shape: shape_args } => {
            let ferrokms = match ferrokms {
                Some(p) => p,
                None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("ferrokms"),
            };
            let s = shape(shape_args);
            key_specs::run(key_specs::Options {
                ferrokms,
                connections: s.connections,
                create_connections,
                duration: s.duration,
                warmup: s.warmup,
                rounds: rounds.max(1),
                markdown,
                commit,
            })
            .await
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferrokms-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokms-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
