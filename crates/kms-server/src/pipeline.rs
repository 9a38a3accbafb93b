//! The request pipeline: one AWS API request (KMS, the admin API or STS on `POST /`) from its
//! head to its answer, in named stages, each a function:
//!
//! ```text
//! begin → limit (anonymous sources) → read (body) → authenticate (SigV4, session token,
//! forward access) → route (target → KMS operation | admin operation | STS) → context
//! (RequestContext, audit draft) → admit (quotas) → dispatch (handler) → answer (response or
//! the one error rendering) → record (metrics, audit)
//! ```
//!
//! Every failure is a [`ServiceError`]; [`answer`] is the one place that turns it into what the
//! client receives, for either protocol (AWS JSON 1.1, or STS's query protocol with XML).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use kms_api::{ApiError, CONTENT_TYPE, Exception, Operation};
use kms_core::Rng;
use kms_core::ids::Region;
use tracing::error;

use crate::admin::ADMIN_TARGET_PREFIX;
use crate::audit::AuditDraft;
use crate::auth::Endpoint;
use crate::error::ServiceError;
use crate::http::{
    Connection, FORWARD_ACCESS_TOKEN, Front, SOURCE_ACCOUNT, SOURCE_ARN, VIA_PRINCIPAL, X_AMZ_TARGET, header_value,
    response,
};
use crate::query::QueryApi;
use crate::service::{Caller, RequestContext, Service};

/// The protocol a request speaks, which decides how its answer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// AWS JSON 1.1 (KMS and the admin API).
    Json,
    /// The query protocol: form-encoded request, XML answer (STS).
    Query,
}

/// Where an authenticated request goes.
#[derive(Clone, Copy, Debug)]
enum Route<'a> {
    /// An AWS KMS operation.
    Kms(Operation),
    /// A `FerrokmsAdmin.<name>` operation.
    Admin(&'a str),
    /// An STS or IAM action (named in the body).
    Query(QueryApi),
    /// A CloudTrail operation.
    CloudTrail(&'a str),
}

/// What the request's audit record and metrics need, gathered as the stages run.
#[derive(Default)]
struct Seen {
    /// The CloudTrail `eventID`, drawn with the request id.
    event_id: String,
    ctx: Option<RequestContext>,
    event_name: String,
    event_source: &'static str,
}

/// Whether a request that has no caller (yet) may be answered and audited as usual, or is past
/// its source's limit of failed-authentication requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unauthenticated {
    Admitted,
    Refused,
}

impl Unauthenticated {
    /// Takes one failed request from the source's bucket.
    fn check(front: &Front, peer: SocketAddr) -> Self {
        // Tokio's clock (not the injected domain clock): the limit is about the load on this
        // process, like the connection timeouts.
        let millis = i64::try_from(front.epoch.elapsed().as_millis()).unwrap_or(i64::MAX);
        if front.failed_auth.admit(peer.ip(), millis) { Self::Admitted } else { Self::Refused }
    }

    /// The answer past the limit: `ThrottlingException` (400), with AWS's message.
    fn refusal(self) -> Result<(), ServiceError> {
        match self {
            Self::Admitted => Ok(()),
            Self::Refused => Err(ServiceError::Api(ApiError::with_message(Exception::Throttling, "Rate exceeded"))),
        }
    }
}

/// Who an authenticated request acts as, and how it was signed.
struct Authenticated {
    endpoint: Endpoint,
    caller: Caller,
    region: Region,
    /// The service, when a service principal itself signed the request.
    service: Option<String>,
    /// The service that acts for `caller` with its forward access token (`kms:ViaService`).
    via_service: Option<String>,
}

