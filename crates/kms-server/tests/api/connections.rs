//! Connection hygiene over raw sockets: the slow-loris header timeout, the idle timeout, the
//! connection cap, the body size limit, and a graceful shutdown that finishes the request in
//! flight and records it in the audit trail.

use std::net::SocketAddr;
use std::time::Duration;

use kms_store::{SqliteStore, Store};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{RawRequest, TestServer, config, start_with};

/// Guards every wait on the server so that a regression fails instead of hanging; never the
/// property under test.
const GUARD: Duration = Duration::from_secs(20);

async fn start_limited(change: impl FnOnce(&mut kms_server::config::ConnectionLimits)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    change(&mut config.connections);
    start_with(config, dir).await
}

/// A SigV4-signed KMS request as raw HTTP/1.1: (head, body).
fn signed_request(t: &TestServer, target: &str, body: &[u8], keep_alive: bool) -> (String, Vec<u8>) {
    let target = format!("TrentService.{target}");
    let mut request = RawRequest::kms(t.server.local_addr, (&t.admin_id, &t.admin_secret), &target, body);
    request.keep_alive = keep_alive;
    (request.signed_head(std::time::SystemTime::now()), body.to_vec())
}

/// Reads one HTTP/1.1 response (headers and a content-length body) from a kept-alive
/// connection: (status line, body).
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "connection closed before a response: {}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (head.lines().next().unwrap().to_owned(), String::from_utf8(body).unwrap())
}

/// Waits until the server closes the connection; returns what it sent before closing.
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    rest
}

async fn healthz(addr: SocketAddr, stream: Option<&mut TcpStream>) -> String {
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    match stream {
        Some(stream) => {
            stream.write_all(request).await.unwrap();
            read_response(stream).await.0
        }
        None => {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(request).await.unwrap();
            read_response(&mut stream).await.0
        }
    }
}

/// A server with a header timeout of 300 ms (and an idle timeout far longer).
async fn start_with_header_timeout() -> TestServer {
    start_limited(|l| {
        l.header_read_timeout_millis = 300;
        l.idle_timeout_millis = 600_000;
    })
    .await
}

const HALF_A_REQUEST: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar";

/// Waits until the server closes `stream`, which sent [`HALF_A_REQUEST`], and checks that it
/// got no answer.
async fn cut_off_without_an_answer(stream: &mut TcpStream) {
    let sent = closed_by_server(stream).await;
    assert!(!String::from_utf8_lossy(&sent).contains("200 OK"), "no answer to half a request");
}

/// A client that sends half a request header and then nothing is disconnected once the header
/// timeout passes, and never gets an answer; other clients are served meanwhile.
#[tokio::test]
async fn slow_loris_is_disconnected_after_the_header_timeout() {
    let t = start_with_header_timeout().await;
    let mut slow = TcpStream::connect(t.server.local_addr).await.unwrap();
    slow.write_all(HALF_A_REQUEST).await.unwrap();
    assert!(healthz(t.server.local_addr, None).await.contains("200"));
    cut_off_without_an_answer(&mut slow).await;
    // The connection is gone for good: writing more cannot produce an answer.
    let _ = slow.write_all(b"get: TrentService.ListKeys\r\n\r\n").await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(GUARD, slow.read_to_end(&mut rest)).await;
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
}

/// On a kept-alive connection, the header timeout counts from when the server starts waiting
/// for each request head: requests that keep coming for longer than one timeout are served,
/// and half a request sent after them is still cut off once the timeout passes.
#[tokio::test]
async fn slow_loris_after_requests_on_a_kept_alive_connection_is_disconnected() {
    let t = start_with_header_timeout().await;
    let mut stream = TcpStream::connect(t.server.local_addr).await.unwrap();
    // A request every 100 ms for 900 ms: three header timeouts after the first request.
    for _ in 0..9 {
        assert!(healthz(t.server.local_addr, Some(&mut stream)).await.contains("200"), "served while in use");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stream.write_all(HALF_A_REQUEST).await.unwrap();
    cut_off_without_an_answer(&mut stream).await;
}

/// A kept-alive connection that goes silent is closed after the idle timeout.
#[tokio::test]
async fn idle_connections_are_closed() {
    let t = start_limited(|l| {
        l.header_read_timeout_millis = 600_000;
        l.idle_timeout_millis = 300;
    })
    .await;
    let mut stream = TcpStream::connect(t.server.local_addr).await.unwrap();
    assert!(healthz(t.server.local_addr, Some(&mut stream)).await.contains("200"));
    // In use for well past one idle period (a request every 100 ms for 900 ms): kept open,
    // because the idle time counts from the last byte, not from when the connection opened.
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(healthz(t.server.local_addr, Some(&mut stream)).await.contains("200"), "kept alive while in use");
    }
    assert!(closed_by_server(&mut stream).await.is_empty());
}

