//! Where delivered CloudTrail files go: one [`TrailSink`] trait, two sinks. [`DirectorySink`]
//! writes under a local directory (the signature of a digest beside it in `<digest>.sig`);
//! [`BucketSink`] puts objects in an S3-compatible bucket through `aws-sdk-s3` (the signature in
//! the object's `x-amz-meta-signature` and `x-amz-meta-signature-algorithm`, where
//! `aws cloudtrail validate-logs` reads it).
//!
//! Both are idempotent: writing an object again with the same name and bytes leaves the same
//! object, which is what lets delivery retry a round after an outage or a crash without
//! duplicating a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::DeliveryError;

/// A digest's signature as it is stored beside the digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestSignature {
    /// The signature, hex.
    pub hex: String,
    /// `SHA256withRSA` (or `Ed25519` for digests written before 0.1's RSA digests).
    pub algorithm: String,
}

/// A place delivered files are written to.
#[async_trait]
pub trait TrailSink: Send + Sync {
    /// The bucket name digests give for the files here (`s3Bucket`, `digestS3Bucket`).
    fn bucket(&self) -> &str;
    /// The key prefix every object name starts with (without its trailing `/`), if any.
    fn prefix(&self) -> Option<&str>;
    /// Stores `gzipped` as `object` (the full name, prefix included), replacing what is there;
    /// a digest goes with its signature.
    ///
    /// # Errors
    /// [`DeliveryError::Write`] or [`DeliveryError::Put`]: nothing is known to be stored.
    async fn put(
        &self,
        object: &str,
        gzipped: Vec<u8>,
        signature: Option<&DigestSignature>,
    ) -> Result<(), DeliveryError>;
    /// The destination, for logs (`s3://bucket/prefix`, a directory).
    fn describe(&self) -> String;
}

/// The bucket name digests give for files in a local directory.
pub const LOCAL_BUCKET: &str = "local";

/// Files under a local directory.
#[derive(Clone, Debug)]
pub struct DirectorySink {
    dir: PathBuf,
}

impl DirectorySink {
    /// Writes under `dir` (created as needed).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

/// Writes `contents` to `path` atomically (a temporary file renamed over it), durably.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[async_trait]
impl TrailSink for DirectorySink {
    fn bucket(&self) -> &str {
        LOCAL_BUCKET
    }

    fn prefix(&self) -> Option<&str> {
        None
    }

    async fn put(
        &self,
        object: &str,
        gzipped: Vec<u8>,
        signature: Option<&DigestSignature>,
    ) -> Result<(), DeliveryError> {
        let path = self.dir.join(object);
        let signature_text = signature.map(|s| s.hex.clone());
        let object_name = object.to_owned();
        tokio::task::spawn_blocking(move || {
            // The signature first: a digest file is never there without it.
            if let Some(text) = signature_text {
                write_atomically(&PathBuf::from(format!("{}.sig", path.display())), text.as_bytes())?;
            }
            write_atomically(&path, &gzipped)
        })
        .await
        .map_err(|e| DeliveryError::Write { object: object_name.clone(), source: std::io::Error::other(e) })?
        .map_err(|source| DeliveryError::Write { object: object_name, source })
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Access keys for the bucket given explicitly (otherwise the AWS SDK's default chain: the
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` environment, `AWS_PROFILE` and the shared
/// files, web identity, container and instance credentials).
#[derive(Clone)]
pub struct BucketCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for BucketCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BucketCredentials({}, [REDACTED])", self.access_key_id)
    }
}

/// An S3-compatible bucket to deliver to.
#[derive(Clone, Debug)]
pub struct BucketTarget {
    /// The bucket.
    pub bucket: String,
    /// The key prefix (without leading or trailing `/`), if any.
    pub prefix: Option<String>,
    /// The endpoint URL (`http://127.0.0.1:9000`); `None` for AWS S3 itself (or whatever
    /// `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` name). Given, requests use path-style
    /// addressing (`URL/bucket/key`), which every S3-compatible server serves.
    pub endpoint: Option<String>,
    /// The bucket's region; `None` for the server's default region.
    pub region: Option<String>,
    /// Explicit credentials; `None` for the SDK's default chain.
    pub credentials: Option<BucketCredentials>,
}

/// How long one PUT may take, retries included, before the round counts as failed.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Objects in an S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct BucketSink {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: Option<String>,
    shown: String,
}

impl BucketSink {
    /// A client for `target`; `default_region` where the target names none. Nothing is sent
    /// until the first [`TrailSink::put`].
    pub async fn connect(target: &BucketTarget, default_region: &str) -> Self {
        use aws_sdk_s3::config::{Region, retry::RetryConfig, timeout::TimeoutConfig};
        let region = target.region.clone().unwrap_or_else(|| default_region.to_owned());
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(region));
        if let Some(c) = &target.credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.as_str(),
                None,
                None,
                "ferrokms-cloudtrail-flags",
            ));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_timeout(PUT_TIMEOUT).build(),
            )
            // Checksums beyond Content-MD5 only where S3 requires them: many S3-compatible
            // servers refuse the newer ones.
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
        if let Some(url) = &target.endpoint {
            config = config.endpoint_url(url).force_path_style(true);
        }
        let prefix = target.prefix.as_deref().map(|p| p.trim_matches('/').to_owned()).filter(|p| !p.is_empty());
        let shown = match &prefix {
            Some(p) => format!("s3://{}/{p}", target.bucket),
            None => format!("s3://{}", target.bucket),
        };
        Self { client: aws_sdk_s3::Client::from_conf(config.build()), bucket: target.bucket.clone(), prefix, shown }
    }
}

#[async_trait]
impl TrailSink for BucketSink {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    async fn put(
        &self,
        object: &str,
        gzipped: Vec<u8>,
        signature: Option<&DigestSignature>,
    ) -> Result<(), DeliveryError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(gzipped));
        if let Some(s) = signature {
            request = request.metadata("signature", &s.hex).metadata("signature-algorithm", &s.algorithm);
        }
        request.send().await.map(|_| ()).map_err(|e| DeliveryError::Put {
            bucket: self.bucket.clone(),
            object: object.to_owned(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}
