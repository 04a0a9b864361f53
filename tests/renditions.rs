//! A program recorded in two renditions, indexed together: one media
//! playlist each and a master playlist that a player opens.

mod common;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use record_index::proto::{CreateLiveStreamRecordIndexFilesRequest, Segment};

/// Four 6 s segments of the test pattern at one size, from one encoder run.
fn rendition(width: u32, height: u32) -> Vec<Bytes> {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(require(FFMPEG))
        .current_dir(dir.path())
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={width}x{height}:rate=25"),
            "-t",
            "24",
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
            "-f",
            "hls",
            "-hls_time",
            "6",
            "-hls_list_size",
            "0",
            "-hls_segment_filename",
            "r%03d.ts",
            "r.m3u8",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    (0..4)
        .map(|i| Bytes::from(std::fs::read(dir.path().join(format!("r{i:03}.ts"))).unwrap()))
        .collect()
}

#[tokio::test]
async fn renditions_make_a_master_playlist() {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let mut client = server.client().await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    let start = recording_start(Duration::from_secs(20 * 60));
    for (suffix, width, height, shift) in [
        ("_360p", 640, 360, 0),
        ("_180p", 320, 180, 0),
        ("_late", 320, 180, 3),
    ] {
        let mut segments = Vec::new();
        for (i, bytes) in rendition(width, height).into_iter().enumerate() {
            let key = format!("prog{suffix}/{i:03}.ts");
            let size = bytes.len() as i64;
            weed.put_object(&bucket, &key, bytes, "video/mp2t").await;
            segments.push(Segment {
                oss_endpoint: endpoint.clone(),
                oss_bucket: bucket.clone(),
                oss_object: key,
                start_time: utc_millis(start + chrono::Duration::seconds(6 * i as i64 + shift)),
                duration: 6.0,
                sequence: i as i64,
                width: width as i32,
                height: height as i32,
                format: "ts".into(),
                size,
            });
        }
        client
            .register_live_stream_record_segments(register_request(
                &format!("prog{suffix}"),
                segments,
            ))
            .await
            .unwrap();
    }
    let request = |renditions: &[&str]| CreateLiveStreamRecordIndexFilesRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "prog".into(),
        oss_endpoint: endpoint.clone(),
        oss_bucket: bucket.clone(),
        oss_object: "prog/master.m3u8".into(),
        start_time: utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: utc_seconds(start + chrono::Duration::seconds(25)),
        renditions: renditions.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let info = client
        .create_live_stream_record_index_files(request(&["_360p", "_180p"]))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    assert_eq!(info.oss_object, "prog/master.m3u8");
    assert_eq!((info.width, info.height, info.duration), (640, 360, 24.0));
    let master = weed.get_object(&bucket, "prog/master.m3u8").await.text();
    let lines: Vec<&str> = master.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let variants: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert!(
        variants[0].contains("RESOLUTION=640x360") && variants[1].contains("RESOLUTION=320x180"),
        "{master}"
    );
    for variant in &variants {
        assert!(variant.contains("CODECS=\"avc1."), "{master}");
        let bandwidth: u64 = variant
            .split("BANDWIDTH=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(bandwidth > 10_000, "{master}");
    }
    assert!(
        lines.contains(&"master_360p.m3u8") && lines.contains(&"master_180p.m3u8"),
        "{master}"
    );
    for media in ["prog/master_360p.m3u8", "prog/master_180p.m3u8"] {
        let probe = ffprobe(&weed.object_url(&bucket, media)).await;
        assert_eq!(
            (probe.frames, probe.errors.as_str()),
            (600, ""),
            "{media}: {probe:?}"
        );
    }
    let probe = ffprobe(&info.record_url).await;
    assert_eq!(probe.errors, "", "{probe:?}");
    assert!(probe.frames >= 600, "{probe:?}");

    // A rendition cut 3 s off the others cannot share their master.
    let status = client
        .create_live_stream_record_index_files(request(&["_360p", "_late"]))
        .await
        .unwrap_err();
    assert_error(
        &status,
        tonic::Code::FailedPrecondition,
        "OperationNotSupport",
    );
    let status = client
        .create_live_stream_record_index_files(request(&["_360p", "_missing"]))
        .await
        .unwrap_err();
    assert_error(&status, tonic::Code::NotFound, "InvalidStream.NotFound");
}

#[tokio::test]
async fn a_rendition_key_over_the_key_rules_is_refused_before_anything_is_written() {
    let server = Server::start("").await;
    let mut client = server.client().await;
    let start = recording_start(Duration::from_secs(20 * 60));
    let long_suffix = format!("_{}", "r".repeat(31));
    for suffix in ["_a", long_suffix.as_str()] {
        let place = ("localhost", "keys-bucket", &*format!("prog{suffix}"));
        let segments = plain_segments(place, start, 0..3, 6);
        client
            .register_live_stream_record_segments(register_request(
                &format!("prog{suffix}"),
                segments,
            ))
            .await
            .unwrap();
    }
    // 1,020 bytes: a valid OssObject, whose rendition key would be 1,052.
    let key = format!("{}{}.m3u8", "abcdefgh/".repeat(112), "k".repeat(7));
    assert_eq!(key.len(), 1020);
    let request = CreateLiveStreamRecordIndexFilesRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "prog".into(),
        oss_endpoint: "localhost".into(),
        oss_bucket: "keys-bucket".into(),
        oss_object: key,
        start_time: utc_seconds(start - chrono::Duration::seconds(1)),
        end_time: utc_seconds(start + chrono::Duration::seconds(19)),
        renditions: vec!["_a".into(), long_suffix.clone()],
        ..Default::default()
    };
    let status = client
        .create_live_stream_record_index_files(request)
        .await
        .unwrap_err();
    assert_error(
        &status,
        tonic::Code::InvalidArgument,
        "InvalidOssObject.Malformed",
    );
    assert!(
        status.message().contains(&long_suffix),
        "the message does not name the rendition: {}",
        status.message()
    );
    let written: Vec<_> = walk(&server.data_dir.join("objects"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "m3u8"))
        .collect();
    assert!(written.is_empty(), "playlists were written: {written:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
