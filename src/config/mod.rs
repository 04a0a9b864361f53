//! The service's configuration: a TOML file in the shape the design fixes,
//! with embedded defaults so `record-index serve` runs with no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::manifest::names;
use crate::operations::Operation;

mod accounts;
mod catalog;
mod endpoints;
mod limits;
mod playback;
pub use accounts::{
    AccountConfig, AccountPlaybackConfig, KeyConfig, StatementConfig, playback_keys,
};
pub use catalog::{CatalogConfig, CatalogEngine};
pub use endpoints::{
    Addressing, EndpointConfig, EndpointKind, MAX_PRESIGN_EXPIRY_SECS, MIN_PRESIGN_EXPIRY_SECS,
    SegmentUrlMode,
};
pub use limits::{LimitsBackend, LimitsConfig};
pub use playback::{LOCAL_PLAYBACK, PlaybackConfig};

/// Name of the object storage endpoint that local mode offers.
pub const LOCAL_ENDPOINT: &str = "localhost";
/// The account every request acts as when no accounts are configured.
pub const LOCAL_ACCOUNT: &str = "local";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC listener binds.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory of the catalog (sled) and of the local object store.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Cap on the segments of one manifest (`RecordContentExceed` above it).
    #[serde(default = "default_max_segments")]
    pub max_segments_per_manifest: usize,
    /// Longest hole, in seconds, inside one span of
    /// DescribeLiveStreamRecordContent.
    #[serde(default = "default_span_gap")]
    pub span_gap_seconds: f64,
    /// Seconds between sweeps of expired manifests, segments and tokens.
    #[serde(default = "default_sweep_interval")]
    pub sweep_interval_secs: f64,
    /// Records of each kind one sweep removes at most, so a sweep never
    /// holds the catalog long.
    #[serde(default = "default_sweep_batch")]
    pub sweep_batch: usize,
    /// Bytes of sled page cache; small by default so the catalog's memory
    /// stays bounded on small machines.
    #[serde(default = "default_cache_bytes")]
    pub cache_capacity_bytes: u64,
    /// Object storage endpoints clients may name in `OssEndpoint`.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Tenants; with none, the service runs for one local account.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Requests per second each account may make, by operation name
    /// (`CreateLiveStreamRecordIndexFiles = 45`); unnamed operations keep
    /// the API pages' limits.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, u32>,
    /// TLS for the gRPC listener; plaintext without it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// An HTTP listener for SRS's `on_hls` callbacks; off without it.
    #[serde(default)]
    pub srs_webhook: Option<SrsWebhookConfig>,
    /// A Prometheus endpoint; off without it.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT
    /// before the service flushes the catalog and exits anyway; below
    /// Kubernetes' default 30 s grace period, so the flush is not cut off.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: f64,
    /// Largest request message, in bytes; a larger one is refused with
    /// InvalidParams before it is read.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most segments one RegisterLiveStreamRecordSegments may carry.
    #[serde(default = "default_max_register_batch")]
    pub max_register_batch: usize,
    /// Limits on the gRPC listener's connections.
    #[serde(default)]
    pub connections: ConnectionsConfig,
    /// The catalog's engine: sled in `data_dir` unless PostgreSQL is named.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// Where rate limits are kept: this process, or a Redis shared by
    /// every replica.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The HTTP listener for players; off without `listen`.
    #[serde(default)]
    pub playback: PlaybackConfig,
}

/// Every connection holds a file descriptor and some memory, whether or not
/// it ever sends a request: these keys bound how many there are and how
/// long one may hold them doing nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// Most gRPC connections open at once; lowered at startup to stay below
    /// the process's open-file limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a new connection has to finish its TLS handshake and the
    /// HTTP/2 preface before it is closed.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_secs: f64,
    /// Seconds a connection may stay open with no request in flight.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: f64,
    /// Seconds between HTTP/2 PINGs to each client; 0 sends none.
    #[serde(default = "default_keepalive_interval")]
    pub keepalive_interval_secs: f64,
    /// Seconds a PING may go unanswered before the connection is closed.
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout_secs: f64,
    /// Seconds of silence before the kernel's TCP keepalive probes begin;
    /// 0 turns them off.
    #[serde(default = "default_tcp_keepalive")]
    pub tcp_keepalive_secs: f64,
    /// Largest header block (all metadata) of one request, in bytes.
    #[serde(default = "default_max_header_list_bytes")]
    pub max_header_list_bytes: u32,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            max_connections: default_max_connections(),
            handshake_timeout_secs: default_handshake_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            keepalive_interval_secs: default_keepalive_interval(),
            keepalive_timeout_secs: default_keepalive_timeout(),
            tcp_keepalive_secs: default_tcp_keepalive(),
            max_header_list_bytes: default_max_header_list_bytes(),
        }
    }
}

