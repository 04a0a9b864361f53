//! Playlists made per request by the playback listener, against a Create of
//! the same ranges, in one run of the real binary (`record-index serve`, a
//! process of its own, its catalog in sled):
//! 1. the server time of a playlist of 1 hour (600 segments of 6 s) and of
//!    4 days (57,600 segments), with `segment_urls = "presigned"` (SigV4
//!    presigning included) and `"public"`: each request's own
//!    `latency_ms`, which the listener logs from the moment it has the
//!    request head to the response built (signature check, admission,
//!    selection, rendering, segment URLs, ETag). Next to it, the round
//!    trip the client saw and that of a trivial request (a signed URL of
//!    a stream that names no playlist: 404, no catalog read) alternated on
//!    the same keep-alive connection;
//! 2. playlists per second over HTTP from a few keep-alive clients, and
//!    the server process's CPU seconds (utime + stime) over the same
//!    window: playlists per CPU second, i.e. per core;
//! 3. the baseline: CreateLiveStreamRecordIndexFiles of the same ranges
//!    over gRPC, writing the playlist into the local directory store
//!    (temporary file, fsync, rename), with its server time from its own
//!    log line and the round trip.
//!
//! URLs carry a Type A `auth_key` (an account with a playback key, as
//! outside local mode), so every playlist pays the signature check too.
//! No object is read: segment URLs are computed, never fetched, and
//! Register is given each segment's duration and size.
//!
//! Run with `cargo bench --bench playback`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hyper::{Body, Request, StatusCode};
use record_index::playback::signing::{new_rand, sign_url};
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use tonic::transport::Channel;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const ACCOUNT: &str = "1234567890";
const API_KEY: &str = "bench-api-key";
const PLAYBACK_KEY: &str = "bench-playback-key";
/// Where the segments are: an Alibaba OSS bucket, virtual-hosted. The
/// host is resolved to loopback, where nothing listens: only the health
/// check ever dials it.
const OSS_URL: &str = "https://oss-cn-shanghai.aliyuncs.com";
const SEGMENT_BUCKET: &str = "live-bucket";
/// Where Create writes its playlists: the local directory store.
const PLAYLIST_ENDPOINT: &str = "localhost";
const PLAYLIST_BUCKET: &str = "playlists";
const SEGMENT_SECONDS: i64 = 6;
/// Segments recorded per stream: 4 days of 6-second segments.
const RECORDED: i64 = 57_600;
/// The register batch.
const BATCH: i64 = 1_000;
/// Concurrent keep-alive clients of the throughput run.
const CLIENTS: usize = 4;
/// How long each throughput run lasts.
const WINDOW: Duration = Duration::from_secs(5);

/// A segment_urls mode, with the endpoint (and stream) in that mode.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Presigned,
    Public,
}

impl Mode {
    const BOTH: [Mode; 2] = [Mode::Presigned, Mode::Public];

    fn name(self) -> &'static str {
        match self {
            Mode::Presigned => "presigned",
            Mode::Public => "public",
        }
    }

    fn endpoint(self) -> String {
        format!("oss-{}.example", self.name())
    }

    fn stream(self) -> String {
        format!("camera-{}", self.name())
    }
}

/// A range of the recording.
#[derive(Clone, Copy)]
struct Range {
    label: &'static str,
    segments: i64,
    /// Playlists measured one at a time, in each mode.
    rounds: usize,
    /// Creates measured.
    creates: usize,
}

const HOUR: Range = Range {
    label: "1 hour",
    segments: 600,
    rounds: 300,
    creates: 100,
};
const FOUR_DAYS: Range = Range {
    label: "4 days",
    segments: 57_600,
    rounds: 30,
    creates: 15,
};

