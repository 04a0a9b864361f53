//! A DNS resolver with per-endpoint overrides: operators point private
//! endpoints and bucket sub-domains (`bucket.localhost`) at fixed addresses.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::client::connect::dns::{GaiResolver, Name};
use hyper::service::Service;

#[derive(Clone)]
pub struct OverrideResolver {
    /// (pattern, address); a pattern `*.suffix` matches any sub-domain.
    overrides: Arc<Vec<(String, IpAddr)>>,
    system: GaiResolver,
}

impl OverrideResolver {
    pub fn new(overrides: impl IntoIterator<Item = (String, IpAddr)>) -> Self {
        OverrideResolver {
            overrides: Arc::new(overrides.into_iter().collect()),
            system: GaiResolver::new(),
        }
    }

    fn lookup(&self, host: &str) -> Option<IpAddr> {
        self.overrides
            .iter()
            .find(|(pattern, _)| host_matches(pattern, host))
            .map(|(_, address)| *address)
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1
                && host.ends_with(suffix)
                && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl Service<Name> for OverrideResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if let Some(address) = self.lookup(name.as_str()) {
            // The connector replaces port 0 with the URL's port.
            return Box::pin(async move { Ok(vec![SocketAddr::new(address, 0)].into_iter()) });
        }
        let lookup = self.system.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn wildcard_matches_sub_domains_only() {
        assert!(host_matches("*.localhost", "bucket.localhost"));
        assert!(host_matches("*.localhost", "a.b.localhost"));
        assert!(!host_matches("*.localhost", "localhost"));
        assert!(!host_matches("*.localhost", "xlocalhost"));
        assert!(host_matches("oss.internal", "OSS.internal"));
        assert!(!host_matches("oss.internal", "x.oss.internal"));
    }
}
