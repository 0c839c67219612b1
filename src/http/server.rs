//! Serving connections: HTTP/1.1 with upgrades (the WebSocket), a header-read
//! timeout, a keep-alive idle timeout, and graceful shutdown.
//!
//! This is hyper's HTTP/1 server driven directly, as `warp::serve` does
//! inside, because `warp::serve` has no way to set a timer or timeouts:
//! behind it a client that trickles its request headers, or opens a
//! connection and sends nothing, holds the connection forever. HTTP/1.1
//! only: load balancers speak it to us, and hyper-util's HTTP/2-sniffing
//! `auto` builder waits for the first bytes without any timeout.
//!
//! hyper arms its header-read timer whenever a connection starts waiting for
//! a request head: when it opens, and after each response when it is kept
//! alive; never during a request, and not after an upgrade. [`HeadTimer`]
//! gives that wait our deadlines: the connection's first request must be
//! complete within `header_read` of the connection opening; between
//! requests, a kept-alive connection may stay silent for `keepalive_idle`,
//! and once a byte of the next request arrives its head must be complete
//! within `header_read` of that byte. Past a deadline hyper closes the
//! connection (without a response).
//!
//! Two more bounds hold per connection: its request head is at most
//! `max_head_bytes` (hyper's read buffer; beyond, hyper answers 431 and
//! closes), and its client IP may hold at most so many connections at once
//! ([`ConnectionCap`]): beyond, a new connection is closed as soon as it is
//! accepted, before anything is read. The slot lives in the connection's
//! stream, so an upgraded connection (a WebSocket) keeps it until the socket
//! closes. (Body deadlines are `http::body`'s: only a handler reads a body.)

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::{Filter, Reply};

use crate::caps::{ConnectionCap, Slot};

/// How long a connection may take to send a request head, and stay idle.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub keepalive_idle: Duration,
}

/// What one connection, and one client IP, may hold.
pub struct Bounds {
    pub timeouts: Timeouts,
    /// Largest request head, in bytes (at least 8192, hyper's minimum).
    pub max_head_bytes: usize,
    /// Open connections per client IP.
    pub per_ip: ConnectionCap,
}

/// The peer of the connection a request came on (a request extension; warp's
/// own `addr::remote()` only works under `warp::serve`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Serves `routes` on `listener` until `shutdown` resolves; then stops
/// accepting, lets each connection finish the request it is serving (idle
/// ones close at once), and returns when all have closed. Upgraded
/// connections are no longer HTTP connections: their owners close them.
pub async fn serve<F, R>(
    listener: TcpListener,
    routes: F,
    bounds: Bounds,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter<Extract = (R,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let service = TowerToHyperService::new(warp::service(routes));
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    on_accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = bounds.per_ip.admit(peer.ip()) else {
            // Closed before a byte is read: the client sees the connection
            // reset or closed at once.
            tracing::debug!(%peer, "too many connections from this IP, closed");
            drop(stream);
            continue;
        };
        // Every write goes out at once: with Nagle's algorithm a small
        // write (an event's frame on a socket) made while an earlier one is
        // unacknowledged waits for that acknowledgement, which a client
        // that sends nothing back may delay by 40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let timeouts = bounds.timeouts;
        let read = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(CountingStream {
            inner: stream,
            read: read.clone(),
            _slot: slot,
        });
        let service = service.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            let span = super::access::span(request.method(), request.uri().path());
            tracing::Instrument::instrument(hyper::service::Service::call(&service, request), span)
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(HeadTimer::new(read, timeouts))
            // The wait for a head that has not begun: HeadTimer shortens it
            // to `header_read` when the head has begun, or is the first.
            .header_read_timeout(timeouts.keepalive_idle)
            .max_buf_size(bounds.max_head_bytes.max(MIN_HEAD_BYTES));
        let connection = builder.serve_connection(io, service).with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // A client that went away, sent garbage, or timed out.
                tracing::debug!(error = %e, %peer, "connection closed with an error");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

/// As hyper 0.14's server did: errors of one connection are not the
/// listener's; anything else (out of file descriptors) waits a second.
async fn on_accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// hyper panics on a smaller read buffer (config validation refuses one).
const MIN_HEAD_BYTES: usize = 8192;

/// A TCP stream that counts the bytes read from it, so [`HeadTimer`] can
/// tell when a request head has begun; it also holds the connection's slot
/// of its client IP's cap, given back when the stream is dropped.
struct CountingStream {
    inner: TcpStream,
    read: Arc<AtomicU64>,
    _slot: Option<Slot<IpAddr>>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One connection's timer for hyper, which the HTTP/1 server uses only for
/// its header-read timeout: each `sleep_until` is the start of a wait for a
/// request head (see the module doc).
struct HeadTimer {
    read: Arc<AtomicU64>,
    header_read: Duration,
    /// Whether the connection already waited for a head (so served a request).
    waited: AtomicBool,
}

impl HeadTimer {
    fn new(read: Arc<AtomicU64>, timeouts: Timeouts) -> HeadTimer {
        HeadTimer {
            read,
            header_read: timeouts.header_read,
            waited: AtomicBool::new(false),
        }
    }
}

impl Timer for HeadTimer {
    /// Unused by the HTTP/1 server; a plain sleep.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeadDeadline {
            read: self.read.clone(),
            read_at_start: 0,
            header_read: self.header_read,
            head_begun: true,
            sleep: Box::pin(tokio::time::sleep(duration)),
        })
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        let first = !self.waited.swap(true, Ordering::Relaxed);
        let deadline = if first {
            tokio::time::Instant::now() + self.header_read
        } else {
            tokio::time::Instant::from_std(deadline)
        };
        Box::pin(HeadDeadline {
            read: self.read.clone(),
            read_at_start: self.read.load(Ordering::Relaxed),
            header_read: self.header_read,
            head_begun: first,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        })
    }
}

/// The deadline of one wait for a request head. hyper polls it after every
/// read that left the head incomplete, so it sees the head's first bytes
/// arrive and moves the deadline to `header_read` from then.
struct HeadDeadline {
    read: Arc<AtomicU64>,
    /// Bytes read when the wait began: more means the head has begun.
    read_at_start: u64,
    header_read: Duration,
    head_begun: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadDeadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if !this.head_begun && this.read.load(Ordering::Relaxed) > this.read_at_start {
            this.head_begun = true;
            let deadline = tokio::time::Instant::now() + this.header_read;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl Sleep for HeadDeadline {}
