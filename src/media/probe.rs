//! What a recorded MPEG-TS segment holds: its video stream, picture size,
//! time span and where decoding can start.

use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::pes::{PesContents, PesHeader, PesLength, PtsDts};

use super::codec::VideoCodec;
use super::nal;
use super::psi::{self, SectionAssembler};

/// Size of a TS packet; every offset the probe reports is a multiple of it.
pub const PACKET_SIZE: usize = 188;

/// PTS and DTS count a 90 kHz clock in 33 bits.
pub const PTS_HZ: i64 = 90_000;
const PTS_MODULUS: u64 = 1 << 33;
const PTS_MASK: u64 = PTS_MODULUS - 1;

const PAT_PID: u16 = 0x0000;
/// PES_packet_length counts the bytes after itself: after the start code
/// prefix, stream_id and the length field.
const PES_LENGTH_COUNTS_FROM: usize = 6;

/// A point where decoding can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    /// Byte offset of the TS packet that starts the PES holding the keyframe
    /// (H.264 IDR nal type 5, H.265 IRAP nal types 16..=21), found by parsing
    /// the NAL units on the video PID, not by random_access_indicator alone.
    pub offset: u64,
    /// Byte offset of the last PAT packet at or before `offset` such that a
    /// PMT packet follows it before `offset` (the point a decoder can start
    /// from); None when no PAT+PMT precede the keyframe in this segment.
    pub tables_offset: Option<u64>,
    /// End of the TS packet that completes the PMT following the PAT at
    /// `tables_offset`: `tables_offset..tables_end` is the PAT and PMT, the
    /// Media Initialization Section (RFC 8216 section 3) of an I-frame
    /// taken from here. Some exactly when `tables_offset` is.
    pub tables_end: Option<u64>,
    /// Byte offset where the keyframe's PES ends: the TS packet that starts
    /// the next PES on the video PID, or the end of the segment. The range
    /// `offset..end` holds the whole keyframe (with whatever other PIDs are
    /// interleaved), the byte range of an I-frame playlist's entry.
    pub end: u64,
    /// 90 kHz, 33-bit, as in the stream.
    pub pts: u64,
}

/// Everything [`probe`] learns from a whole segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub video_pid: u16,
    pub codec: VideoCodec,
    /// Displayed size, cropping applied.
    pub width: u32,
    pub height: u32,
    /// RFC 6381 codec string for an HLS master playlist's CODECS, from the
    /// first readable sequence parameter set: `avc1.PPCCLL` for H.264,
    /// `hvc1.P.C.TL[.BB]*` for H.265 (ISO/IEC 14496-15 Annex E).
    pub codec_string: String,
    /// Earliest and latest presentation time of the video frames, 90 kHz,
    /// 33-bit as in the stream (so `last_pts` is below `first_pts` when the
    /// clock wrapped inside the segment).
    pub first_pts: u64,
    pub last_pts: u64,
    /// From the first frame's presentation to the end of the last frame:
    /// the PTS span plus one frame duration, the frame duration being the
    /// usual gap between consecutive presentation times.
    pub duration_micros: i64,
    /// Video access units seen.
    pub frames: u32,
    /// In stream order.
    pub keyframes: Vec<Keyframe>,
}

/// What [`probe_head_tail`] learns from the two ends of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub codec: VideoCodec,
    pub width: u32,
    pub height: u32,
    /// As [`Probe::codec_string`].
    pub codec_string: String,
    pub first_pts: u64,
    pub last_pts: u64,
    pub duration_micros: i64,
}

