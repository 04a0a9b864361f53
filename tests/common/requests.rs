//! What the tests send: times, segments recorded back to back, and
//! Register and Create requests.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};

use super::media::{MEDIA_HEIGHT, MEDIA_WIDTH, media};

/// `{prefix}-` and 12 hex digits: valid as a bucket, stream or app name.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `yyyy-MM-ddTHH:mm:ssZ`, the format of request times.
pub fn utc_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `yyyy-MM-ddTHH:mm:ss.fffZ`, as a recorder reports segment starts.
pub fn utc_millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn parse_utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not an RFC 3339 time: {e}"))
        .with_timezone(&Utc)
}

/// A recording start a little in the past, in whole seconds: inside the
/// 90-day window, and far enough back that every segment has ended.
pub fn recording_start(ago: Duration) -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::from_std(ago).unwrap()).trunc_subsecs(0)
}

/// Segments `numbers` of `seconds` each, recorded back to back from
/// `start` (segment `i` starts `i * seconds` later) at `{prefix}/NNN.ts`
/// in `bucket` on `endpoint`, 640x360 so nothing needs probing: for tests
/// of the catalog that never read the media.
pub fn plain_segments(
    (endpoint, bucket, prefix): (&str, &str, &str),
    start: DateTime<Utc>,
    numbers: std::ops::Range<i64>,
    seconds: i64,
) -> Vec<Segment> {
    numbers
        .map(|i| Segment {
            oss_endpoint: endpoint.to_string(),
            oss_bucket: bucket.to_string(),
            oss_object: format!("{prefix}/{i:03}.ts"),
            start_time: utc_millis(start + chrono::Duration::seconds(seconds * i)),
            duration: seconds as f64,
            sequence: i,
            width: MEDIA_WIDTH,
            height: MEDIA_HEIGHT,
            format: "ts".into(),
            size: 0,
        })
        .collect()
}

/// The test media registered as one stream recorded back to back from
/// `start`, each segment at `{prefix}/segNNN.ts` in `bucket` on `endpoint`.
pub fn recorded_segments(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    start: DateTime<Utc>,
) -> Vec<Segment> {
    let mut at = start;
    media()
        .segments
        .iter()
        .enumerate()
        .map(|(i, media_segment)| {
            let segment = Segment {
                oss_endpoint: endpoint.to_string(),
                oss_bucket: bucket.to_string(),
                oss_object: format!("{prefix}/{}", media_segment.file_name),
                start_time: utc_millis(at),
                duration: media_segment.duration,
                sequence: i as i64,
                width: MEDIA_WIDTH,
                height: MEDIA_HEIGHT,
                format: "ts".to_string(),
                size: media_segment.bytes.len() as i64,
            };
            at += chrono::Duration::milliseconds((media_segment.duration * 1000.0).round() as i64);
            segment
        })
        .collect()
}

pub fn segment_start(segment: &Segment) -> DateTime<Utc> {
    parse_utc(&segment.start_time)
}

pub fn segment_end(segment: &Segment) -> DateTime<Utc> {
    segment_start(segment)
        + chrono::Duration::milliseconds((segment.duration * 1000.0).round() as i64)
}

fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let whole = t.trunc_subsecs(0);
    if whole == t {
        whole
    } else {
        whole + chrono::Duration::seconds(1)
    }
}

/// Whole-second StartTime and EndTime that select exactly
/// `segments[first..=last]` by the rule StartTime < end <= EndTime.
pub fn range_selecting(segments: &[Segment], first: usize, last: usize) -> (String, String) {
    let start = if first == 0 {
        segment_start(&segments[0]).trunc_subsecs(0) - chrono::Duration::seconds(1)
    } else {
        ceil_to_second(segment_end(&segments[first - 1]))
    };
    assert!(
        start < segment_end(&segments[first]),
        "no whole second separates segments {} and {first}",
        first - 1
    );
    let end = ceil_to_second(segment_end(&segments[last]));
    if let Some(next) = segments.get(last + 1) {
        assert!(
            end < segment_end(next),
            "no whole second separates segments {last} and {}",
            last + 1
        );
    }
    (utc_seconds(start), utc_seconds(end))
}

/// 2026-11-19T12:00:00Z, where the clock of an [`InProcess`] server starts.
///
/// [`InProcess`]: super::InProcess
pub const NOW_SECS: i64 = 1_795_089_600;
/// [`NOW_SECS`] in microseconds, the unit of the server's clock.
pub const NOW: i64 = NOW_SECS * 1_000_000;

/// `yyyy-MM-ddTHH:mm:ssZ`, `offset_secs` after [`NOW_SECS`].
pub fn at(offset_secs: i64) -> String {
    utc_seconds(DateTime::from_timestamp(NOW_SECS + offset_secs, 0).unwrap())
}

/// `yyyy-MM-ddTHH:mm:ss.fffZ`, `offset_ms` after [`NOW_SECS`].
pub fn at_ms(offset_ms: i64) -> String {
    utc_millis(DateTime::from_timestamp_millis(NOW_SECS * 1000 + offset_ms).unwrap())
}

/// A 640x360 segment on the local store starting `start_offset_ms` after
/// [`NOW_SECS`].
pub fn segment_at(bucket: &str, object: &str, start_offset_ms: i64, duration: f64) -> Segment {
    Segment {
        oss_endpoint: "localhost".into(),
        oss_bucket: bucket.into(),
        oss_object: object.into(),
        start_time: at_ms(start_offset_ms),
        duration,
        sequence: 0,
        width: MEDIA_WIDTH,
        height: MEDIA_HEIGHT,
        format: "ts".into(),
        size: 0,
    }
}

/// Six-second segments of `live/{stream}` in `rec-bucket`, back to back:
/// segment i covers [-600 + 6i, -600 + 6(i+1)) seconds from [`NOW_SECS`]
/// and has sequence number i.
pub fn back_to_back(stream: &str, count: usize) -> Vec<Segment> {
    (0..count)
        .map(|i| {
            let mut s = segment_at(
                "rec-bucket",
                &format!("live/{stream}/{i:03}.ts"),
                (-600 + 6 * i as i64) * 1000,
                6.0,
            );
            s.sequence = i as i64;
            s
        })
        .collect()
}

/// A Register of `segments` for `example.com/live/{stream}`.
pub fn register_request(
    stream: &str,
    segments: Vec<Segment>,
) -> RegisterLiveStreamRecordSegmentsRequest {
    RegisterLiveStreamRecordSegmentsRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: stream.into(),
        segments,
        client_token: String::new(),
    }
}

/// A Create for `example.com/live/{stream}` from `start` to `end` seconds
/// after [`NOW_SECS`], its playlist at
/// `{AppName}/{StreamName}/index/{RecordId}.m3u8` in `rec-bucket` on the
/// local store.
pub fn create_request(
    stream: &str,
    start: i64,
    end: i64,
) -> CreateLiveStreamRecordIndexFilesRequest {
    CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: stream.into(),
        oss_endpoint: "localhost".into(),
        oss_bucket: "rec-bucket".into(),
        oss_object: "{AppName}/{StreamName}/index/{RecordId}.m3u8".into(),
        start_time: at(start),
        end_time: at(end),
        end_time_included: false,
        client_token: String::new(),
    }
}

/// `message` sent with the API key `key` as a Bearer token.
pub fn with_key<T>(key: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}