/// Answers one `POST /` request.
pub(crate) async fn handle(
    svc: &Service,
    front: &Front,
    req: http::Request<Incoming>,
    connection: Connection,
) -> Response<Full<Bytes>> {
    let Connection { peer, transport, .. } = connection;
    #[allow(clippy::disallowed_methods)] // request latency for the log, not domain time
    let started = Instant::now();
    let (request_id, event_id) = request_and_event_ids(&svc.public_rng);
    let (parts, body) = req.into_parts();
    let target = header_value(&parts, &X_AMZ_TARGET).unwrap_or_default();
    let protocol = protocol(&parts);
    let mut seen = begin(event_id, target);
    // The budget this request's body holds, given back when the request is answered.
    let mut held_body = None;
    // A request without credentials cannot authenticate: past its source's limit it is refused
    // before its body is read.
    let anonymous = parts.headers.get(header::AUTHORIZATION).is_none();
    let mut unauthenticated = if anonymous { Unauthenticated::check(front, peer) } else { Unauthenticated::Admitted };
    let mut body_refused = false;
    let mut result = async {
        unauthenticated.refusal()?;
        let body = match crate::body::read(body, front.max_body_bytes, front.body_read_timeout, &front.bodies).await {
            Ok((body, held)) => {
                held_body = Some(held);
                body
            }
            Err(e) => {
                body_refused = true;
                return Err(ServiceError::Api(e.to_api()));
            }
        };
        // STS's AssumeRoleWithWebIdentity is not signed: the web identity token in it is the
        // credential (checked by the handler), and the caller has no AWS identity until then.
        let who = if anonymous && protocol == Protocol::Query && crate::query::action_of(&body) == WEB_IDENTITY {
            web_identity_caller()
        } else {
            authenticate(svc, &parts, &body, target).await?
        };
        let route = route(who.endpoint, target, &parts);
        if let Ok(Route::Query(api)) = route {
            seen.event_source = api.event_source();
            seen.event_name = crate::query::action_of(&body);
        }
        let ctx = context(&seen, &parts, &body, protocol, who, request_id.clone(), peer, transport);
        // Kept for the audit event after the response; the handler borrows it (no clone). A
        // routing error is the authenticated caller's, and recorded as such.
        let ctx = &*seen.ctx.insert(ctx);
        let route = route?;
        admit(svc, ctx, route)?;
        dispatch(svc, ctx, route, &body).await
    }
    .await;
    // Failed before a caller was known (body or authentication): audited only within the
    // source's limit; past it, answered ThrottlingException and counted, nothing more. A
    // failure of the server's own (the store unreachable while the credential was loaded, as
    // during a database failover) is not the source's: it is answered KMSInternalException and
    // audited, and leaves the source's budget alone.
    let server_fault = result.as_ref().err().is_some_and(ServiceError::is_internal);
    if seen.ctx.is_none() && !anonymous && !server_fault {
        unauthenticated = Unauthenticated::check(front, peer);
    }
    if let (None, Err(refusal)) = (&seen.ctx, unauthenticated.refusal()) {
        result = Err(refusal);
    }
    let elapsed = started.elapsed().as_micros();
    let read_only = crate::audit::read_only(&seen.event_name);
    // The rest of an unread body is still on its way: the connection cannot carry another
    // request, and reading the rest would undo the limit.
    let close = body_refused || unauthenticated == Unauthenticated::Refused;
    let log = Log { request_id: &request_id, target, peer, micros: elapsed };
    let (response, outcome) = answer(svc, &seen, result, protocol, read_only, close, &log);
    if unauthenticated == Unauthenticated::Admitted {
        record(svc, &parts, &seen, &request_id, peer, read_only, outcome).await;
    }
    drop(held_body);
    response
}

/// The APIs the web console calls (see [`crate::console`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConsoleApi {
    /// AWS KMS (`TrentService.<action>`).
    Kms,
    /// IAM (query protocol; the answer is IAM's XML).
    Iam,
    /// CloudTrail (LookupEvents).
    CloudTrail,
}

/// The user agent of the console's calls, in their audit records.
pub(crate) const CONSOLE_USER_AGENT: &str = "ferrokms-console";

