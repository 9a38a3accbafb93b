//! The SigV4 replay window: a signed request is accepted only while its `X-Amz-Date` is within
//! 15 minutes of the server's clock, either way, and refused outside it with AWS's
//! `InvalidSignatureException` ("Signature expired: …" / "Signature not yet current: …").
//!
//! Inside the window SigV4 has no nonce, so AWS accepts the same captured request again; AWS KMS
//! relies on TLS to keep requests from being captured. ferrokms does the same, and the last test
//! pins that down so that nobody mistakes the window for replay protection.

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use kms_core::{Clock, ManualClock};

use crate::common::{RawRequest, TestServer, start_with_clock};

/// A request signed with the official signer at `unix_seconds`, as the bytes a client would
/// put on the wire (so that the very same request can be sent again).
fn sign_raw(t: &TestServer, target: &str, body: &str, unix_seconds: i64) -> Vec<u8> {
    let request = RawRequest::kms(t.server.local_addr, (&t.admin_id, &t.admin_secret), target, body.as_bytes());
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(unix_seconds).unwrap());
    let mut raw = request.signed_head(time).into_bytes();
    raw.extend_from_slice(body.as_bytes());
    raw
}

/// Sends raw request bytes; returns the status code and the JSON body.
async fn send_raw(addr: SocketAddr, raw: &[u8]) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// Moves the server's clock to exactly `unix_seconds`.
fn set_clock(clock: &ManualClock, unix_seconds: i64) {
    clock.advance_millis(unix_seconds * 1000 - clock.now().unix_millis());
}

/// `YYYYMMDDTHHMMSSZ`, as AWS prints times in these messages (civil date from days since the
/// epoch: Howard Hinnant's algorithm).
fn iso(unix_seconds: i64) -> String {
    let (days, secs) = (unix_seconds.div_euclid(86_400), unix_seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[tokio::test]
async fn signed_requests_are_accepted_only_within_fifteen_minutes() {
    let (t, clock) = start_with_clock().await;
    let signed_at = clock.now().unix_seconds();
    let request = sign_raw(&t, "TrentService.ListKeys", "{}", signed_at);
    let addr = t.server.local_addr;

    for offset in [0, 1, 899, 900, -1, -899, -900] {
        set_clock(&clock, signed_at + offset);
        let (status, body) = send_raw(addr, &request).await;
        assert_eq!(status, 200, "server {offset:+} s from the request time: {body}");
    }

    set_clock(&clock, signed_at + 901);
    let (status, body) = send_raw(addr, &request).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert_eq!(
        body["message"],
        format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            iso(signed_at),
            iso(signed_at + 1),
            iso(signed_at + 901)
        )
    );

    set_clock(&clock, signed_at - 901);
    let (status, body) = send_raw(addr, &request).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert_eq!(
        body["message"],
        format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            iso(signed_at),
            iso(signed_at - 1),
            iso(signed_at - 901)
        )
    );

    // A day later the same request is still refused: nothing about the window resets.
    clock.advance_days(1);
    let (_, body) = send_raw(addr, &request).await;
    assert_eq!(body["__type"], "InvalidSignatureException");
}

#[tokio::test]
async fn an_expired_mutation_changes_nothing() {
    let (t, clock) = start_with_clock().await;
    let signed_at = clock.now().unix_seconds();
    let request = sign_raw(&t, "TrentService.CreateKey", "{\"Description\": \"late\"}", signed_at);
    set_clock(&clock, signed_at + 16 * 60);
    let (status, body) = send_raw(t.server.local_addr, &request).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidSignatureException")), "{body}");
    set_clock(&clock, signed_at);
    assert!(t.client().list_keys().send().await.unwrap().keys().is_empty(), "the refused CreateKey created a key");
}

#[tokio::test]
async fn a_captured_request_replayed_within_the_window_is_accepted_as_in_aws() {
    // SigV4 signs the request, not a one-time nonce: AWS accepts the same signed request again
    // while it is within 15 minutes (its defence against capture is TLS). Two identical
    // CreateKey requests therefore create two keys, in AWS and here.
    let (t, clock) = start_with_clock().await;
    let signed_at = clock.now().unix_seconds();
    let request = sign_raw(&t, "TrentService.CreateKey", "{\"Description\": \"replayed\"}", signed_at);
    let (first, body) = send_raw(t.server.local_addr, &request).await;
    assert_eq!(first, 200, "{body}");
    set_clock(&clock, signed_at + 600);
    let (second, body) = send_raw(t.server.local_addr, &request).await;
    assert_eq!(second, 200, "{body}");
    set_clock(&clock, signed_at);
    let keys = t.client().list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 2, "each accepted copy acted once");
}
