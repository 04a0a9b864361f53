//! Playback in local mode, where the segments lie in a local directory: the
//! playback listener serves them itself, so the playlists it makes per
//! request play over HTTP alone. Against the real binary, ffmpeg-made media
//! written where a recorder writes it, ffprobe as the player, and a plain
//! HTTP client (and raw bytes on a socket) as hostile ones.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use record_index::proto::{RegisterLiveStreamRecordSegmentsRequest, Segment};

const DOMAIN: &str = "example.com";
const APP: &str = "app";
const STREAM: &str = "stream";
const BUCKET: &str = "local-bucket";
const PREFIX: &str = "live/app/stream";

/// A server with the test recording in its local directory, registered.
struct Local {
    server: Server,
    playback: String,
    segments: Vec<Segment>,
}

impl Local {
    /// `serve` without a config file, as the README's quickstart runs it.
    async fn without_config() -> Local {
        Local::recorded(Server::start_local_mode().await, None).await
    }

    /// `serve` with a config file of `toml` (and the playback listener),
    /// registering with `key` when accounts need one.
    async fn with_config(toml: &str, env: &[(&str, &str)], key: Option<&str>) -> Local {
        let toml = format!("{toml}\n[playback]\nlisten = \"127.0.0.1:0\"\n{PLAYBACK_EXTRA}");
        let (server, _log) = Server::start_with_env(&toml, env).await;
        Local::recorded(server, key).await
    }

    async fn recorded(server: Server, key: Option<&str>) -> Local {
        let playback = format!("http://{}", server.playback_addr().await);
        media().write_to(&objects_root(&server).join(BUCKET).join(PREFIX));
        let start = recording_start(Duration::from_secs(20 * 60));
        let segments = recorded_segments("localhost", BUCKET, PREFIX, start);
        let message = RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            segments: segments.clone(),
        };
        let request = match key {
            Some(key) => with_key(key, message),
            None => tonic::Request::new(message),
        };
        server
            .client()
            .await
            .register_live_stream_record_segments(request)
            .await
            .unwrap();
        Local {
            server,
            playback,
            segments,
        }
    }

    fn playlist_url(&self, query: &str) -> String {
        format!(
            "{}/v1/{DOMAIN}/{APP}/{STREAM}/index.m3u8?{query}",
            self.playback
        )
    }

    /// The listener's URL of an object of the test bucket.
    fn object_url(&self, key: &str) -> String {
        format!("{}/objects/localhost/{BUCKET}/{key}", self.playback)
    }

    fn root(&self) -> PathBuf {
        objects_root(&self.server)
    }
}

/// Settings every config-file server of this file shares: the listener
/// answers pages of this origin.
const PLAYBACK_EXTRA: &str = "cors_origins = [\"http://player.example.com:3000\"]\n";

fn objects_root(server: &Server) -> PathBuf {
    server.data_dir.join("objects")
}

fn key(i: usize) -> String {
    format!("{PREFIX}/{}", media().segments[i].file_name)
}

fn frames(indexes: std::ops::RangeInclusive<usize>) -> u64 {
    indexes.map(|i| media().segments[i].frames()).sum()
}

fn seconds(indexes: std::ops::RangeInclusive<usize>) -> f64 {
    media().segments[indexes].iter().map(|s| s.duration).sum()
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_request_with_headers("GET", url, headers).await
}

