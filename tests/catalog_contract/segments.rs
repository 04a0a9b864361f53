//! Registration and the scan by end time.

use std::collections::BTreeSet;
use std::sync::Arc;

use record_index::catalog::{Catalog, MAX_SCAN_PAGE, ScanFrom};
use record_index::manifest::Segment;

use crate::Engine;
use crate::fixtures::*;

pub async fn registration_is_idempotent_whatever_times_are_sent<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let batch = back_to_back("live/s1", NOW - 600 * SECOND, 10);
    assert_eq!(
        register(&*catalog, "s1", batch.clone(), NOW).await,
        outcome(10, 0)
    );
    // The same objects again, with other times and sizes: duplicates, and
    // the stored copies stay as they were.
    let moved: Vec<Segment> = batch
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.start += 3 * DAY;
            s.duration = 2 * SECOND;
            s.width = 1920;
            s
        })
        .collect();
    assert_eq!(register(&*catalog, "s1", moved, NOW).await, outcome(0, 10));
    let id = stream_id(&*catalog, "s1").await;
    assert_eq!(scan(&*catalog, id, 0, NOW + 10 * DAY, NOW).await, batch);
    // One object twice in a batch counts once; the same key in another
    // bucket is another object.
    let mut twice = segment("live/s1/new.ts", NOW - 10 * SECOND, 6 * SECOND);
    let mut other_bucket = batch[0].clone();
    other_bucket.bucket = "other-bucket".into();
    let again = vec![twice.clone(), twice.clone(), other_bucket];
    assert_eq!(register(&*catalog, "s1", again, NOW).await, outcome(2, 1));
    twice.start -= SECOND;
    assert_eq!(
        register(&*catalog, "s1", vec![twice], NOW).await,
        outcome(0, 1)
    );
    assert_eq!(scan(&*catalog, id, 0, NOW + DAY, NOW).await.len(), 12);
    // An empty batch changes nothing.
    assert_eq!(register(&*catalog, "s1", vec![], NOW).await, outcome(0, 0));
}

pub async fn registered_tells_what_register_would_count_as_duplicate<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let batch = back_to_back("live/s1", NOW - 600 * SECOND, 4);
    let unknown_stream = catalog.registered(&name("s1"), &batch, NOW).await.unwrap();
    assert_eq!(unknown_stream, vec![false; 4]);
    register(&*catalog, "s1", batch[..2].to_vec(), NOW).await;
    let mut moved = batch[1].clone();
    moved.start -= DAY;
    let asked = vec![batch[0].clone(), moved, batch[2].clone(), batch[3].clone()];
    let known = catalog.registered(&name("s1"), &asked, NOW).await.unwrap();
    assert_eq!(known, vec![true, true, false, false]);
    // Another stream holds none of them.
    let elsewhere = catalog.registered(&name("s2"), &asked, NOW).await.unwrap();
    assert_eq!(elsewhere, vec![false; 4]);
}

pub async fn the_longest_segment_follows_accepted_segments_only<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let short = segment("live/s1/a.ts", NOW - 60 * SECOND, 4 * SECOND);
    register(&*catalog, "s1", vec![short.clone()], NOW).await;
    let stream = catalog.stream(&name("s1")).await.unwrap().unwrap();
    assert_eq!(stream.longest_segment, 4 * SECOND);
    // A duplicate with a longer duration changes nothing.
    let mut longer_copy = short.clone();
    longer_copy.duration = 30 * SECOND;
    register(&*catalog, "s1", vec![longer_copy], NOW).await;
    let again = catalog.stream(&name("s1")).await.unwrap().unwrap();
    assert_eq!(again, stream);
    let long = segment("live/s1/b.ts", NOW - 50 * SECOND, 10 * SECOND);
    let shorter = segment("live/s1/c.ts", NOW - 40 * SECOND, 2 * SECOND);
    register(&*catalog, "s1", vec![long, shorter], NOW).await;
    let grown = catalog.stream(&name("s1")).await.unwrap().unwrap();
    assert_eq!((grown.id, grown.longest_segment), (stream.id, 10 * SECOND));
}

