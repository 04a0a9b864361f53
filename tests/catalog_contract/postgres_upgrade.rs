//! A PostgreSQL catalog made by schema version 1 (a row per segment, one
//! manifests table) is packed into blocks and partitioned when a newer
//! binary opens it, and answers as it did.

use std::sync::Arc;

use record_index::catalog::Catalog;
use record_index::catalog::postgres::{PgCatalog, PgOptions};
use record_index::manifest::{Format, Segment, SegmentMedia};
use record_index::media::VideoCodec;

use crate::fixtures::*;
use crate::pg_server::{connect_url, shared_database};

const VERSION_1: &str = include_str!("../../src/catalog/postgres/migrations/0001_catalog.sql");
const WEEK: i64 = 7 * DAY;

/// Writes `segments` of `stream` as version 1 did: a row and a key each.
async fn insert_rows(client: &tokio_postgres::Client, stream: &str, segments: &[Segment]) {
    let row = client
        .query_one(
            "INSERT INTO streams (domain, app, stream, longest_segment)
             VALUES ('example.com', 'live', $1, $2) RETURNING id",
            &[&stream, &(6 * SECOND)],
        )
        .await
        .unwrap();
    let id: i64 = row.get(0);
    for s in segments {
        let codec = s.media.map(|m| match m.codec {
            VideoCodec::H264 => 1i16,
            VideoCodec::H265 => 2,
        });
        let first_pts = s.media.map(|m| m.first_pts as i64);
        client
            .execute(
                "INSERT INTO segments (stream_id, end_us, bucket, object, start_us, duration_us,
                     endpoint, sequence, width, height, format, size, codec, first_pts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &id,
                    &s.end(),
                    &s.bucket,
                    &s.object,
                    &s.start,
                    &s.duration,
                    &s.endpoint,
                    &s.sequence,
                    &i64::from(s.width),
                    &i64::from(s.height),
                    &i16::from(s.format.to_u8()),
                    &(s.size as i64),
                    &codec,
                    &first_pts,
                ],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO segment_keys (stream_id, bucket, object, start_us, end_us)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&id, &s.bucket, &s.object, &s.start, &s.end()],
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_catalog_is_packed_when_opened() {
    let url = shared_database("upgrade").await;
    let client = connect_url(&url).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now());
             {VERSION_1}
             INSERT INTO schema_migrations (version) VALUES (1);
             CREATE TABLE segments_w{week} PARTITION OF segments
                 FOR VALUES FROM ({from}) TO ({to});",
            week = NOW.div_euclid(WEEK),
            from = NOW.div_euclid(WEEK) * WEEK,
            to = (NOW.div_euclid(WEEK) + 1) * WEEK,
        ))
        .await
        .unwrap();
    // Several minutes of one stream, with probed media and every format;
    // another stream with a segment in the default partition.
    let mut first = back_to_back("live/a", NOW - 600 * SECOND, 40);
    first[3].media = Some(SegmentMedia {
        codec: VideoCodec::H265,
        first_pts: 1 << 32,
    });
    first[4].format = Format::Flv;
    let second = vec![segment("live/b/old.ts", NOW - 30 * DAY, 6 * SECOND)];
    insert_rows(&client, "a", &first).await;
    insert_rows(&client, "b", &second).await;
    let record = manifest(1, NOW);
    client
        .execute(
            "INSERT INTO manifests
                 (record_id, stream_id, created, expires, endpoint, bucket, object, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &record.id_bytes().as_slice(),
                &(record.stream_id as i64),
                &record.created,
                &record.expires,
                &record.oss_endpoint,
                &record.oss_bucket,
                &record.oss_object,
                &prost::Message::encode_to_vec(&record),
            ],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE record_counts SET segments = 41, manifests = 1 WHERE slot = 0",
            &[],
        )
        .await
        .unwrap();

    let options = PgOptions {
        url: url.clone(),
        pool_size: 4,
        statement_timeout_ms: 30_000,
    };
    let catalog: Arc<dyn Catalog> = Arc::new(PgCatalog::open(&options).await.unwrap());
    assert_eq!(catalog.stored().segments, 41);
    assert_eq!(catalog.stored().manifests, 1);
    let found = catalog.manifest(&record.uuid(), NOW).await.unwrap();
    assert_eq!(found, Some(record.clone()));
    let a = stream_id(&*catalog, "a").await;
    let b = stream_id(&*catalog, "b").await;
    assert_eq!(scan(&*catalog, a, 0, NOW, NOW).await, first);
    assert_eq!(scan(&*catalog, b, 0, NOW, NOW).await, second);
    assert_eq!(
        catalog
            .stream(&name("a"))
            .await
            .unwrap()
            .unwrap()
            .longest_segment,
        6 * SECOND
    );
    // Still idempotent, whatever times come with the objects again.
    let mut again = first.clone();
    again.iter_mut().for_each(|s| s.start += 3600 * SECOND);
    let known = catalog.registered(&name("a"), &again, NOW).await.unwrap();
    assert!(known.iter().all(|known| *known), "{known:?}");
    assert_eq!(register(&*catalog, "a", again, NOW).await, outcome(0, 40));

    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables
             WHERE tablename IN ('segments', 'segment_keys_v1', 'segment_blocks_default',
                                 'manifests_v2')
                OR tablename LIKE 'segment_blocks_w%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The week's blocks have its partition, as its rows had.
    let week = format!("segment_blocks_w{}", NOW.div_euclid(WEEK));
    assert!(tables.contains(&week), "{tables:?}");
    let sql = format!("SELECT sum(segments)::bigint FROM {week}");
    let in_week: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(in_week, 40);
    assert!(
        !tables
            .iter()
            .any(|t| t == "segments" || t == "segment_keys_v1"),
        "{tables:?}"
    );
}
