//! The OssObject template: `{Variable}` placeholders expanded into the key
//! the playlist is written to.

use std::fmt::Write;

use super::names::check_object_key;
use super::time::{Civil, civil, push_digits};
use super::{MICROS_PER_SECOND, Micros};
use crate::error::{ApiError, ApiResult, quote};

/// What the placeholders of a template stand for in one request.
#[derive(Debug, Clone, Copy)]
pub struct TemplateVars<'a> {
    pub domain_name: &'a str,
    pub app_name: &'a str,
    pub stream_name: &'a str,
    /// StartTime of the request: `{Date}`, `{Hour}`, `{Minute}`, `{Second}`,
    /// `{EscapedStartTime}` and `{StartTime}` come from it.
    pub start: Micros,
    /// EndTime of the request: `{EscapedEndTime}` and `{EndTime}`.
    pub end: Micros,
    pub record_id: &'a str,
}

/// Expands every `{Variable}` of `template`. Braces have no escape: a brace
/// that does not open or close a known variable is an error, so a typo in a
/// variable name is reported instead of landing in the key.
pub fn expand(template: &str, vars: &TemplateVars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(brace) = rest.find(['{', '}']) {
        let offset = template.len() - rest.len() + brace;
        if rest.as_bytes()[brace] == b'}' {
            return Err(format!("lone '}}' at byte {offset} of the template"));
        }
        out.push_str(&rest[..brace]);
        let after = &rest[brace + 1..];
        let close = match after.find(['{', '}']) {
            Some(i) if after.as_bytes()[i] == b'}' => i,
            _ => return Err(format!("lone '{{' at byte {offset} of the template")),
        };
        let name = &after[..close];
        if !write_variable(&mut out, name, vars) {
            return Err(format!(
                "unknown variable {} in the template",
                quote(&format!("{{{name}}}"))
            ));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands `template` into the key the playlist is written to, checked as
/// an object key that names an `.m3u8` file.
pub fn expand_object_key(template: &str, vars: &TemplateVars) -> ApiResult<String> {
    let key = expand(template, vars).map_err(ApiError::OssObjectMalformed)?;
    check_object_key(&key)
        .map_err(|reason| ApiError::OssObjectMalformed(format!("{reason}: {}", quote(&key))))?;
    if !key.ends_with(".m3u8") {
        return Err(ApiError::OssObjectMalformed(format!(
            "the object key must end in .m3u8: {}",
            quote(&key)
        )));
    }
    Ok(key)
}

/// Appends the value of variable `name`; false when there is no such
/// variable.
fn write_variable(out: &mut String, name: &str, vars: &TemplateVars) -> bool {
    match name {
        "AppName" => out.push_str(vars.app_name),
        "StreamName" => out.push_str(vars.stream_name),
        "DomainName" => out.push_str(vars.domain_name),
        "RecordId" => out.push_str(vars.record_id),
        "Date" => {
            let c = civil(vars.start);
            push_digits(out, c.year as u32, 4);
            out.push('-');
            push_digits(out, c.month, 2);
            out.push('-');
            push_digits(out, c.day, 2);
        }
        "Hour" => push_digits(out, civil(vars.start).hour, 2),
        "Minute" => push_digits(out, civil(vars.start).minute, 2),
        "Second" => push_digits(out, civil(vars.start).second, 2),
        "EscapedStartTime" => write_escaped(out, &civil(vars.start)),
        "EscapedEndTime" => write_escaped(out, &civil(vars.end)),
        // Writing into a String cannot fail.
        "StartTime" => drop(write!(out, "{}", vars.start.div_euclid(MICROS_PER_SECOND))),
        "EndTime" => drop(write!(out, "{}", vars.end.div_euclid(MICROS_PER_SECOND))),
        _ => return false,
    }
    true
}

/// `yyyy-MM-dd-HH-mm-ss`: a time with no character that needs escaping in
/// a key or URL.
fn write_escaped(out: &mut String, c: &Civil) {
    push_digits(out, c.year as u32, 4);
    for field in [c.month, c.day, c.hour, c.minute, c.second] {
        out.push('-');
        push_digits(out, field, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::time::parse_request_time;

    fn vars() -> TemplateVars<'static> {
        TemplateVars {
            domain_name: "example.com",
            app_name: "live",
            stream_name: "cam1",
            start: parse_request_time("2028-02-29T07:08:09Z").unwrap(),
            end: parse_request_time("2028-03-01T10:11:12Z").unwrap(),
            record_id: "C3B9F5E2-0D4A-4B8E-9F1C-2A7D6E5B4C3A",
        }
    }

    #[test]
    fn every_variable() {
        let cases = [
            ("{AppName}", "live"),
            ("{StreamName}", "cam1"),
            ("{DomainName}", "example.com"),
            ("{Date}", "2028-02-29"),
            ("{Hour}", "07"),
            ("{Minute}", "08"),
            ("{Second}", "09"),
            ("{EscapedStartTime}", "2028-02-29-07-08-09"),
            ("{EscapedEndTime}", "2028-03-01-10-11-12"),
            ("{StartTime}", "1835420889"),
            ("{EndTime}", "1835518272"),
            ("{RecordId}", "C3B9F5E2-0D4A-4B8E-9F1C-2A7D6E5B4C3A"),
        ];
        for (template, expected) in cases {
            assert_eq!(
                expand(template, &vars()).as_deref(),
                Ok(expected),
                "{template}"
            );
        }
    }

    #[test]
    fn unix_seconds_match_the_times() {
        let v = vars();
        assert_eq!(
            expand("{StartTime}", &v).unwrap(),
            (v.start / 1_000_000).to_string()
        );
        assert_eq!(
            expand("{EndTime}", &v).unwrap(),
            (v.end / 1_000_000).to_string()
        );
    }

    #[test]
    fn a_full_template() {
        let key = expand(
            "record/{DomainName}/{AppName}/{StreamName}/{Date}/{Hour}{Minute}{Second}_{EscapedStartTime}_{EscapedEndTime}_{StartTime}-{EndTime}.{RecordId}.m3u8",
            &vars(),
        )
        .unwrap();
        assert_eq!(
            key,
            "record/example.com/live/cam1/2028-02-29/070809_2028-02-29-07-08-09_2028-03-01-10-11-12_1835420889-1835518272.C3B9F5E2-0D4A-4B8E-9F1C-2A7D6E5B4C3A.m3u8"
        );
    }

    #[test]
    fn text_without_variables_is_kept() {
        assert_eq!(expand("", &vars()).unwrap(), "");
        assert_eq!(expand("plain/key.m3u8", &vars()).unwrap(), "plain/key.m3u8");
        assert_eq!(expand("{AppName}{AppName}", &vars()).unwrap(), "livelive");
        assert_eq!(expand("段/{AppName}/段", &vars()).unwrap(), "段/live/段");
    }

    #[test]
    fn malformed_templates() {
        let cases = [
            ("{Foo}", "unknown variable \"{Foo}\""),
            ("{}", "unknown variable \"{}\""),
            ("{appname}", "unknown variable \"{appname}\""),
            ("{APPNAME}", "unknown variable \"{APPNAME}\""),
            ("{ AppName}", "unknown variable \"{ AppName}\""),
            ("{AppName }", "unknown variable \"{AppName }\""),
            ("{{AppName}}", "lone '{' at byte 0"),
            ("{AppName", "lone '{' at byte 0"),
            ("a/{", "lone '{' at byte 2"),
            ("{App{Name}", "lone '{' at byte 0"),
            ("}", "lone '}' at byte 0"),
            ("a}b", "lone '}' at byte 1"),
            ("{AppName}}", "lone '}' at byte 9"),
            ("{AppName}/x}.m3u8", "lone '}' at byte 11"),
        ];
        for (template, expected) in cases {
            let reason = expand(template, &vars()).unwrap_err();
            assert!(reason.contains(expected), "{template}: {reason}");
        }
    }

    #[test]
    fn time_variables_use_utc_of_start() {
        let mut v = vars();
        v.start = parse_request_time("1999-12-31T23:59:59Z").unwrap();
        assert_eq!(
            expand("{Date}T{Hour}:{Minute}:{Second}", &v).unwrap(),
            "1999-12-31T23:59:59"
        );
        v.start = 0;
        assert_eq!(
            expand("{StartTime}|{EscapedStartTime}", &v).unwrap(),
            "0|1970-01-01-00-00-00"
        );
    }

    #[test]
    fn object_key_is_checked_after_expansion() {
        let v = vars();
        assert_eq!(
            expand_object_key("{AppName}/{StreamName}/{EscapedStartTime}.m3u8", &v).unwrap(),
            "live/cam1/2028-02-29-07-08-09.m3u8"
        );
        for template in [
            "",
            "{AppName}",
            "{AppName}.M3U8",
            "{AppName}.m3u8/",
            "{AppName}.m3u",
            "/{AppName}.m3u8",
            "{AppName}//{StreamName}.m3u8",
            "{AppName}/../{StreamName}.m3u8",
            "{AppName}/./{StreamName}.m3u8",
            "{AppName}\\{StreamName}.m3u8",
            "{AppName}\n.m3u8",
            "{Foo}.m3u8",
            "{AppName.m3u8",
            "}{AppName}.m3u8",
        ] {
            match expand_object_key(template, &v) {
                Err(ApiError::OssObjectMalformed(_)) => {}
                other => panic!("{template:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn object_key_length_is_checked_after_expansion() {
        let mut v = vars();
        let long = "a".repeat(1018);
        v.app_name = &long;
        // 1018 + ".m3u8" is exactly 1023 bytes.
        assert_eq!(expand_object_key("{AppName}.m3u8", &v).unwrap().len(), 1023);
        assert!(matches!(
            expand_object_key("x{AppName}.m3u8", &v),
            Err(ApiError::OssObjectMalformed(_))
        ));
    }
}
