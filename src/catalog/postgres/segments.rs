//! Streams and their segments: Register's batches and the duplicate
//! checks. Segments are stored packed, a block per stream and minute of
//! their end ([`crate::catalog::blocks`]); `segment_keys` maps each
//! object's hash to the minute of the block holding it.
//!
//! A Register is one transaction that first locks its stream's row (the
//! stream's `longest_segment` is written there anyway), so registrations
//! of one stream, from any replica, take turns and each sees what the
//! previous one committed; different streams never wait on each other.
//! Under that lock it reads the blocks the batch can touch, merges the
//! batch in ([`Merge`]) and writes back what changed, with arrays: a
//! fixed number of statements for any batch size.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::statements::{prepare, query, query_one};
use super::{PgCatalog, storage, tokens};
use crate::catalog::blocks::merge::{IndexEntry, Merge, Merged, minutes_ended_in};
use crate::catalog::blocks::{block_base, codec, minute_of, object_hash};
use crate::catalog::{
    CatalogError, Commit, RegisterAnswer, RegisterOutcome, Stream, StreamName, segment_expired,
};
use crate::manifest::{Micros, Segment};

/// A block's rows hold its minute's first instant, as `minute_us`.
pub(super) fn minute_us(minute: u64) -> i64 {
    block_base(minute)
}

/// Decodes a block read as (minute_us, block).
pub(super) fn decode(
    minute: i64,
    bytes: &[u8],
    visit: impl FnMut(Segment),
) -> Result<(), CatalogError> {
    codec::decode_block(minute, bytes, visit).map_err(|err| CatalogError::Corrupt(err.to_string()))
}

fn hashes(segments: &[Segment]) -> Vec<i64> {
    segments.iter().map(|s| object_hash(s) as i64).collect()
}

/// The blocks of a stream, named by its names, that hold an object of
/// one of these hashes or lie at one of these minutes.
const READ_BLOCKS: &str = "WITH s AS (
        SELECT id FROM streams WHERE domain = $1 AND app = $2 AND stream = $3)
    SELECT b.minute_us, b.block FROM segment_blocks b, s
    WHERE b.stream_id = s.id AND b.minute_us IN (
        SELECT k.minute_us FROM segment_keys k, s
        WHERE k.stream_id = s.id AND k.hash = ANY($4::int8[])
        UNION SELECT unnest($5::int8[]))";

async fn read_blocks(
    client: &impl GenericClient,
    name: &StreamName,
    segments: &[Segment],
    with_their_minutes: bool,
) -> Result<BTreeMap<u64, Vec<Segment>>, CatalogError> {
    if segments.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut minutes: Vec<i64> = Vec::new();
    if with_their_minutes {
        minutes = minutes_ended_in(segments)
            .into_iter()
            .map(minute_us)
            .collect();
    }
    let rows = query(
        client,
        READ_BLOCKS,
        &[
            &name.domain,
            &name.app,
            &name.stream,
            &hashes(segments),
            &minutes,
        ],
    )
    .await?;
    blocks_of(&rows)
}

/// Rows of (minute_us, block), decoded by minute.
fn blocks_of(rows: &[Row]) -> Result<BTreeMap<u64, Vec<Segment>>, CatalogError> {
    let mut blocks = BTreeMap::new();
    for row in rows {
        let minute: i64 = row.get(0);
        let mut block = Vec::new();
        decode(minute, row.get(1), |segment| block.push(segment))?;
        blocks.insert(minute_of(minute), block);
    }
    Ok(blocks)
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
        let client = self.client().await?;
        let blocks = read_blocks(&client, name, segments, false).await?;
        let live: HashSet<(&str, &str)> = blocks
            .values()
            .flatten()
            .filter(|stored| !segment_expired(stored, now))
            .map(|stored| (stored.bucket.as_str(), stored.object.as_str()))
            .collect();
        Ok(segments
            .iter()
            .map(|s| live.contains(&(s.bucket.as_str(), s.object.as_str())))
            .collect())
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
        // The token first, then the stream: every writer locks in this
        // order, so two never wait on each other. Then the blocks, read
        // under the stream's lock. All three go in one round trip; when
        // the token was answered before, the rest is rolled back. Each is
        // prepared first, so each is sent as soon as it is polled, in
        // this order.
        futures::try_join!(
            prepare(&tx, tokens::CLAIM),
            prepare(&tx, LOCK_STREAM),
            prepare(&tx, READ_BLOCKS)
        )?;
        let (claimed, stream_id, blocks) = futures::try_join!(
            claim(&tx, answer.as_ref()),
            lock_stream(&tx, name, !segments.is_empty()),
            read_blocks(&tx, name, &segments, true),
        )?;
        if let Some(first) = claimed {
            tx.rollback().await.map_err(storage)?;
            return Ok(Commit::Answered(first));
        }
        let merged = Merge::batch(blocks, segments.into_iter().map(Cow::Owned), now);
        let outcome = merged.outcome;
        let delta = i64::from(outcome.accepted) - merged.expired_removed as i64;
        let respond = async {
            match &answer {
                Some(answer) => {
                    let response = (answer.response)(&outcome);
                    tokens::set_response(&tx, &answer.key, &response).await
                }
                None => Ok(()),
            }
        };
        futures::try_join!(
            write_merged(&tx, stream_id, &merged),
            PgCatalog::count_in(&tx, delta, 0),
            respond
        )?;
        tx.commit().await.map_err(storage)?;
        self.counted(delta, 0);
        Ok(Commit::Done(outcome))
    }
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

