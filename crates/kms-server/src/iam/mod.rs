//! The AWS IAM API on the same endpoint (query protocol, `Version=2010-05-08`, XML answers), so
//! that `aws iam`, boto3's IAM client and Terraform's `aws_iam_*` resources manage ferrokms's
//! principals by endpoint override (`AWS_ENDPOINT_URL_IAM`).
//!
//! Users, roles, their inline policies, tags and access keys, over the same store records the
//! admin API uses: every change is authorized by the caller's identity policies (`iam:<Action>`
//! on the entity's ARN), committed with its audit event (`eventSource` `iam.amazonaws.com`) and
//! invalidates what this and other nodes cached about the principal at once.

use base64::Engine;
use kms_api::{ApiError, Empty, Exception};
use kms_core::policy::{PolicyDocument, PolicyError, PolicyKind, PrincipalKind};
use kms_store::{
    AccessKeyRecord, IdentityPolicyRecord, PrincipalAttributes, PrincipalRecord, PrincipalTag, PrincipalType,
};

use crate::auth::secret_aad;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::{new_principal_id, new_secret};
use crate::query::{QueryApi, form, url_encode, xml_escape};
use crate::service::{RequestContext, Service};
use crate::sts::{DEFAULT_MAX_SESSION_SECONDS, iso8601_seconds};

mod managed;
pub mod oidc;
mod simulate;

pub use managed::applies_to_others;

/// Most items a List operation returns when `MaxItems` is not given (IAM's default).
const DEFAULT_MAX_ITEMS: usize = 100;
/// Most long-term access keys per user (IAM's quota).
const ACCESS_KEYS_PER_USER: usize = 2;
/// Most tags per user or role.
const TAGS_PER_PRINCIPAL: usize = 50;
/// IAM's limits on the total size of a principal's inline policies (characters, whitespace not
/// counted).
const USER_POLICY_BYTES: usize = 2048;
const ROLE_POLICY_BYTES: usize = 10_240;
const GROUP_POLICY_BYTES: usize = 5120;
/// Most managed policies attached to one user, role or group (IAM's default quota).
const ATTACHED_POLICIES: usize = 10;
/// Most versions a managed policy keeps.
const POLICY_VERSIONS: usize = 5;
/// Longest managed policy document (characters, whitespace not counted).
const MANAGED_POLICY_BYTES: usize = 6144;
/// Longest policy document IAM accepts in a request.
const POLICY_DOCUMENT_MAX: usize = 131_072;

/// The message IAM answers `EntityAlreadyExists` with for a user or role name taken.
pub(crate) fn already_exists_message(kind: PrincipalType, name: &str) -> String {
    match kind {
        PrincipalType::User => format!("User with name {name} already exists."),
        PrincipalType::Role => format!("Role with name {name} already exists."),
        PrincipalType::Group => format!("Group with name {name} already exists."),
        PrincipalType::Service => format!("service {name} already exists"),
        PrincipalType::OidcProvider => format!("Provider with url https://{name} already exists."),
    }
}

fn error(exception: Exception, message: impl Into<String>) -> ServiceError {
    ServiceError::Api(ApiError::with_message(exception, message))
}

fn no_such_entity(message: impl Into<String>) -> ServiceError {
    error(Exception::NotFound, message)
}

fn principal_missing(kind: PrincipalType, name: &str) -> ServiceError {
    no_such_entity(format!("The {} with name {name} cannot be found.", kind.as_str()))
}

/// The request's parameters, with IAM's validation of each member it reads.
struct Params {
    pairs: Vec<(String, String)>,
    violations: Vec<String>,
}

/// What a member must match, as IAM's validation messages state it.
const NAME_PATTERN: &str = "[\\w+=,.@-]+";
const PATH_PATTERN: &str = "(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)";

impl Params {
    fn new(body: &[u8]) -> Self {
        Self { pairs: form(body), violations: Vec::new() }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn violate(&mut self, value: &str, member: &str, constraint: impl std::fmt::Display) {
        let shown = if value.len() > 200 { "…" } else { value };
        self.violations
            .push(format!("Value '{shown}' at '{member}' failed to satisfy constraint: Member must {constraint}"));
    }

    /// A member's value, checked for length; `None` (with a violation when required) when absent.
    fn text(&mut self, name: &str, required: bool, len: (usize, usize)) -> Option<String> {
        let member = lower_first(name);
        let Some(value) = self.get(name).map(str::to_owned) else {
            if required {
                self.violations
                    .push(format!("Value null at '{member}' failed to satisfy constraint: Member must not be null"));
            }
            return None;
        };
        let n = value.chars().count();
        if n < len.0 {
            self.violate(&value, &member, format_args!("have length greater than or equal to {}", len.0));
        } else if n > len.1 {
            self.violate(&value, &member, format_args!("have length less than or equal to {}", len.1));
        }
        Some(value)
    }

    /// A user, role or policy name: 1..=`max` of letters, digits and `_+=,.@-`.
    fn name(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let value = self.text(name, required, (1, max))?;
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
            self.violate(
                &value,
                &lower_first(name),
                format_args!("satisfy regular expression pattern: {NAME_PATTERN}"),
            );
        }
        Some(value)
    }

