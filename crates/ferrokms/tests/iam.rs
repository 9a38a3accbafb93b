//! The IAM and STS APIs on ferrokms's endpoint, driven as their users drive them: the aws CLI
//! (`aws iam …` with `AWS_ENDPOINT_URL_IAM`) and boto3's IAM, STS and KMS clients. Each IAM
//! error case is answered with IAM's code.
//!
//! Both print `SKIPPED` when the tool is missing, unless `FERROKMS_REQUIRE_PYTHON_CLIENTS` is
//! set (`.ci/run` sets it after installing them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::print_stdout, missing_docs)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn present(tool: &str) -> bool {
    let ok = match tool {
        "aws" => Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success()),
        _ => Command::new("python3").args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success()),
    };
    if !ok {
        assert!(
            std::env::var_os("FERROKMS_REQUIRE_PYTHON_CLIENTS").is_none(),
            "{tool} is required (FERROKMS_REQUIRE_PYTHON_CLIENTS is set) but not installed"
        );
        println!("SKIPPED: {tool} is not installed (pip install awscli boto3)");
    }
    ok
}

/// `command` pointed at the server for KMS, IAM and STS, with the admin's credentials.
fn clients_env<'a>(command: &'a mut Command, addr: &str, data: &Path) -> &'a mut Command {
    let endpoint = format!("http://{addr}");
    command
        .env("AWS_ENDPOINT_URL_KMS", &endpoint)
        .env("AWS_ENDPOINT_URL_IAM", &endpoint)
        .env("AWS_ENDPOINT_URL_STS", &endpoint)
        .env("ENDPOINT", &endpoint)
        .env("AWS_SHARED_CREDENTIALS_FILE", data.join("admin-credentials"))
        .env("AWS_PROFILE", "ferrokms")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
}

struct Cli<'a> {
    addr: &'a str,
    data: &'a Path,
}

impl Cli<'_> {
    fn run(&self, args: &[&str], creds: Option<(&str, &str)>) -> Output {
        let mut command = Command::new("aws");
        clients_env(&mut command, self.addr, self.data);
        if let Some((id, secret)) = creds {
            command
                .env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env_remove("AWS_PROFILE")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
        command.args(args).args(["--output", "json"]).output().unwrap()
    }

    /// Runs a command that must succeed; its JSON output (`null` when it prints nothing).
    fn ok(&self, args: &[&str]) -> Value {
        self.ok_as(args, None)
    }

    fn ok_as(&self, args: &[&str], creds: Option<(&str, &str)>) -> Value {
        let out = self.run(args, creds);
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    /// Runs a command that must fail with the error `code`; its stderr.
    fn fails(&self, args: &[&str], code: &str) -> String {
        self.fails_as(args, None, code)
    }

    fn fails_as(&self, args: &[&str], creds: Option<(&str, &str)>, code: &str) -> String {
        let out = self.run(args, creds);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "aws {args:?} succeeded");
        assert!(stderr.contains(&format!("({code})")), "aws {args:?}: expected {code}, got {stderr}");
        stderr
    }
}

