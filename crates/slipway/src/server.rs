//! The HTTP server under the router, with the limits `axum::serve` lacks: a client gets
//! `header_read_timeout` to send a request's head once it has begun one (and to finish a
//! TLS handshake), `idle_timeout` of silence between requests, `body_timeout` of silence
//! while a handler waits for its request body (a total would cut off slow large uploads;
//! silence is what a slowloris client shows) or while a response waits for the client to
//! take its bytes, and at most `max_connections` connections are open at once (more are
//! answered 503 and closed). Plain connections speak HTTP/1.1; TLS connections (`tls`)
//! HTTP/2 or HTTP/1.1, as ALPN chose.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower::Service;
use tower_http::timeout::TimeoutBody;

/// The connection limits; `HttpConfig::limits` builds them from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// HTTP/2 requests one connection may have in flight at once: each holds a handler, so
/// the bound keeps one connection from taking what `max_connections` rations.
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

/// In a request's extensions when it came over TLS: `client_addr` then tells the rest of
/// the router the scheme is https (token realms, secure cookies, links).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// Serves `router` on `listener`, over TLS when `tls` is given, until `shutdown` completes,
/// then stops accepting and waits for the requests in flight; connections without one
/// (idle, or partway through a head) are closed at once.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, router: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let stopping = CancellationToken::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // `Guarded` below keeps the head's and the idle deadlines. Hyper's own head timeout
    // starts when a connection turns idle, which would make the two limits one; set to
    // their sum it is only a backstop, and it makes hyper read again as soon as a
    // connection turns idle, which starts the idle deadline.
    http1.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout + limits.idle_timeout);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2.timer(TokioTimer::new()).max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    let http = Arc::new(Http { http1, http2, router, limits, stopping: stopping.clone() });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream);
            continue;
        };
        // Responses often leave in two writes (headers, then a streamed body); without
        // TCP_NODELAY, Nagle's algorithm holds the second until the client's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let connection = Connection { http: http.clone(), peer, watcher: graceful.watcher(), _permit: permit };
        match &tls {
            None => tokio::spawn(connection.serve(stream, Protocol::Http1)),
            Some(acceptor) => tokio::spawn(connection.handshake(acceptor.clone(), stream)),
        };
    }
    drop(listener);
    stopping.cancel();
    graceful.shutdown().await;
}

/// What every connection of one listener shares.
struct Http {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    router: Router,
    limits: Limits,
    stopping: CancellationToken,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http1OverTls,
    Http2OverTls,
}

/// One accepted connection, holding its place under `max_connections` until it ends.
struct Connection {
    http: Arc<Http>,
    peer: SocketAddr,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// The TLS handshake, within `header_read_timeout` (a client that connects and sends
    /// nothing holds a connection slot no longer than one that starts a head and stalls).
    async fn handshake(self, acceptor: TlsAcceptor, stream: TcpStream) {
        let limits = self.http.limits;
        let handshake = tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                    return;
                }
            },
            () = self.http.stopping.cancelled() => return,
        };
        let protocol = if stream.get_ref().1.alpn_protocol() == Some(b"h2") { Protocol::Http2OverTls } else { Protocol::Http1OverTls };
        self.serve(stream, protocol).await;
    }

    async fn serve<S>(self, stream: S, protocol: Protocol)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let http = &self.http;
        let shared = Arc::new(Shared::default());
        let io = TokioIo::new(Guarded::new(stream, shared.clone(), http.limits, &http.stopping));
        let service = hyper_util::service::TowerToHyperService::new(ConnectionService {
            router: http.router.clone(),
            peer: self.peer,
            shared,
            body_timeout: http.limits.body_timeout,
            over_tls: protocol != Protocol::Http1,
        });
        let ended = match protocol {
            Protocol::Http2OverTls => self.watcher.watch(http.http2.serve_connection(io, service)).await,
            Protocol::Http1 | Protocol::Http1OverTls => self.watcher.watch(http.http1.serve_connection(io, service)).await,
        };
        if let Err(e) = ended {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
        }
    }
}

/// Accepting fails when the process is out of file descriptors (or a client gave up in
/// the backlog): wait a moment rather than spin.
async fn accept_failed(e: io::Error) {
    let per_connection =
        matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused);
    if !per_connection {
        tracing::warn!(error = %e, "accepting a connection failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Over `max_connections`: a best-effort 503 (the socket's buffer takes it without
/// waiting) and the connection is closed, so a flood cannot hold the server's memory or
/// descriptors, and clients learn at once rather than hang in the backlog.
fn refuse(stream: TcpStream) {
    metrics::counter!("slipway_http_connections_refused_total").increment(1);
    let _ = stream.try_write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\nretry-after: 1\r\n\r\n");
}

/// What a connection's service and its socket share.
#[derive(Default)]
struct Shared {
    /// Requests whose response has not been sent in full.
    in_flight: AtomicUsize,
    /// Requests received so far: a head that began before the last one was received has
    /// ended.
    requests: AtomicU64,
    /// When the connection last turned idle (in milliseconds since `EPOCH`).
    idle_since_ms: AtomicU64,
    /// A read left waiting without a deadline while a request was in flight: woken when
    /// the connection turns idle, so that the idle deadline starts (hyper itself polls
    /// the socket again only once bytes arrive).
    read_waker: std::sync::Mutex<Option<std::task::Waker>>,
}

fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn instant_of(ms: u64) -> Instant {
    let now = Instant::now();
    now - Duration::from_millis(now_ms().saturating_sub(ms))
}

/// Counts a request in flight until its response body is dropped (sent, or given up).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn start(shared: Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        shared.requests.fetch_add(1, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since_ms.store(now_ms(), Ordering::SeqCst);
        let last = self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1;
        if let Some(waker) = last.then(|| self.0.read_waker.lock().unwrap_or_else(|e| e.into_inner()).take()).flatten() {
            waker.wake();
        }
    }
}

