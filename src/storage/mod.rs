//! Object storage: where playlists are written. One trait, a local
//! directory and S3-compatible servers behind it, the registry of
//! configured endpoints that requests name in `OssEndpoint`, and the URLs
//! players fetch segments at (plain, presigned or on a CDN).

mod local;
mod presign;
mod presigned_reuse;
mod resolve;
mod s3;
mod segment_urls;
mod urls;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::{Config, EndpointConfig, EndpointKind};
use crate::manifest::Micros;
use crate::telemetry;

pub use local::{LocalStore, OpenedObject, TMP_DIR};
pub use s3::S3Store;
pub use segment_urls::{SegmentUrl, SegmentUrls};

/// Content-Type of every playlist written.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// Why an object-storage call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The server could not be reached or did not answer in time: a retry
    /// may succeed.
    #[error("object storage unreachable: {0}")]
    Unreachable(String),
    /// The server answered with a failure that a retry may cure (5xx, 429).
    #[error("object storage failed: {0}")]
    Transient(String),
    /// The object does not exist.
    #[error("object not found")]
    NotFound,
    /// The server refused the request for good (403, 404 bucket, 400).
    #[error("object storage refused the request: {0}")]
    Rejected(String),
}

impl StorageError {
    /// The failure's name in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Unreachable(_) => "unreachable",
            StorageError::Transient(_) => "transient",
            StorageError::NotFound => "not_found",
            StorageError::Rejected(_) => "rejected",
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Unreachable(_) | StorageError::Transient(_)
        )
    }
}

/// An object store of one endpoint.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError>;
    /// The object, or part of it, with the object's whole size.
    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectBytes, StorageError>;
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError>;
    /// Size and last-modified time of an object.
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StorageError>;
    /// Whether the store answers at all (any answer, even "no such
    /// object", counts): what readiness means for a load balancer.
    async fn check(&self) -> Result<(), StorageError>;
    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError>;
    /// The URL a player uses to fetch the object.
    fn url(&self, bucket: &str, key: &str) -> String;
}

/// Part of an object to read: probing a segment needs only its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The first n bytes (or the whole object if smaller).
    First(u64),
    /// The last n bytes (or the whole object if smaller).
    Last(u64),
}

/// Bytes read from an object, and the size of the whole object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBytes {
    pub body: Bytes,
    pub total_len: u64,
}

/// What object storage says of an object without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// When the upload finished: for a recorder, the segment's end.
    pub last_modified: crate::manifest::Micros,
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub meta: ObjectMeta,
}

/// One configured endpoint with its store and retry policy.
struct Endpoint {
    store: Arc<dyn ObjectStore>,
    /// The same store when it is a local directory, whose files can be
    /// opened and served as they are.
    local: Option<Arc<LocalStore>>,
    request_timeout: Duration,
    max_attempts: u32,
    /// How playlists made per request point players at its segments.
    segment_urls: segment_urls::Plan,
}

/// The configured endpoints, by the name clients send as `OssEndpoint`.
#[derive(Clone)]
pub struct Storage {
    endpoints: Arc<HashMap<String, Endpoint>>,
}

impl Storage {
    pub fn from_config(config: &Config) -> Result<Storage, String> {
        let mut endpoints = HashMap::new();
        for endpoint in &config.endpoints {
            endpoints.insert(endpoint.name.clone(), Endpoint::from_config(endpoint)?);
        }
        Ok(Storage {
            endpoints: Arc::new(endpoints),
        })
    }

    pub fn has_endpoint(&self, name: &str) -> bool {
        self.endpoints.contains_key(name)
    }

    /// Whether `name` is a configured local-directory endpoint.
    pub fn is_local(&self, name: &str) -> bool {
        self.endpoints
            .get(name)
            .is_some_and(|endpoint| endpoint.local.is_some())
    }

    /// Opens an object of a local-directory endpoint to stream it, within
    /// the endpoint's request timeout; `NotFound` for what is no object of
    /// the store (see [`LocalStore::open_object`]), `Rejected` for an
    /// endpoint that is not a local directory.
    pub async fn open_local(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
    ) -> Result<OpenedObject, StorageError> {
        let configured = self.endpoint(endpoint)?;
        let local = configured.local.as_ref().ok_or_else(|| {
            StorageError::Rejected(format!("endpoint {endpoint} is not a local directory"))
        })?;
        configured
            .attempt(endpoint, "open", local.open_object(bucket, key))
            .await
    }

    /// URL of an object: through the endpoint's own addressing when it is
    /// configured, else the virtual-hosted HTTPS form OSS uses.
    pub fn url(&self, endpoint: &str, bucket: &str, key: &str) -> String {
        match self.endpoints.get(endpoint) {
            Some(configured) => configured.store.url(bucket, key),
            None => segment_urls::unconfigured_url(endpoint, bucket, key),
        }
    }

