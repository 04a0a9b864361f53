//! What happens to a manifest after CreateLiveStreamRecordIndexFiles, through
//! the real gRPC server: reading it back one by one and page by page,
//! deleting it (with and without its playlist), the recorded spans of a
//! stream, retention of manifests, segments and ClientTokens, and the
//! background sweeper. Most tests run the server in this process on
//! 127.0.0.1:0 with a clock the test controls and the local directory store,
//! once with each catalog engine (`on_sled::`, `on_postgres::`); the tests
//! against S3 run the `record-index` binary with SeaweedFS.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DeleteLiveStreamRecordIndexFilesRequest,
    DeleteLiveStreamRecordIndexFilesResponse, DescribeLiveStreamRecordContentRequest,
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest,
    DescribeLiveStreamRecordIndexFilesResponse, RecordContentInfo, RecordInfo,
    RegisterLiveStreamRecordSegmentsRequest, RegisterLiveStreamRecordSegmentsResponse, Segment,
};
use sha2::Digest;
use tonic::Code;
use tonic::transport::Channel;

use common::{
    Engine, InProcess, NOW, at, back_to_back, create_request, register_request, segment_at,
    with_key,
};

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const BUCKET: &str = "rec-bucket";

/// Far above anything these tests send in a burst, so no request is
/// throttled by the per-account limits.
const RATE_LIMITS: &str = "rate_limits = { CreateLiveStreamRecordIndexFiles = 10000, \
     RegisterLiveStreamRecordSegments = 10000, DescribeLiveStreamRecordIndexFile = 10000, \
     DescribeLiveStreamRecordIndexFiles = 10000, DeleteLiveStreamRecordIndexFiles = 10000, \
     DescribeLiveStreamRecordContent = 10000 }\n";

// Every test of the server in this process is about what the catalog keeps,
// so each runs on sled and on PostgreSQL.
on_both_engines!(
    describe_returns_what_create_returned,
    describe_is_not_found_for_ids_that_are_not_the_streams,
    a_manifest_expires_180_days_after_its_creation,
    listing_walks_every_manifest_once_in_creation_order,
    listing_defaults_and_parameter_errors,
    listing_is_per_stream,
    delete_reports_each_id_in_request_order,
    delete_takes_1_to_20_ids,
    delete_with_remove_file_removes_the_local_playlist,
    deleting_a_manifest_in_a_bucket_of_another_account_is_access_denied,
    content_lists_continuous_spans,
    content_includes_segments_overlapping_the_range,
    content_rejects_bad_ranges_and_unknown_streams,
    content_span_gap_is_configurable,
    segments_expire_90_days_after_their_start_for_create_and_content,
    the_sweeper_reclaims_expired_records,
    without_a_sweep_expired_records_are_only_hidden,
    a_create_retried_with_its_token_returns_the_first_answer,
    concurrent_creates_with_one_token_make_one_manifest(
        flavor = "multi_thread",
        worker_threads = 2
    ),
    a_token_is_kept_for_24_hours,
    a_token_used_again_after_24_hours_keeps_its_new_answer,
    malformed_tokens_are_invalid_params,
    a_register_retried_with_its_token_returns_the_first_answer,
);

// ---------------------------------------------------------------------------
// The server and its clients
// ---------------------------------------------------------------------------

/// A client of the server, acting with one API key (or none in local mode).
#[derive(Clone)]
struct Client {
    grpc: RecordIndexClient<Channel>,
    key: Option<&'static str>,
}

struct Harness {
    server: InProcess,
    /// Acts with no key, as in local mode.
    client: Client,
}

/// Starts the server in this process with the local store, its catalog on
/// `engine`, generous rate limits and `extra_config`, its clock at NOW.
async fn start(engine: Engine, extra_config: &str) -> Harness {
    let server = InProcess::start_on(engine, &format!("{RATE_LIMITS}{extra_config}")).await;
    let client = Client {
        grpc: server.client.clone(),
        key: None,
    };
    Harness { server, client }
}

impl Harness {
    /// Stops the server and starts it again on the same data directory,
    /// with the clock where it is now.
    async fn restart(&mut self) {
        self.server.restart().await;
        self.client.grpc = self.server.client.clone();
    }

    fn with_key(&self, key: &'static str) -> Client {
        Client {
            grpc: self.client.grpc.clone(),
            key: Some(key),
        }
    }

    fn playlist_path(&self, info: &RecordInfo) -> PathBuf {
        self.server.playlist_path(info)
    }
}

