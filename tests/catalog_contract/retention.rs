//! Expiry by the sweeper, the record counts, and durability across a
//! reopen.

use record_index::catalog::{Catalog, Commit, ManifestQuery, ManifestRecord, Order, SweepReport};
use record_index::manifest::Micros;

use crate::Engine;
use crate::fixtures::*;

const KEY: &[u8] = b"account\0op\0token";

async fn listed(catalog: &dyn Catalog, stream_id: u64, now: Micros) -> usize {
    let query = ManifestQuery {
        stream_id,
        from: 0,
        until: i64::MAX / 2,
        order: Order::Ascending,
        skip: 0,
        take: 30,
    };
    catalog.list_manifests(query, now).await.unwrap().total
}

/// What the stream holds, expired or not: with "now" at 0 nothing counts
/// as expired.
async fn stored_objects(catalog: &dyn Catalog, stream_id: u64) -> Vec<String> {
    objects(&scan(catalog, stream_id, 0, i64::MAX / 2, 0).await)
}

async fn sweep(catalog: &dyn Catalog, now: Micros) -> SweepReport {
    catalog.sweep(now, 100).await.unwrap()
}

fn only(manifests: usize, segments: usize, tokens: usize) -> SweepReport {
    SweepReport {
        manifests,
        segments,
        tokens,
    }
}

pub async fn a_sweep_removes_each_record_at_its_expiry<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let catalog = &*catalog;
    // Segment a ends in one minute, b a minute later.
    let a = segment("live/s1/a.ts", NOW - 600 * SECOND, 6 * SECOND);
    let b = segment("live/s1/b.ts", NOW - 540 * SECOND, 6 * SECOND);
    register(catalog, "s1", vec![a.clone(), b.clone()], NOW).await;
    let id = stream_id(catalog, "s1").await;
    let record = manifest(id, NOW);
    let answer = token_answer("account\0op\0token", NOW, "first answer");
    catalog.put_manifest(&record, Some(answer)).await.unwrap();

    // Tokens: 24 hours after their creation.
    assert_eq!(sweep(catalog, NOW + DAY - 1).await, SweepReport::default());
    assert!(catalog.token(KEY, NOW).await.unwrap().is_some());
    assert_eq!(sweep(catalog, NOW + DAY).await, only(0, 0, 1));
    assert!(catalog.token(KEY, NOW).await.unwrap().is_none());

    // Segments: 90 days after their start.
    let (a_expiry, b_expiry) = (a.start + 90 * DAY, b.start + 90 * DAY);
    assert_eq!(sweep(catalog, a_expiry - 1).await, SweepReport::default());
    assert_eq!(
        stored_objects(catalog, id).await,
        ["live/s1/a.ts", "live/s1/b.ts"]
    );
    assert_eq!(sweep(catalog, a_expiry).await, only(0, 1, 0));
    assert_eq!(stored_objects(catalog, id).await, ["live/s1/b.ts"]);
    assert_eq!(sweep(catalog, b_expiry - 1).await, SweepReport::default());
    assert_eq!(sweep(catalog, b_expiry).await, only(0, 1, 0));
    assert!(stored_objects(catalog, id).await.is_empty());
    // A swept key is free again: registering it is new, not a duplicate.
    let mut reused = a.clone();
    reused.start = b_expiry - 600 * SECOND;
    assert_eq!(
        register(catalog, "s1", vec![reused], b_expiry).await,
        outcome(1, 0)
    );

    // Manifests: at their expiry, 180 days after their creation.
    let m_expiry = record.expires;
    assert_eq!(sweep(catalog, m_expiry - 1).await.manifests, 0);
    assert!(
        catalog
            .manifest(&record.uuid(), NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(listed(catalog, id, NOW).await, 1);
    assert_eq!(sweep(catalog, m_expiry).await, only(1, 0, 0));
    assert!(
        catalog
            .manifest(&record.uuid(), NOW)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(listed(catalog, id, NOW).await, 0);
    assert_eq!(sweep(catalog, m_expiry).await.manifests, 0);
}

pub async fn a_sweep_works_in_bounded_batches_oldest_first<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let records: Vec<ManifestRecord> = (0..5).map(|i| manifest(7, NOW + i)).collect();
    for record in &records {
        put(&*catalog, record).await;
    }
    // With the clock between two expiries only the older go.
    let report = catalog.sweep(records[2].expires, 100).await.unwrap();
    assert_eq!(report.manifests, 3);
    for (i, record) in records.iter().enumerate() {
        let stored = catalog
            .manifest(&record.uuid(), NOW)
            .await
            .unwrap()
            .is_some();
        assert_eq!(stored, i > 2, "manifest {i}");
    }
    for record in &records[..3] {
        put(&*catalog, record).await;
    }
    let later = NOW + 180 * DAY + 10;
    let mut counts = Vec::new();
    loop {
        let report = catalog.sweep(later, 2).await.unwrap();
        counts.push((report.manifests, report.maybe_more(2)));
        if !report.maybe_more(2) {
            break;
        }
    }
    assert_eq!(counts, vec![(2, true), (2, true), (1, false)]);
    // Segments too, in bounded steps (an engine may finish the unit of
    // storage it is in), until every expired one is gone.
    let old = back_to_back("live/s1", NOW - 100 * DAY, 25);
    register(&*catalog, "s1", old, NOW - 100 * DAY).await;
    let mut swept = 0;
    loop {
        let report = catalog.sweep(NOW, 2).await.unwrap();
        assert!(report.segments < 25, "one step swept everything");
        swept += report.segments;
        if !report.maybe_more(2) {
            break;
        }
    }
    assert_eq!(swept, 25);
    let id = stream_id(&*catalog, "s1").await;
    assert!(stored_objects(&*catalog, id).await.is_empty());
}

pub async fn a_sweep_keeps_a_token_used_again_after_its_expiry<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let first = token_answer("account\0op\0token", NOW, "first answer");
    catalog
        .put_manifest(&manifest(1, NOW), Some(first))
        .await
        .unwrap();
    // The token is used again once its first use has expired, before a
    // sweep came by: that second use is kept for 24 hours of its own.
    let again = token_answer("account\0op\0token", NOW + DAY + SECOND, "second answer");
    assert!(
        catalog
            .token(KEY, again.record.created)
            .await
            .unwrap()
            .is_none()
    );
    let commit = catalog
        .put_manifest(&manifest(1, again.record.created), Some(again.clone()))
        .await
        .unwrap();
    assert_eq!(commit, Commit::Done(()));
    catalog.sweep(NOW + DAY + 2 * SECOND, 100).await.unwrap();
    assert_eq!(
        catalog.token(KEY, NOW + DAY + 2 * SECOND).await.unwrap(),
        Some(again.record.clone()),
        "the sweep of the first use removed the second use"
    );
    // The second use goes at its own expiry.
    let created = again.record.created;
    catalog.sweep(created + DAY - 1, 100).await.unwrap();
    assert!(catalog.token(KEY, created).await.unwrap().is_some());
    catalog.sweep(created + DAY, 100).await.unwrap();
    assert!(catalog.token(KEY, created).await.unwrap().is_none());
}

