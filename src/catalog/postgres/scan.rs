//! Scans of a stream's segments by end time: one index range scan of the
//! blocks' primary key (stream_id, minute_us), a chunk of blocks per
//! round trip, each decoded (off the runtime's threads when a chunk is
//! large) and filtered to the segments asked for.

use tokio_postgres::Row;

use super::segments::{decode, minute_us};
use super::statements::query;
use super::{PgCatalog, before};
use crate::catalog::blocks::minute_of;
use crate::catalog::{CatalogError, MAX_SCAN_PAGE, ScanFrom, SegmentSink};
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{Micros, Segment};

/// Blocks read per round trip: ~15,000 segments of six seconds.
const BLOCKS_PER_READ: i64 = 1000;

/// A block whose every segment expired is not read at all. Public for
/// the plan the engines benchmark prints.
pub const SCAN_BLOCKS: &str = "SELECT minute_us, block FROM segment_blocks
    WHERE stream_id = $1 AND minute_us >= $2 AND minute_us <= $3 AND last_start_us > $4
    ORDER BY minute_us LIMIT $5";

/// Blocks decoded inline at most: a few hundred microseconds of work;
/// more go to the blocking pool, off the runtime's threads.
const DECODED_INLINE: usize = 64;

/// Rows of (minute_us, block), decoded.
async fn decode_all(rows: Vec<Row>) -> Result<Vec<(i64, Vec<Segment>)>, CatalogError> {
    let inline = rows.len() <= DECODED_INLINE;
    let decode_rows = move || {
        rows.iter()
            .map(|row| {
                let minute: i64 = row.get(0);
                let mut segments = Vec::new();
                decode(minute, row.get(1), |segment| segments.push(segment))?;
                Ok((minute, segments))
            })
            .collect()
    };
    if inline {
        return decode_rows();
    }
    tokio::task::spawn_blocking(decode_rows)
        .await
        .map_err(|err| CatalogError::Storage(format!("decoding blocks: {err}")))?
}

impl PgCatalog {
    pub async fn scan_by_end(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError> {
        let limit = limit.min(MAX_SCAN_PAGE);
        let mut page = Vec::new();
        self.visit(stream_id, from, until, now, |segment| {
            if page.len() < limit {
                page.push(segment);
            }
            page.len() < limit
        })
        .await?;
        Ok(page)
    }

    /// Every live segment of the range into `sink`, without pages.
    pub async fn scan_into(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        mut sink: Box<dyn SegmentSink>,
    ) -> Result<Box<dyn SegmentSink>, CatalogError> {
        let from = ScanFrom::EndsAfter(after);
        self.visit(stream_id, &from, until, now, |segment| {
            sink.offer(segment);
            true
        })
        .await?;
        Ok(sink)
    }

    /// Offers the live segments after `from` that end by `until`, in scan
    /// order, to `visit` until it says it has enough.
    async fn visit(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        mut visit: impl FnMut(Segment) -> bool + Send,
    ) -> Result<(), CatalogError> {
        let first_end = match from {
            ScanFrom::EndsAfter(after) => *after,
            ScanFrom::Past { end, .. } => *end,
        };
        let stream_id = stream_id as i64;
        let last = minute_us(minute_of(until));
        let live_after = before(now, SEGMENT_RETENTION);
        let mut next = minute_us(minute_of(first_end));
        let client = self.client().await?;
        loop {
            let rows = query(
                &client,
                SCAN_BLOCKS,
                &[&stream_id, &next, &last, &live_after, &BLOCKS_PER_READ],
            )
            .await?;
            let read = rows.len() as i64;
            for (minute, segments) in decode_all(rows).await? {
                for segment in segments {
                    if from.precedes(&segment)
                        && segment.end() <= until
                        && segment.start > live_after
                        && !visit(segment)
                    {
                        return Ok(());
                    }
                }
                next = minute + 1;
            }
            if read < BLOCKS_PER_READ {
                return Ok(());
            }
        }
    }
}
