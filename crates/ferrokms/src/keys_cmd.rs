//! `ferrokms keys …`: the common key lifecycle tasks with readable tables. The aws CLI remains
//! the full interface; these commands call the same KMS API through `aws-sdk-kms`, so they work
//! against ferrokms or AWS KMS alike.
//!
//! Endpoint, region and credentials come from the usual AWS environment and files (the
//! `aws-config` default chain: `AWS_ENDPOINT_URL_KMS`/`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`…, `AWS_PROFILE`, `~/.aws/config`), overridable with flags.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::{DateTime, DateTimeFormat};
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType, Tag};
use clap::{Args, Subcommand};

/// Where and as whom to connect; anything unset comes from the AWS environment and config files.
#[derive(Args, Clone, Default)]
pub struct KmsArgs {
    /// KMS endpoint. [default: $AWS_ENDPOINT_URL_KMS, $AWS_ENDPOINT_URL, the profile's, else AWS]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Region. [default: $AWS_REGION, the profile's, else us-east-1]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Named profile from ~/.aws/config and ~/.aws/credentials. [default: $AWS_PROFILE]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

/// Key lifecycle commands.
#[derive(Subcommand, Clone)]
pub enum KeysCommand {
    /// List keys: alias, key id, state, usage, spec, rotation, created.
    List,
    /// Create a symmetric encryption key (or another spec) with an alias, tags and rotation.
    Create {
        /// Alias for the key (alias/NAME; the prefix is added when missing).
        #[arg(long)]
        alias: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Turn on automatic rotation every DAYS days (90–2560).
        #[arg(long, value_name = "DAYS")]
        rotate: Option<i32>,
        /// Tag KEY=VALUE (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
        /// Key spec. [default: SYMMETRIC_DEFAULT]
        #[arg(long, value_name = "SPEC")]
        spec: Option<String>,
        /// Key usage. [default: ENCRYPT_DECRYPT]
        #[arg(long, value_name = "USAGE")]
        usage: Option<String>,
    },
    /// Show one key: metadata, aliases, rotation and tags.
    Show {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
    },
    /// Rotate the key material now (RotateKeyOnDemand).
    Rotate {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
    },
    /// Enable a key.
    Enable {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
    },
    /// Disable a key.
    Disable {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
    },
    /// Schedule the deletion of a key after a waiting period.
    ScheduleDeletion {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
        /// Waiting period in days (7–30).
        #[arg(long, default_value_t = 30)]
        days: i32,
    },
    /// Cancel a scheduled deletion (the key stays disabled until enabled).
    CancelDeletion {
        /// Key id, key ARN, alias name or alias ARN.
        key: String,
    },
}

fn parse_tag(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("tag '{text}' is not KEY=VALUE"))
}

/// A KMS client configured from the AWS environment, files and the flags.
///
/// # Errors
/// An unreadable `AWS_CA_BUNDLE`.
pub async fn client(args: &KmsArgs) -> Result<Client, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(http) = crate::trust::sdk_http_client(crate::trust::env_ca_bundle().as_deref())? {
        loader = loader.http_client(http);
    }
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let config = loader.load().await;
    let mut builder = aws_sdk_kms::config::Builder::from(&config);
    if config.region().is_none() {
        builder = builder.region(aws_config::Region::new("us-east-1"));
    }
    Ok(Client::from_conf(builder.build()))
}

/// "Code: message" for an SDK error.
pub fn describe_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            format!("{}: {}", err.code().unwrap_or("error"), err.message().unwrap_or_default())
        }
        // "dispatch failure: … : Connection refused": each cause once, without Debug dumps.
        other => {
            let mut parts = vec![other.to_string()];
            let mut cause = std::error::Error::source(other);
            while let Some(error) = cause {
                let text = error.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                cause = error.source();
            }
            parts.join(": ")
        }
    }
}

