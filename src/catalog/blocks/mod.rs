//! Segments packed per stream and minute of their end, as every engine
//! stores them: one block holds the segments of one stream that end in one
//! minute, sorted in scan order, encoded by [`codec`] at ~20 bytes each.
//! A range scan reads one block per minute of the range, and an object's
//! hash finds the block holding it without reading the stream.
//!
//! [`merge`] is a Register batch applied to the blocks it touches, pure,
//! for an engine that reads those blocks first and writes what changed.

pub mod codec;
pub mod merge;

use crate::manifest::{Micros, Segment};

const MICROS_PER_MINUTE: Micros = 60_000_000;

/// The minute a segment ending at `end` is filed under.
pub fn minute_of(end: Micros) -> u64 {
    end.div_euclid(MICROS_PER_MINUTE).max(0) as u64
}

/// The first instant of a minute: the base its block's times count from.
pub fn block_base(minute: u64) -> Micros {
    minute as Micros * MICROS_PER_MINUTE
}

/// The hash of what makes two segments of a stream the same object.
pub fn object_hash(segment: &Segment) -> u64 {
    codec::fnv1a64(&[segment.bucket.as_bytes(), segment.object.as_bytes()])
}

/// The order of a scan: (end, bucket, object).
pub fn scan_order(s: &Segment) -> (Micros, &str, &str) {
    (s.end(), s.bucket.as_str(), s.object.as_str())
}

pub fn same_object(a: &Segment, b: &Segment) -> bool {
    a.object == b.object && a.bucket == b.bucket
}

/// Where `segment` goes in a block sorted in scan order.
pub fn position_in(block: &[Segment], segment: &Segment) -> usize {
    block.partition_point(|stored| scan_order(stored) < scan_order(segment))
}
