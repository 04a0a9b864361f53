//! Moving a single node's catalog into another engine
//! (`record-index migrate-catalog --from-sled`): its streams, live
//! segments, live manifests and live ClientToken answers, written through
//! the target's own contract, so the target holds what it receives to the
//! same rules. Safe to run again: what the target holds already is
//! counted, not written twice.

use std::collections::HashMap;
use std::sync::Arc;

use super::sled_engine::SledCatalog;
use super::{Catalog, CatalogError, Commit, ScanFrom, StreamName, TOKEN_RETENTION};
use crate::manifest::Micros;

/// Records read and written per call, either side.
const PAGE: usize = 1000;

/// What a move copied, and what the target held already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Moved {
    pub streams: u64,
    pub segments: u64,
    pub segments_present: u64,
    pub manifests: u64,
    pub manifests_present: u64,
    pub tokens: u64,
    pub tokens_present: u64,
}

async fn read<T: Send + 'static>(
    source: &Arc<SledCatalog>,
    work: impl FnOnce(&SledCatalog) -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, CatalogError> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || work(&source))
        .await
        .map_err(|err| CatalogError::Storage(format!("reading the sled catalog failed: {err}")))?
}

/// Copies everything live at `now` from `source` into `target`.
pub async fn from_sled(
    source: Arc<SledCatalog>,
    target: &dyn Catalog,
    now: Micros,
) -> Result<Moved, CatalogError> {
    let mut moved = Moved::default();
    // Stream ids are each engine's own: manifests name the target's.
    let mut stream_ids = HashMap::new();
    for (name, stream) in read(&source, |s| s.all_streams()).await? {
        let made = target.ensure_stream(&name, now).await?;
        stream_ids.insert(stream.id, made.id);
        moved.streams += 1;
        copy_segments(&source, target, &name, stream.id, now, &mut moved).await?;
    }
    copy_manifests(&source, target, &mut stream_ids, now, &mut moved).await?;
    copy_tokens(&source, target, now, &mut moved).await?;
    Ok(moved)
}

async fn copy_segments(
    source: &Arc<SledCatalog>,
    target: &dyn Catalog,
    name: &StreamName,
    stream_id: u64,
    now: Micros,
    moved: &mut Moved,
) -> Result<(), CatalogError> {
    let mut from = ScanFrom::EndsAfter(Micros::MIN);
    loop {
        let after = from.clone();
        let page = read(source, move |s| {
            s.scan_page(stream_id, &after, Micros::MAX, now, PAGE)
        })
        .await?;
        let done = page.len() < PAGE;
        if let Some(last) = page.last() {
            from = ScanFrom::past(last);
        }
        if let Commit::Done(outcome) = target.register(name, page, now, None).await? {
            moved.segments += u64::from(outcome.accepted);
            moved.segments_present += u64::from(outcome.duplicates);
        }
        if done {
            return Ok(());
        }
    }
}

async fn copy_manifests(
    source: &Arc<SledCatalog>,
    target: &dyn Catalog,
    stream_ids: &mut HashMap<u64, u64>,
    now: Micros,
    moved: &mut Moved,
) -> Result<(), CatalogError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let from = after.clone();
        let page = read(source, move |s| s.manifest_page(from.as_deref(), PAGE)).await?;
        let done = page.len() < PAGE;
        after = page.last().map(|record| record.record_id.clone());
        let live: Vec<_> = page.into_iter().filter(|r| r.expires > now).collect();
        let ids: Vec<uuid::Uuid> = live.iter().map(|r| r.uuid()).collect();
        let present = target.manifests(&ids, now).await?;
        for (mut record, present) in live.into_iter().zip(present) {
            if present.is_some() {
                moved.manifests_present += 1;
                continue;
            }
            record.stream_id = match stream_ids.get(&record.stream_id) {
                Some(id) => *id,
                None => {
                    // A manifest whose stream record is gone: made once.
                    let name = StreamName {
                        domain: record.domain_name.clone(),
                        app: record.app_name.clone(),
                        stream: record.stream_name.clone(),
                    };
                    let id = target.ensure_stream(&name, now).await?.id;
                    stream_ids.insert(record.stream_id, id);
                    id
                }
            };
            target.put_manifest(&record, None).await?;
            moved.manifests += 1;
        }
        if done {
            return Ok(());
        }
    }
}

