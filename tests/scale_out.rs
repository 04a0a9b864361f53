//! Three `record-index serve` replicas serving one fleet, as an operator
//! runs them: one PostgreSQL catalog, one Redis for the rate limits, one
//! SeaweedFS, two accounts with API keys.
//!
//! - What one replica writes, the others serve at once: Register through
//!   one, Create through another, Describe / List / Content / Delete
//!   through the third.
//! - An account flooding Creates over every replica is held to its one
//!   limit for the fleet, while another account is never throttled.
//! - A replica killed (SIGKILL) under load loses nothing it acknowledged,
//!   and the others keep serving.
//! - PostgreSQL stopped as in a crash under load: requests fail fast as
//!   UNAVAILABLE `InternalError`, and once it is back the replicas serve
//!   again by themselves, with everything acknowledged before.

mod common;
#[path = "common/fleet.rs"]
mod fleet;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use fleet::*;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    DeleteLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordContentRequest,
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest,
    RecordInfo,
};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Each test starts a fleet and loads it, and the limits and deadlines
/// they measure need the machine to themselves: they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A client's deadline (`grpc-timeout`) on each request under load.
const DEADLINE: Duration = Duration::from_secs(4);

// ---------------------------------------------------------------------------
// Reading through a replica
// ---------------------------------------------------------------------------

async fn describe(
    client: &mut RecordIndexClient<Channel>,
    place: &Place,
    record_id: &str,
) -> Result<RecordInfo, Status> {
    let request = place.signed(DescribeLiveStreamRecordIndexFileRequest {
        domain_name: place.account.domain.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        record_id: record_id.into(),
    });
    let answer = client
        .describe_live_stream_record_index_file(request)
        .await?;
    Ok(answer.into_inner().record_index_info.unwrap())
}

/// The manifests of the stream created in the last hour, one page.
async fn list(client: &mut RecordIndexClient<Channel>, place: &Place) -> Vec<RecordInfo> {
    let request = place.signed(DescribeLiveStreamRecordIndexFilesRequest {
        domain_name: place.account.domain.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        start_time: utc_seconds(Utc::now() - chrono::Duration::hours(1)),
        end_time: utc_seconds(Utc::now() + chrono::Duration::seconds(60)),
        page_num: 1,
        page_size: 30,
        order: "asc".into(),
    });
    let answer = client
        .describe_live_stream_record_index_files(request)
        .await
        .unwrap()
        .into_inner();
    assert!(answer.total_num <= 30, "{answer:?}");
    answer.record_index_info_list
}

/// The segment objects the playlist at `key` in the place's bucket lists,
/// as keys of that bucket.
async fn playlist_objects(place: &Place, key: &str) -> Vec<String> {
    let response = seaweedfs().get_object(&place.bucket, key).await;
    assert_eq!(response.status, 200, "GET {key}: {}", response.text());
    let playlist = Playlist::parse(&response.text());
    assert!(playlist.has_line("#EXT-X-ENDLIST"), "{:?}", playlist.lines);
    let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
    playlist
        .uris()
        .iter()
        .map(|uri| {
            let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
            for part in uri.split('/') {
                match part {
                    ".." => drop(parts.pop()),
                    "." => {}
                    part => parts.push(part),
                }
            }
            parts.join("/")
        })
        .collect()
}

fn objects(place: &Place, numbers: Range<usize>) -> Vec<String> {
    numbers.map(|i| place.object(i)).collect()
}

