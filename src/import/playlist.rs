//! Reading a recorder's HLS media playlist (live or VOD) into the segments
//! it lists: object keys resolved against the playlist's own key, start
//! times from EXT-X-PROGRAM-DATE-TIME where the playlist has them.

use chrono::DateTime;

use crate::manifest::{MICROS_PER_SECOND, Micros};

/// One segment a playlist lists.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSegment {
    /// Object key, in the playlist's bucket.
    pub key: String,
    pub duration: f64,
    /// From the latest PROGRAM-DATE-TIME, advanced by the durations since;
    /// `None` when the playlist has no PROGRAM-DATE-TIME before it.
    pub start: Option<Micros>,
    pub sequence: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("not an HLS playlist: it does not start with #EXTM3U")]
    NotM3u8,
    #[error("a master playlist lists variants, not segments; import one of its media playlists")]
    Master,
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// PROGRAM-DATE-TIME as recorders write it: RFC 3339, or ffmpeg's
/// `+0000` offset without a colon.
pub fn parse_date_time(text: &str) -> Option<Micros> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Resolves a segment URI against the playlist's key: relative paths with
/// `./` and `../`, and percent-encoding, as a player would.
fn resolve(playlist_key: &str, uri: &str) -> Option<String> {
    if uri.contains("://") {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(uri.split(['?', '#']).next()?)
        .decode_utf8()
        .ok()?;
    let mut parts: Vec<&str> = if decoded.starts_with('/') {
        Vec::new()
    } else {
        playlist_key
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, dir)| dir.to_vec())
            .unwrap_or_default()
    };
    for part in decoded.trim_start_matches('/').split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    let key = parts.join("/");
    (!key.is_empty()).then_some(key)
}

pub fn parse(text: &str, playlist_key: &str) -> Result<Vec<ListedSegment>, PlaylistError> {
    let mut lines = text.lines().map(str::trim).enumerate();
    match lines.next() {
        Some((_, first)) if first.trim_start_matches('\u{feff}') == "#EXTM3U" => {}
        _ => return Err(PlaylistError::NotM3u8),
    }
    let mut segments = Vec::new();
    let mut sequence = 0i64;
    let mut pending_duration: Option<f64> = None;
    let mut clock: Option<Micros> = None;
    for (index, line) in lines {
        let line_no = index + 1;
        let bad = |reason: &str| PlaylistError::Line {
            line: line_no,
            reason: reason.to_string(),
        };
        if line.is_empty() {
            continue;
        }
        if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = value
                .parse()
                .map_err(|_| bad("EXT-X-MEDIA-SEQUENCE is not a number"))?;
        } else if let Some(value) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            clock = Some(
                parse_date_time(value)
                    .ok_or_else(|| bad("EXT-X-PROGRAM-DATE-TIME is not a date-time"))?,
            );
        } else if let Some(value) = line.strip_prefix("#EXTINF:") {
            let number = value.split(',').next().unwrap_or("");
            let duration: f64 = number
                .trim()
                .parse()
                .map_err(|_| bad("EXTINF duration is not a number"))?;
            if !(duration > 0.0 && duration.is_finite()) {
                return Err(bad("EXTINF duration must be positive"));
            }
            pending_duration = Some(duration);
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            return Err(PlaylistError::Master);
        } else if line.starts_with('#') {
            // Other tags (DISCONTINUITY, TARGETDURATION, ...) change nothing
            // this import keeps: holes show in the start times.
        } else {
            let duration = pending_duration
                .take()
                .ok_or_else(|| bad("a segment URI without #EXTINF before it"))?;
            let key = resolve(playlist_key, line)
                .ok_or_else(|| bad("segment URI is absolute or leaves the bucket"))?;
            segments.push(ListedSegment {
                key,
                duration,
                start: clock,
                sequence,
            });
            sequence += 1;
            clock = clock.map(|t| t + (duration * MICROS_PER_SECOND as f64).round() as Micros);
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffmpeg_playlists_with_program_date_time() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:00:00.480+0000\n#EXTINF:6.000000,\nseg007.ts\n\
                    #EXTINF:5.960000,\nsub/seg008.ts\n#EXT-X-DISCONTINUITY\n\
                    #EXT-X-PROGRAM-DATE-TIME:2026-11-25T10:01:00Z\n#EXTINF:6,\n../other/seg009.ts\n";
        let segments = parse(text, "live/cam1/index.m3u8").unwrap();
        let t0 = parse_date_time("2026-11-25T10:00:00.480Z").unwrap();
        assert_eq!(segments.len(), 3);
        assert_eq!(
            segments[0],
            ListedSegment {
                key: "live/cam1/seg007.ts".into(),
                duration: 6.0,
                start: Some(t0),
                sequence: 7
            }
        );
        assert_eq!(segments[1].key, "live/cam1/sub/seg008.ts");
        assert_eq!(segments[1].start, Some(t0 + 6_000_000));
        assert_eq!(segments[2].key, "live/other/seg009.ts");
        assert_eq!(
            segments[2].start,
            parse_date_time("2026-11-25T10:01:00+08:00").map(|t| t + 8 * 3_600_000_000)
        );
        assert_eq!(segments[2].sequence, 9);
    }

    #[test]
    fn without_program_date_time_starts_are_unknown() {
        let segments = parse("#EXTM3U\n#EXTINF:4.5,\na%20b.ts\n", "index.m3u8").unwrap();
        assert_eq!(segments[0].key, "a b.ts");
        assert_eq!(segments[0].start, None);
    }

    #[test]
    fn offsets_of_every_form_parse() {
        let z = parse_date_time("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(parse_date_time("2026-11-25T10:00:00+0000"), Some(z));
        assert_eq!(parse_date_time("2026-11-25T18:00:00.000+08:00"), Some(z));
        assert_eq!(parse_date_time("2026-11-25T18:00:00.000+0800"), Some(z));
        assert_eq!(parse_date_time("yesterday"), None);
    }

    #[test]
    fn bad_playlists_are_errors() {
        assert_eq!(parse("hello", "a.m3u8"), Err(PlaylistError::NotM3u8));
        assert_eq!(
            parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "a.m3u8"),
            Err(PlaylistError::Master)
        );
        assert!(matches!(
            parse("#EXTM3U\nseg.ts\n", "a.m3u8"),
            Err(PlaylistError::Line { line: 2, .. })
        ));
        assert!(parse("#EXTM3U\n#EXTINF:x,\nseg.ts\n", "a.m3u8").is_err());
        assert!(parse("#EXTM3U\n#EXTINF:6,\nhttp://cdn/seg.ts\n", "a.m3u8").is_err());
        assert!(parse("#EXTM3U\n#EXTINF:6,\n../../seg.ts\n", "a/b.m3u8").is_err());
    }
}
