//! Playback over HTTP against the real parts: ffmpeg-made media in
//! SeaweedFS, the real binary serving playlists made per request, and
//! ffprobe playing them as a player would.

mod common;

use std::time::Duration;

use common::*;
use record_index::proto::{RegisterLiveStreamRecordSegmentsRequest, Segment};

const DOMAIN: &str = "example.com";
const APP: &str = "app";
const STREAM: &str = "stream";
const HLS_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// The real binary with an S3 endpoint and the playback listener, and the
/// recorded media uploaded (not yet registered).
struct Scenario {
    server: Server,
    playback: String,
    s3: &'static SeaweedFs,
    bucket: String,
    segments: Vec<Segment>,
}

impl Scenario {
    async fn new(live_idle_secs: u32) -> Scenario {
        Scenario::with(live_idle_secs, "", |_| String::new(), &[]).await
    }

    /// With `endpoint` added to the endpoint's table, `accounts(bucket)`
    /// appended to the config and `env` set for the process.
    async fn with(
        live_idle_secs: u32,
        endpoint: &str,
        accounts: impl Fn(&str) -> String,
        env: &[(&str, &str)],
    ) -> Scenario {
        let s3 = seaweedfs();
        let bucket = s3.create_bucket().await;
        let toml = format!(
            "{}{endpoint}\n[playback]\nlisten = \"127.0.0.1:0\"\nlive_idle_secs = {live_idle_secs}\n\
             cors_origins = [\"http://player.example.com:3000\"]\n\n{}",
            s3.endpoint_toml(Addressing::Path),
            accounts(&bucket),
        );
        let (server, _log) = Server::start_with_env(&toml, env).await;
        let playback = format!("http://{}", server.playback_addr().await);
        let prefix = format!("live/{APP}/{STREAM}");
        s3.upload_media(&bucket, &prefix).await;
        let segments = recorded_segments(
            &s3.endpoint_name(Addressing::Path),
            &bucket,
            &prefix,
            recording_start(Duration::from_secs(20 * 60)),
        );
        Scenario {
            server,
            playback,
            s3,
            bucket,
            segments,
        }
    }

    async fn register(&self, segments: &[Segment]) {
        self.register_as(None, segments).await;
    }

    async fn register_as(&self, key: Option<&str>, segments: &[Segment]) {
        self.register_stream(key, STREAM, segments).await;
    }

    async fn register_stream(&self, key: Option<&str>, stream: &str, segments: &[Segment]) {
        let mut client = self.server.client().await;
        let message = RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            segments: segments.to_vec(),
        };
        let request = match key {
            Some(key) => with_key(key, message),
            None => tonic::Request::new(message),
        };
        client
            .register_live_stream_record_segments(request)
            .await
            .unwrap();
    }

    fn url(&self, file: &str, query: &str) -> String {
        format!(
            "{}/v1/{DOMAIN}/{APP}/{STREAM}/{file}?{query}",
            self.playback
        )
    }
}

fn unix(time: &str) -> i64 {
    parse_utc(time).timestamp()
}

fn frames(indexes: std::ops::RangeInclusive<usize>) -> u64 {
    indexes.map(|i| media().segments[i].frames()).sum()
}

fn seconds(indexes: std::ops::RangeInclusive<usize>) -> f64 {
    media().segments[indexes].iter().map(|s| s.duration).sum()
}

async fn get(url: &str) -> HttpResponse {
    http_get(url).await
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> &'a str {
    response
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_closed_range_plays_and_caches() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("index.m3u8", &format!("start={start}&end={end}"));

    let response = get(&url).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(header(&response, "content-type"), HLS_CONTENT_TYPE);
    assert!(!header(&response, "x-request-id").is_empty());
    assert!(header(&response, "cache-control").contains("max-age=86400"));
    let text = response.text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(text.matches("#EXTINF:").count(), 5, "{text}");

    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, frames(2..=6), "frames ffprobe decoded");
    assert!(
        (probe.duration - seconds(2..=6)).abs() <= 0.1,
        "{}",
        probe.duration
    );

    // The Flussonic form of the same range, in Unix seconds.
    let length = unix(&end) - unix(&start);
    let archive = scenario.url(&format!("archive-{}-{length}.m3u8", unix(&start)), "");
    assert_eq!(get(&archive).await.text(), text);

    // A cache holding the playlist gets 304; HEAD gets the headers alone.
    let etag = header(&response, "etag").to_string();
    let held = http_request_with_headers("GET", &url, &[("if-none-match", &etag)]).await;
    assert_eq!(held.status, 304);
    let head = http_request_with_headers("HEAD", &url, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "content-length"), text.len().to_string());

    // gzip when asked for: the same text, its own ETag.
    assert!(
        text.len() >= 512,
        "a playlist gzip leaves alone: {}",
        text.len()
    );
    let zipped = http_request_with_headers("GET", &url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_ne!(header(&zipped, "etag"), etag);
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, text);
}