/// One call the web console makes for its signed-in principal: entered right after stage
/// *authenticate* (the console re-resolved `caller` from its access key for this call), then
/// the same stages as a SigV4 request from that principal — route, context, admit, dispatch,
/// answer, record — so the same authorization, quotas, metrics and audit record (with the
/// console's user agent). `action` names a KMS operation, a CloudTrail operation or an IAM
/// action; `body` is the request as that API takes it (JSON, or IAM's form).
pub(crate) async fn console_call(
    svc: &Service,
    caller: Caller,
    region: Region,
    (api, action): (ConsoleApi, &str),
    body: &[u8],
    connection: Connection,
) -> Response<Full<Bytes>> {
    let Connection { peer, transport, .. } = connection;
    #[allow(clippy::disallowed_methods)] // request latency for the log, not domain time
    let started = Instant::now();
    let (request_id, event_id) = request_and_event_ids(&svc.public_rng);
    let (endpoint, target, content_type, protocol) = match api {
        ConsoleApi::Kms => (Endpoint::Kms, format!("TrentService.{action}"), CONTENT_TYPE, Protocol::Json),
        ConsoleApi::CloudTrail => (
            Endpoint::CloudTrail,
            format!("{}{action}", crate::cloudtrail::TARGET_PREFIX),
            CONTENT_TYPE,
            Protocol::Json,
        ),
        ConsoleApi::Iam => (Endpoint::Iam, String::new(), "application/x-www-form-urlencoded", Protocol::Query),
    };
    let mut head = http::Request::builder()
        .method(http::Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, content_type)
        .header(header::USER_AGENT, CONSOLE_USER_AGENT);
    if !target.is_empty() {
        head = head.header(&X_AMZ_TARGET, target.as_str());
    }
    let parts = match head.body(()) {
        Ok(request) => request.into_parts().0,
        Err(e) => {
            error!(request_id, "console request head: {e}");
            let api = ApiError::with_message(Exception::KmsInternal, "the console could not build the request");
            return render_error(&api, protocol, QueryApi::Iam, &request_id);
        }
    };
    let mut seen = begin(event_id, &target);
    let who = Authenticated { endpoint, caller, region, service: None, via_service: None };
    let result = async {
        let route = route(who.endpoint, &target, &parts);
        if let Ok(Route::Query(api)) = route {
            seen.event_source = api.event_source();
            seen.event_name = crate::query::action_of(body);
        }
        let ctx = context(&seen, &parts, body, protocol, who, request_id.clone(), peer, transport);
        let ctx = &*seen.ctx.insert(ctx);
        let route = route?;
        admit(svc, ctx, route)?;
        dispatch(svc, ctx, route, body).await
    }
    .await;
    let elapsed = started.elapsed().as_micros();
    let read_only = crate::audit::read_only(&seen.event_name);
    let log = Log { request_id: &request_id, target: &target, peer, micros: elapsed };
    let (response, outcome) = answer(svc, &seen, result, protocol, read_only, false, &log);
    record(svc, &parts, &seen, &request_id, peer, read_only, outcome).await;
    response
}

/// Stage *begin*: the audit record's first facts, from the target alone.
fn begin(event_id: String, target: &str) -> Seen {
    Seen {
        event_id,
        event_name: target.rsplit('.').next().unwrap_or_default().to_owned(),
        event_source: if target.starts_with(ADMIN_TARGET_PREFIX) {
            "ferrokms.admin"
        } else if target.starts_with(crate::cloudtrail::TARGET_PREFIX) {
            "cloudtrail.amazonaws.com"
        } else {
            "kms.amazonaws.com"
        },
        ctx: None,
    }
}

/// STS and IAM speak the query protocol: form-encoded requests, XML answers.
fn protocol(parts: &http::request::Parts) -> Protocol {
    let form =
        header_value(parts, header::CONTENT_TYPE).is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form { Protocol::Query } else { Protocol::Json }
}

