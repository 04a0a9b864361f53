//! The sweeper's side of retention. Reads already pass over expired
//! records; a sweep removes them, oldest first, under the sweep lock (one
//! replica at a time, see `sweep_lock.rs`):
//! - segments: whole weekly partitions once every segment they can hold
//!   has expired (see `partitions.rs`), then blocks one by one for the
//!   rest (the week at the edge of retention, the default partition);
//! - manifests: whole weekly partitions by expiry once past, then rows
//!   one by one for the rest;
//! - token answers: rows.
//!
//! Then it keeps the partitions of the weeks ahead.

use std::sync::atomic::Ordering;

use deadpool_postgres::Object;

use super::partitions::{self, Partitioned};
use super::segments::{EntryRows, REMOVE_ENTRIES, decode};
use super::sweep_lock::SweepLock;
use super::{PgCatalog, before, storage};
use crate::catalog::blocks::{minute_of, object_hash};
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
        let report = SweepReport {
            segments: (self.sweep_table(client, Partitioned::SegmentBlocks, now, batch)).await?,
            manifests: (self.sweep_table(client, Partitioned::Manifests, now, batch)).await?,
            tokens: sweep_tokens(client, now, limit).await?,
        };
        self.keep_partitions(client, now).await?;
        Ok(report)
    }

    /// Up to `batch` expired records of `table`: whole weeks first, then
    /// rows for what the batch leaves.
    async fn sweep_table(
        &self,
        client: &mut Object,
        table: Partitioned,
        now: Micros,
        batch: usize,
    ) -> Result<usize, CatalogError> {
        let mut removed = self.drop_expired_weeks(client, table, now, batch).await?;
        if removed < batch {
            let left = i64::try_from(batch - removed).unwrap_or(i64::MAX);
            removed += match table {
                Partitioned::SegmentBlocks => self.sweep_segments(client, now, left).await?,
                Partitioned::Manifests => self.sweep_manifests(client, now, left).await?,
            };
        }
        Ok(removed)
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

    /// A block goes once its every segment expired: its latest start is
    /// past retention. The index by latest start finds the oldest; their
    /// streams are locked as a Register locks them, so no registration is
    /// rewriting a block while it goes, and each block is checked again
    /// as it is deleted.
    async fn sweep_segments(
        &self,
        client: &mut Object,
        now: Micros,
        batch: i64,
    ) -> Result<usize, CatalogError> {
        let bound = before(now, SEGMENT_RETENTION);
        let tx = client.transaction().await.map_err(storage)?;
        let due = tx
            .query(
                "SELECT stream_id, minute_us, segments FROM segment_blocks
                 WHERE last_start_us <= $1 ORDER BY last_start_us LIMIT $2",
                &[&bound, &batch],
            )
            .await
            .map_err(storage)?;
        // Whole blocks, the first even when it alone passes the batch.
        let mut taken = 0;
        let due: Vec<_> = due
            .iter()
            .take_while(|row| {
                let more = taken == 0 || taken + i64::from(row.get::<_, i32>(2)) <= batch;
                taken += i64::from(row.get::<_, i32>(2));
                more
            })
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1)))
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let (streams, minutes): (Vec<i64>, Vec<i64>) = due.into_iter().unzip();
        let mut locked = streams.clone();
        locked.sort_unstable();
        locked.dedup();
        tx.execute(
            "SELECT id FROM streams WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&locked],
        )
        .await
        .map_err(storage)?;
        let gone = tx
            .query(
                "DELETE FROM segment_blocks b
                 USING unnest($1::int8[], $2::int8[]) AS d(stream_id, minute_us)
                 WHERE b.stream_id = d.stream_id AND b.minute_us = d.minute_us
                   AND b.last_start_us <= $3
                 RETURNING b.stream_id, b.minute_us, b.block",
                &[&streams, &minutes, &bound],
            )
            .await
            .map_err(storage)?;
        let mut entries = EntryRows::default();
        let mut removed = 0;
        for row in &gone {
            let (stream_id, minute): (i64, i64) = (row.get(0), row.get(1));
            let mut hashes = Vec::new();
            decode(minute, row.get(2), |segment| {
                hashes.push(object_hash(&segment))
            })?;
            removed += hashes.len() as i64;
            hashes.sort_unstable();
            hashes.dedup();
            for hash in hashes {
                entries.push(stream_id, (hash, minute_of(minute)));
            }
        }
        entries.apply(&tx, REMOVE_ENTRIES).await?;
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
