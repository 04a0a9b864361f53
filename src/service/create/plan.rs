//! The checks of a Create that need no I/O: rules 1 to 3 turn the request
//! into a [`Plan`], and rules 4 to 6 hold it against the streams the
//! catalog knows. Kept pure so the order of the rules is tested without a
//! catalog or an object store.

use uuid::Uuid;

use super::super::window::{ClipMode, Window, registered_streams};
use super::super::{check_required, parse_range};
use crate::catalog::Stream;
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::template::{self, TemplateVars};
use crate::manifest::{Micros, names};
use crate::proto;

/// Most renditions one manifest may index.
const MAX_RENDITIONS: usize = 8;
/// Longest rendition suffix: the key of each media playlist grows by it.
const MAX_SUFFIX_LEN: usize = 32;

/// A Create request once its form is checked: what selection, clipping,
/// rendering and the commit work from.
#[derive(Debug)]
pub(super) struct Plan {
    pub domain_name: String,
    pub app_name: String,
    pub stream_name: String,
    /// Where the playlists are written.
    pub endpoint: String,
    pub bucket: String,
    /// The expanded OssObject: the manifest's playlist, a master playlist
    /// when the request lists renditions.
    pub key: String,
    /// Whether `key` is a master playlist over `media_keys`.
    pub master: bool,
    /// One media playlist key per indexed stream, in `streams` order.
    pub media_keys: Vec<String>,
    /// The streams indexed: the stream itself, or each rendition of the
    /// program (StreamName + suffix).
    pub streams: Vec<String>,
    pub start: Micros,
    pub end: Micros,
    /// StartTime and EndTime as the request wrote them: the answer echoes
    /// them.
    pub start_time: String,
    pub end_time: String,
    pub end_time_included: bool,
    pub clip_mode: ClipMode,
    pub record_id: Uuid,
}

impl Plan {
    /// Rules 1 to 3, in order. `writes_to` says whether the service is
    /// configured for an endpoint; `record_id` is the id `{RecordId}`
    /// expands to.
    pub fn new(
        request: proto::CreateLiveStreamRecordIndexFilesRequest,
        record_id: Uuid,
        writes_to: impl Fn(&str) -> bool,
    ) -> ApiResult<Plan> {
        let clip_mode = check_fields(&request)?;
        let (start, end) = parse_range(&request.start_time, &request.end_time)?;
        check_destination(&request.oss_endpoint, &request.oss_bucket, writes_to)?;
        let key = template::expand_object_key(
            &request.oss_object,
            &TemplateVars {
                domain_name: &request.domain_name,
                app_name: &request.app_name,
                stream_name: &request.stream_name,
                start,
                end,
                record_id: &record_id.to_string(),
            },
        )?;
        let media_keys = media_keys(&key, &request.renditions)?;
        let streams = if request.renditions.is_empty() {
            vec![request.stream_name.clone()]
        } else {
            request
                .renditions
                .iter()
                .map(|suffix| format!("{}{suffix}", request.stream_name))
                .collect()
        };
        Ok(Plan {
            master: !request.renditions.is_empty(),
            domain_name: request.domain_name,
            app_name: request.app_name,
            stream_name: request.stream_name,
            endpoint: request.oss_endpoint,
            bucket: request.oss_bucket,
            key,
            media_keys,
            streams,
            start,
            end,
            start_time: request.start_time,
            end_time: request.end_time,
            end_time_included: request.end_time_included,
            clip_mode,
            record_id,
        })
    }

    /// What selection and clipping work from.
    pub fn window(&self) -> Window {
        Window {
            start: self.start,
            end: self.end,
            end_time_included: self.end_time_included,
            clip_mode: self.clip_mode,
        }
    }

