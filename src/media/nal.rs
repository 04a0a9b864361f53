//! Annex B elementary streams of H.264 and H.265: what a PES payload holds
//! (pictures, whether it opens with a keyframe, parameter sets) and the
//! displayed picture size from a sequence parameter set.

use std::num::NonZeroUsize;

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitRead, BitReader, BitReaderError, ByteReader};
use memchr::memmem;

use super::codec::VideoCodec;

const START_CODE: &[u8] = &[0, 0, 1];

/// H.265 NAL unit headers are two bytes; H.264's one.
const H265_HEADER_LEN: NonZeroUsize = NonZeroUsize::new(2).unwrap();

/// The NAL units of an Annex B byte stream, without start codes. Bytes
/// before the first start code belong to no unit we can name and are
/// skipped.
pub(super) fn nal_units(es: &[u8]) -> NalUnits<'_> {
    NalUnits {
        es,
        next: memmem::find(es, START_CODE).map(|at| at + START_CODE.len()),
    }
}

pub(super) struct NalUnits<'a> {
    es: &'a [u8],
    next: Option<usize>,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let rest = self.es.get(start..)?;
            let end = memmem::find(rest, START_CODE);
            self.next = end.map(|at| start + at + START_CODE.len());
            let mut nal = &rest[..end.unwrap_or(rest.len())];
            // Zero bytes before the next start code (the leading byte of a
            // four-byte start code, trailing_zero_8bits, cabac_zero_words)
            // are not part of the unit; a unit never ends in 0x00 itself.
            while let [body @ .., 0] = nal {
                nal = body;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// The part of a stream cut at an arbitrary byte that holds only whole NAL
/// units: everything before the last start code.
pub(super) fn whole_units(es: &[u8]) -> &[u8] {
    &es[..memmem::rfind(es, START_CODE).unwrap_or(0)]
}

/// What one PES payload carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct PesContent {
    /// Pictures (access units) that begin in this payload.
    pub(super) pictures: u32,
    /// The first coded slice is an H.264 IDR or an H.265 IRAP picture, so
    /// decoding can start at this PES.
    pub(super) opens_with_keyframe: bool,
}

enum Unit {
    Sps,
    Slice {
        keyframe: bool,
        first_in_picture: bool,
    },
}

/// Looks through a PES payload's NAL units, handing each sequence parameter
/// set to `on_sps`.
pub(super) fn scan_pes(codec: VideoCodec, es: &[u8], mut on_sps: impl FnMut(&[u8])) -> PesContent {
    let mut content = PesContent::default();
    let mut seen_slice = false;
    for nal in nal_units(es) {
        match classify(codec, nal) {
            Some(Unit::Sps) => on_sps(nal),
            Some(Unit::Slice {
                keyframe,
                first_in_picture,
            }) => {
                if !seen_slice {
                    // Only a keyframe at the front helps: the byte range a
                    // player gets starts at the PES, and pictures before the
                    // keyframe in it would not decode.
                    content.opens_with_keyframe = keyframe;
                    seen_slice = true;
                }
                if first_in_picture {
                    content.pictures = content.pictures.saturating_add(1);
                }
            }
            None => {}
        }
    }
    content
}

