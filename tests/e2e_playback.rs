//! End to end against a real S3 server: media that ffmpeg recorded sits in
//! SeaweedFS, record-index catalogs it and writes a playlist there, and
//! ffprobe, standing in for a player, plays the playlist back over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RecordInfo, RegisterLiveStreamRecordSegmentsRequest,
    Segment,
};
use tonic::transport::Channel;

const DOMAIN: &str = "example.com";
const APP: &str = "app";
const STREAM: &str = "stream";
const PLAYLIST_TEMPLATE: &str = "record/{AppName}/{StreamName}/{EscapedStartTime}.m3u8";
const HLS_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// Where a recorder would have put the stream's segments.
fn segment_prefix() -> String {
    format!("live/{APP}/{STREAM}")
}

/// A server configured for `s3` with `addressing`, a fresh bucket holding
/// the uploaded media, and the segments as a recorder would register them
/// (not yet registered).
struct Scenario {
    s3: &'static SeaweedFs,
    server: Server,
    client: RecordIndexClient<Channel>,
    endpoint: String,
    bucket: String,
    segments: Vec<Segment>,
}

impl Scenario {
    async fn new(addressing: Addressing) -> Scenario {
        let s3 = seaweedfs();
        let server = Server::start(&s3.endpoint_toml(addressing)).await;
        let client = server.client().await;
        let endpoint = s3.endpoint_name(addressing);
        let bucket = s3.create_bucket().await;
        s3.upload_media(&bucket, &segment_prefix()).await;
        let segments = recorded_segments(
            &endpoint,
            &bucket,
            &segment_prefix(),
            recording_start(Duration::from_secs(20 * 60)),
        );
        Scenario {
            s3,
            server,
            client,
            endpoint,
            bucket,
            segments,
        }
    }

    async fn register(&mut self, segments: Vec<Segment>) {
        let count = segments.len() as i32;
        let response = register(&mut self.client, segments).await;
        assert_eq!(
            (response.accepted, response.duplicates),
            (count, 0),
            "first registration of {count} segments"
        );
    }

    fn create_request(
        &self,
        bucket: &str,
        range: (String, String),
    ) -> CreateLiveStreamRecordIndexFilesRequest {
        CreateLiveStreamRecordIndexFilesRequest {
            renditions: Vec::new(),
            clip_mode: String::new(),
            client_token: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            oss_endpoint: self.endpoint.clone(),
            oss_bucket: bucket.into(),
            oss_object: PLAYLIST_TEMPLATE.into(),
            start_time: range.0,
            end_time: range.1,
            end_time_included: false,
        }
    }

    async fn create(&mut self, request: CreateLiveStreamRecordIndexFilesRequest) -> RecordInfo {
        let response = self
            .client
            .create_live_stream_record_index_files(request)
            .await
            .unwrap_or_else(|status| panic!("CreateLiveStreamRecordIndexFiles failed: {status:?}"));
        let id = request_id(response.metadata());
        let body = response.into_inner();
        assert_eq!(body.request_id, id, "RequestId in the body vs x-request-id");
        body.record_info.expect("RecordInfo in the response")
    }

    /// Fetches a playlist the service wrote, checking what every player
    /// relies on: it is served as HLS and is a complete VOD playlist.
    async fn fetch_playlist(&self, bucket: &str, key: &str) -> Playlist {
        let response = self.s3.get_object(bucket, key).await;
        assert_eq!(
            response.status,
            200,
            "GET {bucket}/{key}: {}",
            response.text()
        );
        assert_eq!(
            response.header("content-type"),
            Some(HLS_CONTENT_TYPE),
            "Content-Type of the playlist"
        );
        check_vod_playlist(&response.text())
    }
}

async fn register(
    client: &mut RecordIndexClient<Channel>,
    segments: Vec<Segment>,
) -> record_index::proto::RegisterLiveStreamRecordSegmentsResponse {
    let response = client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            segments,
        })
        .await
        .unwrap_or_else(|status| panic!("RegisterLiveStreamRecordSegments failed: {status:?}"));
    let id = request_id(response.metadata());
    let body = response.into_inner();
    assert_eq!(body.request_id, id, "RequestId in the body vs x-request-id");
    body
}

