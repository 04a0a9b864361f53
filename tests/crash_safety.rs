//! An acknowledged request is durable: under Register and Create load from
//! several clients, the `record-index` binary is killed (SIGKILL, nothing
//! flushed on the way out) at random moments and started again on the same
//! data directory, twenty times. After each start the service is healthy,
//! every manifest it acknowledged is described as it was created with its
//! playlist in SeaweedFS listing the right segments, every segment it
//! acknowledged is still registered and recorded, and what was in flight at
//! the kill left nothing broken behind: no manifest without its playlist.
//!
//! The kill moments come from a seed printed at the start;
//! `CRASH_SAFETY_SEED=<seed>` replays the same schedule.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use futures::StreamExt;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordContentRequest,
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest,
    RecordInfo, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use tonic::transport::Channel;
use tonic_types::StatusExt;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const CYCLES: usize = 20;
const STREAMS: usize = 4;
const CREATE_CLIENTS: usize = 2;
const SEGMENT_SECONDS: i64 = 6;
/// Segments per Register: a recorder reports what it uploaded since its
/// last call.
const MAX_BATCH: usize = 5;
/// Segments per Create, so that playlists stay small to read back.
const MAX_MANIFEST_SEGMENTS: usize = 10;
/// Load per cycle before the kill, in milliseconds.
const LOAD_MS: (u64, u64) = (50, 700);

/// Far above what the load sends.
const RATE_LIMITS: &str = "rate_limits = { CreateLiveStreamRecordIndexFiles = 100000, \
     RegisterLiveStreamRecordSegments = 100000, DescribeLiveStreamRecordIndexFile = 100000, \
     DescribeLiveStreamRecordIndexFiles = 100000, DeleteLiveStreamRecordIndexFiles = 100000, \
     DescribeLiveStreamRecordContent = 100000 }\n";

/// SplitMix64: a seeded schedule without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

// ---------------------------------------------------------------------------
// What the clients were told
// ---------------------------------------------------------------------------

/// One recorded stream: segment `i` starts `6 * i` seconds after `start`
/// and is registered in order, so the acknowledged segments are always a
/// prefix.
#[derive(Clone)]
struct StreamLedger {
    name: String,
    start: DateTime<Utc>,
    /// Segments `0..acknowledged` were acknowledged.
    acknowledged: usize,
    /// The end of a batch sent and never answered (in flight at a kill):
    /// segments `acknowledged..end`. Its client sends it again first, as a
    /// recorder retries, so the acknowledged ones stay a prefix.
    in_flight: Option<usize>,
}

/// A manifest whose Create was acknowledged, with the segment objects its
/// playlist must list.
#[derive(Clone)]
struct AckedManifest {
    stream: usize,
    info: RecordInfo,
    objects: Vec<String>,
}

