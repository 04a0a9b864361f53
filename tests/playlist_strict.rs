//! Every kind of playlist the service writes (whole segments, holes,
//! resolution changes, absolute URLs to another bucket, keyframe clips with
//! byte ranges) passes a strict HLS parser, npm's hls-parser in strict mode.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};

fn validator() -> PathBuf {
    require_npm_packages(&["hls-parser"]).join("validate-playlists.js")
}

#[tokio::test]
async fn every_playlist_kind_passes_a_strict_parser() {
    let node = require(NODE);
    let validator = validator();
    let server = Server::start("").await;
    let mut client = server.client().await;
    // The local store of local mode: segments are files under data/objects.
    let objects = server.data_dir.join("objects");
    for segment in &media().segments {
        let path = objects
            .join("rec-bucket/live/cam/")
            .join(&segment.file_name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &segment.bytes).unwrap();
    }
    let start = recording_start(Duration::from_secs(20 * 60));
    let mut segments: Vec<Segment> =
        recorded_segments("localhost", "rec-bucket", "live/cam", start);
    segments.remove(4); // a hole
    for later in &mut segments[6..] {
        later.width = 1280; // a resolution change (as registered)
        later.height = 720;
    }
    client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            segments,
            client_token: String::new(),
        })
        .await
        .unwrap();

    let mut written = Vec::new();
    let cases = [
        ("rec-bucket", "live/cam/index/{RecordId}.m3u8", 0, 60, ""),
        ("other-bucket", "clips/{EscapedStartTime}.m3u8", 0, 60, ""),
        ("rec-bucket", "live/cam/clip.m3u8", 8, 27, "KEYFRAME"),
        ("rec-bucket", "live/cam/inside.m3u8", 13, 16, "KEYFRAME"),
    ];
    for (bucket, object, from, to, mode) in cases {
        let answer = client
            .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
                domain_name: "example.com".into(),
                app_name: "live".into(),
                stream_name: "cam".into(),
                oss_endpoint: "localhost".into(),
                oss_bucket: bucket.into(),
                oss_object: object.into(),
                start_time: utc_seconds(start + chrono::Duration::seconds(from)),
                end_time: utc_seconds(start + chrono::Duration::seconds(to)),
                clip_mode: mode.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if mode == "KEYFRAME" {
            assert_eq!(answer.clip_mode, "KEYFRAME", "{}", answer.clip_note);
        }
        let info = answer.record_info.unwrap();
        written.push(objects.join(&info.oss_bucket).join(&info.oss_object));
    }
    let texts: Vec<String> = written
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(texts[0].contains("#EXT-X-DISCONTINUITY"), "{}", texts[0]);
    assert!(texts[1].contains("file:///"), "{}", texts[1]);
    assert!(texts[2].contains("#EXT-X-BYTERANGE:"), "{}", texts[2]);

    let output = Command::new(node)
        .arg(&validator)
        .args(&written)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "hls-parser (strict) rejected a playlist:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("4 playlists accepted"));
}
