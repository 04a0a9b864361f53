//! The playback URLs, read into what a playlist request means; pure.
//!
//! - `/v1/{DomainName}/{AppName}/{StreamName}/index.m3u8?start=T[&end=T]`
//!   with optional `EndTimeIncluded` and `ClipMode`, as on Create; `T` is
//!   `yyyy-MM-ddTHH:mm:ssZ` or Unix seconds. Without `end`, the range runs
//!   to the live edge.
//! - `.../archive-{from}-{duration}.m3u8` and `.../archive-{from}-now.m3u8`,
//!   Unix seconds, as Flussonic names its archive.
//! - `.../iframes.m3u8?start=T[&end=T]`, with the options of `index.m3u8`:
//!   the I-frame playlist of the same range.
//! - `.../master.m3u8?start=T[&end=T]&Renditions=_hd,_sd`: a master playlist
//!   over the renditions StreamName + suffix, each its own `index.m3u8` and
//!   `iframes.m3u8`.
//!
//! Other query parameters are ignored (players add cache busters), except
//! `auth_key`, which the listener checks. A parameter the route reads may
//! be given once: which of two a cache in front keys on is anyone's guess.
//! [`url_of`] writes the URL of a request, as SignPlaybackUrl hands it out.

use percent_encoding::percent_decode_str;

use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::time::{format_request_time, parse_request_time};
use crate::manifest::uri::encode_key;
use crate::manifest::{MICROS_PER_SECOND, Micros};
use crate::service::playback::PlaylistRequest;
use crate::service::window::ClipMode;

/// Latest Unix second a time may name: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// A playback request, read from its path and query.
#[derive(Debug, Clone)]
pub struct Route {
    pub playlist: PlaylistRequest,
    /// For `master.m3u8`: the renditions' suffixes (`Renditions`,
    /// comma-separated, as on Create).
    pub renditions: Option<Vec<String>>,
    /// For `iframes.m3u8`: the range's keyframes rather than its segments.
    pub iframes: bool,
}

/// Why a URL names nothing: the listener answers 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchPath;

/// Reads `path` (as sent, percent-encoded) and `query`: `Ok(Err(..))` when
/// the path names no playlist, `Err` when it does but the request is bad.
pub fn parse(path: &str, query: Option<&str>) -> ApiResult<Result<Route, NoSuchPath>> {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Ok(Err(NoSuchPath));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [domain, app, stream, file] = parts.as_slice() else {
        return Ok(Err(NoSuchPath));
    };
    let params = Params::parse(query.unwrap_or(""));
    let (start, end) = match *file {
        "index.m3u8" | "iframes.m3u8" | "master.m3u8" => {
            let start = params.get("start")?.ok_or_else(|| {
                ApiError::InvalidParams("start is required: the range's first instant".into())
            })?;
            let start = instant(&start).ok_or_else(|| {
                ApiError::StartTimeMalformed(
                    "start must be yyyy-MM-ddTHH:mm:ssZ or Unix seconds".into(),
                )
            })?;
            let end = match params.get("end")? {
                Some(end) => Some(instant(&end).ok_or_else(|| {
                    ApiError::EndTimeMalformed(
                        "end must be yyyy-MM-ddTHH:mm:ssZ or Unix seconds".into(),
                    )
                })?),
                None => None,
            };
            (start, end)
        }
        other => match archive(other)? {
            Some(range) => range,
            None => return Ok(Err(NoSuchPath)),
        },
    };
    let included = match params.get("EndTimeIncluded")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidParams(
                "EndTimeIncluded must be true or false".into(),
            ));
        }
    };
    let clip_mode = ClipMode::parse(params.get("ClipMode")?.as_deref().unwrap_or(""))?;
    let renditions = match *file {
        "master.m3u8" => Some(
            params
                .get("Renditions")?
                .map(|list| list.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        ),
        _ => None,
    };
    Ok(Ok(Route {
        playlist: PlaylistRequest {
            domain_name: decode(domain, "DomainName")?,
            app_name: decode(app, "AppName")?,
            stream_name: decode(stream, "StreamName")?,
            start,
            end,
            end_time_included: included,
            clip_mode,
        },
        renditions,
        iframes: *file == "iframes.m3u8",
    }))
}

