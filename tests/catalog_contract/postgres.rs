//! The PostgreSQL engine, against a server this test binary starts once
//! (`tests/common/pg_server.rs`), with a database of its own for each
//! test so tests run in parallel.

use std::sync::Arc;

use async_trait::async_trait;
use record_index::catalog::Catalog;
use record_index::catalog::postgres::{PgCatalog, PgOptions};

use crate::pg_server::{connect_url, free_port, shared_database};

async fn create_database() -> String {
    shared_database("contract").await
}

async fn open_at(url: &str) -> Arc<dyn Catalog> {
    let options = PgOptions {
        url: url.to_string(),
        pool_size: 8,
        statement_timeout_ms: 30_000,
    };
    Arc::new(PgCatalog::open(&options).await.unwrap())
}

pub struct Postgres {
    url: String,
    catalog: Option<Arc<dyn Catalog>>,
}

#[async_trait]
impl crate::Engine for Postgres {
    async fn open() -> Self {
        let url = create_database().await;
        let catalog = Some(open_at(&url).await);
        Postgres { url, catalog }
    }

    fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone().expect("open")
    }

    async fn reopen(&mut self) {
        let closing = self.catalog.take().expect("open");
        assert_eq!(
            Arc::strong_count(&closing),
            1,
            "a handle of the catalog is still held"
        );
        drop(closing);
        self.catalog = Some(open_at(&self.url).await);
    }
}

contract_suite!(Postgres);

/// Beyond the contract's fixtures, which carry no probed media: every
/// field of a segment comes back as it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_fields_round_trip() {
    use record_index::manifest::{Format, SegmentMedia};
    use record_index::media::VideoCodec;

    use crate::Engine;
    use crate::fixtures::*;

    let engine = <Postgres as crate::Engine>::open().await;
    let catalog = engine.catalog();
    let mut segments = back_to_back("live/media", NOW - 600 * SECOND, 4);
    segments[0].media = Some(SegmentMedia {
        codec: VideoCodec::H264,
        first_pts: (1 << 33) - 1,
    });
    segments[1].media = Some(SegmentMedia {
        codec: VideoCodec::H265,
        first_pts: 0,
    });
    segments[1].format = Format::Cmaf;
    segments[2].format = Format::Flv;
    segments[2].size = u64::MAX;
    segments[3].format = Format::Mp4;
    segments[3].width = u32::MAX;
    segments[3].sequence = i64::MIN;
    register(&*catalog, "media", segments.clone(), NOW).await;
    let id = stream_id(&*catalog, "media").await;
    assert_eq!(scan(&*catalog, id, 0, NOW, NOW).await, segments);
}

/// The partitions of the segment blocks in the database at `url`.
async fn partitions(url: &str) -> Vec<String> {
    partitions_of(url, "segment_blocks").await
}

async fn partitions_of(url: &str, table: &str) -> Vec<String> {
    let client = connect_url(url).await;
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&table],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// Manifests live in weekly partitions by expiry, made 180 days and more
/// ahead; a week wholly expired goes as one partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_manifest_weeks_are_dropped_whole() {
    use crate::Engine;
    use crate::fixtures::*;

    const WEEK: i64 = 7 * DAY;
    let week_name = |at: i64| format!("manifests_w{}", at.div_euclid(WEEK));
    let engine = <Postgres as Engine>::open().await;
    let catalog = engine.catalog();
    // Far from the wall clock, so open made none of these.
    let created = NOW + 400 * DAY;
    catalog.sweep(created, 0).await.unwrap();
    let record = manifest(7, created);
    assert!(
        partitions_of(&engine.url, "manifests")
            .await
            .contains(&week_name(record.expires))
    );
    put(&*catalog, &record).await;
    let client = connect_url(&engine.url).await;
    let sql = format!("SELECT count(*) FROM {}", week_name(record.expires));
    let held: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(held, 1);
    assert_eq!(catalog.stored().manifests, 1);

    // Once its whole week is past, the week goes, with its count.
    let past = (record.expires.div_euclid(WEEK) + 1) * WEEK;
    assert_eq!(catalog.sweep(past, 100).await.unwrap().manifests, 1);
    let held = partitions_of(&engine.url, "manifests").await;
    assert!(!held.contains(&week_name(record.expires)), "{held:?}");
    assert!(held.contains(&"manifests_default".to_string()), "{held:?}");
    assert_eq!(catalog.stored().manifests, 0);
    assert!(
        catalog
            .manifest(&record.uuid(), created)
            .await
            .unwrap()
            .is_none()
    );
}

