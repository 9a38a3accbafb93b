//! Forward access: how a service principal acts for a user, and only with the user's consent.
//!
//! In AWS an integrated service (S3, CloudWatch Logs…) calls KMS for a user only inside a
//! forward access session, which exists while that user is calling the service. ferrokms gives
//! the same guarantee with a token: the user asks ferrokms for a forward access token
//! (`FerrokmsAdmin.CreateForwardAccessToken`), bound to one service principal, to the user's
//! access key and unique id, and expiring within minutes, and hands it to the service. The
//! service presents it in the signed header `x-ferrokms-forward-access-token` of its own
//! SigV4-signed KMS request; the request is then evaluated as the user, with `kms:ViaService`
//! naming the service. Without a token a service acts only as itself; a token never opens the
//! admin or STS APIs; and a token dies with the user's access key (or the user), at its expiry,
//! or in another service's hands.
//!
//! A token is `fat1.<claims>.<tag>`: base64url JSON claims and an HMAC-SHA-256 tag under a
//! server-wide key that is created on first use and stored wrapped by the root key, so that
//! every node sharing the store verifies the others' tokens. Tokens are stateless: nothing is
//! stored per token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kms_api::{ApiError, Exception};
use kms_core::KmsError;
use kms_core::error::AccessDenied;
use kms_core::policy::PrincipalKind;
use kms_core::policy::condition_keys;
use kms_crypto::{MacKey, SecretBytes};
use kms_store::PrincipalType;
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::service::{Caller, RequestContext, Service};

/// The (signed) header in which a service presents a user's forward access token.
pub const TOKEN_HEADER: &str = "x-ferrokms-forward-access-token";
/// The header through which, before forward access tokens, a service named the principal it
/// acted for without any proof. Refused: it let a service impersonate anyone in its account.
pub const LEGACY_VIA_HEADER: &str = "x-ferrokms-via-principal";

/// Shortest, longest and default token lifetimes in seconds.
pub const DURATION_SECONDS: (i64, i64, i64) = (60, 900, 300);

const PREFIX: &str = "fat1.";
const KEY_SETTING: &str = "forward_access_key";
const KEY_AAD: &[u8] = b"ferrokms:forward-access-key";

/// What a token asserts.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    /// The access key the user signed the token request with.
    #[serde(rename = "k")]
    access_key_id: String,
    /// The user's ARN.
    #[serde(rename = "p")]
    principal_arn: String,
    /// The user's unique id: a user deleted and created again under the same name is another
    /// principal, and the old one's tokens do not work for it.
    #[serde(rename = "u")]
    principal_id: String,
    /// The one service principal that may present the token.
    #[serde(rename = "s")]
    service: String,
    /// Expiry, Unix milliseconds.
    #[serde(rename = "e")]
    expires: i64,
}

fn encode(key: &MacKey, claims: &Claims) -> String {
    let body = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body));
    let tag = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()));
    format!("{signed}.{tag}")
}

/// The claims of a token whose tag verifies; `None` for anything else.
fn decode(key: &MacKey, token: &str) -> Option<Claims> {
    let (signed, tag) = token.rsplit_once('.')?;
    let body = signed.strip_prefix(PREFIX)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !key.verify(signed.as_bytes(), &tag) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()
}

fn denied(principal: &str, resource: &str, reason: &str) -> ServiceError {
    ServiceError::Kms(KmsError::AccessDenied(Box::new(AccessDenied {
        principal: principal.to_owned(),
        action: condition_keys::VIA_SERVICE.into(),
        resource: resource.to_owned(),
        reason: reason.to_owned(),
    })))
}

/// Which API a request is for, as far as forward access cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// The AWS KMS operations: the only ones a service may call for a user.
    Kms,
    /// The admin API or STS: never through a forward access token.
    Management,
}

/// A token handed to a user, with its expiry.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token (a bearer secret until it expires).
    pub token: SecretBytes,
    /// When it stops working.
    pub expires: kms_core::Timestamp,
}

impl Service {
    /// The server-wide token key: read from the store (unwrapped with the root key) or created
    /// there on first use; every node ends up with the one that was stored first.
    async fn forward_access_key(&self) -> Result<&MacKey, ServiceError> {
        self.forward_key
            .get_or_try_init(|| async {
                if self.store.setting(KEY_SETTING).await?.is_none() {
                    let fresh = SecretBytes::new(kms_crypto::random_array::<32>(self.rng.as_ref()).to_vec());
                    let wrapped = self.root.wrap(KEY_AAD, fresh.expose_secret())?;
                    self.store.init_setting(KEY_SETTING, &hex::encode(wrapped)).await?;
                }
                let stored = self.store.setting(KEY_SETTING).await?.unwrap_or_default();
                let wrapped = hex::decode(&stored)
                    .map_err(|_| kms_store::StoreError::Corrupt(format!("setting {KEY_SETTING}")))?;
                let secret = self.root.unwrap(KEY_AAD, &wrapped)?;
                Ok::<_, ServiceError>(MacKey::new(&secret))
            })
            .await
    }

