//! `record-index import` as an operator runs it: a recorder's HLS playlist
//! and segments already in SeaweedFS, registered with a running service,
//! then played back through a manifest.

mod common;

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::*;
use record_index::proto::CreateLiveStreamRecordIndexFilesRequest;

/// A recorder's playlist as ffmpeg's `-hls_flags program_date_time` writes
/// it: the `+0000` offset form.
fn recorder_playlist(start: chrono::DateTime<Utc>, with_dates: bool) -> String {
    let mut text = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n",
    );
    let mut at = start;
    for segment in &media().segments {
        if with_dates {
            text.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                at.format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            ));
        }
        text.push_str(&format!(
            "#EXTINF:{:.6},\nsegs/{}\n",
            segment.duration, segment.file_name
        ));
        at += chrono::Duration::microseconds((segment.duration * 1e6).round() as i64);
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

fn import(
    server: &Server,
    endpoint: &str,
    bucket: &str,
    stream: &str,
    playlist: &str,
) -> (bool, String, String) {
    import_from(server, endpoint, bucket, stream, &["--playlist", playlist])
}

/// Runs `record-index import` with `source` (`--playlist KEY` or
/// `--prefix PREFIX`).
fn import_from(
    server: &Server,
    endpoint: &str,
    bucket: &str,
    stream: &str,
    source: &[&str],
) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .args(["import", "--config"])
        .arg(server.workdir.join("record-index.toml"))
        .args([
            "--server",
            &server.url(),
            "--domain",
            "example.com",
            "--app",
            "live",
            "--stream",
            stream,
        ])
        .args([
            "--endpoint",
            endpoint,
            "--bucket",
            bucket,
            "--concurrency",
            "4",
        ])
        .args(source)
        .env("TEST_S3_KEY", "record-index-test")
        .env("TEST_S3_SECRET", "record-index-test-secret")
        .env_remove("RECORD_INDEX_API_KEY")
        .output()
        .expect("run record-index import");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_recorders_playlist_is_imported_once_and_plays() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    let start = recording_start(Duration::from_secs(30 * 60));
    weed.upload_media(&bucket, "rec/cam1/segs").await;
    weed.put_object(
        &bucket,
        "rec/cam1/index.m3u8",
        recorder_playlist(start, true).into(),
        "application/vnd.apple.mpegurl",
    )
    .await;

    let (ok, stdout, stderr) = import(&server, &endpoint, &bucket, "cam1", "rec/cam1/index.m3u8");
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("10 segments listed, 10 new, 0 already registered, 0 outside"),
        "{stdout}"
    );
    // Run again, as after an interruption: nothing is registered twice.
    let (ok, stdout, stderr) = import(&server, &endpoint, &bucket, "cam1", "rec/cam1/index.m3u8");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("10 segments listed, 0 new, 10 already registered, 0 outside"),
        "{stdout}"
    );

    let mut client = server.client().await;
    let info = client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam1".into(),
            oss_endpoint: endpoint.clone(),
            oss_bucket: bucket.clone(),
            oss_object: "rec/cam1/clips/all.m3u8".into(),
            start_time: utc_seconds(start - chrono::Duration::seconds(1)),
            end_time: utc_seconds(start + chrono::Duration::seconds(61)),
            ..Default::default()
        })
        .await
        .expect("create over the imported recording")
        .into_inner()
        .record_info
        .unwrap();
    let seconds: f64 = media().segments.iter().map(|s| s.duration).sum();
    assert!(
        (info.duration - seconds).abs() < 0.01,
        "{} vs {seconds}",
        info.duration
    );
    let probe = ffprobe(&info.record_url).await;
    assert_eq!(
        probe.frames,
        media().segments.iter().map(|s| s.frames()).sum::<u64>(),
        "{probe:?}"
    );
}

