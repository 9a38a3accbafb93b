//! Policy tests: examples from the AWS documentation as tables, and the laws of evaluation as
//! property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;

use super::*;

const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn account(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

fn root(acct: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{acct}:root"),
        account: account(acct),
        kind: PrincipalKind::Root,
        user_id: acct.to_owned(),
        username: None,
    }
}

fn user(acct: &str, name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{acct}:user/{name}"),
        account: account(acct),
        kind: PrincipalKind::User,
        user_id: format!("AIDA{}", name.to_uppercase()),
        username: Some(name.to_owned()),
    }
}

fn session(acct: &str, role: &str, name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:sts::{acct}:assumed-role/{role}/{name}"),
        account: account(acct),
        kind: PrincipalKind::AssumedRole {
            role_arn: format!("arn:aws:iam::{acct}:role/{role}"),
            session_name: name.to_owned(),
        },
        user_id: format!("AROA{}:{name}", role.to_uppercase()),
        username: None,
    }
}

fn service(name: &str) -> Principal {
    Principal {
        arn: name.to_owned(),
        account: account(ACCOUNT),
        kind: PrincipalKind::Service { name: name.to_owned() },
        user_id: name.to_owned(),
        username: None,
    }
}

/// A key policy made of the given statements (a JSON array body).
fn key_policy(statements: &str) -> PolicyDocument {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    PolicyDocument::parse(&text, PolicyKind::Key).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn identity_policy(statements: &str) -> PolicyDocument {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    PolicyDocument::parse(&text, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn context(pairs: &[(&str, &str)]) -> ConditionContext {
    let mut c = ConditionContext::new();
    for (k, v) in pairs {
        c.insert(*k, *v);
    }
    c
}

/// Evaluates `action` on the test key (owned by [`ACCOUNT`]).
fn decide(
    key: &PolicyDocument,
    identity: &[&PolicyDocument],
    principal: &Principal,
    action: &str,
    ctx: &ConditionContext,
) -> Decision {
    let owner = account(ACCOUNT);
    let req = AuthzRequest { principal, action, resource: KEY_ARN, resource_account: &owner, context: ctx };
    evaluate(&req, key, identity, false)
}

const ALLOW: Decision = Decision::Allow;
const NO_KEY_POLICY: Decision = Decision::Deny(Denial { explicit: false, policy: DeniedBy::KeyPolicy });
const NO_IDENTITY_POLICY: Decision = Decision::Deny(Denial { explicit: false, policy: DeniedBy::IdentityPolicy });
const DENIED_BY_KEY_POLICY: Decision = Decision::Deny(Denial { explicit: true, policy: DeniedBy::KeyPolicy });
const DENIED_BY_IDENTITY_POLICY: Decision = Decision::Deny(Denial { explicit: true, policy: DeniedBy::IdentityPolicy });

/// An identity policy that allows the listed actions on the test key.
fn allows(actions: &str) -> PolicyDocument {
    identity_policy(&format!(r#"{{"Effect":"Allow","Action":{actions},"Resource":"{KEY_ARN}"}}"#))
}

// ---------------------------------------------------------------------------------------------
// Documentation examples
// ---------------------------------------------------------------------------------------------

/// AWS KMS Developer Guide, "Default key policy": the policy AWS KMS applies when CreateKey has
/// no policy. The account principal delegates to IAM: the root user is allowed, an IAM user only
/// with an identity policy that allows the action.
#[test]
fn default_key_policy_delegates_to_iam() {
    let policy = KeyPolicy::default_for(&account(ACCOUNT));
    let key = policy.document();
    assert_eq!(key.statements.len(), 1);
    assert_eq!(key.id.as_deref(), Some("key-default-1"));
    assert_eq!(
        key.statements[0].principal,
        Some(Scope::Only(PrincipalBlock(vec![PrincipalEntry::Aws(AwsPrincipal::Account(account(ACCOUNT)))])))
    );
    let none = ConditionContext::new();
    let encrypt = allows(r#""kms:Encrypt""#);
    let everything = allows(r#""kms:*""#);
    let alice = user(ACCOUNT, "alice");
    let table: [(&Principal, &[&PolicyDocument], &str, Decision); 9] = [
        (&root(ACCOUNT), &[], "kms:Encrypt", ALLOW),
        (&root(ACCOUNT), &[], "kms:ScheduleKeyDeletion", ALLOW),
        (&alice, &[&encrypt], "kms:Encrypt", ALLOW),
        (&alice, &[], "kms:Encrypt", NO_IDENTITY_POLICY),
        (&alice, &[&encrypt], "kms:Decrypt", NO_IDENTITY_POLICY),
        (&session(ACCOUNT, "Admin", "s1"), &[&everything], "kms:PutKeyPolicy", ALLOW),
        (&user(OTHER, "mallory"), &[&everything], "kms:Encrypt", NO_KEY_POLICY),
        (&root(OTHER), &[], "kms:Encrypt", NO_KEY_POLICY),
        (&service("logs.us-east-1.amazonaws.com"), &[], "kms:Encrypt", NO_KEY_POLICY),
    ];
    for (i, (principal, identity, action, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(key, identity, principal, action, &none), expected, "row {i}");
    }
}

/// AWS KMS Developer Guide, "Default key policy": the console's key administrators statement
/// and key users statements, next to the statement that enables IAM policies.
#[test]
fn key_administrators_and_key_users() {
    let key = key_policy(
        r#"{
          "Sid": "Enable IAM policies", "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"
        },
        {
          "Sid": "Allow access for Key Administrators", "Effect": "Allow",
          "Principal": {"AWS": [
            "arn:aws:iam::111122223333:user/KMSAdminUser",
            "arn:aws:iam::111122223333:role/KMSAdminRole"
          ]},
          "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                     "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                     "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
          "Resource": "*"
        },
        {
          "Sid": "Allow use of the key", "Effect": "Allow",
          "Principal": {"AWS": [
            "arn:aws:iam::111122223333:user/ExampleUser",
            "arn:aws:iam::111122223333:role/ExampleRole",
            "arn:aws:iam::444455556666:root"
          ]},
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
          "Resource": "*"
        },
        {
          "Sid": "Allow attachment of persistent resources", "Effect": "Allow",
          "Principal": {"AWS": [
            "arn:aws:iam::111122223333:user/ExampleUser",
            "arn:aws:iam::111122223333:role/ExampleRole",
            "arn:aws:iam::444455556666:root"
          ]},
          "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
          "Resource": "*",
          "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}
        }"#,
    );
    let none = ConditionContext::new();
    let for_aws = context(&[("kms:GrantIsForAWSResource", "true")]);
    let not_for_aws = context(&[("kms:GrantIsForAWSResource", "false")]);
    let admin = user(ACCOUNT, "KMSAdminUser");
    let admin_role = session(ACCOUNT, "KMSAdminRole", "ops");
    let key_user = user(ACCOUNT, "ExampleUser");
    let key_role = session(ACCOUNT, "ExampleRole", "app");
    let external = user(OTHER, "partner");
    let external_allows = allows(r#"["kms:Encrypt", "kms:CreateGrant"]"#);
    let table: [(&Principal, &[&PolicyDocument], &str, &ConditionContext, Decision); 16] = [
        (&admin, &[], "kms:PutKeyPolicy", &none, ALLOW),
        (&admin, &[], "kms:ScheduleKeyDeletion", &none, ALLOW),
        (&admin, &[], "kms:DescribeKey", &none, ALLOW),
        (&admin, &[], "kms:Encrypt", &none, NO_IDENTITY_POLICY),
        (&admin_role, &[], "kms:DisableKeyRotation", &none, ALLOW),
        (&admin_role, &[], "kms:Decrypt", &none, NO_IDENTITY_POLICY),
        (&key_user, &[], "kms:Encrypt", &none, ALLOW),
        (&key_user, &[], "kms:GenerateDataKeyWithoutPlaintext", &none, ALLOW),
        (&key_user, &[], "kms:ReEncryptFrom", &none, ALLOW),
        (&key_role, &[], "kms:Decrypt", &none, ALLOW),
        (&key_user, &[], "kms:ScheduleKeyDeletion", &none, NO_IDENTITY_POLICY),
        (&key_user, &[], "kms:CreateGrant", &for_aws, ALLOW),
        (&key_user, &[], "kms:CreateGrant", &not_for_aws, NO_IDENTITY_POLICY),
        (&external, &[], "kms:Encrypt", &none, NO_IDENTITY_POLICY),
        (&external, &[&external_allows], "kms:Encrypt", &none, ALLOW),
        (&external, &[&external_allows], "kms:CreateGrant", &not_for_aws, NO_KEY_POLICY),
    ];
    for (i, (principal, identity, action, ctx, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(&key, identity, principal, action, ctx), expected, "row {i}");
    }
}

/// Amazon CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS": the
/// key policy statement that lets the CloudWatch Logs service principal use the key for the log
/// groups of one account and Region.
#[test]
fn cloudwatch_logs_service_principal() {
    let key = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
          "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
          "Resource": "*",
          "Condition": {"ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:*"
          }}
        }"#,
    );
    let logs = service("logs.us-east-1.amazonaws.com");
    let own = context(&[("kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:us-east-1:111122223333:log-group:app")]);
    let foreign =
        context(&[("kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:us-east-1:444455556666:log-group:app")]);
    let other_region =
        context(&[("kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:eu-west-1:111122223333:log-group:app")]);
    let none = ConditionContext::new();
    let table: [(&Principal, &str, &ConditionContext, Decision); 9] = [
        (&logs, "kms:Encrypt", &own, ALLOW),
        (&logs, "kms:GenerateDataKey", &own, ALLOW),
        (&logs, "kms:Decrypt", &own, ALLOW),
        (&logs, "kms:Encrypt", &none, NO_KEY_POLICY),
        (&logs, "kms:Encrypt", &foreign, NO_KEY_POLICY),
        (&logs, "kms:Encrypt", &other_region, NO_KEY_POLICY),
        (&logs, "kms:ScheduleKeyDeletion", &own, NO_KEY_POLICY),
        (&service("logs.eu-west-1.amazonaws.com"), "kms:Encrypt", &own, NO_KEY_POLICY),
        (&user(ACCOUNT, "alice"), "kms:Encrypt", &own, NO_KEY_POLICY),
    ];
    for (i, (principal, action, ctx, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(&key, &[], principal, action, ctx), expected, "row {i}");
    }
}

/// AWS KMS Developer Guide, "Allowing users in other accounts to use a KMS key": the key policy
/// must allow the external account (or its users and roles), and IAM policies in the external
/// account must delegate the permission. Neither alone is enough.
#[test]
fn cross_account_needs_both_policies() {
    let to_account = key_policy(
        r#"{
          "Sid": "Allow an external account to use this KMS key", "Effect": "Allow",
          "Principal": {"AWS": ["arn:aws:iam::444455556666:root"]},
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
          "Resource": "*"
        }"#,
    );
    let to_identities = key_policy(
        r#"{
          "Sid": "Allow an external account to use this KMS key", "Effect": "Allow",
          "Principal": {"AWS": [
            "arn:aws:iam::444455556666:role/ExampleRole",
            "arn:aws:iam::444455556666:user/ExampleUser"
          ]},
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
          "Resource": "*"
        }"#,
    );
    // The IAM policy from the same page, attached in account 444455556666.
    let iam = identity_policy(&format!(
        r#"{{
          "Sid": "Allow Use Of KMS key In Account 111122223333", "Effect": "Allow",
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
                     "kms:ScheduleKeyDeletion"],
          "Resource": "{KEY_ARN}"
        }}"#
    ));
    let other_key = identity_policy(
        r#"{"Effect": "Allow", "Action": "kms:*",
            "Resource": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000"}"#,
    );
    let none = ConditionContext::new();
    let external_user = user(OTHER, "ExampleUser");
    let external_role = session(OTHER, "ExampleRole", "batch");
    let someone_else = user(OTHER, "SomeoneElse");
    let table: [(&PolicyDocument, &Principal, &[&PolicyDocument], &str, Decision); 11] = [
        (&to_account, &external_user, &[], "kms:Encrypt", NO_IDENTITY_POLICY),
        (&to_account, &external_user, &[&iam], "kms:Encrypt", ALLOW),
        (&to_account, &someone_else, &[&iam], "kms:Decrypt", ALLOW),
        (&to_account, &external_user, &[&other_key], "kms:Encrypt", NO_IDENTITY_POLICY),
        // The IAM policy cannot add actions the key policy does not allow.
        (&to_account, &external_user, &[&iam], "kms:ScheduleKeyDeletion", NO_KEY_POLICY),
        // The external account's root user has every IAM permission.
        (&to_account, &root(OTHER), &[], "kms:Encrypt", ALLOW),
        (&to_identities, &external_user, &[], "kms:Encrypt", NO_IDENTITY_POLICY),
        (&to_identities, &external_user, &[&iam], "kms:Encrypt", ALLOW),
        (&to_identities, &external_role, &[&iam], "kms:GenerateDataKey", ALLOW),
        (&to_identities, &someone_else, &[&iam], "kms:Encrypt", NO_KEY_POLICY),
        (&to_identities, &root(OTHER), &[], "kms:Encrypt", NO_KEY_POLICY),
    ];
    for (i, (key, principal, identity, action, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(key, identity, principal, action, &none), expected, "row {i}");
    }
}