    /// The ARN under which the operator's service principal `name` is stored.
    pub(crate) fn service_principal_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:service/{name}", self.operator_account)
    }

    /// Issues a forward access token for the caller, for `service`, valid `seconds`.
    ///
    /// # Errors
    /// `AccessDeniedException` for a caller that is itself a service; `NotFoundException` for a
    /// service principal the operator has not created.
    pub(crate) async fn issue_forward_access_token(
        &self,
        ctx: &RequestContext,
        service: &str,
        seconds: i64,
    ) -> Result<IssuedToken, ServiceError> {
        let caller = &ctx.caller;
        if matches!(caller.principal.kind, PrincipalKind::Service { .. }) || ctx.via_service.is_some() {
            return Err(denied(
                &caller.principal.arn,
                service,
                "because a service cannot hand on access it was given: only users and role sessions issue forward access tokens",
            ));
        }
        let known = self.store.principal(&self.service_principal_arn(service)).await?;
        if known.is_none_or(|p| p.kind != PrincipalType::Service) {
            return Err(ServiceError::Api(ApiError::with_message(
                Exception::NotFound,
                format!("service principal {service} does not exist"),
            )));
        }
        let mut expires = self.clock.now().plus_millis(seconds.saturating_mul(1000));
        // A role session's token does not outlive the session.
        if let Some(session_end) = self.auth.session_expiry(&caller.access_key_id).await? {
            expires = expires.min(session_end);
        }
        let claims = Claims {
            access_key_id: caller.access_key_id.clone(),
            principal_arn: caller.principal.arn.clone(),
            principal_id: caller.principal.user_id.clone(),
            service: service.to_owned(),
            expires: expires.unix_millis(),
        };
        let token = encode(self.forward_access_key().await?, &claims);
        Ok(IssuedToken { token: SecretBytes::new(token.into_bytes()), expires })
    }

    /// Who a request acts as: the authenticated `caller`, or — when a service presents a user's
    /// valid forward access token — that user, with the service (for `kms:ViaService`).
    ///
    /// # Errors
    /// `AccessDeniedException` for the legacy via header, a token presented by anything but
    /// the service it was issued to, a token on the admin or STS APIs, and a token that is
    /// forged, expired, or whose user or access key no longer exists.
    pub(crate) async fn acting_caller(
        &self,
        caller: Caller,
        token: Option<&str>,
        legacy_via: Option<&str>,
        api: Api,
    ) -> Result<(Caller, Option<String>), ServiceError> {
        if let Some(named) = legacy_via {
            return Err(denied(
                &caller.principal.arn,
                named,
                &format!(
                    "because {LEGACY_VIA_HEADER} is not accepted: a service acts for a user only with the \
                     user's forward access token in {TOKEN_HEADER}"
                ),
            ));
        }
        let Some(token) = token else { return Ok((caller, None)) };
        let PrincipalKind::Service { name: service } = &caller.principal.kind else {
            return Err(denied(
                &caller.principal.arn,
                "forward access token",
                "because only a service principal may present a forward access token",
            ));
        };
        if api == Api::Management {
            return Err(denied(
                &caller.principal.arn,
                "forward access token",
                "because a service acting for a user may call only the AWS KMS API",
            ));
        }
        let invalid = |why: &str| denied(&caller.principal.arn, "forward access token", why);
        let claims = decode(self.forward_access_key().await?, token)
            .ok_or_else(|| invalid("because the forward access token is not valid"))?;
        if claims.service != *service {
            return Err(invalid("because the forward access token was issued to another service"));
        }
        if self.clock.now().unix_millis() >= claims.expires {
            return Err(invalid("because the forward access token has expired"));
        }
        let caller = self
            .auth
            .principal_for_key(&claims.access_key_id)
            .await?
            .filter(|c| c.principal.arn == claims.principal_arn && c.principal.user_id == claims.principal_id)
            .ok_or_else(|| invalid("because the principal that issued the forward access token no longer exists"))?;
        Ok((caller, Some(service.clone())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MacKey {
        MacKey::new(&SecretBytes::new(vec![byte; 32]))
    }

    fn claims() -> Claims {
        Claims {
            access_key_id: "AKIAEXAMPLE".into(),
            principal_arn: "arn:aws:iam::111122223333:user/alice".into(),
            principal_id: "AIDAEXAMPLE".into(),
            service: "logs.us-east-1.amazonaws.com".into(),
            expires: 1_000,
        }
    }

    #[test]
    fn tokens_round_trip_under_their_key_only() {
        let token = encode(&key(1), &claims());
        assert!(token.starts_with(PREFIX));
        assert_eq!(decode(&key(1), &token), Some(claims()));
        assert_eq!(decode(&key(2), &token), None);
    }

    /// Changing any claim (another user, service or expiry) breaks the tag.
    #[test]
    fn edited_claims_do_not_verify() {
        let token = encode(&key(1), &claims());
        let (signed, tag) = token.rsplit_once('.').unwrap();
        let body = URL_SAFE_NO_PAD.decode(signed.strip_prefix(PREFIX).unwrap()).unwrap();
        let edited = String::from_utf8(body).unwrap().replace("user/alice", "user/admin");
        let forged = format!("{PREFIX}{}.{tag}", URL_SAFE_NO_PAD.encode(edited));
        assert_eq!(decode(&key(1), &forged), None);
        for junk in ["", "fat1.", "fat1..", "x.y", "fat1.e30.AAAA"] {
            assert_eq!(decode(&key(1), junk), None, "{junk}");
        }
    }
}