fn classify(codec: VideoCodec, nal: &[u8]) -> Option<Unit> {
    match codec {
        VideoCodec::H264 => {
            let header = *nal.first()?;
            if header & 0x80 != 0 {
                return None; // forbidden_zero_bit
            }
            match header & 0x1F {
                7 => Some(Unit::Sps),
                // Non-IDR slice, data partition A, IDR slice: each begins
                // with a slice header whose first field, first_mb_in_slice,
                // is ue(v) and is 0 (a single 1 bit) only in a picture's
                // first slice.
                kind @ (1 | 2 | 5) => Some(Unit::Slice {
                    keyframe: kind == 5,
                    first_in_picture: nal.get(1).is_some_and(|b| b & 0x80 != 0),
                }),
                _ => None,
            }
        }
        VideoCodec::H265 => {
            let [h0, h1, ..] = *nal else {
                return None;
            };
            if h0 & 0x80 != 0 {
                return None;
            }
            // Units of enhancement layers say nothing about the base picture
            // a player decodes.
            let layer_id = (h0 & 0x01) << 5 | h1 >> 3;
            if layer_id != 0 {
                return None;
            }
            match (h0 >> 1) & 0x3F {
                33 => Some(Unit::Sps),
                // VCL types; 16..=21 are the IRAP pictures (BLA, IDR, CRA).
                kind @ (0..=9 | 16..=21) => Some(Unit::Slice {
                    keyframe: (16..=21).contains(&kind),
                    first_in_picture: nal.get(2).is_some_and(|b| b & 0x80 != 0),
                }),
                _ => None,
            }
        }
    }
}

/// What a sequence parameter set tells a player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpsInfo {
    /// Width and height a player shows, with the SPS cropping (H.264 frame
    /// cropping, H.265 conformance window) applied.
    pub(super) width: u32,
    pub(super) height: u32,
    /// RFC 6381 codec string, as an HLS master playlist's CODECS wants it.
    pub(super) codec_string: String,
}

/// Reads what a player needs from a sequence parameter set (the whole NAL
/// unit, header included).
pub(super) fn read_sps(codec: VideoCodec, sps: &[u8]) -> Result<SpsInfo, String> {
    match codec {
        VideoCodec::H264 => h264_sps(sps),
        VideoCodec::H265 => h265_sps(sps),
    }
}

fn h264_sps(nal: &[u8]) -> Result<SpsInfo, String> {
    let sps = SeqParameterSet::from_bits(BitReader::new(ByteReader::skipping_h264_header(nal)))
        .map_err(|e| format!("{e:?}"))?;
    let (width, height) = sps.pixel_dimensions().map_err(|e| format!("{e:?}"))?;
    if width == 0 || height == 0 {
        return Err(format!("picture size {width}x{height}"));
    }
    Ok(SpsInfo {
        width,
        height,
        codec_string: avc1_codec_string(
            u8::from(sps.profile_idc),
            u8::from(sps.constraint_flags),
            sps.level_idc,
        ),
    })
}

/// `avc1.PPCCLL` (RFC 6381 3.3, ISO/IEC 14496-15): profile_idc, the byte of
/// constraint flags and level_idc, each as two uppercase hex digits.
pub(super) fn avc1_codec_string(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    format!("avc1.{profile_idc:02X}{constraint_flags:02X}{level_idc:02X}")
}

/// The general part of an H.265 profile_tier_level (H.265 7.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GeneralProfile {
    pub(super) profile_space: u8,
    pub(super) tier_flag: bool,
    pub(super) profile_idc: u8,
    /// general_profile_compatibility_flag[0..32], flag 0 in the most
    /// significant bit as in the stream.
    pub(super) compatibility_flags: u32,
    /// The 48 bits from general_progressive_source_flag on, in stream order.
    pub(super) constraint_bytes: [u8; 6],
    pub(super) level_idc: u8,
}

impl GeneralProfile {
    /// `hvc1.[A-C]P.CCC.{L,H}LLL[.BB]*` (ISO/IEC 14496-15 Annex E.3, as
    /// ffmpeg and hls.js write it): profile space as a letter (none for 0)
    /// and profile_idc in decimal; the compatibility flags in reverse bit
    /// order in uppercase hex without leading zeros; tier and level_idc in
    /// decimal; then each constraint byte in uppercase hex, trailing zero
    /// bytes left out.
    pub(super) fn codec_string(&self) -> String {
        let space = match self.profile_space {
            0 => "",
            1 => "A",
            2 => "B",
            _ => "C",
        };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            if self.tier_flag { 'H' } else { 'L' },
            self.level_idc,
        );
        let kept = self
            .constraint_bytes
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        for byte in &self.constraint_bytes[..kept] {
            s.push_str(&format!(".{byte:X}"));
        }
        s
    }
}