    /// An IAM path: `/`, or `/` + printable ASCII + `/`.
    fn path(&mut self, name: &str) -> Option<String> {
        let value = self.text(name, false, (1, 512))?;
        let ok = value == "/"
            || (value.len() >= 3
                && value.starts_with('/')
                && value.ends_with('/')
                && value.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        if !ok {
            self.violate(
                &value,
                &lower_first(name),
                format_args!("satisfy regular expression pattern: {PATH_PATTERN}"),
            );
        }
        Some(value)
    }

    fn integer(&mut self, name: &str, range: (i64, i64)) -> Option<i64> {
        let value = self.get(name)?.to_owned();
        let member = lower_first(name);
        match value.parse::<i64>() {
            Ok(n) if n < range.0 => {
                self.violate(&value, &member, format_args!("have value greater than or equal to {}", range.0));
                None
            }
            Ok(n) if n > range.1 => {
                self.violate(&value, &member, format_args!("have value less than or equal to {}", range.1));
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                self.violate(&value, &member, "be a number");
                None
            }
        }
    }

    /// `Prefix.member.N` values, in N order.
    fn list(&self, prefix: &str) -> Vec<(usize, &str, &str)> {
        let mut items: Vec<(usize, &str, &str)> = self
            .pairs
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix(".member.")?;
                let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
                Some((n.parse().ok()?, field, v.as_str()))
            })
            .collect();
        items.sort_by_key(|(n, _, _)| *n);
        items
    }

    /// `Tags.member.N.Key` / `.Value`, checked as IAM checks tags.
    fn tags(&mut self) -> Vec<PrincipalTag> {
        let tags = crate::query::tags(&self.pairs);
        for (i, tag) in tags.iter().enumerate() {
            let member = format!("tags.{}.member.key", i + 1);
            if tag.key.is_empty() || tag.key.chars().count() > 128 {
                self.violate(&tag.key, &member, "have length between 1 and 128");
            } else if !tag.key.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)) {
                self.violate(&tag.key, &member, "satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+");
            }
            if tag.value.chars().count() > 256 {
                self.violate(
                    &tag.value,
                    &format!("tags.{}.member.value", i + 1),
                    "have length less than or equal to 256",
                );
            }
        }
        tags
    }

    /// `MaxItems` (1..=1000, default 100) and `Marker`.
    fn page(&mut self) -> (usize, Option<String>) {
        let max = self.integer("MaxItems", (1, 1000)).and_then(|n| usize::try_from(n).ok());
        let marker = self.text("Marker", false, (1, 320));
        (max.unwrap_or(DEFAULT_MAX_ITEMS), marker)
    }

    /// Ends validation: every violation found, in one `ValidationError`, as IAM lists them.
    fn done(&mut self) -> Result<(), ServiceError> {
        match self.violations.len() {
            0 => Ok(()),
            1 => Err(error(
                Exception::Validation,
                format!("1 validation error detected: {}", self.violations.join("; ")),
            )),
            n => Err(error(
                Exception::Validation,
                format!("{n} validation errors detected: {}", self.violations.join("; ")),
            )),
        }
    }
}

/// `UserName` → `userName`, as IAM's validation messages name members.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Checks a policy document as IAM does: `MalformedPolicyDocument` for what does not parse.
fn policy_document(text: &str, kind: PolicyKind) -> Result<(), ServiceError> {
    PolicyDocument::parse(text, kind).map(drop).map_err(|e| {
        let message = match e {
            PolicyError::Json(_) => "Syntax errors in policy.".to_owned(),
            other => other.to_string(),
        };
        error(Exception::MalformedPolicyDocument, message)
    })
}

/// A policy's size as IAM counts it against the inline-policy quotas: whitespace not counted.
fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// One page of `items` (sorted by `name`) after `marker`: the page and the next marker.
fn paginate<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    max: usize,
    marker: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let start = match marker {
        None => None,
        Some(m) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| error(Exception::InvalidInput, "Invalid Marker."))?,
        ),
    };
    let mut rest: Vec<T> = items.into_iter().filter(|i| start.as_deref().is_none_or(|s| name(i) >= s)).collect();
    let next = rest.get(max).map(|i| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name(i)));
    rest.truncate(max);
    Ok((rest, next))
}

/// One page of items already in order (policy versions, newest first), the marker being the
/// next item's position.
fn paginate_in_order<T>(
    items: Vec<T>,
    max: usize,
    marker: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let start = match marker {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| error(Exception::InvalidInput, "Invalid Marker."))?,
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let next = (rest.len() > max).then(|| (start + max).to_string());
    Ok((rest.into_iter().take(max).collect(), next))
}

/// `<IsTruncated>` and `<Marker>` of a list answer.
fn truncation(next: Option<&str>) -> String {
    match next {
        Some(marker) => format!("<IsTruncated>true</IsTruncated><Marker>{}</Marker>", xml_escape(marker)),
        None => "<IsTruncated>false</IsTruncated>".to_owned(),
    }
}

fn tags_xml(tags: &[PrincipalTag]) -> String {
    let members: String = tags
        .iter()
        .map(|t| format!("<member><Key>{}</Key><Value>{}</Value></member>", xml_escape(&t.key), xml_escape(&t.value)))
        .collect();
    format!("<Tags>{members}</Tags>")
}

fn path_of(p: &PrincipalRecord) -> &str {
    p.attributes.path.as_deref().unwrap_or("/")
}

/// What users and groups show alike: path, name, id (as `<{kind}Name>`, `<{kind}Id>`), ARN and
/// creation date.
fn identity_xml(p: &PrincipalRecord, kind: &str) -> String {
    format!(
        "<Path>{}</Path><{kind}Name>{}</{kind}Name><{kind}Id>{}</{kind}Id><Arn>{}</Arn><CreateDate>{}</CreateDate>",
        xml_escape(path_of(p)),
        xml_escape(&p.name),
        xml_escape(&p.principal_id),
        xml_escape(&p.arn),
        iso8601_seconds(p.created)
    )
}

/// A `User` element; with its tags where IAM shows them (CreateUser, GetUser).
fn user_xml(p: &PrincipalRecord, with_tags: bool) -> String {
    let tags = if with_tags && !p.attributes.tags.is_empty() { tags_xml(&p.attributes.tags) } else { String::new() };
    format!("{}{tags}", identity_xml(p, "User"))
}

