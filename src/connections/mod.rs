//! The gRPC listener's connections. Each one holds a file descriptor, so
//! the service keeps their number below its descriptor limit, closes those
//! that never complete their handshake and those that stay idle, and backs
//! off when `accept` fails instead of retrying in a busy loop.
//!
//! - [`Incoming`]: the accept loop, a stream of connections for tonic's
//!   `serve_with_incoming_shutdown`. At the cap a new connection pushes out
//!   the oldest one still in its handshake, or is closed at once.
//! - [`Connection`]: a TCP stream that enforces the handshake deadline and
//!   the idle timeout. Its reads are pending while hyper waits for the peer,
//!   so a timer polled there closes the connection without a task of its own.
//! - [`TrackRequests`]: a tower layer that tells each connection when it has
//!   requests in flight, through the connection info tonic puts in every
//!   request's extensions.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

use crate::config::ConnectionsConfig;

mod requests;
pub mod side;

pub use requests::{Busy, TrackRequests, Tracked};

/// Descriptors left for everything that is not a gRPC connection: the
/// catalog's files, object-storage connections, the other listeners, logs.
const RESERVED_DESCRIPTORS: u64 = 128;
/// A side listener's cap is at most this part of the gRPC one.
const SIDE_SHARE: usize = 4;
/// Pause after `accept` fails for want of descriptors or memory: the
/// listener stays readable, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections pushed out at the cap whose descriptors are not closed yet;
/// with this many, accepting waits for them, so a flood cannot run the
/// process out of descriptors faster than they are released.
const MAX_CLOSING: usize = 64;
/// Length of the client's connection preface (`PRI * HTTP/2.0...`): the
/// least a peer sends before its connection counts as established.
const PREFACE_LEN: usize = 24;
/// A connection that read something this recently is not idle: the bytes
/// may be a request hyper has not handed to the service yet.
const READ_GRACE: Duration = Duration::from_secs(1);
/// Refusals and accept errors are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// What the listener enforces, from `[connections]` and the descriptor limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The soft RLIMIT_NOFILE in force.
    pub open_files: u64,
    /// Connections served at once (already below the descriptor limit).
    pub max_connections: usize,
    /// Connections each HTTP side listener serves at once: the side
    /// listeners and `max_connections` together stay below the
    /// descriptor limit.
    pub side_connections: usize,
    /// Time from accept to an established HTTP/2 connection (TLS included).
    pub handshake_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// TCP keepalive probes after this long without traffic; None: off.
    pub tcp_keepalive: Option<Duration>,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, so the service can hold
/// as many connections as the system lets it; the soft limit in force after.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Ok(limit.rlim_cur)
}

impl Limits {
    /// The limits `config` asks for, with `sides` HTTP side listeners
    /// beside the gRPC one, within the descriptor limit (raised to the
    /// hard limit first).
    pub fn apply(config: &ConnectionsConfig, sides: usize) -> Limits {
        let open_files = raise_open_files_limit().unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot read the open-file limit");
            u64::MAX
        });
        let (max_connections, side_connections) =
            split_connections(config.max_connections, open_files, sides);
        Limits {
            open_files,
            max_connections,
            side_connections,
            handshake_timeout: Duration::from_secs_f64(config.handshake_timeout_secs),
            idle_timeout: Duration::from_secs_f64(config.idle_timeout_secs),
            tcp_keepalive: ConnectionsConfig::optional(config.tcp_keepalive_secs),
        }
    }

    /// One line with every limit in force, and a warning when the
    /// descriptor limit lowered the configured cap.
    pub fn log(&self, config: &ConnectionsConfig) {
        tracing::info!(
            open_files = self.open_files,
            max_connections = self.max_connections,
            side_listener_connections = self.side_connections,
            handshake_timeout_secs = config.handshake_timeout_secs,
            idle_timeout_secs = config.idle_timeout_secs,
            keepalive_interval_secs = config.keepalive_interval_secs,
            keepalive_timeout_secs = config.keepalive_timeout_secs,
            tcp_keepalive_secs = config.tcp_keepalive_secs,
            max_header_list_bytes = config.max_header_list_bytes,
            "connection limits"
        );
        if self.max_connections < config.max_connections {
            tracing::warn!(
                configured = config.max_connections,
                max_connections = self.max_connections,
                open_files = self.open_files,
                "max_connections lowered to stay below the open-file limit; raise the limit \
                 (ulimit -n, systemd LimitNOFILE=) to serve more"
            );
        }
    }
}