impl Client {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        match self.key {
            Some(key) => with_key(key, message),
            None => tonic::Request::new(message),
        }
    }

    async fn register_request(
        &mut self,
        request: RegisterLiveStreamRecordSegmentsRequest,
    ) -> Result<RegisterLiveStreamRecordSegmentsResponse, tonic::Status> {
        let request = self.request(request);
        self.grpc
            .register_live_stream_record_segments(request)
            .await
            .map(|r| r.into_inner())
    }

    async fn register(&mut self, stream: &str, segments: Vec<Segment>) {
        let count = segments.len() as i32;
        let answer = self
            .register_request(register_request(stream, segments))
            .await
            .unwrap();
        assert_eq!((answer.accepted, answer.duplicates), (count, 0));
    }

    async fn create(
        &mut self,
        request: CreateLiveStreamRecordIndexFilesRequest,
    ) -> Result<RecordInfo, tonic::Status> {
        let request = self.request(request);
        self.grpc
            .create_live_stream_record_index_files(request)
            .await
            .map(|r| r.into_inner().record_info.expect("RecordInfo"))
    }

    async fn describe_request(
        &mut self,
        request: DescribeLiveStreamRecordIndexFileRequest,
    ) -> Result<RecordInfo, tonic::Status> {
        let request = self.request(request);
        let response = self
            .grpc
            .describe_live_stream_record_index_file(request)
            .await?;
        let header = common::request_id(response.metadata());
        let body = response.into_inner();
        assert_eq!(body.request_id, header);
        Ok(body.record_index_info.expect("RecordIndexInfo"))
    }

    async fn describe(
        &mut self,
        stream: &str,
        record_id: &str,
    ) -> Result<RecordInfo, tonic::Status> {
        self.describe_request(describe_request(stream, record_id))
            .await
    }

    async fn list_request(
        &mut self,
        request: DescribeLiveStreamRecordIndexFilesRequest,
    ) -> Result<DescribeLiveStreamRecordIndexFilesResponse, tonic::Status> {
        let request = self.request(request);
        let response = self
            .grpc
            .describe_live_stream_record_index_files(request)
            .await?;
        let header = common::request_id(response.metadata());
        let body = response.into_inner();
        assert_eq!(body.request_id, header);
        Ok(body)
    }

    /// The whole first page (30) of a stream's manifests created in
    /// [start, end] seconds after NOW, oldest first.
    async fn list_all(
        &mut self,
        stream: &str,
        start: i64,
        end: i64,
    ) -> DescribeLiveStreamRecordIndexFilesResponse {
        let mut request = list_request(stream, start, end);
        request.page_size = 30;
        self.list_request(request).await.unwrap()
    }

    async fn delete(
        &mut self,
        stream: &str,
        record_ids: &[&str],
        remove_file: bool,
    ) -> Result<DeleteLiveStreamRecordIndexFilesResponse, tonic::Status> {
        let request = self.request(delete_request(stream, record_ids, remove_file));
        let response = self
            .grpc
            .delete_live_stream_record_index_files(request)
            .await?;
        let header = common::request_id(response.metadata());
        let body = response.into_inner();
        assert_eq!(body.request_id, header);
        Ok(body)
    }

    async fn content_request(
        &mut self,
        request: DescribeLiveStreamRecordContentRequest,
    ) -> Result<Vec<RecordContentInfo>, tonic::Status> {
        let request = self.request(request);
        let response = self
            .grpc
            .describe_live_stream_record_content(request)
            .await?;
        let header = common::request_id(response.metadata());
        let body = response.into_inner();
        assert_eq!(body.request_id, header);
        Ok(body.record_content_info_list)
    }

    async fn content(
        &mut self,
        stream: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<RecordContentInfo>, tonic::Status> {
        self.content_request(content_request(stream, &at(start), &at(end)))
            .await
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

fn describe_request(stream: &str, record_id: &str) -> DescribeLiveStreamRecordIndexFileRequest {
    DescribeLiveStreamRecordIndexFileRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        record_id: record_id.into(),
    }
}

/// A listing of manifests created in [start, end] seconds after NOW, with
/// PageNum, PageSize and Order left to their defaults.
fn list_request(stream: &str, start: i64, end: i64) -> DescribeLiveStreamRecordIndexFilesRequest {
    DescribeLiveStreamRecordIndexFilesRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        start_time: at(start),
        end_time: at(end),
        page_num: 0,
        page_size: 0,
        order: String::new(),
    }
}

fn delete_request(
    stream: &str,
    record_ids: &[&str],
    remove_file: bool,
) -> DeleteLiveStreamRecordIndexFilesRequest {
    DeleteLiveStreamRecordIndexFilesRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        record_id: record_ids.iter().map(|id| id.to_string()).collect(),
        remove_file,
    }
}

fn content_request(stream: &str, start: &str, end: &str) -> DescribeLiveStreamRecordContentRequest {
    DescribeLiveStreamRecordContentRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        start_time: start.into(),
        end_time: end.into(),
    }
}

