//! The shared harness of the kms-client tests: a real ferrokms server in process (its own data
//! directory, real HTTP and SigV4) and an SDK client signed as its admin.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{BehaviorVersion, ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_kms::error::BoxError;

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

/// Holds every DescribeKey for a while, so that lookups from many tasks really overlap.
#[derive(Debug)]
pub struct SlowDescribe(pub Duration);

impl Intercept for SlowDescribe {
    fn name(&self) -> &'static str {
        "SlowDescribe"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.request().headers().get("x-amz-target") == Some("TrentService.DescribeKey") {
            std::thread::sleep(self.0);
        }
        Ok(())
    }
}