impl From<&Probe> for Summary {
    fn from(probe: &Probe) -> Summary {
        Summary {
            codec: probe.codec,
            width: probe.width,
            height: probe.height,
            codec_string: probe.codec_string.clone(),
            first_pts: probe.first_pts,
            last_pts: probe.last_pts,
            duration_micros: probe.duration_micros,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("empty input")]
    Empty,
    #[error("not MPEG-TS: no sync byte at offset {offset}")]
    NoSync { offset: u64 },
    #[error("truncated: {len} bytes is not a whole number of 188-byte TS packets")]
    Truncated { len: u64 },
    #[error("no PAT")]
    NoPat,
    #[error("the PAT lists no program")]
    NoProgram,
    #[error("no PMT for program {program}")]
    NoPmt { program: u16 },
    #[error("no video stream (H.264/H.265) in the PMT of program {program}")]
    NoVideo { program: u16 },
    #[error("no PTS on the video PID {pid:#06x}")]
    NoPts { pid: u16 },
    #[error("no sequence parameter set on the video PID {pid:#06x}")]
    NoSps { pid: u16 },
    #[error("unreadable {codec} sequence parameter set: {reason}")]
    BadSps { codec: VideoCodec, reason: String },
    #[error(
        "head ({head} bytes) or tail ({tail} bytes) is longer than the object ({total_len} bytes)"
    )]
    RangeMismatch {
        head: u64,
        tail: u64,
        total_len: u64,
    },
    #[error("no PTS on the video PID in the last {len} bytes; read a longer tail")]
    NoPtsInTail { len: u64 },
}

/// Signed difference `b - a` of two 33-bit timestamps, taking the shorter
/// way round the clock: a result in [-2^32, 2^32), so a wrap from near 2^33
/// back to 0 reads as the small step forward it is.
pub fn pts_delta(a: u64, b: u64) -> i64 {
    // 2^33 divides 2^64, so the wrapping difference is right modulo 2^33.
    let forward = b.wrapping_sub(a) & PTS_MASK;
    if forward >= PTS_MODULUS / 2 {
        forward as i64 - PTS_MODULUS as i64
    } else {
        forward as i64
    }
}

/// 90 kHz ticks to microseconds, rounded to the nearest.
pub fn ticks_to_micros(ticks: i64) -> i64 {
    let hz = i128::from(PTS_HZ);
    let micros = (i128::from(ticks) * 2_000_000 + hz).div_euclid(2 * hz);
    micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Probes a whole segment.
pub fn probe(bytes: &[u8]) -> Result<Probe, ProbeError> {
    if bytes.is_empty() {
        return Err(ProbeError::Empty);
    }
    if !bytes.len().is_multiple_of(PACKET_SIZE) {
        return Err(ProbeError::Truncated {
            len: bytes.len() as u64,
        });
    }
    let packets = Packets::new(bytes, 0)?;
    let program = find_program(&packets)?;
    let mut scan = Scan::new(program, Part::Whole);
    scan.run(&packets);
    let pts = &scan.pts;
    let (first, last) = pts.range().ok_or(ProbeError::NoPts {
        pid: program.video_pid,
    })?;
    let sps = scan.sps()?;
    let span = last.saturating_sub(first);
    Ok(Probe {
        video_pid: program.video_pid,
        codec: program.codec,
        width: sps.width,
        height: sps.height,
        codec_string: sps.codec_string,
        first_pts: wrap(first),
        last_pts: wrap(last),
        duration_micros: ticks_to_micros(span.saturating_add(frame_ticks(&[pts]))),
        frames: scan.frames,
        keyframes: scan.keyframes,
    })
}

/// Duration, size and codec from the first and last bytes of a segment
/// only (ranged reads from object storage): `head` is a prefix of the file
/// (e.g. 256 KiB), `tail` a suffix (e.g. 256 KiB), `total_len` the object
/// size; they may overlap or be the same bytes for a small file. The last PTS
/// comes from the tail, which must be aligned to 188-byte packets counted from
/// the file start (the caller passes total_len so you can compute where the
/// tail starts).
pub fn probe_head_tail(head: &[u8], tail: &[u8], total_len: u64) -> Result<Summary, ProbeError> {
    if total_len == 0 || head.is_empty() {
        return Err(ProbeError::Empty);
    }
    let (head_len, tail_len) = (head.len() as u64, tail.len() as u64);
    if head_len > total_len || tail_len > total_len {
        return Err(ProbeError::RangeMismatch {
            head: head_len,
            tail: tail_len,
            total_len,
        });
    }
    if !total_len.is_multiple_of(PACKET_SIZE as u64) {
        return Err(ProbeError::Truncated { len: total_len });
    }
    if head_len == total_len {
        return probe(head).map(|p| Summary::from(&p));
    }

    // A prefix of arbitrary length ends inside a packet; that part is unread.
    let whole = head.len() - head.len() % PACKET_SIZE;
    let head_packets = Packets::new(&head[..whole], 0)?;
    let program = find_program(&head_packets)?;
    let mut head_scan = Scan::new(program, Part::Head);
    head_scan.run(&head_packets);
    let (first, _) = head_scan.pts.range().ok_or(ProbeError::NoPts {
        pid: program.video_pid,
    })?;
    let sps = head_scan.sps()?;

    let tail_start = total_len - tail_len;
    let skip = (PACKET_SIZE as u64 - tail_start % PACKET_SIZE as u64) % PACKET_SIZE as u64;
    let tail_packets = match tail.get(skip as usize..) {
        Some(aligned) => Packets::new(aligned, tail_start + skip)?,
        None => Packets::new(&[], total_len)?,
    };
    let mut tail_scan = Scan::new(program, Part::Tail);
    tail_scan.run(&tail_packets);
    let (_, last) = tail_scan
        .pts
        .range()
        .ok_or(ProbeError::NoPtsInTail { len: tail_len })?;

    let (first_pts, last_pts) = (wrap(first), wrap(last));
    let span = pts_delta(first_pts, last_pts).max(0);
    let frame = frame_ticks(&[&head_scan.pts, &tail_scan.pts]);
    Ok(Summary {
        codec: program.codec,
        width: sps.width,
        height: sps.height,
        codec_string: sps.codec_string,
        first_pts,
        last_pts,
        duration_micros: ticks_to_micros(span + frame),
    })
}

fn wrap(unwrapped: i64) -> u64 {
    unwrapped.rem_euclid(PTS_MODULUS as i64) as u64
}

/// Whole TS packets, each checked to start with the sync byte.
struct Packets<'a> {
    bytes: &'a [u8],
    /// File offset of `bytes[0]`.
    base: u64,
}

