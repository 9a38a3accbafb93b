//! AWS managed keys: the key behind a predefined `alias/aws/<service>` alias, created in an
//! account and region on its first use (AWS creates it when a service, or a DescribeKey, first
//! names the alias). Its policy lets the account's principals use it only through that service
//! (`kms:ViaService`) and read its metadata; nobody may change it, and it rotates yearly.

use kms_core::ids::{AliasArn, AliasName, KeyId, MaterialId};
use kms_core::key::{AutoRotation, KeyManager, KeyRequest};
use kms_core::policy::KeyPolicy;
use kms_crypto::{KeyHandle, random_array};
use serde_json::json;
use std::sync::Arc;

use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::Service;

/// AWS's predefined aliases of AWS managed keys, in name order, with the service (the
/// `kms:ViaService` host prefix) each key serves.
pub(crate) const PREDEFINED: &[(&str, &str)] = &[
    ("alias/aws/acm", "acm"),
    ("alias/aws/dynamodb", "dynamodb"),
    ("alias/aws/ebs", "ec2"),
    ("alias/aws/elasticfilesystem", "elasticfilesystem"),
    ("alias/aws/es", "es"),
    ("alias/aws/glue", "glue"),
    ("alias/aws/kinesisvideo", "kinesisvideo"),
    ("alias/aws/lambda", "lambda"),
    ("alias/aws/rds", "rds"),
    ("alias/aws/redshift", "redshift"),
    ("alias/aws/s3", "s3"),
    ("alias/aws/secretsmanager", "secretsmanager"),
    ("alias/aws/ssm", "ssm"),
    ("alias/aws/xray", "xray"),
];

/// Days between an AWS managed key's rotations.
const ROTATION_DAYS: u16 = 365;

/// The policy of the AWS managed key of `service` in `account` and `region`.
fn policy(account: &str, region: &str, service: &str, alias: &str) -> String {
    let name = alias.trim_start_matches("alias/aws/");
    json!({
        "Version": "2012-10-17",
        "Id": format!("auto-{name}"),
        "Statement": [
            {
                "Sid": format!("Allow access through {name} for all principals in the account that are authorized to use {name}"),
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": format!("{service}.{region}.amazonaws.com"),
                }},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    })
    .to_string()
}

/// The id of the AWS managed key behind `alias` in its account and region: derived from them,
/// so that two nodes (or two requests) creating it at once create the same key.
fn key_id(alias: &AliasArn) -> KeyId {
    let digest = kms_crypto::digest::sha256(format!("ferrokms aws managed key\0{alias}").as_bytes());
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest) {
        *b = d;
    }
    KeyId::from_random_bytes(bytes)
}

impl Service {
    /// The AWS managed key behind `alias` if it is one of AWS's predefined aliases, created
    /// (key, then alias, each audited as AWS's own action) when it does not exist yet; `None`
    /// for any other alias.
    ///
    /// # Errors
    /// Store and root-key failures.
    pub(crate) async fn aws_managed_key(&self, alias: &AliasArn) -> Result<Option<KeyId>, ServiceError> {
        let Some((_, service)) = PREDEFINED.iter().find(|(name, _)| *name == alias.name.as_str()) else {
            return Ok(None);
        };
        let id = key_id(alias);
        let now = self.clock.now();
        if self.store.key(id).await?.is_none() {
            let mut record = KeyRequest::symmetric_default().new_key(
                id,
                alias.account.clone(),
                alias.region.clone(),
                now,
                format!(
                    "Default key that protects my {} data when no other key is defined",
                    alias.name.as_str().trim_start_matches("alias/aws/")
                ),
                MaterialId::from_bytes(random_array(self.rng.as_ref())),
            );
            record.key_manager = KeyManager::Aws;
            record.rotation =
                Some(AutoRotation { period_days: ROTATION_DAYS, next: now.plus_days(i64::from(ROTATION_DAYS)) });
            let (handle, secret) =
                KeyHandle::generate(record.key_spec, record.key_id, record.current_material, self.rng.as_ref())
                    .map_err(ServiceError::Crypto)?;
            let material = self.wrap_material(&record, record.current_material, &secret, None)?;
            let policy = KeyPolicy::from_stored(policy(
                alias.account.as_str(),
                alias.region.as_str(),
                service,
                alias.name.as_str(),
            ));
            let event = crate::audit::background_event(
                crate::audit::new_event_id(self.rng.as_ref()),
                now,
                "CreateKey",
                &record.arn_string(),
                json!({"keyManager": "AWS", "alias": alias.name.as_str()}),
            );
            let change = Change::CreateKey {
                key: record,
                materials: vec![material],
                handle: Some(Arc::new(handle)),
                policy,
                tags: Vec::new(),
                updates: Vec::new(),
            };
            match self.commit_unattended(change, event).await {
                // Created by another request or node meanwhile: the same key.
                Ok(_) | Err(ServiceError::Store(kms_store::StoreError::AlreadyExists)) => {}
                Err(e) => return Err(e),
            }
        }
        let record = kms_store::AliasRecord {
            account: alias.account.clone(),
            region: alias.region.clone(),
            name: AliasName::parse(alias.name.as_str()).map_err(|_| kms_store::StoreError::Corrupt("alias".into()))?,
            target: id,
            created: now,
            updated: now,
        };
        let event = crate::audit::background_event(
            crate::audit::new_event_id(self.rng.as_ref()),
            now,
            "CreateAlias",
            &kms_core::ids::render_key_arn(&alias.region, &alias.account, id),
            json!({"aliasName": alias.name.as_str()}),
        );
        match self.commit_unattended(Change::CreateAlias(record), event).await {
            Ok(_) => Ok(Some(id)),
            Err(ServiceError::Kms(kms_core::KmsError::AlreadyExists(_))) => Ok(Some(id)),
            Err(e) => Err(e),
        }
    }
}
