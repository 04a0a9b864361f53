//! ClipMode KEYFRAME: the first and last segments trimmed with byte ranges
//! to the keyframes around the range, played by ffprobe over HTTP from
//! SeaweedFS: the frames decoded match the range to within one GOP.

mod common;

use std::time::Duration;

use common::*;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, CreateLiveStreamRecordIndexFilesResponse,
    RegisterLiveStreamRecordSegmentsRequest,
};

/// One GOP of the test media: a keyframe every second at 25 fps.
const GOP_FRAMES: i64 = 25;

struct Recording {
    weed: &'static SeaweedFs,
    server: Server,
    endpoint: String,
    bucket: String,
    start: chrono::DateTime<chrono::Utc>,
}

/// The test media with the PAT/PMT packets after the first ones of
/// segment 2 replaced by null packets: its later keyframes have no tables
/// right before them, so a decoder cannot start there.
fn without_later_tables(segment: &[u8]) -> Vec<u8> {
    let mut bytes = segment.to_vec();
    let mut seen_video = false;
    for packet in bytes.chunks_mut(188) {
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        if pid == 0x100 {
            seen_video = true;
        }
        // PAT is PID 0; ffmpeg puts the PMT on PID 0x1000.
        if seen_video && (pid == 0 || pid == 0x1000) {
            packet[1] = 0x1f;
            packet[2] = 0xff;
            packet[3] &= 0x3f;
        }
    }
    bytes
}

async fn recording() -> Recording {
    let weed = seaweedfs();
    let server = Server::start(&weed.endpoint_toml(Addressing::Path)).await;
    let endpoint = weed.endpoint_name(Addressing::Path);
    let bucket = weed.create_bucket().await;
    weed.upload_media(&bucket, "clip/segs").await;
    let start = recording_start(Duration::from_secs(20 * 60));
    let segments = recorded_segments(&endpoint, &bucket, "clip/segs", start);
    server
        .client()
        .await
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "clip".into(),
            segments,
            client_token: String::new(),
        })
        .await
        .unwrap();
    Recording {
        weed,
        server,
        endpoint,
        bucket,
        start,
    }
}

impl Recording {
    async fn clip(
        &self,
        from_s: i64,
        to_s: i64,
        mode: &str,
        object: &str,
    ) -> CreateLiveStreamRecordIndexFilesResponse {
        self.server
            .client()
            .await
            .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
                domain_name: "example.com".into(),
                app_name: "live".into(),
                stream_name: "clip".into(),
                oss_endpoint: self.endpoint.clone(),
                oss_bucket: self.bucket.clone(),
                oss_object: object.into(),
                start_time: utc_seconds(self.start + chrono::Duration::seconds(from_s)),
                end_time: utc_seconds(self.start + chrono::Duration::seconds(to_s)),
                clip_mode: mode.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }
}

