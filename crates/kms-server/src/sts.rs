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
use crate::service::{RequestContext, Service};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Shortest and longest sessions, and the default, in seconds (a role's default maximum is
/// one hour, as in AWS).
const DURATION_SECONDS: (i64, i64, i64) = (900, 3600, 3600);

/// Escapes text for XML element content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body.
fn form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The `Action` of an STS request, for the audit record.
pub fn action_of(body: &[u8]) -> String {
    form(body).into_iter().find(|(k, _)| k == "Action").map(|(_, v)| v).unwrap_or_default()
}

/// An STS request's parameters as a JSON object (for the audit record; `Action` and `Version`
/// left out).
pub fn form_as_json(body: &[u8]) -> serde_json::Value {
    let map = form(body)
        .into_iter()
        .filter(|(k, _)| k != "Action" && k != "Version")
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    serde_json::Value::Object(map)
}

/// The STS error code for an exception.
fn sts_code(e: Exception) -> &'static str {
    match e {
        Exception::UnrecognizedClient => "InvalidClientTokenId",
        Exception::InvalidSignature => "SignatureDoesNotMatch",
        Exception::IncompleteSignature => "IncompleteSignature",
        Exception::MissingAuthenticationToken => "MissingAuthenticationToken",
        Exception::ExpiredToken => "ExpiredToken",
        Exception::AccessDenied => "AccessDenied",
        Exception::Validation | Exception::Serialization => "ValidationError",
        Exception::KmsInternal => "InternalFailure",
        _ => "InvalidAction",
    }
}

/// An STS error response body.
pub fn error_body(e: &ApiError, request_id: &str) -> Vec<u8> {
    let kind = if e.exception == Exception::KmsInternal { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        sts_code(e.exception),
        xml_escape(e.message.as_deref().unwrap_or_default()),
        xml_escape(request_id)
    )
    .into_bytes()
}

fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::Api(ApiError::with_message(Exception::Validation, message))
}

fn respond(action: &str, result: &str, request_id: &str) -> Vec<u8> {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        xml_escape(request_id)
    )
    .into_bytes()
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
            return Err(validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
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
            }),
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
fn iso8601_seconds(t: Timestamp) -> String {
    let whole = Timestamp::from_unix_millis(t.unix_seconds().saturating_mul(1000)).rfc3339();
    whole.replace(".0Z", "Z")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let p = form(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&RoleSessionName=a+b&Bad=%zz");
        assert_eq!(p[0], ("Action".into(), "AssumeRole".into()));
        assert_eq!(p[1].1, "arn:aws:iam::1:role/x");
        assert_eq!(p[2].1, "a b");
        assert_eq!(p[3].1, "%zz");
    }

    #[test]
    fn escaping_and_times() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(iso8601_seconds(Timestamp::from_unix_millis(1_700_000_000_999)), "2023-11-14T22:13:20Z");
    }
}
