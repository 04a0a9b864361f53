//! Streams and their segments: Register's batches and the scans by end.
//!
//! A Register is one transaction that first locks its stream's row (the
//! stream's `longest_segment` is written there anyway), so registrations
//! of one stream, from any replica, take turns and each sees what the
//! previous one committed; different streams never wait on each other.
//! The batch is written with arrays: one statement for any batch size.

use std::collections::HashSet;

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::statements::{prepare, query, query_one};
use super::{PgCatalog, before, storage, tokens};
use crate::catalog::{
    CatalogError, Commit, MAX_SCAN_PAGE, RegisterAnswer, RegisterOutcome, ScanFrom, Stream,
    StreamName,
};
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{Format, Micros, Segment, SegmentMedia};
use crate::media::VideoCodec;

const SEGMENT_COLUMNS: &str = "endpoint, bucket, object, start_us, duration_us, sequence, \
                               width, height, format, size, codec, first_pts";

fn codec_code(codec: VideoCodec) -> i16 {
    match codec {
        VideoCodec::H264 => 1,
        VideoCodec::H265 => 2,
    }
}

fn codec_of(code: i16) -> Result<VideoCodec, CatalogError> {
    match code {
        1 => Ok(VideoCodec::H264),
        2 => Ok(VideoCodec::H265),
        _ => Err(CatalogError::Corrupt(format!("unknown codec {code}"))),
    }
}

/// A row selected with [`SEGMENT_COLUMNS`].
fn segment_of(row: &Row) -> Result<Segment, CatalogError> {
    let format: i16 = row.get(8);
    let codec: Option<i16> = row.get(10);
    let first_pts: Option<i64> = row.get(11);
    let media = match (codec, first_pts) {
        (Some(code), Some(pts)) => Some(SegmentMedia {
            codec: codec_of(code)?,
            first_pts: pts as u64,
        }),
        _ => None,
    };
    Ok(Segment {
        endpoint: row.get(0),
        bucket: row.get(1),
        object: row.get(2),
        start: row.get(3),
        duration: row.get(4),
        sequence: row.get(5),
        width: row.get::<_, i64>(6) as u32,
        height: row.get::<_, i64>(7) as u32,
        format: Format::from_u8(format as u8)
            .ok_or_else(|| CatalogError::Corrupt(format!("unknown format {format}")))?,
        size: row.get::<_, i64>(9) as u64,
        media,
    })
}

/// A batch's fields as the arrays one statement takes.
struct Batch<'a> {
    segments: &'a [Segment],
}

impl Batch<'_> {
    fn text(&self, field: impl Fn(&Segment) -> &str) -> Vec<&str> {
        self.segments.iter().map(field).collect()
    }

    fn int(&self, field: impl Fn(&Segment) -> i64) -> Vec<i64> {
        self.segments.iter().map(field).collect()
    }
}

/// The batch without repeats of a (bucket, object), and how many were
/// dropped: a repeat is a duplicate of the first.
fn first_of_each(segments: Vec<Segment>) -> (Vec<Segment>, u32) {
    let mut seen = HashSet::new();
    let before = segments.len();
    let unique: Vec<Segment> = segments
        .into_iter()
        .filter(|s| seen.insert((s.bucket.clone(), s.object.clone())))
        .collect();
    let repeats = (before - unique.len()) as u32;
    (unique, repeats)
}

