//! The `ferrokms` command: `serve` and `init`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line talks to its user

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod admin;
mod audit_cmd;
mod envelope_cmd;
mod keys_cmd;
mod root_cmd;
mod seed;
mod trust;

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
    Serve(Box<ServeArgs>),
    /// Create the data directory, root key and admin credentials without serving.
    Init(InitArgs),
    /// Write a consistent snapshot of the SQLite store to FILE while the server runs (only
    /// wrapped key material inside: keep the root key apart from it). PostgreSQL: use its own
    /// tools (docs/operations.md).
    Backup {
        #[command(flatten)]
        common: CommonArgs,
        /// The snapshot file to write (must not exist).
        file: PathBuf,
    },
    /// Restore a snapshot into a new data directory, after checking that the root key
    /// (--root-key-file, or the passphrase or pkcs11 provider) opens it; nothing is written otherwise.
    Restore {
        #[command(flatten)]
        common: CommonArgs,
        /// The snapshot written by `ferrokms backup`.
        file: PathBuf,
    },
    /// Rotate the root key (file, passphrase or HSM) while the servers run.
    Root {
        #[command(subcommand)]
        command: root_cmd::RootCommand,
    },
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
    /// Envelope-encrypt a file or stdin under a KMS key (AWS Encryption SDK message format;
    /// endpoint and credentials from the AWS environment and config).
    Encrypt(envelope_cmd::EncryptArgs),
    /// Decrypt a message written by `ferrokms encrypt` or the AWS Encryption SDK.
    Decrypt(envelope_cmd::DecryptArgs),
    /// Common key lifecycle tasks with readable tables (endpoint and credentials from the AWS
    /// environment; the aws CLI remains the full interface).
    Keys {
        #[command(flatten)]
        kms: keys_cmd::KmsArgs,
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Create the keys, aliases, tags, policies and principals a YAML file declares,
    /// idempotently (see docs/client-library.md).
    Seed {
        /// The seed file.
        file: PathBuf,
        /// Only check the file; contact nobody.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        connection: admin::Connection,
    },
}

#[derive(Args, Clone, Default)]
pub(crate) struct CommonArgs {
    /// TOML config file with any of: listen, data_dir, root_key_file, store, account_id, region,
    /// insecure_dev_credentials, key_cache_capacity, key_cache_ttl, tls_cert, tls_key,
    /// insecure_http, request_quotas, [request_quota], [resource_quotas], max_connections,
    /// header_read_timeout, idle_timeout, shutdown_grace, max_body_bytes, body_read_timeout,
    /// body_budget_bytes, failed_auth_burst, failed_auth_per_second, metrics_listen, metrics_token
    /// (docs/operations.md).
    #[arg(long, env = "FERROKMS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding the SQLite database, the root key (by default) and the admin
    /// credentials. [default: ./ferrokms-data]
    #[arg(long, env = "FERROKMS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Root key file. Keep it apart from database backups. [default: DATA_DIR/root.key]
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE", value_name = "FILE")]
    root_key_file: Option<PathBuf>,
    /// Where the root key comes from: `file` (a key file), `passphrase` (derived with
    /// Argon2id; nothing secret on disk) or `pkcs11` (a non-extractable key in an HSM). Chosen when the data directory (or database) is
    /// created; a later start with another provider or key is refused. [default: file]
    #[arg(long, env = "FERROKMS_ROOT_KEY_PROVIDER", value_name = "PROVIDER")]
    root_key_provider: Option<String>,
    /// With `--root-key-provider passphrase`: read the passphrase from this file (its first
    /// line; `/dev/fd/N` for an inherited descriptor), or `-` for standard input. Otherwise
    /// FERROKMS_ROOT_PASSPHRASE holds it, or it is asked on the terminal (echo off).
    #[arg(long, value_name = "FILE")]
    root_passphrase_file: Option<PathBuf>,
    /// With `--root-key-provider pkcs11`: the PKCS#11 module (shared library) of the HSM.
    /// [default: /usr/lib/softhsm/libsofthsm2.so, SoftHSM2]
    #[arg(long, env = "FERROKMS_PKCS11_MODULE", value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
    /// With `--root-key-provider pkcs11`: the label of the token holding the root key.
    #[arg(long, env = "FERROKMS_PKCS11_TOKEN_LABEL", value_name = "LABEL")]
    pkcs11_token_label: Option<String>,
    /// With `--root-key-provider pkcs11`: the label of the AES root key in the token, generated
    /// there (non-extractable) when a new store is created and the token has none.
    /// [default: ferrokms-root]
    #[arg(long, env = "FERROKMS_PKCS11_KEY_LABEL", value_name = "LABEL")]
    pkcs11_key_label: Option<String>,
    /// With `--root-key-provider pkcs11`: read the token's user PIN from this file (its first
    /// line), or `-` for standard input. Otherwise FERROKMS_PKCS11_PIN holds it.
    #[arg(long, value_name = "FILE")]
    pkcs11_pin_file: Option<PathBuf>,
    /// Use PostgreSQL (postgres://user@host:5432/db) instead of SQLite in the data directory.
    /// Every node sharing the database needs the same root key (file, passphrase or HSM key).
    #[arg(long, env = "FERROKMS_STORE", value_name = "URL")]
    store: Option<String>,
    /// The 12-digit account id of the server's own account, chosen when the data directory (or
    /// database) is created, for fixtures that hard-code one (123456789012, 000000000000);
    /// a later start with another id is refused. [default: random]
    #[arg(long, env = "FERROKMS_ACCOUNT_ID", value_name = "ID")]
    account_id: Option<String>,
}