/// IAM User Guide, "Policy evaluation logic": an explicit deny in any policy overrides every
/// allow, grants included; and AWS KMS Developer Guide, `kms:ViaService`: the key policy
/// statement that denies `ExampleRole` Encrypt through Lambda.
#[test]
fn explicit_deny_wins() {
    let key = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {
          "Effect": "Deny",
          "Principal": {"AWS": "arn:aws:iam::111122223333:role/ExampleRole"},
          "Action": ["kms:Encrypt"],
          "Resource": "*",
          "Condition": {"StringEquals": {"kms:ViaService": ["lambda.us-west-2.amazonaws.com"]}}
        }"#,
    );
    let role = session(ACCOUNT, "ExampleRole", "fn");
    let everything = allows(r#""kms:*""#);
    let deny_decrypt =
        identity_policy(r#"{"Effect":"Deny","Action":"kms:Decrypt","Resource":"arn:aws:kms:*:111122223333:key/*"}"#);
    let lambda = context(&[("kms:ViaService", "lambda.us-west-2.amazonaws.com")]);
    let ec2 = context(&[("kms:ViaService", "ec2.us-west-2.amazonaws.com")]);
    let owner = account(ACCOUNT);
    let with_grant = |action: &str, ctx: &ConditionContext, identity: &[&PolicyDocument]| {
        let req = AuthzRequest { principal: &role, action, resource: KEY_ARN, resource_account: &owner, context: ctx };
        evaluate(&req, &key, identity, true)
    };
    assert_eq!(decide(&key, &[&everything], &role, "kms:Encrypt", &lambda), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&key, &[&everything], &role, "kms:Encrypt", &ec2), ALLOW);
    assert_eq!(with_grant("kms:Encrypt", &lambda, &[]), DENIED_BY_KEY_POLICY);
    assert_eq!(with_grant("kms:Encrypt", &ec2, &[]), ALLOW, "a grant needs no policy allow");
    assert_eq!(decide(&key, &[&everything, &deny_decrypt], &role, "kms:Decrypt", &ec2), DENIED_BY_IDENTITY_POLICY);
    assert_eq!(with_grant("kms:Decrypt", &ec2, &[&deny_decrypt]), DENIED_BY_IDENTITY_POLICY);
    // The root user too is subject to an explicit deny naming its account.
    let deny_account =
        key_policy(r#"{"Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*"}"#);
    let none = ConditionContext::new();
    assert_eq!(decide(&deny_account, &[], &root(ACCOUNT), "kms:Decrypt", &none), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&deny_account, &[&everything], &user(ACCOUNT, "a"), "kms:Decrypt", &none), DENIED_BY_KEY_POLICY);
}

