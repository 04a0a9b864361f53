//! SRS's `on_hls` callback: the JSON SRS posts after each TS it writes, and
//! the segment it describes. Pure: no I/O, the arrival time is an input.

use serde::Deserialize;

use crate::error::{quote, shorten};
use crate::manifest::{MICROS_PER_SECOND, Micros};

/// The fields of SRS's `on_hls` body this service uses; SRS sends more.
#[derive(Debug, Clone, Deserialize)]
pub struct OnHls {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub vhost: String,
    pub app: String,
    pub stream: String,
    /// Seconds of media in the segment.
    pub duration: f64,
    /// Where SRS wrote the segment on its disk.
    #[serde(default)]
    pub file: String,
    /// The segment's path relative to SRS's HLS root: `live/stream/123.ts`.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub seq_no: i64,
}

/// What the callback says of one segment, ready to register.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSegment {
    pub app: String,
    pub stream: String,
    /// Object key: the configured prefix and SRS's relative URL.
    pub object: String,
    pub start: Micros,
    pub duration: f64,
    pub sequence: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnHlsError {
    #[error("not JSON of an on_hls callback: {0}")]
    Json(String),
    #[error("action {} is not on_hls", quote(.0))]
    Action(String),
    #[error("{0}")]
    Field(&'static str),
}

/// A Unix time in the file name (SRS's `[timestamp]` gives milliseconds),
/// if it lies within a day of `arrival`: a clock in the name is the
/// recorder's own, better than the arrival time of the callback.
fn time_in_name(file: &str, arrival: Micros) -> Option<Micros> {
    let name = file.rsplit('/').next()?;
    let stem = name.split('.').next()?;
    let plausible = |t: Micros| (t - arrival).abs() <= 86_400 * MICROS_PER_SECOND;
    stem.split(|c: char| !c.is_ascii_digit())
        .filter_map(|digits| match digits.len() {
            13 => digits.parse::<i64>().ok().map(|ms| ms * 1000),
            10 => digits.parse::<i64>().ok().map(|s| s * MICROS_PER_SECOND),
            _ => None,
        })
        .find(|t| plausible(*t))
}

/// Longest part of serde's words on a body the answer repeats.
const MAX_JSON_ERROR: usize = 160;

/// serde quotes a value of the wrong type whole (`invalid type: string
/// "…"`), and a callback body may be 64 KiB: its words are cut, the
/// position kept.
fn json_error(err: serde_json::Error) -> OnHlsError {
    let text = err.to_string();
    let Some((words, _)) = text.rsplit_once(" at line ") else {
        return OnHlsError::Json(shorten(&text, MAX_JSON_ERROR).into_owned());
    };
    OnHlsError::Json(format!(
        "{} at line {} column {}",
        shorten(words, MAX_JSON_ERROR),
        err.line(),
        err.column()
    ))
}

/// Reads a callback body: the segment started `duration` before the
/// callback arrived, unless its file name carries its start time.
pub fn parse(body: &[u8], arrival: Micros, key_prefix: &str) -> Result<HlsSegment, OnHlsError> {
    let hook: OnHls = serde_json::from_slice(body).map_err(json_error)?;
    if !hook.action.is_empty() && hook.action != "on_hls" {
        return Err(OnHlsError::Action(hook.action));
    }
    if !(hook.duration > 0.0 && hook.duration.is_finite()) {
        return Err(OnHlsError::Field(
            "duration must be a positive number of seconds",
        ));
    }
    let relative = if hook.url.is_empty() {
        hook.file.trim_start_matches("./")
    } else {
        hook.url.as_str()
    };
    let relative = relative.trim_start_matches('/');
    if relative.is_empty() {
        return Err(OnHlsError::Field("url or file must name the segment"));
    }
    let duration_micros = (hook.duration * MICROS_PER_SECOND as f64).round() as Micros;
    let named = if hook.file.is_empty() {
        &hook.url
    } else {
        &hook.file
    };
    let start = time_in_name(named, arrival).unwrap_or(arrival - duration_micros);
    Ok(HlsSegment {
        app: hook.app,
        stream: hook.stream,
        object: format!("{key_prefix}{relative}"),
        start,
        duration: hook.duration,
        sequence: hook.seq_no.max(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARRIVAL: Micros = 1_795_089_600_000_000;

    fn body(file: &str) -> String {
        format!(
            r#"{{"server_id":"vid-1","action":"on_hls","client_id":"3","ip":"127.0.0.1","vhost":"__defaultVhost__",
               "app":"live","stream":"livestream","param":"","duration":9.92,"cwd":"/usr/local/srs",
               "file":"{file}","url":"live/livestream/2015-04-23/01/476584165.ts",
               "m3u8":"./objs/nginx/html/live/livestream/live.m3u8","m3u8_url":"live/livestream/live.m3u8",
               "seq_no":100,"stream_url":"/live/livestream","stream_id":"vid-2"}}"#
        )
    }

    #[test]
    fn start_is_arrival_minus_duration() {
        let hook = body("./objs/nginx/html/live/livestream/2015-04-23/01/476584165.ts");
        let segment = parse(hook.as_bytes(), ARRIVAL, "srs/").unwrap();
        assert_eq!(
            segment.object,
            "srs/live/livestream/2015-04-23/01/476584165.ts"
        );
        assert_eq!(segment.start, ARRIVAL - 9_920_000);
        assert_eq!(
            (
                segment.app.as_str(),
                segment.stream.as_str(),
                segment.sequence
            ),
            ("live", "livestream", 100)
        );
    }

    #[test]
    fn a_timestamp_in_the_file_name_is_the_start() {
        let ms = ARRIVAL / 1000 - 12_345;
        let hook = body(&format!("./objs/nginx/html/live/livestream/{ms}.ts"));
        assert_eq!(
            parse(hook.as_bytes(), ARRIVAL, "").unwrap().start,
            ms * 1000
        );
        // A number that is not a plausible time is ignored.
        let hook = body("./objs/nginx/html/live/livestream/1234567890123.ts");
        assert_eq!(
            parse(hook.as_bytes(), ARRIVAL, "").unwrap().start,
            ARRIVAL - 9_920_000
        );
    }

    #[test]
    fn bad_callbacks_are_errors() {
        assert!(matches!(
            parse(b"not json", ARRIVAL, ""),
            Err(OnHlsError::Json(_))
        ));
        let publish = r#"{"action":"on_publish","app":"a","stream":"s","duration":1}"#;
        assert!(matches!(
            parse(publish.as_bytes(), ARRIVAL, ""),
            Err(OnHlsError::Action(_))
        ));
        let zero = r#"{"action":"on_hls","app":"a","stream":"s","duration":0,"url":"a.ts"}"#;
        assert!(matches!(
            parse(zero.as_bytes(), ARRIVAL, ""),
            Err(OnHlsError::Field(_))
        ));
        let nameless = r#"{"action":"on_hls","app":"a","stream":"s","duration":2}"#;
        assert!(matches!(
            parse(nameless.as_bytes(), ARRIVAL, ""),
            Err(OnHlsError::Field(_))
        ));
    }

    #[test]
    fn errors_about_long_values_stay_short() {
        let long = "9".repeat(60_000);
        let wrong_type = format!(r#"{{"app":"a","stream":"s","duration":"{long}"}}"#);
        let err = parse(wrong_type.as_bytes(), ARRIVAL, "").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("not JSON of an on_hls callback: invalid type: string"));
        assert!(text.ends_with(" at line 1 column 60037"), "{text}");
        assert!(text.len() < 300, "{text}");
        let action = format!(r#"{{"action":"{long}","app":"a","stream":"s","duration":1}}"#);
        let text = parse(action.as_bytes(), ARRIVAL, "")
            .unwrap_err()
            .to_string();
        assert!(text.ends_with("…\" (60000 bytes) is not on_hls"), "{text}");
        assert!(text.len() < 200, "{text}");
    }
}
