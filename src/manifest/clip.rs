//! Keyframe-accurate clips without re-encoding: the byte range of a segment
//! that starts at the last keyframe at or before a cut-in time (from the
//! PAT/PMT just before it, so a decoder can start there) and ends at the
//! first keyframe at or after a cut-out time.

use super::{MICROS_PER_SECOND, Micros, Segment};
use crate::media::{Keyframe, PTS_HZ, Probe, pts_delta, ticks_to_micros};

/// The part of a segment a clip keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub start: Micros,
    pub duration: Micros,
    /// `(length, offset)`; `None` when the whole object is kept.
    pub byte_range: Option<(u64, u64)>,
}

/// 90 kHz ticks from the segment's first frame to `at`.
fn ticks_into(segment: &Segment, at: Micros) -> i64 {
    let micros = i128::from(at) - i128::from(segment.start);
    (micros * i128::from(PTS_HZ) / i128::from(MICROS_PER_SECOND))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// When `keyframe` of `segment` (probed as `probe`) is shown: the
/// segment's start plus the keyframe's presentation time after the
/// segment's first frame.
pub fn keyframe_time(segment: &Segment, probe: &Probe, keyframe: &Keyframe) -> Micros {
    let ticks = pts_delta(probe.first_pts, keyframe.pts);
    segment.start.saturating_add(ticks_to_micros(ticks))
}

/// Whether a decoder can start at `keyframe` from its tables: PAT/PMT
/// precede it with no other keyframe in between, so the range from the
/// tables holds this GOP only.
fn starts_cleanly(keyframe: &Keyframe, keyframes: &[Keyframe]) -> Option<u64> {
    let tables = keyframe.tables_offset?;
    let other_between = keyframes
        .iter()
        .any(|k| k.offset > tables && k.offset < keyframe.offset);
    (!other_between).then_some(tables)
}

/// Trims `segment` to keyframes around `cut_in` and `cut_out` (either may
/// be absent: that end of the segment stays). Fails, so the caller keeps
/// the whole segment, when the probe has no usable keyframe.
pub fn cut(
    segment: &Segment,
    probe: &Probe,
    total_len: u64,
    cut_in: Option<Micros>,
    cut_out: Option<Micros>,
) -> Result<Cut, String> {
    let offset_of = |k: &Keyframe| pts_delta(probe.first_pts, k.pts);
    let (mut from_byte, mut start) = (0, segment.start);
    if let Some(cut_in) = cut_in {
        let target = ticks_into(segment, cut_in);
        let keyframe = probe
            .keyframes
            .iter()
            .rev()
            .find(|k| offset_of(k) <= target)
            .ok_or("no keyframe at or before StartTime in the segment")?;
        from_byte = starts_cleanly(keyframe, &probe.keyframes).ok_or_else(|| {
            format!(
                "no PAT/PMT right before the keyframe at byte {}",
                keyframe.offset
            )
        })?;
        start = keyframe_time(segment, probe, keyframe);
    }
    let (mut to_byte, mut end) = (total_len, segment.end());
    if let Some(cut_out) = cut_out {
        let target = ticks_into(segment, cut_out);
        if let Some(keyframe) = probe
            .keyframes
            .iter()
            .find(|k| offset_of(k) >= target && k.offset > from_byte)
        {
            to_byte = keyframe.offset;
            end = keyframe_time(segment, probe, keyframe);
        }
    }
    if to_byte <= from_byte || end <= start {
        return Err("the cut leaves nothing of the segment".into());
    }
    let whole = from_byte == 0 && to_byte == total_len;
    Ok(Cut {
        start,
        duration: end - start,
        byte_range: (!whole).then_some((to_byte - from_byte, from_byte)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;
    use crate::media::VideoCodec;

    const START: Micros = 1_800_000_000_000_000;

    fn segment() -> Segment {
        Segment {
            endpoint: "e".into(),
            bucket: "b".into(),
            object: "s.ts".into(),
            start: START,
            duration: 6_000_000,
            sequence: 0,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 600_000,
            media: None,
        }
    }

    /// Six one-second GOPs; PAT/PMT right before each keyframe, the PTS
    /// clock wrapping during the third.
    fn probe(tables: bool) -> Probe {
        let first_pts = (1u64 << 33) - 2 * 90_000 - 45_000;
        Probe {
            video_pid: 256,
            codec: VideoCodec::H264,
            width: 640,
            height: 360,
            codec_string: "avc1.64001E".to_string(),
            first_pts,
            last_pts: (first_pts + 6 * 90_000 - 3600) & ((1 << 33) - 1),
            duration_micros: 6_000_000,
            frames: 150,
            keyframes: (0..6u64)
                .map(|i| Keyframe {
                    offset: i * 100_000 + 376,
                    tables_offset: tables.then_some(i * 100_000),
                    tables_end: tables.then_some(i * 100_000 + 376),
                    end: i * 100_000 + 20_000,
                    pts: (first_pts + i * 90_000) & ((1 << 33) - 1),
                })
                .collect(),
        }
    }

    #[test]
    fn cuts_at_the_keyframes_around_the_range() {
        let cut = cut(
            &segment(),
            &probe(true),
            600_000,
            Some(START + 2_500_000),
            Some(START + 4_200_000),
        )
        .unwrap();
        // In at the keyframe of second 2, out at the one of second 5.
        assert_eq!(cut.start, START + 2_000_000);
        assert_eq!(cut.duration, 3_000_000);
        assert_eq!(cut.byte_range, Some((300_376, 200_000)));
    }

    #[test]
    fn open_ends_keep_the_segment_to_its_edge() {
        let head = cut(
            &segment(),
            &probe(true),
            600_000,
            None,
            Some(START + 1_000_000),
        )
        .unwrap();
        assert_eq!(
            (head.start, head.duration, head.byte_range),
            (START, 1_000_000, Some((100_376, 0)))
        );
        let tail = cut(
            &segment(),
            &probe(true),
            600_000,
            Some(START + 5_500_000),
            None,
        )
        .unwrap();
        assert_eq!(
            (tail.start, tail.duration, tail.byte_range),
            (START + 5_000_000, 1_000_000, Some((100_000, 500_000)))
        );
        let whole = cut(&segment(), &probe(true), 600_000, Some(START), None).unwrap();
        assert_eq!(whole.byte_range, None);
        // A cut-out after the last keyframe keeps the rest of the segment.
        let rest = cut(
            &segment(),
            &probe(true),
            600_000,
            None,
            Some(START + 5_900_000),
        )
        .unwrap();
        assert_eq!(rest.byte_range, None);
    }

    #[test]
    fn without_tables_before_the_keyframe_there_is_no_cut() {
        assert!(
            cut(
                &segment(),
                &probe(false),
                600_000,
                Some(START + 2_500_000),
                None
            )
            .is_err()
        );
        let mut far = probe(true);
        far.keyframes[3].tables_offset = Some(0);
        assert!(cut(&segment(), &far, 600_000, Some(START + 3_500_000), None).is_err());
        // A cut-out needs no tables.
        assert!(
            cut(
                &segment(),
                &probe(false),
                600_000,
                None,
                Some(START + 2_500_000)
            )
            .is_ok()
        );
    }
}
