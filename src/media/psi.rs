//! PAT and PMT sections: reassembly from TS packet payloads, CRC check, and
//! the few facts the probe needs from them.

use mpeg2ts_reader::StreamType;
use mpeg2ts_reader::mpegts_crc;
use mpeg2ts_reader::psi::pat::{PatSection, ProgramDescriptor};
use mpeg2ts_reader::psi::pmt::PmtSection;

use super::codec::VideoCodec;

const PAT_TABLE_ID: u8 = 0x00;
const PMT_TABLE_ID: u8 = 0x02;

/// table_id, section_syntax_indicator and section_length.
const COMMON_HEADER: usize = 3;
/// table_id_extension, version, current_next_indicator, section numbers.
const SYNTAX_HEADER: usize = 5;
const CRC_LEN: usize = 4;
/// ISO/IEC 13818-1 caps PAT and PMT section_length at 1021; anything longer
/// is damage, and refusing it keeps the buffer small.
const MAX_SECTION_LENGTH: usize = 1021;

/// Collects one PID's sections across packets. Each finished section is
/// handed over with the offset of the packet it started in, which is where a
/// decoder would have to begin reading to see it.
#[derive(Default)]
pub(super) struct SectionAssembler {
    buf: Vec<u8>,
    start: u64,
    active: bool,
}

impl SectionAssembler {
    pub(super) fn push(
        &mut self,
        offset: u64,
        unit_start: bool,
        payload: &[u8],
        emit: &mut impl FnMut(u64, &[u8]),
    ) {
        if !unit_start {
            if self.active {
                self.buf.extend_from_slice(payload);
                self.emit_if_complete(emit);
            }
            return;
        }
        let Some((&pointer, rest)) = payload.split_first() else {
            self.active = false;
            return;
        };
        let pointer = usize::from(pointer);
        if pointer > rest.len() {
            self.active = false;
            return;
        }
        let (tail_of_previous, mut rest) = rest.split_at(pointer);
        if self.active {
            self.buf.extend_from_slice(tail_of_previous);
            self.emit_if_complete(emit);
            // The pointer says where the previous section ends, so whatever
            // is still missing from it never comes.
            self.active = false;
        }
        // Several sections may follow one another in the packet; 0xFF
        // where a table_id would be is stuffing up to the packet's end.
        while let Some(&table_id) = rest.first() {
            if table_id == 0xFF {
                break;
            }
            self.buf.clear();
            self.buf.extend_from_slice(rest);
            self.start = offset;
            self.active = true;
            match self.complete_len() {
                Some(len) if len <= rest.len() => {
                    self.buf.truncate(len);
                    self.emit_if_complete(emit);
                    rest = &rest[len..];
                }
                _ => break,
            }
        }
    }

    /// Total length of the section being collected, once its header is in.
    fn complete_len(&self) -> Option<usize> {
        let header = self.buf.get(..COMMON_HEADER)?;
        let section_length = usize::from(header[1] & 0x0F) << 8 | usize::from(header[2]);
        Some(COMMON_HEADER + section_length)
    }

    fn emit_if_complete(&mut self, emit: &mut impl FnMut(u64, &[u8])) {
        let Some(len) = self.complete_len() else {
            return;
        };
        if len > COMMON_HEADER + MAX_SECTION_LENGTH {
            self.active = false;
            return;
        }
        if self.buf.len() >= len {
            self.active = false;
            emit(self.start, &self.buf[..len]);
        }
    }
}

/// A section that uses the long syntax, is current, and passes its CRC:
/// (table_id, table_id_extension, body between the headers and the CRC).
fn checked_section(section: &[u8]) -> Option<(u8, u16, &[u8])> {
    if section.len() < COMMON_HEADER + SYNTAX_HEADER + CRC_LEN {
        return None;
    }
    let section_syntax = section[1] & 0x80 != 0;
    let current = section[5] & 0x01 != 0;
    // Running the CRC over the section and its own CRC leaves zero.
    if !section_syntax || !current || mpegts_crc::sum32(section) != 0 {
        return None;
    }
    let id = u16::from(section[3]) << 8 | u16::from(section[4]);
    let body = &section[COMMON_HEADER + SYNTAX_HEADER..section.len() - CRC_LEN];
    Some((section[0], id, body))
}

