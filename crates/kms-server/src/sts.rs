//! The STS subset on the same endpoint (query protocol, XML answers): GetCallerIdentity and
//! AssumeRole, so that `aws sts …` and the SDKs' credential providers work against ferrokms.

use kms_api::{ApiError, Exception};
use kms_core::policy::{AuthzRequest, ConditionContext, Decision, PolicyDocument, PolicyKind, PrincipalKind, evaluate};
use kms_core::{KmsError, Timestamp};
use kms_store::{AccessKeyRecord, PrincipalTag, PrincipalType, SessionRecord};

use crate::auth::{secret_aad, token_digest};
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::{new_principal_id, new_secret, new_session_token};
use crate::query::{QueryApi, form, xml_escape};
use crate::service::{Caller, RequestContext, Service};

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

/// A request's parameters (after `Action`), read by name.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// `Tags.member.N.Key`/`.Value` pairs, in N order (session tags).
    fn tags(&self) -> Result<Vec<PrincipalTag>, ServiceError> {
        let tags = crate::query::tags(&self.0);
        if tags.len() > MAX_SESSION_TAGS {
            return Err(validation(format!(
                "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_SESSION_TAGS}"
            )));
        }
        if let Some(bad) = tags.iter().find(|t| t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256) {
            return Err(validation(format!(
                "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: Member must have a key of length 1-128 and a value of at most 256",
                bad.key
            )));
        }
        Ok(tags)
    }
}

/// Most session tags AssumeRole takes.
const MAX_SESSION_TAGS: usize = 50;
/// GetSessionToken's shortest, longest and default durations, in seconds (an IAM user's).
const SESSION_TOKEN_SECONDS: (i64, i64, i64) = (900, 129_600, 43_200);

/// Temporary credentials just issued.
struct Issued {
    access_key_id: String,
    secret: kms_crypto::SecretBytes,
    token: kms_crypto::SecretBytes,
    expiration: String,
}

impl Issued {
    fn credentials_xml(&self) -> String {
        format!(
            "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
            self.access_key_id,
            xml_escape(&String::from_utf8_lossy(self.secret.expose_secret())),
            xml_escape(&String::from_utf8_lossy(self.token.expose_secret())),
            self.expiration
        )
    }
}

