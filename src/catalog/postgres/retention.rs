//! The sweeper's side of retention. Reads already pass over expired
//! records; a sweep deletes up to a batch of each kind, oldest first, each
//! kind in one transaction with its count, then keeps the segment
//! partitions: new weeks ahead, emptied old weeks dropped.

use std::sync::atomic::Ordering;

use super::{PgCatalog, before, partitions, storage};
use crate::catalog::{CatalogError, SweepReport, TOKEN_RETENTION};
use crate::manifest::Micros;
use crate::manifest::range::SEGMENT_RETENTION;

impl PgCatalog {
    pub async fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let report = SweepReport {
            manifests: self.sweep_manifests(now, batch).await?,
            segments: self.sweep_segments(now, batch).await?,
            tokens: self.sweep_tokens(now, batch).await?,
        };
        self.keep_partitions(now).await?;
        Ok(report)
    }

    /// Once a week of `now`: the partitions a sweep keeps change by week.
    async fn keep_partitions(&self, now: Micros) -> Result<(), CatalogError> {
        let week = partitions::week(now);
        if self.partitions_week.load(Ordering::Relaxed) == week {
            return Ok(());
        }
        partitions::create_ahead(&self.pool, now).await?;
        partitions::drop_expired(&self.pool, now).await?;
        self.partitions_week.store(week, Ordering::Relaxed);
        Ok(())
    }

    async fn sweep_manifests(&self, now: Micros, batch: i64) -> Result<usize, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        // SKIP LOCKED: two replicas sweeping at once share the work.
        let removed = tx
            .execute(
                "DELETE FROM manifests WHERE record_id IN (
                     SELECT record_id FROM manifests WHERE expires <= $1
                     ORDER BY expires LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&now, &batch],
            )
            .await
            .map_err(storage)? as i64;
        PgCatalog::count_in(&tx, 0, -removed).await?;
        tx.commit().await.map_err(storage)?;
        self.counted(0, -removed);
        Ok(removed as usize)
    }

    /// Segments expire by start: the keys table's index by start finds
    /// them, and each key leads to its row in the partition of its end.
    async fn sweep_segments(&self, now: Micros, batch: i64) -> Result<usize, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        let removed = tx
            .execute(
                "WITH due AS (
                     SELECT stream_id, bucket, object FROM segment_keys WHERE start_us <= $1
                     ORDER BY start_us LIMIT $2 FOR UPDATE SKIP LOCKED),
                 gone AS (
                     DELETE FROM segment_keys k USING due
                     WHERE k.stream_id = due.stream_id AND k.bucket = due.bucket
                       AND k.object = due.object
                     RETURNING k.stream_id, k.bucket, k.object, k.end_us)
                 DELETE FROM segments s USING gone
                 WHERE s.stream_id = gone.stream_id AND s.end_us = gone.end_us
                   AND s.bucket = gone.bucket AND s.object = gone.object",
                &[&before(now, SEGMENT_RETENTION), &batch],
            )
            .await
            .map_err(storage)? as i64;
        PgCatalog::count_in(&tx, -removed, 0).await?;
        tx.commit().await.map_err(storage)?;
        self.counted(-removed, 0);
        Ok(removed as usize)
    }

    /// A token used again after its expiry has a new `created`, so it is
    /// not among the expired ones.
    async fn sweep_tokens(&self, now: Micros, batch: i64) -> Result<usize, CatalogError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM tokens WHERE key IN (
                     SELECT key FROM tokens WHERE created <= $1
                     ORDER BY created LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&before(now, TOKEN_RETENTION), &batch],
            )
            .await
            .map_err(storage)?;
        Ok(removed as usize)
    }
}
