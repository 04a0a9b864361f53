//! How the service behaves for the people who run it, checked on the real
//! binary: Prometheus metrics, one log line per request, graceful shutdown
//! with a request in flight, client deadlines that cancel object-storage
//! work, and size limits. Object storage is SeaweedFS behind a proxy that
//! holds each request for as long as a test asks, standing in for a slow or
//! stuck store.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DeleteLiveStreamRecordIndexFilesRequest,
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest, Segment,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const SEGMENT_SECONDS: f64 = 6.0;

// ---------------------------------------------------------------------------
// A slow object store: SeaweedFS behind a delaying proxy
// ---------------------------------------------------------------------------

/// A TCP proxy that holds every chunk a client sends for `delay` before
/// passing it on. A client that goes away while its bytes are held never
/// reaches the store, so a request the service abandons writes nothing.
struct DelayProxy {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    async fn start(upstream: SocketAddr) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, delay.clone()));
            }
        });
        DelayProxy {
            addr,
            delay_ms,
            accepting,
        }
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The `[[endpoints]]` entry naming this proxy as an S3 endpoint.
    fn endpoint_toml(&self, request_timeout_secs: f64) -> String {
        format!(
            "[[endpoints]]\nname = \"{0}\"\nkind = \"s3\"\nurl = \"http://{0}\"\n\
             access_key_id_env = \"TEST_S3_KEY\"\nsecret_access_key_env = \"TEST_S3_SECRET\"\n\
             request_timeout_secs = {request_timeout_secs}\nmax_attempts = 1\n",
            self.addr
        )
    }

    fn endpoint_name(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, delay_ms: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut held = buf[..n].to_vec();
        let sleep = tokio::time::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst)));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                read = client_read.read(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        // The client gave up: its request never arrives.
                        back.abort();
                        return;
                    }
                    Ok(n) => held.extend_from_slice(&buf[..n]),
                },
            }
        }
        if server_write.write_all(&held).await.is_err() {
            break;
        }
    }
    let _ = server_write.shutdown().await;
    let _ = back.await;
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Five 6-second segments of `stream`, recorded from `start`.
fn segments(endpoint: &str, bucket: &str, stream: &str, start: DateTime<Utc>) -> Vec<Segment> {
    (0..5)
        .map(|i| Segment {
            oss_endpoint: endpoint.to_string(),
            oss_bucket: bucket.to_string(),
            oss_object: format!("rec/{stream}/{i:03}.ts"),
            start_time: utc_millis(
                start + chrono::Duration::milliseconds((SEGMENT_SECONDS * 1000.0) as i64 * i),
            ),
            duration: SEGMENT_SECONDS,
            sequence: i,
            width: 640,
            height: 360,
            format: "ts".into(),
            size: 1000,
        })
        .collect()
}

/// A Create covering the five segments of [`segments`].
fn create_request(
    endpoint: &str,
    bucket: &str,
    stream: &str,
    start: DateTime<Utc>,
) -> CreateLiveStreamRecordIndexFilesRequest {
    CreateLiveStreamRecordIndexFilesRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: format!("vod/{stream}.m3u8"),
        start_time: utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: utc_seconds(start + chrono::Duration::seconds(31)),
        ..Default::default()
    }
}

/// The manifests the catalog holds for `stream` around `start`.
fn list_request(stream: &str, start: DateTime<Utc>) -> DescribeLiveStreamRecordIndexFilesRequest {
    DescribeLiveStreamRecordIndexFilesRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        start_time: utc_seconds(start - chrono::Duration::hours(1)),
        end_time: utc_seconds(start + chrono::Duration::hours(1)),
        ..Default::default()
    }
}

/// A stream name of its own and a start ten minutes ago.
fn recording(prefix: &str) -> (String, DateTime<Utc>) {
    (
        unique_name(prefix),
        recording_start(Duration::from_secs(600)),
    )
}

// ---------------------------------------------------------------------------
// Graceful shutdown and deadlines
// ---------------------------------------------------------------------------

/// A stream registered with a server whose object store is SeaweedFS
/// behind a [`DelayProxy`] (no delay yet): `config` is the server's config
/// before the proxy's endpoint, `request_timeout_secs` the endpoint's.
struct SlowStore {
    seaweed: &'static SeaweedFs,
    bucket: String,
    proxy: DelayProxy,
    server: Server,
    client: record_index::proto::record_index_client::RecordIndexClient<tonic::transport::Channel>,
    endpoint: String,
    stream: String,
    start: DateTime<Utc>,
}