/// The path and the query (without `?`) of the URL that asks for
/// `playlist`: its `index.m3u8`, or with `renditions` the `master.m3u8`
/// over them. Times are written as Create takes them, whole seconds;
/// options only when they differ from the defaults. [`parse`] reads the
/// URL back into the same request.
pub fn url_of(playlist: &PlaylistRequest, renditions: &[String]) -> (String, String) {
    let file = if renditions.is_empty() {
        "index.m3u8"
    } else {
        "master.m3u8"
    };
    let path = format!(
        "/v1/{}/{}/{}/{file}",
        encode_key(&playlist.domain_name),
        encode_key(&playlist.app_name),
        encode_key(&playlist.stream_name)
    );
    // Each value is of characters a query carries as they are: times,
    // and suffixes of a name's characters.
    let mut query = format!("start={}", format_request_time(playlist.start));
    if let Some(end) = playlist.end {
        query.push_str(&format!("&end={}", format_request_time(end)));
    }
    if playlist.end_time_included {
        query.push_str("&EndTimeIncluded=true");
    }
    if playlist.clip_mode == ClipMode::Keyframe {
        query.push_str("&ClipMode=KEYFRAME");
    }
    if !renditions.is_empty() {
        let list: Vec<String> = renditions.iter().map(|s| encode_key(s)).collect();
        query.push_str(&format!("&Renditions={}", list.join(",")));
    }
    (path, query)
}

/// The domain a playback path names, decoded, before the rest is read:
/// what decides whose signature the URL must carry. `None` for a path
/// outside `/v1/`; a domain that is not UTF-8 is refused as [`parse`]
/// refuses the other names.
pub fn domain_of(path: &str) -> Option<ApiResult<String>> {
    let domain = path.strip_prefix("/v1/")?.split('/').next()?;
    Some(decode(domain, "DomainName"))
}

/// `archive-{from}-{duration}.m3u8` or `archive-{from}-now.m3u8`: the
/// range, or `None` when the name is not of that form.
fn archive(file: &str) -> ApiResult<Option<(Micros, Option<Micros>)>> {
    let Some(inner) = file
        .strip_prefix("archive-")
        .and_then(|rest| rest.strip_suffix(".m3u8"))
    else {
        return Ok(None);
    };
    let Some((from, length)) = inner.split_once('-') else {
        return Ok(None);
    };
    let from = unix_seconds(from).ok_or_else(|| {
        ApiError::StartTimeMalformed("the archive's start must be Unix seconds".into())
    })?;
    if length == "now" {
        return Ok(Some((from, None)));
    }
    let seconds: i64 = match length.parse() {
        Ok(seconds) if length.bytes().all(|b| b.is_ascii_digit()) && seconds > 0 => seconds,
        _ => {
            return Err(ApiError::EndTimeMalformed(
                "the archive's duration must be whole seconds, more than 0, or now".into(),
            ));
        }
    };
    let end = seconds
        .checked_mul(MICROS_PER_SECOND)
        .and_then(|length| from.checked_add(length))
        .ok_or_else(|| ApiError::EndTimeMalformed("the archive's duration is too long".into()))?;
    Ok(Some((from, Some(end))))
}

/// A time as Create takes it, or Unix seconds.
fn instant(value: &str) -> Option<Micros> {
    unix_seconds(value).or_else(|| parse_request_time(value))
}

fn unix_seconds(value: &str) -> Option<Micros> {
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = value.parse().ok()?;
    (seconds <= MAX_UNIX_SECONDS).then(|| seconds * MICROS_PER_SECOND)
}

/// A path segment decoded; names are checked by the service.
fn decode(segment: &str, field: &str) -> ApiResult<String> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|_| ApiError::InvalidParams(format!("{field} {} is not UTF-8", quote(segment))))
}

