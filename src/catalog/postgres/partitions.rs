//! The weekly range partitions of the two tables that grow without end:
//! segment blocks by end minute, manifests by expiry. Partitions are
//! created ahead at open and once a week by the sweep, and dropped whole by
//! the sweep once every record they can hold is past retention. A scan of
//! a time range touches only its weeks' partitions.
//!
//! A segment ends before its partition's upper bound and starts no later
//! than it ends, so once that bound is 90 days past, every segment
//! expired; a manifest expires at its `expires`, so once the bound is past,
//! every manifest did. The partition then goes in one transaction with its
//! count (and for segments their duplicate-index entries), instead of row
//! by row. The drop locks the partition against writes first (reads go
//! on), then takes the parent's exclusive lock for the moment of the drop,
//! within a short lock timeout so that reads never queue long behind it; a
//! round that times out is tried again.

use deadpool_postgres::{GenericClient, Object};

use super::{PgCatalog, before, storage};
use crate::catalog::CatalogError;
use crate::manifest::range::{MANIFEST_RETENTION, SEGMENT_RETENTION};
use crate::manifest::{MICROS_PER_DAY, Micros};

const WEEK: Micros = 7 * MICROS_PER_DAY;
/// Partitions exist from the current week to this many weeks past the
/// latest a new record can fall in.
const WEEKS_AHEAD: i64 = 4;
/// Longest wait of a partition drop for a lock.
const DROP_LOCK_TIMEOUT: &str = "1s";

/// A table partitioned by week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Partitioned {
    /// `segment_blocks`, by `minute_us`: new blocks fall in the current
    /// week.
    SegmentBlocks,
    /// `manifests`, by `expires`: a new manifest falls 180 days ahead.
    Manifests,
}

impl Partitioned {
    const ALL: [Partitioned; 2] = [Partitioned::SegmentBlocks, Partitioned::Manifests];

    fn parent(self) -> &'static str {
        match self {
            Partitioned::SegmentBlocks => "segment_blocks",
            Partitioned::Manifests => "manifests",
        }
    }

    fn name(self, week: i64) -> String {
        let parent = self.parent();
        if week < 0 {
            format!("{parent}_wm{}", -week)
        } else {
            format!("{parent}_w{week}")
        }
    }

    fn week_of(self, table: &str) -> Option<i64> {
        let digits = table.strip_prefix(self.parent())?.strip_prefix("_w")?;
        match digits.strip_prefix('m') {
            Some(negative) => negative.parse::<i64>().ok().map(|week| -week),
            None => digits.parse().ok(),
        }
    }

    /// The last week a record made at `now` can fall in.
    fn latest_week(self, now: Micros) -> i64 {
        match self {
            Partitioned::SegmentBlocks => week(now),
            Partitioned::Manifests => week(now.saturating_add(MANIFEST_RETENTION)),
        }
    }

    /// A partition whose upper bound is at or before this holds only
    /// expired records.
    fn expired_before(self, now: Micros) -> Micros {
        match self {
            Partitioned::SegmentBlocks => before(now, SEGMENT_RETENTION),
            Partitioned::Manifests => now,
        }
    }

    /// The records a partition holds.
    fn count_sql(self, table: &str) -> String {
        match self {
            Partitioned::SegmentBlocks => {
                format!("SELECT COALESCE(sum(segments), 0)::bigint FROM {table}")
            }
            Partitioned::Manifests => format!("SELECT count(*) FROM {table}"),
        }
    }
}

/// The week an instant falls in, counted from the epoch.
pub(super) fn week(at: Micros) -> i64 {
    at.div_euclid(WEEK)
}

/// Creates the partitions of both tables that are missing, from the week
/// of `now` to the weeks ahead.
/// A week the default partition already holds rows of (an import of old
/// recordings, say) is left to the default partition: the database
/// refuses to create it, and reads are the same either way.
pub(super) async fn create_ahead(
    client: &impl GenericClient,
    now: Micros,
) -> Result<(), CatalogError> {
    for table in Partitioned::ALL {
        let weeks = week(now)..=table.latest_week(now) + WEEKS_AHEAD;
        create(client, table, weeks).await?;
    }
    Ok(())
}

