//! Rendering, the pure step of a Create between reading and writing: the
//! media playlists, the master over them, the manifest record and the
//! answer, all from the plan and its clips.

use super::clip::{Clip, FirstProbe};
use super::plan::Plan;
use crate::catalog::ManifestRecord;
use crate::error::{ApiError, ApiResult};
use crate::manifest::master::{self, Variant};
use crate::manifest::playlist::{self, DISCONTINUITY_GAP, Part, Playlist};
use crate::manifest::range::MANIFEST_RETENTION;
use crate::manifest::{MICROS_PER_SECOND, Micros, time, uri};
use crate::proto;

/// The URL of an object: `(endpoint, bucket, key)` as object storage
/// serves it.
pub(super) type UrlOf<'a> = &'a dyn Fn(&str, &str, &str) -> String;

/// What a Create writes and answers.
pub(super) struct Rendered {
    /// `(key, text)` of every playlist, the one the manifest names last: a
    /// player that finds it finds the whole set.
    pub writes: Vec<(String, String)>,
    pub record: ManifestRecord,
    pub response: proto::CreateLiveStreamRecordIndexFilesResponse,
}

/// Renditions must switch at the same instants, or a player changing
/// bitrate would skip or repeat media.
pub(in crate::service) fn check_aligned(clips: &[Clip]) -> ApiResult<()> {
    let cuts: Vec<&[Part]> = clips.iter().map(|clip| clip.parts.as_slice()).collect();
    if master::aligned(&cuts, DISCONTINUITY_GAP) {
        Ok(())
    } else {
        Err(ApiError::OperationNotSupport(
            "the renditions are not cut on the same segment boundaries in this range".into(),
        ))
    }
}