pub async fn streams_are_found_in_order_and_kept_apart<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let shared = segment("live/shared.ts", NOW - 60 * SECOND, 6 * SECOND);
    register(&*catalog, "s1", vec![shared.clone()], NOW).await;
    // The same object in another stream is that stream's own.
    assert_eq!(
        register(&*catalog, "s2", vec![shared.clone()], NOW).await,
        outcome(1, 0)
    );
    let found = catalog
        .streams(&[name("s2"), name("nobody"), name("s1")])
        .await
        .unwrap();
    let (s2, s1) = (found[0].unwrap(), found[2].unwrap());
    assert_eq!(found[1], None);
    assert_ne!(s1.id, s2.id);
    assert_eq!(catalog.streams(&[]).await.unwrap(), vec![]);
    // Names are compared whole: no prefix of one is another.
    let mut other_app = name("s1");
    other_app.app = "live2".into();
    assert_eq!(catalog.stream(&other_app).await.unwrap(), None);
    assert_eq!(
        scan(&*catalog, s1.id, 0, NOW, NOW).await,
        vec![shared.clone()]
    );
    assert_eq!(scan(&*catalog, s2.id, 0, NOW, NOW).await, vec![shared]);
}

pub async fn the_scan_is_exclusive_then_inclusive_and_ordered<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let end = NOW - 600 * SECOND;
    // Ends: a at end-1µs, b and c exactly at end, d at end+1µs, e later.
    let segments = vec![
        segment("live/s1/e.ts", end + 120 * SECOND, 6 * SECOND),
        segment("live/s1/c.ts", end - 6 * SECOND, 6 * SECOND),
        segment("live/s1/d.ts", end - 5 * SECOND + 1, 5 * SECOND),
        segment("live/s1/b.ts", end - 2 * SECOND, 2 * SECOND),
        segment("live/s1/a.ts", end - 6 * SECOND - 1, 6 * SECOND),
    ];
    register(&*catalog, "s1", segments, NOW).await;
    let id = stream_id(&*catalog, "s1").await;
    let all = scan(&*catalog, id, 0, NOW, NOW).await;
    // By end, then bucket and object.
    assert_eq!(
        objects(&all),
        [
            "live/s1/a.ts",
            "live/s1/b.ts",
            "live/s1/c.ts",
            "live/s1/d.ts",
            "live/s1/e.ts"
        ]
    );
    // After is exclusive, until inclusive.
    let from_end = scan(&*catalog, id, end, end + 126 * SECOND, NOW).await;
    assert_eq!(objects(&from_end), ["live/s1/d.ts", "live/s1/e.ts"]);
    let until_end = scan(&*catalog, id, end - 1, end, NOW).await;
    assert_eq!(objects(&until_end), ["live/s1/b.ts", "live/s1/c.ts"]);
    assert!(scan(&*catalog, id, end, end, NOW).await.is_empty());
    assert!(scan(&*catalog, id, end, end - SECOND, NOW).await.is_empty());
    // Extreme bounds are no error.
    assert_eq!(scan(&*catalog, id, i64::MIN, i64::MAX, NOW).await.len(), 5);
    assert!(
        scan(&*catalog, id + 1_000_000, 0, NOW, NOW)
            .await
            .is_empty()
    );
}

