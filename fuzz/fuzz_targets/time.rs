//! The API's time strings (`manifest::time`) on arbitrary text and
//! instants. The parsers never panic and accept exactly what the documented
//! shapes allow (checked against chrono's calendar); whatever they accept
//! is within years 0000 to 9999 and formats back to the same text; and any
//! instant, in range or not, formats to text that parses back to the
//! instant clamped to that range and floored to the format's unit.
//!
//! Input: the whole input as text for the parsers; its first 8 bytes
//! (little-endian, zero-padded) as an instant for the formatters.

#![no_main]

#[path = "oracle/mod.rs"]
mod oracle;

use libfuzzer_sys::fuzz_target;
use oracle::SECOND;
use record_index::manifest::Micros;
use record_index::manifest::time::{
    MAX_TIME, MIN_TIME, civil, format_program_date_time, format_request_time, parse_request_time,
    parse_segment_time, write_program_date_time,
};

const MILLI: Micros = 1_000;

fn check_text(text: &str) {
    let request = parse_request_time(text);
    assert_eq!(request, oracle::request_or_segment_time(text, false), "{text:?}");
    let segment = parse_segment_time(text);
    assert_eq!(segment, oracle::request_or_segment_time(text, true), "{text:?}");

    if let Some(t) = request {
        assert!((MIN_TIME..=MAX_TIME).contains(&t), "{text:?} -> {t}");
        assert_eq!(t % SECOND, 0, "{text:?}");
        // The request format has one spelling per instant.
        assert_eq!(format_request_time(t), text);
        // A request time is a segment time without a fraction.
        assert_eq!(segment, Some(t), "{text:?}");
    }
    if let Some(t) = segment {
        assert!((MIN_TIME..=MAX_TIME).contains(&t), "{text:?} -> {t}");
        // Seconds format back exactly; the fraction floors to the unit.
        let seconds = &text[..19];
        assert_eq!(format_request_time(t), format!("{seconds}Z"));
        let fraction = text[19..text.len() - 1].trim_start_matches('.');
        let millis = format!("{fraction:0<3}");
        assert_eq!(
            format_program_date_time(t),
            format!("{seconds}.{}Z", &millis[..3]),
            "{text:?}"
        );
        assert_eq!(
            parse_segment_time(&format_program_date_time(t)),
            Some(t.div_euclid(MILLI) * MILLI)
        );
    }
}

fn check_instant(t: Micros) {
    let clamped = t.clamp(MIN_TIME, MAX_TIME);

    let request = format_request_time(t);
    assert_eq!(request.len(), 20, "{t}: {request:?}");
    assert_eq!(
        parse_request_time(&request),
        Some(clamped.div_euclid(SECOND) * SECOND),
        "{t}: {request:?}"
    );

    let program = format_program_date_time(t);
    assert_eq!(program.len(), 24, "{t}: {program:?}");
    assert_eq!(
        parse_segment_time(&program),
        Some(clamped.div_euclid(MILLI) * MILLI),
        "{t}: {program:?}"
    );
    let mut appended = String::from("#EXT-X-PROGRAM-DATE-TIME:");
    write_program_date_time(&mut appended, t);
    assert_eq!(appended, format!("#EXT-X-PROGRAM-DATE-TIME:{program}"));

    let c = civil(t);
    assert_eq!(
        (c.year, c.month, c.day, c.hour, c.minute, c.second, c.micros),
        oracle::calendar(t),
        "{t}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_text(text);
    }
    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    check_instant(i64::from_le_bytes(word));
});