/// The per-id outcomes of a Delete, as (RecordId, Message) pairs.
fn outcomes(answer: &DeleteLiveStreamRecordIndexFilesResponse) -> Vec<(String, String)> {
    answer
        .record_delete_info_list
        .iter()
        .map(|info| (info.record_id.clone(), info.message.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(id, message)| (id.to_string(), message.to_string()))
        .collect()
}

fn span(
    start: &str,
    end: &str,
    duration: f64,
    bucket: &str,
    object_prefix: &str,
) -> RecordContentInfo {
    RecordContentInfo {
        start_time: start.into(),
        end_time: end.into(),
        duration,
        oss_endpoint: "localhost".into(),
        oss_bucket: bucket.into(),
        oss_object_prefix: object_prefix.into(),
    }
}

fn expect_not_found(result: Result<RecordInfo, tonic::Status>) {
    let status = result.expect_err("the manifest must not be found");
    common::assert_error(&status, Code::NotFound, "InvalidRecordId.NotFound");
}

// ---------------------------------------------------------------------------
// DescribeLiveStreamRecordIndexFile
// ---------------------------------------------------------------------------

async fn describe_returns_what_create_returned(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let created = h
        .client
        .create(create_request("s1", -588, -558))
        .await
        .unwrap();
    let mut other_bucket = create_request("s1", -600, -540);
    other_bucket.oss_bucket = "playlists".into();
    other_bucket.oss_object = "{StreamName}/{EscapedStartTime}.m3u8".into();
    other_bucket.end_time_included = true;
    h.server.clock.set(NOW + 7 * SECOND + 250_000);
    let second = h.client.create(other_bucket).await.unwrap();

    let found = h.client.describe("s1", &created.record_id).await.unwrap();
    assert_eq!(found, created);
    assert_eq!(found.create_time, at(0));
    assert_eq!(
        (found.width, found.height, found.duration),
        (640, 360, 30.0)
    );
    let found = h.client.describe("s1", &second.record_id).await.unwrap();
    assert_eq!(found, second);
    assert_eq!(found.create_time, at(7));
    assert_eq!(found.oss_object, "s1/2026-11-19-11-50-00.m3u8");
    assert_eq!(found.oss_bucket, "playlists");
    assert_eq!(found.duration, 60.0);
}

async fn describe_is_not_found_for_ids_that_are_not_the_streams(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    h.client.register("s2", back_to_back("s2", 10)).await;
    let info = h
        .client
        .create(create_request("s1", -588, -558))
        .await
        .unwrap();
    let other = h
        .client
        .create(create_request("s2", -588, -558))
        .await
        .unwrap();

    expect_not_found(
        h.client
            .describe("s1", &uuid::Uuid::new_v4().to_string())
            .await,
    );
    for malformed in ["not-a-uuid", "1234", &format!("{}x", info.record_id)] {
        expect_not_found(h.client.describe("s1", malformed).await);
    }
    // A manifest of another stream, also under another app or domain.
    expect_not_found(h.client.describe("s1", &other.record_id).await);
    expect_not_found(h.client.describe("s2", &info.record_id).await);
    let mut other_app = describe_request("s1", &info.record_id);
    other_app.app_name = "live2".into();
    expect_not_found(h.client.describe_request(other_app).await);
    let mut other_domain = describe_request("s1", &info.record_id);
    other_domain.domain_name = "example.org".into();
    expect_not_found(h.client.describe_request(other_domain).await);
    // The right stream still finds both.
    assert_eq!(
        h.client.describe("s1", &info.record_id).await.unwrap(),
        info
    );
    assert_eq!(
        h.client.describe("s2", &other.record_id).await.unwrap(),
        other
    );

    // RecordId is required.
    let status = h.client.describe("s1", "").await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");

    // A deleted manifest.
    let deleted = h
        .client
        .delete("s1", &[&info.record_id], false)
        .await
        .unwrap();
    assert_eq!(outcomes(&deleted), pairs(&[(&info.record_id, "OK")]));
    expect_not_found(h.client.describe("s1", &info.record_id).await);
}

async fn a_manifest_expires_180_days_after_its_creation(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let info = h
        .client
        .create(create_request("s1", -588, -558))
        .await
        .unwrap();
    let expiry = NOW + 180 * DAY;
    h.server.clock.set(expiry - 1);
    assert_eq!(
        h.client.describe("s1", &info.record_id).await.unwrap(),
        info
    );
    h.server.clock.set(expiry);
    expect_not_found(h.client.describe("s1", &info.record_id).await);
    h.server.clock.set(expiry + 30 * DAY);
    expect_not_found(h.client.describe("s1", &info.record_id).await);
    // An expired manifest cannot be deleted either.
    let answer = h
        .client
        .delete("s1", &[&info.record_id], false)
        .await
        .unwrap();
    assert_eq!(
        outcomes(&answer),
        pairs(&[(&info.record_id, "FileNotFound")])
    );
}

// ---------------------------------------------------------------------------
// DescribeLiveStreamRecordIndexFiles
// ---------------------------------------------------------------------------

/// Registers s1 and creates 23 manifests of it, two at a time at the same
/// instant and three seconds apart (offsets 0, 0, 3, 3, ... 30, 30, 33),
/// plus two manifests of s2; returns s1's (creation offset, RecordInfo).
async fn many_manifests(h: &mut Harness) -> Vec<(i64, RecordInfo)> {
    h.client.register("s1", back_to_back("s1", 10)).await;
    h.client.register("s2", back_to_back("s2", 10)).await;
    let mut created = Vec::new();
    for i in 0..23 {
        let offset = (i / 2) * 3;
        h.server.clock.set(NOW + offset * SECOND);
        let info = h
            .client
            .create(create_request("s1", -600, -540))
            .await
            .unwrap();
        assert_eq!(info.create_time, at(offset));
        created.push((offset, info));
        if i == 10 {
            for _ in 0..2 {
                h.client
                    .create(create_request("s2", -600, -540))
                    .await
                    .unwrap();
            }
        }
    }
    h.server.clock.set(NOW + 60 * SECOND);
    created
}

async fn listing_walks_every_manifest_once_in_creation_order(engine: Engine) {
    let mut h = start(engine, "").await;
    let created = many_manifests(&mut h).await;
    let offset_of = |id: &str| {
        created
            .iter()
            .find(|(_, info)| info.record_id == id)
            .unwrap_or_else(|| panic!("{id} was not created for s1"))
            .0
    };

    let mut walks = Vec::new();
    for order in ["asc", "desc"] {
        let mut walked: Vec<RecordInfo> = Vec::new();
        for page in 1..=6 {
            let mut request = list_request("s1", -10, 600);
            request.page_num = page;
            request.page_size = 5;
            request.order = order.into();
            let answer = h.client.list_request(request).await.unwrap();
            assert_eq!(
                (
                    answer.page_num,
                    answer.page_size,
                    answer.order.as_str(),
                    answer.total_num,
                    answer.total_page
                ),
                (page, 5, order, 23, 5),
                "page {page} {order}"
            );
            let expected_len = match page {
                1..=4 => 5,
                5 => 3,
                _ => 0,
            };
            assert_eq!(answer.record_index_info_list.len(), expected_len);
            walked.extend(answer.record_index_info_list);
        }
        // Each manifest once, exactly as Create returned it.
        assert_eq!(walked.len(), 23);
        for (_, info) in &created {
            let copies: Vec<&RecordInfo> = walked
                .iter()
                .filter(|w| w.record_id == info.record_id)
                .collect();
            assert_eq!(copies, vec![info], "{order}");
        }
        let offsets: Vec<i64> = walked.iter().map(|w| offset_of(&w.record_id)).collect();
        let mut sorted = offsets.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
        }
        assert_eq!(offsets, sorted, "{order} follows creation time");
        walks.push(walked);
    }
    let mut reversed = walks[1].clone();
    reversed.reverse();
    assert_eq!(walks[0], reversed, "desc is asc backwards");

    // Both ends of the range are inclusive: offsets 3 to 9 hold six.
    let mut request = list_request("s1", 3, 9);
    request.page_size = 5;
    let answer = h.client.list_request(request.clone()).await.unwrap();
    assert_eq!((answer.total_num, answer.total_page), (6, 2));
    request.page_num = 2;
    let second = h.client.list_request(request).await.unwrap();
    let listed: Vec<i64> = answer
        .record_index_info_list
        .iter()
        .chain(&second.record_index_info_list)
        .map(|info| offset_of(&info.record_id))
        .collect();
    assert_eq!(listed, vec![3, 3, 6, 6, 9, 9]);

    // One page of 30 holds all.
    let all = h.client.list_all("s1", -10, 600).await;
    assert_eq!((all.total_num, all.total_page), (23, 1));
    assert_eq!(all.record_index_info_list, walks[0]);
}

