//! UpdatePrimaryRegion: makes a replica the primary of its multi-Region set, and the primary a
//! replica, changing every key of the set in one transaction.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::UpdatePrimaryRegionRequest;
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::ids::Region;
use kms_core::key::MultiRegionSet;
use kms_core::policy::condition_keys;

use super::key_access::managed_key;
use super::members::required;
use super::multi_region::{related_keys, with_set};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UpdatePrimaryRegionRequest,
) -> Result<Empty, ServiceError> {
    let region_name = required("primaryRegion", req.primary_region)?;
    // The model's pattern checked the form.
    let region = Region::parse(&region_name)
        .map_err(|_| KmsError::InvalidRequest(RequestRule::Rule("PrimaryRegion is not a region name.")))?;
    let request = RequestKeys::none().with(condition_keys::PRIMARY_REGION, region.as_str());
    let key = managed_key(svc, ctx, req.key_id, Operation::UpdatePrimaryRegion.action(), request).await?;
    let primary = svc.store.key(key.record.key_id).await?.ok_or(kms_store::StoreError::NotFound)?;
    let set = primary.ensure_primary("UpdatePrimaryRegion")?;
    if let Some(waiting) = primary.imported.iter().find(|m| !m.awaiting.is_empty()) {
        return Err(KmsError::Import(kms_core::error::ImportError::MaterialState(format!(
            "Key material {} of {} is still being imported into its replicas; rotate to it first.",
            waiting.id,
            primary.arn()
        )))
        .into());
    }
    if !set.replicas.contains(&region) {
        return Err(KmsError::NoReplica { arn: primary.arn(), region: region.to_string() }.into());
    }
    let replicas =
        std::iter::once(primary.region.clone()).chain(set.replicas.iter().filter(|r| **r != region).cloned()).collect();
    let set = MultiRegionSet { primary: region, replicas };
    let mut keys = related_keys(svc, &primary).await?;
    keys.insert(0, primary);
    let change = Change::UpdateKeys(with_set(&keys, &set, svc.clock.now()));
    svc.commit(ctx, change, Empty {}).await
}
