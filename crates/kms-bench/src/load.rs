//! The load generator: one task per keep-alive HTTP/1.1 connection, each sending SigV4-signed
//! KMS requests back to back for a fixed duration after a warm-up, latencies recorded in an
//! HDR histogram (microseconds, 3 significant digits).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::sign::{CONTENT_TYPE, Signer, amz_date_now};

/// The operations the load generator can send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Operation {
    /// Encrypt 32 bytes.
    Encrypt32,
    /// Encrypt 4096 bytes.
    Encrypt4k,
    /// Decrypt a 32-byte ciphertext made at set-up.
    Decrypt,
    /// GenerateDataKey, AES_256.
    GenerateDataKey,
    /// DescribeKey.
    DescribeKey,
    /// CreateKey (a durable write).
    CreateKey,
    /// GenerateMac, HMAC_SHA_256 over 32 bytes, with an HMAC_256 key.
    GenerateMac,
    /// VerifyMac of a MAC made at set-up (HMAC_256).
    VerifyMac,
    /// Sign 32 bytes (RAW) with an ECC_NIST_P256 key, ECDSA_SHA_256.
    SignP256,
    /// Sign 32 bytes (RAW) with an ECC_NIST_EDWARDS25519 key, ED25519_SHA_512.
    SignEd25519,
    /// Sign 32 bytes (RAW) with an ML_DSA_44 key, ML_DSA_SHAKE_256.
    SignMlDsa44,
    /// Sign 32 bytes (RAW) with an RSA_2048 key, RSASSA_PKCS1_V1_5_SHA_256.
    SignRsa2048,
    /// CreateKey of an RSA_4096 SIGN_VERIFY key (key generation: long, CPU-bound).
    CreateKeyRsa4096,
}

impl Operation {
    /// The `X-Amz-Target` header value.
    pub fn target(self) -> &'static str {
        match self {
            Operation::Encrypt32 | Operation::Encrypt4k => "TrentService.Encrypt",
            Operation::Decrypt => "TrentService.Decrypt",
            Operation::GenerateDataKey => "TrentService.GenerateDataKey",
            Operation::DescribeKey => "TrentService.DescribeKey",
            Operation::CreateKey | Operation::CreateKeyRsa4096 => "TrentService.CreateKey",
            Operation::GenerateMac => "TrentService.GenerateMac",
            Operation::VerifyMac => "TrentService.VerifyMac",
            Operation::SignP256 | Operation::SignEd25519 | Operation::SignMlDsa44 | Operation::SignRsa2048 => {
                "TrentService.Sign"
            }
        }
    }

    /// The label used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Operation::Encrypt32 => "Encrypt 32 B",
            Operation::Encrypt4k => "Encrypt 4 KB",
            Operation::Decrypt => "Decrypt",
            Operation::GenerateDataKey => "GenerateDataKey",
            Operation::DescribeKey => "DescribeKey",
            Operation::CreateKey => "CreateKey",
            Operation::GenerateMac => "GenerateMac HMAC_256",
            Operation::VerifyMac => "VerifyMac HMAC_256",
            Operation::SignP256 => "Sign ECC_NIST_P256",
            Operation::SignEd25519 => "Sign ED25519",
            Operation::SignMlDsa44 => "Sign ML_DSA_44",
            Operation::SignRsa2048 => "Sign RSA_2048",
            Operation::CreateKeyRsa4096 => "CreateKey RSA_4096",
        }
    }

    /// The (KeySpec, KeyUsage) of the key the run uses; `None` for the default symmetric key
    /// (and for CreateKey, whose key is not used).
    pub fn key_kind(self) -> Option<(&'static str, &'static str)> {
        match self {
            Operation::GenerateMac | Operation::VerifyMac => Some(("HMAC_256", "GENERATE_VERIFY_MAC")),
            Operation::SignP256 => Some(("ECC_NIST_P256", "SIGN_VERIFY")),
            Operation::SignEd25519 => Some(("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")),
            Operation::SignMlDsa44 => Some(("ML_DSA_44", "SIGN_VERIFY")),
            Operation::SignRsa2048 => Some(("RSA_2048", "SIGN_VERIFY")),
            Operation::Encrypt32
            | Operation::Encrypt4k
            | Operation::Decrypt
            | Operation::GenerateDataKey
            | Operation::DescribeKey
            | Operation::CreateKey
            | Operation::CreateKeyRsa4096 => None,
        }
    }

    /// The signing algorithm of the Sign operations.
    pub fn signing_algorithm(self) -> Option<&'static str> {
        match self {
            Operation::SignP256 => Some("ECDSA_SHA_256"),
            Operation::SignEd25519 => Some("ED25519_SHA_512"),
            Operation::SignMlDsa44 => Some("ML_DSA_SHAKE_256"),
            Operation::SignRsa2048 => Some("RSASSA_PKCS1_V1_5_SHA_256"),
            _ => None,
        }
    }
}