#[tokio::test]
async fn pages_of_listed_origins_may_read_playlists() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("index.m3u8", &format!("start={start}&end={end}"));
    let player = "http://player.example.com:3000";
    let allowed = http_request_with_headers("GET", &url, &[("origin", player)]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(header(&allowed, "access-control-allow-origin"), player);
    assert!(header(&allowed, "access-control-expose-headers").contains("x-request-id"));
    let other = http_request_with_headers("GET", &url, &[("origin", "https://evil.example")]).await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let preflight = http_request_with_headers(
        "OPTIONS",
        &url,
        &[("origin", player), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), player);
    assert!(header(&preflight, "access-control-allow-methods").contains("GET"));
}

#[tokio::test]
async fn a_range_to_the_live_edge_grows_then_ends() {
    let scenario = Scenario::new(86_400).await;
    scenario.register(&scenario.segments[..5]).await;
    let (start, _) = range_selecting(&scenario.segments, 0, 1);
    let url = scenario.url("index.m3u8", &format!("start={start}"));
    let first = get(&url).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let text = first.text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    assert_eq!(text.matches("#EXTINF:").count(), 5, "{text}");
    assert!(!header(&first, "cache-control").contains("86400"));

    // Segments registered between two fetches appear, at the end.
    scenario.register(&scenario.segments[5..]).await;
    let second = get(&url).await.text();
    let count = scenario.segments.len();
    assert_eq!(second.matches("#EXTINF:").count(), count, "{second}");
    assert!(second.starts_with(text.trim_end_matches('\n')), "{second}");

    // With an idle time shorter than the recording's age, it has ended:
    // a whole playlist that plays to the end.
    let ended = Scenario::new(60).await;
    ended.register(&ended.segments).await;
    let url = ended.url("index.m3u8", &format!("start={start}"));
    let text = get(&url).await.text();
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "");
    assert_eq!(probe.frames, frames(0..=count - 1));
}

#[tokio::test]
async fn errors_are_json_with_create_codes() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let cases = [
        (
            format!(
                "{}/v1/{DOMAIN}/{APP}/nobody/index.m3u8?start={start}&end={end}",
                scenario.playback
            ),
            404,
            "InvalidStream.NotFound",
        ),
        (
            scenario.url("index.m3u8", "start=yesterday"),
            400,
            "InvalidStartTime.Malformed",
        ),
        (
            scenario.url("index.m3u8", &format!("start={start}&end=tomorrow")),
            400,
            "InvalidEndTime.Malformed",
        ),
        (scenario.url("index.m3u8", ""), 400, "InvalidParams"),
        (
            scenario.url(
                "index.m3u8",
                &format!("start={start}&end={end}&ClipMode=FAST"),
            ),
            400,
            "InvalidParams",
        ),
        (scenario.url("segment.ts", ""), 404, "InvalidParams"),
        (
            format!(
                "{}/v1/{DOMAIN}/{APP}/{}/index.m3u8?start={start}",
                scenario.playback,
                "s".repeat(60_000)
            ),
            400,
            "InvalidParams",
        ),
    ];
    for (url, status, code) in cases {
        let response = get(&url).await;
        assert_eq!(response.status, status, "{url}: {}", response.text());
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["Code"], code, "{body}");
        assert_eq!(
            body["RequestId"],
            header(&response, "x-request-id"),
            "{body}"
        );
        assert!(body["Message"].as_str().unwrap().len() <= 1024);
    }
    let posted = http_request_with_headers("POST", &scenario.url("index.m3u8", ""), &[]).await;
    assert_eq!(posted.status, 405);
}

/// Two accounts, each with an API key and playback signing keys: `a` owns
/// the test's domain, `b` another one.
fn two_accounts(bucket: &str) -> String {
    let account = |id: &str, domain: &str, key: &str| {
        format!(
            "[[accounts]]\nid = \"{id}\"\ndomains = [\"{domain}\"]\nbuckets = [\"{bucket}\"]\n\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{id}:domain/*\"] }}]\n\
             [accounts.playback]\nprimary_key_env = \"PLAY_{id}\"\n\
             secondary_key_env = \"PLAY2_{id}\"\nvalidity_secs = 600\n\n",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes())),
        )
    };
    account("a", DOMAIN, "api-key-a") + &account("b", "other.com", "api-key-b")
}

