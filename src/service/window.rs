//! The part of a ranged request that selection and clipping work from,
//! shared by a Create and an on-the-fly playlist: the range, whether the
//! segment running at its end is taken, and how the ends are cut.

use crate::catalog::Stream;
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::{Micros, range};

/// How the ends of the range are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipMode {
    /// Whole segments: the playlist may start before StartTime and end
    /// after EndTime by up to a segment.
    Segment,
    /// The end segments trimmed to the keyframes around the range.
    Keyframe,
}

impl ClipMode {
    /// ClipMode as a request spells it; empty is SEGMENT.
    pub fn parse(value: &str) -> ApiResult<ClipMode> {
        match value {
            "" | "SEGMENT" => Ok(ClipMode::Segment),
            "KEYFRAME" => Ok(ClipMode::Keyframe),
            _ => Err(ApiError::InvalidParams(
                "ClipMode must be SEGMENT or KEYFRAME".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Micros,
    pub end: Micros,
    pub end_time_included: bool,
    pub clip_mode: ClipMode,
}

impl Window {
    /// Whether selection takes the segment running at EndTime: a keyframe
    /// clip trims it rather than leaving the end of the range out.
    pub fn takes_segment_at_end(&self) -> bool {
        self.end_time_included || self.clip_mode == ClipMode::Keyframe
    }

    /// Rule 4, the range, against the streams the catalog holds (found in
    /// request order): a SEGMENT range spans at least the longest segment
    /// of its streams.
    pub fn check_range(&self, found: &[Option<Stream>], now: Micros) -> ApiResult<()> {
        // A keyframe clip may be shorter than a segment: that is its point.
        let shortest_range = match self.clip_mode {
            ClipMode::Keyframe => Some(1),
            ClipMode::Segment => found
                .iter()
                .flatten()
                .map(|stream| stream.longest_segment)
                .filter(|longest| *longest > 0)
                .max(),
        };
        range::check_range(self.start, self.end, now, shortest_range)
    }
}

/// Rule 6: every stream named must have been registered; the streams in
/// the order named.
pub fn registered_streams(
    domain: &str,
    app: &str,
    names: &[String],
    found: Vec<Option<Stream>>,
) -> ApiResult<Vec<Stream>> {
    found
        .into_iter()
        .zip(names)
        .map(|(stream, name)| {
            stream.ok_or_else(|| {
                let path = format!("{domain}/{app}/{name}");
                ApiError::StreamNotFound(format!(
                    "no segment was ever registered for {}",
                    quote(&path)
                ))
            })
        })
        .collect()
}
