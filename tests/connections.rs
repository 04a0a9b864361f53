//! What the gRPC listener does with connections that hold a descriptor
//! without doing any work: sockets that never speak, clients that go quiet
//! after their requests, more connections than the service takes, and a
//! request whose headers are far too large. The server runs with the common
//! limit of 1024 open files.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// The soft and hard RLIMIT_NOFILE the server runs with: the usual default
/// of a Linux login.
const SERVER_OPEN_FILES: u64 = 1024;

/// Raises this process's soft RLIMIT_NOFILE to its hard limit: the test
/// holds more sockets than the server may.
fn raise_own_open_files(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(
        limit.rlim_cur >= needed,
        "the test needs {needed} open files, the hard limit is {}",
        limit.rlim_cur
    );
}

/// CPU time (user + system) the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// Whether the server has closed `socket`: EOF or a reset. Never blocks.
fn closed_by_server(socket: &mut TcpStream) -> bool {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return true,
            // HTTP/2 frames the server sent (its SETTINGS): read on.
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// The local ports of this machine's established TCP connections to
/// `server`: the client ends, which survive only as long as the server
/// keeps the connections open.
fn client_ports(server: SocketAddr) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port =
        |address: &str| u16::from_str_radix(address.rsplit(':').next().unwrap(), 16).unwrap();
    let mut ports: Vec<u16> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let established = fields[3] == "01";
            (established && port(fields[2]) == server.port()).then(|| port(fields[1]))
        })
        .collect();
    ports.sort();
    ports
}