/// A CDN in front of the bucket checks the Type A signature of each
/// segment URL with the account's key, as ApsaraVideo Live's CDN does.
#[tokio::test]
async fn cdn_segment_urls_carry_a_signature_the_cdn_accepts() {
    use record_index::playback::signing::{SigningKeys, new_rand, sign_url, verify};
    let env = [
        ("PLAY_a", "primary-key-a"),
        ("PLAY2_a", "secondary-key-a"),
        ("PLAY_b", "primary-key-b"),
        ("PLAY2_b", "secondary-key-b"),
    ];
    let endpoint = "segment_urls = \"cdn\"\ncdn_base_url = \"https://cdn.example.com/vod/\"\n";
    let scenario = Scenario::with(120, endpoint, two_accounts, &env).await;
    scenario
        .register_as(Some("api-key-a"), &scenario.segments)
        .await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("index.m3u8", &format!("start={start}&end={end}"));
    let now = chrono::Utc::now().timestamp();
    let signed = sign_url(&url, "primary-key-a", now, &new_rand(), "0").unwrap();
    let response = get(&signed).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris.len(), 5, "{text}");
    let account_keys = SigningKeys::new("primary-key-a".into(), None, 600);
    let other_keys = SigningKeys::new("primary-key-b".into(), None, 600);
    for (uri, segment) in uris.iter().zip(&scenario.segments[2..]) {
        let (address, query) = uri.split_once('?').unwrap();
        assert_eq!(
            address,
            format!("https://cdn.example.com/vod/{}", segment.oss_object)
        );
        let path = address.strip_prefix("https://cdn.example.com").unwrap();
        let auth_key = query.strip_prefix("auth_key=");
        assert!(verify(path, auth_key, &account_keys, now).is_ok(), "{uri}");
        assert!(verify(path, auth_key, &other_keys, now).is_err(), "{uri}");
        assert!(!uri.contains("primary-key"), "{uri}");
    }
    // Kept by caches a tenth of the signature's validity; another viewer's
    // request in the same step gets the same text, so the ETag holds.
    assert_eq!(header(&response, "cache-control"), "public, max-age=60");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let etag = header(&get(&signed).await, "etag").to_string();
        let again = sign_url(&url, "primary-key-a", now, &new_rand(), "0").unwrap();
        let held = http_request_with_headers("GET", &again, &[("if-none-match", &etag)]).await;
        statuses.push(held.status);
    }
    assert!(statuses.contains(&304), "{statuses:?}");
}

#[tokio::test]
async fn signed_urls_play_and_every_other_url_is_refused() {
    use record_index::playback::signing::{new_rand, sign_url};
    let env = [
        ("PLAY_a", "primary-key-a"),
        ("PLAY2_a", "secondary-key-a"),
        ("PLAY_b", "primary-key-b"),
        ("PLAY2_b", "secondary-key-b"),
    ];
    let scenario = Scenario::with(120, "", two_accounts, &env).await;
    scenario
        .register_as(Some("api-key-a"), &scenario.segments)
        .await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("index.m3u8", &format!("start={start}&end={end}"));
    let now = chrono::Utc::now().timestamp();
    let sign = |key: &str, at: i64| sign_url(&url, key, at, &new_rand(), "0").unwrap();

    for signed in [
        sign("primary-key-a", now),
        sign("secondary-key-a", now - 300),
    ] {
        let response = get(&signed).await;
        assert_eq!(response.status, 200, "{signed}: {}", response.text());
    }
    let signed = sign("primary-key-a", now);
    let probe = ffprobe(&signed).await;
    assert_eq!(probe.errors, "");
    assert_eq!(probe.frames, frames(2..=6));

    let tampered = {
        let mut url = sign("primary-key-a", now);
        let last = url.pop().unwrap();
        url.push(if last == '0' { '1' } else { '0' });
        url
    };
    let other_stream = sign_url(
        &scenario
            .url("index.m3u8", "start=1")
            .replace(STREAM, "other"),
        "primary-key-a",
        now,
        "abc",
        "0",
    )
    .unwrap()
    .replace("/other/", &format!("/{STREAM}/"));
    let refused = [
        (url.clone(), "not signed"),
        (sign("primary-key-a", now - 601), "expired"),
        (sign("primary-key-a", now + 3600), "ahead"),
        (tampered, "does not match"),
        (sign("primary-key-b", now), "does not match"),
        (other_stream, "does not match"),
        (format!("{url}&auth_key=1-2-3"), "auth_key"),
    ];
    for (refused, why) in refused {
        let response = get(&refused).await;
        assert_eq!(response.status, 403, "{refused}: {}", response.text());
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["Code"], "Forbidden.RAM", "{body}");
        assert!(
            body["Message"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
}

#[tokio::test]
async fn presigned_segment_urls_play() {
    let endpoint = "segment_urls = \"presigned\"\npresign_expiry_secs = 900\n";
    let scenario = Scenario::with(120, endpoint, |_| String::new(), &[]).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("index.m3u8", &format!("start={start}&end={end}"));
    let response = get(&url).await;
    let text = response.text();
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(uris.len(), 5, "{text}");
    for uri in &uris {
        assert!(uri.contains("X-Amz-Signature="), "{uri}");
        // The expiry and the 90 s step URLs are reused for.
        assert!(uri.contains("X-Amz-Expires=990"), "{uri}");
        assert!(!uri.contains("record-index-test-secret"), "{uri}");
    }
    // A closed range, but its URLs expire: a cache keeps it one step, so
    // a copy it hands out still has nearly the whole expiry left.
    assert_eq!(header(&response, "cache-control"), "public, max-age=90");
    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, frames(2..=6));

    // Within one step the URLs are the same, so a cache's copy holds. A
    // step is 90 s: two requests a moment apart fall into two steps only
    // at a step's last moment, so one of three pairs is in one step.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let etag = header(&get(&url).await, "etag").to_string();
        let held = http_request_with_headers("GET", &url, &[("if-none-match", &etag)]).await;
        statuses.push(held.status);
    }
    assert!(statuses.contains(&304), "{statuses:?}");
}

