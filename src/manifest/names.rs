//! Shape checks of the names a request carries: stream names, object
//! storage endpoints, buckets and object keys.

use crate::error::{ApiError, ApiResult};

/// Longest DomainName, AppName or StreamName the API accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Longest host name DNS can carry in text form.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
/// Object stores refuse keys longer than this many bytes.
const MAX_KEY_LEN: usize = 1023;

/// Checks DomainName, AppName and StreamName, in the order the request
/// lists them, so a caller with several mistakes hears about the first one.
pub fn check_stream_names(domain: &str, app: &str, stream: &str) -> ApiResult<()> {
    if domain.is_empty() {
        return Err(ApiError::InvalidParams("DomainName is required".into()));
    }
    if domain.len() > MAX_NAME_LEN || !is_host_name(domain) {
        return Err(ApiError::InvalidParams(
            "DomainName must be a host name: dot-separated labels of 1 to 63 characters \
             of [A-Za-z0-9-], not starting or ending with '-', at most 253 characters"
                .into(),
        ));
    }
    check_path_name("AppName", app)?;
    check_path_name("StreamName", stream)
}

/// AppName and StreamName end up in object keys and catalog keys, so they
/// are held to characters that need no escaping anywhere (`*` included:
/// the console uses it as a wildcard).
fn check_path_name(field: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() {
        return Err(ApiError::InvalidParams(format!("{field} is required")));
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if name.len() > MAX_NAME_LEN || !name.as_bytes().iter().all(allowed) {
        return Err(ApiError::InvalidParams(format!(
            "{field} must be 1 to {MAX_NAME_LEN} characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// Whether `s` is an RFC 1123 host name: labels of `[A-Za-z0-9-]`, 1 to 63
/// characters each, not starting or ending with `-`, joined by single dots,
/// at most 253 characters. Dotted IPv4 addresses pass as well.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_HOST_LEN && s.split('.').all(is_label)
}

fn is_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// Whether `s` is an OssEndpoint: a host name, optionally with `:port`
/// (1 to 65535, plain digits). Schemes and paths are refused because the
/// service, not the caller, decides how an endpoint is reached.
pub fn is_endpoint(s: &str) -> bool {
    match s.split_once(':') {
        None => is_host_name(s),
        Some((host, port)) => is_host_name(host) && is_port(port),
    }
}

/// A leading zero is refused so that each port has one spelling: endpoints
/// are matched against the configured ones as strings.
fn is_port(port: &str) -> bool {
    let b = port.as_bytes();
    !b.is_empty()
        && b.len() <= 5
        && b[0] != b'0'
        && b.iter().all(u8::is_ascii_digit)
        && port.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// Whether `s` is an OssBucket: 3 to 63 characters of `[a-z0-9-]`, first
/// and last a letter or digit (the rule OSS and S3 share).
pub fn is_bucket(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&b.len())
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter().all(|&c| edge(c) || c == b'-')
}

/// Checks an expanded object key. The rules keep a key that the local
/// directory store maps to a path inside its bucket directory, and that a
/// relative URI can reach without dot-segment surprises.
pub fn check_object_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "the object key must be 1 to {MAX_KEY_LEN} bytes, it is {} bytes",
            key.len()
        ));
    }
    if key.starts_with('/') {
        return Err("the object key must not start with '/'".into());
    }
    if key.contains('\\') {
        return Err("the object key must not contain '\\'".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the object key must not contain control characters, it holds U+{:04X}",
            u32::from(c)
        ));
    }
    for part in key.split('/') {
        match part {
            "" => return Err(
                "the object key must not contain an empty path segment ('//' or a trailing '/')"
                    .into(),
            ),
            "." | ".." => {
                return Err(format!(
                    "the object key must not contain a '{part}' path segment"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_params_message(result: ApiResult<()>) -> String {
        match result {
            Err(ApiError::InvalidParams(message)) => message,
            other => panic!("expected InvalidParams, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_stream_names() {
        assert_eq!(
            check_stream_names("example.com", "live", "cam-1_hd.v2"),
            Ok(())
        );
        assert_eq!(check_stream_names("localhost", "a", "b"), Ok(()));
        assert_eq!(check_stream_names("1.2.3.4", "A.B", "Z9"), Ok(()));
        let long = "a".repeat(MAX_NAME_LEN);
        assert_eq!(check_stream_names("example.com", &long, &long), Ok(()));
    }

    #[test]
    fn empty_fields_are_named() {
        assert!(invalid_params_message(check_stream_names("", "live", "s")).contains("DomainName"));
        assert!(
            invalid_params_message(check_stream_names("example.com", "", "s")).contains("AppName")
        );
        assert!(
            invalid_params_message(check_stream_names("example.com", "live", ""))
                .contains("StreamName")
        );
    }

    #[test]
    fn the_first_bad_field_is_reported() {
        let message = invalid_params_message(check_stream_names("", "", ""));
        assert!(message.contains("DomainName"), "{message}");
        let message = invalid_params_message(check_stream_names("example.com", "*", "*"));
        assert!(message.contains("AppName"), "{message}");
    }

    #[test]
    fn app_and_stream_characters() {
        for bad in [
            "*",
            "live*",
            "a b",
            "a/b",
            "a:b",
            "ä",
            "a\0",
            "a\n",
            "a+b",
            "a%20",
            "{AppName}",
        ] {
            let message = invalid_params_message(check_stream_names("example.com", bad, "s"));
            assert_eq!(
                message,
                "AppName must be 1 to 255 characters of [A-Za-z0-9._-]"
            );
            let message = invalid_params_message(check_stream_names("example.com", "live", bad));
            assert_eq!(
                message,
                "StreamName must be 1 to 255 characters of [A-Za-z0-9._-]"
            );
        }
    }

    #[test]
    fn names_longer_than_255_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(
            invalid_params_message(check_stream_names("example.com", &long, "s"))
                .contains("AppName")
        );
        assert!(
            invalid_params_message(check_stream_names("example.com", "live", &long))
                .contains("StreamName")
        );
        let long_domain = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        assert!(long_domain.len() > MAX_NAME_LEN);
        assert!(
            invalid_params_message(check_stream_names(&long_domain, "a", "s"))
                .contains("DomainName")
        );
    }

    #[test]
    fn domain_must_be_a_host_name() {
        for bad in [
            "*.example.com",
            "example.com.",
            ".example.com",
            "a..b",
            "-a.com",
            "a-.com",
            "a.-b.com",
            "exa_mple.com",
            "example.com:80",
            "http://example.com",
            "example.com/live",
            "ex ample.com",
            "bücher.de",
        ] {
            let message = invalid_params_message(check_stream_names(bad, "live", "s"));
            assert!(message.starts_with("DomainName"), "{bad}: {message}");
        }
    }

    #[test]
    fn host_name_lengths() {
        let label63 = "a".repeat(63);
        assert!(is_host_name(&label63));
        assert!(!is_host_name(&"a".repeat(64)));
        // 4 labels of 63 with 3 dots is 255; trim to exactly 253.
        let host253 = format!("{label63}.{label63}.{label63}.{}", "a".repeat(61));
        assert_eq!(host253.len(), 253);
        assert!(is_host_name(&host253));
        let host254 = format!("{label63}.{label63}.{label63}.{}", "a".repeat(62));
        assert!(!is_host_name(&host254));
        assert!(!is_host_name(""));
        assert!(is_host_name("a"));
        assert!(is_host_name("a-b.c-d"));
        assert!(is_host_name("123"));
    }

    #[test]
    fn endpoints() {
        for good in [
            "127.0.0.1:8333",
            "localhost",
            "localhost:1",
            "localhost:65535",
            "oss-cn-shanghai.aliyuncs.com",
            "s3.example.com:443",
        ] {
            assert!(is_endpoint(good), "{good}");
        }
        for bad in [
            "",
            "http://x",
            "https://oss-cn-shanghai.aliyuncs.com",
            "x/y",
            "x:",
            ":80",
            "x:0",
            "x:00",
            "x:080",
            "x:65536",
            "x:99999",
            "x:123456",
            "x:+80",
            "x:-1",
            "x:8a",
            "x: 80",
            "x:80:81",
            "a..b",
            "-a.com",
            "a-.com",
            "a.com.",
            "[::1]:80",
            "::1",
            "x y",
            "x\n",
        ] {
            assert!(!is_endpoint(bad), "{bad:?}");
        }
    }

    #[test]
    fn buckets() {
        for good in [
            "abc",
            "live-bucket",
            "a-b",
            "0ab",
            "ab9",
            "a".repeat(63).as_str(),
        ] {
            assert!(is_bucket(good), "{good}");
        }
        for bad in [
            "",
            "ab",
            "-ab",
            "ab-",
            "Abc",
            "a_b",
            "a.b",
            "a b",
            "abç",
            "a".repeat(64).as_str(),
        ] {
            assert!(!is_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn object_keys() {
        for good in [
            "a.m3u8",
            "record/live/s/2026-11-25.m3u8",
            "a b/c:d?e#f%g+h.m3u8",
            "ünïcode/段.m3u8",
            "...",
            ".hidden/x",
            "a/..b/c..",
            "a".repeat(1023).as_str(),
        ] {
            assert_eq!(check_object_key(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/a",
            "//a",
            "a//b",
            "a/",
            "a\\b",
            ".",
            "..",
            "./a",
            "a/./b",
            "a/../b",
            "a/..",
            "a\0b",
            "a\u{1f}b",
            "a\nb",
            "a\tb",
            "a\u{7f}b",
            "a".repeat(1024).as_str(),
        ] {
            assert!(check_object_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_key_length_counts_bytes() {
        // 341 three-byte characters are 1023 bytes; one more is too many.
        let ok = "段".repeat(341);
        assert_eq!(ok.len(), 1023);
        assert_eq!(check_object_key(&ok), Ok(()));
        let reason = check_object_key(&"段".repeat(342)).unwrap_err();
        assert!(reason.contains("1026 bytes"), "{reason}");
    }

    #[test]
    fn object_key_reasons_say_what_is_wrong() {
        assert!(check_object_key("a\u{7f}").unwrap_err().contains("U+007F"));
        assert!(check_object_key("a/../b").unwrap_err().contains("'..'"));
        assert!(
            check_object_key("/a")
                .unwrap_err()
                .contains("start with '/'")
        );
    }
}