impl Range {
    /// Its start and end, in Unix seconds: the last `segments` segments
    /// of the recording.
    fn bounds(self, recorded_from: DateTime<Utc>) -> (i64, i64) {
        let end = recorded_from.timestamp() + RECORDED * SEGMENT_SECONDS;
        (end - self.segments * SEGMENT_SECONDS, end)
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn config() -> String {
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(API_KEY.as_bytes()));
    let oss = |mode: Mode| {
        format!(
            "[[endpoints]]\nname = \"{}\"\nkind = \"s3\"\nurl = \"{OSS_URL}\"\n\
             addressing = \"virtual-hosted\"\nregion = \"oss-cn-shanghai\"\n\
             access_key_id_env = \"TEST_S3_KEY\"\nsecret_access_key_env = \"TEST_S3_SECRET\"\n\
             resolve = {{ \"oss-cn-shanghai.aliyuncs.com\" = \"127.0.0.1\", \"*.oss-cn-shanghai.aliyuncs.com\" = \"127.0.0.1\" }}\n\
             segment_urls = \"{}\"\n\n",
            mode.endpoint(),
            mode.name()
        )
    };
    format!(
        "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000000\n\
         RegisterLiveStreamRecordSegments = 1000000\nPlayback = 1000000\n\n\
         {}{}[[endpoints]]\nname = \"{PLAYLIST_ENDPOINT}\"\nkind = \"local\"\n\n\
         [playback]\nlisten = \"127.0.0.1:0\"\n\n\
         [[accounts]]\nid = \"{ACCOUNT}\"\ndomains = [\"{DOMAIN}\"]\n\
         buckets = [\"{SEGMENT_BUCKET}\", \"{PLAYLIST_BUCKET}\"]\n\
         [[accounts.keys]]\nsha256 = \"{sha}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{ACCOUNT}:domain/*\"] }}]\n\
         [accounts.playback]\nprimary_key_env = \"BENCH_PLAYBACK_KEY\"\nvalidity_secs = 86400\n",
        oss(Mode::Presigned),
        oss(Mode::Public),
    )
}

/// Registers 4 days of 6-second segments for each mode's stream, as a
/// recorder names them.
async fn register(client: &mut RecordIndexClient<Channel>, from: DateTime<Utc>) {
    for mode in Mode::BOTH {
        for first in (0..RECORDED).step_by(BATCH as usize) {
            let segments = (first..first + BATCH)
                .map(|i| {
                    let start = from + chrono::Duration::seconds(i * SEGMENT_SECONDS);
                    Segment {
                        oss_endpoint: mode.endpoint(),
                        oss_bucket: SEGMENT_BUCKET.into(),
                        oss_object: format!(
                            "record/{DOMAIN}/{APP}/{}/{}.ts",
                            mode.stream(),
                            start.format("%Y-%m-%d/%H-%M-%S")
                        ),
                        start_time: common::utc_millis(start),
                        duration: SEGMENT_SECONDS as f64,
                        sequence: i,
                        width: 1920,
                        height: 1080,
                        format: "ts".into(),
                        size: 3_000_000,
                    }
                })
                .collect();
            let message = RegisterLiveStreamRecordSegmentsRequest {
                domain_name: DOMAIN.into(),
                app_name: APP.into(),
                stream_name: mode.stream(),
                segments,
                client_token: String::new(),
            };
            let answer = client
                .register_live_stream_record_segments(common::with_key(API_KEY, message))
                .await
                .expect("register")
                .into_inner();
            assert_eq!(answer.accepted as i64, BATCH);
        }
    }
}

/// One keep-alive HTTP/1.1 connection to the playback listener.
struct Connection {
    send: hyper::client::conn::SendRequest<Body>,
    host: String,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Connection {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (send, connection) = hyper::client::conn::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        Connection {
            send,
            host: addr.to_string(),
        }
    }

