//! I-frame playlists made per request: the keyframes of the entries that
//! the media playlist of the same range has, from their segments' keyframe
//! tables (read whole and probed the first time, then kept; see
//! [`super::keyframes`]). A master playlist names each rendition's I-frame
//! playlist with a bit rate from its first segment's keyframes.
//!
//! An I-frame playlist covers at most [`MAX_IFRAME_SEGMENTS`] segments, as
//! the first request of a range reads each of them whole. A segment that
//! cannot be read for good (missing, too large, not H.264/H.265 TS, no
//! PAT and PMT before a keyframe) is left out, and the playlist stays
//! valid around the hole; object storage not answering fails the request,
//! so a growing playlist never shows a hole that later fills in.

use futures::StreamExt;

use super::IndexService;
use super::create::clip::FirstProbe;
use super::keyframes::TableError;
use super::playback::{PlaylistAnswer, PlaylistRequest, SegmentUris};
use super::probing::probe_object;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::iframes::{self, PartFrames};
use crate::manifest::playlist::Part;
use crate::manifest::{Micros, Segment};
use crate::media::Summary;

/// Most segments one I-frame playlist covers: an hour of 5-second
/// segments. A cold range reads every one of them whole once.
pub const MAX_IFRAME_SEGMENTS: usize = 720;
/// Keyframe tables one request asks for at once (the cache bounds the
/// probes of all requests together).
const TABLES_IN_FLIGHT: usize = 4;

/// What a master playlist says of a rendition from its first entry.
pub(super) struct FirstPart {
    /// Codec and size, and the object's size.
    pub probed: FirstProbe,
    /// Peak bit rate of the entry's keyframes; `None` when they could not
    /// be read, and then the master names no I-frame playlist for it.
    pub iframe_bandwidth: Option<u64>,
}

impl IndexService {
    /// The I-frame playlist of a range of one stream; `idle` is how long
    /// after its last segment a live range ends.
    pub async fn iframe_playlist(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        idle: Micros,
        uris: SegmentUris<'_>,
    ) -> ApiResult<PlaylistAnswer> {
        let names = [request.stream_name.clone()];
        let selected = self.select_streams(caller, request, &names).await?;
        let count = selected.segments[0].len();
        if count > MAX_IFRAME_SEGMENTS {
            return Err(ApiError::RecordContentExceed(format!(
                "an I-frame playlist covers at most {MAX_IFRAME_SEGMENTS} segments and this range \
                 has {count}; ask for a shorter range"
            )));
        }
        let clips = self.clip_all(&selected.window, &selected.segments).await;
        let kept = self.frames_of(&clips[0].parts).await?;
        let kind = selected.kind(request, idle);
        let segments: Vec<&Segment> = kept.iter().map(|part| part.part.segment).collect();
        let mut written = uris(&segments).into_iter();
        // One URI per kept part, in order: the render asks in that order.
        let text = iframes::render(&kept, kind, |_| written.next().unwrap_or_default());
        let longest = kept
            .iter()
            .flat_map(|part| &part.frames)
            .map(|frame| frame.duration)
            .max()
            .unwrap_or(0);
        Ok(selected.answer(text, kind, longest))
    }

    /// The keyframes of each part that has some a player can read; the
    /// others are left out.
    async fn frames_of<'a>(&self, parts: &[Part<'a>]) -> ApiResult<Vec<PartFrames<'a>>> {
        // By index: a closure taking a `&Part` would have to be general
        // over its lifetimes, which the listener's Send bound cannot prove.
        let tables: Vec<_> = futures::stream::iter(0..parts.len())
            .map(|i| self.keyframe_table(parts[i].segment))
            .buffered(TABLES_IN_FLIGHT)
            .collect()
            .await;
        let mut kept = Vec::with_capacity(parts.len());
        let mut left_out = Vec::new();
        for (part, table) in parts.iter().zip(tables) {
            let object = quote(&part.segment.object);
            match table {
                Ok(table) => match iframes::part_frames(part, &table.probe) {
                    Some(frames) => kept.push(frames),
                    None => left_out.push(format!(
                        "{object}: no keyframe with a PAT and PMT before it"
                    )),
                },
                Err(TableError::Unusable(reason)) => left_out.push(format!("{object}: {reason}")),
                Err(TableError::Unavailable(reason)) => {
                    return Err(ApiError::unavailable(format!("segment {object}: {reason}")));
                }
            }
        }
        if let Some(first) = left_out.first() {
            tracing::warn!(
                left_out = left_out.len(),
                first = %first,
                "segments left out of an I-frame playlist"
            );
            if kept.is_empty() {
                return Err(ApiError::OperationNotSupport(format!(
                    "no segment of the range has a keyframe a player can read alone: {first}"
                )));
            }
        }
        Ok(kept)
    }

    /// A rendition's first entry as a master playlist describes it: from
    /// its keyframe table, which also gives the I-frame bit rate; when that
    /// cannot be had, codec and size from the segment's two ends, as
    /// Create probes them.
    pub(super) async fn first_part(&self, part: &Part<'_>) -> FirstPart {
        match self.keyframe_table(part.segment).await {
            Ok(table) => FirstPart {
                probed: Some((Summary::from(&table.probe), table.total_len)),
                // The first entry stands for the rendition, as its codec
                // does: the peak over its keyframes, each its bytes over
                // the time to the next keyframe.
                iframe_bandwidth: iframes::part_frames(part, &table.probe)
                    .and_then(|frames| iframes::peak_bandwidth(&frames.frames)),
            },
            Err(_) => {
                let segment = part.segment;
                let probed = probe_object(
                    &self.storage,
                    &segment.endpoint,
                    &segment.bucket,
                    &segment.object,
                )
                .await;
                FirstPart {
                    probed: probed.ok(),
                    iframe_bandwidth: None,
                }
            }
        }
    }
}
