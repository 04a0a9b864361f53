//! The playback HTTP listener: HTTP/1.1 and HTTP/2 (prior knowledge) on
//! one port, `GET` and `HEAD` of the playlist URLs of [`super::routes`].
//! Each request is authenticated (the domain's account), admitted against
//! that account's `Playback` limit, answered from the catalog, logged and
//! counted like an RPC. Errors are JSON `{"Code", "Message", "RequestId"}`
//! with the codes Create uses.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::header::HeaderValue;
use hyper::{Body, Method, Request, Response};

use super::answer::{self, Cors, Refusal};
use super::host;
use super::objects::{self, Objects};
use super::routes::{self, NoSuchPath};
use super::signing::{self, SigningKeys};
use crate::admission::Admission;
use crate::auth::Accounts;
use crate::connections::side::{self, SideLimits};
use crate::error::{ApiError, quote};
use crate::manifest::{MICROS_PER_SECOND, Micros, Segment};
use crate::operations::Operation;
use crate::service::playback::PlaylistAnswer;
use crate::service::{IndexService, PlaybackSigning};
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
    pub cors: Cors,
    /// Local mode: the local store's objects, which its playlists point
    /// their segments at.
    pub objects: Option<Objects>,
}

impl Playback {
    /// The accounts' signing keys, and whether none is asked for.
    fn signing(&self) -> &PlaybackSigning {
        &self.service.playback_signing
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        telemetry::request_started();
        let request_id = request_id_of(&request);
        let path = request.uri().path().to_string();
        let head = request.method() == Method::HEAD;
        let served = self
            .objects
            .as_ref()
            .filter(|_| objects::is_object_path(&path));
        let (mut response, code) = if let Err(err) = host::of(&request) {
            let refusal = Refusal::Api(ApiError::InvalidParams(err.to_string()));
            answer::refused(refusal, &request_id)
        } else if request.method() == Method::OPTIONS {
            (self.cors.preflight(request.headers()), "OK".to_string())
        } else if let Some(objects) = served {
            match objects.answer(&request).await {
                Ok(response) => (response, "OK".to_string()),
                Err(refusal) => answer::refused(refusal, &request_id),
            }
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
        let domain = routes::domain_of(path).ok_or(Refusal::NotFound)??;
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
        let fresh = Fresh::default();
        let mut answer = if let Some(suffixes) = &route.renditions {
            let variant_uri = |stream: &str, file: &str| {
                self.variant_uri(&account, path, query, stream, file, &fresh)
            };
            self.service
                .master_playlist(&caller, &route.playlist, suffixes, &variant_uri)
                .await?
        } else {
            let uris = |segments: &[&Segment]| self.segment_uris(&account, segments, &fresh);
            let (playlist, idle) = (&route.playlist, self.live_idle);
            if route.iframes {
                self.service
                    .iframe_playlist(&caller, playlist, idle, &uris)
                    .await?
            } else {
                self.service
                    .playlist(&caller, playlist, idle, &uris)
                    .await?
            }
        };
        answer.fresh_secs = fresh.secs();
        Ok(answer)
    }

    /// How long a cache may keep a playlist whose URLs carry an `auth_key`
    /// signed now: a tenth of their validity, so a kept copy still hands
    /// out URLs with most of it left.
    fn signed_fresh_secs(keys: &SigningKeys) -> u64 {
        signing::step_secs(keys.validity_secs())
    }

    /// Where a player fetches each segment, as its endpoint's
    /// `segment_urls` says: presigned GETs share one signing setup per
    /// endpoint; CDN URLs carry the account's Type A signature. A relative
    /// endpoint's segments get their object URL (a playlist made per
    /// request has no place beside the segments): in local mode, a local
    /// directory's objects are served here.
    fn segment_uris(&self, account: &str, segments: &[&Segment], fresh: &Fresh) -> Vec<String> {
        let storage = &self.service.storage;
        let now = self.service.clock.now();
        let mut writers: Vec<(&str, Option<SegmentUrls>)> = Vec::new();
        let keys = self.signing().keys.get(account);
        let key = keys.map(SigningKeys::primary);
        // One signature nonce and instant for the playlist's CDN URLs, the
        // same for a step: the playlist is the same text while it lasts.
        let seconds = now.div_euclid(MICROS_PER_SECOND);
        let (seconds, rand) = keys.map_or((seconds, String::new()), |keys| {
            signing::stepped(seconds, keys.validity_secs())
        });
        segments
            .iter()
            .map(|segment| {
                let at = match writers.iter().position(|(e, _)| *e == segment.endpoint) {
                    Some(at) => at,
                    None => {
                        let urls = storage.segment_urls(&segment.endpoint, now).ok();
                        fresh.at_most(urls.as_ref().and_then(SegmentUrls::fresh_secs));
                        writers.push((&segment.endpoint, urls));
                        writers.len() - 1
                    }
                };
                let plain = || {
                    let (endpoint, bucket, key) =
                        (&segment.endpoint, &segment.bucket, &segment.object);
                    let served = self
                        .objects
                        .as_ref()
                        .and_then(|o| o.uri(endpoint, bucket, key));
                    served.unwrap_or_else(|| storage.url(endpoint, bucket, key))
                };
                let Some(urls) = &writers[at].1 else {
                    return plain();
                };
                match urls.url(&segment.bucket, &segment.object) {
                    SegmentUrl::Direct(url) => url,
                    SegmentUrl::Cdn(url) => match key {
                        Some(key) => {
                            fresh.at_most(keys.map(Self::signed_fresh_secs));
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
        fresh: &Fresh,
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
        let settings = self.signing();
        if let (false, Some(keys)) = (settings.local_mode, settings.keys.get(account)) {
            fresh.at_most(Some(Self::signed_fresh_secs(keys)));
            // "/v1/{domain}/{app}/" as the master's path sent it.
            let stream_dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            let app_dir = stream_dir.rsplit_once('/').map_or("", |(dir, _)| dir);
            let own_path = format!("{app_dir}/{encoded}/{file}");
            let now = self.service.clock.now().div_euclid(MICROS_PER_SECOND);
            let (timestamp, rand) = signing::stepped(now, keys.validity_secs());
            let key = signing::sign(&own_path, keys.primary(), timestamp, &rand, "0");
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
        if self.signing().local_mode {
            return Ok(());
        }
        let keys = self.signing().keys.get(account).ok_or_else(|| {
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
/// The least of the bounds on how long a playlist may be cached, noted as
/// its URLs are written.
#[derive(Default)]
struct Fresh(AtomicU64);

impl Fresh {
    fn at_most(&self, secs: Option<u64>) {
        if let Some(secs) = secs {
            // Zero stands for "no bound yet".
            self.0
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                    Some(if now == 0 { secs } else { now.min(secs) })
                })
                .ok();
        }
    }

    fn secs(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&secs| secs > 0)
    }
}

fn request_id_of(request: &Request<Body>) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(crate::api::status::new_request_id)
}
