//! The playlist writer (`manifest::playlist`) on arbitrary segment lists,
//! with the segment selection (`manifest::selection`) and the recorded
//! spans (`manifest::spans`) on the same lists. Nothing panics, and:
//!
//! - every playlist is well-formed M3U8 as the README describes it:
//!   `#EXTM3U` first; VERSION 3, or 4 when a byte range is present;
//!   TARGETDURATION the ceiling of the longest EXTINF (at least 1), so at
//!   least every rounded EXTINF; MEDIA-SEQUENCE of the first segment;
//!   PLAYLIST-TYPE:VOD; per entry an optional DISCONTINUITY, a
//!   PROGRAM-DATE-TIME on the first entry and after each discontinuity, one
//!   EXTINF (milliseconds, rounded half up, three decimals), an optional
//!   BYTERANGE and exactly one URI; ENDLIST last and once. A DISCONTINUITY
//!   stands exactly where the recording has a hole of more than 0.5 s, the
//!   resolution differs from the last known one, or both neighbours were
//!   probed and the codec changes or the PTS does not run on (within
//!   0.5 s, modulo 2^33). Duration is the sum of the printed EXTINFs,
//!   Width and Height those of the first segment of known size.
//! - the selection holds the segments with StartTime < end <= EndTime (and
//!   with EndTimeIncluded the one running at EndTime), sorted, or fails with
//!   the first of NoRecordContent, OperationNotSupport,
//!   InvalidConfig.Changed, RecordContentExceed that applies.
//! - spans of start-sorted catalog segments (starts within years 0000 to
//!   9999, durations up to the 2^33-tick PTS range a probe can measure)
//!   cover every segment once and split exactly at holes longer than the
//!   gap or at a change of endpoint or bucket.
//!
//! Input (`arbitrary`, integers little-endian): a `Header`, then each
//! `Record` preceded by an odd byte; an even byte or the end of the input
//! ends the list.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use record_index::error::ApiError;
use record_index::manifest::playlist::{DISCONTINUITY_GAP, Part, Playlist, render, render_parts};
use record_index::manifest::selection::{Selection, is_selected};
use record_index::manifest::spans::spans;
use record_index::manifest::time::{MAX_TIME, MIN_TIME, format_program_date_time};
use record_index::manifest::uri::relative_uri;
use record_index::manifest::{Format, Micros, Segment, SegmentMedia};
use record_index::media::VideoCodec;

const PLAYLIST_KEY: &str = "live/cam1/index.m3u8";
const PTS_MODULUS: i128 = 1 << 33;
/// 2027-01-15: where a list whose first start is relative begins.
const BASE: Micros = 1_800_000_000_000_000;
/// The longest duration a probe can measure: the whole 33-bit PTS range.
const MAX_PROBED: Micros = (1 << 33) * 1_000_000 / 90_000;

#[derive(Arbitrary, Debug)]
struct Header {
    /// StartTime of the selection, in milliseconds from the first segment's
    /// start, and the range length in milliseconds.
    range_offset_ms: i32,
    range_ms: u32,
    end_time_included: bool,
    cap: u8,
    /// Span gap in microseconds; `huge_gap` makes it i64::MAX.
    span_gap: u32,
    huge_gap: bool,
}

#[derive(Arbitrary, Debug)]
struct Record {
    /// bit 0: `start` is absolute (else microseconds after the previous
    /// end, as an i32); bit 1: `duration` is a raw i64 (else a u32 of
    /// microseconds); bit 2: probed media; bit 3: H.265 (else H.264);
    /// bit 4: a clip part with a byte range; bit 5: another bucket;
    /// bits 6-7: format (ts, flv, mp4, cmaf).
    flags: u8,
    start: i64,
    duration: i64,
    sequence: i64,
    width: u16,
    height: u16,
    first_pts: u64,
    /// Milliseconds a clip part drops at either end.
    trim_in: u16,
    trim_out: u16,
    range_length: u32,
    range_offset: u32,
}

#[derive(Arbitrary, Debug)]
struct Input {
    header: Header,
    records: Vec<Record>,
}

struct Entry {
    segment: Segment,
    start: Micros,
    duration: Micros,
    byte_range: Option<(u64, u64)>,
}