// ---------------------------------------------------------------------------
// 1. One catalog behind every replica
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_writes_the_others_serve() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let fleet = Fleet::start(DEFAULT_LIMITS).await;
    let [a, b, c] = [0, 1, 2].map(|i| fleet.replicas[i].client());
    let start = recording_start(Duration::from_secs(30 * 60));
    let place = fleet.place(ALPHA, &unique_name("cam"), start);

    let mut a = a;
    let registered = a
        .register_live_stream_record_segments(place.register(0..10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((registered.accepted, registered.duplicates), (10, 0));

    let mut b = b;
    let info = b
        .create_live_stream_record_index_files(place.create(2..8))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    assert_eq!(
        info.record_url,
        seaweedfs().object_url(&place.bucket, &info.oss_object)
    );
    assert_eq!(
        playlist_objects(&place, &info.oss_object).await,
        objects(&place, 2..8)
    );

    let mut c = c;
    assert_eq!(
        describe(&mut c, &place, &info.record_id).await.unwrap(),
        info
    );
    assert_eq!(list(&mut c, &place).await, vec![info.clone()]);
    assert_content_is_one_span(&mut c, &place, 0..10).await;
    let again = c
        .register_live_stream_record_segments(place.register(0..10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 10));

    delete(&mut c, &place, &info.record_id).await;
    let gone = seaweedfs()
        .get_object(&place.bucket, &info.oss_object)
        .await;
    assert_eq!(gone.status, 404, "the playlist is still there");
    let status = describe(&mut a, &place, &info.record_id)
        .await
        .expect_err("deleted through another replica");
    assert_error(&status, Code::NotFound, "InvalidRecordId.NotFound");
    assert_eq!(list(&mut b, &place).await, vec![]);
}

/// DescribeLiveStreamRecordContent finds segments `numbers` as one span.
async fn assert_content_is_one_span(
    client: &mut RecordIndexClient<Channel>,
    place: &Place,
    numbers: Range<usize>,
) {
    let second = chrono::Duration::seconds(1);
    let request = place.signed(DescribeLiveStreamRecordContentRequest {
        domain_name: place.account.domain.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        start_time: utc_seconds(place.at(numbers.start) - second),
        end_time: utc_seconds(place.at(numbers.end) + second),
    });
    let spans = client
        .describe_live_stream_record_content(request)
        .await
        .unwrap()
        .into_inner()
        .record_content_info_list;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.start_time, utc_seconds(place.at(numbers.start)));
    assert_eq!(span.end_time, utc_seconds(place.at(numbers.end)));
    assert_eq!(
        span.duration,
        (numbers.len() as i64 * SEGMENT_SECONDS) as f64
    );
    assert_eq!(
        (span.oss_endpoint.as_str(), span.oss_bucket.as_str()),
        (place.endpoint.as_str(), place.bucket.as_str())
    );
    assert_eq!(span.oss_object_prefix, format!("rec/{}/", place.stream));
}

