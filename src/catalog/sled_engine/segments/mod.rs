//! Segments: each stream's record, its segments packed in one block per
//! minute of their end, and the duplicate index that finds a block holding
//! an object without reading the stream (see [`object_index`]).

mod registration;

use std::sync::atomic::Ordering;

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::super::{
    CatalogError, Commit, MAX_SCAN_PAGE, RegisterAnswer, RegisterOutcome, ScanFrom, StreamName,
    segment_expired,
};
use super::tokens;
use super::{SledCatalog, abort, object_index};
pub(super) use crate::catalog::blocks::{block_base, object_hash};
use crate::catalog::blocks::{codec, minute_of, same_object, scan_order};
use crate::manifest::{Micros, Segment};

/// What the catalog knows of a stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamRecord {
    /// Short id that prefixes the stream's segment keys.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Longest segment ever registered: the "one segment" of the range rule.
    #[prost(int64, tag = "2")]
    pub longest_segment: Micros,
    /// When the first segment was registered.
    #[prost(int64, tag = "3")]
    pub created: Micros,
    /// Bits of an object's hash that choose its bucket of the duplicate
    /// index (see `object_index`).
    #[prost(uint32, tag = "4")]
    pub index_depth: u32,
}

/// The key of a stream's record; NUL cannot occur in validated names, so
/// it is unambiguous.
fn stream_key(name: &StreamName) -> Vec<u8> {
    [
        name.domain.as_bytes(),
        name.app.as_bytes(),
        name.stream.as_bytes(),
    ]
    .join(&0u8)
}

pub(super) fn block_key(stream_id: u64, minute: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&stream_id.to_be_bytes());
    key[8..].copy_from_slice(&minute.to_be_bytes());
    key
}

/// A bucket of the duplicate index, as a transaction sees it.
pub(super) fn read_bucket(
    tree: &TransactionalTree,
    stream_id: u64,
    bucket: u32,
) -> Result<Vec<object_index::Entry>, ConflictableTransactionError<CatalogError>> {
    match tree.get(object_index::bucket_key(stream_id, bucket))? {
        Some(bytes) => object_index::decode(&bytes).map_err(abort),
        None => Ok(Vec::new()),
    }
}

pub(super) fn expired(segment: &Segment, now: Micros) -> bool {
    segment_expired(segment, now)
}

impl SledCatalog {
    pub fn stream(&self, name: &StreamName) -> Result<Option<StreamRecord>, CatalogError> {
        match self.streams.get(stream_key(name))? {
            Some(bytes) => StreamRecord::decode(&*bytes)
                .map(Some)
                .map_err(|err| CatalogError::Corrupt(err.to_string())),
            None => Ok(None),
        }
    }

    /// The stream's record, made (with no segment) if missing.
    pub fn ensure_stream(
        &self,
        name: &StreamName,
        now: Micros,
    ) -> Result<StreamRecord, CatalogError> {
        let _guard = self
            .register_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(stream) = self.stream(name)? {
            return Ok(stream);
        }
        let stream = StreamRecord {
            id: self.db.generate_id()?,
            longest_segment: 0,
            created: now,
            index_depth: 0,
        };
        self.streams
            .insert(stream_key(name), stream.encode_to_vec())?;
        Ok(stream)
    }

    /// Whether each segment's (bucket, object) is already registered, live,
    /// for the stream: a read-only look, so a caller can skip work for
    /// segments a registration would count as duplicates.
    pub fn registered(
        &self,
        name: &StreamName,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        let Some(stream) = self.stream(name)? else {
            return Ok(vec![false; segments.len()]);
        };
        let known = self.registered_at_depth(&stream, segments, now)?;
        // A registration that split the index in between moved the entries
        // looked up: look again at the new depth.
        match self.stream(name)? {
            Some(now_stream) if now_stream.index_depth != stream.index_depth => {
                self.registered_at_depth(&now_stream, segments, now)
            }
            _ => Ok(known),
        }
    }