/// The query's parameters, decoded.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        let decode = |text: &str| {
            percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Params(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(name), decode(value))
                })
                .collect(),
        )
    }

    /// The value of `name`, which may be given once. Names compare
    /// decoded, so `%73tart` is `start` as a cache that decodes sees it.
    fn get(&self, name: &str) -> ApiResult<Option<String>> {
        let mut values = self.0.iter().filter(|(key, _)| key == name);
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(ApiError::InvalidParams(format!(
                "{name} is given more than once"
            ))),
            (first, None) => Ok(first.map(|(_, value)| value.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Micros = 1_795_089_600 * MICROS_PER_SECOND;

    fn route(path: &str, query: &str) -> Route {
        parse(path, Some(query)).unwrap().unwrap()
    }

    #[test]
    fn index_takes_either_time_form_and_create_options() {
        let r = route(
            "/v1/example.com/live/cam%201/index.m3u8",
            "start=2026-11-19T12:00:00Z&end=1795093200&ClipMode=KEYFRAME&EndTimeIncluded=true&x=1",
        );
        let p = &r.playlist;
        assert_eq!(
            (p.domain_name.as_str(), p.app_name.as_str()),
            ("example.com", "live")
        );
        assert_eq!(p.stream_name, "cam 1");
        assert_eq!((p.start, p.end), (T, Some(T + 3600 * MICROS_PER_SECOND)));
        assert_eq!(p.clip_mode, ClipMode::Keyframe);
        assert!(p.end_time_included);
        // The signature is the listener's to check: it changes nothing here.
        let live = route(
            "/v1/d.com/live/s/index.m3u8",
            "start=1795089600&auth_key=1-a-0-f",
        );
        assert_eq!(live.playlist.end, None);
    }

    #[test]
    fn a_written_url_reads_back_as_its_request() {
        let mut playlist = route("/v1/d.com/live/s/index.m3u8", "start=1795089600").playlist;
        for (end, included, clip_mode, renditions) in [
            (None, false, ClipMode::Segment, vec![]),
            (
                Some(T + 60 * MICROS_PER_SECOND),
                true,
                ClipMode::Keyframe,
                vec![],
            ),
            (
                Some(T + 1),
                false,
                ClipMode::Segment,
                vec!["_hd".to_string(), "_sd".into()],
            ),
        ] {
            playlist.end = end;
            playlist.end_time_included = included;
            playlist.clip_mode = clip_mode;
            let (path, query) = url_of(&playlist, &renditions);
            let read = route(&path, &query);
            let p = &read.playlist;
            assert_eq!(
                (p.start, p.end),
                (T, end.map(|e| e - e % MICROS_PER_SECOND))
            );
            assert_eq!((p.end_time_included, p.clip_mode), (included, clip_mode));
            assert_eq!(p.stream_name, "s");
            let listed = (!renditions.is_empty()).then_some(renditions);
            assert_eq!(read.renditions, listed, "{path}?{query}");
        }
        let (path, query) = url_of(&playlist, &[]);
        assert_eq!(path, "/v1/d.com/live/s/index.m3u8");
        assert_eq!(query, "start=2026-11-19T12:00:00Z&end=2026-11-19T12:00:00Z");
    }

    #[test]
    fn iframes_take_what_index_takes() {
        let r = route(
            "/v1/d.com/live/s/iframes.m3u8",
            "start=1795089600&end=1795093200&ClipMode=KEYFRAME",
        );
        assert!(r.iframes && r.renditions.is_none());
        assert_eq!(
            (r.playlist.start, r.playlist.end),
            (T, Some(T + 3600 * MICROS_PER_SECOND))
        );
        assert_eq!(r.playlist.clip_mode, ClipMode::Keyframe);
        assert!(!route("/v1/d.com/live/s/index.m3u8", "start=1").iframes);
        let path = "/v1/d.com/live/s/iframes.m3u8";
        assert!(matches!(parse(path, None), Err(ApiError::InvalidParams(_))));
        assert!(matches!(
            parse(path, Some("start=1795089600&end=noon")),
            Err(ApiError::EndTimeMalformed(_))
        ));
    }

    #[test]
    fn archive_forms_are_unix_seconds() {
        let r = route("/v1/d.com/live/s/archive-1795089600-3600.m3u8", "");
        assert_eq!(
            (r.playlist.start, r.playlist.end),
            (T, Some(T + 3600 * MICROS_PER_SECOND))
        );
        let r = route("/v1/d.com/live/s/archive-1795089600-now.m3u8", "");
        assert_eq!((r.playlist.start, r.playlist.end), (T, None));
        for bad in [
            "archive-x-60.m3u8",
            "archive-1795089600-0.m3u8",
            "archive-1795089600-+5.m3u8",
        ] {
            let path = format!("/v1/d.com/live/s/{bad}");
            assert!(parse(&path, None).is_err(), "{bad}");
        }
        let huge = format!("/v1/d.com/live/s/archive-1795089600-{}.m3u8", i64::MAX);
        assert!(matches!(
            parse(&huge, None),
            Err(ApiError::EndTimeMalformed(_))
        ));
    }

    #[test]
    fn a_parameter_the_route_reads_is_given_once() {
        let path = "/v1/d.com/live/s/index.m3u8";
        for query in [
            "start=1795089600&start=1795089601",
            "start=1795089600&%73tart=1795089601",
            "start=1795089600&end=1795093200&end=1795093201",
            "start=1795089600&EndTimeIncluded=true&EndTimeIncluded=false",
            "start=1795089600&ClipMode=KEYFRAME&ClipMode=SEGMENT",
        ] {
            let err = parse(path, Some(query)).unwrap_err();
            assert!(
                matches!(&err, ApiError::InvalidParams(m) if m.contains("more than once")),
                "{query}: {err}"
            );
        }
        let master = "/v1/d.com/live/s/master.m3u8";
        let twice = parse(master, Some("start=1795089600&Renditions=_a&Renditions=_b"));
        assert!(matches!(twice, Err(ApiError::InvalidParams(_))));
        // Parameters the route does not read may repeat (cache busters);
        // Renditions is read by master.m3u8 only.
        route(path, "start=1795089600&x=1&x=2&Renditions=_a&Renditions=_b");
    }

    #[test]
    fn the_domain_is_read_first_and_must_be_utf8() {
        let domain = |path: &str| domain_of(path).map(|d| d.map_err(|e| e.code()));
        assert_eq!(
            domain("/v1/ex%61mple.com/live/s/index.m3u8"),
            Some(Ok("example.com".to_string()))
        );
        assert_eq!(
            domain("/v1/%FF/live/s/index.m3u8"),
            Some(Err("InvalidParams"))
        );
        assert_eq!(
            domain("/v1/%C0%AE/live/s/index.m3u8"),
            Some(Err("InvalidParams"))
        );
        assert_eq!(domain("/v2/example.com/live/s/index.m3u8"), None);
    }

    #[test]
    fn bad_requests_get_their_codes_and_unknown_paths_none() {
        let path = "/v1/d.com/live/s/index.m3u8";
        assert!(matches!(parse(path, None), Err(ApiError::InvalidParams(_))));
        assert!(matches!(
            parse(path, Some("start=yesterday")),
            Err(ApiError::StartTimeMalformed(_))
        ));
        assert!(matches!(
            parse(path, Some("start=1795089600&end=99999999999999")),
            Err(ApiError::EndTimeMalformed(_))
        ));
        assert!(matches!(
            parse(path, Some("start=1795089600&ClipMode=FAST")),
            Err(ApiError::InvalidParams(_))
        ));
        for other in [
            "/",
            "/v1/d.com/live/index.m3u8",
            "/v1/d.com/live/s/x.ts",
            "/v2/a/b/c/index.m3u8",
        ] {
            assert_eq!(
                parse(other, None).unwrap().unwrap_err(),
                NoSuchPath,
                "{other}"
            );
        }
    }
}
