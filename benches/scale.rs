//! The service with a large catalog, each figure next to a baseline
//! measured in the same run:
//! 1. durable ingest through RegisterLiveStreamRecordSegments (batches of
//!    1,000, acknowledged only once flushed), against raw sled batch inserts
//!    of the same records, one key per segment, flushed per batch;
//! 2. RSS of the server and catalog bytes on disk per segment, with every
//!    segment catalogued;
//! 3. Create of a 1-hour playlist (600 segments of 6 s) into SeaweedFS,
//!    against a raw PUT of the same playlist bytes to the same bucket.
//!
//! Run with `cargo bench --bench scale`; `SCALE_SEGMENTS` sets the catalog
//! size (default 10,000,000: 1,000 cameras of 10,000 segments each, about
//! 17 hours of recording each).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordIndexFileRequest,
    RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use rusoto_core::{HttpClient, Region};
use rusoto_credential::StaticProvider;
use rusoto_s3::{PutObjectRequest, S3, S3Client};
use tonic::transport::Channel;

const PER_STREAM: usize = 10_000;
const BATCH: usize = 1_000;
const SEGMENT_SECONDS: i64 = 6;
const INGEST_CLIENTS: usize = 4;
const CREATE_CALLS: usize = 200;
const HOUR_SEGMENTS: i64 = 600;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where the cameras' recordings start: 10,000 segments of 6 s end an
/// hour before now.
/// Taken once, so every segment of a camera follows the one before.
fn recording_start() -> chrono::DateTime<chrono::Utc> {
    static START: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        common::recording_start(Duration::from_secs(
            (PER_STREAM as i64 * SEGMENT_SECONDS + 3600) as u64,
        ))
    })
}

fn segment(endpoint: &str, bucket: &str, camera: usize, index: usize) -> Segment {
    let start = recording_start() + chrono::Duration::seconds(SEGMENT_SECONDS * index as i64);
    Segment {
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: format!("record/live/cam{camera:04}/{index:06}.ts"),
        start_time: common::utc_millis(start),
        duration: SEGMENT_SECONDS as f64,
        sequence: index as i64,
        width: 1920,
        height: 1080,
        format: "ts".into(),
        size: 3_000_000,
    }
}

