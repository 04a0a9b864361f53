//! CreateLiveStreamRecordIndexFiles: the design's validation list in order,
//! then selection, the playlist write, and the durable metadata record.

use bytes::Bytes;

use super::fault;
use super::idempotency::{PendingToken, fingerprint};
use super::probing::probe_object;
use super::{IndexService, blocking, check_required, parse_range, stream_name};
use crate::auth::Caller;
use crate::catalog::{ManifestRecord, TokenAnswer};
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::MICROS_PER_SECOND;
use crate::manifest::clip::{self, Cut};
use crate::manifest::master::{self, Variant};
use crate::manifest::playlist::DISCONTINUITY_GAP;
use crate::manifest::playlist::Part;
use crate::manifest::range::{self, MANIFEST_RETENTION};
use crate::manifest::selection::Selection;
use crate::manifest::template::{self, TemplateVars};
use crate::manifest::{Micros, Segment, names, playlist, time, uri};
use crate::media;
use crate::operations::Operation;
use crate::proto;
use crate::storage::{PLAYLIST_CONTENT_TYPE, StorageError};

fn storage_failure(err: StorageError) -> ApiError {
    let message = format!("writing the playlist failed: {err}");
    match err {
        StorageError::Unreachable(_) => ApiError::unavailable(message),
        StorageError::Transient(_) | StorageError::NotFound | StorageError::Rejected(_) => {
            ApiError::internal(message)
        }
    }
}

impl IndexService {
    pub async fn create(
        &self,
        caller: &Caller,
        mut request: proto::CreateLiveStreamRecordIndexFilesRequest,
    ) -> ApiResult<proto::CreateLiveStreamRecordIndexFilesResponse> {
        let operation = Operation::CreateLiveStreamRecordIndexFiles;
        caller.authorize(operation, &request.domain_name)?;
        let token = std::mem::take(&mut request.client_token);
        let request_fingerprint = fingerprint(&request);
        self.once(caller, operation, &token, request_fingerprint, |token| {
            self.create_new(caller, request, token)
        })
        .await
    }