/// The one unsigned action.
const WEB_IDENTITY: &str = "AssumeRoleWithWebIdentity";

/// Who an unsigned AssumeRoleWithWebIdentity comes from until its token is checked: a web
/// identity of no provider yet, which no policy names and no account holds.
fn web_identity_caller() -> Authenticated {
    let principal = kms_core::policy::Principal {
        arn: String::new(),
        account: kms_core::ids::AccountId::parse("000000000000")
            .unwrap_or_else(|_| crate::bootstrap::unreachable_account()),
        kind: kms_core::policy::PrincipalKind::WebIdentity { provider: String::new() },
        user_id: String::new(),
        username: None,
    };
    Authenticated {
        endpoint: Endpoint::Sts,
        caller: Caller { principal: Arc::new(principal), access_key_id: String::new(), tags: Arc::new([]) },
        region: Region::parse("us-east-1").unwrap_or_else(|_| crate::config::unreachable_region()),
        service: None,
        via_service: None,
    }
}

/// Stage *authenticate*: the SigV4 signature (and session token), then — in the same place —
/// who the request acts as: the signer, or the user whose forward access token a service
/// presents (see [`crate::forward_access`]).
async fn authenticate(
    svc: &Service,
    parts: &http::request::Parts,
    body: &[u8],
    target: &str,
) -> Result<Authenticated, ServiceError> {
    let (endpoint, caller, region) = svc.auth.authenticate(parts, body).await?;
    let service = match &caller.principal.kind {
        kms_core::policy::PrincipalKind::Service { name } => Some(name.clone()),
        _ => None,
    };
    let api = if endpoint != Endpoint::Kms || target.starts_with(ADMIN_TARGET_PREFIX) {
        crate::forward_access::Api::Management
    } else {
        crate::forward_access::Api::Kms
    };
    let (caller, via_service) = svc
        .acting_caller(caller, header_value(parts, &FORWARD_ACCESS_TOKEN), header_value(parts, &VIA_PRINCIPAL), api)
        .await?;
    Ok(Authenticated { endpoint, caller, region, service, via_service })
}

/// Stage *route*: which API and operation the request is for.
///
/// # Errors
/// `UnknownOperationException` for a KMS request in another content type or naming no
/// operation.
fn route<'a>(endpoint: Endpoint, target: &'a str, parts: &http::request::Parts) -> Result<Route<'a>, ServiceError> {
    match endpoint {
        Endpoint::Sts => return Ok(Route::Query(QueryApi::Sts)),
        Endpoint::Iam => return Ok(Route::Query(QueryApi::Iam)),
        Endpoint::CloudTrail => {
            json_content_type(header_value(parts, header::CONTENT_TYPE))?;
            return target.strip_prefix(crate::cloudtrail::TARGET_PREFIX).map(Route::CloudTrail).ok_or_else(|| {
                ServiceError::Api(ApiError::with_message(
                    Exception::UnknownOperation,
                    format!("'{target}' is not an operation of the CloudTrail API"),
                ))
            });
        }
        Endpoint::Kms => {}
    }
    json_content_type(header_value(parts, header::CONTENT_TYPE))?;
    if let Some(admin_op) = target.strip_prefix(ADMIN_TARGET_PREFIX) {
        return Ok(Route::Admin(admin_op));
    }
    Operation::from_target(target).map(Route::Kms).ok_or_else(|| {
        ServiceError::Api(ApiError::with_message(
            Exception::UnknownOperation,
            format!("'{target}' is not an operation of the AWS KMS API (expected TrentService.<Operation>)"),
        ))
    })
}

