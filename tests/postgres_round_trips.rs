//! The round trips a request makes to PostgreSQL, counted: a proxy
//! between a `PgCatalog` and the test server counts the turns of each
//! connection, a turn being the client sending after the server has sent
//! (or for the first time). The statement cache is warmed first, as on a
//! connection that has served a request of each kind.
//!
//! `cargo test --test postgres_round_trips -- --nocapture` prints the
//! figures; docs/postgres.md "What a request costs" quotes them.

#[path = "common/pg_server.rs"]
mod pg_server;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use record_index::catalog::postgres::{PgCatalog, PgOptions};
use record_index::catalog::{
    Commit, MAX_SCAN_PAGE, ManifestRecord, RegisterAnswer, RegisterOutcome, ScanFrom, StreamName,
    TokenAnswer, TokenRecord,
};
use record_index::manifest::{Format, Micros, Segment};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECOND: Micros = 1_000_000;
const BATCH: i64 = 1_000;

/// The most round trips each request may take; a change that adds one
/// fails here.
const REGISTER: u64 = 4;
const REGISTER_WITH_TOKEN: u64 = 4;
const TOKEN_LOOKUP: u64 = 1;
const STREAMS: u64 = 1;
const SCAN_PAGE: u64 = 1;
const PUT_MANIFEST_WITH_TOKEN: u64 = 4;

/// How long the client must have sent nothing before an answer reaches it.
const QUIET: Duration = Duration::from_millis(50);

/// Forwards connections on a port of its own to `upstream`, counting the
/// turns of every connection in one sum.
async fn counting_proxy(upstream: u16) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let turns = Arc::new(AtomicU64::new(0));
    let counter = turns.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
            forward(client, server, counter.clone());
        }
    });
    (port, turns)
}

fn forward(client: TcpStream, server: TcpStream, turns: Arc<AtomicU64>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Requests sent and not yet answered (ReadyForQuery). An answer is
    // counted when it is passed on, and it is passed on only once the
    // client has sent nothing for QUIET: a request the client sent without
    // waiting for an answer (pipelined) is then read while the answer
    // before it is still held, and is not a turn of its own, however the
    // machine schedules the two directions.
    let unanswered = Arc::new(AtomicI64::new(0));
    let answered = unanswered.clone();
    let started = std::time::Instant::now();
    let client_sent = Arc::new(AtomicU64::new(0));
    let client_quiet = client_sent.clone();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut messages = Messages::default();
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            client_sent.store(started.elapsed().as_micros() as u64, Ordering::SeqCst);
            for kind in messages.started(&buffer[..n]) {
                match kind {
                    // A statement dropped, or the connection: not waited on.
                    b'C' | b'X' => {}
                    // The end of a request, or a request of its own.
                    b'S' | b'Q' | 0 => {
                        if !messages.open && unanswered.load(Ordering::SeqCst) == 0 {
                            turns.fetch_add(1, Ordering::SeqCst);
                        }
                        messages.open = false;
                        unanswered.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        if !messages.open && unanswered.load(Ordering::SeqCst) == 0 {
                            turns.fetch_add(1, Ordering::SeqCst);
                        }
                        messages.open = true;
                    }
                }
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut messages = Messages {
            started: true,
            ..Messages::default()
        };
        while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
            loop {
                let sent = Duration::from_micros(client_quiet.load(Ordering::SeqCst));
                let quiet = started.elapsed().saturating_sub(sent);
                if quiet >= QUIET {
                    break;
                }
                tokio::time::sleep(QUIET - quiet).await;
            }
            for kind in messages.started(&buffer[..n]) {
                if kind == b'Z' {
                    answered.fetch_sub(1, Ordering::SeqCst);
                }
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    });
}

/// One direction of the protocol, split into messages: a turn is a
/// request begun while every earlier one has been answered.
#[derive(Default)]
struct Messages {
    /// The header read so far of the next message.
    header: Vec<u8>,
    /// The bytes left of the current message's body.
    skip: usize,
    /// Past the startup message, which has a length and no type.
    started: bool,
    /// Within a request (Parse, Bind, ... up to its Sync).
    open: bool,
}

impl Messages {
    /// The type of each message whose header is in these bytes, 0 for
    /// the startup message.
    fn started(&mut self, mut bytes: &[u8]) -> Vec<u8> {
        let mut kinds = Vec::new();
        loop {
            let skipped = self.skip.min(bytes.len());
            self.skip -= skipped;
            bytes = &bytes[skipped..];
            let head = usize::from(self.started) + 4;
            let taken = (head - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
            if self.header.len() < head {
                return kinds;
            }
            let length = u32::from_be_bytes(self.header[head - 4..].try_into().unwrap());
            kinds.push(if self.started { self.header[0] } else { 0 });
            self.started = true;
            self.skip = length as usize - 4;
            self.header.clear();
        }
    }
}

/// The turns `request` takes, and what it returned. Messages the client
/// sends without waiting (tokio-postgres closes a statement it prepared
/// for one query once it is dropped) count with the request that sent
/// them: the count is read once the connection has been quiet a while.
async fn count<T>(turns: &AtomicU64, request: impl Future<Output = T>) -> (u64, T) {
    let before = turns.load(Ordering::SeqCst);
    let out = request.await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (turns.load(Ordering::SeqCst) - before, out)
}

fn wall_clock() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as Micros
}

fn name(stream: &str) -> StreamName {
    StreamName {
        domain: "example.com".into(),
        app: "live".into(),
        stream: stream.into(),
    }
}

