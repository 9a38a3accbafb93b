//! The web console at `/console`: static pages built into the binary, and a small JSON API
//! that signs a person in with an access key pair and then acts only through the AWS APIs.
//!
//! - Sign-in checks the key pair (and a role session's token) against the credential SigV4
//!   verification uses (`Authenticator::verify_secret`), under the same
//!   per-source limit on failed authentication. It makes a session on this node (see
//!   [`session`]): a random 256-bit id in an `HttpOnly; SameSite=Strict; Path=/console` cookie
//!   (`Secure` over TLS) and a CSRF token the page sends in `X-Ferrokms-Csrf` with every call.
//! - A call names an API (`kms`, `iam`, `cloudtrail`), an action and its parameters. The
//!   session's access key is resolved again for every call, and the call enters the request
//!   pipeline right after authentication (`pipeline::console_call`): the same
//!   handlers, authorization, quotas, metrics and audit as the aws CLI's request would get, with
//!   the user agent `ferrokms-console`. Nothing else acts on the store, so the console can do
//!   nothing its user could not do with the CLI.
//! - Three read-only extras: the dashboard's request-rate history (sampled from this node's
//!   metrics, and shown only where `/metrics` needs no token), a key policy's check before it
//!   is saved (what PutKeyPolicy would say, lockout included, for a caller whom GetKeyPolicy and
//!   DescribeKey authorize, through those calls), and the audit chain's verification (run only
//!   for a caller whom LookupEvents authorizes, through that call).
//!
//! The console does no I/O of its own beyond the store reads of those extras.

pub mod samples;
pub mod session;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use kms_api::{ApiError, Exception};
use kms_core::ids::Region;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::error::ServiceError;
use crate::http::{Connection, Front, header_value};
use crate::pipeline::{CONSOLE_USER_AGENT, ConsoleApi, console_call};
use crate::service::{Caller, Service, Transport};

/// The session cookie's name.
pub const COOKIE: &str = "ferrokms_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-ferrokms-csrf";

/// What pages may do: scripts, styles and calls only from this origin, no inline script, no
/// framing, no plug-ins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console's state on one node.
pub(crate) struct Console {
    sessions: session::Sessions,
    pub(crate) samples: samples::Samples,
    region: Region,
    /// Whether `/metrics` is readable without a token (then the dashboard shows its history).
    metrics_open: bool,
    /// The audit chain's verification on this node: at most one runs at a time.
    verification: Arc<tokio::sync::watch::Sender<Verification>>,
}

/// Where this node's audit-chain verification stands.
#[derive(Clone, Debug)]
enum Verification {
    Idle,
    Running,
    /// The answer for the page, or what went wrong (logged; the page gets a 500).
    Done(Result<Value, String>),
}

/// How long a verification request waits for the answer before it says "running" (the page
/// asks again); well within the listener's idle timeout.
const VERIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

impl Console {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            sessions: session::Sessions::default(),
            samples: samples::Samples::default(),
            region: config.default_region.clone(),
            metrics_open: config.metrics_token.as_deref().is_none_or(str::is_empty),
            verification: Arc::new(tokio::sync::watch::Sender::new(Verification::Idle)),
        }
    }
}

/// Samples the service's request metrics into the dashboard's ring buffer, now and every
/// [`samples::INTERVAL_MILLIS`].
pub(crate) fn spawn_sampler(svc: Arc<Service>, front: Arc<Front>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(samples::INTERVAL_MILLIS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            front.console.samples.push(svc.clock.now().unix_millis(), svc.metrics.totals());
        }
    })
}

/// A static file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, body: include_str!(concat!("assets/", $name)) }
    };
}