#[derive(Args, Clone, Default)]
struct InitArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Also create a private CA and a TLS certificate it signs (DATA_DIR/tls/cert.pem, key.pem,
    /// ca.pem) for localhost, 127.0.0.1 and ::1; serve with --tls-cert/--tls-key and give
    /// clients ca.pem (--ca-bundle, AWS_CA_BUNDLE).
    #[arg(long)]
    self_signed: bool,
    /// Another name (DNS name or IP address) for the self-signed certificate; repeatable.
    #[arg(long, value_name = "NAME", requires = "self_signed")]
    san: Vec<String>,
}

/// Connection, TLS and quota flags of `serve` (grouped to keep `ServeArgs` readable).
#[derive(Args, Clone, Default)]
struct HardeningArgs {
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "FERROKMS_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "FERROKMS_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// UNSAFE: serve plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    #[arg(long, env = "FERROKMS_INSECURE_HTTP")]
    insecure_http: bool,
    /// Request-rate quotas: `off`, or `aws` for AWS KMS's documented per-second quotas per
    /// account, region and operation class (answered with ThrottlingException). [default: off]
    #[arg(long, env = "FERROKMS_REQUEST_QUOTAS", value_name = "off|aws")]
    request_quotas: Option<String>,
    /// Override one request quota, CLASS=PER_SECOND (CLASS: cryptographic_symmetric or an
    /// operation such as CreateKey; 0 = not throttled); turns request quotas on. Repeatable.
    #[arg(long, env = "FERROKMS_REQUEST_QUOTA", value_name = "CLASS=N", value_delimiter = ',')]
    request_quota: Vec<String>,
    /// Override a resource quota, NAME=N with NAME one of keys, aliases_per_key, aliases,
    /// grants_per_key, grants_per_principal. Repeatable.
    #[arg(long, env = "FERROKMS_RESOURCE_QUOTA", value_name = "NAME=N", value_delimiter = ',')]
    resource_quota: Vec<String>,
    /// Most connections served at once; more wait until one closes. [default: 4096]
    #[arg(long, env = "FERROKMS_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Seconds a client has to send its request headers (and finish a TLS handshake). [default: 10]
    #[arg(long, env = "FERROKMS_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    header_read_timeout: Option<u64>,
    /// Seconds a connection may stay silent before it is closed. [default: 60]
    #[arg(long, env = "FERROKMS_IDLE_TIMEOUT", value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Seconds a shutdown waits for in-flight requests. [default: 30]
    #[arg(long, env = "FERROKMS_SHUTDOWN_GRACE", value_name = "SECONDS")]
    shutdown_grace: Option<u64>,
    /// Largest request body accepted, in bytes. [default: 1048576]
    #[arg(long, env = "FERROKMS_MAX_BODY_BYTES", value_name = "BYTES")]
    max_body_bytes: Option<usize>,
    /// Seconds a client has to send a request's whole body once its headers are in; then it is
    /// answered RequestTimeoutException (408) and disconnected. [default: 20]
    #[arg(long, env = "FERROKMS_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    body_read_timeout: Option<u64>,
    /// Bytes all request bodies in flight may hold at once; a body past it is refused with
    /// ThrottlingException. [default: 67108864]
    #[arg(long, env = "FERROKMS_BODY_BUDGET_BYTES", value_name = "BYTES")]
    body_budget_bytes: Option<usize>,
    /// Requests failing authentication one source address (IPv6: /64) may send in a burst before
    /// they are answered ThrottlingException and no longer audited; 0 = no limit. [default: 20]
    #[arg(long, env = "FERROKMS_FAILED_AUTH_BURST", value_name = "N")]
    failed_auth_burst: Option<u32>,
    /// Requests failing authentication per second a source may keep sending past its burst.
    /// [default: 1]
    #[arg(long, env = "FERROKMS_FAILED_AUTH_PER_SECOND", value_name = "N")]
    failed_auth_per_second: Option<u32>,
    /// Serve /metrics on this address only (plain HTTP, e.g. 127.0.0.1:9599) instead of on
    /// --listen, where it then answers 404.
    #[arg(long, env = "FERROKMS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Answer /metrics only with `Authorization: Bearer TOKEN` (prefer the environment
    /// variable: command lines are visible to other local users).
    #[arg(long, env = "FERROKMS_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
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
    /// Seconds a cached key, alias, credential or identity policy is used before it is read
    /// again: the fallback bound on how long a change can go unseen when its notification from
    /// another node was missed (or it was made in the database directly). [default: 30]
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
    /// Deliver the audit trail under this directory as CloudTrail does: gzip log files and
    /// signed, chained digest files (`AWSLogs/<account>/CloudTrail…`).
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_DIR", value_name = "DIR", conflicts_with = "cloudtrail_s3_bucket")]
    cloudtrail_dir: Option<PathBuf>,
    /// Deliver the audit trail to this S3 (or S3-compatible) bucket as CloudTrail does.
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_S3_BUCKET", value_name = "BUCKET")]
    cloudtrail_s3_bucket: Option<String>,
    /// Key prefix of the delivered objects (`PREFIX/AWSLogs/…`).
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_S3_PREFIX", value_name = "PREFIX", requires = "cloudtrail_s3_bucket")]
    cloudtrail_s3_prefix: Option<String>,
    /// Endpoint URL of an S3-compatible server (path-style requests); default: AWS S3, or
    /// `AWS_ENDPOINT_URL_S3`.
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_S3_ENDPOINT", value_name = "URL", requires = "cloudtrail_s3_bucket")]
    cloudtrail_s3_endpoint: Option<String>,
    /// The bucket's region [default: the server's region].
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_S3_REGION", value_name = "REGION", requires = "cloudtrail_s3_bucket")]
    cloudtrail_s3_region: Option<String>,
    /// Access key id for the bucket (with the secret below); default: the AWS SDK's credential
    /// chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, web identity,
    /// container or instance role).
    #[arg(
        long,
        env = "FERROKMS_CLOUDTRAIL_S3_ACCESS_KEY_ID",
        value_name = "ID",
        requires_all = ["cloudtrail_s3_bucket", "cloudtrail_s3_secret_access_key"]
    )]
    cloudtrail_s3_access_key_id: Option<String>,
    /// Secret access key for the bucket.
    #[arg(
        long,
        env = "FERROKMS_CLOUDTRAIL_S3_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true,
        requires = "cloudtrail_s3_access_key_id"
    )]
    cloudtrail_s3_secret_access_key: Option<String>,
    /// The trail's name, in digest file names and its ARN
    /// (`arn:aws:cloudtrail:<region>:<account>:trail/<name>`, for `aws cloudtrail validate-logs`).
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_NAME", value_name = "NAME", default_value = kms_server::trail::DEFAULT_TRAIL_NAME)]
    cloudtrail_name: String,
    /// Seconds between deliveries of new records.
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_INTERVAL", value_name = "SECONDS", default_value_t = 300.0)]
    cloudtrail_interval: f64,
    /// Seconds between digest files.
    #[arg(long, env = "FERROKMS_CLOUDTRAIL_DIGEST_INTERVAL", value_name = "SECONDS", default_value_t = 3600.0)]
    cloudtrail_digest_interval: f64,
    /// Do not lock the process's memory (by default it is locked where that is possible
    /// without a limit, so that secrets are never swapped out).
    #[arg(long, env = "FERROKMS_NO_MEMORY_LOCK")]
    no_memory_lock: bool,
    #[command(flatten)]
    hardening: HardeningArgs,
    /// Apply this seed file (as `ferrokms seed`, with the admin credentials of the data
    /// directory) once listening, before reporting ready; an invalid file stops start-up.
    #[arg(long, env = "FERROKMS_SEED", value_name = "FILE")]
    seed: Option<PathBuf>,
}

