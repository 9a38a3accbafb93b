//! The wire protocol below the SDK: requests the SDK would never send, signed for real with the
//! official `aws-sigv4` signer and sent over a raw socket.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{TestServer, start};

/// Signs `body` for `target` with the admin credentials and returns (status line, body).
async fn send(t: &TestServer, target: Option<&str>, body: &[u8]) -> (String, String) {
    let addr = t.server.local_addr;
    let mut builder = http::Request::post(format!("http://{addr}/"))
        .header("host", addr.to_string())
        .header("content-type", "application/x-amz-json-1.1");
    if let Some(target) = target {
        builder = builder.header("x-amz-target", target);
    }
    let mut request = builder.body(body.to_vec()).unwrap();
    let identity: Identity = Credentials::new(&t.admin_id, &t.admin_secret, None, None, "wire-test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kms")
        .time(SystemTime::now())
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

    let mut raw = String::from("POST / HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        raw.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    raw.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

fn error_type(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["__type"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn unknown_and_missing_targets() {
    let t = start().await;
    let (status, body) = send(&t, Some("TrentService.FlyToTheMoon"), b"{}").await;
    assert!(status.contains("400"), "{status}");
    assert_eq!(error_type(&body), "UnknownOperationException");
    assert!(body.contains("FlyToTheMoon"), "{body}");
    let (_, body) = send(&t, None, b"{}").await;
    assert_eq!(error_type(&body), "UnknownOperationException");
    let (_, body) = send(&t, Some("DynamoDB_20120810.ListTables"), b"{}").await;
    assert_eq!(error_type(&body), "UnknownOperationException");
}

#[tokio::test]
async fn malformed_bodies_get_serialization_exception_and_change_nothing() {
    let t = start().await;
    let cases: [&[u8]; 6] = [
        b"{",
        b"[]",
        b"{\"KeyId\": 5}",
        b"{\"KeyId\": \"alias/x\", \"Plaintext\": \"***not base64***\"}",
        b"{\"Limit\": 1e400}",
        b"{\"Limit\": 99999999999999999999999}",
    ];
    for (i, body) in cases.iter().enumerate() {
        let target = if i < 4 { "TrentService.Encrypt" } else { "TrentService.ListKeys" };
        let (status, response) = send(&t, Some(target), body).await;
        assert!(status.contains("400"), "case {i}: {status}");
        assert_eq!(error_type(&response), "SerializationException", "case {i}: {response}");
    }
    // An empty body is an empty request.
    let (status, response) = send(&t, Some("TrentService.ListKeys"), b"").await;
    assert!(status.contains("200"), "{status} {response}");
    // Unknown members are ignored, as AWS does.
    let (status, _) = send(&t, Some("TrentService.ListKeys"), b"{\"Limit\": 5, \"Surprise\": true}").await;
    assert!(status.contains("200"), "{status}");
    let (status, _) = send(&t, Some("TrentService.CreateKey"), b"{\"Description\": [1]}").await;
    assert!(status.contains("400"));
    assert_eq!(t.client().list_keys().send().await.unwrap().keys().len(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let t = start().await;
    let big = vec![b' '; kms_server::http::MAX_BODY_BYTES + 1];
    let (status, body) = send(&t, Some("TrentService.ListKeys"), &big).await;
    assert!(status.contains("413"), "{status}");
    assert_eq!(error_type(&body), "RequestEntityTooLargeException");
}