impl PgCatalog {
    pub async fn streams(&self, names: &[StreamName]) -> Result<Vec<Option<Stream>>, CatalogError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let domains: Vec<&str> = names.iter().map(|n| n.domain.as_str()).collect();
        let apps: Vec<&str> = names.iter().map(|n| n.app.as_str()).collect();
        let streams: Vec<&str> = names.iter().map(|n| n.stream.as_str()).collect();
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT s.id, s.longest_segment
             FROM unnest($1::text[], $2::text[], $3::text[])
                 WITH ORDINALITY AS n(domain, app, stream, i)
             LEFT JOIN streams s
                 ON s.domain = n.domain AND s.app = n.app AND s.stream = n.stream
             ORDER BY n.i",
            &[&domains, &apps, &streams],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let id: Option<i64> = row.get(0);
                id.map(|id| Stream {
                    id: id as u64,
                    longest_segment: row.get(1),
                })
            })
            .collect())
    }

    pub async fn ensure_stream(&self, name: &StreamName) -> Result<Stream, CatalogError> {
        let client = self.client().await?;
        let row = query_one(
            &client,
            "INSERT INTO streams AS s (domain, app, stream) VALUES ($1, $2, $3)
             ON CONFLICT (domain, app, stream) DO UPDATE SET longest_segment = s.longest_segment
             RETURNING id, longest_segment",
            &[&name.domain, &name.app, &name.stream],
        )
        .await?;
        Ok(Stream {
            id: row.get::<_, i64>(0) as u64,
            longest_segment: row.get(1),
        })
    }

    pub async fn registered(
        &self,
        name: &StreamName,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        if segments.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Batch { segments };
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT EXISTS (
                 SELECT 1 FROM streams s JOIN segment_keys k ON k.stream_id = s.id
                 WHERE s.domain = $1 AND s.app = $2 AND s.stream = $3
                   AND k.bucket = i.bucket AND k.object = i.object AND k.start_us > $6)
             FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS i(bucket, object, n)
             ORDER BY i.n",
            &[
                &name.domain,
                &name.app,
                &name.stream,
                &batch.text(|s| &s.bucket),
                &batch.text(|s| &s.object),
                &before(now, SEGMENT_RETENTION),
            ],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn register(
        &self,
        name: &StreamName,
        segments: Vec<Segment>,
        now: Micros,
        answer: Option<RegisterAnswer>,
    ) -> Result<Commit<RegisterOutcome>, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        let (segments, repeats) = first_of_each(segments);
        // The token first, then the stream: every writer locks in this
        // order, so two never wait on each other. Both go in one round
        // trip; when the token was answered before, the stream's lock is
        // rolled back with the rest. Both are prepared first, so each is
        // sent as soon as it is polled, in this order.
        futures::try_join!(prepare(&tx, tokens::CLAIM), prepare(&tx, LOCK_STREAM))?;
        let (claimed, stream_id) = futures::try_join!(
            claim(&tx, answer.as_ref()),
            lock_stream(&tx, name, !segments.is_empty()),
        )?;
        if let Some(first) = claimed {
            tx.rollback().await.map_err(storage)?;
            return Ok(Commit::Answered(first));
        }
        let mut outcome = RegisterOutcome {
            accepted: 0,
            duplicates: repeats,
        };
        let mut delta = 0;
        if let Some(stream_id) = stream_id {
            // In order, in one round trip: the expired copies go before
            // the insert meets their keys.
            let (remove, insert) =
                futures::try_join!(prepare(&tx, REMOVE_EXPIRED), prepare(&tx, INSERT_NEW))?;
            let (replaced, accepted) = futures::try_join!(
                remove_expired_copies(&tx, &remove, stream_id, &segments, now),
                insert_new(&tx, &insert, stream_id, &segments),
            )?;
            outcome.accepted = accepted as u32;
            outcome.duplicates += (segments.len() as u64 - accepted) as u32;
            delta = accepted as i64 - replaced;
        }
        let respond = async {
            match &answer {
                Some(answer) => {
                    let response = (answer.response)(&outcome);
                    tokens::set_response(&tx, &answer.key, &response).await
                }
                None => Ok(()),
            }
        };
        futures::try_join!(PgCatalog::count_in(&tx, delta, 0), respond)?;
        tx.commit().await.map_err(storage)?;
        self.counted(delta, 0);
        Ok(Commit::Done(outcome))
    }

    pub async fn scan_by_end(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError> {
        let stream_id = stream_id as i64;
        let live_after = before(now, SEGMENT_RETENTION);
        let limit = limit.min(MAX_SCAN_PAGE) as i64;
        let client = self.client().await?;
        // Either reads one range of the primary key (stream_id, end_us,
        // bucket, object), in its order.
        let found = match from {
            ScanFrom::EndsAfter(after) => {
                let sql = scan_sql("end_us > $5");
                let statement = client.prepare_cached(&sql).await.map_err(storage)?;
                let params: [&(dyn ToSql + Sync); 5] =
                    [&stream_id, &until, &live_after, &limit, after];
                client.query(&statement, &params).await
            }
            ScanFrom::Past {
                end,
                bucket,
                object,
            } => {
                let sql = scan_sql("(end_us, bucket, object) > ($5, $6, $7)");
                let statement = client.prepare_cached(&sql).await.map_err(storage)?;
                let params: [&(dyn ToSql + Sync); 7] =
                    [&stream_id, &until, &live_after, &limit, end, bucket, object];
                client.query(&statement, &params).await
            }
        }
        .map_err(storage)?;
        found.iter().map(segment_of).collect()
    }
}

fn scan_sql(position: &str) -> String {
    format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments
         WHERE stream_id = $1 AND end_us <= $2 AND start_us > $3 AND {position}
         ORDER BY end_us, bucket, object
         LIMIT $4"
    )
}

/// Claims the Register's token, if it has one: the first answer when
/// the token was answered before.
async fn claim(
    tx: &Transaction<'_>,
    answer: Option<&RegisterAnswer>,
) -> Result<Option<crate::catalog::TokenRecord>, CatalogError> {
    let Some(answer) = answer else {
        return Ok(None);
    };
    let placeholder = answer.answer(&RegisterOutcome::default());
    tokens::claim(tx, &answer.key, &placeholder.record).await
}

