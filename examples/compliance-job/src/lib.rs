//! A compliance job: every resource in an inventory (buckets, tables, queues…) names the KMS key
//! that protects it; the job checks each key against the rules for that kind of resource and
//! writes one audit line per resource.
//!
//! Resources share a few keys, so the job uses [`kms_client::batch::BatchValidator`]: each
//! distinct key costs one `DescribeKey`, one `GetKeyPolicy` and one `GetKeyRotationStatus`,
//! however many resources use it.
//!
//! Inventory format (CSV, `#` comments): `resource,key[,rules]` where `rules` is `default` (the
//! five built-in rules) or names separated by `;` (`KeyEnabled;SymmetricEncryption`).

use std::io::Write;

use aws_sdk_kms::Client;
use kms_client::batch::{AuditWriter, BatchOptions, BatchReport, BatchValidator, Mode, Resource, Rule, default_rules};

/// Parses a rule name.
///
/// # Errors
/// An unknown name.
pub fn rule(name: &str) -> Result<Rule, String> {
    Ok(match name.trim() {
        "KeyEnabled" => Rule::KeyEnabled,
        "CustomerManaged" => Rule::CustomerManaged,
        "SymmetricEncryption" => Rule::SymmetricEncryption,
        "RotationEnabled" => Rule::RotationEnabled,
        "PolicyNotPublic" => Rule::PolicyNotPublic,
        other => return Err(format!("unknown rule {other}")),
    })
}

/// Parses an inventory.
///
/// # Errors
/// The line number and what is wrong with it.
pub fn parse_inventory(text: &str) -> Result<Vec<Resource>, String> {
    let mut resources = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some(id), Some(key)) = (fields.next(), fields.next()) else {
            return Err(format!("line {}: expected resource,key[,rules]", number + 1));
        };
        let rules = match fields.next() {
            None | Some("default" | "") => default_rules(),
            Some(names) => {
                names.split(';').map(rule).collect::<Result<_, _>>().map_err(|e| format!("line {}: {e}", number + 1))?
            }
        };
        resources.push(Resource::with_rules(id, key, rules));
    }
    Ok(resources)
}

/// A demo inventory: `count` resources cycling over buckets, tables and queues, each run of three
/// on the next of the given key aliases (so every kind meets every key). Queues only require an enabled symmetric key (they may use AWS managed
/// keys); buckets and tables get every built-in rule.
#[must_use]
pub fn demo_inventory(count: usize, keys: &[&str]) -> Vec<Resource> {
    let queue_rules = vec![Rule::KeyEnabled, Rule::SymmetricEncryption];
    (0..count)
        .filter_map(|i| {
            let key = *keys.get((i / 3) % keys.len().max(1))?;
            Some(match i % 3 {
                0 => Resource::new(format!("arn:aws:s3:::bucket-{i:04}"), key),
                1 => Resource::new(format!("arn:aws:dynamodb:us-east-1:111122223333:table/table-{i:04}"), key),
                _ => Resource::with_rules(
                    format!("arn:aws:sqs:us-east-1:111122223333:queue-{i:04}"),
                    key,
                    queue_rules.clone(),
                ),
            })
        })
        .collect()
}

/// Runs the job: validates every resource with `concurrency` checks at once and writes the audit
/// lines to `audit`.
pub async fn run(
    client: Client,
    resources: Vec<Resource>,
    audit: impl Write + Send + 'static,
    concurrency: usize,
    mode: Mode,
) -> BatchReport {
    let options = BatchOptions { concurrency, mode, ..BatchOptions::default() };
    BatchValidator::with_options(client, options).with_audit(AuditWriter::new(audit)).validate(resources).await
}
