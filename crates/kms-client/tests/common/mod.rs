//! The shared harness of the kms-client tests: a real ferrokms server in process (its own data
//! directory, real HTTP and SigV4) and an SDK client signed as its admin.

#![allow(dead_code, clippy::unwrap_used)]

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region};

pub struct Server {
    pub server: kms_server::RunningServer,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

/// A started server and an admin client without retries.
pub async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let client = Client::from_conf(admin_config(&server).build());
    Server { server, client, dir }
}

/// SDK configuration for the server's first-start admin, to extend (interceptors) and build.
pub fn admin_config(server: &kms_server::RunningServer) -> aws_sdk_kms::config::Builder {
    let admin = server.new_admin.as_ref().unwrap();
    aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(
            &admin.access_key_id,
            String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap(),
            None,
            None,
            "test",
        ))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
}
