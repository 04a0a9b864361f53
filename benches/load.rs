//! Per-account rate limits under sustained load, through the real
//! `record-index` binary: does one account far over its limit leave the
//! others untouched?
//!
//! 51 accounts, each with its own API key, domain and bucket (local-directory
//! store), send CreateLiveStreamRecordIndexFiles for `LOAD_SECONDS` (default
//! 60): one hot account at 10x Create's limit (450/s against 45/s) and 50
//! normal accounts at 5/s each. The load is open loop: every account sends on
//! a fixed schedule whatever the answers, with a bounded number of calls in
//! flight (a call due while the bound is reached is counted as not sent), so
//! a slow server shows as latency, not as a lower offered rate. Latency runs
//! from a call's scheduled time to its answer, so the client's own lag
//! counts against the server, never in its favour.
//!
//! The table gives, per group, the offered and accepted rates, throttled
//! (RESOURCE_EXHAUSTED Throttling.User) and other answers, and latency
//! percentiles of accepted and of throttled calls. The final line says
//! whether the hot account's steady accepted rate (after the first second,
//! where GCRA's one-second burst passes) is within ±10% of 45/s, every
//! normal call was accepted, and no answer was other than OK or
//! Throttling.User; the bench exits 1 when any other answer came.
//!
//! Run with `cargo bench --bench load` (`LOAD_SECONDS=10` for a quick run).
//! The server logs at `warn` unless `RUST_LOG` says otherwise, so its
//! per-request lines neither flood the output nor slow the harness that
//! forwards them.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use record_index::auth::keys;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use tokio::sync::{Semaphore, mpsc};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Create's limit per account, the design's default (not overridden here).
const CREATE_LIMIT: f64 = 45.0;
const HOT_RATE: f64 = 10.0 * CREATE_LIMIT;
const NORMAL_ACCOUNTS: usize = 50;
const NORMAL_RATE: f64 = 5.0;
/// Calls one account may have unanswered: a backlog of about a second for
/// the hot account, six seconds for a normal one.
const HOT_MAX_IN_FLIGHT: usize = 512;
const NORMAL_MAX_IN_FLIGHT: usize = 32;
/// A call unanswered this long counts as an other error.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The hot account's accepted rate after its burst may differ this much
/// from the limit.
const TOLERANCE: f64 = 0.10;
const DEFAULT_SECONDS: f64 = 60.0;
/// The local-directory store's endpoint, present when none is configured.
const ENDPOINT: &str = "localhost";
const APP: &str = "live";
const STREAM: &str = "load";

/// One tenant of the load.
struct Account {
    id: String,
    domain: String,
    bucket: String,
    key: String,
    /// Calls per second it offers.
    rate: f64,
    max_in_flight: usize,
}

impl Account {
    fn new(id: String, rate: f64, max_in_flight: usize) -> Account {
        Account {
            domain: format!("{id}.load.example.com"),
            bucket: format!("{id}-bucket"),
            key: keys::generate().expect("random API key"),
            id,
            rate,
            max_in_flight,
        }
    }

    fn config(&self) -> String {
        format!(
            "[[accounts]]\nid = \"{}\"\ndomains = [\"{}\"]\nbuckets = [\"{}\"]\n{}\n",
            self.id,
            self.domain,
            self.bucket,
            keys::config_block(&self.id, &self.key)
        )
    }

    fn authorize<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let bearer: MetadataValue<_> = format!("Bearer {}", self.key).parse().unwrap();
        request.metadata_mut().insert("authorization", bearer);
        request
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Accepted,
    Throttled,
    /// gRPC code and the error code the message starts with.
    Other(String),
    /// Due while the account's in-flight bound was reached.
    NotSent,
}

/// What became of one scheduled call.
struct Record {
    account: usize,
    /// Scheduled send time, from the start of the load.
    due: Duration,
    /// From the scheduled time to the answer.
    latency: Duration,
    /// How late the client sent it.
    lag: Duration,
    answer: Answer,
}

