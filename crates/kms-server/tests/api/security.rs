//! Attacks on ferrokms's trust model, each performed as an attacker would and refused (issue
//! #20; docs/security.md describes the model). Every test here failed before its fix.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
use serde_json::{Value, json};

use crate::common::{TestServer, client_for, code_of, error_of, signed, signed_extra, start, start_with_clock};

const ADMIN_JSON: &str = "application/x-amz-json-1.1";

/// Calls an admin operation with the given access key; returns (status line, JSON body).
async fn admin_as(t: &TestServer, creds: (&str, &str), operation: &str, body: Value) -> (String, Value) {
    let (status, text) = signed(
        t.server.local_addr,
        (creds.0, creds.1, None),
        "kms",
        Some(&format!("FerrokmsAdmin.{operation}")),
        ADMIN_JSON,
        body.to_string().as_bytes(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A KMS, admin or STS request from `creds` with extra signed headers.
async fn call_with(
    t: &TestServer,
    creds: (&str, &str),
    target: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, String) {
    let (service, content_type) = match target {
        Some(_) => ("kms", ADMIN_JSON),
        None => ("sts", "application/x-www-form-urlencoded"),
    };
    signed_extra(t.server.local_addr, (creds.0, creds.1, None), service, target, content_type, headers, body.as_bytes())
        .await
}

/// The operator's service principal and its access key.
async fn service_principal(t: &TestServer, name: &str) -> (String, String) {
    t.admin("CreateServicePrincipal", json!({"ServiceName": name})).await;
    let key = t.admin("CreateAccessKey", json!({"ServiceName": name})).await;
    (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    )
}

/// A user with an access key and an inline policy; returns (id, secret, arn).
async fn user_with_policy(t: &TestServer, name: &str, policy: Value) -> (String, String, String) {
    let arn = t.admin("CreateUser", json!({"UserName": name})).await["Principal"]["Arn"].as_str().unwrap().to_owned();
    t.admin("PutUserPolicy", json!({"UserName": name, "PolicyName": "p", "PolicyDocument": policy.to_string()})).await;
    let key = t.admin("CreateAccessKey", json!({"UserName": name})).await;
    (
        key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
        arn,
    )
}

async fn token_for(t: &TestServer, creds: (&str, &str), service: &str) -> String {
    let (status, body) = admin_as(t, creds, "CreateForwardAccessToken", json!({"ServicePrincipal": service})).await;
    assert!(status.contains("200"), "{status} {body}");
    body["ForwardAccessToken"].as_str().unwrap().to_owned()
}

/// Issue #20.1: a service principal with no permissions named the admin in
/// `x-ferrokms-via-principal` and decrypted the admin's data, minted an admin access key and
/// was told by STS that it was the admin. Now the header is refused everywhere, and a service
/// acts for a user only with that user's forward access token — on the KMS API only.
#[tokio::test]
async fn a_service_cannot_act_for_a_user_without_the_users_consent() {
    let (t, clock) = start_with_clock().await;
    let account = t.server.account.to_string();
    let admin_arn = format!("arn:aws:iam::{account}:user/admin");
    let key = t.create_key().await;
    let secret_ct =
        t.client().encrypt().key_id(&key).plaintext(Blob::new("admin secret")).send().await.unwrap().ciphertext_blob;
    let secret_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, secret_ct.unwrap().as_ref());
    let (sid, ssecret) = service_principal(&t, "s3.us-east-1.amazonaws.com").await;
    let s3 = (sid.as_str(), ssecret.as_str());

    // The attack of the report, each way it went through.
    let via = [("x-ferrokms-via-principal", admin_arn.as_str())];
    let decrypt = json!({"CiphertextBlob": secret_b64}).to_string();
    let (status, text) = call_with(&t, s3, Some("TrentService.Decrypt"), &via, &decrypt).await;
    assert!(text.contains("AccessDeniedException") && !text.contains("Plaintext"), "{status} {text}");
    let create_key = json!({"UserName": "admin"}).to_string();
    let (_, text) = call_with(&t, s3, Some("FerrokmsAdmin.CreateAccessKey"), &via, &create_key).await;
    assert!(text.contains("AccessDeniedException") && !text.contains("SecretAccessKey"), "{text}");
    let (_, text) = call_with(&t, s3, None, &via, "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert!(!text.contains("<Arn>") && text.contains("AccessDenied"), "{text}");

    // Alice consents: her token lets s3 act for her, within her permissions, for Encrypt.
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt",
        "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]});
    let (aid, asecret, alice_arn) = user_with_policy(&t, "alice", allow).await;
    let token = token_for(&t, (&aid, &asecret), "s3.us-east-1.amazonaws.com").await;
    let with_token = [("x-ferrokms-forward-access-token", token.as_str())];
    let encrypt = json!({"KeyId": key, "Plaintext": "eA=="}).to_string();
    let (status, text) = call_with(&t, s3, Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(status.contains("200"), "{status} {text}");
    // Alice may not decrypt the admin's data, so neither may s3 with her token.
    let (_, text) = call_with(&t, s3, Some("TrentService.Decrypt"), &with_token, &decrypt).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
    // Never the admin or STS APIs, even with a valid token.
    let (_, text) = call_with(&t, s3, Some("FerrokmsAdmin.CreateAccessKey"), &with_token, &create_key).await;
    assert!(text.contains("AccessDeniedException") && !text.contains("SecretAccessKey"), "{text}");
    let (_, text) = call_with(&t, s3, None, &with_token, "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert!(!text.contains("<Arn>") && text.contains("AccessDenied"), "{text}");
    // Not in anyone else's hands: another service, or alice herself.
    let (lid, lsecret) = service_principal(&t, "logs.us-east-1.amazonaws.com").await;
    let (_, text) = call_with(&t, (&lid, &lsecret), Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
    let (_, text) = call_with(&t, (&aid, &asecret), Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
    // A token edited to name the admin is a forgery.
    let forged = {
        let (signed_part, tag) = token.rsplit_once('.').unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let body = base64::Engine::decode(&b64, signed_part.strip_prefix("fat1.").unwrap()).unwrap();
        let edited = String::from_utf8(body).unwrap().replace(&alice_arn, &admin_arn);
        format!("fat1.{}.{tag}", base64::Engine::encode(&b64, edited))
    };
    let (_, text) =
        call_with(&t, s3, Some("TrentService.Decrypt"), &[("x-ferrokms-forward-access-token", &forged)], &decrypt)
            .await;
    assert!(text.contains("AccessDeniedException") && !text.contains("Plaintext"), "{text}");
    // A service cannot mint tokens, and tokens expire within minutes.
    let (_, body) =
        admin_as(&t, s3, "CreateForwardAccessToken", json!({"ServicePrincipal": "logs.us-east-1.amazonaws.com"})).await;
    assert_eq!(body["__type"], "AccessDeniedException", "{body}");
    let (_, body) = admin_as(
        &t,
        (&aid, &asecret),
        "CreateForwardAccessToken",
        json!({"ServicePrincipal": "s3.us-east-1.amazonaws.com", "DurationSeconds": 3600}),
    )
    .await;
    assert_eq!(body["__type"], "ValidationException", "{body}");
    clock.advance_millis(301_000);
    let (_, text) = call_with(&t, s3, Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(text.contains("AccessDeniedException") && text.contains("expired"), "{text}");

    // The audit record of the forwarded Encrypt names alice, the service and the real address;
    // the token itself is nowhere in the trail.
    let dir = t.dir.path().to_path_buf();
    t.server.shutdown().await;
    let store = kms_store::SqliteStore::open(&dir.join("ferrokms.db")).unwrap();
    let rows = kms_store::Store::audit_after(&store, 0, 10_000).await.unwrap();
    assert!(rows.iter().all(|r| !r.record.contains(&token)), "a forward access token is in the audit trail");
    let forwarded = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.record).unwrap())
        .find(|r| r["eventName"] == "Encrypt" && r["userIdentity"]["invokedBy"] == "s3.us-east-1.amazonaws.com")
        .expect("the forwarded Encrypt is recorded");
    assert_eq!(forwarded["userIdentity"]["arn"], alice_arn.as_str());
    assert_eq!(forwarded["sourceIPAddress"], "127.0.0.1");
}

/// A deleted user's token dies with it, and so does a token whose user was created again under
/// the same name (a different principal).
#[tokio::test]
async fn a_forward_access_token_dies_with_its_user() {
    let t = start().await;
    let key = t.create_key().await;
    let (sid, ssecret) = service_principal(&t, "s3.us-east-1.amazonaws.com").await;
    let allow =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]});
    let (aid, asecret, _) = user_with_policy(&t, "bob", allow.clone()).await;
    let token = token_for(&t, (&aid, &asecret), "s3.us-east-1.amazonaws.com").await;
    let with_token = [("x-ferrokms-forward-access-token", token.as_str())];
    let encrypt = json!({"KeyId": key, "Plaintext": "eA=="}).to_string();
    let s3 = (sid.as_str(), ssecret.as_str());
    let (status, _) = call_with(&t, s3, Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(status.contains("200"));
    t.admin("DeleteUser", json!({"UserName": "bob"})).await;
    user_with_policy(&t, "bob", allow).await;
    let (_, text) = call_with(&t, s3, Some("TrentService.Encrypt"), &with_token, &encrypt).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
}

/// Issue #20.2 and #20.14: account B's admin made its own `logs.us-east-1.amazonaws.com`, set
/// the source headers to account A and decrypted A's logs; any account admin could also create
/// accounts without end. Service principals and accounts are the operator's now.
#[tokio::test]
async fn only_the_operator_makes_service_principals_and_accounts() {
    let t = start().await;
    let a = t.server.account.to_string();
    let group = format!("arn:aws:logs:us-east-1:{a}:log-group:app");
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{a}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"}, "Action": ["kms:Encrypt", "kms:Decrypt"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": a}}}]});
    let key_arn = t.client().create_key().policy(policy.to_string()).send().await.unwrap().key_metadata.unwrap().arn;
    let key_arn = key_arn.unwrap();
    let ct = t
        .client()
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new("A's log line"))
        .encryption_context("aws:logs:arn", &group)
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let other = t.admin("CreateAccount", json!({})).await;
    let b = (
        other["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        other["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let b = (b.0.as_str(), b.1.as_str());
    for (op, body) in [
        ("CreateServicePrincipal", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})),
        ("CreateAccessKey", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})),
        ("DeleteServicePrincipal", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})),
        ("CreateAccount", json!({})),
    ] {
        let (status, body) = admin_as(&t, b, op, body).await;
        assert_eq!(body["__type"], "AccessDeniedException", "{op}: {status} {body}");
    }
    // Even with a service principal the operator made, B holds no key for it.
    t.admin("CreateServicePrincipal", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})).await;
    let (_, body) = admin_as(&t, b, "CreateAccessKey", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})).await;
    assert_eq!(body["__type"], "AccessDeniedException", "{body}");
    // The operator's own service, with its own key, still works as before.
    let key = t.admin("CreateAccessKey", json!({"ServiceName": "logs.us-east-1.amazonaws.com"})).await;
    let (lid, lsecret) =
        (key["AccessKey"]["AccessKeyId"].as_str().unwrap(), key["AccessKey"]["SecretAccessKey"].as_str().unwrap());
    let body =
        json!({"CiphertextBlob": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ct.as_ref()),
        "EncryptionContext": {"aws:logs:arn": group}})
        .to_string();
    let (status, text) = call_with(
        &t,
        (lid, lsecret),
        Some("TrentService.Decrypt"),
        &[("x-ferrokms-source-account", a.as_str())],
        &body,
    )
    .await;
    assert!(status.contains("200"), "{status} {text}");
}

