//! Admission: whether an account may make one more request of an operation
//! now. Every listener asks the same [`Admission`] (the gRPC gate and the
//! SRS webhook), so an account's budget is one however its requests
//! arrive. A refused request is refused at once, never queued.
//!
//! [`InProcessLimiter`] keeps the budgets in this process (`[limits]
//! backend = "local"`, one replica). [`SharedLimits`] keeps them in Redis
//! (`backend = "redis"`), one budget for the whole fleet, and falls back to
//! a per-replica share while Redis cannot be reached.

mod fallback;
mod in_process;
mod rates;
mod redis;

use std::sync::Arc;
use std::time::Duration;

pub use fallback::{PROBE_INTERVAL, SharedLimits};
pub use in_process::InProcessLimiter;
pub use redis::{CALL_TIMEOUT, RedisLimiter, START_TIMEOUT, Unreachable};

use crate::clock::Clock;
use crate::config::{Config, LimitsBackend};
use crate::error::{ApiError, ApiResult};
use crate::operations::Operation;

/// A request refused for its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// The account's limit for the operation, requests per second.
    pub rate: u32,
    /// When the next request of the same kind will pass.
    pub retry_after: Duration,
}

#[async_trait::async_trait]
pub trait Admission: Send + Sync {
    /// Takes one request of `operation` from `account`'s budget, or says
    /// how long until one is available.
    async fn admit(&self, account: &str, operation: Operation) -> Result<(), Throttle>;

    /// Forgets state no budget needs any more; called now and then, so
    /// memory follows the accounts recently active, not every account ever
    /// seen.
    fn prune(&self);
}

impl dyn Admission {
    /// [`Admission::admit`] as the API answers it: Throttling.User with
    /// when to retry, counted in the metrics whichever listener refused.
    pub async fn admit_or_throttle(&self, account: &str, operation: Operation) -> ApiResult<()> {
        self.admit(account, operation).await.map_err(|throttle| {
            crate::telemetry::throttled(account, operation.name());
            ApiError::Throttled {
                message: format!(
                    "account {account} is over its limit of {} {} requests per second; retry in {} ms",
                    throttle.rate,
                    operation.name(),
                    throttle.retry_after.as_millis().max(1)
                ),
                retry_after: throttle.retry_after,
            }
        })
    }
}

/// The admission `config` asks for. With Redis, the URL is read from the
/// variable `url_env` names; an error says what is wrong in one line that
/// names the variable, never its value. With Redis, waits until it is
/// connected, or [`START_TIMEOUT`] at most.
pub async fn from_config(
    config: &Config,
    account_ids: &[String],
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn Admission>, String> {
    let limits = &config.limits;
    if limits.backend == LimitsBackend::Local {
        crate::telemetry::limits_shared(false);
        return Ok(Arc::new(InProcessLimiter::new(config, account_ids, clock)));
    }
    let name = limits.url_env.as_deref().unwrap_or_default();
    let url = std::env::var(name).map_err(|_| format!("${name} is not set"))?;
    let redis =
        RedisLimiter::new(config, account_ids, &url).map_err(|err| format!("${name} {err}"))?;
    let local = InProcessLimiter::shared_by(config, account_ids, clock, limits.expected_replicas);
    let shared = SharedLimits::start(redis, local).await;
    if shared.is_shared() {
        tracing::info!(
            url_env = name,
            expected_replicas = limits.expected_replicas,
            "rate limits shared through Redis"
        );
    }
    Ok(shared)
}
