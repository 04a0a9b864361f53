//! Schema version 1 kept a row per segment; version 2 packs segments into
//! blocks. This moves a version 1 catalog's rows into blocks, within the
//! migration's transaction: read in the blocks' own order through a
//! portal, a chunk at a time, and written a thousand blocks a statement.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::partitions::{self, Partitioned};
use super::segments::{ADD_ENTRIES, BlockRows, EntryRows};
use super::storage;
use crate::catalog::CatalogError;
use crate::catalog::blocks::{minute_of, object_hash};
use crate::manifest::{Format, Segment, SegmentMedia};
use crate::media::VideoCodec;

const ROWS_PER_READ: i32 = 10_000;
const BLOCKS_PER_WRITE: usize = 1000;

/// Packs every row of version 1's `segments` into `segment_blocks` and
/// `segment_keys`: the segments packed.
pub(super) async fn pack_version_1_rows(tx: &Transaction<'_>) -> Result<u64, CatalogError> {
    partitions::create(tx, Partitioned::SegmentBlocks, version_1_weeks(tx).await?).await?;
    let statement = tx
        .prepare(
            "SELECT endpoint, bucket, object, start_us, duration_us, sequence, width, height,
                    format, size, codec, first_pts, stream_id
             FROM segments ORDER BY stream_id, end_us, bucket, object",
        )
        .await
        .map_err(storage)?;
    let portal = tx.bind(&statement, &[]).await.map_err(storage)?;
    let mut packer = Packer::default();
    loop {
        let rows = tx
            .query_portal(&portal, ROWS_PER_READ)
            .await
            .map_err(storage)?;
        for row in &rows {
            let stream_id: i64 = row.get(12);
            packer.add(tx, stream_id, segment_of(row)?).await?;
        }
        if rows.len() < ROWS_PER_READ as usize {
            break;
        }
    }
    packer.close_block();
    packer.write(tx).await?;
    Ok(packer.packed)
}

/// The weeks version 1 had partitions of, so their blocks get theirs.
async fn version_1_weeks(tx: &Transaction<'_>) -> Result<Vec<i64>, CatalogError> {
    let rows = tx
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'segments'::regclass",
            &[],
        )
        .await
        .map_err(storage)?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            let digits = name.strip_prefix("segments_w")?.to_string();
            match digits.strip_prefix('m') {
                Some(negative) => negative.parse::<i64>().ok().map(|week| -week),
                None => digits.parse().ok(),
            }
        })
        .collect())
}

#[derive(Default)]
struct Packer {
    /// The block being filled: its stream, its minute and its segments.
    current: Option<(i64, u64, Vec<Segment>)>,
    blocks: BlockRows,
    entries: EntryRows,
    packed: u64,
}

impl Packer {
    async fn add(
        &mut self,
        tx: &Transaction<'_>,
        stream_id: i64,
        segment: Segment,
    ) -> Result<(), CatalogError> {
        let minute = minute_of(segment.end());
        let same_block =
            matches!(&self.current, Some((s, m, _)) if *s == stream_id && *m == minute);
        if !same_block {
            self.close_block();
            if self.blocks.minutes.len() >= BLOCKS_PER_WRITE {
                self.write(tx).await?;
            }
            self.current = Some((stream_id, minute, Vec::new()));
        }
        if let Some((_, _, segments)) = &mut self.current {
            segments.push(segment);
        }
        self.packed += 1;
        Ok(())
    }

    fn close_block(&mut self) {
        let Some((stream_id, minute, segments)) = self.current.take() else {
            return;
        };
        let mut hashes: Vec<u64> = segments.iter().map(object_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        for hash in hashes {
            self.entries.push(stream_id, (hash, minute));
        }
        self.blocks.push(stream_id, minute, &segments);
    }

    async fn write(&mut self, tx: &Transaction<'_>) -> Result<(), CatalogError> {
        let blocks = std::mem::take(&mut self.blocks);
        let entries = std::mem::take(&mut self.entries);
        blocks.upsert(tx).await?;
        entries.apply(tx, ADD_ENTRIES).await?;
        tracing::info!(
            segments = self.packed,
            "catalog segments packed into blocks"
        );
        Ok(())
    }
}

fn codec_of(code: i16) -> Result<VideoCodec, CatalogError> {
    match code {
        1 => Ok(VideoCodec::H264),
        2 => Ok(VideoCodec::H265),
        _ => Err(CatalogError::Corrupt(format!("unknown codec {code}"))),
    }
}

/// A version 1 row, its columns in the order selected above.
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
