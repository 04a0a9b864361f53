//! The URIs that playlists made per request give players for segments.
//! Each endpoint has its mode (`segment_urls` in its config): relative to
//! the playlist, the object's plain URL, a presigned GET for private
//! buckets, or a URL on the CDN in front of the bucket.

use std::sync::Arc;

use super::ObjectStore;
use super::presign::{PresignScope, Presigner};
use super::presigned_reuse::{self, Kept};
use super::urls::S3Urls;
use crate::config::{EndpointConfig, SegmentUrlMode as Mode};
use crate::manifest::Micros;
use crate::manifest::uri::encode_key;

/// Where a playlist sends a player for one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentUrl {
    /// The endpoint writes segments relative to the playlist: the
    /// playlist's writer makes the relative URI from the key.
    Relative,
    /// A URL the player fetches as it is: the object's plain URL
    /// (`public`), or a GET presigned with the endpoint's credentials
    /// (`presigned`), which carries the access key id but never the
    /// secret.
    Direct(String),
    /// `cdn_base_url/key`, unsigned: the playlist's writer appends the
    /// account's Type A `auth_key` (computed over the URL's path) before
    /// writing it.
    Cdn(String),
}

/// An endpoint's mode with what it needs, resolved at startup.
pub(super) enum Plan {
    Relative,
    Public,
    Presigned {
        urls: Arc<S3Urls>,
        presigner: Arc<Presigner>,
        expiry_secs: u32,
        kept: Kept,
    },
    Cdn {
        /// `cdn_base_url` without a trailing `/`.
        base: String,
    },
}

impl Plan {
    /// The plan of `config`'s mode; `presigning` is the S3 store's URL
    /// forms and presigner (None for a local endpoint).
    pub(super) fn new(
        config: &EndpointConfig,
        presigning: Option<(Arc<S3Urls>, Arc<Presigner>)>,
    ) -> Result<Plan, String> {
        let mode = config.segment_url_mode();
        if config.cdn_base_url.is_some() && mode != Mode::Cdn {
            tracing::warn!(
                endpoint = %config.name,
                "cdn_base_url is set but segment_urls is not \"cdn\": it is not used"
            );
        }
        Ok(match mode {
            Mode::Relative => Plan::Relative,
            Mode::Public => Plan::Public,
            Mode::Presigned => {
                let (urls, presigner) = presigning.ok_or_else(|| {
                    format!(
                        "endpoint {}: segment_urls = \"presigned\" needs kind = \"s3\"",
                        config.name
                    )
                })?;
                Plan::Presigned {
                    urls,
                    presigner,
                    expiry_secs: config.presign_expiry(),
                    kept: Kept::default(),
                }
            }
            Mode::Cdn => {
                let base = config.cdn_base_url.as_deref().ok_or_else(|| {
                    format!(
                        "endpoint {}: segment_urls = \"cdn\" needs cdn_base_url",
                        config.name
                    )
                })?;
                Plan::Cdn {
                    base: base.trim_end_matches('/').to_string(),
                }
            }
            Mode::Unknown(name) => {
                return Err(format!(
                    "endpoint {}: unknown segment_urls {name:?}",
                    config.name
                ));
            }
        })
    }
}

/// The segment URLs of one endpoint at one instant: what a playlist's
/// segments on that endpoint share (the presigned URLs' signing key, date
/// and expiry) is worked out once, then each [`SegmentUrls::url`] adds
/// only its own part.
pub struct SegmentUrls<'a> {
    of: Of<'a>,
}

enum Of<'a> {
    Relative,
    Public(&'a dyn ObjectStore),
    Presigned {
        urls: &'a S3Urls,
        /// Boxed: two hash states, large beside the other cases.
        scope: Box<PresignScope>,
        kept: &'a Kept,
        /// How long a URL is given out before another is signed.
        step_secs: u32,
    },
    Cdn(&'a str),
    /// An endpoint not in the config: the public URL that RecordUrl and
    /// Create's playlists give its objects.
    Unconfigured(&'a str),
}

impl<'a> SegmentUrls<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        store: &'a dyn ObjectStore,
        now: Micros,
    ) -> Result<SegmentUrls<'a>, String> {
        let of = match plan {
            Plan::Relative => Of::Relative,
            Plan::Public => Of::Public(store),
            Plan::Presigned {
                urls,
                presigner,
                expiry_secs,
                kept,
            } => {
                let signing = presigned_reuse::signing(now, *expiry_secs);
                Of::Presigned {
                    urls,
                    scope: Box::new(presigner.scope(signing.at, signing.expires_secs)?),
                    kept,
                    step_secs: signing.step_secs,
                }
            }
            Plan::Cdn { base } => Of::Cdn(base),
        };
        Ok(SegmentUrls { of })
    }

    pub(super) fn unconfigured(endpoint: &'a str) -> SegmentUrls<'a> {
        SegmentUrls {
            of: Of::Unconfigured(endpoint),
        }
    }

    /// How long, in seconds, a playlist holding these URLs may be kept by
    /// a cache while players it hands them to still have the configured
    /// expiry left, give or take a step; `None` when they do not expire.
    pub fn fresh_secs(&self) -> Option<u64> {
        match &self.of {
            Of::Presigned { step_secs, .. } => Some(u64::from(*step_secs)),
            _ => None,
        }
    }

    /// Where a player fetches object `key` of `bucket`.
    pub fn url(&self, bucket: &str, key: &str) -> SegmentUrl {
        match &self.of {
            Of::Relative => SegmentUrl::Relative,
            Of::Public(store) => SegmentUrl::Direct(store.url(bucket, key)),
            Of::Presigned {
                urls, scope, kept, ..
            } => SegmentUrl::Direct(urls.presigned(scope, bucket, key, Some(kept))),
            Of::Cdn(base) => SegmentUrl::Cdn(cdn_url(base, key)),
            Of::Unconfigured(endpoint) => {
                SegmentUrl::Direct(unconfigured_url(endpoint, bucket, key))
            }
        }
    }
}

