//! `ferrokms admin …`: manage principals, access keys and identity policies on a running
//! server through its admin API (SigV4-signed, authorized by the caller's identity policies).

use std::path::PathBuf;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Where and as whom to connect.
#[derive(Args, Clone)]
pub struct Connection {
    /// The ferrokms endpoint. [default: $AWS_ENDPOINT_URL_KMS, else http://127.0.0.1:4599]
    #[arg(long, env = "FERROKMS_ENDPOINT", value_name = "URL")]
    endpoint: Option<String>,
    /// Credentials file in the AWS format (profile `ferrokms`), used when AWS_ACCESS_KEY_ID is
    /// not set.
    #[arg(
        long,
        env = "FERROKMS_CREDENTIALS_FILE",
        value_name = "FILE",
        default_value = "./ferrokms-data/admin-credentials"
    )]
    credentials_file: PathBuf,
    /// Region to sign for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// A PEM file of CA certificates to trust, on top of the system's, for an https endpoint.
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "FILE")]
    ca_bundle: Option<PathBuf>,
    /// Credentials that win over the environment and the file (`serve --seed`).
    #[arg(skip)]
    fixed: Option<(String, String)>,
}

/// Admin commands.
#[derive(Subcommand, Clone)]
pub enum AdminCommand {
    /// Create a user.
    CreateUser { name: String },
    /// Delete a user, its access keys and policies.
    DeleteUser { name: String },
    /// Create a role that principals named by the trust policy may assume.
    CreateRole {
        name: String,
        /// Trust policy (JSON, or file://PATH).
        #[arg(long)]
        trust_policy: String,
    },
    /// Delete a role.
    DeleteRole { name: String },
    /// Create a service principal such as logs.us-east-1.amazonaws.com.
    CreateServicePrincipal { name: String },
    /// Delete a service principal.
    DeleteServicePrincipal { name: String },
    /// Issue an access key for a user or a service principal (the secret is shown once).
    CreateAccessKey {
        #[arg(long, conflicts_with = "service", required_unless_present = "service")]
        user: Option<String>,
        #[arg(long)]
        service: Option<String>,
    },
    /// Delete an access key of a user (`--user`), of a service principal (`--service`), or
    /// of the caller.
    DeleteAccessKey {
        access_key_id: String,
        #[arg(long, conflicts_with = "service")]
        user: Option<String>,
        #[arg(long)]
        service: Option<String>,
    },
    /// Attach (or replace) an inline identity policy on a user.
    PutUserPolicy {
        user: String,
        policy_name: String,
        /// Policy document (JSON, or file://PATH).
        #[arg(long)]
        document: String,
    },
    /// Attach (or replace) an inline identity policy on a role.
    PutRolePolicy {
        role: String,
        policy_name: String,
        /// Policy document (JSON, or file://PATH).
        #[arg(long)]
        document: String,
    },
    /// Remove a user's inline policy.
    DeleteUserPolicy { user: String, policy_name: String },
    /// Remove a role's inline policy.
    DeleteRolePolicy { role: String, policy_name: String },
    /// List the account's principals.
    List,
    /// Create another account with its own `admin` user and access key (shown once).
    CreateAccount {
        /// The new account's 12-digit id. [default: random]
        #[arg(long)]
        account_id: Option<String>,
    },
    /// Give an OpenID Connect provider (made with `aws iam create-open-id-connect-provider`) its
    /// signing keys, which ferrokms does not fetch from the issuer: its JWKS document.
    PutOidcKeys {
        /// The provider's ARN.
        provider_arn: String,
        /// The JWKS document (JSON, or file://PATH), such as a Kubernetes API server's
        /// `/openid/v1/jwks`.
        #[arg(long)]
        jwks: String,
    },
    /// Return the server to its state after `init`, for test suites: every key, alias, grant,
    /// user, role and service principal goes; the accounts, their admin users and credentials,
    /// the root key and the audit trail stay (operator only).
    Reset,
}

fn document(arg: &str) -> Result<String, String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
        None => Ok(arg.to_owned()),
    }
}

