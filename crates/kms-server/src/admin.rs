//! The admin API: principals, access keys and identity policies, managed while the server runs.
//!
//! AWS JSON 1.1 like KMS, on the same endpoint, with targets `FerrokmsAdmin.<Operation>`, SigV4
//! signed and authorized by the caller's identity policies (`iam:CreateUser`, …). The
//! `ferrokms admin` commands speak it.

use kms_api::Empty;
use kms_api::{ApiError, Exception, decode_json, encode_response};
use kms_core::KmsError;
use kms_core::policy::{PolicyDocument, PolicyKind};
use kms_crypto::SecretBytes;
use kms_store::{AccessKeyRecord, IdentityPolicyRecord, PrincipalRecord, PrincipalType, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::secret_aad;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::{new_principal_id, new_secret};
use crate::service::{RequestContext, Service};

/// The `X-Amz-Target` prefix of admin operations.
pub const ADMIN_TARGET_PREFIX: &str = "FerrokmsAdmin.";

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdminRequest {
    user_name: Option<String>,
    role_name: Option<String>,
    service_name: Option<String>,
    assume_role_policy_document: Option<String>,
    policy_name: Option<String>,
    policy_document: Option<String>,
    access_key_id: Option<String>,
    /// With `AccessKeyId`, a caller-chosen secret for CreateAccessKey (declarative seeding).
    /// Scrubbed from the audit trail like every `SecretAccessKey` member.
    secret_access_key: Option<String>,
    /// CreateForwardAccessToken: the service principal the token is for…
    service_principal: Option<String>,
    /// …and its lifetime in seconds.
    duration_seconds: Option<i64>,
    /// CreateAccount: the id to give the new account (random when absent).
    account_id: Option<String>,
    /// PutOpenIDConnectProviderKeys: the provider…
    #[serde(rename = "OpenIDConnectProviderArn")]
    open_id_connect_provider_arn: Option<String>,
    /// …and its signing keys, a JWKS document.
    jwks: Option<String>,
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRequest")
            .field("user_name", &self.user_name)
            .field("role_name", &self.role_name)
            .field("service_name", &self.service_name)
            .field("policy_name", &self.policy_name)
            .field("access_key_id", &self.access_key_id)
            .field("service_principal", &self.service_principal)
            .field("duration_seconds", &self.duration_seconds)
            .field("account_id", &self.account_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PrincipalOut {
    #[serde(rename = "Type")]
    kind: &'static str,
    name: String,
    arn: String,
    id: String,
    create_date: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PrincipalResponse {
    principal: PrincipalOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    principals: Vec<PrincipalOut>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct InlinePolicyOut {
    policy_name: String,
    policy_document: String,
}

/// GetPrincipal: what seeding compares a declared principal with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PrincipalDetailResponse {
    principal: PrincipalOut,
    assume_role_policy_document: Option<String>,
    policies: Vec<InlinePolicyOut>,
    access_key_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccessKeyOut {
    access_key_id: String,
    secret_access_key: String,
    principal_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccessKeyResponse {
    access_key: AccessKeyOut,
}

/// CreateForwardAccessToken's answer (the token is scrubbed from the audit trail).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ForwardAccessTokenResponse {
    forward_access_token: String,
    service_principal: String,
    expiration: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AccountResponse {
    account_id: String,
    access_key: AccessKeyOut,
}

fn out(p: &PrincipalRecord) -> PrincipalOut {
    PrincipalOut {
        kind: p.kind.as_str(),
        name: p.name.clone(),
        arn: if p.kind == PrincipalType::Service { p.name.clone() } else { p.arn.clone() },
        id: p.principal_id.clone(),
        create_date: p.created.epoch_seconds_f64(),
    }
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Api(ApiError::with_message(Exception::Validation, message))
}

/// `NotFoundException`: `what` does not exist.
pub(crate) fn not_found(what: &str) -> ServiceError {
    ServiceError::Api(ApiError::with_message(Exception::NotFound, format!("{what} does not exist")))
}

/// Checks an IAM-style user or role name: 1–64 of letters, digits and `+=,.@_-`.
fn principal_name(field: &str, value: Option<String>) -> Result<String, ServiceError> {
    let name = value.ok_or_else(|| invalid(format!("{field} is required")))?;
    let ok = (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok { Ok(name) } else { Err(invalid(format!("{field} must be 1-64 characters of letters, digits and +=,.@_-"))) }
}

/// Checks a service principal name such as `logs.us-east-1.amazonaws.com`.
fn service_name(value: Option<String>) -> Result<String, ServiceError> {
    let name = value.ok_or_else(|| invalid("ServiceName is required"))?;
    let ok = (3..=128).contains(&name.len())
        && name.contains('.')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if ok { Ok(name) } else { Err(invalid("ServiceName must look like logs.us-east-1.amazonaws.com")) }
}

/// Checks an identity policy or a role's trust policy.
fn policy_document(value: Option<String>, field: &str, kind: PolicyKind) -> Result<String, ServiceError> {
    let text = value.ok_or_else(|| invalid(format!("{field} is required")))?;
    PolicyDocument::parse(&text, kind).map_err(KmsError::MalformedPolicyDocument)?;
    Ok(text)
}

/// Checks a caller-chosen long-term access key: an id of `AKIA` and 12–124 more uppercase letters
/// or digits (so it can never pass for a session's `ASIA…` key), and a secret of 40–128 visible
/// ASCII characters.
fn chosen_access_key(id: String, secret: String) -> Result<(String, SecretBytes), ServiceError> {
    let id_ok = id.starts_with("AKIA")
        && (16..=128).contains(&id.len())
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !id_ok {
        return Err(invalid("AccessKeyId must be AKIA followed by 12-124 uppercase letters or digits"));
    }
    if !(40..=128).contains(&secret.len()) || !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid("SecretAccessKey must be 40-128 visible ASCII characters"));
    }
    Ok((id, SecretBytes::new(secret.into_bytes())))
}

impl Service {
    fn principal_arn(&self, ctx: &RequestContext, kind: PrincipalType, name: &str) -> String {
        let account = &ctx.caller.principal.account;
        match kind {
            PrincipalType::User => format!("arn:aws:iam::{account}:user/{name}"),
            PrincipalType::Role => format!("arn:aws:iam::{account}:role/{name}"),
            PrincipalType::Group => format!("arn:aws:iam::{account}:group/{name}"),
            PrincipalType::OidcProvider => format!("arn:aws:iam::{account}:oidc-provider/{name}"),
            // Service principals stand for AWS's services: the operator's, whoever asks.
            PrincipalType::Service => self.service_principal_arn(name),
        }
    }

    /// The account a principal of `kind` (and its access keys) is stored under: the caller's,
    /// except service principals, which are the operator's.
    fn principal_account(&self, ctx: &RequestContext, kind: PrincipalType) -> kms_core::ids::AccountId {
        match kind {
            PrincipalType::Service => self.operator_account.clone(),
            PrincipalType::User | PrincipalType::Role | PrincipalType::Group | PrincipalType::OidcProvider => {
                ctx.caller.principal.account.clone()
            }
        }
    }

    /// Checks an action that only the server's operator may take: creating accounts and
    /// managing service principals and their keys. The operator is the server's own account
    /// (made at first start, holding the first admin): an account admin elsewhere, however
    /// privileged in its account, is refused. Within the operator's account, identity policies
    /// decide as for any action.
    ///
    /// # Errors
    /// `AccessDeniedException`.
    async fn authorize_operator(&self, ctx: &RequestContext, action: &str, resource: &str) -> Result<(), ServiceError> {
        if ctx.caller.principal.account != self.operator_account {
            return Err(ServiceError::Kms(KmsError::AccessDenied(Box::new(kms_core::error::AccessDenied {
                principal: ctx.caller.principal.arn.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                reason: "because only the server operator's account may take this action".into(),
            }))));
        }
        self.authorize_iam(ctx, action, resource, RequestKeys::none()).await
    }

    /// Authorizes a principal-management action: operator-only for service principals.
    async fn authorize_principal_action(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        action: &str,
        arn: &str,
    ) -> Result<(), ServiceError> {
        match kind {
            PrincipalType::Service => self.authorize_operator(ctx, action, arn).await,
            PrincipalType::User | PrincipalType::Role | PrincipalType::Group | PrincipalType::OidcProvider => {
                self.authorize_iam(ctx, action, arn, RequestKeys::none()).await
            }
        }
    }

    async fn create_principal(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        name: String,
        trust_policy: Option<String>,
    ) -> Result<PrincipalRecord, ServiceError> {
        let arn = self.principal_arn(ctx, kind, &name);
        let action = match kind {
            PrincipalType::User => "iam:CreateUser",
            PrincipalType::Role => "iam:CreateRole",
            PrincipalType::Service => "iam:CreateServicePrincipal",
            PrincipalType::Group => "iam:CreateGroup",
            PrincipalType::OidcProvider => "iam:CreateOpenIDConnectProvider",
        };
        self.authorize_principal_action(ctx, kind, action, &arn).await?;
        let prefix = match kind {
            PrincipalType::User => "AIDA",
            PrincipalType::Role => "AROA",
            PrincipalType::Service => "ASVC",
            PrincipalType::Group => "AGPA",
            PrincipalType::OidcProvider => "AOIP",
        };
        let account = self.principal_account(ctx, kind);
        let record = PrincipalRecord {
            arn,
            account,
            kind,
            name,
            principal_id: new_principal_id(prefix, self.rng.as_ref()),
            trust_policy,
            created: self.clock.now(),
            attributes: Default::default(),
        };
        // A name taken meanwhile is refused with AlreadyExistsException.
        let response = PrincipalResponse { principal: out(&record) };
        self.commit(ctx, Change::CreatePrincipal(record.clone()), response).await?;
        Ok(record)
    }

    async fn delete_principal(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        name: &str,
    ) -> Result<(), ServiceError> {
        let arn = self.principal_arn(ctx, kind, name);
        let action = match kind {
            PrincipalType::User => "iam:DeleteUser",
            PrincipalType::Role => "iam:DeleteRole",
            PrincipalType::Service => "iam:DeleteServicePrincipal",
            PrincipalType::Group => "iam:DeleteGroup",
            PrincipalType::OidcProvider => "iam:DeleteOpenIDConnectProvider",
        };
        self.authorize_principal_action(ctx, kind, action, &arn).await?;
        // Its access keys, sessions and identity policies go with it.
        let missing = format!("{} {name}", kind.as_str());
        self.commit(ctx, Change::DeletePrincipal { arn, missing }, Empty {}).await?;
        Ok(())
    }

    async fn put_policy(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        req: AdminRequest,
    ) -> Result<(), ServiceError> {
        let (field, name, action) = match kind {
            PrincipalType::Role => ("RoleName", req.role_name, "iam:PutRolePolicy"),
            _ => ("UserName", req.user_name, "iam:PutUserPolicy"),
        };
        let name = principal_name(field, name)?;
        let policy_name = principal_name("PolicyName", req.policy_name)?;
        let document = policy_document(req.policy_document, "PolicyDocument", PolicyKind::Identity)?;
        let arn = self.principal_arn(ctx, kind, &name);
        self.authorize_iam(ctx, action, &arn, RequestKeys::none()).await?;
        let record = IdentityPolicyRecord { principal_arn: arn.clone(), name: policy_name, document };
        let missing = format!("{} {name}", kind.as_str());
        self.commit(ctx, Change::PutIdentityPolicy { policy: record, missing }, Empty {}).await?;
        Ok(())
    }

    async fn delete_policy(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        req: AdminRequest,
    ) -> Result<(), ServiceError> {
        let (field, name, action) = match kind {
            PrincipalType::Role => ("RoleName", req.role_name, "iam:DeleteRolePolicy"),
            _ => ("UserName", req.user_name, "iam:DeleteUserPolicy"),
        };
        let name = principal_name(field, name)?;
        let policy_name = principal_name("PolicyName", req.policy_name)?;
        let arn = self.principal_arn(ctx, kind, &name);
        self.authorize_iam(ctx, action, &arn, RequestKeys::none()).await?;
        let missing = format!("policy {policy_name} of {name}");
        let change = Change::DeleteIdentityPolicy { principal_arn: arn, name: policy_name, missing };
        self.commit(ctx, change, Empty {}).await?;
        Ok(())
    }

    async fn create_access_key(
        &self,
        ctx: &RequestContext,
        req: AdminRequest,
    ) -> Result<AccessKeyResponse, ServiceError> {
        let (record, response) = self.new_access_key(ctx, req).await?;
        self.commit(ctx, Change::CreateAccessKey(record), response).await
    }

    /// Checks a CreateAccessKey request and makes the key and the response (nothing is stored).
    async fn new_access_key(
        &self,
        ctx: &RequestContext,
        req: AdminRequest,
    ) -> Result<(AccessKeyRecord, AccessKeyResponse), ServiceError> {
        let (kind, name) = match (req.user_name, req.service_name) {
            (Some(user), None) => (PrincipalType::User, principal_name("UserName", Some(user))?),
            (None, Some(service)) => (PrincipalType::Service, service_name(Some(service))?),
            _ => return Err(invalid("give exactly one of UserName and ServiceName")),
        };
        let arn = self.principal_arn(ctx, kind, &name);
        self.authorize_principal_action(ctx, kind, "iam:CreateAccessKey", &arn).await?;
        if self.store.principal(&arn).await?.is_none() {
            return Err(not_found(&format!("{} {name}", kind.as_str())));
        }
        let (access_key_id, secret) = match (req.access_key_id, req.secret_access_key) {
            (None, None) => (new_principal_id("AKIA", self.rng.as_ref()), new_secret(self.rng.as_ref())),
            (Some(id), Some(secret)) => chosen_access_key(id, secret)?,
            _ => return Err(invalid("give both AccessKeyId and SecretAccessKey, or neither")),
        };
        if self.store.access_key(&access_key_id).await?.is_some() {
            return Err(ServiceError::Api(ApiError::with_message(
                Exception::AlreadyExists,
                format!("access key {access_key_id} already exists"),
            )));
        }
        let record = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            account: self.principal_account(ctx, kind),
            principal_arn: arn.clone(),
            wrapped_secret: self.root.wrap(&secret_aad(&access_key_id), secret.expose_secret())?,
            created: self.clock.now(),
            session: None,
            active: true,
            last_used: None,
        };
        let secret_access_key = String::from_utf8_lossy(secret.expose_secret()).into_owned();
        let response =
            AccessKeyResponse { access_key: AccessKeyOut { access_key_id, secret_access_key, principal_arn: arn } };
        Ok((record, response))
    }

    /// A new account with an `admin` user (AdministratorAccess) and an access key for it.
    ///
    /// Several changes; the last, the access key, carries the request's audit event. Should an
    /// earlier one succeed and a later one fail, the request is recorded as failed and the admin
    /// user remains without a key (a retry creates another account).
    async fn create_account(
        &self,
        ctx: &RequestContext,
        chosen: Option<String>,
    ) -> Result<AccountResponse, ServiceError> {
        self.authorize_operator(ctx, "organizations:CreateAccount", "*").await?;
        let account = match chosen {
            None => crate::bootstrap::new_account_id(self.rng.as_ref()),
            Some(id) => {
                let id = kms_core::ids::AccountId::parse(&id)
                    .map_err(|_| invalid(format!("AccountId '{id}' is not a 12-digit account id")))?;
                let admin = format!("arn:aws:iam::{id}:user/admin");
                if id == self.operator_account || self.store.principal(&admin).await?.is_some() {
                    return Err(ServiceError::Api(ApiError::with_message(
                        Exception::AlreadyExists,
                        format!("account {id} already exists"),
                    )));
                }
                id
            }
        };
        crate::bootstrap::create_admin_principal(self.store.as_ref(), &account, self.clock.as_ref(), self.rng.as_ref())
            .await
            .map_err(|e| match e {
                crate::bootstrap::StartError::Store(s) => ServiceError::Store(s),
                crate::bootstrap::StartError::RootKey(r) => ServiceError::RootKey(r),
                other => ServiceError::Store(StoreError::Backend(Box::new(std::io::Error::other(other.to_string())))),
            })?;
        let sub = RequestContext {
            caller: crate::service::Caller {
                principal: std::sync::Arc::new(crate::principals::root_principal(&account)),
                access_key_id: ctx.caller.access_key_id.clone(),
                tags: std::sync::Arc::new([]),
            },
            ..ctx.clone()
        };
        let (record, key) = self
            .new_access_key(&sub, AdminRequest { user_name: Some("admin".into()), ..AdminRequest::default() })
            .await?;
        let response = AccountResponse { account_id: account.to_string(), access_key: key.access_key };
        // The event is the caller's request (`ctx`), not the new account's root acting (`sub`).
        self.commit(ctx, Change::CreateAccessKey(record), response).await
    }

    /// A principal with its trust policy, inline policies and (long-term) access key ids.
    async fn principal_detail(
        &self,
        ctx: &RequestContext,
        req: AdminRequest,
    ) -> Result<PrincipalDetailResponse, ServiceError> {
        let (kind, name, action) = match (req.user_name, req.role_name, req.service_name) {
            (Some(user), None, None) => (PrincipalType::User, principal_name("UserName", Some(user))?, "iam:GetUser"),
            (None, Some(role), None) => (PrincipalType::Role, principal_name("RoleName", Some(role))?, "iam:GetRole"),
            (None, None, Some(service)) => {
                (PrincipalType::Service, service_name(Some(service))?, "iam:GetServicePrincipal")
            }
            _ => return Err(invalid("give exactly one of UserName, RoleName and ServiceName")),
        };
        let arn = self.principal_arn(ctx, kind, &name);
        self.authorize_principal_action(ctx, kind, action, &arn).await?;
        let record =
            self.store.principal(&arn).await?.ok_or_else(|| not_found(&format!("{} {name}", kind.as_str())))?;
        let policies = self
            .store
            .identity_policies(&arn)
            .await?
            .into_iter()
            .map(|p| InlinePolicyOut { policy_name: p.name, policy_document: p.document })
            .collect();
        let access_key_ids = self
            .store
            .access_keys_of(&arn)
            .await?
            .into_iter()
            .filter(|k| k.session.is_none())
            .map(|k| k.access_key_id)
            .collect();
        Ok(PrincipalDetailResponse {
            assume_role_policy_document: record.trust_policy.clone(),
            principal: out(&record),
            policies,
            access_key_ids,
        })
    }

    /// DeleteAccessKey as IAM has it: the key of the user named by `UserName` (or of the service
    /// named by `ServiceName`), else of the caller. Authorization is decided on the principal
    /// the caller named, before the key is looked up, so a denial names only what the caller
    /// gave and no answer tells whose key an id is.
    async fn delete_access_key(&self, ctx: &RequestContext, req: AdminRequest) -> Result<(), ServiceError> {
        let id = req.access_key_id.ok_or_else(|| invalid("AccessKeyId is required"))?;
        let (kind, owner) = match (req.user_name, req.service_name) {
            (Some(user), None) => {
                let name = principal_name("UserName", Some(user))?;
                (PrincipalType::User, self.principal_arn(ctx, PrincipalType::User, &name))
            }
            (None, Some(service)) => {
                let name = service_name(Some(service))?;
                (PrincipalType::Service, self.principal_arn(ctx, PrincipalType::Service, &name))
            }
            (None, None) => (PrincipalType::User, ctx.caller.principal.arn.clone()),
            (Some(_), Some(_)) => return Err(invalid("give at most one of UserName and ServiceName")),
        };
        self.authorize_principal_action(ctx, kind, "iam:DeleteAccessKey", &owner).await?;
        let missing = || not_found(&format!("The Access Key with id {id}"));
        let record = self.store.access_key(&id).await?.ok_or_else(missing)?;
        if record.principal_arn != owner || record.session.is_some() {
            return Err(missing());
        }
        // Deleted by someone else meanwhile: gone all the same, and recorded without a change.
        self.commit(ctx, Change::DeleteAccessKey(id), Empty {}).await?;
        Ok(())
    }

    /// CreateForwardAccessToken: the caller's consent for one service principal to act for it
    /// for a few minutes (see [`crate::forward_access`]).
    async fn create_forward_access_token(
        &self,
        ctx: &RequestContext,
        req: AdminRequest,
    ) -> Result<ForwardAccessTokenResponse, ServiceError> {
        let service = req.service_principal.ok_or_else(|| invalid("ServicePrincipal is required"))?;
        let service = service_name(Some(service))
            .map_err(|_| invalid("ServicePrincipal must look like logs.us-east-1.amazonaws.com"))?;
        let (min, max, default) = crate::forward_access::DURATION_SECONDS;
        let seconds = req.duration_seconds.unwrap_or(default);
        if !(min..=max).contains(&seconds) {
            return Err(invalid(format!("DurationSeconds must be between {min} and {max}")));
        }
        let issued = self.issue_forward_access_token(ctx, &service, seconds).await?;
        Ok(ForwardAccessTokenResponse {
            forward_access_token: String::from_utf8_lossy(issued.token.expose_secret()).into_owned(),
            service_principal: service,
            expiration: issued.expires.epoch_seconds_f64(),
        })
    }

    /// Runs an admin operation.
    ///
    /// # Errors
    /// `UnknownOperationException` for an unknown admin operation; validation, not-found,
    /// already-exists and access-denied errors as the operation finds them.
    pub async fn admin(&self, ctx: &RequestContext, operation: &str, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let req: AdminRequest = decode_json(body)?;
        let principal = |p: PrincipalRecord| encode_response(&PrincipalResponse { principal: out(&p) });
        Ok(match operation {
            "CreateUser" => {
                let name = principal_name("UserName", req.user_name)?;
                principal(self.create_principal(ctx, PrincipalType::User, name, None).await?)
            }
            "CreateRole" => {
                let name = principal_name("RoleName", req.role_name)?;
                let trust = policy_document(
                    req.assume_role_policy_document,
                    "AssumeRolePolicyDocument",
                    PolicyKind::RoleTrust,
                )?;
                principal(self.create_principal(ctx, PrincipalType::Role, name, Some(trust)).await?)
            }
            "CreateServicePrincipal" => {
                let name = service_name(req.service_name)?;
                principal(self.create_principal(ctx, PrincipalType::Service, name, None).await?)
            }
            "DeleteUser" => {
                let name = principal_name("UserName", req.user_name)?;
                self.delete_principal(ctx, PrincipalType::User, &name).await?;
                encode_response(&Empty {})
            }
            "DeleteRole" => {
                let name = principal_name("RoleName", req.role_name)?;
                self.delete_principal(ctx, PrincipalType::Role, &name).await?;
                encode_response(&Empty {})
            }
            "DeleteServicePrincipal" => {
                let name = service_name(req.service_name)?;
                self.delete_principal(ctx, PrincipalType::Service, &name).await?;
                encode_response(&Empty {})
            }
            "PutUserPolicy" => {
                self.put_policy(ctx, PrincipalType::User, req).await?;
                encode_response(&Empty {})
            }
            "PutRolePolicy" => {
                self.put_policy(ctx, PrincipalType::Role, req).await?;
                encode_response(&Empty {})
            }
            "DeleteUserPolicy" => {
                self.delete_policy(ctx, PrincipalType::User, req).await?;
                encode_response(&Empty {})
            }
            "DeleteRolePolicy" => {
                self.delete_policy(ctx, PrincipalType::Role, req).await?;
                encode_response(&Empty {})
            }
            "CreateAccessKey" => encode_response(&self.create_access_key(ctx, req).await?),
            "CreateAccount" => {
                let chosen = req.account_id.clone();
                encode_response(&self.create_account(ctx, chosen).await?)
            }
            "Reset" => {
                self.authorize_operator(ctx, "ferrokms:Reset", "*").await?;
                self.commit(ctx, Change::Reset, Empty {}).await?;
                encode_response(&Empty {})
            }
            "CreateForwardAccessToken" => encode_response(&self.create_forward_access_token(ctx, req).await?),
            "CreatePinnedKey" => {
                let pinned = decode_json(body)?;
                encode_response(&crate::ops::create_key::create_pinned(self, ctx, pinned).await?)
            }
            "GetPrincipal" => encode_response(&self.principal_detail(ctx, req).await?),
            "DeleteAccessKey" => {
                self.delete_access_key(ctx, req).await?;
                encode_response(&Empty {})
            }
            "PutOpenIDConnectProviderKeys" => {
                let arn =
                    req.open_id_connect_provider_arn.ok_or_else(|| invalid("OpenIDConnectProviderArn is required"))?;
                let jwks = req.jwks.ok_or_else(|| invalid("Jwks is required"))?;
                self.put_oidc_keys(ctx, &arn, jwks).await?;
                encode_response(&Empty {})
            }
            "ListPrincipals" => {
                let account = &ctx.caller.principal.account;
                self.authorize_iam(ctx, "iam:ListPrincipals", "*", RequestKeys::none()).await?;
                let all = self.store.list_principals(account).await?;
                encode_response(&ListResponse { principals: all.iter().map(out).collect() })
            }
            other => {
                return Err(ServiceError::Api(ApiError::with_message(
                    Exception::UnknownOperation,
                    format!("'{ADMIN_TARGET_PREFIX}{other}' is not an admin operation"),
                )));
            }
        })
    }
}