/// A `Role` element: the trust policy URL-encoded, as IAM returns policy documents.
fn role_xml(p: &PrincipalRecord, with_tags: bool) -> String {
    let a = &p.attributes;
    let description =
        a.description.as_deref().map(|d| format!("<Description>{}</Description>", xml_escape(d))).unwrap_or_default();
    let tags = if with_tags && !a.tags.is_empty() { tags_xml(&a.tags) } else { String::new() };
    format!(
        "<Path>{}</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn><CreateDate>{}</CreateDate>\
         <AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>{description}\
         <MaxSessionDuration>{}</MaxSessionDuration>{tags}",
        xml_escape(path_of(p)),
        xml_escape(&p.name),
        xml_escape(&p.principal_id),
        xml_escape(&p.arn),
        iso8601_seconds(p.created),
        url_encode(p.trust_policy.as_deref().unwrap_or_default()),
        a.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECONDS),
    )
}

/// The element and member names IAM uses for users and roles.
const fn entity(kind: PrincipalType) -> (&'static str, &'static str) {
    match kind {
        PrincipalType::Role => ("Role", "RoleName"),
        PrincipalType::Group => ("Group", "GroupName"),
        PrincipalType::User | PrincipalType::Service | PrincipalType::OidcProvider => ("User", "UserName"),
    }
}

/// IAM's action for `kind`: `iam:Create{}` → `iam:CreateUser`, `iam:CreateRole`, …
fn act(kind: PrincipalType, template: &str) -> String {
    template.replace("{}", entity(kind).0)
}

/// A `Group` element.
fn group_xml(p: &PrincipalRecord) -> String {
    identity_xml(p, "Group")
}

fn entity_xml(p: &PrincipalRecord, with_tags: bool) -> String {
    match p.kind {
        PrincipalType::Role => role_xml(p, with_tags),
        PrincipalType::Group => group_xml(p),
        PrincipalType::User | PrincipalType::Service | PrincipalType::OidcProvider => user_xml(p, with_tags),
    }
}

impl Service {
    /// Answers an IAM request.
    ///
    /// # Errors
    /// IAM's errors (rendered by [`QueryApi::Iam`]).
    pub async fn iam(&self, ctx: &RequestContext, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
        let mut p = Params::new(body);
        let action =
            p.get("Action").map(str::to_owned).ok_or_else(|| error(Exception::Validation, "Action is required"))?;
        let result = match action.as_str() {
            "CreateUser" => self.iam_create(ctx, &mut p, PrincipalType::User).await?,
            "CreateRole" => self.iam_create(ctx, &mut p, PrincipalType::Role).await?,
            "GetUser" => self.iam_get_user(ctx, &mut p).await?,
            "GetRole" => self.iam_get(ctx, &mut p, PrincipalType::Role).await?,
            "ListUsers" => self.iam_list(ctx, &mut p, PrincipalType::User).await?,
            "ListRoles" => self.iam_list(ctx, &mut p, PrincipalType::Role).await?,
            "DeleteUser" => self.iam_delete(ctx, &mut p, PrincipalType::User).await?,
            "DeleteRole" => self.iam_delete(ctx, &mut p, PrincipalType::Role).await?,
            "UpdateRole" => self.iam_update_role(ctx, &mut p).await?,
            "UpdateUser" => self.iam_update_user(ctx, &mut p).await?,
            "UpdateAssumeRolePolicy" => self.iam_update_trust(ctx, &mut p).await?,
            "TagUser" => self.iam_tag(ctx, &mut p, PrincipalType::User).await?,
            "TagRole" => self.iam_tag(ctx, &mut p, PrincipalType::Role).await?,
            "UntagUser" => self.iam_untag(ctx, &mut p, PrincipalType::User).await?,
            "UntagRole" => self.iam_untag(ctx, &mut p, PrincipalType::Role).await?,
            "ListUserTags" => self.iam_list_tags(ctx, &mut p, PrincipalType::User).await?,
            "ListRoleTags" => self.iam_list_tags(ctx, &mut p, PrincipalType::Role).await?,
            "PutUserPolicy" => self.iam_put_policy(ctx, &mut p, PrincipalType::User).await?,
            "PutRolePolicy" => self.iam_put_policy(ctx, &mut p, PrincipalType::Role).await?,
            "GetUserPolicy" => self.iam_get_policy(ctx, &mut p, PrincipalType::User).await?,
            "GetRolePolicy" => self.iam_get_policy(ctx, &mut p, PrincipalType::Role).await?,
            "ListUserPolicies" => self.iam_list_policies(ctx, &mut p, PrincipalType::User).await?,
            "ListRolePolicies" => self.iam_list_policies(ctx, &mut p, PrincipalType::Role).await?,
            "DeleteUserPolicy" => self.iam_delete_policy(ctx, &mut p, PrincipalType::User).await?,
            "DeleteRolePolicy" => self.iam_delete_policy(ctx, &mut p, PrincipalType::Role).await?,
            "CreateAccessKey" => self.iam_create_access_key(ctx, &mut p).await?,
            "ListAccessKeys" => self.iam_list_access_keys(ctx, &mut p).await?,
            "UpdateAccessKey" => self.iam_update_access_key(ctx, &mut p).await?,
            "DeleteAccessKey" => self.iam_delete_access_key(ctx, &mut p).await?,
            "GetAccessKeyLastUsed" => self.iam_access_key_last_used(ctx, &mut p).await?,
            "CreateGroup" => self.iam_create(ctx, &mut p, PrincipalType::Group).await?,
            "GetGroup" => self.iam_get_group(ctx, &mut p).await?,
            "ListGroups" => self.iam_list(ctx, &mut p, PrincipalType::Group).await?,
            "DeleteGroup" => self.iam_delete(ctx, &mut p, PrincipalType::Group).await?,
            "AddUserToGroup" => self.iam_membership(ctx, &mut p, true).await?,
            "RemoveUserFromGroup" => self.iam_membership(ctx, &mut p, false).await?,
            "ListGroupsForUser" => self.iam_groups_for_user(ctx, &mut p).await?,
            "PutGroupPolicy" => self.iam_put_policy(ctx, &mut p, PrincipalType::Group).await?,
            "GetGroupPolicy" => self.iam_get_policy(ctx, &mut p, PrincipalType::Group).await?,
            "ListGroupPolicies" => self.iam_list_policies(ctx, &mut p, PrincipalType::Group).await?,
            "DeleteGroupPolicy" => self.iam_delete_policy(ctx, &mut p, PrincipalType::Group).await?,
            "CreatePolicy" => self.iam_create_managed(ctx, &mut p).await?,
            "GetPolicy" => self.iam_get_managed(ctx, &mut p).await?,
            "ListPolicies" => self.iam_list_managed(ctx, &mut p).await?,
            "DeletePolicy" => self.iam_delete_managed(ctx, &mut p).await?,
            "CreatePolicyVersion" => self.iam_create_version(ctx, &mut p).await?,
            "GetPolicyVersion" => self.iam_get_version(ctx, &mut p).await?,
            "ListPolicyVersions" => self.iam_list_versions(ctx, &mut p).await?,
            "DeletePolicyVersion" => self.iam_delete_version(ctx, &mut p).await?,
            "SetDefaultPolicyVersion" => self.iam_set_default_version(ctx, &mut p).await?,
            "AttachUserPolicy" => self.iam_attach(ctx, &mut p, PrincipalType::User, true).await?,
            "AttachRolePolicy" => self.iam_attach(ctx, &mut p, PrincipalType::Role, true).await?,
            "AttachGroupPolicy" => self.iam_attach(ctx, &mut p, PrincipalType::Group, true).await?,
            "DetachUserPolicy" => self.iam_attach(ctx, &mut p, PrincipalType::User, false).await?,
            "DetachRolePolicy" => self.iam_attach(ctx, &mut p, PrincipalType::Role, false).await?,
            "DetachGroupPolicy" => self.iam_attach(ctx, &mut p, PrincipalType::Group, false).await?,
            "ListAttachedUserPolicies" => self.iam_list_attached(ctx, &mut p, PrincipalType::User).await?,
            "ListAttachedRolePolicies" => self.iam_list_attached(ctx, &mut p, PrincipalType::Role).await?,
            "ListAttachedGroupPolicies" => self.iam_list_attached(ctx, &mut p, PrincipalType::Group).await?,
            "SimulatePrincipalPolicy" => self.iam_simulate(ctx, &mut p).await?,
            "CreateOpenIDConnectProvider" => self.iam_create_oidc(ctx, &mut p).await?,
            "GetOpenIDConnectProvider" => self.iam_get_oidc(ctx, &mut p).await?,
            "ListOpenIDConnectProviders" => self.iam_list_oidc(ctx, &mut p).await?,
            "DeleteOpenIDConnectProvider" => self.iam_delete_oidc(ctx, &mut p).await?,
            "AddClientIDToOpenIDConnectProvider" => self.iam_add_client_id(ctx, &mut p).await?,
            other => {
                return Err(error(
                    Exception::UnknownOperation,
                    format!("Could not find operation {other} for version 2010-05-08"),
                ));
            }
        };
        Ok(QueryApi::Iam.respond(&action, result.as_deref(), &ctx.request_id))
    }

