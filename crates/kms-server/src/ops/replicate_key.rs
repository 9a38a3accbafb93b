//! ReplicateKey: a replica of a multi-Region primary key in another region — the same key id
//! and material (each region keeps its own wrapped copy), its own policy, description, tags and
//! state — made in one transaction with the set's other keys learning of it.

use kms_api::Operation;
use kms_api::key_metadata;
use kms_api::model::{ReplicateKeyRequest, ReplicateKeyResponse, Tag as WireTag};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::ids::Region;
use kms_core::key::Origin;
use kms_core::policy::{KeyPolicy, condition_keys};
use kms_crypto::KeySecret;
use kms_store::KeyUpdate;

use super::create_key::{policy_document, tags};
use super::key_access::managed_key;
use super::members::required;
use super::multi_region::{related_keys, with_set};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service, material_aad};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ReplicateKeyRequest,
) -> Result<ReplicateKeyResponse, ServiceError> {
    let region_name = required("replicaRegion", req.replica_region)?;
    // The model's pattern checked the form.
    let region = Region::parse(&region_name)
        .map_err(|_| KmsError::InvalidRequest(RequestRule::Rule("ReplicaRegion is not a region name.")))?;
    let given_policy = req.policy.as_deref().map(policy_document).transpose()?;
    let replica_tags = tags(req.tags.unwrap_or_default())?;
    let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
    let request = RequestKeys::none().with(condition_keys::REPLICA_REGION, region.as_str());
    let key = managed_key(svc, ctx, req.key_id, Operation::ReplicateKey.action(), request).await?;
    let now = svc.clock.now();
    let primary = svc.store.key(key.record.key_id).await?.ok_or(kms_store::StoreError::NotFound)?;
    let replica = primary.replica_in(&region, now, req.description.unwrap_or_default())?;
    // Creating the replica is creating a key in its region, under the caller's IAM policies.
    let create = RequestKeys::none()
        .with(condition_keys::MULTI_REGION, "true")
        .with(condition_keys::MULTI_REGION_KEY_TYPE, "REPLICA");
    svc.authorize_iam(ctx, Operation::CreateKey.action(), "*", create).await?;
    let policy = match given_policy {
        Some(policy) => {
            if !bypass && !svc.lockout_safe(ctx, &policy, &replica.arn_string(), &replica.account).await? {
                return Err(KmsError::PolicyLockout.into());
            }
            svc.ensure_principals_exist(&policy).await?;
            policy
        }
        None => KeyPolicy::default_for(&replica.account),
    };
    svc.ensure_room_for_key(&replica.account, &replica.region).await?;
    // Every material the primary has, wrapped again for the replica's ARN; imported material is
    // imported into each replica by its owner, as AWS requires.
    let (primary_arn, replica_arn) = (primary.arn(), replica.arn());
    let mut materials = Vec::new();
    let generated =
        if primary.origin == Origin::External { Vec::new() } else { svc.store.materials(primary.key_id).await? };
    for stored in generated {
        let aad = material_aad(&primary_arn, stored.material_id);
        let secret = KeySecret::unwrap(primary.key_spec, svc.root.as_ref(), &aad, &stored.wrapped)?;
        let wrapped = secret.wrap(svc.root.as_ref(), &material_aad(&replica_arn, stored.material_id))?;
        materials.push(kms_store::MaterialRecord { key_id: replica.key_id, wrapped, ..stored });
    }
    let Some(set) = replica.multi_region_set.clone() else {
        return Err(kms_store::StoreError::Corrupt("a replica without its multi-Region set".into()).into());
    };
    let mut others = related_keys(svc, &primary).await?;
    others.insert(0, primary);
    let updates: Vec<KeyUpdate> = with_set(&others, &set, now);
    let response = ReplicateKeyResponse {
        replica_key_metadata: Some(key_metadata(&replica)),
        replica_policy: Some(policy.as_str().to_owned()),
        replica_tags: Some(
            replica_tags
                .iter()
                .map(|t| WireTag { tag_key: Some(t.key.clone()), tag_value: Some(t.value.clone()) })
                .collect(),
        ),
    };
    let change = Change::CreateKey { key: replica, materials, handle: None, policy, tags: replica_tags, updates };
    svc.commit(ctx, change, response).await
}
