//! S3-compatible object storage through rusoto_s3. rusoto_s3 builds
//! path-style requests only; Alibaba OSS refuses those, so virtual-hosted
//! endpoints re-address each request to `bucket.host` and sign it again.
//! The credentials, read once, also presign players' GETs.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use hyper::client::HttpConnector;
use hyper_rustls::HttpsConnector;
use rusoto_core::credential::{AwsCredentials, StaticProvider};
use rusoto_core::request::{DispatchSignedRequest, DispatchSignedRequestFuture, HttpClient};
use rusoto_core::signature::SignedRequest;
use rusoto_core::{Region, RusotoError};
use rusoto_s3::{
    DeleteObjectRequest, GetObjectError, GetObjectRequest, HeadObjectError, HeadObjectRequest,
    ListObjectsV2Request, PutObjectRequest, S3, S3Client,
};

use super::presign::Presigner;
use super::resolve::OverrideResolver;
use super::urls::S3Urls;
use super::{ByteRange, ListedObject, ObjectBytes, ObjectMeta, ObjectStore, StorageError};
use crate::config::{Addressing, EndpointConfig};

type Connector = HttpsConnector<HttpConnector<OverrideResolver>>;

pub struct S3Store {
    client: S3Client,
    /// The endpoint's URL forms, shared with the segment URLs of playlists.
    urls: Arc<S3Urls>,
    /// Signs players' GETs with the same credentials as the client.
    presigner: Arc<Presigner>,
}

/// Re-addresses rusoto_s3's path-style requests (`host/bucket/key`) to the
/// virtual-hosted form (`bucket.host/key`) and signs them again, since the
/// signature covers the host and the path.
struct VirtualHosted {
    inner: HttpClient<Connector>,
    authority: String,
    credentials: AwsCredentials,
}

impl DispatchSignedRequest for VirtualHosted {
    fn dispatch(
        &self,
        mut request: SignedRequest,
        timeout: Option<std::time::Duration>,
    ) -> DispatchSignedRequestFuture {
        let path = request.path.trim_start_matches('/').to_string();
        let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
        request.set_hostname(Some(format!("{bucket}.{}", self.authority)));
        request.path = format!("/{key}");
        request.sign(&self.credentials);
        self.inner.dispatch(request, timeout)
    }
}

fn read_env(name: &str, endpoint: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!("endpoint {endpoint}: environment variable {name} (named in the config) is not set")
    })
}

impl S3Store {
    pub fn new(config: &EndpointConfig) -> Result<S3Store, String> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| format!("endpoint {} has no url", config.name))?;
        let base_url = url.trim_end_matches('/').to_string();
        let urls = S3Urls::new(&base_url, config.addressing)?;
        let key_id = read_env(&config.access_key_id_env, &config.name)?;
        let secret = read_env(&config.secret_access_key_env, &config.name)?;

        let resolver =
            OverrideResolver::new(config.resolve.iter().map(|(host, ip)| (host.clone(), *ip)));
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http_client = HttpClient::from_connector(connector);
        let region = Region::Custom {
            name: config.region.clone(),
            endpoint: base_url.clone(),
        };
        let credentials = AwsCredentials::new(key_id.clone(), secret.clone(), None, None);
        let presigner = Presigner::new(key_id.clone(), secret.clone(), config.region.clone());
        let provider = StaticProvider::new_minimal(key_id, secret);
        let client = match config.addressing {
            Addressing::Path => S3Client::new_with(http_client, provider, region),
            Addressing::VirtualHosted => {
                let dispatcher = VirtualHosted {
                    inner: http_client,
                    authority: urls.authority().to_string(),
                    credentials,
                };
                S3Client::new_with(dispatcher, provider, region)
            }
        };
        Ok(S3Store {
            client,
            urls: Arc::new(urls),
            presigner: Arc::new(presigner),
        })
    }

    /// The endpoint's URL forms and its presigner, for segment URLs.
    pub(super) fn presigning(&self) -> (Arc<S3Urls>, Arc<Presigner>) {
        (self.urls.clone(), self.presigner.clone())
    }
}

/// Classifies a rusoto failure by what a caller can do about it.
fn classify<E: std::fmt::Debug>(err: RusotoError<E>) -> StorageError {
    match err {
        RusotoError::HttpDispatch(err) => StorageError::Unreachable(err.to_string()),
        RusotoError::Credentials(err) => {
            StorageError::Rejected(format!("credentials: {}", err.message))
        }
        RusotoError::Unknown(response) => {
            let status = response.status.as_u16();
            let body = String::from_utf8_lossy(&response.body);
            let code = extract_code(&body).unwrap_or_default();
            match status {
                404 if code != "NoSuchBucket" => StorageError::NotFound,
                429 | 500..=599 => StorageError::Transient(format!("HTTP {status} {code}")),
                _ => StorageError::Rejected(format!("HTTP {status} {code}")),
            }
        }
        RusotoError::Service(err) => StorageError::Rejected(format!("{err:?}")),
        other => StorageError::Transient(format!("{other:?}")),
    }
}