pub async fn counts_follow_every_write_without_a_scan<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let counts = |c: &dyn Catalog| {
        let stored = c.stored();
        (stored.segments, stored.manifests)
    };
    assert_eq!(counts(&*catalog), (0, 0));
    let batch = back_to_back("live/s1", NOW - 100 * DAY, 4);
    register(&*catalog, "s1", batch.clone(), NOW - 100 * DAY).await;
    register(&*catalog, "s2", batch[..1].to_vec(), NOW).await;
    assert_eq!(counts(&*catalog), (5, 0));
    register(&*catalog, "s1", batch.clone(), NOW - 100 * DAY).await;
    assert_eq!(counts(&*catalog), (5, 0), "duplicates were counted");
    let record = manifest(1, NOW);
    put(&*catalog, &record).await;
    put(&*catalog, &manifest(1, NOW)).await;
    assert_eq!(counts(&*catalog), (5, 2));
    catalog.delete_manifests(&[record]).await.unwrap();
    assert_eq!(counts(&*catalog), (5, 1));
    // An expired copy replaced by a new registration is one segment.
    let mut fresh = batch[0].clone();
    fresh.start = NOW - 60 * SECOND;
    register(&*catalog, "s1", vec![fresh], NOW).await;
    let after_replace = counts(&*catalog).0;
    assert!(
        after_replace == 5 || after_replace == 6,
        "{after_replace} segments after replacing one"
    );
    while catalog.sweep(NOW, 100).await.unwrap().maybe_more(100) {}
    assert_eq!(counts(&*catalog), (1, 1));
}

pub async fn acknowledged_writes_survive_a_reopen<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let batch = back_to_back("live/s1", NOW - 600 * SECOND, 30);
    register(&*catalog, "s1", batch.clone(), NOW).await;
    let stream = catalog.stream(&name("s1")).await.unwrap().unwrap();
    let kept = manifest(stream.id, NOW);
    let deleted = manifest(stream.id, NOW);
    let answer = token_answer("account\0op\0token", NOW, "kept");
    catalog
        .put_manifest(&kept, Some(answer.clone()))
        .await
        .unwrap();
    put(&*catalog, &deleted).await;
    catalog
        .delete_manifests(std::slice::from_ref(&deleted))
        .await
        .unwrap();
    let stored = catalog.stored();
    drop(catalog);

    engine.reopen().await;
    let catalog = engine.catalog();
    assert_eq!(catalog.stream(&name("s1")).await.unwrap(), Some(stream));
    assert_eq!(scan(&*catalog, stream.id, 0, NOW, NOW).await, batch);
    assert_eq!(
        register(&*catalog, "s1", batch.clone(), NOW).await,
        outcome(0, 30)
    );
    assert_eq!(
        catalog.manifest(&kept.uuid(), NOW).await.unwrap(),
        Some(kept)
    );
    assert_eq!(catalog.manifest(&deleted.uuid(), NOW).await.unwrap(), None);
    assert_eq!(catalog.token(KEY, NOW).await.unwrap(), Some(answer.record));
    assert_eq!(catalog.stored(), stored);
    catalog.check().await.unwrap();
    catalog.sync().await.unwrap();
}
