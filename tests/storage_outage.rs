//! Object storage going away under load and coming back, with the service
//! left running: while SeaweedFS is down every Create fails with
//! UNAVAILABLE / `InternalError` within its client's deadline, no manifest
//! is kept for a playlist that was not written, grpc health says
//! NOT_SERVING, nothing panics; once SeaweedFS is back on the same ports
//! and data, Creates succeed again and health says SERVING, without
//! restarting record-index.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::*;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordIndexFileRequest,
    DescribeLiveStreamRecordIndexFilesRequest, RecordInfo, RegisterLiveStreamRecordSegmentsRequest,
    Segment,
};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const SEGMENTS: usize = 60;
const SEGMENT_SECONDS: i64 = 6;
const CREATE_CLIENTS: usize = 3;
/// Each Create's client deadline (`grpc-timeout`).
const DEADLINE: Duration = Duration::from_secs(3);

/// Far above what the load sends.
const RATE_LIMITS: &str = "rate_limits = { CreateLiveStreamRecordIndexFiles = 100000, \
     RegisterLiveStreamRecordSegments = 100000, DescribeLiveStreamRecordIndexFile = 100000, \
     DescribeLiveStreamRecordIndexFiles = 100000, DeleteLiveStreamRecordIndexFiles = 100000, \
     DescribeLiveStreamRecordContent = 100000 }\n";

/// Where the segments and playlists live.
#[derive(Clone)]
struct Place {
    endpoint: String,
    bucket: String,
    stream: String,
    start: DateTime<Utc>,
}

impl Place {
    fn at(&self, i: usize) -> DateTime<Utc> {
        self.start + chrono::Duration::seconds(SEGMENT_SECONDS * i as i64)
    }
}

/// Registers the recording: [`SEGMENTS`] segments of 6 s from `place.start`.
async fn register_recording(client: &mut RecordIndexClient<Channel>, place: &Place) {
    let segments: Vec<Segment> = (0..SEGMENTS)
        .map(|i| Segment {
            oss_endpoint: place.endpoint.clone(),
            oss_bucket: place.bucket.clone(),
            oss_object: format!("rec/{}/{i:03}.ts", place.stream),
            start_time: utc_millis(place.at(i)),
            duration: SEGMENT_SECONDS as f64,
            sequence: i as i64,
            width: MEDIA_WIDTH,
            height: MEDIA_HEIGHT,
            format: "ts".into(),
            size: 1000,
        })
        .collect();
    client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: place.stream.clone(),
            segments,
            client_token: String::new(),
        })
        .await
        .expect("register the recording");
}

/// A Create of segments `first..first + 5` into the playlist `key`.
fn create_request(
    place: &Place,
    first: usize,
    key: &str,
) -> CreateLiveStreamRecordIndexFilesRequest {
    CreateLiveStreamRecordIndexFilesRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        oss_endpoint: place.endpoint.clone(),
        oss_bucket: place.bucket.clone(),
        oss_object: key.into(),
        start_time: utc_seconds(place.at(first)),
        end_time: utc_seconds(place.at(first + 5)),
        ..Default::default()
    }
}

/// One Create of the load and what came of it.
struct Outcome {
    /// Which client sent it.
    client: usize,
    /// The playlist key asked for: unique to the request.
    key: String,
    sent: Instant,
    took: Duration,
    result: Result<RecordInfo, tonic::Status>,
}