fn classify(result: Result<Result<(), tonic::Status>, tokio::time::error::Elapsed>) -> Answer {
    match result {
        Ok(Ok(())) => Answer::Accepted,
        Ok(Err(status))
            if status.code() == Code::ResourceExhausted
                && status.message().starts_with("Throttling.User") =>
        {
            Answer::Throttled
        }
        Ok(Err(status)) => {
            let error_code = status.message().split(':').next().unwrap_or_default();
            Answer::Other(format!("{:?} {error_code}", status.code()))
        }
        Err(_) => Answer::Other(format!("no answer within {ANSWER_TIMEOUT:?}")),
    }
}

/// Registers ten 6-second segments recorded half an hour ago in the
/// account's bucket, and returns the Create request covering them.
async fn prepare(
    client: &mut RecordIndexClient<Channel>,
    account: &Account,
) -> CreateLiveStreamRecordIndexFilesRequest {
    let start = common::recording_start(Duration::from_secs(1800));
    let segments = (0..10)
        .map(|i| Segment {
            oss_endpoint: ENDPOINT.into(),
            oss_bucket: account.bucket.clone(),
            oss_object: format!("{APP}/{STREAM}/{i:03}.ts"),
            start_time: common::utc_millis(start + chrono::Duration::seconds(6 * i)),
            duration: 6.0,
            sequence: i,
            width: 640,
            height: 360,
            format: "ts".into(),
            ..Default::default()
        })
        .collect();
    client
        .register_live_stream_record_segments(account.authorize(
            RegisterLiveStreamRecordSegmentsRequest {
                domain_name: account.domain.clone(),
                app_name: APP.into(),
                stream_name: STREAM.into(),
                segments,
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|status| panic!("register for {}: {status:?}", account.id));
    CreateLiveStreamRecordIndexFilesRequest {
        domain_name: account.domain.clone(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        oss_endpoint: ENDPOINT.into(),
        oss_bucket: account.bucket.clone(),
        oss_object: format!("{APP}/{STREAM}/{{RecordId}}.m3u8"),
        start_time: common::utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: common::utc_seconds(start + chrono::Duration::seconds(60)),
        ..Default::default()
    }
}

/// Sends `account`'s calls on schedule from `start` for `length`, the
/// schedule shifted by `phase` (a fraction of one period) so accounts do not
/// all send at the same instant; returns once every call is answered.
#[allow(clippy::too_many_arguments)]
async fn drive(
    index: usize,
    account: Arc<Account>,
    client: RecordIndexClient<Channel>,
    create: CreateLiveStreamRecordIndexFilesRequest,
    start: Instant,
    length: Duration,
    phase: f64,
    records: mpsc::UnboundedSender<Record>,
) {
    let slots = Arc::new(Semaphore::new(account.max_in_flight));
    let calls = (length.as_secs_f64() * account.rate).round() as u64;
    for call in 0..calls {
        let due = Duration::from_secs_f64((call as f64 + phase) / account.rate);
        tokio::time::sleep_until((start + due).into()).await;
        let lag = start.elapsed().saturating_sub(due);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            let answer = Answer::NotSent;
            let _ = records.send(Record {
                account: index,
                due,
                latency: Duration::ZERO,
                lag,
                answer,
            });
            continue;
        };
        let (mut client, request) = (client.clone(), account.authorize(create.clone()));
        let records = records.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(
                ANSWER_TIMEOUT,
                client.create_live_stream_record_index_files(request),
            )
            .await;
            let answer = classify(result.map(|answered| answered.map(drop)));
            let latency = start.elapsed().saturating_sub(due);
            let _ = records.send(Record {
                account: index,
                due,
                latency,
                lag,
                answer,
            });
            drop(slot);
        });
    }
    // Every slot back means every call sent has its answer.
    let _all = slots
        .acquire_many(account.max_in_flight as u32)
        .await
        .unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn latency_row(group: &str, answer: &str, mut samples: Vec<Duration>) {
    let ms = |d: Duration| format!("{:>9.2}", d.as_secs_f64() * 1000.0);
    samples.sort();
    let figures = if samples.is_empty() {
        format!("{:>9}{:>9}{:>9}{:>9}", "-", "-", "-", "-")
    } else {
        [0.5, 0.9, 0.99, 1.0]
            .map(|p| ms(percentile(&samples, p)))
            .concat()
    };
    println!("{group:<8}{answer:<11}{:>9}{figures}", samples.len());
}

/// Counts and latencies of one group of accounts.
struct Group {
    offered: usize,
    accepted: Vec<Duration>,
    throttled: Vec<Duration>,
    other: usize,
    not_sent: usize,
}

fn group(records: &[&Record]) -> Group {
    let latencies = |wanted: Answer| {
        records
            .iter()
            .filter(|r| r.answer == wanted)
            .map(|r| r.latency)
            .collect::<Vec<_>>()
    };
    Group {
        offered: records.len(),
        accepted: latencies(Answer::Accepted),
        throttled: latencies(Answer::Throttled),
        other: records
            .iter()
            .filter(|r| matches!(r.answer, Answer::Other(_)))
            .count(),
        not_sent: records
            .iter()
            .filter(|r| r.answer == Answer::NotSent)
            .count(),
    }
}

/// Prints the table and the verdict; true when no answer was other than
/// OK or Throttling.User.
fn report(accounts: &[Arc<Account>], records: &[Record], seconds: f64) -> bool {
    let hot: Vec<&Record> = records.iter().filter(|r| r.account == 0).collect();
    let normal: Vec<&Record> = records.iter().filter(|r| r.account != 0).collect();
    let (hot_group, normal_group) = (group(&hot), group(&normal));

    println!();
    println!(
        "{:<22}{:>10}{:>12}{:>11}{:>7}{:>10}",
        "group", "offered/s", "accepted/s", "throttled", "other", "not sent"
    );
    for (name, figures) in [
        ("hot (1 account)".to_string(), &hot_group),
        (
            format!("normal ({NORMAL_ACCOUNTS} accounts)"),
            &normal_group,
        ),
    ] {
        println!(
            "{name:<22}{:>10.1}{:>12.2}{:>11}{:>7}{:>10}",
            figures.offered as f64 / seconds,
            figures.accepted.len() as f64 / seconds,
            figures.throttled.len(),
            figures.other,
            figures.not_sent
        );
    }
    let per_account: Vec<f64> = (1..accounts.len())
        .map(|index| {
            normal
                .iter()
                .filter(|r| r.account == index && r.answer == Answer::Accepted)
                .count() as f64
                / seconds
        })
        .collect();
    let min = per_account.iter().copied().fold(f64::INFINITY, f64::min);
    let max = per_account.iter().copied().fold(0.0, f64::max);
    println!("  normal accounts, accepted/s each: min {min:.2}, max {max:.2}");

    println!();
    println!(
        "{:<8}{:<11}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "latency", "answer", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    latency_row("hot", "accepted", hot_group.accepted.clone());
    latency_row("hot", "throttled", hot_group.throttled.clone());
    latency_row("normal", "accepted", normal_group.accepted.clone());
    latency_row("normal", "throttled", normal_group.throttled.clone());

    // GCRA lets one second's worth through at once; after the first second
    // the hot account should get exactly its limit.
    let first_second = Duration::from_secs(1);
    let burst = hot
        .iter()
        .filter(|r| r.due < first_second && r.answer == Answer::Accepted)
        .count();
    let after_burst = hot
        .iter()
        .filter(|r| r.due >= first_second && r.answer == Answer::Accepted)
        .count();
    let steady = after_burst as f64 / (seconds - 1.0);
    let lag = records.iter().map(|r| r.lag).max().unwrap_or_default();
    println!();
    println!(
        "hot account: {burst} accepted in the first second (GCRA: a burst of {CREATE_LIMIT:.0} at once, then the rate), \
         then {steady:.2}/s over the remaining {:.0} s",
        seconds - 1.0
    );
    println!(
        "client: largest lag behind schedule {:.1} ms",
        lag.as_secs_f64() * 1000.0
    );

    let mut others: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records {
        if let Answer::Other(what) = &record.answer {
            *others.entry(what.as_str()).or_default() += 1;
        }
    }
    for (what, count) in &others {
        println!("other error: {what}: {count}");
    }

    let (low, high) = (
        CREATE_LIMIT * (1.0 - TOLERANCE),
        CREATE_LIMIT * (1.0 + TOLERANCE),
    );
    let hot_ok = (low..=high).contains(&steady);
    let normal_share = normal_group.accepted.len() as f64 / normal_group.offered.max(1) as f64;
    let normal_ok = normal_group.accepted.len() == normal_group.offered;
    let other_total = hot_group.other + normal_group.other;
    println!(
        "expectations {}: hot steady {steady:.2}/s {} {low:.1}..{high:.1}/s; \
         normal {:.2}% accepted{}; {other_total} errors other than Throttling.User",
        if hot_ok && normal_ok && other_total == 0 {
            "HOLD"
        } else {
            "DO NOT HOLD"
        },
        if hot_ok { "within" } else { "outside" },
        normal_share * 100.0,
        if normal_ok { "" } else { " (expected 100%)" },
    );
    other_total == 0
}

async fn load(seconds: f64) -> bool {
    let mut accounts = vec![Arc::new(Account::new(
        "hot".into(),
        HOT_RATE,
        HOT_MAX_IN_FLIGHT,
    ))];
    for index in 1..=NORMAL_ACCOUNTS {
        accounts.push(Arc::new(Account::new(
            format!("normal-{index:02}"),
            NORMAL_RATE,
            NORMAL_MAX_IN_FLIGHT,
        )));
    }
    let config: String = accounts.iter().map(|account| account.config()).collect();
    let server = common::Server::start(&config).await;
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);

    // One connection per account, as separate clients would have.
    let mut clients = Vec::new();
    let mut creates = Vec::new();
    for account in &accounts {
        let mut client = RecordIndexClient::connect(server.url()).await.unwrap();
        creates.push(prepare(&mut client, account).await);
        clients.push(client);
    }

    println!(
        "load: {seconds} s of CreateLiveStreamRecordIndexFiles against the server at {} (limit {CREATE_LIMIT}/s per account): \
         hot account {HOT_RATE}/s, {NORMAL_ACCOUNTS} normal accounts {NORMAL_RATE}/s each, open loop",
        server.addr
    );
    let (records_tx, mut records_rx) = mpsc::unbounded_channel();
    let start = Instant::now() + Duration::from_millis(100);
    let length = Duration::from_secs_f64(seconds);
    let mut drivers = Vec::new();
    for (index, ((account, client), create)) in
        accounts.iter().zip(clients).zip(creates).enumerate()
    {
        let phase = index as f64 / accounts.len() as f64;
        drivers.push(tokio::spawn(drive(
            index,
            account.clone(),
            client,
            create,
            start,
            length,
            phase,
            records_tx.clone(),
        )));
    }
    drop(records_tx);
    for driver in drivers {
        driver.await.unwrap();
    }
    println!("  load done in {:.1} s", start.elapsed().as_secs_f64());
    let mut records = Vec::new();
    while let Some(record) = records_rx.recv().await {
        records.push(record);
    }
    drop(server);
    report(&accounts, &records, seconds)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("load bench: pass --bench (cargo bench) to measure");
        return;
    }
    let seconds = match std::env::var("LOAD_SECONDS") {
        Ok(text) => text
            .parse::<f64>()
            .ok()
            .filter(|s| *s >= 2.0 && s.is_finite())
            .unwrap_or_else(|| {
                panic!("LOAD_SECONDS={text:?}: expected a number of seconds, at least 2")
            }),
        Err(_) => DEFAULT_SECONDS,
    };
    if std::env::var_os("RUST_LOG").is_none() {
        // SAFETY: no other thread exists yet (the runtime starts below), so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LOG", "warn") };
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if !runtime.block_on(load(seconds)) {
        std::process::exit(1);
    }
}
