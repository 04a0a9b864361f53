//! The M3U8 media playlist text (RFC 8216): VOD, or EVENT for a range
//! that runs to the live edge.
//!
//! A manifest may hold 100,000 segments and select + render has a 50 ms
//! budget, so the writer makes one pre-sized String and formats numbers by
//! hand instead of through `fmt`.

use super::time::{push_digits, write_program_date_time};
use super::{Micros, Segment};
use crate::media::{PTS_HZ, pts_delta};

/// A hole between two segments longer than this is a discontinuity: the
/// player must not expect continuous timestamps across it.
pub const DISCONTINUITY_GAP: Micros = 500_000;

/// Rough bytes per segment (tags plus a typical URI), to allocate once.
const BYTES_PER_SEGMENT: usize = 96;

/// A rendered playlist and the facts the API response reports about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Playlist {
    pub text: String,
    /// Seconds: the sum of the EXTINF values as printed, so a client that
    /// adds up the playlist gets the same number.
    pub duration: f64,
    /// Size of the first segment with a known resolution, 0 when none has.
    pub width: u32,
    pub height: u32,
}

/// Whether the media itself does not run on from `prev` to `next`: another
/// codec, or a PTS that does not continue (an encoder restart), which
/// wall-clock times alone cannot show. Only probed segments know.
fn media_breaks(prev: &Segment, next: &Segment) -> bool {
    let (Some(a), Some(b)) = (prev.media, next.media) else {
        return false;
    };
    if a.codec != b.codec {
        return true;
    }
    let prev_ticks = i128::from(prev.duration) * i128::from(PTS_HZ) / 1_000_000;
    let expected = a.first_pts.wrapping_add(prev_ticks as u64);
    let gap_ticks = i128::from(DISCONTINUITY_GAP) * i128::from(PTS_HZ) / 1_000_000;
    i128::from(pts_delta(expected, b.first_pts)).abs() > gap_ticks
}

/// One playlist entry: a whole segment, or the part of one a clip keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Part<'a> {
    pub segment: &'a Segment,
    /// When the part's first frame plays, and for how long it plays.
    pub start: Micros,
    pub duration: Micros,
    /// `(length, offset)` bytes of the object, for `#EXT-X-BYTERANGE`.
    pub byte_range: Option<(u64, u64)>,
}

impl<'a> Part<'a> {
    pub fn whole(segment: &'a Segment) -> Part<'a> {
        Part {
            segment,
            start: segment.start,
            duration: segment.duration,
            byte_range: None,
        }
    }
}

/// The picture size of the first entry whose size is known, `(0, 0)` when
/// none is: the size a playlist reports.
pub fn first_size(parts: &[Part]) -> (u32, u32) {
    parts
        .iter()
        .map(|part| (part.segment.width, part.segment.height))
        .find(|(width, height)| *width != 0 && *height != 0)
        .unwrap_or((0, 0))
}

/// What kind of media playlist is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// Closed: every segment is there, `#EXT-X-ENDLIST`.
    Vod,
    /// Growing at its end until `ended`, when `#EXT-X-ENDLIST` closes it.
    /// Its target duration is at least `target_floor` (microseconds), so
    /// it does not change between reloads as segments arrive (RFC 8216
    /// section 6.2.1): the stream's longest segment.
    Event { ended: bool, target_floor: Micros },
}

/// Renders the playlist of `segments`, which must be sorted by start.
/// `uri_for` gives each segment's URI line (relative or absolute).
pub fn render(segments: &[Segment], uri_for: impl FnMut(&Segment) -> String) -> Playlist {
    let parts: Vec<Part> = segments.iter().map(Part::whole).collect();
    render_parts(&parts, uri_for)
}

/// Renders a VOD playlist of entries that may be parts of segments:
/// version 4 and `#EXT-X-BYTERANGE` once any entry is a byte range.
pub fn render_parts(parts: &[Part], uri_for: impl FnMut(&Segment) -> String) -> Playlist {
    render_parts_as(parts, PlaylistType::Vod, uri_for)
}