/// A service principal stored in a tenant account (made before only the operator could make
/// them) no longer authenticates.
#[tokio::test]
async fn a_tenant_service_principal_made_before_the_fix_is_inert() {
    let t = start().await;
    let other = t.admin("CreateAccount", json!({})).await;
    let b = kms_core::ids::AccountId::parse(other["AccountId"].as_str().unwrap()).unwrap();
    let store = t.server.service.store();
    let name = "logs.us-east-1.amazonaws.com";
    let arn = format!("arn:aws:iam::{b}:service/{name}");
    let now = kms_core::Timestamp::from_unix_millis(0);
    let record = kms_store::PrincipalRecord {
        arn: arn.clone(),
        account: b.clone(),
        kind: kms_store::PrincipalType::Service,
        name: name.into(),
        principal_id: "ASVCLEGACY".into(),
        trust_policy: None,
        created: now,
        attributes: Default::default(),
    };
    store.create_principal(&record, &[]).await.unwrap();
    let secret = "legacy-secret-legacy-secret-legacy-secret-0";
    // An access key wrapped as the server wraps one (the AAD is the key id): made for a user
    // with a chosen id and secret, then moved to the tenant's service principal.
    t.admin("CreateUser", json!({"UserName": "carrier"})).await;
    t.admin(
        "CreateAccessKey",
        json!({"UserName": "carrier", "AccessKeyId": "AKIALEGACYSERVICE000", "SecretAccessKey": secret}),
    )
    .await;
    let wrapped = store.access_key("AKIALEGACYSERVICE000").await.unwrap().unwrap();
    t.admin("DeleteUser", json!({"UserName": "carrier"})).await;
    let record = kms_store::AccessKeyRecord { account: b, principal_arn: arn, ..wrapped };
    store.create_access_key(&record, &[]).await.unwrap();
    let logs = client_for(t.server.local_addr, "AKIALEGACYSERVICE000", secret, "us-east-1");
    assert_eq!(code_of(logs.list_keys().send().await), "UnrecognizedClientException");
}