/// The config file's keys.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    account_id: Option<String>,
    data_dir: Option<PathBuf>,
    root_key_file: Option<PathBuf>,
    store: Option<String>,
    region: Option<String>,
    insecure_dev_credentials: Option<bool>,
    key_cache_capacity: Option<usize>,
    key_cache_ttl: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_http: Option<bool>,
    /// `off` or `aws`.
    request_quotas: Option<String>,
    /// Per-class overrides (requests per second).
    #[serde(default)]
    request_quota: std::collections::BTreeMap<String, u32>,
    /// Resource quota overrides.
    #[serde(default)]
    resource_quotas: std::collections::BTreeMap<String, usize>,
    max_connections: Option<usize>,
    header_read_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    shutdown_grace: Option<u64>,
    max_body_bytes: Option<usize>,
    body_read_timeout: Option<u64>,
    body_budget_bytes: Option<usize>,
    failed_auth_burst: Option<u32>,
    failed_auth_per_second: Option<u32>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
}

fn read_config(path: Option<&Path>) -> Result<FileConfig, String> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// A secret given as a file's first line (`-`: standard input) or an environment variable.
pub(crate) fn read_secret(
    file: Option<&Path>,
    file_flag: &str,
    env: &str,
    context: &str,
) -> Result<zeroize::Zeroizing<String>, String> {
    let text = match file {
        Some(path) if path.as_os_str() == "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| format!("{file_flag} -: {e}"))?;
            line
        }
        Some(path) => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| format!("{file_flag} {}: {e}", path.display()))?,
            );
            text.lines().next().unwrap_or_default().to_owned()
        }
        None => match std::env::var(env) {
            Ok(value) => value,
            Err(_) if rustix::termios::isatty(std::io::stdin()) => prompt(context)?,
            Err(_) => return Err(format!("{context} needs {env} or {file_flag} (or a terminal to ask on)")),
        },
    };
    let text = zeroize::Zeroizing::new(text);
    Ok(zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Asks on the terminal (standard input, echo off) for a secret; the prompt goes to standard
/// error.
fn prompt(context: &str) -> Result<String, String> {
    use std::io::Write as _;
    let stdin = std::io::stdin();
    let failed = |e: rustix::io::Errno| format!("{context}: the terminal: {e}");
    let saved = rustix::termios::tcgetattr(&stdin).map_err(failed)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    // Echo off before the prompt shows: whatever is typed once it is visible is never echoed.
    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet).map_err(failed)?;
    eprint!("{context}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    let restored = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
    eprintln!();
    read.map_err(|e| format!("{context}: {e}"))?;
    restored.map_err(failed)?;
    Ok(line)
}

/// The root key source the options name.
fn root_key_source(common: &CommonArgs) -> Result<kms_server::config::RootKeySource, String> {
    use kms_server::config::RootKeySource;
    match common.root_key_provider.as_deref().unwrap_or("file") {
        "file" => Ok(RootKeySource::File),
        "passphrase" => Ok(RootKeySource::Passphrase(read_secret(
            common.root_passphrase_file.as_deref(),
            "--root-passphrase-file",
            "FERROKMS_ROOT_PASSPHRASE",
            "passphrase for the root key",
        )?)),
        "pkcs11" => {
            let token_label = common
                .pkcs11_token_label
                .clone()
                .ok_or("--root-key-provider pkcs11 needs --pkcs11-token-label (or FERROKMS_PKCS11_TOKEN_LABEL)")?;
            let location = kms_crypto::Pkcs11Location {
                module: common.pkcs11_module.clone().unwrap_or_else(|| kms_crypto::DEFAULT_PKCS11_MODULE.into()),
                token_label,
                key_label: common
                    .pkcs11_key_label
                    .clone()
                    .unwrap_or_else(|| kms_crypto::DEFAULT_PKCS11_KEY_LABEL.into()),
            };
            let pin = read_secret(
                common.pkcs11_pin_file.as_deref(),
                "--pkcs11-pin-file",
                "FERROKMS_PKCS11_PIN",
                "PIN of the root key's token",
            )?;
            Ok(RootKeySource::Pkcs11 { location, pin })
        }
        other => Err(format!("--root-key-provider {other}: expected file, passphrase or pkcs11")),
    }
}

/// The server configuration the common options (and the config file they name) describe, for
/// commands other than `serve`.
pub(crate) fn config_of(common: CommonArgs) -> Result<ServerConfig, String> {
    server_config(&ServeArgs { common, ..ServeArgs::default() })
}

fn server_config(args: &ServeArgs) -> Result<ServerConfig, String> {
    let file = read_config(args.common.config.as_deref())?;
    let data_dir =
        args.common.data_dir.clone().or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("./ferrokms-data"));
    let mut config = ServerConfig::new(data_dir);
    config.root_key_file = args.common.root_key_file.clone().or(file.root_key_file.clone());
    config.root_key_provider = root_key_source(&args.common)?;
    config.store_url = args.common.store.clone().or(file.store.clone());
    if let Some(id) = args.common.account_id.clone().or(file.account_id.clone()) {
        let id = kms_core::ids::AccountId::parse(&id)
            .map_err(|_| format!("--account-id {id}: not a 12-digit account id"))?;
        config.account_id = Some(id);
    }
    if let Some(listen) = args.listen.or(file.listen) {
        config.listen = listen;
    }
    if let Some(region) = args.region.clone().or(file.region.clone()) {
        config.default_region = Region::parse(&region).map_err(|e| e.to_string())?;
    }
    config.insecure_dev_credentials = args.insecure_dev_credentials || file.insecure_dev_credentials.unwrap_or(false);
    if let Some(n) = args.key_cache_capacity.or(file.key_cache_capacity) {
        config.key_cache_capacity = n;
    }
    if let Some(seconds) = args.key_cache_ttl.or(file.key_cache_ttl) {
        config.key_cache_ttl_millis = i64::from(seconds) * 1000;
    }
    hardening(&args.hardening, &file, &mut config)?;
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
    let destination = match (&args.cloudtrail_dir, &args.cloudtrail_s3_bucket) {
        (Some(dir), _) => Some(kms_server::trail::Destination::Directory(dir.clone())),
        (None, Some(bucket)) => Some(kms_server::trail::Destination::Bucket(kms_server::trail::BucketTarget {
            bucket: bucket.clone(),
            prefix: args.cloudtrail_s3_prefix.clone(),
            endpoint: args.cloudtrail_s3_endpoint.clone(),
            region: args.cloudtrail_s3_region.clone(),
            credentials: match (&args.cloudtrail_s3_access_key_id, &args.cloudtrail_s3_secret_access_key) {
                (Some(id), Some(secret)) => Some(kms_server::trail::BucketCredentials {
                    access_key_id: id.clone(),
                    secret_access_key: zeroize::Zeroizing::new(secret.clone()),
                }),
                _ => None,
            },
        })),
        (None, None) => None,
    };
    if let Some(destination) = destination {
        let seconds = |s: f64, flag: &str| {
            if s.is_finite() && s > 0.0 {
                Ok(std::time::Duration::from_secs_f64(s))
            } else {
                Err(format!("{flag} must be a positive number of seconds"))
            }
        };
        if !kms_server::trail::valid_trail_name(&args.cloudtrail_name) {
            return Err(format!(
                "--cloudtrail-name {:?}: 3 to 128 letters, digits, '.', '_' and '-', starting and ending with a \
                 letter or digit",
                args.cloudtrail_name
            ));
        }
        config.trail_delivery = Some(kms_server::trail::TrailDelivery {
            destination,
            name: args.cloudtrail_name.clone(),
            interval: seconds(args.cloudtrail_interval, "--cloudtrail-interval")?,
            digest_interval: seconds(args.cloudtrail_digest_interval, "--cloudtrail-digest-interval")?,
        });
    }
    if let Some(address) = &args.event_nats {
        let subject = args.event_nats_subject.clone();
        config.event_sinks.push(kms_server::events::Sink::Nats { address: address.clone(), subject });
    }
    Ok(config)
}

