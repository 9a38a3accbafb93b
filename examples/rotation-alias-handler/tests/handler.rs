//! The pattern end to end: ferrokms sends a rotation event to the handler, the handler moves the
//! alias to a fresh key, and an application using only the alias keeps working throughout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::primitives::Blob;
use rotation_alias_handler::{Handler, signature_is_valid};

#[test]
fn signatures() {
    let body = br#"{"a":1}"#;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"s");
    let sig = format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref()));
    assert!(signature_is_valid("s", body, &sig));
    assert!(!signature_is_valid("t", body, &sig));
    assert!(!signature_is_valid("s", b"{}", &sig));
    assert!(!signature_is_valid("s", body, "nope"));
}

#[tokio::test]
async fn the_alias_follows_rotations() {
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.event_poll_millis = 50;
    config.event_sinks =
        vec![kms_server::events::Sink::Webhook { url: format!("http://{hook_addr}/"), secret: "shh".into() }];
    let server = kms_server::start(config).await.unwrap();
    let admin = server.new_admin.as_ref().unwrap();
    let kms_config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(
            &admin.access_key_id,
            String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap(),
            None,
            None,
            "test",
        ))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(kms_config);

    let first = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.create_alias().alias_name("alias/orders").target_key_id(&first).send().await.unwrap();
    let handler = Arc::new(Handler { kms: kms.clone(), alias: "alias/orders".into(), secret: "shh".into() });
    tokio::spawn(handler.serve(hook));

    // The application only ever names the alias.
    let before = kms.encrypt().key_id("alias/orders").plaintext(Blob::new("v1")).send().await.unwrap();
    assert!(before.key_id().unwrap().ends_with(&first));
    kms.rotate_key_on_demand().key_id(&first).send().await.unwrap();

    let mut moved = None;
    for _ in 0..100 {
        let target = kms.describe_key().key_id("alias/orders").send().await.unwrap().key_metadata.unwrap().key_id;
        if target != first {
            moved = Some(target);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = moved.expect("the handler moved the alias to a fresh key");
    let after = kms.encrypt().key_id("alias/orders").plaintext(Blob::new("v2")).send().await.unwrap();
    assert!(after.key_id().unwrap().ends_with(&second));
    let old = kms.decrypt().ciphertext_blob(before.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(old.plaintext().unwrap().as_ref(), b"v1");
    server.shutdown().await;
}