fn build(records: &[Record]) -> Vec<Entry> {
    let mut previous_end = BASE;
    let mut entries = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let start = if r.flags & 1 != 0 {
            r.start
        } else {
            previous_end.saturating_add(i64::from(r.start as i32))
        };
        let duration = if r.flags & 2 != 0 {
            r.duration
        } else {
            i64::from(r.duration as u32)
        };
        let media = (r.flags & 4 != 0).then_some(SegmentMedia {
            codec: if r.flags & 8 != 0 {
                VideoCodec::H265
            } else {
                VideoCodec::H264
            },
            first_pts: r.first_pts,
        });
        let directory = ["live/cam1/", "live/cam1/a/", "live/cam2/", ""][r.range_offset as usize % 4];
        let segment = Segment {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: if r.flags & 32 != 0 {
                "other-bucket".into()
            } else {
                "live-bucket".into()
            },
            object: format!("{directory}{i:05}.ts"),
            start,
            duration,
            sequence: r.sequence,
            width: r.width.into(),
            height: r.height.into(),
            format: Format::from_u8(r.flags >> 6).unwrap(),
            size: u64::from(r.range_length),
            media,
        };
        let (part_start, part_duration, byte_range) = if r.flags & 16 != 0 {
            let cut_in = i64::from(r.trim_in) * 1000;
            let cut_out = i64::from(r.trim_out) * 1000;
            (
                start.saturating_add(cut_in),
                duration.saturating_sub(cut_in).saturating_sub(cut_out),
                Some((u64::from(r.range_length), u64::from(r.range_offset))),
            )
        } else {
            (start, duration, None)
        };
        previous_end = start.saturating_add(duration);
        entries.push(Entry {
            segment,
            start: part_start,
            duration: part_duration,
            byte_range,
        });
    }
    entries
}

/// EXTINF in milliseconds: rounded half up; nothing below zero.
fn extinf_millis(duration: Micros) -> u64 {
    let d = u64::try_from(duration.max(0)).unwrap();
    (d + 500) / 1000
}

fn known_size(s: &Segment) -> Option<(u32, u32)> {
    (s.width != 0 && s.height != 0).then_some((s.width, s.height))
}

/// Whether the media of `prev` does not run on into `next`.
fn media_breaks(prev: &Segment, next: &Segment) -> bool {
    let (Some(a), Some(b)) = (prev.media, next.media) else {
        return false;
    };
    if a.codec != b.codec {
        return true;
    }
    // The ticks of the previous segment's duration, truncated.
    let ticks = i128::from(prev.duration) * 90_000 / 1_000_000;
    let expected = (i128::from(a.first_pts) + ticks).rem_euclid(PTS_MODULUS);
    let mut delta = (i128::from(b.first_pts) - expected).rem_euclid(PTS_MODULUS);
    if delta >= PTS_MODULUS / 2 {
        delta -= PTS_MODULUS;
    }
    delta.abs() > 45_000
}