/// TLS, connection limits and quotas: flags over the config file.
fn hardening(args: &HardeningArgs, file: &FileConfig, config: &mut ServerConfig) -> Result<(), String> {
    let cert = args.tls_cert.clone().or(file.tls_cert.clone());
    let key = args.tls_key.clone().or(file.tls_key.clone());
    config.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(kms_server::config::TlsFiles { cert, key }),
        (None, None) => None,
        _ => return Err("TLS needs both a certificate (tls_cert) and a key (tls_key)".into()),
    };
    config.insecure_http = args.insecure_http || file.insecure_http.unwrap_or(false);
    let positive = [
        ("max connections", args.max_connections.or(file.max_connections).map(|n| n as u64)),
        ("max body bytes", args.max_body_bytes.or(file.max_body_bytes).map(|n| n as u64)),
        ("header read timeout", args.header_read_timeout.or(file.header_read_timeout)),
        ("idle timeout", args.idle_timeout.or(file.idle_timeout)),
        ("body read timeout", args.body_read_timeout.or(file.body_read_timeout)),
        ("body budget bytes", args.body_budget_bytes.or(file.body_budget_bytes).map(|n| n as u64)),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, v)| *v == Some(0)) {
        return Err(format!("the {name} must be at least 1"));
    }
    let limits = &mut config.connections;
    let seconds = |s: u64| s.saturating_mul(1000);
    limits.max_connections = args.max_connections.or(file.max_connections).unwrap_or(limits.max_connections);
    limits.max_body_bytes = args.max_body_bytes.or(file.max_body_bytes).unwrap_or(limits.max_body_bytes);
    if let Some(s) = args.header_read_timeout.or(file.header_read_timeout) {
        limits.header_read_timeout_millis = seconds(s);
    }
    if let Some(s) = args.idle_timeout.or(file.idle_timeout) {
        limits.idle_timeout_millis = seconds(s);
    }
    if let Some(s) = args.shutdown_grace.or(file.shutdown_grace) {
        limits.shutdown_grace_millis = seconds(s);
    }
    if let Some(s) = args.body_read_timeout.or(file.body_read_timeout) {
        limits.body_read_timeout_millis = seconds(s);
    }
    limits.body_budget_bytes = args.body_budget_bytes.or(file.body_budget_bytes).unwrap_or(limits.body_budget_bytes);
    limits.failed_auth_burst = args.failed_auth_burst.or(file.failed_auth_burst).unwrap_or(limits.failed_auth_burst);
    limits.failed_auth_per_second =
        args.failed_auth_per_second.or(file.failed_auth_per_second).unwrap_or(limits.failed_auth_per_second);
    config.metrics_listen = args.metrics_listen.or(file.metrics_listen);
    config.metrics_token = args.metrics_token.clone().or(file.metrics_token.clone());
    let mut overrides: Vec<(String, u32)> = file.request_quota.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for pair in &args.request_quota {
        overrides.push(name_value(pair, "--request-quota")?);
    }
    let mode = args.request_quotas.clone().or(file.request_quotas.clone());
    config.request_quotas = match mode.as_deref() {
        Some("off") => None,
        Some("aws") => Some(kms_server::quota::RequestQuotas::aws()),
        None if overrides.is_empty() => None,
        None => Some(kms_server::quota::RequestQuotas::aws()),
        Some(other) => return Err(format!("request quotas '{other}': expected off or aws")),
    };
    if let Some(quotas) = &mut config.request_quotas {
        for (class, rate) in overrides {
            quotas.set(&class, rate).map_err(|e| e.to_string())?;
        }
    }
    let mut resources: Vec<(String, usize)> = file.resource_quotas.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for pair in &args.resource_quota {
        resources.push(name_value(pair, "--resource-quota")?);
    }
    let quotas = &mut config.resource_quotas;
    for (name, n) in resources {
        match name.as_str() {
            "keys" => quotas.keys = n,
            "aliases_per_key" => quotas.aliases_per_key = n,
            "aliases" => quotas.aliases = Some(n),
            "grants_per_key" => quotas.grants_per_key = n,
            "grants_per_principal" => quotas.grants_per_principal = n,
            other => {
                return Err(format!(
                    "unknown resource quota '{other}' (expected keys, aliases_per_key, aliases, grants_per_key or \
                     grants_per_principal)"
                ));
            }
        }
    }
    Ok(())
}

