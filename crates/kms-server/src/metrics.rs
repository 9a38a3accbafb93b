//! Prometheus metrics, rendered by hand in the text exposition format (no registry crate: the
//! set is small and fixed).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Latency histogram bucket bounds, in seconds.
pub(crate) const BOUNDS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BOUNDS.len()],
    count: u64,
    sum: f64,
}

/// Gauges read from elsewhere at scrape time.
#[derive(Default)]
pub struct Gauges {
    /// Seconds since the last completed scheduler pass (none before the first).
    pub scheduler_lag_seconds: Option<f64>,
    /// Per event sink: audit records after its cursor.
    pub sink_backlogs: Vec<(String, u64)>,
    /// CloudTrail delivery's backlog, when the trail is delivered.
    pub trail_backlog: Option<crate::trail::Backlog>,
}

/// The operation label of requests that name no operation ferrokms has. The name comes from
/// the request, before authentication: labelled as sent, anyone could add a time series per
/// made-up name to every scrape.
pub const OTHER_OPERATIONS: &str = "Other";

/// The admin API's operations (`FerrokmsAdmin.<name>`), as `Service::admin` dispatches them (a
/// test checks the two agree).
const ADMIN_OPERATIONS: &[&str] = &[
    "CreateUser",
    "CreateRole",
    "CreateServicePrincipal",
    "DeleteUser",
    "DeleteRole",
    "DeleteServicePrincipal",
    "PutUserPolicy",
    "PutRolePolicy",
    "DeleteUserPolicy",
    "DeleteRolePolicy",
    "CreateAccessKey",
    "CreateAccount",
    "Reset",
    "CreateForwardAccessToken",
    "CreatePinnedKey",
    "GetPrincipal",
    "DeleteAccessKey",
    "ListPrincipals",
    "PutOpenIDConnectProviderKeys",
];

/// The STS actions `Service::sts` answers (a test checks the two agree).
const STS_ACTIONS: &[&str] = &["GetCallerIdentity", "AssumeRole", "GetSessionToken", "AssumeRoleWithWebIdentity"];
/// The IAM actions `Service::iam` answers (a test checks the two agree).
const IAM_ACTIONS: &[&str] = &[
    "CreateUser",
    "CreateRole",
    "GetUser",
    "GetRole",
    "ListUsers",
    "ListRoles",
    "DeleteUser",
    "DeleteRole",
    "UpdateRole",
    "UpdateUser",
    "UpdateAssumeRolePolicy",
    "TagUser",
    "TagRole",
    "UntagUser",
    "UntagRole",
    "ListUserTags",
    "ListRoleTags",
    "PutUserPolicy",
    "PutRolePolicy",
    "GetUserPolicy",
    "GetRolePolicy",
    "ListUserPolicies",
    "ListRolePolicies",
    "DeleteUserPolicy",
    "DeleteRolePolicy",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "ListGroupPolicies",
    "DeleteGroupPolicy",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "AttachGroupPolicy",
    "DetachUserPolicy",
    "DetachRolePolicy",
    "DetachGroupPolicy",
    "ListAttachedUserPolicies",
    "ListAttachedRolePolicies",
    "ListAttachedGroupPolicies",
    "SimulatePrincipalPolicy",
    "CreateOpenIDConnectProvider",
    "GetOpenIDConnectProvider",
    "ListOpenIDConnectProviders",
    "DeleteOpenIDConnectProvider",
    "AddClientIDToOpenIDConnectProvider",
];

/// The CloudTrail operations `Service::cloudtrail` answers (a test checks the two agree).
const CLOUDTRAIL_OPERATIONS: &[&str] =
    &["LookupEvents", "ListPublicKeys", "DescribeTrails", "GetTrail", "GetTrailStatus", "ListTrails"];

/// The label of a request's operation: its name if it is one of the KMS operation table, the
/// admin API, STS, IAM or CloudTrail, else [`OTHER_OPERATIONS`].
pub fn operation_label(name: &str) -> &'static str {
    if let Some(op) = kms_api::Operation::from_name(name) {
        return op.name();
    }
    ADMIN_OPERATIONS
        .iter()
        .chain(STS_ACTIONS)
        .chain(IAM_ACTIONS)
        .chain(CLOUDTRAIL_OPERATIONS)
        .find(|known| **known == name)
        .copied()
        .unwrap_or(OTHER_OPERATIONS)
}