impl SlowStore {
    async fn start(config: &str, request_timeout_secs: f64, stream_prefix: &str) -> SlowStore {
        let seaweed = seaweedfs();
        let bucket = seaweed.create_bucket().await;
        let proxy = DelayProxy::start(SocketAddr::from(([127, 0, 0, 1], seaweed.s3_port))).await;
        let server = Server::start(&format!(
            "{config}\n{}",
            proxy.endpoint_toml(request_timeout_secs)
        ))
        .await;
        let endpoint = proxy.endpoint_name();
        let (stream, start) = recording(stream_prefix);
        let mut client = server.client().await;
        client
            .register_live_stream_record_segments(register_request(
                &stream,
                segments(&endpoint, &bucket, &stream, start),
            ))
            .await
            .expect("register");
        SlowStore {
            seaweed,
            bucket,
            proxy,
            server,
            client,
            endpoint,
            stream,
            start,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_create_completes_during_shutdown() {
    let SlowStore {
        seaweed,
        bucket,
        proxy,
        mut server,
        mut client,
        endpoint,
        stream,
        start,
    } = SlowStore::start("shutdown_grace_secs = 15", 30.0, "drain").await;

    // The playlist's PUT takes 3 s to reach the store; SIGTERM comes while
    // it is held.
    proxy.set_delay(Duration::from_secs(3));
    let request = create_request(&endpoint, &bucket, &stream, start);
    let create =
        tokio::spawn(async move { client.create_live_stream_record_index_files(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, took) = tokio::task::block_in_place(|| server.terminate());
    let created = create
        .await
        .unwrap()
        .expect("the Create in flight at SIGTERM completes")
        .into_inner();
    assert_eq!(code, 0, "exit code after SIGTERM");
    assert!(
        took >= Duration::from_secs(2),
        "the server exited {took:?} after SIGTERM, before its in-flight Create finished"
    );
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");

    let info = created.record_info.expect("RecordInfo");
    let playlist = seaweed.get_object(&bucket, &info.oss_object).await;
    assert_eq!(playlist.status, 200, "the playlist is in object storage");
    assert!(
        playlist.text().contains("#EXT-X-ENDLIST"),
        "{}",
        playlist.text()
    );

    // The acknowledged manifest was flushed before exit.
    proxy.set_delay(Duration::ZERO);
    server.start_again().await;
    let described = server
        .client()
        .await
        .describe_live_stream_record_index_file(DescribeLiveStreamRecordIndexFileRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.clone(),
            record_id: info.record_id.clone(),
        })
        .await
        .expect("the manifest survives the restart")
        .into_inner();
    assert_eq!(described.record_index_info, Some(info));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_bounds_a_stuck_request_and_nothing_half_written_remains() {
    let SlowStore {
        seaweed,
        bucket,
        proxy,
        mut server,
        client,
        endpoint,
        stream,
        start,
    } = SlowStore::start("shutdown_grace_secs = 1", 60.0, "stuck").await;
    let mut client = client;

    proxy.set_delay(Duration::from_secs(30));
    let request = create_request(&endpoint, &bucket, &stream, start);
    let create =
        tokio::spawn(async move { client.create_live_stream_record_index_files(request).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, took) = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, 0, "exit code after SIGTERM");
    assert!(
        took < Duration::from_secs(6),
        "a stuck request held shutdown for {took:?} with shutdown_grace_secs = 1"
    );
    let abandoned = create.await.unwrap();
    assert!(abandoned.is_err(), "the stuck Create got {abandoned:?}");

    proxy.set_delay(Duration::ZERO);
    let object = format!("vod/{stream}.m3u8");
    assert_eq!(
        seaweed.get_object(&bucket, &object).await.status,
        404,
        "the abandoned playlist write reached object storage"
    );
    server.start_again().await;
    let mut client = server.client().await;
    let listed = client
        .describe_live_stream_record_index_files(list_request(&stream, start))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.total_num, 0,
        "a manifest without a playlist: {listed:?}"
    );
    // The same Create works once the store answers again.
    client
        .create_live_stream_record_index_files(create_request(&endpoint, &bucket, &stream, start))
        .await
        .expect("Create after restart");
}

#[tokio::test]
async fn a_client_deadline_is_answered_in_time_and_cancels_the_write() {
    let SlowStore {
        seaweed,
        bucket,
        proxy,
        server: _server,
        mut client,
        endpoint,
        stream,
        start,
    } = SlowStore::start("", 60.0, "deadline").await;

    proxy.set_delay(Duration::from_secs(3));
    let mut request = tonic::Request::new(create_request(&endpoint, &bucket, &stream, start));
    request.set_timeout(Duration::from_millis(800));
    let sent = Instant::now();
    let status = client
        .create_live_stream_record_index_files(request)
        .await
        .expect_err("the store is slower than the deadline");
    let waited = sent.elapsed();
    // The service's own answer, with a request id, not the client's
    // DEADLINE_EXCEEDED.
    assert_error(&status, Code::Unavailable, "InternalError");
    assert!(
        status.message().contains("deadline"),
        "{}",
        status.message()
    );
    assert!(
        waited < Duration::from_millis(800),
        "answered after {waited:?}, past the 800 ms deadline"
    );

    // Had the write gone on, the store would have it after the 3 s hold.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        seaweed
            .get_object(&bucket, &format!("vod/{stream}.m3u8"))
            .await
            .status,
        404,
        "the write of an abandoned request reached object storage"
    );
    let listed = client
        .describe_live_stream_record_index_files(list_request(&stream, start))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_num, 0, "{listed:?}");

    // A deadline the store can meet changes nothing.
    proxy.set_delay(Duration::ZERO);
    let mut request = tonic::Request::new(create_request(&endpoint, &bucket, &stream, start));
    request.set_timeout(Duration::from_secs(10));
    client
        .create_live_stream_record_index_files(request)
        .await
        .expect("Create within its deadline");
}

// ---------------------------------------------------------------------------
// Size limits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn oversized_requests_and_batches_are_invalid_params_and_change_nothing() {
    let server = Server::start("max_message_bytes = 4096\nmax_register_batch = 5\n").await;
    let mut client = server.client().await;
    let (stream, start) = recording("sizes");

    let mut six = segments("localhost", "size-bucket", &stream, start);
    six.push(Segment {
        oss_object: format!("rec/{stream}/005.ts"),
        start_time: utc_millis(start + chrono::Duration::seconds(30)),
        sequence: 5,
        ..six[0].clone()
    });
    let status = client
        .register_live_stream_record_segments(register_request(&stream, six))
        .await
        .expect_err("six segments with max_register_batch = 5");
    assert_error(&status, Code::InvalidArgument, "InvalidParams");
    assert!(
        status.message().contains("max_register_batch") && status.message().contains('6'),
        "{}",
        status.message()
    );

    let long_keys: Vec<Segment> = segments("localhost", "size-bucket", &stream, start)
        .into_iter()
        .map(|segment| Segment {
            oss_object: format!("{}/{}", "k".repeat(900), segment.oss_object),
            ..segment
        })
        .collect();
    let status = client
        .register_live_stream_record_segments(register_request(&stream, long_keys))
        .await
        .expect_err("a message over max_message_bytes");
    assert_error(&status, Code::InvalidArgument, "InvalidParams");
    assert!(
        status.message().contains("too large") && status.message().contains("max_message_bytes"),
        "{}",
        status.message()
    );

    // Neither request registered anything.
    let status = client
        .create_live_stream_record_index_files(create_request(
            "localhost",
            "size-bucket",
            &stream,
            start,
        ))
        .await
        .expect_err("no segment was registered");
    assert_error(&status, Code::NotFound, "InvalidStream.NotFound");

    // Within both limits the same stream registers.
    let answer = client
        .register_live_stream_record_segments(register_request(
            &stream,
            segments("localhost", "size-bucket", &stream, start),
        ))
        .await
        .expect("five short segments")
        .into_inner();
    assert_eq!(answer.accepted, 5);
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// One sample of a scrape: metric name, labels, value.
type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

fn parse_scrape(text: &str) -> Samples {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                let labels = rest
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) =
                            pair.split_once("=\"").unwrap_or_else(|| panic!("{line:?}"));
                        (key.to_string(), value.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        samples.push((name, labels, value));
    }
    samples
}

/// The value of the one sample of `name` whose labels include `labels`,
/// summed over the others it has; 0 when there is none.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(sample, sample_labels, _)| {
            sample == name
                && labels
                    .iter()
                    .all(|(key, value)| sample_labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, _, value)| value)
        .sum()
}

