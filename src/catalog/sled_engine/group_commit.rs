//! Durability for many writers with one flush at a time: a writer waits for
//! a flush that began after its write, and one flush covers every writer
//! that arrived while the previous one ran. sled 0.34 can deadlock when
//! flushes run concurrently, and a flush per writer would also waste fsyncs.

use std::sync::{Condvar, Mutex};

#[derive(Default)]
struct Rounds {
    /// Number of the latest flush begun, and of the latest finished.
    started: u64,
    finished: u64,
    /// Number of the latest flush that succeeded: a writer is durable once
    /// this reaches the round it needs.
    succeeded: u64,
    running: bool,
    /// Why the latest flush failed, for the writers it left waiting.
    last_error: Option<String>,
}

#[derive(Default)]
pub struct GroupCommit {
    rounds: Mutex<Rounds>,
    done: Condvar,
}

impl GroupCommit {
    /// Returns once a flush that began after this call has finished;
    /// `flush` does the work, on whichever waiting thread leads the round.
    pub fn wait_durable(&self, flush: impl Fn() -> Result<(), String>) -> Result<(), String> {
        let mut rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        // A flush running now may have begun before our write: only the
        // next one counts.
        let needed = rounds.started + 1;
        loop {
            if rounds.succeeded >= needed {
                return Ok(());
            }
            if rounds.finished >= needed {
                // Every flush since our write failed: not durable.
                return Err(rounds
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "flush failed".into()));
            }
            if !rounds.running {
                rounds.started += 1;
                rounds.running = true;
                let round = rounds.started;
                drop(rounds);
                // A panicking flush must not leave `running` set for good.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&flush))
                    .unwrap_or_else(|_| Err("flush panicked".into()));
                rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
                rounds.running = false;
                rounds.finished = round;
                match outcome {
                    Ok(()) => rounds.succeeded = round,
                    Err(err) => rounds.last_error = Some(err),
                }
                self.done.notify_all();
                continue;
            }
            rounds = self.done.wait(rounds).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn concurrent_writers_share_flushes_and_each_is_covered() {
        let commit = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let concurrent = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commit, flushes, concurrent) =
                    (commit.clone(), flushes.clone(), concurrent.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        commit
                            .wait_durable(|| {
                                assert_eq!(
                                    concurrent.fetch_add(1, Ordering::SeqCst),
                                    0,
                                    "two flushes at once"
                                );
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                flushes.fetch_add(1, Ordering::SeqCst);
                                concurrent.fetch_sub(1, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let flushes = flushes.load(Ordering::SeqCst);
        assert!(
            (20..16 * 20).contains(&flushes),
            "{flushes} flushes for 320 writes"
        );
    }

    #[test]
    fn a_failed_flush_fails_the_writers_it_covered() {
        let commit = GroupCommit::default();
        assert_eq!(
            commit.wait_durable(|| Err("disk full".into())),
            Err("disk full".into())
        );
        assert_eq!(commit.wait_durable(|| Ok(())), Ok(()));
    }

    #[test]
    fn a_panicking_flush_fails_its_writers_and_frees_the_next_round() {
        let commit = GroupCommit::default();
        assert_eq!(
            commit.wait_durable(|| panic!("bug")),
            Err("flush panicked".into())
        );
        assert_eq!(commit.wait_durable(|| Ok(())), Ok(()));
    }

    #[test]
    fn a_later_failed_flush_does_not_acknowledge_an_earlier_writer() {
        // Round 1 fails while round 2, begun by another writer, fails too:
        // the first writer must see an error, not Ok.
        let commit = Arc::new(GroupCommit::default());
        let gate = Arc::new(std::sync::Barrier::new(2));
        let first = {
            let (commit, gate) = (commit.clone(), gate.clone());
            std::thread::spawn(move || {
                commit.wait_durable(|| {
                    gate.wait();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    Err("round 1".into())
                })
            })
        };
        gate.wait();
        let second = commit.wait_durable(|| Err("round 2".into()));
        assert!(first.join().unwrap().is_err());
        assert!(second.is_err());
    }
}
