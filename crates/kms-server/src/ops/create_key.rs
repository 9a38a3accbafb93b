//! CreateKey: a new key of any spec AWS offers, with fresh material.

use kms_api::Operation;
use kms_api::key_metadata;
use kms_api::model::{CreateKeyRequest, CreateKeyResponse};
use kms_core::KmsError;
use kms_core::error::{Limit, RequestRule, Unsupported};
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeyRecord, KeyRequest, KeySpec, KeyUsage, Origin};
use kms_core::policy::condition_keys;
use kms_core::policy::{KeyPolicy, MAX_POLICY_LEN};
use kms_core::tag::{self, MAX_TAGS_PER_KEY, Tag, TagError};
use kms_core::validation::{Violation, Violations};
use kms_crypto::{KeyHandle, KeySecret, random_array};
use std::sync::Arc;

use super::members::violation;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// Largest policy document the wire accepts (the service quota is smaller; see
/// [`MAX_POLICY_LEN`]).
const POLICY_MEMBER_MAX: usize = 131_072;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: CreateKeyRequest,
) -> Result<CreateKeyResponse, ServiceError> {
    let description = req.description.unwrap_or_default();
    let kind =
        key_request(&req.key_spec, &req.customer_master_key_spec, &req.key_usage, &req.origin, req.multi_region)?;
    if req.custom_key_store_id.is_some() || req.xks_key_id.is_some() {
        return Err(KmsError::Unsupported(Unsupported::CustomKeyStore).into());
    }
    let given_policy = req.policy.as_deref().map(policy_document).transpose()?;
    let tags = tags(req.tags.unwrap_or_default())?;
    let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
    let mut request = RequestKeys::none()
        .with(condition_keys::KEY_SPEC, kind.key_spec.as_str())
        .with(condition_keys::KEY_USAGE, kind.key_usage.as_str())
        .with(condition_keys::KEY_ORIGIN, kind.origin.as_str())
        .with(condition_keys::MULTI_REGION, kind.multi_region.to_string())
        .with(condition_keys::BYPASS_POLICY_LOCKOUT_SAFETY_CHECK, bypass.to_string())
        .with_all("aws:TagKeys", tags.iter().map(|t| t.key.clone()).collect());
    for t in &tags {
        request = request.with(&format!("aws:RequestTag/{}", t.key), t.value.clone());
    }
    if kind.multi_region {
        request = request.with(condition_keys::MULTI_REGION_KEY_TYPE, "PRIMARY");
    }
    // AWS's order: request validation, then authorization, then what the service supports, so
    // that a caller refused by a kms:KeySpec condition learns nothing about support.
    svc.authorize_iam(ctx, Operation::CreateKey.action(), "*", request).await?;
    kind.ensure_supported()?;

    let id_bytes = random_array(svc.rng.as_ref());
    let key_id = if kind.multi_region {
        KeyId::multi_region_from_random_bytes(id_bytes)
    } else {
        KeyId::from_random_bytes(id_bytes)
    };
    let record = kind.new_key(
        key_id,
        ctx.caller.principal.account.clone(),
        ctx.region.clone(),
        svc.clock.now(),
        description,
        MaterialId::from_bytes(random_array(svc.rng.as_ref())),
    );
    // The lockout check applies to a policy the caller gives; the default policy delegates to
    // the account's IAM policies and is never checked (AWS: a caller allowed kms:CreateKey
    // without kms:PutKeyPolicy creates keys with the default policy).
    let policy = match given_policy {
        Some(policy) => {
            if !bypass && !svc.lockout_safe(ctx, &policy, &record.arn_string(), &record.account).await? {
                return Err(KmsError::PolicyLockout.into());
            }
            svc.ensure_principals_exist(&policy).await?;
            policy
        }
        None => KeyPolicy::default_for(&ctx.caller.principal.account),
    };
    store_new_key(svc, ctx, record, policy, tags).await
}

