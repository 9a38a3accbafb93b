//! SigV4 authentication end to end, and what must never appear in logs or on disk.

use std::sync::{Arc, Mutex};

use aws_sdk_kms::primitives::Blob;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{client_for, config, error_of, start, start_with, start_with_clock};

#[tokio::test]
async fn unknown_key_bad_secret_and_dev_credentials() {
    let t = start().await;
    let addr = t.server.local_addr;
    let stranger = client_for(addr, "AKIAUNKNOWNUNKNOWN00", "whatever", "us-east-1");
    let (code, message) = error_of(stranger.list_keys().send().await);
    assert_eq!(code, "UnrecognizedClientException");
    assert_eq!(message, "The security token included in the request is invalid.");
    let wrong_secret = client_for(addr, &t.admin_id, "not-the-secret", "us-east-1");
    let (code, message) = error_of(wrong_secret.list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("The request signature we calculated does not match"), "{message}");
    // `test`/`test` works only when the operator asked for it.
    let dev = client_for(addr, "test", "test", "us-east-1");
    assert_eq!(error_of(dev.list_keys().send().await).0, "UnrecognizedClientException");

    let dir = tempfile::tempdir().unwrap();
    let mut insecure = config(dir.path());
    insecure.insecure_dev_credentials = true;
    let t2 = start_with(insecure, dir).await;
    let dev = client_for(t2.server.local_addr, "test", "test", "us-east-1");
    let md = dev.create_key().send().await.unwrap().key_metadata.unwrap();
    assert_eq!(md.aws_account_id(), Some(t2.server.account.to_string().as_str()));
    // The dev key and the admin key act in the same account.
    t2.client().describe_key().key_id(md.key_id()).send().await.unwrap();
}

#[tokio::test]
async fn signatures_outside_the_fifteen_minute_window_are_refused() {
    let (t, clock) = start_with_clock().await;
    let kms = t.client();
    kms.list_keys().send().await.unwrap();
    clock.advance_millis(14 * 60 * 1000);
    kms.list_keys().send().await.unwrap();
    clock.advance_millis(2 * 60 * 1000);
    let (code, message) = error_of(kms.list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired"), "{message}");
    clock.advance_millis(-32 * 60 * 1000);
    let (code, message) = error_of(kms.list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature not yet current"), "{message}");
}

#[tokio::test]
async fn session_tokens_are_not_accepted_yet() {
    let t = start().await;
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", t.server.local_addr))
        .credentials_provider(aws_credential_types::Credentials::new(
            &t.admin_id,
            &t.admin_secret,
            Some("a-session-token".into()),
            None,
            "t",
        ))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(config);
    assert_eq!(error_of(kms.list_keys().send().await).0, "UnrecognizedClientException");
}

async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn unsigned_requests_and_health() {
    let t = start().await;
    let addr = t.server.local_addr;
    let body = "{}";
    let unsigned = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: TrentService.ListKeys\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = raw(addr, &unsigned).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("\"__type\":\"MissingAuthenticationTokenException\""), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-amzn-requestid:"), "{response}");
    let garbled = unsigned.replace("Content-Type", "Authorization: AWS4-HMAC-SHA256 Credential=x\r\nContent-Type");
    let response = raw(addr, &garbled).await;
    assert!(response.contains("\"__type\":\"IncompleteSignatureException\""), "{response}");
    let health = raw(addr, &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = raw(addr, &format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let other = raw(addr, &format!("GET /nope HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Plaintext, data keys, key material and secret access keys appear neither in the logs (at
/// the most verbose level) nor in the data directory's files.
#[tokio::test]
async fn no_secrets_in_logs_or_on_disk() {
    let captured = Captured::default();
    let writer = captured.clone();
    let _ =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).try_init();
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let secret_text = "PLAINTEXT-CANARY-7c1f3e";
    let ct = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(secret_text))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let back = kms.decrypt().ciphertext_blob(ct).encryption_context("k", "v").send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), secret_text.as_bytes());
    let dk = kms.generate_data_key().key_id(&id).number_of_bytes(32).send().await.unwrap();
    let data_key = dk.plaintext().unwrap().as_ref().to_vec();
    // A failing request with a plaintext must not echo it either.
    let _ = kms.encrypt().key_id("alias/missing").plaintext(Blob::new(secret_text)).send().await;
    // More of a mixed workload: another principal with its own secret, re-encryption, random
    // bytes, a rotation.
    let (alice, _) = t.user("alice").await;
    let alice_key = t.admin("CreateAccessKey", serde_json::json!({"UserName": "alice"})).await;
    let alice_secret = alice_key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned();
    let _ = alice.encrypt().key_id(&id).plaintext(Blob::new(secret_text)).send().await;
    let moved =
        kms.re_encrypt().ciphertext_blob(dk.ciphertext_blob.clone().unwrap()).destination_key_id(&id).send().await;
    assert!(moved.is_ok());
    let random = kms.generate_random().number_of_bytes(64).send().await.unwrap().plaintext.unwrap().into_inner();
    kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let metrics = t.server.service.metrics_text().await;
    t.server.shutdown().await;

    let logs = captured.0.lock().unwrap().clone();
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
    let needles: Vec<Vec<u8>> = vec![
        secret_text.as_bytes().to_vec(),
        b64(secret_text.as_bytes()).into_bytes(),
        b64(&data_key).into_bytes(),
        t.admin_secret.as_bytes().to_vec(),
        alice_secret.as_bytes().to_vec(),
        b64(&random).into_bytes(),
    ];
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&logs, b"TrentService.Encrypt"), "the capture sees the request log lines");
    for needle in &needles {
        assert!(!contains(&logs, needle), "a secret appears in the logs");
        assert!(!contains(metrics.as_bytes(), needle), "a secret appears in /metrics");
    }
    // The audit trail lives in the database file, which the loop below searches too.
    assert!(metrics.contains("ferrokms_requests_total"), "the metrics were captured");
    for entry in std::fs::read_dir(t.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "admin-credentials") {
            continue; // the one file that holds the admin secret, by design (mode 0600)
        }
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles.iter().chain([&data_key]) {
            assert!(!contains(&bytes, needle), "a secret appears in {}", path.display());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["admin-credentials", "root.key"] {
            let mode = std::fs::metadata(t.dir.path().join(name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
