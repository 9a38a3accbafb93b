//! Key events: EventBridge-shaped rotation and deletion events delivered to a webhook (signed)
//! and to NATS, kept until a sink that was down comes back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use crate::common::{config, start_with};

const DAY: i64 = 86_400_000;

pub type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on `listener`: records (signature header, JSON body) and answers 200.
pub fn receiver(listener: tokio::net::TcpListener) -> Received {
    slow_receiver(listener, Duration::ZERO)
}

/// [`receiver`] that takes `delay` before answering each delivery.
pub fn slow_receiver(listener: tokio::net::TcpListener, delay: Duration) -> Received {
    let received: Received = Arc::default();
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let (mut length, mut signature) = (0usize, String::new());
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.unwrap();
                        let header = header.trim_end().to_owned();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap(),
                            "x-ferrokms-signature" => signature = value.trim().to_owned(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let secret_ok = signature == kms_server::events::signature("hook-secret", &body);
                    let value: Value = serde_json::from_slice(&body).unwrap();
                    sink.lock().unwrap().push((if secret_ok { "valid".into() } else { signature }, value));
                    tokio::time::sleep(delay).await;
                    write.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                }
            });
        }
    });
    received
}

pub async fn wait_for(received: &Received, n: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        if received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    received.lock().unwrap().clone()
}

#[tokio::test]
async fn rotation_and_deletion_events_reach_a_webhook_even_after_it_was_down() {
    // Reserve a port, then leave it closed: the sink is down at first.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let clock = Arc::new(kms_core::ManualClock::new(kms_core::Clock::now(&kms_server::clock::SystemClock)));
    cfg.clock = clock.clone();
    cfg.event_poll_millis = 50;
    cfg.event_sinks = vec![kms_server::events::Sink::Webhook {
        url: format!("http://127.0.0.1:{port}/events"),
        secret: "hook-secret".into(),
    }];
    let t = start_with(cfg, dir).await;
    let kms = t.client();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.rotate_key_on_demand().key_id(key.key_id()).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await; // delivery attempts fail meanwhile

    let received = receiver(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let events = wait_for(&received, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (signature, rotation) = &events[0];
    assert_eq!(signature, "valid", "the HMAC signature verifies");
    assert_eq!(rotation["source"], "aws.kms");
    assert_eq!(rotation["detail-type"], "KMS CMK Rotation");
    assert_eq!(rotation["account"], t.server.account.to_string());
    assert_eq!(rotation["region"], "us-east-1");
    assert_eq!(rotation["resources"][0], key.arn().unwrap());
    assert_eq!(rotation["detail"]["key-id"], key.key_id());
    assert_eq!(rotation["detail"]["rotation-type"], "ON_DEMAND");
    assert!(rotation["id"].as_str().is_some_and(|s| !s.is_empty()) && rotation["time"].is_string());

    kms.schedule_key_deletion().key_id(key.key_id()).pending_window_in_days(7).send().await.unwrap();
    clock.advance_millis(7 * DAY);
    assert_eq!(t.server.service.run_due_work().await.unwrap(), 1);
    clock.advance_millis(-7 * DAY);
    let events = wait_for(&received, 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].1["detail-type"], "KMS CMK Deletion");
    assert_eq!(events[1].1["detail"]["key-id"], key.key_id());
    // Nothing is delivered twice, and the sink has caught up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.lock().unwrap().len(), 2);
    let metrics = t.server.service.metrics_text().await;
    assert!(
        metrics.contains(&format!("ferrokms_event_sink_backlog{{sink=\"webhook:http://127.0.0.1:{port}/events\"}} 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn rotation_events_are_published_to_nats() {
    let Ok(stream) = tokio::net::TcpStream::connect("127.0.0.1:4222").await else {
        assert!(std::env::var_os("FERROKMS_REQUIRE_NATS").is_none(), "NATS required but not reachable");
        println!("SKIPPED: NATS not reachable at 127.0.0.1:4222");
        return;
    };
    let subject = format!("ferrokms.test.{}", std::process::id());
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut info = String::new();
    reader.read_line(&mut info).await.unwrap();
    write.write_all(format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n").as_bytes()).await.unwrap();
    let mut line = String::new();
    while !line.starts_with("PONG") {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.event_poll_millis = 50;
    cfg.event_sinks =
        vec![kms_server::events::Sink::Nats { address: "127.0.0.1:4222".into(), subject: subject.clone() }];
    let t = start_with(cfg, dir).await;
    let kms = t.client();
    let key = t.create_key().await;
    kms.rotate_key_on_demand().key_id(&key).send().await.unwrap();

    let message = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if line.starts_with("PING") {
                write.write_all(b"PONG\r\n").await.unwrap();
            } else if let Some(rest) = line.strip_prefix("MSG ") {
                let length: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
                let mut payload = vec![0u8; length + 2];
                reader.read_exact(&mut payload).await.unwrap();
                payload.truncate(length);
                return serde_json::from_slice::<Value>(&payload).unwrap();
            }
        }
    })
    .await
    .expect("a NATS message within 5 s");
    assert_eq!(message["detail-type"], "KMS CMK Rotation");
    assert_eq!(message["detail"]["key-id"], key.as_str());
}
