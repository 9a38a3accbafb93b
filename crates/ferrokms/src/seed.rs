//! `ferrokms seed FILE` and `serve --seed FILE`: declarative seeding of keys, aliases, tags, key
//! policies and principals from a YAML file, idempotently.
//!
//! Keys are identified by their alias; principals by their name; access keys by their declared
//! id. Running a file twice changes nothing the second time and says so. A field you declare is
//! made exactly so (a changed description, policy, tag set, rotation period or enabled state is
//! reconciled; undeclared tags and inline policies are removed); a field you omit is left as it
//! is. Nothing undeclared is ever deleted: other keys, principals and access keys stay.
//!
//! Keys go through the KMS API (`aws-sdk-kms`), principals through ferrokms's admin API
//! (`FerrokmsAdmin.*`), both signed with the same credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{self, Connection};
use crate::keys_cmd::{alias_name, describe_error};

/// The seed file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Format version; 1 (the default) is the only one.
    #[serde(default)]
    pub version: Option<u32>,
    /// IAM-style users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// Service principals such as `logs.us-east-1.amazonaws.com`.
    #[serde(default)]
    pub services: Vec<ServiceSpec>,
    /// KMS keys, each identified by its alias.
    #[serde(default)]
    pub keys: Vec<KeySpecEntry>,
}

/// A user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// User name.
    pub name: String,
    /// Inline identity policies by name (a YAML mapping or a JSON string each).
    pub policies: Option<BTreeMap<String, Value>>,
    /// Access keys with fixed ids.
    #[serde(default)]
    pub access_keys: Vec<AccessKeySpec>,
}

/// A role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Who may assume it.
    pub trust_policy: Value,
    /// Inline identity policies by name.
    pub policies: Option<BTreeMap<String, Value>>,
}

/// A service principal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Service name.
    pub name: String,
    /// Access keys with fixed ids.
    #[serde(default)]
    pub access_keys: Vec<AccessKeySpec>,
}

/// A secret written in the seed file (an access key's secret, key material): never printed.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// An access key with a declared id, so that CI can use known credentials.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySpec {
    /// `AKIA` and 12–124 uppercase letters or digits.
    pub id: String,
    /// The secret (40–128 visible ASCII characters); prefer `secret_env`.
    pub secret: Option<SecretText>,
    /// The environment variable that holds the secret.
    pub secret_env: Option<String>,
}

/// `rotation: true | false | DAYS`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum RotationSpec {
    /// On (every 365 days) or off.
    Flag(bool),
    /// On, every this many days (90–2560).
    Days(i32),
}

/// A KMS key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpecEntry {
    /// The alias that identifies the key (`alias/` is added when missing).
    pub alias: String,
    /// More aliases that must point at the key.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Key spec. [default: SYMMETRIC_DEFAULT]
    pub spec: Option<String>,
    /// Key usage. [default: ENCRYPT_DECRYPT]
    pub usage: Option<String>,
    /// Automatic rotation.
    pub rotation: Option<RotationSpec>,
    /// Tags (exactly these, when declared).
    pub tags: Option<BTreeMap<String, String>>,
    /// Key policy (a YAML mapping or a JSON string).
    pub policy: Option<Value>,
    /// Enabled (true) or disabled (false).
    pub enabled: Option<bool>,
    /// Key material to import (base64: 32 bytes for SYMMETRIC_DEFAULT, the raw key for HMAC, a
    /// DER PKCS#8 private key for asymmetric specs): the key is created with Origin EXTERNAL and
    /// the material imported, and imported again whenever the key is found pending import.
    pub key_material: Option<SecretText>,
    /// The environment variable that holds `key_material` (prefer it to the file).
    pub key_material_env: Option<String>,
    /// With key material, the key's id (a UUID), so that a development environment's
    /// ciphertext stays decryptable across fresh starts. Only a server started for development
    /// (`--insecure-dev-credentials`) takes it.
    pub key_id: Option<String>,
}

impl KeySpecEntry {
    /// The declared key material, decoded, if any.
    fn material(&self) -> Result<Option<Vec<u8>>, String> {
        use base64::Engine as _;
        let text = match (&self.key_material, &self.key_material_env) {
            (Some(_), Some(_)) => return Err("declare key_material or key_material_env, not both".to_owned()),
            (Some(text), None) => text.0.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| format!("key_material_env: {var} is not set"))?,
            (None, None) => return Ok(None),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("key material is not base64: {e}"))?;
        Ok(Some(bytes))
    }
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// One line per thing looked at.
    pub lines: Vec<String>,
    /// Things created.
    pub created: usize,
    /// Things changed.
    pub updated: usize,
    /// Things already as declared.
    pub unchanged: usize,
    /// Failures (the run goes on with the other entries).
    pub errors: Vec<String>,
}