pub async fn pages_resume_past_their_last_segment<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    // Groups of three segments sharing one end, across several minutes.
    let mut segments = Vec::new();
    for group in 0..20 {
        for object in ["x", "a", "m"] {
            segments.push(segment(
                &format!("live/s1/{group:02}-{object}.ts"),
                NOW - 3600 * SECOND + group * 23 * SECOND,
                6 * SECOND,
            ));
        }
    }
    register(&*catalog, "s1", segments, NOW).await;
    let id = stream_id(&*catalog, "s1").await;
    let whole = scan(&*catalog, id, 0, NOW, NOW).await;
    assert_eq!(whole.len(), 60);
    for limit in [1, 2, 3, 4, 7, 60, 61] {
        let mut paged = Vec::new();
        let mut from = ScanFrom::EndsAfter(0);
        loop {
            let page = catalog
                .scan_by_end(id, &from, NOW, NOW, limit)
                .await
                .unwrap();
            assert!(page.len() <= limit);
            let done = page.len() < limit;
            if let Some(last) = page.last() {
                from = ScanFrom::past(last);
            }
            paged.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }
    // A page asked of size zero is empty.
    let none = catalog
        .scan_by_end(id, &ScanFrom::EndsAfter(0), NOW, NOW, 0)
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn a_page_is_never_longer_than_the_cap<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let count = MAX_SCAN_PAGE as i64 + 5;
    for chunk in back_to_back("live/s1", NOW - 30 * DAY, count).chunks(1000) {
        register(&*catalog, "s1", chunk.to_vec(), NOW).await;
    }
    let id = stream_id(&*catalog, "s1").await;
    let page = catalog
        .scan_by_end(id, &ScanFrom::EndsAfter(0), NOW, NOW, usize::MAX)
        .await
        .unwrap();
    assert_eq!(page.len(), MAX_SCAN_PAGE);
    assert_eq!(scan(&*catalog, id, 0, NOW, NOW).await.len() as i64, count);
}

pub async fn paging_is_stable_under_concurrent_registers<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let first = NOW - 2 * 3600 * SECOND;
    let before = back_to_back("live/s1/old", first, 600);
    register(&*catalog, "s1", before.clone(), NOW).await;
    let id = stream_id(&*catalog, "s1").await;
    // While one task pages, another registers segments all over the range:
    // ends before the pages, between them and after them.
    let writer = {
        let catalog = catalog.clone();
        tokio::spawn(async move {
            for round in 0..40 {
                let batch: Vec<Segment> = (0..15)
                    .map(|i| {
                        let start = first + (round * 15 + i) * 5 * SECOND + SECOND;
                        segment(&format!("live/s1/new-{round}-{i}.ts"), start, 3 * SECOND)
                    })
                    .collect();
                register(&*catalog, "s1", batch, NOW).await;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut paged: Vec<Segment> = Vec::new();
    let mut from = ScanFrom::EndsAfter(0);
    loop {
        let page = catalog.scan_by_end(id, &from, NOW, NOW, 25).await.unwrap();
        let done = page.len() < 25;
        if let Some(last) = page.last() {
            from = ScanFrom::past(last);
        }
        paged.extend(page);
        tokio::task::yield_now().await;
        if done {
            break;
        }
    }
    writer.await.unwrap();
    let keys: Vec<_> = paged
        .iter()
        .map(|s| (s.end(), s.bucket.clone(), s.object.clone()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "pages went back or repeated a segment"
    );
    let seen: BTreeSet<&str> = paged.iter().map(|s| s.object.as_str()).collect();
    for segment in &before {
        assert!(
            seen.contains(segment.object.as_str()),
            "{} was skipped",
            segment.object
        );
    }
}

pub async fn concurrent_registers_of_one_stream_accept_each_object_once<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let pool = back_to_back("live/s1", NOW - 3 * 3600 * SECOND, 1000);
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let catalog: Arc<dyn Catalog> = catalog.clone();
            // Each task sends 250 objects of the pool, overlapping others'.
            let batch: Vec<Segment> = (0..250)
                .map(|i| pool[(task * 61 + i * 4) % 1000].clone())
                .collect();
            tokio::spawn(async move {
                let mut total = outcome(0, 0);
                for chunk in batch.chunks(50) {
                    let got = register(&*catalog, "s1", chunk.to_vec(), NOW).await;
                    total.accepted += got.accepted;
                    total.duplicates += got.duplicates;
                }
                total
            })
        })
        .collect();
    let mut accepted = 0;
    let mut sent = 0;
    for task in tasks {
        let total = task.await.unwrap();
        accepted += total.accepted;
        sent += total.accepted + total.duplicates;
    }
    assert_eq!(sent, 16 * 250);
    let id = stream_id(&*catalog, "s1").await;
    let stored = scan(&*catalog, id, 0, NOW, NOW).await;
    let distinct: BTreeSet<&str> = stored.iter().map(|s| s.object.as_str()).collect();
    assert_eq!(distinct.len(), stored.len(), "an object was stored twice");
    assert_eq!(
        accepted as usize,
        stored.len(),
        "accepted {accepted}, stored {}",
        stored.len()
    );
}

pub async fn segments_expire_90_days_after_their_start<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let old = segment("live/s1/a.ts", NOW - 600 * SECOND, 6 * SECOND);
    register(&*catalog, "s1", vec![old.clone()], NOW).await;
    let id = stream_id(&*catalog, "s1").await;
    let expiry = old.start + 90 * DAY;
    assert_eq!(
        scan(&*catalog, id, 0, NOW, expiry - 1).await,
        vec![old.clone()]
    );
    assert!(scan(&*catalog, id, 0, NOW, expiry).await.is_empty());
    let asked = catalog
        .registered(&name("s1"), std::slice::from_ref(&old), expiry)
        .await
        .unwrap();
    assert_eq!(asked, vec![false]);
    // Sent again before its expiry it is a duplicate; after, it is new and
    // the fresh copy, with its own times, is the one kept.
    assert_eq!(
        register(&*catalog, "s1", vec![old.clone()], expiry - 1).await,
        outcome(0, 1)
    );
    let mut fresh = old.clone();
    fresh.start = expiry - 60 * SECOND;
    assert_eq!(
        register(&*catalog, "s1", vec![fresh.clone()], expiry).await,
        outcome(1, 0)
    );
    assert_eq!(
        scan(&*catalog, id, 0, expiry + DAY, expiry).await,
        vec![fresh.clone()]
    );
    assert_eq!(
        register(&*catalog, "s1", vec![old], expiry).await,
        outcome(0, 1)
    );
}

