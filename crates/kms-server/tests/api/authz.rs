//! Authorization end to end: separate principals with their own access keys, key policies,
//! identity policies, grants, and assumed roles, all over signed HTTP.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
use serde_json::json;

use crate::common::{client_for, code_of, error_of, signed, start, start_with_clock};

/// The CloudWatch Logs scenario from the AWS documentation: the account administers the key,
/// and the logs service principal may use it only for log groups of this account.
#[tokio::test]
async fn log_encryption_key_policy_with_service_principal() {
    let t = start().await;
    let account = t.server.account.to_string();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Allow CloudWatch Logs", "Effect": "Allow",
             "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": format!("arn:aws:logs:us-east-1:{account}:log-group:*")}}}
        ]
    });
    let key = t.client().create_key().policy(policy.to_string()).send().await.unwrap().key_metadata.unwrap().key_id;
    t.admin("CreateServicePrincipal", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})).await;
    let creds = t.admin("CreateAccessKey", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})).await;
    let logs = client_for(
        t.server.local_addr,
        creds["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        creds["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    let group = format!("arn:aws:logs:us-east-1:{account}:log-group:app");
    let ct = logs
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("log line"))
        .encryption_context("aws:logs:arn", &group)
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let back =
        logs.decrypt().ciphertext_blob(ct.clone()).encryption_context("aws:logs:arn", &group).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"log line");
    logs.generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .encryption_context("aws:logs:arn", &group)
        .send()
        .await
        .unwrap();
    // No context, another account's log group, an unlisted action: denied.
    let (code, message) = error_of(logs.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("logs.us-east-1.amazonaws.com") && message.contains("kms:Encrypt"), "{message}");
    let foreign = "arn:aws:logs:us-east-1:999999999999:log-group:theirs";
    let r =
        logs.encrypt().key_id(&key).plaintext(Blob::new("x")).encryption_context("aws:logs:arn", foreign).send().await;
    assert_eq!(code_of(r), "AccessDeniedException");
    assert_eq!(code_of(logs.schedule_key_deletion().key_id(&key).send().await), "AccessDeniedException");
    assert_eq!(code_of(logs.list_keys().send().await), "AccessDeniedException");
}

#[tokio::test]
async fn identity_policies_key_policies_and_explicit_denies() {
    let t = start().await;
    let admin = t.client();
    let key = t.create_key().await;
    let (alice, alice_arn) = t.user("alice").await;
    // No identity policy: the default key policy delegates to IAM, which allows nothing.
    let (code, message) = error_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains(&alice_arn) && message.contains("no identity-based policy allows"), "{message}");
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}]});
    t.admin("PutUserPolicy", json!({"UserName": "alice", "PolicyName": "use", "PolicyDocument": allow.to_string()}))
        .await;
    let ct = alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap().ciphertext_blob.unwrap();
    alice.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    assert_eq!(code_of(alice.disable_key().key_id(&key).send().await), "AccessDeniedException");
    // An explicit Deny in an identity policy wins over the Allow.
    let deny =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]});
    t.admin(
        "PutUserPolicy",
        json!({"UserName": "alice", "PolicyName": "no-decrypt", "PolicyDocument": deny.to_string()}),
    )
    .await;
    let (code, message) = error_of(alice.decrypt().ciphertext_blob(ct.clone()).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("explicit deny"), "{message}");
    t.admin("DeleteUserPolicy", json!({"UserName": "alice", "PolicyName": "no-decrypt"})).await;
    alice.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    // An explicit Deny in the key policy wins too.
    let account = t.server.account.to_string();
    let key_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": alice_arn}, "Action": "kms:Decrypt", "Resource": "*"}
    ]});
    admin.put_key_policy().key_id(&key).policy(key_policy.to_string()).send().await.unwrap();
    let (code, message) = error_of(alice.decrypt().ciphertext_blob(ct).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("explicit deny"), "{message}");
    alice.encrypt().key_id(&key).plaintext(Blob::new("still")).send().await.unwrap();
    // Deleting the user ends its access key at once.
    t.admin("DeleteUser", json!({"UserName": "alice"})).await;
    assert_eq!(
        code_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await),
        "UnrecognizedClientException"
    );
}