    fn registered_at_depth(
        &self,
        stream: &StreamRecord,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        let mut known = Vec::with_capacity(segments.len());
        for segment in segments {
            let mut found = false;
            let hash = object_hash(segment);
            let bucket = object_index::bucket_of(hash, stream.index_depth);
            let key = object_index::bucket_key(stream.id, bucket);
            if let Some(bytes) = self.object_index.get(key)? {
                let entries = object_index::decode(&bytes)
                    .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
                for (_, minute) in entries.into_iter().filter(|(h, _)| *h == hash) {
                    if let Some(bytes) = self.segments.get(block_key(stream.id, minute))? {
                        codec::decode_block(block_base(minute), &bytes, |stored| {
                            found |= same_object(&stored, segment) && !expired(&stored, now);
                        })
                        .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
                    }
                }
            }
            known.push(found);
        }
        Ok(known)
    }

    /// Adds segments of one stream in one atomic step; segments already
    /// known (same bucket and object) are counted and left as they are.
    /// Not durable until [`SledCatalog::flush`].
    pub fn register(
        &self,
        name: &StreamName,
        batch: Vec<Segment>,
        now: Micros,
    ) -> Result<RegisterOutcome, CatalogError> {
        match self.register_answering(name, batch, now, None)? {
            Commit::Done(outcome) => Ok(outcome),
            Commit::Answered(_) => unreachable!("no token was given"),
        }
    }