async fn scrape(addr: SocketAddr) -> (String, Samples) {
    let response = http_get(&format!("http://{addr}/metrics")).await;
    assert_eq!(response.status, 200, "GET /metrics: {}", response.text());
    let text = response.text();
    let samples = parse_scrape(&text);
    (text, samples)
}

#[tokio::test]
async fn metrics_count_requests_codes_throttling_storage_and_records() {
    let [port] = free_ports::<1>();
    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server::start(&format!(
        "sweep_interval_secs = 0.2\n\
         rate_limits = {{ DescribeLiveStreamRecordIndexFiles = 1 }}\n\n\
         [metrics]\nlisten = \"{metrics}\"\n"
    ))
    .await;
    let mut client = server.client().await;
    let (stream, start) = recording("metrics");
    let bucket = "metrics-bucket";

    client
        .register_live_stream_record_segments(register_request(
            &stream,
            segments("localhost", bucket, &stream, start),
        ))
        .await
        .expect("register");
    let created = client
        .create_live_stream_record_index_files(create_request("localhost", bucket, &stream, start))
        .await
        .expect("create")
        .into_inner();
    let mut malformed = create_request("localhost", bucket, &stream, start);
    malformed.start_time = "yesterday".into();
    client
        .create_live_stream_record_index_files(malformed)
        .await
        .expect_err("malformed StartTime");
    // Without Duration the segment is probed: its object does not exist.
    let mut unprobeable = segments("localhost", bucket, &stream, start)[0].clone();
    unprobeable.oss_object = format!("rec/{stream}/missing.ts");
    unprobeable.duration = 0.0;
    client
        .register_live_stream_record_segments(register_request(&stream, vec![unprobeable]))
        .await
        .expect_err("a missing object cannot be probed");
    // DescribeFiles is limited to 1/s here: of three at once, some are refused.
    let mut throttled = 0.0;
    for _ in 0..3 {
        if let Err(status) = client
            .describe_live_stream_record_index_files(list_request(&stream, start))
            .await
        {
            assert_error(&status, Code::ResourceExhausted, "Throttling.User");
            throttled += 1.0;
        }
    }
    assert!(
        throttled >= 1.0,
        "none of three DescribeFiles at 1/s refused"
    );
    // A sweep runs every 0.2 s.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let (text, samples) = scrape(metrics).await;
    let requests = "record_index_requests_total";
    let create = "CreateLiveStreamRecordIndexFiles";
    let register = "RegisterLiveStreamRecordSegments";
    let list = "DescribeLiveStreamRecordIndexFiles";
    for (rpc, code, expected) in [
        (create, "OK", 1.0),
        (create, "InvalidStartTime.Malformed", 1.0),
        (register, "OK", 1.0),
        (register, "InvalidParams", 1.0),
        (list, "Throttling.User", throttled),
        (list, "OK", 3.0 - throttled),
    ] {
        assert_eq!(
            value(&samples, requests, &[("rpc", rpc), ("code", code)]),
            expected,
            "{requests}{{rpc={rpc},code={code}}}:\n{text}"
        );
    }
    assert_eq!(
        value(
            &samples,
            "record_index_rate_limited_total",
            &[("account", "local"), ("rpc", list)]
        ),
        throttled,
        "{text}"
    );
    let latency = "record_index_request_duration_seconds";
    assert_eq!(
        value(&samples, &format!("{latency}_count"), &[("rpc", create)]),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            &format!("{latency}_bucket"),
            &[("rpc", create), ("le", "+Inf")]
        ),
        2.0,
        "{text}"
    );
    assert!(
        value(
            &samples,
            &format!("{latency}_bucket"),
            &[("rpc", create), ("le", "1")]
        ) == 2.0,
        "a local Create took over a second:\n{text}"
    );
    let store = "record_index_object_store_request_duration_seconds_count";
    assert!(
        value(
            &samples,
            store,
            &[("endpoint", "localhost"), ("operation", "put")]
        ) >= 1.0,
        "no playlist PUT counted:\n{text}"
    );
    assert!(
        value(
            &samples,
            "record_index_object_store_errors_total",
            &[
                ("endpoint", "localhost"),
                ("operation", "get"),
                ("kind", "not_found")
            ]
        ) >= 1.0,
        "the failed probe read is not counted:\n{text}"
    );
    assert_eq!(
        value(&samples, "record_index_segments_stored", &[]),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(&samples, "record_index_manifests_stored", &[]),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&samples, "record_index_requests_in_flight", &[]),
        0.0,
        "{text}"
    );
    assert_eq!(value(&samples, "record_index_ready", &[]), 1.0, "{text}");
    assert!(
        value(&samples, "record_index_sweeps_total", &[]) >= 1.0,
        "{text}"
    );
    assert!(
        samples.iter().any(
            |(name, labels, _)| name == "record_index_swept_records_total"
                && labels.get("kind").map(String::as_str) == Some("segment")
        ),
        "{text}"
    );
    // Every metric the service documents is exposed, and nothing else.
    for (name, _, _) in record_index::telemetry::ALL {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is not exposed:\n{text}"
        );
    }
    for (name, _, _) in &samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|family| {
                record_index::telemetry::ALL
                    .iter()
                    .any(|(n, _, _)| n == family)
            })
            .unwrap_or(name);
        assert!(
            record_index::telemetry::ALL
                .iter()
                .any(|(n, _, _)| *n == family),
            "{name} is exposed but not documented in telemetry::ALL"
        );
    }

    // Deleting the manifest is seen at the next scrape.
    let record_id = created.record_info.unwrap().record_id;
    client
        .delete_live_stream_record_index_files(DeleteLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.clone(),
            record_id: vec![record_id],
            ..Default::default()
        })
        .await
        .expect("delete");
    let (text, samples) = scrape(metrics).await;
    assert_eq!(
        value(&samples, "record_index_manifests_stored", &[]),
        0.0,
        "{text}"
    );

    let other = http_get(&format!("http://{metrics}/")).await;
    assert_eq!(other.status, 404);
}

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_json_log_line_without_the_key() {
    const KEY: &str = "log-test-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let key = KEY;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("record-index.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n\
             [[accounts]]\nid = \"acct-7\"\ndomains = [\"{DOMAIN}\"]\nbuckets = [\"log-bucket\"]\n\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"*\"] }}]\n",
            dir.path().join("data").display(),
            hex::encode(Sha256::digest(key.as_bytes()))
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("RECORD_INDEX_LISTEN")
        .env_remove("RECORD_INDEX_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("record-index listening on ")
        .unwrap_or_else(|| panic!("first stdout line {first:?}"))
        .to_string();
    let mut client = record_index::proto::record_index_client::RecordIndexClient::connect(format!(
        "http://{addr}"
    ))
    .await
    .unwrap();
    fn with_key<T>(message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        request
    }
    let (stream, start) = recording("logs");
    let registered = client
        .register_live_stream_record_segments(with_key(register_request(
            &stream,
            segments("localhost", "log-bucket", &stream, start),
        )))
        .await
        .expect("register");
    let mut malformed = create_request("localhost", "log-bucket", &stream, start);
    malformed.start_time = "yesterday".into();
    let refused = client
        .create_live_stream_record_index_files(with_key(malformed))
        .await
        .expect_err("malformed StartTime");
    let mut unknown = tonic::Request::new(list_request(&stream, start));
    unknown.metadata_mut().insert(
        "authorization",
        "Bearer not-a-key-of-anyone".parse().unwrap(),
    );
    let unauthenticated = client
        .describe_live_stream_record_index_files(unknown)
        .await
        .expect_err("unknown key");

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let lines = log.join().unwrap();
    let text = lines.join("\n");
    assert!(!text.contains(key), "the API key is in the log:\n{text}");
    assert!(
        !text.contains("Bearer"),
        "an Authorization header is in the log:\n{text}"
    );

    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let requests: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|entry| entry["span"]["name"] == "request")
        .collect();
    assert_eq!(requests.len(), 3, "one line per request:\n{text}");
    let expected = [
        (
            "RegisterLiveStreamRecordSegments",
            request_id(registered.metadata()),
            Some("acct-7"),
            "OK",
        ),
        (
            "CreateLiveStreamRecordIndexFiles",
            request_id(refused.metadata()),
            Some("acct-7"),
            "InvalidStartTime.Malformed",
        ),
        (
            "DescribeLiveStreamRecordIndexFiles",
            request_id(unauthenticated.metadata()),
            None,
            "InvalidAccessKeyId",
        ),
    ];
    for (entry, (rpc, request_id, account, code)) in requests.iter().zip(expected) {
        assert_eq!(entry["span"]["rpc"], rpc, "{entry}");
        assert_eq!(entry["span"]["request_id"], request_id.as_str(), "{entry}");
        assert_eq!(entry["span"]["account"].as_str(), account, "{entry}");
        assert_eq!(entry["span"]["code"], code, "{entry}");
        let latency = entry["span"]["latency_ms"].as_f64();
        assert!(
            latency.is_some_and(|ms| (0.0..5000.0).contains(&ms)),
            "{entry}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|entry| entry["fields"]["message"] == "stopped: catalog flushed"),
        "{text}"
    );
}