/// The tags before the first entry of a media playlist.
fn push_header(text: &mut String, parts: &[Part], kind: PlaylistType) {
    let longest = parts
        .iter()
        .map(|p| extinf_millis(p.duration))
        .max()
        .unwrap_or(0);
    let version = if parts.iter().any(|p| p.byte_range.is_some()) {
        4
    } else {
        3
    };
    let first_sequence = parts.first().map_or(0, |p| p.segment.sequence);
    push_header_tags(text, version, longest, first_sequence, kind);
}

/// The tags every playlist kind opens with, its longest entry's EXTINF
/// being `longest` milliseconds.
pub(super) fn push_header_tags(
    text: &mut String,
    version: u64,
    mut longest: u64,
    first_sequence: i64,
    kind: PlaylistType,
) {
    let playlist_type = match kind {
        PlaylistType::Vod => "VOD",
        PlaylistType::Event { target_floor, .. } => {
            longest = longest.max(extinf_millis(target_floor));
            "EVENT"
        }
    };
    // Ceil of the longest EXTINF as printed: RFC 8216 requires every
    // EXTINF to be at most the target duration.
    let target = longest.div_ceil(1000).max(1);
    text.push_str("#EXTM3U\n#EXT-X-VERSION:");
    push_u64(text, version);
    text.push_str("\n#EXT-X-TARGETDURATION:");
    push_u64(text, target);
    text.push_str("\n#EXT-X-MEDIA-SEQUENCE:");
    if first_sequence < 0 {
        text.push('-');
    }
    push_u64(text, first_sequence.unsigned_abs());
    text.push_str("\n#EXT-X-PLAYLIST-TYPE:");
    text.push_str(playlist_type);
    text.push('\n');
}

/// Renders playlist entries of either kind; see [`render_parts`].
pub fn render_parts_as(
    parts: &[Part],
    kind: PlaylistType,
    mut uri_for: impl FnMut(&Segment) -> String,
) -> Playlist {
    let mut text = String::with_capacity(160 + parts.len() * BYTES_PER_SEGMENT);
    push_header(&mut text, parts, kind);

    let mut total_millis: u64 = 0;
    let mut continuity = Continuity::default();
    for part in parts {
        continuity.push_breaks(&mut text, part, part.start);
        let millis = extinf_millis(part.duration);
        total_millis = total_millis.saturating_add(millis);
        push_extinf(&mut text, millis);
        if let Some(range) = part.byte_range {
            push_byte_range(&mut text, range);
        }
        text.push_str(&uri_for(part.segment));
        text.push('\n');
    }
    push_end(&mut text, kind);

    let (width, height) = first_size(parts);
    Playlist {
        text,
        duration: total_millis as f64 / 1000.0,
        width,
        height,
    }
}

/// What decides whether an entry runs on from the ones before it: a hole
/// longer than [`DISCONTINUITY_GAP`], another picture size, or a break in
/// the media.
#[derive(Default)]
pub(super) struct Continuity<'a> {
    previous_end: Option<Micros>,
    /// The last resolution seen, not the previous segment's: a segment of
    /// unknown size between two different sizes must not hide the change.
    last_resolution: Option<(u32, u32)>,
    previous: Option<&'a Segment>,
}