/// Weekly partitions are made ahead of the sweep's clock and dropped once
/// past retention, but never while they still hold a segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_follow_the_clock() {
    use crate::Engine;
    use crate::fixtures::*;

    const WEEK: i64 = 7 * DAY;
    let week_name = |at: i64| format!("segment_blocks_w{}", at.div_euclid(WEEK));
    let engine = <Postgres as Engine>::open().await;
    let catalog = engine.catalog();
    let later = NOW + 200 * DAY;
    // Far enough from the wall clock that open made none of these.
    let old = segment("live/p/a.ts", later - 7 * DAY, 6 * SECOND);
    catalog.sweep(old.start, 100).await.unwrap();
    assert!(
        partitions(&engine.url)
            .await
            .contains(&week_name(old.end()))
    );
    register(&*catalog, "p", vec![old.clone()], old.start).await;

    let gone = old.end() + 120 * DAY;
    // A sweep of nothing leaves the segment, so its week stays.
    catalog.sweep(gone, 0).await.unwrap();
    let held = partitions(&engine.url).await;
    assert!(held.contains(&week_name(old.end())), "{held:?}");
    assert!(held.contains(&week_name(gone + 4 * WEEK)), "{held:?}");
    // Past retention, it goes whole with its segment.
    assert_eq!(catalog.sweep(gone, 100).await.unwrap().segments, 1);
    catalog.sweep(gone + WEEK, 100).await.unwrap();
    let held = partitions(&engine.url).await;
    assert!(!held.contains(&week_name(old.end())), "{held:?}");
    assert!(held.contains(&"segment_blocks_default".to_string()));
}

/// The connection string may hold a password: an error opening the
/// catalog says why, never what the string was.
#[tokio::test]
async fn errors_keep_the_connection_string_out() {
    let port = free_port();
    // No server answers: a retry may succeed; a broken string: never.
    for (url, kind) in [
        (
            format!("postgres://indexer:hunter2-secret@127.0.0.1:{port}/catalog"),
            "catalog unavailable: postgres: ",
        ),
        (
            "postgres://indexer:hunter2-secret@[::1".to_string(),
            "catalog storage failed: postgres: ",
        ),
    ] {
        let options = PgOptions {
            url,
            pool_size: 1,
            statement_timeout_ms: 1000,
        };
        let err = match PgCatalog::open(&options).await {
            Ok(_) => panic!("opened a catalog with no server"),
            Err(err) => err.to_string(),
        };
        assert!(err.starts_with(kind), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains("indexer"),
            "{err}"
        );
    }
}

/// Replicas that start together on a new database apply each migration
/// once: the advisory lock makes them take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let url = create_database().await;
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { open_at(&url).await })
        })
        .collect();
    for replica in opening {
        replica.await.unwrap().check().await.unwrap();
    }
    let client = connect_url(&url).await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 3);
}