/// Every file the console serves under `/console/assets/`.
const ASSETS: &[Asset] = &[
    asset!("console.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("keys.js", JS),
    asset!("key.js", JS),
    asset!("principals.js", JS),
    asset!("audit.js", JS),
    asset!("dashboard.js", JS),
    asset!("diff.js", JS),
    asset!("chart.js", JS),
];

const INDEX: &str = include_str!("assets/index.html");

/// Answers a request under `/console`.
pub(crate) async fn handle(
    svc: &Service,
    front: &Front,
    req: Request<Incoming>,
    connection: Connection,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let response = match (&parts.method, path.as_str()) {
        (&Method::GET, "/console") => {
            let mut resp = text(StatusCode::PERMANENT_REDIRECT, "text/plain", "/console/\n");
            resp.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/console/"));
            resp
        }
        (&Method::GET, "/console/") => text(StatusCode::OK, HTML, INDEX),
        (&Method::GET, p) if p.starts_with("/console/assets/") => {
            let name = p.trim_start_matches("/console/assets/");
            match ASSETS.iter().find(|a| a.name == name) {
                Some(a) => text(StatusCode::OK, a.content_type, a.body),
                None => error(StatusCode::NOT_FOUND, "NotFoundException", "No such console file."),
            }
        }
        (&Method::GET, "/console/api/session") => match signed_in(svc, front, &parts).await {
            Ok(s) => info(front, &s),
            Err(resp) => resp,
        },
        (&Method::POST, "/console/api/sign-in") => match read_json(front, &parts, body).await {
            Ok(bytes) => sign_in(svc, front, &bytes, session_id(&parts), connection).await,
            Err(resp) => resp,
        },
        (&Method::POST, "/console/api/sign-out") => match changing(svc, front, &parts).await {
            Ok(s) => {
                front.console.sessions.remove(&s.id);
                let mut resp = json_response(StatusCode::OK, &json!({"signedOut": true}));
                set_cookie(&mut resp, &expired_cookie(connection.transport));
                resp
            }
            Err(resp) => resp,
        },
        (&Method::POST, "/console/api/call") => match changing(svc, front, &parts).await {
            Ok(s) => match read_json(front, &parts, body).await {
                Ok(bytes) => call(svc, front, s.caller, &bytes, connection).await,
                Err(resp) => resp,
            },
            Err(resp) => resp,
        },
        (&Method::GET, "/console/api/metrics") => match signed_in(svc, front, &parts).await {
            Ok(_) if front.console.metrics_open => json_response(StatusCode::OK, &front.console.samples.series()),
            Ok(_) => error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "This server's /metrics needs a bearer token, so the console does not show them.",
            ),
            Err(resp) => resp,
        },
        (&Method::POST, "/console/api/check-policy") => match changing(svc, front, &parts).await {
            Ok(s) => match read_json(front, &parts, body).await {
                Ok(bytes) => check_policy(svc, front, s.caller, &bytes, connection).await,
                Err(resp) => resp,
            },
            Err(resp) => resp,
        },
        (&Method::POST, "/console/api/verify-audit") => match changing(svc, front, &parts).await {
            Ok(s) => verify_audit(svc, front, s.caller, connection).await,
            Err(resp) => resp,
        },
        _ => error(StatusCode::NOT_FOUND, "UnknownOperationException", "No such console page or call."),
    };
    secure(response, path.starts_with("/console/api/"))
}

/// A signed-in session, with its principal resolved again for this request.
struct Signed {
    id: [u8; 32],
    live: session::Live,
    caller: Caller,
}

/// The session the cookie names, if live, with its access key's principal resolved now: a key
/// made inactive or deleted (or a session past its expiry) ends the console session.
async fn signed_in(
    svc: &Service,
    front: &Front,
    parts: &http::request::Parts,
) -> Result<Signed, Response<Full<Bytes>>> {
    let signed_out = || error(StatusCode::UNAUTHORIZED, "SignedOutException", "Not signed in (or the session ended).");
    let id = session_id(parts).ok_or_else(signed_out)?;
    let now = svc.clock.now().unix_millis();
    let live = front.console.sessions.touch(&id, now).ok_or_else(signed_out)?;
    match svc.auth.principal_for_key(&live.access_key_id).await {
        Ok(Some(caller)) => Ok(Signed { id, live, caller }),
        Ok(None) => {
            front.console.sessions.remove(&id);
            Err(error(
                StatusCode::UNAUTHORIZED,
                "SignedOutException",
                "The access key this session signed in with is no longer valid.",
            ))
        }
        Err(e) => Err(internal(&e)),
    }
}

/// [`signed_in`], for a call that may change something: the page's CSRF token must be in the
/// header, and the browser must not say the request came from another site.
async fn changing(svc: &Service, front: &Front, parts: &http::request::Parts) -> Result<Signed, Response<Full<Bytes>>> {
    if header_value(parts, "sec-fetch-site").is_some_and(|s| s == "cross-site") {
        return Err(error(StatusCode::FORBIDDEN, "InvalidCsrfTokenException", "Cross-site requests are refused."));
    }
    let signed = signed_in(svc, front, parts).await?;
    if !session::csrf_matches(&signed.live, header_value(parts, CSRF_HEADER)) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "InvalidCsrfTokenException",
            "The request lacks this session's CSRF token (X-Ferrokms-Csrf).",
        ));
    }
    Ok(signed)
}

