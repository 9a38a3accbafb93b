//! SimulatePrincipalPolicy: would this user or role be allowed these actions on these
//! resources with this request context? Answered by the same decision the server enforces: for
//! a KMS key, its key policy, the principal's identity policies and the key's grants; for any
//! other resource, the identity policies.

use std::sync::Arc;

use kms_api::Exception;
use kms_core::context::EncryptionContext;
use kms_core::ids::{AcceptedReferences, KeyReference};
use kms_core::policy::{Decision, Principal, PrincipalKind, condition_keys};
use kms_store::PrincipalType;

use super::{Params, error, no_such_entity, paginate_in_order, truncation};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::query::xml_escape;
use crate::service::{Caller, RequestContext, Service};

/// The session name a simulated role session carries.
const SIMULATED_SESSION: &str = "SimulatePrincipalPolicy";

/// IAM's names for a decision.
fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "allowed",
        Decision::Deny(d) if d.explicit => "explicitDeny",
        Decision::Deny(_) => "implicitDeny",
    }
}

/// `ContextEntries.member.N.ContextKeyName` / `.ContextKeyValues.member.M` as condition keys;
/// the `kms:EncryptionContext:` ones also as the request's encryption context (which grants'
/// constraints are checked against).
fn context_entries(p: &Params) -> RequestKeys {
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut values: Vec<(usize, usize, String)> = Vec::new();
    for (n, field, value) in p.list("ContextEntries") {
        if field == "ContextKeyName" {
            names.push((n, value.to_owned()));
        } else if let Some(m) = field.strip_prefix("ContextKeyValues.member.").and_then(|m| m.parse().ok()) {
            values.push((n, m, value.to_owned()));
        }
    }
    values.sort();
    let mut keys = RequestKeys::none();
    let mut pairs = Vec::new();
    for (n, name) in names {
        let these: Vec<String> = values.iter().filter(|(k, _, _)| *k == n).map(|(_, _, v)| v.clone()).collect();
        if let (Some(k), [v]) = (name.strip_prefix(condition_keys::ENCRYPTION_CONTEXT_PREFIX), these.as_slice()) {
            pairs.push((k.to_owned(), v.clone()));
        } else {
            keys = keys.with_all(&name, these);
        }
    }
    if pairs.is_empty() { keys } else { keys.encryption_context(&pairs.into_iter().collect::<EncryptionContext>()) }
}

impl Service {
    pub(super) async fn iam_simulate(
        &self,
        ctx: &RequestContext,
        p: &mut Params,
    ) -> Result<Option<String>, ServiceError> {
        let source = p.text("PolicySourceArn", true, (20, 2048)).unwrap_or_default();
        let actions: Vec<String> = p.list("ActionNames").into_iter().map(|(_, _, v)| v.to_owned()).collect();
        let mut resources: Vec<String> = p.list("ResourceArns").into_iter().map(|(_, _, v)| v.to_owned()).collect();
        if actions.is_empty() {
            p.violations
                .push("Value null at 'actionNames' failed to satisfy constraint: Member must not be null".into());
        }
        let (max, marker) = p.page();
        p.done()?;
        if resources.is_empty() {
            resources.push("*".to_owned());
        }
        self.authorize_iam(ctx, "iam:SimulatePrincipalPolicy", &source, RequestKeys::none()).await?;
        let record = self
            .store
            .principal(&source)
            .await?
            .filter(|r| r.account == ctx.caller.principal.account)
            .ok_or_else(|| no_such_entity(format!("Entity {source} does not exist.")))?;
        let principal = match record.kind {
            PrincipalType::User => Principal {
                arn: record.arn.clone(),
                account: record.account.clone(),
                kind: PrincipalKind::User,
                user_id: record.principal_id.clone(),
                username: Some(record.name.clone()),
            },
            PrincipalType::Role => Principal {
                arn: format!("arn:aws:sts::{}:assumed-role/{}/{SIMULATED_SESSION}", record.account, record.name),
                account: record.account.clone(),
                kind: PrincipalKind::AssumedRole {
                    role_arn: record.arn.clone(),
                    session_name: SIMULATED_SESSION.to_owned(),
                },
                user_id: format!("{}:{SIMULATED_SESSION}", record.principal_id),
                username: None,
            },
            PrincipalType::Group | PrincipalType::Service | PrincipalType::OidcProvider => {
                return Err(error(
                    Exception::InvalidInput,
                    format!("{source} is not a user or role; only their policies can be simulated."),
                ));
            }
        };
        let caller = Caller {
            principal: Arc::new(principal),
            access_key_id: ctx.caller.access_key_id.clone(),
            tags: crate::principals::principal_tags(Some(&record), None),
        };
        let mut results = Vec::new();
        for action in &actions {
            for resource in &resources {
                let decision = self.simulated(ctx, &caller, action, resource, context_entries(p)).await?;
                results.push(format!(
                    "<member><EvalActionName>{}</EvalActionName><EvalResourceName>{}</EvalResourceName>\
                     <EvalDecision>{}</EvalDecision><MatchedStatements/><MissingContextValues/></member>",
                    xml_escape(action),
                    xml_escape(resource),
                    decision_name(&decision)
                ));
            }
        }
        let (page, next) = paginate_in_order(results, max, marker.as_deref())?;
        Ok(Some(format!("<EvaluationResults>{}</EvaluationResults>{}", page.concat(), truncation(next.as_deref()))))
    }

    /// One action on one resource, decided for `caller` as a request would be.
    async fn simulated(
        &self,
        ctx: &RequestContext,
        caller: &Caller,
        action: &str,
        resource: &str,
        request: RequestKeys,
    ) -> Result<Decision, ServiceError> {
        let key_arn = match KeyReference::parse(resource, AcceptedReferences::KeysOnly) {
            Ok(KeyReference::KeyArn(arn)) if action.starts_with("kms:") => Some(arn),
            _ => None,
        };
        let sim = RequestContext { caller: caller.clone(), audit: None, key_arn: Default::default(), ..ctx.clone() };
        let Some(arn) = key_arn else {
            return self.iam_decision(&sim, action, resource, request).await;
        };
        let key = self.load_key(arn.key_id.in_region(&arn.region)).await?;
        match key.filter(|k| k.record.account == arn.account && k.record.region == arn.region) {
            Some(key) => {
                let sim = RequestContext { region: arn.region.clone(), ..sim };
                self.decision(&sim, &key, action, request).await
            }
            // No such key: only identity policies could speak, and nothing would be allowed on
            // a key that is not there; IAM answers as its policies decide.
            None => self.iam_decision(&sim, action, resource, request).await,
        }
    }
}
