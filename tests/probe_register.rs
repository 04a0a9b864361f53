//! Segments registered without Duration, Width or Height: the service reads
//! their ends from SeaweedFS and probes them, and the probed PTS shows an
//! encoder restart that wall-clock times hide.

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use record_index::proto::{CreateLiveStreamRecordIndexFilesRequest, Segment};

fn without_metadata(mut segments: Vec<Segment>) -> Vec<Segment> {
    for segment in &mut segments {
        segment.duration = 0.0;
        segment.width = 0;
        segment.height = 0;
        segment.size = 0;
    }
    segments
}

fn create(
    stream: &str,
    endpoint: &str,
    bucket: &str,
    start: String,
    end: String,
) -> CreateLiveStreamRecordIndexFilesRequest {
    CreateLiveStreamRecordIndexFilesRequest {
        clip_mode: String::new(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: stream.into(),
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: format!("{stream}/index.m3u8"),
        start_time: start,
        end_time: end,
        ..Default::default()
    }
}

#[tokio::test]
async fn probed_segments_carry_the_media_facts() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let mut client = server.client().await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "probe/segs").await;
    let start = recording_start(Duration::from_secs(20 * 60));
    let segments = without_metadata(recorded_segments(&endpoint, &bucket, "probe/segs", start));
    let answer = client
        .register_live_stream_record_segments(register_request("probed", segments.clone()))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().accepted, 10);

    let (from, to) = range_selecting(
        &recorded_segments(&endpoint, &bucket, "probe/segs", start),
        0,
        9,
    );
    let info = client
        .create_live_stream_record_index_files(create("probed", &endpoint, &bucket, from, to))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let seconds: f64 = media().segments.iter().map(|s| s.duration).sum();
    // Probed durations come from PTS: within a frame per segment of ffmpeg's.
    assert!(
        (info.duration - seconds).abs() <= 10.0 * 0.04 + 1e-9,
        "{} vs {seconds}",
        info.duration
    );
    assert_eq!((info.width, info.height), (MEDIA_WIDTH, MEDIA_HEIGHT));
    let playlist = weed.get_object(&bucket, &info.oss_object).await.text();
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    let probe = ffprobe(&info.record_url).await;
    assert_eq!(
        probe.frames,
        media().segments.iter().map(|s| s.frames()).sum::<u64>()
    );

    // A retried batch is all duplicates without reading the media again,
    // even once an object is gone from the bucket.
    let gone = http_request(
        "DELETE",
        &weed.object_url(&bucket, "probe/segs/seg003.ts"),
        None,
        None,
        Bytes::new(),
    )
    .await;
    assert!(
        gone.status == 204 || gone.status == 200,
        "DELETE answered {}",
        gone.status
    );
    let again = client
        .register_live_stream_record_segments(register_request("probed", segments))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 10));
}

#[tokio::test]
async fn a_segment_that_cannot_be_probed_rejects_the_batch() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let mut client = server.client().await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "bad/segs").await;
    weed.put_object(
        &bucket,
        "bad/segs/noise.ts",
        Bytes::from(vec![0x47u8; 188 * 50]),
        "video/mp2t",
    )
    .await;
    let start = recording_start(Duration::from_secs(20 * 60));
    let mut segments = without_metadata(recorded_segments(&endpoint, &bucket, "bad/segs", start));
    segments[3].oss_object = "bad/segs/missing.ts".into();
    let status = client
        .register_live_stream_record_segments(register_request("bad", segments.clone()))
        .await
        .unwrap_err();
    assert_error(&status, tonic::Code::InvalidArgument, "InvalidParams");
    assert!(
        status.message().contains("Segments[3]") && status.message().contains("missing.ts"),
        "{}",
        status.message()
    );
    segments[3].oss_object = "bad/segs/noise.ts".into();
    let status = client
        .register_live_stream_record_segments(register_request("bad", segments))
        .await
        .unwrap_err();
    assert_error(&status, tonic::Code::InvalidArgument, "InvalidParams");
    assert!(
        status.message().contains("Segments[3]"),
        "{}",
        status.message()
    );
    // Nothing of either batch was stored.
    let status = client
        .create_live_stream_record_index_files(create(
            "bad",
            &endpoint,
            &bucket,
            utc_seconds(start),
            utc_seconds(start + chrono::Duration::seconds(60)),
        ))
        .await
        .unwrap_err();
    assert_error(&status, tonic::Code::NotFound, "InvalidStream.NotFound");
}

