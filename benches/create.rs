//! The core of Create: select + render of 100,000 segments through the
//! catalog contract (pages of the embedded engine, each read off the async
//! runtime), against a bare scan of the same catalog keys (the cost of
//! reading them at all), measured in the same run.
//! Create end to end, with a large catalog, is in
//! `benches/scale.rs`.
//!
//! Run with `cargo bench --bench create`.

use std::time::{Duration, Instant};

use record_index::catalog::sled_engine::{SledCatalog, SledEngine};
use record_index::catalog::{Catalog, StreamName};
use record_index::manifest::selection::Selection;
use record_index::manifest::{Format, Segment, playlist, uri};

const SEGMENTS: i64 = 100_000;
const SEGMENT_MICROS: i64 = 2_000_000;
const ROUNDS: usize = 15;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn select_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SledCatalog::open(dir.path(), 256 << 20).unwrap();
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
    catalog.flush().unwrap();
    let stream_id = catalog.stream(&name).unwrap().unwrap().id;
    let engine = SledEngine::new(catalog);
    let contract: &dyn Catalog = &engine;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (start, end) = (first, first + SEGMENTS * SEGMENT_MICROS);
    let playlist_key = "live/bench/index/clip.m3u8";

    let mut baseline = Vec::new();
    let mut measured = Vec::new();
    let mut bytes = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut count = 0usize;
        engine
            .sled()
            .visit_by_end(stream_id, start, end, now, |_| count += 1)
            .unwrap();
        baseline.push(started.elapsed());
        assert_eq!(count as i64, SEGMENTS);

        let started = Instant::now();
        let selection = Selection::new(start, end, false, 100_000);
        let selection = runtime
            .block_on(contract.scan_all(stream_id, start, end, now, selection))
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

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("create bench: pass --bench (cargo bench) to measure");
        return;
    }
    select_and_render();
}