/// AWS KMS Developer Guide, "AWS KMS condition keys", `kms:EncryptionContext:context-key` and
/// `kms:EncryptionContextKeys`: requiring a pair, allowing only listed keys, and the case rules
/// (the condition key is case-insensitive, values follow the operator).
#[test]
fn encryption_context_conditions() {
    let pair_and_only_that_key = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyUsers"},
          "Action": "kms:GenerateDataKey",
          "Resource": "*",
          "Condition": {
            "StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]}
          }
        }"#,
    );
    let any_key_named = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyUsers"},
          "Action": "kms:GenerateDataKey",
          "Resource": "*",
          "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}
        }"#,
    );
    let only_listed_keys = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyUsers"},
          "Action": "kms:GenerateDataKey",
          "Resource": "*",
          "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}
        }"#,
    );
    let case_insensitive_key = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyUsers"},
          "Action": "kms:Decrypt",
          "Resource": "*",
          "Condition": {"StringEquals": {"kms:EncryptionContext:Appname": "ExampleApp"}}
        }"#,
    );
    let ec = |pairs: &[(&str, &str)]| {
        let mut c = ConditionContext::new();
        let mut keys = Vec::new();
        for (k, v) in pairs {
            c.insert(format!("kms:EncryptionContext:{k}"), *v);
            keys.push((*k).to_owned());
        }
        c.insert_multi("kms:EncryptionContextKeys", keys);
        c
    };
    let role = session(ACCOUNT, "KeyUsers", "s");
    let gdk = "kms:GenerateDataKey";
    let table: [(&PolicyDocument, &str, ConditionContext, Decision); 14] = [
        (&pair_and_only_that_key, gdk, ec(&[("AppName", "ExampleApp")]), ALLOW),
        (&pair_and_only_that_key, gdk, ec(&[("AppName", "ExampleApp"), ("Stage", "Test")]), NO_KEY_POLICY),
        (&pair_and_only_that_key, gdk, ec(&[("AppName", "OtherApp")]), NO_KEY_POLICY),
        (&pair_and_only_that_key, gdk, ec(&[]), NO_KEY_POLICY),
        (&any_key_named, gdk, ec(&[("AppName", "x"), ("Other", "y")]), ALLOW),
        (&any_key_named, gdk, ec(&[("appname", "x")]), NO_KEY_POLICY),
        (&any_key_named, gdk, ec(&[]), NO_KEY_POLICY),
        (&only_listed_keys, gdk, ec(&[("Department", "IT")]), ALLOW),
        (&only_listed_keys, gdk, ec(&[("Department", "IT"), ("Project", "Alpha")]), ALLOW),
        (&only_listed_keys, gdk, ec(&[("Department", "IT"), ("Stage", "Restricted")]), NO_KEY_POLICY),
        // ForAllValues is satisfied by an absent key (the documented pitfall).
        (&only_listed_keys, gdk, ec(&[]), ALLOW),
        (&case_insensitive_key, "kms:Decrypt", ec(&[("AppName", "ExampleApp")]), ALLOW),
        (&case_insensitive_key, "kms:Decrypt", ec(&[("APPNAME", "ExampleApp")]), ALLOW),
        (&case_insensitive_key, "kms:Decrypt", ec(&[("AppName", "exampleapp")]), NO_KEY_POLICY),
    ];
    for (i, (key, action, ctx, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(key, &[], &role, action, &ctx), expected, "row {i}");
    }
    // Using a set operator with kms:EncryptionContext:<key> is refused (OverlyPermissiveCondition).
    let overly = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*",
        "Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContext:Department":"IT"}}}}"#;
    assert!(matches!(KeyPolicy::parse(overly), Err(PolicyError::OverlyPermissiveCondition { .. })));
}

/// AWS KMS Developer Guide, "AWS KMS condition keys", `kms:CallerAccount`: the statement from
/// the AWS managed key for Amazon EBS, which allows every identity of one account, but only
/// through EBS.
#[test]
fn caller_account_and_via_service() {
    let key = key_policy(
        r#"{
          "Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
          "Effect": "Allow",
          "Principal": {"AWS": "*"},
          "Condition": {"StringEquals": {
            "kms:CallerAccount": "111122223333",
            "kms:ViaService": "ec2.us-west-2.amazonaws.com"
          }},
          "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant",
                     "kms:DescribeKey"],
          "Resource": "*"
        }"#,
    );
    let via_ebs =
        |caller: &str| context(&[("kms:CallerAccount", caller), ("kms:ViaService", "ec2.us-west-2.amazonaws.com")]);
    let direct = context(&[("kms:CallerAccount", ACCOUNT)]);
    let everything = allows(r#""kms:*""#);
    let alice = user(ACCOUNT, "alice");
    let outsider = user(OTHER, "eve");
    assert_eq!(decide(&key, &[], &alice, "kms:Decrypt", &via_ebs(ACCOUNT)), ALLOW);
    assert_eq!(decide(&key, &[], &alice, "kms:Decrypt", &direct), NO_KEY_POLICY);
    assert_eq!(decide(&key, &[], &alice, "kms:ScheduleKeyDeletion", &via_ebs(ACCOUNT)), NO_KEY_POLICY);
    assert_eq!(decide(&key, &[&everything], &outsider, "kms:Decrypt", &via_ebs(OTHER)), NO_KEY_POLICY);
}