/// Two 6 s segments from a second encoder run: PTS starts over.
fn restarted_encoder_segments() -> Vec<Bytes> {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = require(FFMPEG);
    let status = Command::new(ffmpeg)
        .current_dir(dir.path())
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "12",
        ])
        .args([
            "-c:v",
            "libx264",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-output_ts_offset",
            "5000",
            "-f",
            "hls",
            "-hls_time",
            "6",
            "-hls_list_size",
            "0",
        ])
        .args(["-hls_segment_filename", "r%03d.ts", "r.m3u8"])
        .status()
        .unwrap();
    assert!(status.success());
    (0..2)
        .map(|i| Bytes::from(std::fs::read(dir.path().join(format!("r{i:03}.ts"))).unwrap()))
        .collect()
}

#[tokio::test]
async fn an_encoder_restart_is_a_discontinuity_though_the_clock_runs_on() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let mut client = server.client().await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "restart/segs").await;
    let restarted = restarted_encoder_segments();
    for (i, bytes) in restarted.iter().enumerate() {
        weed.put_object(
            &bucket,
            &format!("restart/segs/r{i:03}.ts"),
            bytes.clone(),
            "video/mp2t",
        )
        .await;
    }
    let start = recording_start(Duration::from_secs(20 * 60));
    // Three segments of the first run, then the restarted encoder's two,
    // back to back on the wall clock.
    let mut segments: Vec<Segment> =
        recorded_segments(&endpoint, &bucket, "restart/segs", start)[..3].to_vec();
    let mut at = segment_end(&segments[2]);
    for i in 0..2 {
        let mut next = segments[0].clone();
        next.oss_object = format!("restart/segs/r{i:03}.ts");
        next.start_time = utc_millis(at);
        next.sequence = 3 + i as i64;
        at += chrono::Duration::seconds(6);
        segments.push(next);
    }
    client
        .register_live_stream_record_segments(register_request(
            "restart",
            without_metadata(segments),
        ))
        .await
        .unwrap();
    let info = client
        .create_live_stream_record_index_files(create(
            "restart",
            &endpoint,
            &bucket,
            utc_seconds(start - chrono::Duration::seconds(1)),
            utc_seconds(at + chrono::Duration::seconds(1)),
        ))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let playlist = weed.get_object(&bucket, &info.oss_object).await.text();
    let lines: Vec<&str> = playlist.lines().collect();
    let at_restart = lines.iter().position(|l| l.ends_with("r000.ts")).unwrap();
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY").count(),
        1,
        "{playlist}"
    );
    assert!(
        lines[..at_restart]
            .iter()
            .rev()
            .take(3)
            .any(|l| *l == "#EXT-X-DISCONTINUITY"),
        "{playlist}"
    );
    let probe = ffprobe(&info.record_url).await;
    assert_eq!(probe.errors, "", "{probe:?}");
    assert_eq!(probe.frames, 5 * 150, "{probe:?}");
}

#[tokio::test]
async fn a_missing_size_is_read_from_the_media_when_it_can_be() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let mut client = server.client().await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "size/segs").await;
    let start = recording_start(Duration::from_secs(20 * 60));
    let mut segments = recorded_segments(&endpoint, &bucket, "size/segs", start);
    for segment in &mut segments {
        segment.width = 0;
        segment.height = 0;
    }
    // An object that is not there keeps its Duration and an unknown size.
    segments[9].oss_object = "size/segs/not-uploaded.ts".into();
    let answer = client
        .register_live_stream_record_segments(register_request("sized", segments.clone()))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().accepted, 10);
    let (from, to) = range_selecting(&segments, 0, 9);
    let info = client
        .create_live_stream_record_index_files(create("sized", &endpoint, &bucket, from, to))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    assert_eq!((info.width, info.height), (MEDIA_WIDTH, MEDIA_HEIGHT));
    let seconds: f64 = media().segments.iter().map(|s| s.duration).sum();
    assert!(
        (info.duration - seconds).abs() < 1e-6,
        "{} vs {seconds}",
        info.duration
    );
}