/// A user, its access key and an inline policy made with `aws iam`, then used for KMS; a role
/// with a trust policy naming the user, assumed through `aws sts`, and a key policy naming the
/// role; and IAM's error cases with IAM's codes.
#[test]
fn the_aws_cli_manages_principals_through_iam() {
    if !present("aws") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::serve(&data);
    let aws = Cli { addr: &server.addr, data: &data };
    let account = aws.ok(&["sts", "get-caller-identity"])["Account"].as_str().unwrap().to_owned();

    let user =
        aws.ok(&["iam", "create-user", "--user-name", "app", "--path", "/services/", "--tags", "Key=team,Value=blue"]);
    assert_eq!(user["User"]["Arn"], format!("arn:aws:iam::{account}:user/services/app"));
    assert_eq!(user["User"]["Path"], "/services/");
    assert!(user["User"]["UserId"].as_str().unwrap().starts_with("AIDA"));
    aws.fails(&["iam", "create-user", "--user-name", "app"], "EntityAlreadyExists");
    let got = aws.ok(&["iam", "get-user", "--user-name", "app"]);
    assert_eq!(got["User"]["Tags"][0]["Key"], "team");
    let users = aws.ok(&["iam", "list-users", "--path-prefix", "/services/"]);
    assert_eq!(users["Users"].as_array().unwrap().len(), 1);
    aws.fails(&["iam", "get-user", "--user-name", "nobody"], "NoSuchEntity");

    let key = aws.ok(&["iam", "create-access-key", "--user-name", "app"]);
    let id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned();
    assert_eq!(key["AccessKey"]["Status"], "Active");
    let creds = Some((id.as_str(), secret.as_str()));
    // The new user's own view of itself, through STS and IAM's GetUser without a name.
    let me = aws.ok_as(&["sts", "get-caller-identity"], creds);
    assert_eq!(me["Arn"], format!("arn:aws:iam::{account}:user/services/app"));
    // No policy yet: denied. An inline policy allows it at once.
    aws.fails_as(&["kms", "create-key"], creds, "AccessDeniedException");
    let allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:CreateKey","kms:Encrypt","kms:DescribeKey","iam:GetUser"],"Resource":"*"}]}"#;
    aws.ok(&["iam", "put-user-policy", "--user-name", "app", "--policy-name", "kms", "--policy-document", allow]);
    let policy = aws.ok(&["iam", "get-user-policy", "--user-name", "app", "--policy-name", "kms"]);
    assert_eq!(policy["PolicyDocument"]["Statement"][0]["Action"][0], "kms:CreateKey", "decoded as a document");
    assert_eq!(aws.ok(&["iam", "list-user-policies", "--user-name", "app"])["PolicyNames"], serde_json::json!(["kms"]));
    let own = aws.ok_as(&["iam", "get-user"], creds);
    assert_eq!(own["User"]["UserName"], "app");
    let key_id = aws.ok_as(&["kms", "create-key"], creds)["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    aws.ok_as(&["kms", "encrypt", "--key-id", &key_id, "--plaintext", "aGk="], creds);
    // Its use is recorded (in the background, at most once a minute).
    let mut last = Value::Null;
    for _ in 0..50 {
        last = aws.ok(&["iam", "get-access-key-last-used", "--access-key-id", &id]);
        if last["AccessKeyLastUsed"]["ServiceName"] != "N/A" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(last["UserName"], "app");
    assert!(["sts", "iam", "kms"].contains(&last["AccessKeyLastUsed"]["ServiceName"].as_str().unwrap()), "{last}");
    assert_eq!(last["AccessKeyLastUsed"]["Region"], "us-east-1");
    assert!(last["AccessKeyLastUsed"]["LastUsedDate"].is_string(), "{last}");

    // Inactive keys do not authenticate; active again, they do.
    aws.ok(&["iam", "update-access-key", "--user-name", "app", "--access-key-id", &id, "--status", "Inactive"]);
    let listed = aws.ok(&["iam", "list-access-keys", "--user-name", "app"]);
    assert_eq!(listed["AccessKeyMetadata"][0]["Status"], "Inactive");
    aws.fails_as(&["kms", "describe-key", "--key-id", &key_id], creds, "UnrecognizedClientException");
    aws.ok(&["iam", "update-access-key", "--user-name", "app", "--access-key-id", &id, "--status", "Active"]);
    aws.ok_as(&["kms", "describe-key", "--key-id", &key_id], creds);

    // A role the user may assume, named by a key policy.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:user/services/app"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let role = aws.ok(&[
        "iam",
        "create-role",
        "--role-name",
        "decrypter",
        "--assume-role-policy-document",
        &trust,
        "--max-session-duration",
        "7200",
        "--description",
        "decrypts",
    ]);
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"], "sts:AssumeRole");
    assert_eq!(role["Role"]["MaxSessionDuration"], 7200);
    let role_arn = role["Role"]["Arn"].as_str().unwrap().to_owned();
    let key_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Allow","Principal":{{"AWS":"{role_arn}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}]}}"#
    );
    let shared =
        aws.ok(&["kms", "create-key", "--policy", &key_policy])["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let session = aws.ok_as(
        &["sts", "assume-role", "--role-arn", &role_arn, "--role-session-name", "s1", "--duration-seconds", "7200"],
        creds,
    );
    let c = &session["Credentials"];
    let mut command = Command::new("aws");
    clients_env(&mut command, &server.addr, &data)
        .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
        .env("AWS_SECRET_ACCESS_KEY", c["SecretAccessKey"].as_str().unwrap())
        .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
        .env_remove("AWS_PROFILE")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    let out = command
        .args(["kms", "encrypt", "--key-id", &shared, "--plaintext", "aGk=", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    aws.fails_as(
        &["sts", "assume-role", "--role-arn", &role_arn, "--role-session-name", "s2", "--duration-seconds", "7201"],
        creds,
        "ValidationError",
    );

    // IAM's error cases.
    aws.fails(&["iam", "delete-user", "--user-name", "app"], "DeleteConflict");
    aws.fails(
        &["iam", "put-role-policy", "--role-name", "decrypter", "--policy-name", "p", "--policy-document", "{not json"],
        "MalformedPolicyDocument",
    );
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Sid":"{}"}}]}}"#,
        "a".repeat(2100)
    );
    aws.fails(
        &["iam", "put-user-policy", "--user-name", "app", "--policy-name", "big", "--policy-document", &big],
        "LimitExceeded",
    );
    aws.ok(&["iam", "create-access-key", "--user-name", "app"]);
    aws.fails(&["iam", "create-access-key", "--user-name", "app"], "LimitExceeded");
    let stderr = aws.fails(&["iam", "create-user", "--user-name", "bad name"], "ValidationError");
    assert!(stderr.contains("at 'userName' failed to satisfy constraint"), "{stderr}");
    aws.fails(&["iam", "delete-role", "--role-name", "nobody"], "NoSuchEntity");

    // Emptied, the user and role go.
    for key in aws.ok(&["iam", "list-access-keys", "--user-name", "app"])["AccessKeyMetadata"].as_array().unwrap() {
        aws.ok(&[
            "iam",
            "delete-access-key",
            "--user-name",
            "app",
            "--access-key-id",
            key["AccessKeyId"].as_str().unwrap(),
        ]);
    }
    aws.ok(&["iam", "delete-user-policy", "--user-name", "app", "--policy-name", "kms"]);
    aws.ok(&["iam", "delete-user", "--user-name", "app"]);
    aws.ok(&["iam", "delete-role", "--role-name", "decrypter"]);
    assert!(aws.ok(&["iam", "list-roles"])["Roles"].as_array().unwrap().is_empty());
}