    /// Rules 4 to 6, in order, given what the catalog holds of each of
    /// `self.streams` (found in the same order) and the caller's account:
    /// the streams to select from.
    pub fn admit(
        &self,
        found: Vec<Option<Stream>>,
        now: Micros,
        account: &str,
        owns_bucket: impl Fn(&str) -> bool,
    ) -> ApiResult<Vec<Stream>> {
        self.window().check_range(&found, now)?;
        if !owns_bucket(&self.bucket) {
            return Err(ApiError::BucketNotFound(format!(
                "bucket {} does not belong to account {account}",
                quote(&self.bucket)
            )));
        }
        registered_streams(&self.domain_name, &self.app_name, &self.streams, found)
    }
}

/// Rule 1: required fields, names, ClipMode and Renditions.
fn check_fields(request: &proto::CreateLiveStreamRecordIndexFilesRequest) -> ApiResult<ClipMode> {
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
    let clip_mode = ClipMode::parse(&request.clip_mode)?;
    if request.renditions.len() > MAX_RENDITIONS {
        return Err(ApiError::InvalidParams(format!(
            "Renditions may list at most {MAX_RENDITIONS} suffixes"
        )));
    }
    for suffix in &request.renditions {
        if suffix.is_empty() || suffix.len() > MAX_SUFFIX_LEN {
            return Err(ApiError::InvalidParams(format!(
                "each Renditions suffix must be 1 to {MAX_SUFFIX_LEN} characters"
            )));
        }
        names::check_stream_names(
            &request.domain_name,
            &request.app_name,
            &format!("{}{suffix}", request.stream_name),
        )?;
    }
    Ok(clip_mode)
}