/// Registers `cameras` x 10,000 segments through the server, a batch of
/// 1,000 per request from a few clients at once; segments per second.
async fn ingest(
    client: &RecordIndexClient<Channel>,
    endpoint: &str,
    bucket: &str,
    cameras: usize,
) -> f64 {
    let batches = cameras * PER_STREAM / BATCH;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..INGEST_CLIENTS {
        let (mut client, next) = (client.clone(), next.clone());
        let (endpoint, bucket) = (endpoint.to_string(), bucket.to_string());
        workers.push(tokio::spawn(async move {
            loop {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                if batch >= batches {
                    return;
                }
                let camera = batch / (PER_STREAM / BATCH);
                let first = batch % (PER_STREAM / BATCH) * BATCH;
                let segments = (first..first + BATCH)
                    .map(|index| segment(&endpoint, &bucket, camera, index))
                    .collect();
                let answer = client
                    .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
                        domain_name: "example.com".into(),
                        app_name: "live".into(),
                        stream_name: format!("cam{camera:04}"),
                        segments,
                        client_token: String::new(),
                    })
                    .await
                    .expect("register")
                    .into_inner();
                assert_eq!(answer.accepted as usize, BATCH);
                if batch % 1000 == 999 {
                    eprintln!("  ... {} segments registered", (batch + 1) * BATCH);
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    (batches * BATCH) as f64 / started.elapsed().as_secs_f64()
}

/// The same records straight into sled: one key (camera, start) per
/// segment, its fields encoded plainly, a batch of 1,000 applied and
/// flushed at a time; segments per second.
fn raw_sled(dir: &Path, cameras: usize) -> f64 {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(64 << 20)
        .mode(sled::Mode::LowSpace)
        .open()
        .unwrap();
    let start = recording_start().timestamp_micros();
    let started = Instant::now();
    for camera in 0..cameras {
        for first in (0..PER_STREAM).step_by(BATCH) {
            let mut batch = sled::Batch::default();
            for index in first..first + BATCH {
                let at = start + index as i64 * SEGMENT_SECONDS * 1_000_000;
                let mut key = Vec::with_capacity(16);
                key.extend_from_slice(&(camera as u64).to_be_bytes());
                key.extend_from_slice(&(at as u64).to_be_bytes());
                let object = format!("record/live/cam{camera:04}/{index:06}.ts");
                let mut value = Vec::with_capacity(96);
                value.extend_from_slice(&(SEGMENT_SECONDS * 1_000_000).to_be_bytes());
                value.extend_from_slice(&(index as u64).to_be_bytes());
                value.extend_from_slice(&1920u32.to_be_bytes());
                value.extend_from_slice(&1080u32.to_be_bytes());
                value.extend_from_slice(&3_000_000u64.to_be_bytes());
                value.extend_from_slice(object.as_bytes());
                batch.insert(key, value);
            }
            db.apply_batch(batch).unwrap();
            db.flush().unwrap();
        }
    }
    (cameras * PER_STREAM) as f64 / started.elapsed().as_secs_f64()
}

/// Bytes the files under `dir` take on disk.
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    total
}

/// Resident memory of the process whose command line names `config`.
fn server_rss(config: &Path) -> u64 {
    let needle = config.to_string_lossy().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with(env!("CARGO_BIN_EXE_record-index")) && cmdline.contains(&needle) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap();
            let kb: u64 = status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
                .expect("VmRSS in /proc/PID/status");
            return kb * 1024;
        }
    }
    panic!("no record-index process with {needle} on its command line");
}

async fn create_against_put(
    client: &mut RecordIndexClient<Channel>,
    weed: &common::SeaweedFs,
    endpoint: &str,
    bucket: &str,
) {
    // The last hour of camera 0's recording.
    let from = recording_start()
        + chrono::Duration::seconds(SEGMENT_SECONDS * (PER_STREAM as i64 - HOUR_SEGMENTS));
    let request = CreateLiveStreamRecordIndexFilesRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "cam0000".into(),
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: "record/live/cam0000/hour.m3u8".into(),
        start_time: common::utc_seconds(from),
        end_time: common::utc_seconds(
            from + chrono::Duration::seconds(SEGMENT_SECONDS * HOUR_SEGMENTS),
        ),
        ..Default::default()
    };
    let first = client
        .create_live_stream_record_index_files(request.clone())
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let body = weed.get_object(bucket, &first.oss_object).await.body;
    let entries = String::from_utf8_lossy(&body).matches("#EXTINF").count();
    assert_eq!(entries as i64, HOUR_SEGMENTS, "the hour's playlist");

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let s3 = S3Client::new_with(
        HttpClient::from_connector(connector),
        StaticProvider::new_minimal("bench".into(), "bench".into()),
        Region::Custom {
            name: "us-east-1".into(),
            endpoint: weed.url(),
        },
    );
    let put = || PutObjectRequest {
        bucket: bucket.into(),
        key: "record/live/cam0000/raw.m3u8".into(),
        body: Some(body.to_vec().into()),
        content_type: Some("application/vnd.apple.mpegurl".into()),
        ..Default::default()
    };
    for _ in 0..20 {
        client
            .create_live_stream_record_index_files(request.clone())
            .await
            .unwrap();
        s3.put_object(put()).await.unwrap();
    }
    // What any RPC costs here, whatever it does: a DescribeFile of the
    // manifest just created (one catalog read).
    let describe = DescribeLiveStreamRecordIndexFileRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "cam0000".into(),
        record_id: first.record_id.clone(),
    };
    // Alternated, so drift of the machine hits all three alike.
    let (mut creates, mut puts, mut describes) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CREATE_CALLS {
        let started = Instant::now();
        client
            .describe_live_stream_record_index_file(describe.clone())
            .await
            .unwrap();
        describes.push(started.elapsed());
        let started = Instant::now();
        client
            .create_live_stream_record_index_files(request.clone())
            .await
            .unwrap();
        creates.push(started.elapsed());
        let started = Instant::now();
        s3.put_object(put()).await.unwrap();
        puts.push(started.elapsed());
    }
    let (create, put) = (percentile(&mut creates, 0.5), percentile(&mut puts, 0.5));
    println!(
        "Create of a 1-hour playlist ({HOUR_SEGMENTS} segments, {} bytes) into SeaweedFS, {CREATE_CALLS} calls each",
        body.len()
    );
    println!(
        "  baseline: raw PUT of the same bytes (rusoto_s3)  p50 {:7.2} ms  p99 {:7.2} ms",
        ms(put),
        ms(percentile(&mut puts, 0.99))
    );
    println!(
        "  Create through gRPC                              p50 {:7.2} ms  p99 {:7.2} ms",
        ms(create),
        ms(percentile(&mut creates, 0.99))
    );
    println!(
        "  ratio Create / PUT: p50 {:.2}, p99 {:.2}  (target <= 1.15)",
        create.as_secs_f64() / put.as_secs_f64(),
        percentile(&mut creates, 0.99).as_secs_f64() / percentile(&mut puts, 0.99).as_secs_f64()
    );
    let floor = percentile(&mut describes, 0.5);
    println!(
        "  floor: a DescribeFile round trip over gRPC      p50 {:7.2} ms; Create - PUT - floor = {:.2} ms (select, render, flush)",
        ms(floor),
        ms(create) - ms(put) - ms(floor)
    );
}