/// Stage *context*: what the handler knows about the request, and the audit draft a
/// control-plane change commits with its change.
#[allow(clippy::too_many_arguments)]
fn context(
    seen: &Seen,
    parts: &http::request::Parts,
    body: &[u8],
    protocol: Protocol,
    who: Authenticated,
    request_id: String,
    peer: SocketAddr,
    transport: crate::service::Transport,
) -> RequestContext {
    let draft = AuditDraft::new(
        seen.event_name.clone(),
        seen.event_source,
        header_value(parts, header::USER_AGENT).unwrap_or_default().to_owned(),
        request_parameters(body, protocol),
    );
    // A service principal acting for a resource says which (aws:SourceArn/SourceAccount).
    let from_service = |name| who.service.as_ref().and_then(|_| header_value(parts, name)).map(str::to_owned);
    RequestContext {
        source_arn: from_service(&SOURCE_ARN),
        source_account: from_service(&SOURCE_ACCOUNT),
        caller: who.caller,
        region: who.region,
        request_id,
        source_ip: peer.ip(),
        transport,
        via_service: who.via_service,
        key_arn: Default::default(),
        audit: Some(Arc::new(draft)),
    }
}

/// Stage *admit*: request quotas, for the AWS operations, per the caller's account and region.
fn admit(svc: &Service, ctx: &RequestContext, route: Route<'_>) -> Result<(), ServiceError> {
    match route {
        Route::Kms(op) => {
            Ok(svc.quotas.admit(&ctx.caller.principal.account, &ctx.region, op.name(), svc.clock.now())?)
        }
        Route::Admin(_) | Route::Query(_) | Route::CloudTrail(_) => Ok(()),
    }
}

/// Stage *dispatch*: the handler.
async fn dispatch(svc: &Service, ctx: &RequestContext, route: Route<'_>, body: &[u8]) -> Result<Vec<u8>, ServiceError> {
    match route {
        Route::Kms(op) => crate::ops::dispatch(svc, ctx, op, body).await,
        Route::Admin(op) => svc.admin(ctx, op, body).await,
        Route::Query(QueryApi::Sts) => svc.sts(ctx, body).await,
        Route::Query(QueryApi::Iam) => svc.iam(ctx, body).await,
        Route::CloudTrail(op) => svc.cloudtrail(ctx, op, body).await,
    }
}

/// What the log line of a request names.
struct Log<'a> {
    request_id: &'a str,
    target: &'a str,
    peer: SocketAddr,
    micros: u128,
}

/// Stage *answer*: the response, and the outcome for the audit record (the response members of
/// a change, or the error the client saw). The one place a [`ServiceError`] becomes what the
/// client receives: [`ServiceError::to_api`] picks the exception, [`render_error`] writes it in
/// the request's protocol.
/// The response and the outcome the audit record takes, counted in the request metrics.
fn answer(
    svc: &Service,
    seen: &Seen,
    result: Result<Vec<u8>, ServiceError>,
    protocol: Protocol,
    read_only: bool,
    close: bool,
    log: &Log<'_>,
) -> (Response<Full<Bytes>>, Result<Option<serde_json::Value>, ApiError>) {
    let (response, outcome) = respond(svc, seen, result, protocol, read_only, close, log);
    let outcome_name = match &outcome {
        Ok(_) => "Success",
        Err(api) => api.exception.name(),
    };
    let name = if seen.event_name.is_empty() { "Unknown" } else { seen.event_name.as_str() };
    #[allow(clippy::cast_precision_loss)] // microseconds fit an f64 exactly for centuries
    svc.metrics.observe(name, outcome_name, log.micros as f64 / 1e6);
    (response, outcome)
}

