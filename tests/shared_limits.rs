//! The Redis GCRA script and the limiter around it, against a real
//! `redis-server`: one instance admits exactly what the in-process limiter
//! does, two instances (two replicas) take from one budget, and a dead
//! Redis is answered locally at the replica's share, then shared again.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Redis;
use record_index::admission::{
    Admission, InProcessLimiter, PROBE_INTERVAL, RedisLimiter, SharedLimits,
};
use record_index::clock::{FixedClock, SystemClock};
use record_index::config::Config;
use record_index::operations::Operation;

const CREATE: Operation = Operation::CreateLiveStreamRecordIndexFiles;
const REGISTER: Operation = Operation::RegisterLiveStreamRecordSegments;

fn config(text: &str) -> Config {
    Config::from_toml(text).unwrap().finish().unwrap()
}

fn ids(accounts: &[&str]) -> Vec<String> {
    accounts.iter().map(|id| id.to_string()).collect()
}

/// Asks `limiter` `count` times at once (the calls share one connection,
/// so they reach Redis back to back); how many passed, and how long the
/// burst took.
async fn burst(
    limiter: &RedisLimiter,
    account: &str,
    operation: Operation,
    count: usize,
) -> (usize, Duration) {
    let start = std::time::Instant::now();
    let calls = (0..count).map(|_| limiter.admit(account, operation));
    let decisions = futures::future::join_all(calls).await;
    let elapsed = start.elapsed();
    let passed = decisions
        .into_iter()
        .map(|decision| decision.expect("Redis answers"))
        .filter(Result::is_ok)
        .count();
    (passed, elapsed)
}

#[tokio::test]
async fn one_burst_passes_then_one_interval_is_asked_for() {
    let redis = Redis::start();
    let text = "[[accounts]]\nid = \"a\"\nrate_limits = { RegisterLiveStreamRecordSegments = 7 }\n\
                [[accounts]]\nid = \"b\"\n";
    let config = config(text);
    let accounts = ids(&["a", "b"]);
    let limiter = RedisLimiter::new(&config, &accounts, &redis.url()).unwrap();
    // On a clock that stands still, so its count is the burst alone.
    let local = InProcessLimiter::new(&config, &accounts, Arc::new(FixedClock::new(0)));

    for (account, operation, rate) in [
        ("a", CREATE, 45u32),
        ("a", REGISTER, 7),
        ("b", REGISTER, 500),
    ] {
        let asked = rate as usize + 5;
        let (in_redis, took) = burst(&limiter, account, operation, asked).await;
        let in_process = (0..asked)
            .filter(|_| local.check(account, operation).is_ok())
            .count();
        assert_eq!(
            in_process, rate as usize,
            "{account} {operation:?} in process"
        );
        // Exactly the burst, unless the burst itself lasted long enough for
        // cells to refill (500/s refills one every 2 ms).
        let interval = Duration::from_secs(1) / rate;
        let refilled = (took.as_micros() / interval.as_micros()) as usize;
        assert!(
            in_redis >= in_process && in_redis <= in_process + refilled,
            "{account} {operation:?}: {in_redis} passed through Redis in {took:?}, \
             {in_process} in process"
        );
        if took < interval {
            assert_eq!(in_redis, in_process, "{account} {operation:?} in {took:?}");
        }
        // The budget is spent: the next refusal (at once, or after a cell or
        // two refilled meanwhile) asks for at most one interval.
        let mut refusal = None;
        for _ in 0..asked {
            if let Err(throttle) = limiter.admit(account, operation).await.unwrap() {
                refusal = Some(throttle);
                break;
            }
        }
        let throttle = refusal.expect("refused once the budget is spent");
        assert_eq!(throttle.rate, rate);
        assert!(
            throttle.retry_after > Duration::ZERO && throttle.retry_after <= interval,
            "{account} {operation:?}: retry after {:?}, one interval is {interval:?}",
            throttle.retry_after
        );
    }

    // After the wait named, one more passes, and only one.
    let throttle = limiter.admit("a", REGISTER).await.unwrap().unwrap_err();
    tokio::time::sleep(throttle.retry_after).await;
    assert!(limiter.admit("a", REGISTER).await.unwrap().is_ok());
    assert!(limiter.admit("a", REGISTER).await.unwrap().is_err());

    // A budget's key lives only until the budget is full again: one second
    // at most here.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 1000, "{key}: PTTL {ttl}");
    }
}

#[tokio::test]
async fn two_replicas_take_from_one_budget() {
    let redis = Redis::start();
    // 10 a second: a cell refills every 100 ms, far longer than the calls
    // below take, so the budget they share is exactly one burst.
    let config = config(
        "[[accounts]]\nid = \"a\"\nrate_limits = { CreateLiveStreamRecordIndexFiles = 10 }\n\
         [[accounts]]\nid = \"b\"\n",
    );
    let accounts = ids(&["a", "b"]);
    let first = RedisLimiter::new(&config, &accounts, &redis.url()).unwrap();
    let second = RedisLimiter::new(&config, &accounts, &redis.url()).unwrap();
    let mut passed = [0usize; 2];
    for _ in 0..15 {
        let (one, two) = tokio::join!(first.admit("a", CREATE), second.admit("a", CREATE));
        passed[0] += usize::from(one.unwrap().is_ok());
        passed[1] += usize::from(two.unwrap().is_ok());
    }
    assert_eq!(passed.iter().sum::<usize>(), 10, "{passed:?}");
    assert!(passed[0] >= 3 && passed[1] >= 3, "{passed:?}");
    assert!(first.admit("a", CREATE).await.unwrap().is_err());
    assert!(second.admit("a", CREATE).await.unwrap().is_err());
    // Another account's budget is its own.
    assert!(second.admit("b", CREATE).await.unwrap().is_ok());
}

#[tokio::test]
async fn without_redis_a_replica_admits_its_share_then_shares_again() {
    let mut redis = Redis::start();
    let config = config(
        "[limits]\nbackend = \"redis\"\nurl_env = \"UNUSED\"\nexpected_replicas = 4\n\
                         [[accounts]]\nid = \"a\"\n",
    );
    let accounts = ids(&["a"]);
    let limits = SharedLimits::start(
        RedisLimiter::new(&config, &accounts, &redis.url()).unwrap(),
        InProcessLimiter::shared_by(&config, &accounts, Arc::new(SystemClock), 4),
    )
    .await;
    let admission: Arc<dyn Admission> = limits.clone();
    assert!(limits.is_shared());

    redis.kill();
    // 45 / 4 replicas = 11.25: each replica admits 12 on its own.
    let passed = count(&admission, 45).await;
    assert!(!limits.is_shared());
    assert_eq!(passed, 12, "admitted while Redis is down");

    redis.start_again();
    // The next probe (one a second at most) finds Redis: a fresh budget of
    // 45 in Redis, taken whole.
    let deadline = tokio::time::Instant::now() + 4 * PROBE_INTERVAL;
    while !limits.is_shared() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still local after Redis came back"
        );
        let _ = admission.admit("a", REGISTER).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&admission, 50).await,
        45,
        "admitted once shared again"
    );
}

async fn count(admission: &Arc<dyn Admission>, asked: usize) -> usize {
    let mut passed = 0;
    for _ in 0..asked {
        passed += usize::from(admission.admit("a", CREATE).await.is_ok());
    }
    passed
}
