//! One Register batch inside its sled transaction: the duplicate-index
//! buckets of the batch's hashes and the blocks they name or the batch
//! ends in are read, the batch is merged in by [`Merge`], the rules every
//! engine shares, and what changed is written back.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::super::{CatalogError, abort, object_index};
use super::{RegisterOutcome, StreamRecord, block_base, block_key, object_hash, read_bucket};
use crate::catalog::blocks::codec;
use crate::catalog::blocks::merge::{IndexEntry, Merge, Merged, minutes_ended_in};
use crate::manifest::{Micros, Segment};

type TxResult<T> = Result<T, ConflictableTransactionError<CatalogError>>;

/// The trees a registration reads and writes, as its transaction sees them.
pub(super) struct Trees<'a> {
    pub streams: &'a TransactionalTree,
    pub segments: &'a TransactionalTree,
    pub index: &'a TransactionalTree,
}

/// What a registration wrote.
pub(super) struct Written {
    pub outcome: RegisterOutcome,
    /// Expired copies of re-registered objects dropped from their blocks.
    pub expired_removed: u64,
    /// Whether a duplicate-index bucket is now over its size.
    pub overfull: bool,
}

/// Merges `batch` into the stream of `stream_key`, whose record (as this
/// transaction read it, or a new one) is `stream`, and writes the blocks,
/// index buckets and record that changed; nothing when nothing did.
pub(super) fn register(
    trees: &Trees,
    stream_key: &[u8],
    mut stream: StreamRecord,
    batch: &[Segment],
    now: Micros,
) -> TxResult<Written> {
    let mut hashes: Vec<u64> = batch.iter().map(object_hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    let mut buckets = BTreeMap::new();
    read_buckets(trees.index, &stream, &hashes, &mut buckets)?;
    let mut minutes = minutes_ended_in(batch);
    for hash in &hashes {
        let bucket = &buckets[&object_index::bucket_of(*hash, stream.index_depth)];
        minutes.extend(bucket.iter().filter(|(h, _)| h == hash).map(|(_, m)| *m));
    }
    let blocks = read_blocks(trees.segments, stream.id, &minutes)?;
    // Borrowed: the transaction may run again, with the same batch.
    let merged = Merge::batch(blocks, batch.iter().map(Cow::Borrowed), now);
    if merged.blocks.is_empty() {
        return Ok(Written {
            outcome: merged.outcome,
            expired_removed: 0,
            overfull: false,
        });
    }
    write_blocks(trees.segments, stream.id, &merged.blocks)?;
    let overfull = write_entries(trees.index, &stream, &merged, &mut buckets)?;
    if merged.outcome.accepted > 0 {
        stream.longest_segment = stream.longest_segment.max(merged.longest);
        trees.streams.insert(stream_key, stream.encode_to_vec())?;
    }
    Ok(Written {
        outcome: merged.outcome,
        expired_removed: merged.expired_removed,
        overfull,
    })
}

/// Reads into `buckets` those of `hashes` not read yet.
fn read_buckets(
    index: &TransactionalTree,
    stream: &StreamRecord,
    hashes: &[u64],
    buckets: &mut BTreeMap<u32, Vec<object_index::Entry>>,
) -> TxResult<()> {
    for hash in hashes {
        let bucket = object_index::bucket_of(*hash, stream.index_depth);
        if let Entry::Vacant(vacant) = buckets.entry(bucket) {
            vacant.insert(read_bucket(index, stream.id, bucket)?);
        }
    }
    Ok(())
}

/// The stream's blocks at `minutes`, those that exist.
fn read_blocks(
    tree: &TransactionalTree,
    stream_id: u64,
    minutes: &BTreeSet<u64>,
) -> TxResult<BTreeMap<u64, Vec<Segment>>> {
    let mut blocks = BTreeMap::new();
    for minute in minutes {
        if let Some(bytes) = tree.get(block_key(stream_id, *minute))? {
            let mut block = Vec::new();
            codec::decode_block(block_base(*minute), &bytes, |s| block.push(s)).map_err(abort)?;
            blocks.insert(*minute, block);
        }
    }
    Ok(blocks)
}

/// Writes the blocks a merge changed; an emptied block is removed.
fn write_blocks(
    tree: &TransactionalTree,
    stream_id: u64,
    blocks: &[(u64, Vec<Segment>)],
) -> TxResult<()> {
    for (minute, block) in blocks {
        let key = block_key(stream_id, *minute);
        if block.is_empty() {
            tree.remove(&key)?;
        } else {
            tree.insert(&key, codec::encode_block(block_base(*minute), block))?;
        }
    }
    Ok(())
}

/// Applies the entries a merge added and removed to the stream's index
/// buckets and writes those that changed, an emptied one removed; whether
/// one of them is now over its size.
fn write_entries(
    index: &TransactionalTree,
    stream: &StreamRecord,
    merged: &Merged,
    buckets: &mut BTreeMap<u32, Vec<object_index::Entry>>,
) -> TxResult<bool> {
    // Every entry is of a hash of the batch, so its bucket was read; this
    // only guards that rule.
    let hashes: Vec<u64> = [&merged.entries_added, &merged.entries_removed]
        .into_iter()
        .flatten()
        .map(|(hash, _): &IndexEntry| *hash)
        .collect();
    read_buckets(index, stream, &hashes, buckets)?;
    let changed = object_index::apply(
        buckets,
        stream.index_depth,
        &merged.entries_removed,
        &merged.entries_added,
    );
    let mut overfull = false;
    for bucket in changed {
        let entries = &buckets[&bucket];
        let key = object_index::bucket_key(stream.id, bucket);
        if entries.is_empty() {
            index.remove(&key)?;
        } else {
            index.insert(&key, object_index::encode(entries))?;
        }
        overfull |= entries.len() > object_index::MAX_BUCKET;
    }
    Ok(overfull)
}
