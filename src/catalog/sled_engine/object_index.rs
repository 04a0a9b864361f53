//! The duplicate index: for each object of a stream, the minute blocks that
//! hold it, so registering an object again changes nothing whatever times
//! come with it.
//!
//! Entries (object hash, minute) sit in buckets keyed by the stream id and
//! the top `depth` bits of the hash. A stream's depth grows by one, every
//! bucket splitting in two, once a bucket would hold more than
//! [`MAX_BUCKET`] entries. Buckets therefore stay small for a stream of any
//! length, and the catalog holds a few keys per hundred segments rather
//! than one per segment: sled's memory and disk grow with its keys.

use std::collections::{BTreeMap, BTreeSet};

/// Entries a bucket holds at most before its stream's buckets split.
pub const MAX_BUCKET: usize = 64;
/// Depth at which buckets stop splitting (4 billion buckets per stream).
pub const MAX_DEPTH: u32 = 32;
const ENTRY_BYTES: usize = 16;

/// One object's place: the hash of its (bucket, object) and a minute block
/// holding it.
pub type Entry = (u64, u64);

/// The bucket of `hash` in a stream of `depth`.
pub fn bucket_of(hash: u64, depth: u32) -> u32 {
    if depth == 0 {
        0
    } else {
        (hash >> (64 - depth)) as u32
    }
}

/// Key of a bucket: stream id (8 BE) + bucket number (4 BE).
pub fn bucket_key(stream_id: u64, bucket: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&stream_id.to_be_bytes());
    key[8..].copy_from_slice(&bucket.to_be_bytes());
    key
}

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for (hash, minute) in entries {
        out.extend_from_slice(&hash.to_be_bytes());
        out.extend_from_slice(&minute.to_be_bytes());
    }
    out
}

pub fn decode(bytes: &[u8]) -> Result<Vec<Entry>, &'static str> {
    if !bytes.len().is_multiple_of(ENTRY_BYTES) {
        return Err("object index bucket is not whole entries");
    }
    Ok(bytes
        .chunks_exact(ENTRY_BYTES)
        .map(|entry| {
            let hash = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
            let minute = u64::from_be_bytes(entry[8..].try_into().expect("8 bytes"));
            (hash, minute)
        })
        .collect())
}

/// Applies the entries a registration removed and added to the buckets
/// of a stream of `depth`, which must hold every bucket those entries
/// fall in; the numbers of the buckets that changed. An entry added is
/// kept once: a bucket may already hold it.
pub fn apply(
    buckets: &mut BTreeMap<u32, Vec<Entry>>,
    depth: u32,
    removed: &[Entry],
    added: &[Entry],
) -> BTreeSet<u32> {
    let mut changed = BTreeSet::new();
    for entry in removed {
        let bucket = bucket_of(entry.0, depth);
        let entries = buckets.get_mut(&bucket).expect("a bucket read");
        let before = entries.len();
        entries.retain(|held| held != entry);
        if entries.len() < before {
            changed.insert(bucket);
        }
    }
    for entry in added {
        let bucket = bucket_of(entry.0, depth);
        let entries = buckets.get_mut(&bucket).expect("a bucket read");
        if !entries.contains(entry) {
            entries.push(*entry);
            changed.insert(bucket);
        }
    }
    changed
}

/// The depth at which no bucket of `entries` holds more than
/// [`MAX_BUCKET`], starting from `depth`; with the buckets at that depth.
pub fn split(depth: u32, entries: Vec<Entry>) -> (u32, BTreeMap<u32, Vec<Entry>>) {
    let mut depth = depth;
    loop {
        let mut buckets: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
        for entry in &entries {
            buckets
                .entry(bucket_of(entry.0, depth))
                .or_default()
                .push(*entry);
        }
        let largest = buckets.values().map(Vec::len).max().unwrap_or(0);
        if largest <= MAX_BUCKET || depth >= MAX_DEPTH {
            return (depth, buckets);
        }
        depth += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_the_top_bits() {
        assert_eq!(bucket_of(u64::MAX, 0), 0);
        assert_eq!(bucket_of(u64::MAX, 1), 1);
        assert_eq!(bucket_of(1 << 63, 3), 0b100);
        assert_eq!(bucket_of(u64::MAX, 32), u32::MAX);
        assert_eq!(&bucket_key(7, 2)[..], &[0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2]);
    }

    #[test]
    fn entries_round_trip_and_torn_values_are_refused() {
        let entries = vec![(1, 2), (u64::MAX, 0), (42, 29_000_000)];
        assert_eq!(decode(&encode(&entries)).unwrap(), entries);
        assert!(decode(&encode(&entries)[..20]).is_err());
        assert_eq!(decode(&[]).unwrap(), vec![]);
    }

    #[test]
    fn splitting_keeps_every_entry_in_buckets_no_larger_than_the_cap() {
        // A spread of hashes, as fnv1a gives.
        let entries: Vec<Entry> = (0..10_000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i / 10))
            .collect();
        let (depth, buckets) = split(0, entries.clone());
        assert!(depth > 0);
        assert!(buckets.values().all(|bucket| bucket.len() <= MAX_BUCKET));
        let mut all: Vec<Entry> = buckets.into_values().flatten().collect();
        all.sort();
        let mut expected = entries;
        expected.sort();
        assert_eq!(all, expected);
        // Few entries need no split.
        let (depth, buckets) = split(0, vec![(5, 1), (6, 1)]);
        assert_eq!((depth, buckets.len()), (0, 1));
    }

    #[test]
    fn applying_entries_removes_and_adds_each_once_and_names_the_buckets_changed() {
        let depth = 1;
        let (low, high) = (1u64, 1u64 << 63);
        let mut buckets = BTreeMap::from([(0, vec![(low, 10), (low, 11)]), (1, vec![(high, 10)])]);
        let changed = apply(&mut buckets, depth, &[(low, 10)], &[(low, 12), (high, 10)]);
        assert_eq!(changed, BTreeSet::from([0]));
        assert_eq!(buckets[&0], vec![(low, 11), (low, 12)]);
        assert_eq!(buckets[&1], vec![(high, 10)]);
        // Removing what a bucket does not hold changes nothing.
        assert!(apply(&mut buckets, depth, &[(high, 99)], &[]).is_empty());
        let changed = apply(&mut buckets, depth, &[(high, 10)], &[]);
        assert_eq!(changed, BTreeSet::from([1]));
        assert!(buckets[&1].is_empty());
    }

    #[test]
    fn hashes_crafted_to_share_many_top_bits_give_few_deep_buckets() {
        let shared = 0xABCD_EF12_3400_0000u64;
        let entries: Vec<Entry> = (0..65u64).map(|i| (shared | i, 1)).collect();
        let (depth, buckets) = split(0, entries);
        assert!(depth > 32 - 7, "depth {depth}");
        // Only buckets that hold entries exist, however deep.
        assert!(buckets.len() <= 2, "{} buckets", buckets.len());
    }
}