/// Stores a new key (within the account's key quota) with fresh material — none for a key
/// awaiting imported material — its policy and tags.
async fn store_new_key(
    svc: &Service,
    ctx: &RequestContext,
    record: KeyRecord,
    policy: KeyPolicy,
    tags: Vec<Tag>,
) -> Result<CreateKeyResponse, ServiceError> {
    svc.ensure_room_for_key(&record.account, &record.region).await?;
    ctx.key_arn.set(record.arn_string());
    // A key for imported material has none until ImportKeyMaterial.
    let (materials, handle) = if record.origin == Origin::External {
        (Vec::new(), None)
    } else {
        let (handle, secret) = generate_material(svc, &record).await?;
        (vec![svc.wrap_material(&record, record.current_material, &secret, None)?], Some(Arc::new(handle)))
    };
    let response = CreateKeyResponse { key_metadata: Some(key_metadata(&record)) };
    let change = Change::CreateKey { key: record, materials, handle, policy, tags, updates: Vec::new() };
    svc.commit(ctx, change, response).await
}

/// `FerrokmsAdmin.CreatePinnedKey`: a key for imported material with an id the caller chooses,
/// so that a development environment's test data stays decryptable across fresh starts (the
/// same id and the same imported material make the same ciphertext keys). Only a server started
/// for development (`--insecure-dev-credentials`) takes it: AWS never lets callers choose ids.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PinnedKeyRequest {
    key_id: Option<String>,
    key_spec: Option<String>,
    key_usage: Option<String>,
    description: Option<String>,
}

pub(crate) async fn create_pinned(
    svc: &Service,
    ctx: &RequestContext,
    req: PinnedKeyRequest,
) -> Result<CreateKeyResponse, ServiceError> {
    if !svc.development() {
        return Err(ServiceError::Api(kms_api::ApiError::with_message(
            kms_api::Exception::UnsupportedOperation,
            "CreatePinnedKey is only for a server started for development (--insecure-dev-credentials).",
        )));
    }
    let raw = req.key_id.unwrap_or_default();
    let key_id = KeyId::parse(&raw)
        .filter(|id| !id.is_multi_region())
        .ok_or_else(|| KmsError::NotFound(kms_core::error::NotFound::InvalidKeyId(raw.clone())))?;
    let kind = key_request(&req.key_spec, &None, &req.key_usage, &Some("EXTERNAL".to_owned()), None)?;
    let request = RequestKeys::none()
        .with(condition_keys::KEY_SPEC, kind.key_spec.as_str())
        .with(condition_keys::KEY_USAGE, kind.key_usage.as_str())
        .with(condition_keys::KEY_ORIGIN, kind.origin.as_str());
    svc.authorize_iam(ctx, Operation::CreateKey.action(), "*", request).await?;
    kind.ensure_supported()?;
    if svc.store.key(key_id).await?.is_some() {
        return Err(ServiceError::Api(kms_api::ApiError::with_message(
            kms_api::Exception::AlreadyExists,
            format!("Key {key_id} already exists."),
        )));
    }
    let account = ctx.caller.principal.account.clone();
    let record = kind.new_key(
        key_id,
        account.clone(),
        ctx.region.clone(),
        svc.clock.now(),
        req.description.unwrap_or_default(),
        MaterialId::from_bytes([0; 32]),
    );
    store_new_key(svc, ctx, record, KeyPolicy::default_for(&account), Vec::new()).await
}

/// Fresh material for `record`. RSA key generation takes up to a second (RSA_4096), so it runs
/// off the request path's threads ([`crate::slow_crypto`]); the other kinds take microseconds
/// and run in place.
async fn generate_material(svc: &Service, record: &KeyRecord) -> Result<(KeyHandle, KeySecret), ServiceError> {
    let (spec, key_id, material_id) = (record.key_spec, record.key_id, record.current_material);
    let rng = Arc::clone(&svc.rng);
    let rsa = matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096);
    crate::slow_crypto::run_if(rsa, move || KeyHandle::generate(spec, key_id, material_id, rng.as_ref()))
        .await
        .ok_or(ServiceError::Crypto(kms_crypto::CryptoError::UnsupportedKeySpec(spec)))?
        .map_err(ServiceError::Crypto)
}