    /// The ARN a user or role of that name and path has in the caller's account.
    fn iam_arn(ctx: &RequestContext, kind: PrincipalType, path: &str, name: &str) -> String {
        let account = &ctx.caller.principal.account;
        format!("arn:aws:iam::{account}:{}{path}{name}", kind.as_str())
    }

    /// The caller's user or role named `name`; `NoSuchEntity` when there is none. Authorized
    /// first (`action` on the ARN it would have), so that a caller without the permission
    /// learns nothing of which names exist.
    async fn iam_entity(
        &self,
        ctx: &RequestContext,
        kind: PrincipalType,
        name: &str,
        action: &str,
    ) -> Result<PrincipalRecord, ServiceError> {
        let found = self.store.principal_by_name(&ctx.caller.principal.account, kind, name).await?;
        let arn = found.as_ref().map_or_else(|| Self::iam_arn(ctx, kind, "/", name), |p| p.arn.clone());
        // The entity's tags, as `aws:ResourceTag/…` (and IAM's own `iam:ResourceTag/…`).
        let mut keys = RequestKeys::none();
        for tag in found.iter().flat_map(|p| &p.attributes.tags) {
            keys = keys
                .with(&format!("aws:ResourceTag/{}", tag.key), tag.value.clone())
                .with(&format!("iam:ResourceTag/{}", tag.key), tag.value.clone());
        }
        self.authorize_iam(ctx, action, &arn, keys).await?;
        found.ok_or_else(|| principal_missing(kind, name))
    }

