//! Segment URIs relative to the playlist that lists them.
//!
//! A relative reference keeps a playlist valid wherever the bucket is
//! served from (a CDN, a presigned host, a copied bucket), which an
//! absolute URL would not.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded, so no part
/// of a key can be read as a scheme, query, fragment or escape. `/` is kept
/// because it separates the key's path segments.
const KEY_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes each `/`-separated part of an object key.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 16);
    push_encoded(&mut out, key);
    out
}

/// Appends [`encode_key`]'s encoding of `key` to `out`, for URLs built
/// in one buffer.
pub fn push_encoded(out: &mut String, key: &str) {
    for chunk in utf8_percent_encode(key, KEY_PART) {
        out.push_str(chunk);
    }
}

/// The reference that, resolved against the URL of `playlist_key`, names
/// `segment_key` in the same bucket: `../` for each directory of the
/// playlist that the segment does not share, then the rest of the segment
/// key, encoded. Both keys are expected to pass `check_object_key`; dot
/// segments in a key could not be reached this way.
pub fn relative_uri(playlist_key: &str, segment_key: &str) -> String {
    let dir = match playlist_key.rfind('/') {
        Some(slash) => &playlist_key[..=slash],
        None => "",
    };
    let common = common_dir_len(dir, segment_key);
    let ups = dir[common..].bytes().filter(|&b| b == b'/').count();
    let rest = &segment_key[common..];
    let mut out = String::with_capacity(ups * 3 + rest.len() + 16);
    for _ in 0..ups {
        out.push_str("../");
    }
    // A rest that opens with '/' (an empty path segment) would read as an
    // absolute path; "./" keeps it relative to the same directory.
    if ups == 0 && rest.starts_with('/') {
        out.push_str("./");
    }
    push_encoded(&mut out, rest);
    out
}

/// Length of the longest prefix of `dir` (which ends in `/` or is empty)
/// that is a whole run of directories of `key` too.
fn common_dir_len(dir: &str, key: &str) -> usize {
    let shared = dir
        .bytes()
        .zip(key.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    // Cut back to just after a '/', which is a char boundary in both.
    dir.as_bytes()[..shared]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |slash| slash + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples() {
        assert_eq!(relative_uri("a/b/p.m3u8", "a/b/s.ts"), "s.ts");
        assert_eq!(relative_uri("a/b/p.m3u8", "a/c/s.ts"), "../c/s.ts");
        assert_eq!(relative_uri("p.m3u8", "x/y.ts"), "x/y.ts");
        assert_eq!(relative_uri("a/b/p.m3u8", "s.ts"), "../../s.ts");
        assert_eq!(relative_uri("p.m3u8", "a b:c.ts"), "a%20b%3Ac.ts");
    }

    #[test]
    fn directories_are_compared_whole() {
        // "ab/" is not inside "a/" even though the bytes start alike.
        assert_eq!(relative_uri("a/p.m3u8", "ab/s.ts"), "../ab/s.ts");
        assert_eq!(relative_uri("ab/p.m3u8", "a/s.ts"), "../a/s.ts");
        assert_eq!(relative_uri("a/b/p.m3u8", "a/bc/s.ts"), "../bc/s.ts");
        // A segment named like the playlist's directory is a file, not it.
        assert_eq!(relative_uri("a/b/p.m3u8", "a/b"), "../b");
        assert_eq!(relative_uri("a/p.m3u8", "a"), "../a");
    }

    #[test]
    fn deeper_and_shallower_segments() {
        assert_eq!(relative_uri("a/p.m3u8", "a/b/c/s.ts"), "b/c/s.ts");
        assert_eq!(relative_uri("a/b/c/d/p.m3u8", "a/s.ts"), "../../../s.ts");
        assert_eq!(
            relative_uri("a/b/c/d/p.m3u8", "a/x/y/s.ts"),
            "../../../x/y/s.ts"
        );
        assert_eq!(relative_uri("x/y/p.m3u8", "a/b/s.ts"), "../../a/b/s.ts");
        assert_eq!(relative_uri("p.m3u8", "s.ts"), "s.ts");
    }

    #[test]
    fn percent_encoding_of_parts() {
        assert_eq!(
            relative_uri("r/p.m3u8", "r/x y/%?#+&=;:@!$'()*,[]\"<>^`{|}.ts"),
            "x%20y/%25%3F%23%2B%26%3D%3B%3A%40%21%24%27%28%29%2A%2C%5B%5D%22%3C%3E%5E%60%7B%7C%7D.ts"
        );
        assert_eq!(relative_uri("r/p.m3u8", "r/Az09-._~.ts"), "Az09-._~.ts");
        // Non-ASCII is encoded as its UTF-8 bytes, directories too.
        assert_eq!(relative_uri("段/p.m3u8", "段/é.ts"), "%C3%A9.ts");
        assert_eq!(relative_uri("p.m3u8", "段/é.ts"), "%E6%AE%B5/%C3%A9.ts");
        assert_eq!(
            relative_uri("x/p.m3u8", "段/é.ts"),
            "../%E6%AE%B5/%C3%A9.ts"
        );
        // The playlist's own directory names are never written, so they
        // need no encoding and may share a UTF-8 lead byte with the key.
        assert_eq!(relative_uri("é/p.m3u8", "è/s.ts"), "../%C3%A8/s.ts");
    }

    #[test]
    fn a_colon_in_the_first_part_cannot_become_a_scheme() {
        assert_eq!(relative_uri("p.m3u8", "http:x.ts"), "http%3Ax.ts");
        assert_eq!(relative_uri("a/p.m3u8", "a/c:/s.ts"), "c%3A/s.ts");
    }

    #[test]
    fn an_empty_leading_part_stays_relative() {
        assert_eq!(relative_uri("a/p.m3u8", "a//s.ts"), ".//s.ts");
        assert_eq!(relative_uri("a/b/p.m3u8", "a//s.ts"), "..//s.ts");
    }

    #[test]
    fn encode_key_keeps_separators() {
        assert_eq!(encode_key("a/b c/d.ts"), "a/b%20c/d.ts");
        assert_eq!(encode_key(""), "");
        assert_eq!(encode_key("100%/x+y.ts"), "100%25/x%2By.ts");
        assert_eq!(encode_key("é"), "%C3%A9");
        assert_eq!(encode_key("a\u{0}b\u{7f}"), "a%00b%7F");
    }
}
