//! The segment blocks' weekly range partitions by end minute: created a
//! few weeks ahead at open and once a week by the sweep, dropped whole by
//! the sweep once every segment they can hold is past retention. A scan
//! of a time range touches only its weeks' partitions.
//!
//! A segment ends before its partition's upper bound and starts no later
//! than it ends, so once that bound is 90 days past, every segment
//! expired: the partition goes in one transaction with its duplicate-index
//! entries and its count, instead of block by block. The drop locks the partition against writes
//! first (reads go on), then takes the parent's exclusive lock for the
//! moment of the drop, within a short lock timeout so that reads never
//! queue long behind it; a round that times out is tried again.

use deadpool_postgres::{GenericClient, Object};

use super::{PgCatalog, before, storage};
use crate::catalog::CatalogError;
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{MICROS_PER_DAY, Micros};

const WEEK: Micros = 7 * MICROS_PER_DAY;
/// Partitions of the weeks from the current one to this many ahead exist.
const WEEKS_AHEAD: i64 = 4;
/// Longest wait of a partition drop for a lock.
const DROP_LOCK_TIMEOUT: &str = "1s";

/// The week an instant falls in, counted from the epoch.
pub(super) fn week(at: Micros) -> i64 {
    at.div_euclid(WEEK)
}

const PREFIX: &str = "segment_blocks_w";

fn name(week: i64) -> String {
    if week < 0 {
        format!("{PREFIX}m{}", -week)
    } else {
        format!("{PREFIX}{week}")
    }
}

/// Creates the partitions of the weeks around `now` that are missing.
/// A week the default partition already holds rows of (an import of old
/// recordings, say) is left to the default partition: the database
/// refuses to create it, and reads are the same either way.
pub(super) async fn create_ahead(
    client: &impl GenericClient,
    now: Micros,
) -> Result<(), CatalogError> {
    let first = week(now);
    create(client, first..=first + WEEKS_AHEAD).await
}

/// Creates the partitions of these weeks that are missing.
pub(super) async fn create(
    client: &impl GenericClient,
    weeks: impl IntoIterator<Item = i64>,
) -> Result<(), CatalogError> {
    let existing = children(client).await?;
    for week in weeks {
        if existing.contains(&name(week)) {
            continue;
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF segment_blocks FOR VALUES FROM ({}) TO ({})",
            name(week),
            week.saturating_mul(WEEK),
            (week + 1).saturating_mul(WEEK)
        );
        // Another replica may be creating the same table at this moment.
        if let Err(err) = client.batch_execute(&sql).await {
            tracing::debug!(week, error = %err, "segment partition not created");
        }
    }
    Ok(())
}

impl PgCatalog {
    /// Drops the oldest partitions whose every segment expired, until
    /// `batch` segments are removed (the last drop may pass it): the
    /// segments removed.
    pub(super) async fn drop_expired_weeks(
        &self,
        client: &mut Object,
        now: Micros,
        batch: usize,
    ) -> Result<usize, CatalogError> {
        let bound = before(now, SEGMENT_RETENTION);
        let mut weeks: Vec<i64> = children(client)
            .await?
            .iter()
            .filter_map(|table| week_of(table))
            .filter(|week| (week + 1).saturating_mul(WEEK) <= bound)
            .collect();
        weeks.sort_unstable();
        let mut removed = 0;
        for week in weeks {
            if removed >= batch {
                break;
            }
            removed += self.drop_week(client, week).await?;
        }
        Ok(removed)
    }

    /// Drops one week's partition with its duplicate-index entries: its
    /// segments.
    async fn drop_week(&self, client: &mut Object, week: i64) -> Result<usize, CatalogError> {
        // The name made here, not the one read: nothing read goes into SQL.
        let table = name(week);
        let tx = client.transaction().await.map_err(storage)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}';
             LOCK TABLE {table} IN EXCLUSIVE MODE"
        ))
        .await
        .map_err(storage)?;
        let sql = format!("SELECT COALESCE(sum(segments), 0)::bigint FROM {table}");
        let segments: i64 = tx.query_one(&sql, &[]).await.map_err(storage)?.get(0);
        // An entry's minute is its block's: those of this week are this
        // partition's, found through the BRIN index by minute.
        tx.execute(
            "DELETE FROM segment_keys WHERE minute_us >= $1 AND minute_us < $2",
            &[&week.saturating_mul(WEEK), &(week + 1).saturating_mul(WEEK)],
        )
        .await
        .map_err(storage)?;
        PgCatalog::count_in(&tx, -segments, 0).await?;
        tx.batch_execute(&format!("DROP TABLE {table}"))
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        self.counted(-segments, 0);
        tracing::info!(table, segments, "expired segment partition dropped");
        Ok(segments as usize)
    }
}

/// The names of the segment blocks' partitions.
async fn children(client: &impl GenericClient) -> Result<Vec<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'segment_blocks'::regclass",
            &[],
        )
        .await
        .map_err(storage)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn week_of(table: &str) -> Option<i64> {
    let digits = table.strip_prefix(PREFIX)?;
    match digits.strip_prefix('m') {
        Some(negative) => negative.parse::<i64>().ok().map(|week| -week),
        None => digits.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_weeks_round_trip() {
        for week in [-3, 0, 2968] {
            assert_eq!(week_of(&name(week)), Some(week));
        }
        assert_eq!(week_of("segment_blocks_default"), None);
    }
}
