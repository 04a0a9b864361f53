//! Compact binary encoding of a block: the segments of one stream that end
//! in the same minute, sorted by end. Neighbouring segments share endpoint,
//! bucket and most of their object key, so each field is stored as a delta
//! against the previous segment: a six-second segment costs ~20 bytes.

use crate::manifest::{Format, Micros, Segment, SegmentMedia};
use crate::media::VideoCodec;

/// Version 2 adds the probed media facts; version 1 blocks still decode.
const BLOCK_VERSION: u8 = 2;
const FIRST_VERSION: u8 = 1;

fn codec_code(codec: VideoCodec) -> u8 {
    match codec {
        VideoCodec::H264 => 1,
        VideoCodec::H265 => 2,
    }
}

fn codec_of(code: u8) -> Option<VideoCodec> {
    match code {
        1 => Some(VideoCodec::H264),
        2 => Some(VideoCodec::H265),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("corrupt segment block: {0}")]
pub struct CodecError(&'static str);

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Writes a string, or a single 0 when it repeats the previous one.
fn put_repeated_str(out: &mut Vec<u8>, value: &str, previous: Option<&str>) {
    if previous == Some(value) {
        put_varint(out, 0);
    } else {
        put_varint(out, value.len() as u64 + 1);
        out.extend_from_slice(value.as_bytes());
    }
}

fn shared_prefix(a: &str, b: &str) -> usize {
    let mut len = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    // Split on a character boundary so the stored suffix is valid UTF-8.
    while !b.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// Encodes segments already sorted by (end, bucket, object).
pub fn encode_block(base: Micros, segments: &[Segment]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + segments.len() * 24);
    // Blocks without probed media stay in version 1, which older binaries
    // read too.
    let with_media = segments.iter().any(|segment| segment.media.is_some());
    out.push(if with_media {
        BLOCK_VERSION
    } else {
        FIRST_VERSION
    });
    put_varint(&mut out, segments.len() as u64);
    let mut previous: Option<&Segment> = None;
    for segment in segments {
        let previous_start = previous.map_or(base, |p| p.start);
        put_varint(&mut out, zigzag(segment.start.wrapping_sub(previous_start)));
        put_varint(&mut out, segment.duration as u64);
        put_varint(
            &mut out,
            zigzag(
                segment
                    .sequence
                    .wrapping_sub(previous.map_or(0, |p| p.sequence)),
            ),
        );
        put_varint(&mut out, u64::from(segment.width));
        put_varint(&mut out, u64::from(segment.height));
        out.push(segment.format.to_u8());
        put_varint(&mut out, segment.size);
        // 0: not probed; else the codec, then the first PTS.
        if with_media {
            match segment.media {
                None => out.push(0),
                Some(media) => {
                    out.push(codec_code(media.codec));
                    put_varint(&mut out, media.first_pts);
                }
            }
        }
        put_repeated_str(
            &mut out,
            &segment.endpoint,
            previous.map(|p| p.endpoint.as_str()),
        );
        put_repeated_str(
            &mut out,
            &segment.bucket,
            previous.map(|p| p.bucket.as_str()),
        );
        let shared = previous.map_or(0, |p| shared_prefix(&p.object, &segment.object));
        put_varint(&mut out, shared as u64);
        let suffix = &segment.object.as_bytes()[shared..];
        put_varint(&mut out, suffix.len() as u64);
        out.extend_from_slice(suffix);
        previous = Some(segment);
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CodecError> {
        let (&first, rest) = self.bytes.split_first().ok_or(CodecError("truncated"))?;
        self.bytes = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError("varint too long"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], CodecError> {
        let len = usize::try_from(len).map_err(|_| CodecError("length overflow"))?;
        if len > self.bytes.len() {
            return Err(CodecError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn string(&mut self, len: u64) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.take(len)?).map_err(|_| CodecError("invalid UTF-8"))
    }

    fn repeated_str(&mut self, previous: Option<&str>) -> Result<String, CodecError> {
        match self.varint()? {
            0 => previous
                .map(str::to_string)
                .ok_or(CodecError("repeat without a previous value")),
            len => Ok(self.string(len - 1)?.to_string()),
        }
    }
}

/// A block's header: its version and how many segments follow.
fn read_header(reader: &mut Reader<'_>) -> Result<(u8, u64), CodecError> {
    let version = reader.byte()?;
    if version != BLOCK_VERSION && version != FIRST_VERSION {
        return Err(CodecError("unknown version"));
    }
    Ok((version, reader.varint()?))
}

/// How many segments a block holds, read from its header alone.
pub fn block_len(bytes: &[u8]) -> Result<u64, CodecError> {
    read_header(&mut Reader { bytes }).map(|(_, count)| count)
}

/// Decodes a block, calling `visit` for each segment in stored order.
pub fn decode_block(
    base: Micros,
    bytes: &[u8],
    mut visit: impl FnMut(Segment),
) -> Result<(), CodecError> {
    let mut reader = Reader { bytes };
    let (version, count) = read_header(&mut reader)?;
    let mut previous: Option<Segment> = None;
    for _ in 0..count {
        let start = previous
            .as_ref()
            .map_or(base, |p| p.start)
            .wrapping_add(unzigzag(reader.varint()?));
        let duration =
            i64::try_from(reader.varint()?).map_err(|_| CodecError("duration overflow"))?;
        let sequence = previous
            .as_ref()
            .map_or(0, |p| p.sequence)
            .wrapping_add(unzigzag(reader.varint()?));
        let width = u32::try_from(reader.varint()?).map_err(|_| CodecError("width overflow"))?;
        let height = u32::try_from(reader.varint()?).map_err(|_| CodecError("height overflow"))?;
        let format = Format::from_u8(reader.byte()?).ok_or(CodecError("unknown format"))?;
        let size = reader.varint()?;
        let media = match version {
            FIRST_VERSION => None,
            _ => match reader.byte()? {
                0 => None,
                code => {
                    let codec = codec_of(code).ok_or(CodecError("unknown codec"))?;
                    Some(SegmentMedia {
                        codec,
                        first_pts: reader.varint()?,
                    })
                }
            },
        };
        let endpoint = reader.repeated_str(previous.as_ref().map(|p| p.endpoint.as_str()))?;
        let bucket = reader.repeated_str(previous.as_ref().map(|p| p.bucket.as_str()))?;
        let shared =
            usize::try_from(reader.varint()?).map_err(|_| CodecError("prefix overflow"))?;
        let suffix_len = reader.varint()?;
        let suffix = reader.string(suffix_len)?;
        let prefix = match &previous {
            Some(p) => p
                .object
                .get(..shared)
                .ok_or(CodecError("prefix longer than previous key"))?,
            None if shared == 0 => "",
            None => return Err(CodecError("prefix without a previous key")),
        };
        let object = format!("{prefix}{suffix}");
        let segment = Segment {
            media,
            endpoint,
            bucket,
            object,
            start,
            duration,
            sequence,
            width,
            height,
            format,
            size,
        };
        if let Some(done) = previous.replace(segment.clone()) {
            visit(done);
        }
    }
    if let Some(last) = previous {
        visit(last);
    }
    if !reader.bytes.is_empty() {
        return Err(CodecError("trailing bytes"));
    }
    Ok(())
}

/// FNV-1a, 64 bits: a hash whose values are stable across builds, since
/// they are stored on disk (std's hashers may change between releases).
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hash = (hash ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        for &byte in *part {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(index: i64, object: &str) -> Segment {
        Segment {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: if index == 3 {
                "other".into()
            } else {
                "live".into()
            },
            object: object.into(),
            start: 1_700_000_000_000_000 + index * 6_000_000,
            duration: 6_000_000 + index,
            sequence: 100 + index,
            width: 1280,
            height: if index == 2 { 0 } else { 720 },
            format: if index == 4 { Format::Flv } else { Format::Ts },
            size: 1_000_000 + index as u64,
            media: None,
        }
    }

    #[test]
    fn roundtrip_keeps_every_field() {
        let mut segments: Vec<Segment> = (0..6)
            .map(|i| segment(i, &format!("live/app/stream/17000000{i:02}.ts")))
            .chain([
                segment(6, "é/ü.ts"),
                segment(7, "é/ü2.ts"),
                segment(8, "a.ts"),
            ])
            .collect();
        segments[1].media = Some(SegmentMedia {
            codec: VideoCodec::H264,
            first_pts: (1 << 33) - 1,
        });
        segments[2].media = Some(SegmentMedia {
            codec: VideoCodec::H265,
            first_pts: 0,
        });
        let base = 1_700_000_000_000_000 - 60_000_000;
        let bytes = encode_block(base, &segments);
        let mut decoded = Vec::new();
        decode_block(base, &bytes, |s| decoded.push(s)).unwrap();
        assert_eq!(decoded, segments);
        assert!(bytes.len() < segments.len() * 40, "{} bytes", bytes.len());
    }

    #[test]
    fn version_1_blocks_still_decode() {
        // One segment as version 1 wrote it: no media byte.
        let mut v1 = vec![1u8, 1];
        for field in [0u8, 0x80, 0xb5, 0x18, 0, 0, 0, 0, 0] {
            v1.push(field);
        }
        v1.extend_from_slice(&[2, b'e', 2, b'b', 0, 4, b'a', b'.', b't', b's']);
        let mut decoded = Vec::new();
        decode_block(0, &v1, |s| decoded.push(s)).unwrap();
        assert_eq!(decoded.len(), 1);
        assert_eq!(
            (
                decoded[0].object.as_str(),
                decoded[0].duration,
                decoded[0].media
            ),
            ("a.ts", 400_000, None)
        );
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let bytes = encode_block(0, &[segment(1, "a/b.ts"), segment(2, "a/c.ts")]);
        for cut in 0..bytes.len() {
            assert!(decode_block(0, &bytes[..cut], |_| {}).is_err());
        }
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0xff;
            let _ = decode_block(0, &flipped, |_| {});
        }
        assert!(decode_block(0, &[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1], |_| {}).is_err());
    }

    #[test]
    fn zigzag_and_hash_are_stable() {
        for value in [0, 1, -1, i64::MAX, i64::MIN, 123_456_789] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
        assert_eq!(fnv1a64(&[b""]), 0xcbf2_9ce4_8422_2325);
    }
}