fn key_request(
    key_spec: &Option<String>,
    legacy_spec: &Option<String>,
    usage: &Option<String>,
    origin: &Option<String>,
    multi_region: Option<bool>,
) -> Result<KeyRequest, KmsError> {
    let key_spec = match (key_spec, legacy_spec) {
        (Some(_), Some(_)) => return Err(KmsError::InvalidRequest(RequestRule::BothKeySpecs)),
        (Some(s), None) => KeySpec::parse(s).map_err(violation)?,
        (None, Some(s)) => {
            KeySpec::parse(s).map_err(|v| violation(Violation { field: "customerMasterKeySpec".into(), ..v }))?
        }
        (None, None) => KeySpec::SymmetricDefault,
    };
    Ok(KeyRequest {
        key_spec,
        key_usage: match usage.as_deref() {
            Some(usage) => KeyUsage::parse(usage).map_err(violation)?,
            None if key_spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
            // AWS defaults the usage only for symmetric encryption keys.
            None => return Err(KmsError::InvalidRequest(RequestRule::KeyUsageRequired)),
        },
        origin: origin.as_deref().map(Origin::parse).transpose().map_err(violation)?.unwrap_or(Origin::AwsKms),
        multi_region: multi_region.unwrap_or(false),
    })
}

/// Checks a `Policy` member: wire length, service quota, then structure.
pub(super) fn policy_document(text: &str) -> Result<KeyPolicy, KmsError> {
    let mut v = Violations::default();
    v.length("policy", None, text.chars().count(), 1, POLICY_MEMBER_MAX);
    if !v.is_empty() {
        return Err(KmsError::Validation(v));
    }
    if text.len() > MAX_POLICY_LEN {
        return Err(KmsError::LimitExceeded(Limit::PolicySize(MAX_POLICY_LEN)));
    }
    KeyPolicy::parse(text).map_err(KmsError::MalformedPolicyDocument)
}

/// The `Tags` member (CreateKey and TagResource), whose lengths and required members the
/// model's constraints checked: at most 50, none reserved or repeated.
pub(super) fn tags(wire: Vec<kms_api::model::Tag>) -> Result<Vec<Tag>, KmsError> {
    let out: Vec<Tag> = wire
        .into_iter()
        .map(|t| Tag { key: t.tag_key.unwrap_or_default(), value: t.tag_value.unwrap_or_default() })
        .collect();
    if out.len() > MAX_TAGS_PER_KEY {
        return Err(KmsError::Tag(TagError::TooMany));
    }
    tag::check_all(&out).map_err(KmsError::Tag)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        let t = |k: &str, v: &str| kms_api::model::Tag { tag_key: Some(k.into()), tag_value: Some(v.into()) };
        assert_eq!(tags(vec![t("a", "1")]).unwrap().len(), 1);
        assert!(matches!(tags(vec![t("aws:x", "1")]), Err(KmsError::Tag(TagError::ReservedPrefix(_)))));
        let many: Vec<_> = (0..51).map(|i| t(&format!("k{i}"), "v")).collect();
        assert!(matches!(tags(many), Err(KmsError::Tag(TagError::TooMany))));
    }

    #[test]
    fn policy_limits() {
        assert!(matches!(policy_document(""), Err(KmsError::Validation(_))));
        assert!(matches!(policy_document("not json"), Err(KmsError::MalformedPolicyDocument(_))));
        let big = format!("{{\"Statement\":[],\"pad\":\"{}\"}}", "x".repeat(40_000));
        assert!(matches!(policy_document(&big), Err(KmsError::LimitExceeded(_))));
    }

    #[test]
    fn both_key_specs_refused() {
        let s = Some("SYMMETRIC_DEFAULT".to_owned());
        assert!(matches!(key_request(&s, &s, &None, &None, None), Err(KmsError::InvalidRequest(_))));
        let bad = Some("AES".to_owned());
        let err = key_request(&bad, &None, &None, &None, None).unwrap_err();
        assert!(err.to_string().contains("at 'keySpec'"));
        let err = key_request(&None, &bad, &None, &None, None).unwrap_err();
        assert!(err.to_string().contains("at 'customerMasterKeySpec'"));
    }
}
