//! One Register batch inside its sled transaction: which segments are new,
//! the minute blocks and duplicate-index buckets they change, and the
//! writes that store them.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::super::{CatalogError, abort, object_index};
use super::{
    RegisterOutcome, StreamRecord, block_base, block_key, expired, object_hash, read_bucket,
};
use crate::catalog::blocks::{codec, minute_of, position_in, same_object};
use crate::manifest::{Micros, Segment};

type TxResult<T> = Result<T, ConflictableTransactionError<CatalogError>>;

fn read_block(
    tree: &TransactionalTree,
    key: &[u8],
    minute: u64,
) -> Result<Vec<Segment>, ConflictableTransactionError<CatalogError>> {
    let mut segments = Vec::new();
    if let Some(bytes) = tree.get(key)? {
        codec::decode_block(block_base(minute), &bytes, |segment| segments.push(segment))
            .map_err(abort)?;
    }
    Ok(segments)
}

/// Blocks read during one registration, and which of them changed.
#[derive(Default)]
struct PendingBlocks {
    loaded: BTreeMap<u64, Vec<Segment>>,
    dirty: std::collections::BTreeSet<u64>,
}

impl PendingBlocks {
    fn get(
        &mut self,
        tree: &TransactionalTree,
        stream_id: u64,
        minute: u64,
    ) -> Result<&mut Vec<Segment>, ConflictableTransactionError<CatalogError>> {
        Ok(match self.loaded.entry(minute) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                entry.insert(read_block(tree, &block_key(stream_id, minute), minute)?)
            }
        })
    }
}

/// The changes one batch makes to a stream, gathered segment by segment
/// and written at the end in one go.
pub(super) struct Registration {
    stream: StreamRecord,
    outcome: RegisterOutcome,
    /// Expired copies of re-registered objects dropped from their blocks.
    expired_removed: u64,
    blocks: PendingBlocks,
    /// Duplicate-index buckets read, by number, and those changed.
    buckets: BTreeMap<u32, Vec<object_index::Entry>>,
    dirty_buckets: BTreeSet<u32>,
}

impl Registration {
    pub(super) fn new(stream: StreamRecord) -> Registration {
        Registration {
            stream,
            outcome: RegisterOutcome::default(),
            expired_removed: 0,
            blocks: PendingBlocks::default(),
            buckets: BTreeMap::new(),
            dirty_buckets: BTreeSet::new(),
        }
    }

    /// Adds `segment` unless the stream holds it already (same bucket and
    /// object), which counts it as a duplicate.
    pub(super) fn add(
        &mut self,
        segments: &TransactionalTree,
        index: &TransactionalTree,
        segment: &Segment,
        now: Micros,
    ) -> TxResult<()> {
        let stream_id = self.stream.id;
        let hash = object_hash(segment);
        let bucket = object_index::bucket_of(hash, self.stream.index_depth);
        let entries = match self.buckets.entry(bucket) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(read_bucket(index, stream_id, bucket)?),
        };
        let minutes: Vec<u64> = entries
            .iter()
            .filter(|(h, _)| *h == hash)
            .map(|(_, minute)| *minute)
            .collect();
        let mut known = false;
        for minute in minutes {
            let block = self.blocks.get(segments, stream_id, minute)?;
            // An expired copy is gone for every read: a recorder that reuses
            // an object key 90 days on adds a new segment, and the old entry
            // makes room for it.
            let before = block.len();
            block.retain(|stored| !(same_object(stored, segment) && expired(stored, now)));
            let removed = before - block.len();
            known |= block.iter().any(|stored| same_object(stored, segment));
            self.expired_removed += removed as u64;
            if removed > 0 {
                self.blocks.dirty.insert(minute);
            }
        }
        if known {
            self.outcome.duplicates += 1;
            return Ok(());
        }
        let minute = minute_of(segment.end());
        let block = self.blocks.get(segments, stream_id, minute)?;
        let position = position_in(block, segment);
        block.insert(position, segment.clone());
        self.blocks.dirty.insert(minute);
        if !entries.contains(&(hash, minute)) {
            entries.push((hash, minute));
            self.dirty_buckets.insert(bucket);
        }
        self.stream.longest_segment = self.stream.longest_segment.max(segment.duration);
        self.outcome.accepted += 1;
        Ok(())
    }

    /// Writes what changed.
    pub(super) fn write(
        self,
        streams: &TransactionalTree,
        segments: &TransactionalTree,
        index: &TransactionalTree,
        stream_key: &[u8],
    ) -> TxResult<Written> {
        if self.outcome.accepted == 0 {
            // Nothing is written, so nothing was removed either.
            return Ok(Written {
                outcome: self.outcome,
                expired_removed: 0,
                overfull: false,
            });
        }
        let stream_id = self.stream.id;
        for minute in &self.blocks.dirty {
            let block = &self.blocks.loaded[minute];
            segments.insert(
                &block_key(stream_id, *minute),
                codec::encode_block(block_base(*minute), block),
            )?;
        }
        for bucket in &self.dirty_buckets {
            index.insert(
                &object_index::bucket_key(stream_id, *bucket),
                object_index::encode(&self.buckets[bucket]),
            )?;
        }
        let overfull = self
            .dirty_buckets
            .iter()
            .any(|bucket| self.buckets[bucket].len() > object_index::MAX_BUCKET);
        streams.insert(stream_key, self.stream.encode_to_vec())?;
        Ok(Written {
            outcome: self.outcome,
            expired_removed: self.expired_removed,
            overfull,
        })
    }
}

/// What a registration wrote.
pub(super) struct Written {
    pub outcome: RegisterOutcome,
    /// Expired copies of re-registered objects dropped from their blocks.
    pub expired_removed: u64,
    /// Whether a duplicate-index bucket is now over its size.
    pub overfull: bool,
}
