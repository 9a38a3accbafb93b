//! The wire protocol below the SDK: requests the SDK would never send, signed for real with the
//! official `aws-sigv4` signer and sent over a raw socket.

use crate::common::{TestServer, signed, start};

async fn send(t: &TestServer, target: Option<&str>, body: &[u8]) -> (String, String) {
    let (id, secret) = (t.admin_id.clone(), t.admin_secret.clone());
    signed(t.server.local_addr, (&id, &secret, None), "kms", target, "application/x-amz-json-1.1", body).await
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
