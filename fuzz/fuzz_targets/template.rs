//! The OssObject template (`manifest::template`) on arbitrary templates,
//! names, record ids and instants. `expand` never panics and agrees with
//! a second expander written from the documented rules (each known
//! `{Variable}` replaced by its value, times in UTC from chrono's calendar,
//! any other brace an error); so nothing but a known variable is ever
//! expanded and no brace of the template survives. `expand_object_key`
//! answers only InvalidOssObject.Malformed, and accepts exactly the
//! expansions that are valid playlist keys: 1 to 1023 bytes, ending in
//! `.m3u8`, no leading `/`, no `\`, no empty, `.` or `..` segment, no
//! control character.
//!
//! Input: fields separated by the byte 0xFF (never part of UTF-8):
//! template, DomainName, AppName, StreamName, RecordId, StartTime, EndTime.
//! A time is a `yyyy-MM-ddTHH:mm:ss[.f]Z` string or decimal microseconds.
//! Missing fields take the values of an ordinary request.

#![no_main]

#[path = "oracle/mod.rs"]
mod oracle;

use libfuzzer_sys::fuzz_target;
use oracle::SECOND;
use record_index::error::ApiError;
use record_index::manifest::Micros;
use record_index::manifest::template::{TemplateVars, expand, expand_object_key};

/// The value of a variable, or `None` for a name that is not one.
fn value(name: &str, vars: &TemplateVars) -> Option<String> {
    let two = |n: u32| format!("{n:02}");
    let (y, mo, d, h, mi, s, _) = oracle::calendar(vars.start);
    let escaped = |t: Micros| {
        let (y, mo, d, h, mi, s, _) = oracle::calendar(t);
        format!("{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}")
    };
    Some(match name {
        "AppName" => vars.app_name.to_string(),
        "StreamName" => vars.stream_name.to_string(),
        "DomainName" => vars.domain_name.to_string(),
        "RecordId" => vars.record_id.to_string(),
        "Date" => format!("{y:04}-{mo:02}-{d:02}"),
        "Hour" => two(h),
        "Minute" => two(mi),
        "Second" => two(s),
        "EscapedStartTime" => escaped(vars.start),
        "EscapedEndTime" => escaped(vars.end),
        // Unix seconds, floored like every other time the service prints.
        "StartTime" => vars.start.div_euclid(SECOND).to_string(),
        "EndTime" => vars.end.div_euclid(SECOND).to_string(),
        _ => return None,
    })
}

/// The documented expansion, one character at a time: `{` opens a name
/// that must close with `}` before any other brace and be a variable; a
/// `}` outside a name is an error.
fn reference(template: &str, vars: &TemplateVars) -> Option<String> {
    let mut out = String::new();
    let mut name: Option<String> = None;
    for c in template.chars() {
        match (&mut name, c) {
            (None, '{') => name = Some(String::new()),
            (None, '}') => return None,
            (None, c) => out.push(c),
            (Some(_), '{') => return None,
            (Some(n), '}') => {
                out.push_str(&value(n, vars)?);
                name = None;
            }
            (Some(n), c) => n.push(c),
        }
    }
    name.is_none().then_some(out)
}

fuzz_target!(|data: &[u8]| {
    let fields = oracle::fields(data);
    let field = |i: usize, default: &str| fields.get(i).cloned().unwrap_or_else(|| default.into());
    let template = field(0, "");
    let domain = field(1, "example.com");
    let app = field(2, "live");
    let stream = field(3, "cam1");
    let record_id = field(4, "C3B9F5E2-0D4A-4B8E-9F1C-2A7D6E5B4C3A");
    let start = oracle::instant_field(&field(5, "2026-11-25T10:00:00Z")).unwrap_or(0);
    let end = oracle::instant_field(&field(6, "2026-11-25T10:10:00Z")).unwrap_or(0);
    let vars = TemplateVars {
        domain_name: &domain,
        app_name: &app,
        stream_name: &stream,
        start,
        end,
        record_id: &record_id,
    };

    let expanded = expand(&template, &vars);
    assert_eq!(
        expanded.as_ref().ok(),
        reference(&template, &vars).as_ref(),
        "template {template:?}: {expanded:?}"
    );
    if let Ok(text) = &expanded {
        let braces_in_values = [&domain, &app, &stream, &record_id]
            .iter()
            .any(|v| v.contains(['{', '}']));
        if !braces_in_values {
            assert!(!text.contains(['{', '}']), "{template:?} -> {text:?}");
        }
    }

    match expand_object_key(&template, &vars) {
        Ok(key) => {
            assert_eq!(Some(&key), expanded.as_ref().ok());
            assert!(oracle::playlist_key(&key), "accepted {key:?}");
        }
        Err(ApiError::OssObjectMalformed(_)) => {
            if let Ok(text) = &expanded {
                assert!(!oracle::playlist_key(text), "refused {text:?}");
            }
        }
        Err(other) => panic!("{template:?}: not InvalidOssObject.Malformed: {other:?}"),
    }
});