async fn listing_defaults_and_parameter_errors(engine: Engine) {
    let mut h = start(engine, "").await;
    let created = many_manifests(&mut h).await;

    let answer = h
        .client
        .list_request(list_request("s1", -10, 600))
        .await
        .unwrap();
    assert_eq!(
        (
            answer.page_num,
            answer.page_size,
            answer.order.as_str(),
            answer.total_num,
            answer.total_page
        ),
        (1, 10, "asc", 23, 3)
    );
    assert_eq!(answer.record_index_info_list.len(), 10);
    let all = h.client.list_all("s1", -10, 600).await;
    assert_eq!(
        answer.record_index_info_list,
        all.record_index_info_list[..10]
    );
    // PageSize 5 and 30 are the bounds.
    for size in [5, 30] {
        let mut request = list_request("s1", -10, 600);
        request.page_size = size;
        let answer = h.client.list_request(request).await.unwrap();
        assert_eq!(answer.page_size, size);
        assert_eq!(answer.record_index_info_list.len(), (size as usize).min(23));
    }

    type Edit = Box<dyn Fn(&mut DescribeLiveStreamRecordIndexFilesRequest)>;
    let invalid: Vec<Edit> = vec![
        Box::new(|r| r.page_size = 4),
        Box::new(|r| r.page_size = 31),
        Box::new(|r| r.page_size = -5),
        Box::new(|r| r.page_num = -1),
        Box::new(|r| r.order = "up".into()),
        Box::new(|r| r.start_time.clear()),
        Box::new(|r| r.end_time.clear()),
        Box::new(|r| r.stream_name.clear()),
        Box::new(|r| r.stream_name = "s*".into()),
    ];
    for edit in invalid {
        let mut request = list_request("s1", -10, 600);
        edit(&mut request);
        let status = h.client.list_request(request.clone()).await.unwrap_err();
        common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    }

    let mut request = list_request("s1", -10, 600);
    request.start_time = "2026-11-19 12:00:00".into();
    let status = h.client.list_request(request).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Malformed");
    let mut request = list_request("s1", -10, 600);
    request.end_time = "2026-11-19T12:10:00.000Z".into();
    let status = h.client.list_request(request).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Malformed");

    // The clock is at NOW + 60 s. At most four days between the ends.
    let status = h
        .client
        .list_request(list_request("s1", -10, 4 * 86_400 - 9))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Mismatch");
    let four_days = h
        .client
        .list_request(list_request("s1", -10, 4 * 86_400 - 10))
        .await
        .unwrap();
    assert_eq!(four_days.total_num, 23);
    // StartTime not in the future, EndTime after StartTime.
    let status = h
        .client
        .list_request(list_request("s1", 61, 600))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Mismatch");
    let status = h
        .client
        .list_request(list_request("s1", -10, -10))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Mismatch");
    // At most 180 days back.
    let oldest = 60 - 180 * 86_400;
    let status = h
        .client
        .list_request(list_request("s1", oldest - 1, oldest + 600))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Mismatch");
    let old = h
        .client
        .list_request(list_request("s1", oldest, oldest + 600))
        .await
        .unwrap();
    assert_eq!((old.total_num, old.total_page), (0, 0));
    assert!(old.record_index_info_list.is_empty());
    assert_eq!(created.len(), 23);
}

async fn listing_is_per_stream(engine: Engine) {
    let mut h = start(engine, "").await;
    let created = many_manifests(&mut h).await;
    let s1 = h.client.list_all("s1", -10, 600).await;
    assert_eq!(s1.total_num, 23);
    let s2 = h.client.list_all("s2", -10, 600).await;
    assert_eq!((s2.total_num, s2.total_page), (2, 1));
    assert_eq!(s2.record_index_info_list.len(), 2);
    for info in &s2.record_index_info_list {
        assert_eq!(info.stream_name, "s2");
        assert!(created.iter().all(|(_, c)| c.record_id != info.record_id));
    }
    // Another app of the same stream name, and a stream never registered.
    let mut other_app = list_request("s1", -10, 600);
    other_app.app_name = "live2".into();
    let none = h.client.list_request(other_app).await.unwrap();
    assert_eq!((none.total_num, none.total_page), (0, 0));
    let mut unknown = list_request("nobody", -10, 600);
    unknown.page_num = 3;
    unknown.page_size = 7;
    unknown.order = "desc".into();
    let none = h.client.list_request(unknown).await.unwrap();
    assert_eq!(
        (
            none.total_num,
            none.total_page,
            none.page_num,
            none.page_size,
            none.order.as_str()
        ),
        (0, 0, 3, 7, "desc")
    );
    assert!(none.record_index_info_list.is_empty());
}

// ---------------------------------------------------------------------------
// DeleteLiveStreamRecordIndexFiles
// ---------------------------------------------------------------------------

async fn delete_reports_each_id_in_request_order(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    h.client.register("s2", back_to_back("s2", 10)).await;
    let a = h
        .client
        .create(create_request("s1", -600, -570))
        .await
        .unwrap();
    let b = h
        .client
        .create(create_request("s1", -570, -540))
        .await
        .unwrap();
    let other = h
        .client
        .create(create_request("s2", -600, -570))
        .await
        .unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();

    let answer = h
        .client
        .delete("s1", &[&a.record_id, &unknown, &other.record_id], false)
        .await
        .unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.message.as_str()),
        ("OK", "OK")
    );
    assert_eq!(
        outcomes(&answer),
        pairs(&[
            (&a.record_id, "OK"),
            (&unknown, "FileNotFound"),
            (&other.record_id, "FileNotFound"),
        ])
    );
    expect_not_found(h.client.describe("s1", &a.record_id).await);
    assert_eq!(h.client.describe("s1", &b.record_id).await.unwrap(), b);
    assert_eq!(
        h.client.describe("s2", &other.record_id).await.unwrap(),
        other
    );
    let listed = h.client.list_all("s1", -10, 600).await;
    assert_eq!(listed.total_num, 1);
    assert_eq!(listed.record_index_info_list, vec![b.clone()]);
    // Without RemoveFile the playlist stays.
    assert!(h.playlist_path(&a).is_file());

    // Deleted ids, malformed ids and repeats: each has its own outcome.
    let answer = h
        .client
        .delete(
            "s1",
            &[&a.record_id, "not-a-uuid", &b.record_id, &b.record_id],
            false,
        )
        .await
        .unwrap();
    assert_eq!(answer.code, "OK");
    assert_eq!(
        outcomes(&answer),
        pairs(&[
            (&a.record_id, "FileNotFound"),
            ("not-a-uuid", "FileNotFound"),
            (&b.record_id, "OK"),
            (&b.record_id, "FileNotFound"),
        ])
    );
    assert_eq!(h.client.list_all("s1", -10, 600).await.total_num, 0);
}

async fn delete_takes_1_to_20_ids(engine: Engine) {
    let mut h = start(engine, "").await;
    let status = h.client.delete("s1", &[], false).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    let ids: Vec<String> = (0..21).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let status = h.client.delete("s1", &refs, false).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    let answer = h.client.delete("s1", &refs[..20], true).await.unwrap();
    assert_eq!(answer.code, "OK");
    assert_eq!(
        outcomes(&answer),
        refs[..20]
            .iter()
            .map(|id| (id.to_string(), "FileNotFound".to_string()))
            .collect::<Vec<_>>()
    );
    let mut request = delete_request("", &refs[..1], false);
    request.stream_name.clear();
    let status = h
        .client
        .grpc
        .delete_live_stream_record_index_files(request)
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
}

