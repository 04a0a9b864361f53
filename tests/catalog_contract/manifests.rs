//! Manifest metadata: by id, by page, and deletion.

use record_index::catalog::{Catalog, ManifestQuery, ManifestRecord, Order};
use record_index::manifest::Micros;

use crate::Engine;
use crate::fixtures::*;

fn query(stream_id: u64, from: Micros, until: Micros, order: Order) -> ManifestQuery {
    ManifestQuery {
        stream_id,
        from,
        until,
        order,
        skip: 0,
        take: 1000,
    }
}

async fn ids_listed(catalog: &dyn Catalog, query: ManifestQuery, now: Micros) -> Vec<uuid::Uuid> {
    let page = catalog.list_manifests(query, now).await.unwrap();
    page.records.iter().map(ManifestRecord::uuid).collect()
}

pub async fn a_manifest_is_found_by_id_until_it_expires<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let (a, b) = (manifest(1, NOW), manifest(1, NOW + SECOND));
    put(&*catalog, &a).await;
    put(&*catalog, &b).await;
    let unknown = uuid::Uuid::new_v4();
    let found = catalog
        .manifests(&[b.uuid(), unknown, a.uuid(), b.uuid()], NOW)
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![Some(b.clone()), None, Some(a.clone()), Some(b.clone())]
    );
    assert_eq!(catalog.manifests(&[], NOW).await.unwrap(), vec![]);
    assert_eq!(
        catalog.manifest(&a.uuid(), a.expires - 1).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(catalog.manifest(&a.uuid(), a.expires).await.unwrap(), None);
    assert_eq!(
        catalog.manifest(&uuid::Uuid::nil(), NOW).await.unwrap(),
        None
    );
}

pub async fn listings_page_in_creation_order_with_their_total<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    // 23 manifests of stream 7, two by two at one creation time; one of
    // another stream inside the range.
    let mut records: Vec<ManifestRecord> = (0..23)
        .map(|i| manifest(7, NOW - 1000 * SECOND + (i / 2) * 10 * SECOND))
        .collect();
    for record in &records {
        put(&*catalog, record).await;
    }
    put(&*catalog, &manifest(8, NOW - 500 * SECOND)).await;
    records.sort_by_key(|r| (r.created, r.uuid()));
    let ascending: Vec<uuid::Uuid> = records.iter().map(ManifestRecord::uuid).collect();
    for order in [Order::Ascending, Order::Descending] {
        let mut expected = ascending.clone();
        if order == Order::Descending {
            expected.reverse();
        }
        let mut seen = Vec::new();
        for page in 0..6 {
            let listed = catalog
                .list_manifests(
                    ManifestQuery {
                        skip: page * 5,
                        take: 5,
                        ..query(7, NOW - 2000 * SECOND, NOW, order)
                    },
                    NOW,
                )
                .await
                .unwrap();
            assert_eq!(listed.total, 23);
            assert!(listed.records.len() <= 5);
            seen.extend(listed.records.iter().map(ManifestRecord::uuid));
        }
        assert_eq!(seen, expected, "{order:?}");
    }
    // From and until are inclusive: the first two are created at
    // NOW - 1000 s, the last one at NOW - 890 s.
    let first_two = ids_listed(
        &*catalog,
        query(
            7,
            NOW - 2000 * SECOND,
            NOW - 1000 * SECOND,
            Order::Ascending,
        ),
        NOW,
    )
    .await;
    assert_eq!(first_two, ascending[..2]);
    let last = ids_listed(
        &*catalog,
        query(7, NOW - 890 * SECOND, NOW, Order::Ascending),
        NOW,
    )
    .await;
    assert_eq!(last, ascending[22..]);
    let empty = catalog
        .list_manifests(query(7, NOW, NOW - SECOND, Order::Ascending), NOW)
        .await
        .unwrap();
    assert_eq!((empty.total, empty.records.len()), (0, 0));
    // Expired manifests are neither listed nor counted.
    let when_two_expired = records[1].expires;
    let listed = catalog
        .list_manifests(query(7, 0, NOW, Order::Ascending), when_two_expired)
        .await
        .unwrap();
    assert_eq!(listed.total, 21);
    assert_eq!(listed.records[0].uuid(), ascending[2]);
}