#[tokio::test]
async fn presigned_keyframe_clips_and_live_ranges_play_and_a_live_range_ends_when_idle() {
    const IDLE_SECS: u32 = 10;
    let endpoint = "segment_urls = \"presigned\"\npresign_expiry_secs = 900\n";
    let scenario = Scenario::with(IDLE_SECS, endpoint, |_| String::new(), &[]).await;
    scenario.register(&scenario.segments).await;

    // From the keyframe at 14 s (in segment 2, 12..18 s) to the one at
    // 27 s (in segment 4, 24..30 s): 13 s of 25 fps, both ends byte ranges
    // of presigned URLs.
    let at = |seconds: i64| {
        utc_seconds(segment_start(&scenario.segments[0]) + chrono::Duration::seconds(seconds))
    };
    let url = scenario.url(
        "index.m3u8",
        &format!("start={}&end={}&ClipMode=KEYFRAME", at(14), at(27)),
    );
    let text = get(&url).await.text();
    assert_eq!(text.matches("#EXT-X-BYTERANGE:").count(), 2, "{text}");
    assert_eq!(text.matches("X-Amz-Signature=").count(), 3, "{text}");
    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, 13 * 25, "{text}");
    assert!((probe.duration - 13.0).abs() < 0.1, "{}", probe.duration);

    // A stream recorded up to a second ago, to the live edge: open while
    // the idle time has not passed since its last segment, growing as a
    // recorder registers more, then ended, and it plays whole.
    let media = &media().segments;
    let first_four: f64 = media[..4].iter().map(|s| s.duration).sum();
    let first = &scenario.segments[0];
    let prefix = first.oss_object.rsplit_once('/').unwrap().0;
    let mut live = recorded_segments(
        &first.oss_endpoint,
        &first.oss_bucket,
        prefix,
        recording_start(Duration::from_secs_f64(first_four + 1.0)),
    );
    live.truncate(5);
    scenario
        .register_stream(None, "live-stream", &live[..4])
        .await;
    let (start, _) = range_selecting(&live, 0, 1);
    let url = format!(
        "{}/v1/{DOMAIN}/{APP}/live-stream/index.m3u8?start={start}",
        scenario.playback
    );
    let open = get(&url).await.text();
    assert!(!open.contains("#EXT-X-ENDLIST"), "{open}");
    assert_eq!(open.matches("X-Amz-Signature=").count(), 4, "{open}");
    // The next one, registered as it is recorded: in the playlist once
    // it has ended.
    scenario
        .register_stream(None, "live-stream", &live[4..])
        .await;
    let recorded = segment_end(&live[4]) + chrono::Duration::milliseconds(500);
    tokio::time::sleep((recorded - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let grown = get(&url).await.text();
    assert!(!grown.contains("#EXT-X-ENDLIST"), "{grown}");
    assert_eq!(grown.matches("#EXTINF:").count(), 5, "{grown}");

    let last_end = segment_end(&live[live.len() - 1]);
    let ends_at = last_end + chrono::Duration::seconds(i64::from(IDLE_SECS) + 1);
    let wait = (ends_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    let ended = get(&url).await.text();
    assert!(ended.ends_with("#EXT-X-ENDLIST\n"), "{ended}");
    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, frames(0..=4));
    assert!(
        (probe.duration - seconds(0..=4)).abs() < 0.1,
        "{}",
        probe.duration
    );
}

/// Resolves a URI of a playlist at `base` (an absolute URL).
fn resolve(base: &str, uri: &str) -> String {
    let (origin_and_dir, _) = base
        .split_once('?')
        .unwrap_or((base, ""))
        .0
        .rsplit_once('/')
        .unwrap();
    let mut dir: Vec<&str> = origin_and_dir.split('/').collect();
    let mut rest = uri;
    while let Some(after) = rest.strip_prefix("../") {
        dir.pop();
        rest = after;
    }
    format!("{}/{rest}", dir.join("/"))
}

#[tokio::test]
async fn a_master_playlist_names_each_rendition_and_plays() {
    let env = [
        ("PLAY_a", "primary-key-a"),
        ("PLAY2_a", "secondary-key-a"),
        ("PLAY_b", "k"),
        ("PLAY2_b", "k2"),
    ];
    let scenario = Scenario::with(120, "", two_accounts, &env).await;
    for suffix in ["_hd", "_sd"] {
        let stream = format!("{STREAM}{suffix}");
        scenario
            .register_stream(Some("api-key-a"), &stream, &scenario.segments)
            .await;
    }
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url(
        "master.m3u8",
        &format!("start={start}&end={end}&Renditions=_hd,_sd"),
    );
    let now = chrono::Utc::now().timestamp();
    let signed =
        record_index::playback::signing::sign_url(&url, "primary-key-a", now, "r", "0").unwrap();
    let response = get(&signed).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert_eq!(
        text.matches("#EXT-X-STREAM-INF:BANDWIDTH=").count(),
        2,
        "{text}"
    );
    assert!(text.contains("RESOLUTION=640x360"), "{text}");
    assert!(text.contains("CODECS=\"avc1."), "{text}");
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        uris[0].starts_with(&format!("../{STREAM}_hd/index.m3u8?start=")),
        "{text}"
    );
    assert!(
        uris.iter()
            .all(|uri| uri.contains("auth_key=") && !uri.contains("Renditions")),
        "{text}"
    );
    // Each rendition's own playlist answers with its own signature.
    for uri in &uris {
        let child = resolve(&signed, uri);
        let answer = get(&child).await;
        assert_eq!(answer.status, 200, "{child}: {}", answer.text());
        assert_eq!(answer.text().matches("#EXTINF:").count(), 5);
    }
    let probe = ffprobe(&signed).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {signed}");
    assert_eq!(probe.frames, frames(2..=6));

    // Each rendition's I-frame playlist, signed for its own path, with
    // the peak bit rate of its first segment's keyframes.
    let iframes: Vec<Vec<(String, String)>> = text
        .lines()
        .filter_map(|line| line.strip_prefix("#EXT-X-I-FRAME-STREAM-INF:"))
        .map(attributes)
        .collect();
    assert_eq!(iframes.len(), 2, "{text}");
    for (attributes, suffix) in iframes.iter().zip(["_hd", "_sd"]) {
        let value = |name: &str| {
            attributes
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .unwrap_or_else(|| panic!("no {name}: {text}"))
        };
        assert_eq!(value("RESOLUTION"), "640x360", "{text}");
        assert!(value("CODECS").starts_with("avc1."), "{text}");
        let uri = value("URI");
        assert!(
            uri.starts_with(&format!("../{STREAM}{suffix}/iframes.m3u8?start=")),
            "{text}"
        );
        assert!(
            uri.contains("auth_key=") && !uri.contains("Renditions"),
            "{uri}"
        );
        let child = resolve(&signed, uri);
        let answer = get(&child).await;
        assert_eq!(answer.status, 200, "{child}: {}", answer.text());
        let playlist = answer.text();
        assert!(playlist.contains("#EXT-X-I-FRAMES-ONLY\n"), "{playlist}");
        let rates = entry_rates(&playlist);
        let first_uri = &rates[0].0;
        let peak = rates
            .iter()
            .filter(|(uri, _)| uri == first_uri)
            .map(|(_, rate)| *rate)
            .fold(0.0, f64::max);
        let bandwidth: f64 = value("BANDWIDTH").parse().unwrap();
        assert!(
            (bandwidth - peak).abs() <= peak * 0.01,
            "BANDWIDTH {bandwidth}, the first segment's keyframes peak at {peak}"
        );
        assert_plays_keyframes_only(&child, keyframes(2..=6)).await;
    }

    // A rendition never registered is named.
    let missing = scenario.url(
        "master.m3u8",
        &format!("start={start}&end={end}&Renditions=_hd,_4k"),
    );
    let missing =
        record_index::playback::signing::sign_url(&missing, "primary-key-a", now, "r", "0")
            .unwrap();
    let answer = get(&missing).await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert!(answer.text().contains("stream_4k"), "{}", answer.text());
}

