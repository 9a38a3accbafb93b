//! The HTTP listener: AWS JSON 1.1 on `POST /`, health on `GET /healthz` and `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use kms_api::{ApiError, CONTENT_TYPE, Exception};
use kms_core::Rng;
use kms_core::ids::AccountId;
use kms_crypto::SystemRng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{error, warn};

pub use crate::bootstrap::{AdminCredentials, StartError};
use crate::config::{ConnectionLimits, ServerConfig};
use crate::service::{Service, Transport};

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
    let rotation = crate::root_rotation::follow(
        Arc::clone(&prepared.store),
        Arc::clone(&prepared.rotating),
        crate::root_rotation::Opener::new(&config),
        std::time::Duration::from_millis(500),
    );
    let trail = config.trail_delivery.clone().map(|delivery| {
        let home_region = config.default_region.to_string();
        let _ = service.trail.set(delivery.info(&home_region));
        crate::trail::spawn(
            Arc::clone(&prepared.store),
            Arc::clone(&prepared.root),
            Arc::clone(&service.clock),
            delivery,
            home_region,
        )
    });
    let service_for_serve = Arc::clone(&service);
    let transport = if tls.is_some() { Transport::Tls } else { Transport::Plain };
    let limits = config.connections.clone();
    let front = Arc::new(Front::new(&config));
    let metrics_addr = metrics_listener.as_ref().map(|(_, addr)| *addr);
    let console_sampler = crate::console::spawn_sampler(Arc::clone(&service), Arc::clone(&front));
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
        console_sampler.abort();
        if let Some(invalidations) = invalidations {
            invalidations.abort();
        }
        for sink in sinks {
            sink.abort();
        }
        if let Some(trail) = trail {
            trail.abort();
        }
        rotation.abort();
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
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    pub(crate) transport: Transport,
    role: Role,
}

/// State the listeners share, kept outside the service: the limits on what unauthenticated
/// clients can make the server hold or record, and who may read `/metrics`.
pub(crate) struct Front {
    /// Largest body, and how long it may take to arrive.
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
    /// Bytes held by bodies still arriving or not yet answered.
    pub(crate) bodies: crate::body::BodyBudget,
    /// Failed-authentication requests per source.
    pub(crate) failed_auth: crate::unauthenticated::FailedAuthLimiter,
    /// Whether the main listener serves `/metrics` (no separate metrics listener).
    metrics_on_main: bool,
    /// The bearer token `/metrics` asks for, if any.
    metrics_token: Option<String>,
    /// The time base of the failed-authentication limit.
    pub(crate) epoch: tokio::time::Instant,
    /// The web console's sessions and dashboard samples.
    pub(crate) console: crate::console::Console,
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
            console: crate::console::Console::new(config),
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

/// A response with the AWS JSON content type and the request id.
pub(crate) fn response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
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
        (&Method::POST, "/", Role::Main) => crate::pipeline::handle(svc, front, req, connection).await,
        (_, path, Role::Main) if path == "/console" || path.starts_with("/console/") => {
            crate::console::handle(svc, front, req, connection).await
        }
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

/// A header's value, if it is visible ASCII.
pub(crate) fn header_value(parts: &http::request::Parts, name: impl header::AsHeaderName) -> Option<&str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

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
}