/// Creates the partitions of these weeks that are missing.
pub(super) async fn create(
    client: &impl GenericClient,
    table: Partitioned,
    weeks: impl IntoIterator<Item = i64>,
) -> Result<(), CatalogError> {
    let existing = children(client, table).await?;
    for week in weeks {
        if existing.contains(&table.name(week)) {
            continue;
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})",
            table.name(week),
            table.parent(),
            week.saturating_mul(WEEK),
            (week + 1).saturating_mul(WEEK)
        );
        // Another replica may be creating the same table at this moment.
        if let Err(err) = client.batch_execute(&sql).await {
            tracing::debug!(week, error = %err, "partition not created");
        }
    }
    Ok(())
}

impl PgCatalog {
    /// Drops the oldest partitions of `table` whose every record expired,
    /// until `batch` records are removed (the last drop may pass it): the
    /// records removed.
    pub(super) async fn drop_expired_weeks(
        &self,
        client: &mut Object,
        table: Partitioned,
        now: Micros,
        batch: usize,
    ) -> Result<usize, CatalogError> {
        let bound = table.expired_before(now);
        let mut weeks: Vec<i64> = children(client, table)
            .await?
            .iter()
            .filter_map(|name| table.week_of(name))
            .filter(|week| (week + 1).saturating_mul(WEEK) <= bound)
            .collect();
        weeks.sort_unstable();
        let mut removed = 0;
        for week in weeks {
            if removed >= batch {
                break;
            }
            removed += self.drop_week(client, table, week).await?;
        }
        Ok(removed)
    }

    /// Drops one week's partition, with the duplicate-index entries of a
    /// week of segments: its records.
    async fn drop_week(
        &self,
        client: &mut Object,
        table: Partitioned,
        week: i64,
    ) -> Result<usize, CatalogError> {
        // The name made here, not the one read: nothing read goes into SQL.
        let name = table.name(week);
        let tx = client.transaction().await.map_err(storage)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}';
             LOCK TABLE {name} IN EXCLUSIVE MODE"
        ))
        .await
        .map_err(storage)?;
        let records: i64 = tx
            .query_one(&table.count_sql(&name), &[])
            .await
            .map_err(storage)?
            .get(0);
        match table {
            Partitioned::SegmentBlocks => {
                // An entry's minute is its block's: those of this week are
                // this partition's, found through the BRIN index by minute.
                tx.execute(
                    "DELETE FROM segment_keys WHERE minute_us >= $1 AND minute_us < $2",
                    &[&week.saturating_mul(WEEK), &(week + 1).saturating_mul(WEEK)],
                )
                .await
                .map_err(storage)?;
                PgCatalog::count_in(&tx, -records, 0).await?;
            }
            Partitioned::Manifests => PgCatalog::count_in(&tx, 0, -records).await?,
        }
        tx.batch_execute(&format!("DROP TABLE {name}"))
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        match table {
            Partitioned::SegmentBlocks => self.counted(-records, 0),
            Partitioned::Manifests => self.counted(0, -records),
        }
        tracing::info!(table = name, records, "expired partition dropped");
        Ok(records as usize)
    }
}

/// The names of a table's partitions.
async fn children(
    client: &impl GenericClient,
    table: Partitioned,
) -> Result<Vec<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass",
            &[&table.parent()],
        )
        .await
        .map_err(storage)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_weeks_round_trip() {
        for table in Partitioned::ALL {
            for week in [-3, 0, 2968] {
                assert_eq!(table.week_of(&table.name(week)), Some(week));
            }
            assert_eq!(table.week_of(&format!("{}_default", table.parent())), None);
        }
        assert_eq!(Partitioned::Manifests.week_of("segment_blocks_w3"), None);
    }
}