    /// [`SledCatalog::register`], storing in the same transaction the
    /// answer to the request's ClientToken, made from the outcome; nothing
    /// is written when the token has a live answer already.
    pub fn register_answering(
        &self,
        name: &StreamName,
        batch: Vec<Segment>,
        now: Micros,
        answer: Option<&RegisterAnswer>,
    ) -> Result<Commit<RegisterOutcome>, CatalogError> {
        let _guard = self
            .register_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stream_key = stream_key(name);
        let new_id = match self.streams.get(&stream_key)? {
            Some(_) => None,
            None => Some(self.db.generate_id()?),
        };
        let trees = (
            &self.streams,
            &self.segments,
            &self.object_index,
            &self.tokens,
            &self.token_expiry,
        );
        let result = trees.transaction(|(streams, segments, index, tokens, token_expiry)| {
            if let Some(answer) = answer
                && let Some(first) = tokens::live_answer(tokens, &answer.key, answer.created)?
            {
                return Ok(Commit::Answered(first));
            }
            let stream = match streams.get(&stream_key)? {
                Some(bytes) => StreamRecord::decode(&*bytes).map_err(abort)?,
                None => StreamRecord {
                    id: new_id.unwrap_or_default(),
                    longest_segment: 0,
                    created: now,
                    index_depth: 0,
                },
            };
            let trees = registration::Trees {
                streams,
                segments,
                index,
            };
            let written = registration::register(&trees, &stream_key, stream, &batch, now)?;
            if let Some(answer) = answer {
                tokens::insert_answer(tokens, token_expiry, &answer.answer(&written.outcome))?;
            }
            Ok(Commit::Done(written))
        });
        let written = match result.map_err(CatalogError::from)? {
            Commit::Done(written) => written,
            Commit::Answered(first) => return Ok(Commit::Answered(first)),
        };
        if written.overfull {
            // A step of its own: listing the stream's buckets cannot happen
            // inside a sled transaction. A crash before it leaves a bucket
            // over the size, which the next registration splits.
            self.split_index(&stream_key)?;
        }
        // Under the register lock, like every other change of the count.
        let count = &self.segments_stored;
        count.fetch_add(written.outcome.accepted as u64, Ordering::Relaxed);
        count.fetch_sub(
            written.expired_removed.min(count.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Ok(Commit::Done(written.outcome))
    }

    /// Rewrites a stream's duplicate index one or more levels deeper, so no
    /// bucket holds more than [`object_index::MAX_BUCKET`] entries. Only
    /// buckets that exist are read, so the cost follows the stream's
    /// entries, not its depth (which crafted object names could push up).
    /// Called with the register lock held: nothing else writes the index.
    fn split_index(&self, stream_key: &[u8]) -> Result<(), CatalogError> {
        let Some(bytes) = self.streams.get(stream_key)? else {
            return Ok(());
        };
        let stream =
            StreamRecord::decode(&*bytes).map_err(|err| CatalogError::Corrupt(err.to_string()))?;
        if stream.index_depth >= object_index::MAX_DEPTH {
            return Ok(());
        }
        let mut numbers = Vec::new();
        for key in self
            .object_index
            .scan_prefix(stream.id.to_be_bytes())
            .keys()
        {
            let key = key?;
            let number = key
                .get(8..12)
                .and_then(|bytes| bytes.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| CatalogError::Corrupt("object index key is not 12 bytes".into()))?;
            numbers.push(number);
        }
        (&self.streams, &self.object_index)
            .transaction(|(streams, index)| {
                let mut entries = Vec::new();
                for bucket in &numbers {
                    entries.extend(read_bucket(index, stream.id, *bucket)?);
                }
                let (depth, buckets) = object_index::split(stream.index_depth, entries);
                for bucket in &numbers {
                    if !buckets.contains_key(bucket) {
                        index.remove(&object_index::bucket_key(stream.id, *bucket))?;
                    }
                }
                for (bucket, bucket_entries) in &buckets {
                    index.insert(
                        &object_index::bucket_key(stream.id, *bucket),
                        object_index::encode(bucket_entries),
                    )?;
                }
                let split = StreamRecord {
                    index_depth: depth,
                    ..stream.clone()
                };
                streams.insert(stream_key, split.encode_to_vec())?;
                Ok::<_, ConflictableTransactionError<CatalogError>>(())
            })
            .map_err(CatalogError::from)
    }

    /// Visits the live segments of a stream whose end lies in (after,
    /// until], a minute of ends at a time. Segments whose retention has
    /// passed are skipped.
    pub fn visit_by_end(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        mut visit: impl FnMut(Segment),
    ) -> Result<(), CatalogError> {
        let range = block_key(stream_id, minute_of(after))..=block_key(stream_id, minute_of(until));
        for entry in self.segments.range(range) {
            let (key, bytes) = entry?;
            let minute = u64::from_be_bytes(key[8..16].try_into().expect("16-byte block key"));
            codec::decode_block(block_base(minute), &bytes, |segment| {
                let end = segment.end();
                if end > after && end <= until && !expired(&segment, now) {
                    visit(segment);
                }
            })
            .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
        }
        Ok(())
    }

    /// Up to `limit` live segments of a stream after `from` that end by
    /// `until`, in (end, bucket, object) order. A block holds one minute of
    /// ends, so sorting each block orders the whole scan, and the scan
    /// stops at the block that fills the page.
    pub fn scan_page(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError> {
        let first_end = match from {
            ScanFrom::EndsAfter(after) => after.saturating_add(1),
            ScanFrom::Past { end, .. } => *end,
        };
        let mut page = Vec::with_capacity(limit.min(MAX_SCAN_PAGE));
        if first_end > until || limit == 0 {
            return Ok(page);
        }
        let range =
            block_key(stream_id, minute_of(first_end))..=block_key(stream_id, minute_of(until));
        let first_minute = minute_of(first_end);
        let mut block = Vec::new();
        for entry in self.segments.range(range) {
            let (key, bytes) = entry?;
            let minute = u64::from_be_bytes(key[8..16].try_into().expect("16-byte block key"));
            // Only the first block can hold segments at or before `from`.
            let check_from = minute == first_minute;
            codec::decode_block(block_base(minute), &bytes, |segment| {
                if segment.end() <= until
                    && (!check_from || from.precedes(&segment))
                    && !expired(&segment, now)
                {
                    block.push(segment);
                }
            })
            .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
            // Recorders register in order, so most blocks are sorted already.
            if !block.is_sorted_by_key(scan_order) {
                block.sort_by(|a, b| scan_order(a).cmp(&scan_order(b)));
            }
            block.truncate(limit - page.len());
            page.append(&mut block);
            if page.len() == limit {
                break;
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;
    use crate::manifest::range::SEGMENT_RETENTION;

    const NOW: Micros = 1_800_000_000_000_000;

    fn name() -> StreamName {
        StreamName {
            domain: "example.com".into(),
            app: "live".into(),
            stream: "s1".into(),
        }
    }

    fn segment(index: i64) -> Segment {
        Segment {
            endpoint: "localhost".into(),
            bucket: "bucket".into(),
            object: format!("live/s1/{index:05}.ts"),
            start: NOW - 3_600_000_000 + index * 6_000_000,
            duration: 6_000_000,
            sequence: index,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 0,
            media: None,
        }
    }

    #[test]
    fn the_duplicate_index_splits_as_a_stream_grows_and_still_knows_every_object() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        // 600 segments, one at a time and in batches: many splits.
        let all: Vec<Segment> = (0..600).map(segment).collect();
        for one in &all[..100] {
            let outcome = catalog.register(&name(), vec![one.clone()], NOW).unwrap();
            assert_eq!(outcome.accepted, 1);
        }
        for batch in all[100..].chunks(250) {
            catalog.register(&name(), batch.to_vec(), NOW).unwrap();
        }
        let stream = catalog.stream(&name()).unwrap().unwrap();
        assert!(stream.index_depth >= 3, "depth {}", stream.index_depth);
        assert_index_follows_blocks(&catalog, stream.id);
        let keys = catalog.object_index.len();
        assert!(keys <= 600 / 8, "{keys} index keys for 600 segments");
        for bucket in catalog.object_index.iter() {
            let (_, value) = bucket.unwrap();
            assert!(object_index::decode(&value).unwrap().len() <= object_index::MAX_BUCKET);
        }
        // Every object is known, sent again alone, in a batch, or with
        // other times.
        let again = catalog.register(&name(), all.clone(), NOW).unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 600));
        let mut moved = all[7].clone();
        moved.start += 3_600_000_000;
        let outcome = catalog.register(&name(), vec![moved], NOW).unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (0, 1));
        assert!(
            catalog
                .registered(&name(), &all, NOW)
                .unwrap()
                .iter()
                .all(|known| *known)
        );
        assert_eq!(scan_all(&catalog, stream.id).len(), 600);
        // Sweeping every block empties the index too.
        let later = NOW + 100 * 86_400_000_000;
        let swept = catalog.sweep(later, 10_000).unwrap();
        assert_eq!(swept.segments, 600);
        assert_eq!(catalog.object_index.len(), 0);
    }

    fn scan_all(catalog: &SledCatalog, id: u64) -> Vec<Segment> {
        let mut found = Vec::new();
        catalog
            .visit_by_end(id, 0, NOW, NOW, |segment| found.push(segment))
            .unwrap();
        found
    }

    #[test]
    fn register_is_idempotent_and_scans_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let batch: Vec<Segment> = (0..50).rev().map(segment).collect();
        let outcome = catalog.register(&name(), batch.clone(), NOW).unwrap();
        assert_eq!(
            outcome,
            RegisterOutcome {
                accepted: 50,
                duplicates: 0
            }
        );
        let again = catalog.register(&name(), batch, NOW).unwrap();
        assert_eq!(
            again,
            RegisterOutcome {
                accepted: 0,
                duplicates: 50
            }
        );
        // The same object under another start time is still the same segment.
        let mut moved = segment(3);
        moved.start += 3_600_000_000;
        let moved_outcome = catalog
            .register(&name(), vec![moved, segment(3)], NOW)
            .unwrap();
        assert_eq!(
            moved_outcome,
            RegisterOutcome {
                accepted: 0,
                duplicates: 2
            }
        );
        let stream = catalog.stream(&name()).unwrap().unwrap();
        assert_eq!(stream.longest_segment, 6_000_000);
        let found = scan_all(&catalog, stream.id);
        assert_eq!(found, (0..50).map(segment).collect::<Vec<_>>());
    }

    #[test]
    fn a_duplicate_inside_one_batch_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let outcome = catalog
            .register(&name(), vec![segment(1), segment(1)], NOW)
            .unwrap();
        assert_eq!(
            outcome,
            RegisterOutcome {
                accepted: 1,
                duplicates: 1
            }
        );
    }