#[tokio::test]
async fn without_program_date_time_the_upload_time_dates_segments() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "rec/cam2/segs").await;
    let uploaded = Utc::now();
    weed.put_object(
        &bucket,
        "rec/cam2/index.m3u8",
        recorder_playlist(uploaded, false).into(),
        "application/vnd.apple.mpegurl",
    )
    .await;

    let (ok, stdout, stderr) = import(&server, &endpoint, &bucket, "cam2", "rec/cam2/index.m3u8");
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("10 new"), "{stdout}");
    // Each segment ends when it was uploaded: all of them end within the
    // last minute, so a range over the last two minutes selects them all.
    let mut client = server.client().await;
    let now = Utc::now() + chrono::Duration::seconds(1);
    let info = client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam2".into(),
            oss_endpoint: endpoint.clone(),
            oss_bucket: bucket.clone(),
            oss_object: "rec/cam2/clip.m3u8".into(),
            start_time: utc_seconds(now - chrono::Duration::seconds(120)),
            end_time: utc_seconds(now),
            ..Default::default()
        })
        .await
        .expect("create over the imported recording")
        .into_inner()
        .record_info
        .unwrap();
    let seconds: f64 = media().segments.iter().map(|s| s.duration).sum();
    assert!(
        (info.duration - seconds).abs() < 0.01,
        "{} vs {seconds}",
        info.duration
    );
}

#[tokio::test]
async fn a_missing_playlist_fails_with_a_clear_message() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let bucket = weed.create_bucket().await;
    let (ok, _, stderr) = import(
        &server,
        &weed.endpoint_name(Addressing::Path),
        &bucket,
        "cam3",
        "nope/index.m3u8",
    );
    assert!(!ok);
    assert!(
        stderr.contains("nope/index.m3u8") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_prefix_of_ts_objects_is_probed_and_dated_by_upload() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "rec/cam4").await;
    weed.put_object(
        &bucket,
        "rec/cam4/notes.txt",
        "not media".into(),
        "text/plain",
    )
    .await;

    let (ok, stdout, stderr) = import_from(
        &server,
        &endpoint,
        &bucket,
        "cam4",
        &["--prefix", "rec/cam4/"],
    );
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("10 segments listed, 10 new, 0 already registered, 0 outside"),
        "{stdout}"
    );
    let (ok, stdout, _) = import_from(
        &server,
        &endpoint,
        &bucket,
        "cam4",
        &["--prefix", "rec/cam4/"],
    );
    assert!(
        ok && stdout.contains("0 new, 10 already registered"),
        "{stdout}"
    );

    let mut client = server.client().await;
    let now = Utc::now() + chrono::Duration::seconds(1);
    let info = client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam4".into(),
            oss_endpoint: endpoint.clone(),
            oss_bucket: bucket.clone(),
            oss_object: "rec/cam4/clip.m3u8".into(),
            start_time: utc_seconds(now - chrono::Duration::seconds(120)),
            end_time: utc_seconds(now),
            ..Default::default()
        })
        .await
        .expect("create over the imported prefix")
        .into_inner()
        .record_info
        .unwrap();
    let seconds: f64 = media().segments.iter().map(|s| s.duration).sum();
    assert!(
        (info.duration - seconds).abs() < 0.5,
        "{} vs {seconds}",
        info.duration
    );
    assert_eq!((info.width, info.height), (MEDIA_WIDTH, MEDIA_HEIGHT));
}

#[tokio::test]
async fn segments_past_retention_are_counted_not_fatal() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "old/cam5/segs").await;
    let long_ago = recording_start(Duration::from_secs(100 * 86_400));
    weed.put_object(
        &bucket,
        "old/cam5/index.m3u8",
        recorder_playlist(long_ago, true).into(),
        "application/vnd.apple.mpegurl",
    )
    .await;
    let (ok, stdout, stderr) = import(&server, &endpoint, &bucket, "cam5", "old/cam5/index.m3u8");
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "10 segments listed, 0 new, 0 already registered, 10 outside the 90 days kept"
        ),
        "{stdout}"
    );
}
