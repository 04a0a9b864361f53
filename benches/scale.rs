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
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Instant;

use support::*;

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