/// Waits until no connection to `server` is established any more (those of
/// a health probe, say), so the next one a test opens is the only one.
async fn no_connections_left(server: SocketAddr) {
    let started = Instant::now();
    while !client_ports(server).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "connections to {server} still open: {:?}",
            client_ports(server)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// A client that speaks just enough HTTP/2 by hand, so the test holds the
// socket and sees exactly when the server closes it.
// ---------------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

struct RawClient {
    socket: TcpStream,
    next_stream: u32,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut bytes = length.to_be_bytes()[1..].to_vec();
    bytes.extend([kind, flags]);
    bytes.extend(stream.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// One header as an HPACK literal without indexing, no Huffman coding
/// (names and values under 127 bytes).
fn literal(block: &mut Vec<u8>, name: &str, value: &str) {
    assert!(name.len() < 127 && value.len() < 127);
    block.push(0);
    block.push(name.len() as u8);
    block.extend(name.as_bytes());
    block.push(value.len() as u8);
    block.extend(value.as_bytes());
}

impl RawClient {
    fn connect(addr: SocketAddr) -> RawClient {
        let socket = TcpStream::connect(addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawClient {
            socket,
            next_stream: 1,
        }
    }

    /// The client's half of the connection preface, answered as HTTP/2
    /// requires: the server's SETTINGS acknowledged.
    fn handshake(&mut self) {
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        self.socket.write_all(&hello).expect("send the preface");
        loop {
            let frame = self.read_frame().expect("the server's SETTINGS");
            if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                break;
            }
        }
        let ack = frame(SETTINGS, ACK, 0, &[]);
        self.socket.write_all(&ack).expect("acknowledge SETTINGS");
    }

    /// Asks grpc.health.v1.Health/Check and reads until the answer's
    /// trailers; the grpc-status the server sent is not looked at, only that
    /// the request was served.
    fn health_check(&mut self) {
        let stream = self.next_stream;
        self.next_stream += 2;
        let mut block = Vec::new();
        literal(&mut block, ":method", "POST");
        literal(&mut block, ":scheme", "http");
        literal(&mut block, ":path", "/grpc.health.v1.Health/Check");
        literal(&mut block, ":authority", "localhost");
        literal(&mut block, "content-type", "application/grpc");
        literal(&mut block, "te", "trailers");
        let mut request = frame(HEADERS, END_HEADERS, stream, &block);
        // One empty HealthCheckRequest: uncompressed, length 0.
        request.extend(frame(DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]));
        self.socket.write_all(&request).expect("send the request");
        loop {
            let frame = self.read_frame().expect("the answer");
            if frame.kind == HEADERS && frame.stream == stream && frame.flags & END_STREAM != 0 {
                return;
            }
        }
    }

    /// The next frame; PINGs are answered on the way. None at EOF or reset.
    fn read_frame(&mut self) -> Option<Frame> {
        loop {
            let mut head = [0u8; 9];
            if let Err(err) = self.socket.read_exact(&mut head) {
                assert!(
                    !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                    "the server sent nothing for 10 s"
                );
                return None;
            }
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; length];
            self.socket.read_exact(&mut payload).ok()?;
            let frame = Frame {
                kind: head[3],
                flags: head[4],
                stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
                payload,
            };
            if frame.kind == PING && frame.flags & ACK == 0 {
                let pong = self::frame(PING, ACK, 0, &frame.payload);
                self.socket.write_all(&pong).ok()?;
                continue;
            }
            return Some(frame);
        }
    }

    /// Waits, silent, until the server closes the connection (a GOAWAY
    /// before the close is fine): how long that took, or None if it is
    /// still open after `within`.
    fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        self.socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while started.elapsed() < within {
            match self.socket.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => continue,
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_beyond_the_descriptor_limit_do_not_lock_clients_out() {
    const SILENT: usize = 1100;
    raise_own_open_files(SILENT as u64 + 200);
    let server = Server::start_with_open_files("", SERVER_OPEN_FILES).await;
    serving(&server).await;
    let pid = server.pid();

    let opened = Instant::now();
    let addr = server.addr;
    let mut silent = tokio::task::spawn_blocking(move || {
        (0..SILENT)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    println!(
        "{} of {SILENT} silent connections opened in {:.2} s",
        silent.len(),
        opened.elapsed().as_secs_f64()
    );

    let asked = Instant::now();
    let status = health_status(&server.url()).await;
    let answered = asked.elapsed();
    println!(
        "health check with {SILENT} silent connections open: {status:?} in {} ms",
        answered.as_millis()
    );
    assert_eq!(
        status,
        Ok(ServingStatus::Serving),
        "a new client was not answered within 5 s"
    );

    let cpu_before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = cpu_time(pid) - cpu_before;
    println!("server CPU over 3 s: {:.3} s", cpu.as_secs_f64());
    assert!(
        cpu < Duration::from_millis(500),
        "the server used {cpu:?} of CPU in 3 s with silent connections open"
    );

    let mut open = silent.len();
    while opened.elapsed() < Duration::from_secs(15) {
        silent.retain_mut(|socket| !closed_by_server(socket));
        open = silent.len();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "silent connections still open {:.1} s after opening: {open}",
        opened.elapsed().as_secs_f64()
    );
    assert_eq!(open, 0, "silent connections still open after 15 s");
    assert_eq!(
        health_status(&server.url()).await,
        Ok(ServingStatus::Serving)
    );
}

#[tokio::test]
async fn a_connection_silent_after_its_request_is_closed_after_the_idle_timeout() {
    let server = Server::start(
        "[connections]\nidle_timeout_secs = 2\nhandshake_timeout_secs = 1\n\
         keepalive_interval_secs = 30\n",
    )
    .await;
    serving(&server).await;
    let addr = server.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut client = RawClient::connect(addr);
        client.handshake();
        client.health_check();
        // Busy past the handshake timeout: requests keep it open.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(500));
            client.health_check();
        }
        client.closed_within(Duration::from_secs(10))
    })
    .await
    .unwrap();
    println!("closed {closed:?} after its last request");
    let closed = closed.expect("the idle connection is still open 10 s after its last request");
    assert!(
        closed >= Duration::from_millis(1800) && closed < Duration::from_secs(4),
        "an idle timeout of 2 s closed the connection after {closed:?}"
    );
}

#[tokio::test]
async fn connections_beyond_max_connections_are_refused_at_once() {
    const CAP: usize = 8;
    let server = Server::start(&format!("[connections]\nmax_connections = {CAP}\n")).await;
    serving(&server).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // The health probe's connection above may still be closing.
        std::thread::sleep(Duration::from_millis(500));
        let mut active: Vec<RawClient> = (0..CAP)
            .map(|_| {
                let mut client = RawClient::connect(addr);
                client.handshake();
                client.health_check();
                client
            })
            .collect();

        let mut refused = RawClient::connect(addr);
        let closed = refused.closed_within(Duration::from_secs(2));
        println!("connection {} closed after {closed:?}", CAP + 1);
        let closed = closed.expect("a connection beyond max_connections is still open after 2 s");
        assert!(
            closed < Duration::from_millis(500),
            "refused after {closed:?}"
        );

        // The ones inside the cap are untouched, and a freed slot is taken.
        for client in &mut active {
            client.health_check();
        }
        drop(active.pop());
        std::thread::sleep(Duration::from_millis(200));
        let mut next = RawClient::connect(addr);
        next.handshake();
        next.health_check();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_silent_connection_makes_room_for_a_client_at_the_cap() {
    const CAP: usize = 4;
    let server = Server::start(&format!(
        "[connections]\nmax_connections = {CAP}\nhandshake_timeout_secs = 30\n"
    ))
    .await;
    serving(&server).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        let mut silent: Vec<TcpStream> = (0..CAP)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let mut client = RawClient::connect(addr);
        client.handshake();
        client.health_check();
        println!("served at the cap in {} ms", started.elapsed().as_millis());
        std::thread::sleep(Duration::from_millis(200));
        // The oldest silent connection made the room.
        assert!(closed_by_server(&mut silent[0]));
        assert!(!closed_by_server(&mut silent[CAP - 1]));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_megabyte_authorization_header_is_refused_by_itself() {
    let key_hash = "93c1b2e239a4d657ed41fc8b00fe0ab920d9d011861acc9b87598f8b2390d902";
    let server = Server::start(&format!(
        "[[accounts]]\nid = \"1\"\ndomains = [\"example.com\"]\nbuckets = [\"b\"]\n\
         [[accounts.keys]]\nsha256 = \"{key_hash}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:1:domain/*\"] }}]\n"
    ))
    .await;
    let mut client = server.client().await;
    let huge = format!("Bearer {}", "k".repeat(1024 * 1024));
    let describe = |authorization: &str| {
        let mut request = tonic::Request::new(
            record_index::proto::DescribeLiveStreamRecordIndexFileRequest {
                record_id: "r".into(),
                domain_name: "example.com".into(),
                app_name: "live".into(),
                stream_name: "cam".into(),
            },
        );
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        request
    };
    let answer = client
        .describe_live_stream_record_index_file(describe(&huge))
        .await;
    let status = answer.expect_err("a 1 MiB key is no key");
    println!(
        "1 MiB authorization header: {:?} {}",
        status.code(),
        status.message()
    );
    assert_error(&status, tonic::Code::Unauthenticated, "InvalidAccessKeyId");
    // The connection is still there for the next request.
    let again = client
        .describe_live_stream_record_index_file(describe("Bearer short"))
        .await;
    assert_error(
        &again.expect_err("an unknown key"),
        tonic::Code::Unauthenticated,
        "InvalidAccessKeyId",
    );
}

/// A self-signed certificate for `localhost` and its key, as PEM.
fn self_signed_localhost() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate a self-signed certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// Checks health through `channel` twice, with a pause longer than the
/// handshake timeout between, and that the connection is the same one.
async fn kept_past_the_handshake_timeout(channel: Channel, server: SocketAddr) {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = || tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    client.check(check()).await.expect("first check");
    let before = client_ports(server);
    assert_eq!(before.len(), 1, "one connection: {before:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        client_ports(server),
        before,
        "the established connection was closed"
    );
    client.check(check()).await.expect("second check");
    assert_eq!(client_ports(server), before, "the client had to reconnect");
}

#[tokio::test]
async fn established_connections_outlive_the_handshake_timeout_with_and_without_tls() {
    let limits = "[connections]\nhandshake_timeout_secs = 1\n";
    let plain = Server::start(limits).await;
    no_connections_left(plain.addr).await;
    let channel = Channel::from_shared(plain.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    kept_past_the_handshake_timeout(channel, plain.addr).await;

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_localhost();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let tls = Server::start(&format!(
        "{limits}[tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    ))
    .await;
    no_connections_left(tls.addr).await;
    let tls_config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&cert))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{}", tls.addr))
        .unwrap()
        .tls_config(tls_config)
        .unwrap()
        .connect()
        .await
        .unwrap();
    kept_past_the_handshake_timeout(channel, tls.addr).await;

    // A socket that never starts its TLS handshake is closed.
    let addr = tls.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut silent = RawClient {
            socket: TcpStream::connect(addr).unwrap(),
            next_stream: 1,
        };
        silent.closed_within(Duration::from_secs(5))
    })
    .await
    .unwrap();
    println!("silent TLS connection closed after {closed:?}");
    let closed = closed.expect("a silent connection to the TLS listener is still open after 5 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}"
    );
}

#[tokio::test]
async fn a_stream_in_flight_keeps_its_connection_past_the_idle_timeout() {
    let server = Server::start("[connections]\nidle_timeout_secs = 2\n").await;
    // A status change would end the wait for the next message below.
    serving(&server).await;
    no_connections_left(server.addr).await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut watch = client
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    watch.message().await.expect("the current status");
    let ports = client_ports(server.addr);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        client_ports(server.addr),
        ports,
        "the watched connection was closed"
    );
    let next = tokio::time::timeout(Duration::from_millis(200), watch.message()).await;
    assert!(next.is_err(), "the watch ended: {next:?}");

    drop(watch);
    let dropped = Instant::now();
    no_connections_left(server.addr).await;
    println!(
        "closed {:.1} s after its stream ended",
        dropped.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn the_http_listeners_close_connections_that_send_no_request() {
    let [webhook, metrics] = free_ports::<2>();
    let _server = Server::start(&format!(
        "[connections]\nhandshake_timeout_secs = 1\n\
         [srs_webhook]\nlisten = \"127.0.0.1:{webhook}\"\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics}\"\n"
    ))
    .await;
    let closed = tokio::task::spawn_blocking(move || {
        [webhook, metrics].map(|port| {
            let mut silent = RawClient {
                socket: TcpStream::connect(("127.0.0.1", port)).unwrap(),
                next_stream: 1,
            };
            silent.closed_within(Duration::from_secs(5))
        })
    })
    .await
    .unwrap();
    println!("silent webhook and metrics connections closed after {closed:?}");
    for after in closed {
        let after = after.expect("a silent HTTP connection is still open after 5 s");
        assert!(
            after >= Duration::from_millis(900),
            "closed after {after:?}"
        );
    }
}

/// A flood of silent sockets on the playback port takes its share of the
/// descriptors, no more: the rest are closed at once, gRPC clients are
/// still answered, and playback answers again once the silent ones timed
/// out.
#[tokio::test]
async fn silent_playback_connections_leave_grpc_its_descriptors() {
    const SILENT: usize = 1100;
    raise_own_open_files(SILENT as u64 + 200);
    let server =
        Server::start_with_open_files("[playback]\nlisten = \"127.0.0.1:0\"\n", SERVER_OPEN_FILES)
            .await;
    serving(&server).await;
    let playback = server.playback_addr().await;
    let opened = Instant::now();
    let mut silent = tokio::task::spawn_blocking(move || {
        (0..SILENT)
            .filter_map(|_| TcpStream::connect_timeout(&playback, Duration::from_secs(3)).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(
        health_status(&server.url()).await,
        Ok(ServingStatus::Serving),
        "a gRPC client was not answered within 5 s beside {SILENT} silent playback sockets"
    );
    silent.retain_mut(|socket| !closed_by_server(socket));
    println!(
        "silent playback connections held by the server: {}",
        silent.len()
    );
    // With 1024 open files and only the playback side listener, its
    // documented cap: a quarter of the 896 descriptors the reserve leaves.
    assert!(silent.len() <= 224, "{} held", silent.len());
    while !silent.is_empty() && opened.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        silent.retain_mut(|socket| !closed_by_server(socket));
    }
    assert!(
        silent.is_empty(),
        "{} silent playback sockets open after 15 s",
        silent.len()
    );
    let answer = http_get(&format!("http://{playback}/v1/a.com/b/c/index.m3u8")).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
}

/// Waits until `server` answers its health check SERVING.
async fn serving(server: &Server) {
    await_health(
        &server.url(),
        ServingStatus::Serving,
        Duration::from_secs(10),
    )
    .await;
}
