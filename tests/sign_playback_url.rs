//! SignPlaybackUrl as a player's backend calls it: grpcurl and a tonic
//! client against the real binary, ffmpeg-made media in SeaweedFS. The URL
//! it answers is fetched from the playback listener and played by ffprobe;
//! tampered, expired and other-account URLs are refused by the listener;
//! other tenants and bad input get the documented codes.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use record_index::playback::signing::{self, SigningKeys};
use record_index::proto::{
    DescribeLiveStreamRecordContentRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
    SignPlaybackUrlRequest, SignPlaybackUrlResponse,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

const DOMAIN: &str = "example.com";
/// Account b's domain.
const OTHER_DOMAIN: &str = "other.com";
/// A second domain of account a, beyond the signer key's statement.
const SECOND_DOMAIN: &str = "second.example";
/// Account c's domain; c has no playback keys.
const KEYLESS_DOMAIN: &str = "keyless.net";
const APP: &str = "app";
const STREAM: &str = "stream";
/// Account a's `validity_secs`.
const VALIDITY: u64 = 600;

/// `live:*` on every domain of account a.
const ADMIN_A: &str = "rik_sign-admin-a-5c2e9d0f7a13";
/// Only `live:SignPlaybackUrl`, only on example.com.
const SIGNER_A: &str = "rik_sign-signer-a-8b4f1e6a2d90";
/// Only `live:Describe*`.
const READER_A: &str = "rik_sign-reader-a-3d7a0c5e9f21";
const ADMIN_B: &str = "rik_sign-admin-b-0e6b3f8d1c47";
const ADMIN_C: &str = "rik_sign-admin-c-7f1d4a2b6e85";
const PLAYBACK_KEY_A: &str = "playback-primary-key-of-a";
const PLAYBACK_KEY_B: &str = "playback-primary-key-of-b";

fn key_block(key: &str, actions: &str, resource: &str) -> String {
    format!(
        "[[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"{actions}\"], resources = [\"{resource}\"] }}]\n",
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

/// Accounts a and b with playback keys and a shared bucket; c without
/// playback keys, and allowed one SignPlaybackUrl a second.
fn accounts(bucket: &str) -> String {
    let playback = |id: &str| {
        format!(
            "[accounts.playback]\nprimary_key_env = \"PLAY_{id}\"\nvalidity_secs = {VALIDITY}\n"
        )
    };
    format!(
        "[[accounts]]\nid = \"a\"\ndomains = [\"{DOMAIN}\", \"{SECOND_DOMAIN}\"]\nbuckets = [\"{bucket}\"]\n{}{}{}{}\n\
         [[accounts]]\nid = \"b\"\ndomains = [\"{OTHER_DOMAIN}\"]\nbuckets = [\"{bucket}\"]\n{}{}\n\
         [[accounts]]\nid = \"c\"\ndomains = [\"{KEYLESS_DOMAIN}\"]\n\
         rate_limits = {{ SignPlaybackUrl = 1 }}\n{}",
        key_block(ADMIN_A, "live:*", "acs:cdn:*:a:domain/*"),
        key_block(
            SIGNER_A,
            "live:SignPlaybackUrl",
            &format!("acs:cdn:*:a:domain/{DOMAIN}")
        ),
        key_block(READER_A, "live:Describe*", "acs:cdn:*:a:domain/*"),
        playback("a"),
        key_block(ADMIN_B, "live:*", "acs:cdn:*:b:domain/*"),
        playback("b"),
        key_block(ADMIN_C, "live:*", "acs:cdn:*:c:domain/*"),
    )
}

/// The real binary with the playback listener, and the media registered
/// as a's stream (and its renditions `_hd`, `_sd`) and b's stream of the
/// same names.
struct Scenario {
    server: Server,
    log: ServerLog,
    /// `http://127.0.0.1:PORT` of the playback listener.
    playback: String,
    segments: Vec<Segment>,
}

impl Scenario {
    /// With `playback_toml` added to `[playback]`.
    async fn start(playback_toml: &str) -> Scenario {
        let s3 = seaweedfs();
        let bucket = s3.create_bucket().await;
        let toml = format!(
            "{}\n[playback]\nlisten = \"127.0.0.1:0\"\n{playback_toml}\n\n{}",
            s3.endpoint_toml(Addressing::Path),
            accounts(&bucket),
        );
        let env = [("PLAY_a", PLAYBACK_KEY_A), ("PLAY_b", PLAYBACK_KEY_B)];
        let (server, log) = Server::start_with_env(&toml, &env).await;
        let playback = format!("http://{}", server.playback_addr().await);
        let prefix = format!("live/{APP}/{STREAM}");
        s3.upload_media(&bucket, &prefix).await;
        let segments = recorded_segments(
            &s3.endpoint_name(Addressing::Path),
            &bucket,
            &prefix,
            recording_start(Duration::from_secs(20 * 60)),
        );
        let scenario = Scenario {
            server,
            log,
            playback,
            segments,
        };
        for (key, domain, stream) in [
            (ADMIN_A, DOMAIN, STREAM),
            (ADMIN_A, DOMAIN, "stream_hd"),
            (ADMIN_A, DOMAIN, "stream_sd"),
            (ADMIN_B, OTHER_DOMAIN, STREAM),
        ] {
            scenario.register(key, domain, stream).await;
        }
        scenario
    }

    async fn register(&self, key: &str, domain: &str, stream: &str) {
        let request = RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: domain.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            segments: self.segments.clone(),
        };
        let mut client = self.server.client().await;
        client
            .register_live_stream_record_segments(with_key(key, request))
            .await
            .unwrap_or_else(|status| panic!("register {domain}/{stream}: {status:?}"));
    }

    /// A request for segments 2 to 6 of the stream on `domain`.
    fn request(&self, domain: &str) -> SignPlaybackUrlRequest {
        let (start, end) = range_selecting(&self.segments, 2, 6);
        SignPlaybackUrlRequest {
            domain_name: domain.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time: start,
            end_time: end,
            ..Default::default()
        }
    }

    async fn sign(
        &self,
        key: Option<&str>,
        request: SignPlaybackUrlRequest,
    ) -> Result<SignPlaybackUrlResponse, tonic::Status> {
        let request = match key {
            Some(key) => with_key(key, request),
            None => tonic::Request::new(request),
        };
        let mut client = self.server.client().await;
        let answer = client.sign_playback_url(request).await?;
        let id = request_id(answer.metadata());
        let answer = answer.into_inner();
        assert_eq!(answer.request_id, id, "RequestId and x-request-id");
        Ok(answer)
    }

    /// What grpcurl prints for SignPlaybackUrl with `body` (JSON, as the
    /// API's field names), sent with `key`.
    async fn sign_with_grpcurl(&self, key: &str, body: &Value) -> Value {
        let grpcurl = require(GRPCURL);
        let header = format!("authorization: Bearer {key}");
        let output = run(
            tokio::process::Command::new(&grpcurl).args([
                "-plaintext",
                "-H",
                &header,
                "-d",
                &body.to_string(),
                &self.server.addr.to_string(),
                "recordindex.v1.RecordIndex/SignPlaybackUrl",
            ]),
            Duration::from_secs(60),
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "grpcurl: {stderr}\n{stdout}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn frames(indexes: std::ops::RangeInclusive<usize>) -> u64 {
    indexes.map(|i| media().segments[i].frames()).sum()
}

/// The JSON error body of a refused playback request: its code and message.
fn refusal(answer: &HttpResponse) -> (String, String) {
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON error");
    (
        body["Code"].as_str().unwrap_or_default().to_string(),
        body["Message"].as_str().unwrap_or_default().to_string(),
    )
}

/// `path` with the last hex digit of its `auth_key` changed.
fn tampered(path: &str) -> String {
    let mut tampered = path.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    tampered
}

#[tokio::test]
async fn a_url_signed_through_grpcurl_plays_and_others_are_refused() {
    let scenario = Scenario::start("").await;
    let (start, end) = range_selecting(&scenario.segments, 2, 6);
    let body = json!({
        "DomainName": DOMAIN, "AppName": APP, "StreamName": STREAM,
        "StartTime": start, "EndTime": end,
    });
    let before = Utc::now().timestamp();
    let answer = scenario.sign_with_grpcurl(SIGNER_A, &body).await;
    let after = Utc::now().timestamp();
    assert_upper_case_uuid(answer["RequestId"].as_str().unwrap());
    let path = answer["PlaybackPath"].as_str().unwrap();
    let unsigned = format!("/v1/{DOMAIN}/{APP}/{STREAM}/index.m3u8?start={start}&end={end}");
    assert!(
        path.starts_with(&format!("{unsigned}&auth_key=")),
        "{answer}"
    );
    // On the listener's own address: fetched as it is.
    let url = answer["PlaybackUrl"].as_str().unwrap();
    assert_eq!(url, format!("{}{path}", scenario.playback));

    // Type A with account a's primary key, valid for its validity_secs.
    let expire_time = parse_utc(answer["ExpireTime"].as_str().unwrap()).timestamp();
    let validity = VALIDITY as i64;
    assert!((before + validity..=after + validity).contains(&expire_time));
    let (own_path, query) = path.split_once('?').unwrap();
    let keys = SigningKeys::new(PLAYBACK_KEY_A.into(), None, VALIDITY);
    let verified = signing::verify_query(own_path, Some(query), &keys, after).unwrap();
    assert_eq!((verified.expires_at, verified.uid), (expire_time, "0"));

    let playlist = http_get(url).await;
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    assert_eq!(playlist.text().matches("#EXTINF:").count(), 5);
    let probe = ffprobe(url).await;
    assert_eq!(probe.errors, "", "ffprobe reported errors reading {url}");
    assert_eq!(probe.frames, frames(2..=6));

    // Account b's URL of its own stream of the same names plays; its
    // signature on a's path does not.
    let b = scenario
        .sign(Some(ADMIN_B), scenario.request(OTHER_DOMAIN))
        .await
        .expect("b signs for its own domain");
    assert_eq!(http_get(&b.playback_url).await.status, 200);
    let b_auth_key = b.playback_path.split("&auth_key=").nth(1).unwrap();
    let grafted = format!("{unsigned}&auth_key={b_auth_key}");
    for (refused, why) in [
        (tampered(path), "does not match"),
        (grafted, "does not match"),
        (unsigned.clone(), "not signed"),
    ] {
        let answer = http_get(&format!("{}{refused}", scenario.playback)).await;
        assert_eq!(answer.status, 403, "{refused}: {}", answer.text());
        let (code, message) = refusal(&answer);
        assert_eq!(code, "Forbidden.RAM");
        assert!(message.contains(why), "{why}: {message}");
    }
}

#[tokio::test]
async fn ranges_to_the_live_edge_masters_and_short_lives() {
    let scenario = Scenario::start("").await;
    let count = scenario.segments.len();

    // Without EndTime: to the live edge, every segment since StartTime.
    let mut live = scenario.request(DOMAIN);
    live.end_time.clear();
    let answer = scenario.sign(Some(SIGNER_A), live).await.unwrap();
    assert!(
        !answer.playback_path.contains("&end="),
        "{}",
        answer.playback_path
    );
    let text = http_get(&answer.playback_url).await.text();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    assert_eq!(text.matches("#EXTINF:").count(), count - 2, "{text}");

    // With Renditions: the master over them, which ffprobe plays.
    let mut master = scenario.request(DOMAIN);
    master.renditions = vec!["_hd".into(), "_sd".into()];
    master.clip_mode = "KEYFRAME".into();
    let answer = scenario.sign(Some(SIGNER_A), master).await.unwrap();
    let path = &answer.playback_path;
    assert!(
        path.starts_with(&format!("/v1/{DOMAIN}/{APP}/{STREAM}/master.m3u8?start="))
            && path.contains("&ClipMode=KEYFRAME&Renditions=_hd,_sd&auth_key="),
        "{path}"
    );
    let text = http_get(&answer.playback_url).await.text();
    assert_eq!(text.matches("#EXT-X-STREAM-INF:").count(), 2, "{text}");
    let probe = ffprobe(&answer.playback_url).await;
    assert_eq!(probe.errors, "", "{}", answer.playback_url);
    assert!(probe.frames > 0);

    // A life of a few seconds: valid now, expired after, then 403.
    let mut short = scenario.request(DOMAIN);
    short.validity_seconds = 2;
    let answer = scenario.sign(Some(ADMIN_A), short).await.unwrap();
    let expire_time = parse_utc(&answer.expire_time).timestamp();
    let (own_path, query) = answer.playback_path.split_once('?').unwrap();
    let keys = SigningKeys::new(PLAYBACK_KEY_A.into(), None, VALIDITY);
    assert!(signing::verify_query(own_path, Some(query), &keys, expire_time).is_ok());
    while Utc::now().timestamp() <= expire_time {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = http_get(&answer.playback_url).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refusal(&refused).1.contains("expired"),
        "{}",
        refused.text()
    );
}

/// How a request is spoilt.
type Spoil = fn(&mut SignPlaybackUrlRequest);
/// The gRPC code and the error code a refusal must carry.
type Expected = (Code, &'static str);

#[tokio::test]
async fn refusals_have_the_documented_codes() {
    let scenario = Scenario::start("public_url = \"https://play.example.com\"").await;
    // The listener's origin for players is the configured one.
    let answer = scenario
        .sign(Some(SIGNER_A), scenario.request(DOMAIN))
        .await
        .unwrap();
    assert_eq!(
        answer.playback_url,
        format!("https://play.example.com{}", answer.playback_path)
    );
    let local = format!("{}{}", scenario.playback, answer.playback_path);
    assert_eq!(http_get(&local).await.status, 200);

    let forbidden = (Code::PermissionDenied, "Forbidden.RAM");
    let params = (Code::InvalidArgument, "InvalidParams");
    let callers: [(&str, Option<&str>, &str, Expected); 6] = [
        (
            "no key",
            None,
            DOMAIN,
            (Code::Unauthenticated, "InvalidAccessKeyId"),
        ),
        ("a describe-only key", Some(READER_A), DOMAIN, forbidden),
        (
            "another account's domain",
            Some(ADMIN_A),
            OTHER_DOMAIN,
            forbidden,
        ),
        (
            "a domain nobody owns",
            Some(ADMIN_A),
            "nobody.net",
            forbidden,
        ),
        (
            "the signer on a domain beyond its statement",
            Some(SIGNER_A),
            SECOND_DOMAIN,
            forbidden,
        ),
        (
            "an account without playback keys",
            Some(ADMIN_C),
            KEYLESS_DOMAIN,
            (Code::FailedPrecondition, "OperationNotSupport"),
        ),
    ];
    for (what, key, domain, (code, error_code)) in callers {
        let status = scenario
            .sign(key, scenario.request(domain))
            .await
            .expect_err(what);
        let info = assert_error(&status, code, error_code);
        assert!(!status.message().contains("rik_sign"), "{what}: {status:?}");
        if error_code == "OperationNotSupport" {
            assert!(
                status.message().contains("[accounts.playback]"),
                "{status:?}"
            );
            assert_eq!(info.metadata["HttpStatus"], "400");
        }
    }
    // Another tenant's domain gets what Describe gives it.
    let describe = DescribeLiveStreamRecordContentRequest {
        domain_name: OTHER_DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        start_time: scenario.request(DOMAIN).start_time,
        end_time: scenario.request(DOMAIN).end_time,
    };
    let mut client = scenario.server.client().await;
    let status = client
        .describe_live_stream_record_content(with_key(ADMIN_A, describe))
        .await
        .unwrap_err();
    assert_error(&status, forbidden.0, forbidden.1);
    // Account c's own limit of one a second: of three at once, one at most
    // passes the gate.
    let (x, y, z) = tokio::join!(
        scenario.sign(Some(ADMIN_C), scenario.request(KEYLESS_DOMAIN)),
        scenario.sign(Some(ADMIN_C), scenario.request(KEYLESS_DOMAIN)),
        scenario.sign(Some(ADMIN_C), scenario.request(KEYLESS_DOMAIN)),
    );
    let throttled = [x, y, z]
        .into_iter()
        .map(Result::unwrap_err)
        .filter(|status| status.code() == Code::ResourceExhausted)
        .inspect(|status| {
            assert_error(status, Code::ResourceExhausted, "Throttling.User");
        })
        .count();
    assert!(throttled >= 2, "{throttled} of 3 throttled");

    let long = "9".repeat(64 * 1024);
    let inputs: &[(&str, Spoil, Expected)] = &[
        ("no StreamName", |r| r.stream_name.clear(), params),
        (
            "a StreamName with a slash",
            |r| r.stream_name = "a/b".into(),
            params,
        ),
        ("no StartTime", |r| r.start_time.clear(), params),
        ("ClipMode FAST", |r| r.clip_mode = "FAST".into(), params),
        (
            "an empty rendition",
            |r| r.renditions = vec![String::new()],
            params,
        ),
        (
            "nine renditions",
            |r| r.renditions = (0..9).map(|i| format!("_{i}")).collect(),
            params,
        ),
        (
            "a rendition making a bad name",
            |r| r.renditions = vec!["/x".into()],
            params,
        ),
        (
            "a negative ValiditySeconds",
            |r| r.validity_seconds = -1,
            params,
        ),
        (
            "ValiditySeconds over twice validity_secs",
            |r| r.validity_seconds = 1201,
            params,
        ),
        (
            "StartTime in Unix seconds",
            |r| r.start_time = "1795089600".into(),
            (Code::InvalidArgument, "InvalidStartTime.Malformed"),
        ),
        (
            "a fractional StartTime",
            |r| r.start_time = "2026-11-19T12:00:00.5Z".into(),
            (Code::InvalidArgument, "InvalidStartTime.Malformed"),
        ),
        (
            "EndTime tomorrow",
            |r| r.end_time = "tomorrow".into(),
            (Code::InvalidArgument, "InvalidEndTime.Malformed"),
        ),
        (
            "StartTime in the future",
            |r| r.start_time = "2999-01-01T00:00:00Z".into(),
            (Code::InvalidArgument, "InvalidStartTime.Mismatch"),
        ),
        (
            "EndTime before StartTime",
            |r| std::mem::swap(&mut r.start_time, &mut r.end_time),
            (Code::InvalidArgument, "InvalidEndTime.Mismatch"),
        ),
        (
            "a range of five days",
            |r| {
                let start = parse_utc(&r.start_time) - chrono::Duration::days(5);
                r.start_time = utc_seconds(start);
            },
            (Code::InvalidArgument, "InvalidEndTime.Mismatch"),
        ),
        (
            "a stream never registered",
            |r| r.stream_name = "nobody".into(),
            (Code::NotFound, "InvalidStream.NotFound"),
        ),
        (
            "a rendition never registered",
            |r| r.renditions = vec!["_hd".into(), "_4k".into()],
            (Code::NotFound, "InvalidStream.NotFound"),
        ),
    ];
    for &(what, spoil, (code, error_code)) in inputs {
        let mut request = scenario.request(DOMAIN);
        spoil(&mut request);
        let status = scenario.sign(Some(ADMIN_A), request).await.expect_err(what);
        assert_error(&status, code, error_code);
        assert!(status.message().len() <= 1024, "{what}: {status:?}");
    }
    let mut request = scenario.request(DOMAIN);
    request.start_time = long;
    let status = scenario.sign(Some(ADMIN_A), request).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "InvalidStartTime.Malformed");

    // Each call logged its line under its own RPC name.
    let lines = scenario.log.matching("rpc=\"SignPlaybackUrl\"");
    assert!(
        lines.iter().any(|line| line.contains("request served"))
            && lines.iter().any(|line| line.contains("Throttling.User")),
        "{lines:#?}"
    );
}
