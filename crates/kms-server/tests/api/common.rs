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
    // Tests run the scheduler themselves (Service::run_due_work) after moving the clock; the
    // background pass would race them, so it ticks only once, at start.
    config.scheduler_interval_millis = 86_400_000;
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

/// Sends a request signed for real with the official `aws-sigv4` signer over a raw socket and
/// returns (status line, body). `creds` is (access key id, secret, session token).
pub async fn signed(
    addr: std::net::SocketAddr,
    creds: (&str, &str, Option<&str>),
    service: &str,
    target: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (String, String) {
    signed_extra(addr, creds, service, target, content_type, &[], body).await
}

/// [`signed`] with extra (signed) headers.
pub async fn signed_extra(
    addr: std::net::SocketAddr,
    creds: (&str, &str, Option<&str>),
    service: &str,
    target: Option<&str>,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let request = RawRequest { addr, creds, service, target, content_type, extra, body, keep_alive: false };
    let head = request.signed_head(std::time::SystemTime::now());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// A POST to `/` described member by member, signed with the official `aws-sigv4` signer.
pub struct RawRequest<'a> {
    pub addr: std::net::SocketAddr,
    /// (access key id, secret, session token).
    pub creds: (&'a str, &'a str, Option<&'a str>),
    pub service: &'a str,
    pub target: Option<&'a str>,
    pub content_type: &'a str,
    pub extra: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub keep_alive: bool,
}

impl<'a> RawRequest<'a> {
    /// A KMS request (`TrentService.<operation>`, AWS JSON 1.1) as the given access key.
    pub fn kms(addr: std::net::SocketAddr, creds: (&'a str, &'a str), target: &'a str, body: &'a [u8]) -> Self {
        Self {
            addr,
            creds: (creds.0, creds.1, None),
            service: "kms",
            target: Some(target),
            content_type: "application/x-amz-json-1.1",
            extra: &[],
            body,
            keep_alive: false,
        }
    }

    /// The HTTP/1.1 head (request line and headers, ending with the blank line), signed as of
    /// `time`; the body follows it on the wire.
    pub fn signed_head(&self, time: std::time::SystemTime) -> String {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        use aws_smithy_runtime_api::client::identity::Identity;

        let addr = self.addr;
        let mut builder = http::Request::post(format!("http://{addr}/"))
            .header("host", addr.to_string())
            .header("content-type", self.content_type);
        if let Some(target) = self.target {
            builder = builder.header("x-amz-target", target);
        }
        for (name, value) in self.extra {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(self.body.to_vec()).unwrap();
        let (id, secret, token) = self.creds;
        let identity: Identity = Credentials::new(id, secret, token.map(str::to_owned), None, "signed").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            request.uri().to_string(),
            request.headers().iter().map(|(n, v)| (n.as_str(), v.to_str().unwrap())),
            SignableBody::Bytes(request.body()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let mut head = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in request.headers() {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        let connection = if self.keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!("content-length: {}\r\nconnection: {connection}\r\n\r\n", self.body.len()));
        head
    }
}

impl TestServer {
    /// Calls the admin API as the admin and returns the JSON answer (panics on failure).
    pub async fn admin(&self, operation: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, text) = signed(
            self.server.local_addr,
            (&self.admin_id, &self.admin_secret, None),
            "kms",
            Some(&format!("FerrokmsAdmin.{operation}")),
            "application/x-amz-json-1.1",
            body.to_string().as_bytes(),
        )
        .await;
        assert!(status.contains("200"), "{operation}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A user with an access key; returns an SDK client acting as that user.
    pub async fn user(&self, name: &str) -> (Client, String) {
        let created = self.admin("CreateUser", serde_json::json!({ "UserName": name })).await;
        let arn = created["Principal"]["Arn"].as_str().unwrap().to_owned();
        let key = self.admin("CreateAccessKey", serde_json::json!({ "UserName": name })).await;
        let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap();
        let secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap();
        (client_for(self.server.local_addr, id, secret, "us-east-1"), arn)
    }
}