/// The (program_number, PMT PID) pairs of a valid PAT section; None when
/// the section is not one.
pub(super) fn pat_programs(section: &[u8]) -> Option<Vec<(u16, u16)>> {
    let (table_id, _transport_stream_id, body) = checked_section(section)?;
    if table_id != PAT_TABLE_ID {
        return None;
    }
    let programs = PatSection::new(body)
        .programs()
        .filter_map(|entry| match entry {
            ProgramDescriptor::Program {
                program_number,
                pid,
            } => Some((program_number, u16::from(pid))),
            // The NIT entry names no program.
            ProgramDescriptor::Network { .. } => None,
        })
        .collect();
    Some(programs)
}

/// A valid PMT section of some program.
pub(super) struct Pmt {
    pub(super) program: u16,
    /// The first H.264 or H.265 elementary stream, if any.
    pub(super) video: Option<(u16, VideoCodec)>,
}

pub(super) fn pmt(section: &[u8]) -> Option<Pmt> {
    let (table_id, program, body) = checked_section(section)?;
    if table_id != PMT_TABLE_ID {
        return None;
    }
    let section = PmtSection::from_bytes(body).ok()?;
    let video = section.streams().find_map(|stream| {
        let codec = match stream.stream_type() {
            StreamType::H264 => VideoCodec::H264,
            StreamType::H265 => VideoCodec::H265,
            _ => return None,
        };
        Some((u16::from(stream.elementary_pid()), codec))
    });
    Some(Pmt { program, video })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAT section for one program, CRC included.
    fn pat_section(program: u16, pmt_pid: u16) -> Vec<u8> {
        let mut s = vec![0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0x00, 0x00];
        s.extend_from_slice(&program.to_be_bytes());
        s.extend_from_slice(&(0xE000 | pmt_pid).to_be_bytes());
        let crc = mpegts_crc::sum32(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    fn collect(assembler: &mut SectionAssembler, packets: &[(u64, bool, &[u8])]) -> Vec<u64> {
        let mut seen = Vec::new();
        for &(offset, start, payload) in packets {
            assembler.push(offset, start, payload, &mut |at, section| {
                assert!(pat_programs(section).is_some());
                seen.push(at);
            });
        }
        seen
    }

    #[test]
    fn parses_a_pat_in_one_packet() {
        let section = pat_section(1, 0x1000);
        assert_eq!(pat_programs(&section), Some(vec![(1, 0x1000)]));
        let mut payload = vec![0];
        payload.extend_from_slice(&section);
        payload.resize(184, 0xFF);
        let mut a = SectionAssembler::default();
        assert_eq!(collect(&mut a, &[(188, true, &payload)]), vec![188]);
    }

    #[test]
    fn reassembles_a_section_split_over_packets() {
        let section = pat_section(7, 0x42);
        let mut first = vec![0];
        first.extend_from_slice(&section[..5]);
        let second = section[5..].to_vec();
        let mut a = SectionAssembler::default();
        let seen = collect(&mut a, &[(0, true, &first), (188, false, &second)]);
        assert_eq!(seen, vec![0]);
    }

    #[test]
    fn rejects_a_bad_crc_and_wrong_table() {
        let mut section = pat_section(1, 0x1000);
        let last = section.len() - 1;
        section[last] ^= 1;
        assert!(pat_programs(&section).is_none());
        assert!(pmt(&pat_section(1, 0x1000)).is_none());
    }

    #[test]
    fn ignores_pointer_past_the_payload_and_stray_continuations() {
        let mut a = SectionAssembler::default();
        let seen = collect(&mut a, &[(0, true, &[200, 0, 0]), (188, false, &[1, 2, 3])]);
        assert!(seen.is_empty());
    }
}