async fn delete_with_remove_file_removes_the_local_playlist(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let kept = h
        .client
        .create(create_request("s1", -600, -570))
        .await
        .unwrap();
    let removed = h
        .client
        .create(create_request("s1", -570, -540))
        .await
        .unwrap();
    assert!(h.playlist_path(&kept).is_file());
    assert!(h.playlist_path(&removed).is_file());
    let answer = h
        .client
        .delete("s1", &[&removed.record_id], true)
        .await
        .unwrap();
    assert_eq!(outcomes(&answer), pairs(&[(&removed.record_id, "OK")]));
    assert!(!h.playlist_path(&removed).exists());
    let answer = h
        .client
        .delete("s1", &[&kept.record_id], false)
        .await
        .unwrap();
    assert_eq!(outcomes(&answer), pairs(&[(&kept.record_id, "OK")]));
    assert!(h.playlist_path(&kept).is_file());
    expect_not_found(h.client.describe("s1", &kept.record_id).await);
    expect_not_found(h.client.describe("s1", &removed.record_id).await);
    // A playlist already gone from storage does not fail the request.
    let again = h
        .client
        .create(create_request("s1", -570, -540))
        .await
        .unwrap();
    std::fs::remove_file(h.playlist_path(&again)).unwrap();
    let answer = h
        .client
        .delete("s1", &[&again.record_id], true)
        .await
        .unwrap();
    assert_eq!(outcomes(&answer), pairs(&[(&again.record_id, "OK")]));
}

const KEY_A: &str = "lifecycle-key-of-account-42";
const KEY_B: &str = "lifecycle-key-of-account-43";

fn account_toml(id: &str, domains: &str, buckets: &str, key: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    format!(
        "[[accounts]]\nid = \"{id}\"\ndomains = [{domains}]\nbuckets = [{buckets}]\n\
         [[accounts.keys]]\nsha256 = \"{digest}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{id}:domain/*\"] }}]\n"
    )
}

async fn deleting_a_manifest_in_a_bucket_of_another_account_is_access_denied(engine: Engine) {
    // Account 42 writes a manifest into its bucket; then the operator moves
    // that bucket to account 43 (no host may belong to two accounts, so 43
    // streams under another domain).
    let mut h = start(
        engine,
        &format!(
            "{}{}",
            account_toml("42", "\"example.com\"", "\"rec-bucket\"", KEY_A),
            account_toml("43", "\"other.example.net\"", "\"other-bucket\"", KEY_B)
        ),
    )
    .await;
    let mut a = h.with_key(KEY_A);
    a.register("s1", back_to_back("s1", 10)).await;
    let info = a.create(create_request("s1", -600, -570)).await.unwrap();
    let unknown = uuid::Uuid::new_v4().to_string();
    let owns = |h: &mut Harness, account: usize, bucket: &str| {
        h.server.config.accounts[account].buckets = vec![bucket.to_string()];
    };
    owns(&mut h, 0, "new-bucket");
    owns(&mut h, 1, "rec-bucket");
    h.restart().await;
    let mut a = h.with_key(KEY_A);
    let mut b = h.with_key(KEY_B);

    let answer = a
        .delete("s1", &[&info.record_id, &unknown], true)
        .await
        .unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.message.as_str()),
        ("OK", "OK")
    );
    assert_eq!(
        outcomes(&answer),
        pairs(&[
            (&info.record_id, "AccessDenied"),
            (&unknown, "FileNotFound")
        ])
    );
    assert_eq!(a.describe("s1", &info.record_id).await.unwrap(), info);
    assert!(h.playlist_path(&info).is_file());
    // The bucket's new owner cannot reach a stream of another's domain.
    let status = b.delete("s1", &[&info.record_id], true).await.unwrap_err();
    common::assert_error(&status, Code::PermissionDenied, "Forbidden.RAM");

    owns(&mut h, 0, "rec-bucket");
    owns(&mut h, 1, "other-bucket");
    h.restart().await;
    let mut a = h.with_key(KEY_A);
    let answer = a.delete("s1", &[&info.record_id], true).await.unwrap();
    assert_eq!(outcomes(&answer), pairs(&[(&info.record_id, "OK")]));
    assert!(!h.playlist_path(&info).exists());
    // Without a key nothing is looked at.
    let status = h
        .client
        .clone()
        .delete("s1", &[&info.record_id], false)
        .await
        .unwrap_err();
    common::assert_error(&status, Code::Unauthenticated, "InvalidAccessKeyId");
}

/// Delete with RemoveFile against a real S3 server, with both addressing
/// styles: the playlist object is gone afterwards, and without RemoveFile it
/// stays. Runs the binary, on the real clock.
#[tokio::test]
async fn delete_with_remove_file_removes_the_playlist_from_s3() {
    use common::Addressing;
    let s3 = common::seaweedfs();
    let bucket = s3.create_bucket().await;
    let server = common::Server::start(&format!(
        "{RATE_LIMITS}{}{}",
        s3.endpoint_toml(Addressing::Path),
        s3.endpoint_toml(Addressing::VirtualHosted)
    ))
    .await;
    let grpc = server.client().await;
    let mut client = Client { grpc, key: None };
    let start = common::recording_start(Duration::from_secs(600));
    for addressing in [Addressing::Path, Addressing::VirtualHosted] {
        let endpoint = s3.endpoint_name(addressing);
        let stream = common::unique_name("s");
        let segments: Vec<Segment> = (0..10)
            .map(|i| Segment {
                oss_endpoint: endpoint.clone(),
                oss_bucket: bucket.clone(),
                oss_object: format!("{APP}/{stream}/seg{i:03}.ts"),
                start_time: common::utc_millis(start + chrono::Duration::seconds(6 * i)),
                duration: 6.0,
                sequence: i,
                width: 640,
                height: 360,
                format: "ts".into(),
                size: 0,
            })
            .collect();
        client.register(&stream, segments).await;
        let create = |name: &str| CreateLiveStreamRecordIndexFilesRequest {
            renditions: Vec::new(),
            clip_mode: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.clone(),
            oss_endpoint: endpoint.clone(),
            oss_bucket: bucket.clone(),
            oss_object: format!("{APP}/{stream}/{name}.m3u8"),
            start_time: common::utc_seconds(start - chrono::Duration::seconds(1)),
            end_time: common::utc_seconds(start + chrono::Duration::seconds(60)),
            end_time_included: false,
            client_token: String::new(),
        };
        let kept = client.create(create("kept")).await.unwrap();
        let removed = client.create(create("removed")).await.unwrap();
        for info in [&kept, &removed] {
            let object = s3.get_object(&bucket, &info.oss_object).await;
            assert_eq!(object.status, 200, "{addressing:?}: {}", object.text());
            assert!(object.text().starts_with("#EXTM3U"));
        }

        let answer = client
            .delete(&stream, &[&removed.record_id], true)
            .await
            .unwrap();
        assert_eq!(outcomes(&answer), pairs(&[(&removed.record_id, "OK")]));
        let object = s3.get_object(&bucket, &removed.oss_object).await;
        assert_eq!(
            object.status, 404,
            "{addressing:?}: the playlist is still there"
        );

        let answer = client
            .delete(&stream, &[&kept.record_id], false)
            .await
            .unwrap();
        assert_eq!(outcomes(&answer), pairs(&[(&kept.record_id, "OK")]));
        let object = s3.get_object(&bucket, &kept.oss_object).await;
        assert_eq!(object.status, 200, "{addressing:?}: {}", object.text());

        for info in [&kept, &removed] {
            expect_not_found(client.describe(&stream, &info.record_id).await);
        }
    }
}

