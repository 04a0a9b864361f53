//! A Create writes its playlist and makes its manifest durable at the same
//! time: the manifest is staged, then committed without a flush of its
//! own. A crash in between leaves it staged, and the next start settles it
//! from object storage. Here the catalog is left as such a crash leaves it
//! and the real binary starts on it.

mod common;

use common::*;
use record_index::catalog::{Catalog, ManifestRecord, StreamName};
use record_index::manifest::range::MANIFEST_RETENTION;
use record_index::proto::{
    DescribeLiveStreamRecordIndexFileRequest, DescribeLiveStreamRecordIndexFilesRequest,
    RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use record_index::service::settle::digest;
use tonic::Code;

const DOMAIN: &str = "example.com";
const APP: &str = "live";
const STREAM: &str = "settled";
const BUCKET: &str = "settle-bucket";

fn staged(stream_id: u64, key: &str, created: i64) -> ManifestRecord {
    ManifestRecord {
        record_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        oss_endpoint: "localhost".into(),
        oss_bucket: BUCKET.into(),
        oss_object: key.into(),
        record_url: format!("file:///{key}"),
        start_time: "2026-11-25T10:00:00Z".into(),
        end_time: "2026-11-25T10:01:00Z".into(),
        created,
        expires: created + MANIFEST_RETENTION,
        duration: 60.0,
        width: 640,
        height: 360,
        segment_count: 10,
        stream_id,
    }
}

#[tokio::test]
async fn staged_manifests_are_kept_only_where_their_playlist_was_written() {
    let mut server = Server::start("").await;
    let start = recording_start(std::time::Duration::from_secs(600));
    server
        .client()
        .await
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            segments: vec![Segment {
                oss_endpoint: "localhost".into(),
                oss_bucket: BUCKET.into(),
                oss_object: "rec/000.ts".into(),
                start_time: utc_millis(start),
                duration: 6.0,
                ..Default::default()
            }],
            client_token: String::new(),
        })
        .await
        .expect("register");
    let (code, took) = server.terminate();
    eprintln!("TOOK {took:?}");
    assert_eq!(code, 0);

    let now = chrono::Utc::now().timestamp_micros();
    let playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-ENDLIST\n";
    let (written, missing, replaced);
    {
        let catalog = Catalog::open(&server.data_dir.join("catalog"), 1 << 20).unwrap();
        let stream_id = catalog
            .stream(&StreamName {
                domain: DOMAIN.into(),
                app: APP.into(),
                stream: STREAM.into(),
            })
            .unwrap()
            .expect("the registered stream")
            .id;
        written = staged(stream_id, "vod/written.m3u8", now - 3_000_000);
        missing = staged(stream_id, "vod/missing.m3u8", now - 2_000_000);
        replaced = staged(stream_id, "vod/replaced.m3u8", now - 1_000_000);
        for record in [&written, &missing, &replaced] {
            catalog
                .stage_manifest(record, &digest(playlist.as_bytes()))
                .unwrap();
        }
        catalog.flush_blocking().unwrap();
    }
    let objects = server.data_dir.join("objects").join(BUCKET).join("vod");
    std::fs::create_dir_all(&objects).unwrap();
    // The first Create's playlist made it; the third's key holds an older
    // playlist, which is not the one its manifest describes.
    std::fs::write(objects.join("written.m3u8"), playlist).unwrap();
    std::fs::write(objects.join("replaced.m3u8"), "#EXTM3U\n# older\n").unwrap();

    server.start_again().await;
    let mut client = server.client().await;
    let describe = |record: &ManifestRecord| DescribeLiveStreamRecordIndexFileRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        record_id: uuid::Uuid::from_slice(&record.record_id)
            .unwrap()
            .to_string(),
    };
    let kept = client
        .describe_live_stream_record_index_file(describe(&written))
        .await
        .expect("the manifest whose playlist was written is kept")
        .into_inner()
        .record_index_info
        .unwrap();
    assert_eq!(kept.oss_object, written.oss_object);
    assert_eq!(kept.duration, 60.0);
    for dropped in [&missing, &replaced] {
        let status = client
            .describe_live_stream_record_index_file(describe(dropped))
            .await
            .expect_err("a manifest without its playlist is dropped");
        assert_error(&status, Code::NotFound, "InvalidRecordId.NotFound");
    }
    let listed = client
        .describe_live_stream_record_index_files(DescribeLiveStreamRecordIndexFilesRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time: utc_seconds(chrono::Utc::now() - chrono::Duration::hours(1)),
            end_time: utc_seconds(chrono::Utc::now() + chrono::Duration::minutes(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_num, 1, "{listed:?}");

    // Settled for good: nothing is staged after another restart.
    let (code, took) = server.terminate();
    eprintln!("TOOK {took:?}");
    assert_eq!(code, 0);
    let catalog = Catalog::open(&server.data_dir.join("catalog"), 1 << 20).unwrap();
    assert!(catalog.staged_manifests().unwrap().is_empty());
}