    async fn iam_create(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (element, name_member) = entity(kind);
        let name = p.name(name_member, true, 64);
        let path = p.path("Path");
        let tags = p.tags();
        let (trust, description, max_session) = if kind == PrincipalType::Role {
            let trust = p.text("AssumeRolePolicyDocument", true, (1, POLICY_DOCUMENT_MAX));
            let description = p.text("Description", false, (0, 1000));
            let max = p.integer("MaxSessionDuration", (3600, 43_200)).and_then(|n| u32::try_from(n).ok());
            (trust, description, max)
        } else {
            (None, None, None)
        };
        p.done()?;
        let name = name.unwrap_or_default();
        if kind == PrincipalType::Group && !tags.is_empty() {
            return Err(error(Exception::Validation, "Groups take no tags."));
        }
        if tags.len() > TAGS_PER_PRINCIPAL {
            return Err(error(Exception::LimitExceeded, "The number of tags has reached the maximum limit."));
        }
        if let Some(trust) = &trust {
            policy_document(trust, PolicyKind::RoleTrust)?;
        }
        let path = path.unwrap_or_else(|| "/".to_owned());
        let arn = Self::iam_arn(ctx, kind, &path, &name);
        let action = &act(kind, "iam:Create{}");
        self.authorize_iam(ctx, action, &arn, RequestKeys::none()).await?;
        let account = ctx.caller.principal.account.clone();
        if self.store.principal_by_name(&account, kind, &name).await?.is_some() {
            return Err(error(Exception::AlreadyExists, already_exists_message(kind, &name)));
        }
        let record = PrincipalRecord {
            arn,
            account,
            kind,
            name,
            principal_id: new_principal_id(
                match kind {
                    PrincipalType::Role => "AROA",
                    PrincipalType::Group => "AGPA",
                    PrincipalType::User | PrincipalType::Service | PrincipalType::OidcProvider => "AIDA",
                },
                self.rng.as_ref(),
            ),
            trust_policy: trust,
            created: self.clock.now(),
            attributes: PrincipalAttributes {
                path: (path != "/").then_some(path),
                description,
                max_session_duration: max_session,
                tags,
                ..PrincipalAttributes::default()
            },
        };
        let xml = format!("<{element}>{}</{element}>", entity_xml(&record, true));
        self.commit(ctx, Change::CreatePrincipal(record.clone()), principal_json(&record)).await?;
        Ok(Some(xml))
    }

