//! The HTTP listener: AWS JSON 1.1 on `POST /`, health on `GET /healthz` and `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use kms_api::{ApiError, CONTENT_TYPE, Exception, Operation};
use kms_core::Rng;
use kms_core::ids::AccountId;
use kms_crypto::SystemRng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{error, warn};

use crate::admin::ADMIN_TARGET_PREFIX;
use crate::audit::AuditDraft;
use crate::auth::Endpoint;
pub use crate::bootstrap::{AdminCredentials, StartError};
use crate::config::{ConnectionLimits, ServerConfig};
use crate::error::ServiceError;
use crate::service::{RequestContext, Service, Transport};

/// Largest request body accepted by default (a key policy of 128 KiB, JSON-escaped, fits with
/// room to spare; AWS documents no payload limit of its own for KMS).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

// Header names parsed once: a lookup or insert by `&str` parses the name every time.
/// `X-Amz-Target`: the operation.
pub(crate) static X_AMZ_TARGET: header::HeaderName = header::HeaderName::from_static("x-amz-target");
/// A service principal acting for a user presents the user's forward access token here.
pub(crate) static FORWARD_ACCESS_TOKEN: header::HeaderName =
    header::HeaderName::from_static(crate::forward_access::TOKEN_HEADER);
/// The refused way of naming a principal to act for (see [`crate::forward_access`]).
pub(crate) static VIA_PRINCIPAL: header::HeaderName =
    header::HeaderName::from_static(crate::forward_access::LEGACY_VIA_HEADER);
/// A service principal acting for a resource names it here (`aws:SourceArn`)…
pub(crate) static SOURCE_ARN: header::HeaderName = header::HeaderName::from_static("x-ferrokms-source-arn");
/// …and its account (`aws:SourceAccount`).
pub(crate) static SOURCE_ACCOUNT: header::HeaderName = header::HeaderName::from_static("x-ferrokms-source-account");
static REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-amzn-requestid");

/// A server that is accepting connections.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub local_addr: SocketAddr,
    /// The address of the separate `/metrics` listener, when one was asked for.
    pub metrics_addr: Option<SocketAddr>,
    /// The account of the admin principal.
    pub account: AccountId,
    /// The store, described for the operator.
    pub store_description: String,
    /// The root key provider, described for the operator.
    pub root_key_description: String,
    /// Credentials created by this (first) start; `None` on later starts.
    pub new_admin: Option<AdminCredentials>,
    /// The service, for in-process inspection.
    pub service: Arc<Service>,
    /// Whether it serves HTTPS or plain HTTP.
    pub transport: Transport,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and returns when all connections closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            error!("server task ended abnormally: {e}");
        }
    }

    /// Waits until the server stops (it stops only through [`RunningServer::shutdown`]).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Prepares the data directory and starts serving.