async fn copy_tokens(
    source: &Arc<SledCatalog>,
    target: &dyn Catalog,
    now: Micros,
    moved: &mut Moved,
) -> Result<(), CatalogError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let from = after.clone();
        let page = read(source, move |s| s.token_page(from.as_deref(), PAGE)).await?;
        let done = page.len() < PAGE;
        after = page.last().map(|answer| answer.key.clone());
        for answer in page {
            if answer.record.created.saturating_add(TOKEN_RETENTION) <= now {
                continue;
            }
            match target.put_token(answer).await? {
                Commit::Done(()) => moved.tokens += 1,
                Commit::Answered(_) => moved.tokens_present += 1,
            }
        }
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::sled_engine::SledEngine;
    use crate::catalog::{ManifestQuery, ManifestRecord, Order, TokenAnswer, TokenRecord};
    use crate::manifest::{Format, MICROS_PER_DAY, Segment};

    const NOW: Micros = 1_795_089_600_000_000;
    const SECOND: Micros = 1_000_000;

    fn name(stream: &str) -> StreamName {
        StreamName {
            domain: "example.com".into(),
            app: "live".into(),
            stream: stream.into(),
        }
    }

    fn segments(stream: &str, first: Micros, count: i64) -> Vec<Segment> {
        (0..count)
            .map(|i| Segment {
                endpoint: "localhost".into(),
                bucket: "rec".into(),
                object: format!("live/{stream}/{i}.ts"),
                start: first + i * 6 * SECOND,
                duration: 6 * SECOND,
                sequence: i,
                width: 640,
                height: 360,
                format: Format::Ts,
                size: 10,
                media: None,
            })
            .collect()
    }

    fn manifest(stream_id: u64, stream: &str, created: Micros) -> ManifestRecord {
        ManifestRecord {
            record_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: stream.into(),
            created,
            expires: created + 180 * MICROS_PER_DAY,
            stream_id,
            ..Default::default()
        }
    }

    fn listed(page: crate::catalog::ManifestPage) -> Vec<uuid::Uuid> {
        page.records.iter().map(ManifestRecord::uuid).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sled_catalog_moves_whole_and_a_second_run_copies_nothing() {
        let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = Arc::new(SledCatalog::open(from_dir.path(), 1 << 20).unwrap());
        // s1: 2,500 live segments (three pages); s2: only expired ones,
        // and a manifest that still lists.
        source
            .register(
                &name("s1"),
                segments("s1", NOW - 5 * 3600 * SECOND, 2500),
                NOW,
            )
            .unwrap();
        let old = NOW - 100 * MICROS_PER_DAY;
        source
            .register(&name("s2"), segments("s2", old, 3), old)
            .unwrap();
        let s1 = source.stream(&name("s1")).unwrap().unwrap().id;
        let s2 = source.stream(&name("s2")).unwrap().unwrap().id;
        let live = [
            manifest(s1, "s1", NOW - SECOND),
            manifest(s2, "s2", NOW - 2 * SECOND),
        ];
        let expired = manifest(s1, "s1", NOW - 181 * MICROS_PER_DAY);
        for record in live.iter().chain([&expired]) {
            source.put_manifest(record).unwrap();
        }
        let token = |key: &str, created| TokenAnswer {
            key: key.as_bytes().to_vec(),
            record: TokenRecord {
                fingerprint: vec![1],
                created,
                response: b"answer".to_vec(),
            },
        };
        source
            .put_token(&token("a\0op\0live", NOW - SECOND))
            .unwrap();
        source
            .put_token(&token("a\0op\0old", NOW - 2 * MICROS_PER_DAY))
            .unwrap();

        let target = SledEngine::new(SledCatalog::open(to_dir.path(), 1 << 20).unwrap());
        let moved = from_sled(source.clone(), &target, NOW).await.unwrap();
        assert_eq!(
            moved,
            Moved {
                streams: 2,
                segments: 2500,
                manifests: 2,
                tokens: 1,
                ..Default::default()
            }
        );
        let target: &dyn Catalog = &target;
        let t1 = target.stream(&name("s1")).await.unwrap().unwrap();
        let mut copied = target
            .scan_all(t1.id, Micros::MIN, Micros::MAX, NOW, Vec::new())
            .await
            .unwrap();
        copied.sort_by_key(|s| s.start);
        assert_eq!(copied, segments("s1", NOW - 5 * 3600 * SECOND, 2500));
        assert_eq!(t1.longest_segment, 6 * SECOND);
        // Each manifest lists under its stream in the target.
        for (record, stream) in live.iter().zip(["s1", "s2"]) {
            let id = target.stream(&name(stream)).await.unwrap().unwrap().id;
            let query = ManifestQuery {
                stream_id: id,
                from: 0,
                until: NOW,
                order: Order::Ascending,
                skip: 0,
                take: 10,
            };
            let page = target.list_manifests(query, NOW).await.unwrap();
            assert_eq!(listed(page), vec![record.uuid()], "{stream}");
        }
        assert_eq!(target.manifest(&expired.uuid(), NOW).await.unwrap(), None);
        assert!(target.token(b"a\0op\0live", NOW).await.unwrap().is_some());
        assert!(target.token(b"a\0op\0old", NOW).await.unwrap().is_none());

        let again = from_sled(source, target, NOW).await.unwrap();
        assert_eq!(
            again,
            Moved {
                streams: 2,
                segments_present: 2500,
                manifests_present: 2,
                tokens_present: 1,
                ..Default::default()
            }
        );
    }
}
