//! A Register batch applied to the blocks it can touch, without I/O.
//!
//! The engine reads, under its stream's lock, every block that holds one
//! of the batch's objects (found through the duplicate index by hash) and
//! every block the batch's segments end in; [`Merge`] decides which
//! segments are new, and gives back the blocks that changed and the
//! duplicate-index entries to add and remove. An entry (hash, minute)
//! exists exactly while the minute's block holds an object of that hash,
//! so the entries follow from the blocks before and after.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{minute_of, object_hash, position_in, same_object};
use crate::catalog::{RegisterOutcome, segment_expired};
use crate::manifest::{Micros, Segment};

/// One entry of the duplicate index: an object's hash and the minute of
/// a block holding it.
pub type IndexEntry = (u64, u64);

pub struct Merge {
    blocks: BTreeMap<u64, Vec<Segment>>,
    /// The hashes each block held as read.
    hashes_before: BTreeMap<u64, BTreeSet<u64>>,
    /// (bucket, object) → the minutes of the blocks holding a copy.
    objects: HashMap<(String, String), Vec<u64>>,
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

fn hashes(block: &[Segment]) -> BTreeSet<u64> {
    block.iter().map(object_hash).collect()
}

impl Merge {
    /// The blocks as read, by minute; each sorted in scan order.
    pub fn new(blocks: BTreeMap<u64, Vec<Segment>>) -> Merge {
        let mut objects: HashMap<(String, String), Vec<u64>> = HashMap::new();
        for (minute, block) in &blocks {
            for segment in block {
                objects
                    .entry((segment.bucket.clone(), segment.object.clone()))
                    .or_default()
                    .push(*minute);
            }
        }
        Merge {
            hashes_before: blocks.iter().map(|(m, b)| (*m, hashes(b))).collect(),
            blocks,
            objects,
            dirty: BTreeSet::new(),
            outcome: RegisterOutcome::default(),
            expired_removed: 0,
            longest: 0,
        }
    }

    /// Adds `segment` unless the stream holds a live copy of its object,
    /// which makes it a duplicate. An expired copy is gone for every read:
    /// a recorder reusing an object key 90 days on adds a new segment, and
    /// the old copy makes room for it.
    pub fn add(&mut self, segment: Segment, now: Micros) {
        let key = (segment.bucket.clone(), segment.object.clone());
        let minutes = self.objects.remove(&key).unwrap_or_default();
        let mut kept = Vec::new();
        for minute in minutes {
            let block = self.blocks.get_mut(&minute).expect("a block read");
            let before = block.len();
            block.retain(|stored| !(same_object(stored, &segment) && segment_expired(stored, now)));
            if block.len() < before {
                self.expired_removed += (before - block.len()) as u64;
                self.dirty.insert(minute);
            }
            if block.iter().any(|stored| same_object(stored, &segment)) {
                kept.push(minute);
            }
        }
        if !kept.is_empty() {
            self.objects.insert(key, kept);
            self.outcome.duplicates += 1;
            return;
        }
        let minute = minute_of(segment.end());
        self.objects.insert(key, vec![minute]);
        self.longest = self.longest.max(segment.duration);
        let block = self.blocks.entry(minute).or_default();
        block.insert(position_in(block, &segment), segment);
        self.dirty.insert(minute);
        self.outcome.accepted += 1;
    }

    pub fn finish(mut self) -> Merged {
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
                .extend(after.difference(&before).map(|hash| (*hash, *minute)));
            merged
                .entries_removed
                .extend(before.difference(&after).map(|hash| (*hash, *minute)));
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
        let mut merge = Merge::new(blocks);
        batch.into_iter().for_each(|s| merge.add(s, now));
        merge.finish()
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
}