fn name_value<T: std::str::FromStr>(pair: &str, flag: &str) -> Result<(String, T), String> {
    let (name, value) = pair.split_once('=').ok_or_else(|| format!("{flag} {pair}: expected NAME=N"))?;
    let value = value.trim().parse().map_err(|_| format!("{flag} {pair}: '{value}' is not a number"))?;
    Ok((name.trim().to_owned(), value))
}

/// Tells the operator where the first start's admin credentials are, without the secret: under
/// systemd or in a container stdout is the log, and a secret printed there is kept wherever the
/// log goes. The secret is only in the credentials file (mode 0600).
fn print_admin(admin: &kms_server::http::AdminCredentials, account: &kms_core::ids::AccountId) {
    let file = admin.file.display();
    println!("Created admin credentials for account {account}: access key {}", admin.access_key_id);
    println!("  the secret is in {file} (mode 0600, AWS shared-credentials format, profile ferrokms); use it with:");
    println!("  export AWS_SHARED_CREDENTIALS_FILE={file} AWS_PROFILE=ferrokms");
}

/// Where `serve --seed` reaches its own listener: over TLS by the name `localhost` (which the
/// self-signed certificate carries) when listening on loopback or every address.
fn seed_endpoint(addr: std::net::SocketAddr, tls: bool) -> String {
    if !tls {
        return format!("http://{addr}");
    }
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("https://{addr}")
    }
}

