//! The playback HTTP listener: HTTP/1.1 and HTTP/2 (prior knowledge) on
//! one port, `GET` and `HEAD` of the playlist URLs of [`super::routes`].
//! Each request is authenticated (the domain's account), admitted against
//! that account's `Playback` limit, answered from the catalog, logged and
//! counted like an RPC. Errors are JSON `{"Code", "Message", "RequestId"}`
//! with the codes Create uses.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use hyper::header::HeaderValue;
use hyper::{Body, Method, Request, Response};

use super::answer::{self, Cors, Refusal};
use super::routes::{self, NoSuchPath};
use super::signing::{self, SigningKeys};
use crate::admission::Admission;
use crate::auth::Accounts;
use crate::connections::side::{self, SideLimits};
use crate::error::{ApiError, quote};
use crate::manifest::{MICROS_PER_SECOND, Micros, Segment};
use crate::operations::Operation;
use crate::service::IndexService;
use crate::service::playback::PlaylistAnswer;
use crate::storage::{SegmentUrl, SegmentUrls};
use crate::telemetry;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
    pub cors: Cors,
}

impl Playback {
    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        telemetry::request_started();
        let request_id = request_id_of(&request);
        let path = request.uri().path().to_string();
        let head = request.method() == Method::HEAD;
        let (mut response, code) = if request.method() == Method::OPTIONS {
            (self.cors.preflight(request.headers()), "OK".to_string())
        } else {
            match self.answer(&request).await {
                Ok(answer) => (
                    answer::playlist(request.headers(), answer, head),
                    "OK".to_string(),
                ),
                Err(refusal) => answer::refused(refusal, &request_id),
            }
        };
        if request.method() != Method::OPTIONS {
            self.cors.apply(request.headers(), &mut response);
        }
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
        let account = caller.account.id.clone();
        if let Some(suffixes) = &route.renditions {
            let variant_uri =
                |stream: &str, file: &str| self.variant_uri(&account, path, query, stream, file);
            let answer = self
                .service
                .master_playlist(&caller, &route.playlist, suffixes, &variant_uri)
                .await?;
            return Ok(answer);
        }
        let uris = |segments: &[&Segment]| self.segment_uris(&account, segments);
        let (playlist, idle) = (&route.playlist, self.live_idle);
        let answer = if route.iframes {
            self.service
                .iframe_playlist(&caller, playlist, idle, &uris)
                .await?
        } else {
            self.service
                .playlist(&caller, playlist, idle, &uris)
                .await?
        };
        Ok(answer)
    }

    /// Where a player fetches each segment, as its endpoint's
    /// `segment_urls` says: presigned GETs share one signing setup per
    /// endpoint; CDN URLs carry the account's Type A signature. A relative
    /// endpoint's segments get their object URL: a playlist made per
    /// request has no place beside the segments.
    fn segment_uris(&self, account: &str, segments: &[&Segment]) -> Vec<String> {
        let storage = &self.service.storage;
        let now = self.service.clock.now();
        let mut writers: Vec<(&str, Option<SegmentUrls>)> = Vec::new();
        let key = self.keys.get(account).map(SigningKeys::primary);
        // One signature nonce and instant for the playlist's CDN URLs.
        let (rand, seconds) = (signing::new_rand(), now.div_euclid(MICROS_PER_SECOND));
        segments
            .iter()
            .map(|segment| {
                let at = match writers.iter().position(|(e, _)| *e == segment.endpoint) {
                    Some(at) => at,
                    None => {
                        let urls = storage.segment_urls(&segment.endpoint, now).ok();
                        writers.push((&segment.endpoint, urls));
                        writers.len() - 1
                    }
                };
                let plain = || storage.url(&segment.endpoint, &segment.bucket, &segment.object);
                let Some(urls) = &writers[at].1 else {
                    return plain();
                };
                match urls.url(&segment.bucket, &segment.object) {
                    SegmentUrl::Direct(url) => url,
                    SegmentUrl::Cdn(url) => match key {
                        Some(key) => {
                            signing::sign_url(&url, key, seconds, &rand, "0").unwrap_or(url)
                        }
                        None => url,
                    },
                    SegmentUrl::Relative => plain(),
                }
            })
            .collect()
    }

    /// The URI a master playlist at `path` gives a rendition's playlist
    /// `file` (`index.m3u8`, `iframes.m3u8`): beside the master's stream,
    /// with the master's query (its range and options), signed for its own
    /// path when URLs are signed.
    fn variant_uri(
        &self,
        account: &str,
        path: &str,
        query: Option<&str>,
        stream: &str,
        file: &str,
    ) -> String {
        // A stream name holds no `/`, so this is one path segment.
        let encoded = crate::manifest::uri::encode_key(stream);
        let mut own_query: Vec<&str> = query
            .unwrap_or("")
            .split('&')
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                !pair.is_empty() && name != signing::PARAM && name != "Renditions"
            })
            .collect();
        let signed;
        if let (false, Some(keys)) = (self.local_mode, self.keys.get(account)) {
            // "/v1/{domain}/{app}/" as the master's path sent it.
            let stream_dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let app_dir = stream_dir.rsplit_once('/').map_or("", |(dir, _)| dir);
            let own_path = format!("{app_dir}/{encoded}/{file}");
            let now = self.service.clock.now().div_euclid(MICROS_PER_SECOND);
            let key = signing::sign(&own_path, keys.primary(), now, &signing::new_rand(), "0");
            signed = format!("{}={key}", signing::PARAM);
            own_query.push(&signed);
        }
        format!("../{encoded}/{file}?{}", own_query.join("&"))
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

    /// Serves players on `listener` until `shutdown` resolves, within
    /// `limits`.
    pub async fn serve(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        limits: SideLimits,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let handle = move |request| {
            let playback = self.clone();
            async move { playback.handle(request).await }
        };
        side::serve(listener, limits, "playback", handle, shutdown).await
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
