//! The CloudTrail API's read side on the same endpoint (AWS JSON 1.1, targets
//! `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.<Operation>`): LookupEvents over the
//! audit trail, so `aws cloudtrail lookup-events --endpoint-url …` and boto3's paginator work;
//! and what `aws cloudtrail validate-logs` needs to check delivered files ([`crate::trail`]):
//! DescribeTrails, GetTrail and GetTrailStatus for the configured trail (one per server; each
//! account sees it under its own ARN, `arn:aws:cloudtrail:<home region>:<account>:trail/<name>`)
//! and ListPublicKeys, the keys digests are signed with.
//!
//! The caller sees its own account's events (`recipientAccountId`) of the last 90 days. Each
//! operation is authorized by its `cloudtrail:` action in the caller's identity policies (on the
//! trail's ARN for GetTrail and GetTrailStatus, on `*` for the others).

use base64::Engine;
use kms_api::{ApiError, Exception};
use kms_core::Timestamp;
use kms_store::audit::{AuditFilter, AuditRow};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// The `X-Amz-Target` prefix of CloudTrail operations.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";

/// How far back LookupEvents looks.
const LOOKBACK_MILLIS: i64 = 90 * 24 * 3600 * 1000;
/// LookupEvents' page size bounds and default.
const MAX_RESULTS: usize = 50;
/// Records read from the store per round while filtering a page.
const SCAN_BATCH: usize = 500;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupEventsRequest {
    lookup_attributes: Option<Vec<LookupAttribute>>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    event_category: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LookupAttribute {
    attribute_key: String,
    attribute_value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPublicKeysRequest {
    start_time: Option<f64>,
    end_time: Option<f64>,
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTrailsRequest {
    trail_name_list: Option<Vec<String>>,
    #[allow(dead_code)] // one trail, in its home region: there are no shadow trails to include
    include_shadow_trails: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameRequest {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTrailsRequest {
    next_token: Option<String>,
}

/// The operation's request, an empty body being an empty request.
fn request<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| error(Exception::Serialization, e.to_string()))
}

fn respond(answer: &Value) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(answer).map_err(|e| error(Exception::KmsInternal, e.to_string()))
}

/// What a trail name or ARN in a request names, once checked as CloudTrail checks it.
enum TrailRef<'a> {
    Name(&'a str),
    Arn(&'a str),
}

fn trail_ref(value: &str) -> Result<TrailRef<'_>, ServiceError> {
    if value.starts_with("arn:") {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let valid = match parts.as_slice() {
            [_, partition, "cloudtrail", region, account, resource] => {
                !partition.is_empty()
                    && !region.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("trail/").is_some_and(crate::trail::valid_trail_name)
            }
            _ => false,
        };
        return if valid {
            Ok(TrailRef::Arn(value))
        } else {
            Err(error(Exception::CloudTrailArnInvalid, format!("{value} is not a valid trail ARN.")))
        };
    }
    if crate::trail::valid_trail_name(value) {
        Ok(TrailRef::Name(value))
    } else {
        Err(error(
            Exception::InvalidTrailName,
            "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), \
             hyphens (-), and underscores (_).",
        ))
    }
}

/// Epoch seconds, as the JSON protocol sends timestamps.
fn seconds(t: Timestamp) -> f64 {
    t.epoch_seconds_f64()
}

fn error(exception: Exception, message: impl Into<String>) -> ServiceError {
    ServiceError::Api(ApiError::with_message(exception, message))
}

/// A CloudTrail time (epoch seconds, fractional) as a timestamp.
fn time(seconds: f64) -> Timestamp {
    #[allow(clippy::cast_possible_truncation)] // epoch milliseconds fit i64 for any real date
    Timestamp::from_unix_millis((seconds * 1000.0) as i64)
}

/// What a record shows as CloudTrail's `Username`: the user's name, a session's role name,
/// `root`, or a service.
fn username(record: &Value) -> Option<String> {
    let identity = record.get("userIdentity")?;
    let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    match identity.get("type").and_then(Value::as_str) {
        Some("IAMUser") | Some("WebIdentityUser") => field(identity, "userName"),
        Some("AssumedRole") => {
            identity.get("sessionContext").and_then(|s| s.get("sessionIssuer")).and_then(|i| field(i, "userName"))
        }
        Some("Root") => Some("root".to_owned()),
        Some("AWSService") => field(identity, "invokedBy"),
        _ => None,
    }
}

/// One record as a LookupEvents `Event`, if it matches `attribute`.
fn event(row: &AuditRow, record: &Value, attribute: Option<&LookupAttribute>) -> Option<Value> {
    let str_of = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let access_key = record.get("userIdentity").and_then(|i| str_of(i, "accessKeyId"));
    let read_only = record.get("readOnly").and_then(Value::as_bool).unwrap_or(false).to_string();
    let source = str_of(record, "eventSource").unwrap_or_default();
    let user = username(record);
    let resources: Vec<Value> = record
        .get("resources")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter().map(|r| json!({"ResourceType": str_of(r, "type"), "ResourceName": str_of(r, "ARN")})).collect()
        })
        .unwrap_or_default();
    if let Some(a) = attribute {
        let value = a.attribute_value.as_str();
        let matches = match a.attribute_key.as_str() {
            "EventId" => row.event_id == value,
            "EventName" => row.event_name == value,
            "ReadOnly" => read_only == value,
            "Username" => user.as_deref() == Some(value),
            "EventSource" => source == value,
            "AccessKeyId" => access_key.as_deref() == Some(value),
            "ResourceName" => resources.iter().any(|r| r["ResourceName"] == value),
            "ResourceType" => resources.iter().any(|r| r["ResourceType"] == value),
            _ => false,
        };
        if !matches {
            return None;
        }
    }
    let mut out = json!({
        "EventId": row.event_id,
        "EventName": row.event_name,
        "ReadOnly": read_only,
        "EventTime": row.time.epoch_seconds_f64(),
        "EventSource": source,
        "Resources": resources,
        "CloudTrailEvent": row.record,
    });
    if let Some(map) = out.as_object_mut() {
        if let Some(key) = access_key {
            map.insert("AccessKeyId".into(), Value::String(key));
        }
        if let Some(user) = user {
            map.insert("Username".into(), Value::String(user));
        }
    }
    Some(out)
}

