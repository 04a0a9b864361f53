//! The video codecs a segment can carry. A module of its own because the
//! PMT reader and the NAL parser both need it, below the probe that uses
//! them.

use std::fmt;

/// The video codec of a segment's first video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    H264,
    H265,
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
        })
    }
}
