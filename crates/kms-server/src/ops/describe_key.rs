//! DescribeKey: the key's metadata.

use kms_api::Operation;
use kms_api::key_metadata;
use kms_api::model::{DescribeKeyRequest, DescribeKeyResponse};

use super::key_access::usable_key;
use super::members::grant_tokens;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DescribeKeyRequest,
) -> Result<DescribeKeyResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let key = usable_key(svc, ctx, "keyId", req.key_id, Operation::DescribeKey.action(), RequestKeys::none()).await?;
    Ok(DescribeKeyResponse { key_metadata: Some(key_metadata(&key.record)) })
}