/// The attributes of a tag's attribute list, values unquoted.
fn attributes(list: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = list;
    while let Some((name, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, next) = quoted.split_once('"').expect("a closing quote");
                (value, next.strip_prefix(',').unwrap_or(next))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        pairs.push((name.to_string(), value.to_string()));
        rest = next;
    }
    pairs
}

/// Each entry of an I-frame playlist: its URI and its bits per second,
/// its byte range over its EXTINF.
fn entry_rates(text: &str) -> Vec<(String, f64)> {
    let (mut seconds, mut length) = (0.0, 0.0);
    let mut rates = Vec::new();
    for line in text.lines() {
        if let Some(extinf) = line.strip_prefix("#EXTINF:") {
            seconds = extinf.trim_end_matches(',').parse().unwrap();
        } else if let Some(range) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            length = range.split('@').next().unwrap().parse().unwrap();
        } else if !line.starts_with('#') && !line.is_empty() {
            rates.push((line.to_string(), length * 8.0 / seconds));
        }
    }
    rates
}

/// Each domain plays with its own account's keys only: an exact account
/// beside a wildcard one, and a domain nobody owns.
#[tokio::test]
async fn playback_is_kept_per_tenant() {
    let accounts =
        |bucket: &str| two_accounts(bucket).replace("\"other.com\"", "\"*.example.org\"");
    let env = [
        ("PLAY_a", "key-a"),
        ("PLAY2_a", "key-a2"),
        ("PLAY_b", "key-b"),
        ("PLAY2_b", "key-b2"),
    ];
    let scenario = Scenario::with(120, "", accounts, &env).await;
    let now = chrono::Utc::now().timestamp();
    // Every playlist kind, each signed for its own path.
    for file in ["index.m3u8", "iframes.m3u8", "master.m3u8"] {
        let at = |domain: &str, key: &str| {
            let url = format!(
                "{}/v1/{domain}/{APP}/cam/{file}?start=1795089600&end=1795093200&Renditions=_hd",
                scenario.playback
            );
            record_index::playback::signing::sign_url(&url, key, now, "r", "0").unwrap()
        };
        // Past the signature, the stream is not there: 404 shows it passed.
        for (url, status, code) in [
            (at(DOMAIN, "key-a"), 404, "InvalidStream.NotFound"),
            (
                at("live.example.org", "key-b"),
                404,
                "InvalidStream.NotFound",
            ),
            (at("live.example.org", "key-a"), 403, "Forbidden.RAM"),
            (at(DOMAIN, "key-b"), 403, "Forbidden.RAM"),
            (at("nobody.net", "key-a"), 403, "Forbidden.RAM"),
        ] {
            let answer = get(&url).await;
            assert_eq!(answer.status, status, "{url}: {}", answer.text());
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
            assert_eq!(body["Code"], code, "{url}: {body}");
        }
    }
}

