//! The Redis GCRA script and the limiter around it, against a real
//! `redis-server`: one instance admits exactly what the in-process limiter
//! does, two instances (two replicas) take from one budget, and a dead
//! Redis is answered locally at the replica's share, then shared again.
//! At start, `record-index serve` connects to Redis before it serves: with
//! Redis there (near or a slow network away) its first requests are
//! decided in Redis and nothing is said of a fallback; with Redis absent,
//! or too slow to decide within a call's timeout, it still starts within
//! a few seconds, on its own at its share, and says so once.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Redis, Server, ServerLog, SlowLink, assert_error, create_request, free_ports, with_key,
};
use record_index::admission::{
    Admission, CALL_TIMEOUT, InProcessLimiter, PROBE_INTERVAL, RedisLimiter, START_TIMEOUT,
    SharedLimits,
};
use record_index::clock::{FixedClock, SystemClock};
use record_index::config::Config;
use record_index::operations::Operation;
use record_index::proto::record_index_client::RecordIndexClient;
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::transport::Channel;

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

#[tokio::test]
async fn a_redis_too_slow_to_decide_is_waited_for_at_start_only_so_long() {
    let redis = Redis::start();
    // 300 ms a round trip: no decision could be had within CALL_TIMEOUT.
    let link = SlowLink::start(redis.port, Duration::from_millis(150)).await;
    let config = config(
        "[limits]\nbackend = \"redis\"\nurl_env = \"UNUSED\"\nexpected_replicas = 4\n\
         [[accounts]]\nid = \"a\"\n",
    );
    let accounts = ids(&["a"]);
    let began = Instant::now();
    let limits = SharedLimits::start(
        RedisLimiter::new(&config, &accounts, &link.redis_url()).unwrap(),
        InProcessLimiter::shared_by(&config, &accounts, Arc::new(SystemClock), 4),
    )
    .await;
    let waited = began.elapsed();
    assert!(
        waited <= START_TIMEOUT + Duration::from_millis(500),
        "waited {waited:?} for a Redis too slow to use"
    );
    assert!(!limits.is_shared());

    // Answered at once, at the replica's share: 45 / 4 replicas = 11.25.
    let admission: Arc<dyn Admission> = limits.clone();
    let began = Instant::now();
    assert_eq!(count(&admission, 45).await, 12);
    assert!(
        began.elapsed() < CALL_TIMEOUT,
        "45 decisions took {:?}",
        began.elapsed()
    );
}

/// The variable the served tests' config names for the Redis URL.
const URL_ENV: &str = "RECORD_INDEX_REDIS_URL";
/// The served account's Create limit: a cell every 250 ms, so Creates sent
/// one after the other take from one burst, not from its refill.
const CREATES: u32 = 4;
/// Replicas the served config expects: on its own, a replica admits
/// CREATES / REPLICAS, one Create a second.
const REPLICAS: u32 = 4;
const ACCOUNT: &str = "acct-start";
const KEY: &str = "rik_start-5c7e2a9d1b";

fn served_config(metrics_port: u16) -> String {
    format!(
        "[limits]\nbackend = \"redis\"\nurl_env = \"{URL_ENV}\"\nexpected_replicas = {REPLICAS}\n\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
         [[accounts]]\nid = \"{ACCOUNT}\"\ndomains = [\"example.com\"]\nbuckets = [\"rec-bucket\"]\n\
         rate_limits = {{ CreateLiveStreamRecordIndexFiles = {CREATES} }}\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{ACCOUNT}:domain/*\"] }}]\n",
        hex::encode(Sha256::digest(KEY.as_bytes())),
    )
}

/// `record-index serve` on the Redis at `url`: the process, its log, its
/// metrics port, a client, and how long it took to listen.
struct Served {
    _server: Server,
    log: ServerLog,
    metrics_port: u16,
    client: RecordIndexClient<Channel>,
    started_in: Duration,
}

async fn serve(url: &str) -> Served {
    let [metrics_port] = free_ports::<1>();
    let began = Instant::now();
    let (server, log) =
        Server::start_with_env(&served_config(metrics_port), &[(URL_ENV, url)]).await;
    let started_in = began.elapsed();
    let client = server.client().await;
    Served {
        _server: server,
        log,
        metrics_port,
        client,
        started_in,
    }
}

impl Served {
    async fn limits_shared(&self) -> String {
        common::metric_line(self.metrics_port, "record_index_limits_shared").await
    }

