//! Customer managed policies (with versions), their attachment to users, roles and groups, and
//! groups; and what a principal's identity policies are once all of them are counted.

use kms_api::{Empty, Exception};
use kms_core::policy::PolicyKind;
use kms_store::{ManagedPolicyRecord, PolicyVersionRecord, PrincipalRecord, PrincipalType, StoreError};

use super::{
    ATTACHED_POLICIES, MANAGED_POLICY_BYTES, POLICY_DOCUMENT_MAX, POLICY_VERSIONS, Params, act, entity, error,
    group_xml, no_such_entity, paginate, paginate_in_order, policy_document, policy_size, truncation, user_xml,
};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::principals::new_principal_id;
use crate::query::{url_encode, xml_escape};
use crate::service::{RequestContext, Service};
use crate::sts::iso8601_seconds;

/// How many times a policy change is applied when another writer changed the policy first.
const POLICY_ATTEMPTS: usize = 3;

/// AWS managed policies a user may attach by ARN (`arn:aws:iam::aws:policy/<name>`): the ones
/// ferrokms can honour, with their documents.
const AWS_MANAGED: &[(&str, &str)] = &[(
    "AdministratorAccess",
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
)];

/// Whether a principal-invalidation ARN stands for others: a group's (its members) or a managed
/// policy's (whatever it is attached to).
pub fn applies_to_others(arn: &str) -> bool {
    arn.starts_with("arn:aws:iam::") && (arn.contains(":group/") || arn.contains(":policy/"))
}

/// An AWS managed policy as a record (never stored).
fn aws_managed(arn: &str) -> Option<ManagedPolicyRecord> {
    let name = arn.strip_prefix("arn:aws:iam::aws:policy/")?;
    let (name, document) = AWS_MANAGED.iter().find(|(n, _)| *n == name)?;
    let epoch = kms_core::Timestamp::from_unix_millis(1_423_612_800_000);
    Some(ManagedPolicyRecord {
        arn: arn.to_owned(),
        account: kms_core::ids::AccountId::parse("000000000000").ok()?,
        name: (*name).to_owned(),
        policy_id: format!("ANPAAWS{}", name.to_ascii_uppercase()),
        path: "/".to_owned(),
        description: None,
        created: epoch,
        updated: epoch,
        default_version: "v1".to_owned(),
        next_version: 2,
        versions: vec![PolicyVersionRecord { id: "v1".to_owned(), document: (*document).to_owned(), created: epoch }],
        tags: Vec::new(),
        revision: 0,
    })
}