///
/// # Errors
/// [`StartError`] when the data directory, root key, store or listen address is unusable.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    if config.insecure_dev_credentials && !config.listen.ip().is_loopback() {
        return Err(StartError::InsecureOnNetwork(config.listen));
    }
    if config.tls.is_none() && !config.insecure_http && !config.listen.ip().is_loopback() {
        return Err(StartError::PlainHttpOnNetwork(config.listen));
    }
    // A bad certificate or key stops the start before anything is created.
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?.map(TlsAcceptor::from);
    let rng: Arc<dyn Rng> = Arc::new(SystemRng);
    let prepared = crate::bootstrap::prepare(&config, rng.as_ref()).await?;
    let mut service = Service::new(
        Arc::clone(&prepared.store),
        Arc::clone(&prepared.root),
        Arc::clone(&config.clock),
        rng,
        config.key_cache_capacity,
        prepared.account.clone(),
        config.insecure_dev_credentials,
    );
    service.quotas = crate::quota::Quotas::new(config.request_quotas.clone(), config.resource_quotas.clone());
    service.set_cache_ttl_millis(config.key_cache_ttl_millis);
    service.set_audit_retention_days(config.audit_retention_days);
    let service = Arc::new(service);
    // Listening before the first request is served: a change another node commits from now on
    // reaches this node's caches.
    let invalidations = crate::invalidation::follow(&service).await?;
    let scheduler =
        crate::scheduler::spawn(&service, std::time::Duration::from_millis(config.scheduler_interval_millis));
    let listener = bind(config.listen).map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => {
            let listener = bind(addr).map_err(|source| StartError::Listen { addr, source })?;
            let bound = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?;
            Some((listener, bound))
        }
        None => None,
    };
    let (shutdown, signal) = watch::channel(false);
    let lock = prepared.lock;
    *service.sink_names.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        config.event_sinks.iter().map(crate::events::Sink::name).collect();
    let sinks: Vec<_> = config
        .event_sinks
        .iter()
        .map(|sink| {
            crate::events::spawn(
                Arc::clone(&prepared.store),
                sink.clone(),
                std::time::Duration::from_millis(config.event_poll_millis),
            )
        })
        .collect();
    let service_for_serve = Arc::clone(&service);
    let transport = if tls.is_some() { Transport::Tls } else { Transport::Plain };
    let limits = config.connections.clone();
    let front = Arc::new(Front::new(&config));
    let metrics_addr = metrics_listener.as_ref().map(|(_, addr)| *addr);
    let task = tokio::spawn(async move {
        let main = Listener { listener, tls, limits: limits.clone(), role: Role::Main };
        let main = serve(main, Arc::clone(&service_for_serve), Arc::clone(&front), signal.clone());
        match metrics_listener {
            Some((listener, _)) => {
                let metrics = Listener { listener, tls: None, limits, role: Role::Metrics };
                let metrics = serve(metrics, Arc::clone(&service_for_serve), front, signal);
                tokio::join!(main, metrics);
            }
            None => main.await,
        }
        // Every answered request's audit event is durable before shutdown completes.
        service_for_serve.close_audit().await;
        // The data directory lock is released only after the last request finished.
        drop(lock);
        scheduler.abort();
        if let Some(invalidations) = invalidations {
            invalidations.abort();
        }
        for sink in sinks {
            sink.abort();
        }
    });
    Ok(RunningServer {
        local_addr,
        metrics_addr,
        account: prepared.account,
        store_description: prepared.store.describe(),
        root_key_description: prepared.root.describe(),
        new_admin: prepared.new_admin,
        service,
        transport,
        shutdown,
        task,
    })
}

/// The listening socket and what every connection on it gets.
struct Listener {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    role: Role,
}

/// What a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The KMS API, health, and `/metrics` unless it has its own listener.
    Main,
    /// `/metrics` only.
    Metrics,
}

/// What a request handler knows about its connection.
#[derive(Clone, Copy)]
struct Connection {
    peer: SocketAddr,
    transport: Transport,
    role: Role,
}

/// State the listeners share, kept outside the service: the limits on what unauthenticated
/// clients can make the server hold or record, and who may read `/metrics`.
struct Front {
    /// Largest body, and how long it may take to arrive.
    max_body_bytes: usize,
    body_read_timeout: Duration,
    /// Bytes held by bodies still arriving or not yet answered.
    bodies: crate::body::BodyBudget,
    /// Failed-authentication requests per source.
    failed_auth: crate::unauthenticated::FailedAuthLimiter,
    /// Whether the main listener serves `/metrics` (no separate metrics listener).
    metrics_on_main: bool,
    /// The bearer token `/metrics` asks for, if any.
    metrics_token: Option<String>,
    /// The time base of the failed-authentication limit.
    epoch: tokio::time::Instant,
}

impl Front {
    fn new(config: &ServerConfig) -> Self {
        let limits = &config.connections;
        Self {
            max_body_bytes: limits.max_body_bytes,
            body_read_timeout: Duration::from_millis(limits.body_read_timeout_millis.max(1)),
            bodies: crate::body::BodyBudget::new(limits.body_budget_bytes.max(limits.max_body_bytes)),
            failed_auth: crate::unauthenticated::FailedAuthLimiter::new(
                limits.failed_auth_burst,
                limits.failed_auth_per_second,
            ),
            metrics_on_main: config.metrics_listen.is_none(),
            metrics_token: config.metrics_token.clone().filter(|t| !t.is_empty()),
            epoch: tokio::time::Instant::now(),
        }
    }