/// Checks `playlist` line by line against the entries it was made from.
fn check_playlist(playlist: &Playlist, parts: &[Part], uri_for: impl Fn(&Segment) -> String) {
    let text = &playlist.text;
    assert!(text.ends_with('\n'), "{text}");
    let lines: Vec<&str> = text[..text.len() - 1].split('\n').collect();
    assert!(lines.iter().all(|l| !l.is_empty() && !l.contains('\r')), "{text}");

    let millis: Vec<u64> = parts.iter().map(|p| extinf_millis(p.duration)).collect();
    let longest = millis.iter().copied().max().unwrap_or(0);
    let target = longest.div_ceil(1000).max(1);
    let version = if parts.iter().any(|p| p.byte_range.is_some()) { 4 } else { 3 };
    let sequence = parts.first().map_or(0, |p| p.segment.sequence);
    let head = [
        "#EXTM3U".to_string(),
        format!("#EXT-X-VERSION:{version}"),
        format!("#EXT-X-TARGETDURATION:{target}"),
        format!("#EXT-X-MEDIA-SEQUENCE:{sequence}"),
        "#EXT-X-PLAYLIST-TYPE:VOD".to_string(),
    ];
    assert!(lines.len() >= head.len() + 1, "{text}");
    assert_eq!(lines[..head.len()], head, "{text}");
    assert_eq!(*lines.last().unwrap(), "#EXT-X-ENDLIST");
    assert_eq!(lines.iter().filter(|l| **l == "#EXT-X-ENDLIST").count(), 1);

    let mut at = head.len();
    let mut previous: Option<&Part> = None;
    let mut last_size = None;
    for (part, &ms) in parts.iter().zip(&millis) {
        let seg = part.segment;
        let discontinuity = previous.is_some_and(|prev| {
            let prev_end = prev.start.saturating_add(prev.duration);
            i128::from(part.start) - i128::from(prev_end) > i128::from(DISCONTINUITY_GAP)
                || matches!((last_size, known_size(seg)), (Some(a), Some(b)) if a != b)
                || media_breaks(prev.segment, seg)
        });
        if discontinuity {
            assert_eq!(lines[at], "#EXT-X-DISCONTINUITY", "entry at line {at}\n{text}");
            at += 1;
        }
        if discontinuity || previous.is_none() {
            let expected = format_program_date_time(part.start);
            assert_eq!(lines[at], format!("#EXT-X-PROGRAM-DATE-TIME:{expected}"));
            let clamped = part.start.clamp(MIN_TIME, MAX_TIME);
            assert_eq!(
                record_index::manifest::time::parse_segment_time(&expected),
                Some(clamped.div_euclid(1000) * 1000)
            );
            at += 1;
        }
        let extinf = format!("#EXTINF:{}.{:03},", ms / 1000, ms % 1000);
        assert_eq!(lines[at], extinf, "line {at}\n{text}");
        assert!(ms.div_ceil(1000) <= target);
        at += 1;
        if let Some((length, offset)) = part.byte_range {
            assert_eq!(lines[at], format!("#EXT-X-BYTERANGE:{length}@{offset}"));
            at += 1;
        }
        let uri = uri_for(seg);
        assert!(!uri.starts_with('#') && !uri.is_empty(), "{uri:?}");
        assert_eq!(lines[at], uri);
        at += 1;
        previous = Some(part);
        last_size = known_size(seg).or(last_size);
    }
    assert_eq!(at, lines.len() - 1, "{text}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("#EXTINF:")).count(),
        parts.len()
    );

    let total = millis.iter().fold(0u64, |sum, &m| sum.saturating_add(m));
    assert_eq!(playlist.duration, total as f64 / 1000.0);
    let size = parts.iter().find_map(|p| known_size(p.segment)).unwrap_or((0, 0));
    assert_eq!((playlist.width, playlist.height), size);
}

fn playlist_order(a: &Segment, b: &Segment) -> std::cmp::Ordering {
    (a.start, a.start.saturating_add(a.duration), &a.object, &a.endpoint, &a.bucket).cmp(&(
        b.start,
        b.start.saturating_add(b.duration),
        &b.object,
        &b.endpoint,
        &b.bucket,
    ))
}

fn check_selection(header: &Header, segments: &[Segment]) {
    let base = segments.first().map_or(BASE, |s| s.start);
    let start = base.saturating_add(i64::from(header.range_offset_ms) * 1000);
    let end = start.saturating_add(i64::from(header.range_ms) * 1000);
    let cap = usize::from(header.cap);
    let included = header.end_time_included;

    let mut selection = Selection::new(start, end, included, cap);
    for s in segments {
        selection.offer(s.clone());
    }
    let chosen: Vec<&Segment> = segments
        .iter()
        .filter(|s| {
            let seg_end = s.start.saturating_add(s.duration);
            let ended_inside = start < seg_end && seg_end <= end;
            let running = included && s.start < end && end < seg_end;
            assert_eq!(
                is_selected(s.start, seg_end, start, end, included),
                ended_inside || running
            );
            ended_inside || running
        })
        .collect();
    let mut locations: Vec<(&str, &str)> =
        chosen.iter().map(|s| (s.endpoint.as_str(), s.bucket.as_str())).collect();
    locations.sort();
    locations.dedup();

    let expected_code = if chosen.is_empty() {
        Some("NoRecordContent")
    } else if chosen.iter().any(|s| s.format != Format::Ts) {
        Some("OperationNotSupport")
    } else if locations.len() > 1 {
        Some("InvalidConfig.Changed")
    } else if chosen.len() > cap {
        Some("RecordContentExceed")
    } else {
        None
    };
    match selection.finish() {
        Ok(kept) => {
            assert_eq!(expected_code, None);
            let mut want: Vec<Segment> = chosen.into_iter().cloned().collect();
            want.sort_by(playlist_order);
            assert_eq!(kept, want);
            // The real pipeline: render what was selected.
            let parts: Vec<Part> = kept.iter().map(Part::whole).collect();
            let uri = |s: &Segment| relative_uri(PLAYLIST_KEY, &s.object);
            check_playlist(&render(&kept, uri), &parts, uri);
        }
        Err(err) => {
            assert_eq!(Some(err.code()), expected_code, "{err:?}");
            if let ApiError::RecordContentExceed(message) = &err {
                let count = format!("selects {} segments", chosen.len());
                assert!(message.contains(&count), "{message}");
            }
            assert!(matches!(
                err,
                ApiError::NoRecordContent(_)
                    | ApiError::OperationNotSupport(_)
                    | ApiError::ConfigChanged(_)
                    | ApiError::RecordContentExceed(_)
            ));
        }
    }
}