/// Renders everything a Create writes. `probes` holds one entry per clip
/// when the plan has a master playlist; `stream_id` is the catalog id of
/// the manifest's first stream.
pub(super) fn render(
    plan: &Plan,
    clips: &[Clip],
    probes: &[FirstProbe],
    stream_id: u64,
    now: Micros,
    url_of: UrlOf,
) -> Rendered {
    let playlists = media_playlists(plan, clips, url_of);
    let mut writes: Vec<(String, String)> = plan
        .media_keys
        .iter()
        .zip(&playlists)
        .map(|(key, rendered)| (key.clone(), rendered.text.clone()))
        .collect();
    if plan.master {
        let variants: Vec<Variant> = clips
            .iter()
            .zip(&playlists)
            .zip(&plan.media_keys)
            .zip(probes)
            .map(|(((clip, rendered), media_key), probed)| {
                let uri = uri::relative_uri(&plan.key, media_key);
                variant(
                    uri,
                    clip,
                    (rendered.width, rendered.height),
                    probed.as_ref(),
                )
            })
            .collect();
        // Create writes no I-frame playlist: those are made per request.
        writes.push((plan.key.clone(), master::render(&variants, &[])));
    }
    let record = manifest_record(plan, clips, &playlists[0], stream_id, now, url_of);
    let trimmed = clips.iter().any(|clip| clip.trimmed);
    let note = clips
        .iter()
        .map(|clip| clip.note.as_str())
        .filter(|note| !note.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let response = proto::CreateLiveStreamRecordIndexFilesResponse {
        request_id: String::new(),
        record_info: Some(record_info(&record)),
        clip_mode: if trimmed { "KEYFRAME" } else { "SEGMENT" }.to_string(),
        clip_note: note,
    };
    Rendered {
        writes,
        record,
        response,
    }
}

/// One playlist per clip. Segments beside the playlist are named relative
/// to it, so the set can be copied or served from elsewhere; others by URL.
fn media_playlists(plan: &Plan, clips: &[Clip], url_of: UrlOf) -> Vec<Playlist> {
    clips
        .iter()
        .zip(&plan.media_keys)
        .map(|(clip, media_key)| {
            playlist::render_parts(&clip.parts, |segment| {
                if segment.endpoint == plan.endpoint && segment.bucket == plan.bucket {
                    uri::relative_uri(media_key, &segment.object)
                } else {
                    url_of(&segment.endpoint, &segment.bucket, &segment.object)
                }
            })
        })
        .collect()
}

/// The catalog's record of the manifest. Its size and length are those of
/// the first media playlist; its segment count covers every rendition.
fn manifest_record(
    plan: &Plan,
    clips: &[Clip],
    first: &Playlist,
    stream_id: u64,
    now: Micros,
    url_of: UrlOf,
) -> ManifestRecord {
    let segment_count: usize = clips.iter().map(|clip| clip.parts.len()).sum();
    ManifestRecord {
        record_id: plan.record_id.as_bytes().to_vec(),
        domain_name: plan.domain_name.clone(),
        app_name: plan.app_name.clone(),
        stream_name: plan.stream_name.clone(),
        record_url: url_of(&plan.endpoint, &plan.bucket, &plan.key),
        oss_endpoint: plan.endpoint.clone(),
        oss_bucket: plan.bucket.clone(),
        oss_object: plan.key.clone(),
        start_time: plan.start_time.clone(),
        end_time: plan.end_time.clone(),
        created: now,
        expires: now + MANIFEST_RETENTION,
        duration: first.duration,
        width: first.width,
        height: first.height,
        segment_count: segment_count as u32,
        stream_id,
    }
}

/// A rendition's line in the master playlist: its bitrates from segment
/// sizes, its codec from a probe of its first segment.
/// A rendition's line of a master playlist, its media playlist at `uri`.
pub(in crate::service) fn variant(
    uri: String,
    clip: &Clip,
    size: (u32, u32),
    probed: Option<&(crate::media::Summary, u64)>,
) -> Variant {
    let first = clip.parts[0].segment;
    let (bandwidth, average_bandwidth) = master::bitrates(&clip.parts)
        .or_else(|| {
            let (_, size) = probed?;
            let bits = u128::from(*size) * 8 * MICROS_PER_SECOND as u128;
            let rate = u64::try_from(bits / first.duration.max(1) as u128).unwrap_or(u64::MAX);
            Some((rate, rate))
        })
        .unwrap_or((0, 0));
    let (width, height) = match (probed, size) {
        (_, (w, _)) if w > 0 => size,
        (Some((summary, _)), _) => (summary.width, summary.height),
        (None, _) => (0, 0),
    };
    Variant {
        uri,
        bandwidth,
        average_bandwidth,
        width,
        height,
        codecs: probed.map(|(summary, _)| summary.codec_string.clone()),
    }
}

/// The API's view of a stored manifest.
pub(in crate::service) fn record_info(record: &ManifestRecord) -> proto::RecordInfo {
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
    use crate::manifest::{Format, Segment};

    const ENDPOINT: &str = "oss-cn-shanghai.aliyuncs.com";

    fn plan(renditions: &[&str]) -> Plan {
        let request = proto::CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            oss_endpoint: ENDPOINT.into(),
            oss_bucket: "records".into(),
            oss_object: "index/{StreamName}.m3u8".into(),
            start_time: "2026-11-25T10:00:00Z".into(),
            end_time: "2026-11-25T10:00:12Z".into(),
            renditions: renditions.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Plan::new(request, uuid::Uuid::nil(), |_| true).unwrap()
    }

    fn segment(plan: &Plan, bucket: &str, object: &str, offset: i64) -> Segment {
        Segment {
            endpoint: ENDPOINT.into(),
            bucket: bucket.into(),
            object: object.into(),
            start: plan.start + offset * MICROS_PER_SECOND,
            duration: 6 * MICROS_PER_SECOND,
            sequence: 40 + offset,
            width: 640,
            height: 360,
            format: Format::Ts,
            size: 750_000,
            media: None,
        }
    }

    fn url_of(endpoint: &str, bucket: &str, key: &str) -> String {
        format!("https://{bucket}.{endpoint}/{key}")
    }

    #[test]
    fn one_stream_renders_one_playlist_and_its_record() {
        let plan = plan(&[]);
        let segments = vec![
            segment(&plan, "records", "live/cam/0.ts", 0),
            segment(&plan, "elsewhere", "live/cam/1.ts", 6),
        ];
        let clips = vec![Clip::whole(&segments)];
        let rendered = render(&plan, &clips, &[], 9, plan.end, &url_of);
        assert_eq!(rendered.writes.len(), 1);
        let (key, text) = &rendered.writes[0];
        assert_eq!(key, "index/cam.m3u8");
        assert!(text.contains("\n../live/cam/0.ts\n"), "{text}");
        assert!(
            text.contains("\nhttps://elsewhere.oss-cn-shanghai.aliyuncs.com/live/cam/1.ts\n"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:40"), "{text}");
        let record = &rendered.record;
        assert_eq!(record.stream_id, 9);
        assert_eq!(record.segment_count, 2);
        assert_eq!(record.duration, 12.0);
        assert_eq!((record.width, record.height), (640, 360));
        assert_eq!(record.expires - record.created, MANIFEST_RETENTION);
        assert_eq!(
            record.record_url,
            "https://records.oss-cn-shanghai.aliyuncs.com/index/cam.m3u8"
        );
        let info = rendered.response.record_info.as_ref().unwrap();
        assert_eq!(info.start_time, "2026-11-25T10:00:00Z");
        assert_eq!(info.oss_object, "index/cam.m3u8");
        assert_eq!(info.record_id, uuid::Uuid::nil().to_string());
        assert_eq!(rendered.response.clip_mode, "SEGMENT");
        assert_eq!(rendered.response.request_id, "");
    }

    #[test]
    fn renditions_write_their_playlists_then_the_master() {
        let plan = plan(&["_hd", "_sd"]);
        let hd = vec![segment(&plan, "records", "live/cam_hd/0.ts", 0)];
        let sd = vec![segment(&plan, "records", "live/cam_sd/0.ts", 0)];
        let clips = vec![Clip::whole(&hd), Clip::whole(&sd)];
        check_aligned(&clips).unwrap();
        let rendered = render(&plan, &clips, &[None, None], 9, plan.end, &url_of);
        let keys: Vec<&str> = rendered.writes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["index/cam_hd.m3u8", "index/cam_sd.m3u8", "index/cam.m3u8"]
        );
        let master = &rendered.writes[2].1;
        assert!(master.contains("\ncam_hd.m3u8\n"), "{master}");
        assert!(master.contains("\ncam_sd.m3u8\n"), "{master}");
        assert!(master.contains("BANDWIDTH=1000000"), "{master}");
        assert_eq!(rendered.record.segment_count, 2);
        assert_eq!(rendered.record.oss_object, "index/cam.m3u8");
    }

    #[test]
    fn renditions_cut_apart_are_refused() {
        let plan = plan(&["_hd", "_sd"]);
        let hd = vec![segment(&plan, "records", "hd/0.ts", 0)];
        let sd = vec![segment(&plan, "records", "sd/0.ts", 3)];
        let err = check_aligned(&[Clip::whole(&hd), Clip::whole(&sd)]).unwrap_err();
        assert_eq!(err.code(), "OperationNotSupport");
    }
}