/// A duration parameter within `(min, max, default)`.
fn duration(value: Option<String>, (min, max, default): (i64, i64, i64)) -> Result<i64, ServiceError> {
    let seconds = match value {
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
    Ok(seconds)
}

/// A role session name: 2–64 of letters, digits and `+=,.@_-`.
fn session_name(value: Option<String>) -> Result<String, ServiceError> {
    value
        .filter(|s| (2..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)))
        .ok_or_else(|| {
            validation("1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
        })
}

fn access_denied(principal: &str, action: &str, resource: &str, reason: String) -> ServiceError {
    ServiceError::Kms(KmsError::AccessDenied(Box::new(kms_core::error::AccessDenied {
        principal: principal.to_owned(),
        action: action.to_owned(),
        resource: resource.to_owned(),
        reason,
    })))
}

impl Service {
    /// Answers an STS request.
    ///
    /// # Errors
    /// STS errors (rendered by [`QueryApi::Sts`]).
    pub async fn sts(&self, ctx: &RequestContext, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let form = Form(form(body));
        match form.get("Action").as_deref() {
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
            Some("AssumeRole") => self.assume_role(ctx, &form).await,
            Some("GetSessionToken") => self.get_session_token(ctx, &form).await,
            Some("AssumeRoleWithWebIdentity") => self.assume_role_with_web_identity(ctx, &form).await,
            Some(other) => Err(ServiceError::Api(ApiError::with_message(
                Exception::UnknownOperation,
                format!("Could not find operation {other} for version 2011-06-15"),
            ))),
            None => Err(validation("Action is required")),
        }
    }

    /// Stores temporary credentials for `owner` (a role, or a user's own session) and returns
    /// them; the audit record gets `recorded`, never the secret or the token.
    async fn issue(
        &self,
        ctx: &RequestContext,
        owner: &kms_store::PrincipalRecord,
        session_name: String,
        tags: Vec<PrincipalTag>,
        seconds: i64,
        recorded: impl FnOnce(&str, &str) -> serde_json::Value,
    ) -> Result<Issued, ServiceError> {
        let access_key_id = new_principal_id("ASIA", self.rng.as_ref());
        let secret = new_secret(self.rng.as_ref());
        let token = new_session_token(self.rng.as_ref());
        let expires = self.clock.now().plus_millis(seconds.saturating_mul(1000));
        let record = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            account: owner.account.clone(),
            principal_arn: owner.arn.clone(),
            wrapped_secret: self.root.wrap(&secret_aad(&access_key_id), secret.expose_secret())?,
            created: self.clock.now(),
            session: Some(SessionRecord {
                session_name,
                token_digest: token_digest(token.expose_secret()),
                expires,
                tags,
            }),
            active: true,
            last_used: None,
        };
        let expiration = iso8601_seconds(expires);
        let response = recorded(&access_key_id, &expiration);
        self.commit(ctx, Change::CreateAccessKey(record), response).await?;
        Ok(Issued { access_key_id, secret, token, expiration })
    }

    async fn assume_role(&self, ctx: &RequestContext, form: &Form) -> Result<Vec<u8>, ServiceError> {
        let role_arn = form.get("RoleArn").filter(|a| (20..=2048).contains(&a.len())).ok_or_else(|| {
            validation("1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
        })?;
        let session_name = session_name(form.get("RoleSessionName"))?;
        let seconds = duration(form.get("DurationSeconds"), DURATION_SECONDS)?;
        let tags = form.tags()?;
        let external_id = form.get("ExternalId");
        let caller = &ctx.caller.principal;
        let denied = || {
            access_denied(
                &caller.arn,
                "sts:AssumeRole",
                &role_arn,
                "because no resource-based policy allows the sts:AssumeRole action".into(),
            )
        };
        let role =
            self.store.principal(&role_arn).await?.filter(|r| r.kind == PrincipalType::Role).ok_or_else(denied)?;
        let trust = role
            .trust_policy
            .as_deref()
            .and_then(|t| PolicyDocument::parse(t, PolicyKind::RoleTrust).ok())
            .unwrap_or_else(PolicyDocument::empty);
        let identity = self.identity_policies(caller).await?;
        let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
        let mut keys = ConditionContext::default();
        self.global_keys(ctx, &mut keys);
        keys.insert("sts:RoleSessionName".to_owned(), session_name.clone());
        if let Some(id) = &external_id {
            keys.insert("sts:ExternalId".to_owned(), id.clone());
        }
        for tag in &tags {
            keys.insert(format!("aws:RequestTag/{}", tag.key), tag.value.clone());
        }
        if !tags.is_empty() {
            keys.insert_multi("aws:TagKeys".to_owned(), tags.iter().map(|t| t.key.clone()).collect());
        }
        // Passing session tags also needs sts:TagSession, from the same policies.
        let actions: &[&str] =
            if tags.is_empty() { &["sts:AssumeRole"] } else { &["sts:AssumeRole", "sts:TagSession"] };
        for action in actions {
            let req = AuthzRequest {
                principal: caller,
                action,
                resource: &role_arn,
                resource_account: &role.account,
                context: &keys,
            };
            if let Decision::Deny(denial) = evaluate(&req, &trust, &identity_refs, false) {
                return Err(access_denied(&caller.arn, action, &role_arn, denial.reason(action)));
            }
        }
        if matches!(caller.kind, PrincipalKind::Service { .. }) {
            return Err(denied());
        }
        let role_max = role.attributes.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
        if seconds > i64::from(role_max) {
            return Err(validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
        }
        let assumed_arn = format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", role.account, role.name);
        let assumed_id = format!("{}:{session_name}", role.principal_id);
        let issued = self
            .issue(ctx, &role, session_name, tags, seconds, |id, expiration| {
                serde_json::json!({
                    "Credentials": {"AccessKeyId": id, "Expiration": expiration},
                    "AssumedRoleUser": {"Arn": assumed_arn, "AssumedRoleId": assumed_id},
                })
            })
            .await?;
        let result = format!(
            "{}<AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>",
            issued.credentials_xml(),
            xml_escape(&assumed_arn),
            xml_escape(&assumed_id),
        );
        Ok(respond("AssumeRole", &result, &ctx.request_id))
    }

    /// AssumeRoleWithWebIdentity (unsigned): a token from an OpenID Connect provider registered
    /// in the role's account, checked (see [`Service::verify_web_identity`]), then the role's
    /// trust policy with the provider as the caller and the token's claims as
    /// `<provider>:<claim>` keys.
    async fn assume_role_with_web_identity(&self, ctx: &RequestContext, form: &Form) -> Result<Vec<u8>, ServiceError> {
        const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
        let role_arn = form.get("RoleArn").filter(|a| (20..=2048).contains(&a.len())).ok_or_else(|| {
            validation("1 validation error detected: Value at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20")
        })?;
        let session_name = session_name(form.get("RoleSessionName"))?;
        let seconds = duration(form.get("DurationSeconds"), DURATION_SECONDS)?;
        let token = form
            .get("WebIdentityToken")
            .filter(|t| (4..=20_000).contains(&t.len()))
            .ok_or_else(|| validation("1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000"))?;
        let not_authorized = || {
            access_denied(
                "web identity",
                ACTION,
                &role_arn,
                "because no resource-based policy allows the sts:AssumeRoleWithWebIdentity action".into(),
            )
        };
        let role = self
            .store
            .principal(&role_arn)
            .await?
            .filter(|r| r.kind == PrincipalType::Role)
            .ok_or_else(not_authorized)?;
        let identity = self.verify_web_identity(&role.account, &token).await?;
        let principal = kms_core::policy::Principal {
            arn: identity.provider_arn.clone(),
            account: role.account.clone(),
            kind: PrincipalKind::WebIdentity { provider: identity.provider_arn.clone() },
            user_id: format!("{}:{}:{}", identity.provider, identity.audience, identity.subject),
            username: Some(identity.subject.clone()),
        };
        let mut keys = ConditionContext::default();
        let now = self.clock.now();
        keys.insert("aws:CurrentTime".to_owned(), now.rfc3339());
        keys.insert("aws:EpochTime".to_owned(), now.unix_seconds().to_string());
        keys.insert("aws:SourceIp".to_owned(), ctx.source_ip.to_string());
        keys.insert("sts:RoleSessionName".to_owned(), session_name.clone());
        for (claim, value) in &identity.claims {
            let name = format!("{}:{claim}", identity.provider);
            match value {
                serde_json::Value::String(s) => {
                    keys.insert(name, s.clone());
                }
                serde_json::Value::Array(list) => {
                    keys.insert_multi(name, list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
                }
                _ => {}
            }
        }
        // `<provider>:aud` is the audience the provider accepted.
        keys.insert(format!("{}:aud", identity.provider), identity.audience.clone());
        let trust = role
            .trust_policy
            .as_deref()
            .and_then(|t| PolicyDocument::parse(t, PolicyKind::RoleTrust).ok())
            .unwrap_or_else(PolicyDocument::empty);
        let req = AuthzRequest {
            principal: &principal,
            action: ACTION,
            resource: &role_arn,
            resource_account: &role.account,
            context: &keys,
        };
        if let Decision::Deny(_) = evaluate(&req, &trust, &[], false) {
            return Err(access_denied(
                &identity.provider_arn,
                ACTION,
                &role_arn,
                "Not authorized to perform sts:AssumeRoleWithWebIdentity".into(),
            ));
        }
        let role_max = role.attributes.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECONDS);
        if seconds > i64::from(role_max) {
            return Err(validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
        }
        let assumed_arn = format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", role.account, role.name);
        let assumed_id = format!("{}:{session_name}", role.principal_id);
        // The request is recorded as the web identity's, now that it is known.
        let caller = Caller {
            principal: std::sync::Arc::new(principal),
            access_key_id: String::new(),
            tags: std::sync::Arc::new([]),
        };
        let ctx = RequestContext { caller, ..ctx.clone() };
        let issued = self
            .issue(&ctx, &role, session_name, Vec::new(), seconds, |id, expiration| {
                serde_json::json!({
                    "Credentials": {"AccessKeyId": id, "Expiration": expiration},
                    "AssumedRoleUser": {"Arn": assumed_arn, "AssumedRoleId": assumed_id},
                    "SubjectFromWebIdentityToken": identity.subject,
                    "Provider": identity.provider_arn,
                    "Audience": identity.audience,
                })
            })
            .await?;
        let result = format!(
            "{}<SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>{}</Arn>             <AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser><Provider>{}</Provider><Audience>{}</Audience>",
            issued.credentials_xml(),
            xml_escape(&identity.subject),
            xml_escape(&assumed_arn),
            xml_escape(&assumed_id),
            xml_escape(&identity.provider),
            xml_escape(&identity.audience),
        );
        Ok(respond("AssumeRoleWithWebIdentity", &result, &ctx.request_id))
    }

    /// GetSessionToken: temporary credentials for the calling IAM user itself.
    async fn get_session_token(&self, ctx: &RequestContext, form: &Form) -> Result<Vec<u8>, ServiceError> {
        let seconds = duration(form.get("DurationSeconds"), SESSION_TOKEN_SECONDS)?;
        let caller = &ctx.caller.principal;
        let user = match caller.kind {
            PrincipalKind::User => self.store.principal(&caller.arn).await?,
            _ => None,
        };
        // Only a user's long-term key gets a session token (not a session, not a role).
        let long_term = self.store.access_key(&ctx.caller.access_key_id).await?.is_some_and(|k| k.session.is_none());
        let Some(user) = user.filter(|_| long_term) else {
            return Err(access_denied(
                &caller.arn,
                "sts:GetSessionToken",
                &caller.arn,
                "because GetSessionToken is called with an IAM user's long-term access key".into(),
            ));
        };
        let name = user.name.clone();
        let issued = self
            .issue(
                ctx,
                &user,
                name,
                Vec::new(),
                seconds,
                |id, expiration| serde_json::json!({"Credentials": {"AccessKeyId": id, "Expiration": expiration}}),
            )
            .await?;
        Ok(respond("GetSessionToken", &issued.credentials_xml(), &ctx.request_id))
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