/// The JSON error of `response`, checked against its request id header.
fn error_code(response: &HttpResponse) -> String {
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()));
    assert_eq!(
        Some(body["RequestId"].as_str().unwrap_or("")),
        response.header("x-request-id"),
        "{body}"
    );
    body["Code"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn local_mode_plays_over_http_with_segments_from_the_listener() {
    let local = Local::without_config().await;
    let (start, end) = range_selecting(&local.segments, 2, 6);
    let url = local.playlist_url(&format!("start={start}&end={end}"));
    let response = http_get(&url).await;
    assert_eq!(response.status, 200, "{url}: {}", response.text());
    let playlist = Playlist::parse(&response.text());
    let expected: Vec<String> = (2..=6)
        .map(|i| format!("/objects/localhost/{BUCKET}/{}", key(i)))
        .collect();
    assert_eq!(playlist.uris(), expected, "{}", response.text());

    let probe = ffprobe(&url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, frames(2..=6), "frames ffprobe decoded");
    assert!(
        (probe.duration - seconds(2..=6)).abs() <= 0.1,
        "{}",
        probe.duration
    );
    assert_eq!((probe.width, probe.height), (MEDIA_WIDTH, MEDIA_HEIGHT));

    // From the keyframe at 14 s in segment 2 to the one at 27 s in segment
    // 4: both ends are byte ranges the listener cuts out of its files.
    let at = |s: i64| utc_seconds(segment_start(&local.segments[0]) + chrono::Duration::seconds(s));
    let clip = local.playlist_url(&format!(
        "start={}&end={}&ClipMode=KEYFRAME",
        at(14),
        at(27)
    ));
    let text = http_get(&clip).await.text();
    assert_eq!(text.matches("#EXT-X-BYTERANGE:").count(), 2, "{text}");
    let probe = ffprobe(&clip).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {clip}");
    // 13 s at 25 fps, to within one GOP (1 s) at the cuts.
    assert!(
        probe.frames.abs_diff(13 * 25) <= 25,
        "{} frames of the 13 s clip",
        probe.frames
    );
}

#[tokio::test]
async fn objects_are_served_in_ranges_with_validators() {
    let local = Local::without_config().await;
    let bytes = &media().segments[0].bytes;
    let size = bytes.len();
    let url = local.object_url(&key(0));

    let whole = http_get(&url).await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.body, *bytes);
    assert_eq!(whole.header("content-type"), Some("video/mp2t"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("content-length"), Some(&*size.to_string()));
    assert_eq!(whole.header("x-content-type-options"), Some("nosniff"));
    assert!(
        whole
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
    let etag = whole.header("etag").expect("an ETag").to_string();
    let modified = whole
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();

    // One range at a time, as players ask for keyframe-clipped parts.
    for (range, first, last) in [
        ("bytes=188-375".to_string(), 188, 375),
        ("bytes=-188".to_string(), size - 188, size - 1),
        (format!("bytes={}-", size - 10), size - 10, size - 1),
        (format!("bytes=100-{}", size * 9), 100, size - 1),
    ] {
        let part = get_with(&url, &[("range", &range)]).await;
        assert_eq!(part.status, 206, "{range}: {}", part.text());
        let expected = format!("bytes {first}-{last}/{size}");
        assert_eq!(part.header("content-range"), Some(&*expected), "{range}");
        assert_eq!(part.body, bytes.slice(first..=last), "{range}");
    }
    let past = get_with(&url, &[("range", &format!("bytes={size}-"))]).await;
    assert_eq!(past.status, 416, "{}", past.text());
    assert_eq!(
        past.header("content-range"),
        Some(&*format!("bytes */{size}"))
    );
    assert_eq!(error_code(&past), "InvalidParams");
    // Ranges this server does not serve are ignored: the whole object.
    for range in ["bytes=0-0,10-20", "bytes=5-1", "lines=1-2"] {
        let ignored = get_with(&url, &[("range", range)]).await;
        assert_eq!((ignored.status, ignored.body.len()), (200, size), "{range}");
    }
    // A range of another version of the object is not mixed with this one.
    let stale = get_with(&url, &[("range", "bytes=0-9"), ("if-range", "\"old\"")]).await;
    assert_eq!((stale.status, stale.body.len()), (200, size));
    let current = get_with(&url, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_eq!((current.status, current.body.len()), (206, 10));

    let head = http_request_with_headers("HEAD", &url, &[("range", "bytes=0-9")]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(&*size.to_string()));
    for (name, value) in [("if-none-match", &etag), ("if-modified-since", &modified)] {
        let cached = get_with(&url, &[(name, value)]).await;
        assert_eq!(cached.status, 304, "{name}");
        assert!(cached.body.is_empty());
    }

    // A file of many chunks streams whole, and its ranges cross chunks.
    let big: Vec<u8> = media()
        .segments
        .iter()
        .flat_map(|s| s.bytes.to_vec())
        .collect();
    std::fs::write(local.root().join(BUCKET).join("all.ts"), &big).unwrap();
    let all = http_get(&local.object_url("all.ts")).await;
    assert_eq!(all.status, 200);
    assert!(all.body == big, "{} of {} bytes", all.body.len(), big.len());
    let middle = get_with(
        &local.object_url("all.ts"),
        &[("range", "bytes=100000-1000000")],
    )
    .await;
    assert!(middle.body == big[100_000..=1_000_000]);

    // What is not media is bytes, never a page a browser would render.
    std::fs::write(local.root().join(BUCKET).join("page.html"), "<script>").unwrap();
    let page = http_get(&local.object_url("page.html")).await;
    assert_eq!(
        page.header("content-type"),
        Some("application/octet-stream")
    );
    // Percent-encoded names are the names.
    let encoded = local.object_url(&key(0).replace("seg", "%73eg"));
    assert_eq!(http_get(&encoded).await.body, *bytes);
}

#[tokio::test]
async fn hostile_object_requests_read_nothing() {
    let local = Local::without_config().await;
    let addr = local.server.playback_addr().await;
    let bucket_dir = local.root().join(BUCKET);
    // Outside the store, and reachable only through links out of it.
    let secret = local.server.workdir.join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET").unwrap();
    std::os::unix::fs::symlink(&secret, bucket_dir.join("leak.ts")).unwrap();
    std::os::unix::fs::symlink(&local.server.workdir, bucket_dir.join("up")).unwrap();
    let b = format!("/objects/localhost/{BUCKET}");
    let malformed_object = "InvalidOssObject.Malformed";
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{b}/../../../secret.txt"), 400, malformed_object),
        (
            format!("{b}/%2e%2e/%2E%2E/%2e%2e/secret.txt"),
            400,
            malformed_object,
        ),
        (
            format!("{b}/..%2f..%2f..%2fsecret.txt"),
            400,
            malformed_object,
        ),
        (
            format!("{b}/..%5c..%5c..%5csecret.txt"),
            400,
            malformed_object,
        ),
        (format!("{b}//{}", secret.display()), 400, malformed_object),
        (format!("{b}/{}%00.ts", key(0)), 400, malformed_object),
        (format!("{b}/leak.ts"), 404, "InvalidParams"),
        (format!("{b}/up/secret.txt"), 404, "InvalidParams"),
        (format!("{b}/{PREFIX}"), 404, "InvalidParams"),
        (format!("{b}/missing.ts"), 404, "InvalidParams"),
        (
            "/objects/localhost/.record-index-tmp/x".into(),
            400,
            "InvalidOssBucket.Malformed",
        ),
        ("/objects/localhost/..".into(), 404, "InvalidParams"),
        (
            "/objects//etc/passwd".into(),
            400,
            "InvalidOssEndpoint.Malformed",
        ),
        (
            format!("/objects/127.0.0.1:9/{BUCKET}/x.ts"),
            400,
            "InvalidOssEndpoint.Malformed",
        ),
    ];
    for (target, status, code) in &cases {
        let response = http_get(&format!("{}{target}", local.playback)).await;
        assert_eq!(response.status, *status, "{target}: {}", response.text());
        assert_eq!(error_code(&response), *code, "{target}");
        assert!(!response.text().contains("TOP-SECRET"), "{target}");
    }
    // What no URL parser lets through, sent as raw bytes.
    for target in [
        format!("{b}/..\\..\\..\\secret.txt").into_bytes(),
        format!("http://127.0.0.1{b}/../../../secret.txt").into_bytes(),
        [format!("{b}/").as_bytes(), b"\xff\xfe.ts"].concat(),
        format!("{b}/{}", "a/".repeat(40_000)).into_bytes(),
    ] {
        let (status, answer) = raw_http_get(addr, &target, "127.0.0.1").await;
        let shown = String::from_utf8_lossy(&target[..target.len().min(80)]).into_owned();
        assert!(
            (400..500).contains(&status) || status == 0,
            "{shown}: {answer}"
        );
        assert!(!answer.contains("TOP-SECRET"), "{shown}");
    }

    // A page whose own host name leads here (DNS rebinding) is refused.
    let url = local.object_url(&key(0));
    let path = url.strip_prefix(&local.playback).unwrap();
    let (status, answer) = raw_http_get(addr, path.as_bytes(), "evil.example:8080").await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("Forbidden.RAM"), "{answer}");
    let (status, _) = raw_http_get(addr, path.as_bytes(), "localhost").await;
    assert_eq!(status, 200);

    let posted = http_request_with_headers("POST", &url, &[]).await;
    assert_eq!(posted.status, 405);
    assert_eq!(posted.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert!(secret.exists() && bucket_dir.join(key(0)).exists());
}

#[tokio::test]
async fn objects_count_against_the_playback_rate_and_answer_listed_origins() {
    // A config file without accounts is local mode too.
    let local = Local::with_config("[rate_limits]\nPlayback = 3\n", &[], None).await;
    let url = local.object_url(&key(1));
    let origin = [("origin", "http://player.example.com:3000")];
    let allowed = get_with(&url, &origin).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://player.example.com:3000")
    );
    assert!(
        allowed
            .header("access-control-expose-headers")
            .is_some_and(|exposed| exposed.contains("Content-Range"))
    );
    let other = get_with(&url, &[("origin", "http://evil.example")]).await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    let mut throttled = None;
    for _ in 0..20 {
        let response = http_request_with_headers("HEAD", &url, &[]).await;
        if response.status == 429 {
            throttled = Some(response);
            break;
        }
        assert_eq!(response.status, 200);
    }
    let throttled = throttled.expect("20 requests at once passed a limit of 3 a second");
    assert!(throttled.header("retry-after").is_some());
}

#[tokio::test]
async fn a_service_with_accounts_serves_no_objects() {
    use record_index::playback::signing::{new_rand, sign_url};
    let accounts = format!(
        "[[accounts]]\nid = \"a\"\ndomains = [\"{DOMAIN}\"]\nbuckets = [\"{BUCKET}\"]\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:a:domain/*\"] }}]\n\
         [accounts.playback]\nprimary_key_env = \"PLAY_a\"\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"api-key-a")),
    );
    let local = Local::with_config(&accounts, &[("PLAY_a", "play-key-a")], Some("api-key-a")).await;
    let (start, end) = range_selecting(&local.segments, 2, 3);
    let url = local.playlist_url(&format!("start={start}&end={end}"));
    let now = chrono::Utc::now().timestamp();
    let signed = sign_url(&url, "play-key-a", now, &new_rand(), "0").unwrap();
    let response = http_get(&signed).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let playlist = Playlist::parse(&response.text());
    assert!(
        playlist
            .uris()
            .iter()
            .all(|uri| uri.starts_with("file:///")),
        "{}",
        response.text()
    );
    let object = http_get(&local.object_url(&key(2))).await;
    assert_eq!(object.status, 404, "{}", object.text());
    assert!(object.body.len() < 1024 && error_code(&object) == "InvalidParams");
}