/// IAM User Guide, "Condition operators": `...IfExists` (an absent key satisfies it; a present
/// key is checked) and `Null` (AWS KMS Developer Guide, `kms:BypassPolicyLockoutSafetyCheck`).
#[test]
fn if_exists_and_null() {
    let key = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
          "Action": "kms:Encrypt",
          "Resource": "*",
          "Condition": {"StringEqualsIfExists": {"kms:ViaService": "ec2.us-west-2.amazonaws.com"}}
        },
        {
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
          "Action": "kms:PutKeyPolicy",
          "Resource": "*",
          "Condition": {"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}
        },
        {
          "Effect": "Deny",
          "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
          "Action": "kms:Decrypt",
          "Resource": "*",
          "Condition": {"StringNotEqualsIfExists": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}
        },
        {
          "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
          "Action": "kms:Decrypt",
          "Resource": "*"
        }"#,
    );
    let alice = user(ACCOUNT, "alice");
    let none = ConditionContext::new();
    let table: [(&str, ConditionContext, Decision); 8] = [
        ("kms:Encrypt", none.clone(), ALLOW),
        ("kms:Encrypt", context(&[("kms:ViaService", "ec2.us-west-2.amazonaws.com")]), ALLOW),
        ("kms:Encrypt", context(&[("kms:ViaService", "lambda.us-west-2.amazonaws.com")]), NO_KEY_POLICY),
        ("kms:PutKeyPolicy", none.clone(), ALLOW),
        ("kms:PutKeyPolicy", context(&[("kms:BypassPolicyLockoutSafetyCheck", "false")]), NO_KEY_POLICY),
        // "If you are using an "Effect": "Deny" element with a negated condition operator like
        // StringNotEqualsIfExists, the request is still denied even if the tag is missing."
        ("kms:Decrypt", none.clone(), DENIED_BY_KEY_POLICY),
        ("kms:Decrypt", context(&[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")]), ALLOW),
        ("kms:Decrypt", context(&[("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_256")]), DENIED_BY_KEY_POLICY),
    ];
    for (i, (action, ctx, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(&key, &[], &alice, action, &ctx), expected, "row {i}");
    }
    // A negated operator without IfExists holds for an absent key; with Deny that denies.
    let strict = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
           {"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
            "Condition":{"StringNotEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}}"#,
    );
    assert_eq!(decide(&strict, &[], &alice, "kms:Decrypt", &none), DENIED_BY_KEY_POLICY);
    // BypassPolicyLockoutSafetyCheck with Bool in an IAM policy (same page).
    let no_bypass = identity_policy(
        r#"{"Effect":"Deny","Action":["kms:CreateKey","kms:PutKeyPolicy"],"Resource":"*",
            "Condition":{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":true}}}"#,
    );
    let bypass = context(&[("kms:BypassPolicyLockoutSafetyCheck", "true")]);
    assert_eq!(decide(&strict, &[&no_bypass], &alice, "kms:PutKeyPolicy", &bypass), DENIED_BY_IDENTITY_POLICY);
    assert_eq!(decide(&strict, &[&no_bypass], &alice, "kms:PutKeyPolicy", &none), ALLOW);
}

/// AWS KMS Developer Guide, "AWS KMS condition keys": `kms:ScheduleKeyDeletionPendingWindowInDays`
/// (NumericLessThanEquals 21, and NumericLessThan), `kms:ValidTo` (a decimal epoch value).
#[test]
fn numeric_conditions() {
    let key = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
        {
          "Effect": "Deny",
          "Action": "kms:ScheduleKeyDeletion",
          "Principal": "*",
          "Resource": "*",
          "Condition" : {"NumericLessThanEquals" : {"kms:ScheduleKeyDeletionPendingWindowInDays" : "21"}}
        },
        {
          "Effect": "Deny",
          "Action": "kms:EnableKeyRotation",
          "Principal": "*",
          "Resource": "*",
          "Condition" : {"NumericLessThan" : {"kms:RotationPeriodInDays" : 180}}
        },
        {
          "Effect": "Deny",
          "Principal": "*",
          "Action": "kms:ImportKeyMaterial",
          "Resource": "*",
          "Condition": {"NumericGreaterThan": {"kms:ValidTo": "1546257599.0"}}
        }"#,
    );
    let alice = user(ACCOUNT, "alice");
    let window = |days: &str| context(&[("kms:ScheduleKeyDeletionPendingWindowInDays", days)]);
    let rotation = |days: &str| context(&[("kms:RotationPeriodInDays", days)]);
    assert_eq!(decide(&key, &[], &alice, "kms:ScheduleKeyDeletion", &window("7")), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&key, &[], &alice, "kms:ScheduleKeyDeletion", &window("21")), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&key, &[], &alice, "kms:ScheduleKeyDeletion", &window("30")), ALLOW);
    assert_eq!(decide(&key, &[], &alice, "kms:EnableKeyRotation", &rotation("90")), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&key, &[], &alice, "kms:EnableKeyRotation", &rotation("180")), ALLOW);
    assert_eq!(decide(&key, &[], &alice, "kms:EnableKeyRotation", &rotation("not a number")), ALLOW);
    let valid_to = |t: &str| context(&[("kms:ValidTo", t)]);
    assert_eq!(decide(&key, &[], &alice, "kms:ImportKeyMaterial", &valid_to("1546257599")), ALLOW);
    assert_eq!(decide(&key, &[], &alice, "kms:ImportKeyMaterial", &valid_to("1546257599.5")), DENIED_BY_KEY_POLICY);
}

/// IAM User Guide, "AWS: Allows access based on date and time" (`DateGreaterThan` and
/// `DateLessThan` on `aws:CurrentTime`), "IP address condition operators" (`aws:SourceIp`, IPv4
/// and IPv6) and "Boolean condition operators" (deny when `aws:SecureTransport` is false).
#[test]
fn date_ip_and_bool_conditions() {
    let iam = identity_policy(&format!(
        r#"{{
          "Effect": "Allow",
          "Action": "kms:*",
          "Resource": "{KEY_ARN}",
          "Condition": {{
            "DateGreaterThan": {{"aws:CurrentTime": "2020-04-01T00:00:00Z"}},
            "DateLessThan": {{"aws:CurrentTime": "2020-06-30T23:59:59Z"}},
            "IpAddress": {{"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}
          }}
        }},
        {{
          "Sid": "BooleanExample",
          "Action": "kms:*",
          "Effect": "Deny",
          "Resource": "*",
          "Condition": {{"Bool": {{"aws:SecureTransport": "false"}}}}
        }}"#
    ));
    let key = KeyPolicy::default_for(&account(ACCOUNT));
    let alice = user(ACCOUNT, "alice");
    let at = |time: &str, ip: &str, tls: &str| {
        context(&[("aws:CurrentTime", time), ("aws:SourceIp", ip), ("aws:SecureTransport", tls)])
    };
    let table: [(ConditionContext, Decision); 8] = [
        (at("2020-05-01T12:00:00Z", "203.0.113.9", "true"), ALLOW),
        (at("2020-05-01T12:00:00.123Z", "2001:db8:1234:5678::42", "true"), ALLOW),
        (at("2020-07-01T00:00:00Z", "203.0.113.9", "true"), NO_IDENTITY_POLICY),
        (at("2020-03-31T23:59:59Z", "203.0.113.9", "true"), NO_IDENTITY_POLICY),
        // The same instant, written with an offset.
        (at("2020-07-01T01:59:58+02:00", "203.0.113.9", "true"), ALLOW),
        (at("2020-05-01T12:00:00Z", "198.51.100.1", "true"), NO_IDENTITY_POLICY),
        (at("2020-05-01T12:00:00Z", "203.0.113.9", "false"), DENIED_BY_IDENTITY_POLICY),
        (at("2020-05-01T12:00:00Z", "203.0.113.9", "FALSE"), DENIED_BY_IDENTITY_POLICY),
    ];
    for (i, (ctx, expected)) in table.into_iter().enumerate() {
        assert_eq!(decide(key.document(), &[&iam], &alice, "kms:Encrypt", &ctx), expected, "row {i}");
    }
    // Epoch seconds work with the date operators too (aws:EpochTime).
    let epoch = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",
            "Condition":{"DateLessThan":{"aws:EpochTime":"1593561599"}}}"#,
    );
    assert_eq!(decide(&epoch, &[], &alice, "kms:Encrypt", &context(&[("aws:EpochTime", "1588334400")])), ALLOW);
    assert_eq!(decide(&epoch, &[], &alice, "kms:Encrypt", &context(&[("aws:EpochTime", "1593561600")])), NO_KEY_POLICY);
}