/// The admin-API request of a command IAM has no word for (service principals, accounts,
/// reset, OIDC keys, the combined listing).
fn request(command: &AdminCommand) -> Result<(&'static str, Value), String> {
    Ok(match command {
        AdminCommand::CreateServicePrincipal { name } => ("CreateServicePrincipal", json!({ "ServiceName": name })),
        AdminCommand::DeleteServicePrincipal { name } => ("DeleteServicePrincipal", json!({ "ServiceName": name })),
        AdminCommand::CreateAccessKey { user, service } => {
            ("CreateAccessKey", json!({ "UserName": user, "ServiceName": service }))
        }
        AdminCommand::DeleteAccessKey { access_key_id, user, service } => {
            ("DeleteAccessKey", json!({ "AccessKeyId": access_key_id, "UserName": user, "ServiceName": service }))
        }
        AdminCommand::List => ("ListPrincipals", json!({})),
        AdminCommand::CreateAccount { account_id } => ("CreateAccount", json!({ "AccountId": account_id })),
        AdminCommand::Reset => ("Reset", json!({})),
        AdminCommand::PutOidcKeys { provider_arn, jwks } => (
            "PutOpenIDConnectProviderKeys",
            json!({ "OpenIDConnectProviderArn": provider_arn, "Jwks": document(jwks)? }),
        ),
        AdminCommand::CreateUser { .. }
        | AdminCommand::DeleteUser { .. }
        | AdminCommand::CreateRole { .. }
        | AdminCommand::DeleteRole { .. }
        | AdminCommand::PutUserPolicy { .. }
        | AdminCommand::PutRolePolicy { .. }
        | AdminCommand::DeleteUserPolicy { .. }
        | AdminCommand::DeleteRolePolicy { .. } => return Err("an IAM action, not an admin operation".to_owned()),
    })
}

/// The access key id and secret: from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, else from the
/// credentials file.
///
/// # Errors
/// When neither has them.
pub fn credentials(conn: &Connection) -> Result<(String, String), String> {
    if let Some(fixed) = &conn.fixed {
        return Ok(fixed.clone());
    }
    if let (Ok(id), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
        return Ok((id, secret));
    }
    let path = &conn.credentials_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no AWS_ACCESS_KEY_ID in the environment and {}: {e}", path.display()))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            .ok_or_else(|| format!("{} has no {name}", path.display()))
    };
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?))
}

/// Runs one admin command and returns the server's JSON answer.
///
/// # Errors
/// A readable message for connection, signing or service errors.
pub async fn run(conn: &Connection, command: &AdminCommand) -> Result<Value, String> {
    // Users, roles, their policies and access keys through the IAM API, as `aws iam` manages
    // them; what IAM has no word for (service principals, accounts, reset, OIDC keys) through
    // the admin API.
    match command {
        AdminCommand::CreateUser { name } => iam(conn, "CreateUser", &[("UserName", name)]).await,
        AdminCommand::DeleteUser { name } => delete_principal(conn, "User", name).await,
        AdminCommand::CreateRole { name, trust_policy } => {
            let trust = document(trust_policy)?;
            iam(conn, "CreateRole", &[("RoleName", name), ("AssumeRolePolicyDocument", &trust)]).await
        }
        AdminCommand::DeleteRole { name } => delete_principal(conn, "Role", name).await,
        AdminCommand::CreateAccessKey { user: Some(user), service: None } => {
            iam(conn, "CreateAccessKey", &[("UserName", user)]).await
        }
        AdminCommand::DeleteAccessKey { access_key_id, user, service: None } => {
            let mut params = vec![("AccessKeyId", access_key_id.as_str())];
            if let Some(user) = user {
                params.push(("UserName", user));
            }
            iam(conn, "DeleteAccessKey", &params).await
        }
        AdminCommand::PutUserPolicy { user, policy_name, document: d } => {
            let d = document(d)?;
            iam(conn, "PutUserPolicy", &[("UserName", user), ("PolicyName", policy_name), ("PolicyDocument", &d)]).await
        }
        AdminCommand::PutRolePolicy { role, policy_name, document: d } => {
            let d = document(d)?;
            iam(conn, "PutRolePolicy", &[("RoleName", role), ("PolicyName", policy_name), ("PolicyDocument", &d)]).await
        }
        AdminCommand::DeleteUserPolicy { user, policy_name } => {
            iam(conn, "DeleteUserPolicy", &[("UserName", user), ("PolicyName", policy_name)]).await
        }
        AdminCommand::DeleteRolePolicy { role, policy_name } => {
            iam(conn, "DeleteRolePolicy", &[("RoleName", role), ("PolicyName", policy_name)]).await
        }
        other => {
            let (operation, body) = request(other)?;
            call(conn, operation, &body).await
        }
    }
}

