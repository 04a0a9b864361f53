//! Growing from one node: `record-index migrate-catalog --from-sled` moves
//! a single node's catalog into PostgreSQL, and the service started on it
//! answers Describe, List, Content, Create and ClientToken retries as the
//! single node did.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordContentRequest,
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest,
    RecordInfo,
};
use tonic::transport::Channel;

const URL_ENV: &str = "MIGRATE_TEST_DATABASE_URL";

fn catalog_toml(engine: &str) -> String {
    format!("[catalog]\nengine = \"{engine}\"\nurl_env = \"{URL_ENV}\"\n")
}

/// What a client sees of the catalog: each manifest by id, the listing,
/// the recorded spans, and the answers to retried ClientTokens.
#[derive(Debug, PartialEq)]
struct Seen {
    described: Vec<RecordInfo>,
    listed: Vec<RecordInfo>,
    total: i32,
    content: Vec<record_index::proto::RecordContentInfo>,
    create_retry: RecordInfo,
    register_retry: (i32, i32),
}

struct Requests {
    create_with_token: CreateLiveStreamRecordIndexFilesRequest,
    register_with_token: record_index::proto::RegisterLiveStreamRecordSegmentsRequest,
    ids: Vec<String>,
    from: String,
    until: String,
    /// Listings are by creation time: until after the Creates.
    listed_until: String,
}

async fn seen(client: &mut RecordIndexClient<Channel>, requests: &Requests) -> Seen {
    let mut described = Vec::new();
    for id in &requests.ids {
        let info = client
            .describe_live_stream_record_index_file(DescribeLiveStreamRecordIndexFileRequest {
                domain_name: "example.com".into(),
                app_name: "live".into(),
                stream_name: "moved".into(),
                record_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        described.push(info.record_index_info.unwrap());
    }
    let listing = client
        .describe_live_stream_record_index_files(DescribeLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "moved".into(),
            start_time: requests.from.clone(),
            end_time: requests.listed_until.clone(),
            page_num: 1,
            page_size: 30,
            order: "asc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let content = client
        .describe_live_stream_record_content(DescribeLiveStreamRecordContentRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "moved".into(),
            start_time: requests.from.clone(),
            end_time: requests.until.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let create_retry = client
        .create_live_stream_record_index_files(requests.create_with_token.clone())
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let register_retry = client
        .register_live_stream_record_segments(requests.register_with_token.clone())
        .await
        .unwrap()
        .into_inner();
    Seen {
        described,
        listed: listing.record_index_info_list,
        total: listing.total_num,
        content: content.record_content_info_list,
        create_retry,
        register_retry: (register_retry.accepted, register_retry.duplicates),
    }
}

fn migrate_catalog(config: &std::path::Path, from: &std::path::Path, url: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .arg("migrate-catalog")
        .arg("--config")
        .arg(config)
        .arg("--from-sled")
        .arg(from)
        .env_remove("RECORD_INDEX_CONFIG")
        .env(URL_ENV, url)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_catalog_moves_to_postgres_and_answers_the_same() {
    let url = shared_database("moved").await;
    let (mut server, _log) =
        Server::start_with_env(&catalog_toml("sled"), &[(URL_ENV, &url)]).await;
    let mut client = server.client().await;
    let start = recording_start(Duration::from_secs(3600));
    let segments = plain_segments(("localhost", "rec-bucket", "live/moved"), start, 0..300, 6);
    let mut register_with_token = register_request("moved", segments[..200].to_vec());
    register_with_token.client_token = "first-batch".into();
    client
        .register_live_stream_record_segments(register_with_token.clone())
        .await
        .unwrap();
    client
        .register_live_stream_record_segments(register_request("moved", segments[200..].to_vec()))
        .await
        .unwrap();
    let (from, until) = (
        utc_seconds(start - chrono::Duration::seconds(60)),
        utc_seconds(start + chrono::Duration::seconds(1900)),
    );
    let mut create_with_token = create_request("moved", 0, 0);
    create_with_token.start_time = utc_seconds(start);
    create_with_token.end_time = utc_seconds(start + chrono::Duration::seconds(600));
    let mut plain = create_with_token.clone();
    create_with_token.client_token = "first-create".into();
    plain.end_time = utc_seconds(start + chrono::Duration::seconds(1800));
    let mut ids = Vec::new();
    for request in [create_with_token.clone(), plain.clone()] {
        let info = client
            .create_live_stream_record_index_files(request)
            .await
            .unwrap()
            .into_inner()
            .record_info
            .unwrap();
        ids.push(info.record_id);
    }
    let requests = Requests {
        create_with_token,
        register_with_token,
        ids,
        from,
        until,
        listed_until: utc_seconds(chrono::Utc::now() + chrono::Duration::seconds(2)),
    };
    let before = seen(&mut client, &requests).await;
    assert_eq!(before.total, 2);

    assert_eq!(server.terminate().0, 0);
    let config = server.workdir.join("record-index.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace("engine = \"sled\"", "engine = \"postgres\""),
    )
    .unwrap();
    let (code, text) = migrate_catalog(&config, &server.data_dir, &url);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("moved 1 streams, 300 segments (0 already there), 2 manifests (0 already there), 2 ClientToken answers (0 already there)"),
        "{text}"
    );

    // The same data directory (so the same playlists), on PostgreSQL.
    server.start_again().await;
    let mut client = server.client().await;
    let after = seen(&mut client, &requests).await;
    assert_eq!(after, before);
    // A new Create over the same range selects the same segments.
    let again = client
        .create_live_stream_record_index_files(plain)
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let first = &before.described[1];
    assert_ne!(again.record_id, first.record_id);
    assert_eq!(
        (
            again.duration,
            again.start_time.clone(),
            again.end_time.clone()
        ),
        (
            first.duration,
            first.start_time.clone(),
            first.end_time.clone()
        )
    );

    // Run again, it finds everything there; a sled config is refused.
    server.terminate();
    let (code, text) = migrate_catalog(&config, &server.data_dir, &url);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "moved 1 streams, 0 segments (300 already there), 0 manifests (2 already there), 0 ClientToken answers (2 already there)"
        ),
        "{text}"
    );
    std::fs::write(&config, toml).unwrap();
    let (code, text) = migrate_catalog(&config, &server.data_dir, &url);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("engine = \"postgres\""), "{text}");
}