fn policy_missing(arn: &str) -> ServiceError {
    no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

/// A `Policy` element.
fn policy_xml(p: &ManagedPolicyRecord, attachments: usize) -> String {
    let description =
        p.description.as_deref().map(|d| format!("<Description>{}</Description>", xml_escape(d))).unwrap_or_default();
    format!(
        "<PolicyName>{}</PolicyName><PolicyId>{}</PolicyId><Arn>{}</Arn><Path>{}</Path>\
         <DefaultVersionId>{}</DefaultVersionId><AttachmentCount>{attachments}</AttachmentCount>\
         <PermissionsBoundaryUsageCount>0</PermissionsBoundaryUsageCount><IsAttachable>true</IsAttachable>\
         {description}<CreateDate>{}</CreateDate><UpdateDate>{}</UpdateDate>",
        xml_escape(&p.name),
        xml_escape(&p.policy_id),
        xml_escape(&p.arn),
        xml_escape(&p.path),
        xml_escape(&p.default_version),
        iso8601_seconds(p.created),
        iso8601_seconds(p.updated),
    )
}

/// A `PolicyVersion` element (with its document when asked for one).
fn version_xml(p: &ManagedPolicyRecord, v: &PolicyVersionRecord, with_document: bool) -> String {
    let document =
        if with_document { format!("<Document>{}</Document>", url_encode(&v.document)) } else { String::new() };
    format!(
        "{document}<VersionId>{}</VersionId><IsDefaultVersion>{}</IsDefaultVersion><CreateDate>{}</CreateDate>",
        xml_escape(&v.id),
        v.id == p.default_version,
        iso8601_seconds(v.created)
    )
}

impl Service {
    /// The identity policies that apply to `owner` (a user or role ARN), as (name, document):
    /// its inline policies, the managed policies attached to it, and for a user the inline and
    /// attached policies of its groups.
    pub(crate) async fn identity_sources(&self, owner: &str) -> Result<Vec<(String, String)>, ServiceError> {
        let mut out: Vec<(String, String)> =
            self.store.identity_policies(owner).await?.into_iter().map(|r| (r.name, r.document)).collect();
        let Some(principal) = self.store.principal(owner).await? else { return Ok(out) };
        self.attached_documents(&principal, &mut out).await?;
        for group in &principal.attributes.groups {
            let found = self.store.principal_by_name(&principal.account, PrincipalType::Group, group).await?;
            let Some(group) = found else { continue };
            for inline in self.store.identity_policies(&group.arn).await? {
                out.push((format!("{}/{}", group.arn, inline.name), inline.document));
            }
            self.attached_documents(&group, &mut out).await?;
        }
        Ok(out)
    }

    /// The default versions of the managed policies attached to `principal`.
    async fn attached_documents(
        &self,
        principal: &PrincipalRecord,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), ServiceError> {
        for arn in &principal.attributes.attached_policies {
            let policy = self.managed_policy(arn).await?;
            if let Some(document) = policy.as_ref().and_then(ManagedPolicyRecord::default_document) {
                out.push((arn.clone(), document.to_owned()));
            }
        }
        Ok(())
    }

    /// The managed policy `arn`: an AWS managed one, or a customer's from the store.
    async fn managed_policy(&self, arn: &str) -> Result<Option<ManagedPolicyRecord>, ServiceError> {
        match aws_managed(arn) {
            Some(policy) => Ok(Some(policy)),
            None => Ok(self.store.managed_policy(arn).await?),
        }
    }

    /// The members of a group.
    pub(super) async fn group_members(&self, group: &PrincipalRecord) -> Result<Vec<PrincipalRecord>, ServiceError> {
        let mut members: Vec<PrincipalRecord> = self
            .store
            .list_principals(&group.account)
            .await?
            .into_iter()
            .filter(|p| p.kind == PrincipalType::User && p.attributes.groups.contains(&group.name))
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(members)
    }

    /// How many users, roles and groups of the account have `arn` attached.
    async fn attachments(&self, ctx: &RequestContext, arn: &str) -> Result<usize, ServiceError> {
        let all = self.store.list_principals(&ctx.caller.principal.account).await?;
        Ok(all.iter().filter(|p| p.attributes.attached_policies.iter().any(|a| a == arn)).count())
    }

    /// The caller's account's managed policy `arn` (or an AWS managed one), authorized for
    /// `action`; `NoSuchEntity` when there is none.
    async fn managed(
        &self,
        ctx: &RequestContext,
        arn: &str,
        action: &str,
    ) -> Result<ManagedPolicyRecord, ServiceError> {
        self.authorize_iam(ctx, action, arn, RequestKeys::none()).await?;
        let own = |p: &ManagedPolicyRecord| {
            p.arn.starts_with("arn:aws:iam::aws:") || p.account == ctx.caller.principal.account
        };
        self.managed_policy(arn).await?.filter(own).ok_or_else(|| policy_missing(arn))
    }

    /// Reads, changes and stores a customer managed policy, again from a fresh read when
    /// another writer changed it meanwhile; returns what `change` returned.
    async fn change_managed<R: Clone>(
        &self,
        ctx: &RequestContext,
        arn: &str,
        action: &str,
        change: impl Fn(&mut ManagedPolicyRecord) -> Result<R, ServiceError>,
    ) -> Result<R, ServiceError> {
        if aws_managed(arn).is_some() {
            return Err(error(
                Exception::InvalidInput,
                format!("{arn} is an AWS managed policy and cannot be changed."),
            ));
        }
        let mut last = None;
        for _ in 0..POLICY_ATTEMPTS {
            let mut policy = self.managed(ctx, arn, action).await?;
            let result = change(&mut policy)?;
            match self.commit(ctx, Change::UpdateManagedPolicy(policy.clone()), Empty {}).await {
                Ok(Empty {}) => return Ok(result),
                Err(ServiceError::Store(StoreError::Conflict)) => last = Some(StoreError::Conflict),
                Err(e) => return Err(e),
            }
        }
        Err(last.map_or_else(|| error(Exception::KmsInternal, "no attempt made"), ServiceError::Store))
    }

    pub(super) async fn iam_create_managed(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("PolicyName", true, 128).unwrap_or_default();
        let document = p.text("PolicyDocument", true, (1, POLICY_DOCUMENT_MAX)).unwrap_or_default();
        let path = p.path("Path").unwrap_or_else(|| "/".to_owned());
        let description = p.text("Description", false, (0, 1000));
        let tags = p.tags();
        p.done()?;
        policy_document(&document, PolicyKind::Identity)?;
        if policy_size(&document) > MANAGED_POLICY_BYTES {
            return Err(error(
                Exception::LimitExceeded,
                format!("Cannot exceed quota for PolicySize: {MANAGED_POLICY_BYTES}"),
            ));
        }
        let account = ctx.caller.principal.account.clone();
        let arn = format!("arn:aws:iam::{account}:policy{path}{name}");
        self.authorize_iam(ctx, "iam:CreatePolicy", &arn, RequestKeys::none()).await?;
        let now = self.clock.now();
        let policy = ManagedPolicyRecord {
            arn,
            account,
            name,
            policy_id: new_principal_id("ANPA", self.rng.as_ref()),
            path,
            description,
            created: now,
            updated: now,
            default_version: "v1".to_owned(),
            next_version: 2,
            versions: vec![PolicyVersionRecord { id: "v1".to_owned(), document, created: now }],
            tags,
            revision: 0,
        };
        let xml = format!("<Policy>{}</Policy>", policy_xml(&policy, 0));
        let recorded = serde_json::json!({"policy": {"policyName": policy.name, "arn": policy.arn,
            "policyId": policy.policy_id, "defaultVersionId": "v1"}});
        self.commit(ctx, Change::CreateManagedPolicy(policy), recorded).await?;
        Ok(Some(xml))
    }

    pub(super) async fn iam_get_managed(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        p.done()?;
        let policy = self.managed(ctx, &arn, "iam:GetPolicy").await?;
        let attachments = self.attachments(ctx, &arn).await?;
        Ok(Some(format!("<Policy>{}</Policy>", policy_xml(&policy, attachments))))
    }

    pub(super) async fn iam_list_managed(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let scope = p.text("Scope", false, (1, 8)).unwrap_or_else(|| "All".to_owned());
        if !["All", "AWS", "Local"].contains(&scope.as_str()) {
            p.violate(&scope, "scope", "satisfy enum value set: [All, AWS, Local]");
        }
        let only_attached = p.get("OnlyAttached") == Some("true");
        let prefix = p.path("PathPrefix");
        let (max, marker) = p.page();
        p.done()?;
        let all = format!("arn:aws:iam::{}:policy/*", ctx.caller.principal.account);
        self.authorize_iam(ctx, "iam:ListPolicies", &all, RequestKeys::none()).await?;
        let principals = self.store.list_principals(&ctx.caller.principal.account).await?;
        let count =
            |arn: &str| principals.iter().filter(|p| p.attributes.attached_policies.iter().any(|a| a == arn)).count();
        let mut policies: Vec<ManagedPolicyRecord> = Vec::new();
        if scope != "Local" {
            policies
                .extend(AWS_MANAGED.iter().filter_map(|(n, _)| aws_managed(&format!("arn:aws:iam::aws:policy/{n}"))));
        }
        if scope != "AWS" {
            policies.extend(self.store.managed_policies(&ctx.caller.principal.account).await?);
        }
        policies.retain(|policy| {
            prefix.as_deref().is_none_or(|pre| policy.path.starts_with(pre))
                && (!only_attached || count(&policy.arn) > 0)
        });
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        let (page, next) = paginate(policies, |p| p.name.as_str(), max, marker.as_deref())?;
        let members: String =
            page.iter().map(|policy| format!("<member>{}</member>", policy_xml(policy, count(&policy.arn)))).collect();
        Ok(Some(format!("<Policies>{members}</Policies>{}", truncation(next.as_deref()))))
    }

    pub(super) async fn iam_delete_managed(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        p.done()?;
        let policy = self.managed(ctx, &arn, "iam:DeletePolicy").await?;
        if aws_managed(&arn).is_some() {
            return Err(error(
                Exception::InvalidInput,
                format!("{arn} is an AWS managed policy and cannot be deleted."),
            ));
        }
        if self.attachments(ctx, &arn).await? > 0 {
            return Err(error(Exception::Conflict, "Cannot delete a policy attached to entities."));
        }
        if policy.versions.len() > 1 {
            return Err(error(
                Exception::Conflict,
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
            ));
        }
        self.commit(ctx, Change::DeleteManagedPolicy { arn }, Empty {}).await?;
        Ok(None)
    }

    pub(super) async fn iam_create_version(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        let document = p.text("PolicyDocument", true, (1, POLICY_DOCUMENT_MAX)).unwrap_or_default();
        let set_default = p.get("SetAsDefault") == Some("true");
        p.done()?;
        policy_document(&document, PolicyKind::Identity)?;
        if policy_size(&document) > MANAGED_POLICY_BYTES {
            return Err(error(
                Exception::LimitExceeded,
                format!("Cannot exceed quota for PolicySize: {MANAGED_POLICY_BYTES}"),
            ));
        }
        let now = self.clock.now();
        let xml = self
            .change_managed(ctx, &arn, "iam:CreatePolicyVersion", |policy| {
                if policy.versions.len() >= POLICY_VERSIONS {
                    return Err(error(
                        Exception::LimitExceeded,
                        format!(
                            "A managed policy can have up to {POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."
                        ),
                    ));
                }
                let version =
                    PolicyVersionRecord { id: format!("v{}", policy.next_version), document: document.clone(), created: now };
                policy.next_version += 1;
                if set_default {
                    version.id.clone_into(&mut policy.default_version);
                    policy.updated = now;
                }
                let xml = format!("<PolicyVersion>{}</PolicyVersion>", version_xml(policy, &version, false));
                policy.versions.push(version);
                Ok(xml)
            })
            .await?;
        Ok(Some(xml))
    }

    pub(super) async fn iam_get_version(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        let id = p.text("VersionId", true, (1, 32)).unwrap_or_default();
        p.done()?;
        let policy = self.managed(ctx, &arn, "iam:GetPolicyVersion").await?;
        let version =
            policy.versions.iter().find(|v| v.id == id).ok_or_else(|| {
                no_such_entity(format!("Policy {arn} version {id} does not exist or is not attachable."))
            })?;
        Ok(Some(format!("<PolicyVersion>{}</PolicyVersion>", version_xml(&policy, version, true))))
    }

    pub(super) async fn iam_list_versions(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        let (max, marker) = p.page();
        p.done()?;
        let policy = self.managed(ctx, &arn, "iam:ListPolicyVersions").await?;
        // Newest first, as IAM lists them.
        let mut versions = policy.versions.clone();
        versions.reverse();
        let (page, next) = paginate_in_order(versions, max, marker.as_deref())?;
        let members: String =
            page.iter().map(|v| format!("<member>{}</member>", version_xml(&policy, v, false))).collect();
        Ok(Some(format!("<Versions>{members}</Versions>{}", truncation(next.as_deref()))))
    }

    pub(super) async fn iam_delete_version(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        let id = p.text("VersionId", true, (1, 32)).unwrap_or_default();
        p.done()?;
        self.change_managed(ctx, &arn, "iam:DeletePolicyVersion", |policy| {
            if policy.default_version == id {
                return Err(error(Exception::Conflict, "Cannot delete the default version of a policy."));
            }
            let before = policy.versions.len();
            policy.versions.retain(|v| v.id != id);
            if policy.versions.len() == before {
                return Err(no_such_entity(format!("Policy {arn} version {id} does not exist or is not attachable.")));
            }
            Ok(())
        })
        .await?;
        Ok(None)
    }

    pub(super) async fn iam_set_default_version(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        let id = p.text("VersionId", true, (1, 32)).unwrap_or_default();
        p.done()?;
        let now = self.clock.now();
        self.change_managed(ctx, &arn, "iam:SetDefaultPolicyVersion", |policy| {
            if !policy.versions.iter().any(|v| v.id == id) {
                return Err(no_such_entity(format!("Policy {arn} version {id} does not exist or is not attachable.")));
            }
            id.clone_into(&mut policy.default_version);
            policy.updated = now;
            Ok(())
        })
        .await?;
        Ok(None)
    }

    /// AttachUserPolicy, DetachRolePolicy, …: the policy ARN added to or removed from the
    /// principal's attachments.
    pub(super) async fn iam_attach(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
        attach: bool,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let arn = p.text("PolicyArn", true, (20, 2048)).unwrap_or_default();
        p.done()?;
        let action = if attach { act(kind, "iam:Attach{}Policy") } else { act(kind, "iam:Detach{}Policy") };
        let mut found = self.iam_entity(ctx, kind, &name, &action).await?;
        let attached = &mut found.attributes.attached_policies;
        if attach {
            self.managed(ctx, &arn, "iam:GetPolicy").await?;
            if attached.contains(&arn) {
                return Ok(None);
            }
            if attached.len() >= ATTACHED_POLICIES {
                return Err(error(
                    Exception::LimitExceeded,
                    format!("Cannot exceed quota for PoliciesPer{}: {ATTACHED_POLICIES}", entity(kind).0),
                ));
            }
            attached.push(arn);
        } else {
            let before = attached.len();
            attached.retain(|a| *a != arn);
            if attached.len() == before {
                return Err(no_such_entity(format!("Policy {arn} was not found.")));
            }
        }
        self.iam_store_principal(ctx, found).await?;
        Ok(None)
    }

    pub(super) async fn iam_list_attached(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        kind: PrincipalType,
    ) -> Result<Option<String>, ServiceError> {
        let (_, name_member) = entity(kind);
        let name = p.name(name_member, true, 128).unwrap_or_default();
        let prefix = p.path("PathPrefix");
        let (max, marker) = p.page();
        p.done()?;
        let found = self.iam_entity(ctx, kind, &name, &act(kind, "iam:ListAttached{}Policies")).await?;
        let mut attached: Vec<(String, String)> = Vec::new();
        for arn in found.attributes.attached_policies {
            let policy = self.managed_policy(&arn).await?;
            if let Some(policy) = policy.filter(|p| prefix.as_deref().is_none_or(|pre| p.path.starts_with(pre))) {
                attached.push((policy.name, arn));
            }
        }
        attached.sort();
        let (page, next) = paginate(attached, |(n, _)| n.as_str(), max, marker.as_deref())?;
        let members: String = page
            .iter()
            .map(|(n, arn)| {
                format!(
                    "<member><PolicyName>{}</PolicyName><PolicyArn>{}</PolicyArn></member>",
                    xml_escape(n),
                    xml_escape(arn)
                )
            })
            .collect();
        Ok(Some(format!("<AttachedPolicies>{members}</AttachedPolicies>{}", truncation(next.as_deref()))))
    }

    pub(super) async fn iam_get_group(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("GroupName", true, 128).unwrap_or_default();
        let (max, marker) = p.page();
        p.done()?;
        let group = self.iam_entity(ctx, PrincipalType::Group, &name, "iam:GetGroup").await?;
        let members = self.group_members(&group).await?;
        let (page, next) = paginate(members, |u| u.name.as_str(), max, marker.as_deref())?;
        let users: String = page.iter().map(|u| format!("<member>{}</member>", user_xml(u, false))).collect();
        Ok(Some(format!("<Group>{}</Group><Users>{users}</Users>{}", group_xml(&group), truncation(next.as_deref()))))
    }

    /// AddUserToGroup and RemoveUserFromGroup: the group's name added to or removed from the
    /// user's groups.
    pub(super) async fn iam_membership(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
        add: bool,
    ) -> Result<Option<String>, ServiceError> {
        let group_name = p.name("GroupName", true, 128).unwrap_or_default();
        let user_name = p.name("UserName", true, 64).unwrap_or_default();
        p.done()?;
        let action = if add { "iam:AddUserToGroup" } else { "iam:RemoveUserFromGroup" };
        let group = self.iam_entity(ctx, PrincipalType::Group, &group_name, action).await?;
        let account = &ctx.caller.principal.account;
        let mut user = self
            .store
            .principal_by_name(account, PrincipalType::User, &user_name)
            .await?
            .ok_or_else(|| no_such_entity(format!("The user with name {user_name} cannot be found.")))?;
        let groups = &mut user.attributes.groups;
        if add {
            if groups.contains(&group.name) {
                return Ok(None);
            }
            groups.push(group.name);
        } else {
            let before = groups.len();
            groups.retain(|g| *g != group.name);
            if groups.len() == before {
                return Err(no_such_entity(format!(
                    "The user with name {user_name} cannot be found in group {group_name}."
                )));
            }
        }
        self.iam_store_principal(ctx, user).await?;
        Ok(None)
    }

    pub(super) async fn iam_groups_for_user(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let name = p.name("UserName", true, 128).unwrap_or_default();
        let (max, marker) = p.page();
        p.done()?;
        let user = self.iam_entity(ctx, PrincipalType::User, &name, "iam:ListGroupsForUser").await?;
        let mut groups = Vec::new();
        for group in &user.attributes.groups {
            if let Some(g) = self.store.principal_by_name(&user.account, PrincipalType::Group, group).await? {
                groups.push(g);
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let (page, next) = paginate(groups, |g| g.name.as_str(), max, marker.as_deref())?;
        let members: String = page.iter().map(|g| format!("<member>{}</member>", group_xml(g))).collect();
        Ok(Some(format!("<Groups>{members}</Groups>{}", truncation(next.as_deref()))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn group_and_policy_arns_stand_for_others() {
        assert!(applies_to_others("arn:aws:iam::111122223333:group/ops"));
        assert!(applies_to_others("arn:aws:iam::111122223333:policy/team/read"));
        assert!(!applies_to_others("arn:aws:iam::111122223333:user/alice"));
        assert!(!applies_to_others("arn:aws:iam::111122223333:role/policy-reader"));
    }

    #[test]
    fn administrator_access_is_known() {
        let admin = aws_managed("arn:aws:iam::aws:policy/AdministratorAccess").unwrap();
        assert!(admin.default_document().unwrap().contains("\"Action\":\"*\""));
        assert!(aws_managed("arn:aws:iam::aws:policy/Nope").is_none());
        assert!(aws_managed("arn:aws:iam::111122223333:policy/AdministratorAccess").is_none());
    }
}