/// A client creating playlists of five segments, one after the other with
/// a short pause, each under [`DEADLINE`], until told to stop.
async fn indexer(
    mut client: RecordIndexClient<Channel>,
    place: Place,
    number: usize,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let first = (number * 7 + n) % (SEGMENTS - 5);
        let key = format!("vod/{}/{number}-{n:04}.m3u8", place.stream);
        let mut request = tonic::Request::new(create_request(&place, first, &key));
        request.set_timeout(DEADLINE);
        let sent = Instant::now();
        let result = client
            .create_live_stream_record_index_files(request)
            .await
            .map(|answer| answer.into_inner().record_info.unwrap_or_default());
        let took = sent.elapsed();
        outcomes.lock().unwrap().push(Outcome {
            client: number,
            key,
            sent,
            took,
            result,
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_fail_fast_while_object_storage_is_down_and_recover_by_themselves() {
    // Starting and killing SeaweedFS block; block_in_place lets the load
    // clients go on meanwhile.
    let mut weed = tokio::task::block_in_place(start_private_seaweedfs);
    let bucket = weed.create_bucket().await;
    let (server, log) = Server::start_keeping_log(&format!(
        "{RATE_LIMITS}\n{}",
        weed.endpoint_toml(Addressing::Path)
    ))
    .await;
    let url = server.url();
    await_health(&url, ServingStatus::Serving, Duration::from_secs(30)).await;

    let place = Place {
        endpoint: weed.endpoint_name(Addressing::Path),
        bucket,
        stream: unique_name("outage"),
        start: recording_start(Duration::from_secs(3600)),
    };
    let mut client = server.client().await;
    register_recording(&mut client, &place).await;
    let created_since = Utc::now() - chrono::Duration::seconds(60);

    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for number in 0..CREATE_CLIENTS {
        clients.push(tokio::spawn(indexer(
            server.client().await,
            place.clone(),
            number,
            outcomes.clone(),
            stop.clone(),
        )));
    }

    // The store answers: every client has a Create acknowledged (the first
    // writes to a new bucket can take SeaweedFS a moment).
    let warming = Instant::now();
    loop {
        let warm: BTreeSet<usize> = outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.client)
            .collect();
        if warm.len() == CREATE_CLIENTS {
            break;
        }
        assert!(
            warming.elapsed() < Duration::from_secs(30),
            "not every client had a Create acknowledged within 30 s of SeaweedFS starting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The store goes away: SIGKILL, and its ports refuse connections.
    tokio::task::block_in_place(|| weed.kill());
    let down_since = Instant::now();
    let not_serving_in =
        await_health(&url, ServingStatus::NotServing, Duration::from_secs(12)).await;
    // Long enough for every client to have met the outage a few times.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The store comes back on the same ports and data.
    let restarting = Instant::now();
    let weed_started_in = tokio::task::block_in_place(|| weed.start_again());
    let back_since = Instant::now();
    let recovered_in = loop {
        let recovered = outcomes
            .lock()
            .unwrap()
            .iter()
            .any(|o| o.sent >= back_since && o.result.is_ok());
        if recovered {
            break back_since.elapsed();
        }
        assert!(
            back_since.elapsed() < Duration::from_secs(30),
            "no Create succeeded within 30 s of SeaweedFS taking writes again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let serving_in = await_health(&url, ServingStatus::Serving, Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("a load client panicked");
    }

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let mut acknowledged = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let (mut before, mut during, mut after) = (0, 0, 0);
    for outcome in &outcomes {
        let key = &outcome.key;
        // Every answer is the service's own, within the client's deadline.
        assert!(
            outcome.took < DEADLINE,
            "Create {key} answered after {:?}, past its {DEADLINE:?} deadline: {:?}",
            outcome.took,
            outcome.result
        );
        let answered = outcome.sent + outcome.took;
        let while_down = outcome.sent >= down_since && answered <= restarting;
        match &outcome.result {
            Ok(info) => {
                assert!(
                    !while_down,
                    "Create {key} succeeded while SeaweedFS was down: {info:?}"
                );
                assert_eq!(&info.oss_object, key);
                acknowledged.insert(info.record_id.clone());
                if outcome.sent >= back_since {
                    after += 1;
                } else {
                    before += 1;
                }
            }
            Err(status) if while_down => {
                assert_error(status, Code::Unavailable, "InternalError");
                refused.insert(key.clone());
                during += 1;
            }
            Err(status) => {
                // Around the kill and while SeaweedFS starts, the store may
                // also answer with a failure: INTERNAL then.
                assert!(
                    status.get_details_error_info().is_some(),
                    "Create {key} failed without the service's answer: {status:?}"
                );
                let code = if status.code() == Code::Internal {
                    Code::Internal
                } else {
                    Code::Unavailable
                };
                assert_error(status, code, "InternalError");
                refused.insert(key.clone());
            }
        }
    }
    eprintln!(
        "{} Creates: {before} acknowledged before the outage, {during} refused while \
         SeaweedFS was down, {after} acknowledged after; NOT_SERVING {not_serving_in:?} after \
         the kill, SeaweedFS back in {weed_started_in:?}, the first Create succeeding \
         {recovered_in:?} later, SERVING {serving_in:?} after that",
        outcomes.len()
    );
    assert!(before > 0, "no Create succeeded before the outage");
    assert!(
        during >= CREATE_CLIENTS,
        "only {during} Creates met the outage"
    );
    assert!(after > 0, "no Create succeeded after the outage");
    let slowest_refusal = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.took)
        .max()
        .unwrap_or_default();
    eprintln!("slowest refusal: {slowest_refusal:?}");

    // The catalog holds exactly the acknowledged manifests, each with its
    // playlist in the store.
    let mut listed = BTreeSet::new();
    let mut page = 1;
    loop {
        let answer = client
            .describe_live_stream_record_index_files(DescribeLiveStreamRecordIndexFilesRequest {
                domain_name: DOMAIN.into(),
                app_name: APP.into(),
                stream_name: place.stream.clone(),
                start_time: utc_seconds(created_since),
                end_time: utc_seconds(Utc::now() + chrono::Duration::seconds(60)),
                page_num: page,
                page_size: 30,
                order: "asc".into(),
            })
            .await
            .expect("list the stream's manifests")
            .into_inner();
        for info in answer.record_index_info_list {
            assert!(
                !refused.contains(&info.oss_object),
                "a manifest is kept for the refused Create {}: {info:?}",
                info.oss_object
            );
            let playlist = weed.object_url(&place.bucket, &info.oss_object);
            let response = http_get(&playlist).await;
            assert_eq!(
                response.status,
                200,
                "manifest {} has no playlist at {playlist}: {}",
                info.record_id,
                response.text()
            );
            assert!(
                Playlist::parse(&response.text()).has_line("#EXT-X-ENDLIST"),
                "{}",
                response.text()
            );
            listed.insert(info.record_id);
        }
        if page >= answer.total_page {
            break;
        }
        page += 1;
    }
    assert_eq!(
        listed, acknowledged,
        "the manifests listed are not those whose Create was acknowledged"
    );

    let panics = log.matching("panicked");
    assert!(
        panics.is_empty(),
        "record-index panicked:\n{}",
        panics.join("\n")
    );
}

/// Manifests acknowledged just before the service is killed, with object
/// storage going down at the same time: started again while the store is
/// still down, the service cannot yet tell which staged manifests had their
/// playlists written, but it must not deny one it acknowledged. Each is
/// described as created, or refused as UNAVAILABLE for now; none is
/// `InvalidRecordId.NotFound`, and all are described once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_during_an_outage_does_not_deny_acknowledged_manifests() {
    let mut weed = tokio::task::block_in_place(start_private_seaweedfs);
    let bucket = weed.create_bucket().await;
    let mut server = Server::start(&format!(
        "{RATE_LIMITS}\n{}",
        weed.endpoint_toml(Addressing::Path)
    ))
    .await;
    let place = Place {
        endpoint: weed.endpoint_name(Addressing::Path),
        bucket,
        stream: unique_name("restart"),
        start: recording_start(Duration::from_secs(3600)),
    };
    let mut client = server.client().await;
    register_recording(&mut client, &place).await;
    // The first writes to a new bucket can take SeaweedFS a moment.
    client
        .create_live_stream_record_index_files(create_request(&place, 0, "vod/warm-up.m3u8"))
        .await
        .expect("a first Create");

    // A burst of Creates, all acknowledged, and SIGKILL as the last answer
    // arrives.
    let creates = (0..20).map(|n| {
        let mut client = client.clone();
        let request = create_request(&place, n, &format!("vod/{}/{n:02}.m3u8", place.stream));
        async move { client.create_live_stream_record_index_files(request).await }
    });
    let acknowledged: Vec<RecordInfo> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|answer| {
            answer
                .expect("Create while the store answers")
                .into_inner()
                .record_info
                .unwrap()
        })
        .collect();
    server.kill();
    tokio::task::block_in_place(|| weed.kill());
    server.start_again().await;

    let describe = |info: &RecordInfo| DescribeLiveStreamRecordIndexFileRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: place.stream.clone(),
        record_id: info.record_id.clone(),
    };
    let mut client = server.client().await;
    let mut denied = Vec::new();
    let mut deferred = 0;
    for info in &acknowledged {
        match client
            .describe_live_stream_record_index_file(describe(info))
            .await
        {
            Ok(answer) => assert_eq!(answer.into_inner().record_index_info.as_ref(), Some(info)),
            Err(status) if status.code() == Code::Unavailable => {
                assert_error(&status, Code::Unavailable, "InternalError");
                deferred += 1;
            }
            Err(status) => denied.push(format!(
                "{} ({}): {:?} {}",
                info.record_id,
                info.oss_object,
                status.code(),
                status.message()
            )),
        }
    }

    // Once the store is back, every acknowledged manifest is described.
    let weed_started_in = tokio::task::block_in_place(|| weed.start_again());
    let back = Instant::now();
    let mut missing = acknowledged.clone();
    while !missing.is_empty() {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "{} acknowledged manifests still not described 30 s after SeaweedFS came back: {:?}",
            missing.len(),
            missing.iter().map(|i| &i.record_id).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut still = Vec::new();
        for info in missing {
            match client
                .describe_live_stream_record_index_file(describe(&info))
                .await
            {
                Ok(answer) => {
                    assert_eq!(answer.into_inner().record_index_info.as_ref(), Some(&info))
                }
                Err(_) => still.push(info),
            }
        }
        missing = still;
    }
    eprintln!(
        "of {} acknowledged manifests, {deferred} UNAVAILABLE and {} denied while the store was \
         down; SeaweedFS back in {weed_started_in:?}, all described {:?} after that",
        acknowledged.len(),
        denied.len(),
        back.elapsed()
    );
    assert!(
        denied.is_empty(),
        "started again during the outage, the service denies manifests it acknowledged:\n{}",
        denied.join("\n")
    );
}