/// Where requests go and who signs them.
#[derive(Clone)]
pub struct Endpoint {
    /// The server address.
    pub addr: SocketAddr,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: String,
    /// Region of the credential scope.
    pub region: String,
}

impl Endpoint {
    fn signer(&self) -> Signer {
        Signer::new(&self.access_key_id, &self.secret, &self.region, &self.addr.to_string())
    }
}

/// What one run sends.
#[derive(Clone)]
pub struct Workload {
    /// The operation.
    pub operation: Operation,
    /// Key ids used in turn (one for most runs; many for the large-keyring run).
    pub key_ids: Arc<Vec<String>>,
    /// For Decrypt: the base64 ciphertext made at set-up; for VerifyMac: the base64 MAC.
    pub ciphertext: Option<String>,
}

impl Workload {
    /// The JSON body of request number `n`.
    fn body(&self, n: usize) -> Bytes {
        let key = self.key_ids.get(n % self.key_ids.len().max(1)).map_or("", String::as_str);
        let b64 = base64::engine::general_purpose::STANDARD;
        let json = match self.operation {
            Operation::Encrypt32 => {
                serde_json::json!({"KeyId": key, "Plaintext": b64.encode([0x5a_u8; 32])})
            }
            Operation::Encrypt4k => {
                serde_json::json!({"KeyId": key, "Plaintext": b64.encode([0x5a_u8; 4096])})
            }
            Operation::Decrypt => {
                serde_json::json!({"KeyId": key, "CiphertextBlob": self.ciphertext.clone().unwrap_or_default()})
            }
            Operation::GenerateDataKey => serde_json::json!({"KeyId": key, "KeySpec": "AES_256"}),
            Operation::DescribeKey => serde_json::json!({"KeyId": key}),
            Operation::CreateKey => serde_json::json!({"Description": "ferrokms-bench"}),
            Operation::CreateKeyRsa4096 => serde_json::json!({
                "Description": "ferrokms-bench", "KeySpec": "RSA_4096", "KeyUsage": "SIGN_VERIFY"
            }),
            Operation::GenerateMac => {
                serde_json::json!({"KeyId": key, "Message": b64.encode([0x5a_u8; 32]), "MacAlgorithm": "HMAC_SHA_256"})
            }
            Operation::VerifyMac => serde_json::json!({
                "KeyId": key,
                "Message": b64.encode([0x5a_u8; 32]),
                "MacAlgorithm": "HMAC_SHA_256",
                "Mac": self.ciphertext.clone().unwrap_or_default()
            }),
            Operation::SignP256 | Operation::SignEd25519 | Operation::SignMlDsa44 | Operation::SignRsa2048 => {
                serde_json::json!({
                    "KeyId": key,
                    "Message": b64.encode([0x5a_u8; 32]),
                    "MessageType": "RAW",
                    "SigningAlgorithm": self.operation.signing_algorithm().unwrap_or_default()
                })
            }
        };
        Bytes::from(json.to_string())
    }
}

/// How hard and how long.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent connections (one task each).
    pub connections: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    pub warmup: Duration,
    /// A request taking longer than this counts as an error (a timeout).
    pub timeout: Duration,
}

/// The outcome of one run.
pub struct Report {
    /// Successful (HTTP 200) requests in the measured window.
    pub ok: u64,
    /// Failed requests (non-200, connection errors, timeouts) in the measured window.
    pub errors: u64,
    /// Timeouts among the errors.
    pub timeouts: u64,
    /// One error, for the operator.
    pub first_error: Option<String>,
    /// The measured window, seconds.
    pub seconds: f64,
    /// Latencies of successful requests, microseconds.
    pub latency: Histogram<u64>,
}

impl Report {
    /// Adds another run's outcome to this one (counts and measured time add up, latencies
    /// merge), so that the rate is over both runs.
    pub fn add(&mut self, other: Report) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.seconds += other.seconds;
        self.first_error = self.first_error.take().or(other.first_error);
        // Both histograms have the same bounds (see `histogram`), so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// Successful requests per second.
    #[allow(clippy::cast_precision_loss)] // request counts are far below 2^52
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.ok as f64 / self.seconds } else { 0.0 }
    }

    /// A latency quantile in milliseconds.
    #[allow(clippy::cast_precision_loss)]
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// One line: rate, errors, quantiles.
    pub fn line(&self) -> String {
        format!(
            "{:>10.0} req/s  errors {:>6} (timeouts {})  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms",
            self.rate(),
            self.errors,
            self.timeouts,
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999)
        )
    }
}