#[tokio::test]
async fn the_lockout_safety_check() {
    let t = start().await;
    let admin = t.client();
    let key = t.create_key().await;
    let locked = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}
    ]})
    .to_string();
    let (code, message) = error_of(admin.put_key_policy().key_id(&key).policy(&locked).send().await);
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert!(message.contains("will not allow you to update the key policy"), "{message}");
    assert_eq!(code_of(admin.create_key().policy(&locked).send().await), "MalformedPolicyDocumentException");
    admin.create_key().policy(&locked).bypass_policy_lockout_safety_check(true).send().await.unwrap();
    admin.put_key_policy().key_id(&key).policy(&locked).bypass_policy_lockout_safety_check(true).send().await.unwrap();
    assert_eq!(code_of(admin.describe_key().key_id(&key).send().await), "AccessDeniedException", "now locked out");
}

#[tokio::test]
async fn grants_with_encryption_context_constraints() {
    let t = start().await;
    let admin = t.client();
    let key = t.create_key().await;
    let (bob, bob_arn) = t.user("bob").await;
    let (_ops, ops_arn) = t.user("ops").await;
    let mine = admin
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("tenant a"))
        .encryption_context("tenant", "a")
        .encryption_context("extra", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let theirs = admin
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("tenant b"))
        .encryption_context("tenant", "b")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    assert_eq!(
        code_of(
            bob.decrypt()
                .ciphertext_blob(mine.clone())
                .encryption_context("tenant", "a")
                .encryption_context("extra", "1")
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    let grant = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&bob_arn)
        .retiring_principal(&ops_arn)
        .operations(GrantOperation::Decrypt)
        .constraints(GrantConstraints::builder().encryption_context_subset("tenant", "a").build())
        .name("bob-tenant-a")
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_owned();
    assert_eq!(grant_id.len(), 64);
    // Idempotent by name.
    let again = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&bob_arn)
        .retiring_principal(&ops_arn)
        .operations(GrantOperation::Decrypt)
        .constraints(GrantConstraints::builder().encryption_context_subset("tenant", "a").build())
        .name("bob-tenant-a")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));
    let back = bob
        .decrypt()
        .ciphertext_blob(mine.clone())
        .encryption_context("tenant", "a")
        .encryption_context("extra", "1")
        .grant_tokens(grant.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"tenant a");
    assert_eq!(
        code_of(bob.decrypt().ciphertext_blob(theirs).encryption_context("tenant", "b").send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code_of(bob.encrypt().key_id(&key).plaintext(Blob::new("x")).encryption_context("tenant", "a").send().await),
        "AccessDeniedException"
    );
    let listed = admin.list_grants().key_id(&key).send().await.unwrap();
    assert_eq!(listed.grants().len(), 1);
    assert_eq!(listed.grants()[0].grantee_principal(), Some(bob_arn.as_str()));
    // The retiring principal retires it; the grantee loses access at once.
    let retirable = t.admin("ListPrincipals", json!({})).await;
    assert!(retirable["Principals"].as_array().unwrap().len() >= 3);
    admin.retire_grant().key_id(&key).grant_id(&grant_id).send().await.unwrap();
    let r = bob
        .decrypt()
        .ciphertext_blob(mine.clone())
        .encryption_context("tenant", "a")
        .encryption_context("extra", "1")
        .send()
        .await;
    assert_eq!(code_of(r), "AccessDeniedException");
    // Revoke works the same way.
    let second = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&bob_arn)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    bob.decrypt()
        .ciphertext_blob(mine.clone())
        .encryption_context("tenant", "a")
        .encryption_context("extra", "1")
        .send()
        .await
        .unwrap();
    admin.revoke_grant().key_id(&key).grant_id(second.grant_id().unwrap()).send().await.unwrap();
    let r = bob
        .decrypt()
        .ciphertext_blob(mine)
        .encryption_context("tenant", "a")
        .encryption_context("extra", "1")
        .send()
        .await;
    assert_eq!(code_of(r), "AccessDeniedException");
    assert_eq!(
        code_of(admin.revoke_grant().key_id(&key).grant_id(second.grant_id().unwrap()).send().await),
        "NotFoundException"
    );
    let bad =
        admin.create_grant().key_id(&key).grantee_principal(&bob_arn).operations(GrantOperation::Sign).send().await;
    assert_eq!(code_of(bad), "ValidationException");
}