/// One operation's request counters and latency.
#[derive(Default)]
struct OperationStats {
    /// Requests by outcome (`Success` or an exception name, from a fixed set).
    outcomes: BTreeMap<&'static str, u64>,
    latency: Histogram,
}

impl OperationStats {
    fn record(&mut self, outcome: &'static str, seconds: f64) {
        *self.outcomes.entry(outcome).or_default() += 1;
        let h = &mut self.latency;
        for (bucket, bound) in h.buckets.iter_mut().zip(BOUNDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }
}

/// Counters summed over every operation (see [`Metrics::totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// Requests answered.
    pub requests: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Their latencies, summed, in seconds.
    pub latency_seconds: f64,
    /// Requests at or under each latency bucket bound (cumulative, as Prometheus counts them).
    pub buckets: [u64; BOUNDS.len()],
}

/// Counters and histograms of the request path.
#[derive(Default)]
pub struct Metrics {
    /// By operation: one lock per request, and no allocation once an operation has been seen.
    operations: Mutex<BTreeMap<&'static str, OperationStats>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    pending_deletion_use: Mutex<BTreeMap<&'static str, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answered request and its latency, under [`operation_label`]. `outcome` is
    /// `Success` or the exception.
    pub fn observe(&self, operation: &str, outcome: &'static str, seconds: f64) {
        let label = operation_label(operation);
        lock(&self.operations).entry(label).or_default().record(outcome, seconds);
    }

