//! The two catalog engines side by side in one run, each figure next to
//! the other engine's and a baseline measured in the same run:
//! 1. durable ingest through RegisterLiveStreamRecordSegments, batches of
//!    1,000 (PostgreSQL with synchronous_commit on);
//! 2. select + render of 100,000 segments through the catalog contract;
//! 3. Create of a 1-hour playlist into SeaweedFS against a raw PUT of the
//!    same bytes;
//! 4. bytes per catalogued segment (PostgreSQL: tables and indexes);
//! 5. a rate-limit decision through Redis against the in-process one.
//!
//! Run with `cargo bench --bench engines`; `ENGINES_SEGMENTS` sets the
//! catalog size (default 1,000,000).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use record_index::admission::{Admission, InProcessLimiter, RedisLimiter, SharedLimits};
use record_index::catalog::postgres::{PgCatalog, PgOptions, SCAN_BLOCKS};
use record_index::catalog::sled_engine::{SledCatalog, SledEngine};
use record_index::catalog::{Catalog, Commit, StreamName};
use record_index::clock::SystemClock;
use record_index::config::Config;
use record_index::manifest::selection::Selection;
use record_index::manifest::{Format, Segment, playlist, uri};
use record_index::operations::Operation;
use support::*;

const URL_ENV: &str = "ENGINES_BENCH_DATABASE_URL";
const SELECT_SEGMENTS: i64 = 100_000;
const ROUNDS: usize = 9;
const ADMITS: usize = 20_000;

/// Bytes PostgreSQL holds for the catalog's segments: every partition of
/// `segment_blocks` and `segment_keys`, with their indexes and TOAST.
async fn postgres_bytes(url: &str) -> u64 {
    let client = common::connect_url(url).await;
    let row = client
        .query_one(
            "SELECT ((SELECT COALESCE(SUM(pg_total_relation_size(i.inhrelid)), 0)
                     FROM pg_inherits i WHERE i.inhparent = 'segment_blocks'::regclass)
                  + pg_total_relation_size('segment_keys'))::bigint",
            &[],
        )
        .await
        .unwrap();
    let bytes: i64 = row.get::<_, Option<i64>>(0).unwrap_or_default();
    bytes as u64
}

/// The plan of one camera's one-hour scan, as the engine sends it.
async fn explain_scan(url: &str) {
    let client = common::connect_url(url).await;
    let stream: i64 = client
        .query_one("SELECT id FROM streams WHERE stream = 'cam0000'", &[])
        .await
        .unwrap()
        .get(0);
    let from = recording_start().timestamp_micros() + 3_600_000_000;
    let until = from + 3_600_000_000;
    let now = chrono::Utc::now().timestamp_micros();
    let live_after = now - 90 * 86_400_000_000;
    let minute = |at: i64| at.div_euclid(60_000_000) * 60_000_000;
    let sql =
        format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {SCAN_BLOCKS}");
    let rows = client
        .query(
            &sql,
            &[
                &stream,
                &minute(from),
                &minute(until),
                &live_after,
                &1000i64,
            ],
        )
        .await
        .unwrap();
    println!("plan of a one-hour scan of cam0000 (stream {stream}, {from}..{until}):");
    for row in rows {
        println!("  {}", row.get::<_, String>(0));
    }
}

fn limits_toml() -> &'static str {
    "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000000\n\
     RegisterLiveStreamRecordSegments = 1000000\n\
     DescribeLiveStreamRecordIndexFile = 1000000\n\n"
}

/// One engine through the service: ingest, then an hour's Create against
/// a raw PUT; segments per second and the Create's overhead over the PUT.
async fn through_the_service(
    engine: &str,
    url: &str,
    weed: &common::SeaweedFs,
    cameras: usize,
) -> (f64, Duration, std::path::PathBuf, common::Server) {
    let bucket = weed.create_bucket().await;
    let endpoint = weed.endpoint_name(common::Addressing::Path);
    let toml = format!(
        "{}[catalog]\nengine = \"{engine}\"\nurl_env = \"{URL_ENV}\"\npool_size = 8\n\n{}",
        limits_toml(),
        weed.endpoint_toml(common::Addressing::Path)
    );
    let (server, _log) = common::Server::start_with_env(&toml, &[(URL_ENV, url)]).await;
    let mut client = server.client().await;
    let rate = ingest(&client, &endpoint, &bucket, cameras).await;
    let overhead = create_against_put(&mut client, weed, &endpoint, &bucket).await;
    let catalog_dir = server.data_dir.join("catalog");
    (rate, overhead, catalog_dir, server)
}

fn bench_segments(first: i64) -> Vec<Segment> {
    (0..SELECT_SEGMENTS)
        .map(|i| Segment {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: "live-bucket".into(),
            object: format!("live/bench/{}.ts", 1_700_000_000 + i * 2),
            start: first + i * 2_000_000,
            duration: 2_000_000,
            sequence: i,
            width: 1280,
            height: 720,
            format: Format::Ts,
            size: 500_000,
            media: None,
        })
        .collect()
}