/// Rule 3's endpoint and bucket.
fn check_destination(
    endpoint: &str,
    bucket: &str,
    writes_to: impl Fn(&str) -> bool,
) -> ApiResult<()> {
    if !names::is_endpoint(endpoint) || !writes_to(endpoint) {
        return Err(ApiError::OssEndpointMalformed(format!(
            "OssEndpoint {} is not an endpoint this service writes to",
            quote(endpoint)
        )));
    }
    if !names::is_bucket(bucket) {
        return Err(ApiError::OssBucketMalformed(
            "OssBucket must be 3 to 63 characters of [a-z0-9-], starting and ending with a letter or digit".into(),
        ));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::MICROS_PER_SECOND;
    use crate::manifest::time::parse_request_time;

    const ENDPOINT: &str = "oss-cn-shanghai.aliyuncs.com";

    fn request() -> proto::CreateLiveStreamRecordIndexFilesRequest {
        proto::CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            oss_endpoint: ENDPOINT.into(),
            oss_bucket: "records".into(),
            oss_object: "{AppName}/{StreamName}/{EscapedStartTime}.m3u8".into(),
            start_time: "2026-11-25T10:00:00Z".into(),
            end_time: "2026-11-25T10:10:00Z".into(),
            ..Default::default()
        }
    }

    fn plan(request: proto::CreateLiveStreamRecordIndexFilesRequest) -> ApiResult<Plan> {
        Plan::new(request, Uuid::nil(), |endpoint| endpoint == ENDPOINT)
    }

    fn code(result: ApiResult<impl std::fmt::Debug>) -> &'static str {
        result.unwrap_err().code()
    }

    fn stream(longest_segment: Micros) -> Option<Stream> {
        Some(Stream {
            id: 7,
            longest_segment,
        })
    }

    #[test]
    fn a_valid_request_becomes_a_plan() {
        let plan = plan(request()).unwrap();
        assert_eq!(plan.key, "live/cam/2026-11-25-10-00-00.m3u8");
        assert_eq!(plan.media_keys, vec![plan.key.clone()]);
        assert_eq!(plan.streams, vec!["cam".to_string()]);
        assert!(!plan.master);
        assert_eq!(plan.clip_mode, ClipMode::Segment);
        assert_eq!(
            plan.start,
            parse_request_time("2026-11-25T10:00:00Z").unwrap()
        );
        assert_eq!(plan.end - plan.start, 600 * MICROS_PER_SECOND);
        assert!(!plan.window().takes_segment_at_end());
    }

    #[test]
    fn renditions_name_their_streams_and_playlists() {
        let plan = plan(proto::CreateLiveStreamRecordIndexFilesRequest {
            renditions: vec!["_hd".into(), "_sd".into()],
            clip_mode: "KEYFRAME".into(),
            ..request()
        })
        .unwrap();
        assert!(plan.master);
        assert_eq!(plan.streams, vec!["cam_hd", "cam_sd"]);
        assert_eq!(
            plan.media_keys,
            vec![
                "live/cam/2026-11-25-10-00-00_hd.m3u8",
                "live/cam/2026-11-25-10-00-00_sd.m3u8"
            ]
        );
        assert!(plan.window().takes_segment_at_end());
    }

    #[test]
    fn the_first_broken_rule_names_the_error() {
        let cases = [
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    clip_mode: "FRAME".into(),
                    start_time: "yesterday".into(),
                    ..request()
                },
                "InvalidParams",
            ),
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    end_time: "2026-11-25 10:10:00".into(),
                    oss_bucket: "No_Such_Bucket".into(),
                    ..request()
                },
                "InvalidEndTime.Malformed",
            ),
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    start_time: "2026-11-25T10:00:00.5Z".into(),
                    end_time: "later".into(),
                    ..request()
                },
                "InvalidStartTime.Malformed",
            ),
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    oss_endpoint: "other.example.com".into(),
                    oss_bucket: "x".into(),
                    ..request()
                },
                "InvalidOssEndpoint.Malformed",
            ),
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    oss_bucket: "-records".into(),
                    oss_object: "{Nope}.m3u8".into(),
                    ..request()
                },
                "InvalidOssBucket.Malformed",
            ),
            (
                proto::CreateLiveStreamRecordIndexFilesRequest {
                    oss_object: "{Nope}.m3u8".into(),
                    ..request()
                },
                "InvalidOssObject.Malformed",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(code(plan(request)), expected);
        }
    }

    #[test]
    fn a_rendition_key_too_long_is_a_malformed_object() {
        let key = format!("{}.m3u8", "k".repeat(1015));
        assert_eq!(media_keys(&key, &[]).unwrap(), vec![key.clone()]);
        let long_suffix = format!("_{}", "r".repeat(31));
        let err = media_keys(&key, &["_a".into(), long_suffix.clone()]).unwrap_err();
        assert_eq!(err.code(), "InvalidOssObject.Malformed");
        assert!(err.to_string().contains(&long_suffix), "{err}");
    }

    #[test]
    fn streams_are_admitted_range_then_bucket_then_stream() {
        let plan = plan(request()).unwrap();
        let now = plan.end + MICROS_PER_SECOND;
        let owned = |_: &str| true;
        let foreign = |_: &str| false;
        // A segment longer than the range: EndTime is less than one segment
        // after StartTime, whatever else is wrong.
        let long = 3600 * MICROS_PER_SECOND;
        assert_eq!(
            code(plan.admit(vec![stream(long)], now, "1", foreign)),
            "InvalidEndTime.Mismatch"
        );
        assert_eq!(
            code(plan.admit(vec![None], plan.start - 1, "1", foreign)),
            "InvalidStartTime.Mismatch"
        );
        assert_eq!(
            code(plan.admit(vec![None], now, "1", foreign)),
            "InvalidBucket.NotFound"
        );
        assert_eq!(
            code(plan.admit(vec![None], now, "1", owned)),
            "InvalidStream.NotFound"
        );
        let admitted = plan.admit(vec![stream(6 * MICROS_PER_SECOND)], now, "1", owned);
        assert_eq!(admitted.unwrap()[0].id, 7);
    }

    #[test]
    fn a_keyframe_clip_may_be_shorter_than_a_segment() {
        let plan = plan(proto::CreateLiveStreamRecordIndexFilesRequest {
            clip_mode: "KEYFRAME".into(),
            ..request()
        })
        .unwrap();
        let long = 3600 * MICROS_PER_SECOND;
        let admitted = plan.admit(vec![stream(long)], plan.end, "1", |_| true);
        assert!(admitted.is_ok());
    }
}