pub async fn a_stream_is_made_without_segments_once<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let made = catalog.ensure_stream(&name("s1"), NOW).await.unwrap();
    assert_eq!(made.longest_segment, 0);
    assert_eq!(catalog.stream(&name("s1")).await.unwrap(), Some(made));
    assert_eq!(catalog.ensure_stream(&name("s1"), NOW).await.unwrap(), made);
    assert_eq!(catalog.stored().segments, 0);
    // Registering into it keeps its id.
    let first = segment("live/s1/a.ts", NOW - 60 * SECOND, 6 * SECOND);
    register(&*catalog, "s1", vec![first], NOW).await;
    let grown = catalog.ensure_stream(&name("s1"), NOW).await.unwrap();
    assert_eq!((grown.id, grown.longest_segment), (made.id, 6 * SECOND));
    let other = catalog.ensure_stream(&name("s2"), NOW).await.unwrap();
    assert_ne!(other.id, made.id);
}

pub async fn a_sink_is_offered_what_the_pages_hold<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let mut segments = back_to_back("live/s1", NOW - 30 * DAY, 25_000);
    // Ties on end, in several buckets.
    for (i, segment) in segments.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        segment.bucket = format!("b{}", i % 7);
        segment.start -= 6 * SECOND;
    }
    for chunk in segments.chunks(1000) {
        register(&*catalog, "s1", chunk.to_vec(), NOW).await;
    }
    let id = stream_id(&*catalog, "s1").await;
    let (after, until) = (NOW - 30 * DAY + 3600 * SECOND, NOW - 29 * DAY);
    let mut offered = catalog
        .scan_all(id, after, until, NOW, Vec::new())
        .await
        .unwrap();
    let paged = scan(&*catalog, id, after, until, NOW).await;
    assert!(paged.len() > MAX_SCAN_PAGE, "{} segments", paged.len());
    let key = |s: &Segment| (s.end(), s.bucket.clone(), s.object.clone());
    offered.sort_by_key(key);
    assert_eq!(offered, paged);
}