/// IAM User Guide, "Policy variables": variables in `Resource` and in condition values, default
/// values and the escapes, only in version 2012-10-17 policies; and AWS KMS Developer Guide,
/// "Using variables in an encryption context condition" (`${aws:username}`).
#[test]
fn policy_variables() {
    let own_account_keys = identity_policy(
        r#"{"Effect":"Allow","Action":"kms:Encrypt","Resource":"arn:aws:kms:*:${aws:PrincipalAccount}:key/*"}"#,
    );
    let delegate_all = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":["111122223333","444455556666"]},"Action":"kms:*","Resource":"*"}"#,
    );
    let none = ConditionContext::new();
    assert_eq!(decide(&delegate_all, &[&own_account_keys], &user(ACCOUNT, "a"), "kms:Encrypt", &none), ALLOW);
    assert_eq!(
        decide(&delegate_all, &[&own_account_keys], &user(OTHER, "b"), "kms:Encrypt", &none),
        NO_IDENTITY_POLICY,
        "the key belongs to another account"
    );

    let own_context = key_policy(
        r#"{
          "Effect": "Allow",
          "Principal": {"AWS": "111122223333"},
          "Action": ["kms:Decrypt", "kms:Encrypt"],
          "Resource": "*",
          "Condition": {"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}
        }"#,
    );
    let everything = allows(r#""kms:*""#);
    let bob = user(ACCOUNT, "bob");
    let ctx = |u: &str| context(&[("kms:EncryptionContext:user", u)]);
    assert_eq!(decide(&own_context, &[&everything], &bob, "kms:Decrypt", &ctx("bob")), ALLOW);
    assert_eq!(decide(&own_context, &[&everything], &bob, "kms:Decrypt", &ctx("alice")), NO_KEY_POLICY);
    // A role session has no aws:username: the variable is unresolvable and the condition fails.
    let role = session(ACCOUNT, "TestTeam", "bob");
    assert_eq!(decide(&own_context, &[&everything], &role, "kms:Decrypt", &ctx("bob")), NO_KEY_POLICY);
    // A caller-supplied aws:username does not override the derived (absent) one.
    let mut spoofed = ctx("bob");
    spoofed.insert("aws:username", "bob");
    assert_eq!(decide(&own_context, &[&everything], &role, "kms:Decrypt", &spoofed), NO_KEY_POLICY);

    let with_default = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"StringEquals":{"kms:EncryptionContext:owner":"${aws:username, 'nobody'}"}}}"#,
    );
    assert_eq!(
        decide(&with_default, &[], &role, "kms:Encrypt", &context(&[("kms:EncryptionContext:owner", "nobody")])),
        ALLOW
    );

    let escapes = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"StringLike":{"kms:EncryptionContext:path":"${*}/${?}/${$}/*"}}}"#,
    );
    let path = |p: &str| context(&[("kms:EncryptionContext:path", p)]);
    assert_eq!(decide(&escapes, &[], &bob, "kms:Encrypt", &path("*/?/$/anything")), ALLOW);
    assert_eq!(decide(&escapes, &[], &bob, "kms:Encrypt", &path("x/?/$/anything")), NO_KEY_POLICY);

    // Version 2008-10-17 (or none) treats ${...} as text.
    let old = PolicyDocument::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt",
            "Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:user":"${aws:username}"}}}}"#,
        PolicyKind::Key,
    )
    .unwrap();
    assert_eq!(decide(&old, &[], &bob, "kms:Encrypt", &ctx("bob")), NO_KEY_POLICY);
    assert_eq!(decide(&old, &[], &bob, "kms:Encrypt", &ctx("${aws:username}")), ALLOW);
}

/// IAM User Guide, "Principal": `"*"` and `{"AWS": "*"}` are equivalent; a role ARN covers its
/// sessions; a session ARN only itself; `NotPrincipal` with `Deny` exempts a caller only when its
/// session, role and account are all listed ("NotPrincipal").
#[test]
fn principal_matching() {
    let none = ConditionContext::new();
    let star = key_policy(r#"{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}"#);
    let aws_star = key_policy(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*"}"#);
    for key in [&star, &aws_star] {
        assert_eq!(decide(key, &[], &user(ACCOUNT, "a"), "kms:Encrypt", &none), ALLOW);
        assert_eq!(decide(key, &[], &service("logs.us-east-1.amazonaws.com"), "kms:Encrypt", &none), ALLOW);
        assert_eq!(decide(key, &[], &user(OTHER, "b"), "kms:Encrypt", &none), NO_IDENTITY_POLICY);
    }
    let role = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/App"},"Action":"kms:Encrypt","Resource":"*"}"#,
    );
    assert_eq!(decide(&role, &[], &session(ACCOUNT, "App", "one"), "kms:Encrypt", &none), ALLOW);
    assert_eq!(decide(&role, &[], &session(ACCOUNT, "Other", "one"), "kms:Encrypt", &none), NO_KEY_POLICY);
    let one_session = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/App/one"},
            "Action":"kms:Encrypt","Resource":"*"}"#,
    );
    assert_eq!(decide(&one_session, &[], &session(ACCOUNT, "App", "one"), "kms:Encrypt", &none), ALLOW);
    assert_eq!(decide(&one_session, &[], &session(ACCOUNT, "App", "two"), "kms:Encrypt", &none), NO_KEY_POLICY);
    let by_unique_id = key_policy(
        r#"{"Effect":"Allow","Principal":{"AWS":"AROAAPPAPPAPPAPPAPP"},"Action":"kms:Encrypt","Resource":"*"}"#,
    );
    let app = Principal { user_id: "AROAAPPAPPAPPAPPAPP:one".into(), ..session(ACCOUNT, "App", "one") };
    assert_eq!(decide(&by_unique_id, &[], &app, "kms:Encrypt", &none), ALLOW);

    let not_principal = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
        {
          "Effect": "Deny",
          "NotPrincipal": {"AWS": [
            "arn:aws:sts::111122223333:assumed-role/Admin/breakglass",
            "arn:aws:iam::111122223333:role/Admin",
            "arn:aws:iam::111122223333:root"
          ]},
          "Action": "kms:ScheduleKeyDeletion",
          "Resource": "*"
        }"#,
    );
    let sched = "kms:ScheduleKeyDeletion";
    assert_eq!(decide(&not_principal, &[], &session(ACCOUNT, "Admin", "breakglass"), sched, &none), ALLOW);
    assert_eq!(decide(&not_principal, &[], &root(ACCOUNT), sched, &none), ALLOW);
    assert_eq!(decide(&not_principal, &[], &session(ACCOUNT, "Admin", "other"), sched, &none), DENIED_BY_KEY_POLICY);
    assert_eq!(decide(&not_principal, &[], &user(ACCOUNT, "alice"), sched, &none), DENIED_BY_KEY_POLICY);
    let user_only = key_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
           {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
            "Action":"kms:Decrypt","Resource":"*"}"#,
    );
    assert_eq!(
        decide(&user_only, &[], &user(ACCOUNT, "alice"), "kms:Decrypt", &none),
        DENIED_BY_KEY_POLICY,
        "the account is not listed, so the deny still reaches alice"
    );
    // A Federated principal matches only a web identity of that provider, never a user.
    let provider = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/1";
    let federated = key_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},"Action":"sts:AssumeRoleWithWebIdentity","Resource":"*"}}"#
    ));
    assert_eq!(decide(&federated, &[], &user(ACCOUNT, "a"), "sts:AssumeRoleWithWebIdentity", &none), NO_KEY_POLICY);
    let web = |provider: &str| Principal {
        arn: provider.to_owned(),
        account: AccountId::parse(ACCOUNT).unwrap(),
        kind: PrincipalKind::WebIdentity { provider: provider.to_owned() },
        user_id: "sub".into(),
        username: None,
    };
    assert_eq!(decide(&federated, &[], &web(provider), "sts:AssumeRoleWithWebIdentity", &none), Decision::Allow);
    let other = "arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/2";
    assert_eq!(decide(&federated, &[], &web(other), "sts:AssumeRoleWithWebIdentity", &none), NO_KEY_POLICY);
}