#[derive(Default)]
struct Ledger {
    streams: Vec<StreamLedger>,
    manifests: Vec<AckedManifest>,
    /// Answers that break the contract, collected by the load clients and
    /// reported after the cycle.
    failures: Vec<String>,
    registers_acknowledged: usize,
    /// When each request the connection broke under was sent, and its RPC:
    /// those sent before the kill were in flight at it.
    unanswered: Vec<(Instant, &'static str)>,
    /// Batches sent again after a kill that the service had stored before
    /// it: their first send was answered by nobody but was durable.
    batches_stored_unanswered: usize,
}

type Shared = Arc<Mutex<Ledger>>;

/// Where the segments and playlists live.
#[derive(Clone)]
struct Place {
    endpoint: String,
    bucket: String,
}

fn segment_object(stream: &str, i: usize) -> String {
    format!("rec/{stream}/{i:05}.ts")
}

fn segment_start(stream: &StreamLedger, i: usize) -> DateTime<Utc> {
    stream.start + chrono::Duration::seconds(SEGMENT_SECONDS * i as i64)
}

fn segment(place: &Place, stream: &StreamLedger, i: usize) -> Segment {
    Segment {
        oss_endpoint: place.endpoint.clone(),
        oss_bucket: place.bucket.clone(),
        oss_object: segment_object(&stream.name, i),
        start_time: utc_millis(segment_start(stream, i)),
        duration: SEGMENT_SECONDS as f64,
        sequence: i as i64,
        width: MEDIA_WIDTH,
        height: MEDIA_HEIGHT,
        format: "ts".into(),
        size: 1000,
    }
}

/// An error the service itself answered (it carries ErrorInfo), as opposed
/// to the connection breaking under a kill.
fn answered_by_service(status: &tonic::Status) -> bool {
    status.get_details_error_info().is_some()
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// A recorder: registers the next few segments of its stream, again and
/// again, until the connection breaks.
async fn recorder(
    mut client: RecordIndexClient<Channel>,
    place: Place,
    ledger: Shared,
    stream: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(seed);
    while !stop.load(Ordering::SeqCst) {
        let (name, first, end, again, segments) = {
            let mut ledger = ledger.lock().unwrap();
            let s = &mut ledger.streams[stream];
            let first = s.acknowledged;
            let (end, again) = match s.in_flight {
                Some(end) => (end, true),
                None => (first + 1 + rng.below(MAX_BATCH), false),
            };
            s.in_flight = Some(end);
            let segments = (first..end).map(|i| segment(&place, s, i)).collect();
            (s.name.clone(), first, end, again, segments)
        };
        let sent = Instant::now();
        let answer = client
            .register_live_stream_record_segments(register_request(&name, segments))
            .await;
        let mut ledger = ledger.lock().unwrap();
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                let count = (end - first) as i32;
                // A batch sent again may have been stored before the kill,
                // wholly or in part; a new one never was.
                let expected = if again {
                    answer.accepted + answer.duplicates == count
                } else {
                    (answer.accepted, answer.duplicates) == (count, 0)
                };
                if !expected {
                    ledger.failures.push(format!(
                        "Register of {name} segments {first}..{end} (sent before: {again}) \
                         answered Accepted {} Duplicates {}",
                        answer.accepted, answer.duplicates
                    ));
                }
                if again && answer.duplicates > 0 {
                    ledger.batches_stored_unanswered += 1;
                }
                let s = &mut ledger.streams[stream];
                s.acknowledged = end;
                s.in_flight = None;
                ledger.registers_acknowledged += 1;
            }
            Err(status) => {
                if answered_by_service(&status) {
                    ledger.failures.push(format!(
                        "Register of {name} segments {first}..{end} refused: {status:?}"
                    ));
                } else {
                    ledger.unanswered.push((sent, "Register"));
                }
                return;
            }
        }
    }
}

