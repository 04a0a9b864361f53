//! Which bytes of an object a GET is answered with (RFC 9110 section 14):
//! one `Range: bytes=` range, as players ask for the keyframe-clipped
//! parts of segments, honoured only while `If-Range` still names the
//! object; and the validators (ETag, Last-Modified) that make an answer a
//! `304`. Pure.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// The part of an object to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole object, `200`: no Range, or one this server ignores (not
    /// of bytes, more than one range, or not well-formed, which RFC 9110
    /// lets a server ignore).
    Whole,
    /// Bytes `first..=last`, `206` with Content-Range.
    Range { first: u64, last: u64 },
    /// A well-formed range of no byte of the object, `416`.
    Unsatisfiable,
}

/// What the `Range` header `value` asks of an object of `size` bytes.
pub fn part(value: Option<&str>, size: u64) -> Part {
    let Some(value) = value else {
        return Part::Whole;
    };
    let Some((unit, set)) = value.split_once('=') else {
        return Part::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Part::Whole;
    }
    // Empty list elements are allowed by the list syntax, and ignored.
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Part::Whole;
    };
    let Some((first_text, last_text)) = spec.split_once('-') else {
        return Part::Whole;
    };
    match (number(first_text), number(last_text)) {
        // `-n`: the last n bytes.
        (None, Some(suffix)) if first_text.is_empty() => {
            if suffix == 0 {
                Part::Unsatisfiable
            } else if size == 0 {
                // An empty object has no byte range to name; it is sent whole.
                Part::Whole
            } else {
                Part::Range {
                    first: size - suffix.min(size),
                    last: size - 1,
                }
            }
        }
        (Some(first), last) if last.is_some() || last_text.is_empty() => {
            if last.is_some_and(|last| last < first) {
                return Part::Whole;
            }
            if first >= size {
                return Part::Unsatisfiable;
            }
            Part::Range {
                first,
                last: last.unwrap_or(u64::MAX).min(size - 1),
            }
        }
        _ => Part::Whole,
    }
}

/// Digits as a number; more than `u64` holds is `u64::MAX`, which is past
/// the end of any object anyway.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |n, digit| {
        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

/// The validators of one version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong ETag from the size and the modification time to the
    /// nanosecond: a write replaces the file, and changes one or the other.
    pub etag: String,
    /// `Last-Modified`, in the IMF-fixdate form.
    pub last_modified: String,
    /// The modification time in whole Unix seconds, as dates compare.
    modified_secs: i64,
}

impl Validators {
    pub fn new(size: u64, modified: SystemTime) -> Validators {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let modified_secs = since_epoch.as_secs() as i64;
        let date = DateTime::<Utc>::from_timestamp(modified_secs, 0).unwrap_or_default();
        Validators {
            etag: format!("\"{size:x}-{:x}\"", since_epoch.as_nanos()),
            last_modified: date.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            modified_secs,
        }
    }

    /// Whether `If-Range` lets a Range be honoured: absent, or naming this
    /// version by its strong ETag or its exact Last-Modified date.
    pub fn range_allowed(&self, if_range: Option<&str>) -> bool {
        let Some(value) = if_range.map(str::trim) else {
            return true;
        };
        if value.starts_with('"') || value.starts_with("W/") {
            return value == self.etag;
        }
        http_date(value) == Some(self.modified_secs)
    }

    /// Whether the client's copy is this version (a `304`): by
    /// `If-None-Match` when it is sent (`*`, or a listed tag, weak
    /// comparison), else by `If-Modified-Since`.
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(tags) = if_none_match {
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag);
        }
        if_modified_since
            .and_then(http_date)
            .is_some_and(|since| self.modified_secs <= since)
    }
}

/// An HTTP date (IMF-fixdate, as every current client sends it) in Unix
/// seconds; the obsolete forms are not dates here.
fn http_date(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|date| date.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn single_ranges_are_cut_to_the_object() {
        let range = |first, last| Part::Range { first, last };
        assert_eq!(part(None, 100), Part::Whole);
        assert_eq!(part(Some("bytes=0-99"), 100), range(0, 99));
        assert_eq!(part(Some("bytes=10-"), 100), range(10, 99));
        assert_eq!(part(Some("bytes=90-1000"), 100), range(90, 99));
        assert_eq!(part(Some("bytes=-10"), 100), range(90, 99));
        assert_eq!(part(Some("bytes=-1000"), 100), range(0, 99));
        assert_eq!(part(Some("Bytes = 5-5 ,"), 100), range(5, 5));
        assert_eq!(
            part(Some("bytes=0-99999999999999999999999999"), 100),
            range(0, 99)
        );
    }

    #[test]
    fn ranges_of_no_byte_are_unsatisfiable() {
        for value in [
            "bytes=100-",
            "bytes=100-200",
            "bytes=-0",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(part(Some(value), 100), Part::Unsatisfiable, "{value}");
        }
        assert_eq!(part(Some("bytes=0-"), 0), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=-5"), 0), Part::Whole);
    }

    #[test]
    fn other_ranges_are_ignored() {
        for value in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=",
            "bytes=1",
            "bytes=+1-2",
            "bytes=0x10-",
            "bytes=-1-2",
            "0-10",
        ] {
            assert_eq!(part(Some(value), 100), Part::Whole, "{value}");
        }
    }

    #[test]
    fn validators_name_one_version() {
        let modified = UNIX_EPOCH + Duration::new(784_111_777, 123);
        let v = Validators::new(4096, modified);
        assert_eq!(v.etag, "\"1000-ae1b981bc490a7b\"");
        assert_eq!(v.last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(v.range_allowed(None));
        assert!(v.range_allowed(Some(&v.etag)));
        assert!(v.range_allowed(Some("Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(!v.range_allowed(Some("Sun, 06 Nov 1994 08:49:38 GMT")));
        assert!(!v.range_allowed(Some(&format!("W/{}", v.etag))));
        assert!(!v.range_allowed(Some("\"other\"")));

        assert!(v.not_modified(Some(&format!("\"x\", W/{}", v.etag)), None));
        assert!(v.not_modified(Some("*"), None));
        assert!(!v.not_modified(Some("\"x\""), Some("Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:37 GMT")));
        assert!(!v.not_modified(None, Some("Sun, 06 Nov 1994 08:49:36 GMT")));
        assert!(!v.not_modified(None, Some("yesterday")));
        assert!(!v.not_modified(None, None));
    }
}
