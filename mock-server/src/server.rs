//! `MockServer`: binding, the accept loop, per-connection tasks and graceful shutdown.
//!
//! Lifecycle: [`MockServer::start`] binds and spawns one accept task on the caller's tokio
//! runtime. Each accepted TCP connection gets its own task serving HTTP/1.1 (keep-alive) or
//! HTTP/2 cleartext (prior knowledge), chosen per connection by hyper-util's `auto` builder.
//!
//! Shutdown uses one `watch` channel owned by the handle: setting it to `true` stops the
//! accept loop, wakes hung requests (which then drop their connection), and starts hyper's
//! graceful shutdown of every open connection (idle keep-alive connections close at once,
//! busy ones after their current response). If connections are still busy after
//! [`SHUTDOWN_GRACE`], a second `watch` tells their tasks to drop them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, MockConfig};
use crate::handler::{ConnState, Shared};
use crate::router;
use crate::stats::StatsSnapshot;

/// How long [`MockServer::shutdown`] lets in-flight requests finish before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Listen backlog: large so a burst of 10,000 connects is not refused (the kernel caps it
/// at `net.core.somaxconn`).
const BACKLOG: u32 = 8192;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The latency timer thread could not be started.
    #[error("cannot start the latency timer thread: {0}")]
    Timer(std::io::Error),
    /// The configuration failed [`MockConfig::validate`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `bind` and `port`.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A running mock server. Dropping it signals shutdown without waiting; call
/// [`MockServer::shutdown`] to wait for in-flight requests to finish.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `config.bind:config.port` and starts serving on the current tokio runtime.
    /// Returns as soon as the socket listens, so requests may be sent right away.
    pub async fn start(config: MockConfig) -> Result<MockServer, MockError> {
        config.validate()?;
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = bind(addr).map_err(|source| MockError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MockError::Bind { addr, source })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, shutdown_rx.clone()).map_err(MockError::Timer)?);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        Ok(MockServer {
            addr,
            shared,
            shutdown_tx,
            task: Some(task),
        })
    }

    /// The bound address, with the real port when `port` was 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`; IPv6 is bracketed.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration the server runs with (with `port` as configured, maybe 0).
    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// The same numbers as `GET /stats`, without a round trip.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Same as `POST /stats/reset`: counters to zero; open connections and in-flight
    /// requests keep their value, the peak restarts from the current in-flight count.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// Stops accepting, lets in-flight requests finish (hung ones are dropped) and waits
    /// at most [`SHUTDOWN_GRACE`] for them.
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        if let Some(task) = self.task.take() {
            // The accept task bounds its own wait; a JoinError only means it panicked or
            // was cancelled with the runtime, and there is nothing left to clean up then.
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // Non-blocking: the accept task finishes the graceful shutdown in the background
        // for as long as the runtime lives.
        self.shutdown_tx.send_replace(true);
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Above hyper's default of 200 so one HTTP/2 connection can carry a large sweep.
        .max_concurrent_streams(4096);
    let graceful = GracefulShutdown::new();
    // Fires only if the graceful wait runs out; each connection task selects on it.
    let (abort_tx, abort_rx) = watch::channel(false);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    serve(&builder, &graceful, &shared, stream, abort_rx.clone());
                }
                Err(e) => {
                    // Out of file descriptors: back off instead of spinning; the pending
                    // connections stay in the backlog. Other errors (a peer that reset
                    // before accept) only concern that one connection.
                    if matches!(e.raw_os_error(), Some(23 | 24)) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            },
            () = signalled(&mut shutdown) => break,
        }
    }
    drop(listener);

    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        abort_tx.send_replace(true);
    }
}

fn serve(
    builder: &Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    shared: &Arc<Shared>,
    stream: TcpStream,
    mut abort: watch::Receiver<bool>,
) {
    // Token-sized writes must leave at once, not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    // The connection is counted in the stats by its first API request (see `ConnState`),
    // not here, so connections that only ask for /stats do not count.
    let conn_state = Arc::new(ConnState::default());
    let io = ConnIo {
        stream,
        state: Arc::clone(&conn_state),
    };
    let shared = Arc::clone(shared);
    let service =
        service_fn(move |req| router::handle(Arc::clone(&shared), Arc::clone(&conn_state), req));
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        tokio::select! {
            // Connection errors (client reset, hung request dropped) end only this
            // connection and are not the server's failure.
            _ = conn => {}
            () = signalled(&mut abort) => {}
        }
    });
}

/// The connection's socket, which closes with RST instead of FIN once a response was cut
/// with `reset_rate` (the connection's `reset` flag, set by the cut body).
struct ConnIo {
    stream: TcpStream,
    state: Arc<ConnState>,
}

impl ConnIo {
    fn resetting(&self) -> bool {
        self.state.reset.load(Ordering::Relaxed)
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.resetting() {
            // SO_LINGER 0: close() discards unsent data and sends RST. A zero linger never
            // blocks the thread (tokio's concern with SO_LINGER is non-zero values).
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.resetting() {
            // No FIN before the RST that the drop sends.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Resolves once the flag is `true` or its sender is gone; the watch guard is dropped
/// inside, so the future stays `Send`.
async fn signalled(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}