    /// The listeners' own metrics, appended to the service's.
    fn metrics_text(&self) -> String {
        format!(
            "# HELP ferrokms_body_bytes_held Bytes held by request bodies being read or answered.\n\
             # TYPE ferrokms_body_bytes_held gauge\n\
             ferrokms_body_bytes_held {}\n\
             # HELP ferrokms_body_budget_bytes The most bytes request bodies may hold at once.\n\
             # TYPE ferrokms_body_budget_bytes gauge\n\
             ferrokms_body_budget_bytes {}\n\
             # HELP ferrokms_unauthenticated_throttled_total Requests failing authentication refused (and not audited) past their source's limit.\n\
             # TYPE ferrokms_unauthenticated_throttled_total counter\n\
             ferrokms_unauthenticated_throttled_total {}\n",
            self.bodies.held(),
            self.bodies.capacity(),
            self.failed_auth.refused()
        )
    }

    /// Whether a `/metrics` request may read the metrics: any, without a token; with one,
    /// those presenting it as a bearer token (compared in constant time).
    fn metrics_allowed(&self, parts: &http::request::Parts) -> bool {
        let Some(token) = &self.metrics_token else { return true };
        let presented = header_value(parts, header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
        presented.is_some_and(|p| bool::from(subtle::ConstantTimeEq::ct_eq(p.trim().as_bytes(), token.as_bytes())))
    }
}

/// Connections the kernel completes and queues before the server accepts them (capped by
/// `net.core.somaxconn`, 4096 by default since Linux 5.4).
///
/// Tokio's `TcpListener::bind` asks for 1,024. When more clients than that connect at once (a
/// fleet of SDK clients starting together, a load test opening 1,024 connections while the
/// server is busy), the kernel drops the handshakes past the queue, and those clients wait for
/// their TCP retransmission, a whole second, before their first request is even sent.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as the standard
/// library's bind sets on Unix, so that a restart does not wait for old connections).
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn serve(listener: Listener, service: Arc<Service>, front: Arc<Front>, mut signal: watch::Receiver<bool>) {
    let Listener { listener, tls, limits, role } = listener;
    let graceful = GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Slow loris: a client that does not finish its request headers in time is disconnected
    // (each connection gets its own timer below).
    builder.http1().header_read_timeout(Duration::from_millis(limits.header_read_timeout_millis.max(1)));
    builder.http2().timer(TokioTimer::new());
    let idle = Duration::from_millis(limits.idle_timeout_millis.max(1));
    let handshake = Duration::from_millis(limits.header_read_timeout_millis.max(1));
    // One permit per connection being served: past the cap, connections wait in the listen
    // backlog (not accepted, so not read) until a served one closes.
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = signal.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = signal.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = IdleTimeout::new(stream, idle);
        let svc = Arc::clone(&service);
        let front = Arc::clone(&front);
        let mut builder = builder.clone();
        builder.http1().timer(crate::header_timer::ConnectionTimer::default());
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let transport = if tls.is_some() { Transport::Tls } else { Transport::Plain };
            let connection = Connection { peer, transport, role };
            let handler = service_fn(move |req| {
                let svc = Arc::clone(&svc);
                let front = Arc::clone(&front);
                async move { Ok::<_, Infallible>(route(&svc, &front, req, connection).await) }
            });
            let result = match tls {
                Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(builder.serve_connection(TokioIo::new(stream), handler)).await,
                    Ok(Err(e)) => {
                        tracing::debug!("TLS handshake with {peer} failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake with {peer} timed out");
                        return;
                    }
                },
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), handler)).await,
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    // In-flight requests finish (bounded); idle keep-alive connections close at once.
    let grace = Duration::from_millis(limits.shutdown_grace_millis);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!("shutdown: connections still open after {grace:?}; closing without waiting for them");
    }
}