fn respond(
    svc: &Service,
    seen: &Seen,
    result: Result<Vec<u8>, ServiceError>,
    protocol: Protocol,
    read_only: bool,
    close: bool,
    log: &Log<'_>,
) -> (Response<Full<Bytes>>, Result<Option<serde_json::Value>, ApiError>) {
    let Log { request_id, target, peer, micros } = *log;
    match result {
        Ok(body) => {
            tracing::debug!(request_id, target, %peer, status = 200, micros, "request");
            // Not needed when the event was committed with the change (it has the response).
            let committed = seen.ctx.as_ref().is_some_and(RequestContext::audit_committed);
            let json = if read_only || protocol == Protocol::Query || committed {
                None
            } else {
                serde_json::from_slice(&body).ok()
            };
            let mut resp = response(StatusCode::OK, request_id, body);
            if protocol == Protocol::Query {
                resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/xml"));
            }
            (resp, Ok(json))
        }
        Err(e) => {
            if let ServiceError::Kms(kms_core::KmsError::InvalidState {
                state: kms_core::key::KeyState::PendingDeletion,
                ..
            }) = &e
            {
                svc.metrics.pending_deletion_use(&seen.event_name);
            }
            let api = e.to_api(request_id);
            if e.is_internal() {
                error!(request_id, target, %peer, error = %e, "internal error");
            }
            tracing::debug!(request_id, target, %peer, status = api.status(), error = api.exception.name(), micros, "request");
            let query_api = QueryApi::from_event_source(seen.event_source).unwrap_or(QueryApi::Sts);
            let mut resp = render_error(&api, protocol, query_api, request_id);
            if close {
                resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            }
            (resp, Err(api))
        }
    }
}

/// Writes an error in the request's protocol: AWS JSON 1.1 (`__type`, `message`, the
/// exception's status) or STS's XML (its error codes, and 403 for authentication and
/// authorization failures, as STS answers them).
fn render_error(api: &ApiError, protocol: Protocol, query_api: QueryApi, request_id: &str) -> Response<Full<Bytes>> {
    match protocol {
        Protocol::Json => {
            let status = StatusCode::from_u16(api.status()).unwrap_or(StatusCode::BAD_REQUEST);
            response(status, request_id, api.body())
        }
        Protocol::Query => {
            let status = StatusCode::from_u16(query_api.status(api.exception)).unwrap_or(StatusCode::BAD_REQUEST);
            let mut resp = response(status, request_id, query_api.error_body(api, request_id));
            resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/xml"));
            resp
        }
    }
}

/// Checks that a KMS request is in the AWS JSON protocol: `application/x-amz-json-1.1` (the AWS
/// SDKs' choice) or `-1.0`, parameters such as a charset allowed. Another content type names no
/// operation of this protocol, so the answer is `UnknownOperationException`.
fn json_content_type(value: Option<&str>) -> Result<(), ServiceError> {
    let media = value.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case(CONTENT_TYPE) || media.eq_ignore_ascii_case("application/x-amz-json-1.0") {
        return Ok(());
    }
    Err(ServiceError::Api(ApiError::with_message(
        Exception::UnknownOperation,
        format!("Unsupported Content-Type '{media}': AWS KMS requests are {CONTENT_TYPE}"),
    )))
}

/// The request's members as JSON, for `requestParameters`.
fn request_parameters(body: &[u8], protocol: Protocol) -> Option<serde_json::Value> {
    match protocol {
        Protocol::Query => Some(crate::query::form_as_json(body)),
        Protocol::Json => serde_json::from_slice(body).ok(),
    }
}

/// The access key named in an Authorization header, for auditing failed authentication.
fn presented_access_key(parts: &http::request::Parts) -> Option<&str> {
    let auth = header_value(parts, header::AUTHORIZATION)?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next()
}

/// Fresh random UUIDs for the request id and the audit event id, from one draw of 32 bytes (of
/// the service's pooled generator for public values).
fn request_and_event_ids(rng: &dyn Rng) -> (String, String) {
    let bytes: [u8; 32] = kms_crypto::random_array(rng);
    let (request, event) = bytes.split_at(16);
    // Both halves are 16 bytes long.
    let uuid = |half: &[u8]| crate::audit::random_uuid(half.try_into().unwrap_or_default());
    (uuid(request), uuid(event))
}

