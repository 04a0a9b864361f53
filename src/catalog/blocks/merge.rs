//! A Register batch applied to the blocks it can touch, without I/O.
//!
//! The engine reads, under its stream's lock, every block that holds one
//! of the batch's objects (found through the duplicate index by hash) and
//! every block the batch's segments end in; [`Merge`] decides which
//! segments are new, and gives back the blocks that changed and the
//! duplicate-index entries to add and remove. An entry (hash, minute)
//! exists exactly while the minute's block holds an object of that hash,
//! so the entries follow from the blocks before and after.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{minute_of, object_hash, position_in, same_object};
use crate::catalog::{RegisterOutcome, segment_expired};
use crate::manifest::{Micros, Segment};

/// One entry of the duplicate index: an object's hash and the minute of
/// a block holding it.
pub type IndexEntry = (u64, u64);

/// The minutes the segments of a batch end in: with the blocks the
/// duplicate index names for their hashes, the blocks a [`Merge`] of the
/// batch must be given.
pub fn minutes_ended_in(batch: &[Segment]) -> BTreeSet<u64> {
    batch.iter().map(|s| minute_of(s.end())).collect()
}

pub struct Merge {
    blocks: BTreeMap<u64, Vec<Segment>>,
    /// The hashes each block held as read, sorted.
    hashes_before: BTreeMap<u64, Vec<u64>>,
    objects: Places,
    dirty: BTreeSet<u64>,
    outcome: RegisterOutcome,
    expired_removed: u64,
    longest: Micros,
}

/// What a batch changes.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    pub outcome: RegisterOutcome,
    /// Blocks to write, by minute, in scan order; an empty one is to go.
    pub blocks: Vec<(u64, Vec<Segment>)>,
    pub entries_added: Vec<IndexEntry>,
    pub entries_removed: Vec<IndexEntry>,
    /// Expired copies of re-registered objects dropped from their blocks.
    pub expired_removed: u64,
    /// The longest segment accepted, 0 when none was.
    pub longest: Micros,
}

/// The hashes of a block's objects, sorted, each once.
fn hashes(block: &[Segment]) -> Vec<u64> {
    let mut hashes: Vec<u64> = block.iter().map(object_hash).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// Those of `hashes` not in `others` (both sorted), as entries of `minute`.
fn missing_from(hashes: &[u64], others: &[u64], minute: u64) -> impl Iterator<Item = IndexEntry> {
    hashes
        .iter()
        .filter(move |hash| others.binary_search(hash).is_err())
        .map(move |hash| (*hash, minute))
}

/// Where copies of an object may be: the minutes of the blocks that hold
/// an object of its hash. Nearly every hash is in one block, kept in a
/// map without allocating per object; the few in more (hashes that
/// collide, a copy that expired elsewhere) have their other minutes apart.
/// The blocks decide which object is which. Object names come from
/// clients, so hashes that collide must cost no more than the blocks
/// holding them: both maps use the standard keyed hasher.
#[derive(Default)]
struct Places {
    first: HashMap<u64, u64>,
    others: HashMap<u64, Vec<u64>>,
}

impl Places {
    /// Adds a minute not listed for `hash` yet.
    fn insert(&mut self, hash: u64, minute: u64) {
        match self.first.entry(hash) {
            Entry::Vacant(vacant) => {
                vacant.insert(minute);
            }
            Entry::Occupied(_) => self.others.entry(hash).or_default().push(minute),
        }
    }

    fn minutes(&self, hash: u64) -> impl Iterator<Item = u64> + '_ {
        let first = self.first.get(&hash).copied();
        // Nearly always empty: not worth hashing the key again.
        let others = (!self.others.is_empty())
            .then(|| self.others.get(&hash))
            .flatten();
        first
            .into_iter()
            .chain(others.into_iter().flatten().copied())
    }
}

impl Merge {
    /// For a batch of about `batch_len` segments.
    fn new(blocks: BTreeMap<u64, Vec<Segment>>, batch_len: usize) -> Merge {
        let hashes_before: BTreeMap<u64, Vec<u64>> =
            blocks.iter().map(|(m, b)| (*m, hashes(b))).collect();
        let stored: usize = hashes_before.values().map(Vec::len).sum();
        // Sized once: growing it object by object costs more than the
        // lookups.
        let mut objects = Places {
            first: HashMap::with_capacity(stored + batch_len),
            others: HashMap::new(),
        };
        for (minute, block) in &hashes_before {
            block.iter().for_each(|hash| objects.insert(*hash, *minute));
        }
        Merge {
            hashes_before,
            blocks,
            objects,
            dirty: BTreeSet::new(),
            outcome: RegisterOutcome::default(),
            expired_removed: 0,
            longest: 0,
        }
    }