/// IAM User Guide, "NotAction", "NotResource" and the Resource element's ARN matching.
#[test]
fn not_action_not_resource() {
    let none = ConditionContext::new();
    let alice = user(ACCOUNT, "alice");
    let key = key_policy(
        r#"{"Effect":"Allow","Principal":"*","NotAction":["kms:ScheduleKeyDeletion","kms:Put*"],"Resource":"*"}"#,
    );
    assert_eq!(decide(&key, &[], &alice, "kms:Encrypt", &none), ALLOW);
    assert_eq!(decide(&key, &[], &alice, "KMS:putkeypolicy", &none), NO_KEY_POLICY);
    let iam = identity_policy(
        r#"{"Effect":"Allow","Action":"kms:*","NotResource":"arn:aws:kms:*:111122223333:key/1234abcd-*"}"#,
    );
    let delegate = KeyPolicy::default_for(&account(ACCOUNT));
    assert_eq!(decide(delegate.document(), &[&iam], &alice, "kms:Encrypt", &none), NO_IDENTITY_POLICY);
    let region = identity_policy(r#"{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-?:*:key/*"}"#);
    assert_eq!(decide(delegate.document(), &[&region], &alice, "kms:Encrypt", &none), ALLOW);
    let elsewhere = identity_policy(r#"{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:eu-*:*:key/*"}"#);
    assert_eq!(decide(delegate.document(), &[&elsewhere], &alice, "kms:Encrypt", &none), NO_IDENTITY_POLICY);
}

/// A role trust policy (IAM User Guide, "Roles terms and concepts"): principals, no resource.
#[test]
fn role_trust_policy() {
    let trust = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::RoleTrust,
    )
    .unwrap();
    assert_eq!(trust.statements[0].resource, None);
    let owner = account(ACCOUNT);
    let none = ConditionContext::new();
    let ask = |p: &Principal| {
        let req = AuthzRequest {
            principal: p,
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::111122223333:role/App",
            resource_account: &owner,
            context: &none,
        };
        evaluate(&req, &trust, &[], false)
    };
    assert_eq!(ask(&user(ACCOUNT, "alice")), ALLOW);
    assert_eq!(ask(&user(ACCOUNT, "bob")), NO_KEY_POLICY);
    let with_resource = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}}"#;
    assert!(matches!(
        PolicyDocument::parse(with_resource, PolicyKind::RoleTrust),
        Err(PolicyError::ResourceInTrustPolicy(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn key_policy_keeps_text_and_api() {
    let text = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#;
    let policy = KeyPolicy::parse(text).unwrap();
    assert_eq!(policy.as_str(), text);
    assert_eq!(policy.document().version, None);
    assert_eq!(policy, KeyPolicy::from_stored(text.to_owned()));
    let default = KeyPolicy::default_for(&account(ACCOUNT));
    assert_eq!(KeyPolicy::parse(default.as_str()).unwrap().document(), default.document());
    assert!(default.as_str().contains("arn:aws:iam::111122223333:root"));
    // A stored document that no longer parses allows nothing.
    let broken = KeyPolicy::from_stored("{".to_owned());
    assert_eq!(broken.as_str(), "{");
    assert!(broken.document().statements.is_empty());
    assert_eq!(MAX_POLICY_LEN, 32_768);
    assert_eq!(DEFAULT_POLICY_NAME, "default");
}

/// IAM accepts single strings or arrays, and a lone statement object.
#[test]
fn accepted_shapes() {
    let doc = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"1","Effect":"Deny",
            "Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:root"],"Service":"s3.amazonaws.com",
                         "Federated":"accounts.google.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
            "Action":["kms:Encrypt","kms:Decrypt*"],"Resource":["*","arn:aws:kms:*:*:key/*"],
            "Condition":{"StringEquals":{"aws:PrincipalTag/team":["a",1,true]},"NumericLessThan":{"s3:max-keys":10.5},
                         "IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"},"BinaryEquals":{"x:bin":"QmluYXJ5"},
                         "Null":{"aws:TokenIssueTime":"true"},"ForAnyValue:StringLike":{"aws:TagKeys":"a*"}}}]}"#,
        PolicyKind::Key,
    )
    .unwrap();
    let s = &doc.statements[0];
    assert_eq!(s.effect, Effect::Deny);
    assert_eq!(s.sid.as_deref(), Some("1"));
    let Some(Scope::Only(PrincipalBlock(entries))) = &s.principal else { panic!("principal") };
    assert_eq!(entries.len(), 5);
    assert_eq!(s.condition.len(), 6);
    let team = s.condition.iter().find(|c| c.key == "aws:PrincipalTag/team").unwrap();
    assert_eq!(team.values, ConditionValues::Strings(vec!["a".into(), "1".into(), "true".into()]));
}

