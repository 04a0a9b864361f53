//! Playlists as the web's players take them: Debian's Chromium, headless,
//! plays ranges from the playback listener through hls.js to their end
//! (whole segments, and a keyframe clip of byte ranges), and npm's
//! hls-parser in strict mode accepts every kind of playlist the service
//! makes, per request (media, I-frame and master) or written by Create.
//! Against the real binary, ffmpeg-made media in SeaweedFS or in local
//! mode's directory, and the real browser.
//!
//! The browser enforces the same-origin policy, as it does for a user: the
//! test page is on an origin of its own, the playlists come from the
//! playback listener (which lists the page's origin in `cors_origins`) and
//! the segments from SeaweedFS through presigned URLs (the bucket's CORS
//! rules allow the page's origin, as an operator sets them with
//! PutBucketCors) or, in local mode, from the listener itself. A page of
//! another origin plays nothing.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};

const DOMAIN: &str = "example.com";
const APP: &str = "app";
const STREAM: &str = "stream";

/// The real binary with an S3 endpoint whose segments are presigned and the
/// playback listener, and the recorded media uploaded (not yet registered).
struct Scenario {
    weed: &'static SeaweedFs,
    server: Server,
    playback: String,
    endpoint: String,
    bucket: String,
    prefix: String,
    /// When the recording starts: segment `i` starts about `6 * i` s later.
    start: DateTime<Utc>,
    segments: Vec<Segment>,
    /// The port of the page's origin, which the listener and the bucket
    /// allow.
    page_port: u16,
    /// The port of an origin the listener allows and the bucket does not.
    listener_only_port: u16,
    /// The port of an origin neither allows.
    other_port: u16,
}

impl Scenario {
    async fn new(live_idle_secs: u32) -> Scenario {
        let weed = seaweedfs();
        let [page_port, listener_only_port, other_port] = free_ports();
        let toml = format!(
            "{}segment_urls = \"presigned\"\n\n\
             [playback]\nlisten = \"127.0.0.1:0\"\nlive_idle_secs = {live_idle_secs}\n\
             cors_origins = [\"{}\", \"{}\"]\n",
            weed.endpoint_toml(Addressing::Path),
            page_origin(page_port),
            page_origin(listener_only_port),
        );
        let server = Server::start(&toml).await;
        let playback = format!("http://{}", server.playback_addr().await);
        let endpoint = weed.endpoint_name(Addressing::Path);
        let bucket = weed.create_bucket().await;
        weed.allow_origins(&bucket, &[&page_origin(page_port)])
            .await;
        let prefix = format!("live/{APP}/{STREAM}");
        weed.upload_media(&bucket, &prefix).await;
        let start = recording_start(Duration::from_secs(20 * 60));
        let segments = recorded_segments(&endpoint, &bucket, &prefix, start);
        Scenario {
            weed,
            server,
            playback,
            endpoint,
            bucket,
            prefix,
            start,
            segments,
            page_port,
            listener_only_port,
            other_port,
        }
    }

    /// Registers `segments` as `stream`'s.
    async fn register_as(&self, stream: &str, segments: &[Segment]) {
        register(&self.server, stream, segments).await;
    }

    async fn register(&self, segments: &[Segment]) {
        self.register_as(STREAM, segments).await;
    }

    fn url(&self, query: &str) -> String {
        self.file_url(STREAM, "index.m3u8", query)
    }

    /// The URL of the playlist `file` of `stream`.
    fn file_url(&self, stream: &str, file: &str, query: &str) -> String {
        format!(
            "{}/v1/{DOMAIN}/{APP}/{stream}/{file}?{query}",
            self.playback
        )
    }

    /// `yyyy-MM-ddTHH:mm:ssZ`, `seconds` into the recording.
    fn at(&self, seconds: i64) -> String {
        utc_seconds(self.start + chrono::Duration::seconds(seconds))
    }
}

async fn register(server: &Server, stream: &str, segments: &[Segment]) {
    server
        .client()
        .await
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            segments: segments.to_vec(),
        })
        .await
        .unwrap();
}

/// The playlist at `url`, which must be served.
async fn playlist(url: &str) -> String {
    let response = http_get(url).await;
    assert_eq!(response.status, 200, "{url}: {}", response.text());
    response.text()
}