/// A connection that is closed when no byte moves in either direction for `idle` (a client that
/// holds a connection open without using it, or stops reading its answer).
///
/// Progress only notes the time; the timer is moved forward lazily, when it fires before the
/// connection has been idle long enough. Resetting it on every read and write instead took the
/// runtime's timer lock twice per request.
struct IdleTimeout {
    inner: TcpStream,
    idle: Duration,
    /// When a byte last moved (or the connection was accepted).
    last_progress: tokio::time::Instant,
    /// Fires no later than `last_progress + idle`, possibly earlier (then it is re-armed).
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, idle: Duration) -> Self {
        Self { inner, idle, last_progress: tokio::time::Instant::now(), deadline: Box::pin(tokio::time::sleep(idle)) }
    }

    fn progressed(&mut self) {
        self.last_progress = tokio::time::Instant::now();
    }

    /// Whether the connection has been idle for `idle`; otherwise the timer is armed to wake
    /// `cx` when it might be.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.deadline.as_mut().poll(cx).is_ready() {
            // An idle time too large to add never expires.
            let Some(due) = self.last_progress.checked_add(self.idle) else { return false };
            if due <= tokio::time::Instant::now() {
                return true;
            }
            // Bytes moved since the timer was set: wait until `idle` after the last of them.
            self.deadline.as_mut().reset(due);
        }
        false
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle for too long")
}

impl AsyncRead for IdleTimeout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl IdleTimeout {
    /// A write that moved bytes is progress; one still pending past the deadline is an error.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match poll {
            Poll::Ready(result) => {
                if result.as_ref().is_ok_and(|n| *n > 0) {
                    self.progressed();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        self.after_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    // A response may carry a plaintext: its buffer is wiped once hyper has sent and dropped it.
    let mut resp = Response::new(Full::new(Bytes::from_owner(kms_api::WipeOnDrop(body))));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = header::HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID.clone(), v);
    }
    resp
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    response(status, request_id, e.body())
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp
}

