//! The STS subset on the same endpoint (query protocol, XML answers): GetCallerIdentity and
//! AssumeRole, so that `aws sts …` and the SDKs' credential providers work against ferrokms.

use kms_api::{ApiError, Exception};
use kms_core::policy::{AuthzRequest, ConditionContext, Decision, PolicyDocument, PolicyKind, PrincipalKind, evaluate};
use kms_core::{KmsError, Timestamp};
use kms_store::{AccessKeyRecord, PrincipalType, SessionRecord};

use crate::auth::{secret_aad, token_digest};
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::{new_principal_id, new_secret, new_session_token};
use crate::query::{QueryApi, form, xml_escape};
use crate::service::{RequestContext, Service};

/// Shortest and longest sessions, and the default, in seconds (a role's maximum is its
/// MaxSessionDuration, one hour unless set, as in AWS).
const DURATION_SECONDS: (i64, i64, i64) = (900, 43_200, 3600);
/// A role's longest session when its MaxSessionDuration is not set.
pub const DEFAULT_MAX_SESSION_SECONDS: u32 = 3600;

fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::Api(ApiError::with_message(Exception::Validation, message))
}

fn respond(action: &str, result: &str, request_id: &str) -> Vec<u8> {
    QueryApi::Sts.respond(action, Some(result), request_id)
}

impl Service {
    /// Answers an STS request.
    ///
    /// # Errors
    /// STS errors (rendered with [`error_body`]).
    pub async fn sts(&self, ctx: &RequestContext, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let params = form(body);
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match param("Action").as_deref() {
            Some("GetCallerIdentity") => {
                let p = &ctx.caller.principal;
                let result = format!(
                    "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
                    xml_escape(&p.arn),
                    xml_escape(&p.user_id),
                    p.account
                );
                Ok(respond("GetCallerIdentity", &result, &ctx.request_id))
            }
            Some("AssumeRole") => {
                self.assume_role(ctx, param("RoleArn"), param("RoleSessionName"), param("DurationSeconds")).await
            }
            Some(other) => Err(ServiceError::Api(ApiError::with_message(
                Exception::UnknownOperation,
                format!("Could not find operation {other} for version 2011-06-15"),
            ))),
            None => Err(validation("Action is required")),
        }
    }

    async fn assume_role(
        &self,
        ctx: &RequestContext,
        role_arn: Option<String>,
        session_name: Option<String>,
        duration: Option<String>,
    ) -> Result<Vec<u8>, ServiceError> {
        let role_arn = role_arn.filter(|a| (20..=2048).contains(&a.len())).ok_or_else(|| {
            validation("1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
        })?;
        let session_name = session_name
            .filter(|s| {
                (2..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
            })
            .ok_or_else(|| {
                validation("1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
            })?;
        let (min, max, default) = DURATION_SECONDS;
        let seconds = match duration {
            None => default,
            Some(d) => d.parse::<i64>().map_err(|_| validation("DurationSeconds must be a number"))?,
        };
        if seconds < min {
            return Err(validation(format!(
                "1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"
            )));
        }
        if seconds > max {
            return Err(validation(format!(
                "1 validation error detected: Value '{seconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}"
            )));
        }
        let denied = || {
            ServiceError::Kms(KmsError::AccessDenied(Box::new(kms_core::error::AccessDenied {
                principal: ctx.caller.principal.arn.clone(),
                action: "sts:AssumeRole".into(),
                resource: role_arn.clone(),
                reason: "because no resource-based policy allows the sts:AssumeRole action".into(),
            })))
        };
        let role =
            self.store.principal(&role_arn).await?.filter(|r| r.kind == PrincipalType::Role).ok_or_else(denied)?;
        let trust = role
            .trust_policy
            .as_deref()
            .and_then(|t| PolicyDocument::parse(t, PolicyKind::RoleTrust).ok())
            .unwrap_or_else(PolicyDocument::empty);
        let identity = self.identity_policies(&ctx.caller.principal).await?;
        let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
        let mut keys = ConditionContext::default();
        keys.insert("aws:CurrentTime".to_owned(), self.clock.now().rfc3339());
        keys.insert("aws:SourceIp".to_owned(), ctx.source_ip.to_string());
        keys.insert("sts:RoleSessionName".to_owned(), session_name.clone());
        let req = AuthzRequest {
            principal: &ctx.caller.principal,
            action: "sts:AssumeRole",
            resource: &role_arn,
            resource_account: &role.account,
            context: &keys,
        };
        if let Decision::Deny(denial) = evaluate(&req, &trust, &identity_refs, false) {
            return Err(ServiceError::Kms(KmsError::AccessDenied(Box::new(kms_core::error::AccessDenied {
                principal: ctx.caller.principal.arn.clone(),
                action: "sts:AssumeRole".into(),
                resource: role_arn.clone(),
                reason: denial.reason("sts:AssumeRole"),
            }))));
        }
        if matches!(ctx.caller.principal.kind, PrincipalKind::Service { .. }) {
            return Err(denied());
        }
        let role_max = role.attributes.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
        if seconds > i64::from(role_max) {
            return Err(validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
        }
        let access_key_id = new_principal_id("ASIA", self.rng.as_ref());
        let secret = new_secret(self.rng.as_ref());
        let token = new_session_token(self.rng.as_ref());
        let expires = self.clock.now().plus_millis(seconds.saturating_mul(1000));
        let record = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            account: role.account.clone(),
            principal_arn: role.arn.clone(),
            wrapped_secret: self.root.wrap(&secret_aad(&access_key_id), secret.expose_secret())?,
            created: self.clock.now(),
            session: Some(SessionRecord {
                session_name: session_name.clone(),
                token_digest: token_digest(token.expose_secret()),
                expires,
                tags: Vec::new(),
            }),
            active: true,
        };
        let expiration = iso8601_seconds(expires);
        let assumed_arn = format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", role.account, role.name);
        let assumed_id = format!("{}:{session_name}", role.principal_id);
        // The audit record names the credentials but never holds the secret or the token.
        let recorded = serde_json::json!({
            "Credentials": {"AccessKeyId": access_key_id, "Expiration": expiration},
            "AssumedRoleUser": {"Arn": assumed_arn, "AssumedRoleId": assumed_id},
        });
        self.commit(ctx, Change::CreateAccessKey(record), recorded).await?;
        let result = format!(
            "<Credentials><AccessKeyId>{access_key_id}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
             <AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}:{}</AssumedRoleId></AssumedRoleUser>",
            xml_escape(&String::from_utf8_lossy(secret.expose_secret())),
            xml_escape(&String::from_utf8_lossy(token.expose_secret())),
            xml_escape(&assumed_arn),
            xml_escape(&role.principal_id),
            xml_escape(&session_name),
        );
        Ok(respond("AssumeRole", &result, &ctx.request_id))
    }
}

/// `2026-11-25T21:21:20Z`: STS renders expirations without fractions.
pub(crate) fn iso8601_seconds(t: Timestamp) -> String {
    let whole = Timestamp::from_unix_millis(t.unix_seconds().saturating_mul(1000)).rfc3339();
    whole.replace(".0Z", "Z")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_times() {
        assert_eq!(iso8601_seconds(Timestamp::from_unix_millis(1_700_000_000_999)), "2023-11-14T22:13:20Z");
    }
}