    /// The parts of a KEYFRAME clip: the first and last segments trimmed to
    /// the keyframes around the range, each read from object storage and
    /// probed; an end that cannot be trimmed keeps its whole segment.
    async fn keyframe_parts<'a>(
        &self,
        segments: &'a [Segment],
        start: Micros,
        end: Micros,
    ) -> Clip<'a> {
        let mut clip = Clip {
            parts: segments.iter().map(Part::whole).collect(),
            trimmed: false,
            note: String::new(),
        };
        let last = segments.len() - 1;
        let cut_in = (segments[0].start < start).then_some(start);
        let cut_out = (segments[last].end() > end).then_some(end);
        let mut notes = Vec::new();
        let ends: Vec<(usize, Option<Micros>, Option<Micros>)> = if last == 0 {
            vec![(0, cut_in, cut_out)]
        } else {
            vec![(0, cut_in, None), (last, None, cut_out)]
        };
        for (index, cut_in, cut_out) in ends {
            if cut_in.is_none() && cut_out.is_none() {
                continue;
            }
            let segment = &segments[index];
            match self.cut_segment(segment, cut_in, cut_out).await {
                Ok(cut) => {
                    clip.parts[index] = Part {
                        segment,
                        start: cut.start,
                        duration: cut.duration,
                        byte_range: cut.byte_range,
                    };
                    clip.trimmed |= cut.byte_range.is_some();
                }
                Err(reason) => {
                    notes.push(format!("{}: whole segment kept: {reason}", segment.object))
                }
            }
        }
        clip.note = notes.join("; ");
        clip
    }

    async fn cut_segment(
        &self,
        segment: &Segment,
        cut_in: Option<Micros>,
        cut_out: Option<Micros>,
    ) -> Result<Cut, String> {
        if !self.storage.has_endpoint(&segment.endpoint) {
            return Err(format!(
                "endpoint {} is not one this service reads from",
                segment.endpoint
            ));
        }
        // The whole object is read to find its keyframes: bounded, so a
        // long segment cannot take the service's memory.
        let meta = self
            .storage
            .head(&segment.endpoint, &segment.bucket, &segment.object)
            .await
            .map_err(|err| format!("reading it failed: {err}"))?;
        if meta.size > MAX_TRIMMED_SEGMENT_BYTES {
            return Err(format!(
                "{} bytes is more than the {MAX_TRIMMED_SEGMENT_BYTES} a segment may have to be trimmed",
                meta.size
            ));
        }
        let object = self
            .storage
            .get(&segment.endpoint, &segment.bucket, &segment.object, None)
            .await
            .map_err(|err| format!("reading it failed: {err}"))?;
        let bytes = object.body;
        let total = object.total_len;
        tokio::task::spawn_blocking(move || (media::probe(&bytes), total))
            .await
            .map_err(|err| err.to_string())
            .and_then(|(probe, total)| {
                let probe = probe.map_err(|err| format!("probing it failed: {err}"))?;
                clip::cut(segment, &probe, total, cut_in, cut_out)
            })
    }

    async fn create_new(
        &self,
        caller: &Caller,
        request: proto::CreateLiveStreamRecordIndexFilesRequest,
        token: Option<PendingToken>,
    ) -> ApiResult<proto::CreateLiveStreamRecordIndexFilesResponse> {
        check_required(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
            &[
                ("OssEndpoint", &request.oss_endpoint),
                ("OssBucket", &request.oss_bucket),
                ("OssObject", &request.oss_object),
                ("StartTime", &request.start_time),
                ("EndTime", &request.end_time),
            ],
        )?;
        let keyframe_clip = match request.clip_mode.as_str() {
            "" | "SEGMENT" => false,
            "KEYFRAME" => true,
            _ => {
                return Err(ApiError::InvalidParams(
                    "ClipMode must be SEGMENT or KEYFRAME".into(),
                ));
            }
        };
        if request.renditions.len() > MAX_RENDITIONS {
            return Err(ApiError::InvalidParams(format!(
                "Renditions may list at most {MAX_RENDITIONS} suffixes"
            )));
        }
        for suffix in &request.renditions {
            let plain = !suffix.is_empty() && suffix.len() <= 32;
            if !plain {
                return Err(ApiError::InvalidParams(
                    "each Renditions suffix must be 1 to 32 characters".into(),
                ));
            }
            names::check_stream_names(
                &request.domain_name,
                &request.app_name,
                &format!("{}{suffix}", request.stream_name),
            )?;
        }
        let (start, end) = parse_range(&request.start_time, &request.end_time)?;
        if !names::is_endpoint(&request.oss_endpoint)
            || !self.storage.has_endpoint(&request.oss_endpoint)
        {
            return Err(ApiError::OssEndpointMalformed(format!(
                "OssEndpoint {} is not an endpoint this service writes to",
                quote(&request.oss_endpoint)
            )));
        }
        if !names::is_bucket(&request.oss_bucket) {
            return Err(ApiError::OssBucketMalformed(
                "OssBucket must be 3 to 63 characters of [a-z0-9-], starting and ending with a letter or digit".into(),
            ));
        }
        let record_id = uuid::Uuid::new_v4();
        let record_id_text = record_id.to_string();
        let key = template::expand_object_key(
            &request.oss_object,
            &TemplateVars {
                domain_name: &request.domain_name,
                app_name: &request.app_name,
                stream_name: &request.stream_name,
                start,
                end,
                record_id: &record_id_text,
            },
        )?;
        let media_keys = media_keys(&key, &request.renditions)?;

        let now = self.clock.now();
        // The streams this manifest indexes: the stream itself, or each
        // rendition of the program (StreamName + suffix).
        let stream_names: Vec<String> = if request.renditions.is_empty() {
            vec![request.stream_name.clone()]
        } else {
            request
                .renditions
                .iter()
                .map(|suffix| format!("{}{suffix}", request.stream_name))
                .collect()
        };
        let mut found = Vec::with_capacity(stream_names.len());
        for name in &stream_names {
            found.push(self.catalog.stream(&stream_name(
                &request.domain_name,
                &request.app_name,
                name,
            ))?);
        }
        // A keyframe clip may be shorter than a segment: that is its point.
        let shortest_range = if keyframe_clip {
            Some(1)
        } else {
            found
                .iter()
                .flatten()
                .map(|s| s.longest_segment)
                .filter(|d| *d > 0)
                .max()
        };
        range::check_range(start, end, now, shortest_range)?;
        if !caller.owns_bucket(&request.oss_bucket) {
            return Err(ApiError::BucketNotFound(format!(
                "bucket {} does not belong to account {}",
                quote(&request.oss_bucket),
                caller.account.id
            )));
        }
        let mut streams = Vec::with_capacity(found.len());
        for (stream, name) in found.into_iter().zip(&stream_names) {
            streams.push(stream.ok_or_else(|| {
                let path = format!("{}/{}/{name}", request.domain_name, request.app_name);
                ApiError::StreamNotFound(format!(
                    "no segment was ever registered for {}",
                    quote(&path)
                ))
            })?);
        }

        let mut selected = Vec::with_capacity(streams.len());
        for stream in &streams {
            let included = request.end_time_included || keyframe_clip;
            selected.push(
                self.select(stream.id, stream.longest_segment, start, end, included, now)
                    .await?,
            );
        }
        let mut clips = Vec::with_capacity(selected.len());
        for segments in &selected {
            clips.push(if keyframe_clip {
                self.keyframe_parts(segments, start, end).await
            } else {
                Clip {
                    parts: segments.iter().map(Part::whole).collect(),
                    trimmed: false,
                    note: String::new(),
                }
            });
        }
        let cuts: Vec<&[Part]> = clips.iter().map(|clip| clip.parts.as_slice()).collect();
        if !master::aligned(&cuts, DISCONTINUITY_GAP) {
            return Err(ApiError::OperationNotSupport(
                "the renditions are not cut on the same segment boundaries in this range".into(),
            ));
        }
        let mut playlists = Vec::with_capacity(clips.len());
        for (clip, media_key) in clips.iter().zip(&media_keys) {
            let rendered = playlist::render_parts(&clip.parts, |segment| {
                if segment.endpoint == request.oss_endpoint && segment.bucket == request.oss_bucket
                {
                    uri::relative_uri(media_key, &segment.object)
                } else {
                    self.storage
                        .url(&segment.endpoint, &segment.bucket, &segment.object)
                }
            });
            playlists.push(rendered);
        }
        // Every object to write, the one the manifest names last: a player
        // that finds it finds the whole set.
        let mut writes: Vec<(&str, String)> = playlists
            .iter()
            .zip(&media_keys)
            .map(|(rendered, media_key)| (media_key.as_str(), rendered.text.clone()))
            .collect();
        if !request.renditions.is_empty() {
            let mut variants = Vec::with_capacity(clips.len());
            for ((clip, rendered), media_key) in clips.iter().zip(&playlists).zip(&media_keys) {
                variants.push(self.variant(&key, media_key, clip, rendered).await);
            }
            writes.push((key.as_str(), master::render(&variants)));
        }
        let rendered = &playlists[0];
        let trimmed = clips.iter().any(|clip| clip.trimmed);
        let note = clips
            .iter()
            .map(|clip| clip.note.as_str())
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let segment_count: usize = clips.iter().map(|clip| clip.parts.len()).sum();

        let record = ManifestRecord {
            record_id: record_id.as_bytes().to_vec(),
            domain_name: request.domain_name,
            app_name: request.app_name,
            stream_name: request.stream_name,
            record_url: self
                .storage
                .url(&request.oss_endpoint, &request.oss_bucket, &key),
            oss_endpoint: request.oss_endpoint,
            oss_bucket: request.oss_bucket,
            oss_object: key.clone(),
            start_time: request.start_time,
            end_time: request.end_time,
            created: now,
            expires: now + MANIFEST_RETENTION,
            duration: rendered.duration,
            width: rendered.width,
            height: rendered.height,
            segment_count: segment_count as u32,
            stream_id: streams[0].id,
        };
        let response = proto::CreateLiveStreamRecordIndexFilesResponse {
            request_id: String::new(),
            record_info: Some(record_info(&record)),
            clip_mode: if trimmed { "KEYFRAME" } else { "SEGMENT" }.to_string(),
            clip_note: note,
        };
        let answer = token.map(|token| token.answer(&response));
        self.store_with_playlists(&record, answer, &writes).await?;
        // The request's own log line says it succeeded; this adds what.
        tracing::debug!(record_id = %record_id, segments = segment_count, duration = rendered.duration, "manifest created");
        Ok(response)
    }

    /// Writes the playlists, then the manifest with its ClientToken's
    /// answer in one transaction, acknowledged once it is flushed: an
    /// acknowledged manifest survives a crash, no manifest names a playlist
    /// that was not written, and a retry with the token finds the manifest
    /// whenever it exists. A crash in between leaves a playlist without a
    /// manifest, which the client was never told of.
    async fn store_with_playlists(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
        writes: &[(&str, String)],
    ) -> ApiResult<()> {
        for (key, text) in writes {
            self.write_playlist(&record.oss_endpoint, &record.oss_bucket, key, text.clone())
                .await?;
        }
        let (catalog, record) = (self.catalog.clone(), record.clone());
        blocking(move || {
            catalog.put_manifest_answering(&record, answer.as_ref())?;
            catalog.flush_blocking()?;
            fault::after_commit("create");
            Ok(())
        })
        .await
    }

    async fn write_playlist(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
        text: String,
    ) -> ApiResult<()> {
        self.storage
            .put(
                endpoint,
                bucket,
                key,
                Bytes::from(text),
                PLAYLIST_CONTENT_TYPE,
            )
            .await
            .map_err(storage_failure)
    }

    /// A rendition's line in the master playlist: its bitrates from segment
    /// sizes, its codec from a probe of its first segment.
    async fn variant(
        &self,
        master_key: &str,
        media_key: &str,
        clip: &Clip<'_>,
        rendered: &playlist::Playlist,
    ) -> Variant {
        let first = clip.parts[0].segment;
        let probed = probe_object(&self.storage, &first.endpoint, &first.bucket, &first.object)
            .await
            .ok();
        let (bandwidth, average_bandwidth) = master::bitrates(&clip.parts)
            .or_else(|| {
                let (_, size) = probed.as_ref()?;
                let bits = u128::from(*size) * 8 * MICROS_PER_SECOND as u128;
                let rate = u64::try_from(bits / first.duration.max(1) as u128).unwrap_or(u64::MAX);
                Some((rate, rate))
            })
            .unwrap_or((0, 0));
        let (width, height) = match (&probed, rendered.width) {
            (_, w) if w > 0 => (rendered.width, rendered.height),
            (Some((summary, _)), _) => (summary.width, summary.height),
            (None, _) => (0, 0),
        };
        Variant {
            uri: uri::relative_uri(master_key, media_key),
            bandwidth,
            average_bandwidth,
            width,
            height,
            codecs: probed.map(|(summary, _)| summary.codec_string),
        }
    }

    /// Rule 7: the segments of the range, bounded by the cap.
    async fn select(
        &self,
        stream_id: u64,
        longest_segment: Micros,
        start: Micros,
        end: Micros,
        end_time_included: bool,
        now: Micros,
    ) -> ApiResult<Vec<crate::manifest::Segment>> {
        let catalog = self.catalog.clone();
        let cap = self.max_segments_per_manifest;
        // The segment running at EndTime ends at most one segment later.
        let scan_until = if end_time_included {
            end.saturating_add(longest_segment)
        } else {
            end
        };
        let select = move || {
            let mut selection = Selection::new(start, end, end_time_included, cap);
            catalog.scan_by_end(stream_id, start, scan_until, now, |segment| {
                selection.offer(segment)
            })?;
            selection.finish()
        };
        // Off the runtime whatever the range: a stream may hold any number
        // of segments in an hour.
        blocking(select).await
    }
}