    /// GETs `target` (path and query) and reads the whole body.
    async fn get(&mut self, target: &str, request_id: Option<&str>) -> (StatusCode, bytes::Bytes) {
        let mut request = Request::get(target).header(hyper::header::HOST, &self.host);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        futures::future::poll_fn(|cx| self.send.poll_ready(cx))
            .await
            .expect("the connection stays open");
        let response = self
            .send
            .send_request(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = hyper::body::to_bytes(response.into_body()).await.unwrap();
        (status, body)
    }
}

/// The path and query of `file` of `stream`, signed with the account's
/// playback key (valid for the whole run).
fn signed(addr: SocketAddr, stream: &str, file: &str, query: &str) -> String {
    let url = format!("http://{addr}/v1/{DOMAIN}/{APP}/{stream}/{file}?{query}");
    let now = Utc::now().timestamp();
    let signed = sign_url(&url, PLAYBACK_KEY, now, &new_rand(), "0").unwrap();
    signed
        .strip_prefix(&format!("http://{addr}"))
        .unwrap()
        .to_string()
}

fn playlist_target(addr: SocketAddr, mode: Mode, range: Range, from: DateTime<Utc>) -> String {
    let (start, end) = range.bounds(from);
    signed(
        addr,
        &mode.stream(),
        "index.m3u8",
        &format!("start={start}&end={end}"),
    )
}

/// The `latency_ms` of each request id's log line, read from the JSON log.
fn server_times(log: &common::ServerLog, ids: &[String]) -> HashMap<String, Duration> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut found = HashMap::new();
        for line in log.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let fields = &value["fields"];
            let span = &value["span"];
            let id = fields["request_id"]
                .as_str()
                .or(span["request_id"].as_str());
            let latency = fields["latency_ms"]
                .as_f64()
                .or(span["latency_ms"].as_f64());
            if let (Some(id), Some(latency)) = (id, latency) {
                found.insert(id.to_string(), Duration::from_secs_f64(latency / 1e3));
            }
        }
        if ids.iter().all(|id| found.contains_key(id)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with latency_ms for some requests, e.g. {:?}",
            ids.iter().find(|id| !found.contains_key(*id))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name, in parentheses, may hold spaces: count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of proc(5), 12 and 13 after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU seconds the whole machine has spent busy (all but idle and iowait),
/// and in all, summed over its cores.
fn machine_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let busy = total - ticks[3] - ticks[4];
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (busy as f64 / hz, total as f64 / hz)
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn count_entries(body: &[u8]) -> usize {
    memchr::memmem::find_iter(body, b"#EXTINF").count()
}

/// What one playlist costs: server time from the log, round trips, and a
/// trivial request alternated with them on the same connection.
async fn one_at_a_time(
    addr: SocketAddr,
    log: &common::ServerLog,
    from: DateTime<Utc>,
) -> Vec<(Range, Mode, Duration)> {
    let mut connection = Connection::open(addr).await;
    let trivial = signed(addr, &Mode::Public.stream(), "no-such-playlist", "");
    let (status, _) = connection.get(&trivial, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the trivial request");

    println!(
        "one playlist at a time on one keep-alive HTTP/1.1 connection; server time: the listener's own latency_ms (request head read -> response built)"
    );
    println!(
        "  range   segments  segment_urls  playlist bytes   server p50   server p99   round trip p50        p99   round trip - trivial, p50"
    );
    let mut medians = Vec::new();
    let mut serial = 0usize;
    for range in [HOUR, FOUR_DAYS] {
        let targets: Vec<String> = Mode::BOTH
            .iter()
            .map(|&mode| playlist_target(addr, mode, range, from))
            .collect();
        let mut sizes = [0usize; 2];
        for (at, target) in targets.iter().enumerate() {
            let (status, body) = connection.get(target, None).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            assert_eq!(count_entries(&body) as i64, range.segments, "{target}");
            let text = String::from_utf8_lossy(&body);
            let signed = text.contains("X-Amz-Signature=");
            assert_eq!(signed, Mode::BOTH[at] == Mode::Presigned, "presigned URLs");
            sizes[at] = body.len();
        }
        // Warm-up: the catalog's blocks of the range in sled's cache.
        for _ in 0..range.rounds.div_ceil(10) {
            for target in &targets {
                connection.get(target, None).await;
            }
        }
        let mut ids: Vec<Vec<String>> = vec![Vec::new(); 3];
        let mut trips: Vec<Vec<Duration>> = vec![Vec::new(); 3];
        for _ in 0..range.rounds {
            for (at, target) in targets.iter().enumerate() {
                serial += 1;
                let id = format!("bench-trivial-{serial}");
                let started = Instant::now();
                let (status, _) = connection.get(&trivial, Some(&id)).await;
                trips[2].push(started.elapsed());
                assert_eq!(status, StatusCode::NOT_FOUND);
                ids[2].push(id);

                let id = format!("bench-playlist-{serial}");
                let started = Instant::now();
                let (status, body) = connection.get(target, Some(&id)).await;
                trips[at].push(started.elapsed());
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body.len(), sizes[at]);
                ids[at].push(id);
            }
        }
        let all: Vec<String> = ids.concat();
        let times = server_times(log, &all);
        let mut server: Vec<Vec<Duration>> = ids
            .iter()
            .map(|ids| ids.iter().map(|id| times[id]).collect())
            .collect();
        let trivial_server = percentile(&mut server[2], 0.5);
        let trivial_trip = percentile(&mut trips[2], 0.5);
        for (at, mode) in Mode::BOTH.into_iter().enumerate() {
            let p50 = percentile(&mut server[at], 0.5);
            let trip = percentile(&mut trips[at], 0.5);
            println!(
                "  {:<7} {:>8}  {:<12}  {:>14}   {:>7.3} ms   {:>7.3} ms   {:>11.3} ms   {:>7.3} ms   {:>20.3} ms",
                range.label,
                range.segments,
                mode.name(),
                sizes[at],
                ms(p50),
                ms(percentile(&mut server[at], 0.99)),
                ms(trip),
                ms(percentile(&mut trips[at], 0.99)),
                ms(trip) - ms(trivial_trip),
            );
            medians.push((range, mode, p50));
        }
        println!(
            "  {:<7} trivial request before each playlist (a signed URL naming no playlist: 404, no catalog read): server p50 {:.3} ms, round trip p50 {:.3} ms",
            "",
            ms(trivial_server),
            ms(trivial_trip),
        );
    }
    medians
}

/// Playlists per second from CLIENTS keep-alive connections for WINDOW,
/// and the server's CPU seconds over the same time.
async fn throughput(addr: SocketAddr, pid: u32, from: DateTime<Utc>) {
    println!(
        "throughput: {CLIENTS} keep-alive clients (HTTP/1.1, in the bench process), {} s a run, the server's CPU from /proc/PID/stat",
        WINDOW.as_secs()
    );
    println!(
        "  range   segment_urls  playlists/s   server CPU s   playlists per CPU second   server cores busy   clients' CPU s"
    );
    for range in [HOUR, FOUR_DAYS] {
        for mode in Mode::BOTH {
            let target = Arc::new(playlist_target(addr, mode, range, from));
            let mut connections = Vec::new();
            for _ in 0..CLIENTS {
                connections.push(Connection::open(addr).await);
            }
            let done = Arc::new(AtomicUsize::new(0));
            let (server_before, bench_before) = (cpu_seconds(pid), cpu_seconds(std::process::id()));
            let started = Instant::now();
            let deadline = started + WINDOW;
            let workers: Vec<_> = connections
                .into_iter()
                .map(|mut connection| {
                    let (target, done) = (target.clone(), done.clone());
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            let (status, _) = connection.get(&target, None).await;
                            assert_eq!(status, StatusCode::OK);
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
            let elapsed = started.elapsed().as_secs_f64();
            let server = cpu_seconds(pid) - server_before;
            let clients = cpu_seconds(std::process::id()) - bench_before;
            let done = done.load(Ordering::Relaxed) as f64;
            println!(
                "  {:<7} {:<12}  {:>11.1}   {:>12.2}   {:>24.1}   {:>17.2}   {:>14.2}",
                range.label,
                mode.name(),
                done / elapsed,
                server,
                done / server,
                server / elapsed,
                clients
            );
        }
    }
}

/// Create of the same ranges of the public stream (its playlist holds the
/// same absolute URLs as the public one made per request), into the local
/// store; server time from its log line, and the round trip.
async fn creates(
    client: &mut RecordIndexClient<Channel>,
    log: &common::ServerLog,
    objects: &std::path::Path,
    from: DateTime<Utc>,
) -> Vec<(Range, Duration)> {
    println!(
        "baseline: CreateLiveStreamRecordIndexFiles over gRPC of the same ranges (public stream), the playlist written to the local store (fsync, rename)"
    );
    println!("  range   segments  playlist bytes   server p50   server p99   round trip p50   p99");
    let mut medians = Vec::new();
    for range in [HOUR, FOUR_DAYS] {
        let (start, end) = range.bounds(from);
        let at = |unix: i64| common::utc_seconds(DateTime::from_timestamp(unix, 0).unwrap());
        let request = CreateLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: Mode::Public.stream(),
            oss_endpoint: PLAYLIST_ENDPOINT.into(),
            oss_bucket: PLAYLIST_BUCKET.into(),
            oss_object: format!("bench/{}.m3u8", range.segments),
            start_time: at(start),
            end_time: at(end),
            ..Default::default()
        };
        let mut create = async || {
            let started = Instant::now();
            let response = client
                .create_live_stream_record_index_files(common::with_key(API_KEY, request.clone()))
                .await
                .expect("create");
            let trip = started.elapsed();
            let id = response
                .metadata()
                .get("x-request-id")
                .expect("x-request-id")
                .to_str()
                .unwrap()
                .to_string();
            let info = response.into_inner().record_info.unwrap();
            assert_eq!(info.duration, (range.segments * SEGMENT_SECONDS) as f64);
            (id, trip)
        };
        for _ in 0..range.creates.div_ceil(10) {
            create().await;
        }
        let (mut ids, mut trips) = (Vec::new(), Vec::new());
        for _ in 0..range.creates {
            let (id, trip) = create().await;
            ids.push(id);
            trips.push(trip);
        }
        let times = server_times(log, &ids);
        let mut server: Vec<Duration> = ids.iter().map(|id| times[id]).collect();
        let written = std::fs::metadata(objects.join(PLAYLIST_BUCKET).join(&request.oss_object))
            .expect("the playlist Create wrote")
            .len();
        let p50 = percentile(&mut server, 0.5);
        println!(
            "  {:<7} {:>8}  {:>14}   {:>7.3} ms   {:>7.3} ms   {:>11.3} ms   {:>7.3} ms",
            range.label,
            range.segments,
            written,
            ms(p50),
            ms(percentile(&mut server, 0.99)),
            ms(percentile(&mut trips, 0.5)),
            ms(percentile(&mut trips, 0.99)),
        );
        medians.push((range, p50));
    }
    medians
}

async fn run() {
    let (busy_before, total_before) = machine_seconds();
    let bench_before = cpu_seconds(std::process::id());
    println!(
        "machine: {} cores, load average {} at the start",
        std::thread::available_parallelism().unwrap(),
        load_average()
    );
    let (server, log) = common::Server::start_with_env_quietly(
        &config(),
        &[
            ("BENCH_PLAYBACK_KEY", PLAYBACK_KEY),
            ("RECORD_INDEX_LOG_FORMAT", "json"),
        ],
    )
    .await;
    let addr = server.playback_addr().await;
    let mut client = server.client().await;
    // The recording ends two hours ago: every range is closed and in the
    // past, and 4 days fit Create's window.
    let from = common::recording_start(Duration::from_secs(
        (RECORDED * SEGMENT_SECONDS) as u64 + 2 * 3600,
    ));
    let started = Instant::now();
    register(&mut client, from).await;
    println!(
        "catalog (sled): 2 streams of {RECORDED} segments of {SEGMENT_SECONDS} s (4 days each), registered over gRPC in {:.1} s; server: `record-index serve`, pid {}, its own process",
        started.elapsed().as_secs_f64(),
        server.pid()
    );
    let playback = one_at_a_time(addr, &log, from).await;
    throughput(addr, server.pid(), from).await;
    // The local store's root: one directory a bucket.
    let objects = server.data_dir.join("objects");
    let created = creates(&mut client, &log, &objects, from).await;

    println!("server time p50, made per request against Create:");
    for (range, create) in created {
        let made = |mode: Mode| {
            playback
                .iter()
                .find(|(r, m, _)| r.segments == range.segments && *m == mode)
                .map(|(_, _, p50)| *p50)
                .unwrap()
        };
        let (presigned, public) = (made(Mode::Presigned), made(Mode::Public));
        println!(
            "  {:<7} presigned {:>8.3} ms, public {:>8.3} ms, Create {:>8.3} ms: presigned / Create {:.2}, public / Create {:.2}",
            range.label,
            ms(presigned),
            ms(public),
            ms(create),
            presigned.as_secs_f64() / create.as_secs_f64(),
            public.as_secs_f64() / create.as_secs_f64(),
        );
    }
    let hour = playback
        .iter()
        .find(|(r, m, _)| r.segments == HOUR.segments && *m == Mode::Presigned)
        .map(|(_, _, p50)| *p50)
        .unwrap();
    let verdict = if hour <= Duration::from_millis(1) {
        "HOLDS"
    } else {
        "MISSED"
    };
    println!(
        "target: a 1-hour playlist, presigning included, in <= 1 ms of server time at p50: {:.3} ms, {verdict}",
        ms(hour)
    );
    let (busy, total) = machine_seconds();
    // The server started after the first reading: all its CPU is the run's.
    let ours = cpu_seconds(server.pid()) + cpu_seconds(std::process::id()) - bench_before;
    println!(
        "machine during the run: {:.1} of {:.1} CPU seconds busy, {:.1} of them in other processes than the server and the bench; load average {} at the end",
        busy - busy_before,
        total - total_before,
        (busy - busy_before - ours).max(0.0),
        load_average()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("playback bench: pass --bench (cargo bench) to measure");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
