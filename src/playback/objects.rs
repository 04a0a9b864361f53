//! The objects of local-directory endpoints, served by the playback
//! listener in local mode at `/objects/{OssEndpoint}/{OssBucket}/{OssObject}`:
//! a browser cannot read the `file://` URLs of a local directory, so the
//! playlists made per request point their segments here instead, on the
//! listener's own origin.
//!
//! Only local mode serves them: there no URL carries a token, the
//! listener is on loopback, and the one account owns every bucket. A
//! service with accounts would have to tell whose bucket a URL names
//! before reading it; it serves no objects.
//!
//! `GET` and `HEAD`, one `Range: bytes=` range (see [`super::byte_ranges`]),
//! ETag and Last-Modified, streamed from the file. Names are checked as
//! Create checks them (no `.`, `..` or empty segment, no `\`, no control
//! character, no encoded `/`), and the file opened must lie inside the
//! store (see [`crate::storage::LocalStore::open_object`]).

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use hyper::{Body, Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::answer::Refusal;
use super::byte_ranges::{self, Part, Validators};
use super::{host, sending};
use crate::admission::Admission;
use crate::config::LOCAL_ACCOUNT;
use crate::error::{ApiError, quote};
use crate::manifest::names;
use crate::manifest::uri::encode_key;
use crate::operations::Operation;
use crate::storage::{OpenedObject, Storage, StorageError};

/// Where the object URLs start: apart from the playlists' `/v1/`.
pub const PREFIX: &str = "/objects/";
/// Most objects open and being sent at once. Each holds a file descriptor
/// beside its connection's, and one HTTP/2 connection can ask for many at
/// once: without a bound, clients that read nothing would take the
/// descriptors the rest of the service needs.
pub const MAX_SENT_AT_ONCE: usize = 64;

/// Whether `path` is one this module answers.
pub fn is_object_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// The root-relative URL of an object, each part percent-encoded.
pub fn uri(endpoint: &str, bucket: &str, key: &str) -> String {
    format!(
        "{PREFIX}{}/{}/{}",
        encode_key(endpoint),
        encode_key(bucket),
        encode_key(key)
    )
}

/// The objects of the local-directory endpoints, read for players.
pub struct Objects {
    storage: Storage,
    admission: Arc<dyn Admission>,
    /// One permit per object open, held until its answer is sent or given
    /// up.
    sending: Arc<Semaphore>,
}

impl Objects {
    /// For local mode only: every request is the `local` account's.
    pub fn for_local_mode(storage: Storage, admission: Arc<dyn Admission>) -> Objects {
        Objects {
            storage,
            admission,
            sending: Arc::new(Semaphore::new(MAX_SENT_AT_ONCE)),
        }
    }

    /// Where a player fetches `key` of `bucket` on `endpoint`, when this
    /// serves that endpoint.
    pub fn uri(&self, endpoint: &str, bucket: &str, key: &str) -> Option<String> {
        self.storage
            .is_local(endpoint)
            .then(|| uri(endpoint, bucket, key))
    }

    /// The answer to a request for an object path.
    pub async fn answer(&self, request: &Request<Body>) -> Result<Response<Body>, Refusal> {
        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return Err(Refusal::Method),
        };
        if !loopback_host(request) {
            return Err(ApiError::ForbiddenRam(
                "objects are served for a loopback host only (localhost, 127.0.0.1, [::1])".into(),
            )
            .into());
        }
        let object = ObjectPath::parse(request.uri().path())?;
        if !self.storage.is_local(&object.endpoint) {
            return Err(ApiError::OssEndpointMalformed(format!(
                "{} is not a local-directory endpoint: only their objects are served",
                quote(&object.endpoint)
            ))
            .into());
        }
        self.admission
            .admit_or_throttle(LOCAL_ACCOUNT, Operation::Playback)
            .await?;
        let permit = self.sending.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable(format!(
                "{MAX_SENT_AT_ONCE} objects are being sent already; try again once one is done"
            ))
        })?;
        let opened = self
            .storage
            .open_local(&object.endpoint, &object.bucket, &object.key)
            .await
            .map_err(|err| match err {
                StorageError::NotFound | StorageError::Rejected(_) => Refusal::Missing(format!(
                    "no object {} in bucket {} of {}",
                    quote(&object.key),
                    quote(&object.bucket),
                    quote(&object.endpoint)
                )),
                other => Refusal::Api(ApiError::Internal {
                    message: format!("the object could not be read: {other}"),
                    unavailable: true,
                }),
            })?;
        let answer = Answer {
            head,
            content_type: content_type(&object.key),
            permit,
        };
        respond(request.headers(), answer, opened)
    }
}

