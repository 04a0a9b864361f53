//! Manifests, their deletion and the segments behind them survive the
//! `record-index` binary being killed (SIGKILL, nothing flushed on the way
//! out) and started again on the same data directory; an operator's config
//! change applies to the manifests already stored. Each test runs on sled
//! and on PostgreSQL (`on_sled::`, `on_postgres::`), whose catalog outlives
//! the process in its database.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DeleteLiveStreamRecordIndexFilesRequest,
    DescribeLiveStreamRecordContentRequest, DescribeLiveStreamRecordIndexFileRequest,
    DescribeLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordIndexFilesResponse,
    RecordContentInfo, RecordInfo, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use sha2::Digest;
use tonic::Code;
use tonic::transport::Channel;

use common::Engine;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const STREAM: &str = "s1";
const BUCKET: &str = "rec-bucket";
const KEY: &str = "restart-test-key-of-account-42";

/// Far above anything these tests send in a burst.
const RATE_LIMITS: &str = "rate_limits = { CreateLiveStreamRecordIndexFiles = 10000, \
     RegisterLiveStreamRecordSegments = 10000, DescribeLiveStreamRecordIndexFile = 10000, \
     DescribeLiveStreamRecordIndexFiles = 10000, DeleteLiveStreamRecordIndexFiles = 10000, \
     DescribeLiveStreamRecordContent = 10000 }\n";

struct Client {
    grpc: RecordIndexClient<Channel>,
    key: Option<&'static str>,
}

impl Client {
    async fn connect(server: &common::Server, key: Option<&'static str>) -> Client {
        Client {
            grpc: server.client().await,
            key,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        match self.key {
            Some(key) => common::with_key(key, message),
            None => tonic::Request::new(message),
        }
    }

    async fn register(&mut self, segments: Vec<Segment>) {
        let count = segments.len() as i32;
        let request = self.request(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            segments,
            client_token: String::new(),
        });
        let answer = self
            .grpc
            .register_live_stream_record_segments(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!((answer.accepted, answer.duplicates), (count, 0));
    }

    async fn create(&mut self, request: CreateLiveStreamRecordIndexFilesRequest) -> RecordInfo {
        let request = self.request(request);
        self.grpc
            .create_live_stream_record_index_files(request)
            .await
            .unwrap()
            .into_inner()
            .record_info
            .unwrap()
    }

    async fn describe(&mut self, record_id: &str) -> Result<RecordInfo, tonic::Status> {
        let request = self.request(DescribeLiveStreamRecordIndexFileRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            record_id: record_id.into(),
        });
        self.grpc
            .describe_live_stream_record_index_file(request)
            .await
            .map(|r| r.into_inner().record_index_info.unwrap())
    }

    async fn list(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> DescribeLiveStreamRecordIndexFilesResponse {
        let request = self.request(DescribeLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time: common::utc_seconds(start),
            end_time: common::utc_seconds(end),
            page_num: 1,
            page_size: 30,
            order: "asc".into(),
        });
        self.grpc
            .describe_live_stream_record_index_files(request)
            .await
            .unwrap()
            .into_inner()
    }

    /// The per-id Messages of a Delete, in request order.
    async fn delete(&mut self, record_ids: &[&str], remove_file: bool) -> Vec<String> {
        let request = self.request(DeleteLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            record_id: record_ids.iter().map(|id| id.to_string()).collect(),
            remove_file,
        });
        let answer = self
            .grpc
            .delete_live_stream_record_index_files(request)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.code, "OK");
        let ids: Vec<&str> = answer
            .record_delete_info_list
            .iter()
            .map(|info| info.record_id.as_str())
            .collect();
        assert_eq!(ids, record_ids);
        answer
            .record_delete_info_list
            .into_iter()
            .map(|info| info.message)
            .collect()
    }

    async fn content(
        &mut self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<RecordContentInfo> {
        let request = self.request(DescribeLiveStreamRecordContentRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time: common::utc_seconds(start),
            end_time: common::utc_seconds(end),
        });
        self.grpc
            .describe_live_stream_record_content(request)
            .await
            .unwrap()
            .into_inner()
            .record_content_info_list
    }
}

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// Ten 6 s segments back to back from `start`, in BUCKET on the local
/// store.
fn recording(start: DateTime<Utc>) -> Vec<Segment> {
    (0..10)
        .map(|i| Segment {
            oss_endpoint: "localhost".into(),
            oss_bucket: BUCKET.into(),
            oss_object: format!("{APP}/{STREAM}/seg{i:03}.ts"),
            start_time: common::utc_millis(start + seconds(6 * i)),
            duration: 6.0,
            sequence: i,
            width: 640,
            height: 360,
            format: "ts".into(),
            size: 0,
        })
        .collect()
}

fn create_request(
    bucket: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> CreateLiveStreamRecordIndexFilesRequest {
    CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        oss_endpoint: "localhost".into(),
        oss_bucket: bucket.into(),
        oss_object: "{AppName}/{StreamName}/index/{RecordId}.m3u8".into(),
        start_time: common::utc_seconds(start),
        end_time: common::utc_seconds(end),
        end_time_included: false,
        client_token: String::new(),
    }
}

fn playlist_path(server: &common::Server, info: &RecordInfo) -> PathBuf {
    server
        .data_dir
        .join("objects")
        .join(&info.oss_bucket)
        .join(&info.oss_object)
}