/// Stage *record*: the request in the audit trail (off the request path: the writer batches),
/// unless its event was already committed with the change it made.
async fn record(
    svc: &Service,
    parts: &http::request::Parts,
    seen: &Seen,
    request_id: &str,
    peer: SocketAddr,
    read_only: bool,
    outcome: Result<Option<serde_json::Value>, ApiError>,
) {
    let ctx = seen.ctx.as_ref();
    if ctx.is_some_and(RequestContext::audit_committed) {
        return;
    }
    // Parsed (and scrubbed) once when the request was authenticated. A request that failed
    // authentication is recorded without its parameters, as CloudTrail records it: whoever can
    // reach the port must not be able to store what they like in the trail for years.
    let draft = ctx.and_then(|c| c.audit.as_deref());
    let request = draft.and_then(|d| d.request.as_ref());
    let (response, error) = match &outcome {
        Ok(json) => (json.as_ref(), None),
        Err(api) => (None, Some(api)),
    };
    let region = ctx.map_or("-", |c| c.region.as_str());
    // The draft holds the user agent already; the key presented matters only when
    // authentication failed (there is no caller).
    let user_agent =
        draft.map_or_else(|| header_value(parts, header::USER_AGENT).unwrap_or_default(), |d| d.user_agent.as_str());
    let presented = if ctx.is_none() { presented_access_key(parts) } else { None };
    let event = crate::audit::event(crate::audit::EventInput {
        event_id: seen.event_id.clone(),
        request_id,
        time: svc.clock.now(),
        event_name: if seen.event_name.is_empty() { "Unknown" } else { &seen.event_name },
        event_source: seen.event_source,
        caller: ctx.map(|c| &c.caller),
        via_service: ctx.and_then(|c| c.via_service.as_deref()),
        presented_access_key: presented,
        region,
        source_ip: peer.ip().to_string(),
        user_agent,
        request,
        response,
        error,
        key_arn: ctx.and_then(|c| c.key_arn.get()),
        other_key_arn: ctx.and_then(|c| c.key_arn.other()),
        read_only,
    });
    svc.audit.record(event).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its draws and numbers the bytes of each.
    struct Counting(AtomicUsize);

    impl Rng for Counting {
        fn fill(&self, buf: &mut [u8]) {
            self.0.fetch_add(1, Ordering::SeqCst);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = u8::try_from(i % 256).unwrap_or_default();
            }
        }
    }

    /// The request id and the event id are the two halves of one 32-byte draw: two different
    /// version-4 UUIDs.
    #[test]
    fn request_and_event_ids_are_two_uuids_from_one_draw() {
        let rng = Counting(AtomicUsize::new(0));
        let (request, event) = request_and_event_ids(&rng);
        assert_eq!(rng.0.load(Ordering::SeqCst), 1);
        assert_eq!(request, "00010203-0405-4607-8809-0a0b0c0d0e0f");
        assert_eq!(event, "10111213-1415-4617-9819-1a1b1c1d1e1f");
    }

    /// The same error in both protocols: JSON with the exception's status, STS's XML with its
    /// code and 403 for what STS answers with 403.
    #[test]
    fn one_error_in_both_protocols() {
        let api = ApiError::with_message(Exception::AccessDenied, "no");
        let json = render_error(&api, Protocol::Json, QueryApi::Sts, "r");
        assert_eq!(json.status(), StatusCode::BAD_REQUEST);
        let xml = render_error(&api, Protocol::Query, QueryApi::Sts, "r");
        assert_eq!(xml.status(), StatusCode::FORBIDDEN);
        assert_eq!(xml.headers()[header::CONTENT_TYPE], "text/xml");
        let internal = ApiError::with_message(Exception::KmsInternal, "x");
        let internal = render_error(&internal, Protocol::Query, QueryApi::Iam, "r");
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let missing = ApiError::with_message(Exception::NotFound, "gone");
        assert_eq!(render_error(&missing, Protocol::Query, QueryApi::Iam, "r").status(), StatusCode::NOT_FOUND);
    }
}