/// An object URL's parts, decoded and checked.
#[derive(Debug, PartialEq, Eq)]
struct ObjectPath {
    endpoint: String,
    bucket: String,
    key: String,
}

impl ObjectPath {
    fn parse(path: &str) -> Result<ObjectPath, Refusal> {
        let missing = || {
            Refusal::Missing(
                "no object at this path: /objects/{OssEndpoint}/{OssBucket}/{OssObject}".into(),
            )
        };
        let rest = path.strip_prefix(PREFIX).ok_or_else(missing)?;
        let mut parts = rest.splitn(3, '/');
        let (Some(endpoint), Some(bucket), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(missing());
        };
        let endpoint = decode(endpoint)
            .filter(|name| names::is_endpoint(name))
            .ok_or_else(|| {
                ApiError::OssEndpointMalformed(format!(
                    "{} is not a host name (optionally with :port)",
                    quote(endpoint)
                ))
            })?;
        let bucket = decode(bucket)
            .filter(|name| names::is_bucket(name))
            .ok_or_else(|| {
                ApiError::OssBucketMalformed(format!(
                    "{} is not 3 to 63 characters of [a-z0-9-]",
                    quote(bucket)
                ))
            })?;
        let key = object_key(path, key)?;
        Ok(ObjectPath {
            endpoint,
            bucket,
            key,
        })
    }
}

/// The object key of an object path from `encoded`, its segments after
/// the bucket's, each decoded on its own. An encoded `/` or `\` would make
/// two segments of one, past the checks of each: refused.
fn object_key(path: &str, encoded: &str) -> Result<String, ApiError> {
    let malformed = |why: &str| {
        ApiError::OssObjectMalformed(format!("the object key of {}: {why}", quote(path)))
    };
    let mut key = String::with_capacity(encoded.len());
    for (i, part) in encoded.split('/').enumerate() {
        let decoded = decode(part).ok_or_else(|| malformed("not UTF-8"))?;
        if decoded.contains(['/', '\\']) {
            return Err(malformed("a '\\' or an encoded '/' in a path segment"));
        }
        if i > 0 {
            key.push('/');
        }
        key.push_str(&decoded);
    }
    names::check_object_key(&key).map_err(|why| malformed(&why))?;
    Ok(key)
}