impl ConnectionsConfig {
    /// The longest any of these durations may be (a year), so a typo
    /// cannot overflow a timer.
    const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

    fn check(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "connections: max_connections must be at least 1".into(),
            ));
        }
        let durations = [
            ("handshake_timeout_secs", self.handshake_timeout_secs, false),
            ("idle_timeout_secs", self.idle_timeout_secs, false),
            (
                "keepalive_interval_secs",
                self.keepalive_interval_secs,
                true,
            ),
            ("keepalive_timeout_secs", self.keepalive_timeout_secs, false),
            ("tcp_keepalive_secs", self.tcp_keepalive_secs, true),
        ];
        for (name, value, zero_is_off) in durations {
            let low_ok = value > 0.0 || (zero_is_off && value == 0.0);
            if !(low_ok && value <= Self::MAX_SECS) {
                let low = if zero_is_off {
                    "0 (off)"
                } else {
                    "more than 0"
                };
                return Err(ConfigError::Invalid(format!(
                    "connections: {name} = {value} must be {low} and at most {} (a year)",
                    Self::MAX_SECS
                )));
            }
        }
        if self.max_header_list_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "connections: max_header_list_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }

    /// A duration key where 0 means off.
    pub fn optional(secs: f64) -> Option<std::time::Duration> {
        (secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the HTTP listener serving `GET /metrics`.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsWebhookConfig {
    /// Address of the HTTP listener SRS posts to.
    pub listen: SocketAddr,
    /// Each SRS (or group of streams) that may post, and where its
    /// segments land in object storage.
    #[serde(default)]
    pub sources: Vec<SrsSourceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrsSourceConfig {
    /// SHA-256 (hex) of the secret SRS sends as `?secret=` in the hook URL
    /// or in the `x-webhook-secret` header.
    pub secret_sha256: String,
    /// Account the segments are registered for (`local` in local mode).
    #[serde(default = "default_local_account")]
    pub account: String,
    /// DomainName of the streams SRS records.
    pub domain: String,
    /// Where SRS's segments are uploaded: endpoint, bucket, and the prefix
    /// put before SRS's relative `url` to make the object key.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default)]
    pub key_prefix: String,
}

fn default_local_account() -> String {
    LOCAL_ACCOUNT.to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain the server presents.
    pub cert_path: PathBuf,
    /// PEM private key of the certificate.
    pub key_path: PathBuf,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_max_segments() -> usize {
    100_000
}
fn default_span_gap() -> f64 {
    0.5
}
fn default_sweep_interval() -> f64 {
    60.0
}
fn default_sweep_batch() -> usize {
    1000
}
fn default_cache_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_shutdown_grace() -> f64 {
    25.0
}
fn default_max_message_bytes() -> usize {
    // A full batch of segments with long object keys fits.
    32 * 1024 * 1024
}
fn default_max_register_batch() -> usize {
    10_000
}
fn default_max_connections() -> usize {
    10_000
}
fn default_handshake_timeout() -> f64 {
    5.0
}
fn default_idle_timeout() -> f64 {
    300.0
}
fn default_keepalive_interval() -> f64 {
    30.0
}
fn default_keepalive_timeout() -> f64 {
    10.0
}
fn default_tcp_keepalive() -> f64 {
    60.0
}
fn default_max_header_list_bytes() -> u32 {
    // Large enough that an absurd but whole header (a megabyte of API key)
    // reaches the service and gets its own answer; HTTP/2 drops the whole
    // connection for a header block far beyond this limit.
    2 * 1024 * 1024
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            data_dir: default_data_dir(),
            max_segments_per_manifest: default_max_segments(),
            span_gap_seconds: default_span_gap(),
            sweep_interval_secs: default_sweep_interval(),
            sweep_batch: default_sweep_batch(),
            cache_capacity_bytes: default_cache_bytes(),
            endpoints: Vec::new(),
            accounts: Vec::new(),
            rate_limits: BTreeMap::new(),
            tls: None,
            srs_webhook: None,
            metrics: None,
            shutdown_grace_secs: default_shutdown_grace(),
            max_message_bytes: default_max_message_bytes(),
            max_register_batch: default_max_register_batch(),
            connections: ConnectionsConfig::default(),
            catalog: CatalogConfig::default(),
            limits: LimitsConfig::default(),
            playback: PlaybackConfig::default(),
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|err| match err {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Invalid(err.to_string()))
    }

    /// True when no accounts are configured: one implicit account, no keys,
    /// and the listener must stay on loopback.
    pub fn is_local_mode(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Fills in the embedded defaults and checks what serde cannot.
    pub fn finish(mut self) -> Result<Config, ConfigError> {
        if self.endpoints.is_empty() {
            self.endpoints.push(EndpointConfig::local(LOCAL_ENDPOINT));
        }
        self.check_numbers()?;
        self.catalog.check()?;
        self.limits.check()?;
        self.playback.check(self.is_local_mode())?;
        endpoints::finish(&mut self.endpoints, &self.data_dir)?;
        check_rate_limits("rate_limits", &self.rate_limits)?;
        accounts::check(&self.accounts)?;
        self.check_srs_webhook()?;
        if self.is_local_mode() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "listen = {} is not a loopback address: without [[accounts]] the service has no \
                 authentication and serves loopback only; add accounts with keys to listen elsewhere",
                self.listen
            )));
        }
        Ok(self)
    }

    /// The service-wide numbers are in their ranges.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        if !(self.span_gap_seconds >= 0.0 && self.span_gap_seconds.is_finite()) {
            return Err(ConfigError::Invalid(
                "span_gap_seconds must be 0 or more".into(),
            ));
        }
        if !(self.sweep_interval_secs > 0.0 && self.sweep_interval_secs.is_finite())
            || self.sweep_batch == 0
        {
            return Err(ConfigError::Invalid(
                "sweep_interval_secs and sweep_batch must be positive".into(),
            ));
        }
        if !(0.0..=3600.0).contains(&self.shutdown_grace_secs) {
            return Err(ConfigError::Invalid(
                "shutdown_grace_secs must be 0 to 3600".into(),
            ));
        }
        if self.max_message_bytes < 1024 || self.max_register_batch == 0 {
            return Err(ConfigError::Invalid(
                "max_message_bytes must be at least 1024 and max_register_batch at least 1".into(),
            ));
        }
        self.connections.check()?;
        if self.max_segments_per_manifest == 0 {
            return Err(ConfigError::Invalid(
                "max_segments_per_manifest must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Each SRS source belongs to an account that owns its domain and
    /// bucket.
    fn check_srs_webhook(&self) -> Result<(), ConfigError> {
        let Some(webhook) = &self.srs_webhook else {
            return Ok(());
        };
        for source in &webhook.sources {
            let valid = source.secret_sha256.len() == 64
                && source.secret_sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid {
                return Err(ConfigError::Invalid(
                    "srs_webhook source: secret_sha256 must be 64 hex characters".into(),
                ));
            }
            if !names::is_endpoint(&source.endpoint) || !names::is_bucket(&source.bucket) {
                return Err(ConfigError::Invalid(format!(
                    "srs_webhook source: endpoint {:?} or bucket {:?} is not valid",
                    source.endpoint, source.bucket
                )));
            }
            if self.is_local_mode() {
                if source.account != LOCAL_ACCOUNT {
                    return Err(ConfigError::Invalid(format!(
                        "srs_webhook source: no account {:?}",
                        source.account
                    )));
                }
                continue;
            }
            // A source whose streams the account could not register
            // would fail every callback; say so now instead.
            let account = self
                .accounts
                .iter()
                .find(|account| account.id == source.account)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "srs_webhook source: no account {:?}",
                        source.account
                    ))
                })?;
            let owns = |patterns: &[String], name: &str| {
                patterns
                    .iter()
                    .any(|pattern| crate::patterns::matches(pattern, name))
            };
            if !owns(&account.domains, &source.domain) || !owns(&account.buckets, &source.bucket) {
                return Err(ConfigError::Invalid(format!(
                    "srs_webhook source: account {:?} does not own domain {:?} and bucket {:?}",
                    source.account, source.domain, source.bucket
                )));
            }
        }
        if self.is_local_mode() && !webhook.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "srs_webhook listen = {} is not a loopback address; without [[accounts]] the service serves loopback only",
                webhook.listen
            )));
        }
        Ok(())
    }

    /// Requests per second `account_id` may make of `operation`.
    pub fn rate_limit(&self, account_id: &str, operation: Operation) -> u32 {
        let account = self
            .accounts
            .iter()
            .find(|account| account.id == account_id);
        account
            .and_then(|account| account.rate_limits.get(operation.name()))
            .or_else(|| self.rate_limits.get(operation.name()))
            .copied()
            .unwrap_or_else(|| operation.default_rate_limit())
    }

    /// A warning when two accounts' bucket patterns can name one bucket.
    pub fn shared_bucket_warning(&self) -> Option<String> {
        accounts::shared_bucket_warning(&self.accounts)
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.iter().find(|endpoint| endpoint.name == name)
    }
}

