//! The HTTP answers of the playback listener, as caches, browsers and
//! players expect them: the playlist with its ETag and Cache-Control,
//! gzip when asked for, the JSON errors (of objects too), and CORS for web
//! players on other origins.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{
    ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, ORIGIN, RETRY_AFTER,
    VARY,
};
use hyper::{Body, Response, StatusCode};

use crate::error::ApiError;
use crate::manifest::MICROS_PER_SECOND;
use crate::service::playback::PlaylistAnswer;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// How long a cache may keep a playlist that will not change.
const CLOSED_MAX_AGE_SECS: u64 = 86_400;
/// Smaller playlists go uncompressed: gzip would save less than its cost.
const GZIP_FROM_BYTES: usize = 512;

/// A playlist with the headers caches and players need: a strong ETag
/// per representation (a `304` when the client holds it already), and a
/// Cache-Control that keeps a closed playlist long and a live one for
/// half its target duration, so a player's reload finds new segments.
pub fn playlist(headers: &HeaderMap, answer: PlaylistAnswer, head: bool) -> Response<Body> {
    let gzip = answer.text.len() >= GZIP_FROM_BYTES && accepts_gzip(headers);
    // A 128-bit hash of the text: an ETag only has to tell versions of
    // one playlist apart, and this one costs a tenth of a SHA-256.
    let digest = xxhash_rust::xxh3::xxh3_128(answer.text.as_bytes());
    let etag = if gzip {
        format!("\"{digest:032x}-gz\"")
    } else {
        format!("\"{digest:032x}\"")
    };
    let max_age = if answer.closed {
        CLOSED_MAX_AGE_SECS
    } else {
        (answer.target_duration / 2 / MICROS_PER_SECOND).max(1) as u64
    };
    let max_age = answer
        .fresh_secs
        .map_or(max_age, |fresh| max_age.min(fresh));
    let cache = format!("public, max-age={max_age}");
    let response = Response::builder()
        .header(CONTENT_TYPE, PLAYLIST_TYPE)
        .header(ETAG, &etag)
        .header(CACHE_CONTROL, cache)
        .header(VARY, "Accept-Encoding");
    if holds(headers, &etag) {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response parts");
    }
    let body = if gzip {
        compress(answer.text.as_bytes())
    } else {
        answer.text.into_bytes()
    };
    let response = response
        .status(StatusCode::OK)
        .header(CONTENT_LENGTH, body.len());
    let response = if gzip {
        response.header(CONTENT_ENCODING, "gzip")
    } else {
        response
    };
    let body = if head {
        Body::empty()
    } else {
        super::sending::bytes(body)
    };
    response.body(body).expect("valid response parts")
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn holds(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|tag| tag == etag || tag == "*" || tag.strip_prefix("W/") == Some(etag))
        })
}

/// Fast compression: a playlist is text that repeats itself, and the
/// answer's time matters more than the last bytes.
fn compress(text: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 8), Compression::fast());
    encoder
        .write_all(text)
        .and_then(|()| encoder.finish())
        .expect("gzip into memory cannot fail")
}

/// Why a request got no playlist or object.
pub enum Refusal {
    Api(ApiError),
    NotFound,
    /// Nothing at the path, as the message says.
    Missing(String),
    Method,
    /// A Range of no byte of an object of `size` bytes.
    Unsatisfiable {
        size: u64,
    },
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Refusal {
        Refusal::Api(err)
    }
}