/// Runs one `keys` command and returns what to print.
///
/// # Errors
/// The AWS exception and message of the failing call.
pub async fn run(args: &KmsArgs, command: &KeysCommand) -> Result<String, String> {
    let kms = client(args).await?;
    match command {
        KeysCommand::List => list(&kms).await,
        KeysCommand::Create { alias, description, rotate, tags, spec, usage } => {
            let mut request = kms.create_key();
            if let Some(description) = description {
                request = request.description(description);
            }
            if let Some(spec) = spec {
                request = request.key_spec(KeySpec::from(spec.as_str()));
            }
            if let Some(usage) = usage {
                request = request.key_usage(KeyUsageType::from(usage.as_str()));
            }
            for (key, value) in tags {
                let tag = Tag::builder().tag_key(key).tag_value(value).build().map_err(|e| e.to_string())?;
                request = request.tags(tag);
            }
            let created = request.send().await.map_err(|e| describe_error(&e))?;
            let key_id = created.key_metadata.map(|m| m.key_id).ok_or("CreateKey answered without KeyMetadata")?;
            if let Some(days) = rotate {
                kms.enable_key_rotation().key_id(&key_id).rotation_period_in_days(*days).send().await.map_err(|e| {
                    format!("key {key_id} was created, but rotation was not enabled: {}", describe_error(&e))
                })?;
            }
            if let Some(alias) = alias {
                let alias = alias_name(alias);
                kms.create_alias().alias_name(&alias).target_key_id(&key_id).send().await.map_err(|e| {
                    format!("key {key_id} was created, but alias {alias} was not: {}", describe_error(&e))
                })?;
            }
            show(&kms, &key_id).await
        }
        KeysCommand::Show { key } => show(&kms, key).await,
        KeysCommand::Rotate { key } => {
            let answer = kms
                .rotate_key_on_demand()
                .key_id(key_id(&kms, key).await?)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
            Ok(format!("rotated {}: new key material is in use", answer.key_id.unwrap_or_else(|| key.clone())))
        }
        KeysCommand::Enable { key } => {
            kms.enable_key().key_id(key_id(&kms, key).await?).send().await.map_err(|e| describe_error(&e))?;
            Ok(format!("enabled {key}"))
        }
        KeysCommand::Disable { key } => {
            kms.disable_key().key_id(key_id(&kms, key).await?).send().await.map_err(|e| describe_error(&e))?;
            Ok(format!("disabled {key}"))
        }
        KeysCommand::ScheduleDeletion { key, days } => {
            let answer = kms
                .schedule_key_deletion()
                .key_id(key_id(&kms, key).await?)
                .pending_window_in_days(*days)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
            let when = answer.deletion_date.as_ref().map_or_else(|| "-".to_owned(), date);
            Ok(format!(
                "{} is PendingDeletion and will be deleted on {when}; `ferrokms keys cancel-deletion` stops it",
                answer.key_id.unwrap_or_else(|| key.clone())
            ))
        }
        KeysCommand::CancelDeletion { key } => {
            let answer = kms
                .cancel_key_deletion()
                .key_id(key_id(&kms, key).await?)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
            Ok(format!(
                "deletion of {} cancelled; the key is Disabled until `ferrokms keys enable`",
                answer.key_id.unwrap_or_else(|| key.clone())
            ))
        }
    }
}

/// The key id behind an alias (operations such as DisableKey take only key ids and ARNs); key
/// ids and ARNs are passed through untouched.
async fn key_id(kms: &Client, key: &str) -> Result<String, String> {
    if !(key.starts_with("alias/") || key.contains(":alias/")) {
        return Ok(key.to_owned());
    }
    let described = kms.describe_key().key_id(key).send().await.map_err(|e| describe_error(&e))?;
    described.key_metadata.map(|m| m.key_id).ok_or_else(|| "DescribeKey answered without KeyMetadata".to_owned())
}

/// `alias/` + name, unless it is there already.
pub fn alias_name(alias: &str) -> String {
    if alias.starts_with("alias/") { alias.to_owned() } else { format!("alias/{alias}") }
}

/// RFC 3339 to the second.
fn date(when: &DateTime) -> String {
    DateTime::from_secs(when.secs()).fmt(DateTimeFormat::DateTime).unwrap_or_else(|_| when.secs().to_string())
}

/// Rotation as a table cell: "90 days", "off", or "-" where it does not apply.
async fn rotation_cell(kms: &Client, metadata: &KeyMetadata) -> Result<String, String> {
    let rotatable = metadata.key_spec.as_ref() == Some(&KeySpec::SymmetricDefault)
        && matches!(metadata.key_state, Some(KeyState::Enabled | KeyState::Disabled))
        && metadata.origin.as_ref().is_none_or(|o| o.as_str() == "AWS_KMS");
    if !rotatable {
        return Ok("-".to_owned());
    }
    let status = kms.get_key_rotation_status().key_id(&metadata.key_id).send().await.map_err(|e| describe_error(&e))?;
    Ok(match (status.key_rotation_enabled, status.rotation_period_in_days) {
        (true, Some(days)) => format!("{days} days"),
        (true, None) => "on".to_owned(),
        (false, _) => "off".to_owned(),
    })
}

async fn aliases_by_key(kms: &Client) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pages = kms.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        for alias in page.map_err(|e| describe_error(&e))?.aliases.unwrap_or_default() {
            if let (Some(name), Some(key)) = (alias.alias_name, alias.target_key_id) {
                by_key.entry(key).or_default().push(name);
            }
        }
    }
    Ok(by_key)
}