impl<'a> Packets<'a> {
    fn new(bytes: &'a [u8], base: u64) -> Result<Packets<'a>, ProbeError> {
        for (i, packet) in bytes.chunks_exact(PACKET_SIZE).enumerate() {
            if !Packet::is_sync_byte(packet[0]) {
                return Err(ProbeError::NoSync {
                    offset: base + (i * PACKET_SIZE) as u64,
                });
            }
        }
        Ok(Packets { bytes, base })
    }

    /// File offset just past the last whole packet.
    fn end(&self) -> u64 {
        let whole = self.bytes.len() - self.bytes.len() % PACKET_SIZE;
        self.base + whole as u64
    }

    fn iter(&self) -> impl Iterator<Item = (u64, Packet<'a>)> + 'a {
        let base = self.base;
        self.bytes
            .chunks_exact(PACKET_SIZE)
            .enumerate()
            // Length and sync byte were checked in `new`, which is all
            // `Packet::new` asserts.
            .map(move |(i, bytes)| (base + (i * PACKET_SIZE) as u64, Packet::new(bytes)))
    }
}

/// The payload of a packet worth reading, with its PID and whether a new
/// PES or section starts in it.
fn usable_payload<'a>(packet: &Packet<'a>) -> Option<(u16, bool, &'a [u8])> {
    // A packet the link layer marked damaged, or one we cannot descramble,
    // carries nothing trustworthy.
    if packet.transport_error_indicator() || packet.transport_scrambling_control().is_scrambled() {
        return None;
    }
    let payload = packet.payload()?;
    Some((
        u16::from(packet.pid()),
        packet.payload_unit_start_indicator(),
        payload,
    ))
}

#[derive(Debug, Clone, Copy)]
struct Program {
    number: u16,
    pmt_pid: u16,
    video_pid: u16,
    codec: VideoCodec,
}

/// The program to probe: the first PAT's programs, then the first PMT of
/// one of them that lists H.264 or H.265 video. The whole input is searched
/// for it, so frames before the first PMT still count.
fn find_program(packets: &Packets<'_>) -> Result<Program, ProbeError> {
    let mut pat = SectionAssembler::default();
    let mut programs = None;
    for (offset, packet) in packets.iter() {
        let Some((PAT_PID, start, payload)) = usable_payload(&packet) else {
            continue;
        };
        pat.push(offset, start, payload, &mut |_, section| {
            if programs.is_none() {
                programs = psi::pat_programs(section);
            }
        });
        if programs.is_some() {
            break;
        }
    }
    let programs = programs.ok_or(ProbeError::NoPat)?;
    let Some(&(first_program, _)) = programs.first() else {
        return Err(ProbeError::NoProgram);
    };

    let mut assemblers: Vec<(u16, SectionAssembler)> = Vec::new();
    for &(_, pid) in &programs {
        if !assemblers.iter().any(|(p, _)| *p == pid) {
            assemblers.push((pid, SectionAssembler::default()));
        }
    }
    let mut found = None;
    let mut without_video = None;
    for (offset, packet) in packets.iter() {
        let Some((pid, start, payload)) = usable_payload(&packet) else {
            continue;
        };
        let Some((_, assembler)) = assemblers.iter_mut().find(|(p, _)| *p == pid) else {
            continue;
        };
        assembler.push(offset, start, payload, &mut |_, section| {
            let Some(pmt) = psi::pmt(section) else {
                return;
            };
            // A PMT on this PID for a program the PAT did not put here
            // belongs to some other multiplex.
            if found.is_some() || !programs.contains(&(pmt.program, pid)) {
                return;
            }
            match pmt.video {
                Some((video_pid, codec)) => {
                    found = Some(Program {
                        number: pmt.program,
                        pmt_pid: pid,
                        video_pid,
                        codec,
                    })
                }
                None => without_video = without_video.or(Some(pmt.program)),
            }
        });
        if let Some(program) = found {
            return Ok(program);
        }
    }
    Err(match without_video {
        Some(program) => ProbeError::NoVideo { program },
        None => ProbeError::NoPmt {
            program: first_program,
        },
    })
}

/// Which part of a segment a scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    /// A prefix: the PES still open at its end is cut short.
    Head,
    /// A suffix: only presentation times are wanted from it, and its first
    /// PES began before it.
    Tail,
}

