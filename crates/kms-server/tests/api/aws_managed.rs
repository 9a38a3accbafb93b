//! AWS managed keys: the key behind a predefined `alias/aws/<service>` alias exists once it is
//! first used (here by DescribeKey, as in AWS), belongs to AWS (KeyManager AWS, its own policy,
//! yearly rotation), is used only through its service, and cannot be changed by customers.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyManagerType;
use serde_json::json;

use crate::common::{code_of, signed, signed_extra, start};

#[tokio::test]
async fn predefined_aliases_get_their_aws_managed_key_on_first_use() {
    let t = start().await;
    let kms = t.client();
    let listed = kms.list_aliases().send().await.unwrap();
    let s3 = listed.aliases().iter().find(|a| a.alias_name() == Some("alias/aws/s3")).unwrap();
    assert_eq!(s3.target_key_id(), None, "no key until first use");

    let key = kms.describe_key().key_id("alias/aws/s3").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(key.key_manager(), Some(&KeyManagerType::Aws));
    assert!(key.description().unwrap_or_default().contains("s3"));
    let again = kms.describe_key().key_id("alias/aws/s3").send().await.unwrap().key_metadata.unwrap();
    assert_eq!(again.key_id, key.key_id, "one key per alias, account and region");
    let listed = kms.list_aliases().send().await.unwrap();
    let s3 = listed.aliases().iter().find(|a| a.alias_name() == Some("alias/aws/s3")).unwrap();
    assert_eq!(s3.target_key_id(), Some(key.key_id.as_str()));
    assert_eq!(listed.aliases().iter().filter(|a| a.alias_name() == Some("alias/aws/s3")).count(), 1);
    let rotation = kms.get_key_rotation_status().key_id(&key.key_id).send().await.unwrap();
    assert!(rotation.key_rotation_enabled());
    let policy = kms.get_key_policy().key_id(&key.key_id).policy_name("default").send().await.unwrap();
    assert!(policy.policy().unwrap().contains("s3.us-east-1.amazonaws.com"));
    // Another region has its own.
    let west = t.client_in("eu-west-1").describe_key().key_id("alias/aws/s3").send().await.unwrap();
    assert_ne!(west.key_metadata.unwrap().key_id, key.key_id);

    // Customers cannot change it or use it directly, even the administrator.
    let id = key.key_id.as_str();
    assert_eq!(code_of(kms.disable_key().key_id(id).send().await), "AccessDeniedException");
    let open = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "kms:*", "Resource": "*"}]});
    let replaced = kms.put_key_policy().key_id(id).policy(open.to_string()).send().await;
    assert_eq!(code_of(replaced), "AccessDeniedException");
    let scheduled = kms.schedule_key_deletion().key_id(id).pending_window_in_days(7).send().await;
    assert_eq!(code_of(scheduled), "AccessDeniedException");
    let direct = kms.encrypt().key_id("alias/aws/s3").plaintext(Blob::new("x")).send().await;
    assert_eq!(code_of(direct), "AccessDeniedException");

    // Through S3 (a forward access token of the caller, presented by the service), it works.
    t.admin("CreateServicePrincipal", json!({"ServiceName": "s3.us-east-1.amazonaws.com"})).await;
    let creds = t.admin("CreateAccessKey", json!({"ServiceName": "s3.us-east-1.amazonaws.com"})).await;
    let (s3_id, s3_secret) =
        (creds["AccessKey"]["AccessKeyId"].as_str().unwrap(), creds["AccessKey"]["SecretAccessKey"].as_str().unwrap());
    let token = t.admin("CreateForwardAccessToken", json!({"ServicePrincipal": "s3.us-east-1.amazonaws.com"})).await;
    let token = token["ForwardAccessToken"].as_str().unwrap();
    let body = json!({"KeyId": "alias/aws/s3", "Plaintext": "eA=="}).to_string();
    let (status, text) = signed_extra(
        t.server.local_addr,
        (s3_id, s3_secret, None),
        "kms",
        Some("TrentService.Encrypt"),
        "application/x-amz-json-1.1",
        &[("x-ferrokms-forward-access-token", token)],
        body.as_bytes(),
    )
    .await;
    assert!(status.contains("200"), "{status} {text}");
    // Customers cannot make aliases under alias/aws/ themselves.
    let (status, text) = signed(
        t.server.local_addr,
        (&t.admin_id, &t.admin_secret, None),
        "kms",
        Some("TrentService.CreateAlias"),
        "application/x-amz-json-1.1",
        json!({"AliasName": "alias/aws/mine", "TargetKeyId": t.create_key().await}).to_string().as_bytes(),
    )
    .await;
    assert!(status.contains("400"), "{status} {text}");
}
