//! Where the per-account rate limits are kept: in this process, or in a
//! Redis that every replica shares so the fleet as a whole holds each
//! limit. The Redis URL stays out of the file: it may hold a password, so
//! the file names the environment variable that holds it.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(from = "String")]
pub enum LimitsBackend {
    /// Each process keeps its own budgets: right for one replica.
    #[default]
    Local,
    /// Budgets live in Redis, one per account and RPC for the whole fleet.
    Redis,
    /// Any other name, refused by the checks in one line (a parse error
    /// would quote the file around it over several).
    Unknown(String),
}

impl From<String> for LimitsBackend {
    fn from(name: String) -> Self {
        match name.as_str() {
            "local" => LimitsBackend::Local,
            "redis" => LimitsBackend::Redis,
            _ => LimitsBackend::Unknown(name),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub backend: LimitsBackend,
    /// Name of the environment variable holding the Redis URL
    /// (`redis://[:password@]host:port[/db]`); required with `redis`.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Replicas the fleet runs; while Redis cannot be reached each one
    /// admits this share of every limit on its own, so the fleet stays
    /// near the limit instead of at a multiple of it.
    #[serde(default = "default_expected_replicas")]
    pub expected_replicas: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            backend: LimitsBackend::default(),
            url_env: None,
            expected_replicas: default_expected_replicas(),
        }
    }
}

impl LimitsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if let LimitsBackend::Unknown(name) = &self.backend {
            return Err(ConfigError::Invalid(format!(
                "limits: backend = {name:?} is not \"local\" or \"redis\""
            )));
        }
        if self.expected_replicas == 0 {
            return Err(ConfigError::Invalid(
                "limits: expected_replicas must be at least 1".into(),
            ));
        }
        let named = self.url_env.as_deref().is_some_and(|name| !name.is_empty());
        if self.backend == LimitsBackend::Redis && !named {
            return Err(ConfigError::Invalid(
                "limits: backend = \"redis\" needs url_env, the name of the environment variable \
                 holding the Redis URL"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn default_expected_replicas() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn finish(text: &str) -> Result<Config, String> {
        Config::from_toml(text)
            .map_err(|err| err.to_string())?
            .finish()
            .map_err(|err| err.to_string())
    }

    #[test]
    fn local_is_the_default() {
        let config = finish("").unwrap();
        assert_eq!(config.limits.backend, super::LimitsBackend::Local);
        assert_eq!(config.limits.expected_replicas, 1);
    }

    #[test]
    fn bad_limits_are_refused_in_one_line() {
        for (text, said) in [
            (
                "[limits]\nbackend = \"memcached\"\n",
                "backend = \"memcached\" is not \"local\" or \"redis\"",
            ),
            ("[limits]\nbackend = \"redis\"\n", "needs url_env"),
            (
                "[limits]\nbackend = \"redis\"\nurl_env = \"\"\n",
                "needs url_env",
            ),
            (
                "[limits]\nbackend = \"redis\"\nurl_env = \"R\"\nexpected_replicas = 0\n",
                "expected_replicas must be at least 1",
            ),
        ] {
            let err = finish(text).unwrap_err();
            assert!(err.contains(said), "{text:?}: {err}");
            assert!(!err.trim_end().contains('\n'), "{text:?}: {err}");
        }
        let fine = "[limits]\nbackend = \"redis\"\nurl_env = \"R\"\nexpected_replicas = 3\n";
        assert_eq!(finish(fine).unwrap().limits.expected_replicas, 3);
    }
}
