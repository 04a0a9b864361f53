//! The probe on arbitrary bytes: it must return, never panic, and what it
//! returns must describe the input it was given.

#![no_main]

use libfuzzer_sys::fuzz_target;
use record_index::media::{PACKET_SIZE, probe, probe_head_tail};

const PTS_LIMIT: u64 = 1 << 33;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) = probe(data) {
        assert!(found.first_pts < PTS_LIMIT && found.last_pts < PTS_LIMIT);
        assert!(found.duration_micros >= 0);
        assert!(found.width > 0 && found.height > 0);
        for key in &found.keyframes {
            assert_eq!(key.offset % PACKET_SIZE as u64, 0);
            assert!(key.offset < data.len() as u64);
            assert!(key.pts < PTS_LIMIT);
            // The keyframe's PES ends on a packet boundary after it, at
            // most at the end of the input.
            assert!(key.offset < key.end && key.end <= data.len() as u64);
            assert_eq!(key.end % PACKET_SIZE as u64, 0);
            assert_eq!(key.tables_offset.is_some(), key.tables_end.is_some());
            if let (Some(tables), Some(tables_end)) = (key.tables_offset, key.tables_end) {
                assert!(tables < tables_end && tables_end <= key.offset);
                assert_eq!(tables % PACKET_SIZE as u64, 0);
                assert_eq!(tables_end % PACKET_SIZE as u64, 0);
            }
        }
    }

    // The first two bytes choose how much of the rest is head and how much
    // is tail, so that partial packets, overlaps and tails that start
    // mid-packet all get tried.
    if let [head_share, tail_share, rest @ ..] = data {
        let len = rest.len();
        let head = usize::from(*head_share) * len / 255;
        let tail = usize::from(*tail_share) * len / 255;
        if let Ok(summary) = probe_head_tail(&rest[..head], &rest[len - tail..], len as u64) {
            assert!(summary.first_pts < PTS_LIMIT && summary.last_pts < PTS_LIMIT);
            assert!(summary.duration_micros >= 0);
        }
    }
});
