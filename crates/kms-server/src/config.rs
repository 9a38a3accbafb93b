//! Server configuration, as assembled by the CLI from flags, environment and config file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kms_core::Clock;
use kms_core::ids::Region;

/// How long audit records are kept by default: seven years.
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 7 * 365 + 2;

/// The certificate chain and private key a TLS listener presents (PEM files).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Limits on connections: the defence against slow clients and connection floods.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers (and to finish a TLS handshake)
    /// before the connection is closed: the slow-loris bound.
    pub header_read_timeout_millis: u64,
    /// How long a connection may stay silent (no byte read or written) before it is closed.
    pub idle_timeout_millis: u64,
    /// Most connections served at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// How long a shutdown waits for in-flight requests before it closes their connections.
    pub shutdown_grace_millis: u64,
    /// How long a client may take to send a request's whole body, counted from when the server
    /// starts reading it; past it the request is answered `RequestTimeoutException` (408) and
    /// the connection closed. The header timeout does not cover the body: without this, a client
    /// sending a byte now and then held its connection and memory indefinitely.
    pub body_read_timeout_millis: u64,
    /// Bytes all request bodies being read (or whose requests are not yet answered) may hold at
    /// once; a body that would go past it is refused with `ThrottlingException`. Never below
    /// `max_body_bytes`.
    pub body_budget_bytes: usize,
    /// Requests failing authentication that one source address (an IPv6 /64) may send in a
    /// burst; past it, and past `failed_auth_per_second`, they are answered
    /// `ThrottlingException` and not audited. 0 turns the limit off.
    pub failed_auth_burst: u32,
    /// Requests failing authentication per second a source may keep sending (and have audited).
    pub failed_auth_per_second: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: crate::http::MAX_BODY_BYTES,
            header_read_timeout_millis: 10_000,
            idle_timeout_millis: 60_000,
            max_connections: 4096,
            shutdown_grace_millis: 30_000,
            body_read_timeout_millis: 20_000,
            body_budget_bytes: crate::body::DEFAULT_BUDGET_BYTES,
            failed_auth_burst: 20,
            failed_auth_per_second: 1,
        }
    }
}

/// Everything `start` needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:4599`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory holding the SQLite database (and, by default, the root key file).
    pub data_dir: PathBuf,
    /// Root key file; defaults to `<data_dir>/root.key`.
    pub root_key_file: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://user@host:5432/db`) to use instead of SQLite in the data
    /// directory.
    pub store_url: Option<String>,
    /// The account id a new data directory (or database) is created with; `None` draws a random
    /// one. Test suites and fixtures that hard-code ids such as `123456789012` pin it. A store
    /// created with another id refuses to start under this one.
    pub account_id: Option<kms_core::ids::AccountId>,
    /// Region assumed where a request carries none (admin tooling); requests use their SigV4
    /// credential scope.
    pub default_region: Region,
    /// Accept the well-known access key `test` / secret `test` (local development only).
    pub insecure_dev_credentials: bool,
    /// Most keys held unwrapped in memory.
    pub key_cache_capacity: usize,
    /// Where key events go.
    pub event_sinks: Vec<crate::events::Sink>,
    /// Where the audit trail is delivered as CloudTrail log and digest files, if anywhere.
    pub trail_delivery: Option<crate::trail::TrailDelivery>,
    /// How often event delivery looks for new events.
    pub event_poll_millis: u64,
    /// How many days audit records are kept.
    pub audit_retention_days: i64,
    /// How often the scheduler looks for due rotations and deletions.
    pub scheduler_interval_millis: u64,
    /// How long a cached key, alias, credential or identity policy is used before it is read
    /// again: the fallback bound on how late a change is seen when its push invalidation was
    /// missed (see [`crate::invalidation`]).
    pub key_cache_ttl_millis: i64,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// UNSAFE: allow plain HTTP on an address that is not loopback.
    pub insecure_http: bool,
    /// Connection limits and timeouts.
    pub connections: ConnectionLimits,
    /// Serve `/metrics` on this address (plain HTTP) and not on `listen`; `None` serves it on
    /// `listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// Request-rate quotas per account, region and operation class; `None` (the default)
    /// throttles nothing.
    pub request_quotas: Option<crate::quota::RequestQuotas>,
    /// Resource quotas (keys, aliases and grants), answered with `LimitExceededException`.
    pub resource_quotas: crate::quota::ResourceQuotas,
    /// The clock (the system clock in production; tests inject a manual one).
    pub clock: Arc<dyn Clock>,
    /// Where the root key comes from: a key file (the default), a passphrase or an HSM.
    pub root_key_provider: RootKeySource,
}

/// Where the root key comes from.
#[derive(Clone, Default)]
pub enum RootKeySource {
    /// A key file (`root_key_file`, by default `DATA_DIR/root.key`).
    #[default]
    File,
    /// Derived from this passphrase with Argon2id (salt and parameters recorded in the store).
    Passphrase(zeroize::Zeroizing<String>),
    /// A non-extractable AES key in an HSM, used through PKCS#11 (token and key labels recorded
    /// in the store; the PIN never is).
    Pkcs11 {
        /// The module, token and key.
        location: kms_crypto::Pkcs11Location,
        /// The token's user PIN.
        pin: zeroize::Zeroizing<String>,
    },
}

impl RootKeySource {
    /// The provider's name as recorded (`file`, `passphrase`, `pkcs11`).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Passphrase(_) => "passphrase",
            Self::Pkcs11 { .. } => "pkcs11",
        }
    }
}

impl std::fmt::Debug for RootKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ServerConfig {
    /// Defaults for a data directory: loopback port 4599, us-east-1, system clock.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4599)),
            data_dir,
            root_key_file: None,
            store_url: None,
            account_id: None,
            default_region: Region::parse("us-east-1").unwrap_or_else(|_| unreachable_region()),
            insecure_dev_credentials: false,
            key_cache_capacity: 10_000,
            key_cache_ttl_millis: crate::cache::DEFAULT_TTL_MILLIS,
            scheduler_interval_millis: 1000,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            event_sinks: Vec::new(),
            trail_delivery: None,
            event_poll_millis: 200,
            tls: None,
            insecure_http: false,
            connections: ConnectionLimits::default(),
            metrics_listen: None,
            metrics_token: None,
            request_quotas: None,
            resource_quotas: crate::quota::ResourceQuotas::default(),
            clock: Arc::new(crate::clock::SystemClock),
            root_key_provider: RootKeySource::File,
        }
    }

    /// The root key file in use.
    pub fn root_key_path(&self) -> PathBuf {
        self.root_key_file.clone().unwrap_or_else(|| self.data_dir.join("root.key"))
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("ferrokms.db")
    }

    /// Where `ferrokms init --self-signed` writes its certificate and key.
    pub fn self_signed_tls(&self) -> TlsFiles {
        let dir = self.data_dir.join("tls");
        TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") }
    }

    /// The file the first start writes the admin credentials to.
    pub fn credentials_path(&self) -> PathBuf {
        self.data_dir.join("admin-credentials")
    }
}

// INVARIANT: "us-east-1" is a valid region name, so this is never called.
#[allow(clippy::panic)]
pub(crate) fn unreachable_region() -> Region {
    panic!("us-east-1 must parse as a region")
}
