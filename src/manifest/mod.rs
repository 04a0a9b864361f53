//! The domain model and the pure rules of a manifest.
//!
//! The model, here in the root: [`Segment`] (with what a probe of its bytes
//! adds, [`SegmentMedia`]), its container [`Format`], and [`Micros`], the
//! unit of every instant the service keeps. The catalog, the service and
//! the listeners all speak in these types.
//!
//! The rules, in the submodules: time formats, names, the OssObject
//! template, which segments a range selects, and the playlist text. Nothing
//! here does I/O, so every rule is tested without a server.

pub mod clip;
pub mod iframes;
pub mod master;
pub mod names;
pub mod playlist;
pub mod range;
pub mod selection;
pub mod spans;
pub mod template;
pub mod time;
pub mod uri;

/// Microseconds since the Unix epoch, UTC. Every instant the service keeps
/// is in this unit, so sums of segment durations stay exact.
pub type Micros = i64;

pub const MICROS_PER_SECOND: Micros = 1_000_000;
pub const MICROS_PER_DAY: Micros = 86_400 * MICROS_PER_SECOND;

/// Container format of a recorded segment. Only TS can be put in a playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Ts,
    Flv,
    Mp4,
    Cmaf,
}

impl Format {
    /// Parses the API's format names; empty means TS.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "" | "ts" => Some(Format::Ts),
            "flv" => Some(Format::Flv),
            "mp4" => Some(Format::Mp4),
            "cmaf" => Some(Format::Cmaf),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Ts => "ts",
            Format::Flv => "flv",
            Format::Mp4 => "mp4",
            Format::Cmaf => "cmaf",
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Format::Ts => 0,
            Format::Flv => 1,
            Format::Mp4 => 2,
            Format::Cmaf => 3,
        }
    }

    pub fn from_u8(code: u8) -> Option<Format> {
        match code {
            0 => Some(Format::Ts),
            1 => Some(Format::Flv),
            2 => Some(Format::Mp4),
            3 => Some(Format::Cmaf),
            _ => None,
        }
    }
}

/// One recorded segment as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Object storage host (`oss-cn-shanghai.aliyuncs.com`, `localhost:8333`).
    pub endpoint: String,
    pub bucket: String,
    /// Object key of the media file.
    pub object: String,
    /// When the first frame was recorded.
    pub start: Micros,
    /// Media length; the segment covers [start, start + duration).
    pub duration: Micros,
    /// Media sequence number given by the recorder.
    pub sequence: i64,
    /// Video size in pixels, 0 when unknown.
    pub width: u32,
    pub height: u32,
    pub format: Format,
    /// Object size in bytes, 0 when unknown.
    pub size: u64,
    /// What a probe of the media found; `None` when the recorder gave the
    /// metadata and nothing was probed.
    pub media: Option<SegmentMedia>,
}

/// Facts from the segment's own bytes that wall-clock times cannot show:
/// an encoder restart resets PTS, a codec change needs a new decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMedia {
    pub codec: crate::media::VideoCodec,
    /// PTS of the first video frame (90 kHz, 33 bits).
    pub first_pts: u64,
}

impl Segment {
    /// The segment's "upload time": selection rules compare against it.
    /// Saturating, so no stored value can make it overflow.
    pub fn end(&self) -> Micros {
        self.start.saturating_add(self.duration)
    }
}
