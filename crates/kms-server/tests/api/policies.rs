//! PutKeyPolicy, GetKeyPolicy, ListKeyPolicies.

use crate::common::{code_of, error_of, start};

#[tokio::test]
async fn default_policy_then_replace_it() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let account = t.server.account.to_string();
    let got = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(got.policy_name(), Some("default"));
    let policy = got.policy().unwrap();
    let doc: serde_json::Value = serde_json::from_str(policy).unwrap();
    assert_eq!(doc["Id"], "key-default-1");
    assert_eq!(doc["Statement"][0]["Principal"]["AWS"], format!("arn:aws:iam::{account}:root"));
    assert_eq!(doc["Statement"][0]["Action"], "kms:*");
    assert!(policy.find("\"Version\"") < policy.find("\"Id\""), "AWS's member order");

    let custom = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},{{"Sid":"Logs","Effect":"Allow","Principal":{{"Service":"logs.us-east-1.amazonaws.com"}},"Action":["kms:Encrypt*","kms:Decrypt*"],"Resource":"*","Condition":{{"ArnLike":{{"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:us-east-1:{account}:*"}}}}}}]}}"#
    );
    kms.put_key_policy().key_id(&id).policy(&custom).send().await.unwrap();
    let got = kms.get_key_policy().key_id(&id).policy_name("default").send().await.unwrap();
    assert_eq!(got.policy(), Some(custom.as_str()), "stored as given");

    let (code, _) = error_of(kms.put_key_policy().key_id(&id).policy("{\"Statement\": 7}").send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert_eq!(code_of(kms.put_key_policy().key_id(&id).policy("[]").send().await), "MalformedPolicyDocumentException");
    assert_eq!(kms.get_key_policy().key_id(&id).send().await.unwrap().policy(), Some(custom.as_str()), "unchanged");
    assert_eq!(code_of(kms.get_key_policy().key_id(&id).policy_name("other").send().await), "NotFoundException");

    let names = kms.list_key_policies().key_id(&id).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default".to_owned()]);
    assert!(!names.truncated());
}
