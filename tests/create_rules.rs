//! Every rule of Create and Register through the real gRPC server (started
//! in this process on 127.0.0.1:0 with a clock the test controls and the
//! local directory store): each error code, the order of the rules, and that
//! a rejected request writes nothing. The tests of what the catalog answers
//! run once with each engine (`on_sled::`, `on_postgres::`).

mod common;

use std::path::{Path, PathBuf};

use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RecordInfo, RegisterLiveStreamRecordSegmentsResponse,
    Segment,
};
use sha2::Digest;
use tonic::Code;

use common::*;

/// A change that breaks one rule of a Create request.
type RequestEdit = Box<dyn Fn(&mut CreateLiveStreamRecordIndexFilesRequest)>;
/// A change that makes one segment of a batch invalid.
type SegmentEdit = Box<dyn Fn(&mut Segment)>;

const API_KEY: &str = "test-key-of-account-42";

struct Harness {
    server: InProcess,
}

async fn start(extra_config: &str) -> Harness {
    start_on(Engine::Sled, extra_config).await
}

async fn start_on(engine: Engine, extra_config: &str) -> Harness {
    Harness {
        server: InProcess::start_on(engine, extra_config).await,
    }
}

// What a Create selects, and the rules that depend on what is stored (a
// stream's longest segment, its content), come from the catalog: these
// tests run on sled and on PostgreSQL. The rules checked before the catalog
// is read run on sled only.
on_both_engines!(
    creates_a_playlist_and_echoes_the_request,
    selection_follows_upload_time_and_end_time_included,
    holes_and_resolution_changes_are_discontinuities,
    segments_in_another_bucket_get_absolute_urls,
    rule_4_time_range,
    rule_6_and_7_content_checks,
    register_is_idempotent_and_accepts_fractional_starts,
);

/// Six-second segments of s1 back to back, as [`back_to_back`], numbered
/// from 100 as by a recorder that has run a while: a playlist's media
/// sequence must come from these numbers, not from positions.
fn recorded(count: usize) -> Vec<Segment> {
    let mut segments = back_to_back("s1", count);
    for segment in &mut segments {
        segment.sequence += 100;
    }
    segments
}

impl Harness {
    async fn register(
        &mut self,
        segments: Vec<Segment>,
    ) -> Result<RegisterLiveStreamRecordSegmentsResponse, tonic::Status> {
        self.server
            .client
            .register_live_stream_record_segments(register_request("s1", segments))
            .await
            .map(|r| r.into_inner())
    }

    async fn create(
        &mut self,
        request: CreateLiveStreamRecordIndexFilesRequest,
    ) -> Result<RecordInfo, tonic::Status> {
        self.server
            .client
            .create_live_stream_record_index_files(request)
            .await
            .map(|r| r.into_inner().record_info.unwrap())
    }

    /// Creates and expects the given error code, then checks that nothing
    /// was written to object storage.
    async fn create_fails(
        &mut self,
        request: CreateLiveStreamRecordIndexFilesRequest,
        code: &str,
        grpc: Code,
    ) {
        let before = list_files(&self.server.objects);
        let status = self
            .create(request)
            .await
            .expect_err("the request must fail");
        assert_error(&status, grpc, code);
        assert_eq!(
            list_files(&self.server.objects),
            before,
            "a rejected Create wrote an object"
        );
    }

    fn playlist(&self, info: &RecordInfo) -> String {
        std::fs::read_to_string(self.server.playlist_path(info)).unwrap()
    }
}

fn list_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

fn uris(playlist: &str) -> Vec<&str> {
    playlist
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
}

