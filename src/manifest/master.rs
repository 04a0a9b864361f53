//! The master playlist of a program recorded in several renditions
//! (RFC 8216 section 4.3.4.2), with each rendition's I-frame playlist when
//! it has one (section 4.3.4.3), and the bitrates it declares.

use super::playlist::Part;
use super::{MICROS_PER_SECOND, Micros};

/// One rendition as the master playlist lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// URI of its media playlist, relative to the master playlist.
    pub uri: String,
    /// Peak bits per second over its segments.
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codec string, when the media was probed.
    pub codecs: Option<String>,
}

/// A rendition's I-frame playlist as the master playlist names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IFrameVariant {
    /// URI of the I-frame playlist, relative to the master playlist.
    pub uri: String,
    /// Peak bits per second of its entries.
    pub bandwidth: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: Option<String>,
}

/// Peak and average bits per second of the parts whose size is known;
/// `None` when no size is known.
pub fn bitrates(parts: &[Part]) -> Option<(u64, u64)> {
    let mut peak = 0u64;
    let (mut bits, mut micros): (u128, u128) = (0, 0);
    for part in parts {
        let bytes = match part.byte_range {
            Some((length, _)) => length,
            None => part.segment.size,
        };
        if bytes == 0 || part.duration <= 0 {
            continue;
        }
        let part_bits = u128::from(bytes) * 8;
        let rate = part_bits * MICROS_PER_SECOND as u128 / part.duration as u128;
        peak = peak.max(u64::try_from(rate).unwrap_or(u64::MAX));
        bits += part_bits;
        micros += part.duration as u128;
    }
    (micros > 0).then(|| {
        (
            peak,
            u64::try_from(bits * MICROS_PER_SECOND as u128 / micros).unwrap_or(u64::MAX),
        )
    })
}

/// The master playlist of `variants`, then of the I-frame playlists
/// `iframes`.
pub fn render(variants: &[Variant], iframes: &[IFrameVariant]) -> String {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for variant in variants {
        text.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            variant.bandwidth.max(1),
            variant.average_bandwidth.max(1)
        ));
        push_picture(&mut text, variant.width, variant.height, &variant.codecs);
        text.push('\n');
        text.push_str(&variant.uri);
        text.push('\n');
    }
    for iframe in iframes {
        text.push_str(&format!(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={}",
            iframe.bandwidth.max(1)
        ));
        push_picture(&mut text, iframe.width, iframe.height, &iframe.codecs);
        // A quoted string cannot hold a `"`; percent-encoded, the URI names
        // the same resource.
        text.push_str(&format!(",URI=\"{}\"\n", iframe.uri.replace('"', "%22")));
    }
    text
}

/// `RESOLUTION` when the size is known, `CODECS` when the media was
/// probed.
fn push_picture(text: &mut String, width: u32, height: u32, codecs: &Option<String>) {
    if width > 0 && height > 0 {
        text.push_str(&format!(",RESOLUTION={width}x{height}"));
    }
    if let Some(codecs) = codecs {
        text.push_str(&format!(",CODECS=\"{codecs}\""));
    }
}

/// Whether renditions cut on the same boundaries: the same number of
/// parts, each starting within `tolerance` of the first rendition's.
pub fn aligned(renditions: &[&[Part]], tolerance: Micros) -> bool {
    let Some(first) = renditions.first() else {
        return true;
    };
    renditions.iter().all(|parts| {
        parts.len() == first.len()
            && parts
                .iter()
                .zip(first.iter())
                .all(|(a, b)| (a.start - b.start).abs() <= tolerance)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Format, Segment};

    fn segment(start: Micros, size: u64) -> Segment {
        Segment {
            endpoint: "e".into(),
            bucket: "b".into(),
            object: format!("{start}.ts"),
            start,
            duration: 2_000_000,
            sequence: 0,
            width: 640,
            height: 360,
            format: Format::Ts,
            size,
            media: None,
        }
    }

    #[test]
    fn bitrates_are_peak_and_average() {
        let segments = [
            segment(0, 250_000),
            segment(2_000_000, 500_000),
            segment(4_000_000, 0),
        ];
        let parts: Vec<Part> = segments.iter().map(Part::whole).collect();
        assert_eq!(bitrates(&parts), Some((2_000_000, 1_500_000)));
        assert_eq!(bitrates(&parts[2..]), None);
    }

    #[test]
    fn i_frame_playlists_follow_the_variants() {
        let variant = Variant {
            uri: "../cam_hd/index.m3u8?start=1".into(),
            bandwidth: 2_000_000,
            average_bandwidth: 1_500_000,
            width: 1280,
            height: 720,
            codecs: Some("avc1.64001F".into()),
        };
        let iframes = [
            IFrameVariant {
                uri: "../cam_hd/iframes.m3u8?start=1&auth_key=1-a-0-f".into(),
                bandwidth: 320_000,
                width: 1280,
                height: 720,
                codecs: Some("avc1.64001F".into()),
            },
            IFrameVariant {
                uri: "../cam_sd/iframes.m3u8?q=\"".into(),
                bandwidth: 0,
                width: 0,
                height: 0,
                codecs: None,
            },
        ];
        let text = render(&[variant], &iframes);
        assert!(
            text.ends_with(
                "../cam_hd/index.m3u8?start=1\n\
                 #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=320000,RESOLUTION=1280x720,\
                 CODECS=\"avc1.64001F\",URI=\"../cam_hd/iframes.m3u8?start=1&auth_key=1-a-0-f\"\n\
                 #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"../cam_sd/iframes.m3u8?q=%22\"\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn master_lists_each_variant() {
        let text = render(
            &[
                Variant {
                    uri: "cam_720p.m3u8".into(),
                    bandwidth: 2_000_000,
                    average_bandwidth: 1_500_000,
                    width: 1280,
                    height: 720,
                    codecs: Some("avc1.64001F".into()),
                },
                Variant {
                    uri: "cam_360p.m3u8".into(),
                    bandwidth: 0,
                    average_bandwidth: 0,
                    width: 0,
                    height: 0,
                    codecs: None,
                },
            ],
            &[],
        );
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,CODECS=\"avc1.64001F\"\n\
             cam_720p.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\ncam_360p.m3u8\n"
        );
    }

    fn parts(segments: &[Segment]) -> Vec<Part<'_>> {
        segments.iter().map(Part::whole).collect()
    }

    #[test]
    fn alignment_needs_the_same_cuts() {
        let a = [segment(0, 1), segment(2_000_000, 1)];
        let b = [segment(100_000, 1), segment(2_050_000, 1)];
        let c = [segment(0, 1)];
        assert!(aligned(&[&parts(&a), &parts(&b)], 500_000));
        assert!(!aligned(&[&parts(&a), &parts(&b)], 50_000));
        assert!(!aligned(&[&parts(&a), &parts(&c)], 500_000));
    }
}
