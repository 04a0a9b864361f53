//! The object-storage endpoints (`[[endpoints]]`): how each is reached,
//! how playlists made per request point players at its segments, and the
//! checks that make every entry usable before `serve` listens.

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

/// How a playlist made per request (the playback listener) writes the URI
/// of a segment stored on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SegmentUrlMode {
    /// The key relative to the playlist; the playlist's writer picks the
    /// relative form. The default of local endpoints, whose objects have
    /// no URL a remote player can fetch.
    Relative,
    /// The object's plain URL (as RecordUrl): for buckets that allow
    /// public reads. The default of s3 endpoints.
    Public,
    /// An S3 SigV4 presigned GET, valid `presign_expiry_secs`: for private
    /// buckets. s3 endpoints only.
    Presigned,
    /// `cdn_base_url/key`, which the playlist's writer signs with the
    /// account's Type A key.
    Cdn,
    /// Any other name, refused by the checks in one line (a parse error
    /// would quote the file around it over several).
    Unknown(String),
}

impl From<String> for SegmentUrlMode {
    fn from(name: String) -> Self {
        match name.as_str() {
            "relative" => SegmentUrlMode::Relative,
            "public" => SegmentUrlMode::Public,
            "presigned" => SegmentUrlMode::Presigned,
            "cdn" => SegmentUrlMode::Cdn,
            _ => SegmentUrlMode::Unknown(name),
        }
    }
}

/// The longest a SigV4 presigned URL may be valid: seven days.
pub const MAX_PRESIGN_EXPIRY_SECS: u32 = 604_800;
/// The shortest expiry the config accepts: below a minute a URL could lapse
/// between the playlist's making and the player's first request.
pub const MIN_PRESIGN_EXPIRY_SECS: u32 = 60;

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
    /// How playlists made per request write the URIs of this endpoint's
    /// segments; unset, `public` for s3 and `relative` for local (see
    /// [`EndpointConfig::segment_url_mode`]).
    #[serde(default)]
    pub segment_urls: Option<SegmentUrlMode>,
    /// Seconds a presigned segment URL stays valid from the playlist's
    /// making: whole seconds, 60 to 604800 (SigV4's seven days).
    #[serde(default = "default_presign_expiry")]
    pub presign_expiry_secs: f64,
    /// Base URL (`https://cdn.example.com[/prefix]`) of the CDN whose
    /// origin is this endpoint's bucket; required with `segment_urls = "cdn"`,
    /// unused (with a warning at startup) otherwise.
    #[serde(default)]
    pub cdn_base_url: Option<String>,
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
            segment_urls: None,
            presign_expiry_secs: default_presign_expiry(),
            cdn_base_url: None,
        }
    }

    /// How segment URIs are written: the configured mode, else the kind's
    /// default (`public` for s3, `relative` for local).
    pub fn segment_url_mode(&self) -> SegmentUrlMode {
        match (&self.segment_urls, self.kind) {
            (Some(mode), _) => mode.clone(),
            (None, EndpointKind::S3) => SegmentUrlMode::Public,
            (None, EndpointKind::Local) => SegmentUrlMode::Relative,
        }
    }

    /// `presign_expiry_secs` as the whole seconds of `X-Amz-Expires`; the
    /// default when the value is out of bounds (a config never checked).
    pub fn presign_expiry(&self) -> u32 {
        let secs = self.presign_expiry_secs;
        let bounds = MIN_PRESIGN_EXPIRY_SECS as f64..=MAX_PRESIGN_EXPIRY_SECS as f64;
        if bounds.contains(&secs) {
            secs as u32
        } else {
            default_presign_expiry() as u32
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
        check_segment_urls(endpoint).map_err(|message| {
            ConfigError::Invalid(format!("endpoint {:?}: {message}", endpoint.name))
        })?;
    }
    Ok(())
}

/// The segment URL mode is known and has what it needs: credentials to
/// sign with (an s3 endpoint), a CDN to point at.
fn check_segment_urls(endpoint: &EndpointConfig) -> Result<(), String> {
    let expiry = endpoint.presign_expiry_secs;
    let bounds = MIN_PRESIGN_EXPIRY_SECS as f64..=MAX_PRESIGN_EXPIRY_SECS as f64;
    if !(bounds.contains(&expiry) && expiry.fract() == 0.0) {
        return Err(format!(
            "presign_expiry_secs = {expiry} must be whole seconds from {MIN_PRESIGN_EXPIRY_SECS} \
             to {MAX_PRESIGN_EXPIRY_SECS} (7 days, the longest a SigV4 presigned URL lives)"
        ));
    }
    if let Some(base) = &endpoint.cdn_base_url {
        check_cdn_base_url(base)?;
    }
    match endpoint.segment_url_mode() {
        SegmentUrlMode::Unknown(name) => Err(format!(
            "segment_urls = {name:?} is not \"relative\", \"public\", \"presigned\" or \"cdn\""
        )),
        SegmentUrlMode::Presigned if endpoint.kind == EndpointKind::Local => Err(
            "segment_urls = \"presigned\" needs kind = \"s3\": a local directory has no URL to sign"
                .into(),
        ),
        SegmentUrlMode::Cdn if endpoint.cdn_base_url.is_none() => Err(
            "segment_urls = \"cdn\" needs cdn_base_url = \"https://cdn.example.com\"".into(),
        ),
        _ => Ok(()),
    }
}