async fn list(kms: &Client) -> Result<String, String> {
    let aliases = aliases_by_key(kms).await?;
    let mut rows = Vec::new();
    let mut pages = kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        for entry in page.map_err(|e| describe_error(&e))?.keys.unwrap_or_default() {
            let Some(key_id) = entry.key_id else { continue };
            let described = kms.describe_key().key_id(&key_id).send().await.map_err(|e| describe_error(&e))?;
            let Some(metadata) = described.key_metadata else { continue };
            let alias = aliases.get(&key_id).map_or_else(|| "-".to_owned(), |names| names.join(","));
            rows.push(vec![
                alias,
                key_id,
                metadata.key_state.as_ref().map_or("-", KeyState::as_str).to_owned(),
                metadata.key_usage.as_ref().map_or("-", KeyUsageType::as_str).to_owned(),
                metadata.key_spec.as_ref().map_or("-", KeySpec::as_str).to_owned(),
                rotation_cell(kms, &metadata).await?,
                metadata.creation_date.as_ref().map_or_else(|| "-".to_owned(), date),
            ]);
        }
    }
    if rows.is_empty() {
        return Ok("no keys".to_owned());
    }
    rows.sort();
    Ok(table(&["ALIAS", "KEY ID", "STATE", "USAGE", "SPEC", "ROTATION", "CREATED"], &rows))
}

async fn show(kms: &Client, key: &str) -> Result<String, String> {
    let described = kms.describe_key().key_id(key).send().await.map_err(|e| describe_error(&e))?;
    let metadata = described.key_metadata.ok_or("DescribeKey answered without KeyMetadata")?;
    let mut aliases = Vec::new();
    let mut pages = kms.list_aliases().key_id(&metadata.key_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        aliases.extend(
            page.map_err(|e| describe_error(&e))?.aliases.unwrap_or_default().into_iter().filter_map(|a| a.alias_name),
        );
    }
    let mut tags = Vec::new();
    let customer = metadata.key_manager.as_ref().is_some_and(|m| m.as_str() == "CUSTOMER");
    if customer {
        let mut pages = kms.list_resource_tags().key_id(&metadata.key_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            for tag in page.map_err(|e| describe_error(&e))?.tags.unwrap_or_default() {
                tags.push(format!("{}={}", tag.tag_key, tag.tag_value));
            }
        }
    }
    let or_dash = |s: Option<&str>| s.filter(|s| !s.is_empty()).unwrap_or("-").to_owned();
    let rows = vec![
        vec!["Key ID".to_owned(), metadata.key_id.clone()],
        vec!["ARN".to_owned(), or_dash(metadata.arn.as_deref())],
        vec!["Aliases".to_owned(), if aliases.is_empty() { "-".to_owned() } else { aliases.join(", ") }],
        vec!["Description".to_owned(), or_dash(metadata.description.as_deref())],
        vec!["State".to_owned(), or_dash(metadata.key_state.as_ref().map(KeyState::as_str))],
        vec!["Usage".to_owned(), or_dash(metadata.key_usage.as_ref().map(KeyUsageType::as_str))],
        vec!["Spec".to_owned(), or_dash(metadata.key_spec.as_ref().map(KeySpec::as_str))],
        vec!["Manager".to_owned(), or_dash(metadata.key_manager.as_ref().map(|m| m.as_str()))],
        vec!["Origin".to_owned(), or_dash(metadata.origin.as_ref().map(|o| o.as_str()))],
        vec!["Rotation".to_owned(), rotation_cell(kms, &metadata).await?],
        vec!["Created".to_owned(), metadata.creation_date.as_ref().map_or_else(|| "-".to_owned(), date)],
        vec!["Deletion date".to_owned(), metadata.deletion_date.as_ref().map_or_else(|| "-".to_owned(), date)],
        vec!["Tags".to_owned(), if tags.is_empty() { "-".to_owned() } else { tags.join(", ") }],
    ];
    Ok(table(&["FIELD", "VALUE"], &rows))
}

/// Left-aligned columns separated by two spaces, with a header line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![vec!["alias/a".to_owned(), "1".to_owned()], vec!["-".to_owned(), "22".to_owned()]];
        assert_eq!(table(&["ALIAS", "N"], &rows), "ALIAS    N\nalias/a  1\n-        22");
    }

    #[test]
    fn tags_and_aliases_parse() {
        assert_eq!(parse_tag("team=payments"), Ok(("team".to_owned(), "payments".to_owned())));
        assert!(parse_tag("team").is_err());
        assert_eq!(alias_name("orders"), "alias/orders");
        assert_eq!(alias_name("alias/orders"), "alias/orders");
    }
}