/// Writes blocks, each row's fields as arrays of one length.
pub(super) const UPSERT_BLOCKS: &str = "INSERT INTO segment_blocks
        (stream_id, minute_us, last_start_us, segments, block)
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int4[], $5::bytea[])
    ON CONFLICT (stream_id, minute_us) DO UPDATE SET last_start_us = EXCLUDED.last_start_us,
        segments = EXCLUDED.segments, block = EXCLUDED.block";

const DELETE_BLOCKS: &str =
    "DELETE FROM segment_blocks WHERE stream_id = $1 AND minute_us = ANY($2::int8[])";

/// Adds duplicate-index entries, given as (stream_id, hash, minute_us).
pub(super) const ADD_ENTRIES: &str = "INSERT INTO segment_keys (stream_id, hash, minute_us)
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[])";

/// Removes duplicate-index entries, given as (stream_id, hash, minute_us).
pub(super) const REMOVE_ENTRIES: &str = "DELETE FROM segment_keys k
    USING unnest($1::int8[], $2::int8[], $3::int8[]) AS e(stream_id, hash, minute_us)
    WHERE k.stream_id = e.stream_id AND k.hash = e.hash AND k.minute_us = e.minute_us";

const GROW_LONGEST: &str =
    "UPDATE streams SET longest_segment = GREATEST(longest_segment, $2) WHERE id = $1";

/// Blocks as the arrays of [`UPSERT_BLOCKS`].
#[derive(Default)]
pub(super) struct BlockRows {
    pub stream_ids: Vec<i64>,
    pub minutes: Vec<i64>,
    pub last_starts: Vec<i64>,
    pub counts: Vec<i32>,
    pub blocks: Vec<Vec<u8>>,
}

impl BlockRows {
    /// Adds a block of segments sorted in scan order.
    pub fn push(&mut self, stream_id: i64, minute: u64, segments: &[Segment]) {
        self.stream_ids.push(stream_id);
        self.minutes.push(minute_us(minute));
        self.last_starts
            .push(segments.iter().map(|s| s.start).max().unwrap_or(i64::MIN));
        self.counts.push(segments.len() as i32);
        self.blocks
            .push(codec::encode_block(block_base(minute), segments));
    }

    pub async fn upsert(&self, client: &impl GenericClient) -> Result<(), CatalogError> {
        if self.minutes.is_empty() {
            return Ok(());
        }
        let statement = prepare(client, UPSERT_BLOCKS).await?;
        client
            .execute(
                &statement,
                &[
                    &self.stream_ids,
                    &self.minutes,
                    &self.last_starts,
                    &self.counts,
                    &self.blocks,
                ],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }
}

/// Duplicate-index entries as the arrays of [`ADD_ENTRIES`] and
/// [`REMOVE_ENTRIES`].
#[derive(Default)]
pub(super) struct EntryRows {
    stream_ids: Vec<i64>,
    hashes: Vec<i64>,
    minutes: Vec<i64>,
}

impl EntryRows {
    pub fn of(stream_id: i64, entries: &[IndexEntry]) -> EntryRows {
        let mut rows = EntryRows::default();
        entries
            .iter()
            .for_each(|entry| rows.push(stream_id, *entry));
        rows
    }

    pub fn push(&mut self, stream_id: i64, (hash, minute): IndexEntry) {
        self.stream_ids.push(stream_id);
        self.hashes.push(hash as i64);
        self.minutes.push(minute_us(minute));
    }

    /// Runs `sql`, [`ADD_ENTRIES`] or [`REMOVE_ENTRIES`], on these.
    pub async fn apply(&self, client: &impl GenericClient, sql: &str) -> Result<(), CatalogError> {
        if self.hashes.is_empty() {
            return Ok(());
        }
        let statement = prepare(client, sql).await?;
        client
            .execute(&statement, &[&self.stream_ids, &self.hashes, &self.minutes])
            .await
            .map_err(storage)?;
        Ok(())
    }
}

/// Writes what a merge changed: blocks, entries and the longest segment,
/// pipelined in one round trip.
async fn write_merged(
    tx: &Transaction<'_>,
    stream_id: Option<i64>,
    merged: &Merged,
) -> Result<(), CatalogError> {
    let Some(stream_id) = stream_id else {
        return Ok(());
    };
    let mut rows = BlockRows::default();
    let mut emptied = Vec::new();
    for (minute, block) in &merged.blocks {
        if block.is_empty() {
            emptied.push(minute_us(*minute));
        } else {
            rows.push(stream_id, *minute, block);
        }
    }
    let removed = EntryRows::of(stream_id, &merged.entries_removed);
    let added = EntryRows::of(stream_id, &merged.entries_added);
    futures::try_join!(
        prepare(tx, UPSERT_BLOCKS),
        prepare(tx, DELETE_BLOCKS),
        prepare(tx, REMOVE_ENTRIES),
        prepare(tx, ADD_ENTRIES),
        prepare(tx, GROW_LONGEST),
    )?;
    let delete_emptied = async {
        if emptied.is_empty() {
            return Ok(());
        }
        super::statements::execute(tx, DELETE_BLOCKS, &[&stream_id, &emptied]).await?;
        Ok(())
    };
    let grow_longest = async {
        if merged.longest == 0 {
            return Ok(());
        }
        super::statements::execute(tx, GROW_LONGEST, &[&stream_id, &merged.longest]).await?;
        Ok(())
    };
    futures::try_join!(
        rows.upsert(tx),
        delete_emptied,
        removed.apply(tx, REMOVE_ENTRIES),
        added.apply(tx, ADD_ENTRIES),
        grow_longest,
    )?;
    Ok(())
}