/// Issue #20.3: with a grant of only Encrypt and CreateGrant, the grantee granted itself Decrypt
/// and gave Decrypt to a user with no policies. A grant's CreateGrant creates only grants no
/// wider than itself.
#[tokio::test]
async fn a_grant_cannot_widen_itself() {
    let t = start().await;
    let key = t.create_key().await;
    let (mallory, mallory_arn) = t.user("mallory").await;
    let (_, friend_arn) = t.user("friend").await;
    t.client()
        .create_grant()
        .key_id(&key)
        .grantee_principal(&mallory_arn)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::CreateGrant)
        .constraints(GrantConstraints::builder().encryption_context_subset("tenant", "a").build())
        .send()
        .await
        .unwrap();
    let grant = |grantee: &str, ops: &[GrantOperation], constraints: Option<GrantConstraints>| {
        let mut call = mallory.create_grant().key_id(&key).grantee_principal(grantee);
        for op in ops {
            call = call.operations(op.clone());
        }
        call.set_constraints(constraints)
    };
    let subset_a = || Some(GrantConstraints::builder().encryption_context_subset("tenant", "a").build());
    // The attack: Decrypt for itself and for a friend.
    for grantee in [&mallory_arn, &friend_arn] {
        let r = grant(grantee, &[GrantOperation::Decrypt], subset_a()).send().await;
        let (code, message) = error_of(r);
        assert_eq!(code, "AccessDeniedException", "{message}");
    }
    // Looser constraints than its own: refused too.
    let r = grant(&friend_arn, &[GrantOperation::Encrypt], None).send().await;
    assert_eq!(code_of(r), "AccessDeniedException");
    let r = grant(
        &friend_arn,
        &[GrantOperation::Encrypt],
        Some(GrantConstraints::builder().encryption_context_subset("tenant", "b").build()),
    )
    .send()
    .await;
    assert_eq!(code_of(r), "AccessDeniedException");
    // No wider than itself: allowed, including stricter constraints (keys compared without case).
    grant(&friend_arn, &[GrantOperation::Encrypt], subset_a()).send().await.unwrap();
    let stricter = GrantConstraints::builder().encryption_context_equals("Tenant", "a").build();
    grant(&friend_arn, &[GrantOperation::Encrypt, GrantOperation::CreateGrant], Some(stricter)).send().await.unwrap();
}