fn seconds(indexes: std::ops::RangeInclusive<usize>) -> f64 {
    media().segments[indexes].iter().map(|s| s.duration).sum()
}

/// `played` went to the end of a playlist of `fragments` segments lasting
/// `duration` seconds, without an error.
fn assert_played_whole(played: &BrowserPlay, url: &str, duration: f64, fragments: usize) {
    assert!(
        played.errors.is_empty(),
        "errors while playing {url}: {played:#?}"
    );
    assert!(played.ended, "{url} did not play to its end: {played:#?}");
    // The first picture comes two frames (0.08 s) after its fragment's
    // start; more would be frames at the start that could not be decoded.
    assert!(
        played.start_gap <= 0.1,
        "media starts {} s late: {played:#?}",
        played.start_gap
    );
    assert!(
        (played.current_time - duration).abs() <= 0.2,
        "ended at {} s of {duration} s: {played:#?}",
        played.current_time
    );
    assert_eq!(
        played.fragments_loaded, fragments,
        "fragments loaded: {played:#?}"
    );
}

#[tokio::test]
async fn a_browser_plays_a_closed_range_to_the_end() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 4);
    let url = scenario.url(&format!("start={start}&end={end}"));
    let text = playlist(&url).await;
    let segments = Playlist::parse(&text);
    assert_eq!(segments.entries.len(), 3);
    assert!(
        segments
            .uris()
            .iter()
            .all(|uri| uri.contains("X-Amz-Signature=")),
        "{text}"
    );

    let played = play_in_browser(&url, scenario.page_port).await;
    assert_played_whole(&played, &url, seconds(2..=4), 3);
}

#[tokio::test]
async fn a_browser_plays_a_keyframe_clip_through_its_byte_ranges() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    // From the keyframe at 14 s in segment 2 (12..18 s) to the one at 27 s
    // in segment 4 (24..30 s): both ends are byte ranges of their segments.
    let query = format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        scenario.at(14),
        scenario.at(27)
    );
    let url = scenario.url(&query);
    let text = playlist(&url).await;
    assert_eq!(text.matches("#EXT-X-BYTERANGE:").count(), 2, "{text}");
    let clip = Playlist::parse(&text);
    let duration = clip.total_duration();
    assert!(
        (duration - 13.0).abs() <= 0.001,
        "the clip is {duration} s:\n{text}"
    );

    let played = play_in_browser(&url, scenario.page_port).await;
    assert_played_whole(&played, &url, duration, clip.entries.len());
}

#[tokio::test]
async fn a_page_of_an_origin_not_allowed_plays_nothing() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 4);
    let url = scenario.url(&format!("start={start}&end={end}"));
    let blocked = |played: &BrowserPlay, error: &str| {
        assert!(
            played.errors.iter().any(|e| e.contains(error)),
            "no {error} playing {url}: {played:#?}"
        );
        assert!(
            played
                .console
                .iter()
                .any(|line| line.contains("CORS policy")),
            "the browser blocked nothing by CORS: {played:#?}"
        );
        assert!(!played.ended && played.fragments_loaded == 0, "{played:#?}");
    };
    // Hardly a second passes before hls.js's errors, fatal or retried.
    let options = |port| PlayOptions {
        deadline: Duration::from_secs(15),
        ..PlayOptions::on_page_port(port)
    };

    // Neither the listener nor the bucket allows the page's origin: the
    // browser keeps the playlist from the page.
    let played = play_in_browser_with(&url, &options(scenario.other_port)).await;
    blocked(&played, "manifestLoadError");
    // The listener allows it, the bucket does not: the playlist loads and
    // no segment does.
    let played = play_in_browser_with(&url, &options(scenario.listener_only_port)).await;
    blocked(&played, "fragLoadError");
}