async fn run(total: usize) {
    let cameras = total.div_ceil(PER_STREAM).max(1);
    let total = cameras * PER_STREAM;
    let weed = common::seaweedfs();
    let bucket = weed.create_bucket().await;
    let endpoint = weed.endpoint_name(common::Addressing::Path);
    let server = common::Server::start(&format!(
        "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000000\n\
         RegisterLiveStreamRecordSegments = 1000000\n\
         DescribeLiveStreamRecordIndexFile = 1000000\n\n{}",
        weed.endpoint_toml(common::Addressing::Path)
    ))
    .await;
    let mut client = server.client().await;

    println!("durable ingest of {total} segments ({cameras} cameras), batches of {BATCH}");
    let ours = ingest(&client, &endpoint, &bucket, cameras).await;
    // The baseline on at most 1,000,000 segments: its rate does not depend
    // on the count, and it would double the run.
    let raw_cameras = cameras.min(100);
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = tokio::task::spawn_blocking({
        let path = raw_dir.path().to_path_buf();
        move || raw_sled(&path, raw_cameras)
    })
    .await
    .unwrap();
    println!(
        "  baseline: raw sled batches, one key per segment, flushed per batch ({} segments)  {raw:>10.0} segments/s",
        raw_cameras * PER_STREAM
    );
    println!(
        "  RegisterLiveStreamRecordSegments over gRPC, {INGEST_CLIENTS} clients          {ours:>10.0} segments/s  ({:.2} of raw; target >= 100,000/s and >= 0.5)",
        ours / raw
    );
    println!(
        "  raw sled on disk: {:.0} B/segment",
        disk_bytes(raw_dir.path()) as f64 / (raw_cameras * PER_STREAM) as f64
    );
    drop(raw_dir);

    create_against_put(&mut client, weed, &endpoint, &bucket).await;

    let config = server.workdir.join("record-index.toml");
    let rss = server_rss(&config);
    let disk = disk_bytes(&server.data_dir.join("catalog"));
    println!("with {total} segments catalogued");
    println!(
        "  after the ingest and the Creates: server RSS {:.1} MB; catalog on disk {:.1} MB, {:.1} B/segment",
        rss as f64 / 1e6,
        disk as f64 / 1e6,
        disk as f64 / total as f64
    );
    // What a server holding this catalog needs, rather than what the ingest
    // left behind: a fresh process on the same data, after an hour's Create.
    let mut server = server;
    drop(client);
    let (code, _) = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, 0, "exit code after SIGTERM");
    server.start_again().await;
    let mut client = server.client().await;
    create_against_put(&mut client, weed, &endpoint, &bucket).await;
    let rss = server_rss(&config);
    let disk = disk_bytes(&server.data_dir.join("catalog"));
    println!(
        "  restarted, after the Creates: server RSS {:.1} MB (target <= 150 MB); catalog on disk {:.1} MB, {:.1} B/segment (target <= 200)",
        rss as f64 / 1e6,
        disk as f64 / 1e6,
        disk as f64 / total as f64
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("scale bench: pass --bench (cargo bench) to measure");
        return;
    }
    let total = std::env::var("SCALE_SEGMENTS")
        .ok()
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(10_000_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(total));
}