impl Summary {
    fn created(&mut self, line: String) {
        self.created += 1;
        self.lines.push(format!("created    {line}"));
    }
    fn updated(&mut self, line: String) {
        self.updated += 1;
        self.lines.push(format!("updated    {line}"));
    }
    fn unchanged(&mut self, line: String) {
        self.unchanged += 1;
        self.lines.push(format!("unchanged  {line}"));
    }
    fn error(&mut self, line: String) {
        self.lines.push(format!("error      {line}"));
        self.errors.push(line);
    }

    /// The report to print.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = self.lines.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        if self.created + self.updated == 0 && self.errors.is_empty() {
            let _ = write!(out, "seed: nothing to change ({} already as declared)", self.unchanged);
        } else {
            let _ = write!(
                out,
                "seed: {} created, {} updated, {} unchanged, {} errors",
                self.created,
                self.updated,
                self.unchanged,
                self.errors.len()
            );
        }
        out
    }
}

/// Reads and checks a seed file without contacting anyone.
///
/// # Errors
/// The YAML error with its line and column, or the first entry that is not valid, named.
pub fn load(path: &Path) -> Result<SeedFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("seed file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("seed file {}: {e}", path.display()))
}

/// Parses and checks seed text.
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str) -> Result<SeedFile, String> {
    let file: SeedFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    validate(&file)?;
    Ok(file)
}

fn policy_text(value: &Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(text) => {
            serde_json::from_str::<Value>(text).map_err(|e| format!("{what} is not valid JSON: {e}"))?;
            Ok(text.clone())
        }
        Value::Object(_) => serde_json::to_string(value).map_err(|e| format!("{what}: {e}")),
        _ => Err(format!("{what} must be a mapping or a JSON string")),
    }
}

fn policy_value(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => serde_json::from_str(text).ok(),
        other => Some(other.clone()),
    }
}

fn secret_of(spec: &AccessKeySpec) -> Result<String, String> {
    match (&spec.secret, &spec.secret_env) {
        (Some(secret), None) => Ok(secret.0.clone()),
        (None, Some(var)) => std::env::var(var).map_err(|_| format!("access key {}: ${var} is not set", spec.id)),
        _ => Err(format!("access key {}: give exactly one of secret and secret_env", spec.id)),
    }
}

