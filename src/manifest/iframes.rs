//! The I-frame playlist (RFC 8216 sections 4.3.3.6 and 4.3.4.3): every
//! keyframe of a range as a media segment of its own, a byte range of its
//! recorded segment, for players' trick play and thumbnails.
//!
//! Each keyframe's entry covers its PES, from the TS packet where it
//! starts to the one where the next video PES starts; it lasts until the
//! next keyframe, or to the end of the playlist entry it belongs to. A
//! recorded segment's keyframes share one `#EXT-X-MAP`, the PAT and PMT
//! a decoder needs before any of them (the Media Initialization Section
//! of a transport stream, RFC 8216 section 3), which the byte ranges of
//! the keyframes do not include. Gaps and breaks in the media get
//! `#EXT-X-DISCONTINUITY` exactly as in the media playlist of the range.

use super::clip::keyframe_time;
use super::playlist::{
    Continuity, Part, PlaylistType, extinf_millis, push_byte_range, push_end, push_extinf,
    push_header_tags,
};
use super::{MICROS_PER_SECOND, Micros, Segment};
use crate::media::Probe;

/// EXT-X-I-FRAMES-ONLY needs version 4, and EXT-X-MAP in an I-frame
/// playlist version 5 (RFC 8216 section 7).
const VERSION: u64 = 5;

/// Rough bytes per keyframe entry (tags and a typical URI), to allocate
/// once.
const BYTES_PER_FRAME: usize = 128;

/// One keyframe as a media segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IFrame {
    /// When it is shown, and until the next keyframe.
    pub start: Micros,
    pub duration: Micros,
    /// `(length, offset)` of its PES in the segment's object.
    pub byte_range: (u64, u64),
}

/// The keyframes of one playlist entry (a segment, or the part of one a
/// KEYFRAME clip keeps) and its segment's PAT and PMT.
#[derive(Debug, Clone, PartialEq)]
pub struct PartFrames<'a> {
    pub part: Part<'a>,
    /// `(length, offset)` of the PAT and PMT, for `#EXT-X-MAP`.
    pub map: (u64, u64),
    pub frames: Vec<IFrame>,
}

/// The keyframes of `probe` (the whole segment of `part`) shown within
/// `part`. `None` when there is none, or when no PAT and PMT precede any
/// keyframe of the segment, so a player could not read one alone.
pub fn part_frames<'a>(part: &Part<'a>, probe: &Probe) -> Option<PartFrames<'a>> {
    let map = probe
        .keyframes
        .iter()
        .find_map(|k| match (k.tables_offset, k.tables_end) {
            (Some(offset), Some(end)) if end > offset => Some((end - offset, offset)),
            _ => None,
        })?;
    let part_end = part.start.saturating_add(part.duration);
    let shown: Vec<(Micros, (u64, u64))> = probe
        .keyframes
        .iter()
        .filter(|k| k.end > k.offset)
        .map(|k| {
            (
                keyframe_time(part.segment, probe, k),
                (k.end - k.offset, k.offset),
            )
        })
        .filter(|(at, _)| (part.start..part_end).contains(at))
        .collect();
    let frames: Vec<IFrame> = shown
        .iter()
        .enumerate()
        .map(|(i, &(start, byte_range))| {
            let next = shown.get(i + 1).map_or(part_end, |(at, _)| *at);
            IFrame {
                start,
                duration: next.saturating_sub(start).max(0),
                byte_range,
            }
        })
        .collect();
    if frames.is_empty() {
        return None;
    }
    Some(PartFrames {
        part: *part,
        map,
        frames,
    })
}

/// The highest bit rate of the keyframes' entries, each its byte range
/// over its duration: an I-frame playlist's BANDWIDTH (RFC 8216 section
/// 4.3.4.2, the peak segment bit rate). The PAT and PMT are left out, as a
/// player reads them once per recorded segment. `None` when no entry has
/// a duration.
pub fn peak_bandwidth(frames: &[IFrame]) -> Option<u64> {
    frames
        .iter()
        .filter(|frame| frame.duration > 0)
        .map(|frame| {
            let bits = u128::from(frame.byte_range.0) * 8 * MICROS_PER_SECOND as u128;
            u64::try_from(bits / frame.duration as u128).unwrap_or(u64::MAX)
        })
        .max()
}

