//! Admission: whether an account may make one more request of an operation
//! now. Every listener asks the same [`Admission`] (the gRPC gate and the
//! SRS webhook), so an account's budget is one however its requests
//! arrive. A refused request is refused at once, never queued.
//!
//! [`InProcessLimiter`] keeps the budgets in this process; a backend shared
//! by several processes implements the same trait.

mod in_process;

use std::time::Duration;

pub use in_process::InProcessLimiter;

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

pub trait Admission: Send + Sync {
    /// Takes one request of `operation` from `account`'s budget, or says
    /// how long until one is available.
    fn admit(&self, account: &str, operation: Operation) -> Result<(), Throttle>;

    /// Forgets state no budget needs any more; called now and then, so
    /// memory follows the accounts recently active, not every account ever
    /// seen.
    fn prune(&self);
}

impl dyn Admission {
    /// [`Admission::admit`] as the API answers it: Throttling.User with
    /// when to retry, counted in the metrics whichever listener refused.
    pub fn admit_or_throttle(&self, account: &str, operation: Operation) -> ApiResult<()> {
        self.admit(account, operation).map_err(|throttle| {
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
