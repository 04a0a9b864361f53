//! The pure checks of a CreateLiveStreamRecordIndexFiles request, on
//! arbitrary fields: names (`manifest::names`), time strings
//! (`manifest::time`), the OssObject template (`manifest::template`) and the
//! range rule (`manifest::range`). None panics; each answers only its own
//! codes, and exactly when the documented rule says so (the rules are
//! restated in `oracle`); and the checks run in the order of
//! `service::create` answer with the code of the first rule of the README's
//! error table (rows 1 to 4) that the request breaks.
//!
//! `service::create` keeps the sequence itself private and mixes it with
//! the catalog and the configured endpoints, so the sequence is replayed
//! here from the public functions in the same order, with a fixed set of
//! configured endpoints and the stream's longest segment given by the input.
//!
//! Input: fields separated by the byte 0xFF (never part of UTF-8):
//! DomainName, AppName, StreamName, OssEndpoint, OssBucket, OssObject,
//! StartTime, EndTime, ClipMode, Renditions (suffixes separated by 0xFE),
//! now (a request time, or seconds after StartTime; empty: one hour after),
//! the stream's longest segment in microseconds (empty: unknown stream).
//! Missing fields are empty.

#![no_main]

#[path = "oracle/mod.rs"]
mod oracle;

use libfuzzer_sys::fuzz_target;
use oracle::{DAY, SECOND};
use record_index::error::ApiError;
use record_index::manifest::Micros;
use record_index::manifest::names::{check_object_key, check_stream_names, is_bucket, is_endpoint};
use record_index::manifest::range::{
    DEFAULT_SEGMENT_DURATION, MANIFEST_RETENTION, SEGMENT_RETENTION, check_range, check_window,
};
use record_index::manifest::template::{TemplateVars, expand_object_key};
use record_index::manifest::time::parse_request_time;

/// The endpoints the simulated service is configured with.
const CONFIGURED: [&str; 3] = ["localhost", "127.0.0.1:8333", "oss-cn-shanghai.aliyuncs.com"];
const MAX_RENDITIONS: usize = 8;
const RECORD_ID: &str = "C3B9F5E2-0D4A-4B8E-9F1C-2A7D6E5B4C3A";

/// The codes of the README's Create table, rows 1 to 4, with their row.
fn row(code: &str) -> u8 {
    match code {
        "InvalidParams" => 1,
        "InvalidStartTime.Malformed" | "InvalidEndTime.Malformed" => 2,
        "InvalidOssEndpoint.Malformed"
        | "InvalidOssBucket.Malformed"
        | "InvalidOssObject.Malformed" => 3,
        "InvalidStartTime.Mismatch" | "InvalidEndTime.Mismatch" => 4,
        other => panic!("{other} is not a code of Create's pure checks"),
    }
}

struct Request {
    domain: String,
    app: String,
    stream: String,
    endpoint: String,
    bucket: String,
    object: String,
    start_time: String,
    end_time: String,
    clip_mode: String,
    renditions: Vec<String>,
    now: String,
    longest: Option<Micros>,
}

fn now_for(field: &str, start: Micros) -> Micros {
    if let Some(t) = parse_request_time(field) {
        t
    } else if let Ok(seconds) = field.parse::<i64>() {
        start.saturating_add(seconds.saturating_mul(SECOND))
    } else {
        start.saturating_add(3600 * SECOND)
    }
}

/// What the stream's longest segment makes the least range length: a
/// KEYFRAME clip may be shorter than a segment; an unknown stream (or one
/// whose segments have no length) assumes 30 s.
fn shortest(r: &Request) -> Micros {
    if r.clip_mode == "KEYFRAME" {
        1
    } else {
        r.longest.filter(|d| *d > 0).unwrap_or(30 * SECOND)
    }
}

/// Create's pure checks as `service::create` runs them, through the
/// service's own functions.
fn actual(r: &Request) -> Result<(), ApiError> {
    for (field, value) in [
        ("OssEndpoint", &r.endpoint),
        ("OssBucket", &r.bucket),
        ("OssObject", &r.object),
        ("StartTime", &r.start_time),
        ("EndTime", &r.end_time),
    ] {
        if value.is_empty() {
            return Err(ApiError::InvalidParams(format!("{field} is required")));
        }
    }
    check_stream_names(&r.domain, &r.app, &r.stream)?;
    if !matches!(r.clip_mode.as_str(), "" | "SEGMENT" | "KEYFRAME") {
        return Err(ApiError::InvalidParams("ClipMode".into()));
    }
    if r.renditions.len() > MAX_RENDITIONS {
        return Err(ApiError::InvalidParams("Renditions".into()));
    }
    for suffix in &r.renditions {
        if suffix.is_empty() || suffix.len() > 32 {
            return Err(ApiError::InvalidParams("Renditions".into()));
        }
        check_stream_names(&r.domain, &r.app, &format!("{}{suffix}", r.stream))?;
    }
    let start = parse_request_time(&r.start_time)
        .ok_or_else(|| ApiError::StartTimeMalformed(String::new()))?;
    let end =
        parse_request_time(&r.end_time).ok_or_else(|| ApiError::EndTimeMalformed(String::new()))?;
    if !is_endpoint(&r.endpoint) || !CONFIGURED.contains(&r.endpoint.as_str()) {
        return Err(ApiError::OssEndpointMalformed(String::new()));
    }
    if !is_bucket(&r.bucket) {
        return Err(ApiError::OssBucketMalformed(String::new()));
    }
    let vars = TemplateVars {
        domain_name: &r.domain,
        app_name: &r.app,
        stream_name: &r.stream,
        start,
        end,
        record_id: RECORD_ID,
    };
    let key = expand_object_key(&r.object, &vars)?;
    assert!(oracle::playlist_key(&key), "{key:?}");
    let longest = (r.clip_mode == "KEYFRAME")
        .then_some(1)
        .or(r.longest.filter(|d| *d > 0));
    check_range(start, end, now_for(&r.now, start), longest)
}

