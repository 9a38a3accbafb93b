//! ImportKeyMaterial: material wrapped with GetParametersForImport's public key, unwrapped with
//! the private half its import token carries, checked against the key's spec and the material
//! the key already has, then stored wrapped by the root key like generated material.

use kms_api::Operation;
use kms_api::model::{ImportKeyMaterialRequest, ImportKeyMaterialResponse};
use kms_core::KmsError;
use kms_core::Timestamp;
use kms_core::error::{ImportError, RequestRule};
use kms_core::ids::MaterialId;
use kms_core::key::{ExpirationModel, Import, ImportType, KeyRecord, KeySpec};
use kms_core::policy::condition_keys;
use kms_crypto::{KeyHandle, KeySecret, imported_material_id, unwrap_imported_material};

use super::import_token;
use super::key_access::managed_key;
use super::members::violation;
use super::multi_region::related_keys;
use crate::authz::RequestKeys;
use crate::commit::KeyChange;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service, material_aad};
use kms_store::KeyUpdate;

/// The latest expiry ImportKeyMaterial accepts: 365 days from the request.
const MAX_VALIDITY_DAYS: i64 = 365;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ImportKeyMaterialRequest,
) -> Result<ImportKeyMaterialResponse, ServiceError> {
    let now = svc.clock.now();
    let model = match req.expiration_model.as_deref() {
        Some(m) => ExpirationModel::parse(m).map_err(violation)?,
        None => ExpirationModel::Expires,
    };
    let valid_to = valid_to(model, req.valid_to, now)?;
    let import_type = req.import_type.as_deref().map(ImportType::parse).transpose().map_err(violation)?;
    let claimed_id = req.key_material_id.map(MaterialId::try_from).transpose().map_err(|_| {
        KmsError::InvalidRequest(RequestRule::Rule("KeyMaterialId must be 64 lowercase hexadecimal digits."))
    })?;
    let mut request = RequestKeys::none().with(condition_keys::EXPIRATION_MODEL, model.as_str());
    if let Some(valid_to) = valid_to {
        request = request.with(condition_keys::VALID_TO, valid_to.unix_seconds().to_string());
    }
    let key = managed_key(svc, ctx, req.key_id, Operation::ImportKeyMaterial.action(), request).await?;
    let record = &key.record;
    record.ensure_external()?;
    if record.key_spec != KeySpec::SymmetricDefault {
        for (member, given) in [
            ("KeyMaterialId", claimed_id.is_some()),
            ("KeyMaterialDescription", req.key_material_description.is_some()),
        ] {
            if given {
                return Err(KmsError::InvalidRequest(RequestRule::SymmetricOnlyMember(member)).into());
            }
        }
    }
    let token = req.import_token.unwrap_or_default();
    let parameters = import_token::open(svc.root.as_ref(), &record.arn(), &token.0, now)?;
    let wrapped = req.encrypted_key_material.unwrap_or_default();
    let material = unwrap_imported_material(&parameters.wrapping_key, parameters.algorithm, &wrapped.0)
        .map_err(|_| KmsError::InvalidCiphertext)?;
    let material_id = imported_material_id(record.key_id, material.expose_secret());
    let secret = KeySecret::from_bytes(record.key_spec, material);
    if KeyHandle::from_secret(record.key_id, material_id, &secret).is_err() {
        return Err(KmsError::Import(ImportError::IncorrectMaterial(format!(
            "The key material is not a valid {} key.",
            record.key_spec.as_str()
        )))
        .into());
    }
    ctx.key_arn.set(record.arn_string());
    // New material of a multi-Region primary is announced to its replicas; a replica's import of
    // it tells the primary.
    let related = related_keys(svc, record).await?;
    let import =
        Import { material: material_id, import_type, claimed_id, description: req.key_material_description, valid_to };
    let edit = |current: &KeyRecord| -> Result<KeyChange, ServiceError> {
        let (next, store) = current.import(now, import.clone())?;
        let others: Vec<KeyUpdate> = match next.imported_material(material_id) {
            Some(m) if !m.awaiting.is_empty() && current.imported_material(material_id).is_none() => {
                related.iter().map(|r| KeyUpdate::record(r.expecting(m))).collect()
            }
            _ if next.is_replica() => related
                .iter()
                .filter_map(|primary| primary.imported_in(Some(material_id), &next.region))
                .map(KeyUpdate::record)
                .collect(),
            _ => Vec::new(),
        };
        let add = if store {
            let wrapped = secret.wrap(svc.root.as_ref(), &material_aad(&next.arn(), material_id))?;
            vec![kms_store::MaterialRecord { key_id: next.key_id, material_id, wrapped, created: now, rotation: None }]
        } else {
            Vec::new()
        };
        Ok(KeyChange::Keys { key: KeyUpdate { key: next, add, remove: Vec::new() }, others })
    };
    svc.commit_key(ctx, record.key_id, edit, |next| ImportKeyMaterialResponse {
        key_id: Some(next.arn_string()),
        key_material_id: Some(material_id.to_string()),
    })
    .await
}

/// `ValidTo` as the expiration model wants it: required, in the future and within 365 days for
/// expiring material; absent otherwise.
fn valid_to(model: ExpirationModel, valid_to: Option<f64>, now: Timestamp) -> Result<Option<Timestamp>, KmsError> {
    let rule = |message| Err(KmsError::InvalidRequest(RequestRule::Rule(message)));
    match (model, valid_to) {
        (ExpirationModel::DoesNotExpire, None) => Ok(None),
        (ExpirationModel::DoesNotExpire, Some(_)) => {
            rule("ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
        }
        (ExpirationModel::Expires, None) => rule("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES."),
        (ExpirationModel::Expires, Some(seconds)) => {
            #[allow(clippy::cast_possible_truncation)] // clamped to the i64 range first
            let millis = (seconds * 1000.0).clamp(i64::MIN as f64, i64::MAX as f64) as i64;
            let at = Timestamp::from_unix_millis(millis);
            if at <= now {
                rule("ValidTo must be a date and time in the future.")
            } else if at > now.plus_days(MAX_VALIDITY_DAYS) {
                rule("ValidTo must be at most 365 days from now.")
            } else {
                Ok(Some(at))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn valid_to_follows_the_expiration_model() {
        let now = Timestamp::from_unix_millis(1_000_000_000);
        let day = 86_400.0;
        let at = |days: f64| Some(now.epoch_seconds_f64() + days * day);
        assert_eq!(valid_to(ExpirationModel::DoesNotExpire, None, now).unwrap(), None);
        assert!(valid_to(ExpirationModel::DoesNotExpire, at(1.0), now).is_err());
        assert!(valid_to(ExpirationModel::Expires, None, now).is_err());
        assert!(valid_to(ExpirationModel::Expires, at(-1.0), now).is_err());
        assert!(valid_to(ExpirationModel::Expires, at(366.0), now).is_err());
        assert_eq!(valid_to(ExpirationModel::Expires, at(365.0), now).unwrap(), Some(now.plus_days(365)));
        assert!(valid_to(ExpirationModel::Expires, Some(f64::NAN), now).is_err());
    }
}
