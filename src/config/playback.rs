//! `[playback]`: the HTTP listener that serves playlists made per request
//! to players. Off unless `listen` is set; `serve` without a config file
//! turns it on at [`LOCAL_PLAYBACK`], as it serves gRPC on loopback.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

/// Where `serve` without a config file serves playback.
pub const LOCAL_PLAYBACK: &str = "127.0.0.1:8080";
/// Longest idle time a live range may be given: a day.
const MAX_LIVE_IDLE_SECS: f64 = 86_400.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybackConfig {
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// A range without an end turns into a closed playlist this long after
    /// its stream's last segment ended.
    #[serde(default = "default_live_idle")]
    pub live_idle_secs: f64,
    /// Web origins whose pages may fetch playlists (`*` for any), for
    /// players on another origin than the listener.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// The origin players reach the listener at (`https://play.example.com`),
    /// behind a load balancer or CDN: SignPlaybackUrl answers absolute URLs
    /// on it.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_live_idle() -> f64 {
    120.0
}

impl Default for PlaybackConfig {
    fn default() -> Self {
        PlaybackConfig {
            listen: None,
            live_idle_secs: default_live_idle(),
            cors_origins: Vec::new(),
            public_url: None,
        }
    }
}

impl PlaybackConfig {
    pub(super) fn check(&self, local_mode: bool) -> Result<(), ConfigError> {
        if !(self.live_idle_secs > 0.0 && self.live_idle_secs <= MAX_LIVE_IDLE_SECS) {
            return Err(ConfigError::Invalid(format!(
                "[playback] live_idle_secs must be more than 0 and at most {MAX_LIVE_IDLE_SECS}"
            )));
        }
        for origin in &self.cors_origins {
            if !is_origin(origin) {
                return Err(ConfigError::Invalid(format!(
                    "[playback] cors_origins: {origin:?} is neither * nor an origin such as \
                     https://player.example.com (scheme, host and port only)"
                )));
            }
        }
        if let Some(url) = &self.public_url
            && (url == "*" || !is_origin(url))
        {
            return Err(ConfigError::Invalid(format!(
                "[playback] public_url: {url:?} is not an origin such as \
                 https://play.example.com (scheme, host and port only)"
            )));
        }
        if let Some(listen) = self.listen
            && local_mode
            && !listen.ip().is_loopback()
        {
            return Err(ConfigError::Invalid(format!(
                "[playback] listen = {listen} is not a loopback address: without [[accounts]] \
                 playlists would be served to anyone without a signature"
            )));
        }
        Ok(())
    }

    /// Where players reach the listener bound at `bound`: `public_url`,
    /// else the bound address itself unless it is every address
    /// (0.0.0.0, ::), which names no host a player could use.
    pub fn origin(&self, bound: Option<SocketAddr>) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.clone());
        }
        bound
            .filter(|address| !address.ip().is_unspecified())
            .map(|address| format!("http://{address}"))
    }

    /// The idle time in microseconds.
    pub fn live_idle(&self) -> crate::manifest::Micros {
        (self.live_idle_secs * 1e6).round() as crate::manifest::Micros
    }
}

/// `*`, or `http(s)://host[:port]` without a path, as a browser sends
/// Origin.
fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(host) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_time_is_bounded_and_local_mode_stays_on_loopback() {
        let mut config = PlaybackConfig::default();
        assert!(config.check(true).is_ok());
        config.live_idle_secs = 0.0;
        assert!(config.check(false).is_err());
        config.live_idle_secs = f64::NAN;
        assert!(config.check(false).is_err());
        config.live_idle_secs = 30.0;
        config.listen = Some("0.0.0.0:8080".parse().unwrap());
        assert!(config.check(false).is_ok());
        let err = config.check(true).unwrap_err().to_string();
        assert!(err.contains("[playback] listen = 0.0.0.0:8080"), "{err}");
    }

    #[test]
    fn the_origin_is_the_public_url_else_a_specific_address() {
        let mut config = PlaybackConfig::default();
        let loopback = "127.0.0.1:8080".parse().ok();
        assert_eq!(config.origin(None), None);
        assert_eq!(config.origin(loopback).unwrap(), "http://127.0.0.1:8080");
        let v6 = "[::1]:8080".parse().ok();
        assert_eq!(config.origin(v6).unwrap(), "http://[::1]:8080");
        for every in ["0.0.0.0:8080", "[::]:8080"] {
            assert_eq!(config.origin(every.parse().ok()), None, "{every}");
        }
        config.public_url = Some("https://play.example.com".into());
        assert!(config.check(false).is_ok());
        assert_eq!(config.origin(loopback).unwrap(), "https://play.example.com");
        for bad in [
            "*",
            "play.example.com",
            "https://play.example.com/v1",
            "https://",
        ] {
            config.public_url = Some(bad.into());
            let err = config.check(false).unwrap_err().to_string();
            assert!(err.contains("public_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn cors_origins_are_origins() {
        for good in ["*", "https://player.example.com", "http://127.0.0.1:3000"] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "player.example.com",
            "https://a.com/path",
            "https://",
            "ftp://a.com",
            "https://a b",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