/// Keyframes in the test media's segments `indexes`: one every 25 frames
/// from each segment's start (ffmpeg cut them with `-g 25 -keyint_min 25
/// -sc_threshold 0`).
fn keyframes(indexes: std::ops::RangeInclusive<usize>) -> u64 {
    indexes
        .map(|i| media().segments[i].frames().div_ceil(25))
        .sum()
}

/// `yyyy-MM-ddTHH:mm:ssZ`, `seconds` into the scenario's recording.
fn into_recording(scenario: &Scenario, seconds: i64) -> String {
    utc_seconds(segment_start(&scenario.segments[0]) + chrono::Duration::seconds(seconds))
}

/// ffprobe reads `url` as a player would: no errors, and every frame it
/// decodes is a keyframe, `count` of them.
async fn assert_plays_keyframes_only(url: &str, count: u64) {
    let (frames, errors) = ffprobe_frames(url).await;
    assert_eq!(errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(frames.len() as u64, count, "frames decoded from {url}");
    assert!(
        frames.iter().all(|f| f.key_frame && f.pict_type == "I"),
        "{url} played frames other than keyframes: {frames:?}"
    );
}

/// The `(URI, length, offset)` of each `#EXT-X-MAP` of an I-frame playlist.
fn maps(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("#EXT-X-MAP:URI=\""))
        .map(|rest| {
            let (uri, range) = rest
                .split_once("\",BYTERANGE=\"")
                .expect("URI, then BYTERANGE");
            let (length, offset) = range.trim_end_matches('"').split_once('@').unwrap();
            (
                uri.to_string(),
                length.parse().unwrap(),
                offset.parse().unwrap(),
            )
        })
        .collect()
}