fn assert_not_found(result: Result<RecordInfo, tonic::Status>) {
    let status = result.expect_err("the manifest must not be found");
    common::assert_error(&status, Code::NotFound, "InvalidRecordId.NotFound");
}

on_both_engines!(
    manifests_and_their_deletion_survive_restarts,
    a_manifest_in_a_bucket_the_account_no_longer_owns_cannot_be_deleted,
);

async fn manifests_and_their_deletion_survive_restarts(engine: Engine) {
    let mut server = common::Server::start_on(engine, RATE_LIMITS).await;
    let mut client = Client::connect(&server, None).await;
    let test_start = Utc::now().trunc_subsecs(0) - seconds(5);
    let start = common::recording_start(Duration::from_secs(600));
    client.register(recording(start)).await;

    let mut created = Vec::new();
    for k in 1..=5 {
        let request = create_request(BUCKET, start - seconds(1), start + seconds(6 * k + 6));
        created.push(client.create(request).await);
    }
    let mut with_token = create_request(BUCKET, start + seconds(30), start + seconds(60));
    with_token.client_token = "durable-token".into();
    created.push(client.create(with_token.clone()).await);

    server.restart().await;
    let mut client = Client::connect(&server, None).await;
    for info in &created {
        assert_eq!(&client.describe(&info.record_id).await.unwrap(), info);
        assert!(playlist_path(&server, info).is_file());
    }
    let listed = client.list(test_start, Utc::now() + seconds(3600)).await;
    assert_eq!((listed.total_num, listed.total_page), (6, 1));
    let mut ids: Vec<&str> = listed
        .record_index_info_list
        .iter()
        .map(|info| info.record_id.as_str())
        .collect();
    let mut expected: Vec<&str> = created.iter().map(|info| info.record_id.as_str()).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    // The token's answer is durable too, and the segments behind it all.
    assert_eq!(client.create(with_token).await, created[5]);
    assert_eq!(
        client
            .list(test_start, Utc::now() + seconds(3600))
            .await
            .total_num,
        6
    );
    let spans = client
        .content(start - seconds(60), start + seconds(120))
        .await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(
        (
            spans[0].start_time.as_str(),
            spans[0].end_time.as_str(),
            spans[0].duration
        ),
        (
            common::utc_seconds(start).as_str(),
            common::utc_seconds(start + seconds(60)).as_str(),
            60.0
        )
    );

    let removed: Vec<&str> = created[..3].iter().map(|i| i.record_id.as_str()).collect();
    let kept: Vec<&str> = created[3..].iter().map(|i| i.record_id.as_str()).collect();
    assert_eq!(client.delete(&removed, true).await, vec!["OK"; 3]);
    assert_eq!(client.delete(&kept, false).await, vec!["OK"; 3]);

    server.restart().await;
    let mut client = Client::connect(&server, None).await;
    for info in &created {
        assert_not_found(client.describe(&info.record_id).await);
    }
    let listed = client.list(test_start, Utc::now() + seconds(3600)).await;
    assert_eq!((listed.total_num, listed.total_page), (0, 0));
    let all: Vec<&str> = created.iter().map(|i| i.record_id.as_str()).collect();
    assert_eq!(client.delete(&all, true).await, vec!["FileNotFound"; 6]);
    for (i, info) in created.iter().enumerate() {
        assert_eq!(
            playlist_path(&server, info).is_file(),
            i >= 3,
            "playlist {i}"
        );
    }
}

async fn a_manifest_in_a_bucket_the_account_no_longer_owns_cannot_be_deleted(engine: Engine) {
    let digest = hex::encode(sha2::Sha256::digest(KEY.as_bytes()));
    let owned = "buckets = [\"rec-bucket\", \"old-bucket\"]";
    let mut server = common::Server::start_on(
        engine,
        &format!(
            "{RATE_LIMITS}[[accounts]]\nid = \"42\"\ndomains = [\"example.com\"]\n{owned}\n\
             [[accounts.keys]]\nsha256 = \"{digest}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:42:domain/*\"] }}]\n"
        ),
    )
    .await;
    let mut client = Client::connect(&server, Some(KEY)).await;
    let start = common::recording_start(Duration::from_secs(600));
    client.register(recording(start)).await;
    let old = client
        .create(create_request(
            "old-bucket",
            start - seconds(1),
            start + seconds(30),
        ))
        .await;
    let current = client
        .create(create_request(
            BUCKET,
            start - seconds(1),
            start + seconds(30),
        ))
        .await;

    // The operator takes old-bucket away from the account.
    let config_path = server.workdir.join("record-index.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains(owned), "{config}");
    std::fs::write(
        &config_path,
        config.replace(owned, "buckets = [\"rec-bucket\"]"),
    )
    .unwrap();
    server.restart().await;

    let mut client = Client::connect(&server, Some(KEY)).await;
    assert_eq!(
        client
            .delete(&[&old.record_id, &current.record_id], true)
            .await,
        vec!["AccessDenied", "OK"]
    );
    assert_eq!(client.describe(&old.record_id).await.unwrap(), old);
    assert!(playlist_path(&server, &old).is_file());
    assert_not_found(client.describe(&current.record_id).await);
    assert!(!playlist_path(&server, &current).exists());
}
