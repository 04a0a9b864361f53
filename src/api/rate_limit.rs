//! Per-account, per-operation GCRA rate limits, shared by every connection.
//! A request over the limit is refused at once, never queued.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::operations::Operation;

type KeyedGcra<C> =
    Gcra<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A request refused for its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// The account's limit for the operation, requests per second.
    pub rate: u32,
    /// When the next request of the same kind will pass.
    pub retry_after: Duration,
}

/// One limiter and the rate it enforces.
struct Limit<C: Clock> {
    rate: u32,
    gcra: Arc<KeyedGcra<C>>,
}

/// The limiters of every (operation, rate) in use; each is keyed by
/// account, so accounts sharing a rate never share a budget.
pub struct RateLimiter<C: Clock = DefaultClock> {
    /// (operation, account) → the limiter of that account's rate.
    by_account: HashMap<(Operation, String), Limit<C>>,
    /// Each operation's service-wide limiter, for accounts not listed.
    defaults: HashMap<Operation, Limit<C>>,
    all: Vec<Arc<KeyedGcra<C>>>,
    clock: C,
}

impl RateLimiter<DefaultClock> {
    pub fn new(config: &Config, account_ids: &[String]) -> Self {
        RateLimiter::with_clock(config, account_ids, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    pub fn with_clock(config: &Config, account_ids: &[String], clock: C) -> Self {
        let mut by_rate: HashMap<(Operation, u32), Arc<KeyedGcra<C>>> = HashMap::new();
        let mut limiter_for = |operation: Operation, rate: u32| {
            let gcra = by_rate
                .entry((operation, rate))
                .or_insert_with(|| {
                    let per_second = NonZeroU32::new(rate.max(1)).expect("at least 1");
                    // The burst is one second's worth: `rate` requests pass
                    // at once, the next waits for the next cell.
                    Arc::new(Gcra::dashmap_with_clock(
                        Quota::per_second(per_second),
                        clock.clone(),
                    ))
                })
                .clone();
            Limit { rate, gcra }
        };
        let mut by_account = HashMap::new();
        let mut defaults = HashMap::new();
        for operation in Operation::ALL {
            let default_rate = config
                .rate_limits
                .get(operation.name())
                .copied()
                .unwrap_or_else(|| operation.default_rate_limit());
            defaults.insert(operation, limiter_for(operation, default_rate));
            for account in account_ids {
                let rate = config.rate_limit(account, operation);
                by_account.insert((operation, account.clone()), limiter_for(operation, rate));
            }
        }
        let all = by_rate.into_values().collect();
        RateLimiter {
            by_account,
            defaults,
            all,
            clock,
        }
    }

    /// [`RateLimiter::check`] as the API answers it: Throttling.User with
    /// when to retry, counted in the metrics whichever listener refused.
    pub fn admit(&self, operation: Operation, account: &str) -> ApiResult<()> {
        self.check(operation, account).map_err(|throttle| {
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

    /// Takes one request of `operation` from `account`'s budget, or says
    /// how long until one is available.
    pub fn check(&self, operation: Operation, account: &str) -> Result<(), Throttle> {
        let account = account.to_string();
        let limit = match self.by_account.get(&(operation, account.clone())) {
            Some(limit) => limit,
            None => &self.defaults[&operation],
        };
        limit
            .gcra
            .check_key(&account)
            .map_err(|not_until| Throttle {
                rate: limit.rate,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Forgets accounts whose budget is full again, so memory follows the
    /// accounts active in the last second, not every account ever seen.
    pub fn prune(&self) {
        for limiter in &self.all {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Accounts with a partly used budget, summed over operations.
    pub fn tracked(&self) -> usize {
        self.all.iter().map(|limiter| limiter.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(
        config: &str,
        accounts: &[&str],
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let config = Config::from_toml(config).unwrap().finish().unwrap();
        let clock = FakeRelativeClock::default();
        let ids: Vec<String> = accounts.iter().map(|id| id.to_string()).collect();
        (RateLimiter::with_clock(&config, &ids, clock.clone()), clock)
    }

    const CREATE: Operation = Operation::CreateLiveStreamRecordIndexFiles;
    const REGISTER: Operation = Operation::RegisterLiveStreamRecordSegments;

    #[test]
    fn exactly_the_limit_passes_in_one_second() {
        let (limiter, clock) = limiter(
            "[[accounts]]\nid = \"a\"\n[[accounts]]\nid = \"b\"\n",
            &["a", "b"],
        );
        for _ in 0..45 {
            assert!(limiter.check(CREATE, "a").is_ok());
        }
        let throttle = limiter.check(CREATE, "a").unwrap_err();
        assert_eq!(throttle.rate, 45);
        let wait = throttle.retry_after;
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(23),
            "{wait:?}"
        );
        // Another account, and another operation of the same account, are
        // untouched.
        for _ in 0..45 {
            assert!(limiter.check(CREATE, "b").is_ok());
        }
        assert!(limiter.check(REGISTER, "a").is_ok());
        // Within the same second no more pass; the next second, all again.
        clock.advance(Duration::from_millis(20));
        assert!(limiter.check(CREATE, "a").is_err());
        clock.advance(Duration::from_millis(980));
        for _ in 0..45 {
            assert!(limiter.check(CREATE, "a").is_ok());
        }
        assert!(limiter.check(CREATE, "a").is_err());
    }

    #[test]
    fn accounts_get_their_own_rates() {
        let (limiter, _clock) = limiter(
            "[rate_limits]\nRegisterLiveStreamRecordSegments = 3\n\
             [[accounts]]\nid = \"fast\"\nrate_limits = { RegisterLiveStreamRecordSegments = 10 }\n\
             [[accounts]]\nid = \"slow\"\n",
            &["fast", "slow"],
        );
        let passed = |account: &str| {
            (0..20)
                .filter(|_| limiter.check(REGISTER, account).is_ok())
                .count()
        };
        assert_eq!(passed("fast"), 10);
        assert_eq!(passed("slow"), 3);
    }

    #[test]
    fn pruning_forgets_refilled_accounts() {
        let ids: Vec<String> = (0..1000).map(|i| format!("acct-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (limiter, clock) = limiter("", &refs);
        for id in &ids {
            limiter.check(CREATE, id).unwrap();
        }
        assert_eq!(limiter.tracked(), 1000);
        clock.advance(Duration::from_secs(2));
        limiter.prune();
        assert_eq!(limiter.tracked(), 0);
    }
}