/// Renders the I-frame playlist of `parts`, in order. `uri_for` gives the
/// URI of each part's segment, asked once per part.
pub fn render(
    parts: &[PartFrames],
    kind: PlaylistType,
    mut uri_for: impl FnMut(&Segment) -> String,
) -> String {
    let frames: usize = parts.iter().map(|p| p.frames.len()).sum();
    let mut text = String::with_capacity(192 + frames * BYTES_PER_FRAME);
    let longest = parts
        .iter()
        .flat_map(|p| &p.frames)
        .map(|frame| extinf_millis(frame.duration))
        .max()
        .unwrap_or(0);
    push_header_tags(&mut text, VERSION, longest, 0, kind);
    text.push_str("#EXT-X-I-FRAMES-ONLY\n");
    let mut continuity = Continuity::default();
    for part in parts {
        let Some(first) = part.frames.first() else {
            continue;
        };
        // A break is judged on the media playlist's entry, as that playlist
        // judges it; the date is the first keyframe's.
        continuity.push_breaks(&mut text, &part.part, first.start);
        let uri = uri_for(part.part.segment);
        push_map(&mut text, &uri, part.map);
        for frame in &part.frames {
            push_extinf(&mut text, extinf_millis(frame.duration));
            push_byte_range(&mut text, frame.byte_range);
            text.push_str(&uri);
            text.push('\n');
        }
    }
    push_end(&mut text, kind);
    text
}

