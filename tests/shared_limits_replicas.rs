//! Two `record-index serve` processes, each with its own sled catalog, on
//! one real `redis-server`: an account's limit holds for the two together;
//! with Redis killed mid-flood both keep answering at their share of the
//! limit, say so once in the log and in `record_index_limits_shared`, and
//! share again once Redis is back on its port.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Redis, Server, ServerLog, assert_error, free_ports, recording_start, utc_millis};
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{RegisterLiveStreamRecordSegmentsRequest, Segment};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::transport::Channel;

const URL_ENV: &str = "RECORD_INDEX_REDIS_URL";
/// The flooded account's Register limit, for the fleet.
const RATE: u32 = 20;
const REPLICAS: u32 = 2;
/// Calls that may pass beyond a GCRA's allowance: a cell refilled while
/// the flood's last answer travelled back.
const SLACK: usize = 2;

/// An account of the test config: id, domain, bucket, API key.
struct Account(&'static str, &'static str, &'static str, &'static str);
const FLOODED: Account = Account(
    "acct-flood",
    "f.example.com",
    "f-bucket",
    "rik_shared-f-1a2b3c",
);
const QUIET: Account = Account(
    "acct-quiet",
    "q.example.com",
    "q-bucket",
    "rik_shared-q-4d5e6f",
);

fn config(metrics_port: u16) -> String {
    let account = |Account(id, domain, bucket, key): &Account| {
        format!(
            "[[accounts]]\nid = \"{id}\"\ndomains = [\"{domain}\"]\nbuckets = [\"{bucket}\"]\n\
             rate_limits = {{ RegisterLiveStreamRecordSegments = {RATE} }}\n\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{id}:domain/*\"] }}]\n\n",
            hex::encode(Sha256::digest(key.as_bytes())),
        )
    };
    format!(
        "[limits]\nbackend = \"redis\"\nurl_env = \"{URL_ENV}\"\nexpected_replicas = {REPLICAS}\n\n\
         [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n{}{}",
        account(&FLOODED),
        account(&QUIET)
    )
}

/// A replica: the server, its log, its metrics port and a channel to it.
struct Replica {
    _server: Server,
    log: ServerLog,
    metrics_port: u16,
    channel: Channel,
}

async fn replica(redis: &Redis) -> Replica {
    let [metrics_port] = free_ports::<1>();
    let url = redis.url();
    let (server, log) = Server::start_with_env(&config(metrics_port), &[(URL_ENV, &url)]).await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    Replica {
        _server: server,
        log,
        metrics_port,
        channel,
    }
}

impl Replica {
    async fn limits_shared(&self) -> String {
        common::metric_line(self.metrics_port, "record_index_limits_shared").await
    }
}

