//! Playlists made per request for players: a range of one stream, chosen
//! and cut on a Create's rules, rendered with the segment URIs the caller
//! gives, and nothing written. A range without an end runs to the live
//! edge: an EVENT playlist that grows as segments are registered and ends
//! once the stream has been idle for the configured time.

use super::IndexService;
use super::create::render;
use super::window::{ClipMode, Window, registered_streams};
use crate::auth::Caller;
use crate::catalog::Stream;
use crate::error::{ApiError, ApiResult};
use crate::manifest::master::{self, IFrameVariant};
use crate::manifest::playlist::{self, PlaylistType};
use crate::manifest::{Micros, Segment, names};
use futures::future::join_all;

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
    /// The longest a cache may keep it, in seconds, when the URLs in it
    /// expire (presigned or signed ones): a copy kept longer would hand
    /// players URLs that no longer work. `None`: no such bound.
    pub fresh_secs: Option<u64>,
}

/// The URIs of a playlist's segments, in order: given all at once, so a
/// writer that signs can do its per-playlist work once.
pub type SegmentUris<'a> = &'a (dyn Fn(&[&Segment]) -> Vec<String> + Sync);

/// Most renditions one master playlist may name, as on Create.
pub const MAX_RENDITIONS: usize = 8;
/// Longest rendition suffix, as on Create.
const MAX_SUFFIX_LEN: usize = 32;

/// A playlist request that passed its checks.
pub(super) struct Checked {
    window: Window,
    streams: Vec<Stream>,
    now: Micros,
}

/// The segments a range selects of each of its streams.
pub(super) struct Selected {
    pub window: Window,
    pub streams: Vec<Stream>,
    pub segments: Vec<Vec<Segment>>,
    pub now: Micros,
}

impl Selected {
    /// The kind of the first stream's playlist: VOD for a closed range; to
    /// the live edge, EVENT, ended once the stream has been idle for
    /// longer than `idle`.
    pub fn kind(&self, request: &PlaylistRequest, idle: Micros) -> PlaylistType {
        if request.end.is_some() {
            return PlaylistType::Vod;
        }
        let last_end = self.segments[0]
            .last()
            .map_or(self.window.start, Segment::end);
        PlaylistType::Event {
            ended: self.now.saturating_sub(last_end) > idle,
            target_floor: self.streams[0].longest_segment,
        }
    }

    /// `text`, a playlist of `kind` whose longest entry lasts `longest`, as
    /// HTTP caching needs it.
    pub fn answer(&self, text: String, kind: PlaylistType, longest: Micros) -> PlaylistAnswer {
        let closed = match kind {
            PlaylistType::Vod => self.window.end < self.now,
            PlaylistType::Event { ended, .. } => ended,
        };
        PlaylistAnswer {
            text,
            closed,
            target_duration: self.streams[0].longest_segment.max(longest),
            fresh_secs: None,
        }
    }
}

impl IndexService {
    /// `idle` is how long after its last segment a live range ends.
    pub async fn playlist(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        idle: Micros,
        uris: SegmentUris<'_>,
    ) -> ApiResult<PlaylistAnswer> {
        let names = [request.stream_name.clone()];
        let selected = self.select_streams(caller, request, &names).await?;
        let clips = self.clip_all(&selected.window, &selected.segments).await;
        let kind = selected.kind(request, idle);
        let parts = &clips[0].parts;
        let segments: Vec<&Segment> = parts.iter().map(|part| part.segment).collect();
        let mut written = uris(&segments).into_iter();
        // One URI per part, in order: the render asks in that order.
        let rendered =
            playlist::render_parts_as(parts, kind, |_| written.next().unwrap_or_default());
        let longest_part = parts.iter().map(|p| p.duration).max().unwrap_or(0);
        Ok(selected.answer(rendered.text, kind, longest_part))
    }