async fn creates_a_playlist_and_echoes_the_request(engine: Engine) {
    let mut h = start_on(engine, "").await;
    let registered = h.register(recorded(10)).await.unwrap();
    assert_eq!((registered.accepted, registered.duplicates), (10, 0));
    assert!(uuid::Uuid::parse_str(&registered.request_id).is_ok());

    // Segments 2..=6 end at -582, -576, -570, -564, -558.
    let response = h
        .server
        .client
        .create_live_stream_record_index_files(create_request("s1", -588, -558))
        .await
        .unwrap();
    let header = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let body = response.into_inner();
    assert_eq!(body.request_id, header);
    let info = body.record_info.unwrap();
    assert!(uuid::Uuid::parse_str(&info.record_id).is_ok());
    assert_eq!(
        info.oss_object,
        format!("live/s1/index/{}.m3u8", info.record_id)
    );
    assert_eq!(
        (info.start_time.as_str(), info.end_time.as_str()),
        (at(-588).as_str(), at(-558).as_str())
    );
    assert_eq!(info.create_time, at(0));
    assert_eq!((info.width, info.height, info.duration), (640, 360, 30.0));
    assert_eq!(
        (
            info.domain_name.as_str(),
            info.app_name.as_str(),
            info.stream_name.as_str()
        ),
        ("example.com", "live", "s1")
    );
    assert_eq!(
        (info.oss_endpoint.as_str(), info.oss_bucket.as_str()),
        ("localhost", "rec-bucket")
    );
    assert!(info.record_url.starts_with("file:///") && info.record_url.ends_with(&info.oss_object));

    let playlist = h.playlist(&info);
    assert_eq!(
        uris(&playlist),
        vec![
            "../002.ts",
            "../003.ts",
            "../004.ts",
            "../005.ts",
            "../006.ts"
        ]
    );
    assert!(playlist.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:102\n#EXT-X-PLAYLIST-TYPE:VOD\n"));
    assert!(playlist.contains(&format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", at_ms(-588_000))));
    assert_eq!(playlist.matches("#EXTINF:6.000,\n").count(), 5);
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"));
}

async fn selection_follows_upload_time_and_end_time_included(engine: Engine) {
    let mut h = start_on(engine, "").await;
    h.register(recorded(10)).await.unwrap();
    // StartTime equal to a segment's end excludes it; EndTime equal includes.
    let info = h.create(create_request("s1", -582, -552)).await.unwrap();
    assert_eq!(
        uris(&h.playlist(&info)),
        vec![
            "../003.ts",
            "../004.ts",
            "../005.ts",
            "../006.ts",
            "../007.ts"
        ]
    );
    // EndTime inside a segment: without the flag it is left out ...
    let info = h.create(create_request("s1", -582, -549)).await.unwrap();
    assert_eq!(uris(&h.playlist(&info)).len(), 5);
    assert_eq!(info.duration, 30.0);
    // ... with it the running segment is added, covering the whole range.
    let mut request = create_request("s1", -582, -549);
    request.end_time_included = true;
    let info = h.create(request).await.unwrap();
    assert_eq!(uris(&h.playlist(&info)).last(), Some(&"../008.ts"));
    assert_eq!(info.duration, 36.0);
}

async fn holes_and_resolution_changes_are_discontinuities(engine: Engine) {
    let mut h = start_on(engine, "").await;
    let mut segments = recorded(6);
    segments.remove(2);
    segments[3].width = 1280;
    segments[3].height = 720;
    segments[4].width = 1280;
    segments[4].height = 720;
    h.register(segments).await.unwrap();
    let info = h.create(create_request("s1", -600, -560)).await.unwrap();
    let playlist = h.playlist(&info);
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        2,
        "{playlist}"
    );
    assert_eq!(
        playlist.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
        3,
        "{playlist}"
    );
    assert_eq!(info.duration, 30.0);
    assert_eq!((info.width, info.height), (640, 360));
}

async fn segments_in_another_bucket_get_absolute_urls(engine: Engine) {
    let mut h = start_on(engine, "").await;
    h.register(recorded(3)).await.unwrap();
    let mut request = create_request("s1", -600, -580);
    request.oss_bucket = "playlists".into();
    request.oss_object = "{AppName}/{StreamName}/{Date}/{Hour}-{Minute}-{Second}.m3u8".into();
    let info = h.create(request).await.unwrap();
    assert_eq!(info.oss_object, "live/s1/2026-11-19/11-50-00.m3u8");
    let playlist = h.playlist(&info);
    let uris = uris(&playlist);
    assert_eq!(uris.len(), 3);
    for uri in uris {
        assert!(
            uri.starts_with("file:///") && uri.contains("/rec-bucket/live/s1/"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn object_keys_are_percent_encoded_relative_to_the_playlist() {
    let mut h = start("").await;
    let mut s = segment_at("rec-bucket", "a b/c:d/ü#1.ts", -600_000, 6.0);
    s.sequence = 5;
    h.register(vec![s]).await.unwrap();
    let mut request = create_request("s1", -600, -570);
    request.oss_object = "x/y/z.m3u8".into();
    let info = h.create(request).await.unwrap();
    assert_eq!(
        uris(&h.playlist(&info)),
        vec!["../../a%20b/c%3Ad/%C3%BC%231.ts"]
    );
}

#[tokio::test]
async fn rule_1_invalid_params() {
    let mut h = start("").await;
    h.register(recorded(10)).await.unwrap();
    let cases: Vec<RequestEdit> = vec![
        Box::new(|r| r.domain_name.clear()),
        Box::new(|r| r.app_name.clear()),
        Box::new(|r| r.stream_name = "*".into()),
        Box::new(|r| r.app_name = "a/b".into()),
        Box::new(|r| r.stream_name = "s".repeat(256)),
        Box::new(|r| r.oss_endpoint.clear()),
        Box::new(|r| r.oss_bucket.clear()),
        Box::new(|r| r.oss_object.clear()),
        Box::new(|r| r.start_time.clear()),
        Box::new(|r| r.end_time.clear()),
        // Rule 1 wins over every later rule.
        Box::new(|r| {
            r.app_name = "*".into();
            r.start_time = "yesterday".into();
            r.oss_bucket = "BAD".into();
        }),
    ];
    for mutate in cases {
        let mut request = create_request("s1", -588, -558);
        mutate(&mut request);
        h.create_fails(request, "InvalidParams", Code::InvalidArgument)
            .await;
    }
}

#[tokio::test]
async fn rule_2_malformed_times() {
    let mut h = start("").await;
    h.register(recorded(10)).await.unwrap();
    for bad in [
        "2026-11-25 11:50:00",
        "2026-11-25T11:50:00+08:00",
        "2026-11-25T11:50:00.000Z",
        "2026-02-29T00:00:00Z",
        "1795089000",
    ] {
        let mut request = create_request("s1", -588, -558);
        request.start_time = bad.into();
        request.oss_bucket = "BAD".into(); // rule 3 comes later
        h.create_fails(request, "InvalidStartTime.Malformed", Code::InvalidArgument)
            .await;
        let mut request = create_request("s1", -588, -558);
        request.end_time = bad.into();
        h.create_fails(request, "InvalidEndTime.Malformed", Code::InvalidArgument)
            .await;
    }
}

#[tokio::test]
async fn rule_3_malformed_storage_fields() {
    let mut h = start("").await;
    h.register(recorded(10)).await.unwrap();
    for endpoint in [
        "http://localhost",
        "localhost/x",
        "oss-cn-shanghai.aliyuncs.com",
        "localhost:0",
    ] {
        let mut request = create_request("s1", -588, -558);
        request.oss_endpoint = endpoint.into();
        request.oss_bucket = "BAD".into();
        h.create_fails(
            request,
            "InvalidOssEndpoint.Malformed",
            Code::InvalidArgument,
        )
        .await;
    }
    for bucket in [
        "ab",
        "Rec-bucket",
        "-rec",
        "rec-",
        "rec_bucket",
        &"b".repeat(64),
    ] {
        let mut request = create_request("s1", -588, -558);
        request.oss_bucket = bucket.into();
        request.oss_object = "{Nope}".into();
        h.create_fails(request, "InvalidOssBucket.Malformed", Code::InvalidArgument)
            .await;
    }
    for object in [
        "{Foo}.m3u8",
        "{AppName.m3u8",
        "a}.m3u8",
        "x.ts",
        "/a.m3u8",
        "a//b.m3u8",
        "a/../b.m3u8",
        "a\\b.m3u8",
        "a\u{1}.m3u8",
        &format!("{}.m3u8", "a".repeat(1019)),
    ] {
        let mut request = create_request("s1", -588, -558);
        request.oss_object = object.into();
        request.start_time = at(60); // rule 4 comes later
        h.create_fails(request, "InvalidOssObject.Malformed", Code::InvalidArgument)
            .await;
    }
}

async fn rule_4_time_range(engine: Engine) {
    let mut h = start_on(engine, "").await;
    h.register(recorded(10)).await.unwrap();
    let mismatched_start = [(1, 60), (-90 * 86_400 - 1, -90 * 86_400 + 60)];
    for (start, end) in mismatched_start {
        let mut request = create_request("s1", start, end);
        request.oss_bucket = "someone-elses".into();
        h.create_fails(request, "InvalidStartTime.Mismatch", Code::InvalidArgument)
            .await;
    }
    // End not after start, more than 4 days, shorter than the stream's
    // longest segment (6 s).
    for (start, end) in [
        (-100, -100),
        (-100, -160),
        (-4 * 86_400 - 1, 0),
        (-100, -95),
    ] {
        h.create_fails(
            create_request("s1", start, end),
            "InvalidEndTime.Mismatch",
            Code::InvalidArgument,
        )
        .await;
    }
    // Exactly 4 days, exactly 90 days back, exactly one segment: accepted.
    assert_error(
        &h.create(create_request("s1", -4 * 86_400 - 700, -700))
            .await
            .unwrap_err(),
        Code::NotFound,
        "NoRecordContent",
    );
    assert_error(
        &h.create(create_request("s1", -90 * 86_400, -90 * 86_400 + 60))
            .await
            .unwrap_err(),
        Code::NotFound,
        "NoRecordContent",
    );
    assert!(h.create(create_request("s1", -588, -582)).await.is_ok());
    // A stream never seen uses 30 s as its segment length.
    let mut request = create_request("s1", -100, -71);
    request.stream_name = "unknown".into();
    h.create_fails(
        request.clone(),
        "InvalidEndTime.Mismatch",
        Code::InvalidArgument,
    )
    .await;
    request.end_time = at(-70);
    h.create_fails(request, "InvalidStream.NotFound", Code::NotFound)
        .await;
}

#[tokio::test]
async fn rule_5_bucket_of_another_account() {
    let digest = hex::encode(sha2::Sha256::digest(API_KEY.as_bytes()));
    let mut h = start(&format!(
        "[[accounts]]\nid = \"42\"\ndomains = [\"example.com\"]\nbuckets = [\"rec-bucket\"]\n\
         [[accounts.keys]]\nsha256 = \"{digest}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:42:domain/*\"] }}]\n"
    ))
    .await;
    h.server
        .client
        .register_live_stream_record_segments(with_key(
            API_KEY,
            register_request("s1", recorded(10)),
        ))
        .await
        .unwrap();
    let mut request = create_request("s1", -588, -558);
    request.oss_bucket = "other-bucket".into();
    request.stream_name = "never-registered".into(); // rule 6 comes later
    let status = h
        .server
        .client
        .create_live_stream_record_index_files(with_key(API_KEY, request))
        .await
        .unwrap_err();
    assert_error(&status, Code::NotFound, "InvalidBucket.NotFound");
    assert!(list_files(&h.server.objects).is_empty());
    let ok = h
        .server
        .client
        .create_live_stream_record_index_files(with_key(API_KEY, create_request("s1", -588, -558)))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    // Without a key nothing else of the request is looked at.
    let status = h
        .create(create_request("s1", -588, -558))
        .await
        .unwrap_err();
    assert_error(&status, Code::Unauthenticated, "InvalidAccessKeyId");
}

async fn rule_6_and_7_content_checks(engine: Engine) {
    let mut h = start_on(engine, "max_segments_per_manifest = 4\n").await;
    let mut request = create_request("s1", -588, -558);
    h.create_fails(request.clone(), "InvalidStream.NotFound", Code::NotFound)
        .await;

    let mut segments = recorded(10);
    segments[7].format = "flv".into();
    segments[9].oss_bucket = "rec-bucket-2".into();
    h.register(segments).await.unwrap();
    // Nothing ends in (-300, -200].
    h.create_fails(
        create_request("s1", -300, -200),
        "NoRecordContent",
        Code::NotFound,
    )
    .await;
    // Segments 0..=4: five, over the cap of four.
    h.create_fails(
        create_request("s1", -600, -570),
        "RecordContentExceed",
        Code::OutOfRange,
    )
    .await;
    // Segment 7 is FLV, segment 9 in a second bucket: the format rule first.
    h.create_fails(
        create_request("s1", -560, -540),
        "OperationNotSupport",
        Code::FailedPrecondition,
    )
    .await;
    h.create_fails(
        create_request("s1", -552, -540),
        "InvalidConfig.Changed",
        Code::FailedPrecondition,
    )
    .await;
    request.start_time = at(-600);
    request.end_time = at(-576);
    assert!(h.create(request).await.is_ok());
}

#[tokio::test]
async fn rule_8_write_failures_are_internal_errors() {
    // An S3 endpoint on a closed port: unreachable, so UNAVAILABLE.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    unsafe {
        std::env::set_var("RULES_TEST_KEY", "key");
        std::env::set_var("RULES_TEST_SECRET", "secret");
    }
    let mut h = start(&format!(
        "[[endpoints]]\nname = \"localhost\"\nkind = \"local\"\n\
         [[endpoints]]\nname = \"s3.test\"\nkind = \"s3\"\nurl = \"http://{closed}\"\n\
         access_key_id_env = \"RULES_TEST_KEY\"\nsecret_access_key_env = \"RULES_TEST_SECRET\"\n\
         request_timeout_secs = 1\nmax_attempts = 2\n"
    ))
    .await;
    h.register(recorded(10)).await.unwrap();
    let mut request = create_request("s1", -588, -558);
    request.oss_endpoint = "s3.test".into();
    let started = std::time::Instant::now();
    h.create_fails(request, "InternalError", Code::Unavailable)
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // The local store cannot write where a file blocks the bucket directory.
    std::fs::create_dir_all(&h.server.objects).unwrap();
    std::fs::write(h.server.objects.join("blocked-bucket"), b"not a directory").unwrap();
    let mut request = create_request("s1", -588, -558);
    request.oss_bucket = "blocked-bucket".into();
    h.create_fails(request, "InternalError", Code::Internal)
        .await;
}

#[tokio::test]
async fn register_validates_the_whole_batch() {
    let mut h = start("").await;
    let cases: Vec<(&str, SegmentEdit)> = vec![
        (
            "OssEndpoint",
            Box::new(|s| s.oss_endpoint = "http://x".into()),
        ),
        ("OssBucket", Box::new(|s| s.oss_bucket = "X".into())),
        ("OssObject", Box::new(|s| s.oss_object = "/abs.ts".into())),
        (
            "StartTime",
            Box::new(|s| s.start_time = "2026-11-25 10:00:00".into()),
        ),
        ("StartTime", Box::new(|s| s.start_time = at(-90 * 86_400))),
        ("StartTime", Box::new(|s| s.start_time = at(3600))),
        ("Duration", Box::new(|s| s.duration = 0.0)),
        ("Duration", Box::new(|s| s.duration = f64::NAN)),
        // Shorter than EXTINF's 0.001: it would play as a zero-length entry.
        ("Duration", Box::new(|s| s.duration = 0.0004)),
        ("Duration", Box::new(|s| s.duration = 0.0009)),
        ("Duration", Box::new(|s| s.duration = 3601.0)),
        ("Sequence", Box::new(|s| s.sequence = -1)),
        ("Width", Box::new(|s| s.width = -1)),
        ("Format", Box::new(|s| s.format = "mkv".into())),
        ("Size", Box::new(|s| s.size = -5)),
    ];
    for (field, mutate) in cases {
        let mut segments = recorded(5);
        mutate(&mut segments[3]);
        let status = h.register(segments).await.unwrap_err();
        assert_error(&status, Code::InvalidArgument, "InvalidParams");
        assert!(
            status.message().contains(&format!("Segments[3].{field}")),
            "{}",
            status.message()
        );
    }
    let mut bad_names = register_request("s1", recorded(1));
    bad_names.stream_name = "a*".into();
    let status = h
        .server
        .client
        .register_live_stream_record_segments(bad_names)
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "InvalidParams");
    let status = h.register(Vec::new()).await.unwrap_err();
    assert_error(&status, Code::InvalidArgument, "InvalidParams");
    // None of the rejected batches created the stream.
    h.create_fails(
        create_request("s1", -600, -560),
        "InvalidStream.NotFound",
        Code::NotFound,
    )
    .await;
}

async fn register_is_idempotent_and_accepts_fractional_starts(engine: Engine) {
    let mut h = start_on(engine, "").await;
    let first = h.register(recorded(4)).await.unwrap();
    assert_eq!((first.accepted, first.duplicates), (4, 0));
    let mut again = recorded(6);
    again[0].start_time = at(-300); // same object, another time: still a duplicate
    let second = h.register(again).await.unwrap();
    assert_eq!((second.accepted, second.duplicates), (2, 4));
    let third = h
        .register(vec![segment_at(
            "rec-bucket",
            "live/s1/frac.ts",
            -100_520,
            6.006,
        )])
        .await
        .unwrap();
    assert_eq!(third.accepted, 1);
    let info = h.create(create_request("s1", -600, -60)).await.unwrap();
    let playlist = h.playlist(&info);
    assert_eq!(uris(&playlist).len(), 7);
    assert!(playlist.contains(&format!(
        "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:6.006,\n../frac.ts",
        at_ms(-100_520)
    )));
    assert_eq!(info.duration, 42.006);
    // The stream's longest segment is now 6.006 s: a 6 s range is too short.
    h.create_fails(
        create_request("s1", -588, -582),
        "InvalidEndTime.Mismatch",
        Code::InvalidArgument,
    )
    .await;
    // 90 days after its start a segment is gone at once: with the clock
    // between the expiry of segment 0 and that of segment 1, a range that
    // selects both by time returns only segment 1.
    h.server
        .clock
        .set((NOW_SECS + 90 * 86_400 - 597) * 1_000_000);
    let info = h.create(create_request("s1", -597, -585)).await.unwrap();
    assert_eq!(uris(&h.playlist(&info)), vec!["../001.ts"]);
}
