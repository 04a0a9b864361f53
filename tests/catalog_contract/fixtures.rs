//! Records and calls the properties share.

use record_index::catalog::{
    Catalog, Commit, MAX_SCAN_PAGE, ManifestRecord, RegisterAnswer, RegisterOutcome, ScanFrom,
    StreamName, TokenAnswer, TokenRecord,
};
use record_index::manifest::{Format, Micros, Segment};

pub const SECOND: Micros = 1_000_000;
pub const DAY: Micros = 86_400 * SECOND;
/// 2026-11-19T00:00:00Z: a "now" far from the epoch and from overflow.
pub const NOW: Micros = 1_795_089_600 * SECOND;
pub const BUCKET: &str = "rec-bucket";

pub fn name(stream: &str) -> StreamName {
    StreamName {
        domain: "example.com".into(),
        app: "live".into(),
        stream: stream.into(),
    }
}

pub fn segment(object: &str, start: Micros, duration: Micros) -> Segment {
    Segment {
        endpoint: "localhost:8333".into(),
        bucket: BUCKET.into(),
        object: object.into(),
        start,
        duration,
        sequence: 0,
        width: 640,
        height: 360,
        format: Format::Ts,
        size: 1000,
        media: None,
    }
}

/// `count` segments of 6 s back to back, the first starting at `first`.
pub fn back_to_back(prefix: &str, first: Micros, count: i64) -> Vec<Segment> {
    (0..count)
        .map(|i| {
            let mut s = segment(
                &format!("{prefix}/{i:06}.ts"),
                first + i * 6 * SECOND,
                6 * SECOND,
            );
            s.sequence = i;
            s
        })
        .collect()
}

pub fn manifest(stream_id: u64, created: Micros) -> ManifestRecord {
    ManifestRecord {
        record_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "s1".into(),
        oss_endpoint: "localhost:8333".into(),
        oss_bucket: BUCKET.into(),
        oss_object: format!("live/s1/{}.m3u8", uuid::Uuid::new_v4()),
        record_url: "http://localhost:8333/rec-bucket/live/s1/index.m3u8".into(),
        start_time: "2026-11-18T23:50:00Z".into(),
        end_time: "2026-11-18T23:55:00Z".into(),
        created,
        expires: created + 180 * DAY,
        duration: 300.0,
        width: 640,
        height: 360,
        segment_count: 50,
        stream_id,
    }
}

pub fn token_answer(key: &str, created: Micros, response: &str) -> TokenAnswer {
    TokenAnswer {
        key: key.as_bytes().to_vec(),
        record: TokenRecord {
            fingerprint: vec![7; 32],
            created,
            response: response.as_bytes().to_vec(),
        },
    }
}

/// A Register's token answer whose response reads "accepted/duplicates".
pub fn register_answer(key: &str, created: Micros) -> RegisterAnswer {
    RegisterAnswer {
        key: key.as_bytes().to_vec(),
        fingerprint: vec![9; 32],
        created,
        response: Box::new(|outcome: &RegisterOutcome| {
            format!("{}/{}", outcome.accepted, outcome.duplicates).into_bytes()
        }),
    }
}

/// Registers without a token; the contract says this always commits.
pub async fn register(
    catalog: &dyn Catalog,
    stream: &str,
    segments: Vec<Segment>,
    now: Micros,
) -> RegisterOutcome {
    match catalog
        .register(&name(stream), segments, now, None)
        .await
        .unwrap()
    {
        Commit::Done(outcome) => outcome,
        Commit::Answered(_) => panic!("a register without a token was answered"),
    }
}

pub fn outcome(accepted: u32, duplicates: u32) -> RegisterOutcome {
    RegisterOutcome {
        accepted,
        duplicates,
    }
}

pub async fn stream_id(catalog: &dyn Catalog, stream: &str) -> u64 {
    catalog
        .stream(&name(stream))
        .await
        .unwrap()
        .expect("stream")
        .id
}

/// Every live segment of the stream ending in (after, until], in scan
/// order, through pages of the contract's own size.
pub async fn scan(
    catalog: &dyn Catalog,
    stream_id: u64,
    after: Micros,
    until: Micros,
    now: Micros,
) -> Vec<Segment> {
    let mut found = Vec::new();
    let mut from = ScanFrom::EndsAfter(after);
    loop {
        let page = catalog
            .scan_by_end(stream_id, &from, until, now, MAX_SCAN_PAGE)
            .await
            .unwrap();
        let done = page.len() < MAX_SCAN_PAGE;
        if let Some(last) = page.last() {
            from = ScanFrom::past(last);
        }
        found.extend(page);
        if done {
            return found;
        }
    }
}

pub fn objects(segments: &[Segment]) -> Vec<String> {
    segments.iter().map(|s| s.object.clone()).collect()
}

/// Stores a manifest without a token.
pub async fn put(catalog: &dyn Catalog, record: &ManifestRecord) {
    assert_eq!(
        catalog.put_manifest(record, None).await.unwrap(),
        Commit::Done(())
    );
}