// ---------------------------------------------------------------------------
// DescribeLiveStreamRecordContent
// ---------------------------------------------------------------------------

/// Stream c1: 6 s segments from -599.75 s; a 0.4 s hole after the third,
/// a 0.6 s hole after the fifth, the move to another bucket after the
/// seventh, and one segment alone at [-500, -494).
fn recording_with_holes() -> Vec<Segment> {
    let live =
        |i: usize, start_ms: i64| segment_at(BUCKET, &format!("live/c1/{i:03}.ts"), start_ms, 6.0);
    let archive = |i: usize, start_ms: i64| {
        segment_at(
            "rec-bucket-2",
            &format!("archive/c1/{i:03}.ts"),
            start_ms,
            6.0,
        )
    };
    vec![
        live(0, -599_750),
        live(1, -593_750),
        live(2, -587_750),
        // 0.4 s hole
        live(3, -581_350),
        live(4, -575_350),
        // 0.6 s hole
        live(5, -568_750),
        live(6, -562_750),
        // another bucket, no hole
        archive(7, -556_750),
        archive(8, -550_750),
        // alone, on whole seconds
        live(9, -500_000),
    ]
}

async fn content_lists_continuous_spans(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("c1", recording_with_holes()).await;
    let spans = h.client.content("c1", -700, -400).await.unwrap();
    assert_eq!(
        spans,
        vec![
            // -599.75 to -569.35: down to -600, up to -569; 30 s of media
            // in 30.4 s.
            span(&at(-600), &at(-569), 30.0, BUCKET, "live/c1/"),
            span(&at(-569), &at(-556), 12.0, BUCKET, "live/c1/"),
            span(&at(-557), &at(-544), 12.0, "rec-bucket-2", "archive/c1/"),
            // Whole seconds stay as they are.
            span(&at(-500), &at(-494), 6.0, BUCKET, "live/c1/"),
        ]
    );
    // Segments of other streams are not counted.
    h.client.register("c2", back_to_back("c2", 10)).await;
    assert_eq!(h.client.content("c1", -700, -400).await.unwrap(), spans);
    assert_eq!(
        h.client.content("c2", -700, -400).await.unwrap(),
        vec![span(&at(-600), &at(-540), 60.0, BUCKET, "live/c2/")]
    );
}

async fn content_includes_segments_overlapping_the_range(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("c1", recording_with_holes()).await;
    // Segment 0 ends at -593.75, before -593; segment 5 starts at -568.75,
    // after -570: segments 1 to 4 remain, the first from -593.75.
    assert_eq!(
        h.client.content("c1", -593, -570).await.unwrap(),
        vec![span(&at(-594), &at(-569), 24.0, BUCKET, "live/c1/")]
    );
    // One second earlier at each end takes segments 0 and 5 in.
    assert_eq!(
        h.client.content("c1", -594, -568).await.unwrap(),
        vec![
            span(&at(-600), &at(-569), 30.0, BUCKET, "live/c1/"),
            span(&at(-569), &at(-562), 6.0, BUCKET, "live/c1/"),
        ]
    );
    // Segment 9 covers [-500, -494): a range ending at its start or
    // starting at its end does not overlap it.
    assert!(h.client.content("c1", -520, -500).await.unwrap().is_empty());
    assert!(h.client.content("c1", -494, -400).await.unwrap().is_empty());
    let alone = vec![span(&at(-500), &at(-494), 6.0, BUCKET, "live/c1/")];
    assert_eq!(h.client.content("c1", -520, -499).await.unwrap(), alone);
    assert_eq!(h.client.content("c1", -495, -400).await.unwrap(), alone);
    // Inside one segment.
    assert_eq!(h.client.content("c1", -498, -497).await.unwrap(), alone);
    // Reaching into the future is fine.
    assert_eq!(h.client.content("c1", -495, 3600).await.unwrap().len(), 1);
}

async fn content_rejects_bad_ranges_and_unknown_streams(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("c1", recording_with_holes()).await;
    // At most four days.
    let four_days = 4 * 86_400;
    let status = h.client.content("c1", -four_days - 1, 0).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Mismatch");
    assert_eq!(
        h.client.content("c1", -four_days, 0).await.unwrap().len(),
        4
    );
    for (start, end) in [(-500, -500), (-500, -600)] {
        let status = h.client.content("c1", start, end).await.unwrap_err();
        common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Mismatch");
    }
    // Within the last 180 days, and not in the future.
    let oldest = -180 * 86_400;
    let status = h
        .client
        .content("c1", oldest - 1, oldest + 60)
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Mismatch");
    assert!(
        h.client
            .content("c1", oldest, oldest + 60)
            .await
            .unwrap()
            .is_empty()
    );
    let status = h.client.content("c1", 1, 60).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Mismatch");
    // Malformed times and missing fields.
    let status = h
        .client
        .content_request(content_request("c1", "2026-11-19T11:50:00", &at(0)))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Malformed");
    let status = h
        .client
        .content_request(content_request("c1", &at(-600), "1795089600"))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidEndTime.Malformed");
    let status = h
        .client
        .content_request(content_request("c1", "", &at(0)))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    // A stream that never had a segment.
    let status = h.client.content("nobody", -700, -400).await.unwrap_err();
    common::assert_error(&status, Code::NotFound, "InvalidStream.NotFound");
    let mut other_app = content_request("c1", &at(-700), &at(-400));
    other_app.app_name = "live2".into();
    let status = h.client.content_request(other_app).await.unwrap_err();
    common::assert_error(&status, Code::NotFound, "InvalidStream.NotFound");
}

