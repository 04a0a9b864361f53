//! [`Catalog`] for [`PgCatalog`]: each call is the engine's own method of
//! that name; commits are durable when they return, so `sync` has nothing
//! left to do.

use async_trait::async_trait;

use super::PgCatalog;
use crate::catalog::{
    Catalog, CatalogError, Commit, ManifestPage, ManifestQuery, ManifestRecord, RegisterAnswer,
    RegisterOutcome, ScanFrom, SegmentSink, Stored, Stream, StreamName, SweepReport, TokenAnswer,
    TokenRecord,
};
use crate::manifest::{Micros, Segment};

#[async_trait]
impl Catalog for PgCatalog {
    async fn streams(&self, names: &[StreamName]) -> Result<Vec<Option<Stream>>, CatalogError> {
        PgCatalog::streams(self, names).await
    }

    async fn ensure_stream(&self, name: &StreamName, _now: Micros) -> Result<Stream, CatalogError> {
        PgCatalog::ensure_stream(self, name).await
    }

    async fn put_token(&self, answer: TokenAnswer) -> Result<Commit<()>, CatalogError> {
        PgCatalog::put_token(self, &answer).await
    }

    async fn registered(
        &self,
        name: &StreamName,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        PgCatalog::registered(self, name, segments, now).await
    }

    async fn register(
        &self,
        name: &StreamName,
        segments: Vec<Segment>,
        now: Micros,
        answer: Option<RegisterAnswer>,
    ) -> Result<Commit<RegisterOutcome>, CatalogError> {
        PgCatalog::register(self, name, segments, now, answer).await
    }

    async fn scan_by_end(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError> {
        PgCatalog::scan_by_end(self, stream_id, from, until, now, limit).await
    }

    async fn scan_into(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        sink: Box<dyn SegmentSink>,
    ) -> Result<Box<dyn SegmentSink>, CatalogError> {
        PgCatalog::scan_into(self, stream_id, after, until, now, sink).await
    }

    async fn put_manifest(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError> {
        PgCatalog::put_manifest(self, record, answer).await
    }

    async fn manifests(
        &self,
        ids: &[uuid::Uuid],
        now: Micros,
    ) -> Result<Vec<Option<ManifestRecord>>, CatalogError> {
        PgCatalog::manifests(self, ids, now).await
    }

    async fn delete_manifests(&self, records: &[ManifestRecord]) -> Result<(), CatalogError> {
        PgCatalog::delete_manifests(self, records).await
    }

    async fn playlists_shared(
        &self,
        records: &[ManifestRecord],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        PgCatalog::playlists_shared(self, records, now).await
    }

    async fn list_manifests(
        &self,
        query: ManifestQuery,
        now: Micros,
    ) -> Result<ManifestPage, CatalogError> {
        PgCatalog::list_manifests(self, query, now).await
    }

    async fn token(&self, key: &[u8], now: Micros) -> Result<Option<TokenRecord>, CatalogError> {
        PgCatalog::token(self, key, now).await
    }

    async fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError> {
        PgCatalog::sweep(self, now, batch).await
    }

    async fn sync(&self) -> Result<(), CatalogError> {
        Ok(())
    }

    async fn check(&self) -> Result<(), CatalogError> {
        PgCatalog::check(self).await
    }

    fn stored(&self) -> Stored {
        PgCatalog::stored(self)
    }
}