/// A batch of 6 s segments back to back, the first at `first`.
fn batch(prefix: &str, first: Micros) -> Vec<Segment> {
    (0..BATCH)
        .map(|i| Segment {
            endpoint: "localhost:8333".into(),
            bucket: "rec-bucket".into(),
            object: format!("{prefix}/{i:06}.ts"),
            start: first + i * 6 * SECOND,
            duration: 6 * SECOND,
            sequence: i,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 1000,
            media: None,
        })
        .collect()
}

fn register_answer(key: &str, created: Micros) -> RegisterAnswer {
    RegisterAnswer {
        key: key.as_bytes().to_vec(),
        fingerprint: vec![9; 32],
        created,
        response: Box::new(|outcome: &RegisterOutcome| {
            format!("{}/{}", outcome.accepted, outcome.duplicates).into_bytes()
        }),
    }
}

fn token_answer(key: &str, created: Micros) -> TokenAnswer {
    TokenAnswer {
        key: key.as_bytes().to_vec(),
        record: TokenRecord {
            fingerprint: vec![7; 32],
            created,
            response: b"created".to_vec(),
        },
    }
}

fn manifest(stream_id: u64, created: Micros) -> ManifestRecord {
    ManifestRecord {
        record_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "trips".into(),
        oss_endpoint: "localhost:8333".into(),
        oss_bucket: "rec-bucket".into(),
        oss_object: format!("live/trips/{}.m3u8", uuid::Uuid::new_v4()),
        record_url: "http://localhost:8333/rec-bucket/live/trips/index.m3u8".into(),
        start_time: String::new(),
        end_time: String::new(),
        created,
        expires: created + 86_400 * SECOND,
        duration: 300.0,
        width: 640,
        height: 360,
        segment_count: 50,
        stream_id,
    }
}

/// The turns of each request, on a connection that has served one of
/// each kind before.
struct Figures {
    register: u64,
    register_with_token: u64,
    token_lookup: u64,
    streams: u64,
    scan_page: u64,
    put_manifest_with_token: u64,
}

impl Figures {
    fn create(&self) -> u64 {
        self.token_lookup + self.streams + self.scan_page + self.put_manifest_with_token
    }
}

/// Registers, looks up, scans and stores a manifest once to warm the
/// statement cache, then once more counting.
async fn measure(catalog: &PgCatalog, turns: &AtomicU64) -> Figures {
    let now = wall_clock();
    let first = now - 2 * BATCH * 6 * SECOND;
    let stream = name("trips");
    let mut figures = Vec::new();
    for round in 0..2 {
        let segments = batch(&format!("plain{round}"), first);
        let (register, outcome) =
            count(turns, catalog.register(&stream, segments, now, None)).await;
        assert!(matches!(outcome.unwrap(), Commit::Done(o) if o.accepted == BATCH as u32));
        let segments = batch(&format!("token{round}"), first);
        let answer = Some(register_answer(&format!("register{round}"), now));
        let (register_with_token, outcome) =
            count(turns, catalog.register(&stream, segments, now, answer)).await;
        assert!(matches!(outcome.unwrap(), Commit::Done(o) if o.accepted == BATCH as u32));
        let (token_lookup, found) = count(turns, catalog.token(b"create", now)).await;
        assert!(found.unwrap().is_none());
        let (streams, found) = count(turns, catalog.streams(std::slice::from_ref(&stream))).await;
        let stream_id = found.unwrap()[0].expect("the stream").id;
        let from = ScanFrom::EndsAfter(first);
        let scanned = catalog.scan_by_end(stream_id, &from, now, now, MAX_SCAN_PAGE);
        let (scan_page, page) = count(turns, scanned).await;
        assert_eq!(page.unwrap().len(), 2 * (round + 1) * BATCH as usize);
        let record = manifest(stream_id, now);
        let answer = Some(token_answer(&format!("create{round}"), now));
        let (put_manifest_with_token, put) =
            count(turns, catalog.put_manifest(&record, answer)).await;
        assert_eq!(put.unwrap(), Commit::Done(()));
        figures.push(Figures {
            register,
            register_with_token,
            token_lookup,
            streams,
            scan_page,
            put_manifest_with_token,
        });
    }
    figures.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trips_of_a_create_and_a_register_are_bounded() {
    let url = pg_server::shared_database("trips").await;
    let (head, port) = url.split_once("port=").unwrap();
    let (port, tail) = port.split_once(' ').unwrap();
    let (proxy, turns) = counting_proxy(port.parse().unwrap()).await;
    let options = PgOptions {
        url: format!("{head}port={proxy} {tail}"),
        // One connection: every request meets the statements it prepared.
        pool_size: 1,
        statement_timeout_ms: 30_000,
    };
    let catalog = PgCatalog::open(&options).await.unwrap();
    let figures = measure(&catalog, &turns).await;
    println!("round trips, statement cache warm:");
    println!(
        "  Register of {BATCH} segments:           {}",
        figures.register
    );
    println!(
        "  Register of {BATCH} with a ClientToken: {}",
        figures.register_with_token
    );
    println!(
        "  token lookup:                        {}",
        figures.token_lookup
    );
    println!("  streams lookup:                      {}", figures.streams);
    println!(
        "  scan page:                           {}",
        figures.scan_page
    );
    println!(
        "  put_manifest with a ClientToken:     {}",
        figures.put_manifest_with_token
    );
    println!(
        "  Create (the four above):             {}",
        figures.create()
    );
    assert!(figures.register <= REGISTER);
    assert!(figures.register_with_token <= REGISTER_WITH_TOKEN);
    assert!(figures.token_lookup <= TOKEN_LOOKUP);
    assert!(figures.streams <= STREAMS);
    assert!(figures.scan_page <= SCAN_PAGE);
    assert!(figures.put_manifest_with_token <= PUT_MANIFEST_WITH_TOKEN);
}