#[tokio::test]
async fn a_browser_plays_a_local_mode_recording_from_the_listener() {
    // Local mode (no accounts) with a config file, which lets the page's
    // origin read the listener's answers.
    let [page_port] = free_ports();
    let toml = format!(
        "[playback]\nlisten = \"127.0.0.1:0\"\ncors_origins = [\"{}\"]\n",
        page_origin(page_port)
    );
    let server = Server::start(&toml).await;
    let playback = format!("http://{}", server.playback_addr().await);
    let (bucket, prefix) = ("local-bucket", format!("live/{APP}/{STREAM}"));
    media().write_to(&server.data_dir.join("objects").join(bucket).join(&prefix));
    let start = recording_start(Duration::from_secs(20 * 60));
    let segments = recorded_segments("localhost", bucket, &prefix, start);
    register(&server, STREAM, &segments).await;

    // A keyframe clip: segment 3 whole, segments 2 and 4 byte ranges, each
    // from the listener, which answers the page's preflight for `Range`.
    let at = |s: i64| utc_seconds(start + chrono::Duration::seconds(s));
    let url = format!(
        "{playback}/v1/{DOMAIN}/{APP}/{STREAM}/index.m3u8?start={}&end={}&ClipMode=KEYFRAME",
        at(14),
        at(27)
    );
    let text = playlist(&url).await;
    let clip = Playlist::parse(&text);
    assert_eq!(text.matches("#EXT-X-BYTERANGE:").count(), 2, "{text}");
    assert!(
        clip.uris()
            .iter()
            .all(|uri| uri.starts_with("/objects/localhost/")),
        "{text}"
    );
    let played = play_in_browser(&url, page_port).await;
    assert_played_whole(&played, &url, clip.total_duration(), clip.entries.len());
}

#[tokio::test]
async fn a_strict_parser_accepts_closed_and_keyframe_clipped_ranges() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;

    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let text = playlist(&scenario.url(&format!("start={start}&end={end}"))).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!(parsed.segments, 5, "{text}");
    assert_eq!(parsed.playlist_type.as_deref(), Some("VOD"), "{text}");
    assert!(parsed.endlist, "{text}");
    assert_eq!(parsed.byte_ranges, 0, "{text}");

    // Segment 2 covers 12..18 s and segment 5 30..36 s of the recording:
    // the range cuts into both, which are trimmed to their keyframes.
    let query = format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        scenario.at(14),
        scenario.at(33)
    );
    let text = playlist(&scenario.url(&query)).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!(parsed.version, Some(4), "{text}");
    assert_eq!(parsed.segments, 4, "{text}");
    assert_eq!(parsed.byte_ranges, 2, "{text}");
    assert!(parsed.endlist, "{text}");

    // A clip inside one segment: one byte range, trimmed at both ends.
    let query = format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        scenario.at(13),
        scenario.at(16)
    );
    let text = playlist(&scenario.url(&query)).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!((parsed.segments, parsed.byte_ranges), (1, 1), "{text}");
}

#[tokio::test]
async fn a_strict_parser_accepts_event_playlists_at_the_live_edge_and_ended() {
    // Recorded 20 minutes ago and idle for less than a day: still live.
    let live = Scenario::new(86_400).await;
    live.register(&live.segments[..5]).await;
    let (start, _) = range_selecting(&live.segments, 0, 1);
    let text = playlist(&live.url(&format!("start={start}"))).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!(parsed.playlist_type.as_deref(), Some("EVENT"), "{text}");
    assert!(!parsed.endlist, "{text}");
    assert_eq!(parsed.segments, 5, "{text}");

    let iframes = live.file_url(STREAM, "iframes.m3u8", &format!("start={start}"));
    let text = playlist(&iframes).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert!(parsed.iframes_only, "{text}");
    assert_eq!(parsed.playlist_type.as_deref(), Some("EVENT"), "{text}");
    assert!(!parsed.endlist, "{text}");
    assert_eq!(parsed.segments, 5 * 6, "{text}");

    // Idle for longer than a minute: the range has ended.
    let ended = Scenario::new(60).await;
    ended.register(&ended.segments).await;
    let (start, _) = range_selecting(&ended.segments, 0, 1);
    let text = playlist(&ended.url(&format!("start={start}"))).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert!(parsed.endlist, "{text}");
    assert_eq!(parsed.segments, ended.segments.len(), "{text}");
    let iframes = ended.file_url(STREAM, "iframes.m3u8", &format!("start={start}"));
    let text = playlist(&iframes).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert!(parsed.iframes_only && parsed.endlist, "{text}");
    assert_eq!(parsed.segments, ended.segments.len() * 6, "{text}");
}