fn register(
    account: &Account,
    t0: DateTime<Utc>,
    n: usize,
) -> tonic::Request<RegisterLiveStreamRecordSegmentsRequest> {
    let segment = Segment {
        oss_endpoint: "localhost".into(),
        oss_bucket: account.2.into(),
        oss_object: format!("s/{n:06}.ts"),
        // Objects are unique by number; times may repeat, well in the past.
        start_time: utc_millis(t0 + chrono::Duration::milliseconds((n % 600_000) as i64)),
        duration: 0.1,
        sequence: n as i64,
        width: 0,
        height: 0,
        format: "ts".into(),
        size: 0,
    };
    let mut request = tonic::Request::new(RegisterLiveStreamRecordSegmentsRequest {
        client_token: String::new(),
        domain_name: account.1.into(),
        app_name: "live".into(),
        stream_name: "s".into(),
        segments: vec![segment],
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", account.3).parse().unwrap(),
    );
    request
}

/// What a flood got: calls passed, calls refused, and how long it took.
struct Flood {
    passed: usize,
    refused: usize,
    elapsed: Duration,
}

/// Calls Register for `FLOODED` from 8 tasks at once, spread over every
/// replica, for `length`; `first` numbers the segments. Every answer must
/// be a pass or Throttling.User, within a second.
async fn flood(replicas: &[&Replica], t0: DateTime<Utc>, first: usize, length: Duration) -> Flood {
    const TASKS: usize = 8;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let channels: Vec<Channel> = replicas.iter().map(|r| r.channel.clone()).collect();
        tasks.push(tokio::spawn(async move {
            let (mut passed, mut refused, mut n) = (0, 0, 0);
            while start.elapsed() < length {
                let number = first + (n * TASKS + task);
                let mut client = RecordIndexClient::new(channels[n % channels.len()].clone());
                let call =
                    client.register_live_stream_record_segments(register(&FLOODED, t0, number));
                match tokio::time::timeout(Duration::from_secs(1), call).await {
                    Ok(Ok(_)) => passed += 1,
                    Ok(Err(status)) => {
                        assert_error(&status, Code::ResourceExhausted, "Throttling.User");
                        refused += 1;
                    }
                    Err(_) => panic!("a call was not answered within 1 s"),
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (passed, refused)
        }));
    }
    let (mut passed, mut refused) = (0, 0);
    for task in tasks {
        let (p, r) = task.await.unwrap();
        passed += p;
        refused += r;
    }
    Flood {
        passed,
        refused,
        elapsed: start.elapsed(),
    }
}

/// The most a limit of `rate` a second with one second of burst admits in
/// `elapsed`, plus the slack.
fn allowance(rate: u32, elapsed: Duration) -> usize {
    (f64::from(rate) * (elapsed.as_secs_f64() + 1.0)).ceil() as usize + SLACK
}

#[tokio::test]
async fn two_replicas_hold_an_account_to_one_limit() {
    let redis = Redis::start();
    let (first, second) = (replica(&redis).await, replica(&redis).await);
    let t0 = recording_start(Duration::from_secs(20 * 60));

    let quiet = {
        let channels = [first.channel.clone(), second.channel.clone()];
        tokio::spawn(async move {
            for n in 0..10 {
                let mut client = RecordIndexClient::new(channels[n % 2].clone());
                if let Err(status) = client
                    .register_live_stream_record_segments(register(&QUIET, t0, n))
                    .await
                {
                    panic!("the quiet account's call {n} failed during the flood: {status:?}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let flood = flood(&[&first, &second], t0, 0, Duration::from_secs(2)).await;
    quiet.await.unwrap();

    let most = allowance(RATE, flood.elapsed);
    assert!(
        flood.passed <= most && flood.passed >= RATE as usize,
        "{} of {} calls passed over two replicas in {:?}; the fleet's limit allows {RATE}..={most}",
        flood.passed,
        flood.passed + flood.refused,
        flood.elapsed
    );
    assert!(flood.refused > 0);
    for replica in [&first, &second] {
        assert_eq!(
            replica.limits_shared().await,
            "record_index_limits_shared 1"
        );
    }
}

#[tokio::test]
async fn with_redis_killed_replicas_answer_at_their_share_then_share_again() {
    let mut redis = Redis::start();
    let (first, second) = (replica(&redis).await, replica(&redis).await);
    let both = [&first, &second];
    let t0 = recording_start(Duration::from_secs(20 * 60));

    let shared = flood(&both, t0, 0, Duration::from_millis(500)).await;
    assert!(shared.passed <= allowance(RATE, shared.elapsed));
    redis.kill();
    // Each replica on its own admits RATE / REPLICAS a second: together
    // the fleet stays at its limit.
    let alone = flood(&both, t0, 100_000, Duration::from_secs(2)).await;
    let most = REPLICAS as usize * allowance(RATE.div_ceil(REPLICAS), alone.elapsed);
    assert!(
        alone.passed >= RATE.div_ceil(REPLICAS) as usize && alone.passed <= most,
        "{} calls passed in {:?} without Redis; at most {most} expected",
        alone.passed,
        alone.elapsed
    );
    for replica in both {
        let said = replica.log.matching("Redis unreachable");
        assert_eq!(said.len(), 1, "said once: {said:#?}");
        assert!(said[0].contains("WARN"), "{}", said[0]);
        assert!(
            !said[0].contains(&redis.url()),
            "the log holds the URL: {}",
            said[0]
        );
        assert_eq!(
            replica.limits_shared().await,
            "record_index_limits_shared 0"
        );
    }

    redis.start_again();
    for replica in both {
        // A replica probes Redis when a request comes, at most once a second.
        let deadline = Instant::now() + Duration::from_secs(10);
        while replica.log.matching("Redis is back").is_empty() {
            assert!(Instant::now() < deadline, "no replica went back to Redis");
            let _ = flood(&[replica], t0, 200_000, Duration::from_millis(200)).await;
        }
        let said = replica.log.matching("Redis is back");
        assert_eq!(said.len(), 1, "{said:#?}");
        assert!(said[0].contains("INFO"), "{}", said[0]);
        assert_eq!(
            replica.limits_shared().await,
            "record_index_limits_shared 1"
        );
    }
    // Wait out whatever budget the probes took, then the fleet is one again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = flood(&both, t0, 300_000, Duration::from_secs(1)).await;
    let most = allowance(RATE, again.elapsed);
    assert!(
        again.passed >= RATE as usize && again.passed <= most,
        "{} calls passed in {:?} with Redis back; the fleet's limit allows {RATE}..={most}",
        again.passed,
        again.elapsed
    );
}

#[tokio::test]
async fn serve_refuses_redis_limits_it_cannot_use() {
    let [metrics_port] = free_ports::<1>();
    for (env, said) in [
        (vec![], format!("${URL_ENV} is not set")),
        (
            vec![(URL_ENV, "http://cache:6379")],
            format!("${URL_ENV} is not a Redis URL"),
        ),
    ] {
        let out = serve_once(&config(metrics_port), &env).await;
        assert!(!out.status.success(), "serve started with {env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&said), "{stderr}");
        assert!(
            !stderr.contains("cache:6379"),
            "the URL is in the error: {stderr}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "it listened"
        );
    }
}

/// Runs `record-index serve` once on `toml` with `env` set; it should stop
/// by itself before listening.
async fn serve_once(toml: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record-index.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n{toml}",
        dir.path().join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_record-index"));
    command
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env_remove(URL_ENV)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("serve stopped within 30 s")
        .unwrap()
}