/// Most renditions one manifest may index.
const MAX_RENDITIONS: usize = 8;

/// The media playlist key of a rendition: the master key with the
/// rendition's suffix before `.m3u8`.
fn rendition_key(master_key: &str, suffix: &str) -> String {
    let stem = master_key.strip_suffix(".m3u8").unwrap_or(master_key);
    format!("{stem}{suffix}.m3u8")
}

/// The key of each media playlist: the expanded key itself, or one per
/// rendition. Every key is held to the OssObject rules before anything is
/// written, as the expanded key is: a suffix can push a key over the
/// length object stores accept.
fn media_keys(key: &str, renditions: &[String]) -> ApiResult<Vec<String>> {
    if renditions.is_empty() {
        return Ok(vec![key.to_string()]);
    }
    renditions
        .iter()
        .map(|suffix| {
            let media_key = rendition_key(key, suffix);
            names::check_object_key(&media_key).map_err(|reason| {
                ApiError::OssObjectMalformed(format!(
                    "the playlist of rendition {}: {reason}",
                    quote(suffix)
                ))
            })?;
            Ok(media_key)
        })
        .collect()
}

/// Largest segment a KEYFRAME clip reads whole to find its keyframes.
const MAX_TRIMMED_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The playlist entries of a manifest and what trimming did.
struct Clip<'a> {
    parts: Vec<Part<'a>>,
    /// Whether any end was trimmed to a keyframe.
    trimmed: bool,
    /// Why an end kept its whole segment.
    note: String,
}