/// RFC 8216 structure shared by every playlist the service writes.
fn check_vod_playlist(text: &str) -> Playlist {
    let playlist = Playlist::parse(text);
    assert_eq!(
        playlist.lines.first().map(String::as_str),
        Some("#EXTM3U"),
        "first line:\n{text}"
    );
    let last = playlist.lines.iter().rev().find(|l| !l.is_empty());
    assert_eq!(
        last.map(String::as_str),
        Some("#EXT-X-ENDLIST"),
        "last line:\n{text}"
    );
    assert_eq!(playlist.tag("#EXT-X-PLAYLIST-TYPE"), Some("VOD"), "{text}");
    assert_eq!(playlist.tag("#EXT-X-VERSION"), Some("3"), "{text}");
    assert!(!playlist.entries.is_empty(), "no segments in:\n{text}");
    let longest = playlist
        .entries
        .iter()
        .map(|e| e.duration)
        .fold(0.0, f64::max);
    assert_eq!(
        playlist.tag("#EXT-X-TARGETDURATION"),
        Some(longest.ceil().to_string().as_str()),
        "TARGETDURATION is the ceiling of the longest EXTINF:\n{text}"
    );
    for line in playlist.lines.iter().filter(|l| l.starts_with("#EXTINF:")) {
        let value = line["#EXTINF:".len()..].split(',').next().unwrap();
        let decimals = value.split_once('.').map(|(_, d)| d.len());
        assert_eq!(decimals, Some(3), "EXTINF with 3 decimals: {line:?}");
    }
    assert!(
        playlist.entries[0].program_date_time.is_some(),
        "the first segment carries #EXT-X-PROGRAM-DATE-TIME:\n{text}"
    );
    playlist
}