#[test]
fn errors_name_the_statement_and_the_problem() {
    let key = |text: &str| PolicyDocument::parse(text, PolicyKind::Key).unwrap_err();
    let stmt = |body: &str| {
        key(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"ok","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}},{body}]}}"#
        ))
    };
    let at1 = |sid: Option<&str>| StatementRef { index: 1, sid: sid.map(str::to_owned) };

    assert!(matches!(key("{"), PolicyError::Json(_)));
    assert_eq!(key("[]"), PolicyError::NotAnObject);
    assert_eq!(key(r#"{"Statement":[]}"#), PolicyError::NoStatement);
    assert_eq!(key(r#"{"Statement":7}"#), PolicyError::NoStatement);
    assert_eq!(key(r#"{"Version":"2020","Statement":{}}"#), PolicyError::Version("\"2020\"".into()));
    assert_eq!(key(r#"{"Id":5,"Statement":{}}"#), PolicyError::Id);
    assert_eq!(key(r#"{"Statment":[]}"#), PolicyError::UnknownTopLevelElement("Statment".into()));
    assert_eq!(stmt("3"), PolicyError::StatementNotObject(at1(None)));
    assert_eq!(
        stmt(r#"{"Sid":"Logs","Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*"}"#),
        PolicyError::InvalidEffect { statement: at1(Some("Logs")), found: "\"allow\"".into() }
    );
    assert_eq!(stmt(r#"{"Principal":"*","Action":"kms:*","Resource":"*"}"#), PolicyError::NoEffect(at1(None)));
    assert_eq!(stmt(r#"{"Effect":"Allow","Principal":"*","Resource":"*"}"#), PolicyError::NoAction(at1(None)));
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:Decrypt","Resource":"*"}"#),
        PolicyError::Conflict { statement: at1(None), element: "Action", negated: "NotAction" }
    );
    assert_eq!(stmt(r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#), PolicyError::NoPrincipal(at1(None)));
    assert_eq!(stmt(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*"}"#), PolicyError::NoResource(at1(None)));
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Conditon":{}}"#),
        PolicyError::UnknownElement { statement: at1(None), name: "Conditon".into() }
    );
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}"#),
        PolicyError::ElementType {
            statement: at1(None),
            element: "Action",
            expected: "a string or a non-empty array of strings"
        }
    );
    assert_eq!(
        stmt(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"kms:*","Resource":"*"}"#
        ),
        PolicyError::InvalidPrincipal {
            statement: at1(None),
            principal: r#""AWS": "arn:aws:iam::111122223333:user/*""#.into()
        }
    );
    assert!(matches!(
        stmt(r#"{"Effect":"Allow","Principal":{"Group":"x"},"Action":"kms:*","Resource":"*"}"#),
        PolicyError::InvalidPrincipal { .. }
    ));
    assert!(matches!(
        stmt(r#"{"Effect":"Allow","Principal":"111122223333","Action":"kms:*","Resource":"*"}"#),
        PolicyError::InvalidPrincipal { .. }
    ));
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":"Encrypt","Resource":"*"}"#),
        PolicyError::InvalidAction { statement: at1(None), action: "Encrypt".into() }
    );
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"key/1"}"#),
        PolicyError::InvalidResource { statement: at1(None), resource: "key/1".into() }
    );
    assert_eq!(
        stmt(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqual":{"a:b":"c"}}}"#
        ),
        PolicyError::UnknownConditionOperator { statement: at1(None), operator: "StringEqual".into() }
    );
    assert_eq!(
        stmt(r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":"x"}}"#),
        PolicyError::ConditionBlock { statement: at1(None), operator: "StringEquals".into() }
    );
    assert_eq!(
        stmt(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"SourceIp":"x"}}}"#
        ),
        PolicyError::InvalidConditionKey {
            statement: at1(None),
            operator: "StringEquals".into(),
            key: "SourceIp".into()
        }
    );
    for (operator, value) in [
        ("NumericLessThan", r#""ten""#),
        ("DateLessThan", r#""yesterday""#),
        ("Bool", r#""yes""#),
        ("IpAddress", r#""10.0.0.0/33""#),
        ("BinaryEquals", r#""!!""#),
        ("Null", r#""maybe""#),
        ("StringEquals", "null"),
        ("StringEquals", "[]"),
        ("StringEquals", r#"{"a":1}"#),
    ] {
        let err = stmt(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{{"{operator}":{{"a:b":{value}}}}}}}"#
        ));
        assert!(matches!(&err, PolicyError::InvalidConditionValue { key, .. } if key == "a:b"), "{operator}: {err}");
    }
    let identity = PolicyDocument::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#,
        PolicyKind::Identity,
    );
    assert_eq!(identity, Err(PolicyError::PrincipalInIdentityPolicy(StatementRef { index: 0, sid: None })));

    // The messages the client sees.
    let message = stmt(r#"{"Sid":"Logs","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"NumericLessThan":{"kms:X":"ten"}}}"#)
        .to_string();
    assert_eq!(
        message,
        r#"In the statement at index 1 (Sid "Logs"), NumericLessThan on "kms:X" has the value "ten", which is not a number."#
    );
    assert_eq!(
        stmt(r#"{"Effect":"Deny","Principal":"*","Action":"kms:*"}"#).to_string(),
        r#"In the statement at index 1, 'Resource' or 'NotResource' is missing; in a key policy write "Resource": "*" (this key)."#
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const PRINCIPALS: [&str; 8] = [
    r#""*""#,
    r#"{"AWS":"*"}"#,
    r#"{"AWS":"111122223333"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:role/App"}"#,
    r#"{"AWS":["arn:aws:iam::444455556666:root","arn:aws:sts::111122223333:assumed-role/App/s1"]}"#,
    r#"{"Service":"logs.us-east-1.amazonaws.com"}"#,
    r#"{"AWS":"arn:aws:iam::444455556666:user/bob"}"#,
];
const ACTIONS: [&str; 6] = [
    r#""Action":"kms:*""#,
    r#""Action":"*""#,
    r#""Action":["kms:Encrypt","kms:Decrypt"]"#,
    r#""Action":"kms:Describe*""#,
    r#""NotAction":"kms:Encrypt""#,
    r#""Action":"kms:ScheduleKeyDeletion""#,
];
const RESOURCES: [&str; 4] = [
    r#""Resource":"*""#,
    r#""Resource":"arn:aws:kms:*:111122223333:key/*""#,
    r#""Resource":"arn:aws:kms:*:${aws:PrincipalAccount}:key/*""#,
    r#""NotResource":"arn:aws:kms:eu-*:*:key/*""#,
];
const CONDITIONS: [&str; 7] = [
    "",
    r#","Condition":{"StringEquals":{"kms:EncryptionContext:app":"x"}}"#,
    r#","Condition":{"Bool":{"aws:SecureTransport":"true"}}"#,
    r#","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app"]}}"#,
    r#","Condition":{"StringNotEqualsIfExists":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}"#,
    r#","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    r#","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
];
const REQUEST_ACTIONS: [&str; 4] = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:ScheduleKeyDeletion"];

/// A statement body (without the Effect) as indexes into the tables above: principal, action,
/// resource, condition.
type Parts = (usize, usize, usize, usize);
/// A statement: whether it allows, and its body.
type Generated = (bool, Parts);

/// A random key policy statement body.
fn statement_parts() -> impl Strategy<Value = Parts> {
    (0..PRINCIPALS.len(), 0..ACTIONS.len(), 0..RESOURCES.len(), 0..CONDITIONS.len())
}

fn render(effect: &str, (p, a, r, c): Parts, with_principal: bool) -> String {
    let principal = if with_principal { format!(r#""Principal":{},"#, PRINCIPALS[p]) } else { String::new() };
    format!(r#"{{"Effect":"{effect}",{principal}{},{}{}}}"#, ACTIONS[a], RESOURCES[r], CONDITIONS[c])
}

fn document(statements: &[Generated], kind: PolicyKind) -> PolicyDocument {
    let body: Vec<String> = statements
        .iter()
        .map(|(allow, parts)| render(if *allow { "Allow" } else { "Deny" }, *parts, kind == PolicyKind::Key))
        .collect();
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, body.join(","));
    PolicyDocument::parse(&text, kind).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn principals() -> Vec<Principal> {
    vec![
        root(ACCOUNT),
        user(ACCOUNT, "alice"),
        user(ACCOUNT, "carol"),
        session(ACCOUNT, "App", "s1"),
        session(ACCOUNT, "App", "s2"),
        user(OTHER, "bob"),
        root(OTHER),
        service("logs.us-east-1.amazonaws.com"),
    ]
}

fn contexts() -> Vec<ConditionContext> {
    let mut full = context(&[
        ("kms:EncryptionContext:app", "x"),
        ("aws:SecureTransport", "true"),
        ("aws:SourceIp", "10.1.2.3"),
        ("aws:CurrentTime", "2026-01-01T00:00:00Z"),
    ]);
    full.insert_multi("kms:EncryptionContextKeys", vec!["app".into()]);
    let mut other = context(&[
        ("kms:EncryptionContext:app", "y"),
        ("aws:SecureTransport", "false"),
        ("aws:SourceIp", "192.0.2.1"),
        ("aws:CurrentTime", "2031-01-01T00:00:00Z"),
        ("kms:ViaService", "lambda.us-east-1.amazonaws.com"),
    ]);
    other.insert_multi("kms:EncryptionContextKeys", vec!["app".into(), "extra".into()]);
    vec![ConditionContext::new(), full, other]
}

#[derive(Debug, Clone)]
struct Scenario {
    key: Vec<Generated>,
    identity: Vec<Generated>,
    principal: usize,
    action: usize,
    context: usize,
    grant: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec((any::<bool>(), statement_parts()), 1..5),
        proptest::collection::vec((any::<bool>(), statement_parts()), 0..4),
        0..8_usize,
        0..REQUEST_ACTIONS.len(),
        0..3_usize,
        any::<bool>(),
    )
        .prop_map(|(key, identity, principal, action, context, grant)| Scenario {
            key,
            identity,
            principal,
            action,
            context,
            grant,
        })
}

fn run(s: &Scenario) -> Decision {
    let key = document(&s.key, PolicyKind::Key);
    let identity = if s.identity.is_empty() { None } else { Some(document(&s.identity, PolicyKind::Identity)) };
    let identity: Vec<&PolicyDocument> = identity.iter().collect();
    let principal = &principals()[s.principal];
    let ctx = &contexts()[s.context];
    let owner = account(ACCOUNT);
    let req = AuthzRequest {
        principal,
        action: REQUEST_ACTIONS[s.action],
        resource: KEY_ARN,
        resource_account: &owner,
        context: ctx,
    };
    evaluate(&req, &key, &identity, s.grant)
}

/// JSON-ish text: fragments of policies glued together, to reach deep into the parser.
fn jsonish() -> impl Strategy<Value = String> {
    let fragments = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"Version\"".to_owned()),
        Just("\"2012-10-17\"".to_owned()),
        Just("\"Statement\"".to_owned()),
        Just("\"Effect\"".to_owned()),
        Just("\"Allow\"".to_owned()),
        Just("\"Principal\"".to_owned()),
        Just("\"AWS\"".to_owned()),
        Just("\"*\"".to_owned()),
        Just("\"Action\"".to_owned()),
        Just("\"kms:*\"".to_owned()),
        Just("\"Resource\"".to_owned()),
        Just("\"Condition\"".to_owned()),
        Just("\"ForAnyValue:StringLike\"".to_owned()),
        Just("\"DateLessThan\"".to_owned()),
        Just("\"IpAddress\"".to_owned()),
        Just("\"aws:SourceIp\"".to_owned()),
        Just("\"${aws:username}\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e999".to_owned()),
        "\"[^\"\\\\]{0,12}\"",
        "[ -~]{0,6}",
    ];
    proptest::collection::vec(fragments, 0..40).prop_map(|parts| parts.concat())
}

/// Arbitrary JSON values, to exercise every type check.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,10}".prop_map(Value::String),
        prop_oneof![Just("*"), Just("kms:*"), Just("Allow"), Just("Deny"), Just("2012-10-17"), Just("111122223333")]
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("Version"),
            Just("Statement"),
            Just("Effect"),
            Just("Principal"),
            Just("NotPrincipal"),
            Just("AWS"),
            Just("Service"),
            Just("Action"),
            Just("NotResource"),
            Just("Resource"),
            Just("Condition"),
            Just("StringEquals"),
            Just("NumericLessThanIfExists"),
            Just("Null"),
            Just("a:b"),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((keys, inner), 0..5)
                .prop_map(|members| { Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()) }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// STYLE.md: "an explicit Deny always wins". Adding a Deny statement never turns a Deny
    /// into an Allow, and a Deny that matches the request always denies.
    #[test]
    fn a_deny_never_grants(s in scenario(), extra in statement_parts(), into_identity in any::<bool>()) {
        let before = run(&s);
        let mut more = s.clone();
        if into_identity { more.identity.push((false, extra)) } else { more.key.push((false, extra)) }
        let after = run(&more);
        prop_assert!(before.is_allowed() || !after.is_allowed(), "{before:?} -> {after:?}");

        let mut matching = s.clone();
        matching.key.push((false, (0, 1, 0, 0))); // Principal "*", Action "*", Resource "*"
        prop_assert_eq!(run(&matching), DENIED_BY_KEY_POLICY);
    }

    /// STYLE.md: "a new Allow never revokes". Adding an Allow statement, to the key policy or
    /// to an identity policy, never turns an Allow into a Deny.
    #[test]
    fn an_allow_never_revokes(s in scenario(), extra in statement_parts(), into_identity in any::<bool>()) {
        let before = run(&s);
        let mut more = s.clone();
        if into_identity { more.identity.push((true, extra)) } else { more.key.push((true, extra)) }
        let after = run(&more);
        prop_assert!(!before.is_allowed() || after.is_allowed(), "{before:?} -> {after:?}");
    }

    /// The parser never panics, on text or on arbitrary JSON.
    #[test]
    fn parse_never_panics(text in jsonish(), value in json_value()) {
        for kind in [PolicyKind::Key, PolicyKind::Identity, PolicyKind::RoleTrust] {
            let _ = PolicyDocument::parse(&text, kind);
            let _ = PolicyDocument::from_json(&value, kind);
            let wrapped = serde_json::json!({"Version": "2012-10-17", "Statement": value.clone()});
            let _ = PolicyDocument::from_json(&wrapped, kind);
        }
        let _ = KeyPolicy::parse(&text);
    }

    /// Evaluation never panics on arbitrary request values.
    #[test]
    fn evaluate_never_panics(s in scenario(), key in "[ -~]{0,20}", value in "[ -~]{0,30}") {
        let doc = document(&s.key, PolicyKind::Key);
        let mut ctx = contexts()[s.context].clone();
        ctx.insert(key.clone(), value.clone());
        for name in ["aws:CurrentTime", "aws:SourceIp", "kms:EncryptionContext:app", "aws:SecureTransport"] {
            ctx.insert(name, value.clone());
        }
        let owner = account(ACCOUNT);
        let principal = &principals()[s.principal];
        let req = AuthzRequest { principal, action: &key, resource: &value, resource_account: &owner, context: &ctx };
        let _ = evaluate(&req, &doc, &[], s.grant);
    }
}

/// Only documents without conditions and without resource variables let a decision be reused
/// across requests.
#[test]
fn which_documents_read_the_request() {
    assert!(!KeyPolicy::default_for(&account(ACCOUNT)).document().reads_request());
    assert!(!allows(r#""kms:Encrypt""#).reads_request());
    let conditional = identity_policy(
        r#"{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"StringEquals":{"kms:EncryptionContext:dept":"a"}}}"#,
    );
    assert!(conditional.reads_request());
    let variable = identity_policy(
        r#"{"Effect":"Allow","Action":"kms:Encrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/${aws:username}"}"#,
    );
    assert!(variable.reads_request());
}