/// Keeps secrets in this process's memory out of files: no core dumps (a crash would write key
/// material, data keys and plaintext to disk) and not dumpable, so that other processes of the
/// same user cannot attach to it or read its memory through /proc; and, where the process may
/// lock memory without a limit (root, or `RLIMIT_MEMLOCK` unlimited), every page locked as it is
/// touched, so that nothing is swapped out. Where the OS refuses, or the limit is finite (past
/// it, new allocations would fail), the server says so and goes on. Key material, data keys and
/// plaintext are also zeroized when dropped (kms-crypto's secret types).
fn harden_process(lock_memory: bool) -> Vec<String> {
    let mut refused = Vec::new();
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
        if let Err(e) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
            refused.push(format!("core dumps stay possible ({e})"));
        }
        if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
            refused.push(format!("the process stays dumpable ({e})"));
        }
        if lock_memory {
            let limit = rustix::process::getrlimit(Resource::Memlock).current;
            if limit.is_none() || rustix::process::geteuid().is_root() {
                use rustix::mm::{MlockAllFlags, mlockall};
                if let Err(e) = mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT) {
                    refused.push(format!("memory is not locked and may be swapped out ({e})"));
                }
            } else {
                refused.push(format!(
                    "memory is not locked and may be swapped out: RLIMIT_MEMLOCK is {} KiB (set it to unlimited, \
                     e.g. LimitMEMLOCK=infinity, to lock it; or use encrypted swap)",
                    limit.unwrap_or_default() / 1024
                ));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = lock_memory;
    refused
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let refused = harden_process(!args.no_memory_lock);
    let config = server_config(&args)?;
    let seed_file = args.seed.as_deref().map(seed::load).transpose()?;
    let (credentials_file, region) = (config.credentials_path(), config.default_region.to_string());
    let served_chain = config.tls.as_ref().map(|files| files.cert.clone());
    let data_dir = config.data_dir.clone();
    let mut server = kms_server::start(config).await.map_err(|e| e.to_string())?;
    // Before anything is printed: a supervisor may act on any line, "ready" above all.
    let mut signals = ShutdownSignals::install();
    let scheme = if server.transport == kms_server::Transport::Tls { "https" } else { "http" };
    println!("ferrokms listening on {scheme}://{}", server.local_addr);
    println!("  data directory: {}", data_dir.display());
    println!("  store:          {}", server.store_description);
    println!("  root key:       {}", server.root_key_description);
    println!("  account:        {}", server.account);
    println!("  console:        {scheme}://{}/console/", server.local_addr);
    if let Some(metrics) = server.metrics_addr {
        println!("  metrics:        http://{metrics}/metrics (not served on the main listener)");
    }
    if args.insecure_dev_credentials {
        println!("  WARNING: --insecure-dev-credentials is on: access key 'test' / secret 'test' is accepted");
    }
    for why in &refused {
        println!("  WARNING: {why}");
    }
    if server.transport == kms_server::Transport::Plain && !server.local_addr.ip().is_loopback() {
        println!("  WARNING: --insecure-http is on: plain HTTP on a network address (use a TLS-terminating proxy)");
    }
    if let Some(admin) = &server.new_admin {
        print_admin(admin, &server.account);
    }
    if let Some(file) = &seed_file {
        let endpoint = seed_endpoint(server.local_addr, served_chain.is_some());
        let connection =
            match admin::credentials(&admin::connection(endpoint.clone(), credentials_file, region.clone())) {
                Ok((id, secret)) => {
                    let connection = admin::connection_as(endpoint, region, id, secret);
                    // Over TLS the seed trusts the chain this server presents (cert.pem holds
                    // the leaf and, for `init --self-signed`, its CA).
                    match served_chain {
                        Some(chain) => connection.trusting(chain),
                        None => connection,
                    }
                }
                Err(e) => {
                    server.shutdown().await;
                    return Err(format!("--seed needs the admin credentials: {e}"));
                }
            };
        let summary = seed::apply(&connection, file).await;
        match summary {
            Ok(summary) if summary.errors.is_empty() => println!("{}", summary.render()),
            Ok(summary) => {
                println!("{}", summary.render());
                server.shutdown().await;
                return Err(format!("--seed failed: {}", summary.errors.join("; ")));
            }
            Err(e) => {
                server.shutdown().await;
                return Err(format!("--seed failed: {e}"));
            }
        }
    }
    println!("ready; press Ctrl-C to stop");
    tokio::select! {
        () = signals.received() => {
            println!("shutting down: finishing in-flight requests");
            server.shutdown().await;
        }
        () = server.wait() => {}
    }
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), listened for from its creation on.
///
/// Tokio installs a signal's handler when its listener is created, not when it is first
/// awaited: created before the server announces that it is ready, a supervisor's SIGTERM sent
/// the moment it reads "ready" (or earlier) starts the clean shutdown instead of killing the
/// process with the default action.
struct ShutdownSignals {
    #[cfg(unix)]
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listeners = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(term), Ok(interrupt)) => Some((term, interrupt)),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("ferrokms: cannot listen for SIGTERM/SIGINT ({e}); falling back to Ctrl-C only");
                    None
                }
            };
            Self { listeners }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Returns when either signal arrived (also one that arrived before this was awaited).
    async fn received(&mut self) {
        #[cfg(unix)]
        if let Some((term, interrupt)) = &mut self.listeners {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `ferrokms backup FILE`.
fn backup(common: CommonArgs, file: &Path) -> Result<(), String> {
    let config = server_config(&ServeArgs { common, ..ServeArgs::default() })?;
    if config.store_url.is_some() {
        return Err(
            "backup copies the SQLite store; for PostgreSQL use pg_dump or pg_basebackup (docs/operations.md)".into()
        );
    }
    let db = config.database_path();
    if !db.exists() {
        return Err(format!("no store at {}", db.display()));
    }
    kms_store::SqliteStore::snapshot(&db, file).map_err(|e| format!("backup to {}: {e}", file.display()))?;
    println!(
        "backed up {} to {} (key material wrapped by the root key, which is not in it)",
        db.display(),
        file.display()
    );
    Ok(())
}

/// `ferrokms restore FILE`: the snapshot goes into the new data directory only once the root
/// key has opened it.
async fn restore(common: CommonArgs, file: &Path) -> Result<(), String> {
    let config = server_config(&ServeArgs { common, ..ServeArgs::default() })?;
    if config.store_url.is_some() {
        return Err("restore writes a SQLite store; for PostgreSQL use pg_restore (docs/operations.md)".into());
    }
    let target = config.database_path();
    if target.exists() {
        return Err(format!("{} already holds a store; restore into a new data directory", target.display()));
    }
    let _lock = kms_server::bootstrap::lock_data_dir(&config.data_dir).map_err(|e| e.to_string())?;
    let staging = config.data_dir.join("ferrokms.db.restoring");
    let remove_staging = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", staging.display()));
        }
    };
    remove_staging();
    std::fs::copy(file, &staging).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let checked = async {
        let store = kms_store::SqliteStore::open(&staging).map_err(|e| format!("{}: {e}", file.display()))?;
        kms_server::bootstrap::root_key(&config, &store, &kms_crypto_rng()).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    if let Err(e) = checked.await {
        remove_staging();
        return Err(format!("not restored: {e}"));
    }
    std::fs::rename(&staging, &target).map_err(|e| e.to_string())?;
    println!("restored {} into {}", file.display(), config.data_dir.display());
    Ok(())
}

async fn init(args: InitArgs) -> Result<(), String> {
    let serve_args = ServeArgs { common: args.common, ..ServeArgs::default() };
    let config = server_config(&serve_args)?;
    let prepared = kms_server::bootstrap::prepare(&config, &kms_crypto_rng()).await.map_err(|e| e.to_string())?;
    println!("data directory {} is ready", config.data_dir.display());
    println!("  store:    {}", prepared.store.describe());
    println!("  root key: {}", prepared.root.describe());
    match &prepared.new_admin {
        Some(admin) => print_admin(admin, &prepared.account),
        None => println!("  admin credentials were created earlier ({})", config.credentials_path().display()),
    }
    if args.self_signed {
        let files = config.self_signed_tls();
        let made =
            kms_server::tls::generate_self_signed(&files, &args.san, config.clock.now()).map_err(|e| e.to_string())?;
        println!("  TLS certificate: {} (key {}, mode 0600)", made.files.cert.display(), made.files.key.display());
        println!("  clients trust:   {} (aws --ca-bundle, AWS_CA_BUNDLE)", made.ca.display());
        println!(
            "  serve with:      ferrokms serve --tls-cert {} --tls-key {}",
            made.files.cert.display(),
            made.files.key.display()
        );
    }
    Ok(())
}

async fn run_seed(file: &Path, check: bool, connection: &admin::Connection) -> Result<(), String> {
    let parsed = seed::load(file)?;
    if check {
        println!("{}: valid", file.display());
        return Ok(());
    }
    let summary = seed::apply(connection, &parsed).await?;
    println!("{}", summary.render());
    if summary.errors.is_empty() { Ok(()) } else { Err(format!("{} entries failed", summary.errors.len())) }
}

fn kms_crypto_rng() -> impl kms_core::Rng {
    kms_server::system_rng()
}

/// Tasks a runtime worker polls between two looks at the I/O driver (tokio's default is 61). A
/// request here is polled for about 15 µs and finishes without yielding, so with the default a
/// worker under load asked the kernel for new events (an `epoll_wait`) every millisecond or so,
/// while tens of connections were already waiting in its queue; the newly woken ones were queued
/// behind them anyway. Looking less often costs fewer system calls and serves the queue more
/// evenly: at 64 connections on the two-core benchmark machine, Encrypt's p99 fell from 5.2 to 4.0
/// ms and its throughput rose by about a tenth (6 interleaved rounds each; 127 and 1,000 were both
/// better than 61 and both a little worse than 250; ADR 0009, eighth pass). A worker whose queue
/// runs dry still looks at once.
const EVENT_INTERVAL: u32 = 250;

/// Threads of the blocking pool (see `main`).
const BLOCKING_THREADS: usize = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERROKMS_LOG")
        // aws-config warns when it probes for a region it does not find (keys, seed): noise here.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // FERROKMS_LOG_FORMAT=json: one JSON object per line, each request line carrying the
    // request_id that its audit record's requestID repeats.
    if std::env::var("FERROKMS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.init();
    }
    // The blocking pool serves the SQLite store, which has one connection: its calls queue for
    // that connection's lock whatever the number of threads, and each thread keeps a heap of its
    // own. tokio's default of 512 let a burst of cache misses spawn hundreds of threads; 32 held
    // 140 MiB at peak with 100,000 keys in turn, 8 held 106 MiB (seventh pass). With 8, threads
    // racing for the lock left some cache misses waiting behind many others (p99.9 50 ms over
    // 100,000 keys); with 2 the same run has p99.9 17 ms at the same or better throughput, and
    // CreateKey's group commits are as fast (ADR 0009, eighth pass). PostgreSQL's client is
    // asynchronous and does not use the pool.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .event_interval(EVENT_INTERVAL)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrokms: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Init(args) => init(args).await,
            Command::Backup { common, file } => backup(common, &file),
            Command::Restore { common, file } => restore(common, &file).await,
            Command::Audit { command } => audit_cmd::run(&command).await.map(|text| println!("{text}")),
            Command::Root { command } => root_cmd::run(&command).await.map(|text| println!("{text}")),
            Command::Admin { connection, command } => admin::run(&connection, &command).await.map(|answer| {
                println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            }),
            Command::Encrypt(args) => envelope_cmd::encrypt(args).await,
            Command::Decrypt(args) => envelope_cmd::decrypt(args).await,
            Command::Keys { kms, command } => keys_cmd::run(&kms, &command).await.map(|text| println!("{text}")),
            Command::Seed { file, check, connection } => run_seed(&file, check, &connection).await,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hardening_settings_from_the_config_file_and_flags() {
        let file: FileConfig = toml::from_str(
            r#"
            tls_cert = "/etc/ferrokms/cert.pem"
            tls_key = "/etc/ferrokms/key.pem"
            idle_timeout = 5
            max_connections = 7
            body_budget_bytes = 1000
            failed_auth_per_second = 5
            metrics_token = "s3cret"
            [request_quota]
            CreateKey = 100
            [resource_quotas]
            keys = 10
            aliases = 20
            "#,
        )
        .unwrap();
        let mut config = ServerConfig::new(PathBuf::from("/tmp/x"));
        let args = HardeningArgs {
            request_quota: vec!["cryptographic_symmetric=0".into()],
            resource_quota: vec!["grants_per_principal=3".into()],
            header_read_timeout: Some(2),
            body_read_timeout: Some(3),
            failed_auth_burst: Some(0),
            metrics_listen: Some("127.0.0.1:9599".parse().unwrap()),
            ..HardeningArgs::default()
        };
        hardening(&args, &file, &mut config).unwrap();
        assert_eq!(config.tls.as_ref().unwrap().key, PathBuf::from("/etc/ferrokms/key.pem"));
        let quotas = config.request_quotas.as_ref().unwrap();
        assert_eq!(quotas.rate("CreateKey"), Some(100), "file override");
        assert_eq!(quotas.rate("cryptographic_symmetric"), None, "flag override: 0 = unthrottled");
        assert_eq!(quotas.rate("DescribeKey"), Some(2000), "AWS value underneath");
        assert_eq!(config.resource_quotas.keys, 10);
        assert_eq!(config.resource_quotas.aliases, Some(20));
        assert_eq!(config.resource_quotas.grants_per_principal, 3);
        assert_eq!(config.connections.idle_timeout_millis, 5000);
        assert_eq!(config.connections.header_read_timeout_millis, 2000);
        assert_eq!(config.connections.max_connections, 7);
        assert_eq!(config.connections.body_read_timeout_millis, 3000);
        assert_eq!(config.connections.body_budget_bytes, 1000);
        assert_eq!(config.connections.failed_auth_burst, 0, "flag: the limit off");
        assert_eq!(config.connections.failed_auth_per_second, 5, "file");
        assert_eq!(config.metrics_listen, Some("127.0.0.1:9599".parse().unwrap()));
        assert_eq!(config.metrics_token.as_deref(), Some("s3cret"));

        let mut off = ServerConfig::new(PathBuf::from("/tmp/x"));
        hardening(&HardeningArgs::default(), &FileConfig::default(), &mut off).unwrap();
        assert!(off.request_quotas.is_none() && off.tls.is_none(), "quotas off and plain HTTP by default");
        let bad = HardeningArgs { request_quota: vec!["Nope=1".into()], ..HardeningArgs::default() };
        assert!(hardening(&bad, &FileConfig::default(), &mut off).unwrap_err().contains("Nope"));
        let bad = HardeningArgs { request_quotas: Some("sometimes".into()), ..HardeningArgs::default() };
        assert!(hardening(&bad, &FileConfig::default(), &mut off).is_err());
        let bad = HardeningArgs { idle_timeout: Some(0), ..HardeningArgs::default() };
        assert!(hardening(&bad, &FileConfig::default(), &mut off).unwrap_err().contains("idle timeout"));
        let bad = HardeningArgs { resource_quota: vec!["keys=many".into()], ..HardeningArgs::default() };
        assert!(hardening(&bad, &FileConfig::default(), &mut off).is_err());
    }
}
