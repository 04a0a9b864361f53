//! An HTTP listener for SRS's `on_hls` callbacks: each callback registers
//! the segment SRS just wrote, so an SRS origin needs no recorder glue.
//! Authenticated by a per-source secret, rate-limited like Register.

pub mod srs;

use std::future::Future;
use std::sync::Arc;

use hyper::{Body, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admission::Admission;
use crate::auth::{Accounts, Caller};
use crate::clock::Clock;
use crate::config::SrsWebhookConfig;
use crate::connections::side::{self, SideLimits};
use crate::error::ApiError;
use crate::manifest::time::format_program_date_time;
use crate::operations::Operation;
use crate::proto;
use crate::service::IndexService;

/// Largest callback body read; SRS's are well under 2 KiB.
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send its body once its headers are in
/// (the headers have `handshake_timeout_secs`): a slow client must not hold
/// a connection, nor a shutdown, for long.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Header that may carry the secret instead of the URL's `secret=`.
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// One configured SRS source.
struct Source {
    secret_sha256: [u8; 32],
    caller: Caller,
    domain: String,
    endpoint: String,
    bucket: String,
    key_prefix: String,
}

pub struct Webhook {
    sources: Vec<Source>,
    service: Arc<IndexService>,
    admission: Arc<dyn Admission>,
    clock: Arc<dyn Clock>,
}

fn reply(status: StatusCode, code: u16, message: &str) -> Response<Body> {
    // SRS accepts a callback when the answer is HTTP 200 with code 0.
    let body = serde_json::json!({ "code": code, "msg": message }).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("static response parts are valid")
}

fn refuse(err: &ApiError) -> Response<Body> {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, err.http_status(), &err.message())
}

fn secret_of(request: &Request<Body>) -> Option<String> {
    if let Some(value) = request
        .headers()
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return Some(value.to_string());
    }
    request.uri().query()?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name == "secret").then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

impl Webhook {
    pub fn new(
        config: &SrsWebhookConfig,
        accounts: &Accounts,
        service: Arc<IndexService>,
        admission: Arc<dyn Admission>,
        clock: Arc<dyn Clock>,
    ) -> Result<Webhook, String> {
        let mut sources = Vec::new();
        for source in &config.sources {
            let mut secret_sha256 = [0u8; 32];
            hex::decode_to_slice(&source.secret_sha256, &mut secret_sha256)
                .map_err(|err| format!("srs_webhook secret_sha256: {err}"))?;
            let caller = accounts
                .caller_of(&source.account)
                .ok_or_else(|| format!("srs_webhook: no account {:?}", source.account))?;
            sources.push(Source {
                secret_sha256,
                caller,
                domain: source.domain.clone(),
                endpoint: source.endpoint.clone(),
                bucket: source.bucket.clone(),
                key_prefix: source.key_prefix.clone(),
            });
        }
        Ok(Webhook {
            sources,
            service,
            admission,
            clock,
        })
    }

    fn source(&self, secret: Option<&str>) -> Option<&Source> {
        let digest: [u8; 32] = Sha256::digest(secret?.as_bytes()).into();
        self.sources
            .iter()
            .find(|source| bool::from(source.secret_sha256.ct_eq(&digest)))
    }

    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let arrival = self.clock.now();
        if request.method() != Method::POST {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                405,
                "POST the on_hls callback",
            );
        }
        let secret = secret_of(&request);
        let Some(source) = self.source(secret.as_deref()) else {
            return refuse(&ApiError::InvalidAccessKeyId(
                "unknown or missing webhook secret".into(),
            ));
        };
        let account = source.caller.account.id.clone();
        if let Err(err) = self
            .admission
            .admit_or_throttle(&account, Operation::RegisterLiveStreamRecordSegments)
            .await
        {
            return refuse(&err);
        }
        let read =
            tokio::time::timeout(READ_TIMEOUT, hyper::body::to_bytes(request.into_body())).await;
        let body = match read {
            Ok(Ok(body)) if body.len() <= MAX_BODY => body,
            Ok(Ok(_)) => return refuse(&ApiError::InvalidParams("callback body too large".into())),
            Ok(Err(err)) => {
                return refuse(&ApiError::InvalidParams(format!("callback body: {err}")));
            }
            Err(_) => {
                return refuse(&ApiError::InvalidParams(
                    "callback body not received in time".into(),
                ));
            }
        };
        let hook = match srs::parse(&body, arrival, &source.key_prefix) {
            Ok(hook) => hook,
            Err(err) => return refuse(&ApiError::InvalidParams(err.to_string())),
        };
        let registration = proto::RegisterLiveStreamRecordSegmentsRequest {
            domain_name: source.domain.clone(),
            app_name: hook.app,
            stream_name: hook.stream,
            segments: vec![proto::Segment {
                oss_endpoint: source.endpoint.clone(),
                oss_bucket: source.bucket.clone(),
                oss_object: hook.object,
                start_time: format_program_date_time(hook.start),
                duration: hook.duration,
                sequence: hook.sequence,
                format: "ts".into(),
                ..Default::default()
            }],
            client_token: String::new(),
        };
        match self.service.register(&source.caller, registration).await {
            Ok(outcome) => {
                tracing::info!(
                    account,
                    accepted = outcome.accepted,
                    duplicates = outcome.duplicates,
                    "on_hls registered"
                );
                reply(StatusCode::OK, 0, "OK")
            }
            Err(err) => {
                tracing::info!(
                    account,
                    code = err.code(),
                    error = err.message(),
                    "on_hls refused"
                );
                refuse(&err)
            }
        }
    }

    /// Serves callbacks on `listener` until `shutdown` resolves. A
    /// connection that has not sent a whole request head within
    /// `header_timeout` (a new one, or one kept alive after its last
    /// callback) is closed, so idle sockets do not pile up.
    pub async fn serve(
        self: Arc<Self>,
        listener: std::net::TcpListener,
        limits: SideLimits,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let handle = move |request| {
            let webhook = self.clone();
            async move { webhook.handle(request).await }
        };
        side::serve(listener, limits, "SRS webhook", handle, shutdown).await
    }
}