/// The id in the session cookie, if there is a well-formed one.
fn session_id(parts: &http::request::Parts) -> Option<[u8; 32]> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .and_then(|hex_id| hex::decode(hex_id).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// The session's facts for the page.
fn info(front: &Front, s: &Signed) -> Response<Full<Bytes>> {
    let principal = &s.caller.principal;
    json_response(
        StatusCode::OK,
        &json!({
            "csrfToken": hex::encode(s.live.csrf),
            "principal": principal.arn,
            "account": principal.account.as_str(),
            "accessKeyId": s.caller.access_key_id,
            "region": front.console.region.as_str(),
            "expires": s.live.ends,
            "idleMillis": session::IDLE_MILLIS,
            "keySpecs": kms_api::model::KEY_SPEC_VALUES,
            "keyUsages": kms_api::model::KEY_USAGE_TYPE_VALUES,
            "metrics": front.console.metrics_open,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SignIn {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

/// `POST /console/api/sign-in`: checks the key pair and starts a session.
async fn sign_in(
    svc: &Service,
    front: &Front,
    body: &[u8],
    previous: Option<[u8; 32]>,
    connection: Connection,
) -> Response<Full<Bytes>> {
    let millis = i64::try_from(front.epoch.elapsed().as_millis()).unwrap_or(i64::MAX);
    let ip = connection.peer.ip();
    // A source past its limit of failures is refused before its guess is checked.
    if front.failed_auth.exhausted(ip, millis) {
        return error(StatusCode::TOO_MANY_REQUESTS, "ThrottlingException", "Rate exceeded");
    }
    let form: SignIn = match serde_json::from_slice(body) {
        Ok(form) => form,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", &format!("Malformed sign-in: {e}")),
    };
    let too_long = form.access_key_id.len() > 128
        || form.secret_access_key.len() > 256
        || form.session_token.as_ref().is_some_and(|t| t.len() > 8192);
    if form.access_key_id.is_empty() || form.secret_access_key.is_empty() || too_long {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "An access key id and secret access key (of at most 128 and 256 characters) are required.",
        );
    }
    let token = form.session_token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let verified =
        svc.auth.verify_secret(form.access_key_id.trim(), form.secret_access_key.trim().as_bytes(), token).await;
    let caller = match verified {
        Ok(caller) => caller,
        Err(e) if e.is_internal() => return internal(&e),
        Err(e) => {
            // Within the source's limit a failure is audited, as a failed SigV4 request is;
            // past it, only counted.
            if !front.failed_auth.admit(ip, millis) {
                return error(StatusCode::TOO_MANY_REQUESTS, "ThrottlingException", "Rate exceeded");
            }
            let api = e.to_api("-");
            audit_sign_in(svc, None, Some(&form.access_key_id), Some(&api), connection).await;
            let message = match api.exception {
                Exception::ExpiredToken => "The session's credentials have expired.",
                _ => "The access key id, secret access key or session token is not valid.",
            };
            return error(StatusCode::UNAUTHORIZED, api.exception.name(), message);
        }
    };
    // A new sign-in replaces the browser's session (always with a fresh id).
    if let Some(previous) = previous {
        front.console.sessions.remove(&previous);
    }
    let id: [u8; 32] = kms_crypto::random_array(svc.rng.as_ref());
    let csrf: [u8; 32] = kms_crypto::random_array(svc.rng.as_ref());
    let now = svc.clock.now().unix_millis();
    let live = match front.console.sessions.create(&id, csrf, &caller.access_key_id, now) {
        Ok(live) => live,
        Err(session::Full::TooMany) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "LimitExceededException", "Too many console sessions.");
        }
    };
    audit_sign_in(svc, Some(&caller), None, None, connection).await;
    let signed = Signed { id, live, caller };
    let mut resp = info(front, &signed);
    set_cookie(&mut resp, &session_cookie(&signed.id, connection.transport));
    resp
}

/// Records a console sign-in, successful or not, as CloudTrail records one (`ConsoleLogin`).
async fn audit_sign_in(
    svc: &Service,
    caller: Option<&Caller>,
    presented: Option<&str>,
    error: Option<&ApiError>,
    connection: Connection,
) {
    let ids: [u8; 32] = kms_crypto::random_array(svc.rng.as_ref());
    let (request, event) = ids.split_at(16);
    let uuid = |half: &[u8]| crate::audit::random_uuid(half.try_into().unwrap_or_default());
    let request_id = uuid(request);
    let response = json!({"ConsoleLogin": if error.is_none() { "Success" } else { "Failure" }});
    let event = crate::audit::event(crate::audit::EventInput {
        event_id: uuid(event),
        request_id: &request_id,
        time: svc.clock.now(),
        event_name: "ConsoleLogin",
        event_source: "signin.amazonaws.com",
        caller,
        via_service: None,
        presented_access_key: presented,
        region: "us-east-1",
        source_ip: connection.peer.ip().to_string(),
        user_agent: CONSOLE_USER_AGENT,
        request: None,
        response: Some(&response),
        error,
        key_arn: None,
        other_key_arn: None,
        read_only: false,
    });
    svc.audit.record(event).await;
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Call {
    service: String,
    action: String,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, Value>>,
}

/// `POST /console/api/call`: one API call as the signed-in principal.
async fn call(
    svc: &Service,
    front: &Front,
    caller: Caller,
    body: &[u8],
    connection: Connection,
) -> Response<Full<Bytes>> {
    let call: Call = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", &format!("Malformed call: {e}")),
    };
    let api = match call.service.as_str() {
        "kms" => ConsoleApi::Kms,
        "iam" => ConsoleApi::Iam,
        "cloudtrail" => ConsoleApi::CloudTrail,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("'{other}' is not an API the console calls (kms, iam, cloudtrail)."),
            );
        }
    };
    if call.action.is_empty() || call.action.len() > 64 || !call.action.bytes().all(|b| b.is_ascii_alphabetic()) {
        return error(StatusCode::BAD_REQUEST, "ValidationException", "Action must be an operation name.");
    }
    let parameters = call.parameters.unwrap_or_default();
    let request = match api {
        ConsoleApi::Kms | ConsoleApi::CloudTrail => serde_json::to_vec(&parameters).unwrap_or_default(),
        ConsoleApi::Iam => match iam_form(&call.action, &parameters) {
            Ok(form) => form.into_bytes(),
            Err(message) => return error(StatusCode::BAD_REQUEST, "ValidationException", &message),
        },
    };
    console_call(svc, caller, front.console.region.clone(), (api, &call.action), &request, connection).await
}

/// IAM's form for an action and flat parameters (IAM's own names, such as `Marker` or
/// `Tags.member.1.Key`).
fn iam_form(action: &str, parameters: &serde_json::Map<String, Value>) -> Result<String, String> {
    let mut form = format!("Action={action}&Version=2010-05-08");
    for (name, value) in parameters {
        if name == "Action" || name == "Version" {
            continue;
        }
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(format!("IAM parameter '{name}' must be a string, number or boolean.")),
        };
        form.push('&');
        form.push_str(&crate::query::url_encode(name));
        form.push('=');
        form.push_str(&crate::query::url_encode(&value));
    }
    Ok(form)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PolicyCheck {
    key_id: String,
    policy: String,
}

/// `POST /console/api/check-policy`: what PutKeyPolicy (without the bypass) would say of a
/// proposed key policy, without saving it — the policy language and named principals checked
/// as PutKeyPolicy checks them, then its lockout check: whether the caller would still be
/// allowed `kms:PutKeyPolicy` on the key. The caller must be allowed to read the key's policy
/// and describe the key: those two calls go through the pipeline first (and are audited), so
/// the check tells nobody anything about a key they cannot see.
async fn check_policy(
    svc: &Service,
    front: &Front,
    caller: Caller,
    body: &[u8],
    connection: Connection,
) -> Response<Full<Bytes>> {
    let check: PolicyCheck = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "ValidationException", &format!("Malformed check: {e}")),
    };
    let region = front.console.region.clone();
    let key = json!({"KeyId": check.key_id, "PolicyName": "default"}).to_string();
    let read = console_call(
        svc,
        caller.clone(),
        region.clone(),
        (ConsoleApi::Kms, "GetKeyPolicy"),
        key.as_bytes(),
        connection,
    )
    .await;
    if read.status() != StatusCode::OK {
        return read;
    }
    let key = json!({"KeyId": check.key_id}).to_string();
    let described =
        console_call(svc, caller.clone(), region.clone(), (ConsoleApi::Kms, "DescribeKey"), key.as_bytes(), connection)
            .await;
    if described.status() != StatusCode::OK {
        return described;
    }
    let Ok(described) = http_body_util::BodyExt::collect(described.into_body()).await.map(|b| b.to_bytes());
    let metadata = serde_json::from_slice::<Value>(&described).ok().and_then(|v| v.get("KeyMetadata").cloned());
    let text = |name: &str| metadata.as_ref().and_then(|m| m.get(name)).and_then(Value::as_str).map(str::to_owned);
    let (Some(arn), Some(account)) = (text("Arn"), text("AWSAccountId")) else {
        return internal(&ServiceError::Api(ApiError::with_message(
            Exception::KmsInternal,
            "DescribeKey named no key",
        )));
    };
    let Ok(account) = kms_core::ids::AccountId::parse(&account) else {
        return internal(&ServiceError::Api(ApiError::with_message(Exception::KmsInternal, "DescribeKey's account")));
    };
    let refused = |e: ServiceError| {
        if e.is_internal() {
            return internal(&e);
        }
        let api = e.to_api("-");
        json_response(StatusCode::OK, &json!({"valid": false, "__type": api.exception.name(), "message": api.message}))
    };
    let policy = match kms_core::policy::KeyPolicy::parse(&check.policy) {
        Ok(policy) => policy,
        Err(e) => return refused(kms_core::KmsError::MalformedPolicyDocument(e).into()),
    };
    if let Err(e) = svc.ensure_principals_exist(&policy).await {
        return refused(e);
    }
    let ctx = crate::service::RequestContext {
        caller,
        region,
        request_id: String::new(),
        source_ip: connection.peer.ip(),
        transport: connection.transport,
        source_arn: None,
        source_account: None,
        via_service: None,
        key_arn: Default::default(),
        audit: None,
    };
    match svc.lockout_safe(&ctx, &policy, &arn, &account).await {
        Ok(safe) => json_response(StatusCode::OK, &json!({"valid": true, "lockoutSafe": safe})),
        Err(e) => refused(e),
    }
}