    #[test]
    fn scan_bounds_are_exclusive_then_inclusive_and_skip_expired() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        catalog
            .register(&name(), (0..10).map(segment).collect(), NOW)
            .unwrap();
        let id = catalog.stream(&name()).unwrap().unwrap().id;
        let mut found = Vec::new();
        catalog
            .visit_by_end(id, segment(2).end(), segment(5).end(), NOW, |s| {
                found.push(s.sequence)
            })
            .unwrap();
        assert_eq!(found, vec![3, 4, 5]);
        let later = segment(3).start + SEGMENT_RETENTION;
        let mut alive = Vec::new();
        catalog
            .visit_by_end(id, 0, NOW, later, |s| alive.push(s.sequence))
            .unwrap();
        assert_eq!(alive, vec![4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
            catalog
                .register(&name(), (0..3).map(segment).collect(), NOW)
                .unwrap();
            catalog.flush().unwrap();
        }
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let id = catalog.stream(&name()).unwrap().unwrap().id;
        assert_eq!(scan_all(&catalog, id).len(), 3);
    }

    #[test]
    fn an_expired_copy_does_not_make_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        catalog.register(&name(), vec![segment(0)], NOW).unwrap();
        let later = segment(0).start + SEGMENT_RETENTION;
        let mut reused = segment(0);
        reused.start = later - 60_000_000;
        let outcome = catalog
            .register(&name(), vec![reused.clone()], later)
            .unwrap();
        assert_eq!(
            outcome,
            RegisterOutcome {
                accepted: 1,
                duplicates: 0
            }
        );
        let id = catalog.stream(&name()).unwrap().unwrap().id;
        let mut found = Vec::new();
        catalog
            .visit_by_end(id, 0, i64::MAX / 2, 0, |s| found.push(s))
            .unwrap();
        assert_eq!(found, vec![reused]);
    }

    /// The duplicate index's rule: an entry (hash, minute) exists exactly
    /// while that minute's block holds an object of that hash, once; and
    /// no block is stored empty.
    fn assert_index_follows_blocks(catalog: &SledCatalog, stream_id: u64) {
        let prefix = stream_id.to_be_bytes();
        let mut entries = Vec::new();
        for bucket in catalog.object_index.scan_prefix(prefix) {
            let (_, value) = bucket.unwrap();
            entries.extend(object_index::decode(&value).unwrap());
        }
        let mut held = std::collections::BTreeSet::new();
        for block in catalog.segments.scan_prefix(prefix) {
            let (key, bytes) = block.unwrap();
            let minute = u64::from_be_bytes(key[8..16].try_into().unwrap());
            let mut stored = 0;
            codec::decode_block(block_base(minute), &bytes, |segment| {
                held.insert((object_hash(&segment), minute));
                stored += 1;
            })
            .unwrap();
            assert!(stored > 0, "an empty block is stored at minute {minute}");
        }
        entries.sort_unstable();
        assert_eq!(entries, held.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn an_object_registered_again_after_it_expired_moves_its_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let (first, second, other) = (segment(0), segment(1), segment(20));
        assert_eq!(minute_of(first.end()), minute_of(second.end()));
        assert_ne!(minute_of(first.end()), minute_of(other.end()));
        catalog
            .register(&name(), vec![first.clone(), other.clone()], NOW)
            .unwrap();
        let later = second.start + SEGMENT_RETENTION;
        let again = |segment: &Segment| {
            let mut reused = segment.clone();
            reused.start = later - 60_000_000;
            reused
        };
        // The old copy's block still holds another object, then none.
        let outcome = catalog
            .register(&name(), vec![second.clone()], NOW)
            .unwrap();
        assert_eq!(outcome.accepted, 1);
        let id = catalog.stream(&name()).unwrap().unwrap().id;
        assert_index_follows_blocks(&catalog, id);
        let stored = catalog.segments_stored.load(Ordering::Relaxed);
        for reused in [again(&first), again(&second)] {
            let outcome = catalog.register(&name(), vec![reused], later).unwrap();
            assert_eq!((outcome.accepted, outcome.duplicates), (1, 0));
            assert_index_follows_blocks(&catalog, id);
        }
        let old_block = block_key(id, minute_of(first.end()));
        assert!(catalog.segments.get(old_block).unwrap().is_none());
        assert_eq!(catalog.segments_stored.load(Ordering::Relaxed), stored);
        // Registered again, the new copies are duplicates.
        let outcome = catalog
            .register(&name(), vec![again(&first), again(&second)], later)
            .unwrap();
        assert_eq!((outcome.accepted, outcome.duplicates), (0, 2));
    }
}
