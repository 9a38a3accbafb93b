//! Key events in EventBridge's shape (`source: aws.kms`, `detail-type: KMS CMK Rotation` /
//! `KMS CMK Deletion` / `KMS Imported Key Material Expiration`), delivered to configured sinks: an HTTP webhook (JSON POST signed with
//! HMAC-SHA256) and a NATS subject.
//!
//! Events are read from the audit trail, where rotations and deletions are committed in the same
//! transaction as the action itself; each sink keeps a cursor (the last delivered audit record)
//! in the store. So an event exists exactly when its action happened, a sink that is down loses
//! nothing (delivery resumes from the cursor, retried with backoff), and delivery never blocks a
//! request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kms_store::Store;
use kms_store::audit::AuditRow;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tracing::warn;

/// Where events go.
#[derive(Clone, Debug)]
pub enum Sink {
    /// POST each event as JSON to `url`, with `X-Ferrokms-Signature: sha256=<hex HMAC of the body
    /// under secret>`.
    Webhook {
        /// The receiver.
        url: String,
        /// The HMAC secret the receiver verifies with.
        secret: String,
    },
    /// Publish each event to `subject` on the NATS server at `address` (`host:port`).
    Nats {
        /// The server.
        address: String,
        /// The subject.
        subject: String,
    },
}

impl Sink {
    /// The name under which the sink's cursor is kept.
    pub fn name(&self) -> String {
        match self {
            Self::Webhook { url, .. } => format!("webhook:{url}"),
            Self::Nats { address, subject } => format!("nats:{address}/{subject}"),
        }
    }
}

/// The EventBridge event for an audit record, if the record is one that produces an event.
pub fn event_for(row: &AuditRow) -> Option<Value> {
    let (detail_type, rotation_type) = match (row.event_name.as_str(), row.error_code.is_none()) {
        ("RotateKey", true) => ("KMS CMK Rotation", Some("AUTOMATIC")),
        ("RotateKeyOnDemand", true) => ("KMS CMK Rotation", Some("ON_DEMAND")),
        ("DeleteKey", true) => ("KMS CMK Deletion", None),
        ("DeleteExpiredKeyMaterial", true) => ("KMS Imported Key Material Expiration", None),
        _ => return None,
    };
    let arn = row.key_arn.as_deref()?;
    let mut parts = arn.split(':');
    let (region, account) = (parts.nth(3)?, parts.next()?);
    let key_id = arn.rsplit('/').next()?;
    let mut detail = json!({"key-id": key_id});
    if let (Some(kind), Some(map)) = (rotation_type, detail.as_object_mut()) {
        map.insert("rotation-type".into(), Value::String(kind.into()));
    }
    Some(json!({
        "version": "0",
        "id": row.event_id,
        "detail-type": detail_type,
        "source": "aws.kms",
        "account": account,
        "time": row.time.rfc3339(),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }))
}

/// The signature header value for a webhook body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(kms_crypto::MacKey::from_bytes(secret.as_bytes()).sign(body)))
}

async fn deliver_webhook(url: &str, secret: &str, body: &[u8], id: &str) -> Result<(), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .header("x-ferrokms-signature", signature(secret, body))
        .header("x-ferrokms-event-id", id)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if response.status().is_success() { Ok(()) } else { Err(format!("receiver answered {}", response.status())) }
}

/// A minimal NATS publisher: CONNECT once, then PUB each event and wait for the PONG that
/// follows a PING, which tells the server has processed the PUB.
struct Nats {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Nats {
    async fn connect(address: &str) -> Result<Self, String> {
        let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let (read, writer) = stream.into_split();
        let mut nats = Self { reader: BufReader::new(read), writer };
        let mut info = String::new();
        nats.reader.read_line(&mut info).await.map_err(|e| e.to_string())?;
        if !info.starts_with("INFO") {
            return Err(format!("not a NATS server: {}", info.trim()));
        }
        nats.writer
            .write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"ferrokms\"}\r\n")
            .await
            .map_err(|e| e.to_string())?;
        Ok(nats)
    }

    async fn publish(&mut self, subject: &str, payload: &[u8]) -> Result<(), String> {
        let mut frame = format!("PUB {subject} {}\r\n", payload.len()).into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\nPING\r\n");
        self.writer.write_all(&frame).await.map_err(|e| e.to_string())?;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(5), self.reader.read_line(&mut line))
                .await
                .map_err(|_| "no PONG".to_owned())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            match line.trim() {
                "PONG" => return Ok(()),
                "PING" => self.writer.write_all(b"PONG\r\n").await.map_err(|e| e.to_string())?,
                l if l.starts_with("-ERR") => return Err(l.to_owned()),
                _ => {}
            }
        }
    }
}

/// Delivers events to one sink forever (until the task is aborted), in audit order, each
/// retried with exponential backoff until the sink takes it.
pub fn spawn(store: Arc<dyn Store>, sink: Sink, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cursor_name = format!("event_cursor:{}", sink.name());
        // A new sink starts with the events that happen from now on.
        let head = store.audit_head().await.ok().flatten().map_or(0, |(s, _)| s);
        let _ = store.init_setting(&cursor_name, &head.to_string()).await;
        let mut nats: Option<Nats> = None;
        // One node delivers each sink's events: the one holding its leadership.
        let role = format!("events:{}", sink.name());
        let mut leadership: Option<kms_store::Leadership> = None;
        loop {
            if !leadership.as_ref().is_some_and(kms_store::Leadership::is_held) {
                leadership = store.try_lead(&role).await.unwrap_or(None);
                if leadership.is_none() {
                    tokio::time::sleep(poll).await;
                    continue;
                }
            }
            let cursor = store.setting(&cursor_name).await.ok().flatten().and_then(|c| c.parse().ok()).unwrap_or(0u64);
            let rows = match store.audit_after(cursor, 500).await {
                Ok(rows) => rows,
                Err(e) => {
                    warn!("event delivery cannot read the audit trail: {e}");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            if rows.is_empty() {
                tokio::time::sleep(poll).await;
                continue;
            }
            for row in &rows {
                if let Some(event) = event_for(row) {
                    let body = event.to_string().into_bytes();
                    let mut delay = Duration::from_millis(100);
                    loop {
                        let attempt = match &sink {
                            Sink::Webhook { url, secret } => deliver_webhook(url, secret, &body, &row.event_id).await,
                            Sink::Nats { address, subject } => {
                                if nats.is_none() {
                                    nats = Nats::connect(address).await.map_err(|e| warn!("NATS {address}: {e}")).ok();
                                }
                                match nats.as_mut() {
                                    Some(n) => n.publish(subject, &body).await,
                                    None => Err("not connected".into()),
                                }
                            }
                        };
                        match attempt {
                            Ok(()) => break,
                            Err(e) => {
                                warn!(
                                    "event {} to {} not delivered yet: {e}; retrying in {delay:?}",
                                    row.event_id,
                                    sink.name()
                                );
                                nats = None;
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(30));
                            }
                        }
                    }
                }
                let _ = store.set_setting(&cursor_name, &row.seq.to_string()).await;
            }
        }
    })
}