    /// Merges a batch, segment by segment in order, into `blocks`: the
    /// blocks as read, by minute, each sorted in scan order.
    pub fn batch<'a>(
        blocks: BTreeMap<u64, Vec<Segment>>,
        batch: impl IntoIterator<Item = Cow<'a, Segment>>,
        now: Micros,
    ) -> Merged {
        let batch = batch.into_iter();
        let mut merge = Merge::new(blocks, batch.size_hint().0);
        batch.for_each(|segment| merge.add(segment, now));
        merge.finish()
    }

    /// Adds `segment` unless the stream holds a live copy of its object,
    /// which makes it a duplicate. An expired copy is gone for every read:
    /// a recorder reusing an object key 90 days on adds a new segment, and
    /// the old copy makes room for it. A borrowed segment is copied only
    /// when it is added.
    fn add(&mut self, segment: Cow<'_, Segment>, now: Micros) {
        let hash = object_hash(&segment);
        let end_minute = minute_of(segment.end());
        let (mut known, mut listed) = (false, false);
        for minute in self.objects.minutes(hash) {
            listed |= minute == end_minute;
            let block = self.blocks.get_mut(&minute).expect("a block read");
            let before = block.len();
            block.retain(|stored| !(same_object(stored, &segment) && segment_expired(stored, now)));
            if block.len() < before {
                self.expired_removed += (before - block.len()) as u64;
                self.dirty.insert(minute);
            }
            known |= block.iter().any(|stored| same_object(stored, &segment));
        }
        if known {
            self.outcome.duplicates += 1;
            return;
        }
        if !listed {
            self.objects.insert(hash, end_minute);
        }
        self.longest = self.longest.max(segment.duration);
        let block = self.blocks.entry(end_minute).or_default();
        block.insert(position_in(block, &segment), segment.into_owned());
        self.dirty.insert(end_minute);
        self.outcome.accepted += 1;
    }

    fn finish(mut self) -> Merged {
        let mut merged = Merged {
            outcome: self.outcome,
            expired_removed: self.expired_removed,
            longest: self.longest,
            ..Merged::default()
        };
        for minute in &self.dirty {
            let block = self.blocks.remove(minute).unwrap_or_default();
            let before = self.hashes_before.remove(minute).unwrap_or_default();
            let after = hashes(&block);
            merged
                .entries_added
                .extend(missing_from(&after, &before, *minute));
            merged
                .entries_removed
                .extend(missing_from(&before, &after, *minute));
            merged.blocks.push((*minute, block));
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;

    const SECOND: Micros = 1_000_000;
    const DAY: Micros = 86_400 * SECOND;
    const NOW: Micros = 1_700_000_000 * SECOND;

    fn segment(object: &str, start: Micros) -> Segment {
        Segment {
            endpoint: "localhost:8333".into(),
            bucket: "b".into(),
            object: object.into(),
            start,
            duration: 6 * SECOND,
            sequence: 0,
            width: 0,
            height: 0,
            format: Format::Ts,
            size: 0,
            media: None,
        }
    }

    fn merged(blocks: BTreeMap<u64, Vec<Segment>>, batch: Vec<Segment>, now: Micros) -> Merged {
        Merge::batch(blocks, batch.into_iter().map(Cow::Owned), now)
    }

    #[test]
    fn new_segments_go_to_the_minute_they_end_in_sorted_with_their_entries() {
        let (a, b) = (segment("a", NOW), segment("b", NOW - 2 * SECOND));
        let minute = minute_of(a.end());
        assert_eq!(minute, minute_of(b.end()));
        let out = merged(BTreeMap::new(), vec![a.clone(), b.clone()], NOW);
        assert_eq!(out.outcome.accepted, 2);
        assert_eq!(out.blocks, vec![(minute, vec![b.clone(), a.clone()])]);
        let mut added = out.entries_added.clone();
        added.sort_unstable();
        let mut expected = vec![(object_hash(&a), minute), (object_hash(&b), minute)];
        expected.sort_unstable();
        assert_eq!(added, expected);
        assert!(out.entries_removed.is_empty());
        assert_eq!(out.longest, 6 * SECOND);
    }

    #[test]
    fn a_stored_object_is_a_duplicate_whatever_its_times_and_changes_nothing() {
        let stored = segment("a", NOW);
        let minute = minute_of(stored.end());
        let blocks = BTreeMap::from([(minute, vec![stored])]);
        let out = merged(blocks, vec![segment("a", NOW + 3600 * SECOND)], NOW);
        assert_eq!(out.outcome.duplicates, 1);
        assert_eq!(
            out,
            Merged {
                outcome: out.outcome,
                ..Merged::default()
            }
        );
    }

    #[test]
    fn an_expired_copy_makes_room_and_its_entry_moves() {
        let old = segment("a", NOW - 91 * DAY);
        let old_minute = minute_of(old.end());
        let blocks = BTreeMap::from([(old_minute, vec![old.clone()])]);
        let fresh = segment("a", NOW);
        let out = merged(blocks, vec![fresh.clone()], NOW);
        assert_eq!(out.outcome.accepted, 1);
        assert_eq!(out.expired_removed, 1);
        let fresh_minute = minute_of(fresh.end());
        assert_eq!(
            out.blocks,
            vec![(old_minute, vec![]), (fresh_minute, vec![fresh.clone()])]
        );
        assert_eq!(out.entries_removed, vec![(object_hash(&old), old_minute)]);
        assert_eq!(out.entries_added, vec![(object_hash(&fresh), fresh_minute)]);
    }

    #[test]
    fn an_expired_copy_replaced_in_its_own_minute_keeps_its_entry() {
        let old = segment("a", NOW - 91 * DAY);
        let minute = minute_of(old.end());
        let blocks = BTreeMap::from([(minute, vec![old.clone(), segment("b", old.start)])]);
        let mut again = old.clone();
        again.sequence = 9;
        let out = merged(blocks, vec![again], NOW);
        assert_eq!(out.outcome.accepted, 1);
        assert_eq!(out.expired_removed, 1);
        assert!(out.entries_added.is_empty() && out.entries_removed.is_empty());
        assert_eq!(out.blocks[0].1.len(), 2);
    }

    #[test]
    fn a_repeat_inside_a_batch_is_a_duplicate_of_the_first() {
        let a = segment("a", NOW);
        let mut again = a.clone();
        again.start += 600 * SECOND;
        let out = merged(BTreeMap::new(), vec![a.clone(), again], NOW);
        assert_eq!((out.outcome.accepted, out.outcome.duplicates), (1, 1));
        assert_eq!(out.blocks, vec![(minute_of(a.end()), vec![a.clone()])]);
        assert_eq!(
            out.entries_added,
            vec![(object_hash(&a), minute_of(a.end()))]
        );
    }

    #[test]
    fn an_expired_copy_replaced_within_one_batch_leaves_one_copy() {
        let old = segment("a", NOW - 91 * DAY);
        let blocks = BTreeMap::from([(minute_of(old.end()), vec![old.clone()])]);
        let fresh = segment("a", NOW);
        let out = merged(blocks, vec![fresh.clone(), fresh.clone()], NOW);
        assert_eq!((out.outcome.accepted, out.outcome.duplicates), (1, 1));
        assert_eq!(out.expired_removed, 1);
        let stored: Vec<&Segment> = out.blocks.iter().flat_map(|(_, b)| b).collect();
        assert_eq!(stored, vec![&fresh]);
    }

    #[test]
    fn a_block_without_changes_is_not_given_back() {
        let (a, b) = (segment("a", NOW), segment("b", NOW + 3600 * SECOND));
        let blocks = BTreeMap::from([
            (minute_of(a.end()), vec![a.clone()]),
            (minute_of(b.end()), vec![]),
        ]);
        let out = merged(blocks, vec![b.clone()], NOW);
        assert_eq!(out.blocks, vec![(minute_of(b.end()), vec![b])]);
    }

    #[test]
    fn the_minutes_a_batch_ends_in_each_once() {
        let batch = vec![
            segment("a", NOW),
            segment("b", NOW + SECOND),
            segment("c", NOW + 120 * SECOND),
        ];
        let minutes: Vec<u64> = minutes_ended_in(&batch).into_iter().collect();
        let expected = vec![minute_of(batch[0].end()), minute_of(batch[2].end())];
        assert_eq!(minutes, expected);
        assert_ne!(expected[0], expected[1]);
    }

    #[test]
    fn places_list_every_minute_of_a_hash() {
        let mut places = Places::default();
        for (hash, minute) in [(7, 1), (7, 2), (8, 1), (7, 3)] {
            places.insert(hash, minute);
        }
        assert_eq!(places.minutes(7).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(places.minutes(8).collect::<Vec<_>>(), vec![1]);
        assert_eq!(places.minutes(9).count(), 0);
    }
}
