//! Whether a requested time range can be indexed at all (rule 4 of the
//! design's validation list), before the catalog is read.

use super::time::format_request_time;
use super::{MICROS_PER_DAY, MICROS_PER_SECOND, Micros};
use crate::error::{ApiError, ApiResult};

/// Longest range one manifest may cover.
pub const MAX_RANGE: Micros = 4 * MICROS_PER_DAY;
/// How long segment records are kept after the segment's start; an older
/// StartTime could only ever select nothing.
pub const SEGMENT_RETENTION: Micros = 90 * MICROS_PER_DAY;
/// How long manifest records are kept after their creation.
pub const MANIFEST_RETENTION: Micros = 180 * MICROS_PER_DAY;
/// Segment length assumed for a stream whose segments are not known.
pub const DEFAULT_SEGMENT_DURATION: Micros = 30 * MICROS_PER_SECOND;

/// Checks StartTime and EndTime against the clock and each other.
/// `longest_segment` is the stream's longest registered segment: a range
/// shorter than one segment could only select a fragment of one.
pub fn check_range(
    start: Micros,
    end: Micros,
    now: Micros,
    longest_segment: Option<Micros>,
) -> ApiResult<()> {
    check_window(start, end, now, SEGMENT_RETENTION)?;
    let length = i128::from(end) - i128::from(start);
    let segment = longest_segment.unwrap_or(DEFAULT_SEGMENT_DURATION);
    if length < i128::from(segment) {
        return Err(ApiError::EndTimeMismatch(format!(
            "EndTime is {} after StartTime, less than one segment of the stream ({})",
            seconds(length),
            seconds(segment.into())
        )));
    }
    Ok(())
}

/// A duration as seconds with no trailing zeros (`345601 s`, `6.006 s`),
/// plus whole days when it has some, so limits read as they are stated.
fn seconds(d: i128) -> String {
    let micros_per_second = i128::from(MICROS_PER_SECOND);
    let sign = if d < 0 { "-" } else { "" };
    let d = d.abs();
    let whole = d / micros_per_second;
    let fraction = d % micros_per_second;
    let mut text = if fraction == 0 {
        format!("{sign}{whole} s")
    } else {
        let digits = format!("{fraction:06}");
        format!("{sign}{whole}.{} s", digits.trim_end_matches('0'))
    };
    let day = i128::from(MICROS_PER_DAY);
    if d >= day && d % day == 0 {
        let days = d / day;
        let unit = if days == 1 { "day" } else { "days" };
        text.push_str(&format!(" ({days} {unit})"));
    }
    text
}

