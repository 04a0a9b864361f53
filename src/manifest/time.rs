//! The API's UTC time strings and their conversion to [`Micros`].
//!
//! Parsing is done by hand on bytes rather than through chrono's format
//! strings: the accepted shape is narrower than any chrono format (exactly
//! 20 characters, uppercase `T` and `Z`, no offsets), and the playlist
//! writer formats one PROGRAM-DATE-TIME per discontinuity, so formatting
//! must not allocate or go through `fmt` machinery.

use super::{MICROS_PER_DAY, MICROS_PER_SECOND, Micros};

/// A UTC instant split into calendar fields, for templates and formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// 0 to 9999: the range the four-digit wire format can carry.
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Sub-second part, 0 to 999,999.
    pub micros: u32,
}

/// 0000-01-01T00:00:00Z, the earliest instant the wire format can express.
pub const MIN_TIME: Micros = days_from_civil(0, 1, 1) * MICROS_PER_DAY;
/// 9999-12-31T23:59:59.999999Z, the latest instant the wire format can express.
pub const MAX_TIME: Micros = (days_from_civil(9999, 12, 31) + 1) * MICROS_PER_DAY - 1;

/// Parses a request time: exactly `yyyy-MM-ddTHH:mm:ssZ`.
pub fn parse_request_time(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() != 20 || b[19] != b'Z' {
        return None;
    }
    parse_seconds(&b[..19]).map(|secs| secs * MICROS_PER_SECOND)
}

/// Parses a segment start time: a request time that may also carry 1 to 9
/// fractional digits before the `Z`. Digits beyond microseconds are
/// truncated, as recorders report more precision than the catalog keeps.
pub fn parse_segment_time(s: &str) -> Option<Micros> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let secs = parse_seconds(&b[..19])?;
    let fraction = &b[19..b.len() - 1];
    let micros = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let mut micros = 0;
            for i in 0..6 {
                let digit = match digits.get(i) {
                    Some(&d) if d.is_ascii_digit() => i64::from(d - b'0'),
                    Some(_) => return None,
                    None => 0,
                };
                micros = micros * 10 + digit;
            }
            if !digits.iter().skip(6).all(u8::is_ascii_digit) {
                return None;
            }
            micros
        }
        _ => return None,
    };
    Some(secs * MICROS_PER_SECOND + micros)
}

/// Formats `yyyy-MM-ddTHH:mm:ssZ`, flooring to the second. Instants outside
/// years 0000 to 9999 are clamped so the result always parses back.
pub fn format_request_time(t: Micros) -> String {
    let mut out = String::with_capacity(20);
    write_seconds(&mut out, &civil(t));
    out.push('Z');
    out
}

/// Formats `yyyy-MM-ddTHH:mm:ss.SSSZ` (milliseconds, floored), the form of
/// `#EXT-X-PROGRAM-DATE-TIME`.
pub fn format_program_date_time(t: Micros) -> String {
    let mut out = String::with_capacity(24);
    write_program_date_time(&mut out, t);
    out
}

/// Appends what [`format_program_date_time`] returns, without allocating.
pub fn write_program_date_time(out: &mut String, t: Micros) {
    let parts = civil(t);
    write_seconds(out, &parts);
    out.push('.');
    push_digits(out, parts.micros / 1000, 3);
    out.push('Z');
}

