//! Shared limits that survive losing Redis. While Redis answers, every
//! decision is the fleet's; while it does not, each replica limits on its
//! own at its share of every limit (limit / expected replicas, rounded up),
//! so requests keep being answered and the fleet stays near its limits. A
//! switch either way is said once: in the log and in the
//! `record_index_limits_shared` gauge.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::redis::{RedisLimiter, START_TIMEOUT, Unreachable};
use super::{Admission, InProcessLimiter, Throttle};
use crate::operations::Operation;

/// How often a replica limiting on its own asks Redis again: one request
/// a second pays for the probe, never every request while Redis is down.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

pub struct SharedLimits {
    redis: RedisLimiter,
    /// This replica's share of every limit, used while Redis is away.
    local: InProcessLimiter,
    /// Whether the last decision came from Redis.
    shared: AtomicBool,
    /// Milliseconds after `started` before which no request probes Redis
    /// again, while it is away.
    next_probe: AtomicU64,
    started: Instant,
}

impl SharedLimits {
    /// Connects to Redis and loads the script first, waiting up to
    /// [`START_TIMEOUT`] for it, so the first requests are decided by the
    /// fleet's budgets. A Redis that has not answered by then is said
    /// once, as when it goes away later, and this replica starts on its
    /// own; requests bring it back once Redis answers.
    pub async fn start(redis: RedisLimiter, local: InProcessLimiter) -> Arc<Self> {
        let limits = SharedLimits {
            redis,
            local,
            shared: AtomicBool::new(true),
            next_probe: AtomicU64::new(0),
            started: Instant::now(),
        };
        if let Err(err) = limits.redis.connect(START_TIMEOUT).await {
            limits.on_our_own(&err);
        }
        crate::telemetry::limits_shared(limits.is_shared());
        Arc::new(limits)
    }

    /// Whether decisions are the fleet's now.
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Relaxed)
    }

    fn millis_now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Claims the next probe of Redis while it is away: true for one
    /// request per [`PROBE_INTERVAL`].
    fn probe_due(&self) -> bool {
        let now = self.millis_now();
        let due = self.next_probe.load(Ordering::Relaxed);
        now >= due
            && self
                .next_probe
                .compare_exchange(
                    due,
                    now + PROBE_INTERVAL.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn on_our_own(&self, err: &Unreachable) {
        self.next_probe.store(
            self.millis_now() + PROBE_INTERVAL.as_millis() as u64,
            Ordering::Relaxed,
        );
        if self.shared.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = %err,
                "rate limits: Redis unreachable; this replica now limits on its own at its \
                 share of each limit until Redis answers again"
            );
            crate::telemetry::limits_shared(false);
        }
    }

    fn back_to_shared(&self) {
        if !self.shared.swap(true, Ordering::Relaxed) {
            tracing::info!("rate limits: Redis is back; limits are shared by the fleet again");
            crate::telemetry::limits_shared(true);
        }
    }
}

#[async_trait::async_trait]
impl Admission for SharedLimits {
    async fn admit(&self, account: &str, operation: Operation) -> Result<(), Throttle> {
        if self.is_shared() || self.probe_due() {
            match self.redis.admit(account, operation).await {
                Ok(decision) => {
                    self.back_to_shared();
                    return decision;
                }
                Err(err) => self.on_our_own(&err),
            }
        }
        self.local.admit(account, operation).await
    }

    fn prune(&self) {
        // Redis forgets full budgets by itself (each key expires then).
        self.local.prune();
        // Also said here, as pruning first runs once the service serves:
        // a switch made while it started, before metrics were on, would
        // otherwise never show.
        crate::telemetry::limits_shared(self.is_shared());
    }
}