/// boto3's IAM client: paginated listing, tags, role updates, the policy documents decoded as
/// boto3 decodes them; an IAM change takes effect on the very next KMS request; the change is
/// in the audit trail with IAM's event source.
const BOTO3: &str = r#"
import boto3, json, os
from botocore.exceptions import ClientError
endpoint = os.environ['ENDPOINT']
iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1')
sts = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1')
account = sts.get_caller_identity()['Account']

def code(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        return e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode']
    raise AssertionError('no error')

trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'sts:AssumeRole'}]}
for name in ['r1', 'r2', 'r3']:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=[{'Key': 'n', 'Value': name}])
pages = list(iam.get_paginator('list_roles').paginate(PaginationConfig={'PageSize': 1}))
assert [r['RoleName'] for p in pages for r in p['Roles']] == ['r1', 'r2', 'r3'], pages
assert len(pages) == 3
role = iam.get_role(RoleName='r2')['Role']
assert role['AssumeRolePolicyDocument'] == trust, role
assert role['Tags'] == [{'Key': 'n', 'Value': 'r2'}]
iam.update_role(RoleName='r2', Description='second', MaxSessionDuration=5400)
role = iam.get_role(RoleName='r2')['Role']
assert (role['Description'], role['MaxSessionDuration']) == ('second', 5400), role
iam.tag_role(RoleName='r2', Tags=[{'Key': 'env', 'Value': 'prod'}, {'Key': 'n', 'Value': 'two'}])
assert sorted((t['Key'], t['Value']) for t in iam.list_role_tags(RoleName='r2')['Tags']) == [('env', 'prod'), ('n', 'two')]
iam.untag_role(RoleName='r2', TagKeys=['env'])
assert iam.list_role_tags(RoleName='r2')['Tags'] == [{'Key': 'n', 'Value': 'two'}]
narrowed = dict(trust, Statement=[dict(trust['Statement'][0], Principal={'AWS': f'arn:aws:iam::{account}:user/admin'})])
iam.update_assume_role_policy(RoleName='r3', PolicyDocument=json.dumps(narrowed))
assert iam.get_role(RoleName='r3')['Role']['AssumeRolePolicyDocument'] == narrowed
assert code(iam.get_role, RoleName='nope') == ('NoSuchEntity', 404)
assert code(iam.create_role, RoleName='r1', AssumeRolePolicyDocument=json.dumps(trust)) == ('EntityAlreadyExists', 409)
# The server's own validation, past boto3's.
from botocore.config import Config
unchecked = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1', config=Config(parameter_validation=False))
assert code(unchecked.update_role, RoleName='r1', MaxSessionDuration=100) == ('ValidationError', 400)

# UpdateUser: renamed and moved, its key and policies follow; the old name is gone.
iam.create_user(UserName='temp')
temp_key = iam.create_access_key(UserName='temp')['AccessKey']
iam.put_user_policy(UserName='temp', PolicyName='p', PolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 'kms:ListKeys', 'Resource': '*'}]}))
iam.update_user(UserName='temp', NewUserName='renamed', NewPath='/moved/')
assert iam.get_user(UserName='renamed')['User']['Arn'] == f'arn:aws:iam::{account}:user/moved/renamed'
assert code(iam.get_user, UserName='temp') == ('NoSuchEntity', 404)
assert iam.list_user_policies(UserName='renamed')['PolicyNames'] == ['p']
renamed = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1', aws_access_key_id=temp_key['AccessKeyId'], aws_secret_access_key=temp_key['SecretAccessKey'])
assert renamed.get_caller_identity()['Arn'] == f'arn:aws:iam::{account}:user/moved/renamed'
assert code(iam.update_user, UserName='renamed', NewUserName='admin') == ('EntityAlreadyExists', 409)

# A user allowed to encrypt by an inline policy; removing the policy denies the next request.
iam.create_user(UserName='worker')
key = iam.create_access_key(UserName='worker')['AccessKey']
allow = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 'kms:Encrypt', 'Resource': '*'}]}
iam.put_user_policy(UserName='worker', PolicyName='enc', PolicyDocument=json.dumps(allow))
assert iam.get_user_policy(UserName='worker', PolicyName='enc')['PolicyDocument'] == allow
kms_admin = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1')
key_id = kms_admin.create_key()['KeyMetadata']['KeyId']
worker = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1',
                      aws_access_key_id=key['AccessKeyId'], aws_secret_access_key=key['SecretAccessKey'])
