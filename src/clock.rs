//! Where "now" comes from, so time rules and retention can be tested at
//! chosen instants.

use crate::manifest::Micros;

pub trait Clock: Send + Sync {
    fn now(&self) -> Micros;
}

/// The machine's UTC clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        chrono::Utc::now().timestamp_micros()
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