/// Splits an instant into UTC calendar fields, clamped to years 0000-9999.
pub fn civil(t: Micros) -> Civil {
    let t = t.clamp(MIN_TIME, MAX_TIME);
    let days = t.div_euclid(MICROS_PER_DAY);
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / MICROS_PER_SECOND;
    // The casts are lossless: each value is bounded by the clamp above.
    Civil {
        year: year as i32,
        month,
        day,
        hour: (secs / 3600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
        micros: (in_day % MICROS_PER_SECOND) as u32,
    }
}

/// Parses `yyyy-MM-ddTHH:mm:ss` into Unix seconds.
fn parse_seconds(b: &[u8]) -> Option<i64> {
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = number(&b[0..4])?;
    let month = number(&b[5..7])?;
    let day = number(&b[8..10])?;
    let hour = number(&b[11..13])?;
    let minute = number(&b[14..16])?;
    let second = number(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Reads a fixed-width run of ASCII digits; signs and spaces are refused,
/// which `str::parse` would not do for a leading `+`.
fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`), so no calendar library sits on the hot path.
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Appends `yyyy-MM-ddTHH:mm:ss`.
fn write_seconds(out: &mut String, c: &Civil) {
    push_digits(out, c.year as u32, 4);
    out.push('-');
    push_digits(out, c.month, 2);
    out.push('-');
    push_digits(out, c.day, 2);
    out.push('T');
    push_digits(out, c.hour, 2);
    out.push(':');
    push_digits(out, c.minute, 2);
    out.push(':');
    push_digits(out, c.second, 2);
}

/// Appends `value` zero-padded to `width` digits; callers keep `value`
/// below `10^width`.
pub(crate) fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate, Utc};

    const SECOND: Micros = MICROS_PER_SECOND;

    fn chrono_micros(s: &str) -> Micros {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn request_time_round_trips() {
        let t = parse_request_time("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(t, chrono_micros("2026-11-25T10:00:00Z"));
        assert_eq!(format_request_time(t), "2026-11-25T10:00:00Z");
        assert_eq!(parse_request_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_request_time("1969-12-31T23:59:59Z"), Some(-SECOND));
        assert_eq!(
            parse_request_time("9999-12-31T23:59:59Z"),
            Some(MAX_TIME - 999_999)
        );
        assert_eq!(parse_request_time("0000-01-01T00:00:00Z"), Some(MIN_TIME));
    }

    #[test]
    fn leap_days() {
        assert!(parse_request_time("2028-02-29T00:00:00Z").is_some());
        assert!(parse_request_time("2000-02-29T00:00:00Z").is_some());
        assert_eq!(parse_request_time("2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_request_time("1900-02-29T00:00:00Z"), None);
        assert_eq!(parse_request_time("2100-02-29T00:00:00Z"), None);
        assert_eq!(parse_request_time("2028-02-30T00:00:00Z"), None);
        let leap = parse_request_time("2028-02-29T12:00:00Z").unwrap();
        assert_eq!(
            parse_request_time("2028-03-01T12:00:00Z").unwrap() - leap,
            MICROS_PER_DAY
        );
        assert_eq!(format_request_time(leap), "2028-02-29T12:00:00Z");
    }

    #[test]
    fn month_lengths() {
        for (month, days) in [
            (1, 31),
            (3, 31),
            (4, 30),
            (5, 31),
            (6, 30),
            (7, 31),
            (8, 31),
            (9, 30),
            (10, 31),
            (11, 30),
            (12, 31),
        ] {
            let last = format!("2026-{month:02}-{days:02}T00:00:00Z");
            let past = format!("2026-{month:02}-{:02}T00:00:00Z", days + 1);
            assert!(parse_request_time(&last).is_some(), "{last}");
            assert_eq!(parse_request_time(&past), None, "{past}");
        }
        assert_eq!(parse_request_time("2026-00-10T00:00:00Z"), None);
        assert_eq!(parse_request_time("2026-13-10T00:00:00Z"), None);
        assert_eq!(parse_request_time("2026-01-00T00:00:00Z"), None);
    }

    #[test]
    fn clock_fields_are_bounded() {
        assert!(parse_request_time("2026-11-25T23:59:59Z").is_some());
        assert_eq!(parse_request_time("2026-11-25T24:00:00Z"), None);
        assert_eq!(parse_request_time("2026-11-25T10:60:00Z"), None);
        // No leap seconds: the catalog's arithmetic is on Unix time.
        assert_eq!(parse_request_time("2026-12-31T23:59:60Z"), None);
    }

    #[test]
    fn request_time_refuses_other_shapes() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T10:00:00",
            "2026-11-25t10:00:00Z",
            "2026-11-25T10:00:00z",
            "2026-11-25 10:00:00Z",
            " 2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00Z ",
            "2026-11-25T10:00:00.000Z",
            "2026-11-25T10:00:00+00:00",
            "2026-11-25T10:00:00+0000",
            "2026-11-25T10:00Z",
            "2026-1-25T10:00:00Z0",
            "+026-11-25T10:00:00Z",
            "-026-11-25T10:00:00Z",
            "2026-+1-25T10:00:00Z",
            "2026-11-25T1 :00:00Z",
            "20261125T100000Z",
            "2026/11/25T10:00:00Z",
            "２０２６-11-25T10:00:00Z",
            "2026-11-25T10:00:0٠Z",
        ] {
            assert_eq!(parse_request_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn segment_time_accepts_fractions() {
        let base = parse_request_time("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(parse_segment_time("2026-11-25T10:00:00Z"), Some(base));
        assert_eq!(
            parse_segment_time("2026-11-25T10:00:00.480Z"),
            Some(base + 480_000)
        );
        assert_eq!(
            parse_segment_time("2026-11-25T10:00:00.4Z"),
            Some(base + 400_000)
        );
        assert_eq!(
            parse_segment_time("2026-11-25T10:00:00.123456Z"),
            Some(base + 123_456)
        );
        // Nanoseconds are truncated, never rounded up into the next micro.
        assert_eq!(
            parse_segment_time("2026-11-25T10:00:00.123456999Z"),
            Some(base + 123_456)
        );
        assert_eq!(
            parse_segment_time("2026-11-25T10:00:00.999999999Z"),
            Some(base + 999_999)
        );
        assert_eq!(
            parse_segment_time("1969-12-31T23:59:59.5Z"),
            Some(-SECOND / 2)
        );
    }

    #[test]
    fn segment_time_refuses_bad_fractions() {
        for bad in [
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00.1234567890Z",
            "2026-11-25T10:00:00,480Z",
            "2026-11-25T10:00:00.48aZ",
            "2026-11-25T10:00:00.1234567a9Z",
            "2026-11-25T10:00:00.480",
            "2026-11-25T10:00:00.480z",
            "2026-11-25T10:00:00.480+00:00",
            "2026-11-25T10:00:00.-1Z",
            "2026-11-25T10:00:00..1Z",
            "2026-02-29T10:00:00.5Z",
            "2026-11-25T10:00:00Z.5",
            "2026-11-25T10:00:00",
            "Z",
            "",
        ] {
            assert_eq!(parse_segment_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_floor() {
        let t = parse_segment_time("2026-11-25T10:00:00.999999Z").unwrap();
        assert_eq!(format_request_time(t), "2026-11-25T10:00:00Z");
        assert_eq!(format_program_date_time(t), "2026-11-25T10:00:00.999Z");
        assert_eq!(
            format_program_date_time(t - 999),
            "2026-11-25T10:00:00.999Z"
        );
        assert_eq!(
            format_program_date_time(t - 1000),
            "2026-11-25T10:00:00.998Z"
        );
        assert_eq!(format_program_date_time(0), "1970-01-01T00:00:00.000Z");
        // Pre-epoch instants floor toward the past, not toward zero.
        assert_eq!(format_request_time(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_program_date_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn extreme_instants_clamp_without_panicking() {
        assert_eq!(format_request_time(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(format_request_time(i64::MIN), "0000-01-01T00:00:00Z");
        assert_eq!(
            format_program_date_time(i64::MAX),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_program_date_time(i64::MIN),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(civil(i64::MAX).year, 9999);
        assert_eq!(civil(i64::MIN).year, 0);
    }

    #[test]
    fn write_appends() {
        let mut out = String::from("#EXT-X-PROGRAM-DATE-TIME:");
        write_program_date_time(
            &mut out,
            parse_segment_time("2026-11-25T10:00:00.480Z").unwrap(),
        );
        assert_eq!(out, "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.480Z");
    }

    #[test]
    fn agrees_with_chrono_across_the_calendar() {
        // Every day from 1600 to 2500 at an awkward time of day, covering
        // century and 400-year leap rules in both directions of the epoch.
        let mut date = NaiveDate::from_ymd_opt(1600, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2500, 12, 31).unwrap();
        while date <= last {
            let when = date
                .and_hms_micro_opt(23, 59, 58, 765_432)
                .unwrap()
                .and_utc();
            let micros = when.timestamp_micros();
            let text = when.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            assert_eq!(format_request_time(micros), text);
            assert_eq!(parse_request_time(&text), Some(micros - 765_432));
            assert_eq!(
                format_program_date_time(micros),
                when.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            let fractional = when.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(parse_segment_time(&fractional), Some(micros));
            date = date.succ_opt().unwrap();
        }
    }

    #[test]
    fn civil_fields() {
        let t = parse_segment_time("2028-02-29T07:08:09.010203Z").unwrap();
        assert_eq!(
            civil(t),
            Civil {
                year: 2028,
                month: 2,
                day: 29,
                hour: 7,
                minute: 8,
                second: 9,
                micros: 10_203
            }
        );
        let now = Utc::now().timestamp_micros();
        assert_eq!(
            parse_request_time(&format_request_time(now)),
            Some(now.div_euclid(SECOND) * SECOND)
        );
    }
}