async fn delete(client: &mut RecordIndexClient<Channel>, place: &Place, record_id: &str) {
    let request = place.signed(DeleteLiveStreamRecordIndexFilesRequest {
        domain_name: place.account.domain.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        record_id: vec![record_id.into()],
        remove_file: true,
    });
    let answer = client
        .delete_live_stream_record_index_files(request)
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<(&str, &str)> = answer
        .record_delete_info_list
        .iter()
        .map(|d| (d.record_id.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(outcomes, [(record_id, "OK")]);
}

// ---------------------------------------------------------------------------
// 2. One limit for the fleet
// ---------------------------------------------------------------------------

/// Creates a second per account, for the fleet. Below the default of 45
/// so that a flood is well over it even on a busy machine, where a Create
/// that passes takes a while.
const CREATE_LIMIT: usize = 20;
/// Calls that may pass beyond a GCRA's allowance: a cell refilled while
/// the flood's last answers travelled back.
const SLACK: usize = 3;
const FLOOD: Duration = Duration::from_secs(3);

/// What a flood got through each replica: passed and refused.
#[derive(Default)]
struct Flood {
    passed: [usize; REPLICAS],
    refused: [usize; REPLICAS],
    elapsed: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_held_to_one_limit_across_the_fleet() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let limits = format!("[rate_limits]\nCreateLiveStreamRecordIndexFiles = {CREATE_LIMIT}\n");
    let fleet = Fleet::start(&limits).await;
    let start = recording_start(Duration::from_secs(30 * 60));
    let flooded = fleet.place(ALPHA, &unique_name("cam"), start);
    let quiet = fleet.place(BETA, &unique_name("cam"), start);
    // Through every replica: a replica dials Redis on its first limited
    // request, and a first dial slower than Redis's 100 ms budget (on a
    // busy machine) would have it limit on its own during the flood.
    for replica in &fleet.replicas {
        for place in [&flooded, &quiet] {
            replica
                .client()
                .register_live_stream_record_segments(place.register(0..10))
                .await
                .unwrap();
        }
    }
    let channels: Vec<Channel> = fleet.replicas.iter().map(|r| r.channel.clone()).collect();

    let steady = tokio::spawn(steady_creates(channels.clone(), quiet));
    let flood = create_flood(&channels, &flooded).await;
    let steady_passed = steady.await.unwrap();

    let passed: usize = flood.passed.iter().sum();
    let refused: usize = flood.refused.iter().sum();
    let seconds = flood.elapsed.as_secs_f64();
    let most = allowance(&fleet, seconds);
    // Each replica on a budget of its own would admit the limit three
    // times over, and one replica's share while Redis is away is a third
    // of it: the fleet admits the whole limit once, whoever is asked.
    let least = (CREATE_LIMIT as f64 * seconds * 0.8) as usize;
    println!(
        "flood: {passed} passed, {refused} refused in {:?} (per replica {:?} / {:?}), \
         {least}..={most} allowed; the other account: {steady_passed} passed",
        flood.elapsed, flood.passed, flood.refused
    );
    assert!(refused > passed, "the flood was not well over the limit");
    assert!(
        (least..=most).contains(&passed),
        "{passed} Creates passed over {REPLICAS} replicas in {:?}; the account's limit allows \
         {least}..={most}",
        flood.elapsed
    );
    for replica in 0..REPLICAS {
        assert!(flood.passed[replica] > 0 && flood.refused[replica] > 0);
    }
    // Four a second were sent, one after the other: some wait on the flood.
    assert!(
        steady_passed >= 2 * FLOOD.as_secs() as usize,
        "{steady_passed}"
    );
}

/// The most Creates the fleet may pass in `seconds`: the limit with one
/// second of burst. A replica whose Redis call goes unanswered for 100 ms
/// (a starved machine) limits on its own at its share for a while, as
/// documented; each one that did adds its share.
fn allowance(fleet: &Fleet, seconds: f64) -> usize {
    let shared = (CREATE_LIMIT as f64 * (seconds + 1.0)).ceil() as usize + SLACK;
    let alone: Vec<String> = fleet
        .replicas
        .iter()
        .filter_map(|replica| replica.log.matching("Redis unreachable").pop())
        .collect();
    if !alone.is_empty() {
        println!("replicas that limited on their own for a while: {alone:#?}");
    }
    let share = CREATE_LIMIT.div_ceil(REPLICAS) as f64;
    shared + alone.len() * (share * (seconds + 1.0)).ceil() as usize
}

/// Creates for `place` from 9 tasks at once, each sending to the replicas
/// in turn, for [`FLOOD`]. Every answer must be a pass or Throttling.User
/// with a RetryInfo, within 2 s.
async fn create_flood(channels: &[Channel], place: &Place) -> Flood {
    const TASKS: usize = 9;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (channels, place) = (channels.to_vec(), place.clone());
        tasks.push(tokio::spawn(async move {
            let mut flood = Flood::default();
            let mut n = task;
            while start.elapsed() < FLOOD {
                let replica = n % REPLICAS;
                let mut client = RecordIndexClient::new(channels[replica].clone());
                let call = client.create_live_stream_record_index_files(place.create(0..10));
                match tokio::time::timeout(Duration::from_secs(2), call).await {
                    Ok(Ok(_)) => flood.passed[replica] += 1,
                    Ok(Err(status)) => {
                        assert_throttled(&status);
                        flood.refused[replica] += 1;
                    }
                    Err(_) => panic!("a Create was not answered within 2 s"),
                }
                n += 1;
            }
            flood
        }));
    }
    let mut total = Flood::default();
    for task in tasks {
        let flood = task.await.unwrap();
        for replica in 0..REPLICAS {
            total.passed[replica] += flood.passed[replica];
            total.refused[replica] += flood.refused[replica];
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// The refusal a client backs off on: RESOURCE_EXHAUSTED Throttling.User
/// with a RetryInfo of at most a second.
fn assert_throttled(status: &Status) {
    assert_error(status, Code::ResourceExhausted, "Throttling.User");
    let delay = status
        .get_details_retry_info()
        .and_then(|retry| retry.retry_delay)
        .unwrap_or_else(|| panic!("no RetryInfo with a delay in {status:?}"));
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "retry delay {delay:?}"
    );
}

/// Creates for `place` four times a second through the replicas in turn
/// for as long as the flood lasts; each must pass. How many passed.
async fn steady_creates(channels: Vec<Channel>, place: Place) -> usize {
    let start = Instant::now();
    let mut passed = 0;
    while start.elapsed() < FLOOD {
        let mut client = RecordIndexClient::new(channels[passed % REPLICAS].clone());
        if let Err(status) = client
            .create_live_stream_record_index_files(place.create(0..10))
            .await
        {
            panic!("a Create of the other account failed during the flood: {status:?}");
        }
        passed += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    passed
}

// ---------------------------------------------------------------------------
// Load that remembers what it was told
// ---------------------------------------------------------------------------

/// Streams registered, one recorder each.
const STREAMS: usize = 3;
/// Clients creating playlists of what was registered.
const CREATORS: usize = 2;
/// Pause between one client's calls.
const PACE: Duration = Duration::from_millis(20);

/// A call that failed, with when it was sent and how long its answer took.
#[derive(Debug)]
struct Failure {
    rpc: &'static str,
    replica: usize,
    sent: Instant,
    took: Duration,
    status: Status,
}

impl Failure {
    fn answered(&self) -> Instant {
        self.sent + self.took
    }
}

#[derive(Default)]
struct Ledger {
    /// Register batches acknowledged: stream and segment numbers.
    batches: Vec<(usize, Range<usize>)>,
    /// Manifests acknowledged: stream, Create's answer, its segments.
    manifests: Vec<(usize, RecordInfo, Range<usize>)>,
    failures: Vec<Failure>,
    /// When each call succeeded, and through which replica.
    answered: Vec<(Instant, usize)>,
    /// Answers that break the contract.
    broken: Vec<String>,
}

impl Ledger {
    fn answered_by(&self, replica: usize, after: Instant) -> usize {
        self.answered
            .iter()
            .filter(|(at, by)| *by == replica && *at > after)
            .count()
    }
}

/// Recorders registering [`STREAMS`] streams of [`ALPHA`] and creators
/// indexing what was acknowledged, through the replicas in turn, each call
/// under [`DEADLINE`]; a failed Register is sent again, as a recorder
/// does.
struct Load {
    places: Vec<Place>,
    channels: Vec<Channel>,
    /// Per stream, segments `0..n` were acknowledged.
    registered: Vec<AtomicUsize>,
    /// Replicas a load balancer took out of rotation.
    out: Vec<AtomicBool>,
    stop: AtomicBool,
    ledger: Mutex<Ledger>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Load {
    fn start(fleet: &Fleet) -> Arc<Load> {
        let start = recording_start(Duration::from_secs(60 * 60));
        let load = Arc::new(Load {
            places: (0..STREAMS)
                .map(|_| fleet.place(ALPHA, &unique_name("cam"), start))
                .collect(),
            channels: fleet.replicas.iter().map(|r| r.channel.clone()).collect(),
            registered: (0..STREAMS).map(|_| AtomicUsize::new(0)).collect(),
            out: (0..REPLICAS).map(|_| AtomicBool::new(false)).collect(),
            stop: AtomicBool::new(false),
            ledger: Mutex::default(),
            tasks: Mutex::default(),
        });
        let mut tasks = load.tasks.lock().unwrap();
        for stream in 0..STREAMS {
            tasks.push(tokio::spawn(recorder(load.clone(), stream)));
        }
        for number in 0..CREATORS {
            tasks.push(tokio::spawn(creator(load.clone(), number)));
        }
        drop(tasks);
        load
    }

    /// The replica for a client's `n`th call: the next one in rotation.
    fn route(&self, n: usize) -> usize {
        (0..REPLICAS)
            .map(|k| (n + k) % REPLICAS)
            .find(|&replica| !self.out[replica].load(Ordering::SeqCst))
            .expect("a replica in rotation")
    }

    fn client(&self, replica: usize) -> RecordIndexClient<Channel> {
        RecordIndexClient::new(self.channels[replica].clone())
    }

    fn note<T>(
        &self,
        rpc: &'static str,
        replica: usize,
        sent: Instant,
        result: &Result<T, Status>,
    ) {
        let mut ledger = self.ledger.lock().unwrap();
        match result {
            Ok(_) => ledger.answered.push((Instant::now(), replica)),
            Err(status) => ledger.failures.push(Failure {
                rpc,
                replica,
                sent,
                took: sent.elapsed(),
                status: status.clone(),
            }),
        }
    }

    /// Stops the clients and hands over what they were told.
    async fn finish(&self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for task in tasks {
            task.await.unwrap();
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

/// Registers the next one to three segments of its stream again and again.
async fn recorder(load: Arc<Load>, stream: usize) {
    let place = &load.places[stream];
    let (mut n, mut retry) = (stream, None);
    while !load.stop.load(Ordering::SeqCst) {
        let first = load.registered[stream].load(Ordering::SeqCst);
        let again = retry.is_some();
        let batch: Range<usize> = retry.take().unwrap_or(first..first + 1 + n % 3);
        let replica = load.route(n);
        n += 1;
        let sent = Instant::now();
        let request = within(place.register(batch.clone()), DEADLINE);
        let result = load
            .client(replica)
            .register_live_stream_record_segments(request)
            .await
            .map(|answer| answer.into_inner());
        load.note("Register", replica, sent, &result);
        match result {
            Ok(answer) => {
                let count = batch.len() as i32;
                // A batch sent again may have been stored before its first
                // answer was lost; a new one never was.
                let expected = if again {
                    answer.accepted + answer.duplicates == count
                } else {
                    (answer.accepted, answer.duplicates) == (count, 0)
                };
                let mut ledger = load.ledger.lock().unwrap();
                if !expected {
                    let said = format!("Register {batch:?} (again: {again}) answered {answer:?}");
                    ledger.broken.push(said);
                }
                ledger.batches.push((stream, batch.clone()));
                load.registered[stream].store(batch.end, Ordering::SeqCst);
            }
            Err(_) => retry = Some(batch),
        }
        tokio::time::sleep(PACE).await;
    }
}

/// Creates playlists of the last (up to) four acknowledged segments of
/// each stream in turn.
async fn creator(load: Arc<Load>, number: usize) {
    let mut n = number;
    while !load.stop.load(Ordering::SeqCst) {
        let stream = n % STREAMS;
        let end = load.registered[stream].load(Ordering::SeqCst);
        let segments = end.saturating_sub(4)..end;
        if segments.is_empty() {
            tokio::time::sleep(PACE).await;
            continue;
        }
        let replica = load.route(n);
        n += 1;
        let sent = Instant::now();
        let request = within(load.places[stream].create(segments.clone()), DEADLINE);
        let result = load
            .client(replica)
            .create_live_stream_record_index_files(request)
            .await
            .map(|answer| answer.into_inner().record_info.unwrap());
        load.note("Create", replica, sent, &result);
        if let Ok(info) = result {
            let mut ledger = load.ledger.lock().unwrap();
            ledger.manifests.push((stream, info, segments));
        }
        tokio::time::sleep(PACE).await;
    }
}

/// Everything the load was told still holds, asked through `replica`: an
/// acknowledged batch sent again is all duplicates; an acknowledged
/// manifest is described as Create answered, its playlist listing its
/// segments.
async fn assert_acknowledged_kept(load: &Load, ledger: &Ledger, replica: usize) {
    use futures::StreamExt;
    let batches = futures::stream::iter(&ledger.batches)
        .map(|(stream, batch)| async move {
            let request = load.places[*stream].register(batch.clone());
            let answer = load
                .client(replica)
                .register_live_stream_record_segments(request)
                .await
                .unwrap_or_else(|status| panic!("Register {batch:?} again: {status:?}"))
                .into_inner();
            let count = batch.len() as i32;
            assert_eq!(
                (answer.accepted, answer.duplicates),
                (0, count),
                "{batch:?}"
            );
        })
        .buffer_unordered(8);
    batches.collect::<Vec<()>>().await;
    let manifests = futures::stream::iter(&ledger.manifests)
        .map(|(stream, info, segments)| async move {
            let place = &load.places[*stream];
            let described = describe(&mut load.client(replica), place, &info.record_id)
                .await
                .unwrap_or_else(|status| panic!("acknowledged {info:?}: {status:?}"));
            assert_eq!(&described, info);
            let listed = playlist_objects(place, &info.oss_object).await;
            assert_eq!(listed, objects(place, segments.clone()));
        })
        .buffer_unordered(8);
    manifests.collect::<Vec<()>>().await;
}

// ---------------------------------------------------------------------------
// 3. A replica killed under load
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_nothing_it_acknowledged() {
    const VICTIM: usize = 1;
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut fleet = Fleet::start(HIGH_LIMITS).await;
    let load = Load::start(&fleet);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let killed_at = Instant::now();
    fleet.replicas[VICTIM].server.kill();
    // What a load balancer's health check takes to notice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.out[VICTIM].store(true, Ordering::SeqCst);
    let out_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ledger = load.finish().await;

    let from_victim = ledger.answered_by(VICTIM, Instant::now() - Duration::from_secs(3600));
    println!(
        "{} batches and {} manifests acknowledged, {from_victim} calls by the killed replica; \
         {} calls failed",
        ledger.batches.len(),
        ledger.manifests.len(),
        ledger.failures.len()
    );
    assert!(
        from_victim > 0,
        "the killed replica answered nothing before"
    );
    assert!(ledger.broken.is_empty(), "{:#?}", ledger.broken);
    for failure in &ledger.failures {
        assert!(
            failure.replica == VICTIM && failure.answered() >= killed_at,
            "only calls to the killed replica may fail, once killed: {failure:?}"
        );
    }
    for survivor in [0, 2] {
        assert!(
            ledger.answered_by(survivor, out_at) > 0,
            "replica {survivor} stopped"
        );
        let url = fleet.replicas[survivor].server.url();
        assert_eq!(health_status(&url).await, Ok(ServingStatus::Serving));
    }
    assert_acknowledged_kept(&load, &ledger, 0).await;
}

// ---------------------------------------------------------------------------
// 4. The database crashes under load and comes back
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_rides_out_a_database_crash_by_itself() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut fleet = Fleet::start(HIGH_LIMITS).await;
    let urls: Vec<String> = fleet.replicas.iter().map(|r| r.server.url()).collect();
    let load = Load::start(&fleet);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| fleet.database.stop_immediate());
    for url in &urls {
        await_health(url, ServingStatus::NotServing, Duration::from_secs(15)).await;
    }
    // The load meets the outage for a while.
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| fleet.database.start_again());
    let mut back = Duration::ZERO;
    for url in &urls {
        back = back.max(await_health(url, ServingStatus::Serving, Duration::from_secs(30)).await);
    }
    let recovered_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ledger = load.finish().await;

    let slowest = ledger.failures.iter().map(|f| f.took).max();
    println!(
        "{} batches and {} manifests acknowledged; {} calls failed, the slowest answer in {slowest:?}; \
         serving again {back:?} after the database",
        ledger.batches.len(),
        ledger.manifests.len(),
        ledger.failures.len(),
    );
    assert!(!ledger.failures.is_empty(), "the load never met the outage");
    assert!(ledger.broken.is_empty(), "{:#?}", ledger.broken);
    for failure in &ledger.failures {
        assert_outage_answer(failure, stopped_at, recovered_at);
    }
    for replica in 0..REPLICAS {
        assert!(
            ledger.answered_by(replica, recovered_at) > 0,
            "replica {replica} answered nothing once the database was back"
        );
    }
    assert_acknowledged_kept(&load, &ledger, 2).await;
}

/// A call that failed in the outage failed as documented: UNAVAILABLE
/// `InternalError`, answered well before the client's deadline, and only
/// while the database was away.
fn assert_outage_answer(failure: &Failure, stopped_at: Instant, recovered_at: Instant) {
    let status = &failure.status;
    assert_eq!(status.code(), Code::Unavailable, "{failure:?}");
    assert!(
        status.message().starts_with("InternalError: "),
        "{failure:?}"
    );
    assert!(
        status.get_details_error_info().is_some(),
        "not answered by the service: {failure:?}"
    );
    assert!(failure.took < DEADLINE / 2, "{failure:?}");
    assert!(
        failure.answered() >= stopped_at && failure.sent <= recovered_at,
        "{} failed outside the outage: {failure:?}",
        failure.rpc
    );
}
