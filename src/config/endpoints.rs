//! The object-storage endpoints (`[[endpoints]]`): how each is reached,
//! and the checks that make every entry usable before `serve` listens.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::manifest::names;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// A directory on this machine; buckets are sub-directories.
    Local,
    /// An S3-compatible server (Alibaba OSS, SeaweedFS, MinIO, AWS S3).
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Addressing {
    /// `{url}/{bucket}/{key}`: MinIO, SeaweedFS, Ceph.
    #[default]
    Path,
    /// `{scheme}://{bucket}.{host}/{key}`: required by Alibaba OSS.
    VirtualHosted,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The `OssEndpoint` value clients send: a host name, optionally `:port`.
    pub name: String,
    pub kind: EndpointKind,
    /// Base URL of an S3 endpoint (`https://oss-cn-shanghai.aliyuncs.com`).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub addressing: Addressing,
    /// Signing region of an S3 endpoint.
    #[serde(default = "default_region")]
    pub region: String,
    /// Names of the environment variables holding the credentials; the
    /// secrets themselves never appear in the file or in logs.
    #[serde(default = "default_key_env")]
    pub access_key_id_env: String,
    #[serde(default = "default_secret_env")]
    pub secret_access_key_env: String,
    /// Root directory of a local endpoint (default `{data_dir}/objects`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Host pattern (`host` or `*.suffix`) to the address to dial instead of
    /// asking DNS: private endpoints, and bucket sub-domains that no DNS
    /// server knows.
    #[serde(default)]
    pub resolve: BTreeMap<String, IpAddr>,
    /// Seconds one object-storage request may take before it is retried.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: f64,
    /// Attempts of one write before the request fails with InternalError.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

impl EndpointConfig {
    /// The local-directory endpoint `name` with every default: the one
    /// local mode offers when no endpoint is listed.
    pub fn local(name: &str) -> EndpointConfig {
        EndpointConfig {
            name: name.to_string(),
            kind: EndpointKind::Local,
            url: None,
            addressing: Addressing::Path,
            region: default_region(),
            access_key_id_env: default_key_env(),
            secret_access_key_env: default_secret_env(),
            path: None,
            resolve: BTreeMap::new(),
            request_timeout_secs: default_request_timeout(),
            max_attempts: default_attempts(),
        }
    }
}

/// Each endpoint named once, reachable in its kind's way, with a root
/// for local ones (`data_dir/objects` unless it names one).
pub(super) fn finish(endpoints: &mut [EndpointConfig], data_dir: &Path) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for endpoint in endpoints {
        if !names::is_endpoint(&endpoint.name) {
            return Err(ConfigError::Invalid(format!(
                "endpoint name {:?} is not a host name (optionally with :port)",
                endpoint.name
            )));
        }
        if !seen.insert(endpoint.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "endpoint {:?} is listed twice",
                endpoint.name
            )));
        }
        if endpoint.kind == EndpointKind::S3 {
            let url = endpoint.url.as_deref().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "endpoint {:?} needs url = \"http(s)://host[:port]\"",
                    endpoint.name
                )));
            }
        }
        if endpoint.kind == EndpointKind::Local && endpoint.path.is_none() {
            endpoint.path = Some(data_dir.join("objects"));
        }
        if !(endpoint.request_timeout_secs > 0.0 && endpoint.request_timeout_secs.is_finite()) {
            return Err(ConfigError::Invalid(format!(
                "endpoint {:?}: request_timeout_secs must be positive",
                endpoint.name
            )));
        }
        if endpoint.max_attempts == 0 {
            return Err(ConfigError::Invalid(format!(
                "endpoint {:?}: max_attempts must be at least 1",
                endpoint.name
            )));
        }
    }
    Ok(())
}

fn default_region() -> String {
    "us-east-1".to_string()
}
fn default_key_env() -> String {
    "AWS_ACCESS_KEY_ID".to_string()
}
fn default_secret_env() -> String {
    "AWS_SECRET_ACCESS_KEY".to_string()
}
fn default_request_timeout() -> f64 {
    5.0
}
fn default_attempts() -> u32 {
    3
}