/// `POST /console/api/verify-audit`: checks the whole audit chain, as `ferrokms audit verify`
/// does. The chain holds every account's records, so only principals of the operator account
/// verify it, and only those whom CloudTrail's LookupEvents authorizes (that call is made, and
/// audited, first, on every request). It reads every record, so it runs only when asked, one at
/// a time on a node, in the background: a request waits up to [`VERIFY_WAIT`] for the answer,
/// else answers `{"state": "running"}` and the page asks again (joining the same run).
async fn verify_audit(svc: &Service, front: &Front, caller: Caller, connection: Connection) -> Response<Full<Bytes>> {
    if caller.principal.account != svc.operator_account {
        return error(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "The audit chain holds every account's records: only the operator account verifies it.",
        );
    }
    let probe = console_call(
        svc,
        caller,
        front.console.region.clone(),
        (ConsoleApi::CloudTrail, "LookupEvents"),
        br#"{"MaxResults":1}"#,
        connection,
    )
    .await;
    if probe.status() != StatusCode::OK {
        return probe;
    }
    let state = Arc::clone(&front.console.verification);
    let started = state.send_if_modified(|s| {
        if matches!(s, Verification::Running) {
            return false;
        }
        *s = Verification::Running;
        true
    });
    if started {
        let store = Arc::clone(&svc.store);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let outcome = verify(store.as_ref()).await;
            state.send_replace(Verification::Done(outcome));
        });
    }
    let mut watch = state.subscribe();
    let done = tokio::time::timeout(VERIFY_WAIT, watch.wait_for(|s| !matches!(s, Verification::Running))).await;
    let outcome = match done {
        Ok(Ok(state)) => match &*state {
            Verification::Done(outcome) => outcome.clone(),
            Verification::Idle | Verification::Running => Err("the verification ended without an answer".into()),
        },
        Ok(Err(_)) => Err("the verification ended without an answer".into()),
        Err(_) => return json_response(StatusCode::OK, &json!({"state": "running"})),
    };
    match outcome {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => internal(&ServiceError::Api(ApiError::with_message(Exception::KmsInternal, e))),
    }
}

