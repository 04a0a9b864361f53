//! ClientToken answers committed with the work they answer.

use std::sync::Arc;

use record_index::catalog::{Catalog, Commit, ManifestRecord};

use crate::Engine;
use crate::fixtures::*;

pub async fn a_manifest_and_its_token_commit_together_once<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let first = manifest(1, NOW);
    let answer = token_answer("acct\0create\0t1", NOW, "first");
    assert_eq!(
        catalog
            .put_manifest(&first, Some(answer.clone()))
            .await
            .unwrap(),
        Commit::Done(())
    );
    assert_eq!(
        catalog.token(b"acct\0create\0t1", NOW).await.unwrap(),
        Some(answer.record.clone())
    );
    assert_eq!(catalog.stored().manifests, 1);
    // A second request with the token writes nothing and gets the first
    // answer.
    let second = manifest(1, NOW + SECOND);
    let late = token_answer("acct\0create\0t1", NOW + SECOND, "second");
    assert_eq!(
        catalog.put_manifest(&second, Some(late)).await.unwrap(),
        Commit::Answered(answer.record.clone())
    );
    assert_eq!(catalog.manifest(&second.uuid(), NOW).await.unwrap(), None);
    assert_eq!(catalog.stored().manifests, 1);
    // Another token, or the same one of another account, is another key.
    let third = manifest(1, NOW + 2 * SECOND);
    let other = token_answer("acct2\0create\0t1", NOW + 2 * SECOND, "third");
    assert_eq!(
        catalog.put_manifest(&third, Some(other)).await.unwrap(),
        Commit::Done(())
    );
    assert_eq!(catalog.stored().manifests, 2);
}

pub async fn a_register_and_its_token_commit_together_once<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let batch = back_to_back("live/s1", NOW - 600 * SECOND, 5);
    let key = "acct\0register\0t1";
    let commit = catalog
        .register(
            &name("s1"),
            batch[..3].to_vec(),
            NOW,
            Some(register_answer(key, NOW)),
        )
        .await
        .unwrap();
    assert_eq!(commit, Commit::Done(outcome(3, 0)));
    let stored = catalog.token(key.as_bytes(), NOW).await.unwrap().unwrap();
    assert_eq!(stored.response, b"3/0");
    assert_eq!(
        (stored.created, stored.fingerprint.as_slice()),
        (NOW, &[9u8; 32][..])
    );
    // The token again, with other segments: nothing is registered.
    let commit = catalog
        .register(
            &name("s1"),
            batch.clone(),
            NOW,
            Some(register_answer(key, NOW + SECOND)),
        )
        .await
        .unwrap();
    assert_eq!(commit, Commit::Answered(stored));
    let id = stream_id(&*catalog, "s1").await;
    assert_eq!(scan(&*catalog, id, 0, NOW, NOW).await, batch[..3].to_vec());
    // A batch of duplicates commits its answer too.
    let commit = catalog
        .register(
            &name("s1"),
            batch[..2].to_vec(),
            NOW,
            Some(register_answer("acct\0register\0t2", NOW)),
        )
        .await
        .unwrap();
    assert_eq!(commit, Commit::Done(outcome(0, 2)));
    let stored = catalog.token(b"acct\0register\0t2", NOW).await.unwrap();
    assert_eq!(stored.unwrap().response, b"0/2");
}

pub async fn concurrent_commits_with_one_token_make_one_manifest<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let records: Vec<ManifestRecord> = (0..8).map(|i| manifest(1, NOW + i)).collect();
    let tasks: Vec<_> = records
        .iter()
        .map(|record| {
            let catalog: Arc<dyn Catalog> = catalog.clone();
            let record = record.clone();
            let answer = token_answer("acct\0create\0race", NOW, &record.uuid().to_string());
            tokio::spawn(async move { catalog.put_manifest(&record, Some(answer)).await })
        })
        .collect();
    let mut done = 0;
    let mut answered = Vec::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Commit::Done(()) => done += 1,
            Commit::Answered(first) => answered.push(first),
        }
    }
    assert_eq!(done, 1, "more than one commit won the token");
    let winner = catalog
        .token(b"acct\0create\0race", NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(answered.iter().all(|first| *first == winner));
    let ids: Vec<uuid::Uuid> = records.iter().map(ManifestRecord::uuid).collect();
    let stored: Vec<_> = catalog
        .manifests(&ids, NOW)
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].uuid().to_string().into_bytes(), winner.response);
    assert_eq!(catalog.stored().manifests, 1);
}

pub async fn a_token_is_live_for_24_hours<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let answer = token_answer("acct\0create\0t", NOW, "first");
    catalog
        .put_manifest(&manifest(1, NOW), Some(answer.clone()))
        .await
        .unwrap();
    let key = b"acct\0create\0t";
    assert!(catalog.token(key, NOW + DAY - 1).await.unwrap().is_some());
    assert_eq!(catalog.token(key, NOW + DAY).await.unwrap(), None);
    assert_eq!(catalog.token(b"acct\0create\0", NOW).await.unwrap(), None);
    // Once it has expired, the token commits a new answer.
    let again = token_answer("acct\0create\0t", NOW + DAY, "second");
    assert_eq!(
        catalog
            .put_manifest(&manifest(1, NOW + DAY), Some(again.clone()))
            .await
            .unwrap(),
        Commit::Done(())
    );
    assert_eq!(
        catalog.token(key, NOW + DAY).await.unwrap(),
        Some(again.record)
    );
}

pub async fn a_token_stored_alone_is_kept_once<E: Engine>(engine: &mut E) {
    let catalog = engine.catalog();
    let first = token_answer("acct\0register\0moved", NOW, "3/0");
    assert_eq!(
        catalog.put_token(first.clone()).await.unwrap(),
        Commit::Done(())
    );
    let again = token_answer("acct\0register\0moved", NOW + SECOND, "0/3");
    assert_eq!(
        catalog.put_token(again).await.unwrap(),
        Commit::Answered(first.record.clone())
    );
    let key = b"acct\0register\0moved";
    assert_eq!(
        catalog.token(key, NOW).await.unwrap(),
        Some(first.record.clone())
    );
    // A manifest cannot take a token stored alone, nor the reverse.
    let commit = catalog
        .put_manifest(&manifest(1, NOW), Some(first.clone()))
        .await
        .unwrap();
    assert_eq!(commit, Commit::Answered(first.record));
    assert_eq!(catalog.stored().manifests, 0);
}
