//! The documented rules written a second time, independently of the code
//! under test, so a fuzz target can compare each answer with the rule it
//! claims to implement. Each function cites the rule it restates (the
//! README's error table, the proto comments, the module docs). Shared by
//! the targets with `#[path = "oracle/mod.rs"] mod oracle;`; not every
//! target uses every rule.

#![allow(dead_code)]

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use record_index::manifest::Micros;
use record_index::manifest::time::{MAX_TIME, MIN_TIME};

pub const SECOND: Micros = 1_000_000;
pub const DAY: Micros = 86_400 * SECOND;

/// Splits an input on the byte 0xFF, which never occurs in UTF-8, so every
/// string a field can hold is reachable. Each field is decoded lossily:
/// gRPC strings are UTF-8, and U+FFFD is a fine thing to feed the checks.
pub fn fields(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// A time field of a fuzz input: a request or segment time string
/// (`2026-11-25T10:00:00.5Z`), else decimal microseconds since the epoch
/// (any i64), else `None`.
pub fn instant_field(text: &str) -> Option<Micros> {
    request_or_segment_time(text, true).or_else(|| text.parse::<i64>().ok())
}

/// `yyyy-MM-ddTHH:mm:ssZ` (README: "times are UTC strings
/// yyyy-MM-ddTHH:mm:ssZ"), and with `fraction` also 1 to 9 fractional
/// digits before the `Z`, truncated to microseconds ("segment start times
/// may carry fractional seconds"). The calendar is chrono's.
pub fn request_or_segment_time(text: &str, fraction: bool) -> Option<Micros> {
    let b = text.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits_at = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[range];
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let year = digits_at(0..4)?;
    let month = digits_at(5..7)?;
    let day = digits_at(8..10)?;
    let hour = digits_at(11..13)?;
    let minute = digits_at(14..16)?;
    let second = digits_at(17..19)?;
    let rest = &text[19..text.len() - 1];
    let micros = if rest.is_empty() {
        0
    } else if fraction {
        let digits = rest.strip_prefix('.')?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|d| d.is_ascii_digit()) {
            return None;
        }
        let padded = format!("{digits:0<9}");
        padded[..6].parse::<i64>().ok()?
    } else {
        return None;
    };
    let when = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_opt(hour, minute, second)?
        .and_utc();
    Some(when.timestamp() * SECOND + micros)
}

/// The UTC calendar fields of an instant, clamped to years 0000 to 9999 as
/// `time::civil` documents: (year, month, day, hour, minute, second, micros).
pub fn calendar(t: Micros) -> (i32, u32, u32, u32, u32, u32, u32) {
    let t = t.clamp(MIN_TIME, MAX_TIME);
    let when = DateTime::from_timestamp_micros(t).expect("clamped instants are in chrono's range");
    (
        when.year(),
        when.month(),
        when.day(),
        when.hour(),
        when.minute(),
        when.second(),
        (t.rem_euclid(SECOND)) as u32,
    )
}

/// RFC 1123 host name as README row 1 and `names::is_host_name` document:
/// labels of 1 to 63 characters of [A-Za-z0-9-], not starting or ending
/// with '-', joined by single dots, at most 253 characters.
pub fn host_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').all(|label| {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
        (1..=63).contains(&label.len())
            && label.chars().all(ok_char)
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

/// OssEndpoint: a host name, optionally `:port` with the port 1 to 65535
/// written without a leading zero.
pub fn endpoint(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [host] => host_name(host),
        [host, port] => {
            host_name(host)
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && !port.starts_with('0')
                && port.len() <= 5
                && port.parse::<u32>().map_or(false, |p| (1..=65_535).contains(&p))
        }
        _ => false,
    }
}

/// OssBucket: 3 to 63 characters of [a-z0-9-], first and last a letter or
/// digit.
pub fn bucket(s: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let n = s.chars().count();
    (3..=63).contains(&n)
        && s.len() == n
        && s.chars().all(|c| edge(c) || c == '-')
        && s.chars().next().is_some_and(edge)
        && s.chars().last().is_some_and(edge)
}

/// AppName and StreamName: 1 to 255 characters of [A-Za-z0-9._-].
pub fn path_name(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// DomainName, AppName and StreamName together: README row 1.
pub fn stream_names(domain: &str, app: &str, stream: &str) -> bool {
    !domain.is_empty() && domain.len() <= 255 && host_name(domain) && path_name(app) && path_name(stream)
}

/// An expanded object key (README row 3, proto comment of OssObject): 1 to
/// 1023 bytes, no leading '/', no '\', no empty, '.' or '..' path segment,
/// no control character (Unicode category Cc: C0, DEL and C1).
pub fn object_key(key: &str) -> bool {
    let control = |c: char| c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c);
    (1..=1023).contains(&key.len())
        && !key.starts_with('/')
        && !key.contains('\\')
        && !key.chars().any(control)
        && key.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// The playlist key Create writes: an object key that ends in `.m3u8`.
pub fn playlist_key(key: &str) -> bool {
    object_key(key) && key.ends_with(".m3u8")
}

/// What `range::check_window` and `check_range` must answer, by README
/// row 4 and the proto comments of StartTime and EndTime: `Some(true)` for
/// InvalidStartTime.Mismatch, `Some(false)` for InvalidEndTime.Mismatch,
/// `None` when the range passes. `shortest` is the least length a range may
/// have (`None` for no such rule, as in listings).
pub fn window(
    start: Micros,
    end: Micros,
    now: Micros,
    max_age: Micros,
    shortest: Option<Micros>,
) -> Option<bool> {
    let (start, end, now) = (i128::from(start), i128::from(end), i128::from(now));
    if start > now || now - start > i128::from(max_age) {
        return Some(true);
    }
    let length = end - start;
    if length <= 0 || length > i128::from(4 * DAY) {
        return Some(false);
    }
    if shortest.is_some_and(|s| length < i128::from(s)) {
        return Some(false);
    }
    None
}