impl Service {
    /// Answers a CloudTrail request.
    ///
    /// # Errors
    /// CloudTrail's exceptions.
    pub async fn cloudtrail(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ServiceError> {
        match operation {
            "LookupEvents" => {
                let req: LookupEventsRequest = if body.is_empty() {
                    LookupEventsRequest::default()
                } else {
                    serde_json::from_slice(body).map_err(|e| error(Exception::Serialization, e.to_string()))?
                };
                let answer = self.lookup_events(ctx, req).await?;
                respond(&answer)
            }
            "ListPublicKeys" => respond(&self.list_public_keys(ctx, request(body)?).await?),
            "DescribeTrails" => respond(&self.describe_trails(ctx, request(body)?).await?),
            "GetTrail" => respond(&self.get_trail(ctx, request(body)?).await?),
            "GetTrailStatus" => respond(&self.get_trail_status(ctx, request(body)?).await?),
            "ListTrails" => respond(&self.list_trails(ctx, request(body)?).await?),
            other => Err(error(
                Exception::UnknownOperation,
                format!(
                    "'{TARGET_PREFIX}{other}' is not a supported CloudTrail operation (LookupEvents, ListPublicKeys, \
                     DescribeTrails, GetTrail, GetTrailStatus and ListTrails are)"
                ),
            )),
        }
    }

    /// The configured trail as `Trail` for the caller's account.
    fn trail_shape(&self, ctx: &RequestContext, trail: &crate::trail::TrailInfo) -> Value {
        let mut shape = json!({
            "Name": trail.name,
            "S3BucketName": trail.bucket,
            "IncludeGlobalServiceEvents": true,
            "IsMultiRegionTrail": true,
            "HomeRegion": trail.home_region,
            "TrailARN": trail.arn(&ctx.caller.principal.account.to_string()),
            "LogFileValidationEnabled": true,
            "HasCustomEventSelectors": false,
            "HasInsightSelectors": false,
            "IsOrganizationTrail": false,
        });
        if let (Some(prefix), Some(map)) = (&trail.prefix, shape.as_object_mut()) {
            map.insert("S3KeyPrefix".into(), Value::String(prefix.clone()));
        }
        shape
    }

    /// The configured trail, if `name` (a name or an ARN) names it for the caller.
    fn named_trail(&self, ctx: &RequestContext, name: &TrailRef<'_>) -> Option<&crate::trail::TrailInfo> {
        let trail = self.trail.get()?;
        let matches = match name {
            TrailRef::Name(n) => *n == trail.name,
            TrailRef::Arn(arn) => *arn == trail.arn(&ctx.caller.principal.account.to_string()),
        };
        matches.then_some(trail)
    }

    /// The trail GetTrail and GetTrailStatus name, authorized on its ARN.
    async fn requested_trail(
        &self,
        ctx: &RequestContext,
        req: NameRequest,
        action: &str,
    ) -> Result<&crate::trail::TrailInfo, ServiceError> {
        let Some(name) = req.name else {
            return Err(error(
                Exception::Validation,
                "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null",
            ));
        };
        let reference = trail_ref(&name)?;
        let account = ctx.caller.principal.account.to_string();
        let arn = match &reference {
            TrailRef::Arn(arn) => (*arn).to_owned(),
            TrailRef::Name(n) => {
                let region = self.trail.get().map_or_else(|| ctx.region.to_string(), |t| t.home_region.clone());
                format!("arn:aws:cloudtrail:{region}:{account}:trail/{n}")
            }
        };
        self.authorize_iam(ctx, action, &arn, RequestKeys::none()).await?;
        self.named_trail(ctx, &reference)
            .ok_or_else(|| error(Exception::TrailNotFound, format!("Unknown trail: {arn} for the user: {account}")))
    }

    async fn describe_trails(&self, ctx: &RequestContext, req: DescribeTrailsRequest) -> Result<Value, ServiceError> {
        self.authorize_iam(ctx, "cloudtrail:DescribeTrails", "*", RequestKeys::none()).await?;
        let names = req.trail_name_list.unwrap_or_default();
        let references = names.iter().map(|n| trail_ref(n)).collect::<Result<Vec<_>, _>>()?;
        let trail = match references.as_slice() {
            [] => self.trail.get(),
            some => some.iter().find_map(|r| self.named_trail(ctx, r)),
        };
        Ok(json!({"trailList": trail.map(|t| self.trail_shape(ctx, t)).into_iter().collect::<Vec<_>>()}))
    }

    async fn list_trails(&self, ctx: &RequestContext, req: ListTrailsRequest) -> Result<Value, ServiceError> {
        self.authorize_iam(ctx, "cloudtrail:ListTrails", "*", RequestKeys::none()).await?;
        if req.next_token.is_some() {
            return Err(error(Exception::InvalidToken, "Invalid NextToken."));
        }
        let account = ctx.caller.principal.account.to_string();
        let trails: Vec<Value> = self
            .trail
            .get()
            .map(|t| json!({"TrailARN": t.arn(&account), "Name": t.name, "HomeRegion": t.home_region}))
            .into_iter()
            .collect();
        Ok(json!({"Trails": trails}))
    }

    async fn get_trail(&self, ctx: &RequestContext, req: NameRequest) -> Result<Value, ServiceError> {
        let trail = self.requested_trail(ctx, req, "cloudtrail:GetTrail").await?;
        Ok(json!({"Trail": self.trail_shape(ctx, trail)}))
    }

    async fn get_trail_status(&self, ctx: &RequestContext, req: NameRequest) -> Result<Value, ServiceError> {
        self.requested_trail(ctx, req, "cloudtrail:GetTrailStatus").await?;
        let status = crate::trail::status(self.store.as_ref())
            .await
            .map_err(|e| error(Exception::KmsInternal, e.to_string()))?;
        let mut answer = json!({"IsLogging": true});
        if let Some(map) = answer.as_object_mut() {
            if let Some(t) = status.last_delivery {
                map.insert("LatestDeliveryTime".into(), json!(seconds(t)));
            }
            if let Some(t) = status.last_digest_delivery {
                map.insert("LatestDigestDeliveryTime".into(), json!(seconds(t)));
            }
            if let Some(e) = status.last_error {
                map.insert("LatestDeliveryError".into(), Value::String(e));
            }
        }
        Ok(answer)
    }

    async fn list_public_keys(&self, ctx: &RequestContext, req: ListPublicKeysRequest) -> Result<Value, ServiceError> {
        self.authorize_iam(ctx, "cloudtrail:ListPublicKeys", "*", RequestKeys::none()).await?;
        if req.next_token.is_some() {
            // Every key fits one page: no token was ever handed out.
            return Err(error(Exception::InvalidToken, "Invalid NextToken."));
        }
        let now = self.clock.now();
        let start = req.start_time.map_or(now, time);
        let end = req.end_time.map_or(now, time);
        if start > end {
            return Err(error(Exception::InvalidTimeRange, "Start time must be before end time."));
        }
        let keys = crate::trail::public_keys(self.store.as_ref())
            .await
            .map_err(|e| error(Exception::KmsInternal, e.to_string()))?;
        let listed: Vec<Value> = keys
            .iter()
            .filter(|k| k.valid_from <= end.unix_millis() && k.valid_until.is_none_or(|u| u >= start.unix_millis()))
            .map(|k| {
                let mut key = json!({
                    "Value": k.value,
                    "Fingerprint": k.fingerprint,
                    "ValidityStartTime": seconds(Timestamp::from_unix_millis(k.valid_from)),
                });
                if let (Some(until), Some(map)) = (k.valid_until, key.as_object_mut()) {
                    map.insert("ValidityEndTime".into(), json!(seconds(Timestamp::from_unix_millis(until))));
                }
                key
            })
            .collect();
        Ok(json!({"PublicKeyList": listed}))
    }

    async fn lookup_events(&self, ctx: &RequestContext, req: LookupEventsRequest) -> Result<Value, ServiceError> {
        self.authorize_iam(ctx, "cloudtrail:LookupEvents", "*", RequestKeys::none()).await?;
        let attributes = req.lookup_attributes.unwrap_or_default();
        if attributes.len() > 1 {
            return Err(error(
                Exception::InvalidLookupAttributes,
                "You cannot specify more than one lookup attribute.",
            ));
        }
        let attribute = attributes.first();
        if let Some(a) = attribute {
            const KEYS: [&str; 8] = [
                "EventId",
                "EventName",
                "ReadOnly",
                "Username",
                "ResourceType",
                "ResourceName",
                "EventSource",
                "AccessKeyId",
            ];
            if !KEYS.contains(&a.attribute_key.as_str())
                || a.attribute_value.is_empty()
                || a.attribute_value.len() > 2000
            {
                return Err(error(
                    Exception::InvalidLookupAttributes,
                    format!("'{}' is not a valid lookup attribute.", a.attribute_key),
                ));
            }
        }
        if req.event_category.as_deref().is_some_and(|c| c != "insight") {
            return Err(error(Exception::Validation, "EventCategory must be insight."));
        }
        if req.event_category.is_some() {
            // No Insights events are recorded.
            return Ok(json!({"Events": []}));
        }
        let max = match req.max_results {
            None => MAX_RESULTS,
            Some(n) if (1..=50).contains(&n) => usize::try_from(n).unwrap_or(MAX_RESULTS),
            Some(_) => return Err(error(Exception::InvalidMaxResults, "MaxResults must be between 1 and 50.")),
        };
        let now = self.clock.now();
        let oldest = now.plus_millis(-LOOKBACK_MILLIS);
        let from = req.start_time.map(time).map_or(oldest, |t| t.max(oldest));
        let to = req.end_time.map(time);
        if to.is_some_and(|to| to < from) {
            return Err(error(Exception::InvalidTimeRange, "The start time must be before the end time."));
        }
        let mut before = match req.next_token.as_deref() {
            None => None,
            Some(token) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| error(Exception::InvalidNextToken, "Invalid NextToken."))?,
            ),
        };
        let account = format!("\"recipientAccountId\":\"{}\"", ctx.caller.principal.account);
        // By event name or a key ARN the store's indexes narrow the scan; other attributes are
        // checked record by record.
        let (event_name, key_arn) = match attribute {
            Some(a) if a.attribute_key == "EventName" => (Some(a.attribute_value.clone()), None),
            Some(a) if a.attribute_key == "ResourceName" && a.attribute_value.starts_with("arn:aws:kms:") => {
                (None, Some(a.attribute_value.clone()))
            }
            _ => (None, None),
        };
        let mut events: Vec<(u64, Value)> = Vec::new();
        loop {
            let filter = AuditFilter {
                key_arn: key_arn.clone(),
                event_name: event_name.clone(),
                from: Some(from),
                to: to.map(|t| t.plus_millis(1)),
                limit: SCAN_BATCH,
                before_seq: before,
                ..AuditFilter::default()
            };
            let rows = self.store.audit_query(&filter).await?;
            let exhausted = rows.len() < SCAN_BATCH;
            for row in &rows {
                if !row.record.contains(&account) {
                    continue;
                }
                let Ok(record) = serde_json::from_str::<Value>(&row.record) else { continue };
                if let Some(e) = event(row, &record, attribute) {
                    events.push((row.seq, e));
                }
                if events.len() > max {
                    break;
                }
            }
            before = rows.last().map(|r| r.seq);
            if exhausted || events.len() > max || before.is_none() {
                break;
            }
        }
        let next = (events.len() > max).then(|| {
            let last_shown = events.get(max - 1).map_or(0, |(seq, _)| *seq);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_shown.to_string())
        });
        events.truncate(max);
        let mut answer = json!({"Events": events.into_iter().map(|(_, e)| e).collect::<Vec<_>>()});
        if let (Some(next), Some(map)) = (next, answer.as_object_mut()) {
            map.insert("NextToken".into(), Value::String(next));
        }
        Ok(answer)
    }
}
