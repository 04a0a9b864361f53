//! The embedded engine: the catalog in a sled directory that one process
//! owns. This module is the plumbing (opening the database, flushing it,
//! the record counts) and the [`Catalog`] implementation, which runs each
//! call off the async runtime; each kind of record has a module of its own:
//! - `segments`: streams and their segments, packed per stream and minute
//!   of their end ("upload time"), so a range scan reads one key per minute
//!   of the range; registration and the duplicate index.
//! - `manifests`: manifest metadata, listed by stream or found by id.
//! - `tokens`: the answers to requests sent with a ClientToken.
//! - `retention`: the sweeper removing expired records.
//! - [`object_index`]: how index buckets are encoded; blocks are
//!   [`crate::catalog::blocks`], shared with the other engine.
//! - [`backup`]: backup and restore of a catalog directory, in the file
//!   format of [`backup::format`].
//!
//! Trees:
//! - `streams`: stream name → [`StreamRecord`].
//! - `segments`: stream id (8 BE) + end minute (8 BE) → encoded block.
//! - `object_index`: stream id (8 BE) + bucket (4 BE) → entries (hash of
//!   (bucket, object), end minute of a block holding it): makes registration
//!   idempotent with a few keys per hundred segments (see [`object_index`]).
//! - `manifests`: record id (16) → [`ManifestRecord`].
//! - `manifest_expiry`: expiry (8 BE) + record id (16) → (): manifests in
//!   the order they expire, so expired ones can be found without a full scan.
//! - `manifests_by_stream`: stream id (8 BE) + creation (8 BE) + record id
//!   (16) → (): a stream's manifests in creation order, for listings.
//! - `manifests_by_object`: endpoint, bucket, key of the playlist + record
//!   id → (): manifests sharing one playlist object.
//! - `tokens`: account, operation and ClientToken → [`TokenRecord`], with
//!   `token_expiry` (expiry (8 BE) + token key) for the sweeper.

pub mod backup;
mod engine;
mod export;
mod group_commit;
mod manifests;
pub mod object_index;
mod retention;
mod segments;
mod tokens;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::transaction::ConflictableTransactionError;

use super::{CatalogError, Stored};

pub use engine::SledEngine;
pub use segments::StreamRecord;

impl From<sled::Error> for CatalogError {
    fn from(err: sled::Error) -> CatalogError {
        CatalogError::Storage(err.to_string())
    }
}

impl From<sled::transaction::TransactionError<CatalogError>> for CatalogError {
    fn from(err: sled::transaction::TransactionError<CatalogError>) -> CatalogError {
        match err {
            sled::transaction::TransactionError::Abort(err) => err,
            sled::transaction::TransactionError::Storage(err) => err.into(),
        }
    }
}

pub struct SledCatalog {
    db: sled::Db,
    streams: sled::Tree,
    segments: sled::Tree,
    object_index: sled::Tree,
    manifests: sled::Tree,
    manifest_expiry: sled::Tree,
    manifests_by_stream: sled::Tree,
    manifests_by_object: sled::Tree,
    tokens: sled::Tree,
    token_expiry: sled::Tree,
    /// Serializes registrations: each one reads blocks, merges and writes
    /// them back, which must not interleave with another one.
    register_lock: Mutex<()>,
    /// One flush at a time, shared by the writers waiting for it.
    commits: group_commit::GroupCommit,
    /// Records held, counted once at open and kept up to date by every
    /// write, so reporting them never scans the catalog.
    segments_stored: AtomicU64,
    manifests_stored: AtomicU64,
}

/// Aborts a transaction over a record that cannot be decoded.
fn abort(err: impl std::fmt::Display) -> ConflictableTransactionError<CatalogError> {
    ConflictableTransactionError::Abort(CatalogError::Corrupt(err.to_string()))
}

/// How long opening waits for sled's lock on a catalog.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// sled reports its lock as an I/O error of kind `Other` reading "could
/// not acquire lock on ...".
fn is_locked(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(err) if err.to_string().contains("could not acquire lock"))
}

/// Opens a database, waiting up to `wait` while its lock is held: sled's
/// background threads let go of it a moment after the last handle of
/// this process is dropped.
fn open_waiting(config: &sled::Config, wait: std::time::Duration) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match config.open() {
            Err(err) if is_locked(&err) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
}

impl SledCatalog {
    /// Opens the catalog at `path`. A catalog this process closed a moment
    /// ago opens once sled lets go of it; one another process holds is
    /// refused (`could not acquire lock`) after [`LOCK_WAIT`].
    pub fn open(path: &Path, cache_capacity_bytes: u64) -> Result<SledCatalog, CatalogError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            .mode(sled::Mode::LowSpace);
        let db = open_waiting(&config, LOCK_WAIT)?;
        SledCatalog {
            streams: db.open_tree("streams")?,
            segments: db.open_tree("segments")?,
            object_index: db.open_tree("object_index")?,
            manifests: db.open_tree("manifests")?,
            manifest_expiry: db.open_tree("manifest_expiry")?,
            manifests_by_stream: db.open_tree("manifests_by_stream")?,
            manifests_by_object: db.open_tree("manifests_by_object")?,
            tokens: db.open_tree("tokens")?,
            token_expiry: db.open_tree("token_expiry")?,
            register_lock: Mutex::new(()),
            commits: Default::default(),
            segments_stored: AtomicU64::new(0),
            manifests_stored: AtomicU64::new(0),
            db,
        }
        .counted()
    }

    /// Counts the records once; block headers carry their segment count,
    /// so no segment is decoded.
    fn counted(self) -> Result<SledCatalog, CatalogError> {
        let mut segments = 0;
        for block in self.segments.iter() {
            let (key, bytes) = block?;
            // A damaged block only spoils reads of its own minute; it must
            // not keep the service from starting.
            match crate::catalog::blocks::codec::block_len(&bytes) {
                Ok(count) => segments += count,
                Err(err) => {
                    tracing::warn!(key = %hex::encode(&key), error = %err, "a catalog block cannot be read")
                }
            }
        }
        self.segments_stored.store(segments, Ordering::Relaxed);
        self.manifests_stored
            .store(self.manifests.len() as u64, Ordering::Relaxed);
        Ok(self)
    }

    /// Segments and manifests held, expired ones included until swept.
    pub fn stored(&self) -> Stored {
        Stored {
            segments: self.segments_stored.load(Ordering::Relaxed),
            manifests: self.manifests_stored.load(Ordering::Relaxed),
        }
    }

    /// A cheap read, to see that the database answers.
    pub fn check(&self) -> Result<(), CatalogError> {
        self.streams.first()?;
        Ok(())
    }

    /// Makes every write so far durable. Blocks: the caller may wait for
    /// another writer's fsync.
    pub fn flush(&self) -> Result<(), CatalogError> {
        self.commits
            .wait_durable(|| self.db.flush().map(|_| ()).map_err(|err| err.to_string()))
            .map_err(CatalogError::Storage)
    }
}