#[tokio::test]
async fn a_strict_parser_accepts_iframe_playlists_and_the_master_naming_them() {
    let scenario = Scenario::new(120).await;
    for stream in [STREAM, "prog_a", "prog_b"] {
        scenario.register_as(stream, &scenario.segments).await;
    }
    // Six keyframes a segment, each its own entry with a byte range and
    // the segment's PAT and PMT as EXT-X-MAP.
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let range = format!("start={start}&end={end}");
    let text = playlist(&scenario.file_url(STREAM, "iframes.m3u8", &range)).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert!(parsed.iframes_only, "{text}");
    assert_eq!(parsed.version, Some(5), "{text}");
    assert_eq!(parsed.playlist_type.as_deref(), Some("VOD"), "{text}");
    assert!(parsed.endlist, "{text}");
    assert_eq!(
        (parsed.segments, parsed.byte_ranges, parsed.maps),
        (30, 30, 30),
        "{text}"
    );
    assert_eq!(parsed.target_duration, Some(1.0), "{text}");

    // A KEYFRAME clip's keyframes, 14 to 26 s into the recording.
    let clip = format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        scenario.at(14),
        scenario.at(27)
    );
    let text = playlist(&scenario.file_url(STREAM, "iframes.m3u8", &clip)).await;
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!((parsed.segments, parsed.maps), (13, 13), "{text}");

    let query = format!("{range}&Renditions=_a,_b");
    let master = playlist(&scenario.file_url("prog", "master.m3u8", &query)).await;
    let parsed = assert_strict_hls(&master, PlaylistKind::Master).await;
    assert_eq!(parsed.variants.len(), 2, "{master}");
    assert_eq!(parsed.iframe_variants.len(), 2, "{master}");
    for (uri, stream) in parsed.iframe_variants.iter().zip(["prog_a", "prog_b"]) {
        let own = uri
            .strip_prefix(&format!("../{stream}/iframes.m3u8?"))
            .unwrap_or_else(|| panic!("{uri} is not {stream}'s I-frame playlist"));
        let text = playlist(&scenario.file_url(stream, "iframes.m3u8", own)).await;
        let iframes = assert_strict_hls(&text, PlaylistKind::Media).await;
        assert!(iframes.iframes_only, "{text}");
        assert_eq!(iframes.segments, 30, "{text}");
    }
}

#[tokio::test]
async fn a_strict_parser_accepts_what_create_writes() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    // The same recording as two renditions of a program, `prog_a` and
    // `prog_b`: the master playlist lists both (the media is the same, the
    // playlists are what is checked here).
    for suffix in ["_a", "_b"] {
        scenario
            .register_as(&format!("prog{suffix}"), &scenario.segments)
            .await;
    }
    let mut client = scenario.server.client().await;
    let create =
        |stream: &str, object: &str, renditions: &[&str]| CreateLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            oss_endpoint: scenario.endpoint.clone(),
            oss_bucket: scenario.bucket.clone(),
            oss_object: object.into(),
            start_time: scenario.at(-1),
            end_time: scenario.at(25),
            renditions: renditions.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };

    let object = format!("{}/index/{{RecordId}}.m3u8", scenario.prefix);
    let info = client
        .create_live_stream_record_index_files(create(STREAM, &object, &[]))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let text = scenario
        .weed
        .get_object(&scenario.bucket, &info.oss_object)
        .await
        .text();
    let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
    assert_eq!(parsed.playlist_type.as_deref(), Some("VOD"), "{text}");
    assert!(parsed.endlist, "{text}");
    assert_eq!(parsed.segments, 4, "{text}");

    let info = client
        .create_live_stream_record_index_files(create("prog", "prog/master.m3u8", &["_a", "_b"]))
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    let master = scenario
        .weed
        .get_object(&scenario.bucket, &info.oss_object)
        .await
        .text();
    let parsed = assert_strict_hls(&master, PlaylistKind::Master).await;
    assert_eq!(
        parsed.variants,
        ["master_a.m3u8", "master_b.m3u8"],
        "{master}"
    );
    for variant in &parsed.variants {
        let text = scenario
            .weed
            .get_object(&scenario.bucket, &format!("prog/{variant}"))
            .await
            .text();
        let parsed = assert_strict_hls(&text, PlaylistKind::Media).await;
        assert_eq!(parsed.segments, 4, "{variant}: {text}");
    }
    // A master playlist is not a media playlist, nor the other way round.
    let refused = hls_parse(&master, PlaylistKind::Media).await;
    assert!(!refused.errors.is_empty(), "{master}");
}