/// The longest `/`-ended prefix shared by every key.
fn shared_directory(keys: &[&str]) -> String {
    let first = keys[0];
    let mut best = 0;
    for (i, c) in first.char_indices() {
        if c == '/' && keys.iter().all(|k| k.get(..=i) == Some(&first[..=i])) {
            best = i + 1;
        }
    }
    first[..best].to_string()
}

fn check_spans(header: &Header, segments: &[Segment]) {
    // Catalog segments: Register and the probe bound these.
    let mut catalog: Vec<Segment> = segments
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.start = s.start.clamp(MIN_TIME, MAX_TIME);
            s.duration = s.duration.clamp(0, MAX_PROBED);
            s
        })
        .collect();
    catalog.sort_by_key(|s| s.start);
    let gap = if header.huge_gap {
        i64::MAX
    } else {
        i64::from(header.span_gap)
    };
    let found = spans(&catalog, gap);

    // Split where a hole exceeds the gap or the location changes.
    let mut groups: Vec<Vec<&Segment>> = Vec::new();
    let mut reach = 0;
    for s in &catalog {
        let joins = groups.last().is_some_and(|g| {
            let head = g[0];
            i128::from(s.start) - i128::from(reach) <= i128::from(gap)
                && s.endpoint == head.endpoint
                && s.bucket == head.bucket
        });
        if joins {
            groups.last_mut().unwrap().push(s);
            reach = reach.max(s.end());
        } else {
            groups.push(vec![s]);
            reach = s.end();
        }
    }
    assert_eq!(found.len(), groups.len());
    for (span, group) in found.iter().zip(&groups) {
        assert_eq!(span.start, group[0].start);
        assert_eq!(span.end, group.iter().map(|s| s.end()).max().unwrap());
        assert_eq!(span.media, group.iter().map(|s| s.duration).sum::<i64>());
        assert_eq!((&span.endpoint, &span.bucket), (&group[0].endpoint, &group[0].bucket));
        let keys: Vec<&str> = group.iter().map(|s| s.object.as_str()).collect();
        assert_eq!(span.object_prefix, shared_directory(&keys));
    }
}

fuzz_target!(|input: Input| {
    let entries = build(&input.records);
    let segments: Vec<Segment> = entries.iter().map(|e| e.segment.clone()).collect();

    // The writer on the list as given, in whole segments and in parts.
    let uri = |s: &Segment| relative_uri(PLAYLIST_KEY, &s.object);
    let wholes: Vec<Part> = segments.iter().map(Part::whole).collect();
    check_playlist(&render(&segments, uri), &wholes, uri);
    let parts: Vec<Part> = entries
        .iter()
        .zip(&segments)
        .map(|(e, segment)| Part {
            segment,
            start: e.start,
            duration: e.duration,
            byte_range: e.byte_range,
        })
        .collect();
    check_playlist(&render_parts(&parts, uri), &parts, uri);

    check_selection(&input.header, &segments);
    check_spans(&input.header, &segments);
});