    /// The segment URLs of `endpoint` for a playlist made at `now`, in the
    /// endpoint's `segment_urls` mode; what they share (a presigned URL's
    /// signing key, date and expiry) is worked out here, once. An endpoint
    /// the config does not name gets the plain URLs of [`Storage::url`].
    /// Fails only for an instant SigV4 cannot date (before 1970).
    pub fn segment_urls<'a>(
        &'a self,
        endpoint: &'a str,
        now: Micros,
    ) -> Result<SegmentUrls<'a>, StorageError> {
        match self.endpoints.get(endpoint) {
            Some(configured) => {
                SegmentUrls::new(&configured.segment_urls, configured.store.as_ref(), now)
                    .map_err(StorageError::Rejected)
            }
            None => Ok(SegmentUrls::unconfigured(endpoint)),
        }
    }

    /// Where a player fetches one segment, as [`Storage::segment_urls`]
    /// gives it; a playlist of many segments asks that once instead.
    pub fn segment_url(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
        now: Micros,
    ) -> Result<SegmentUrl, StorageError> {
        Ok(self.segment_urls(endpoint, now)?.url(bucket, key))
    }

    /// Writes an object, retrying transient failures with exponential
    /// backoff; each attempt is bounded by the endpoint's request timeout.
    pub async fn put(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let configured = self.endpoint(endpoint)?;
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            let call = configured
                .store
                .put(bucket, key, body.clone(), content_type);
            match configured.attempt(endpoint, "put", call).await {
                Ok(()) => return Ok(()),
                Err(err) if err.is_retryable() && attempt < configured.max_attempts => {
                    tracing::warn!(endpoint, bucket, key, attempt, error = %err, "object write failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    pub async fn get(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectBytes, StorageError> {
        let configured = self.endpoint(endpoint)?;
        // An empty range has no valid HTTP form (`bytes=-0`); nothing to read.
        if matches!(range, Some(ByteRange::First(0) | ByteRange::Last(0))) {
            let meta = self.head(endpoint, bucket, key).await?;
            return Ok(ObjectBytes {
                body: Bytes::new(),
                total_len: meta.size,
            });
        }
        configured
            .attempt(endpoint, "get", configured.store.get(bucket, key, range))
            .await
    }

    pub async fn head(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectMeta, StorageError> {
        let configured = self.endpoint(endpoint)?;
        configured
            .attempt(endpoint, "head", configured.store.head(bucket, key))
            .await
    }

    /// Checks every endpoint once; the first that does not answer, by name.
    pub async fn check_all(&self) -> Result<(), String> {
        for (name, endpoint) in self.endpoints.iter() {
            endpoint
                .attempt(name, "check", endpoint.store.check())
                .await
                .map_err(|err| format!("{name}: {err}"))?;
        }
        Ok(())
    }

    /// Lists a prefix; each page of the listing has the request timeout.
    pub async fn list(
        &self,
        endpoint: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ListedObject>, StorageError> {
        let configured = self.endpoint(endpoint)?;
        let started = Instant::now();
        let result = configured.store.list(bucket, prefix).await;
        let error = result.as_ref().err().map(StorageError::kind);
        telemetry::store_call(endpoint, "list", started.elapsed(), error);
        result
    }

    pub async fn delete(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        let configured = self.endpoint(endpoint)?;
        configured
            .attempt(endpoint, "delete", configured.store.delete(bucket, key))
            .await
    }

    fn endpoint(&self, name: &str) -> Result<&Endpoint, StorageError> {
        self.endpoints
            .get(name)
            .ok_or_else(|| StorageError::Rejected(format!("endpoint {name} is not configured")))
    }
}

impl Endpoint {
    /// One call to the store, bounded by the request timeout and counted
    /// in the metrics of `name`.
    async fn attempt<T>(
        &self,
        name: &str,
        operation: &'static str,
        call: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.request_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StorageError::Unreachable(format!(
                "{operation}: no answer within {:?}",
                self.request_timeout
            ))),
        };
        let error = result.as_ref().err().map(StorageError::kind);
        telemetry::store_call(name, operation, started.elapsed(), error);
        result
    }

    fn from_config(config: &EndpointConfig) -> Result<Endpoint, String> {
        let (store, local, presigning): (Arc<dyn ObjectStore>, _, _) = match config.kind {
            EndpointKind::Local => {
                let root = config.path.clone().ok_or("local endpoint without path")?;
                let store = LocalStore::new(root)
                    .map_err(|err| format!("endpoint {}: {err}", config.name))?;
                let store = Arc::new(store);
                (store.clone(), Some(store), None)
            }
            EndpointKind::S3 => {
                let store = S3Store::new(config)?;
                let presigning = store.presigning();
                (Arc::new(store), None, Some(presigning))
            }
        };
        Ok(Endpoint {
            store,
            local,
            request_timeout: Duration::from_secs_f64(config.request_timeout_secs),
            max_attempts: config.max_attempts,
            segment_urls: segment_urls::Plan::new(config, presigning)?,
        })
    }
}
