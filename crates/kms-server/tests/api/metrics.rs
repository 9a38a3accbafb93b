//! `/metrics`: labels only for real operations, a separate listener, a bearer token.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{TestServer, config, start_with};

/// A raw request; returns the whole response (status line, headers, body).
async fn request(addr: SocketAddr, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

async fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")).await
}

async fn start_configured(change: impl FnOnce(&mut kms_server::ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    change(&mut config);
    start_with(config, dir).await
}

/// Anonymous requests naming 130 made-up operations add one label, `Other`, not 130; the
/// names of real operations keep theirs.
#[tokio::test]
async fn made_up_operation_names_share_one_label() {
    let t = start_configured(|c| c.connections.failed_auth_burst = 0).await;
    let addr = t.server.local_addr;
    for i in 0..130 {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: TrentService.MadeUp{i}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        assert!(request(addr, &head).await.contains("MissingAuthenticationTokenException"));
    }
    t.client().list_keys().send().await.unwrap();
    let metrics = get(addr, "/metrics", None).await;
    assert!(!metrics.contains("MadeUp"), "{metrics}");
    assert!(
        metrics.contains(
            "ferrokms_requests_total{operation=\"Other\",outcome=\"MissingAuthenticationTokenException\"} 130"
        )
    );
    assert!(metrics.contains("ferrokms_requests_total{operation=\"ListKeys\",outcome=\"Success\"} 1"), "{metrics}");
}

/// With a metrics listener, `/metrics` is served there only: the main listener answers 404 for
/// it, and the metrics listener serves nothing else.
#[tokio::test]
async fn a_separate_metrics_listener_takes_metrics_off_the_main_one() {
    let t = start_configured(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = t.server.metrics_addr.expect("a metrics listener");
    assert_ne!(metrics_addr, t.server.local_addr);
    t.client().list_keys().send().await.unwrap();
    let there = get(metrics_addr, "/metrics", None).await;
    assert!(there.starts_with("HTTP/1.1 200"), "{there}");
    assert!(there.contains("ferrokms_requests_total{operation=\"ListKeys\",outcome=\"Success\"} 1"), "{there}");
    assert!(get(t.server.local_addr, "/metrics", None).await.starts_with("HTTP/1.1 404"));
    assert!(get(t.server.local_addr, "/healthz", None).await.starts_with("HTTP/1.1 200"));
    assert!(get(metrics_addr, "/healthz", None).await.starts_with("HTTP/1.1 404"));
    let post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    assert!(request(metrics_addr, post).await.starts_with("HTTP/1.1 404"), "no KMS API on the metrics listener");
    t.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(metrics_addr).await.is_err(), "closed with the server");
}

/// With a token, `/metrics` answers 401 to requests without it or with another one.
#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let t = start_configured(|c| c.metrics_token = Some("scrape-token-1".into())).await;
    let addr = t.server.local_addr;
    let none = get(addr, "/metrics", None).await;
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    assert!(!none.contains("ferrokms_requests_total"));
    for wrong in ["Bearer scrape-token-2", "Bearer scrape-token-", "Basic scrape-token-1", "scrape-token-1"] {
        assert!(get(addr, "/metrics", Some(wrong)).await.starts_with("HTTP/1.1 401"), "{wrong}");
    }
    let right = get(addr, "/metrics", Some("Bearer scrape-token-1")).await;
    assert!(right.starts_with("HTTP/1.1 200") && right.contains("ferrokms_requests_total"), "{right}");
}
