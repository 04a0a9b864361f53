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
    let at = |domain: &str, key: &str| {
        let url = format!(
            "{}/v1/{domain}/{APP}/cam/index.m3u8?start=1795089600&end=1795093200",
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
