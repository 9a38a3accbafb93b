//! Test harness: start a server in a temporary data directory and build SDK clients for it.

use std::path::Path;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use kms_core::{Clock, ManualClock};
use kms_server::{RunningServer, ServerConfig};

pub struct TestServer {
    pub server: RunningServer,
    pub admin_id: String,
    pub admin_secret: String,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir.to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// Reads the admin credentials the first start wrote.
pub fn admin_from_file(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .unwrap()
    };
    (field("aws_access_key_id"), field("aws_secret_access_key"))
}

pub async fn start_with(config: ServerConfig, dir: tempfile::TempDir) -> TestServer {
    let server = kms_server::start(config).await.expect("server starts");
    let (admin_id, admin_secret) = admin_from_file(dir.path());
    TestServer { server, admin_id, admin_secret, dir }
}

pub async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    start_with(config, dir).await
}

/// A server whose clock the test moves.
pub async fn start_with_clock() -> (TestServer, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let clock = Arc::new(ManualClock::new(kms_server::clock::SystemClock.now()));
    config.clock = clock.clone();
    (start_with(config, dir).await, clock)
}

pub fn client_for(addr: std::net::SocketAddr, id: &str, secret: &str, region: &str) -> Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "ferrokms-test"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

impl TestServer {
    pub fn client(&self) -> Client {
        self.client_in("us-east-1")
    }

    pub fn client_in(&self, region: &str) -> Client {
        client_for(self.server.local_addr, &self.admin_id, &self.admin_secret, region)
    }

    pub async fn create_key(&self) -> String {
        self.client().create_key().send().await.unwrap().key_metadata.unwrap().key_id
    }
}

/// The AWS error code and message of a failed call.
pub fn error_of<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<impl std::fmt::Debug, SdkError<E, R>>,
) -> (String, String) {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(SdkError::ServiceError(e)) => {
            let err = e.err();
            (err.code().unwrap_or_default().to_owned(), err.message().unwrap_or_default().to_owned())
        }
        Err(other) => panic!("expected a service error, got {other:?}"),
    }
}

pub fn code_of<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<impl std::fmt::Debug, SdkError<E, R>>,
) -> String {
    error_of(result).0
}
