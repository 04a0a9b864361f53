//! Annex B elementary streams of H.264 and H.265: what a PES payload holds
//! (pictures, whether it opens with a keyframe, parameter sets) and the
//! displayed picture size from a sequence parameter set.

use std::num::NonZeroUsize;

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{BitRead, BitReader, BitReaderError, ByteReader};
use memchr::memmem;

use super::probe::VideoCodec;

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

/// Width and height a player shows, with the SPS cropping (H.264 frame
/// cropping, H.265 conformance window) applied.
pub(super) fn picture_size(codec: VideoCodec, sps: &[u8]) -> Result<(u32, u32), String> {
    match codec {
        VideoCodec::H264 => h264_picture_size(sps),
        VideoCodec::H265 => h265_picture_size(sps),
    }
}

fn h264_picture_size(nal: &[u8]) -> Result<(u32, u32), String> {
    let sps = SeqParameterSet::from_bits(BitReader::new(ByteReader::skipping_h264_header(nal)))
        .map_err(|e| format!("{e:?}"))?;
    let (width, height) = sps.pixel_dimensions().map_err(|e| format!("{e:?}"))?;
    if width == 0 || height == 0 {
        return Err(format!("picture size {width}x{height}"));
    }
    Ok((width, height))
}

/// Reads the H.265 SPS only as far as the conformance window (ITU-T H.265
/// 7.3.2.2.1); everything after it is irrelevant to the picture size, and
/// not parsing it leaves less to go wrong on damaged input.
fn h265_picture_size(nal: &[u8]) -> Result<(u32, u32), String> {
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
    skip_profile_tier_level(&mut r, max_sub_layers_minus1).map_err(e)?;
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
        (Some(width), Some(height)) => Ok((width, height)),
        _ => Err(format!(
            "conformance window {left},{right},{top},{bottom} does not fit \
             {coded_width}x{coded_height}"
        )),
    }
}

/// profile_tier_level(1, sps_max_sub_layers_minus1), H.265 7.3.3.
fn skip_profile_tier_level(
    r: &mut impl BitRead,
    max_sub_layers_minus1: u8,
) -> Result<(), BitReaderError> {
    // general_profile_space through general_level_idc.
    r.skip(96, "general_profile_tier_level")?;
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
    Ok(())
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
        assert_eq!(picture_size(VideoCodec::H265, &sps), Ok((640, 360)));
        for cut in 0..sps.len() {
            let _ = picture_size(VideoCodec::H265, &sps[..cut]);
        }
    }

    #[test]
    fn garbage_sps_is_an_error_not_a_panic() {
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            for len in 0..64 {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
                let _ = picture_size(codec, &bytes);
            }
            assert!(picture_size(codec, &[]).is_err());
        }
    }
}