/// The code the README's table gives the request, from the restated rules.
/// Only the template's own verdict is taken from the service: the template
/// target checks it against a second expander.
fn expected(r: &Request) -> Option<&'static str> {
    let required = [&r.endpoint, &r.bucket, &r.object, &r.start_time, &r.end_time];
    if required.iter().any(|v| v.is_empty())
        || !oracle::stream_names(&r.domain, &r.app, &r.stream)
        || !matches!(r.clip_mode.as_str(), "" | "SEGMENT" | "KEYFRAME")
        || r.renditions.len() > MAX_RENDITIONS
        || r.renditions.iter().any(|suffix| {
            !(1..=32).contains(&suffix.len())
                || !oracle::stream_names(&r.domain, &r.app, &format!("{}{suffix}", r.stream))
        })
    {
        return Some("InvalidParams");
    }
    let Some(start) = oracle::request_or_segment_time(&r.start_time, false) else {
        return Some("InvalidStartTime.Malformed");
    };
    let Some(end) = oracle::request_or_segment_time(&r.end_time, false) else {
        return Some("InvalidEndTime.Malformed");
    };
    if !oracle::endpoint(&r.endpoint) || !CONFIGURED.contains(&r.endpoint.as_str()) {
        return Some("InvalidOssEndpoint.Malformed");
    }
    if !oracle::bucket(&r.bucket) {
        return Some("InvalidOssBucket.Malformed");
    }
    let vars = TemplateVars {
        domain_name: &r.domain,
        app_name: &r.app,
        stream_name: &r.stream,
        start,
        end,
        record_id: RECORD_ID,
    };
    if expand_object_key(&r.object, &vars).is_err() {
        return Some("InvalidOssObject.Malformed");
    }
    let now = now_for(&r.now, start);
    match oracle::window(start, end, now, 90 * DAY, Some(shortest(r))) {
        Some(true) => Some("InvalidStartTime.Mismatch"),
        Some(false) => Some("InvalidEndTime.Mismatch"),
        None => None,
    }
}

/// Each public check on its own, against its restated rule.
fn check_each(r: &Request) {
    match check_stream_names(&r.domain, &r.app, &r.stream) {
        Ok(()) => assert!(oracle::stream_names(&r.domain, &r.app, &r.stream)),
        Err(ApiError::InvalidParams(_)) => {
            assert!(!oracle::stream_names(&r.domain, &r.app, &r.stream))
        }
        Err(other) => panic!("check_stream_names: {other:?}"),
    }
    assert_eq!(is_endpoint(&r.endpoint), oracle::endpoint(&r.endpoint), "{:?}", r.endpoint);
    assert_eq!(is_bucket(&r.bucket), oracle::bucket(&r.bucket), "{:?}", r.bucket);
    // Register checks segment keys with the same rule, unexpanded.
    assert_eq!(
        check_object_key(&r.object).is_ok(),
        oracle::object_key(&r.object),
        "{:?}",
        r.object
    );

    // The range rule on any pair of instants, not only well-formed ones.
    let (Some(start), Some(end)) = (
        oracle::instant_field(&r.start_time),
        oracle::instant_field(&r.end_time),
    ) else {
        return;
    };
    let now = now_for(&r.now, start);
    let verdict = |result: Result<(), ApiError>| match result {
        Ok(()) => None,
        Err(ApiError::StartTimeMismatch(_)) => Some(true),
        Err(ApiError::EndTimeMismatch(_)) => Some(false),
        Err(other) => panic!("range check answered {other:?}"),
    };
    let segment = r.longest.unwrap_or(DEFAULT_SEGMENT_DURATION);
    assert_eq!(
        verdict(check_range(start, end, now, r.longest)),
        oracle::window(start, end, now, SEGMENT_RETENTION, Some(segment)),
        "check_range({start}, {end}, {now}, {:?})",
        r.longest
    );
    assert_eq!(
        verdict(check_window(start, end, now, MANIFEST_RETENTION)),
        oracle::window(start, end, now, MANIFEST_RETENTION, None),
        "check_window({start}, {end}, {now})"
    );
}

fuzz_target!(|data: &[u8]| {
    let raw: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let text = |i: usize| {
        raw.get(i)
            .map_or_else(String::new, |f| String::from_utf8_lossy(f).into_owned())
    };
    let renditions = match raw.get(9) {
        None | Some([]) => Vec::new(),
        Some(field) => field
            .split(|&b| b == 0xFE)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    };
    let request = Request {
        domain: text(0),
        app: text(1),
        stream: text(2),
        endpoint: text(3),
        bucket: text(4),
        object: text(5),
        start_time: text(6),
        end_time: text(7),
        clip_mode: text(8),
        renditions,
        now: text(10),
        longest: text(11).parse().ok(),
    };

    check_each(&request);
    let got = actual(&request).err();
    let got_code = got.as_ref().map(ApiError::code);
    if let Some(code) = got_code {
        row(code);
    }
    assert_eq!(got_code, expected(&request), "{got:?}");
});
