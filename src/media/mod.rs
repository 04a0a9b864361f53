//! Media awareness: what a recorded MPEG-TS segment holds, read from its
//! bytes alone. Nothing here does I/O, so callers decide how much of an
//! object to fetch (all of it for [`probe`], two ranged reads for
//! [`probe_head_tail`]), and every input, however damaged, yields either a
//! result or a [`ProbeError`].

mod codec;
mod nal;
mod probe;
mod psi;

pub use codec::VideoCodec;
pub use probe::{
    Keyframe, PACKET_SIZE, PTS_HZ, Probe, ProbeError, Summary, probe, probe_head_tail, pts_delta,
    ticks_to_micros,
};