fn xml_field(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap() + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    xml[start..end].replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn assumed_role_credentials_work_until_they_expire() {
    let (t, clock) = start_with_clock().await;
    let account = t.server.account.to_string();
    let key = t.create_key().await;
    let (_alice, alice_arn) = t.user("alice").await;
    let alice_key = t.admin("CreateAccessKey", json!({"UserName": "alice"})).await;
    let (alice_id, alice_secret) = (
        alice_key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        alice_key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": alice_arn}, "Action": "sts:AssumeRole"}]});
    t.admin("CreateRole", json!({"RoleName": "encryptor", "AssumeRolePolicyDocument": trust.to_string()})).await;
    let use_keys =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]});
    t.admin(
        "PutRolePolicy",
        json!({"RoleName": "encryptor", "PolicyName": "use", "PolicyDocument": use_keys.to_string()}),
    )
    .await;

    let addr = t.server.local_addr;
    let sts = |creds: (String, String, Option<String>), body: String| async move {
        signed(
            addr,
            (&creds.0, &creds.1, creds.2.as_deref()),
            "sts",
            None,
            "application/x-www-form-urlencoded; charset=utf-8",
            body.as_bytes(),
        )
        .await
    };
    let (status, xml) = sts(
        (alice_id.clone(), alice_secret.clone(), None),
        form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
    )
    .await;
    assert!(status.contains("200"), "{status} {xml}");
    assert_eq!(xml_field(&xml, "Arn"), alice_arn);
    assert_eq!(xml_field(&xml, "Account"), account);

    let role_arn = format!("arn:aws:iam::{account}:role/encryptor");
    let assume = form(&[
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", &role_arn),
        ("RoleSessionName", "job-7"),
        ("DurationSeconds", "900"),
    ]);
    let (status, xml) = sts((alice_id.clone(), alice_secret.clone(), None), assume.clone()).await;
    assert!(status.contains("200"), "{status} {xml}");
    let (id, secret, token) =
        (xml_field(&xml, "AccessKeyId"), xml_field(&xml, "SecretAccessKey"), xml_field(&xml, "SessionToken"));
    assert!(id.starts_with("ASIA"));
    assert_eq!(xml_field(&xml, "Arn"), format!("arn:aws:sts::{account}:assumed-role/encryptor/job-7"));

    let (status, xml) = sts(
        (id.clone(), secret.clone(), Some(token.clone())),
        form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")]),
    )
    .await;
    assert!(status.contains("200"), "{status} {xml}");
    assert_eq!(xml_field(&xml, "Arn"), format!("arn:aws:sts::{account}:assumed-role/encryptor/job-7"));

    // Somebody the trust policy does not name cannot assume the role.
    let (_mallory, _) = t.user("mallory").await;
    let mk = t.admin("CreateAccessKey", json!({"UserName": "mallory"})).await;
    let (status, xml) = sts(
        (
            mk["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
            mk["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
            None,
        ),
        assume.clone(),
    )
    .await;
    assert!(status.contains("403"), "{status}");
    assert_eq!(xml_field(&xml, "Code"), "AccessDenied");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(aws_credential_types::Credentials::new(&id, &secret, Some(token.clone()), None, "role"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    let role = aws_sdk_kms::Client::from_conf(config);
    role.encrypt().key_id(&key).plaintext(Blob::new("as role")).send().await.unwrap();
    assert_eq!(code_of(role.disable_key().key_id(&key).send().await), "AccessDeniedException");
    clock.advance_millis(901 * 1000);
    let (code, _) = error_of(role.encrypt().key_id(&key).plaintext(Blob::new("late")).send().await);
    assert_eq!(code, "ExpiredTokenException");
}

/// Cross-account use needs both sides: the key policy must allow the other account, and the
/// other account's identity policy must allow the caller.
#[tokio::test]
async fn cross_account_use_needs_both_policies() {
    let t = start().await;
    let a = t.server.account.to_string();
    let key_arn = t.client().create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let other = t.admin("CreateAccount", json!({})).await;
    let b = other["AccountId"].as_str().unwrap().to_owned();
    assert_ne!(a, b);
    let b_admin = client_for(
        t.server.local_addr,
        other["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        other["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    // B's admin may do anything in B by identity policy, but A's key policy does not name B.
    let r = b_admin.encrypt().key_id(&key_arn).plaintext(Blob::new("x")).send().await;
    let (code, message) = error_of(r);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("no resource-based policy allows"), "{message}");
    // Management by ARN from another account: the key is not there for B.
    assert_eq!(code_of(b_admin.disable_key().key_id(&key_arn).send().await), "NotFoundException");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{b}:root")}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
    ]});
    t.client().put_key_policy().key_id(&key_arn).policy(policy.to_string()).send().await.unwrap();
    let ct = b_admin
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new("shared"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let back = b_admin.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"shared");
    b_admin.describe_key().key_id(&key_arn).send().await.unwrap();
    assert_eq!(code_of(b_admin.schedule_key_deletion().key_id(&key_arn).send().await), "NotFoundException");
    // A user in B without an identity policy is refused even though A's key policy allows B.
    let carol = {
        let body = json!({"UserName": "carol"}).to_string();
        let id = other["AccessKey"]["AccessKeyId"].as_str().unwrap();
        let secret = other["AccessKey"]["SecretAccessKey"].as_str().unwrap();
        let call = |op: &'static str, body: String| async move {
            signed(
                t.server.local_addr,
                (id, secret, None),
                "kms",
                Some(&format!("FerrokmsAdmin.{op}")),
                "application/x-amz-json-1.1",
                body.as_bytes(),
            )
            .await
        };
        let (status, _) = call("CreateUser", body.clone()).await;
        assert!(status.contains("200"));
        let (_, key) = call("CreateAccessKey", body).await;
        let key: serde_json::Value = serde_json::from_str(&key).unwrap();
        client_for(
            t.server.local_addr,
            key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
            key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
            "us-east-1",
        )
    };
    let (code, message) = error_of(carol.decrypt().ciphertext_blob(ct).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert!(message.contains("no identity-based policy allows"), "{message}");
}

/// A service acting for a user with the user's forward access token: evaluated as the user,
/// with `kms:ViaService` set.
#[tokio::test]
async fn via_service_requests_carry_the_service_name() {
    let t = start().await;
    let account = t.server.account.to_string();
    let (alice, _) = t.user("alice").await;
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": account}}}]});
    t.admin("PutUserPolicy", json!({"UserName": "alice", "PolicyName": "via-s3", "PolicyDocument": allow.to_string()}))
        .await;
    let alice_key = t.admin("CreateAccessKey", json!({"UserName": "alice"})).await;
    let key = t.create_key().await;
    assert_eq!(code_of(alice.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await), "AccessDeniedException");
    t.admin("CreateServicePrincipal", json!({"ServiceName": "s3.us-east-1.amazonaws.com"})).await;
    let creds = t.admin("CreateAccessKey", json!({"ServiceName": "s3.us-east-1.amazonaws.com"})).await;
    let (id, secret) =
        (creds["AccessKey"]["AccessKeyId"].as_str().unwrap(), creds["AccessKey"]["SecretAccessKey"].as_str().unwrap());
    let (status, token) = signed(
        t.server.local_addr,
        (
            alice_key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
            alice_key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
            None,
        ),
        "kms",
        Some("FerrokmsAdmin.CreateForwardAccessToken"),
        "application/x-amz-json-1.1",
        json!({"ServicePrincipal": "s3.us-east-1.amazonaws.com"}).to_string().as_bytes(),
    )
    .await;
    assert!(status.contains("200"), "{status} {token}");
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["ForwardAccessToken"].as_str().unwrap().to_owned();
    let body = json!({"KeyId": key, "Plaintext": "eA=="}).to_string();
    let addr = t.server.local_addr;
    let (status, text) =
        signed_with_header(addr, (id, secret), ("x-ferrokms-forward-access-token", &token), &body).await;
    assert!(status.contains("200"), "{status} {text}");
    // The service on its own is not named by the key policy.
    let (status, text) = signed(
        addr,
        (id, secret, None),
        "kms",
        Some("TrentService.Encrypt"),
        "application/x-amz-json-1.1",
        body.as_bytes(),
    )
    .await;
    assert!(status.contains("400") && text.contains("AccessDeniedException"), "{status} {text}");
}

async fn signed_with_header(
    addr: std::net::SocketAddr,
    creds: (&str, &str),
    header: (&str, &str),
    body: &str,
) -> (String, String) {
    crate::common::signed_extra(
        addr,
        (creds.0, creds.1, None),
        "kms",
        Some("TrentService.Encrypt"),
        "application/x-amz-json-1.1",
        &[header],
        body.as_bytes(),
    )
    .await
}