/// Reads the H.265 SPS only as far as the conformance window (ITU-T H.265
/// 7.3.2.2.1); everything after it is irrelevant to the picture size and
/// codec string, and not parsing it leaves less to go wrong on damaged input.
fn h265_sps(nal: &[u8]) -> Result<SpsInfo, String> {
    let mut r = BitReader::new(ByteReader::skipping_bytes(nal, H265_HEADER_LEN));
    let e = |e: BitReaderError| format!("{e:?}");
    r.skip(4, "sps_video_parameter_set_id").map_err(e)?;
    let max_sub_layers_minus1: u8 = r.read::<3, u8>("sps_max_sub_layers_minus1").map_err(e)?;
    if max_sub_layers_minus1 > 6 {
        return Err(format!(
            "sps_max_sub_layers_minus1 {max_sub_layers_minus1} > 6"
        ));
    }
    r.skip(1, "sps_temporal_id_nesting_flag").map_err(e)?;
    let general = read_profile_tier_level(&mut r, max_sub_layers_minus1).map_err(e)?;
    let sps_id = r.read_ue("sps_seq_parameter_set_id").map_err(e)?;
    if sps_id > 15 {
        return Err(format!("sps_seq_parameter_set_id {sps_id} > 15"));
    }
    let chroma_format_idc = r.read_ue("chroma_format_idc").map_err(e)?;
    // SubWidthC and SubHeightC (Table 6-1): conformance window offsets are
    // in chroma samples.
    let (sub_width, sub_height) = match chroma_format_idc {
        0 => (1, 1),
        1 => (2, 2),
        2 => (2, 1),
        3 => {
            r.skip(1, "separate_colour_plane_flag").map_err(e)?;
            (1, 1)
        }
        other => return Err(format!("chroma_format_idc {other} > 3")),
    };
    let coded_width = r.read_ue("pic_width_in_luma_samples").map_err(e)?;
    let coded_height = r.read_ue("pic_height_in_luma_samples").map_err(e)?;
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.read_bit("conformance_window_flag").map_err(e)? {
        left = r.read_ue("conf_win_left_offset").map_err(e)?;
        right = r.read_ue("conf_win_right_offset").map_err(e)?;
        top = r.read_ue("conf_win_top_offset").map_err(e)?;
        bottom = r.read_ue("conf_win_bottom_offset").map_err(e)?;
    }
    let crop = |coded: u32, sub: u64, a: u32, b: u32| {
        let cut = sub * (u64::from(a) + u64::from(b));
        u64::from(coded)
            .checked_sub(cut)
            .filter(|&size| size > 0)
            .and_then(|size| u32::try_from(size).ok())
    };
    match (
        crop(coded_width, sub_width, left, right),
        crop(coded_height, sub_height, top, bottom),
    ) {
        (Some(width), Some(height)) => Ok(SpsInfo {
            width,
            height,
            codec_string: general.codec_string(),
        }),
        _ => Err(format!(
            "conformance window {left},{right},{top},{bottom} does not fit \
             {coded_width}x{coded_height}"
        )),
    }
}

