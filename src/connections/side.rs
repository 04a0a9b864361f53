//! The accept loop of the HTTP side listeners (playback, SRS callbacks,
//! metrics): at most a share of the descriptor budget of connections at
//! once, and a new connection beyond it closed at once, so a flood of idle
//! sockets on a side port cannot take the descriptors the gRPC listener
//! needs. Their connections are closed when no request head arrives in
//! the handshake time (hyper's header read timeout), and when the client
//! takes no byte of an answer for [`WRITE_STALL`]: a client that stops
//! reading would otherwise hold its slot, and the answer buffered for it,
//! for as long as it keeps the socket open.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::Limits;

/// Pause after `accept` fails for want of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest a connection may wait for its client to take any byte of an
/// answer; then it is closed.
pub const WRITE_STALL: Duration = Duration::from_secs(20);

/// What a side listener enforces.
#[derive(Debug, Clone, Copy)]
pub struct SideLimits {
    pub max_connections: usize,
    /// A connection that sends no whole request head in this time closes.
    pub header_timeout: Duration,
}

impl SideLimits {
    pub fn of(limits: &Limits) -> SideLimits {
        SideLimits {
            max_connections: limits.side_connections.max(1),
            header_timeout: limits.handshake_timeout,
        }
    }
}

/// A connection holding one of its listener's slots until it closes.
pub struct SideConnection {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    /// Running while a write waits for the client to take bytes.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl SideConnection {
    /// `poll` (a write or a flush) as it is, but when it has waited for
    /// [`WRITE_STALL`] with no progress, an error that closes the
    /// connection.
    fn unless_stalled<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let polled = poll(Pin::new(&mut self.stream), cx);
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        match stalled.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no byte of the answer in time",
            ))),
        }
    }
}

impl AsyncRead for SideConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SideConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.unless_stalled(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.unless_stalled(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.unless_stalled(cx, |stream, cx| stream.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `handle` on `listener` until `shutdown` resolves, within
/// `limits`.
pub async fn serve<F>(
    listener: std::net::TcpListener,
    limits: SideLimits,
    name: &'static str,
    handle: impl Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let make = make_service_fn(move |_| {
        let handle = handle.clone();
        async move {
            Ok::<_, Infallible>(service_fn(move |request| {
                let answer = handle(request);
                async move { Ok::<_, Infallible>(answer.await) }
            }))
        }
    });
    hyper::Server::builder(accept(listener, limits, name)?)
        .http1_header_read_timeout(limits.header_timeout)
        .serve(make)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io::Error::other)
}

/// `listener`'s connections, at most `limits.max_connections` at once, for
/// `hyper::Server::builder`.
fn accept(
    listener: std::net::TcpListener,
    limits: SideLimits,
    name: &'static str,
) -> io::Result<impl hyper::server::accept::Accept<Conn = SideConnection, Error = io::Error>> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = futures::stream::unfold(
        (listener, slots, 0u64),
        move |(listener, slots, mut refused)| async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(err) if super::is_connection_error(&err) => continue,
                    Err(err) => {
                        tracing::warn!(listener = name, error = %err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refused += 1;
                    // The first and then every thousandth: a flood is one
                    // line, not a line per socket.
                    if refused % 1000 == 1 {
                        tracing::warn!(
                            listener = name,
                            max_connections = limits.max_connections,
                            refused,
                            "connections refused: the listener's cap is full"
                        );
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let connection = SideConnection {
                    stream,
                    _slot: slot,
                    stalled: None,
                };
                return Some((Ok(connection), (listener, slots, refused)));
            }
        },
    );
    Ok(hyper::server::accept::from_stream(connections))
}