    /// A master playlist over the renditions `suffixes` of the request's
    /// stream (StreamName + suffix each), as Create writes one: each
    /// rendition's bandwidth from its segments, its codec and size from a
    /// probe of its first segment; then each rendition's I-frame playlist,
    /// its bandwidth from the keyframes of that first segment.
    /// `uri_of(stream, file)` gives the URI of a rendition's playlist
    /// `file` (`index.m3u8`, `iframes.m3u8`) from its stream name.
    pub async fn master_playlist(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        suffixes: &[String],
        uri_of: &(dyn Fn(&str, &str) -> String + Sync),
    ) -> ApiResult<PlaylistAnswer> {
        check_suffixes(suffixes)?;
        let names = stream_names(&request.stream_name, suffixes);
        for name in &names {
            check_url_segment("a rendition's StreamName", name)?;
        }
        let selected = self.select_streams(caller, request, &names).await?;
        let clips = self.clip_all(&selected.window, &selected.segments).await;
        render::check_aligned(&clips)?;
        let firsts = join_all(clips.iter().map(|clip| self.first_part(&clip.parts[0]))).await;
        let mut variants = Vec::with_capacity(clips.len());
        let mut iframe_variants = Vec::with_capacity(clips.len());
        for ((clip, first), name) in clips.iter().zip(&firsts).zip(&names) {
            let size = playlist::first_size(&clip.parts);
            let variant = render::variant(
                uri_of(name, "index.m3u8"),
                clip,
                size,
                first.probed.as_ref(),
            );
            if let Some(bandwidth) = first.iframe_bandwidth {
                iframe_variants.push(IFrameVariant {
                    uri: uri_of(name, "iframes.m3u8"),
                    bandwidth,
                    width: variant.width,
                    height: variant.height,
                    codecs: variant.codecs.clone(),
                });
            }
            variants.push(variant);
        }
        let longest = selected.streams.iter().map(|s| s.longest_segment).max();
        Ok(PlaylistAnswer {
            text: master::render(&variants, &iframe_variants),
            closed: request.end.is_some() && selected.window.end < selected.now,
            target_duration: longest.unwrap_or(0),
            fresh_secs: None,
        })
    }

    /// The checks of a playlist request, then the selection of each
    /// stream's segments.
    pub(super) async fn select_streams(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        names: &[String],
    ) -> ApiResult<Selected> {
        let Checked {
            window,
            streams,
            now,
        } = self.check_playlist(caller, request, names).await?;
        let segments = self.select_all(&window, &streams, now).await?;
        Ok(Selected {
            window,
            streams,
            segments,
            now,
        })
    }

    /// The checks of a playlist request of the streams `names` in Create's
    /// order (names, the domain's account, the range against the streams,
    /// every stream registered), with nothing selected: what a playlist
    /// fetched now would be refused for.
    pub(super) async fn check_playlist(
        &self,
        caller: &Caller,
        request: &PlaylistRequest,
        names: &[String],
    ) -> ApiResult<Checked> {
        for name in names {
            names::check_stream_names(&request.domain_name, &request.app_name, name)?;
        }
        caller.check_owns_domain(&request.domain_name)?;
        let now = self.clock.now();
        let window = Window {
            start: request.start,
            end: request.end.unwrap_or(now),
            end_time_included: request.end_time_included,
            clip_mode: request.clip_mode,
        };
        let found = self
            .find_streams(&request.domain_name, &request.app_name, names)
            .await?;
        window.check_range(&found, now)?;
        let streams = registered_streams(&request.domain_name, &request.app_name, names, found)?;
        Ok(Checked {
            window,
            streams,
            now,
        })
    }
}

/// The stream names a playlist of `stream` over `suffixes` reads: the
/// stream itself, or each rendition.
pub(super) fn stream_names(stream: &str, suffixes: &[String]) -> Vec<String> {
    if suffixes.is_empty() {
        return vec![stream.to_string()];
    }
    suffixes
        .iter()
        .map(|suffix| format!("{stream}{suffix}"))
        .collect()
}

/// A name a playback URL holds as a path segment of its own: `.` and `..`
/// are valid names, but every client resolves them away before it sends a
/// URL, so no URL reaches the stream they name.
pub(super) fn check_url_segment(field: &str, name: &str) -> ApiResult<()> {
    if crate::playback::signing::is_dot_segment(name) {
        return Err(ApiError::InvalidParams(format!(
            "{field} {name:?} cannot be played over HTTP: clients remove . and .. segments \
             from a URL's path"
        )));
    }
    Ok(())
}

/// Renditions as Create takes them: 1 to 8 suffixes of 1 to 32
/// characters.
pub(super) fn check_suffixes(suffixes: &[String]) -> ApiResult<()> {
    if suffixes.is_empty() || suffixes.len() > MAX_RENDITIONS {
        return Err(ApiError::InvalidParams(format!(
            "Renditions must list 1 to {MAX_RENDITIONS} suffixes"
        )));
    }
    if suffixes
        .iter()
        .any(|suffix| suffix.is_empty() || suffix.len() > MAX_SUFFIX_LEN)
    {
        return Err(ApiError::InvalidParams(format!(
            "each Renditions suffix must be 1 to {MAX_SUFFIX_LEN} characters"
        )));
    }
    Ok(())
}
