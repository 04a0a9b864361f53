//! [`Catalog`] for the sled catalog: every call runs on the blocking pool,
//! since sled reads may hit the disk and a commit waits for its fsync, and
//! every write is flushed before it returns.

use std::sync::Arc;

use async_trait::async_trait;

use super::super::{
    Catalog, CatalogError, Commit, MAX_SCAN_PAGE, ManifestPage, ManifestQuery, ManifestRecord,
    RegisterAnswer, RegisterOutcome, ScanFrom, SegmentSink, Stored, Stream, StreamName,
    SweepReport, TokenAnswer, TokenRecord,
};
use super::SledCatalog;
use crate::manifest::{Micros, Segment};

/// The embedded engine: a [`SledCatalog`] behind the [`Catalog`] contract.
#[derive(Clone)]
pub struct SledEngine {
    catalog: Arc<SledCatalog>,
}

impl SledEngine {
    pub fn new(catalog: SledCatalog) -> SledEngine {
        SledEngine {
            catalog: Arc::new(catalog),
        }
    }

    /// The catalog itself, for work that is sled's own (backup, tests).
    pub fn sled(&self) -> &SledCatalog {
        &self.catalog
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SledCatalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = self.catalog.clone();
        tokio::task::spawn_blocking(move || work(&catalog))
            .await
            .map_err(|err| CatalogError::Storage(format!("catalog task failed: {err}")))?
    }
}

#[async_trait]
impl Catalog for SledEngine {
    async fn streams(&self, names: &[StreamName]) -> Result<Vec<Option<Stream>>, CatalogError> {
        let names = names.to_vec();
        self.run(move |catalog| {
            names
                .iter()
                .map(|name| {
                    Ok(catalog.stream(name)?.map(|record| Stream {
                        id: record.id,
                        longest_segment: record.longest_segment,
                    }))
                })
                .collect()
        })
        .await
    }

    async fn registered(
        &self,
        name: &StreamName,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        let (name, segments) = (name.clone(), segments.to_vec());
        self.run(move |catalog| catalog.registered(&name, &segments, now))
            .await
    }

    async fn register(
        &self,
        name: &StreamName,
        segments: Vec<Segment>,
        now: Micros,
        answer: Option<RegisterAnswer>,
    ) -> Result<Commit<RegisterOutcome>, CatalogError> {
        let name = name.clone();
        self.run(move |catalog| {
            let commit = catalog.register_answering(&name, segments, now, answer.as_ref())?;
            // Flushed for duplicates and replays too: the first copy may
            // still be on its way to disk from a concurrent request.
            catalog.flush()?;
            Ok(commit)
        })
        .await
    }

    async fn scan_by_end(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError> {
        let from = from.clone();
        let limit = limit.min(MAX_SCAN_PAGE);
        self.run(move |catalog| catalog.scan_page(stream_id, &from, until, now, limit))
            .await
    }

    async fn scan_into(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        mut sink: Box<dyn SegmentSink>,
    ) -> Result<Box<dyn SegmentSink>, CatalogError> {
        // One trip to the blocking pool, each segment handed over as its
        // block is decoded: no page is held.
        self.run(move |catalog| {
            catalog.visit_by_end(stream_id, after, until, now, |segment| sink.offer(segment))?;
            Ok(sink)
        })
        .await
    }

    async fn put_manifest(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError> {
        let record = record.clone();
        self.run(move |catalog| {
            let commit = catalog.put_manifest_answering(&record, answer.as_ref())?;
            catalog.flush()?;
            Ok(commit)
        })
        .await
    }

    async fn ensure_stream(&self, name: &StreamName, now: Micros) -> Result<Stream, CatalogError> {
        let name = name.clone();
        self.run(move |catalog| {
            let record = catalog.ensure_stream(&name, now)?;
            catalog.flush()?;
            Ok(Stream {
                id: record.id,
                longest_segment: record.longest_segment,
            })
        })
        .await
    }

    async fn put_token(&self, answer: TokenAnswer) -> Result<Commit<()>, CatalogError> {
        self.run(move |catalog| {
            let commit = catalog.put_token(&answer)?;
            catalog.flush()?;
            Ok(commit)
        })
        .await
    }

    async fn manifests(
        &self,
        ids: &[uuid::Uuid],
        now: Micros,
    ) -> Result<Vec<Option<ManifestRecord>>, CatalogError> {
        let ids = ids.to_vec();
        self.run(move |catalog| ids.iter().map(|id| catalog.manifest(id, now)).collect())
            .await
    }

    async fn delete_manifests(&self, records: &[ManifestRecord]) -> Result<(), CatalogError> {
        let records = records.to_vec();
        self.run(move |catalog| {
            for record in &records {
                catalog.delete_manifest(record)?;
            }
            catalog.flush()
        })
        .await
    }

    async fn playlists_shared(
        &self,
        records: &[ManifestRecord],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        let records = records.to_vec();
        self.run(move |catalog| {
            records
                .iter()
                .map(|record| catalog.playlist_shared(record, now))
                .collect()
        })
        .await
    }

    async fn list_manifests(
        &self,
        query: ManifestQuery,
        now: Micros,
    ) -> Result<ManifestPage, CatalogError> {
        self.run(move |catalog| catalog.list_manifests(query, now))
            .await
    }

    async fn token(&self, key: &[u8], now: Micros) -> Result<Option<TokenRecord>, CatalogError> {
        let key = key.to_vec();
        self.run(move |catalog| {
            let found = catalog.token(&key, now)?;
            if found.is_some() {
                // The answer may be the work of a request still waiting for
                // its flush (abandoned at its deadline, say).
                catalog.flush()?;
            }
            Ok(found)
        })
        .await
    }

    async fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError> {
        self.run(move |catalog| catalog.sweep(now, batch)).await
    }

    async fn sync(&self) -> Result<(), CatalogError> {
        self.run(|catalog| catalog.flush()).await
    }

    async fn check(&self) -> Result<(), CatalogError> {
        self.run(|catalog| catalog.check()).await
    }

    fn stored(&self) -> Stored {
        self.catalog.stored()
    }
}
