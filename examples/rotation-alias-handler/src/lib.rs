//! The rotation-safe alias pattern: applications encrypt with an alias (`alias/orders`), never
//! a key id; a handler subscribed to rotation events moves the alias to a fresh key whenever the
//! key behind it rotates. New data goes to the new key at once, old ciphertext keeps decrypting
//! (it names its key), and no application changes anything.
//!
//! The handler is a webhook receiver for ferrokms's key events (`--event-webhook-url`): it
//! checks the `X-Ferrokms-Signature` HMAC, and on a `KMS CMK Rotation` event for the key the
//! alias points at, creates a key and points the alias at it.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_sdk_kms::Client;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// What the handler needs.
pub struct Handler {
    /// A KMS client (endpoint and credentials of an identity allowed CreateKey and UpdateAlias).
    pub kms: Client,
    /// The alias applications use.
    pub alias: String,
    /// The webhook secret shared with ferrokms.
    pub secret: String,
}

/// Whether `header` is the HMAC-SHA256 signature of `body` under `secret`.
pub fn signature_is_valid(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), body, &sig).is_ok()
}

impl Handler {
    /// Handles one event; returns the new key id when it moved the alias.
    ///
    /// # Errors
    /// A KMS error message.
    pub async fn on_event(&self, event: &Value) -> Result<Option<String>, String> {
        let field = |name: &str| event.get(name).and_then(Value::as_str);
        if field("source") != Some("aws.kms") || field("detail-type") != Some("KMS CMK Rotation") {
            return Ok(None);
        }
        let rotated = event.pointer("/detail/key-id").and_then(Value::as_str).unwrap_or_default();
        let current = self.kms.describe_key().key_id(&self.alias).send().await.map_err(|e| format!("{e:?}"))?;
        let current_id = current.key_metadata.map(|m| m.key_id).unwrap_or_default();
        if current_id != rotated {
            return Ok(None); // an older key of the alias rotated: nothing to move
        }
        let fresh = self
            .kms
            .create_key()
            .description(format!("successor of {rotated} for {}", self.alias))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?
            .key_metadata
            .map(|m| m.key_id)
            .unwrap_or_default();
        self.kms
            .update_alias()
            .alias_name(&self.alias)
            .target_key_id(&fresh)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(Some(fresh))
    }

    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let status = |code| {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = code;
            r
        };
        let signature =
            req.headers().get("x-ferrokms-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
            return status(StatusCode::BAD_REQUEST);
        };
        if !signature_is_valid(&self.secret, &body, &signature) {
            return status(StatusCode::UNAUTHORIZED);
        }
        let Ok(event) = serde_json::from_slice::<Value>(&body) else { return status(StatusCode::BAD_REQUEST) };
        // A failure answers 500, so ferrokms delivers the event again.
        match self.on_event(&event).await {
            Ok(_) => status(StatusCode::OK),
            Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// Serves the webhook on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler.answer(req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}