    /// Sends `count` Creates one after the other: how many were admitted
    /// (answered anything but Throttling.User), and how long they took.
    async fn creates(&mut self, count: usize) -> (usize, Duration) {
        let began = Instant::now();
        let mut admitted = 0;
        for _ in 0..count {
            let request = with_key(KEY, create_request("s", 0, 60));
            match self
                .client
                .create_live_stream_record_index_files(request)
                .await
            {
                Err(status) if status.code() == Code::ResourceExhausted => {
                    assert_error(&status, Code::ResourceExhausted, "Throttling.User");
                }
                _ => admitted += 1,
            }
        }
        (admitted, began.elapsed())
    }
}

#[tokio::test]
async fn serve_with_redis_there_decides_in_redis_from_its_first_request() {
    // Redis near, and a slow network away: 40 ms a round trip is well
    // within the 100 ms a decision may take, but connecting and loading
    // the script on a first decision would take three.
    for delay in [None, Some(Duration::from_millis(20))] {
        // A Redis of its own each time, holding no script yet.
        let redis = Redis::start();
        let link = match delay {
            Some(delay) => Some(SlowLink::start(redis.port, delay).await),
            None => None,
        };
        let url = link
            .as_ref()
            .map_or_else(|| redis.url(), SlowLink::redis_url);
        let mut served = serve(&url).await;
        assert_eq!(
            served.limits_shared().await,
            "record_index_limits_shared 1",
            "{delay:?}: before the first request"
        );

        // On its own the replica would admit one; the fleet's budget is
        // the whole burst.
        let (admitted, took) = served.creates(CREATES as usize + 3).await;
        let interval = Duration::from_secs(1) / CREATES;
        let refilled = (took.as_micros() / interval.as_micros()) as usize;
        assert!(
            admitted >= CREATES as usize && admitted <= CREATES as usize + refilled,
            "{delay:?}: {admitted} of the first Creates admitted in {took:?}; the shared \
             limit admits {CREATES} at once"
        );
        // Taken from the budget in Redis.
        let client = redis::Client::open(redis.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("record-index:limit:CreateLiveStreamRecordIndexFiles:{ACCOUNT}");
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(exists, "{delay:?}: no {key} in Redis");

        // Nothing said of a fallback, then or once a probe would have run.
        tokio::time::sleep(PROBE_INTERVAL + Duration::from_millis(200)).await;
        let _ = served.creates(1).await;
        for said in ["Redis unreachable", "Redis is back"] {
            let lines = served.log.matching(said);
            assert!(lines.is_empty(), "{delay:?}: {lines:#?}");
        }
        assert_eq!(
            served
                .log
                .matching("rate limits shared through Redis")
                .len(),
            1,
            "{delay:?}"
        );
        assert_eq!(
            served.limits_shared().await,
            "record_index_limits_shared 1",
            "{delay:?}"
        );
    }
}

#[tokio::test]
async fn serve_without_redis_starts_on_its_own_then_shares_once_redis_answers() {
    let mut redis = Redis::start();
    // Its port refuses connections until it starts again.
    redis.kill();
    let mut served = serve(&redis.url()).await;
    assert!(
        served.started_in <= START_TIMEOUT + Duration::from_secs(5),
        "listening after {:?} without Redis",
        served.started_in
    );
    // Said before it listened; the log may reach us a moment later.
    served
        .log
        .await_line("Redis unreachable", Duration::from_secs(2))
        .await;
    let said = served.log.matching("Redis unreachable");
    assert_eq!(said.len(), 1, "said once: {said:#?}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    assert!(
        !said[0].contains(&redis.url()),
        "the log holds the URL: {}",
        said[0]
    );
    assert!(
        served
            .log
            .matching("rate limits shared through Redis")
            .is_empty()
    );
    assert_eq!(served.limits_shared().await, "record_index_limits_shared 0");

    // Served, at the replica's share: one Create a second.
    let (admitted, took) = served.creates(3).await;
    assert!(
        admitted >= 1 && admitted <= 1 + took.as_secs() as usize,
        "{admitted} Creates admitted in {took:?} without Redis"
    );

    redis.start_again();
    // A request probes Redis at most once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.log.matching("Redis is back").is_empty() {
        assert!(
            Instant::now() < deadline,
            "not shared again with Redis back"
        );
        let _ = served.creates(1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let said = served.log.matching("Redis is back");
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("INFO"), "{}", said[0]);
    assert_eq!(served.log.matching("Redis unreachable").len(), 1);
    assert_eq!(served.limits_shared().await, "record_index_limits_shared 1");
}