/// Median select + render of 100,000 segments of one stream through the
/// contract, as a Create does it.
async fn select_and_render(catalog: &dyn Catalog) -> Duration {
    let now = chrono::Utc::now().timestamp_micros();
    let first = now - 3 * 86_400_000_000;
    let name = StreamName {
        domain: "example.com".into(),
        app: "live".into(),
        stream: "select-bench".into(),
    };
    for batch in bench_segments(first).chunks(1000) {
        let commit = catalog.register(&name, batch.to_vec(), now, None).await;
        assert!(matches!(commit, Ok(Commit::Done(_))));
    }
    let stream = catalog.stream(&name).await.unwrap().unwrap();
    let (start, end) = (first, first + SELECT_SEGMENTS * 2_000_000);
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let selection = Selection::new(start, end, false, 100_000);
        let selection = catalog
            .scan_all(stream.id, start, end, now, selection)
            .await
            .unwrap();
        let selected = selection.finish().unwrap();
        let text = playlist::render(&selected, |s| uri::relative_uri("index.m3u8", &s.object));
        samples.push(started.elapsed());
        assert_eq!(
            selected.len() as i64,
            SELECT_SEGMENTS,
            "{}",
            text.text.len()
        );
    }
    percentile(&mut samples, 0.5)
}

/// Mean time of one rate-limit decision.
async fn admit_cost(admission: &dyn Admission) -> Duration {
    let started = Instant::now();
    for _ in 0..ADMITS {
        let _ = admission
            .admit("bench", Operation::CreateLiveStreamRecordIndexFiles)
            .await;
    }
    started.elapsed() / ADMITS as u32
}

async fn limiter_costs() -> (Duration, Duration) {
    let redis = common::Redis::start();
    let config = Config::from_toml("").unwrap().finish().unwrap();
    let accounts = vec!["bench".to_string()];
    let local = InProcessLimiter::new(&config, &accounts, Arc::new(SystemClock));
    let redis_limiter = RedisLimiter::new(&config, &accounts, &redis.url()).expect("redis limiter");
    let fallback = InProcessLimiter::new(&config, &accounts, Arc::new(SystemClock));
    // Connected, and the script loaded, before it returns.
    let shared = SharedLimits::start(redis_limiter, fallback).await;
    assert!(shared.is_shared(), "Redis did not answer at start");
    (admit_cost(&local).await, admit_cost(&*shared).await)
}

async fn run(total: usize) {
    let cameras = total.div_ceil(PER_STREAM).max(1);
    let weed = common::seaweedfs();
    let postgres = common::PgServer::start();
    let url = postgres.create_database("engines").await;
    println!(
        "{} segments per engine ({cameras} cameras), PostgreSQL 15 with synchronous_commit on",
        cameras * PER_STREAM
    );

    let (sled_rate, sled_create, sled_dir, sled_server) =
        through_the_service("sled", "", weed, cameras).await;
    let sled_bytes = disk_bytes(&sled_dir) as f64 / (cameras * PER_STREAM) as f64;
    drop(sled_server);
    let (pg_rate, pg_create, _, pg_server) =
        through_the_service("postgres", &url, weed, cameras).await;
    drop(pg_server);
    let pg_bytes = postgres_bytes(&url).await as f64 / (cameras * PER_STREAM) as f64;
    explain_scan(&url).await;

    let dir = tempfile::tempdir().unwrap();
    let sled = SledEngine::new(SledCatalog::open(dir.path(), 256 << 20).unwrap());
    let sled_select = select_and_render(&sled).await;
    let pg_url = postgres.create_database("select").await;
    let pg = PgCatalog::open(&PgOptions {
        url: pg_url,
        pool_size: 4,
        statement_timeout_ms: 0,
    })
    .await
    .unwrap();
    let pg_select = select_and_render(&pg).await;
    let (local, shared) = limiter_costs().await;

    println!("                                         sled            PostgreSQL");
    println!(
        "  Register ingest, batches of 1,000       {sled_rate:>8.0} seg/s    {pg_rate:>8.0} seg/s  (target >= 50,000/s)"
    );
    println!(
        "  select + render of 100,000 segments     {:>8.2} ms       {:>8.2} ms  (target <= 100 ms)",
        ms(sled_select),
        ms(pg_select)
    );
    println!(
        "  Create - raw PUT, hour playlist, p50    {:>8.2} ms       {:>8.2} ms  (target: PostgreSQL <= sled + 1 ms)",
        ms(sled_create),
        ms(pg_create)
    );
    println!(
        "  catalog bytes per segment               {sled_bytes:>8.1} B        {pg_bytes:>8.1} B   (target <= 200)"
    );
    println!(
        "  rate-limit decision: in-process {:.2} us, Redis {:.2} us ({:.0}x)",
        local.as_secs_f64() * 1e6,
        shared.as_secs_f64() * 1e6,
        shared.as_secs_f64() / local.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("engines bench: pass --bench (cargo bench) to measure");
        return;
    }
    let total = std::env::var("ENGINES_SEGMENTS")
        .ok()
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(total));
}
