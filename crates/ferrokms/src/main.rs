//! The `ferrokms` command: `serve` and `init`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line talks to its user

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod admin;
mod audit_cmd;

/// mimalloc instead of the system allocator: every request builds and drops many small JSON
/// values (request, audit record); glibc's malloc spent about a sixth of the server's CPU on
/// them under load and held far more memory after bursts (issue #9, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use kms_core::ids::Region;
use kms_server::ServerConfig;
use serde::Deserialize;

/// ferrokms: a self-hosted key management service that speaks the AWS KMS API.
///
/// Every flag can also be set with the environment variable named in its help, or in a TOML
/// config file (--config); flags win over the environment, which wins over the file.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the KMS server (creates the data directory, root key and admin credentials on first
    /// start).
    Serve(ServeArgs),
    /// Create the data directory, root key and admin credentials without serving.
    Init(CommonArgs),
    /// Verify, export and search the audit trail.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Manage users, roles, service principals, access keys and identity policies on a running
    /// server.
    Admin {
        #[command(flatten)]
        connection: admin::Connection,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

#[derive(Args, Clone, Default)]
struct CommonArgs {
    /// TOML config file with any of: listen, data_dir, root_key_file, store, region,
    /// insecure_dev_credentials, key_cache_capacity.
    #[arg(long, env = "FERROKMS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding the SQLite database, the root key (by default) and the admin
    /// credentials. [default: ./ferrokms-data]
    #[arg(long, env = "FERROKMS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Root key file. Keep it apart from database backups. [default: DATA_DIR/root.key]
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE", value_name = "FILE")]
    root_key_file: Option<PathBuf>,
    /// Use PostgreSQL (postgres://user@host:5432/db) instead of SQLite in the data directory.
    /// Every node sharing the database needs the same root key file.
    #[arg(long, env = "FERROKMS_STORE", value_name = "URL")]
    store: Option<String>,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address and port to listen on. [default: 127.0.0.1:4599]
    #[arg(long, env = "FERROKMS_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Region for tooling that names none; each request's region comes from its SigV4
    /// credential scope, so one server serves every region. [default: us-east-1]
    #[arg(long, env = "FERROKMS_REGION", value_name = "REGION")]
    region: Option<String>,
    /// UNSAFE: also accept access key `test` with secret `test` (as the account's root), for
    /// local development and test suites only.
    #[arg(long, env = "FERROKMS_INSECURE_DEV_CREDENTIALS")]
    insecure_dev_credentials: bool,
    /// Most keys held unwrapped in memory. [default: 10000]
    #[arg(long, env = "FERROKMS_KEY_CACHE_CAPACITY", value_name = "N")]
    key_cache_capacity: Option<usize>,
    /// Seconds a cached key or alias is used before it is read again; with several nodes on one
    /// database, the longest a change made through another node can go unseen. [default: 30]
    #[arg(long, env = "FERROKMS_KEY_CACHE_TTL", value_name = "SECONDS")]
    key_cache_ttl: Option<u32>,
    /// Days audit records are kept (older ones are removed up to a signed digest). [default:
    /// 2557, seven years]
    #[arg(long, env = "FERROKMS_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    audit_retention_days: Option<u32>,
    /// Send key rotation and deletion events (EventBridge shape) to this URL as signed JSON
    /// POSTs.
    #[arg(long, env = "FERROKMS_EVENT_WEBHOOK_URL", value_name = "URL")]
    event_webhook_url: Option<String>,
    /// The HMAC-SHA256 secret that signs webhook bodies (header X-Ferrokms-Signature).
    #[arg(long, env = "FERROKMS_EVENT_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    event_webhook_secret: Option<String>,
    /// Publish key events to this NATS server (host:port).
    #[arg(long, env = "FERROKMS_EVENT_NATS", value_name = "HOST:PORT")]
    event_nats: Option<String>,
    /// The NATS subject for key events.
    #[arg(long, env = "FERROKMS_EVENT_NATS_SUBJECT", value_name = "SUBJECT", default_value = "ferrokms.kms.events")]
    event_nats_subject: String,
}

/// The config file's keys.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    root_key_file: Option<PathBuf>,
    store: Option<String>,
    region: Option<String>,
    insecure_dev_credentials: Option<bool>,
    key_cache_capacity: Option<usize>,
    key_cache_ttl: Option<u32>,
}

fn read_config(path: Option<&Path>) -> Result<FileConfig, String> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

