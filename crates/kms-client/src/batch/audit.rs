//! One JSON line per resource decision.

use std::time::SystemTime;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Outcome;

/// The audit record of one decision, serialized as one line of JSON:
/// `{"timestamp":"2026-11-26T01:02:03Z","resource":"…","key":"alias/…","keyArn":"arn:…",
/// "decision":"NON_COMPLIANT","reasons":["…"],"lookup":"batch"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditLine {
    /// When the decision was made, RFC 3339 in UTC.
    pub timestamp: String,
    /// The resource.
    pub resource: String,
    /// The key reference the resource named.
    pub key: String,
    /// The key's ARN, when found.
    pub key_arn: Option<String>,
    /// `COMPLIANT`, `NON_COMPLIANT` or `ERROR`.
    pub decision: &'static str,
    /// Why not compliant, or what failed.
    pub reasons: Vec<String>,
    /// `batch` or `fallback`.
    pub lookup: &'static str,
}

impl AuditLine {
    /// The line for an outcome decided at `at`.
    #[must_use]
    pub fn of(outcome: &Outcome, at: SystemTime) -> Self {
        let timestamp = OffsetDateTime::from(at).format(&Rfc3339).unwrap_or_else(|_| "unknown".to_owned());
        Self {
            timestamp,
            resource: outcome.resource.clone(),
            key: outcome.key.clone(),
            key_arn: outcome.key_arn.clone(),
            decision: outcome.decision.as_str(),
            reasons: outcome.reasons.clone(),
            lookup: outcome.lookup.as_str(),
        }
    }

    /// The line's JSON, without the newline.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing strings, options and vectors of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
