//! One sweeper at a time across replicas: a sweep holds a session-level
//! advisory lock on a connection of its own for its whole round, taken
//! with `pg_try_advisory_lock` so a replica that finds it held skips the
//! round instead of queueing. The lock goes with the session, so a
//! replica that dies mid-round frees it at once. It only saves work: two
//! sweeps at once (a lock lost with its connection) stay correct, as
//! every step is a transaction that locks what it removes.

use deadpool_postgres::{Object, Pool};

use super::storage;
use crate::catalog::CatalogError;

/// Key of the advisory lock held while sweeping ("recsweep" in ASCII).
const SWEEP_LOCK: i64 = 0x7265_6373_7765_6570;

/// The held lock and the connection that holds it.
pub(super) struct SweepLock {
    client: Object,
}

impl SweepLock {
    /// The lock, or `None` while another session holds it.
    pub(super) async fn try_take(pool: &Pool) -> Result<Option<SweepLock>, CatalogError> {
        let client = pool.get().await.map_err(storage)?;
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
            .await
            .map_err(storage)?
            .get(0);
        Ok(taken.then_some(SweepLock { client }))
    }

    /// The connection holding the lock, for the sweep's own work.
    pub(super) fn client(&mut self) -> &mut Object {
        &mut self.client
    }

    pub(super) async fn release(self) {
        let unlocked = self
            .client
            .query_one("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK])
            .await;
        if let Err(err) = unlocked {
            // A session lock must not go back to the pool with the
            // connection: closing the connection ends it.
            tracing::warn!(error = %err, "sweep lock not released; closing its connection");
            drop(Object::take(self.client));
        }
    }
}