/// Issue #20.11: DeleteAccessKey's AccessDenied named the owner of any access key id. It now
/// decides on the principal the caller names (itself by default), as IAM does.
#[tokio::test]
async fn delete_access_key_reveals_no_owner() {
    let t = start().await;
    let (_, _) = t.user("victim").await;
    let victim_key = t.admin("CreateAccessKey", json!({"UserName": "victim"})).await;
    let victim_key_id = victim_key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    t.admin("CreateUser", json!({"UserName": "eve"})).await;
    let eve_key = t.admin("CreateAccessKey", json!({"UserName": "eve"})).await;
    let eve_creds = (
        eve_key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
        eve_key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned(),
    );
    let (_, body) =
        admin_as(&t, (&eve_creds.0, &eve_creds.1), "DeleteAccessKey", json!({"AccessKeyId": victim_key_id})).await;
    let text = body.to_string();
    assert!(!text.contains("victim"), "{text}");
    let (_, unknown) =
        admin_as(&t, (&eve_creds.0, &eve_creds.1), "DeleteAccessKey", json!({"AccessKeyId": "AKIANOSUCHKEY0000000"}))
            .await;
    assert_eq!(body["__type"], unknown["__type"], "an existing and a missing key answer alike: {body} {unknown}");
    // The admin deletes it by naming its user, as with `aws iam delete-access-key --user-name`.
    let (status, _) = admin_as(
        &t,
        (&t.admin_id, &t.admin_secret),
        "DeleteAccessKey",
        json!({"AccessKeyId": victim_key_id, "UserName": "victim"}),
    )
    .await;
    assert!(status.contains("200"));
}

