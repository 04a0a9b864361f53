//! The segments table's weekly range partitions by end time: created a
//! few weeks ahead at open and at every sweep, dropped whole once every
//! segment they could hold is past retention and the row sweep emptied
//! them. A scan of a time range touches only its weeks' partitions.

use deadpool_postgres::Pool;

use super::{before, storage};
use crate::catalog::CatalogError;
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{MICROS_PER_DAY, Micros};

const WEEK: Micros = 7 * MICROS_PER_DAY;
/// Partitions of the weeks from the current one to this many ahead exist.
const WEEKS_AHEAD: i64 = 4;
/// A partition is dropped this long after its last possible segment
/// expired, so a clock a little behind never sees it gone.
const DROP_MARGIN: Micros = 14 * MICROS_PER_DAY;

/// The week an instant falls in, counted from the epoch.
pub(super) fn week(at: Micros) -> i64 {
    at.div_euclid(WEEK)
}

fn name(week: i64) -> String {
    if week < 0 {
        format!("segments_wm{}", -week)
    } else {
        format!("segments_w{week}")
    }
}

/// Creates the partitions of the weeks around `now` that are missing.
/// A week the default partition already holds rows of (an import of old
/// recordings, say) is left to the default partition: the database
/// refuses to create it, and reads are the same either way.
pub(super) async fn create_ahead(pool: &Pool, now: Micros) -> Result<(), CatalogError> {
    let client = pool.get().await.map_err(storage)?;
    let existing = children(&client).await?;
    let first = week(now);
    for week in first..=first + WEEKS_AHEAD {
        if existing.contains(&name(week)) {
            continue;
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF segments FOR VALUES FROM ({}) TO ({})",
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

/// Drops the partitions whose every segment expired more than
/// [`DROP_MARGIN`] ago and that hold no row any more.
pub(super) async fn drop_expired(pool: &Pool, now: Micros) -> Result<(), CatalogError> {
    let client = pool.get().await.map_err(storage)?;
    let bound = before(now, SEGMENT_RETENTION.saturating_add(DROP_MARGIN));
    for table in children(&client).await? {
        let Some(week) = week_of(&table) else {
            continue;
        };
        // Segments end at or before their partition's upper bound and
        // start no later than they end.
        if (week + 1).saturating_mul(WEEK) > bound {
            continue;
        }
        // The name made here, not the one read: nothing read goes into SQL.
        let table = name(week);
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table})");
        let held: bool = client.query_one(&sql, &[]).await.map_err(storage)?.get(0);
        if !held {
            let sql = format!("DROP TABLE IF EXISTS {table}");
            if let Err(err) = client.batch_execute(&sql).await {
                tracing::debug!(table, error = %err, "segment partition not dropped");
            }
        }
    }
    Ok(())
}

/// The names of the segments table's partitions.
async fn children(client: &deadpool_postgres::Object) -> Result<Vec<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'segments'::regclass",
            &[],
        )
        .await
        .map_err(storage)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn week_of(table: &str) -> Option<i64> {
    let digits = table.strip_prefix("segments_w")?;
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
        assert_eq!(week_of("segments_default"), None);
    }
}
