//! The playback HTTP listener: HTTP/1.1 and HTTP/2 (prior knowledge) on
//! one port, `GET` and `HEAD` of the playlist URLs of [`super::routes`].
//! Each request is authenticated (the domain's account), admitted against
//! that account's `Playback` limit, answered from the catalog, logged and
//! counted like an RPC. Errors are JSON `{"Code", "Message", "RequestId"}`
//! with the codes Create uses.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, RETRY_AFTER};
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::routes::{self, NoSuchPath};
use super::signing::{self, SigningKeys};
use crate::admission::Admission;
use crate::auth::Accounts;
use crate::error::{ApiError, quote};
use crate::manifest::{MICROS_PER_SECOND, Micros, Segment};
use crate::operations::Operation;
use crate::service::IndexService;
use crate::service::playback::PlaylistAnswer;
use crate::telemetry;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// How long a cache may keep a playlist that will not change.
const CLOSED_MAX_AGE_SECS: u64 = 86_400;

pub struct Playback {
    pub service: Arc<IndexService>,
    pub accounts: Arc<Accounts>,
    pub admission: Arc<dyn Admission>,
    /// How long after its last segment a live range ends.
    pub live_idle: Micros,
    /// Each account's URL signing keys; an account without any has no
    /// playback.
    pub keys: BTreeMap<String, SigningKeys>,
    /// Local mode: loopback only, and no signature is asked for.
    pub local_mode: bool,
}

/// Why a request got no playlist.
enum Refusal {
    Api(ApiError),
    NotFound,
    Method,
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Refusal {
        Refusal::Api(err)
    }
}

impl Playback {
    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        telemetry::request_started();
        let request_id = request_id_of(&request);
        let path = request.uri().path().to_string();
        let head = request.method() == Method::HEAD;
        let (mut response, code) = match self.answer(&request).await {
            Ok(answer) => (playlist_response(&request, answer, head), "OK".to_string()),
            Err(refusal) => refused(refusal, &request_id),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let elapsed = started.elapsed();
        telemetry::request_finished(Operation::Playback.name(), &code, elapsed);
        tracing::info!(
            rpc = "Playback",
            request_id,
            code,
            status = response.status().as_u16(),
            path = %quote(&path),
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request served"
        );
        response
    }

    async fn answer(&self, request: &Request<Body>) -> Result<PlaylistAnswer, Refusal> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Err(Refusal::Method);
        }
        let (path, query) = (request.uri().path(), request.uri().query());
        let domain = routes::domain_of(path).ok_or(Refusal::NotFound)?;
        let caller = self.accounts.owner_of(&domain).ok_or_else(|| {
            ApiError::ForbiddenRam(format!("domain {} belongs to no account", quote(&domain)))
        })?;
        // Before anything else is read, as a bad signature must read
        // nothing.
        self.check_signature(&caller.account.id, path, query)?;
        let route = match routes::parse(path, query)? {
            Ok(route) => route,
            Err(NoSuchPath) => return Err(Refusal::NotFound),
        };
        self.admission
            .admit_or_throttle(&caller.account.id, Operation::Playback)
            .await?;
        let storage = &self.service.storage;
        let uri_for = |s: &Segment| -> String { storage.url(&s.endpoint, &s.bucket, &s.object) };
        let answer = self
            .service
            .playlist(&caller, &route.playlist, self.live_idle, &uri_for)
            .await?;
        Ok(answer)
    }

    /// The URL must carry a valid `auth_key` of the account's keys, except
    /// in local mode.
    fn check_signature(
        &self,
        account: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.local_mode {
            return Ok(());
        }
        let keys = self.keys.get(account).ok_or_else(|| {
            ApiError::ForbiddenRam(format!("account {account} has no playback signing keys"))
        })?;
        let now = self.service.clock.now().div_euclid(MICROS_PER_SECOND);
        signing::verify_query(path, query, keys, now)
            .map(|_| ())
            .map_err(|err| ApiError::ForbiddenRam(err.to_string()))
    }

    /// Serves players on `listener` until `shutdown` resolves; a
    /// connection that has not sent a whole request head within
    /// `header_timeout` is closed.
    pub async fn serve(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        header_timeout: std::time::Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), hyper::Error> {
        let make = make_service_fn(move |_| {
            let playback = self.clone();
            async move {
                Ok::<_, Infallible>(service_fn(move |request| {
                    let playback = playback.clone();
                    async move { Ok::<_, Infallible>(playback.handle(request).await) }
                }))
            }
        });
        hyper::Server::from_tcp(listener)?
            .http1_header_read_timeout(header_timeout)
            .serve(make)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The client's request id when it sent a sane one, else a new one.
fn request_id_of(request: &Request<Body>) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(crate::api::status::new_request_id)
}

/// A playlist with the headers caches and players need: a strong ETag
/// (a `304` when the client holds it already), and a Cache-Control that
/// keeps a closed playlist long and a live one for half its target
/// duration, so a player's reload finds the new segments.
fn playlist_response(
    request: &Request<Body>,
    answer: PlaylistAnswer,
    head: bool,
) -> Response<Body> {
    let digest = Sha256::digest(answer.text.as_bytes());
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));
    let cache = if answer.closed {
        format!("public, max-age={CLOSED_MAX_AGE_SECS}")
    } else {
        let half = (answer.target_duration / 2 / MICROS_PER_SECOND).max(1);
        format!("public, max-age={half}")
    };
    let held = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let (status, body) = if held {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if head {
        (StatusCode::OK, Body::empty())
    } else {
        (StatusCode::OK, Body::from(answer.text.clone()))
    };
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, PLAYLIST_TYPE)
        .header(ETAG, etag)
        .header(CACHE_CONTROL, cache);
    if head && !held {
        response = response.header(hyper::header::CONTENT_LENGTH, answer.text.len());
    }
    response.body(body).expect("valid response parts")
}

/// The JSON error answer, and the code logged and counted.
fn refused(refusal: Refusal, request_id: &str) -> (Response<Body>, String) {
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
        Refusal::Method => (
            405,
            "InvalidParams".to_string(),
            "GET or HEAD a playlist".into(),
            None,
        ),
    };
    let body = serde_json::json!({ "Code": code, "Message": message, "RequestId": request_id });
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(CONTENT_TYPE, "application/json")
        .header(CACHE_CONTROL, "no-store");
    if let Some(seconds) = retry_after {
        response = response.header(RETRY_AFTER, seconds);
    }
    (
        response
            .body(Body::from(body.to_string()))
            .expect("valid response parts"),
        code,
    )
}
