//! `record-index backup` and `record-index restore` as an operator runs
//! them: a catalog written by a real server (local mode), stopped with
//! SIGTERM, backed up, restored into a new data directory, and served
//! again with the same answers. And the refusals: a catalog in use, a data
//! directory that already holds a catalog, a damaged file, no catalog, an
//! unwritable destination.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DescribeLiveStreamRecordContentRequest,
    DescribeLiveStreamRecordIndexFileRequest, RecordContentInfo, RecordInfo,
    RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use tonic::transport::Channel;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const BUCKET: &str = "rec-bucket";

fn seconds(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// Ten 6 s segments of `stream` back to back from `start`.
fn recording(stream: &str, start: DateTime<Utc>) -> Vec<Segment> {
    (0..10)
        .map(|i| Segment {
            oss_endpoint: "localhost".into(),
            oss_bucket: BUCKET.into(),
            oss_object: format!("{APP}/{stream}/seg{i:03}.ts"),
            start_time: utc_millis(start + seconds(6 * i)),
            duration: 6.0,
            sequence: i,
            width: 640,
            height: 360,
            format: "ts".into(),
            size: 0,
        })
        .collect()
}

async fn register(
    client: &mut RecordIndexClient<Channel>,
    stream: &str,
    segments: Vec<Segment>,
) -> (i32, i32) {
    let answer = client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            segments,
            client_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    (answer.accepted, answer.duplicates)
}

async fn create(
    client: &mut RecordIndexClient<Channel>,
    stream: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> RecordInfo {
    client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            renditions: Vec::new(),
            clip_mode: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            oss_endpoint: "localhost".into(),
            oss_bucket: BUCKET.into(),
            oss_object: "{AppName}/{StreamName}/index/{RecordId}.m3u8".into(),
            start_time: utc_seconds(start),
            end_time: utc_seconds(end),
            end_time_included: false,
            client_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap()
}

async fn describe(
    client: &mut RecordIndexClient<Channel>,
    stream: &str,
    record_id: &str,
) -> RecordInfo {
    client
        .describe_live_stream_record_index_file(DescribeLiveStreamRecordIndexFileRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            record_id: record_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .record_index_info
        .unwrap()
}

async fn content(
    client: &mut RecordIndexClient<Channel>,
    stream: &str,
    start: DateTime<Utc>,
) -> Vec<RecordContentInfo> {
    client
        .describe_live_stream_record_content(DescribeLiveStreamRecordContentRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            start_time: utc_seconds(start - seconds(60)),
            end_time: utc_seconds(start + seconds(300)),
        })
        .await
        .unwrap()
        .into_inner()
        .record_content_info_list
}

/// What one run of the binary left.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `record-index ARGS` to completion, with none of the developer's
/// `RECORD_INDEX_*` settings.
async fn record_index<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = run(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_record-index"))
            .args(args)
            .env_remove("RECORD_INDEX_CONFIG")
            .env_remove("RECORD_INDEX_LISTEN")
            .env_remove("RECORD_INDEX_DATA_DIR")
            .env_remove("RECORD_INDEX_LOG_FORMAT"),
        Duration::from_secs(120),
    )
    .await;
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn backup(data_dir: &Path, out: &Path) -> Run {
    record_index([
        OsStr::new("backup"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ])
    .await
}

async fn restore(from: &Path, data_dir: &Path) -> Run {
    record_index([
        OsStr::new("restore"),
        OsStr::new("--from"),
        from.as_os_str(),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
    ])
    .await
}

fn tmp_of(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap().to_os_string();
    name.push(".tmp");
    file.with_file_name(name)
}

/// Waits for one answered request: the service then handles SIGTERM (it
/// installs the handler when it starts serving, a moment after printing
/// its listening line).
async fn wait_serving(server: &Server) {
    let mut client = server.client().await;
    let status = client
        .describe_live_stream_record_content(DescribeLiveStreamRecordContentRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: "never-registered".into(),
            start_time: utc_seconds(Utc::now() - seconds(600)),
            end_time: utc_seconds(Utc::now()),
        })
        .await
        .expect_err("an unknown stream");
    assert_error(&status, tonic::Code::NotFound, "InvalidStream.NotFound");
}

/// Stops the server as an operator's service manager does (SIGTERM) and
/// checks that it drained, flushed the catalog and exited 0.
fn stop_gracefully(server: &mut Server) {
    // Blocking this thread only: the clients' connections, on the
    // runtime's other threads, close when the server says it is going.
    let (code, _) = tokio::task::block_in_place(|| server.terminate());
    assert_eq!(code, 0, "record-index exited with {code} on SIGTERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_catalog_answers_as_the_one_backed_up() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("catalog.ridx");

    let mut source = Server::start_local_mode().await;
    // After a restart sled hands out ids from further on, so the stream
    // gets an id that a fresh catalog would hand out again.
    wait_serving(&source).await;
    stop_gracefully(&mut source);
    source.start_again().await;
    let mut client = source.client().await;
    let start = recording_start(Duration::from_secs(600));
    assert_eq!(
        register(&mut client, "s1", recording("s1", start)).await,
        (10, 0)
    );
    let created = create(&mut client, "s1", start - seconds(1), start + seconds(36)).await;
    assert_eq!(
        describe(&mut client, "s1", &created.record_id).await,
        created
    );
    let spans = content(&mut client, "s1", start).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].duration, 60.0);

    // While the service runs, the catalog is locked: a clear refusal, and
    // nothing written.
    let refused = backup(&source.data_dir, &file).await;
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("stop the service first"),
        "{}",
        refused.stderr
    );
    assert!(!file.exists() && !tmp_of(&file).exists());

    stop_gracefully(&mut source);
    let done = backup(&source.data_dir, &file).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    let size = fs::metadata(&file).unwrap().len();
    assert!(
        done.stdout.contains("collections")
            && done.stdout.contains("entries")
            && done.stdout.contains(&format!("{size} bytes")),
        "{}",
        done.stdout
    );
    assert!(!tmp_of(&file).exists());

    // Never over a catalog that is there.
    let refused = restore(&file, &source.data_dir).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("already holds a catalog"),
        "{}",
        refused.stderr
    );

    // A new service, stopped, its data directory replaced by the restore.
    let mut target = Server::start_local_mode().await;
    wait_serving(&target).await;
    stop_gracefully(&mut target);
    let refused = restore(&file, &target.data_dir).await;
    assert_ne!(refused.code, 0, "an empty catalog is a catalog too");
    fs::remove_dir_all(&target.data_dir).unwrap();
    let restored = restore(&file, &target.data_dir).await;
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(
        restored.stdout.contains(&format!("{size} bytes")),
        "{}",
        restored.stdout
    );
    target.start_again().await;

    let mut client = target.client().await;
    assert_eq!(
        describe(&mut client, "s1", &created.record_id).await,
        created
    );
    assert_eq!(content(&mut client, "s1", start).await, spans);
    assert_eq!(
        register(&mut client, "s1", recording("s1", start)).await,
        (0, 10)
    );
    // A stream new to the restored catalog gets an id of its own: its
    // segments join neither the old stream nor it theirs.
    let later = start + seconds(120);
    assert_eq!(
        register(&mut client, "s2", recording("s2", later)).await,
        (10, 0)
    );
    assert_eq!(content(&mut client, "s1", start).await, spans);
    let new_spans = content(&mut client, "s2", start).await;
    assert_eq!(new_spans.len(), 1, "{new_spans:?}");
    assert_eq!(new_spans[0].start_time, utc_seconds(later));
    let again = create(&mut client, "s1", start - seconds(1), start + seconds(36)).await;
    assert_ne!(again.record_id, created.record_id);
    assert_eq!(again.duration, created.duration);
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_files_missing_catalogs_and_unwritable_destinations_are_refused() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("catalog.ridx");

    // No catalog: refused, and none is created.
    let empty = files.path().join("empty-data");
    fs::create_dir(&empty).unwrap();
    for data_dir in [empty.clone(), files.path().join("no-such-data")] {
        let refused = backup(&data_dir, &file).await;
        assert_ne!(refused.code, 0);
        assert!(refused.stderr.contains("no catalog"), "{}", refused.stderr);
        assert!(!data_dir.join("catalog").exists());
    }

    let mut source = Server::start_local_mode().await;
    let mut client = source.client().await;
    let start = recording_start(Duration::from_secs(600));
    register(&mut client, "s1", recording("s1", start)).await;
    stop_gracefully(&mut source);

    let refused = backup(&source.data_dir, &files.path().join("missing/catalog.ridx")).await;
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("cannot write"),
        "{}",
        refused.stderr
    );

    // The data directory named by a config, as `serve` takes it.
    let config = files.path().join("record-index.toml");
    fs::write(
        &config,
        format!("data_dir = \"{}\"\n", source.data_dir.display()),
    )
    .unwrap();
    let done = record_index([
        OsStr::new("backup"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--out"),
        file.as_os_str(),
    ])
    .await;
    assert_eq!(done.code, 0, "{}", done.stderr);

    let bytes = fs::read(&file).unwrap();
    let damaged = [
        ("truncated", bytes[..bytes.len() * 2 / 3].to_vec()),
        ("checksum", {
            let mut flipped = bytes.clone();
            // The last byte before the end record (1 + 16 bytes) and the
            // checksum (32): of the last entry's value, or of the last
            // tree's name.
            let at = flipped.len() - 50;
            flipped[at] ^= 0x01;
            flipped
        }),
        (
            "not a record-index catalog backup",
            b"listen = \"x\"\n".to_vec(),
        ),
    ];
    for (reason, damaged) in damaged {
        let path = files.path().join("damaged.ridx");
        fs::write(&path, damaged).unwrap();
        let data_dir = files.path().join("restored");
        let refused = restore(&path, &data_dir).await;
        assert_ne!(refused.code, 0, "{reason}");
        assert!(
            refused.stderr.contains(reason),
            "{reason}: {}",
            refused.stderr
        );
        assert!(!data_dir.join("catalog").exists(), "{reason}");
    }
}