fn server_config(args: &ServeArgs) -> Result<ServerConfig, String> {
    let file = read_config(args.common.config.as_deref())?;
    let data_dir = args.common.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./ferrokms-data"));
    let mut config = ServerConfig::new(data_dir);
    config.root_key_file = args.common.root_key_file.clone().or(file.root_key_file);
    config.store_url = args.common.store.clone().or(file.store);
    if let Some(listen) = args.listen.or(file.listen) {
        config.listen = listen;
    }
    if let Some(region) = args.region.clone().or(file.region) {
        config.default_region = Region::parse(&region).map_err(|e| e.to_string())?;
    }
    config.insecure_dev_credentials = args.insecure_dev_credentials || file.insecure_dev_credentials.unwrap_or(false);
    if let Some(n) = args.key_cache_capacity.or(file.key_cache_capacity) {
        config.key_cache_capacity = n;
    }
    if let Some(seconds) = args.key_cache_ttl.or(file.key_cache_ttl) {
        config.key_cache_ttl_millis = i64::from(seconds) * 1000;
    }
    if let Some(days) = args.audit_retention_days {
        config.audit_retention_days = i64::from(days);
    }
    if let Some(url) = &args.event_webhook_url {
        let secret = args
            .event_webhook_secret
            .clone()
            .ok_or("--event-webhook-url needs --event-webhook-secret (FERROKMS_EVENT_WEBHOOK_SECRET)")?;
        config.event_sinks.push(kms_server::events::Sink::Webhook { url: url.clone(), secret });
    }
    if let Some(address) = &args.event_nats {
        let subject = args.event_nats_subject.clone();
        config.event_sinks.push(kms_server::events::Sink::Nats { address: address.clone(), subject });
    }
    Ok(config)
}

fn print_admin(admin: &kms_server::http::AdminCredentials, account: &kms_core::ids::AccountId) {
    let secret = String::from_utf8_lossy(admin.secret_access_key.expose_secret());
    println!("Created admin credentials for account {account} (shown once; also saved to {}):", admin.file.display());
    println!("  export AWS_ACCESS_KEY_ID={}", admin.access_key_id);
    println!("  export AWS_SECRET_ACCESS_KEY={secret}");
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = server_config(&args)?;
    let data_dir = config.data_dir.clone();
    let mut server = kms_server::start(config).await.map_err(|e| e.to_string())?;
    println!("ferrokms listening on http://{}", server.local_addr);
    println!("  data directory: {}", data_dir.display());
    println!("  store:          {}", server.store_description);
    println!("  root key:       {}", server.root_key_description);
    println!("  account:        {}", server.account);
    if args.insecure_dev_credentials {
        println!("  WARNING: --insecure-dev-credentials is on: access key 'test' / secret 'test' is accepted");
    }
    if let Some(admin) = &server.new_admin {
        print_admin(admin, &server.account);
    }
    println!("ready; press Ctrl-C to stop");
    tokio::select! {
        () = shutdown_signal() => {
            println!("shutting down: finishing in-flight requests");
            server.shutdown().await;
        }
        () = server.wait() => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn init(args: CommonArgs) -> Result<(), String> {
    let serve_args = ServeArgs { common: args, ..ServeArgs::default() };
    let config = server_config(&serve_args)?;
    let prepared = kms_server::bootstrap::prepare(&config, &kms_crypto_rng()).await.map_err(|e| e.to_string())?;
    println!("data directory {} is ready", config.data_dir.display());
    println!("  store:    {}", prepared.store.describe());
    println!("  root key: {}", prepared.root.describe());
    match &prepared.new_admin {
        Some(admin) => print_admin(admin, &prepared.account),
        None => println!("  admin credentials were created earlier ({})", config.credentials_path().display()),
    }
    Ok(())
}

fn kms_crypto_rng() -> impl kms_core::Rng {
    kms_server::system_rng()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROKMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // FERROKMS_LOG_FORMAT=json: one JSON object per line, each request line carrying the
    // request_id that its audit record's requestID repeats.
    if std::env::var("FERROKMS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
    // The blocking pool serves the SQLite store, which has one connection: a few threads are
    // enough (waiting writes join a group commit before they need one), and tokio's default of
    // 512 let a burst of cache misses spawn hundreds of threads, each with its own heap.
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(32).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrokms: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Init(args) => init(args).await,
            Command::Audit { command } => audit_cmd::run(&command).await.map(|text| println!("{text}")),
            Command::Admin { connection, command } => admin::run(&connection, &command).await.map(|answer| {
                println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            }),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokms: {e}");
            ExitCode::FAILURE
        }
    }
}