/// One verification of the store's audit chain, against the digest key stored with it.
async fn verify(store: &dyn kms_store::Store) -> Result<Value, String> {
    let public_key =
        store.setting("audit_public_key").await.map_err(|e| e.to_string())?.and_then(|k| hex::decode(k).ok());
    match kms_store::audit::verify_store(store, public_key.as_deref()).await {
        Ok(report) => {
            Ok(json!({"state": "done", "intact": true, "records": report.records, "digests": report.digests}))
        }
        Err(Ok(broken)) => Ok(json!({"state": "done", "intact": false, "problem": broken.to_string()})),
        Err(Err(e)) => Err(e.to_string()),
    }
}

/// The body of a console POST: JSON only (a cross-site form cannot send that content type
/// without the browser asking first), within the listener's body limits.
async fn read_json(
    front: &Front,
    parts: &http::request::Parts,
    body: Incoming,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let media = header_value(parts, header::CONTENT_TYPE).unwrap_or_default();
    if !media.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationException",
            "Console calls are application/json.",
        ));
    }
    match crate::body::read(body, front.max_body_bytes, front.body_read_timeout, &front.bodies).await {
        Ok((bytes, _held)) => Ok(bytes),
        Err(e) => {
            let api = e.to_api();
            let status = StatusCode::from_u16(api.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Err(error(status, api.exception.name(), api.message.as_deref().unwrap_or("The body was refused.")))
        }
    }
}

