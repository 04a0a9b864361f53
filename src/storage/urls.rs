//! Where an S3 endpoint's objects are on the web: an object's plain URL
//! and its presigned GET, path-style or virtual-hosted as configured. Pure:
//! text in, text out.

use super::presign::PresignScope;
use super::presigned_reuse::Kept;
use crate::config::Addressing;
use crate::manifest::uri::{encode_key, push_encoded};

/// The URL forms of one S3 endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Urls {
    /// `http` or `https`, from the configured URL.
    scheme: String,
    /// `host[:port]` of the configured URL.
    authority: String,
    /// The configured URL without a trailing `/`, for path-style URLs.
    base_url: String,
    /// The configured URL's path without a trailing `/` (usually empty),
    /// before `/{bucket}` in path-style URLs.
    base_path: String,
    /// The host presigned URLs name and sign: lower case, without the
    /// scheme's default port, as players send it in `Host`.
    signed_authority: String,
    addressing: Addressing,
}

/// The scheme (lower case) and `host[:port]` of a URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("url {url:?} has no scheme"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("url {url:?} has no host"));
    }
    Ok((scheme.to_ascii_lowercase(), authority.to_string()))
}

/// `authority` as a client sends it in `Host`: lower case, and without the
/// port when it is the scheme's default.
fn host_header(scheme: &str, authority: &str) -> String {
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    match authority.strip_suffix(default_port) {
        Some(host) => host.to_string(),
        None => authority,
    }
}

impl S3Urls {
    pub fn new(url: &str, addressing: Addressing) -> Result<S3Urls, String> {
        let base_url = url.trim_end_matches('/').to_string();
        let (scheme, authority) = split_url(&base_url)?;
        let after_scheme = &base_url[base_url.find("://").map_or(0, |at| at + 3)..];
        let base_path = after_scheme[authority.len()..].to_string();
        Ok(S3Urls {
            signed_authority: host_header(&scheme, &authority),
            scheme,
            authority,
            base_url,
            base_path,
            addressing,
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The URL a player uses to fetch an object of a public bucket.
    pub fn object(&self, bucket: &str, key: &str) -> String {
        match self.addressing {
            Addressing::Path => format!("{}/{bucket}/{}", self.base_url, encode_key(key)),
            Addressing::VirtualHosted => format!(
                "{}://{bucket}.{}/{}",
                self.scheme,
                self.authority,
                encode_key(key)
            ),
        }
    }

    /// A GET of an object signed into its URL, valid for the scope's
    /// expiry from the scope's instant. Built in one buffer: a playlist
    /// makes hundreds.
    pub fn presigned(
        &self,
        scope: &PresignScope,
        bucket: &str,
        key: &str,
        kept: Option<&Kept>,
    ) -> String {
        let mut url = String::with_capacity(
            self.scheme.len()
                + self.signed_authority.len()
                + self.base_path.len()
                + 2 * bucket.len()
                + 3 * key.len()
                + 320,
        );
        url.push_str(&self.scheme);
        url.push_str("://");
        let host_start = url.len();
        if self.addressing == Addressing::VirtualHosted {
            url.push_str(bucket);
            url.push('.');
        }
        url.push_str(&self.signed_authority);
        let host = host_start..url.len();
        if self.addressing == Addressing::Path {
            url.push_str(&self.base_path);
            url.push('/');
            url.push_str(bucket);
        }
        url.push('/');
        push_encoded(&mut url, key);
        let path = host.end..url.len();
        url.push('?');
        scope.sign_into(&mut url, host, path, kept);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::presign::Presigner;

    const THEN: i64 = 1_369_353_600 * 1_000_000;

    fn scope() -> PresignScope {
        Presigner::new(
            "AKIAIOSFODNN7EXAMPLE".into(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            "us-east-1".into(),
        )
        .scope(THEN, 86_400)
        .unwrap()
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8333").unwrap(),
            ("http".into(), "127.0.0.1:8333".into())
        );
        assert_eq!(
            split_url("HTTPS://oss.example.com/x").unwrap(),
            ("https".into(), "oss.example.com".into())
        );
        assert!(split_url("oss.example.com").is_err());
        assert!(split_url("https:///x").is_err());
    }

    #[test]
    fn plain_urls_keep_the_configured_form() {
        let path = S3Urls::new("http://127.0.0.1:8333/", Addressing::Path).unwrap();
        assert_eq!(
            path.object("b", "live/a b/1.ts"),
            "http://127.0.0.1:8333/b/live/a%20b/1.ts"
        );
        let hosted = S3Urls::new(
            "https://oss-cn-shanghai.aliyuncs.com",
            Addressing::VirtualHosted,
        )
        .unwrap();
        assert_eq!(
            hosted.object("b", "x+y.ts"),
            "https://b.oss-cn-shanghai.aliyuncs.com/x%2By.ts"
        );
    }

    #[test]
    fn the_documented_request_as_a_virtual_hosted_url() {
        let urls = S3Urls::new("https://s3.amazonaws.com", Addressing::VirtualHosted).unwrap();
        assert_eq!(
            urls.presigned(&scope(), "examplebucket", "test.txt", None),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        // The default port is not part of the host players send, so it is
        // neither in the URL nor in the signature; upper case neither.
        let with_port =
            S3Urls::new("HTTPS://S3.AMAZONAWS.COM:443", Addressing::VirtualHosted).unwrap();
        assert_eq!(
            with_port.presigned(&scope(), "examplebucket", "test.txt", None),
            urls.presigned(&scope(), "examplebucket", "test.txt", None)
        );
    }

    #[test]
    fn path_style_urls_sign_the_bucket_in_the_path() {
        let urls = S3Urls::new("http://127.0.0.1:8333/s3", Addressing::Path).unwrap();
        let url = urls.presigned(&scope(), "bucket", "live/a b+c.ts", None);
        let (address, query) = url.split_once('?').unwrap();
        assert_eq!(address, "http://127.0.0.1:8333/s3/bucket/live/a%20b%2Bc.ts");
        let signature = scope().signature("127.0.0.1:8333", "/s3/bucket/live/a%20b%2Bc.ts");
        assert!(
            query.ends_with(&format!("&X-Amz-Signature={signature}")),
            "{query}"
        );
        assert!(query.contains("&X-Amz-Expires=86400&"));
    }
}
