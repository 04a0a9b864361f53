//! Per-account, per-operation GCRA rate limits held in this process,
//! shared by every connection.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};

use super::rates::Rates;
use super::{Admission, Throttle};
use crate::clock::Clock;
use crate::config::Config;
use crate::operations::Operation;

type KeyedGcra = Gcra<String, DashMapStateStore<String>, Ticks, NoOpMiddleware<Duration>>;

/// The injected clock as governor reads it. A reading never goes back:
/// a clock set back (a test's, or one without a monotonic reading) would
/// otherwise refuse every request until it caught up again.
#[derive(Clone)]
struct Ticks {
    clock: Arc<dyn Clock>,
    latest: Arc<AtomicU64>,
}

impl governor::clock::Clock for Ticks {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let reading = u64::try_from(self.clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let latest = self.latest.fetch_max(reading, Ordering::Relaxed);
        Duration::from_nanos(latest.max(reading))
    }
}

/// The shortest wait a refusal asks for.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(1);

/// One limiter and the rate it enforces.
struct Limit {
    rate: u32,
    gcra: Arc<KeyedGcra>,
}

/// The limiters of every (operation, rate) in use; each is keyed by
/// account, so accounts sharing a rate never share a budget.
pub struct InProcessLimiter {
    /// (operation, account) → the limiter of that account's rate.
    by_account: HashMap<(Operation, String), Limit>,
    /// Each operation's service-wide limiter, for accounts not listed.
    defaults: HashMap<Operation, Limit>,
    all: Vec<Arc<KeyedGcra>>,
    ticks: Ticks,
}

impl InProcessLimiter {
    pub fn new(config: &Config, account_ids: &[String], clock: Arc<dyn Clock>) -> Self {
        Self::shared_by(config, account_ids, clock, 1)
    }

    /// One of `replicas` processes' share of every limit: each admits the
    /// limit / `replicas`, rounded up and at least 1, so together they
    /// admit about the limit. The refusals still name the whole limit, the
    /// account's contract.
    pub fn shared_by(
        config: &Config,
        account_ids: &[String],
        clock: Arc<dyn Clock>,
        replicas: u32,
    ) -> Self {
        let replicas = replicas.max(1);
        let ticks = Ticks {
            clock,
            latest: Default::default(),
        };
        let mut by_rate: HashMap<(Operation, u32), Arc<KeyedGcra>> = HashMap::new();
        let mut limiter_for = |operation: Operation, rate: u32| {
            let gcra = by_rate
                .entry((operation, rate))
                .or_insert_with(|| {
                    let share = rate.div_ceil(replicas).max(1);
                    let per_second = NonZeroU32::new(share).expect("at least 1");
                    // The burst is one second's worth: `rate` requests pass
                    // at once, the next waits for the next cell.
                    Arc::new(Gcra::dashmap_with_clock(
                        Quota::per_second(per_second),
                        ticks.clone(),
                    ))
                })
                .clone();
            Limit { rate, gcra }
        };
        let mut by_account = HashMap::new();
        let mut defaults = HashMap::new();
        for (operation, account, rate) in Rates::new(config, account_ids).each() {
            let limit = limiter_for(operation, rate);
            match account {
                None => defaults.insert(operation, limit),
                Some(account) => by_account.insert((operation, account.to_string()), limit),
            };
        }
        let all = by_rate.into_values().collect();
        InProcessLimiter {
            by_account,
            defaults,
            all,
            ticks,
        }
    }

    /// Accounts with a partly used budget, summed over operations.
    pub fn tracked(&self) -> usize {
        self.all.iter().map(|limiter| limiter.len()).sum()
    }

    /// [`Admission::admit`] without waiting: nothing here ever waits.
    pub fn check(&self, account: &str, operation: Operation) -> Result<(), Throttle> {
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
                // Read after the refusal, the clock may already be past the
                // next cell (a busy machine); a client is still told to wait.
                retry_after: not_until
                    .wait_time_from(governor::clock::Clock::now(&self.ticks))
                    .max(MIN_RETRY_AFTER),
            })
    }
}