worker.encrypt(KeyId=key_id, Plaintext=b'x')
iam.delete_user_policy(UserName='worker', PolicyName='enc')
assert code(worker.encrypt, KeyId=key_id, Plaintext=b'x')[0] == 'AccessDeniedException'
assert code(iam.delete_user_policy, UserName='worker', PolicyName='enc') == ('NoSuchEntity', 404)
iam.delete_access_key(UserName='worker', AccessKeyId=key['AccessKeyId'])
assert code(worker.encrypt, KeyId=key_id, Plaintext=b'x')[0] == 'UnrecognizedClientException'
iam.delete_user(UserName='worker')
assert code(iam.get_user, UserName='worker') == ('NoSuchEntity', 404)
print('ok')
"#;

#[test]
fn boto3_manages_principals_through_iam() {
    if !present("boto3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::serve(&data);
    let mut command = Command::new("python3");
    clients_env(&mut command, &server.addr, &data);
    let out = command.args(["-c", BOTO3]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    server.stop();
    // Each IAM change is in the trail, as IAM's event, without the new key's secret.
    let trail = Command::new(support::BIN).args(["audit", "export", "--data-dir"]).arg(&data).output().unwrap();
    let text = String::from_utf8_lossy(&trail.stdout);
    let events: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let iam_events: Vec<&str> = events
        .iter()
        .filter(|e| e["eventSource"] == "iam.amazonaws.com")
        .filter_map(|e| e["eventName"].as_str())
        .collect();
    for name in [
        "CreateRole",
        "UpdateRole",
        "TagRole",
        "CreateUser",
        "UpdateUser",
        "CreateAccessKey",
        "PutUserPolicy",
        "DeleteUser",
    ] {
        assert!(iam_events.contains(&name), "{name} missing from {iam_events:?}");
    }
    assert!(!text.contains("SecretAccessKey\":\""), "no secret in the trail");
}

/// Managed policies with versions, groups, attachments, principal tags in conditions, session
/// tags and external ids in trust policies, GetSessionToken — each change felt by the very next
/// KMS request.
const BOTO3_POLICIES: &str = r#"
import boto3, json, os
from botocore.exceptions import ClientError
endpoint = os.environ['ENDPOINT']
iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1')
sts = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1')
kms = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1')
account = sts.get_caller_identity()['Account']

def code(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    raise AssertionError('no error')

def doc(*actions, **condition):
    statement = {'Effect': 'Allow', 'Action': list(actions), 'Resource': '*'}
    if condition:
        statement['Condition'] = condition
    return json.dumps({'Version': '2012-10-17', 'Statement': [statement]})

def client_for(key, service='kms', token=None):
    return boto3.client(service, endpoint_url=endpoint, region_name='us-east-1',
                        aws_access_key_id=key['AccessKeyId'], aws_secret_access_key=key['SecretAccessKey'],
                        aws_session_token=token)

key_id = kms.create_key()['KeyMetadata']['KeyId']
iam.create_user(UserName='dev', Tags=[{'Key': 'team', 'Value': 'blue'}])
dev_key = iam.create_access_key(UserName='dev')['AccessKey']
dev = client_for(dev_key)
assert code(dev.encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException'

# A managed policy attached to a group the user joins.
policy = iam.create_policy(PolicyName='encrypt', Path='/kms/', PolicyDocument=doc('kms:Encrypt'))['Policy']
arn = policy['Arn']
assert arn == f'arn:aws:iam::{account}:policy/kms/encrypt' and policy['DefaultVersionId'] == 'v1'
iam.create_group(GroupName='devs')
iam.attach_group_policy(GroupName='devs', PolicyArn=arn)
assert code(dev.encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException', 'not a member yet'
iam.add_user_to_group(GroupName='devs', UserName='dev')
dev.encrypt(KeyId=key_id, Plaintext=b'x')
assert [u['UserName'] for u in iam.get_group(GroupName='devs')['Users']] == ['dev']
assert [g['GroupName'] for g in iam.list_groups_for_user(UserName='dev')['Groups']] == ['devs']
assert iam.get_policy(PolicyArn=arn)['Policy']['AttachmentCount'] == 1
assert iam.list_attached_group_policies(GroupName='devs')['AttachedPolicies'] == [{'PolicyName': 'encrypt', 'PolicyArn': arn}]

# A new default version narrows it at once: only with the principal's own team tag.
v2 = iam.create_policy_version(PolicyArn=arn, SetAsDefault=True,
    PolicyDocument=doc('kms:Encrypt', StringEquals={'aws:PrincipalTag/team': 'red'}))['PolicyVersion']
assert (v2['VersionId'], v2['IsDefaultVersion']) == ('v2', True)
assert code(dev.encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException', 'team is blue'
iam.tag_user(UserName='dev', Tags=[{'Key': 'team', 'Value': 'red'}])
dev.encrypt(KeyId=key_id, Plaintext=b'x')
assert json.loads(json.dumps(iam.get_policy_version(PolicyArn=arn, VersionId='v1')['PolicyVersion']['Document']))['Statement'][0]['Action'] == ['kms:Encrypt']
assert [v['VersionId'] for v in iam.list_policy_versions(PolicyArn=arn)['Versions']] == ['v2', 'v1']
iam.set_default_policy_version(PolicyArn=arn, VersionId='v1')
assert code(iam.delete_policy_version, PolicyArn=arn, VersionId='v1') == 'DeleteConflict'
for n in range(3):
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc('kms:Encrypt'))
assert code(iam.create_policy_version, PolicyArn=arn, PolicyDocument=doc('kms:Encrypt')) == 'LimitExceeded'
assert code(iam.delete_policy, PolicyArn=arn) == 'DeleteConflict', 'attached'
assert code(iam.delete_group, GroupName='devs') == 'DeleteConflict', 'members'

# aws:ResourceTag/… of the user acted on: dev may tag only users of team red (itself, now).
iam.put_user_policy(UserName='dev', PolicyName='tagging', PolicyDocument=doc('iam:TagUser', StringEquals={'aws:ResourceTag/team': 'red'}))
iam.create_user(UserName='other', Tags=[{'Key': 'team', 'Value': 'green'}])
dev_iam = client_for(dev_key, 'iam')
dev_iam.tag_user(UserName='dev', Tags=[{'Key': 'x', 'Value': '1'}])
assert code(dev_iam.tag_user, UserName='other', Tags=[{'Key': 'x', 'Value': '1'}]) == 'AccessDenied'
iam.delete_user_policy(UserName='dev', PolicyName='tagging')

# Detached (and the user out of the group), access ends with the next request.
iam.remove_user_from_group(GroupName='devs', UserName='dev')
assert code(dev.encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException'
iam.attach_user_policy(UserName='dev', PolicyArn=arn)
dev.encrypt(KeyId=key_id, Plaintext=b'x')
iam.detach_user_policy(UserName='dev', PolicyArn=arn)
assert code(dev.encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException'
assert code(iam.detach_user_policy, UserName='dev', PolicyArn=arn) == 'NoSuchEntity'
iam.detach_group_policy(GroupName='devs', PolicyArn=arn)
for v in iam.list_policy_versions(PolicyArn=arn)['Versions']:
    if not v['IsDefaultVersion']:
        iam.delete_policy_version(PolicyArn=arn, VersionId=v['VersionId'])
iam.delete_policy(PolicyArn=arn)
assert code(iam.get_policy, PolicyArn=arn) == 'NoSuchEntity'
iam.delete_group(GroupName='devs')
assert [p['PolicyName'] for p in iam.list_policies(Scope='AWS')['Policies']] == ['AdministratorAccess']

# GetSessionToken: the user itself, with a session token.
dev_sts = client_for(iam.create_access_key(UserName='dev')['AccessKey'], 'sts')
session = dev_sts.get_session_token(DurationSeconds=900)['Credentials']
me = client_for(session, 'sts', session['SessionToken']).get_caller_identity()
assert me['Arn'] == f'arn:aws:iam::{account}:user/dev', me
assert code(client_for(session, 'sts', session['SessionToken']).get_session_token) == 'AccessDenied'

# A trust policy with an external id; session tags (sts:TagSession) become principal tags.
trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'},
         'Action': ['sts:AssumeRole', 'sts:TagSession'], 'Condition': {'StringEquals': {'sts:ExternalId': 'partner-7'}}}]}
iam.create_role(RoleName='partner', AssumeRolePolicyDocument=json.dumps(trust), Tags=[{'Key': 'project', 'Value': 'a'}])
iam.put_role_policy(RoleName='partner', PolicyName='p', PolicyDocument=doc('kms:Encrypt', StringEquals={'aws:PrincipalTag/project': 'b'}))
role_arn = f'arn:aws:iam::{account}:role/partner'
assert code(sts.assume_role, RoleArn=role_arn, RoleSessionName='s1') == 'AccessDenied'
assert code(sts.assume_role, RoleArn=role_arn, RoleSessionName='s1', ExternalId='wrong') == 'AccessDenied'
plain = sts.assume_role(RoleArn=role_arn, RoleSessionName='s1', ExternalId='partner-7')['Credentials']
assert code(client_for(plain, token=plain['SessionToken']).encrypt, KeyId=key_id, Plaintext=b'x') == 'AccessDeniedException'
tagged = sts.assume_role(RoleArn=role_arn, RoleSessionName='t1', ExternalId='partner-7',
                         Tags=[{'Key': 'project', 'Value': 'b'}])['Credentials']
client_for(tagged, token=tagged['SessionToken']).encrypt(KeyId=key_id, Plaintext=b'x')

# SimulatePrincipalPolicy gives the answer the server enforces: key policy with an
# encryption-context condition, identity policies, an explicit deny.
trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'sts:AssumeRole'}]}
reader_arn = iam.create_role(RoleName='reader', AssumeRolePolicyDocument=json.dumps(trust))['Role']['Arn']
key_policy = {'Version': '2012-10-17', 'Statement': [
    {'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'kms:*', 'Resource': '*'},
    {'Effect': 'Allow', 'Principal': {'AWS': reader_arn}, 'Action': ['kms:Encrypt', 'kms:Decrypt'], 'Resource': '*',
     'Condition': {'StringEquals': {'kms:EncryptionContext:app': 'logs'}}},
    {'Effect': 'Deny', 'Principal': {'AWS': reader_arn}, 'Action': 'kms:ScheduleKeyDeletion', 'Resource': '*'}]}
logs_key = kms.create_key(Policy=json.dumps(key_policy))['KeyMetadata']['Arn']
def simulate(action, app=None):
    entries = [{'ContextKeyName': 'kms:EncryptionContext:app', 'ContextKeyValues': [app], 'ContextKeyType': 'string'}] if app else []
    r = iam.simulate_principal_policy(PolicySourceArn=reader_arn, ActionNames=[action], ResourceArns=[logs_key], ContextEntries=entries)
    return r['EvaluationResults'][0]['EvalDecision']
assert simulate('kms:Encrypt', 'logs') == 'allowed'
assert simulate('kms:Encrypt', 'other') == 'implicitDeny'
assert simulate('kms:Encrypt') == 'implicitDeny'
assert simulate('kms:ScheduleKeyDeletion') == 'explicitDeny'
session = sts.assume_role(RoleArn=reader_arn, RoleSessionName='r1')['Credentials']
reader = client_for(session, token=session['SessionToken'])
reader.encrypt(KeyId=logs_key, Plaintext=b'x', EncryptionContext={'app': 'logs'})
assert code(reader.encrypt, KeyId=logs_key, Plaintext=b'x', EncryptionContext={'app': 'other'}) == 'AccessDeniedException'
assert code(reader.schedule_key_deletion, KeyId=logs_key) == 'AccessDeniedException'
# Identity policies alone, for a non-key resource.
many = iam.simulate_principal_policy(PolicySourceArn=f'arn:aws:iam::{account}:user/dev', ActionNames=['kms:CreateKey', 'iam:CreateUser'])
assert [r['EvalDecision'] for r in many['EvaluationResults']] == ['implicitDeny', 'implicitDeny'], many
print('ok')
"#;

#[test]
fn boto3_managed_policies_groups_and_tags() {
    if !present("boto3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::serve(&data);
    let mut command = Command::new("python3");
    clients_env(&mut command, &server.addr, &data);
    let out = command.args(["-c", BOTO3_POLICIES]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// A Kubernetes-style workload: a service-account token signed by a key the test generates,
/// from an OpenID Connect provider registered with `aws iam` (its JWKS given with `ferrokms
/// admin put-oidc-keys`), assumes a role through boto3's web identity credential provider
/// (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`), and STS's error cases.
const BOTO3_WEB_IDENTITY: &str = r#"
import base64, boto3, json, os, subprocess, sys, tempfile, time
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
endpoint = os.environ['ENDPOINT']
iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1')
sts = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1')
kms = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1')
account = sts.get_caller_identity()['Account']

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()

def number(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, 'big'))

signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
public = signer.public_key().public_numbers()
jwks = {'keys': [{'kty': 'RSA', 'kid': 'k1', 'use': 'sig', 'alg': 'RS256', 'n': number(public.n), 'e': number(public.e)}]}
issuer = 'https://oidc.cluster-1.example/id/ABC'
name = 'oidc.cluster-1.example/id/ABC'

def token(key=signer, sub='system:serviceaccount:default:app', aud='sts.amazonaws.com', exp=600):
    now = int(time.time())
    header = b64(json.dumps({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'}).encode())
    payload = b64(json.dumps({'iss': issuer, 'sub': sub, 'aud': aud, 'iat': now, 'exp': now + exp}).encode())
    signature = key.sign(f'{header}.{payload}'.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f'{header}.{payload}.{b64(signature)}'

provider = iam.create_open_id_connect_provider(Url=issuer, ClientIDList=['sts.amazonaws.com'], ThumbprintList=['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'])['OpenIDConnectProviderArn']
assert provider == f'arn:aws:iam::{account}:oidc-provider/{name}', provider
got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider)
assert (got['Url'], got['ClientIDList']) == (name, ['sts.amazonaws.com']), got
assert [p['Arn'] for p in iam.list_open_id_connect_providers()['OpenIDConnectProviderList']] == [provider]
with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
    json.dump(jwks, f)
subprocess.run([os.environ['FERROKMS_BIN'], 'admin', '--endpoint', endpoint, '--credentials-file', os.environ['ADMIN_CREDENTIALS'],
                'put-oidc-keys', provider, '--jwks', 'file://' + f.name], check=True, capture_output=True)

trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'Federated': provider},
         'Action': 'sts:AssumeRoleWithWebIdentity',
         'Condition': {'StringEquals': {f'{name}:sub': 'system:serviceaccount:default:app', f'{name}:aud': 'sts.amazonaws.com'}}}]}
role = iam.create_role(RoleName='workload', AssumeRolePolicyDocument=json.dumps(trust))['Role']['Arn']
iam.put_role_policy(RoleName='workload', PolicyName='enc', PolicyDocument=json.dumps(
    {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 'kms:Encrypt', 'Resource': '*'}]}))
key_id = kms.create_key()['KeyMetadata']['KeyId']

anonymous = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1')
def code(**kw):
    try:
        anonymous.assume_role_with_web_identity(RoleArn=role, RoleSessionName='pod', **kw)
    except ClientError as e:
        return e.response['Error']['Code']
    raise AssertionError('no error')
assert code(WebIdentityToken=token(sub='system:serviceaccount:default:other')) == 'AccessDenied'
assert code(WebIdentityToken=token(aud='someone-else')) == 'InvalidIdentityToken'
assert code(WebIdentityToken=token(key=stranger)) == 'InvalidIdentityToken'
assert code(WebIdentityToken=token(exp=-10)) == 'ExpiredTokenException'
good = token()
assert code(WebIdentityToken=good[:-4] + ('AAAA' if not good.endswith('AAAA') else 'BBBB')) == 'InvalidIdentityToken'
r = anonymous.assume_role_with_web_identity(RoleArn=role, RoleSessionName='pod', WebIdentityToken=good)
assert r['SubjectFromWebIdentityToken'] == 'system:serviceaccount:default:app'
assert r['AssumedRoleUser']['Arn'] == f'arn:aws:sts::{account}:assumed-role/workload/pod'

# As a pod runs: only the role and the token file in the environment.
with tempfile.NamedTemporaryFile('w', delete=False) as f:
    f.write(token())
pod_env = {k: v for k, v in os.environ.items() if not k.startswith('AWS_')}
pod_env.update({'AWS_ROLE_ARN': role, 'AWS_WEB_IDENTITY_TOKEN_FILE': f.name, 'AWS_ROLE_SESSION_NAME': 'pod',
                'AWS_ENDPOINT_URL_STS': endpoint, 'AWS_ENDPOINT_URL_KMS': endpoint, 'AWS_DEFAULT_REGION': 'us-east-1',
                'AWS_CONFIG_FILE': '/dev/null', 'AWS_SHARED_CREDENTIALS_FILE': '/dev/null', 'KEY_ID': key_id})
pod_script = "import boto3, os\nboto3.client('kms').encrypt(KeyId=os.environ['KEY_ID'], Plaintext=b'from the pod')\nprint(boto3.client('sts').get_caller_identity()['Arn'])\n"
pod = subprocess.run([sys.executable, '-c', pod_script], env=pod_env, capture_output=True, text=True)
assert pod.returncode == 0, pod.stderr
assert pod.stdout.strip() == f'arn:aws:sts::{account}:assumed-role/workload/pod', pod.stdout
iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider)
assert code(WebIdentityToken=token()) == 'InvalidIdentityToken', 'provider gone'
print('ok')
"#;