/// The gRPC connection cap in force and each of `sides` side listeners'
/// cap: a side listener gets a quarter of the gRPC cap the descriptors
/// allow, the side listeners together at most half the descriptors, and
/// the gRPC listener the configured cap within what they leave, a
/// reserve below the descriptor limit.
pub fn split_connections(configured: usize, open_files: u64, sides: usize) -> (usize, usize) {
    let reserve = RESERVED_DESCRIPTORS.min(open_files / 2);
    let room = usize::try_from(open_files - reserve).unwrap_or(usize::MAX);
    let side = match sides {
        0 => 0,
        sides => (configured.min(room) / SIDE_SHARE)
            .min(room / 2 / sides)
            .max(1),
    };
    let grpc = configured.min(room.saturating_sub(sides * side)).max(1);
    (grpc, side)
}

/// What one connection shares with the accept loop (which may push it out)
/// and with the requests it carries (which keep it from being idle).
struct Shared {
    /// Its key in `Slots::unproven`.
    id: u64,
    /// Base of `idle_since`.
    epoch: Instant,
    /// Requests whose answer is not finished.
    in_flight: AtomicUsize,
    /// When `in_flight` last dropped to zero, in ms since `epoch`.
    idle_since: AtomicU64,
    /// Set once tonic has the connection, after TLS when there is TLS: from
    /// then on the bytes are HTTP/2.
    handed_over: AtomicBool,
    /// Set when the accept loop pushed the connection out.
    evicted: AtomicBool,
    /// Wakes the connection's reader so a push-out takes effect at once.
    reader: AtomicWaker,
}

impl Shared {
    fn mark_idle(&self) {
        let since = Instant::now().duration_since(self.epoch).as_millis() as u64;
        self.idle_since.store(since, Ordering::Relaxed);
    }

    fn idle_since(&self) -> Instant {
        self.epoch + Duration::from_millis(self.idle_since.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Slots {
    /// Connections counted against the cap.
    open: usize,
    /// Connections pushed out whose descriptor is not closed yet.
    closing: usize,
    /// Ids follow accept order, so the first unproven one is the oldest.
    next_id: u64,
    /// Connections not established yet, oldest first: those a new
    /// connection may push out at the cap.
    unproven: BTreeMap<u64, Arc<Shared>>,
}

/// Every connection of the listener, for the cap and for eviction.
struct Registry {
    limits: Limits,
    /// Taken once per accept, establishment and close: never contended for
    /// long.
    slots: Mutex<Slots>,
    /// The accept loop, waiting for pushed-out connections to close.
    accept_loop: AtomicWaker,
}

impl Registry {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Nothing panics while holding the lock; a poisoned one is still
        // consistent.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the cap is full and so many pushed-out connections are still
    /// closing that accepting more must wait: a burst of new connections
    /// otherwise outruns the tasks that close the old ones.
    fn saturated(&self) -> bool {
        let slots = self.slots();
        slots.open >= self.limits.max_connections && slots.closing >= MAX_CLOSING
    }

    /// Ready once a new connection can be admitted or refused.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.saturated() {
            return Poll::Ready(());
        }
        self.accept_loop.register(cx.waker());
        if self.saturated() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// A slot for a new connection, or None when it must be refused.
    fn admit(&self) -> Option<Arc<Shared>> {
        let mut slots = self.slots();
        if slots.open >= self.limits.max_connections {
            if slots.closing >= MAX_CLOSING {
                return None;
            }
            let (_, victim) = slots.unproven.pop_first()?;
            victim.evicted.store(true, Ordering::Relaxed);
            victim.reader.wake();
            slots.open -= 1;
            slots.closing += 1;
        }
        slots.open += 1;
        slots.next_id += 1;
        let shared = Arc::new(Shared {
            id: slots.next_id,
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            handed_over: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            reader: AtomicWaker::new(),
        });
        slots.unproven.insert(shared.id, shared.clone());
        Some(shared)
    }

    fn established(&self, shared: &Shared) {
        self.slots().unproven.remove(&shared.id);
    }

    fn release(&self, shared: &Shared) {
        let mut slots = self.slots();
        if shared.evicted.load(Ordering::Relaxed) {
            slots.closing -= 1;
            self.accept_loop.wake();
        } else {
            slots.open -= 1;
            slots.unproven.remove(&shared.id);
        }
    }
}

/// A WARN line at most every [`WARN_INTERVAL`], with what happened since.
#[derive(Default)]
struct Throttled {
    last: Option<std::time::Instant>,
    count: u64,
}

impl Throttled {
    /// Counts one event; the events to report when a line is due.
    fn note(&mut self) -> Option<u64> {
        self.count += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_INTERVAL)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// The accept loop as a stream of connections.
pub struct Incoming {
    listener: TcpListener,
    /// Shared with every connection, which releases its slot on drop.
    registry: Arc<Registry>,
    /// Running while accepting is paused after an error.
    backoff: Option<Pin<Box<Sleep>>>,
    /// Connections closed at the cap, for the WARN line.
    refusals: Throttled,
    /// Failed accepts, for the WARN line.
    failures: Throttled,
}

impl Incoming {
    pub fn new(listener: TcpListener, limits: Limits) -> Incoming {
        Incoming {
            listener,
            registry: Arc::new(Registry {
                limits,
                slots: Mutex::default(),
                accept_loop: AtomicWaker::new(),
            }),
            backoff: None,
            refusals: Throttled::default(),
            failures: Throttled::default(),
        }
    }

    fn accept_failed(&mut self, err: io::Error) {
        if let Some(count) = self.failures.note() {
            tracing::warn!(
                error = %err,
                failures = count,
                "accepting connections failed; retrying every {} ms",
                ACCEPT_BACKOFF.as_millis()
            );
        }
        self.backoff = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
    }

    fn refused(&mut self) {
        if let Some(count) = self.refusals.note() {
            tracing::warn!(
                refused = count,
                max_connections = self.registry.limits.max_connections,
                "connections refused: the cap is full of established connections"
            );
        }
    }

    fn configure(&self, stream: &TcpStream) {
        // Without TCP_NODELAY small replies wait for the peer's delayed ACK
        // (~40 ms a request).
        let _ = stream.set_nodelay(true);
        if let Some(idle) = self.registry.limits.tcp_keepalive {
            let keepalive = socket2::TcpKeepalive::new().with_time(idle);
            let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
        }
    }
}

/// Errors of one connection that went away before it was accepted; the
/// listener itself is fine.
pub(crate) fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

impl futures::Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(backoff) = &mut this.backoff {
                ready!(backoff.as_mut().poll(cx));
                this.backoff = None;
            }
            ready!(this.registry.poll_room(cx));
            let stream = match ready!(this.listener.poll_accept(cx)) {
                Ok((stream, _)) => stream,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    this.accept_failed(err);
                    continue;
                }
            };
            let Some(shared) = this.registry.admit() else {
                // Dropping it closes it: the client learns at once instead
                // of waiting in the backlog.
                this.refused();
                continue;
            };
            this.configure(&stream);
            let connection = Connection::new(stream, shared, this.registry.clone());
            return Poll::Ready(Some(Ok(connection)));
        }
    }
}