#[async_trait::async_trait]
impl Admission for InProcessLimiter {
    async fn admit(&self, account: &str, operation: Operation) -> Result<(), Throttle> {
        self.check(account, operation)
    }

    /// Forgets accounts whose budget is full again.
    fn prune(&self) {
        for limiter in &self.all {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    const NOW: crate::manifest::Micros = 1_800_000_000_000_000;

    /// Moves a fixed clock `by` later.
    fn advance(clock: &FixedClock, by: Duration) {
        clock.set(clock.now() + by.as_micros() as i64);
    }

    fn limiter(config: &str, accounts: &[&str]) -> (InProcessLimiter, Arc<FixedClock>) {
        let config = Config::from_toml(config).unwrap().finish().unwrap();
        let clock = Arc::new(FixedClock::new(NOW));
        let ids: Vec<String> = accounts.iter().map(|id| id.to_string()).collect();
        (InProcessLimiter::new(&config, &ids, clock.clone()), clock)
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
            assert!(limiter.check("a", CREATE).is_ok());
        }
        let throttle = limiter.check("a", CREATE).unwrap_err();
        assert_eq!(throttle.rate, 45);
        let wait = throttle.retry_after;
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(23),
            "{wait:?}"
        );
        // Another account, and another operation of the same account, are
        // untouched.
        for _ in 0..45 {
            assert!(limiter.check("b", CREATE).is_ok());
        }
        assert!(limiter.check("a", REGISTER).is_ok());
        // Within the same second no more pass; the next second, all again.
        advance(&clock, Duration::from_millis(20));
        assert!(limiter.check("a", CREATE).is_err());
        advance(&clock, Duration::from_millis(980));
        for _ in 0..45 {
            assert!(limiter.check("a", CREATE).is_ok());
        }
        assert!(limiter.check("a", CREATE).is_err());
    }

    #[test]
    fn a_clock_set_back_stands_still_for_the_limiter() {
        let (limiter, clock) = limiter("", &[]);
        let day = 86_400_000_000;
        clock.set(NOW + day);
        for _ in 0..10 {
            limiter.check("a", CREATE).unwrap();
        }
        // What is left of the budget passes; it refills only once the clock
        // is past where it stood.
        clock.set(NOW);
        for _ in 0..35 {
            limiter.check("a", CREATE).unwrap();
        }
        assert!(limiter.check("a", CREATE).is_err());
        clock.set(NOW + day + 1_000_000);
        for _ in 0..45 {
            limiter.check("a", CREATE).unwrap();
        }
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
                .filter(|_| limiter.check(account, REGISTER).is_ok())
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
            limiter.check(id, CREATE).unwrap();
        }
        assert_eq!(limiter.tracked(), 1000);
        advance(&clock, Duration::from_secs(2));
        limiter.prune();
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn a_share_of_the_limit_rounds_up_and_keeps_the_limit_in_refusals() {
        let config = Config::from_toml("").unwrap().finish().unwrap();
        let clock = Arc::new(FixedClock::new(NOW));
        let ids = vec!["a".to_string()];
        let limiter = InProcessLimiter::shared_by(&config, &ids, clock, 4);
        // 45 / 4 = 11.25: 12 pass.
        let passed = (0..45)
            .filter(|_| limiter.check("a", CREATE).is_ok())
            .count();
        assert_eq!(passed, 12);
        assert_eq!(limiter.check("a", CREATE).unwrap_err().rate, 45);
        let many = InProcessLimiter::shared_by(&config, &ids, Arc::new(FixedClock::new(NOW)), 1000);
        assert!(many.check("a", CREATE).is_ok());
        assert!(many.check("a", CREATE).is_err());
    }
}