/// Presentation times in stream order, unwrapped: each is placed relative to
/// the one before it by the shorter way round the 33-bit clock, so a
/// segment crossing the wrap stays monotonic apart from B-frame reordering.
#[derive(Default)]
struct PtsTrack {
    previous: Option<(u64, i64)>,
    values: Vec<i64>,
    min: i64,
    max: i64,
}

impl PtsTrack {
    fn push(&mut self, raw: u64) {
        let raw = raw & PTS_MASK;
        let value = match self.previous {
            None => raw as i64,
            Some((prev_raw, prev)) => prev.saturating_add(pts_delta(prev_raw, raw)),
        };
        if self.values.is_empty() {
            (self.min, self.max) = (value, value);
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.previous = Some((raw, value));
        self.values.push(value);
    }

    fn range(&self) -> Option<(i64, i64)> {
        (!self.values.is_empty()).then_some((self.min, self.max))
    }

    fn gaps(&self) -> impl Iterator<Item = i64> {
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let gaps: Vec<i64> = sorted
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .filter(|&gap| gap > 0)
            .collect();
        gaps.into_iter()
    }
}

/// One frame's duration: the median gap between presentation times in
/// presentation order (robust to a dropped frame or a stray timestamp);
/// zero when fewer than two frames give no gap.
fn frame_ticks(tracks: &[&PtsTrack]) -> i64 {
    let mut gaps: Vec<i64> = tracks.iter().flat_map(|t| t.gaps()).collect();
    if gaps.is_empty() {
        return 0;
    }
    let middle = gaps.len() / 2;
    *gaps.select_nth_unstable(middle).1
}

/// The PES being collected on the video PID.
struct OpenPes {
    offset: u64,
    /// The decoder start point in force when this PES began.
    tables: Option<Tables>,
}

/// Where the latest PAT that a PMT followed starts, and where that PMT
/// ends.
#[derive(Debug, Clone, Copy)]
struct Tables {
    offset: u64,
    end: u64,
}

/// One pass over packets of the chosen program.
struct Scan {
    program: Program,
    part: Part,
    pat: SectionAssembler,
    pmt: SectionAssembler,
    /// The latest PAT so far, and the latest PAT a PMT has followed.
    last_pat: Option<u64>,
    tables: Option<Tables>,
    pes: Option<OpenPes>,
    /// Bytes of the open PES, header included: a header may straddle
    /// packets, so it is only parsed once the PES is complete.
    buf: Vec<u8>,
    pts: PtsTrack,
    frames: u32,
    keyframes: Vec<Keyframe>,
    sps: Option<nal::SpsInfo>,
    sps_error: Option<String>,
}

impl Scan {
    fn new(program: Program, part: Part) -> Scan {
        Scan {
            program,
            part,
            pat: SectionAssembler::default(),
            pmt: SectionAssembler::default(),
            last_pat: None,
            tables: None,
            pes: None,
            buf: Vec::new(),
            pts: PtsTrack::default(),
            frames: 0,
            keyframes: Vec::new(),
            sps: None,
            sps_error: None,
        }
    }

