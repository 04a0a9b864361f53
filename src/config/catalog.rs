//! Which engine keeps the catalog, and how to reach PostgreSQL when it is
//! that one. The connection string stays out of the file: it may hold a
//! password, so the file names the environment variable that holds it.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CatalogEngine {
    /// sled in `data_dir/catalog`: one process owns it.
    #[default]
    Sled,
    /// A PostgreSQL database that several replicas share.
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    #[serde(default)]
    pub engine: CatalogEngine,
    /// Name of the environment variable holding the PostgreSQL connection
    /// string (`postgres://user:password@host/db` or `host=... dbname=...`).
    #[serde(default = "default_url_env")]
    pub url_env: String,
    /// Connections to PostgreSQL this process keeps at most.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Milliseconds one statement may run before PostgreSQL cancels it;
    /// 0 for no limit.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            engine: CatalogEngine::default(),
            url_env: default_url_env(),
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout(),
        }
    }
}

impl CatalogConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.pool_size == 0 {
            return Err(ConfigError::Invalid(
                "catalog: pool_size must be at least 1".into(),
            ));
        }
        if self.url_env.is_empty() {
            return Err(ConfigError::Invalid(
                "catalog: url_env must name an environment variable".into(),
            ));
        }
        Ok(())
    }
}

fn default_url_env() -> String {
    "RECORD_INDEX_DATABASE_URL".to_string()
}
fn default_pool_size() -> usize {
    16
}
fn default_statement_timeout() -> u64 {
    5_000
}