/// The router for one connection: the peer address for handlers (per-address limits),
/// whether it came over TLS, the body inactivity limit on requests, and the in-flight
/// count for `Guarded`.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    shared: Arc<Shared>,
    body_timeout: Duration,
    over_tls: bool,
}

impl Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let guard = InFlight::start(self.shared.clone());
        let timeout = self.body_timeout;
        let mut request: Request = request.map(|body| Body::new(TimeoutBody::new(timeout, body)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // HTTP/2 names the host in the `:authority` pseudo-header, which hyper puts in the
        // URI: everything reading Host (the token realm, pull commands, the origin check)
        // gets it there, as from HTTP/1.1.
        if !request.headers().contains_key(header::HOST)
            && let Some(host) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            request.headers_mut().insert(header::HOST, host);
        }
        if self.over_tls {
            request.extensions_mut().insert(OverTls);
        }
        // Router is always ready.
        let response = self.router.call(request);
        Box::pin(async move {
            let response = response.await?;
            // The guard lives as long as the response body: until hyper has written it
            // (or the connection ended).
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _in_flight = &guard;
                    frame
                }))
            }))
        })
    }
}

/// The socket (or the TLS stream over it), with the connection's deadlines while the
/// server waits for the client.
struct Guarded<S> {
    io: S,
    shared: Arc<Shared>,
    limits: Limits,
    /// When the head now being read began, with `Shared::requests` at the time.
    head: Option<(u64, Instant)>,
    last_read: Instant,
    read_deadline: Pin<Box<Sleep>>,
    /// Since when writes have made no progress (the client takes no bytes).
    write_stalled: Option<Instant>,
    write_deadline: Pin<Box<Sleep>>,
    /// The server is shutting down: hyper closes idle connections itself, but waits for a
    /// head partway read.
    stopping: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Guarded<S> {
    fn new(io: S, shared: Arc<Shared>, limits: Limits, stopping: &CancellationToken) -> Guarded<S> {
        let now = Instant::now();
        shared.idle_since_ms.store(now_ms(), Ordering::SeqCst);
        Guarded {
            io,
            shared,
            limits,
            head: None,
            last_read: now,
            read_deadline: Box::pin(tokio::time::sleep_until(now)),
            write_stalled: None,
            write_deadline: Box::pin(tokio::time::sleep_until(now)),
            stopping: Box::pin(stopping.clone().cancelled_owned()),
        }
    }

    /// While no request is in flight, the client owes the server bytes: the rest of a
    /// head it began (`header_read_timeout` in all), or its next request (`idle_timeout`
    /// of silence). While one is, the handler decides how long it waits for the body.
    fn read_deadline(&self) -> Option<Instant> {
        if self.shared.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let requests = self.shared.requests.load(Ordering::SeqCst);
        match self.head {
            Some((at_request, began)) if at_request == requests => Some(began + self.limits.header_read_timeout),
            _ => {
                let idle_since = instant_of(self.shared.idle_since_ms.load(Ordering::SeqCst));
                Some(self.last_read.max(idle_since) + self.limits.idle_timeout)
            }
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let now = Instant::now();
                    this.last_read = now;
                    if this.shared.in_flight.load(Ordering::SeqCst) == 0 {
                        let requests = this.shared.requests.load(Ordering::SeqCst);
                        if this.head.is_none_or(|(at_request, _)| at_request != requests) {
                            this.head = Some((requests, now));
                        }
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.read_deadline() else {
                    *this.shared.read_waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                    // The last request may have ended since the deadline was looked at.
                    if this.shared.in_flight.load(Ordering::SeqCst) == 0 {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                };
                if this.stopping.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the server is shutting down")));
                }
                if this.read_deadline.deadline() != deadline {
                    this.read_deadline.as_mut().reset(deadline);
                }
                match this.read_deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out("waiting for the client's request"))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S> Guarded<S> {
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let since = *self.write_stalled.get_or_insert_with(Instant::now);
        let deadline = since + self.limits.body_timeout;
        if self.write_deadline.deadline() != deadline {
            self.write_deadline.as_mut().reset(deadline);
        }
        match self.write_deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(timed_out("sending to the client")),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, data) {
            Poll::Pending => this.poll_write_stall(cx).map(Err),
            ready => {
                this.write_stalled = None;
                ready
            }
        }
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_write_stall(cx).map(Err),
            ready => {
                this.write_stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
