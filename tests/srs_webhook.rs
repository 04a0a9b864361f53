//! SRS's `on_hls` callback as SRS sends it, through the HTTP listener, and
//! the playlist that the registered segments then make.

mod common;

use record_index::proto::CreateLiveStreamRecordIndexFilesRequest;
use sha2::Digest;

use common::{InProcess, NOW_SECS, at};

const SECRET: &str = "srs-callback-secret";

/// The server in this process with an SRS source for `example.com`, and
/// the base URL of its callback listener.
async fn start() -> (InProcess, String) {
    let digest = hex::encode(sha2::Sha256::digest(SECRET.as_bytes()));
    let server = InProcess::start(&format!(
        "[srs_webhook]\nlisten = \"127.0.0.1:0\"\n\
         [[srs_webhook.sources]]\nsecret_sha256 = \"{digest}\"\ndomain = \"example.com\"\n\
         endpoint = \"localhost\"\nbucket = \"srs-bucket\"\nkey_prefix = \"hls/\"\n"
    ))
    .await;
    let webhook = format!("http://{}", server.webhook.expect("the webhook listens"));
    (server, webhook)
}

/// The body SRS 5 posts after writing a segment.
fn on_hls(seq_no: i64, duration: f64) -> String {
    format!(
        r#"{{"server_id":"vid-0xk989d","service_id":"c55w5y4c","action":"on_hls","client_id":"3k2s1n8w",
           "ip":"127.0.0.1","vhost":"__defaultVhost__","app":"live","stream":"livestream","param":"",
           "duration":{duration},"cwd":"/usr/local/srs",
           "file":"./objs/nginx/html/live/livestream-{seq_no}.ts","url":"live/livestream-{seq_no}.ts",
           "m3u8":"./objs/nginx/html/live/livestream.m3u8","m3u8_url":"live/livestream.m3u8",
           "seq_no":{seq_no},"stream_url":"/live/livestream","stream_id":"vid-g3k6y"}}"#
    )
}

async fn post(url: &str, body: String, header_secret: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(secret) = header_secret {
        request = request.header("x-webhook-secret", secret);
    }
    let response = hyper::Client::new()
        .request(request.body(hyper::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = hyper::body::to_bytes(response.into_body()).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn callbacks_register_segments_that_make_a_playlist() {
    let (mut h, webhook) = start().await;
    let url = format!("{webhook}/api/v1/hls?secret={SECRET}");
    // Three callbacks, each arriving as its 6 s segment is finished.
    for seq in 0..3 {
        h.clock.set((NOW_SECS - 60 + 6 * (seq + 1)) * 1_000_000);
        let (status, answer) = post(&url, on_hls(seq, 6.0), None).await;
        assert_eq!(
            (status, answer["code"].as_i64()),
            (200, Some(0)),
            "{answer}"
        );
    }
    // A retried callback is a duplicate, still answered OK for SRS.
    let (status, _) = post(&format!("{webhook}/hook"), on_hls(2, 6.0), Some(SECRET)).await;
    assert_eq!(status, 200);

    h.clock.set(NOW_SECS * 1_000_000);
    let info = h
        .client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "livestream".into(),
            oss_endpoint: "localhost".into(),
            oss_bucket: "srs-bucket".into(),
            oss_object: "hls/live/index.m3u8".into(),
            start_time: at(-61),
            end_time: at(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .record_info
        .unwrap();
    assert_eq!(info.duration, 18.0);
    let playlist =
        std::fs::read_to_string(h.objects.join("srs-bucket/hls/live/index.m3u8")).unwrap();
    let uris: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        uris,
        vec!["livestream-0.ts", "livestream-1.ts", "livestream-2.ts"]
    );
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"));
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
}

#[tokio::test]
async fn callbacks_without_the_secret_or_with_bad_bodies_register_nothing() {
    let (mut h, webhook) = start().await;
    let wrong = format!("{webhook}/hook?secret=guess");
    let (status, answer) = post(&wrong, on_hls(0, 6.0), None).await;
    assert_eq!(status, 401, "{answer}");
    assert_ne!(answer["code"].as_i64(), Some(0));
    assert!(
        answer["msg"]
            .as_str()
            .unwrap()
            .starts_with("InvalidAccessKeyId")
    );
    let (status, _) = post(&format!("{webhook}/hook"), on_hls(0, 6.0), None).await;
    assert_eq!(status, 401);

    let right = format!("{webhook}/hook?secret={SECRET}");
    for bad in [
        "not json".to_string(),
        on_hls(0, 0.0),
        r#"{"action":"on_publish","app":"live","stream":"s","duration":1}"#.into(),
    ] {
        let (status, answer) = post(&right, bad, None).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["msg"].as_str().unwrap().starts_with("InvalidParams"),
            "{answer}"
        );
    }
    // Nothing of the stream was registered.
    let status = h
        .client
        .create_live_stream_record_index_files(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "livestream".into(),
            oss_endpoint: "localhost".into(),
            oss_bucket: "srs-bucket".into(),
            oss_object: "x.m3u8".into(),
            start_time: at(-120),
            end_time: at(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with("InvalidStream.NotFound"),
        "{status:?}"
    );
}