/// An object's URL on a CDN whose origin is its bucket.
fn cdn_url(base: &str, key: &str) -> String {
    format!("{base}/{}", encode_key(key))
}

/// The URL of an object on an endpoint the config does not name: the
/// virtual-hosted HTTPS form OSS uses.
pub(super) fn unconfigured_url(endpoint: &str, bucket: &str, key: &str) -> String {
    format!("https://{bucket}.{endpoint}/{}", encode_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Addressing, Config};
    use crate::storage::{LocalStore, Storage};

    const THEN: Micros = 1_369_353_600 * 1_000_000;

    fn presigned(addressing: Addressing) -> Plan {
        Plan::Presigned {
            urls: Arc::new(S3Urls::new("https://s3.amazonaws.com", addressing).unwrap()),
            presigner: Arc::new(Presigner::new(
                "AKIAIOSFODNN7EXAMPLE".into(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                "us-east-1".into(),
            )),
            // Signed for 86,400 s with the reuse step's 300 s: AWS's example.
            expiry_secs: 86_100,
            kept: Kept::default(),
        }
    }

    #[test]
    fn each_plan_gives_its_kind_of_url() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf()).unwrap();
        let url = |plan: &Plan, key: &str| {
            SegmentUrls::new(plan, &store, THEN)
                .unwrap()
                .url("examplebucket", key)
        };
        assert_eq!(url(&Plan::Relative, "a.ts"), SegmentUrl::Relative);
        assert_eq!(
            url(&Plan::Public, "a b.ts"),
            SegmentUrl::Direct(store.url("examplebucket", "a b.ts"))
        );
        assert_eq!(
            url(
                &Plan::Cdn {
                    base: "https://cdn.example.com".into()
                },
                "live/a b.ts"
            ),
            SegmentUrl::Cdn("https://cdn.example.com/live/a%20b.ts".into())
        );
        let SegmentUrl::Direct(signed) = url(&presigned(Addressing::VirtualHosted), "test.txt")
        else {
            panic!("a presigned URL is direct");
        };
        assert!(signed.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"));
        assert!(signed.ends_with(
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        ));
        let SegmentUrl::Direct(path_style) = url(&presigned(Addressing::Path), "test.txt") else {
            panic!("a presigned URL is direct");
        };
        assert!(path_style.starts_with("https://s3.amazonaws.com/examplebucket/test.txt?"));
        assert!(SegmentUrls::new(&presigned(Addressing::Path), &store, -1).is_err());
    }

    #[test]
    fn storage_answers_by_the_endpoint_config() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = {:?}\n[[endpoints]]\nname = \"localhost\"\nkind = \"local\"\n\
             [[endpoints]]\nname = \"cdn.local\"\nkind = \"local\"\nsegment_urls = \"cdn\"\n\
             cdn_base_url = \"https://cdn.example.com/vod/\"\n",
            dir.path()
        );
        let config = Config::from_toml(&text).unwrap().finish().unwrap();
        let storage = Storage::from_config(&config).unwrap();
        assert_eq!(
            storage.segment_url("localhost", "b", "k.ts", THEN).unwrap(),
            SegmentUrl::Relative
        );
        assert_eq!(
            storage
                .segment_url("cdn.local", "b", "s/k.ts", THEN)
                .unwrap(),
            SegmentUrl::Cdn("https://cdn.example.com/vod/s/k.ts".into())
        );
        assert_eq!(
            storage
                .segment_url("oss-cn-hangzhou.aliyuncs.com", "b", "s/k.ts", THEN)
                .unwrap(),
            SegmentUrl::Direct(storage.url("oss-cn-hangzhou.aliyuncs.com", "b", "s/k.ts"))
        );
    }

    #[test]
    fn cdn_urls_encode_each_segment_of_the_key() {
        assert_eq!(
            cdn_url("https://cdn.example.com", "live/s 1/000+a.ts"),
            "https://cdn.example.com/live/s%201/000%2Ba.ts"
        );
        assert_eq!(
            cdn_url("https://cdn.example.com/vod", "é.ts"),
            "https://cdn.example.com/vod/%C3%A9.ts"
        );
    }
}