/// An error from one request.
#[derive(Debug)]
pub enum CallError {
    /// Could not connect or the connection failed.
    Connection(String),
    /// The server answered with a status other than 200.
    Status(u16, String),
    /// No answer within the timeout.
    Timeout,
    /// The server had closed the connection before the request was sent.
    Closed,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connection(e) => write!(f, "connection: {e}"),
            CallError::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            CallError::Timeout => f.write_str("timeout"),
            CallError::Closed => f.write_str("connection closed by the server"),
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, CallError> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| CallError::Connection(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| CallError::Connection(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(sender: &mut Sender, signer: &mut Signer, target: &str, body: Bytes) -> Result<Bytes, CallError> {
    let signed = signer.sign(target, &body, &amz_date_now());
    let request = http::Request::post("/")
        .header("host", signer.host())
        .header("content-type", CONTENT_TYPE)
        .header("x-amz-date", signed.amz_date)
        .header("x-amz-target", target)
        .header("authorization", signed.authorization)
        .body(Full::new(body))
        .map_err(|e| CallError::Connection(e.to_string()))?;
    // A server that closes idle or answered connections (moto_server does after each
    // response) is not failing: the caller reconnects.
    sender.ready().await.map_err(|_| CallError::Closed)?;
    let response = sender.send_request(request).await.map_err(|e| CallError::Connection(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| CallError::Connection(e.to_string()))?.to_bytes();
    if status == 200 { Ok(bytes) } else { Err(CallError::Status(status, String::from_utf8_lossy(&bytes).into_owned())) }
}

/// Sends one request on a fresh connection and returns the JSON answer (set-up calls).
///
/// # Errors
/// The request's failure.
pub async fn call(endpoint: &Endpoint, target: &str, body: &serde_json::Value) -> Result<serde_json::Value, CallError> {
    let mut sender = connect(endpoint.addr).await?;
    let mut signer = endpoint.signer();
    let bytes = send(&mut sender, &mut signer, target, Bytes::from(body.to_string())).await?;
    serde_json::from_slice(&bytes).map_err(|e| CallError::Connection(format!("answer is not JSON: {e}")))
}

/// Creates a key and, for Decrypt, a ciphertext to decrypt: the workload for `operation`.
///
/// # Errors
/// The failing set-up call.
pub async fn prepare(endpoint: &Endpoint, operation: Operation, key_ids: Vec<String>) -> Result<Workload, CallError> {
    let key_ids = if key_ids.is_empty() {
        let request = match operation.key_kind() {
            Some((spec, usage)) => serde_json::json!({"KeySpec": spec, "KeyUsage": usage}),
            None => serde_json::json!({}),
        };
        let created = call(endpoint, "TrentService.CreateKey", &request).await?;
        let id = created.pointer("/KeyMetadata/KeyId").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        vec![id]
    } else {
        key_ids
    };
    let ciphertext = if operation == Operation::Decrypt {
        let key = key_ids.first().cloned().unwrap_or_default();
        let plaintext = base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 32]);
        let sealed =
            call(endpoint, "TrentService.Encrypt", &serde_json::json!({"KeyId": key, "Plaintext": plaintext})).await?;
        Some(sealed.get("CiphertextBlob").and_then(|v| v.as_str()).unwrap_or_default().to_owned())
    } else if operation == Operation::VerifyMac {
        let key = key_ids.first().cloned().unwrap_or_default();
        let message = base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 32]);
        let made = call(
            endpoint,
            "TrentService.GenerateMac",
            &serde_json::json!({"KeyId": key, "Message": message, "MacAlgorithm": "HMAC_SHA_256"}),
        )
        .await?;
        Some(made.get("Mac").and_then(|v| v.as_str()).unwrap_or_default().to_owned())
    } else {
        None
    };
    // Decrypt and VerifyMac name the key their ciphertext or MAC was made under.
    let key_ids = if matches!(operation, Operation::Decrypt | Operation::VerifyMac) {
        key_ids.into_iter().take(1).collect()
    } else {
        key_ids
    };
    Ok(Workload { operation, key_ids: Arc::new(key_ids), ciphertext })
}