fn validate(file: &SeedFile) -> Result<(), String> {
    if file.version.is_some_and(|v| v != 1) {
        return Err("version: only version 1 is known".to_owned());
    }
    let mut names = BTreeSet::new();
    for (i, user) in file.users.iter().enumerate() {
        if !names.insert(("user", user.name.clone())) {
            return Err(format!("users[{i}]: user {} is declared twice", user.name));
        }
        for (name, doc) in user.policies.iter().flatten() {
            policy_text(doc, &format!("users[{i}] ({}): policy {name}", user.name))?;
        }
    }
    for (i, role) in file.roles.iter().enumerate() {
        if !names.insert(("role", role.name.clone())) {
            return Err(format!("roles[{i}]: role {} is declared twice", role.name));
        }
        policy_text(&role.trust_policy, &format!("roles[{i}] ({}): trust_policy", role.name))?;
        for (name, doc) in role.policies.iter().flatten() {
            policy_text(doc, &format!("roles[{i}] ({}): policy {name}", role.name))?;
        }
    }
    let mut key_ids = BTreeSet::new();
    let access_keys =
        file.users.iter().flat_map(|u| &u.access_keys).chain(file.services.iter().flat_map(|s| &s.access_keys));
    for spec in access_keys {
        if !key_ids.insert(spec.id.clone()) {
            return Err(format!("access key {} is declared twice", spec.id));
        }
        secret_of(spec)?;
    }
    let mut aliases = BTreeSet::new();
    for (i, key) in file.keys.iter().enumerate() {
        let alias = alias_name(&key.alias);
        let at = format!("keys[{i}] ({alias})");
        for name in std::iter::once(&key.alias).chain(&key.aliases) {
            let name = alias_name(name);
            if name.starts_with("alias/aws/") {
                return Err(format!("{at}: alias {name}: the alias/aws/ prefix is reserved for AWS managed keys"));
            }
            if !aliases.insert(name.clone()) {
                return Err(format!("{at}: alias {name} is declared twice"));
            }
        }
        if let Some(policy) = &key.policy {
            policy_text(policy, &format!("{at}: policy"))?;
        }
        if key.key_id.is_some() && key.key_material.is_none() && key.key_material_env.is_none() {
            return Err(format!("{at}: key_id is only for keys with key_material (pinned development keys)"));
        }
        if key.key_material.is_some() && key.key_material_env.is_some() {
            return Err(format!("{at}: declare key_material or key_material_env, not both"));
        }
        if key.key_material.is_some() {
            key.material().map_err(|e| format!("{at}: {e}"))?;
        }
        if (key.key_material.is_some() || key.key_material_env.is_some())
            && matches!(key.rotation, Some(RotationSpec::Days(_) | RotationSpec::Flag(true)))
        {
            return Err(format!("{at}: keys of imported key material do not rotate automatically"));
        }
        let symmetric = key.spec.as_deref().is_none_or(|s| s == "SYMMETRIC_DEFAULT");
        match key.rotation {
            Some(RotationSpec::Days(days)) if !(90..=2560).contains(&days) => {
                return Err(format!("{at}: rotation must be true, false or 90-2560 days, not {days}"));
            }
            Some(RotationSpec::Days(_) | RotationSpec::Flag(true)) if !symmetric => {
                return Err(format!("{at}: only SYMMETRIC_DEFAULT keys rotate automatically"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Applies a seed file through `conn` (endpoint, region, credentials).
///
/// # Errors
/// When the credentials cannot be found; every other failure is listed in the summary's errors.
pub async fn apply(conn: &Connection, file: &SeedFile) -> Result<Summary, String> {
    let (id, secret) = admin::credentials(conn)?;
    let endpoint = admin::endpoint(conn);
    let kms = kms_client(
        &endpoint,
        admin::region(conn),
        Credentials::new(id, secret, None, None, "ferrokms-seed"),
        admin::ca_bundle(conn),
    )?;
    let mut summary = Summary::default();
    for user in &file.users {
        seed_user(conn, &endpoint, user, &mut summary).await;
    }
    for role in &file.roles {
        seed_role(conn, role, &mut summary).await;
    }
    for service in &file.services {
        seed_service(conn, &endpoint, service, &mut summary).await;
    }
    for key in &file.keys {
        let alias = alias_name(&key.alias);
        if let Err(e) = seed_key(conn, &kms, key, &alias, &mut summary).await {
            summary.error(format!("key {alias}: {e}"));
        }
    }
    Ok(summary)
}

fn kms_client(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
    ca_bundle: Option<&std::path::Path>,
) -> Result<Client, String> {
    let mut config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials);
    if let Some(http) = crate::trust::sdk_http_client(ca_bundle)? {
        config = config.http_client(http);
    }
    Ok(Client::from_conf(config.build()))
}

/// The service's exception name in an admin error ("Exception: message").
fn admin_code(error: &str) -> &str {
    error.split(':').next().unwrap_or_default()
}

/// GetPrincipal, or `None` when it does not exist.
async fn principal(conn: &Connection, field: &str, name: &str) -> Result<Option<Value>, String> {
    match admin::call(conn, "GetPrincipal", &json!({ field: name })).await {
        Ok(answer) => Ok(Some(answer)),
        Err(e) if admin_code(&e) == "NotFoundException" => Ok(None),
        Err(e) => Err(e),
    }
}

async fn seed_user(conn: &Connection, endpoint: &str, user: &UserSpec, summary: &mut Summary) {
    let what = format!("user {}", user.name);
    let current = match principal(conn, "UserName", &user.name).await {
        Ok(current) => current,
        Err(e) => return summary.error(format!("{what}: {e}")),
    };
    let current = match current {
        Some(current) => {
            summary.unchanged(what.clone());
            current
        }
        None => match admin::call(conn, "CreateUser", &json!({ "UserName": user.name })).await {
            Ok(_) => {
                summary.created(what.clone());
                json!({})
            }
            Err(e) => return summary.error(format!("{what}: {e}")),
        },
    };
    if let Some(policies) = &user.policies {
        seed_policies(conn, ("UserName", "User", &user.name), policies, &current, summary).await;
    }
    for key in &user.access_keys {
        seed_access_key(conn, endpoint, ("UserName", &user.name), key, &current, summary).await;
    }
}

async fn seed_service(conn: &Connection, endpoint: &str, service: &ServiceSpec, summary: &mut Summary) {
    let what = format!("service principal {}", service.name);
    let current = match principal(conn, "ServiceName", &service.name).await {
        Ok(Some(current)) => {
            summary.unchanged(what.clone());
            current
        }
        Ok(None) => match admin::call(conn, "CreateServicePrincipal", &json!({ "ServiceName": service.name })).await {
            Ok(_) => {
                summary.created(what.clone());
                json!({})
            }
            Err(e) => return summary.error(format!("{what}: {e}")),
        },
        Err(e) => return summary.error(format!("{what}: {e}")),
    };
    for key in &service.access_keys {
        seed_access_key(conn, endpoint, ("ServiceName", &service.name), key, &current, summary).await;
    }
}

async fn seed_role(conn: &Connection, role: &RoleSpec, summary: &mut Summary) {
    let what = format!("role {}", role.name);
    let Ok(trust) = policy_text(&role.trust_policy, "trust_policy") else {
        return summary.error(format!("{what}: trust_policy is not valid JSON"));
    };
    let create = json!({ "RoleName": role.name, "AssumeRolePolicyDocument": trust });
    let mut current = match principal(conn, "RoleName", &role.name).await {
        Ok(current) => current,
        Err(e) => return summary.error(format!("{what}: {e}")),
    };
    if let Some(existing) = &current {
        let same = existing["AssumeRolePolicyDocument"]
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .is_some_and(|t| Some(t) == policy_value(&role.trust_policy));
        if same {
            summary.unchanged(what.clone());
        } else {
            // The admin API cannot change a trust policy in place: replace the role (its inline
            // policies are put again below).
            let replaced = async {
                admin::call(conn, "DeleteRole", &json!({ "RoleName": role.name })).await?;
                admin::call(conn, "CreateRole", &create).await
            };
            match replaced.await {
                Ok(_) => summary.updated(format!("{what} (trust policy changed: role replaced)")),
                Err(e) => return summary.error(format!("{what}: {e}")),
            }
            // Its inline policies went with it; those declared are put again.
            current = None;
            if role.policies.is_none() {
                summary.error(format!("{what}: replaced, and its former inline policies are gone (none declared)"));
            }
        }
    } else {
        match admin::call(conn, "CreateRole", &create).await {
            Ok(_) => summary.created(what.clone()),
            Err(e) => return summary.error(format!("{what}: {e}")),
        }
    }
    if let Some(policies) = &role.policies {
        let current = current.unwrap_or_else(|| json!({}));
        seed_policies(conn, ("RoleName", "Role", &role.name), policies, &current, summary).await;
    }
}

/// Makes a principal's inline policies exactly `declared`.
async fn seed_policies(
    conn: &Connection,
    (field, kind, name): (&str, &str, &str),
    declared: &BTreeMap<String, Value>,
    current: &Value,
    summary: &mut Summary,
) {
    let existing: BTreeMap<String, Option<Value>> = current["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let policy_name = p["PolicyName"].as_str()?.to_owned();
            Some((policy_name, p["PolicyDocument"].as_str().and_then(|t| serde_json::from_str(t).ok())))
        })
        .collect();
    for (policy_name, document) in declared {
        let what = format!("policy {policy_name} of {} {name}", kind.to_lowercase());
        let Ok(text) = policy_text(document, &what) else {
            summary.error(format!("{what}: not valid JSON"));
            continue;
        };
        let before = existing.get(policy_name);
        if before.is_some_and(|b| b.is_some() && *b == policy_value(document)) {
            summary.unchanged(what);
            continue;
        }
        let body = json!({ field: name, "PolicyName": policy_name, "PolicyDocument": text });
        match admin::call(conn, &format!("Put{kind}Policy"), &body).await {
            Ok(_) if before.is_some() => summary.updated(what),
            Ok(_) => summary.created(what),
            Err(e) => summary.error(format!("{what}: {e}")),
        }
    }
    for policy_name in existing.keys().filter(|n| !declared.contains_key(*n)) {
        let what = format!("policy {policy_name} of {} {name} (not declared: removed)", kind.to_lowercase());
        match admin::call(conn, &format!("Delete{kind}Policy"), &json!({ field: name, "PolicyName": policy_name }))
            .await
        {
            Ok(_) => summary.updated(what),
            Err(e) => summary.error(format!("{what}: {e}")),
        }
    }
}

/// Whether `secret` is the secret of access key `id`: a signed ListKeys that is authenticated
/// (answered, or refused for lack of permission) proves it; a signature error disproves it.
async fn secret_matches(conn: &Connection, endpoint: &str, id: &str, secret: &str) -> Result<bool, String> {
    let credentials = Credentials::new(id, secret, None, None, "ferrokms-seed-probe");
    let probe = kms_client(endpoint, admin::region(conn), credentials, admin::ca_bundle(conn))?;
    match probe.list_keys().limit(1).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error().and_then(ProvideErrorMetadata::code) {
            Some("InvalidSignatureException" | "IncompleteSignatureException" | "UnrecognizedClientException") => {
                Ok(false)
            }
            Some(_) => Ok(true),
            None => Err(describe_error(&e)),
        },
    }
}

async fn seed_access_key(
    conn: &Connection,
    endpoint: &str,
    (field, owner): (&str, &str),
    spec: &AccessKeySpec,
    current: &Value,
    summary: &mut Summary,
) {
    let what = format!("access key {} of {owner}", spec.id);
    let secret = match secret_of(spec) {
        Ok(secret) => secret,
        Err(e) => return summary.error(e),
    };
    let held = current["AccessKeyIds"].as_array().into_iter().flatten().any(|k| k.as_str() == Some(spec.id.as_str()));
    let create = json!({ field: owner, "AccessKeyId": spec.id, "SecretAccessKey": secret });
    if held {
        match secret_matches(conn, endpoint, &spec.id, &secret).await {
            Ok(true) => return summary.unchanged(what),
            Ok(false) => {
                let replaced = async {
                    admin::call(conn, "DeleteAccessKey", &json!({ "AccessKeyId": spec.id, field: owner })).await?;
                    admin::call(conn, "CreateAccessKey", &create).await
                };
                match replaced.await {
                    Ok(_) => summary.updated(format!("{what} (secret changed)")),
                    Err(e) => summary.error(format!("{what}: {e}")),
                }
            }
            Err(e) => summary.error(format!("{what}: cannot check the secret: {e}")),
        }
        return;
    }
    match admin::call(conn, "CreateAccessKey", &create).await {
        Ok(_) => summary.created(what),
        Err(e) if admin_code(&e) == "AlreadyExistsException" => {
            summary.error(format!("{what}: the id is taken by another principal"));
        }
        Err(e) => summary.error(format!("{what}: {e}")),
    }
}

async fn seed_key(
    conn: &Connection,
    kms: &Client,
    spec: &KeySpecEntry,
    alias: &str,
    summary: &mut Summary,
) -> Result<(), String> {
    let described = match kms.describe_key().key_id(alias).send().await {
        Ok(answer) => answer.key_metadata,
        Err(e) if e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("NotFoundException") => None,
        Err(e) => return Err(describe_error(&e)),
    };
    let material = spec.material()?;
    let Some(metadata) = described else { return create_key(conn, kms, spec, alias, material, summary).await };
    let key_id = metadata.key_id.clone();
    let mut changes: Vec<String> = Vec::new();
    if metadata.key_manager.as_ref().is_some_and(|m| m.as_str() != "CUSTOMER") {
        return Err("the alias names an AWS managed key".to_owned());
    }
    if let Some(pinned) = spec.key_id.as_deref().filter(|pinned| *pinned != key_id) {
        return Err(format!("the alias names key {key_id}, the file pins {pinned}"));
    }
    // Imported material that was deleted or expired comes back.
    let mut state = metadata.key_state.clone();
    if let (Some(KeyState::PendingImport), Some(material)) = (&state, &material) {
        import_material(kms, &key_id, spec.spec.as_deref(), material).await?;
        changes.push("key material imported".to_owned());
        state = Some(KeyState::Enabled);
    }
    match state {
        Some(KeyState::Enabled | KeyState::Disabled) => {}
        Some(state) => {
            return Err(format!(
                "the key is {}; cancel the deletion (ferrokms keys cancel-deletion {alias}) or choose another alias",
                state.as_str()
            ));
        }
        None => return Err("DescribeKey gave no KeyState".to_owned()),
    }
    let spec_now = metadata.key_spec.as_ref().map_or("", KeySpec::as_str);
    if spec.spec.as_deref().is_some_and(|s| s != spec_now) {
        return Err(format!(
            "the key's spec is {spec_now}, the file says {}; a key's spec cannot change",
            spec.spec.as_deref().unwrap_or_default()
        ));
    }
    let usage_now = metadata.key_usage.as_ref().map_or("", KeyUsageType::as_str);
    if spec.usage.as_deref().is_some_and(|u| u != usage_now) {
        return Err(format!(
            "the key's usage is {usage_now}, the file says {}; a key's usage cannot change",
            spec.usage.as_deref().unwrap_or_default()
        ));
    }
    let disabled = metadata.key_state == Some(KeyState::Disabled);
    if spec.enabled == Some(true) && disabled {
        kms.enable_key().key_id(&key_id).send().await.map_err(|e| describe_error(&e))?;
        changes.push("enabled".to_owned());
    }
    if let Some(description) = &spec.description
        && metadata.description.as_deref().unwrap_or_default() != description
    {
        kms.update_key_description()
            .key_id(&key_id)
            .description(description)
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
        changes.push("description".to_owned());
    }
    if let Some(policy) = &spec.policy {
        let now =
            kms.get_key_policy().key_id(&key_id).policy_name("default").send().await.map_err(|e| describe_error(&e))?;
        let now: Option<Value> = now.policy.and_then(|t| serde_json::from_str(&t).ok());
        if now != policy_value(policy) {
            let text = policy_text(policy, "policy")?;
            kms.put_key_policy()
                .key_id(&key_id)
                .policy_name("default")
                .policy(text)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
            changes.push("policy".to_owned());
        }
    }
    if let Some(tags) = &spec.tags
        && reconcile_tags(kms, &key_id, tags).await?
    {
        changes.push("tags".to_owned());
    }
    if let Some(rotation) = spec.rotation
        && reconcile_rotation(kms, &key_id, rotation).await?
    {
        changes.push("rotation".to_owned());
    }
    if spec.enabled == Some(false) && !disabled {
        kms.disable_key().key_id(&key_id).send().await.map_err(|e| describe_error(&e))?;
        changes.push("disabled".to_owned());
    }
    if ensure_aliases(kms, &key_id, &spec.aliases).await? {
        changes.push("aliases".to_owned());
    }
    if changes.is_empty() {
        summary.unchanged(format!("key {alias} ({key_id})"));
    } else {
        summary.updated(format!("key {alias} ({key_id}): {}", changes.join(", ")));
    }
    Ok(())
}

/// Imports `material` into `key_id` as AWS's procedure has it: a wrapping key and token from
/// GetParametersForImport, the material wrapped here, then ImportKeyMaterial (not expiring).
async fn import_material(kms: &Client, key_id: &str, spec: Option<&str>, material: &[u8]) -> Result<(), String> {
    use aws_sdk_kms::types::{AlgorithmSpec, ExpirationModelType, WrappingKeySpec};
    let symmetric = spec.is_none_or(|s| s == "SYMMETRIC_DEFAULT" || s.starts_with("HMAC_"));
    let (algorithm, wrapping) = if symmetric {
        (kms_crypto::WrappingAlgorithm::RsaesOaepSha256, AlgorithmSpec::RsaesOaepSha256)
    } else {
        (kms_crypto::WrappingAlgorithm::RsaAesKeyWrapSha256, AlgorithmSpec::RsaAesKeyWrapSha256)
    };
    let params = kms
        .get_parameters_for_import()
        .key_id(key_id)
        .wrapping_algorithm(wrapping)
        .wrapping_key_spec(WrappingKeySpec::Rsa3072)
        .send()
        .await
        .map_err(|e| describe_error(&e))?;
    let public = params.public_key.ok_or("GetParametersForImport answered without PublicKey")?;
    let token = params.import_token.ok_or("GetParametersForImport answered without ImportToken")?;
    let wrapped = kms_crypto::wrap_for_import(public.as_ref(), algorithm, material, &kms_crypto::SystemRng)
        .map_err(|e| format!("cannot wrap the key material: {e}"))?;
    kms.import_key_material()
        .key_id(key_id)
        .import_token(token)
        .encrypted_key_material(aws_sdk_kms::primitives::Blob::new(wrapped))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .map_err(|e| describe_error(&e))?;
    Ok(())
}

async fn create_key(
    conn: &Connection,
    kms: &Client,
    spec: &KeySpecEntry,
    alias: &str,
    material: Option<Vec<u8>>,
    summary: &mut Summary,
) -> Result<(), String> {
    if let Some(material) = material {
        return create_imported_key(conn, kms, spec, alias, &material, summary).await;
    }
    let mut request = create_request(kms, spec);
    if let Some(policy) = &spec.policy {
        request = request.policy(policy_text(policy, "policy")?);
    }
    for (key, value) in spec.tags.iter().flatten() {
        request = request.tags(Tag::builder().tag_key(key).tag_value(value).build().map_err(|e| e.to_string())?);
    }
    let created = request.send().await.map_err(|e| describe_error(&e))?;
    let key_id = created.key_metadata.map(|m| m.key_id).ok_or("CreateKey answered without KeyMetadata")?;
    // From here on the key exists: a failure names it so that a rerun (which finds it through
    // the alias, once that exists) or an operator can finish the job.
    settle_new_key(kms, spec, alias, &key_id, false).await.map_err(|e| format!("created key {key_id}, then: {e}"))?;
    summary.created(format!("key {alias} ({key_id})"));
    Ok(())
}

/// A CreateKey request with the entry's description, spec and usage.
fn create_request(
    kms: &Client,
    spec: &KeySpecEntry,
) -> aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder {
    let mut request = kms.create_key();
    if let Some(description) = &spec.description {
        request = request.description(description);
    }
    if let Some(key_spec) = &spec.spec {
        request = request.key_spec(KeySpec::from(key_spec.as_str()));
    }
    if let Some(usage) = &spec.usage {
        request = request.key_usage(KeyUsageType::from(usage.as_str()));
    }
    request
}

/// What a new key gets once it exists: its alias, then (when it was not created with them) its
/// policy and tags, its rotation, its enabled state and its other aliases.
async fn settle_new_key(
    kms: &Client,
    spec: &KeySpecEntry,
    alias: &str,
    key_id: &str,
    policy_and_tags: bool,
) -> Result<(), String> {
    kms.create_alias().alias_name(alias).target_key_id(key_id).send().await.map_err(|e| describe_error(&e))?;
    if policy_and_tags {
        if let Some(policy) = &spec.policy {
            let text = policy_text(policy, "policy")?;
            kms.put_key_policy().key_id(key_id).policy(text).send().await.map_err(|e| describe_error(&e))?;
        }
        if let Some(tags) = &spec.tags {
            reconcile_tags(kms, key_id, tags).await?;
        }
    }
    if let Some(rotation) = spec.rotation {
        reconcile_rotation(kms, key_id, rotation).await?;
    }
    if spec.enabled == Some(false) {
        kms.disable_key().key_id(key_id).send().await.map_err(|e| describe_error(&e))?;
    }
    ensure_aliases(kms, key_id, &spec.aliases).await.map(|_| ())
}

/// A key of imported material: created with Origin EXTERNAL (or, with a pinned id, through
/// `FerrokmsAdmin.CreatePinnedKey`), its material imported, then named and set as declared.
async fn create_imported_key(
    conn: &Connection,
    kms: &Client,
    spec: &KeySpecEntry,
    alias: &str,
    material: &[u8],
    summary: &mut Summary,
) -> Result<(), String> {
    let key_id = match &spec.key_id {
        Some(pinned) => {
            let body = json!({
                "KeyId": pinned,
                "KeySpec": spec.spec,
                "KeyUsage": spec.usage,
                "Description": spec.description,
            });
            let created = admin::call(conn, "CreatePinnedKey", &body).await?;
            created
                .pointer("/KeyMetadata/KeyId")
                .and_then(Value::as_str)
                .ok_or("CreatePinnedKey answered without KeyMetadata")?
                .to_owned()
        }
        None => {
            let request = create_request(kms, spec).origin(aws_sdk_kms::types::OriginType::External);
            let created = request.send().await.map_err(|e| describe_error(&e))?;
            created.key_metadata.map(|m| m.key_id).ok_or("CreateKey answered without KeyMetadata")?
        }
    };
    let finish = async {
        import_material(kms, &key_id, spec.spec.as_deref(), material).await?;
        settle_new_key(kms, spec, alias, &key_id, true).await
    };
    finish.await.map_err(|e| format!("created key {key_id}, then: {e}"))?;
    summary.created(format!("key {alias} ({key_id}, imported key material)"));
    Ok(())
}

/// Makes the key's tags exactly `declared`; returns whether anything changed.
async fn reconcile_tags(kms: &Client, key_id: &str, declared: &BTreeMap<String, String>) -> Result<bool, String> {
    let mut now = BTreeMap::new();
    let mut pages = kms.list_resource_tags().key_id(key_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        for tag in page.map_err(|e| describe_error(&e))?.tags.unwrap_or_default() {
            now.insert(tag.tag_key, tag.tag_value);
        }
    }
    let stale: Vec<String> = now.keys().filter(|k| !declared.contains_key(*k)).cloned().collect();
    let mut missing = Vec::new();
    for (key, value) in declared.iter().filter(|(k, v)| now.get(*k) != Some(*v)) {
        missing.push(Tag::builder().tag_key(key).tag_value(value).build().map_err(|e| e.to_string())?);
    }
    if !stale.is_empty() {
        kms.untag_resource()
            .key_id(key_id)
            .set_tag_keys(Some(stale.clone()))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
    }
    if !missing.is_empty() {
        kms.tag_resource()
            .key_id(key_id)
            .set_tags(Some(missing.clone()))
            .send()
            .await
            .map_err(|e| describe_error(&e))?;
    }
    Ok(!stale.is_empty() || !missing.is_empty())
}

/// Makes automatic rotation as declared; returns whether anything changed.
async fn reconcile_rotation(kms: &Client, key_id: &str, rotation: RotationSpec) -> Result<bool, String> {
    let want = match rotation {
        RotationSpec::Flag(false) => None,
        RotationSpec::Flag(true) => Some(365),
        RotationSpec::Days(days) => Some(days),
    };
    let now = kms.get_key_rotation_status().key_id(key_id).send().await.map_err(|e| describe_error(&e))?;
    let current = now.key_rotation_enabled.then_some(now.rotation_period_in_days.unwrap_or(365));
    if current == want {
        return Ok(false);
    }
    match want {
        Some(days) => {
            kms.enable_key_rotation()
                .key_id(key_id)
                .rotation_period_in_days(days)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
        }
        None => {
            kms.disable_key_rotation().key_id(key_id).send().await.map_err(|e| describe_error(&e))?;
        }
    }
    Ok(true)
}

/// Points every extra alias at the key (creating it, or moving it from another key); returns
/// whether anything changed.
async fn ensure_aliases(kms: &Client, key_id: &str, aliases: &[String]) -> Result<bool, String> {
    if aliases.is_empty() {
        return Ok(false);
    }
    let mut now = BTreeSet::new();
    let mut pages = kms.list_aliases().key_id(key_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        now.extend(
            page.map_err(|e| describe_error(&e))?.aliases.unwrap_or_default().into_iter().filter_map(|a| a.alias_name),
        );
    }
    let mut changed = false;
    for alias in aliases.iter().map(|a| alias_name(a)).filter(|a| !now.contains(a)) {
        match kms.create_alias().alias_name(&alias).target_key_id(key_id).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("AlreadyExistsException") => {
                kms.update_alias()
                    .alias_name(&alias)
                    .target_key_id(key_id)
                    .send()
                    .await
                    .map_err(|e| describe_error(&e))?;
            }
            Err(e) => return Err(describe_error(&e)),
        }
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_the_file_never_print() {
        let file = parse(concat!(
            "users:\n  - name: ci\n    access_keys:\n      - id: AKIAEXAMPLE0000001\n",
            "        secret: seed-secret-canary-0123456789abcdefghijklmnopqrstuv\n",
            "keys:\n  - alias: dev\n    key_material: QkFTRTY0LUtFWS1NQVRFUklBTC1DQU5BUlktMDAwMDA=\n",
        ))
        .unwrap();
        let shown = format!("{file:?}");
        assert!(!shown.contains("canary") && !shown.contains("QkFTRTY0"), "{shown}");
        assert!(shown.contains("[REDACTED]"));
    }

    #[test]
    fn yaml_errors_name_the_line() {
        let err = parse("keys:\n  - alias: alias/a\n    rotaton: true\n").unwrap_err();
        assert!(err.contains("unknown field `rotaton`") && err.contains("line 3"), "{err}");
        let err = parse("keys:\n  - alias: [\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn entries_are_checked_before_anything_is_applied() {
        let err = parse("keys:\n  - alias: a\n  - alias: alias/a\n").unwrap_err();
        assert!(err.contains("keys[1] (alias/a): alias alias/a is declared twice"), "{err}");
        let err = parse("keys:\n  - alias: a\n    rotation: 30\n").unwrap_err();
        assert!(err.contains("90-2560 days, not 30"), "{err}");
        let err = parse("keys:\n  - alias: s\n    spec: ECC_NIST_P256\n    rotation: true\n").unwrap_err();
        assert!(err.contains("only SYMMETRIC_DEFAULT"), "{err}");
        let err = parse("keys:\n  - alias: aws/s3\n").unwrap_err();
        assert!(err.contains("reserved"), "{err}");
        let err = parse("keys:\n  - alias: p\n    policy: '{not json'\n").unwrap_err();
        assert!(err.contains("keys[0] (alias/p): policy is not valid JSON"), "{err}");
        let err = parse("users:\n  - name: ci\n    access_keys:\n      - id: AKIAEXAMPLE0000001\n").unwrap_err();
        assert!(err.contains("exactly one of secret and secret_env"), "{err}");
        assert!(parse("version: 2\n").unwrap_err().contains("version"));
        let ok = parse("keys:\n  - alias: orders\n    rotation: 180\n    tags: {team: orders}\n").unwrap();
        assert_eq!(ok.keys.len(), 1);
    }
}