/// With a cap of one connection, a second connection is not served while the first is open,
/// and is served as soon as the first closes.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let t = start_limited(|l| l.max_connections = 1).await;
    let addr = t.server.local_addr;
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(healthz(addr, Some(&mut first)).await.contains("200"));
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut byte)).await;
    assert!(waited.is_err(), "the second connection was served while the first held the only slot");
    assert!(healthz(addr, Some(&mut first)).await.contains("200"), "the first is still served");
    drop(first);
    let answered = tokio::time::timeout(GUARD, read_response(&mut second)).await.expect("served once a slot freed");
    assert!(answered.0.contains("200"));
}

/// A body over the configured limit is refused with RequestEntityTooLargeException (413).
#[tokio::test]
async fn oversized_bodies_are_refused() {
    let t = start_limited(|l| l.max_body_bytes = 1000).await;
    let body = format!(r#"{{"Description":"{}"}}"#, "x".repeat(2000));
    let (head, body) = signed_request(&t, "CreateKey", body.as_bytes(), false);
    let mut stream = TcpStream::connect(t.server.local_addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(&body).await;
    let (status, text) = read_response(&mut stream).await;
    assert!(status.contains("413"), "{status}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["__type"], "RequestEntityTooLargeException");
    assert_eq!(error["message"], "Request body must be at most 1000 bytes");
}

/// A request whose body is still arriving when shutdown starts is answered, and its audit
/// record is in the trail once shutdown returns; new connections are refused meanwhile.
#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_records_it() {
    let t = start_limited(|_| {}).await;
    let addr = t.server.local_addr;
    let (head, body) = signed_request(&t, "CreateKey", br#"{"Description":"in flight"}"#, false);
    // `Expect: 100-continue` (not signed, so the signature holds): the server says "100
    // Continue" when the handler starts reading the body, so the request is surely in flight.
    let head = head.replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
        interim.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100"), "{interim:?}");
    stream.write_all(&body[..5]).await.unwrap();

    let TestServer { server, dir, .. } = t;
    let shutdown = tokio::spawn(server.shutdown());
    // Shutdown has begun once the listener is gone.
    tokio::time::timeout(GUARD, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the listener closed");
    stream.write_all(&body[5..]).await.unwrap();
    let (status, text) = tokio::time::timeout(GUARD, read_response(&mut stream)).await.expect("answered");
    assert!(status.contains("200"), "{status} {text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let key_id = answer["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    tokio::time::timeout(GUARD, shutdown).await.expect("shutdown returned").unwrap();

    let store = SqliteStore::open(&dir.path().join("ferrokms.db")).unwrap();
    let records: Vec<Value> =
        store.audit_after(0, 10_000).await.unwrap().iter().map(|r| serde_json::from_str(&r.record).unwrap()).collect();
    assert!(
        records.iter().any(|r| r["eventName"] == "CreateKey" && r.to_string().contains(&key_id)),
        "the in-flight CreateKey is in the audit trail"
    );
}

/// The value of a metric in the Prometheus text of `/metrics`.
async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (status, text) = read_response(&mut stream).await;
    assert!(status.contains("200"), "{status}");
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name}")).parse().unwrap()
}

/// Clients that send their headers in time and then trickle their bodies (a byte every 50 ms,
/// then nothing) are answered `RequestTimeoutException` (408) and disconnected once the body
/// deadline passes, however long their connections could otherwise stay open; `/healthz` is
/// served meanwhile. Before, the header timeout was the only deadline, and a trickling body
/// held its connection for as long as its client liked.
#[tokio::test]
async fn trickling_bodies_are_cut_off_at_the_body_deadline() {
    const CLIENTS: usize = 8;
    let deadline = Duration::from_millis(600);
    let t = start_limited(|l| {
        l.header_read_timeout_millis = 600_000;
        l.idle_timeout_millis = 600_000;
        l.body_read_timeout_millis = 600;
    })
    .await;
    let addr = t.server.local_addr;
    let body = vec![b' '; 1000];
    let started = tokio::time::Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (head, _) = signed_request(&t, "ListKeys", &body, false);
        clients.spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            // Trickle for two thirds of the deadline, then stall: the bytes sent are all read by
            // the time the server answers, so its answer is not lost to a reset.
            for _ in 0..8 {
                stream.write_all(b" ").await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let sent = closed_by_server(&mut stream).await;
            (String::from_utf8_lossy(&sent).into_owned(), started.elapsed())
        });
    }
    // Served while the trickling connections are open.
    assert!(healthz(addr, None).await.contains("200"));
    while let Some(outcome) = clients.join_next().await {
        let (answer, after) = outcome.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("RequestTimeoutException"), "{answer}");
        assert!(after >= deadline, "cut off after {after:?}, before the deadline");
    }
    assert!(healthz(addr, None).await.contains("200"));
}