/// An http(s) URL with a host, optionally a path, and no query or
/// fragment: object keys are appended to it after a `/`.
fn check_cdn_base_url(base: &str) -> Result<(), String> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    let host = rest.and_then(|rest| rest.split('/').next()).unwrap_or("");
    let clean = !base
        .chars()
        .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control());
    if host.is_empty() || host.contains('@') || !clean {
        return Err(format!(
            "cdn_base_url = {base:?} must be an http(s) URL with a host and no query, fragment \
             or credentials (https://cdn.example.com[/prefix])"
        ));
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
fn default_presign_expiry() -> f64 {
    // Six hours: a long playlist, paused and resumed, still plays.
    21_600.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn finish(endpoint: &str) -> Result<Config, String> {
        let text = format!("[[endpoints]]\n{endpoint}\n");
        Config::from_toml(&text)
            .map_err(|err| err.to_string())?
            .finish()
            .map_err(|err| err.to_string())
    }

    const S3: &str = "name = \"s3.test\"\nkind = \"s3\"\nurl = \"http://127.0.0.1:9000\"";
    const LOCAL: &str = "name = \"localhost\"\nkind = \"local\"";

    #[test]
    fn segment_urls_default_by_kind() {
        let config = finish(S3).unwrap();
        let s3 = &config.endpoints[0];
        assert_eq!(s3.segment_url_mode(), SegmentUrlMode::Public);
        assert_eq!(s3.presign_expiry(), 21_600);
        assert_eq!(s3.cdn_base_url, None);
        let config = finish(LOCAL).unwrap();
        assert_eq!(
            config.endpoints[0].segment_url_mode(),
            SegmentUrlMode::Relative
        );
        let embedded = Config::default().finish().unwrap();
        assert_eq!(
            embedded.endpoints[0].segment_url_mode(),
            SegmentUrlMode::Relative
        );
    }

    #[test]
    fn every_mode_is_taken_where_it_can_work() {
        for (base, mode) in [
            (S3, "relative"),
            (S3, "public"),
            (S3, "presigned"),
            (LOCAL, "relative"),
            (LOCAL, "public"),
        ] {
            let config = finish(&format!("{base}\nsegment_urls = \"{mode}\"")).unwrap();
            assert_eq!(
                config.endpoints[0].segment_url_mode(),
                SegmentUrlMode::from(mode.to_string())
            );
        }
        for base in [S3, LOCAL] {
            let text = format!(
                "{base}\nsegment_urls = \"cdn\"\ncdn_base_url = \"https://cdn.example.com/vod/\""
            );
            let config = finish(&text).unwrap();
            assert_eq!(config.endpoints[0].segment_url_mode(), SegmentUrlMode::Cdn);
        }
        let text = format!("{S3}\nsegment_urls = \"presigned\"\npresign_expiry_secs = 604800");
        assert_eq!(
            finish(&text).unwrap().endpoints[0].presign_expiry(),
            604_800
        );
        let text = format!("{S3}\npresign_expiry_secs = 60.0");
        assert_eq!(finish(&text).unwrap().endpoints[0].presign_expiry(), 60);
    }

    #[test]
    fn a_cdn_base_url_of_another_mode_is_kept_unused() {
        let text = format!(
            "{S3}\nsegment_urls = \"presigned\"\ncdn_base_url = \"https://cdn.example.com\""
        );
        let config = finish(&text).unwrap();
        assert_eq!(
            config.endpoints[0].segment_url_mode(),
            SegmentUrlMode::Presigned
        );
    }

    #[test]
    fn bad_segment_url_settings_are_refused_in_one_line() {
        for (endpoint, said) in [
            (
                format!("{S3}\nsegment_urls = \"signed\""),
                "segment_urls = \"signed\" is not \"relative\", \"public\", \"presigned\" or \"cdn\"",
            ),
            (
                format!("{LOCAL}\nsegment_urls = \"presigned\""),
                "needs kind = \"s3\"",
            ),
            (
                format!("{S3}\nsegment_urls = \"cdn\""),
                "segment_urls = \"cdn\" needs cdn_base_url",
            ),
            (
                format!("{S3}\npresign_expiry_secs = 604801"),
                "presign_expiry_secs = 604801 must be whole seconds from 60 to 604800",
            ),
            (
                format!("{S3}\npresign_expiry_secs = 59"),
                "presign_expiry_secs = 59 must be",
            ),
            (
                format!("{S3}\npresign_expiry_secs = -1"),
                "presign_expiry_secs = -1 must be",
            ),
            (
                format!("{S3}\npresign_expiry_secs = 90.5"),
                "presign_expiry_secs = 90.5 must be",
            ),
            (
                format!("{S3}\npresign_expiry_secs = nan"),
                "presign_expiry_secs = NaN must be",
            ),
        ] {
            let err = finish(&endpoint).unwrap_err();
            assert!(err.contains(said), "{endpoint:?}: {err}");
            assert!(
                err.contains("endpoint \"s3.test\"") || err.contains("endpoint \"localhost\""),
                "{err}"
            );
            assert!(!err.trim_end().contains('\n'), "{endpoint:?}: {err}");
        }
        for base in [
            "cdn.example.com",
            "ftp://cdn.example.com",
            "https://",
            "https:///vod",
            "https://cdn.example.com/vod?token=1",
            "https://cdn.example.com/#x",
            "https://user:pass@cdn.example.com",
            "https://cdn.example.com/a b",
        ] {
            // Refused whether or not the mode uses it: a mistake either way.
            for mode in ["cdn", "public"] {
                let endpoint = format!("{S3}\nsegment_urls = \"{mode}\"\ncdn_base_url = {base:?}");
                let err = finish(&endpoint).unwrap_err();
                assert!(err.contains("cdn_base_url = "), "{base}: {err}");
                assert!(!err.trim_end().contains('\n'), "{base}: {err}");
            }
        }
    }
}