fn session_cookie(id: &[u8; 32], transport: Transport) -> String {
    let secure = if transport == Transport::Tls { "; Secure" } else { "" };
    format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/console{secure}", hex::encode(id))
}

fn expired_cookie(transport: Transport) -> String {
    let secure = if transport == Transport::Tls { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0{secure}")
}

fn set_cookie(resp: &mut Response<Full<Bytes>>, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
}

fn text(status: StatusCode, content_type: &'static str, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An error as the AWS JSON protocol writes one, so the page reads every error one way.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"__type": kind, "message": message}))
}

fn internal(e: &ServiceError) -> Response<Full<Bytes>> {
    tracing::error!(error = %e, "console: internal error");
    error(StatusCode::INTERNAL_SERVER_ERROR, "KMSInternalException", "The server failed; see its log.")
}

/// The headers every console response carries.
fn secure(mut resp: Response<Full<Bytes>>, api: bool) -> Response<Full<Bytes>> {
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(if api { "no-store" } else { "no-cache" }));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_same_site_strict_and_secure_over_tls() {
        let id = [0x11; 32];
        let plain = session_cookie(&id, Transport::Plain);
        assert_eq!(plain, format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/console", "11".repeat(32)));
        let tls = session_cookie(&id, Transport::Tls);
        assert!(tls.ends_with("; Secure"), "{tls}");
        assert!(expired_cookie(Transport::Plain).contains("Max-Age=0"));
    }

    #[test]
    fn the_session_id_is_read_from_any_cookie_header() {
        let req = Request::builder()
            .header(header::COOKIE, "a=b")
            .header(header::COOKIE, format!("x=1; {COOKIE}={}; y=2", "22".repeat(32)))
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        assert_eq!(session_id(&parts), Some([0x22; 32]));
        let short = Request::builder().header(header::COOKIE, format!("{COOKIE}=2222")).body(()).unwrap();
        assert_eq!(session_id(&short.into_parts().0), None);
        let other =
            Request::builder().header(header::COOKIE, format!("{COOKIE}x={}", "22".repeat(32))).body(()).unwrap();
        assert_eq!(session_id(&other.into_parts().0), None);
    }

    #[test]
    fn iam_calls_become_iam_forms() {
        let params = json!({"Marker": "a b&c", "MaxItems": 10, "Action": "DeleteUser"});
        let form = iam_form("ListUsers", params.as_object().unwrap()).unwrap();
        assert_eq!(form, "Action=ListUsers&Version=2010-05-08&Marker=a%20b%26c&MaxItems=10");
        let nested = json!({"Tags": [1]});
        assert!(iam_form("TagUser", nested.as_object().unwrap()).is_err());
    }

    #[test]
    fn every_asset_the_page_loads_is_served() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.name);
        }
        for name in INDEX.split("/console/assets/").skip(1).filter_map(|s| s.split('"').next()) {
            assert!(ASSETS.iter().any(|a| a.name == name), "index.html loads {name}, which is not served");
        }
        // No inline script: every script tag has a src.
        assert!(!INDEX.contains("<script>"));
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for import in a.body.lines().filter_map(|l| l.trim().strip_prefix("import ")) {
                let Some(file) = import.split("'./").nth(1).and_then(|s| s.split('\'').next()) else { continue };
                assert!(ASSETS.iter().any(|b| b.name == file), "{} imports {file}, which is not served", a.name);
            }
        }
    }
}