/// Weeks wholly past retention go as partitions, with their keys and
/// their count, oldest first and a week at a time; the week at the edge
/// of retention goes row by row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_weeks_are_dropped_whole() {
    use crate::Engine;
    use crate::fixtures::*;

    const WEEK: i64 = 7 * DAY;
    let week_name = |at: i64| format!("segment_blocks_w{}", at.div_euclid(WEEK));
    let mut engine = <Postgres as Engine>::open().await;
    let catalog = engine.catalog();
    // A week start far from the wall clock, so open made none of these.
    let base = (NOW + 300 * DAY).div_euclid(WEEK) * WEEK;
    catalog.sweep(base, 0).await.unwrap();
    let mut segments = back_to_back("live/w/a", base + DAY, 3);
    segments.extend(back_to_back("live/w/b", base + WEEK + DAY, 2));
    let swept_at = base + 2 * WEEK + 90 * DAY + 3600 * SECOND;
    // The edge week: one expired at the sweep, one live.
    segments.push(segment("live/w/edge.ts", base + 2 * WEEK, 6 * SECOND));
    let live = segment("live/w/live.ts", base + 2 * WEEK + 2 * DAY, 6 * SECOND);
    segments.push(live.clone());
    register(&*catalog, "w", segments, base + 3 * WEEK).await;
    assert_eq!(catalog.stored().segments, 7);

    // One week fills a batch of 1.
    assert_eq!(catalog.sweep(swept_at, 1).await.unwrap().segments, 3);
    let held = partitions(&engine.url).await;
    assert!(!held.contains(&week_name(base)), "{held:?}");
    assert!(held.contains(&week_name(base + WEEK)), "{held:?}");
    assert_eq!(catalog.sweep(swept_at, 100).await.unwrap().segments, 3);
    let held = partitions(&engine.url).await;
    assert!(!held.contains(&week_name(base + WEEK)), "{held:?}");
    assert!(held.contains(&week_name(base + 2 * WEEK)), "{held:?}");
    assert_eq!(catalog.stored().segments, 1);

    let client = connect_url(&engine.url).await;
    let keys: i64 = client
        .query_one("SELECT count(*) FROM segment_keys", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1);
    let id = stream_id(&*catalog, "w").await;
    assert_eq!(scan(&*catalog, id, 0, swept_at, swept_at).await, vec![live]);
    drop(catalog);
    engine.reopen().await;
    assert_eq!(engine.catalog().stored().segments, 1);
}

/// A sweep skips its round while another session holds the sweep lock,
/// as another replica's sweep does, and sweeps once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_sweeps_at_a_time() {
    use crate::Engine;
    use crate::fixtures::*;

    const SWEEP_LOCK: i64 = 0x7265_6373_7765_6570;
    let engine = <Postgres as Engine>::open().await;
    let catalog = engine.catalog();
    register(&*catalog, "l", back_to_back("live/l", NOW, 3), NOW).await;
    let later = NOW + 100 * DAY;
    let other = connect_url(&engine.url).await;
    let taken: bool = other
        .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
        .await
        .unwrap()
        .get(0);
    assert!(taken);
    assert_eq!(catalog.sweep(later, 100).await.unwrap(), Default::default());
    assert_eq!(catalog.stored().segments, 3);

    other
        .execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK])
        .await
        .unwrap();
    assert_eq!(catalog.sweep(later, 100).await.unwrap().segments, 3);
    assert_eq!(catalog.stored().segments, 0);
    // The sweep gave its lock back.
    let free: bool = other
        .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
        .await
        .unwrap()
        .get(0);
    assert!(free);
}

/// Replicas share the counts: what one stores, another's metrics show
/// after its next health check, without a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_follow_other_replicas_writes_at_each_check() {
    use crate::Engine;
    use crate::fixtures::*;

    let engine = <Postgres as Engine>::open().await;
    let writer = engine.catalog();
    let reader = open_at(&engine.url).await;
    register(
        &*writer,
        "c",
        back_to_back("live/c", NOW - 600 * SECOND, 30),
        NOW,
    )
    .await;
    put(&*writer, &manifest(1, NOW)).await;
    assert_eq!(reader.stored().segments, 0);
    reader.check().await.unwrap();
    assert_eq!(reader.stored().segments, 30);
    assert_eq!(reader.stored().manifests, 1);
}