/// The time rules shared by every ranged request: StartTime not in the
/// future and at most `max_age` old; EndTime after StartTime by at most
/// four days. Listings use the 180 days manifests are kept.
pub fn check_window(start: Micros, end: Micros, now: Micros, max_age: Micros) -> ApiResult<()> {
    if start > now {
        return Err(ApiError::StartTimeMismatch(format!(
            "StartTime is in the future: {} is after the current time {}",
            format_request_time(start),
            format_request_time(now)
        )));
    }
    // i128 keeps the arithmetic exact for any pair of i64 instants.
    let age = i128::from(now) - i128::from(start);
    if age > i128::from(max_age) {
        return Err(ApiError::StartTimeMismatch(format!(
            "StartTime {} is {} old; records are kept for {}, so it may be at most that old",
            format_request_time(start),
            seconds(age),
            seconds(max_age.into())
        )));
    }
    if end <= start {
        return Err(ApiError::EndTimeMismatch(format!(
            "EndTime {} must be after StartTime {}",
            format_request_time(end),
            format_request_time(start)
        )));
    }
    let length = i128::from(end) - i128::from(start);
    if length > i128::from(MAX_RANGE) {
        return Err(ApiError::EndTimeMismatch(format!(
            "EndTime is {} after StartTime; a range covers at most {}",
            seconds(length),
            seconds(MAX_RANGE.into())
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::time::parse_request_time;

    const SECOND: Micros = MICROS_PER_SECOND;

    fn now() -> Micros {
        parse_request_time("2026-11-25T10:00:00Z").unwrap()
    }

    fn start_mismatch(result: ApiResult<()>) -> String {
        match result {
            Err(ApiError::StartTimeMismatch(message)) => message,
            other => panic!("expected StartTimeMismatch, got {other:?}"),
        }
    }

    fn end_mismatch(result: ApiResult<()>) -> String {
        match result {
            Err(ApiError::EndTimeMismatch(message)) => message,
            other => panic!("expected EndTimeMismatch, got {other:?}"),
        }
    }

    #[test]
    fn constants() {
        assert_eq!(MAX_RANGE, 345_600 * SECOND);
        assert_eq!(SEGMENT_RETENTION, 7_776_000 * SECOND);
        assert_eq!(MANIFEST_RETENTION, 15_552_000 * SECOND);
        assert_eq!(DEFAULT_SEGMENT_DURATION, 30_000_000);
    }

    #[test]
    fn an_ordinary_range_passes() {
        let start = now() - 3600 * SECOND;
        assert_eq!(
            check_range(start, start + 600 * SECOND, now(), None),
            Ok(())
        );
        // The range may reach past now: recording may still be going on.
        assert_eq!(
            check_range(start, now() + MICROS_PER_DAY, now(), None),
            Ok(())
        );
    }

    #[test]
    fn start_in_the_future() {
        let message = start_mismatch(check_range(now() + 1, now() + 60 * SECOND, now(), None));
        assert!(
            message.starts_with("StartTime is in the future"),
            "{message}"
        );
        assert_eq!(check_range(now(), now() + 60 * SECOND, now(), None), Ok(()));
    }

    #[test]
    fn start_retention_boundary() {
        let oldest = now() - SEGMENT_RETENTION;
        assert_eq!(
            check_range(oldest, oldest + 60 * SECOND, now(), None),
            Ok(())
        );
        let message = start_mismatch(check_range(
            oldest - SECOND,
            oldest + 60 * SECOND,
            now(),
            None,
        ));
        assert!(message.contains("7776001 s"), "{message}");
        assert!(message.contains("90 days"), "{message}");
        start_mismatch(check_range(oldest - 1, oldest + 60 * SECOND, now(), None));
    }

    #[test]
    fn end_not_after_start() {
        let start = now() - 3600 * SECOND;
        let message = end_mismatch(check_range(start, start, now(), None));
        assert!(message.contains("must be after StartTime"), "{message}");
        end_mismatch(check_range(start, start - SECOND, now(), None));
    }

    #[test]
    fn four_days_boundary() {
        let start = now() - 10 * MICROS_PER_DAY;
        assert_eq!(check_range(start, start + MAX_RANGE, now(), None), Ok(()));
        let message = end_mismatch(check_range(start, start + MAX_RANGE + SECOND, now(), None));
        assert!(message.contains("345601 s"), "{message}");
        assert!(message.contains("4 days"), "{message}");
        end_mismatch(check_range(start, start + MAX_RANGE + 1, now(), None));
    }

    #[test]
    fn at_least_one_segment() {
        let start = now() - 3600 * SECOND;
        assert_eq!(check_range(start, start + 30 * SECOND, now(), None), Ok(()));
        let message = end_mismatch(check_range(start, start + 30 * SECOND - 1, now(), None));
        assert!(message.contains("29.999999 s"), "{message}");
        assert!(message.contains("(30 s)"), "{message}");

        let six = 6_006_000;
        assert_eq!(check_range(start, start + six, now(), Some(six)), Ok(()));
        let message = end_mismatch(check_range(start, start + 6 * SECOND, now(), Some(six)));
        assert!(message.contains("6.006 s"), "{message}");
        assert_eq!(
            check_range(start, start + 6 * SECOND, now(), Some(2 * SECOND)),
            Ok(())
        );
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        // Future start wins over a bad end.
        start_mismatch(check_range(now() + 1, now(), now(), None));
        // Too old wins over a bad end.
        let old = now() - SEGMENT_RETENTION - 1;
        start_mismatch(check_range(old, old, now(), None));
        // Too long is reported before too short, even with a huge segment.
        let start = now() - MICROS_PER_DAY * 5;
        let message = end_mismatch(check_range(start, now(), now(), Some(10 * MICROS_PER_DAY)));
        assert!(message.contains("at most"), "{message}");
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        start_mismatch(check_range(i64::MIN, 0, i64::MAX, None));
        start_mismatch(check_range(i64::MAX, i64::MAX, i64::MIN, None));
        end_mismatch(check_range(0, i64::MAX, 0, None));
        end_mismatch(check_range(0, i64::MIN, 0, None));
        end_mismatch(check_range(0, 1, 0, Some(i64::MAX)));
        assert_eq!(check_range(0, SECOND, 0, Some(i64::MIN)), Ok(()));
    }

    #[test]
    fn seconds_text() {
        assert_eq!(seconds(0), "0 s");
        assert_eq!(seconds(1), "0.000001 s");
        assert_eq!(seconds(6_500_000), "6.5 s");
        assert_eq!(seconds(MICROS_PER_DAY.into()), "86400 s (1 day)");
        assert_eq!(seconds(-1_500_000), "-1.5 s");
    }
}