/// `#EXT-X-MAP` of a byte range of `uri`. Its URI is a quoted string,
/// which cannot hold a `"`; percent-encoded, it names the same resource.
fn push_map(text: &mut String, uri: &str, (length, offset): (u64, u64)) {
    text.push_str("#EXT-X-MAP:URI=\"");
    text.push_str(&uri.replace('"', "%22"));
    text.push_str("\",BYTERANGE=\"");
    text.push_str(&format!("{length}@{offset}"));
    text.push_str("\"\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;
    use crate::manifest::time::parse_request_time;
    use crate::media::{Keyframe, VideoCodec};

    const SECOND: Micros = MICROS_PER_SECOND;

    fn t0() -> Micros {
        parse_request_time("2026-11-25T10:00:00Z").unwrap()
    }

    fn segment(object: &str, start: Micros) -> Segment {
        Segment {
            endpoint: "e".into(),
            bucket: "b".into(),
            object: object.into(),
            start,
            duration: 6 * SECOND,
            sequence: 3,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 600_000,
            media: None,
        }
    }

    /// Six one-second GOPs of 100,000 bytes, each keyframe's PES 20,000
    /// bytes after PAT and PMT of 376; the PTS clock wraps in the third.
    fn probe() -> Probe {
        let first_pts = (1u64 << 33) - 2 * 90_000 - 45_000;
        Probe {
            video_pid: 256,
            codec: VideoCodec::H264,
            width: 640,
            height: 360,
            codec_string: "avc1.64001E".to_string(),
            first_pts,
            last_pts: (first_pts + 6 * 90_000 - 3600) & ((1 << 33) - 1),
            duration_micros: 6 * SECOND,
            frames: 150,
            keyframes: (0..6u64)
                .map(|i| Keyframe {
                    offset: i * 100_000 + 376,
                    tables_offset: Some(i * 100_000),
                    tables_end: Some(i * 100_000 + 376),
                    end: i * 100_000 + 20_376,
                    pts: (first_pts + i * 90_000) & ((1 << 33) - 1),
                })
                .collect(),
        }
    }

    #[test]
    fn a_whole_segment_gives_each_keyframe_to_the_next() {
        let seg = segment("s.ts", t0());
        let frames = part_frames(&Part::whole(&seg), &probe()).unwrap();
        assert_eq!(frames.map, (376, 0));
        assert_eq!(frames.frames.len(), 6);
        for (i, frame) in frames.frames.iter().enumerate() {
            let i = i as u64;
            assert_eq!(frame.start, t0() + i as Micros * SECOND);
            assert_eq!(frame.duration, SECOND);
            assert_eq!(frame.byte_range, (20_000, i * 100_000 + 376));
        }
    }

    #[test]
    fn a_clipped_part_keeps_the_keyframes_it_shows() {
        let seg = segment("s.ts", t0());
        // A KEYFRAME clip of 2.0 s to 4.6 s of the segment: its keyframes
        // at 2, 3 and 4 s; the last lasts to the part's end.
        let part = Part {
            segment: &seg,
            start: t0() + 2 * SECOND,
            duration: 2_600_000,
            byte_range: Some((260_376, 200_000)),
        };
        let frames = part_frames(&part, &probe()).unwrap();
        let starts: Vec<Micros> = frames.frames.iter().map(|f| f.start - t0()).collect();
        assert_eq!(starts, [2 * SECOND, 3 * SECOND, 4 * SECOND]);
        assert_eq!(frames.frames[2].duration, 600_000);
        // The tables are the segment's first, wherever the part starts.
        assert_eq!(frames.map, (376, 0));
    }

    #[test]
    fn keyframes_a_player_cannot_read_alone_are_left_out() {
        let seg = segment("s.ts", t0());
        let mut late_start = probe();
        // A segment opening on half a GOP: its first keyframe is 0.5 s in,
        // and the entries begin there.
        for k in &mut late_start.keyframes {
            k.pts = (k.pts + 45_000) & ((1 << 33) - 1);
        }
        let frames = part_frames(&Part::whole(&seg), &late_start).unwrap();
        assert_eq!(frames.frames[0].start, t0() + 500_000);
        assert_eq!(frames.frames[5].duration, 500_000);

        let mut damaged = probe();
        damaged.keyframes[1].end = damaged.keyframes[1].offset;
        damaged.keyframes[0].tables_offset = None;
        damaged.keyframes[0].tables_end = None;
        let frames = part_frames(&Part::whole(&seg), &damaged).unwrap();
        assert_eq!(frames.frames.len(), 5);
        // Keyframe 0 runs on to keyframe 2, the next one kept.
        assert_eq!(frames.frames[0].duration, 2 * SECOND);
        assert_eq!(frames.map, (376, 100_000));

        let mut untabled = probe();
        for k in &mut untabled.keyframes {
            (k.tables_offset, k.tables_end) = (None, None);
        }
        assert_eq!(part_frames(&Part::whole(&seg), &untabled), None);
        let later = segment("s.ts", t0() + 60 * SECOND);
        let before = Part {
            duration: SECOND,
            ..Part::whole(&later)
        };
        let mut shifted = probe();
        shifted.keyframes.retain(|k| k.offset > 100_000);
        assert_eq!(part_frames(&before, &shifted), None);
    }

    #[test]
    fn peak_bandwidth_is_the_densest_keyframe() {
        let frame = |length, duration| IFrame {
            start: 0,
            duration,
            byte_range: (length, 0),
        };
        assert_eq!(
            peak_bandwidth(&[frame(20_000, SECOND), frame(30_000, 2 * SECOND)]),
            Some(160_000)
        );
        assert_eq!(peak_bandwidth(&[frame(20_000, 500_000)]), Some(320_000));
        assert_eq!(peak_bandwidth(&[frame(20_000, 0)]), None);
        assert_eq!(peak_bandwidth(&[]), None);
    }

    #[test]
    fn a_vod_playlist_of_two_segments() {
        let segs = [segment("a.ts", t0()), segment("b.ts", t0() + 6 * SECOND)];
        let probe = probe();
        let parts: Vec<PartFrames> = segs
            .iter()
            .map(|s| {
                let mut frames = part_frames(&Part::whole(s), &probe).unwrap();
                frames.frames.truncate(2);
                frames.frames[1].duration = 5 * SECOND;
                frames
            })
            .collect();
        let text = render(&parts, PlaylistType::Vod, |s| {
            format!("https://x/{}", s.object)
        });
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:5\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.000Z\n\
             #EXT-X-MAP:URI=\"https://x/a.ts\",BYTERANGE=\"376@0\"\n\
             #EXTINF:1.000,\n#EXT-X-BYTERANGE:20000@376\nhttps://x/a.ts\n\
             #EXTINF:5.000,\n#EXT-X-BYTERANGE:20000@100376\nhttps://x/a.ts\n\
             #EXT-X-MAP:URI=\"https://x/b.ts\",BYTERANGE=\"376@0\"\n\
             #EXTINF:1.000,\n#EXT-X-BYTERANGE:20000@376\nhttps://x/b.ts\n\
             #EXTINF:5.000,\n#EXT-X-BYTERANGE:20000@100376\nhttps://x/b.ts\n\
             #EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn gaps_break_as_in_the_media_playlist_and_live_ranges_stay_open() {
        // A one-minute hole, and a segment opening half a second before
        // its first keyframe, which is no hole.
        let segs = [
            segment("a.ts", t0()),
            segment("b.ts", t0() + 66 * SECOND),
            segment("c.ts", t0() + 72 * SECOND),
        ];
        let mut late = probe();
        for k in &mut late.keyframes {
            k.pts = (k.pts + 45_000) & ((1 << 33) - 1);
        }
        let parts = [
            part_frames(&Part::whole(&segs[0]), &probe()).unwrap(),
            part_frames(&Part::whole(&segs[1]), &probe()).unwrap(),
            part_frames(&Part::whole(&segs[2]), &late).unwrap(),
        ];
        let live = PlaylistType::Event {
            ended: false,
            target_floor: 6 * SECOND,
        };
        let text = render(&parts, live, |s| s.object.clone());
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(
            text.contains(
                "a.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:01:06.000Z\n\
                 #EXT-X-MAP:URI=\"b.ts\""
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("#EXT-X-PROGRAM-DATE-TIME").count(),
            2,
            "{text}"
        );
        assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:6\n"), "{text}");
        assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
        assert_eq!(text.matches("#EXT-X-MAP:").count(), 3, "{text}");
        assert_eq!(text.matches("#EXTINF:").count(), 18, "{text}");
        let ended = PlaylistType::Event {
            ended: true,
            target_floor: 6 * SECOND,
        };
        assert!(render(&parts, ended, |s| s.object.clone()).ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn a_quote_in_a_uri_does_not_end_the_map_attribute() {
        let seg = segment("a.ts", t0());
        let parts = [part_frames(&Part::whole(&seg), &probe()).unwrap()];
        let text = render(&parts, PlaylistType::Vod, |_| "x\"y.ts".into());
        assert!(
            text.contains("#EXT-X-MAP:URI=\"x%22y.ts\",BYTERANGE="),
            "{text}"
        );
    }
}