/// The object key a relative segment URI points to, resolved against the
/// playlist's own key as a player resolves it against the playlist URL.
fn resolve_relative(playlist_key: &str, uri: &str) -> String {
    assert!(
        !uri.contains("://") && !uri.starts_with('/'),
        "{uri:?} is not a relative URI"
    );
    let mut parts: Vec<&str> = playlist_key.split('/').collect();
    parts.pop();
    for part in uri.split('/') {
        match part {
            ".." => {
                assert!(
                    parts.pop().is_some(),
                    "{uri:?} climbs above the bucket from {playlist_key:?}"
                );
            }
            "." => {}
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn expected_key(start_time: &str) -> String {
    let escaped = parse_utc(start_time).format("%Y-%m-%d-%H-%M-%S");
    format!("record/{APP}/{STREAM}/{escaped}.m3u8")
}

fn media_seconds(range: std::ops::RangeInclusive<usize>) -> f64 {
    media().segments[range].iter().map(|s| s.duration).sum()
}

fn media_frames(indexes: impl IntoIterator<Item = usize>) -> u64 {
    indexes
        .into_iter()
        .map(|i| media().segments[i].frames())
        .sum()
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

/// What a player reading the playlist gets must be exactly the recorded
/// media of the selected segments.
async fn assert_plays(url: &str, seconds: f64, frames: u64) {
    let probe = ffprobe(url).await;
    assert_close(
        probe.duration,
        seconds,
        0.1,
        &format!("ffprobe duration of {url}"),
    );
    assert_eq!(probe.frames, frames, "frames ffprobe decoded from {url}");
    assert_eq!(
        (probe.width, probe.height),
        (MEDIA_WIDTH, MEDIA_HEIGHT),
        "resolution ffprobe read from {url}"
    );
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
}

#[tokio::test]
async fn path_style_playlist_plays_back_the_selected_segments() {
    let mut scenario = Scenario::new(Addressing::Path).await;
    scenario.register(scenario.segments.clone()).await;
    let again = register(&mut scenario.client, scenario.segments.clone()).await;
    assert_eq!(
        (again.accepted, again.duplicates),
        (0, 10),
        "registering the same segments again changes nothing"
    );

    let range = range_selecting(&scenario.segments, 2, 6);
    let bucket = scenario.bucket.clone();
    let info = scenario
        .create(scenario.create_request(&bucket, range.clone()))
        .await;

    let key = expected_key(&range.0);
    assert_eq!(info.oss_object, key, "the expanded key");
    assert_eq!(
        info.record_url,
        scenario.s3.object_url(&bucket, &key),
        "RecordUrl of a path-style endpoint"
    );
    assert_eq!(
        (info.start_time.as_str(), info.end_time.as_str()),
        (range.0.as_str(), range.1.as_str()),
        "times echo the request"
    );
    assert_eq!(
        (
            info.domain_name.as_str(),
            info.app_name.as_str(),
            info.stream_name.as_str()
        ),
        (DOMAIN, APP, STREAM)
    );
    assert_eq!(
        (info.oss_endpoint.as_str(), info.oss_bucket.as_str()),
        (scenario.endpoint.as_str(), bucket.as_str())
    );
    assert_eq!(
        (info.width, info.height),
        (MEDIA_WIDTH, MEDIA_HEIGHT),
        "Width/Height of the first segment"
    );
    assert!(
        uuid::Uuid::parse_str(&info.record_id).is_ok(),
        "RecordId {:?} is a UUID",
        info.record_id
    );
    parse_utc(&info.create_time);

    let playlist = scenario.fetch_playlist(&bucket, &key).await;
    let targets: Vec<String> = playlist
        .uris()
        .iter()
        .map(|uri| resolve_relative(&key, uri))
        .collect();
    let expected: Vec<String> = scenario.segments[2..=6]
        .iter()
        .map(|s| s.oss_object.clone())
        .collect();
    assert_eq!(
        targets, expected,
        "relative URIs lead to segments 2..=6, in order"
    );
    assert_eq!(
        playlist.tag("#EXT-X-MEDIA-SEQUENCE"),
        Some("2"),
        "first selected segment's Sequence"
    );
    assert!(
        playlist.entries.iter().all(|e| !e.discontinuity),
        "no discontinuity in a continuous recording"
    );
    let first_start = parse_utc(playlist.entries[0].program_date_time.as_deref().unwrap());
    assert_eq!(
        first_start,
        segment_start(&scenario.segments[2]),
        "PROGRAM-DATE-TIME is segment 2's start"
    );
    assert_close(
        info.duration,
        playlist.total_duration(),
        1e-6,
        "Duration vs the sum of EXTINF",
    );
    assert_close(
        info.duration,
        media_seconds(2..=6),
        0.0015,
        "Duration vs the recorded media",
    );

    assert_plays(&info.record_url, media_seconds(2..=6), media_frames(2..=6)).await;
}

#[tokio::test]
async fn virtual_hosted_playlist_is_written_to_the_bucket_host() {
    let mut scenario = Scenario::new(Addressing::VirtualHosted).await;
    scenario.register(scenario.segments.clone()).await;
    let range = range_selecting(&scenario.segments, 2, 6);
    let bucket = scenario.bucket.clone();
    let info = scenario
        .create(scenario.create_request(&bucket, range.clone()))
        .await;

    let key = expected_key(&range.0);
    let port = scenario.s3.s3_port;
    assert_eq!(
        info.record_url,
        format!("http://{bucket}.localhost:{port}/{key}"),
        "RecordUrl of a virtual-hosted endpoint"
    );

    // `{bucket}.localhost` does not resolve here, so the request goes to the
    // loopback address with the bucket's Host header, as DNS would send it.
    let by_host = http_request(
        "GET",
        &format!("http://127.0.0.1:{port}/{key}"),
        Some(&format!("{bucket}.localhost:{port}")),
        None,
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(
        by_host.status,
        200,
        "virtual-hosted GET of the playlist: {}",
        by_host.text()
    );
    assert_eq!(by_host.header("content-type"), Some(HLS_CONTENT_TYPE));

    let by_path = scenario.s3.get_object(&bucket, &key).await;
    assert_eq!(
        by_host.body, by_path.body,
        "the same object by host and by path"
    );

    let playlist = scenario.fetch_playlist(&bucket, &key).await;
    let targets: Vec<String> = playlist
        .uris()
        .iter()
        .map(|uri| resolve_relative(&key, uri))
        .collect();
    let expected: Vec<String> = scenario.segments[2..=6]
        .iter()
        .map(|s| s.oss_object.clone())
        .collect();
    assert_eq!(targets, expected, "relative URIs lead to segments 2..=6");
    assert_close(
        info.duration,
        playlist.total_duration(),
        1e-6,
        "Duration vs the sum of EXTINF",
    );

    assert_plays(
        &scenario.s3.object_url(&bucket, &key),
        media_seconds(2..=6),
        media_frames(2..=6),
    )
    .await;
}

#[tokio::test]
async fn playlist_in_another_bucket_points_at_the_segments_by_absolute_url() {
    let mut scenario = Scenario::new(Addressing::Path).await;
    scenario.register(scenario.segments.clone()).await;
    let playlist_bucket = scenario.s3.create_bucket().await;
    let range = range_selecting(&scenario.segments, 2, 6);
    let info = scenario
        .create(scenario.create_request(&playlist_bucket, range.clone()))
        .await;

    let key = expected_key(&range.0);
    assert_eq!(
        info.record_url,
        scenario.s3.object_url(&playlist_bucket, &key)
    );
    let playlist = scenario.fetch_playlist(&playlist_bucket, &key).await;
    let expected: Vec<String> = scenario.segments[2..=6]
        .iter()
        .map(|s| scenario.s3.object_url(&scenario.bucket, &s.oss_object))
        .collect();
    assert_eq!(
        playlist.uris(),
        expected,
        "absolute URLs of segments 2..=6 in the other bucket"
    );

    assert_plays(&info.record_url, media_seconds(2..=6), media_frames(2..=6)).await;
}

#[tokio::test]
async fn end_time_included_adds_the_segment_still_running_at_end_time() {
    let mut scenario = Scenario::new(Addressing::Path).await;
    scenario.register(scenario.segments.clone()).await;
    let bucket = scenario.bucket.clone();
    // EndTime three seconds into segment 6.
    let (start, end_of_5) = range_selecting(&scenario.segments, 2, 5);
    let end = utc_seconds(parse_utc(&end_of_5) + chrono::Duration::seconds(3));
    assert!(parse_utc(&end) < segment_end(&scenario.segments[6]));

    let mut finished_only = scenario.create_request(&bucket, (start.clone(), end.clone()));
    finished_only.oss_object = "record/finished-only.m3u8".into();
    let info = scenario.create(finished_only).await;
    let playlist = scenario.fetch_playlist(&bucket, &info.oss_object).await;
    assert_eq!(
        playlist.entries.len(),
        4,
        "by default segments 2..=5, finished by EndTime:\n{:#?}",
        playlist.lines
    );
    assert_close(
        info.duration,
        media_seconds(2..=5),
        0.0015,
        "Duration without EndTimeIncluded",
    );

    let mut whole_range = scenario.create_request(&bucket, (start, end));
    whole_range.oss_object = "record/whole-range.m3u8".into();
    whole_range.end_time_included = true;
    let info = scenario.create(whole_range).await;
    let playlist = scenario.fetch_playlist(&bucket, &info.oss_object).await;
    let targets: Vec<String> = playlist
        .uris()
        .iter()
        .map(|uri| resolve_relative(&info.oss_object, uri))
        .collect();
    let expected: Vec<String> = scenario.segments[2..=6]
        .iter()
        .map(|s| s.oss_object.clone())
        .collect();
    assert_eq!(targets, expected, "EndTimeIncluded adds segment 6");
    assert_close(
        info.duration,
        media_seconds(2..=6),
        0.0015,
        "Duration with EndTimeIncluded",
    );

    assert_plays(&info.record_url, media_seconds(2..=6), media_frames(2..=6)).await;
}

#[tokio::test]
async fn hole_in_the_recording_is_a_discontinuity_that_still_plays() {
    let mut scenario = Scenario::new(Addressing::Path).await;
    let mut recorded = scenario.segments.clone();
    recorded.remove(4);
    scenario.register(recorded).await;
    let bucket = scenario.bucket.clone();
    let range = range_selecting(&scenario.segments, 2, 6);
    let info = scenario
        .create(scenario.create_request(&bucket, range))
        .await;

    let playlist = scenario.fetch_playlist(&bucket, &info.oss_object).await;
    let targets: Vec<String> = playlist
        .uris()
        .iter()
        .map(|uri| resolve_relative(&info.oss_object, uri))
        .collect();
    let expected: Vec<String> = [2, 3, 5, 6]
        .iter()
        .map(|&i| scenario.segments[i].oss_object.clone())
        .collect();
    assert_eq!(targets, expected, "segments around the hole");
    let discontinuities: Vec<bool> = playlist.entries.iter().map(|e| e.discontinuity).collect();
    assert_eq!(
        discontinuities,
        [false, false, true, false],
        "#EXT-X-DISCONTINUITY before segment 5:\n{:#?}",
        playlist.lines
    );
    let resumed_at = playlist.entries[2]
        .program_date_time
        .as_deref()
        .map(parse_utc);
    assert_eq!(
        resumed_at,
        Some(segment_start(&scenario.segments[5])),
        "PROGRAM-DATE-TIME after the hole"
    );
    let seconds = media_seconds(2..=3) + media_seconds(5..=6);
    assert_close(
        info.duration,
        seconds,
        0.0015,
        "Duration leaves out the hole",
    );

    assert_plays(&info.record_url, seconds, media_frames([2, 3, 5, 6])).await;
}

#[tokio::test]
async fn registered_segments_survive_a_killed_server() {
    let mut scenario = Scenario::new(Addressing::Path).await;
    scenario.register(scenario.segments.clone()).await;
    // SIGKILL: whatever was acknowledged must already be on disk.
    scenario.server.restart().await;
    scenario.client = scenario.server.client().await;

    let again = register(&mut scenario.client, scenario.segments[..3].to_vec()).await;
    assert_eq!(
        (again.accepted, again.duplicates),
        (0, 3),
        "the catalog still knows the segments"
    );
    let bucket = scenario.bucket.clone();
    let info = scenario
        .create(scenario.create_request(&bucket, range_selecting(&scenario.segments, 2, 6)))
        .await;
    let playlist = scenario.fetch_playlist(&bucket, &info.oss_object).await;
    assert_eq!(
        playlist.entries.len(),
        5,
        "segments 2..=6 after the restart"
    );
}

#[tokio::test]
async fn unreachable_object_storage_is_an_unavailable_internal_error() {
    // A loopback port nothing listens on: every connection is refused.
    let [closed_port] = free_ports::<1>();
    let endpoint = format!("127.0.0.1:{closed_port}");
    let config = format!(
        "[[endpoints]]\n\
         name = \"{endpoint}\"\n\
         kind = \"s3\"\n\
         url = \"http://{endpoint}\"\n\
         addressing = \"path\"\n\
         region = \"us-east-1\"\n\
         access_key_id_env = \"TEST_S3_KEY\"\n\
         secret_access_key_env = \"TEST_S3_SECRET\"\n"
    );
    let server = Server::start(&config).await;
    let mut client = server.client().await;
    let segments = recorded_segments(
        &endpoint,
        "recordings",
        &segment_prefix(),
        recording_start(Duration::from_secs(20 * 60)),
    );
    let range = range_selecting(&segments, 2, 6);
    register(&mut client, segments).await;

    let started = Instant::now();
    let mut request = tonic::Request::new(CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        client_token: String::new(),
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        oss_endpoint: endpoint.clone(),
        oss_bucket: "recordings".into(),
        oss_object: PLAYLIST_TEMPLATE.into(),
        start_time: range.0,
        end_time: range.1,
        end_time_included: false,
    });
    // Retries are fine, hanging is not: a caller gets its answer in time.
    request.set_timeout(Duration::from_secs(60));
    let status = client
        .create_live_stream_record_index_files(request)
        .await
        .expect_err("a playlist cannot be written to storage nobody serves");
    assert_error(&status, tonic::Code::Unavailable, "InternalError");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "answered after {:?}",
        started.elapsed()
    );
}