#[test]
fn boto3_web_identity_assumes_a_role() {
    if !present("boto3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::serve(&data);
    let mut command = Command::new("python3");
    clients_env(&mut command, &server.addr, &data)
        .env("FERROKMS_BIN", support::BIN)
        .env("ADMIN_CREDENTIALS", data.join("admin-credentials"));
    let out = command.args(["-c", BOTO3_WEB_IDENTITY]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    server.stop();
    // The web identity tokens (bearer credentials) are not in the trail; the calls are.
    let trail = Command::new(support::BIN).args(["audit", "export", "--data-dir"]).arg(&data).output().unwrap();
    let text = String::from_utf8_lossy(&trail.stdout);
    assert!(text.contains("\"eventName\":\"AssumeRoleWithWebIdentity\""));
    assert!(!text.contains("eyJhbGci"), "a JWT in the audit trail");
}

/// CloudTrail's LookupEvents over the trail, as `aws cloudtrail lookup-events` and boto3's
/// paginator read it: the caller's account only, one lookup attribute, pages, CloudTrail's
/// exceptions.
const BOTO3_LOOKUP: &str = r#"
import boto3, json, os
from botocore.exceptions import ClientError
endpoint = os.environ['ENDPOINT']
kms = boto3.client('kms', endpoint_url=endpoint, region_name='us-east-1')
ct = boto3.client('cloudtrail', endpoint_url=endpoint, region_name='us-east-1')
sts = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1')
account = sts.get_caller_identity()['Account']
keys = [kms.create_key(Description=f'k{n}')['KeyMetadata']['Arn'] for n in range(3)]
for arn in keys:
    kms.encrypt(KeyId=arn, Plaintext=b'x')
import time
time.sleep(0.5)  # the audit writer commits within its linger interval

creates = ct.lookup_events(LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'CreateKey'}])['Events']
assert len(creates) == 3, creates
assert all(e['EventSource'] == 'kms.amazonaws.com' and e['Username'] == 'admin' and e['ReadOnly'] == 'false' for e in creates), creates
assert sorted(e['Resources'][0]['ResourceName'] for e in creates) == sorted(keys)
record = json.loads(creates[0]['CloudTrailEvent'])
assert record['eventName'] == 'CreateKey' and record['recipientAccountId'] == account