/// The stream's id, the stream made if new, its row locked until commit;
/// nothing unless `wanted`.
async fn lock_stream(
    tx: &Transaction<'_>,
    name: &StreamName,
    wanted: bool,
) -> Result<Option<i64>, CatalogError> {
    if !wanted {
        return Ok(None);
    }
    let row = query_one(tx, LOCK_STREAM, &[&name.domain, &name.app, &name.stream]).await?;
    Ok(Some(row.get(0)))
}

const LOCK_STREAM: &str = "INSERT INTO streams AS s (domain, app, stream) VALUES ($1, $2, $3)
    ON CONFLICT (domain, app, stream) DO UPDATE SET longest_segment = s.longest_segment
    RETURNING id";

const REMOVE_EXPIRED: &str = "WITH gone AS (
                 DELETE FROM segment_keys k
                 USING unnest($2::text[], $3::text[]) AS i(bucket, object)
                 WHERE k.stream_id = $1 AND k.bucket = i.bucket AND k.object = i.object
                   AND k.start_us <= $4
                 RETURNING k.bucket, k.object, k.end_us)
             DELETE FROM segments s USING gone
             WHERE s.stream_id = $1 AND s.end_us = gone.end_us
               AND s.bucket = gone.bucket AND s.object = gone.object";

/// Deletes the stored copies of these objects that are past retention,
/// so the batch's copies replace them, with [`REMOVE_EXPIRED`]; the
/// count of segments removed.
async fn remove_expired_copies(
    tx: &Transaction<'_>,
    statement: &Statement,
    stream_id: i64,
    segments: &[Segment],
    now: Micros,
) -> Result<i64, CatalogError> {
    let batch = Batch { segments };
    let removed = tx
        .execute(
            statement,
            &[
                &stream_id,
                &batch.text(|s| &s.bucket),
                &batch.text(|s| &s.object),
                &before(now, SEGMENT_RETENTION),
            ],
        )
        .await
        .map_err(storage)?;
    Ok(removed as i64)
}

/// Inserts the segments whose (bucket, object) the stream does not hold,
/// and grows the stream's longest segment to the longest of them: how
/// many were inserted.
async fn insert_new(
    tx: &Transaction<'_>,
    statement: &Statement,
    stream_id: i64,
    segments: &[Segment],
) -> Result<u64, CatalogError> {
    let batch = Batch { segments };
    let codecs: Vec<Option<i16>> = segments
        .iter()
        .map(|s| s.media.map(|m| codec_code(m.codec)))
        .collect();
    let first_pts: Vec<Option<i64>> = segments
        .iter()
        .map(|s| s.media.map(|m| m.first_pts as i64))
        .collect();
    let formats: Vec<i16> = segments
        .iter()
        .map(|s| i16::from(s.format.to_u8()))
        .collect();
    let row = tx
        .query_one(
            statement,
            &[
                &stream_id,
                &batch.text(|s| &s.endpoint),
                &batch.text(|s| &s.bucket),
                &batch.text(|s| &s.object),
                &batch.int(|s| s.start),
                &batch.int(|s| s.duration),
                &batch.int(Segment::end),
                &batch.int(|s| s.sequence),
                &batch.int(|s| i64::from(s.width)),
                &batch.int(|s| i64::from(s.height)),
                &formats,
                &batch.int(|s| s.size as i64),
                &codecs,
                &first_pts,
            ],
        )
        .await
        .map_err(storage)?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Inserts a batch's new segments; see [`insert_new`].
const INSERT_NEW: &str = "WITH i AS (
                 SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[],
                     $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],
                     $11::int2[], $12::int8[], $13::int2[], $14::int8[])
                 AS i(endpoint, bucket, object, start_us, duration_us, end_us, sequence,
                      width, height, format, size, codec, first_pts)),
             k AS (
                 INSERT INTO segment_keys (stream_id, bucket, object, start_us, end_us)
                 SELECT $1, bucket, object, start_us, end_us FROM i
                 ON CONFLICT DO NOTHING
                 RETURNING bucket, object),
             s AS (
                 INSERT INTO segments (stream_id, end_us, endpoint, bucket, object, start_us,
                     duration_us, sequence, width, height, format, size, codec, first_pts)
                 SELECT $1, i.end_us, i.endpoint, i.bucket, i.object, i.start_us,
                     i.duration_us, i.sequence, i.width, i.height, i.format, i.size, i.codec,
                     i.first_pts
                 FROM i JOIN k ON k.bucket = i.bucket AND k.object = i.object
                 RETURNING duration_us),
             longest AS (
                 UPDATE streams SET longest_segment = GREATEST(longest_segment, m.longest)
                 FROM (SELECT max(duration_us) AS longest FROM s) m
                 WHERE id = $1 AND m.longest IS NOT NULL)
             SELECT count(*) FROM s";
