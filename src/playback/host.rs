//! The host a request names, read as RFC 9112 section 3.2 asks a server
//! to: from an absolute-form target, else from its one Host header, which
//! an HTTP/1.1 request must send. A request with two Host headers, or one
//! that is not a host, is refused, as a proxy in front may route it by
//! another reading than ours. Pure.

use hyper::header::HOST;
use hyper::http::uri::Authority;
use hyper::{Body, Request, Version};

/// Why a request's host cannot be read: it is answered 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("an HTTP/1.1 request names its host in a Host header")]
    Missing,
    #[error("a request names its host in one Host header, not several")]
    Repeated,
    #[error("the Host header is not a host name or address with an optional port")]
    Malformed,
}

/// The host (lower case, without the port) `request` is for; `None` when
/// it names none, as HTTP/1.0 requests and an empty Host may.
pub fn of(request: &Request<Body>) -> Result<Option<String>, HostError> {
    let mut headers = request.headers().get_all(HOST).iter();
    let header = match (headers.next(), headers.next()) {
        (_, Some(_)) => return Err(HostError::Repeated),
        (header, None) => header,
    };
    if let Some(host) = request.uri().host() {
        return Ok(Some(host.to_ascii_lowercase()));
    }
    let Some(header) = header else {
        return match request.version() {
            Version::HTTP_11 => Err(HostError::Missing),
            _ => Ok(None),
        };
    };
    let text = header.to_str().map_err(|_| HostError::Malformed)?;
    if text.is_empty() {
        return Ok(None);
    }
    let authority: Authority = text.parse().map_err(|_| HostError::Malformed)?;
    // User info is no part of a Host value; a port is digits.
    let port = &text[authority.host().len()..];
    if text.contains('@') || !(port.is_empty() || authority.port_u16().is_some()) {
        return Err(HostError::Malformed);
    }
    Ok(Some(authority.host().to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, version: Version, hosts: &[&str]) -> Request<Body> {
        let mut builder = Request::get(target).version(version);
        for host in hosts {
            builder = builder.header(HOST, *host);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_host_comes_from_the_target_or_the_one_header() {
        let h11 = Version::HTTP_11;
        let host = |target, version, hosts: &[&str]| of(&request(target, version, hosts));
        assert_eq!(
            host("/a", h11, &["LocalHost:8080"]),
            Ok(Some("localhost".into()))
        );
        assert_eq!(host("/a", h11, &["[::1]:8080"]), Ok(Some("[::1]".into())));
        assert_eq!(host("/a", h11, &[""]), Ok(None));
        assert_eq!(host("/a", Version::HTTP_10, &[]), Ok(None));
        assert_eq!(host("/a", Version::HTTP_2, &[]), Ok(None));
        // The absolute form wins over the header.
        assert_eq!(
            host("http://Evil.example/a", h11, &["127.0.0.1"]),
            Ok(Some("evil.example".into()))
        );
        assert_eq!(
            host("http://127.0.0.1:8080/a", h11, &[]),
            Ok(Some("127.0.0.1".into()))
        );
    }

    #[test]
    fn a_missing_repeated_or_malformed_host_is_refused() {
        let h11 = Version::HTTP_11;
        let host = |target, version, hosts: &[&str]| of(&request(target, version, hosts));
        assert_eq!(host("/a", h11, &[]), Err(HostError::Missing));
        for version in [Version::HTTP_10, h11] {
            assert_eq!(
                host("/a", version, &["127.0.0.1", "evil.example"]),
                Err(HostError::Repeated)
            );
        }
        assert_eq!(
            host("http://127.0.0.1/a", h11, &["a", "b"]),
            Err(HostError::Repeated)
        );
        for bad in ["a b", "a/b", "user@127.0.0.1", "127.0.0.1:x", "[::1", "a?b"] {
            assert_eq!(host("/a", h11, &[bad]), Err(HostError::Malformed), "{bad}");
        }
    }
}
