//! Where "now" comes from, so time rules and retention can be tested at
//! chosen instants.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::manifest::Micros;

pub trait Clock: Send + Sync {
    fn now(&self) -> Micros;

    /// A reading for measuring intervals (rate limits): only differences
    /// between readings mean anything. It follows [`Clock::now`] unless a
    /// clock has a better source: a step of the wall clock must not
    /// lengthen or shorten an interval.
    fn elapsed(&self) -> Duration {
        Duration::from_micros(self.now().max(0) as u64)
    }
}

/// The machine's UTC clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        chrono::Utc::now().timestamp_micros()
    }

    fn elapsed(&self) -> Duration {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that stands still until moved; for tests.
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn new(now: Micros) -> Self {
        FixedClock(std::sync::atomic::AtomicI64::new(now))
    }

    pub fn set(&self, now: Micros) {
        self.0.store(now, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Micros {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