    fn run(&mut self, packets: &Packets<'_>) {
        for (offset, packet) in packets.iter() {
            if let Some((pid, start, payload)) = usable_payload(&packet) {
                self.packet(offset, pid, start, payload);
            }
        }
        let complete = self.part != Part::Head;
        self.finish_pes(complete, packets.end());
    }

    fn packet(&mut self, offset: u64, pid: u16, start: bool, payload: &[u8]) {
        if self.part != Part::Tail {
            if pid == PAT_PID {
                let last_pat = &mut self.last_pat;
                self.pat.push(offset, start, payload, &mut |at, section| {
                    if psi::pat_programs(section).is_some() {
                        *last_pat = Some(at);
                    }
                });
            }
            if pid == self.program.pmt_pid {
                let (last_pat, tables) = (self.last_pat, &mut self.tables);
                let program = self.program.number;
                self.pmt.push(offset, start, payload, &mut |_, section| {
                    let ours = psi::pmt(section).is_some_and(|pmt| pmt.program == program);
                    if let (true, Some(pat)) = (ours, last_pat) {
                        // The section is complete in the packet at hand.
                        *tables = Some(Tables {
                            offset: pat,
                            end: offset + PACKET_SIZE as u64,
                        });
                    }
                });
            }
        }
        if pid == self.program.video_pid {
            if start {
                self.finish_pes(true, offset);
                self.buf.clear();
                self.pes = Some(OpenPes {
                    offset,
                    tables: self.tables,
                });
            }
            if self.pes.is_some() {
                self.buf.extend_from_slice(payload);
            }
        }
    }

    /// Ends the open PES, `end` being where the next one starts (or the
    /// input ends).
    fn finish_pes(&mut self, complete: bool, end: u64) {
        let Some(pes) = self.pes.take() else {
            return;
        };
        let Some(header) = PesHeader::from_bytes(&self.buf) else {
            return;
        };
        let PesContents::Parsed(Some(parsed)) = header.contents() else {
            return;
        };
        let pts = match parsed.pts_dts() {
            Ok(PtsDts::PtsOnly(Ok(pts))) | Ok(PtsDts::Both { pts: Ok(pts), .. }) => {
                Some(pts.value())
            }
            _ => None,
        };
        if let Some(pts) = pts {
            self.pts.push(pts);
        }
        if self.part == Part::Tail {
            return;
        }

        let mut es = parsed.payload();
        if let PesLength::Bounded(len) = header.pes_packet_length() {
            let header_len = self.buf.len() - es.len();
            let es_len =
                (PES_LENGTH_COUNTS_FROM + usize::from(len.get())).saturating_sub(header_len);
            es = &es[..es_len.min(es.len())];
        }
        if !complete {
            // The last unit may be cut short; the ones before it are whole,
            // and a keyframe PES larger than the head still yields its SPS.
            es = nal::whole_units(es);
        }
        let codec = self.program.codec;
        let (found, sps_error) = (&mut self.sps, &mut self.sps_error);
        let content = nal::scan_pes(codec, es, |sps| {
            if found.is_none() {
                match nal::read_sps(codec, sps) {
                    Ok(info) => *found = Some(info),
                    Err(reason) => *sps_error = Some(reason),
                }
            }
        });
        // A PTS is only coded in a PES where an access unit begins, so a PES
        // with one holds at least one frame even if its slices are damaged.
        let frames = content.pictures.max(u32::from(pts.is_some()));
        self.frames = self.frames.saturating_add(frames);
        if let (true, Some(pts)) = (content.opens_with_keyframe, pts) {
            self.keyframes.push(Keyframe {
                offset: pes.offset,
                tables_offset: pes.tables.map(|t| t.offset),
                tables_end: pes.tables.map(|t| t.end),
                end,
                pts,
            });
        }
    }