by_key = ct.lookup_events(LookupAttributes=[{'AttributeKey': 'ResourceName', 'AttributeValue': keys[1]}])['Events']
assert sorted(e['EventName'] for e in by_key) == ['CreateKey', 'Encrypt'], by_key

# Pages of one, newest first, through the paginator.
pages = list(ct.get_paginator('lookup_events').paginate(
    LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'Encrypt'}], PaginationConfig={'PageSize': 1}))
seen = [e['EventId'] for p in pages for e in p['Events']]
assert len(seen) == 3 and len(set(seen)) == 3, pages
times = [e['EventTime'] for p in pages for e in p['Events']]
assert times == sorted(times, reverse=True)

def code(**kw):
    try:
        ct.lookup_events(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    raise AssertionError('no error')
assert code(LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'a'}, {'AttributeKey': 'Username', 'AttributeValue': 'b'}]) == 'InvalidLookupAttributesException'
assert code(NextToken='not-a-token') == 'InvalidNextTokenException'
import datetime
now = datetime.datetime.now(datetime.timezone.utc)
assert code(StartTime=now, EndTime=now - datetime.timedelta(days=1)) == 'InvalidTimeRangeException'

# Another account sees none of these events.
import subprocess
made = json.loads(subprocess.run([os.environ['FERROKMS_BIN'], 'admin', '--endpoint', endpoint, '--credentials-file',
                                  os.environ['ADMIN_CREDENTIALS'], 'create-account'], check=True, capture_output=True).stdout)