/// The PID of a TS packet, and whether a PES or section starts in it.
fn ts_header(packet: &[u8]) -> (u16, bool) {
    assert_eq!(packet[0], 0x47, "not a TS packet");
    (
        u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2]),
        packet[1] & 0x40 != 0,
    )
}

/// What a player reads as the Media Initialization Section: the map's
/// byte range of its URI is a PAT, then a PMT.
async fn assert_map_is_pat_then_pmt(uri: &str, length: u64, offset: u64) {
    let range = format!("bytes={offset}-{}", offset + length - 1);
    let read = http_request_with_headers("GET", uri, &[("range", &range)]).await;
    assert_eq!(read.status, 206, "{uri} {range}: {}", read.text());
    assert_eq!(read.body.len() as u64, length);
    let packets: Vec<&[u8]> = read.body.chunks(188).collect();
    assert!(
        packets.len() >= 2 && length.is_multiple_of(188),
        "{length} bytes"
    );
    assert_eq!(
        ts_header(packets[0]),
        (0, true),
        "the first packet is no PAT"
    );
    let last = packets[packets.len() - 1];
    let (pid, start) = ts_header(last);
    // The PAT names the PMT's PID; the section there is table 2, a PMT.
    let pat = &packets[0][5 + usize::from(packets[0][4])..];
    let pmt_pid = u16::from(pat[10] & 0x1F) << 8 | u16::from(pat[11]);
    assert!(start && pid == pmt_pid, "the last packet is no PMT");
    assert_eq!(last[5 + usize::from(last[4])], 0x02, "table_id of a PMT");
}

#[tokio::test]
async fn an_iframe_playlist_plays_the_keyframes_of_the_range_through_presigned_urls() {
    let endpoint = "segment_urls = \"presigned\"\npresign_expiry_secs = 900\n";
    let scenario = Scenario::with(120, endpoint, |_| String::new(), &[]).await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("iframes.m3u8", &format!("start={start}&end={end}"));

    let response = get(&url).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(header(&response, "content-type"), HLS_CONTENT_TYPE);
    // Closed, but kept one step of its presigned URLs (a tenth of 900 s).
    assert_eq!(header(&response, "cache-control"), "public, max-age=90");
    let text = response.text();
    let playlist = Playlist::parse(&text);
    assert!(playlist.has_line("#EXT-X-I-FRAMES-ONLY"), "{text}");
    assert_eq!(playlist.tag("#EXT-X-VERSION"), Some("5"), "{text}");
    assert_eq!(playlist.tag("#EXT-X-PLAYLIST-TYPE"), Some("VOD"), "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(playlist.entries.len() as u64, keyframes(2..=6), "{text}");
    // Each keyframe lasts until the next: together, the range's segments.
    let duration = playlist.total_duration();
    assert!((duration - seconds(2..=6)).abs() < 0.01, "{duration} s");
    assert_eq!(
        text.matches("#EXT-X-BYTERANGE:").count(),
        playlist.entries.len()
    );
    // Segment URIs as the media playlist writes them: presigned GETs.
    let media = get(&scenario.url("index.m3u8", &format!("start={start}&end={end}"))).await;
    let segment_uris = Playlist::parse(&media.text()).uris().len();
    assert_eq!(segment_uris, 5);
    for uri in playlist.uris() {
        assert!(uri.contains("X-Amz-Signature="), "{uri}");
    }
    let maps = maps(&text);
    assert_eq!(
        maps.len(),
        5,
        "one initialization section a segment: {text}"
    );
    for (uri, length, offset) in &maps {
        assert!(uri.contains("X-Amz-Signature="), "{uri}");
        assert_map_is_pat_then_pmt(uri, *length, *offset).await;
    }

    assert_plays_keyframes_only(&url, keyframes(2..=6)).await;

    // A KEYFRAME clip from the keyframe at 14 s to the one at 27 s: the
    // keyframes it shows, 14 to 26 s.
    let query = format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        into_recording(&scenario, 14),
        into_recording(&scenario, 27)
    );
    let clip = scenario.url("iframes.m3u8", &query);
    let text = get(&clip).await.text();
    let playlist = Playlist::parse(&text);
    assert_eq!(playlist.entries.len(), 13, "{text}");
    let first_shown = playlist.entries[0].program_date_time.as_deref();
    let fourteen = utc_millis(segment_start(&scenario.segments[0]) + chrono::Duration::seconds(14));
    assert_eq!(first_shown, Some(fourteen.as_str()), "{text}");
    assert!((playlist.total_duration() - 13.0).abs() < 0.01, "{text}");
    assert_plays_keyframes_only(&clip, 13).await;
}