fn decode(part: &str) -> Option<String> {
    percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

/// Whether the request names a loopback host: a web page whose own host
/// name an attacker points at 127.0.0.1 (DNS rebinding) sends its own name
/// and is refused. A request without any host is no browser's.
fn loopback_host(request: &Request<Body>) -> bool {
    let host = match host::of(request) {
        Err(_) => return false,
        Ok(None) => return true,
        Ok(Some(host)) => host,
    };
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The Content-Type of a key, by its extension; what is not media is sent
/// as bytes, never as a page a browser would render.
fn content_type(key: &str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension.to_ascii_lowercase().as_str() {
        "ts" => "video/mp2t",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mp4" | "m4s" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "flv" => "video/x-flv",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// What the answer for an opened object is to be.
struct Answer {
    head: bool,
    content_type: &'static str,
    /// Held until the body is sent or given up.
    permit: OwnedSemaphorePermit,
}

/// The answer for an opened object: `304` when the client holds it, the
/// range asked for (`206`, or `416` for none of its bytes), else all of
/// it; the body streamed from the file.
fn respond(
    headers: &HeaderMap,
    answer: Answer,
    opened: OpenedObject,
) -> Result<Response<Body>, Refusal> {
    let Answer {
        head,
        content_type,
        permit,
    } = answer;
    let text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let size = opened.size;
    let validators = Validators::new(size, opened.modified);
    let response = Response::builder()
        .header(ETAG, &validators.etag)
        .header(LAST_MODIFIED, &validators.last_modified)
        // Objects can be rewritten under their key: revalidated each time,
        // which the ETag makes a 304.
        .header(CACHE_CONTROL, "no-cache")
        .header(ACCEPT_RANGES, "bytes");
    if validators.not_modified(text(IF_NONE_MATCH), text(IF_MODIFIED_SINCE)) {
        return Ok(response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response parts"));
    }
    // Range is a GET's only; HEAD gets the whole object's headers. Two
    // Range fields are several ranges, which get the whole object too.
    let mut ranges = headers.get_all(RANGE).iter();
    let one_range = match (ranges.next(), ranges.next()) {
        (Some(one), None) => one.to_str().ok(),
        _ => None,
    };
    let asked = if head || !validators.range_allowed(text(IF_RANGE)) {
        Part::Whole
    } else {
        byte_ranges::part(one_range, size)
    };
    let (status, first, len, response) = match asked {
        Part::Unsatisfiable => return Err(Refusal::Unsatisfiable { size }),
        Part::Whole => (StatusCode::OK, 0, size, response),
        Part::Range { first, last } => {
            let range = format!("bytes {first}-{last}/{size}");
            let response = response.header(CONTENT_RANGE, range);
            (
                StatusCode::PARTIAL_CONTENT,
                first,
                last - first + 1,
                response,
            )
        }
    };
    let response = response
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, len)
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", "sandbox");
    let body = if head || len == 0 {
        Body::empty()
    } else {
        sending::file(opened.file, first, len, permit)
    };
    Ok(response.body(body).expect("valid response parts"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HOST;

    fn parsed(path: &str) -> Result<ObjectPath, String> {
        ObjectPath::parse(path).map_err(|refusal| match refusal {
            Refusal::Api(err) => err.code().to_string(),
            Refusal::Missing(_) => "missing".to_string(),
            _ => "other".to_string(),
        })
    }

    #[test]
    fn object_urls_read_back_as_their_parts() {
        let url = uri("localhost:8080", "demo-bucket", "live/cam 1/000+a.ts");
        assert_eq!(
            url,
            "/objects/localhost%3A8080/demo-bucket/live/cam%201/000%2Ba.ts"
        );
        assert_eq!(
            parsed(&url).unwrap(),
            ObjectPath {
                endpoint: "localhost:8080".into(),
                bucket: "demo-bucket".into(),
                key: "live/cam 1/000+a.ts".into(),
            }
        );
        assert!(is_object_path(&url));
        assert!(!is_object_path("/v1/objects/a/b/c"));
    }

    #[test]
    fn traversal_and_odd_names_are_refused() {
        let object = "InvalidOssObject.Malformed";
        for (path, code) in [
            ("/objects/localhost/b01/../../etc/passwd", object),
            ("/objects/localhost/b01/a/%2e%2e/%2E%2E/x", object),
            ("/objects/localhost/b01/..%2f..%2fetc%2fpasswd", object),
            ("/objects/localhost/b01/a%2Fb.ts", object),
            ("/objects/localhost/b01/..%5c..%5cx", object),
            ("/objects/localhost/b01/a\\b.ts", object),
            ("/objects/localhost/b01//etc/passwd", object),
            ("/objects/localhost/b01/a/./b.ts", object),
            ("/objects/localhost/b01/a.ts%00.jpg", object),
            ("/objects/localhost/b01/%ff.ts", object),
            ("/objects/localhost/b01/a/", object),
            ("/objects/localhost/b01/", object),
            ("/objects/localhost/..", "missing"),
            (
                "/objects/localhost/%2e%2e/x.ts",
                "InvalidOssBucket.Malformed",
            ),
            (
                "/objects/localhost/.record-index-tmp/x",
                "InvalidOssBucket.Malformed",
            ),
            ("/objects/localhost/Bkt/x.ts", "InvalidOssBucket.Malformed"),
            ("/objects/../b01/x.ts", "InvalidOssEndpoint.Malformed"),
            ("/objects/%2F/b01/x.ts", "InvalidOssEndpoint.Malformed"),
            ("/objects/", "missing"),
            ("/objects/localhost", "missing"),
        ] {
            assert_eq!(parsed(path).unwrap_err(), code, "{path}");
        }
    }

    #[test]
    fn media_gets_its_type_and_the_rest_is_bytes() {
        assert_eq!(content_type("live/a/000.TS"), "video/mp2t");
        assert_eq!(
            content_type("x/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type("x/page.html"), "application/octet-stream");
        assert_eq!(content_type("x.y/noext"), "application/octet-stream");
    }

    #[test]
    fn only_loopback_hosts_are_served() {
        let request = |host: Option<&str>| {
            let mut builder = Request::builder().uri("/objects/localhost/b01/a.ts");
            match host {
                Some(host) => builder = builder.header(HOST, host),
                None => builder = builder.version(hyper::Version::HTTP_10),
            }
            builder.body(Body::empty()).unwrap()
        };
        for good in [
            None,
            Some("127.0.0.1:8080"),
            Some("LOCALHOST:8080"),
            Some("player.localhost"),
            Some("[::1]:8080"),
            Some("127.9.9.9"),
        ] {
            assert!(loopback_host(&request(good)), "{good:?}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "10.0.0.1",
            "a b",
        ] {
            assert!(!loopback_host(&request(Some(bad))), "{bad}");
        }
        let absolute = Request::get("http://evil.example/objects/localhost/b01/a.ts")
            .header(HOST, "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        assert!(!loopback_host(&absolute));
    }
}
