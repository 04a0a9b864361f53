//! The sweeper's side of retention. Reads already pass over expired
//! records; a sweep removes them, oldest first, under the sweep lock (one
//! replica at a time, see `sweep_lock.rs`):
//! - segments: whole weekly partitions once every segment they can hold
//!   has expired (see `partitions.rs`), then rows one by one for the rest
//!   (the week at the edge of retention, the default partition);
//! - manifests and token answers: rows, each kind in one transaction with
//!   its count.
//!
//! Then it keeps the partitions of the weeks ahead.

use std::sync::atomic::Ordering;

use deadpool_postgres::Object;

use super::sweep_lock::SweepLock;
use super::{PgCatalog, before, partitions, storage};
use crate::catalog::{CatalogError, SweepReport, TOKEN_RETENTION};
use crate::manifest::Micros;
use crate::manifest::range::SEGMENT_RETENTION;

impl PgCatalog {
    /// A round that finds another replica sweeping does nothing.
    pub async fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError> {
        let Some(mut lock) = SweepLock::try_take(&self.pool).await? else {
            tracing::debug!("another replica is sweeping the catalog");
            return Ok(SweepReport::default());
        };
        // Every step runs on the lock's connection: a sweep takes one
        // connection of the pool, whatever its size.
        let swept = self.sweep_locked(lock.client(), now, batch).await;
        lock.release().await;
        swept
    }

    async fn sweep_locked(
        &self,
        client: &mut Object,
        now: Micros,
        batch: usize,
    ) -> Result<SweepReport, CatalogError> {
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut segments = self.drop_expired_weeks(client, now, batch).await?;
        if segments < batch {
            let left = i64::try_from(batch - segments).unwrap_or(i64::MAX);
            segments += self.sweep_segments(client, now, left).await?;
        }
        let report = SweepReport {
            manifests: self.sweep_manifests(client, now, limit).await?,
            segments,
            tokens: sweep_tokens(client, now, limit).await?,
        };
        self.keep_partitions(client, now).await?;
        Ok(report)
    }

    /// Once a week of `now`: the partitions ahead change by week.
    async fn keep_partitions(&self, client: &Object, now: Micros) -> Result<(), CatalogError> {
        let week = partitions::week(now);
        if self.partitions_week.load(Ordering::Relaxed) == week {
            return Ok(());
        }
        partitions::create_ahead(client, now).await?;
        self.partitions_week.store(week, Ordering::Relaxed);
        Ok(())
    }

    async fn sweep_manifests(
        &self,
        client: &mut Object,
        now: Micros,
        batch: i64,
    ) -> Result<usize, CatalogError> {
        let tx = client.transaction().await.map_err(storage)?;
        // SKIP LOCKED: two sweeps at once share the work.
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
    async fn sweep_segments(
        &self,
        client: &mut Object,
        now: Micros,
        batch: i64,
    ) -> Result<usize, CatalogError> {
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
}

/// A token used again after its expiry has a new `created`, so it is
/// not among the expired ones.
async fn sweep_tokens(client: &Object, now: Micros, batch: i64) -> Result<usize, CatalogError> {
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