pub(crate) fn check_rate_limits(
    context: &str,
    limits: &BTreeMap<String, u32>,
) -> Result<(), ConfigError> {
    for (name, limit) in limits {
        if Operation::from_name(name).is_none() {
            let known: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
            return Err(ConfigError::Invalid(format!(
                "{context}: unknown operation {name:?}; known: {}",
                known.join(", ")
            )));
        }
        if *limit == 0 {
            return Err(ConfigError::Invalid(format!(
                "{context}: {name} must be at least 1 request per second"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_local_mode_on_loopback() {
        let config = Config::default().finish().unwrap();
        assert!(config.is_local_mode());
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        let local = config.endpoint(LOCAL_ENDPOINT).unwrap();
        assert_eq!(local.kind, EndpointKind::Local);
        assert_eq!(local.path.as_deref(), Some(Path::new("./data/objects")));
    }

    #[test]
    fn local_mode_refuses_a_public_listener() {
        let config = Config {
            listen: "0.0.0.0:50051".parse().unwrap(),
            ..Config::default()
        };
        let err = config.finish().unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
    }

    #[test]
    fn parses_the_design_shape() {
        let text = r#"
            listen = "127.0.0.1:50051"
            data_dir = "./data"
            max_segments_per_manifest = 100000

            [[endpoints]]
            name = "oss-cn-shanghai.aliyuncs.com"
            kind = "s3"
            url = "https://oss-cn-shanghai.aliyuncs.com"
            addressing = "virtual-hosted"
            region = "oss-cn-shanghai"
            access_key_id_env = "OSS_ACCESS_KEY_ID"
            secret_access_key_env = "OSS_ACCESS_KEY_SECRET"
            resolve = { "*.localhost" = "127.0.0.1" }

            [[accounts]]
            id = "1234567890"
            domains = ["example.com"]
            buckets = ["live-bucket"]
            [[accounts.keys]]
            sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            allow = [{ actions = ["live:*"], resources = ["acs:cdn:*:1234567890:domain/*"] }]
        "#;
        let config = Config::from_toml(text).unwrap().finish().unwrap();
        let endpoint = config.endpoint("oss-cn-shanghai.aliyuncs.com").unwrap();
        assert_eq!(endpoint.addressing, Addressing::VirtualHosted);
        assert_eq!(endpoint.resolve["*.localhost"].to_string(), "127.0.0.1");
        assert_eq!(config.accounts[0].buckets, vec!["live-bucket"]);
        assert!(!config.is_local_mode());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_endpoints() {
        assert!(Config::from_toml("lisen = \"x\"").is_err());
        let bad = Config::from_toml("[[endpoints]]\nname = \"a b\"\nkind = \"local\"").unwrap();
        assert!(bad.finish().is_err());
        let no_url =
            Config::from_toml("[[endpoints]]\nname = \"s3.local\"\nkind = \"s3\"").unwrap();
        assert!(no_url.finish().is_err());
    }

    #[test]
    fn shipped_examples_parse() {
        for file in ["examples/seaweedfs.toml", "examples/alibaba-oss.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let config = Config::from_file(&path).unwrap().finish();
            assert!(config.is_ok(), "{file}: {:?}", config.err());
        }
    }

    fn two_accounts(first: &str, second: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[accounts]]\nid = \"1000000001\"\ndomains = [{first:?}]\n\
             [[accounts]]\nid = \"3000000003\"\ndomains = [{second:?}]\n"
        );
        Config::from_toml(&text).unwrap().finish()
    }

    #[test]
    fn accounts_whose_domain_patterns_overlap_are_refused() {
        for (first, second) in [
            ("a.example.com", "a.example.com"),
            ("a.example.com", "A.EXAMPLE.COM"),
            ("a.example.com", "*.example.com"),
            ("*.example.com", "a.example.com"),
            ("*.example.com", "*.com"),
            ("*.example.com", "live.*"),
            ("a.example.com", "*"),
        ] {
            let err = two_accounts(first, second).unwrap_err().to_string();
            let named = [
                "\"1000000001\"".to_string(),
                "\"3000000003\"".to_string(),
                format!("{first:?}"),
                format!("{second:?}"),
            ];
            assert!(
                named.iter().all(|name| err.contains(name.as_str())) && !err.contains('\n'),
                "{first} vs {second}: {err}"
            );
        }
    }

    #[test]
    fn a_listed_twice_account_is_said_before_its_domains() {
        let text = "[[accounts]]\nid = \"7\"\ndomains = [\"a.com\"]\n\
                    [[accounts]]\nid = \"7\"\ndomains = [\"a.com\"]\n";
        let err = Config::from_toml(text)
            .unwrap()
            .finish()
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn shared_buckets_start_with_a_warning() {
        let text = "[[accounts]]\nid = \"1\"\nbuckets = [\"rec-*\"]\n\
                    [[accounts]]\nid = \"2\"\nbuckets = [\"other\", \"REC-2\"]\n";
        let config = Config::from_toml(text).unwrap().finish().unwrap();
        let warning = config.shared_bucket_warning().expect("a warning");
        for named in ["\"1\"", "\"2\"", "\"rec-*\"", "\"REC-2\""] {
            assert!(warning.contains(named), "{warning}");
        }
        let apart = "[[accounts]]\nid = \"1\"\nbuckets = [\"rec-1\"]\n\
                     [[accounts]]\nid = \"2\"\nbuckets = [\"rec-2\"]\n";
        let config = Config::from_toml(apart).unwrap().finish().unwrap();
        assert_eq!(config.shared_bucket_warning(), None);
    }

    #[test]
    fn accounts_with_disjoint_domain_patterns_start() {
        for (first, second) in [
            ("a.example.com", "b.example.com"),
            ("example.com", "*.example.com"),
            ("*.a.example.com", "*.b.example.com"),
            ("*.example.com", "*.example.net"),
        ] {
            assert!(
                two_accounts(first, second).is_ok(),
                "{first} vs {second} was refused"
            );
        }
    }

    #[test]
    fn rate_limits_fall_back_from_account_to_service_to_defaults() {
        let text = "[rate_limits]\nRegisterLiveStreamRecordSegments = 100\n\
                    [[accounts]]\nid = \"a\"\nrate_limits = { CreateLiveStreamRecordIndexFiles = 5 }\n\
                    [[accounts]]\nid = \"b\"\n";
        let config = Config::from_toml(text).unwrap().finish().unwrap();
        let create = Operation::CreateLiveStreamRecordIndexFiles;
        let register = Operation::RegisterLiveStreamRecordSegments;
        assert_eq!(config.rate_limit("a", create), 5);
        assert_eq!(config.rate_limit("b", create), 45);
        assert_eq!(config.rate_limit("a", register), 100);
        let unknown = Config::from_toml("[rate_limits]\nCreate = 5\n")
            .unwrap()
            .finish();
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown operation")
        );
        let zero = Config::from_toml("[rate_limits]\nCreateLiveStreamRecordIndexFiles = 0\n")
            .unwrap()
            .finish();
        assert!(zero.is_err());
    }
}