other = boto3.client('cloudtrail', endpoint_url=endpoint, region_name='us-east-1',
                     aws_access_key_id=made['AccessKey']['AccessKeyId'], aws_secret_access_key=made['AccessKey']['SecretAccessKey'])
assert other.lookup_events(LookupAttributes=[{'AttributeKey': 'EventName', 'AttributeValue': 'CreateKey'}])['Events'] == []

# Nor can it reach this account's principals through IAM or STS.
iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1')
iam.create_user(UserName='victim')
victim_key = iam.create_access_key(UserName='victim')['AccessKey']['AccessKeyId']
policy_arn = iam.create_policy(PolicyName='mine', PolicyDocument=json.dumps(
    {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 'kms:*', 'Resource': '*'}]}))['Policy']['Arn']
trust = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'sts:AssumeRole'}]}
role_arn = iam.create_role(RoleName='inside', AssumeRolePolicyDocument=json.dumps(trust))['Role']['Arn']
creds = dict(aws_access_key_id=made['AccessKey']['AccessKeyId'], aws_secret_access_key=made['AccessKey']['SecretAccessKey'])
other_iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1', **creds)
other_sts = boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1', **creds)
def denied(call, **kw):
    try:
        call(**kw)
    except ClientError as e:
        return e.response['Error']['Code']
    raise AssertionError(f'{call} went through')