    /// What the first readable sequence parameter set says.
    fn sps(&self) -> Result<nal::SpsInfo, ProbeError> {
        match (&self.sps, &self.sps_error) {
            (Some(sps), _) => Ok(sps.clone()),
            (None, Some(reason)) => Err(ProbeError::BadSps {
                codec: self.program.codec,
                reason: reason.clone(),
            }),
            (None, None) => Err(ProbeError::NoSps {
                pid: self.program.video_pid,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRAP: u64 = 1 << 33;

    #[test]
    fn pts_delta_plain_and_across_the_wrap() {
        assert_eq!(pts_delta(0, 3600), 3600);
        assert_eq!(pts_delta(3600, 0), -3600);
        assert_eq!(pts_delta(WRAP - 1800, 1800), 3600);
        assert_eq!(pts_delta(1800, WRAP - 1800), -3600);
        assert_eq!(pts_delta(WRAP - 1, 0), 1);
        assert_eq!(pts_delta(5, 5), 0);
        // Half way round is taken as backwards: the range is [-2^32, 2^32).
        assert_eq!(pts_delta(0, 1 << 32), -(1 << 32));
        assert_eq!(pts_delta(0, (1 << 32) - 1), (1 << 32) - 1);
        // Bits above the 33rd are not part of a timestamp.
        assert_eq!(pts_delta(WRAP + 10, 20), 10);
        assert_eq!(pts_delta(u64::MAX, 0), 1);
    }

    #[test]
    fn unwrapping_keeps_order_across_the_wrap() {
        let mut track = PtsTrack::default();
        for raw in [WRAP - 7200, WRAP - 3600, 0, 3600, 1800] {
            track.push(raw);
        }
        let (first, last) = track.range().unwrap();
        assert_eq!(wrap(first), WRAP - 7200);
        assert_eq!(wrap(last), 3600);
        assert_eq!(last - first, 10_800);
        assert_eq!(frame_ticks(&[&track]), 3600);
    }

    #[test]
    fn frame_duration_is_the_median_gap() {
        let mut track = PtsTrack::default();
        for raw in [0, 3600, 7200, 18_000, 21_600, 25_200] {
            track.push(raw);
        }
        assert_eq!(frame_ticks(&[&track]), 3600);
        assert_eq!(frame_ticks(&[&PtsTrack::default()]), 0);
    }

    #[test]
    fn micros_from_ticks() {
        assert_eq!(ticks_to_micros(540_000), 6_000_000);
        assert_eq!(ticks_to_micros(1), 11);
        assert_eq!(ticks_to_micros(-3600), -40_000);
        assert_eq!(ticks_to_micros(i64::MAX), i64::MAX);
    }

    #[test]
    fn rejects_what_is_not_ts() {
        assert_eq!(probe(&[]), Err(ProbeError::Empty));
        assert_eq!(probe(&[0x47; 100]), Err(ProbeError::Truncated { len: 100 }));
        let mut two = vec![0x47; 2 * PACKET_SIZE];
        two[PACKET_SIZE] = 0;
        assert_eq!(
            probe(&two),
            Err(ProbeError::NoSync {
                offset: PACKET_SIZE as u64
            })
        );
        let nulls: Vec<u8> = (0..3)
            .flat_map(|_| {
                let mut p = vec![0x47, 0x1F, 0xFF, 0x10];
                p.resize(PACKET_SIZE, 0xFF);
                p
            })
            .collect();
        assert_eq!(probe(&nulls), Err(ProbeError::NoPat));
        assert_eq!(
            probe_head_tail(&nulls, &nulls, 2),
            Err(ProbeError::RangeMismatch {
                head: 564,
                tail: 564,
                total_len: 2
            })
        );
    }
}