pub async fn an_ascending_listing_is_stable_under_new_manifests<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let mut expected = Vec::new();
    for i in 0..30 {
        let record = manifest(3, NOW - 3600 * SECOND + i * SECOND);
        put(&*catalog, &record).await;
        expected.push(record.uuid());
    }
    // Manifests are created at "now": while a client pages through an
    // ascending listing, new ones come after every page it has seen.
    let mut seen = Vec::new();
    for page in 0..6 {
        let listed = catalog
            .list_manifests(
                ManifestQuery {
                    skip: page * 7,
                    take: 7,
                    ..query(3, 0, NOW + DAY, Order::Ascending)
                },
                NOW,
            )
            .await
            .unwrap();
        seen.extend(listed.records.iter().map(ManifestRecord::uuid));
        let newer = manifest(3, NOW + page as i64 * SECOND);
        put(&*catalog, &newer).await;
        expected.push(newer.uuid());
    }
    assert_eq!(seen, expected[..seen.len()]);
    assert!(seen.len() >= 30);
}

pub async fn deletion_is_exact_and_shared_playlists_are_told<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let a = manifest(5, NOW - 20 * SECOND);
    // b writes the same playlist object as a; c another one.
    let b = ManifestRecord {
        oss_object: a.oss_object.clone(),
        ..manifest(5, NOW - 10 * SECOND)
    };
    let c = manifest(5, NOW - 5 * SECOND);
    for record in [&a, &b, &c] {
        put(&*catalog, record).await;
    }
    let shared = catalog
        .playlists_shared(&[a.clone(), b.clone(), c.clone()], NOW)
        .await
        .unwrap();
    assert_eq!(shared, vec![true, true, false]);
    // The same key in another bucket is another object.
    let other_bucket = ManifestRecord {
        oss_bucket: "other".into(),
        ..a.clone()
    };
    let alone = catalog
        .playlists_shared(&[other_bucket], NOW)
        .await
        .unwrap();
    assert_eq!(alone, vec![false]);

    let before = catalog.stored().manifests;
    catalog
        .delete_manifests(std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(catalog.manifest(&a.uuid(), NOW).await.unwrap(), None);
    assert_eq!(
        catalog.manifest(&b.uuid(), NOW).await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(catalog.stored().manifests, before - 1);
    // With a gone, b's playlist is its own.
    let shared = catalog
        .playlists_shared(std::slice::from_ref(&b), NOW)
        .await
        .unwrap();
    assert_eq!(shared, vec![false]);
    // Deleting what is not stored (again, or never) is no error and
    // changes nothing.
    catalog
        .delete_manifests(&[a.clone(), manifest(5, NOW)])
        .await
        .unwrap();
    catalog.delete_manifests(&[]).await.unwrap();
    assert_eq!(catalog.stored().manifests, before - 1);
    catalog
        .delete_manifests(&[b.clone(), c.clone()])
        .await
        .unwrap();
    let listed = catalog
        .list_manifests(query(5, 0, NOW, Order::Ascending), NOW)
        .await
        .unwrap();
    assert_eq!((listed.total, listed.records.len()), (0, 0));
    // A shared playlist counts only while the other manifest is live.
    let d = manifest(6, NOW - 180 * DAY + 10);
    let e = ManifestRecord {
        oss_object: d.oss_object.clone(),
        ..manifest(6, NOW)
    };
    put(&*catalog, &d).await;
    put(&*catalog, &e).await;
    let shared = catalog
        .playlists_shared(std::slice::from_ref(&e), NOW)
        .await
        .unwrap();
    assert_eq!(shared, vec![true]);
    let shared = catalog
        .playlists_shared(std::slice::from_ref(&e), d.expires)
        .await
        .unwrap();
    assert_eq!(shared, vec![false]);
}
