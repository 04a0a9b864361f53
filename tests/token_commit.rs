//! A request's ClientToken answer is committed with the records it adds,
//! in one durable step: the `record-index` binary is stopped (abort, as a
//! kill -9) right after a Create's or a Register's commit, before its
//! answer leaves, and the retry with the same token gets the first answer
//! instead of doing the work again.
//!
//! The stop comes from the fault point debug builds have
//! (`RECORD_INDEX_FAULT`), set for the server process only. The test runs
//! on each catalog engine (`on_sled::`, `on_postgres::`): the answer and
//! the records must be one commit in either.

mod common;

use std::time::Duration;

use common::*;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordIndexFilesRequest,
    RegisterLiveStreamRecordSegmentsRequest, Segment,
};

const FAULT_ENV: &str = "RECORD_INDEX_FAULT";

fn segments(start: chrono::DateTime<chrono::Utc>, first: i64, count: i64) -> Vec<Segment> {
    let place = ("localhost", "token-bucket", "live/cam");
    plain_segments(place, start, first..first + count, 6)
}

/// A Register of `segments` for live/cam that a client sends again with
/// the same ClientToken.
fn retried_register(segments: Vec<Segment>) -> RegisterLiveStreamRecordSegmentsRequest {
    RegisterLiveStreamRecordSegmentsRequest {
        client_token: "register-retry-1".into(),
        ..register_request("cam", segments)
    }
}

/// Starts the server again after the fault stopped it, without the fault.
async fn start_after_fault(server: &mut Server) {
    server.kill();
    server.set_env(FAULT_ENV, None);
    server.start_again().await;
}

on_both_engines!(a_retry_after_a_stop_right_after_the_commit_gets_the_first_answer);

async fn a_retry_after_a_stop_right_after_the_commit_gets_the_first_answer(engine: Engine) {
    let start = recording_start(Duration::from_secs(3600));

    let fault = [(FAULT_ENV, "after-commit:register")];
    let mut server = Server::start_on_with_env(engine, "", &fault).await;
    let mut client = server.client().await;
    let cut_off = client
        .register_live_stream_record_segments(retried_register(segments(start, 0, 5)))
        .await;
    assert!(
        cut_off.is_err(),
        "the fault did not stop the server: {cut_off:?}"
    );
    start_after_fault(&mut server).await;
    let mut client = server.client().await;
    let retried = client
        .register_live_stream_record_segments(retried_register(segments(start, 0, 5)))
        .await
        .expect("the retried Register")
        .into_inner();
    // The first answer: had the commit kept the segments without the
    // answer, the retry would count them as duplicates.
    assert_eq!((retried.accepted, retried.duplicates), (5, 0));

    server.kill();
    server.set_env(FAULT_ENV, Some("after-commit:create"));
    server.start_again().await;
    let mut client = server.client().await;
    let create = CreateLiveStreamRecordIndexFilesRequest {
        client_token: "create-retry-1".into(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "cam".into(),
        oss_endpoint: "localhost".into(),
        oss_bucket: "token-bucket".into(),
        oss_object: "live/cam/{RecordId}.m3u8".into(),
        start_time: utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: utc_seconds(start + chrono::Duration::seconds(29)),
        ..Default::default()
    };
    let cut_off = client
        .create_live_stream_record_index_files(create.clone())
        .await;
    assert!(
        cut_off.is_err(),
        "the fault did not stop the server: {cut_off:?}"
    );
    start_after_fault(&mut server).await;
    let mut client = server.client().await;
    let retried = client
        .create_live_stream_record_index_files(create.clone())
        .await
        .expect("the retried Create")
        .into_inner()
        .record_info
        .expect("RecordInfo");
    let again = client
        .create_live_stream_record_index_files(create)
        .await
        .expect("a second retry")
        .into_inner()
        .record_info
        .expect("RecordInfo");
    assert_eq!(retried, again);
    let now = chrono::Utc::now();
    let listed = client
        .describe_live_stream_record_index_files(DescribeLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            start_time: utc_seconds(now - chrono::Duration::minutes(10)),
            end_time: utc_seconds(now + chrono::Duration::minutes(1)),
            page_size: 30,
            ..Default::default()
        })
        .await
        .expect("DescribeFiles")
        .into_inner();
    let ids: Vec<&str> = listed
        .record_index_info_list
        .iter()
        .map(|info| info.record_id.as_str())
        .collect();
    assert_eq!(
        ids,
        vec![retried.record_id.as_str()],
        "one manifest, the first"
    );
    let playlist = server
        .data_dir
        .join("objects/token-bucket")
        .join(&retried.oss_object);
    assert!(playlist.is_file(), "{} is missing", playlist.display());
}