/// The `<Code>` of an S3 XML error body.
fn extract_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_string())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let request = PutObjectRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            content_length: Some(body.len() as i64),
            content_type: Some(content_type.to_string()),
            body: Some(body.to_vec().into()),
            ..Default::default()
        };
        self.client
            .put_object(request)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectBytes, StorageError> {
        let request = GetObjectRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            range: range.map(|range| match range {
                ByteRange::First(n) => format!("bytes=0-{}", n.saturating_sub(1)),
                ByteRange::Last(n) => format!("bytes=-{n}"),
            }),
            ..Default::default()
        };
        let output = self
            .client
            .get_object(request)
            .await
            .map_err(|err| match err {
                RusotoError::Service(GetObjectError::NoSuchKey(_)) => StorageError::NotFound,
                other => classify(other),
            })?;
        // `bytes 0-99/1234` names the whole size; without a range the body
        // is the whole object.
        let declared_total = output
            .content_range
            .as_deref()
            .and_then(|range| range.rsplit('/').next())
            .and_then(|total| total.parse::<u64>().ok());
        let body: Bytes = match output.body {
            Some(body) => {
                let chunks: Vec<Bytes> = body
                    .try_collect()
                    .await
                    .map_err(|err| StorageError::Unreachable(err.to_string()))?;
                chunks.concat().into()
            }
            None => Bytes::new(),
        };
        let total_len = declared_total.unwrap_or(body.len() as u64);
        Ok(ObjectBytes { body, total_len })
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StorageError> {
        let request = HeadObjectRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            ..Default::default()
        };
        let output = self
            .client
            .head_object(request)
            .await
            .map_err(|err| match err {
                RusotoError::Service(HeadObjectError::NoSuchKey(_)) => StorageError::NotFound,
                other => classify(other),
            })?;
        let last_modified = output
            .last_modified
            .as_deref()
            .and_then(|text| chrono::DateTime::parse_from_rfc2822(text).ok())
            .map(|time| time.timestamp_micros())
            .ok_or_else(|| {
                StorageError::Transient("HEAD answered without a Last-Modified date".into())
            })?;
        Ok(ObjectMeta {
            size: output.content_length.unwrap_or(0).max(0) as u64,
            last_modified,
        })
    }

    async fn check(&self) -> Result<(), StorageError> {
        // Any HTTP answer shows the server is there; only failing to reach
        // it (or a 5xx) means not ready.
        match self.head("record-index-health-check", "check").await {
            Ok(_) | Err(StorageError::NotFound) | Err(StorageError::Rejected(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let mut found = Vec::new();
        let mut continuation_token = None;
        loop {
            let request = ListObjectsV2Request {
                bucket: bucket.to_string(),
                prefix: Some(prefix.to_string()),
                continuation_token: continuation_token.take(),
                ..Default::default()
            };
            let page = self
                .client
                .list_objects_v2(request)
                .await
                .map_err(classify)?;
            for object in page.contents.unwrap_or_default() {
                let Some(key) = object.key else { continue };
                // Listings date objects in ISO 8601, HEAD in RFC 2822.
                let last_modified = object
                    .last_modified
                    .as_deref()
                    .and_then(|text| {
                        chrono::DateTime::parse_from_rfc3339(text)
                            .or_else(|_| chrono::DateTime::parse_from_rfc2822(text))
                            .ok()
                    })
                    .map(|time| time.timestamp_micros())
                    .unwrap_or(0);
                found.push(ListedObject {
                    key,
                    meta: ObjectMeta {
                        size: object.size.unwrap_or(0).max(0) as u64,
                        last_modified,
                    },
                });
            }
            match page.next_continuation_token {
                Some(token) if page.is_truncated == Some(true) => continuation_token = Some(token),
                _ => break,
            }
        }
        Ok(found)
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        let request = DeleteObjectRequest {
            bucket: bucket.to_string(),
            key: key.to_string(),
            ..Default::default()
        };
        self.client
            .delete_object(request)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    fn url(&self, bucket: &str, key: &str) -> String {
        self.urls.object(bucket, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_error_codes() {
        let body = "<?xml?><Error><Code>NoSuchBucket</Code><Message>x</Message></Error>";
        assert_eq!(extract_code(body).as_deref(), Some("NoSuchBucket"));
    }
}