struct ConnectionResult {
    ok: u64,
    errors: u64,
    timeouts: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

#[allow(clippy::expect_used)]
fn histogram() -> Histogram<u64> {
    // INVARIANT: 1 µs to 10 min at 3 significant digits are valid bounds.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

async fn connection(
    index: usize,
    endpoint: Endpoint,
    workload: Workload,
    shape: Shape,
    measure_from: Instant,
    end: Instant,
) -> ConnectionResult {
    let mut result = ConnectionResult { ok: 0, errors: 0, timeouts: 0, first_error: None, latency: histogram() };
    let mut signer = endpoint.signer();
    let target = workload.operation.target();
    let fixed_body = (workload.key_ids.len() <= 1).then(|| workload.body(0));
    let mut n = index;
    let mut sender: Option<Sender> = None;
    loop {
        // Latency is what a client sees, so wall time is what is meant.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        if start >= end {
            break;
        }
        let body = fixed_body.clone().unwrap_or_else(|| workload.body(n));
        n = n.wrapping_add(shape.connections);
        let outcome = tokio::time::timeout(shape.timeout, async {
            // One retry on a fresh connection when the server had closed the previous one.
            for _ in 0..2 {
                if sender.as_ref().is_none_or(Sender::is_closed) {
                    sender = Some(connect(endpoint.addr).await?);
                }
                let result = match sender.as_mut() {
                    Some(s) => send(s, &mut signer, target, body.clone()).await,
                    None => Err(CallError::Closed),
                };
                match result {
                    Err(CallError::Closed) => sender = None,
                    other => return other,
                }
            }
            Err(CallError::Closed)
        })
        .await
        .unwrap_or(Err(CallError::Timeout));
        #[allow(clippy::disallowed_methods)]
        let done = Instant::now();
        let measured = start >= measure_from && done <= end;
        match outcome {
            Ok(_) => {
                if measured {
                    result.ok += 1;
                    let micros = u64::try_from(done.duration_since(start).as_micros()).unwrap_or(u64::MAX);
                    result.latency.saturating_record(micros.max(1));
                }
            }
            Err(e) => {
                if !matches!(e, CallError::Status(..)) {
                    // The connection is in an unknown state: start a new one.
                    sender = None;
                }
                if measured || done > end {
                    result.errors += 1;
                    if matches!(e, CallError::Timeout) {
                        result.timeouts += 1;
                    }
                    if result.first_error.is_none() {
                        result.first_error = Some(e.to_string());
                    }
                }
            }
        }
    }
    result
}

/// Runs `workload` against `endpoint` with `shape` and reports.
pub async fn run(endpoint: &Endpoint, workload: &Workload, shape: Shape) -> Report {
    #[allow(clippy::disallowed_methods)]
    let begin = Instant::now();
    let measure_from = begin + shape.warmup;
    let end = measure_from + shape.duration;
    let mut tasks = Vec::with_capacity(shape.connections);
    for i in 0..shape.connections {
        tasks.push(tokio::spawn(connection(i, endpoint.clone(), workload.clone(), shape, measure_from, end)));
    }
    let mut report = Report {
        ok: 0,
        errors: 0,
        timeouts: 0,
        first_error: None,
        seconds: shape.duration.as_secs_f64(),
        latency: histogram(),
    };
    for task in tasks {
        match task.await {
            Ok(r) => {
                report.ok += r.ok;
                report.errors += r.errors;
                report.timeouts += r.timeouts;
                if report.first_error.is_none() {
                    report.first_error = r.first_error;
                }
                let _ = report.latency.add(&r.latency);
            }
            Err(e) => {
                report.errors += 1;
                report.first_error.get_or_insert_with(|| format!("load task failed: {e}"));
            }
        }
    }
    report
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn report(ok: u64, errors: u64, seconds: f64, latency_us: u64) -> Report {
        let mut latency = histogram();
        latency.record_n(latency_us, ok).unwrap();
        Report { ok, errors, timeouts: errors, first_error: None, seconds, latency }
    }

    /// Two runs added up: the rate is over both (not the mean of the two rates), errors add, and
    /// the quantiles are those of all the latencies together.
    #[test]
    fn runs_add_up() {
        let mut total = report(1000, 1, 1.0, 1000);
        let mut second = report(3000, 2, 2.0, 3000);
        second.first_error = Some("timeout".into());
        total.add(second);
        assert_eq!(total.ok, 4000);
        assert_eq!(total.errors, 3);
        assert_eq!(total.timeouts, 3);
        assert!((total.rate() - 4000.0 / 3.0).abs() < 1e-9);
        assert_eq!(total.first_error.as_deref(), Some("timeout"));
        assert!((total.quantile_ms(0.2) - 1.0).abs() < 0.01);
        assert!((total.quantile_ms(0.9) - 3.0).abs() < 0.01);
    }
}