assert denied(other_iam.get_user, UserName='victim') == 'NoSuchEntity'
assert denied(other_iam.delete_user, UserName='victim') == 'NoSuchEntity'
assert denied(other_iam.create_access_key, UserName='victim') == 'NoSuchEntity'
assert denied(other_iam.get_access_key_last_used, AccessKeyId=victim_key) == 'NoSuchEntity'
assert denied(other_iam.get_policy, PolicyArn=policy_arn) == 'NoSuchEntity'
other_iam.create_user(UserName='own')
assert denied(other_iam.attach_user_policy, UserName='own', PolicyArn=policy_arn) == 'NoSuchEntity'
assert denied(other_iam.simulate_principal_policy, PolicySourceArn=f'arn:aws:iam::{account}:user/victim', ActionNames=['kms:Encrypt']) == 'NoSuchEntity'
assert denied(other_sts.assume_role, RoleArn=role_arn, RoleSessionName='x1') == 'AccessDenied'
assert iam.get_user(UserName='victim')['User']['UserName'] == 'victim', 'untouched'
print('ok')
"#;

#[test]
fn boto3_and_the_aws_cli_look_up_events() {
    if !present("boto3") || !present("aws") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = support::serve(&data);
    let mut command = Command::new("python3");
    clients_env(&mut command, &server.addr, &data)
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", format!("http://{}", server.addr))
        .env("FERROKMS_BIN", support::BIN)
        .env("ADMIN_CREDENTIALS", data.join("admin-credentials"));
    let out = command.args(["-c", BOTO3_LOOKUP]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The aws CLI, by event source, read-only events only.
    let mut aws = Command::new("aws");
    clients_env(&mut aws, &server.addr, &data).env("AWS_ENDPOINT_URL_CLOUDTRAIL", format!("http://{}", server.addr));
    let out = aws
        .args(["cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=ReadOnly,AttributeValue=true"])
        .args(["--max-results", "50", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        listed["Events"].as_array().unwrap().iter().filter_map(|e| e["EventName"].as_str()).collect();
    assert!(names.contains(&"GetCallerIdentity") && names.contains(&"LookupEvents"), "{names:?}");
    assert!(!names.contains(&"CreateKey"), "{names:?}");
}