impl<'a> Continuity<'a> {
    /// Writes what goes before `part`'s first entry: `#EXT-X-DISCONTINUITY`
    /// when it does not run on from the parts before it, and
    /// `#EXT-X-PROGRAM-DATE-TIME` of `shown` (when that entry is shown) at
    /// the first entry and after each discontinuity. Then takes `part` as
    /// the last one.
    pub(super) fn push_breaks(&mut self, text: &mut String, part: &Part<'a>, shown: Micros) {
        let seg = part.segment;
        let resolution = (seg.width != 0 && seg.height != 0).then_some((seg.width, seg.height));
        let discontinuity = self.previous_end.is_some_and(|end| {
            i128::from(part.start) - i128::from(end) > i128::from(DISCONTINUITY_GAP)
                || matches!((self.last_resolution, resolution), (Some(last), Some(now)) if last != now)
                || self.previous.is_some_and(|prev| media_breaks(prev, seg))
        });
        if discontinuity {
            text.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if discontinuity || self.previous_end.is_none() {
            text.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            write_program_date_time(text, shown);
            text.push('\n');
        }
        self.previous = Some(seg);
        self.previous_end = Some(part.start.saturating_add(part.duration));
        if resolution.is_some() {
            self.last_resolution = resolution;
        }
    }
}

/// `#EXTINF:` of a duration in milliseconds, three decimals.
pub(super) fn push_extinf(text: &mut String, millis: u64) {
    text.push_str("#EXTINF:");
    push_u64(text, millis / 1000);
    text.push('.');
    push_digits(text, (millis % 1000) as u32, 3);
    text.push_str(",\n");
}

/// `#EXT-X-BYTERANGE:` of `(length, offset)`.
pub(super) fn push_byte_range(text: &mut String, (length, offset): (u64, u64)) {
    text.push_str("#EXT-X-BYTERANGE:");
    push_u64(text, length);
    text.push('@');
    push_u64(text, offset);
    text.push('\n');
}

/// `#EXT-X-ENDLIST` unless the playlist is still growing.
pub(super) fn push_end(text: &mut String, kind: PlaylistType) {
    if !matches!(kind, PlaylistType::Event { ended: false, .. }) {
        text.push_str("#EXT-X-ENDLIST\n");
    }
}

/// A duration in whole milliseconds, rounded half-up as EXTINF prints it.
/// Negative durations, which no recorder should send, count as zero rather
/// than produce an invalid EXTINF.
pub(super) fn extinf_millis(duration: Micros) -> u64 {
    if duration <= 0 {
        return 0;
    }
    let duration = duration.unsigned_abs();
    duration / 1000 + u64::from(duration % 1000 >= 500)
}

/// Appends the decimal digits of `value`.
pub(super) fn push_u64(out: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;
    use crate::manifest::time::parse_request_time;

    const SECOND: Micros = 1_000_000;

    fn t0() -> Micros {
        parse_request_time("2026-11-25T10:00:00Z").unwrap()
    }

    fn seg(object: &str, start: Micros, duration: Micros) -> Segment {
        Segment {
            endpoint: "localhost:8333".into(),
            bucket: "live".into(),
            object: object.into(),
            start,
            duration,
            sequence: 0,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 0,
            media: None,
        }
    }

    #[test]
    fn an_event_playlist_stays_open_with_a_steady_target_until_it_ends() {
        let segs = run(&[4 * SECOND, 4 * SECOND]);
        let parts: Vec<Part> = segs.iter().map(Part::whole).collect();
        let open = PlaylistType::Event {
            ended: false,
            target_floor: 6 * SECOND,
        };
        let text = render_parts_as(&parts, open, |s| s.object.clone()).text;
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"), "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
        let ended = PlaylistType::Event {
            ended: true,
            target_floor: 6 * SECOND,
        };
        let text = render_parts_as(&parts, ended, |s| s.object.clone()).text;
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        // A VOD playlist's target is its own longest entry.
        let text = render_parts(&parts, |s| s.object.clone()).text;
        assert!(text.contains("#EXT-X-TARGETDURATION:4\n"), "{text}");
    }

    /// Back-to-back segments of the given durations, numbered from 7.
    fn run(durations: &[Micros]) -> Vec<Segment> {
        let mut start = t0();
        let mut segs = Vec::new();
        for (i, &d) in durations.iter().enumerate() {
            let mut s = seg(&format!("s{i}.ts"), start, d);
            s.sequence = 7 + i as i64;
            segs.push(s);
            start += d;
        }
        segs
    }

    fn render_objects(segs: &[Segment]) -> Playlist {
        render(segs, |s| s.object.clone())
    }

    fn lines(p: &Playlist) -> Vec<&str> {
        p.text.lines().collect()
    }

    #[test]
    fn a_continuous_recording() {
        let p = render_objects(&run(&[6 * SECOND, 6 * SECOND, 4_480_000]));
        assert_eq!(
            p.text,
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-TARGETDURATION:6\n\
             #EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z\n\
             #EXTINF:6.000,\n\
             s0.ts\n\
             #EXTINF:6.000,\n\
             s1.ts\n\
             #EXTINF:4.480,\n\
             s2.ts\n\
             #EXT-X-ENDLIST\n"
        );
        assert_eq!(p.duration, 16.48);
        assert_eq!((p.width, p.height), (640, 360));
    }

    #[test]
    fn extinf_rounds_half_up_and_target_is_its_ceil() {
        let p = render_objects(&run(&[6_000_499]));
        assert!(p.text.contains("#EXTINF:6.000,\n"));
        assert!(p.text.contains("#EXT-X-TARGETDURATION:6\n"));
        let p = render_objects(&run(&[6_000_500]));
        assert!(p.text.contains("#EXTINF:6.001,\n"), "{}", p.text);
        assert!(p.text.contains("#EXT-X-TARGETDURATION:7\n"));
        assert_eq!(p.duration, 6.001);
        let p = render_objects(&run(&[2_999_999, 4 * SECOND]));
        assert!(
            p.text
                .contains("#EXTINF:3.000,\ns0.ts\n#EXTINF:4.000,\ns1.ts\n")
        );
        assert!(p.text.contains("#EXT-X-TARGETDURATION:4\n"));
        let p = render_objects(&run(&[999, 1_999, 10 * SECOND + 1]));
        assert_eq!(
            lines(&p)
                .iter()
                .filter(|l| l.starts_with("#EXTINF"))
                .copied()
                .collect::<Vec<_>>(),
            ["#EXTINF:0.001,", "#EXTINF:0.002,", "#EXTINF:10.000,"]
        );
        assert!(p.text.contains("#EXT-X-TARGETDURATION:10\n"));
        assert_eq!(p.duration, 10.003);
    }

    #[test]
    fn target_duration_is_at_least_one() {
        let p = render_objects(&run(&[400_000, 0]));
        assert!(p.text.contains("#EXT-X-TARGETDURATION:1\n"));
        assert!(p.text.contains("#EXTINF:0.400,\n"));
        assert!(p.text.contains("#EXTINF:0.000,\n"));
        let p = render_objects(&run(&[-5]));
        assert!(p.text.contains("#EXTINF:0.000,\n"));
        assert_eq!(p.duration, 0.0);
    }

    #[test]
    fn duration_is_the_sum_of_printed_values() {
        // 1000 segments of 0.0334 s print as 0.033 each: 33.000, not 33.4.
        let p = render_objects(&run(&[33_400; 1000]));
        assert_eq!(p.duration, 33.0);
        let p = render_objects(&run(&[6_006_000; 3]));
        assert_eq!(p.duration, 18.018);
    }

    #[test]
    fn media_sequence_is_the_first_segments() {
        let mut segs = run(&[SECOND, SECOND]);
        segs[0].sequence = 123_456_789_012;
        assert!(
            render_objects(&segs)
                .text
                .contains("#EXT-X-MEDIA-SEQUENCE:123456789012\n")
        );
        segs[0].sequence = 0;
        assert!(
            render_objects(&segs)
                .text
                .contains("#EXT-X-MEDIA-SEQUENCE:0\n")
        );
        segs[0].sequence = -3;
        assert!(
            render_objects(&segs)
                .text
                .contains("#EXT-X-MEDIA-SEQUENCE:-3\n")
        );
        segs[0].sequence = i64::MIN;
        assert!(
            render_objects(&segs)
                .text
                .contains("#EXT-X-MEDIA-SEQUENCE:-9223372036854775808\n")
        );
    }

    #[test]
    fn holes_around_half_a_second() {
        let mut segs = run(&[6 * SECOND, 6 * SECOND]);
        segs[1].start += DISCONTINUITY_GAP;
        let p = render_objects(&segs);
        assert!(!p.text.contains("#EXT-X-DISCONTINUITY"), "{}", p.text);
        assert_eq!(p.text.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 1);

        segs[1].start += 1;
        let p = render_objects(&segs);
        assert_eq!(
            lines(&p)[5..],
            [
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z",
                "#EXTINF:6.000,",
                "s0.ts",
                "#EXT-X-DISCONTINUITY",
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:06.500Z",
                "#EXTINF:6.000,",
                "s1.ts",
                "#EXT-X-ENDLIST",
            ]
        );
        // The duration counts media only, never the hole.
        assert_eq!(p.duration, 12.0);
    }

    #[test]
    fn overlapping_segments_are_not_a_hole() {
        let mut segs = run(&[6 * SECOND, 6 * SECOND]);
        segs[1].start -= 3 * SECOND;
        assert!(!render_objects(&segs).text.contains("DISCONTINUITY"));
    }

    #[test]
    fn a_long_hole() {
        let mut segs = run(&[6 * SECOND, 6 * SECOND, 6 * SECOND]);
        segs[2].start += 3600 * SECOND;
        let p = render_objects(&segs);
        assert_eq!(p.text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(p.text.contains(
            "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T11:00:12.000Z\n#EXTINF:6.000,\ns2.ts\n"
        ));
    }

    #[test]
    fn resolution_changes() {
        let mut segs = run(&[SECOND; 4]);
        segs[2].width = 1280;
        segs[2].height = 720;
        segs[3].width = 1280;
        segs[3].height = 720;
        let p = render_objects(&segs);
        assert_eq!(p.text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert!(p.text.contains(
            "s1.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:02.000Z\n#EXTINF:1.000,\ns2.ts\n"
        ));
        assert_eq!(p.text.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 2);
        // Width and height report the first segment.
        assert_eq!((p.width, p.height), (640, 360));

        // Height alone changing is a change too.
        let mut segs = run(&[SECOND; 2]);
        segs[1].height = 480;
        assert!(render_objects(&segs).text.contains("#EXT-X-DISCONTINUITY"));
    }

    #[test]
    fn unknown_resolutions_are_no_change() {
        let mut segs = run(&[SECOND; 3]);
        segs[1].width = 0;
        segs[1].height = 0;
        assert!(!render_objects(&segs).text.contains("DISCONTINUITY"));
        // Half-known counts as unknown.
        segs[1].width = 1920;
        assert!(!render_objects(&segs).text.contains("DISCONTINUITY"));
        // A change hidden behind an unknown segment is still a change.
        segs[2].width = 1280;
        segs[2].height = 720;
        let p = render_objects(&segs);
        assert!(
            p.text.contains(
                "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:02.000Z\n"
            )
        );
    }

    #[test]
    fn width_and_height_of_the_first_known_segment() {
        let mut segs = run(&[SECOND; 3]);
        for s in &mut segs {
            s.width = 0;
            s.height = 0;
        }
        let p = render_objects(&segs);
        assert_eq!((p.width, p.height), (0, 0));
        segs[0].width = 640;
        segs[1].width = 1920;
        segs[1].height = 1080;
        segs[2].width = 1280;
        segs[2].height = 720;
        let p = render_objects(&segs);
        assert_eq!((p.width, p.height), (1920, 1080));
    }

    #[test]
    fn program_date_time_has_milliseconds() {
        let mut segs = run(&[SECOND]);
        segs[0].start += 480_999;
        assert!(
            render_objects(&segs)
                .text
                .contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.480Z\n")
        );
    }

    #[test]
    fn uris_come_from_the_closure_in_order() {
        let segs = run(&[SECOND; 3]);
        let mut calls = 0;
        let p = render(&segs, |s| {
            calls += 1;
            format!("../x/{}?n={calls}", s.object)
        });
        assert_eq!(calls, 3);
        let uris: Vec<&str> = lines(&p)
            .into_iter()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(uris, ["../x/s0.ts?n=1", "../x/s1.ts?n=2", "../x/s2.ts?n=3"]);
    }

    #[test]
    fn every_line_ends_with_a_newline() {
        let p = render_objects(&run(&[SECOND; 2]));
        assert!(p.text.ends_with("#EXT-X-ENDLIST\n"));
        assert!(!p.text.contains("\n\n"));
        assert!(!p.text.contains('\r'));
    }

    #[test]
    fn an_empty_list_still_renders() {
        let p = render_objects(&[]);
        assert_eq!(
            p.text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-ENDLIST\n"
        );
        assert_eq!(p.duration, 0.0);
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let segs = [
            seg("a.ts", i64::MIN, i64::MAX),
            seg("b.ts", i64::MAX, i64::MAX),
        ];
        let p = render_objects(&segs);
        assert!(
            p.text.contains("#EXTINF:9223372036854.776,\n"),
            "{}",
            p.text
        );
        assert!(p.text.contains("#EXT-X-TARGETDURATION:9223372036855\n"));
    }

    #[test]
    fn push_u64_digits() {
        for value in [0, 1, 9, 10, 99, 100, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }

    #[test]
    fn a_hundred_thousand_segments() {
        let segs: Vec<Segment> = (0..100_000)
            .map(|i| {
                let mut s = seg(
                    &format!("record/live/cam1/2026-11-25/{i:06}.ts"),
                    t0() + i * 6 * SECOND,
                    6 * SECOND,
                );
                s.sequence = i;
                s
            })
            .collect();
        let started = std::time::Instant::now();
        let p = render(&segs, |s| {
            super::super::uri::relative_uri("record/live/cam1/index.m3u8", &s.object)
        });
        let elapsed = started.elapsed();
        assert_eq!(p.text.matches("#EXTINF:6.000,\n").count(), 100_000);
        assert!(p.text.contains("\n2026-11-25/099999.ts\n#EXT-X-ENDLIST\n"));
        assert_eq!(p.duration, 600_000.0);
        // Only release builds are held to the budget.
        if !cfg!(debug_assertions) {
            assert!(elapsed.as_millis() < 50, "rendering took {elapsed:?}");
        }
    }

    #[test]
    fn the_media_breaks_where_wall_clocks_do_not() {
        use crate::manifest::SegmentMedia;
        use crate::media::VideoCodec;
        let mut segs: Vec<Segment> = (0..4)
            .map(|i| {
                seg(
                    &format!("{i}.ts"),
                    1_800_000_000_000_000 + i * 6_000_000,
                    6_000_000,
                )
            })
            .collect();
        let pts = |seconds: u64| (seconds * 90_000 + (1u64 << 33) - 90_000) & ((1u64 << 33) - 1);
        // PTS runs on across a 33-bit wrap: no break.
        segs[0].media = Some(SegmentMedia {
            codec: VideoCodec::H264,
            first_pts: pts(0),
        });
        segs[1].media = Some(SegmentMedia {
            codec: VideoCodec::H264,
            first_pts: pts(6),
        });
        // An encoder restart: PTS starts over though the clock runs on.
        segs[2].media = Some(SegmentMedia {
            codec: VideoCodec::H264,
            first_pts: 0,
        });
        // Another codec.
        segs[3].media = Some(SegmentMedia {
            codec: VideoCodec::H265,
            first_pts: 6 * 90_000,
        });
        let text = render(&segs, |s| s.object.clone()).text;
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 2, "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"));
        // Unprobed neighbours never break on media grounds.
        segs[2].media = None;
        let text = render(&segs, |s| s.object.clone()).text;
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 0, "{text}");
    }

    #[test]
    fn byte_ranges_make_version_4() {
        let segs: Vec<Segment> = (0..2)
            .map(|i| seg(&format!("{i}.ts"), t0() + i * 6 * SECOND, 6 * SECOND))
            .collect();
        let parts = vec![
            Part {
                segment: &segs[0],
                start: t0() + 2 * SECOND,
                duration: 4 * SECOND,
                byte_range: Some((1000, 376)),
            },
            Part {
                segment: &segs[1],
                start: t0() + 6 * SECOND,
                duration: 3 * SECOND,
                byte_range: Some((2256, 0)),
            },
        ];
        let playlist = render_parts(&parts, |s| s.object.clone());
        assert!(
            playlist
                .text
                .starts_with("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n"),
            "{}",
            playlist.text
        );
        assert!(playlist.text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:02.000Z\n#EXTINF:4.000,\n#EXT-X-BYTERANGE:1000@376\n0.ts\n"));
        assert!(
            playlist
                .text
                .contains("#EXTINF:3.000,\n#EXT-X-BYTERANGE:2256@0\n1.ts\n")
        );
        assert!(!playlist.text.contains("DISCONTINUITY"));
        assert_eq!(playlist.duration, 7.0);
    }
}