#[tokio::test]
async fn an_iframe_playlist_to_the_live_edge_grows_at_its_end() {
    let scenario = Scenario::new(86_400).await;
    scenario.register(&scenario.segments[..5]).await;
    let (start, _) = range_selecting(&scenario.segments, 0, 1);
    let url = scenario.url("iframes.m3u8", &format!("start={start}"));
    let first = get(&url).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let text = first.text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(!header(&first, "cache-control").contains("86400"));
    assert_eq!(text.matches("#EXTINF:").count() as u64, keyframes(0..=4));

    // New segments add keyframes at the end; nothing before them changes.
    scenario.register(&scenario.segments[5..]).await;
    let second = get(&url).await.text();
    let all = keyframes(0..=scenario.segments.len() - 1);
    assert_eq!(second.matches("#EXTINF:").count() as u64, all, "{second}");
    assert!(second.starts_with(&text), "{second}");
    assert!(!second.contains("#EXT-X-ENDLIST"), "{second}");
}

#[tokio::test]
async fn unreadable_segments_are_left_out_of_an_iframe_playlist() {
    let scenario = Scenario::new(120).await;
    let garbage = bytes::Bytes::from(vec![b'x'; 188 * 100]);
    let broken = &scenario.segments[4].oss_object;
    scenario
        .s3
        .put_object(&scenario.bucket, broken, garbage, "video/mp2t")
        .await;
    scenario.register(&scenario.segments).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let url = scenario.url("iframes.m3u8", &format!("start={start}&end={end}"));
    let response = get(&url).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    let playlist = Playlist::parse(&text);
    let kept = keyframes(2..=3) + keyframes(5..=6);
    assert_eq!(playlist.entries.len() as u64, kept, "{text}");
    assert!(!text.contains("seg004.ts"), "{text}");
    // The hole it leaves is a discontinuity, as a gap in the recording.
    let breaks: Vec<usize> = playlist
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.discontinuity)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(breaks, [keyframes(2..=3) as usize], "{text}");
    assert_plays_keyframes_only(&url, kept).await;

    // Nothing left: the range's media cannot make an I-frame playlist.
    let (start, end) = range_selecting(&scenario.segments, 4, 4);
    let url = scenario.url("iframes.m3u8", &format!("start={start}&end={end}"));
    let response = get(&url).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["Code"], "OperationNotSupport", "{body}");
    assert!(
        body["Message"].as_str().unwrap().contains("seg004.ts"),
        "{body}"
    );
}

#[tokio::test]
async fn iframe_playlist_errors_use_create_codes() {
    let scenario = Scenario::new(120).await;
    scenario.register(&scenario.segments).await;
    // 721 five-second segments, an hour and a minute, never uploaded: the
    // cap refuses the range before any is read.
    let long_start = recording_start(Duration::from_secs(3 * 3600));
    let long = plain_segments(
        (&scenario.segments[0].oss_endpoint, &scenario.bucket, "long"),
        long_start,
        0..721,
        5,
    );
    scenario.register_stream(None, "long", &long).await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let stream_url = |stream: &str, query: &str| {
        format!(
            "{}/v1/{DOMAIN}/{APP}/{stream}/iframes.m3u8?{query}",
            scenario.playback
        )
    };
    let whole_hour = format!(
        "start={}&end={}",
        utc_seconds(long_start),
        utc_seconds(long_start + chrono::Duration::seconds(721 * 5))
    );
    let cases = [
        (
            stream_url("nobody", &format!("start={start}&end={end}")),
            404,
            "InvalidStream.NotFound",
        ),
        (
            stream_url(STREAM, "start=yesterday"),
            400,
            "InvalidStartTime.Malformed",
        ),
        (
            stream_url(STREAM, &format!("start={start}&end=tomorrow")),
            400,
            "InvalidEndTime.Malformed",
        ),
        (
            stream_url(STREAM, &format!("start={end}&end={start}")),
            400,
            "InvalidEndTime.Mismatch",
        ),
        (stream_url(STREAM, ""), 400, "InvalidParams"),
        (stream_url("long", &whole_hour), 400, "RecordContentExceed"),
    ];
    for (url, status, code) in cases {
        let response = get(&url).await;
        assert_eq!(response.status, status, "{url}: {}", response.text());
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["Code"], code, "{url}: {body}");
        if code == "RecordContentExceed" {
            let message = body["Message"].as_str().unwrap();
            assert!(message.contains("at most 720 segments"), "{message}");
            assert!(message.contains("721"), "{message}");
        }
    }
}