/// Where a connection is in its life.
enum Stage {
    /// Not established: the handshake deadline applies and the accept loop
    /// may push it out.
    Handshake {
        /// The server has written since tonic took the connection over.
        spoke: bool,
        /// Bytes read since tonic took the connection over.
        heard: usize,
        /// Some of them came after the server's first words.
        answered: bool,
    },
    /// Established: the idle timeout applies.
    Established,
}

/// One accepted TCP connection with its deadlines.
pub struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    /// Where the connection's slot goes back when it is dropped.
    registry: Arc<Registry>,
    stage: Stage,
    /// The next time the deadlines are looked at.
    deadline: Pin<Box<Sleep>>,
    /// See [`READ_GRACE`].
    last_read: Instant,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

fn pushed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "pushed out at the connection cap before its handshake was done",
    )
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Shared>, registry: Arc<Registry>) -> Connection {
        let now = Instant::now();
        let deadline = Box::pin(tokio::time::sleep_until(
            now + registry.limits.handshake_timeout,
        ));
        Connection {
            stream,
            shared,
            registry,
            stage: Stage::Handshake {
                spoke: false,
                heard: 0,
                answered: false,
            },
            deadline,
            last_read: now,
        }
    }

    fn wrote(&mut self) {
        if let Stage::Handshake { spoke, .. } = &mut self.stage {
            *spoke |= self.shared.handed_over.load(Ordering::Relaxed);
        }
    }

    /// Notes `bytes` read. A connection is established once the peer has
    /// sent a preface's worth after the hand-over, part of it in answer to
    /// the server's SETTINGS: over TLS the preface may already have been
    /// read with the last handshake record, but the acknowledgement of the
    /// server's SETTINGS that every HTTP/2 peer sends comes after.
    fn read(&mut self, bytes: usize) {
        self.last_read = Instant::now();
        let Stage::Handshake {
            spoke,
            heard,
            answered,
        } = &mut self.stage
        else {
            return;
        };
        if !self.shared.handed_over.load(Ordering::Relaxed) {
            return;
        }
        *heard += bytes;
        *answered |= *spoke;
        if *heard >= PREFACE_LEN && *answered {
            self.stage = Stage::Established;
            self.registry.established(&self.shared);
            self.shared.mark_idle();
            let idle_deadline = self.last_read + self.registry.limits.idle_timeout;
            self.deadline.as_mut().reset(idle_deadline);
        }
    }

    /// Ready with the error to end the connection with once a deadline has
    /// passed; pending (with the timer armed) until then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.deadline.as_mut().poll(cx));
            if let Stage::Handshake { .. } = self.stage {
                return Poll::Ready(timed_out(
                    "no HTTP/2 connection within the handshake timeout",
                ));
            }
            let idle_timeout = self.registry.limits.idle_timeout;
            let now = Instant::now();
            let due = if self.shared.in_flight.load(Ordering::Relaxed) > 0 {
                now + idle_timeout
            } else {
                (self.shared.idle_since() + idle_timeout).max(self.last_read + READ_GRACE)
            };
            if due <= now {
                return Poll::Ready(timed_out("idle timeout: no request in flight"));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.registry.release(&self.shared);
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.evicted.load(Ordering::Relaxed) {
            return Poll::Ready(Err(pushed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    this.read(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                this.shared.reader.register(cx.waker());
                if this.shared.evicted.load(Ordering::Relaxed) {
                    // Pushed out between the first look and the register.
                    return Poll::Ready(Err(pushed_out()));
                }
                this.poll_deadline(cx).map(Err)
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write(cx, buf))?;
        if written > 0 {
            this.wrote();
        }
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            this.wrote();
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What tonic puts in the extensions of every request of a connection: the
/// way for [`TrackRequests`] to reach it.
#[derive(Clone)]
pub struct ConnectionInfo {
    shared: Arc<Shared>,
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        // tonic asks once, as it starts serving the connection: after the
        // TLS handshake when there is TLS.
        self.shared.handed_over.store(true, Ordering::Relaxed);
        ConnectionInfo {
            shared: self.shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(split_connections(10_000, 1024, 0), (896, 0));
        assert_eq!(split_connections(500, 1024, 0), (500, 0));
        assert_eq!(split_connections(10_000, 1_048_576, 0), (10_000, 0));
        assert_eq!(split_connections(10_000, 100, 0), (50, 0));
        assert_eq!(split_connections(10_000, 0, 0), (1, 0));
        // Side listeners take their caps out of the room gRPC has.
        assert_eq!(split_connections(10_000, 1024, 1), (672, 224));
        assert_eq!(split_connections(10_000, 1024, 3), (449, 149));
        assert_eq!(split_connections(500, 1024, 3), (500, 125));
        assert_eq!(split_connections(10_000, 1_048_576, 3), (10_000, 2_500));
        for open_files in [0, 1, 2, 100, 1024, 4096, 1_048_576] {
            for sides in 0..=3 {
                let (grpc, side) = split_connections(10_000, open_files, sides);
                let room = open_files.saturating_sub(RESERVED_DESCRIPTORS.min(open_files / 2));
                assert!(grpc >= 1 && (sides == 0 || side >= 1));
                assert!(
                    open_files < 16 || (grpc + sides * side) as u64 <= room,
                    "{open_files} {sides}: {grpc} + {sides} x {side}"
                );
            }
        }
    }

    fn registry(max_connections: usize) -> Registry {
        Registry {
            limits: Limits {
                open_files: 1024,
                max_connections,
                side_connections: 1,
                handshake_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(300),
                tcp_keepalive: None,
            },
            slots: Mutex::default(),
            accept_loop: AtomicWaker::new(),
        }
    }

    #[test]
    fn at_the_cap_the_oldest_unestablished_connection_makes_room() {
        let registry = registry(2);
        let first = registry.admit().unwrap();
        let second = registry.admit().unwrap();
        registry.established(&second);
        let third = registry.admit().expect("the first one is pushed out");
        assert!(first.evicted.load(Ordering::Relaxed));
        assert!(!second.evicted.load(Ordering::Relaxed));
        registry.established(&third);
        assert!(registry.admit().is_none(), "no one left to push out");
        registry.release(&first);
        assert!(
            registry.admit().is_none(),
            "the cap counts live connections"
        );
        registry.release(&second);
        assert!(registry.admit().is_some());
    }

    #[test]
    fn pushed_out_connections_still_closing_are_bounded() {
        let registry = registry(1);
        let mut pushed_out = vec![registry.admit().unwrap()];
        for _ in 0..MAX_CLOSING {
            pushed_out.push(registry.admit().expect("room by pushing one out"));
        }
        assert!(registry.admit().is_none());
        registry.release(&pushed_out[0]);
        assert!(registry.admit().is_some());
    }
}