    async fn iam_get_user(&self, ctx: &RequestContext, p: &mut Params) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", false, 128);
        p.done()?;
        let caller = &ctx.caller.principal;
        let name = match (name, &caller.kind) {
            (Some(name), _) => name,
            (None, PrincipalKind::User) => caller.username.clone().unwrap_or_default(),
            (None, PrincipalKind::Root) => {
                // The account's root user, as IAM describes it.
                return Ok(Some(format!(
                    "<User><Path>/</Path><UserId>{account}</UserId><Arn>{}</Arn><CreateDate>{}</CreateDate></User>",
                    xml_escape(&caller.arn),
                    iso8601_seconds(self.clock.now()),
                    account = caller.account
                )));
            }
            (None, _) => {
                return Err(error(
                    Exception::Validation,
                    "Must specify userName when calling with non-User credentials",
                ));
            }
        };
        let user = self.iam_entity(ctx, PrincipalType::User, &name, "iam:GetUser").await?;
        Ok(Some(format!("<User>{}</User>", user_xml(&user, true))))
    }

    async fn iam_get(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (element, name_member) = entity(kind);
        let name = p.name(name_member, true, 64);
        p.done()?;
        let action = &act(kind, "iam:Get{}");
        let found = self.iam_entity(ctx, kind, &name.unwrap_or_default(), action).await?;
        Ok(Some(format!("<{element}>{}</{element}>", entity_xml(&found, true))))
    }

    async fn iam_list(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let prefix = p.path("PathPrefix");
        let (max, marker) = p.page();
        p.done()?;
        let (element, _) = entity(kind);
        let plural = format!("{element}s");
        let all = Self::iam_arn(ctx, kind, "/", "*");
        self.authorize_iam(ctx, &act(kind, "iam:List{}s"), &all, RequestKeys::none()).await?;
        let mut found: Vec<PrincipalRecord> = self
            .store
            .list_principals(&ctx.caller.principal.account)
            .await?
            .into_iter()
            .filter(|r| r.kind == kind && prefix.as_deref().is_none_or(|pre| path_of(r).starts_with(pre)))
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        let (page, next) = paginate(found, |r| r.name.as_str(), max, marker.as_deref())?;
        let members: String = page.iter().map(|r| format!("<member>{}</member>", entity_xml(r, false))).collect();
        Ok(Some(format!("<{plural}>{members}</{plural}>{}", truncation(next.as_deref()))))
    }

    async fn iam_delete(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 64).unwrap_or_default();
        p.done()?;
        let action = &act(kind, "iam:Delete{}");
        let found = self.iam_entity(ctx, kind, &name, action).await?;
        // IAM refuses to delete what still has attachments; they are removed first.
        let long_term = self.store.access_keys_of(&found.arn).await?.into_iter().any(|k| k.session.is_none());
        if kind == PrincipalType::User && long_term {
            return Err(error(Exception::Conflict, "Cannot delete entity, must delete access keys first."));
        }
        if !self.store.identity_policies(&found.arn).await?.is_empty() {
            return Err(error(Exception::Conflict, "Cannot delete entity, must delete policies first."));
        }
        if !found.attributes.attached_policies.is_empty() {
            return Err(error(Exception::Conflict, "Cannot delete entity, must detach all policies first."));
        }
        let in_use = match kind {
            PrincipalType::User => !found.attributes.groups.is_empty(),
            PrincipalType::Group => !self.group_members(&found).await?.is_empty(),
            PrincipalType::Role | PrincipalType::Service | PrincipalType::OidcProvider => false,
        };
        if in_use {
            return Err(error(Exception::Conflict, "Cannot delete entity, must remove users from group first."));
        }
        let missing = format!("{} {name}", kind.as_str());
        self.commit(ctx, Change::DeletePrincipal { arn: found.arn, missing }, Empty {}).await?;
        Ok(None)
    }

    async fn iam_update_role(&self, ctx: &RequestContext, p: &mut Params) -> Result<Option<String>, ServiceError> {
        let name = p.name("RoleName", true, 64).unwrap_or_default();
        let description = p.text("Description", false, (0, 1000));
        let max = p.integer("MaxSessionDuration", (3600, 43_200)).and_then(|n| u32::try_from(n).ok());
        p.done()?;
        let mut role = self.iam_entity(ctx, PrincipalType::Role, &name, "iam:UpdateRole").await?;
        if let Some(description) = description {
            role.attributes.description = Some(description);
        }
        if let Some(max) = max {
            role.attributes.max_session_duration = Some(max);
        }
        self.iam_store_principal(ctx, role).await?;
        Ok(Some(String::new()))
    }

    /// UpdateUser: a new name or path (so a new ARN); keys, policies, groups and the unique id
    /// stay. Policies elsewhere that name the old ARN no longer match, as in IAM.
    async fn iam_update_user(&self, ctx: &RequestContext, p: &mut Params) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", true, 128).unwrap_or_default();
        let new_name = p.name("NewUserName", false, 64);
        let new_path = p.path("NewPath");
        p.done()?;
        let user = self.iam_entity(ctx, PrincipalType::User, &name, "iam:UpdateUser").await?;
        let name = new_name.unwrap_or_else(|| user.name.clone());
        let path = new_path.unwrap_or_else(|| path_of(&user).to_owned());
        let arn = Self::iam_arn(ctx, PrincipalType::User, &path, &name);
        if arn == user.arn {
            return Ok(None);
        }
        // Renaming also needs the permission on the new ARN.
        self.authorize_iam(ctx, "iam:UpdateUser", &arn, RequestKeys::none()).await?;
        if name != user.name && self.store.principal_by_name(&user.account, PrincipalType::User, &name).await?.is_some()
        {
            return Err(error(Exception::AlreadyExists, already_exists_message(PrincipalType::User, &name)));
        }
        let mut renamed = PrincipalRecord { arn, name, ..user.clone() };
        renamed.attributes.path = (path != "/").then_some(path);
        let response = principal_json(&renamed);
        self.commit(ctx, Change::RenamePrincipal { old_arn: user.arn, renamed }, response).await?;
        Ok(None)
    }

    async fn iam_update_trust(&self, ctx: &RequestContext, p: &mut Params) -> Result<Option<String>, ServiceError> {
        let name = p.name("RoleName", true, 64).unwrap_or_default();
        let document = p.text("PolicyDocument", true, (1, POLICY_DOCUMENT_MAX)).unwrap_or_default();
        p.done()?;
        policy_document(&document, PolicyKind::RoleTrust)?;
        let mut role = self.iam_entity(ctx, PrincipalType::Role, &name, "iam:UpdateAssumeRolePolicy").await?;
        role.trust_policy = Some(document);
        self.iam_store_principal(ctx, role).await?;
        Ok(None)
    }

    /// Stores a principal's changed trust policy or attributes.
    async fn iam_store_principal(&self, ctx: &RequestContext, principal: PrincipalRecord) -> Result<(), ServiceError> {
        let missing = format!("{} {}", principal.kind.as_str(), principal.name);
        let response = principal_json(&principal);
        self.commit(ctx, Change::UpdatePrincipal { principal, missing }, response).await?;
        Ok(())
    }

    async fn iam_tag(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 64).unwrap_or_default();
        let tags = p.tags();
        if tags.is_empty() {
            p.violations.push("Value null at 'tags' failed to satisfy constraint: Member must not be null".to_owned());
        }
        p.done()?;
        let action = &act(kind, "iam:Tag{}");
        let mut found = self.iam_entity(ctx, kind, &name, action).await?;
        for tag in tags {
            match found.attributes.tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => found.attributes.tags.push(tag),
            }
        }
        if found.attributes.tags.len() > TAGS_PER_PRINCIPAL {
            return Err(error(Exception::LimitExceeded, "The number of tags has reached the maximum limit."));
        }
        self.iam_store_principal(ctx, found).await?;
        Ok(None)
    }

    async fn iam_untag(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 64).unwrap_or_default();
        let keys: Vec<String> = p.list("TagKeys").into_iter().map(|(_, _, v)| v.to_owned()).collect();
        p.done()?;
        let action = &act(kind, "iam:Untag{}");
        let mut found = self.iam_entity(ctx, kind, &name, action).await?;
        found.attributes.tags.retain(|t| !keys.contains(&t.key));
        self.iam_store_principal(ctx, found).await?;
        Ok(None)
    }

    async fn iam_list_tags(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 64).unwrap_or_default();
        let (max, marker) = p.page();
        p.done()?;
        let action = &act(kind, "iam:List{}Tags");
        let found = self.iam_entity(ctx, kind, &name, action).await?;
        let (page, next) = paginate(found.attributes.tags, |t| t.key.as_str(), max, marker.as_deref())?;
        Ok(Some(format!("{}{}", tags_xml(&page), truncation(next.as_deref()))))
    }

    async fn iam_put_policy(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let policy_name = p.name("PolicyName", true, 128).unwrap_or_default();
        let document = p.text("PolicyDocument", true, (1, POLICY_DOCUMENT_MAX)).unwrap_or_default();
        p.done()?;
        policy_document(&document, PolicyKind::Identity)?;
        let quota = match kind {
            PrincipalType::Role => ROLE_POLICY_BYTES,
            PrincipalType::Group => GROUP_POLICY_BYTES,
            PrincipalType::User | PrincipalType::Service | PrincipalType::OidcProvider => USER_POLICY_BYTES,
        };
        let found = self.iam_entity(ctx, kind, &name, &act(kind, "iam:Put{}Policy")).await?;
        let others: usize = self
            .store
            .identity_policies(&found.arn)
            .await?
            .iter()
            .filter(|r| r.name != policy_name)
            .map(|r| policy_size(&r.document))
            .sum();
        if others + policy_size(&document) > quota {
            return Err(error(
                Exception::LimitExceeded,
                format!("Maximum policy size of {quota} bytes exceeded for {} {name}", kind.as_str()),
            ));
        }
        let record = IdentityPolicyRecord { principal_arn: found.arn, name: policy_name, document };
        let missing = format!("{} {name}", kind.as_str());
        self.commit(ctx, Change::PutIdentityPolicy { policy: record, missing }, Empty {}).await?;
        Ok(None)
    }

    async fn iam_get_policy(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let policy_name = p.name("PolicyName", true, 128).unwrap_or_default();
        p.done()?;
        let action = &act(kind, "iam:Get{}Policy");
        let found = self.iam_entity(ctx, kind, &name, action).await?;
        let policy = self.store.identity_policies(&found.arn).await?.into_iter().find(|r| r.name == policy_name);
        let policy = policy.ok_or_else(|| {
            no_such_entity(format!("The {} policy with name {policy_name} cannot be found.", kind.as_str()))
        })?;
        Ok(Some(format!(
            "<{name_member}>{}</{name_member}><PolicyName>{}</PolicyName><PolicyDocument>{}</PolicyDocument>",
            xml_escape(&found.name),
            xml_escape(&policy.name),
            url_encode(&policy.document)
        )))
    }

    async fn iam_list_policies(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let (max, marker) = p.page();
        p.done()?;
        let action = &act(kind, "iam:List{}Policies");
        let found = self.iam_entity(ctx, kind, &name, action).await?;
        let names: Vec<String> = self.store.identity_policies(&found.arn).await?.into_iter().map(|r| r.name).collect();
        let (page, next) = paginate(names, String::as_str, max, marker.as_deref())?;
        let members: String = page.iter().map(|n| format!("<member>{}</member>", xml_escape(n))).collect();
        Ok(Some(format!("<PolicyNames>{members}</PolicyNames>{}", truncation(next.as_deref()))))
    }

    async fn iam_delete_policy(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let policy_name = p.name("PolicyName", true, 128).unwrap_or_default();
        p.done()?;
        let action = &act(kind, "iam:Delete{}Policy");
        let found = self.iam_entity(ctx, kind, &name, action).await?;
        if !self.store.identity_policies(&found.arn).await?.iter().any(|r| r.name == policy_name) {
            return Err(no_such_entity(format!(
                "The {} policy with name {policy_name} cannot be found.",
                kind.as_str()
            )));
        }
        let missing = format!("policy {policy_name} of {name}");
        let change = Change::DeleteIdentityPolicy { principal_arn: found.arn, name: policy_name, missing };
        self.commit(ctx, change, Empty {}).await?;
        Ok(None)
    }

    /// The user an access-key action is for: `UserName`, or the calling user.
    async fn iam_key_owner(
        &self,
        ctx: &RequestContext,
        name: Option<String>,
        action: &str,
    ) -> Result<PrincipalRecord, ServiceError> {
        let caller = &ctx.caller.principal;
        let name = match (name, &caller.kind) {
            (Some(name), _) => name,
            (None, PrincipalKind::User) => caller.username.clone().unwrap_or_default(),
            (None, _) => {
                return Err(error(
                    Exception::Validation,
                    "Must specify userName when calling with non-User credentials",
                ));
            }
        };
        self.iam_entity(ctx, PrincipalType::User, &name, action).await
    }

    async fn iam_create_access_key(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", false, 128);
        p.done()?;
        let user = self.iam_key_owner(ctx, name, "iam:CreateAccessKey").await?;
        let existing = self.store.access_keys_of(&user.arn).await?.into_iter().filter(|k| k.session.is_none()).count();
        if existing >= ACCESS_KEYS_PER_USER {
            return Err(error(
                Exception::LimitExceeded,
                format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"),
            ));
        }
        let access_key_id = new_principal_id("AKIA", self.rng.as_ref());
        let secret = new_secret(self.rng.as_ref());
        let record = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            account: user.account.clone(),
            principal_arn: user.arn.clone(),
            wrapped_secret: self.root.wrap(&secret_aad(&access_key_id), secret.expose_secret())?,
            created: self.clock.now(),
            session: None,
            active: true,
            last_used: None,
        };
        let created = iso8601_seconds(record.created);
        // The audit record names the key, never its secret.
        let recorded = serde_json::json!({"accessKey": {
            "userName": user.name, "accessKeyId": access_key_id, "status": "Active", "createDate": created}});
        self.commit(ctx, Change::CreateAccessKey(record), recorded).await?;
        Ok(Some(format!(
            "<AccessKey><UserName>{}</UserName><AccessKeyId>{access_key_id}</AccessKeyId><Status>Active</Status>\
             <SecretAccessKey>{}</SecretAccessKey><CreateDate>{created}</CreateDate></AccessKey>",
            xml_escape(&user.name),
            xml_escape(&String::from_utf8_lossy(secret.expose_secret())),
        )))
    }

    async fn iam_list_access_keys(&self, ctx: &RequestContext, p: &mut Params) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", false, 128);
        let (max, marker) = p.page();
        p.done()?;
        let user = self.iam_key_owner(ctx, name, "iam:ListAccessKeys").await?;
        let keys: Vec<AccessKeyRecord> =
            self.store.access_keys_of(&user.arn).await?.into_iter().filter(|k| k.session.is_none()).collect();
        let (page, next) = paginate(keys, |k| k.access_key_id.as_str(), max, marker.as_deref())?;
        let members: String = page
            .iter()
            .map(|k| {
                format!(
                    "<member><UserName>{}</UserName><AccessKeyId>{}</AccessKeyId><Status>{}</Status>\
                     <CreateDate>{}</CreateDate></member>",
                    xml_escape(&user.name),
                    k.access_key_id,
                    k.status(),
                    iso8601_seconds(k.created)
                )
            })
            .collect();
        Ok(Some(format!("<AccessKeyMetadata>{members}</AccessKeyMetadata>{}", truncation(next.as_deref()))))
    }

    /// The user's long-term access key `id`; `NoSuchEntity` otherwise.
    async fn iam_user_key(&self, user: &PrincipalRecord, id: &str) -> Result<AccessKeyRecord, ServiceError> {
        self.store
            .access_key(id)
            .await?
            .filter(|k| k.principal_arn == user.arn && k.session.is_none())
            .ok_or_else(|| no_such_entity(format!("The Access Key with id {id} cannot be found.")))
    }

    async fn iam_update_access_key(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", false, 128);
        let id = p.text("AccessKeyId", true, (16, 128)).unwrap_or_default();
        let status = p.text("Status", true, (1, 16));
        if let Some(s) = status.as_deref().filter(|s| *s != kms_store::ACTIVE && *s != kms_store::INACTIVE) {
            p.violate(s, "status", "satisfy enum value set: [Active, Inactive]");
        }
        p.done()?;
        let user = self.iam_key_owner(ctx, name, "iam:UpdateAccessKey").await?;
        let key = self.iam_user_key(&user, &id).await?;
        let active = status.as_deref() == Some(kms_store::ACTIVE);
        let missing = format!("access key {id}");
        self.commit(ctx, Change::SetAccessKeyActive { id: key.access_key_id, active, missing }, Empty {}).await?;
        Ok(None)
    }

    /// GetAccessKeyLastUsed: when a long-term key was last used (recorded at most once a
    /// minute), for which service and region; `N/A` for a key never used.
    async fn iam_access_key_last_used(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let id = p.text("AccessKeyId", true, (16, 128)).unwrap_or_default();
        p.done()?;
        let key = self
            .store
            .access_key(&id)
            .await?
            .filter(|k| k.session.is_none() && k.account == ctx.caller.principal.account)
            .ok_or_else(|| no_such_entity(format!("The Access Key with id {id} cannot be found.")))?;
        let owner = self.store.principal(&key.principal_arn).await?;
        let user = owner.filter(|o| o.kind == PrincipalType::User);
        let resource = user.as_ref().map_or_else(|| key.principal_arn.clone(), |u| u.arn.clone());
        self.authorize_iam(ctx, "iam:GetAccessKeyLastUsed", &resource, RequestKeys::none()).await?;
        let name = user.map(|u| format!("<UserName>{}</UserName>", xml_escape(&u.name))).unwrap_or_default();
        let used = match &key.last_used {
            Some(u) => format!(
                "<LastUsedDate>{}</LastUsedDate><ServiceName>{}</ServiceName><Region>{}</Region>",
                iso8601_seconds(u.time),
                xml_escape(&u.service),
                xml_escape(&u.region)
            ),
            None => "<ServiceName>N/A</ServiceName><Region>N/A</Region>".to_owned(),
        };
        Ok(Some(format!("{name}<AccessKeyLastUsed>{used}</AccessKeyLastUsed>")))
    }

    async fn iam_delete_access_key(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", false, 128);
        let id = p.text("AccessKeyId", true, (16, 128)).unwrap_or_default();
        p.done()?;
        let user = self.iam_key_owner(ctx, name, "iam:DeleteAccessKey").await?;
        let key = self.iam_user_key(&user, &id).await?;
        self.commit(ctx, Change::DeleteAccessKey(key.access_key_id), Empty {}).await?;
        Ok(None)
    }
}

