//! What the benchmarks of the whole service share: the recording every
//! catalog is filled with, its ingest through Register, and a Create of an
//! hour's playlist against a raw PUT of the same bytes. Included by
//! `scale.rs` and `engines.rs` with `#[path]`, next to `tests/common`.

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

pub const PER_STREAM: usize = 10_000;
pub const BATCH: usize = 1_000;
pub const SEGMENT_SECONDS: i64 = 6;
pub const INGEST_CLIENTS: usize = 4;
pub const CREATE_CALLS: usize = 200;
pub const HOUR_SEGMENTS: i64 = 600;

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where the cameras' recordings start: 10,000 segments of 6 s end an
/// hour before now.
/// Taken once, so every segment of a camera follows the one before.
pub fn recording_start() -> chrono::DateTime<chrono::Utc> {
    static START: std::sync::OnceLock<chrono::DateTime<chrono::Utc>> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        crate::common::recording_start(Duration::from_secs(
            (PER_STREAM as i64 * SEGMENT_SECONDS + 3600) as u64,
        ))
    })
}

pub fn segment(endpoint: &str, bucket: &str, camera: usize, index: usize) -> Segment {
    let start = recording_start() + chrono::Duration::seconds(SEGMENT_SECONDS * index as i64);
    Segment {
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: format!("record/live/cam{camera:04}/{index:06}.ts"),
        start_time: crate::common::utc_millis(start),
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
pub async fn ingest(
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

/// Bytes the files under `dir` take on disk.
pub fn disk_bytes(dir: &Path) -> u64 {
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

/// Prints the figures and returns what a Create costs over the PUT (p50).
pub async fn create_against_put(
    client: &mut RecordIndexClient<Channel>,
    weed: &crate::common::SeaweedFs,
    endpoint: &str,
    bucket: &str,
) -> Duration {
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
        start_time: crate::common::utc_seconds(from),
        end_time: crate::common::utc_seconds(
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
    create.saturating_sub(put)
}