/// The `member`s of a list in an IAM answer (an empty list comes back as empty text).
fn members<'a>(answer: &'a Value, list: &str) -> &'a [Value] {
    answer.get(list).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Deletes a user or role with what IAM wants removed first: its access keys (a user's), its
/// inline policies, its attached policies and its groups (a user's).
async fn delete_principal(conn: &Connection, kind: &str, name: &str) -> Result<Value, String> {
    let member = format!("{kind}Name");
    let named = [(member.as_str(), name)];
    if kind == "User" {
        for key in members(&iam(conn, "ListAccessKeys", &named).await?, "AccessKeyMetadata") {
            let id = key.get("AccessKeyId").and_then(Value::as_str).unwrap_or_default();
            iam(conn, "DeleteAccessKey", &[("UserName", name), ("AccessKeyId", id)]).await?;
        }
        for group in members(&iam(conn, "ListGroupsForUser", &named).await?, "Groups") {
            let group = group.get("GroupName").and_then(Value::as_str).unwrap_or_default();
            iam(conn, "RemoveUserFromGroup", &[("UserName", name), ("GroupName", group)]).await?;
        }
    }
    for policy in members(&iam(conn, &format!("List{kind}Policies"), &named).await?, "PolicyNames") {
        let policy = policy.as_str().unwrap_or_default();
        iam(conn, &format!("Delete{kind}Policy"), &[(member.as_str(), name), ("PolicyName", policy)]).await?;
    }
    for attached in members(&iam(conn, &format!("ListAttached{kind}Policies"), &named).await?, "AttachedPolicies") {
        let arn = attached.get("PolicyArn").and_then(Value::as_str).unwrap_or_default();
        iam(conn, &format!("Detach{kind}Policy"), &[(member.as_str(), name), ("PolicyArn", arn)]).await?;
    }
    iam(conn, &format!("Delete{kind}"), &named).await
}

/// The endpoint: the flag, else `AWS_ENDPOINT_URL_KMS`, else the default listen address.
pub fn endpoint(conn: &Connection) -> String {
    conn.endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_KMS").ok())
        .unwrap_or_else(|| "http://127.0.0.1:4599".to_owned())
}

/// The CA bundle to trust on top of the system's roots, if any.
pub fn ca_bundle(conn: &Connection) -> Option<&std::path::Path> {
    conn.ca_bundle.as_deref()
}

/// The region to sign for.
pub fn region(conn: &Connection) -> &str {
    &conn.region
}

/// A connection to `endpoint` with the credentials in `credentials_file` (unless
/// `AWS_ACCESS_KEY_ID` is set), as `serve --seed` uses.
pub fn connection(endpoint: String, credentials_file: PathBuf, region: String) -> Connection {
    Connection { endpoint: Some(endpoint), credentials_file, region, ca_bundle: None, fixed: None }
}

/// A connection to `endpoint` as the given access key, whatever the environment says.
pub fn connection_as(endpoint: String, region: String, id: String, secret: String) -> Connection {
    Connection {
        endpoint: Some(endpoint),
        credentials_file: PathBuf::new(),
        region,
        ca_bundle: None,
        fixed: Some((id, secret)),
    }
}

impl Connection {
    /// Also trusts the CA certificates in `bundle` (`serve --seed` trusts the chain it serves).
    #[must_use]
    pub fn trusting(mut self, bundle: PathBuf) -> Self {
        self.ca_bundle = Some(bundle);
        self
    }
}

/// Calls one admin operation (`FerrokmsAdmin.<operation>`) and returns the JSON answer.
///
/// # Errors
/// "Exception: message" for service errors; a readable message for connection or signing
/// errors.
pub async fn call(conn: &Connection, operation: &str, body: &Value) -> Result<Value, String> {
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let target = format!("FerrokmsAdmin.{operation}");
    let (status, bytes) = send(conn, "kms", "application/x-amz-json-1.1", Some(&target), body).await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value.get("__type").and_then(Value::as_str).unwrap_or("error"),
            value.get("message").and_then(Value::as_str).unwrap_or(&String::from_utf8_lossy(&bytes))
        ))
    }
}