async fn route(svc: &Service, front: &Front, req: Request<Incoming>, connection: Connection) -> Response<Full<Bytes>> {
    let metrics_here = match connection.role {
        Role::Main => front.metrics_on_main,
        Role::Metrics => true,
    };
    match (req.method(), req.uri().path(), connection.role) {
        (&Method::GET, "/metrics", _) if metrics_here => metrics(svc, front, req).await,
        (_, _, Role::Metrics) => plain(StatusCode::NOT_FOUND, "this listener serves GET /metrics only\n"),
        (&Method::POST, "/", Role::Main) => kms(svc, front, req, connection).await,
        (&Method::GET, "/healthz", Role::Main) => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz", Role::Main) => match svc.store.setting("account_id").await {
            Ok(Some(_)) => plain(StatusCode::OK, "ready\n"),
            _ => plain(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
        },
        _ => {
            let e = ApiError::with_message(
                Exception::UnknownOperation,
                "ferrokms serves the AWS KMS API with POST / (and GET /healthz, /readyz)",
            );
            let mut resp = error_response(&e, "-");
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    }
}

/// `GET /metrics`: the Prometheus text, to those the token (if any) admits.
async fn metrics(svc: &Service, front: &Front, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, _) = req.into_parts();
    if !front.metrics_allowed(&parts) {
        let mut resp = plain(StatusCode::UNAUTHORIZED, "/metrics needs Authorization: Bearer <token>\n");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return resp;
    }
    let mut text = svc.metrics_text().await;
    text.push_str(&front.metrics_text());
    let mut resp = Response::new(Full::new(Bytes::from(text)));
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

fn sts_status(e: &ApiError) -> StatusCode {
    match e.exception {
        Exception::UnrecognizedClient
        | Exception::InvalidSignature
        | Exception::IncompleteSignature
        | Exception::MissingAuthenticationToken
        | Exception::AccessDenied => StatusCode::FORBIDDEN,
        other => StatusCode::from_u16(other.status()).unwrap_or(StatusCode::BAD_REQUEST),
    }
}

fn header_value(parts: &http::request::Parts, name: impl header::AsHeaderName) -> Option<&str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the audit event needs to know about a request once it is answered.
#[derive(Default)]
struct Seen {
    /// The CloudTrail `eventID`, drawn with the request id.
    event_id: String,
    ctx: Option<RequestContext>,
    event_name: String,
    event_source: &'static str,
    read_only: bool,
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

async fn kms(svc: &Service, front: &Front, req: Request<Incoming>, connection: Connection) -> Response<Full<Bytes>> {
    let Connection { peer, transport, .. } = connection;
    #[allow(clippy::disallowed_methods)] // request latency for the log, not domain time
    let started = Instant::now();
    let (request_id, event_id) = request_and_event_ids(&svc.public_rng);
    let (parts, body) = req.into_parts();
    let target = header_value(&parts, &X_AMZ_TARGET).unwrap_or_default();
    // STS speaks the query protocol: form-encoded requests, XML answers.
    let query_protocol =
        header_value(&parts, header::CONTENT_TYPE).is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let mut seen = Seen {
        event_id,
        event_name: target.rsplit('.').next().unwrap_or_default().to_owned(),
        event_source: if target.starts_with(ADMIN_TARGET_PREFIX) { "ferrokms.admin" } else { "kms.amazonaws.com" },
        ..Seen::default()
    };
    // The budget this request's body holds, given back when the request is answered.
    let mut held_body = None;
    // A request without credentials cannot authenticate: past its source's limit it is refused
    // before its body is read.
    let anonymous = parts.headers.get(header::AUTHORIZATION).is_none();
    let mut unauthenticated = Unauthenticated::Admitted;
    if anonymous {
        unauthenticated = Unauthenticated::check(front, peer);
    }
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
        let (endpoint, caller, region) = svc.auth.authenticate(&parts, &body).await?;
        // A service principal acting for a resource says which (aws:SourceArn/SourceAccount),
        // and acts for a user only with that user's forward access token (kms:ViaService).
        let service = match &caller.principal.kind {
            kms_core::policy::PrincipalKind::Service { name } => Some(name.clone()),
            _ => None,
        };
        let api = if endpoint == Endpoint::Sts || target.starts_with(ADMIN_TARGET_PREFIX) {
            crate::forward_access::Api::Management
        } else {
            crate::forward_access::Api::Kms
        };
        let (caller, via_service) = svc
            .acting_caller(
                caller,
                header_value(&parts, &FORWARD_ACCESS_TOKEN),
                header_value(&parts, &VIA_PRINCIPAL),
                api,
            )
            .await?;
        if endpoint == Endpoint::Sts {
            seen.event_source = "sts.amazonaws.com";
            seen.event_name = crate::sts::action_of(&body);
        }
        // Known before the handler runs, so that a control-plane change can commit its own event.
        let draft = AuditDraft::new(
            seen.event_name.clone(),
            seen.event_source,
            header_value(&parts, header::USER_AGENT).unwrap_or_default().to_owned(),
            request_parameters(&body, query_protocol),
        );
        let ctx = RequestContext {
            caller,
            region,
            request_id: request_id.clone(),
            source_ip: peer.ip(),
            transport,
            source_arn: service.as_ref().and_then(|_| header_value(&parts, &SOURCE_ARN)).map(str::to_owned),
            source_account: service.as_ref().and_then(|_| header_value(&parts, &SOURCE_ACCOUNT)).map(str::to_owned),
            via_service,
            key_arn: std::sync::OnceLock::new(),
            audit: Some(Arc::new(draft)),
        };
        // Kept for the audit event after the response; the handler borrows it (no clone).
        let ctx = &*seen.ctx.insert(ctx);
        match endpoint {
            Endpoint::Sts => svc.sts(ctx, &body).await,
            Endpoint::Kms => {
                json_content_type(header_value(&parts, header::CONTENT_TYPE))?;
                if let Some(admin_op) = target.strip_prefix(ADMIN_TARGET_PREFIX) {
                    return svc.admin(ctx, admin_op, &body).await;
                }
                let op = Operation::from_target(target).ok_or_else(|| {
                    ServiceError::Api(ApiError::with_message(
                        Exception::UnknownOperation,
                        format!(
                            "'{target}' is not an operation of the AWS KMS API (expected TrentService.<Operation>)"
                        ),
                    ))
                })?;
                // Request quotas apply to the AWS operations, per the caller's account and region.
                svc.quotas.admit(&ctx.caller.principal.account, &ctx.region, &seen.event_name, svc.clock.now())?;
                crate::ops::dispatch(svc, ctx, op, &body).await
            }
        }
    }
    .await;
    // Failed before a caller was known (body or authentication): audited only within the
    // source's limit; past it, answered ThrottlingException and counted, nothing more.
    if seen.ctx.is_none() && !anonymous {
        unauthenticated = Unauthenticated::check(front, peer);
    }
    if let (None, Err(refusal)) = (&seen.ctx, unauthenticated.refusal()) {
        result = Err(refusal);
    }
    let elapsed = started.elapsed().as_micros();
    seen.read_only = crate::audit::read_only(&seen.event_name);
    let (response, error) = match result {
        Ok(body) => {
            tracing::debug!(request_id, target, %peer, status = 200, micros = elapsed, "request");
            // Not needed when the event was committed with the change (it has the response).
            let committed = seen.ctx.as_ref().is_some_and(RequestContext::audit_committed);
            let json =
                if seen.read_only || query_protocol || committed { None } else { serde_json::from_slice(&body).ok() };
            let mut resp = response(StatusCode::OK, &request_id, body);
            if query_protocol {
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
            let api = e.to_api(&request_id);
            if e.is_internal() {
                error!(request_id, target, %peer, error = %e, "internal error");
            }
            tracing::debug!(request_id, target, %peer, status = api.status(), error = api.exception.name(), micros = elapsed, "request");
            let mut resp = if query_protocol {
                let mut resp = response(sts_status(&api), &request_id, crate::sts::error_body(&api, &request_id));
                resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/xml"));
                resp
            } else {
                error_response(&api, &request_id)
            };
            // The rest of an unread body is still on its way: the connection cannot carry another
            // request, and reading the rest would undo the limit.
            if body_refused || unauthenticated == Unauthenticated::Refused {
                resp.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            }
            (resp, Err(api))
        }
    };
    let outcome = match &error {
        Ok(_) => "Success",
        Err(api) => api.exception.name(),
    };
    let name = if seen.event_name.is_empty() { "Unknown" } else { seen.event_name.as_str() };
    #[allow(clippy::cast_precision_loss)] // microseconds fit an f64 exactly for centuries
    svc.metrics.observe(name, outcome, elapsed as f64 / 1e6);
    if unauthenticated == Unauthenticated::Admitted {
        audit(svc, &parts, &seen, &request_id, peer, error).await;
    }
    drop(held_body);
    response
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
fn request_parameters(body: &[u8], query_protocol: bool) -> Option<serde_json::Value> {
    if query_protocol { Some(crate::sts::form_as_json(body)) } else { serde_json::from_slice(body).ok() }
}

/// Records the request in the audit trail (off the request path: the writer batches), unless
/// its event was already committed with the change it made.
async fn audit(
    svc: &Service,
    parts: &http::request::Parts,
    seen: &Seen,
    request_id: &str,
    peer: SocketAddr,
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
        key_arn: ctx.and_then(|c| c.key_arn.get().map(String::as_str)),
        read_only: seen.read_only,
    });
    svc.audit.record(event).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
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

    /// More clients than tokio's default backlog (1,024) connect at once while nobody accepts:
    /// every handshake completes at once, none waits a second for a retransmission.
    #[tokio::test]
    async fn a_burst_of_connections_fits_the_listen_queue() {
        const CLIENTS: usize = 1_100;
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if somaxconn <= CLIENTS {
            eprintln!("skipped: net.core.somaxconn is {somaxconn}, not above {CLIENTS}");
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connecting = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            connecting.spawn(tokio::time::timeout(Duration::from_millis(800), TcpStream::connect(addr)));
        }
        let (mut connected, mut late) = (Vec::new(), 0);
        while let Some(outcome) = connecting.join_next().await {
            match outcome.unwrap() {
                Ok(Ok(stream)) => connected.push(stream),
                Ok(Err(e)) if e.raw_os_error() == Some(24) => {
                    eprintln!("skipped: too few file descriptors for {CLIENTS} connections ({e})");
                    return;
                }
                Ok(Err(e)) => panic!("connect failed: {e}"),
                Err(_) => late += 1,
            }
        }
        assert_eq!(late, 0, "{late} of {CLIENTS} handshakes waited for a retransmission");
        drop(listener);
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
}