    /// Requests, failed requests and latency summed over every operation since start: what the
    /// console's dashboard samples (see [`crate::console`]).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for stats in lock(&self.operations).values() {
            for (outcome, n) in &stats.outcomes {
                totals.requests += n;
                if *outcome != "Success" {
                    totals.errors += n;
                }
            }
            totals.latency_seconds += stats.latency.sum;
            for (sum, n) in totals.buckets.iter_mut().zip(stats.latency.buckets) {
                *sum += n;
            }
        }
        totals
    }

    /// Counts a request refused because its key is pending deletion: the signal to alarm on
    /// before a key that is still in use is deleted.
    pub fn pending_deletion_use(&self, operation: &str) {
        *lock(&self.pending_deletion_use).entry(operation_label(operation)).or_default() += 1;
    }

    /// Counts a key-cache lookup.
    pub fn cache(&self, hit: bool) {
        let counter = if hit { &self.cache_hits } else { &self.cache_misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with the gauges the caller read from elsewhere.
    pub fn render(
        &self,
        keys_by_state: &[(String, u64)],
        audit_backlog: i64,
        cached_keys: usize,
        extra: &Gauges,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP ferrokms_requests_total Requests answered, by operation and outcome.");
        let _ = writeln!(out, "# TYPE ferrokms_requests_total counter");
        let operations = lock(&self.operations);
        for (op, stats) in operations.iter() {
            for (outcome, n) in &stats.outcomes {
                let _ = writeln!(
                    out,
                    "ferrokms_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                    label(op),
                    label(outcome)
                );
            }
        }
        let _ = writeln!(out, "# HELP ferrokms_request_duration_seconds Time to answer, by operation.");
        let _ = writeln!(out, "# TYPE ferrokms_request_duration_seconds histogram");
        for (op, stats) in operations.iter() {
            let h = &stats.latency;
            let op = label(op);
            for (bound, n) in BOUNDS.iter().zip(h.buckets) {
                let _ =
                    writeln!(out, "ferrokms_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {n}");
            }
            let _ =
                writeln!(out, "ferrokms_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "ferrokms_request_duration_seconds_sum{{operation=\"{op}\"}} {}", h.sum);
            let _ = writeln!(out, "ferrokms_request_duration_seconds_count{{operation=\"{op}\"}} {}", h.count);
        }
        drop(operations);
        let _ = writeln!(
            out,
            "# HELP ferrokms_pending_deletion_key_use_total Requests refused because their key is pending deletion."
        );
        let _ = writeln!(out, "# TYPE ferrokms_pending_deletion_key_use_total counter");
        for (op, n) in lock(&self.pending_deletion_use).iter() {
            let _ = writeln!(out, "ferrokms_pending_deletion_key_use_total{{operation=\"{}\"}} {n}", label(op));
        }
        let _ = writeln!(out, "# HELP ferrokms_keys KMS keys, by state.");
        let _ = writeln!(out, "# TYPE ferrokms_keys gauge");
        for (state, n) in keys_by_state {
            let _ = writeln!(out, "ferrokms_keys{{state=\"{}\"}} {n}", label(state));
        }
        let hits = self.cache_hits.load(Ordering::Relaxed);
        let misses = self.cache_misses.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP ferrokms_key_cache_lookups_total Key-cache lookups, by result.");
        let _ = writeln!(out, "# TYPE ferrokms_key_cache_lookups_total counter");
        let _ = writeln!(out, "ferrokms_key_cache_lookups_total{{result=\"hit\"}} {hits}");
        let _ = writeln!(out, "ferrokms_key_cache_lookups_total{{result=\"miss\"}} {misses}");
        let _ = writeln!(out, "# HELP ferrokms_key_cache_hit_ratio Share of key-cache lookups that hit.");
        let _ = writeln!(out, "# TYPE ferrokms_key_cache_hit_ratio gauge");
        #[allow(clippy::cast_precision_loss)] // counters far below 2^52
        let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
        let _ = writeln!(out, "ferrokms_key_cache_hit_ratio {ratio}");
        let _ = writeln!(out, "# HELP ferrokms_key_cache_entries Keys held unwrapped in memory.");
        let _ = writeln!(out, "# TYPE ferrokms_key_cache_entries gauge");
        let _ = writeln!(out, "ferrokms_key_cache_entries {cached_keys}");
        let _ = writeln!(out, "# HELP ferrokms_audit_backlog Audit events answered but not yet committed.");
        let _ = writeln!(out, "# TYPE ferrokms_audit_backlog gauge");
        let _ = writeln!(out, "ferrokms_audit_backlog {audit_backlog}");
        let _ = writeln!(out, "# HELP ferrokms_scheduler_lag_seconds Time since the scheduler last completed a pass.");
        let _ = writeln!(out, "# TYPE ferrokms_scheduler_lag_seconds gauge");
        if let Some(lag) = extra.scheduler_lag_seconds {
            let _ = writeln!(out, "ferrokms_scheduler_lag_seconds {lag}");
        }
        let _ = writeln!(
            out,
            "# HELP ferrokms_event_sink_backlog Audit records a sink has not yet been given (each may or may not be an event)."
        );
        let _ = writeln!(out, "# TYPE ferrokms_event_sink_backlog gauge");
        for (sink, backlog) in &extra.sink_backlogs {
            let _ = writeln!(out, "ferrokms_event_sink_backlog{{sink=\"{}\"}} {backlog}", label(sink));
        }
        if let Some(backlog) = &extra.trail_backlog {
            let _ = writeln!(
                out,
                "# HELP ferrokms_cloudtrail_backlog_records Audit records not yet delivered in CloudTrail log files."
            );
            let _ = writeln!(out, "# TYPE ferrokms_cloudtrail_backlog_records gauge");
            let _ = writeln!(out, "ferrokms_cloudtrail_backlog_records {}", backlog.records);
            let _ = writeln!(
                out,
                "# HELP ferrokms_cloudtrail_backlog_files CloudTrail log and digest files built but not yet stored."
            );
            let _ = writeln!(out, "# TYPE ferrokms_cloudtrail_backlog_files gauge");
            let _ = writeln!(out, "ferrokms_cloudtrail_backlog_files {}", backlog.files);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("Encrypt", "Success", 0.002);
        m.observe("Encrypt", "AccessDeniedException", 0.0004);
        m.cache(true);
        m.cache(false);
        let gauges = Gauges {
            scheduler_lag_seconds: Some(0.5),
            sink_backlogs: vec![("nats:x".into(), 2)],
            trail_backlog: Some(crate::trail::Backlog { records: 7, files: 1 }),
        };
        let text = m.render(&[("Enabled".into(), 3)], 0, 1, &gauges);
        assert!(text.contains("ferrokms_cloudtrail_backlog_records 7\n"));
        assert!(text.contains("ferrokms_cloudtrail_backlog_files 1\n"));
        assert!(text.contains("ferrokms_scheduler_lag_seconds 0.5"));
        assert!(text.contains("ferrokms_event_sink_backlog{sink=\"nats:x\"} 2"));
        assert!(text.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"Success\"} 1"));
        assert!(text.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"AccessDeniedException\"} 1"));
        assert!(text.contains("ferrokms_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.0005\"} 1"));
        assert!(text.contains("ferrokms_request_duration_seconds_bucket{operation=\"Encrypt\",le=\"0.0025\"} 2"));
        assert!(text.contains("ferrokms_request_duration_seconds_count{operation=\"Encrypt\"} 2"));
        assert!(text.contains("ferrokms_keys{state=\"Enabled\"} 3"));
        assert!(text.contains("ferrokms_key_cache_hit_ratio 0.5"));
    }

    /// Operation names come from requests: only those of real operations are labels; made-up
    /// ones share one, however many there are.
    #[test]
    fn made_up_operation_names_share_one_label() {
        let m = Metrics::default();
        m.observe("Encrypt", "Success", 0.001);
        m.observe("CreateUser", "Success", 0.001);
        m.observe("GetCallerIdentity", "Success", 0.001);
        for i in 0..130 {
            m.observe(&format!("Made{i}Up"), "UnrecognizedClientException", 0.001);
        }
        m.observe("Encrypt", "Success", 0.001);
        let text = m.render(&[], 0, 0, &Gauges::default());
        let operations: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ferrokms_requests_total{operation=\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(operations, ["CreateUser", "Encrypt", "GetCallerIdentity", "Other"].into());
        assert!(text.contains("ferrokms_requests_total{operation=\"Encrypt\",outcome=\"Success\"} 2"));
        assert!(
            text.contains("ferrokms_requests_total{operation=\"Other\",outcome=\"UnrecognizedClientException\"} 130")
        );
    }

    /// The arms of a `match` on string literals inside `function` of `source`.
    fn dispatched<'a>(source: &'a str, function: &str, arm: (&str, &str)) -> Vec<&'a str> {
        let body = source.split(function).nth(1).unwrap();
        let body = body.split("\n    }\n").next().unwrap();
        body.lines()
            .filter_map(|l| l.trim().strip_prefix(arm.0))
            .filter_map(|l| l.split_once(arm.1).map(|(name, _)| name))
            .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect()
    }

    /// The lists of admin operations and STS actions are those their handlers dispatch: a new
    /// operation there without a label here (or a removed one) fails this test.
    #[test]
    fn the_known_names_are_those_the_handlers_dispatch() {
        let mut admin = dispatched(include_str!("admin.rs"), "pub async fn admin(", ("\"", "\" =>"));
        let mut listed = ADMIN_OPERATIONS.to_vec();
        admin.sort_unstable();
        listed.sort_unstable();
        assert_eq!(admin, listed);
        let mut sts = dispatched(include_str!("sts.rs"), "pub async fn sts(", ("Some(\"", "\") =>"));
        let mut listed = STS_ACTIONS.to_vec();
        sts.sort_unstable();
        listed.sort_unstable();
        assert_eq!(sts, listed);
        let mut iam = dispatched(include_str!("iam/mod.rs"), "pub async fn iam(", ("\"", "\" =>"));
        let mut listed = IAM_ACTIONS.to_vec();
        iam.sort_unstable();
        listed.sort_unstable();
        assert_eq!(iam, listed);
        let mut cloudtrail = dispatched(include_str!("cloudtrail.rs"), "pub async fn cloudtrail(", ("\"", "\" =>"));
        let mut listed = CLOUDTRAIL_OPERATIONS.to_vec();
        cloudtrail.sort_unstable();
        listed.sort_unstable();
        assert_eq!(cloudtrail, listed);
        for op in kms_api::Operation::ALL {
            assert_eq!(operation_label(op.name()), op.name());
        }
    }
}
