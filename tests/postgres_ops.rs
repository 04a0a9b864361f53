//! The PostgreSQL catalog as an operator runs it, through the
//! `record-index` binary against a real PostgreSQL 15: `migrate` before a
//! rollout, and a database that goes away and comes back while the
//! service runs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use record_index::proto::CreateLiveStreamRecordIndexFilesRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const URL_ENV: &str = "PG_OPS_TEST_DATABASE_URL";

fn catalog_toml(engine: &str) -> String {
    format!(
        "[catalog]\nengine = \"{engine}\"\nurl_env = \"{URL_ENV}\"\npool_size = 4\n\
         statement_timeout_ms = 2000\n"
    )
}

/// Runs `record-index migrate` on a config holding `toml`: exit code,
/// stdout, stderr.
fn migrate(toml: &str, url: Option<&str>) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("record-index.toml");
    std::fs::write(&config, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_record-index"));
    command
        .arg("migrate")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("RECORD_INDEX_CONFIG")
        .env_remove(URL_ENV);
    if let Some(url) = url {
        command.env(URL_ENV, url);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_exits() {
    let url = shared_database("migrate").await;
    let (code, stdout, stderr) = migrate(&catalog_toml("postgres"), Some(&url));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("applied catalog migrations 1, 2, 3;"),
        "{stdout}"
    );
    let client = connect_url(&url).await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN
                 ('streams', 'segment_blocks', 'segment_keys', 'manifests', 'tokens', 'record_counts')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 6);

    let (code, stdout, stderr) = migrate(&catalog_toml("postgres"), Some(&url));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("schema is up to date (version 3)"),
        "{stdout}"
    );
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 3);
}

#[test]
fn migrate_refuses_what_it_cannot_reach_and_passes_over_sled() {
    let (code, stdout, stderr) = migrate(&catalog_toml("sled"), None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("nothing to do"), "{stdout}");

    let (code, _, stderr) = migrate(&catalog_toml("postgres"), None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{URL_ENV} is not set")),
        "{stderr}"
    );

    let closed = format!("host=127.0.0.1 port={} user=postgres", free_port());
    let (code, _, stderr) = migrate(&catalog_toml("postgres"), Some(&closed));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("migrate failed: catalog unavailable"),
        "{stderr}"
    );
}

async fn health(server: &Server) -> i32 {
    let channel = tonic::transport::Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: "recordindex.v1.RecordIndex".into(),
    };
    client.check(request).await.unwrap().into_inner().status
}

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;

/// Waits for the `count`th log line holding `needle`.
async fn await_lines(log: &ServerLog, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.matching(needle).len() < count {
        assert!(
            Instant::now() < deadline,
            "no {count} lines holding {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

fn whole_range(
    stream: &str,
    segments: &[record_index::proto::Segment],
) -> CreateLiveStreamRecordIndexFilesRequest {
    let mut request = create_request(stream, 0, 0);
    request.start_time = utc_seconds(segment_start(&segments[0]) - chrono::Duration::seconds(1));
    let last = segments.last().unwrap();
    request.end_time = utc_seconds(segment_end(last) + chrono::Duration::seconds(1));
    request
}

/// The database stops as in a crash and starts again on the same data:
/// meanwhile health says NOT_SERVING and requests fail as UNAVAILABLE
/// within their deadline; after, the same process serves again, with
/// everything acknowledged before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_then_over_without_a_restart() {
    let mut database = PgServer::start();
    let url = database.create_database("outage").await;
    let (server, log) = Server::start_with_env(&catalog_toml("postgres"), &[(URL_ENV, &url)]).await;
    await_lines(&log, "ready: catalog and object storage answer", 1).await;
    assert_eq!(health(&server).await, SERVING);
    let mut client = server.client().await;
    let start = recording_start(Duration::from_secs(900));
    let segments = plain_segments(("localhost", "rec-bucket", "live/outage"), start, 0..20, 6);
    let (before, after) = segments.split_at(10);
    client
        .register_live_stream_record_segments(register_request("outage", before.to_vec()))
        .await
        .unwrap();

    database.stop_immediate();
    await_lines(&log, "not ready: the catalog cannot be read", 1).await;
    assert_eq!(health(&server).await, NOT_SERVING);
    let deadline = Duration::from_secs(5);
    let sent = Instant::now();
    let request = with_deadline(register_request("outage", after.to_vec()), deadline);
    let status = client
        .register_live_stream_record_segments(request)
        .await
        .expect_err("no catalog to register in");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("InternalError: "),
        "{status:?}"
    );
    let request = with_deadline(whole_range("outage", before), deadline);
    let status = client
        .create_live_stream_record_index_files(request)
        .await
        .expect_err("no catalog to read");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().starts_with("InternalError: "),
        "{status:?}"
    );
    assert!(sent.elapsed() < 2 * deadline, "{:?}", sent.elapsed());

    database.start_again();
    await_lines(&log, "ready: catalog and object storage answer", 2).await;
    assert_eq!(health(&server).await, SERVING);
    client
        .register_live_stream_record_segments(register_request("outage", after.to_vec()))
        .await
        .unwrap();
    let info = client
        .create_live_stream_record_index_files(whole_range("outage", &segments))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let playlist = server
        .data_dir
        .join("objects")
        .join(&info.oss_bucket)
        .join(&info.oss_object);
    let text = std::fs::read_to_string(&playlist).unwrap();
    let listed = text.lines().filter(|line| line.ends_with(".ts")).count();
    assert_eq!(listed, segments.len(), "{text}");
}