async fn content_span_gap_is_configurable(engine: Engine) {
    let mut h = start(engine, "span_gap_seconds = 1.0\n").await;
    h.client.register("c1", recording_with_holes()).await;
    assert_eq!(
        h.client.content("c1", -700, -400).await.unwrap(),
        vec![
            // The 0.4 s and 0.6 s holes are inside one span now; the bucket
            // change still splits.
            span(&at(-600), &at(-556), 42.0, BUCKET, "live/c1/"),
            span(&at(-557), &at(-544), 12.0, "rec-bucket-2", "archive/c1/"),
            span(&at(-500), &at(-494), 6.0, BUCKET, "live/c1/"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

async fn segments_expire_90_days_after_their_start_for_create_and_content(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 3)).await;
    // Segment 0 starts at -600 s: it expires 90 days later, at once for
    // every read.
    let expiry = NOW - 600 * SECOND + 90 * DAY;

    h.server.clock.set(expiry - 1);
    assert_eq!(
        h.client.content("s1", -700, -500).await.unwrap(),
        vec![span(&at(-600), &at(-582), 18.0, BUCKET, "live/s1/")]
    );
    let before = h
        .client
        .create(create_request("s1", -600, -582))
        .await
        .unwrap();
    assert_eq!(before.duration, 18.0);
    let playlist = std::fs::read_to_string(h.playlist_path(&before)).unwrap();
    assert!(playlist.contains("../000.ts"), "{playlist}");

    h.server.clock.set(expiry);
    assert_eq!(
        h.client.content("s1", -700, -500).await.unwrap(),
        vec![span(&at(-594), &at(-582), 12.0, BUCKET, "live/s1/")]
    );
    let after = h
        .client
        .create(create_request("s1", -600, -582))
        .await
        .unwrap();
    assert_eq!(after.duration, 12.0);
    let playlist = std::fs::read_to_string(h.playlist_path(&after)).unwrap();
    assert!(!playlist.contains("000.ts"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:1\n"), "{playlist}");

    // Once every segment of the range has expired there is nothing to index.
    h.server.clock.set(expiry + 12 * SECOND);
    assert!(h.client.content("s1", -700, -500).await.unwrap().is_empty());
    let status = h
        .client
        .create(create_request("s1", -588, -582))
        .await
        .unwrap_err();
    common::assert_error(&status, Code::NotFound, "NoRecordContent");
}

/// Moves the clock past the expiry of everything (manifest, token,
/// segments), waits for sweeps, and brings the clock back: what was swept
/// stays gone, what was not would be visible again.
async fn expire_and_come_back(h: &Harness, wait: Duration) {
    h.server.clock.set(NOW + 181 * DAY);
    tokio::time::sleep(wait).await;
    h.server.clock.set(NOW + SECOND);
    // A sweep that started with the later time mostly finishes before the
    // checks; one that has not is seen as records not swept yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// A stream with segments, a manifest created with a ClientToken, and the
/// request that created it.
async fn records_to_expire(
    h: &mut Harness,
) -> (RecordInfo, CreateLiveStreamRecordIndexFilesRequest) {
    h.client.register("s1", back_to_back("s1", 3)).await;
    let mut request = create_request("s1", -600, -582);
    request.client_token = "sweep-token".into();
    let info = h.client.create(request.clone()).await.unwrap();
    (info, request)
}

/// Whether the sweeps removed every record of [`records_to_expire`]: the
/// manifest, the segments, and the token, so that the same request with it
/// is new work, which finds nothing to index. A sweep removes each kind in
/// a step of its own (PostgreSQL commits each), so with the clock brought
/// back a record whose step has not run yet is visible: the token gives
/// the first answer, until the sweep gets to it.
async fn all_swept(
    h: &mut Harness,
    info: &RecordInfo,
    request: &CreateLiveStreamRecordIndexFilesRequest,
) -> bool {
    if h.client.describe("s1", &info.record_id).await.is_ok()
        || !h.client.content("s1", -700, -500).await.unwrap().is_empty()
    {
        return false;
    }
    match h.client.create(request.clone()).await {
        Ok(answer) => {
            assert_eq!(
                &answer, info,
                "a Create with no segments left made a manifest"
            );
            false
        }
        Err(status) => {
            common::assert_error(&status, Code::NotFound, "NoRecordContent");
            true
        }
    }
}

async fn the_sweeper_reclaims_expired_records(engine: Engine) {
    let mut h = start(engine, "sweep_interval_secs = 0.05\n").await;
    let (info, request) = records_to_expire(&mut h).await;

    h.server.clock.set(NOW + 181 * DAY);
    expect_not_found(h.client.describe("s1", &info.record_id).await);
    let mut swept = false;
    for _ in 0..20 {
        expire_and_come_back(&h, Duration::from_millis(250)).await;
        if all_swept(&mut h, &info, &request).await {
            swept = true;
            break;
        }
    }
    assert!(swept, "the records were not swept within 20 rounds");
    assert_eq!(h.client.list_all("s1", -10, 600).await.total_num, 0);

    // After expiry, a recorder reusing an object key adds a new segment.
    h.server.clock.set(NOW + 181 * DAY);
    let mut reused = back_to_back("s1", 1);
    reused[0].start_time = chrono::DateTime::from_timestamp_micros(NOW + 181 * DAY - 600 * SECOND)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let answer = h
        .client
        .register_request(register_request("s1", reused))
        .await
        .unwrap();
    assert_eq!((answer.accepted, answer.duplicates), (1, 0));
}

async fn without_a_sweep_expired_records_are_only_hidden(engine: Engine) {
    // The counterpart of the test above: the first sweep runs at start and
    // the next one an hour later, so the records are still stored and come
    // back with the clock.
    let mut h = start(engine, "sweep_interval_secs = 3600\n").await;
    let (info, request) = records_to_expire(&mut h).await;
    expire_and_come_back(&h, Duration::from_millis(300)).await;
    assert_eq!(
        h.client.describe("s1", &info.record_id).await.unwrap(),
        info
    );
    assert_eq!(h.client.list_all("s1", -10, 600).await.total_num, 1);
    assert_eq!(
        h.client.content("s1", -700, -500).await.unwrap(),
        vec![span(&at(-600), &at(-582), 18.0, BUCKET, "live/s1/")]
    );
    assert_eq!(h.client.create(request).await.unwrap(), info);
}

// ---------------------------------------------------------------------------
// ClientToken
// ---------------------------------------------------------------------------

async fn a_create_retried_with_its_token_returns_the_first_answer(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let mut request = create_request("s1", -600, -570);
    request.client_token = "retry-1_a.b".into();
    let first = h.client.create(request.clone()).await.unwrap();
    h.server.clock.set(NOW + 5 * SECOND);
    let again = h.client.create(request.clone()).await.unwrap();
    assert_eq!(again, first);
    let listed = h.client.list_all("s1", -10, 600).await;
    assert_eq!(listed.total_num, 1);
    assert_eq!(listed.record_index_info_list, vec![first.clone()]);
    let playlists = std::fs::read_dir(h.server.objects.join(BUCKET).join("live/s1/index"))
        .unwrap()
        .count();
    assert_eq!(playlists, 1);

    // The same token for another request.
    let mut different = request.clone();
    different.end_time = at(-564);
    let status = h.client.create(different).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    let mut included = request.clone();
    included.end_time_included = true;
    let status = h.client.create(included).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    // Another token, or none, is another manifest.
    let mut other_token = request.clone();
    other_token.client_token = "retry-2".into();
    let second = h.client.create(other_token).await.unwrap();
    assert_ne!(second.record_id, first.record_id);
    let mut no_token = request.clone();
    no_token.client_token.clear();
    let third = h.client.create(no_token).await.unwrap();
    assert_ne!(third.record_id, first.record_id);
    assert_eq!(h.client.list_all("s1", -10, 600).await.total_num, 3);
    // The first token still answers with the first manifest.
    assert_eq!(h.client.create(request).await.unwrap(), first);
}

async fn concurrent_creates_with_one_token_make_one_manifest(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let mut request = create_request("s1", -600, -570);
    request.client_token = "concurrent".into();
    let calls = (0..10).map(|_| {
        let mut client = h.client.clone();
        let request = request.clone();
        async move { client.create(request).await }
    });
    let answers = futures::future::join_all(calls).await;
    let first = answers[0].as_ref().unwrap().clone();
    for answer in &answers {
        assert_eq!(answer.as_ref().unwrap(), &first);
    }
    let listed = h.client.list_all("s1", -10, 600).await;
    assert_eq!(listed.total_num, 1);
    assert_eq!(listed.record_index_info_list, vec![first]);
}

async fn a_token_is_kept_for_24_hours(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let mut request = create_request("s1", -600, -570);
    request.client_token = "daily".into();
    let first = h.client.create(request.clone()).await.unwrap();
    h.server.clock.set(NOW + DAY - 1);
    assert_eq!(h.client.create(request.clone()).await.unwrap(), first);
    h.server.clock.set(NOW + DAY);
    let next = h.client.create(request.clone()).await.unwrap();
    assert_ne!(next.record_id, first.record_id);
    assert_eq!(next.create_time, at(86_400));
    // The new answer is the token's answer from now on.
    h.server.clock.set(NOW + DAY + 60 * SECOND);
    assert_eq!(h.client.create(request).await.unwrap(), next);
    let listed = h.client.list_all("s1", -10, 86_500).await;
    assert_eq!(listed.total_num, 2);
}

async fn a_token_used_again_after_24_hours_keeps_its_new_answer(engine: Engine) {
    // Sweeps run when the server starts, then once an hour.
    let mut h = start(engine, "sweep_interval_secs = 3600\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    let mut request = create_request("s1", -600, -570);
    request.client_token = "reused".into();
    let first = h.client.create(request.clone()).await.unwrap();
    // The token is used again a second after its first use expired, before
    // any sweep came by.
    h.server.clock.set(NOW + DAY + SECOND);
    let second = h.client.create(request.clone()).await.unwrap();
    assert_ne!(second.record_id, first.record_id);
    // A restart sweeps at once, reclaiming the first use.
    h.server.clock.set(NOW + DAY + 2 * SECOND);
    h.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.client.describe("s1", &second.record_id).await.unwrap(),
        second
    );
    let retried = h.client.create(request).await.unwrap();
    assert_eq!(
        retried.record_id, second.record_id,
        "a retry within 24 hours of the second use made another manifest"
    );
    assert_eq!(h.client.list_all("s1", -10, 86_500).await.total_num, 2);
}

async fn malformed_tokens_are_invalid_params(engine: Engine) {
    let mut h = start(engine, "").await;
    h.client.register("s1", back_to_back("s1", 10)).await;
    for token in ["a".repeat(65), "a b".into(), "tok/en".into(), "ü".into()] {
        let mut request = create_request("s1", -600, -570);
        request.client_token = token.clone();
        let status = h.client.create(request).await.unwrap_err();
        common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
        let mut register = register_request("s1", back_to_back("s1", 1));
        register.client_token = token;
        let status = h.client.register_request(register).await.unwrap_err();
        common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    }
    assert_eq!(h.client.list_all("s1", -10, 600).await.total_num, 0);
    let mut request = create_request("s1", -600, -570);
    request.client_token = "a".repeat(64);
    assert!(h.client.create(request).await.is_ok());
}

async fn a_register_retried_with_its_token_returns_the_first_answer(engine: Engine) {
    let mut h = start(engine, "").await;
    let mut request = register_request("s1", back_to_back("s1", 5));
    request.client_token = "batch-1".into();
    let first = h.client.register_request(request.clone()).await.unwrap();
    assert_eq!((first.accepted, first.duplicates), (5, 0));
    let again = h.client.register_request(request.clone()).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (5, 0));
    // Without the token the same batch is five duplicates.
    let mut plain = request.clone();
    plain.client_token.clear();
    let plain = h.client.register_request(plain).await.unwrap();
    assert_eq!((plain.accepted, plain.duplicates), (0, 5));
    // The same token with another batch.
    let mut different = register_request("s1", back_to_back("s1", 6));
    different.client_token = "batch-1".into();
    let status = h.client.register_request(different).await.unwrap_err();
    common::assert_error(&status, Code::InvalidArgument, "InvalidParams");
    // Tokens of Register and Create do not meet.
    let mut create = create_request("s1", -600, -570);
    create.client_token = "batch-1".into();
    assert!(h.client.create(create).await.is_ok());
}
