//! Playlists made per request for players: a range of one stream, chosen
//! and cut on a Create's rules, rendered with the segment URIs the caller
//! gives, and nothing written. A range without an end runs to the live
//! edge: an EVENT playlist that grows as segments are registered and ends
//! once the stream has been idle for the configured time.

use super::IndexService;
use super::window::{ClipMode, Window, registered_streams};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::manifest::playlist::{self, PlaylistType};
use crate::manifest::{Micros, Segment, names};

/// What a player asked for, its times already read.
#[derive(Debug, Clone)]
pub struct PlaylistRequest {
    pub domain_name: String,
    pub app_name: String,
    pub stream_name: String,
    pub start: Micros,
    /// `None`: to the live edge.
    pub end: Option<Micros>,
    pub end_time_included: bool,
    pub clip_mode: ClipMode,
}

/// A rendered playlist and what HTTP caching needs to know of it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistAnswer {
    pub text: String,
    /// Whether the playlist will not change: a closed range in the past,
    /// or a live range whose stream has ended.
    pub closed: bool,
    /// The playlist's target duration, in microseconds: how often a player
    /// reloads a live one.
    pub target_duration: Micros,
}

/// The URIs of a playlist's segments, in order: given all at once, so a
/// writer that signs can do its per-playlist work once.
pub type SegmentUris<'a> = &'a (dyn Fn(&[&Segment]) -> Vec<String> + Sync);

impl IndexService {
    /// `idle` is how long after its last segment a live range ends.
    pub async fn playlist(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        idle: Micros,
        uris: SegmentUris<'_>,
    ) -> ApiResult<PlaylistAnswer> {
        names::check_stream_names(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        )?;
        caller.check_owns_domain(&request.domain_name)?;
        let now = self.clock.now();
        let window = Window {
            start: request.start,
            end: request.end.unwrap_or(now),
            end_time_included: request.end_time_included,
            clip_mode: request.clip_mode,
        };
        let streams = [request.stream_name.clone()];
        let found = self
            .find_streams(&request.domain_name, &request.app_name, &streams)
            .await?;
        window.check_range(&found, now)?;
        let streams = registered_streams(&request.domain_name, &request.app_name, &streams, found)?;
        let longest = streams[0].longest_segment;
        let selected = self.select_all(&window, &streams, now).await?;
        let clips = self.clip_all(&window, &selected).await;
        let last_end = selected[0].last().map_or(window.start, Segment::end);
        let kind = match request.end {
            Some(_) => PlaylistType::Vod,
            None => PlaylistType::Event {
                ended: now.saturating_sub(last_end) > idle,
                target_floor: longest,
            },
        };
        let parts = &clips[0].parts;
        let segments: Vec<&Segment> = parts.iter().map(|part| part.segment).collect();
        let mut written = uris(&segments).into_iter();
        // One URI per part, in order: the render asks in that order.
        let rendered =
            playlist::render_parts_as(parts, kind, |_| written.next().unwrap_or_default());
        let closed = match kind {
            PlaylistType::Vod => window.end < now,
            PlaylistType::Event { ended, .. } => ended,
        };
        let longest_part = clips[0].parts.iter().map(|p| p.duration).max().unwrap_or(0);
        Ok(PlaylistAnswer {
            text: rendered.text,
            closed,
            target_duration: longest.max(longest_part),
        })
    }
}