/// The JSON error answer, and the code logged and counted.
pub fn refused(refusal: Refusal, request_id: &str) -> (Response<Body>, String) {
    let mut response = Response::builder();
    match &refusal {
        Refusal::Method => response = response.header(ALLOW, "GET, HEAD, OPTIONS"),
        Refusal::Unsatisfiable { size } => {
            response = response.header(CONTENT_RANGE, format!("bytes */{size}"))
        }
        _ => {}
    }
    let (status, code, message, retry_after) = match refusal {
        Refusal::Api(err) => {
            let status = match &err {
                // Over HTTP, a stream with no recording is a missing
                // resource, as a player and a CDN expect.
                ApiError::StreamNotFound(_) | ApiError::NoRecordContent(_) => 404,
                other => other.http_status(),
            };
            let retry = match &err {
                ApiError::Throttled { retry_after, .. } => Some(retry_after.as_secs().max(1)),
                _ => None,
            };
            (status, err.code().to_string(), err.message(), retry)
        }
        Refusal::NotFound => (
            404,
            "InvalidParams".to_string(),
            "no playlist at this path: /v1/{DomainName}/{AppName}/{StreamName}/index.m3u8".into(),
            None,
        ),
        Refusal::Missing(message) => (404, "InvalidParams".to_string(), message, None),
        Refusal::Method => (
            405,
            "InvalidParams".to_string(),
            "only GET, HEAD and OPTIONS are answered".into(),
            None,
        ),
        Refusal::Unsatisfiable { size } => (
            416,
            "InvalidParams".to_string(),
            format!("the Range names no byte of the object ({size} bytes)"),
            None,
        ),
    };
    let body = serde_json::json!({ "Code": code, "Message": message, "RequestId": request_id });
    let mut response = response
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    if let Some(seconds) = retry_after {
        response = response.header(RETRY_AFTER, seconds);
    }
    let response = response
        .body(Body::from(body.to_string()))
        .expect("valid response parts");
    (response, code)
}

/// Which web origins may read the answers: `*`, or origins as a browser
/// sends them (`https://player.example.com`).
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: &[String]) -> Cors {
        Cors {
            origins: origins.to_vec(),
        }
    }

    /// The Allow-Origin value for a request's Origin, when it is allowed.
    fn allowed(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let origin = request.get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        if self.origins.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// Adds what lets a page of an allowed origin read `response`.
    pub fn apply(&self, request: &HeaderMap, response: &mut Response<Body>) {
        let Some(origin) = self.allowed(request) else {
            return;
        };
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(VARY, HeaderValue::from_static("Origin"));
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, Content-Length, Content-Range, x-request-id"),
        );
    }

    /// The answer to a preflight `OPTIONS`: what an allowed origin may
    /// send; nothing for another origin, which the browser then refuses.
    pub fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let mut response = Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .expect("valid response parts");
        if self.allowed(request).is_none() {
            return response;
        }
        self.apply(request, &mut response);
        let headers = response.headers_mut();
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        if let Some(asked) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn gzip_is_what_the_client_accepts() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "br, gzip")])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "GZIP;q=0.5")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn a_cache_keeps_a_playlist_by_its_state_and_its_urls() {
        let max_age = |closed: bool, fresh_secs: Option<u64>| {
            let answer = PlaylistAnswer {
                text: "#EXTM3U\n".into(),
                closed,
                target_duration: 6 * MICROS_PER_SECOND,
                fresh_secs,
            };
            let response = playlist(&headers(&[]), answer, false);
            response.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(max_age(true, None), "public, max-age=86400");
        assert_eq!(max_age(false, None), "public, max-age=3");
        assert_eq!(max_age(true, Some(90)), "public, max-age=90");
        assert_eq!(max_age(false, Some(90)), "public, max-age=3");
    }

    #[test]
    fn cors_allows_listed_origins_only() {
        let cors = Cors::new(&["https://player.example.com".to_string()]);
        let asked = headers(&[("origin", "https://player.example.com")]);
        assert_eq!(cors.allowed(&asked).unwrap(), "https://player.example.com");
        assert!(
            cors.allowed(&headers(&[("origin", "https://evil.example")]))
                .is_none()
        );
        assert!(cors.allowed(&headers(&[])).is_none());
        let any = Cors::new(&["*".to_string()]);
        assert_eq!(any.allowed(&asked).unwrap(), "*");
        let preflight = cors.preflight(&headers(&[
            ("origin", "https://player.example.com"),
            ("access-control-request-headers", "range"),
        ]));
        assert_eq!(preflight.status(), 204);
        assert_eq!(preflight.headers()[ACCESS_CONTROL_ALLOW_HEADERS], "range");
    }
}