/// Decodes every video frame of a playlist over HTTP as a player does and
/// returns (frames, decoder errors). ffmpeg's HLS reader reuses one HTTP
/// connection across segments by default, and after a bounded Range request
/// to SeaweedFS the next segment on that connection comes back short (the
/// same playlist read from files, or without connection reuse, decodes
/// cleanly), so each segment gets its own connection here.
fn decode(url: &str) -> (i64, String) {
    let output = std::process::Command::new(require(FFPROBE))
        .args([
            "-v",
            "error",
            "-http_persistent",
            "0",
            "-protocol_whitelist",
            "file,http,https,tcp,tls,crypto",
        ])
        .args([
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            url,
        ])
        .output()
        .expect("run ffprobe");
    // HLS input lists the stream twice (program and stream sections).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let frames = stdout
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("ffprobe printed no frame count for {url}: {stdout:?}"));
    (frames, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn assert_plays_about(url: &str, seconds: i64) {
    let (frames, errors) = decode(url);
    assert_eq!(errors, "", "decoding {url}");
    assert!(
        (frames - seconds * 25).abs() <= GOP_FRAMES,
        "{frames} frames for {seconds} s from {url}"
    );
}

#[tokio::test]
async fn a_keyframe_clip_plays_the_range_not_whole_segments() {
    let r = recording().await;
    // Segment 2 covers 12..18 s and segment 5 covers 30..36 s of the
    // recording: the range cuts into both.
    let answer = r.clip(14, 33, "KEYFRAME", "clip/keyframe.m3u8").await;
    assert_eq!(answer.clip_mode, "KEYFRAME", "{}", answer.clip_note);
    assert_eq!(answer.clip_note, "");
    let info = answer.record_info.unwrap();
    assert!((info.duration - 19.0).abs() <= 1.0, "{}", info.duration);
    let playlist = r.weed.get_object(&r.bucket, &info.oss_object).await.text();
    assert!(playlist.contains("#EXT-X-VERSION:4\n"), "{playlist}");
    assert_eq!(
        playlist.matches("#EXT-X-BYTERANGE:").count(),
        2,
        "{playlist}"
    );
    assert!(
        playlist.contains(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            utc_millis(r.start + chrono::Duration::seconds(14))
        )),
        "{playlist}"
    );
    assert_plays_about(&info.record_url, 19);

    // The same range as whole segments plays 12..36 s.
    let whole = r.clip(14, 33, "", "clip/segments.m3u8").await;
    assert_eq!(whole.clip_mode, "SEGMENT");
    let info = whole.record_info.unwrap();
    let playlist = r.weed.get_object(&r.bucket, &info.oss_object).await.text();
    assert!(
        !playlist.contains("BYTERANGE") && playlist.contains("#EXT-X-VERSION:3\n"),
        "{playlist}"
    );
}

#[tokio::test]
async fn a_clip_inside_one_segment_is_trimmed_at_both_ends() {
    let r = recording().await;
    let answer = r.clip(13, 16, "KEYFRAME", "clip/inside.m3u8").await;
    assert_eq!(answer.clip_mode, "KEYFRAME", "{}", answer.clip_note);
    let info = answer.record_info.unwrap();
    let playlist = r.weed.get_object(&r.bucket, &info.oss_object).await.text();
    assert_eq!(playlist.matches("#EXTINF:").count(), 1, "{playlist}");
    assert_eq!(
        playlist.matches("#EXT-X-BYTERANGE:").count(),
        1,
        "{playlist}"
    );
    assert_plays_about(&info.record_url, 3);
}

#[tokio::test]
async fn an_unknown_clip_mode_is_invalid() {
    let r = recording().await;
    let status = r
        .server
        .client()
        .await
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "clip".into(),
            oss_endpoint: r.endpoint.clone(),
            oss_bucket: r.bucket.clone(),
            oss_object: "clip/x.m3u8".into(),
            start_time: utc_seconds(r.start),
            end_time: utc_seconds(r.start + chrono::Duration::seconds(40)),
            clip_mode: "FRAME".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_error(&status, tonic::Code::InvalidArgument, "InvalidParams");
}

#[tokio::test]
async fn an_end_without_tables_before_its_keyframe_keeps_the_whole_segment() {
    let r = recording().await;
    let broken = without_later_tables(&media().segments[2].bytes);
    r.weed
        .put_object(
            &r.bucket,
            "clip/segs/seg002.ts",
            broken.into(),
            "video/mp2t",
        )
        .await;
    // Cut-in lands in segment 2, whose later keyframes lack PAT/PMT; the
    // cut-out in segment 5 still trims.
    let answer = r.clip(14, 33, "KEYFRAME", "clip/fallback.m3u8").await;
    assert_eq!(answer.clip_mode, "KEYFRAME");
    assert!(
        answer.clip_note.contains("seg002.ts") && answer.clip_note.contains("whole segment kept"),
        "{}",
        answer.clip_note
    );
    let info = answer.record_info.unwrap();
    let playlist = r.weed.get_object(&r.bucket, &info.oss_object).await.text();
    assert_eq!(
        playlist.matches("#EXT-X-BYTERANGE:").count(),
        1,
        "{playlist}"
    );
    assert!(
        playlist.contains(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            utc_millis(r.start + chrono::Duration::seconds(12))
        )),
        "{playlist}"
    );
    // From the start of segment 2 (12 s) to the keyframe at 33 s.
    assert_plays_about(&info.record_url, 21);
}