/// Calls one IAM action (the query protocol) and returns its result as JSON, as the aws CLI
/// shows it: `{"User": {...}}` for CreateUser, lists of `member`s as arrays.
///
/// # Errors
/// "Code: message" for IAM's errors; a readable message for connection or signing errors.
pub async fn iam(conn: &Connection, action: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let mut body = format!("Action={action}&Version=2010-05-08");
    for (name, value) in params {
        body.push('&');
        body.push_str(name);
        body.push('=');
        body.push_str(&kms_server::query::url_encode(value));
    }
    let (status, bytes) =
        send(conn, "iam", "application/x-www-form-urlencoded; charset=utf-8", None, body.into_bytes()).await?;
    let text = String::from_utf8_lossy(&bytes);
    let tree = xml::parse(&text).map_err(|e| format!("the answer to {action} is not XML: {e}"))?;
    if status.is_success() {
        Ok(tree
            .get(format!("{action}Response"))
            .and_then(|r| r.get(format!("{action}Result")))
            .cloned()
            .unwrap_or(Value::Null))
    } else {
        let error = tree.pointer("/ErrorResponse/Error").cloned().unwrap_or(Value::Null);
        Err(format!(
            "{}: {}",
            error.get("Code").and_then(Value::as_str).unwrap_or("error"),
            error.get("Message").and_then(Value::as_str).unwrap_or_default()
        ))
    }
}

/// Signs and sends one request to the endpoint for `service`; the status and body.
async fn send(
    conn: &Connection,
    service: &str,
    content_type: &str,
    target: Option<&str>,
    body: Vec<u8>,
) -> Result<(http::StatusCode, Bytes), String> {
    let endpoint = endpoint(conn);
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("endpoint {endpoint}: {e}"))?;
    let host = uri.authority().map(ToString::to_string).ok_or_else(|| format!("endpoint {endpoint} has no host"))?;
    let mut builder = http::Request::post(&uri).header("host", &host).header("content-type", content_type);
    if let Some(target) = target {
        builder = builder.header("x-amz-target", target);
    }
    let mut req = builder.body(body.clone()).map_err(|e| e.to_string())?;
    let (id, secret) = credentials(conn)?;
    let identity: Identity = Credentials::new(id, secret, None, None, "ferrokms-admin").into();
    #[allow(clippy::disallowed_methods)] // SigV4 signs with the wall clock, as every AWS client does
    let now = SystemTime::now();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&conn.region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_owned(), v.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        "POST",
        uri.to_string(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    instructions.apply_to_request_http1x(&mut req);
    let req = req.map(|b| Full::new(Bytes::from(b)));
    let resp = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        let tls = crate::trust::client_config(conn.ca_bundle.as_slice())?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(connector).request(req).await
    } else {
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>().request(req).await
    }
    .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, bytes))
}

/// IAM's XML answers as JSON.
mod xml {
    use serde_json::{Map, Value};

    struct Element {
        name: String,
        children: Vec<Element>,
        text: String,
    }

    /// The document as JSON: an element with children is an object of them (one whose
    /// children are all `member`s, an array), one without is its text.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut stack: Vec<Element> = vec![Element { name: String::new(), children: Vec::new(), text: String::new() }];
        for token in xmlparser::Tokenizer::from(text) {
            match token.map_err(|e| e.to_string())? {
                xmlparser::Token::ElementStart { local, .. } => {
                    stack.push(Element { name: local.as_str().to_owned(), children: Vec::new(), text: String::new() });
                }
                xmlparser::Token::Text { text } => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&unescape(text.as_str()));
                    }
                }
                xmlparser::Token::ElementEnd {
                    end: xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty,
                    ..
                } => {
                    let done = stack.pop().ok_or("unbalanced XML")?;
                    stack.last_mut().ok_or("unbalanced XML")?.children.push(done);
                }
                _ => {}
            }
        }
        let root = stack.pop().ok_or("empty XML")?;
        Ok(value(&root))
    }

    fn value(e: &Element) -> Value {
        if e.children.is_empty() {
            return Value::String(e.text.trim().to_owned());
        }
        if e.children.iter().all(|c| c.name == "member") {
            return Value::Array(e.children.iter().map(value).collect());
        }
        let mut map = Map::new();
        for child in &e.children {
            map.insert(child.name.clone(), value(child));
        }
        Value::Object(map)
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
    }
}