/// Many clients that each send most of a 1 MiB body and stop do not make the server hold more
/// than its body budget: past it, bodies are refused, and the budget's gauge never goes beyond
/// its size; once the stalled bodies reach their deadline, everything is given back. (Before,
/// 200 half-sent 1 MiB bodies held 411 MiB.)
#[tokio::test]
async fn half_sent_bodies_hold_no_more_than_the_budget() {
    const CLIENTS: usize = 12;
    const BUDGET: u64 = 4 * 1024 * 1024;
    let t = start_limited(|l| {
        l.body_read_timeout_millis = 1500;
        l.body_budget_bytes = 4 * 1024 * 1024;
    })
    .await;
    let addr = t.server.local_addr;
    assert_eq!(metric(addr, "ferrokms_body_budget_bytes").await, BUDGET);
    let body = vec![b' '; 1024 * 1024];
    let mut stalled = Vec::new();
    for _ in 0..CLIENTS {
        let (head, _) = signed_request(&t, "ListKeys", &body, false);
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // Most of the body, written in the background (a refused one is not read any further).
        let (reader, mut writer) = stream.into_split();
        let part = body[..900 * 1024].to_vec();
        tokio::spawn(async move {
            let _ = writer.write_all(&part).await;
            // Held open (and silent) until the server closes the connection.
            tokio::time::sleep(GUARD).await;
            drop(writer);
        });
        stalled.push(reader);
    }
    // The held bytes rise to (nearly) the budget, and never beyond it.
    let mut highest = 0;
    let rose = tokio::time::timeout(GUARD, async {
        loop {
            let held = metric(addr, "ferrokms_body_bytes_held").await;
            assert!(held <= BUDGET, "{held} bytes held, over the budget of {BUDGET}");
            highest = highest.max(held);
            if highest >= BUDGET / 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(rose.is_ok(), "the bodies were never held (highest {highest})");
    // Every stalled body is cut off at its deadline, and gives its bytes back.
    for mut reader in stalled {
        let closed = tokio::time::timeout(GUARD, async {
            let mut chunk = [0u8; 1024];
            while matches!(reader.read(&mut chunk).await, Ok(n) if n > 0) {}
        })
        .await;
        assert!(closed.is_ok(), "a stalled body's connection stayed open");
        let held = metric(addr, "ferrokms_body_bytes_held").await;
        assert!(held <= BUDGET, "{held} bytes held, over the budget of {BUDGET}");
    }
    let released = tokio::time::timeout(GUARD, async {
        while metric(addr, "ferrokms_body_bytes_held").await != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(released.is_ok(), "the budget was not given back");
    assert!(healthz(addr, None).await.contains("200"));
}