/// profile_tier_level(1, sps_max_sub_layers_minus1), H.265 7.3.3: the
/// general fields read, the sub-layer ones skipped.
fn read_profile_tier_level(
    r: &mut impl BitRead,
    max_sub_layers_minus1: u8,
) -> Result<GeneralProfile, BitReaderError> {
    let profile_space = r.read::<2, u8>("general_profile_space")?;
    let tier_flag = r.read_bit("general_tier_flag")?;
    let profile_idc = r.read::<5, u8>("general_profile_idc")?;
    let compatibility_flags = r.read::<32, u32>("general_profile_compatibility_flags")?;
    let mut constraint_bytes = [0u8; 6];
    for byte in &mut constraint_bytes {
        *byte = r.read::<8, u8>("general_constraint_indicator_flags")?;
    }
    let level_idc = r.read::<8, u8>("general_level_idc")?;
    let general = GeneralProfile {
        profile_space,
        tier_flag,
        profile_idc,
        compatibility_flags,
        constraint_bytes,
        level_idc,
    };
    let sub_layers = usize::from(max_sub_layers_minus1);
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..sub_layers {
        profile_present[i] = r.read_bit("sub_layer_profile_present_flag")?;
        level_present[i] = r.read_bit("sub_layer_level_present_flag")?;
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.skip(2, "reserved_zero_2bits")?;
        }
    }
    for i in 0..sub_layers {
        if profile_present[i] {
            r.skip(88, "sub_layer_profile")?;
        }
        if level_present[i] {
            r.skip(8, "sub_layer_level_idc")?;
        }
    }
    Ok(general)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let es = [
            0xAA, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let units: Vec<&[u8]> = nal_units(&es).collect();
        assert_eq!(units, vec![&[0x09, 0xF0][..], &[0x67, 0x42], &[0x65, 0x88]]);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn whole_units_drop_the_unit_cut_short() {
        let es = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88];
        let whole: Vec<&[u8]> = nal_units(whole_units(&es)).collect();
        assert_eq!(whole, vec![&[0x67, 0x42][..]]);
        assert!(whole_units(&[0x67, 0x42]).is_empty());
    }

    #[test]
    fn h264_idr_first_and_pictures_counted() {
        // AUD, IDR first slice, IDR second slice, then a P picture.
        let es = [
            0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 0x88, 0, 0, 1, 0x65, 0x40, 0, 0, 1, 0x41, 0x9A,
        ];
        let content = scan_pes(VideoCodec::H264, &es, |_| {});
        assert_eq!(
            content,
            PesContent {
                pictures: 2,
                opens_with_keyframe: true
            }
        );
        let p_first = [0, 0, 1, 0x41, 0x9A, 0, 0, 1, 0x65, 0x88];
        assert!(!scan_pes(VideoCodec::H264, &p_first, |_| {}).opens_with_keyframe);
    }

    #[test]
    fn h265_irap_types() {
        for (kind, key) in [(1u8, false), (9, false), (16, true), (19, true), (21, true)] {
            let es = [0, 0, 1, kind << 1, 0x01, 0x80];
            let content = scan_pes(VideoCodec::H265, &es, |_| {});
            assert_eq!(content.opens_with_keyframe, key, "type {kind}");
            assert_eq!(content.pictures, 1);
        }
        // A unit of layer 1 is not the base picture.
        let es = [0, 0, 1, 19 << 1, 0x09, 0x80];
        assert_eq!(scan_pes(VideoCodec::H265, &es, |_| {}).pictures, 0);
    }

    #[test]
    fn h265_sps_with_conformance_window() {
        // x265's SPS for 640x360 Main: coded as 640x368 with an 8-line
        // conformance window at the bottom.
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x71, 0xf2, 0xe5, 0x95, 0x95, 0x29,
            0x30, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03,
            0x21,
        ];
        assert_eq!(
            read_sps(VideoCodec::H265, &sps),
            Ok(SpsInfo {
                width: 640,
                height: 360,
                // Main, compatible with Main and Main 10, level 2.1;
                // progressive and frame-only.
                codec_string: "hvc1.1.6.L63.90".to_string(),
            })
        );
        for cut in 0..sps.len() {
            let _ = read_sps(VideoCodec::H265, &sps[..cut]);
        }
    }

    #[test]
    fn garbage_sps_is_an_error_not_a_panic() {
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            for len in 0..64 {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
                let _ = read_sps(codec, &bytes);
            }
            assert!(read_sps(codec, &[]).is_err());
        }
    }

    #[test]
    fn h264_sps_gives_size_and_codec_string() {
        // x264's SPS for 640x360 High, level 3.0: coded as 640x368 and
        // cropped by 8 lines.
        let sps = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00,
            0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
        ];
        let info = read_sps(VideoCodec::H264, &sps).unwrap();
        assert_eq!((info.width, info.height), (640, 360));
        assert_eq!(info.codec_string, "avc1.64001E");

        // The same picture from x264's ultrafast preset: Constrained
        // Baseline (constraint_set0 and constraint_set1 set).
        let sps = [
            0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
            0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x58, 0xba, 0x80,
        ];
        let info = read_sps(VideoCodec::H264, &sps).unwrap();
        assert_eq!((info.width, info.height), (640, 360));
        assert_eq!(info.codec_string, "avc1.42C01E");
        for cut in 0..sps.len() {
            let _ = read_sps(VideoCodec::H264, &sps[..cut]);
        }
    }

    #[test]
    fn avc1_strings() {
        assert_eq!(avc1_codec_string(0x64, 0x00, 0x1F), "avc1.64001F");
        assert_eq!(avc1_codec_string(66, 0xC0, 30), "avc1.42C01E");
        assert_eq!(avc1_codec_string(77, 0x40, 41), "avc1.4D4029");
        assert_eq!(avc1_codec_string(0, 0, 0), "avc1.000000");
        assert_eq!(avc1_codec_string(255, 255, 255), "avc1.FFFFFF");
    }

    fn main_profile(level_idc: u8) -> GeneralProfile {
        GeneralProfile {
            profile_space: 0,
            tier_flag: false,
            profile_idc: 1,
            // Flags 1 (Main) and 2 (Main 10).
            compatibility_flags: 0x6000_0000,
            // progressive_source, non_packed... : progressive + frame_only.
            constraint_bytes: [0xB0, 0, 0, 0, 0, 0],
            level_idc,
        }
    }

    #[test]
    fn hvc1_strings() {
        assert_eq!(main_profile(93).codec_string(), "hvc1.1.6.L93.B0");
        assert_eq!(main_profile(90).codec_string(), "hvc1.1.6.L90.B0");

        // Main 10, high tier, level 4 (ISO/IEC 14496-15 E.5 style).
        let main10 = GeneralProfile {
            profile_idc: 2,
            tier_flag: true,
            compatibility_flags: 0x2000_0000,
            level_idc: 120,
            ..main_profile(0)
        };
        assert_eq!(main10.codec_string(), "hvc1.2.4.H120.B0");

        // Profile space letters, compatibility flags without leading zeros,
        // inner zero bytes kept and trailing ones dropped.
        let odd = GeneralProfile {
            profile_space: 1,
            profile_idc: 4,
            compatibility_flags: 0x1000_0001,
            constraint_bytes: [0x90, 0x00, 0x23, 0x05, 0, 0],
            level_idc: 153,
            ..main_profile(0)
        };
        assert_eq!(odd.codec_string(), "hvc1.A4.80000008.L153.90.0.23.5");
        for (space, letter) in [(2, "B"), (3, "C")] {
            let p = GeneralProfile {
                profile_space: space,
                ..main_profile(93)
            };
            assert!(p.codec_string().starts_with(&format!("hvc1.{letter}1.6.")));
        }

        // No constraint flags at all: nothing after the level.
        let bare = GeneralProfile {
            constraint_bytes: [0; 6],
            compatibility_flags: 0,
            ..main_profile(63)
        };
        assert_eq!(bare.codec_string(), "hvc1.1.0.L63");
        let all = GeneralProfile {
            constraint_bytes: [0xFF; 6],
            compatibility_flags: u32::MAX,
            ..main_profile(255)
        };
        assert_eq!(all.codec_string(), "hvc1.1.FFFFFFFF.L255.FF.FF.FF.FF.FF.FF");
    }
}