/// What the audit record shows of a created or changed user or role.
fn principal_json(p: &PrincipalRecord) -> serde_json::Value {
    let (element, name_member) = entity(p.kind);
    let mut out = serde_json::json!({
        "path": path_of(p),
        lower_first(name_member): p.name,
        "arn": p.arn,
        "createDate": iso8601_seconds(p.created),
    });
    if let Some(map) = out.as_object_mut() {
        if let Some(trust) = &p.trust_policy {
            map.insert("assumeRolePolicyDocument".into(), serde_json::Value::String(trust.clone()));
        }
        if !p.attributes.tags.is_empty() {
            let tags = p.attributes.tags.iter().map(|t| serde_json::json!({"key": t.key, "value": t.value})).collect();
            map.insert("tags".into(), serde_json::Value::Array(tags));
        }
    }
    serde_json::json!({ lower_first(element): out })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_is_listed() {
        let mut p = Params::new(b"Action=CreateUser&UserName=bad%20name&Path=nope&MaxItems=0");
        p.name("UserName", true, 64);
        p.path("Path");
        p.page();
        let Err(ServiceError::Api(e)) = p.done() else { panic!("expected a validation error") };
        let message = e.message.unwrap_or_default();
        assert!(message.starts_with("3 validation errors detected: Value 'bad name' at 'userName'"), "{message}");
        assert!(message.contains("at 'path' failed to satisfy constraint"), "{message}");
        assert!(message.contains("Value '0' at 'maxItems'"), "{message}");
    }

    #[test]
    fn tags_are_read_in_member_order() {
        let mut p = Params::new(b"Tags.member.2.Key=b&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Value=2");
        let tags = p.tags();
        assert_eq!(
            tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect::<Vec<_>>(),
            [("a", "1"), ("b", "2")]
        );
        assert!(p.done().is_ok());
    }

    #[test]
    fn pages_follow_markers() {
        let names: Vec<String> = ["a", "b", "c", "d", "e"].iter().map(|s| (*s).to_owned()).collect();
        let (first, next) = paginate(names.clone(), String::as_str, 2, None).unwrap();
        assert_eq!(first, ["a", "b"]);
        let (second, next) = paginate(names.clone(), String::as_str, 2, next.as_deref()).unwrap();
        assert_eq!(second, ["c", "d"]);
        let (last, next) = paginate(names.clone(), String::as_str, 2, next.as_deref()).unwrap();
        assert_eq!((last, next), (vec!["e".to_owned()], None));
        assert!(paginate(names, String::as_str, 2, Some("!!")).is_err());
    }

    #[test]
    fn policy_sizes_ignore_whitespace() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}