/// Issue #20.9: another account's key answered AccessDenied when it existed and NotFound when it
/// did not, and a denied alias ARN named the key behind it. Both now answer alike, naming only
/// what the caller named.
#[tokio::test]
async fn another_accounts_keys_and_aliases_do_not_reveal_themselves() {
    let t = start().await;
    let a = t.server.account.to_string();
    let key = t.client().create_key().send().await.unwrap().key_metadata.unwrap();
    t.client().create_alias().alias_name("alias/payroll").target_key_id(key.key_id()).send().await.unwrap();
    let other = t.admin("CreateAccount", json!({})).await;
    let b = client_for(
        t.server.local_addr,
        other["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        other["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        "us-east-1",
    );
    let missing_key = format!("arn:aws:kms:us-east-1:{a}:key/00000000-0000-4000-8000-000000000000");
    let existing_alias = format!("arn:aws:kms:us-east-1:{a}:alias/payroll");
    let missing_alias = format!("arn:aws:kms:us-east-1:{a}:alias/nothing");
    for reference in [key.arn().unwrap(), missing_key.as_str(), existing_alias.as_str(), missing_alias.as_str()] {
        let (code, message) = error_of(b.encrypt().key_id(reference).plaintext(Blob::new("x")).send().await);
        assert_eq!(code, "AccessDeniedException", "{reference}: {message}");
        assert!(
            message.contains(reference) && !message.contains(key.key_id()) || reference == key.arn().unwrap(),
            "{message}"
        );
        assert!(message.contains("no resource-based policy allows the kms:Encrypt action"), "{message}");
        let (code, _) = error_of(b.describe_key().key_id(reference).send().await);
        assert_eq!(code, "AccessDeniedException", "{reference}");
    }
}

/// Issue #20.8: a user deleted and created again with the same name inherited the old one's
/// grants. Grants are bound to the grantee's unique id, as in AWS.
#[tokio::test]
async fn a_recreated_user_does_not_inherit_grants() {
    let t = start().await;
    let key = t.create_key().await;
    let (dave, dave_arn) = t.user("dave").await;
    t.client()
        .create_grant()
        .key_id(&key)
        .grantee_principal(&dave_arn)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    dave.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    t.admin("DeleteUser", json!({"UserName": "dave"})).await;
    let (impostor, impostor_arn) = t.user("dave").await;
    assert_eq!(impostor_arn, dave_arn);
    let r = impostor.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await;
    assert_eq!(code_of(r), "AccessDeniedException");
}

/// Issue #20.8, key policies and trust policies: a statement naming a deleted user by ARN is
/// rewritten to the user's unique id (as IAM shows it), so a user created again under the same
/// name is not reached by it; a role's trust policy likewise.
#[tokio::test]
async fn a_recreated_user_does_not_inherit_key_policy_statements() {
    let t = start().await;
    let account = t.server.account.to_string();
    let (_, erin_arn) = t.user("erin").await;
    let erin_id =
        t.admin("GetPrincipal", json!({"UserName": "erin"})).await["Principal"]["Id"].as_str().unwrap().to_owned();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": erin_arn}, "Action": "kms:Encrypt", "Resource": "*"}]});
    let key = t.client().create_key().policy(policy.to_string()).send().await.unwrap().key_metadata.unwrap().key_id;
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": erin_arn}, "Action": "sts:AssumeRole"}]});
    t.admin("CreateRole", json!({"RoleName": "deployer", "AssumeRolePolicyDocument": trust.to_string()})).await;
    t.admin("DeleteUser", json!({"UserName": "erin"})).await;
    let shown = t.client().get_key_policy().key_id(&key).send().await.unwrap().policy.unwrap();
    assert!(shown.contains(&format!("\"{erin_id}\"")) && !shown.contains(&erin_arn), "{shown}");
    let role = t.admin("GetPrincipal", json!({"RoleName": "deployer"})).await;
    let trust_now = role["AssumeRolePolicyDocument"].as_str().unwrap();
    assert!(trust_now.contains(&erin_id) && !trust_now.contains(&erin_arn), "{trust_now}");
    let (impostor, impostor_arn) = t.user("erin").await;
    assert_eq!(impostor_arn, erin_arn);
    let r = impostor.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await;
    assert_eq!(code_of(r), "AccessDeniedException");
}

/// Grants to AWS service principals (GranteeServicePrincipal, RetiringServicePrincipal, the
/// SourceArn constraint), as AWS added them: the service uses the key only for the resource the
/// grant names, ListGrants and ListRetirableGrants find the grant by the service, and the
/// service retires it. A grant names one grantee of either kind.
#[tokio::test]
async fn grants_to_service_principals_hold_only_for_their_source() {
    let t = start().await;
    let kms = t.client();
    let account = t.server.account.to_string();
    let service = "logs.us-east-1.amazonaws.com";
    let creds = service_principal(&t, service).await;
    let creds = (creds.0.as_str(), creds.1.as_str());
    let key = t.create_key().await;
    let group = format!("arn:aws:logs:us-east-1:{account}:log-group:app");
    let granted = kms
        .create_grant()
        .key_id(&key)
        .grantee_service_principal(service)
        .retiring_service_principal(service)
        .operations(GrantOperation::Encrypt)
        .constraints(GrantConstraints::builder().source_arn(&group).build())
        .send()
        .await
        .unwrap();
    let (status, text) = encrypt_for(&t, creds, &key, Some(&group)).await;
    assert!(status.contains("200"), "{status} {text}");
    let other = format!("arn:aws:logs:us-east-1:{account}:log-group:other");
    let (_, text) = encrypt_for(&t, creds, &key, Some(&other)).await;
    assert!(text.contains("AccessDeniedException"), "another source: {text}");
    let (_, text) = encrypt_for(&t, creds, &key, None).await;
    assert!(text.contains("AccessDeniedException"), "no source: {text}");

    let listed = kms.list_grants().key_id(&key).grantee_service_principal(service).send().await.unwrap();
    let entry = &listed.grants()[0];
    assert_eq!(entry.grantee_service_principal(), Some(service));
    assert_eq!(entry.grantee_principal(), None);
    assert_eq!(entry.constraints().and_then(|c| c.source_arn()), Some(group.as_str()));
    let none = kms.list_grants().key_id(&key).grantee_principal(format!("arn:aws:iam::{account}:root")).send().await;
    assert!(none.unwrap().grants().is_empty());
    let retirable = kms.list_retirable_grants().retiring_service_principal(service).send().await.unwrap();
    assert_eq!(retirable.grants().len(), 1);

    // One grantee (and one retiring principal), of either kind; SourceArn only for a service.
    let (code, _) = error_of(
        kms.create_grant()
            .key_id(&key)
            .grantee_principal(format!("arn:aws:iam::{account}:root"))
            .grantee_service_principal(service)
            .operations(GrantOperation::Encrypt)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, message) = error_of(
        kms.create_grant()
            .key_id(&key)
            .grantee_principal(format!("arn:aws:iam::{account}:root"))
            .operations(GrantOperation::Encrypt)
            .constraints(GrantConstraints::builder().source_arn(&group).build())
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException", "{message}");

    // The retiring service retires it; its use ends.
    let body = json!({"KeyId": key, "GrantId": granted.grant_id().unwrap()}).to_string();
    let (status, text) = call_with(&t, creds, Some("TrentService.RetireGrant"), &[], &body).await;
    assert!(status.contains("200"), "{status} {text}");
    let (_, text) = encrypt_for(&t, creds, &key, Some(&group)).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
}

/// An Encrypt by `creds`, for the resource `source` (`x-ferrokms-source-arn`) if given.
async fn encrypt_for(t: &TestServer, creds: (&str, &str), key: &str, source: Option<&str>) -> (String, String) {
    let headers: Vec<(&str, &str)> = source.map(|s| ("x-ferrokms-source-arn", s)).into_iter().collect();
    let body = json!({"KeyId": key, "Plaintext": "bG9n"}).to_string();
    call_with(t, creds, Some("TrentService.Encrypt"), &headers, &body).await
}

/// A grant to a service principal is the service's alone: a user of the same account who names
/// the grant's source in `x-ferrokms-source-arn` (a header anyone can send) gets nothing from it.
#[tokio::test]
async fn a_forged_source_header_does_not_borrow_a_service_grant() {
    let t = start().await;
    let account = t.server.account.to_string();
    let service = "logs.us-east-1.amazonaws.com";
    let key = t.create_key().await;
    let group = format!("arn:aws:logs:us-east-1:{account}:log-group:app");
    t.client()
        .create_grant()
        .key_id(&key)
        .grantee_service_principal(service)
        .operations(GrantOperation::Encrypt)
        .constraints(GrantConstraints::builder().source_arn(&group).build())
        .send()
        .await
        .unwrap();
    let describe_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]});
    let (id, secret, _) = user_with_policy(&t, "mallory", describe_only).await;
    let (_, text) = encrypt_for(&t, (&id, &secret), &key, Some(&group)).await;
    assert!(text.contains("AccessDeniedException"), "{text}");
}