/// The API's view of a stored manifest.
pub fn record_info(record: &ManifestRecord) -> proto::RecordInfo {
    proto::RecordInfo {
        record_url: record.record_url.clone(),
        stream_name: record.stream_name.clone(),
        create_time: time::format_request_time(record.created),
        record_id: record.uuid().to_string(),
        height: record.height as i32,
        oss_bucket: record.oss_bucket.clone(),
        domain_name: record.domain_name.clone(),
        oss_object: record.oss_object.clone(),
        end_time: record.end_time.clone(),
        app_name: record.app_name.clone(),
        start_time: record.start_time.clone(),
        width: record.width as i32,
        duration: record.duration,
        oss_endpoint: record.oss_endpoint.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendition_key_obeys_the_object_key_rules() {
        let key = format!("{}.m3u8", "k".repeat(1015));
        assert_eq!(media_keys(&key, &[]).unwrap(), vec![key.clone()]);
        let short = vec!["_a".to_string()];
        assert_eq!(
            media_keys("live/x.m3u8", &short).unwrap(),
            vec!["live/x_a.m3u8".to_string()]
        );
        let long_suffix = format!("_{}", "r".repeat(31));
        let err = media_keys(&key, &["_a".into(), long_suffix.clone()]).unwrap_err();
        assert_eq!(err.code(), "InvalidOssObject.Malformed");
        assert!(err.to_string().contains(&long_suffix), "{err}");
    }
}