/// A client creating playlists over acknowledged segments of random
/// streams until the connection breaks.
async fn indexer(
    mut client: RecordIndexClient<Channel>,
    place: Place,
    ledger: Shared,
    seed: u64,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(seed);
    while !stop.load(Ordering::SeqCst) {
        let pick = {
            let ledger = ledger.lock().unwrap();
            let stream = rng.below(STREAMS);
            let s = &ledger.streams[stream];
            (s.acknowledged > 0).then(|| {
                let last = rng.below(s.acknowledged);
                let first = last - rng.below((last + 1).min(MAX_MANIFEST_SEGMENTS));
                (
                    stream,
                    s.name.clone(),
                    segment_start(s, first),
                    segment_start(s, last + 1),
                    first,
                    last,
                )
            })
        };
        let Some((stream, name, start, end, first, last)) = pick else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        // StartTime < end <= EndTime selects exactly first..=last: the
        // segment before ends at StartTime, the one after at EndTime + 6 s.
        let request = CreateLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: name.clone(),
            oss_endpoint: place.endpoint.clone(),
            oss_bucket: place.bucket.clone(),
            oss_object: "vod/{StreamName}/{RecordId}.m3u8".into(),
            start_time: utc_seconds(start),
            end_time: utc_seconds(end),
            ..Default::default()
        };
        let sent = Instant::now();
        let answer = client.create_live_stream_record_index_files(request).await;
        let mut ledger = ledger.lock().unwrap();
        match answer {
            Ok(answer) => {
                let info = answer.into_inner().record_info.unwrap_or_default();
                let count = last - first + 1;
                let expected_object = format!("vod/{name}/{}.m3u8", info.record_id);
                if info.oss_object != expected_object
                    || info.duration != (SEGMENT_SECONDS as usize * count) as f64
                    || (info.width, info.height) != (MEDIA_WIDTH, MEDIA_HEIGHT)
                    || info.start_time != utc_seconds(start)
                    || info.end_time != utc_seconds(end)
                {
                    ledger.failures.push(format!(
                        "Create of {name} segments {first}..={last} answered {info:?}"
                    ));
                }
                ledger.manifests.push(AckedManifest {
                    stream,
                    info,
                    objects: (first..=last).map(|i| segment_object(&name, i)).collect(),
                });
            }
            Err(status) => {
                if answered_by_service(&status) {
                    ledger.failures.push(format!(
                        "Create of {name} segments {first}..={last} refused: {status:?}"
                    ));
                } else {
                    ledger.unanswered.push((sent, "Create"));
                }
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checks after each start
// ---------------------------------------------------------------------------

/// The object key a playlist URI names, resolved against the playlist's
/// own key as a player resolves it against the playlist's URL.
fn resolve(playlist_key: &str, uri: &str) -> String {
    assert!(
        !uri.contains("://") && !uri.contains('%'),
        "URI {uri:?} in {playlist_key}: expected a plain relative one"
    );
    let mut parts: Vec<&str> = playlist_key.split('/').collect();
    parts.pop();
    for part in uri.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." => {}
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// A playlist's problems, if any: not readable, not ended, or listing other
/// segments than `objects` (when given).
async fn playlist_problem(
    seaweed: &SeaweedFs,
    bucket: &str,
    key: &str,
    objects: Option<&[String]>,
) -> Option<String> {
    let response = seaweed.get_object(bucket, key).await;
    if response.status != 200 {
        return Some(format!(
            "playlist {key}: GET answered {}: {}",
            response.status,
            response.text()
        ));
    }
    let text = response.text();
    let playlist = Playlist::parse(&text);
    if !playlist.has_line("#EXT-X-ENDLIST") {
        return Some(format!("playlist {key} has no #EXT-X-ENDLIST:\n{text}"));
    }
    let listed: Vec<String> = playlist
        .uris()
        .iter()
        .map(|uri| resolve(key, uri))
        .collect();
    match objects {
        Some(objects) if listed != objects => Some(format!(
            "playlist {key} lists {listed:?}, expected {objects:?}"
        )),
        _ => None,
    }
}

/// Whether `spans` (sorted, whole seconds) cover `[from, to]` without a hole.
fn spans_cover(
    spans: &[(DateTime<Utc>, DateTime<Utc>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> bool {
    let mut covered_until = from;
    for (start, end) in spans {
        if *start <= covered_until && *end > covered_until {
            covered_until = *end;
        }
    }
    covered_until >= to
}

/// Everything the clients were told, checked against the freshly started
/// server: the problems found, and the manifests listed whose Create was
/// never answered.
async fn check_acknowledged(
    server: &Server,
    seaweed: &SeaweedFs,
    place: &Place,
    ledger: &Shared,
    created_since: DateTime<Utc>,
) -> (Vec<String>, BTreeSet<String>) {
    let mut problems = Vec::new();
    let mut unanswered = BTreeSet::new();
    let client = server.client().await;
    let (streams, manifests) = {
        let ledger = ledger.lock().unwrap();
        (ledger.streams.clone(), ledger.manifests.clone())
    };

    // Every acknowledged manifest, as it was created, with its playlist.
    let found: Vec<Option<String>> = futures::stream::iter(manifests.iter())
        .map(|AckedManifest { stream, info, objects }| {
            let mut client = client.clone();
            let stream_name = streams[*stream].name.clone();
            async move {
                let described = client
                    .describe_live_stream_record_index_file(
                        DescribeLiveStreamRecordIndexFileRequest {
                            domain_name: DOMAIN.into(),
                            app_name: APP.into(),
                            stream_name,
                            record_id: info.record_id.clone(),
                        },
                    )
                    .await
                    .map(|answer| answer.into_inner().record_index_info);
                match described {
                    Ok(Some(described)) if &described == info => {
                        playlist_problem(seaweed, &place.bucket, &info.oss_object, Some(objects))
                            .await
                    }
                    other => Some(format!(
                        "acknowledged manifest {} is described as {other:?}, created as {info:?}",
                        info.record_id
                    )),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    problems.extend(found.into_iter().flatten());

    let acknowledged_ids: BTreeMap<&str, usize> = manifests
        .iter()
        .map(|m| (m.info.record_id.as_str(), m.stream))
        .collect();
    for (index, stream) in streams.iter().enumerate() {
        let (name, start, acknowledged) = (&stream.name, &stream.start, &stream.acknowledged);
        let mut client = client.clone();
        // Every acknowledged segment is still registered: sent again, each
        // is a duplicate.
        for chunk_start in (0..*acknowledged).step_by(2000) {
            let chunk_end = (chunk_start + 2000).min(*acknowledged);
            let segments = (chunk_start..chunk_end)
                .map(|i| segment(place, stream, i))
                .collect();
            match client
                .register_live_stream_record_segments(register_request(name, segments))
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    if (answer.accepted, answer.duplicates) != (0, (chunk_end - chunk_start) as i32)
                    {
                        problems.push(format!(
                            "{name}: acknowledged segments {chunk_start}..{chunk_end} registered again \
                             answered Accepted {} Duplicates {}",
                            answer.accepted, answer.duplicates
                        ));
                    }
                }
                Err(status) => problems.push(format!(
                    "{name}: registering acknowledged segments again: {status:?}"
                )),
            }
        }

        // ... and recorded: the content spans cover them all.
        if *acknowledged > 0 {
            let recorded_until =
                *start + chrono::Duration::seconds(SEGMENT_SECONDS * *acknowledged as i64);
            match client
                .describe_live_stream_record_content(DescribeLiveStreamRecordContentRequest {
                    domain_name: DOMAIN.into(),
                    app_name: APP.into(),
                    stream_name: name.clone(),
                    start_time: utc_seconds(*start - chrono::Duration::seconds(1)),
                    end_time: utc_seconds(recorded_until + chrono::Duration::seconds(1)),
                })
                .await
            {
                Ok(answer) => {
                    let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = answer
                        .into_inner()
                        .record_content_info_list
                        .iter()
                        .map(|span| (parse_utc(&span.start_time), parse_utc(&span.end_time)))
                        .collect();
                    if !spans_cover(&spans, *start, recorded_until) {
                        problems.push(format!(
                            "{name}: content spans {spans:?} do not cover the acknowledged \
                             {start}..{recorded_until}"
                        ));
                    }
                }
                Err(status) => problems.push(format!("{name}: content: {status:?}")),
            }
        }

        // The stream's manifests: all acknowledged ones, and any other
        // (its Create was in flight at a kill) has its playlist.
        let mut listed = BTreeSet::new();
        let mut page = 1;
        loop {
            let answer = match client
                .describe_live_stream_record_index_files(
                    DescribeLiveStreamRecordIndexFilesRequest {
                        domain_name: DOMAIN.into(),
                        app_name: APP.into(),
                        stream_name: name.clone(),
                        start_time: utc_seconds(created_since),
                        end_time: utc_seconds(Utc::now() + chrono::Duration::seconds(60)),
                        page_num: page,
                        page_size: 30,
                        order: "asc".into(),
                    },
                )
                .await
            {
                Ok(answer) => answer.into_inner(),
                Err(status) => {
                    problems.push(format!("{name}: listing manifests: {status:?}"));
                    break;
                }
            };
            for info in &answer.record_index_info_list {
                listed.insert(info.record_id.clone());
                if acknowledged_ids.contains_key(info.record_id.as_str()) {
                    continue;
                }
                unanswered.insert(info.record_id.clone());
                if let Some(problem) =
                    playlist_problem(seaweed, &place.bucket, &info.oss_object, None).await
                {
                    problems.push(format!(
                        "{name}: manifest {} (Create unanswered) is listed without its playlist: \
                         {problem}",
                        info.record_id
                    ));
                }
            }
            if page >= answer.total_page {
                break;
            }
            page += 1;
        }
        for (id, stream) in &acknowledged_ids {
            if *stream == index && !listed.contains(*id) {
                problems.push(format!("{name}: acknowledged manifest {id} is not listed"));
            }
        }
    }
    (problems, unanswered)
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_records_survive_sigkill_under_load() {
    let seed = std::env::var("CRASH_SAFETY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill schedule seed {seed}: CRASH_SAFETY_SEED={seed} replays it");
    let mut rng = Rng(seed);

    let seaweed = seaweedfs();
    let place = Place {
        endpoint: seaweed.endpoint_name(Addressing::Path),
        bucket: seaweed.create_bucket().await,
    };
    let mut server = Server::start(&format!(
        "{RATE_LIMITS}\n{}",
        seaweed.endpoint_toml(Addressing::Path)
    ))
    .await;
    await_health(
        &server.url(),
        ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await;
    let created_since = Utc::now() - chrono::Duration::seconds(60);
    // A day back: every segment the load can register has ended.
    let recorded_from = recording_start(Duration::from_secs(24 * 3600));
    let ledger: Shared = Arc::new(Mutex::new(Ledger {
        streams: (0..STREAMS)
            .map(|_| StreamLedger {
                name: unique_name("crash"),
                start: recorded_from,
                acknowledged: 0,
                in_flight: None,
            })
            .collect(),
        ..Default::default()
    }));

    let test_started = Instant::now();
    let (mut slowest_start, mut slowest_check) = (Duration::ZERO, Duration::ZERO);
    let (mut creates_cut_off, mut registers_cut_off) = (0, 0);
    let mut created_unanswered = BTreeSet::new();
    for cycle in 1..=CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for stream in 0..STREAMS {
            clients.push(tokio::spawn(recorder(
                server.client().await,
                place.clone(),
                ledger.clone(),
                stream,
                rng.next(),
                stop.clone(),
            )));
        }
        for _ in 0..CREATE_CLIENTS {
            clients.push(tokio::spawn(indexer(
                server.client().await,
                place.clone(),
                ledger.clone(),
                rng.next(),
                stop.clone(),
            )));
        }
        let load = Duration::from_millis(rng.between(LOAD_MS.0, LOAD_MS.1));
        tokio::time::sleep(load).await;

        // SIGKILL in the middle of the load, and a new process on the same
        // data dir: it prints its listening line or the test fails.
        let killed = Instant::now();
        server.restart().await;
        let started_in = killed.elapsed();
        stop.store(true, Ordering::SeqCst);
        for client in clients {
            client.await.expect("a load client panicked");
        }
        await_health(
            &server.url(),
            ServingStatus::Serving,
            Duration::from_secs(15),
        )
        .await;
        let (failures, unanswered) = {
            let mut ledger = ledger.lock().unwrap();
            (
                std::mem::take(&mut ledger.failures),
                std::mem::take(&mut ledger.unanswered),
            )
        };
        for (sent, rpc) in unanswered {
            match rpc {
                _ if sent >= killed => {}
                "Create" => creates_cut_off += 1,
                _ => registers_cut_off += 1,
            }
        }
        assert!(
            failures.is_empty(),
            "cycle {cycle} (seed {seed}): answers against the contract:\n{}",
            failures.join("\n")
        );

        let checking = Instant::now();
        let (problems, unanswered) =
            check_acknowledged(&server, seaweed, &place, &ledger, created_since).await;
        created_unanswered.extend(unanswered);
        let checked_in = checking.elapsed();
        assert!(
            problems.is_empty(),
            "after kill {cycle} (seed {seed}, {load:?} of load):\n{}",
            problems.join("\n")
        );
        slowest_start = slowest_start.max(started_in);
        slowest_check = slowest_check.max(checked_in);
        let ledger = ledger.lock().unwrap();
        eprintln!(
            "cycle {cycle}: killed after {load:?} of load, serving again in {started_in:?}, \
             checked in {checked_in:?}; acknowledged so far: {} manifests, {} segments",
            ledger.manifests.len(),
            ledger.streams.iter().map(|s| s.acknowledged).sum::<usize>()
        );
    }

    let ledger = ledger.lock().unwrap();
    eprintln!(
        "{CYCLES} kills in {:?}: {} manifests and {} Registers acknowledged, \
         {creates_cut_off} Creates and {registers_cut_off} Registers in flight at a kill, \
         of which {} Creates and {} Registers were durable; slowest start {slowest_start:?}, \
         slowest check {slowest_check:?}",
        test_started.elapsed(),
        ledger.manifests.len(),
        ledger.registers_acknowledged,
        created_unanswered.len(),
        ledger.batches_stored_unanswered,
    );
    // The load did reach the service in every sense the checks rely on.
    assert!(
        ledger.manifests.len() >= CYCLES,
        "too few Creates acknowledged"
    );
    assert!(
        creates_cut_off > 0 && registers_cut_off > 0,
        "kills cut off {creates_cut_off} Creates and {registers_cut_off} Registers in flight"
    );
}

/// The temporary files of a local store: in their directory, and any that
/// would show in a bucket.
fn temporary_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let in_tmp_dir = dir.ends_with(record_index::storage::TMP_DIR);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if in_tmp_dir || entry.file_name().to_string_lossy().starts_with(".tmp") {
                found.push(path);
            }
        }
    }
    found
}

/// Creates into the local store, killed mid-write: the temporary file a
/// write goes through is gone once the service listens again. Besides what
/// the kills leave, each cycle plants the file a kill between the write
/// and the rename leaves, so every cycle has a leftover to remove.
#[tokio::test]
async fn kills_during_local_store_writes_leave_no_temporary_files() {
    const KILLS: usize = 5;
    let mut server = Server::start(RATE_LIMITS).await;
    let objects = server.data_dir.join("objects");
    let start = recording_start(Duration::from_secs(24 * 3600));
    // Long playlists, so a kill often lands while one is being written.
    let segments = plain_segments(("localhost", "tmp-bucket", "live/cam"), start, 0..3000, 2);
    server
        .client()
        .await
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: "cam".into(),
            segments,
            client_token: String::new(),
        })
        .await
        .expect("register the recording");
    let mut left_by_kills = 0;
    for cycle in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..3 {
            let (mut client, stop) = (server.client().await, stop.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let request = CreateLiveStreamRecordIndexFilesRequest {
                        domain_name: DOMAIN.into(),
                        app_name: APP.into(),
                        stream_name: "cam".into(),
                        oss_endpoint: "localhost".into(),
                        oss_bucket: "tmp-bucket".into(),
                        oss_object: format!("index/{cycle}-{writer}-{n}.m3u8"),
                        start_time: utc_seconds(start - chrono::Duration::seconds(1)),
                        end_time: utc_seconds(start + chrono::Duration::seconds(5990)),
                        ..Default::default()
                    };
                    if client
                        .create_live_stream_record_index_files(request)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    n += 1;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 137 * cycle as u64)).await;
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.await.expect("a writer panicked");
        }
        left_by_kills += temporary_files(&objects).len();
        let planted = objects.join(record_index::storage::TMP_DIR).join(format!(
            "{}-{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&planted, b"#EXTM3U\n").unwrap();
        server.start_again().await;
        let left = temporary_files(&objects);
        assert!(
            left.is_empty(),
            "cycle {cycle}: temporary files remain once the service listens again: {left:?}"
        );
    }
    eprintln!(
        "{KILLS} kills during local store writes left {left_by_kills} temporary files, all removed"
    );
}
