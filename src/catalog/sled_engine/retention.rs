//! The sweeper's side of retention: reads already ignore expired records;
//! this removes them, oldest first and a bounded batch at a time, so a
//! sweep never holds the catalog long.

use std::collections::BTreeMap;

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::super::{CatalogError, ManifestRecord, SweepReport};
use super::segments::{StreamRecord, block_base, block_key, expired, object_hash, read_bucket};
use super::{SledCatalog, object_index};
use crate::catalog::blocks::codec;
use crate::manifest::{Micros, Segment};
use prost::Message;

/// Up to `batch` keys of an index ordered by big-endian expiry whose
/// expiry is at or before `now`: every such key sorts before the bare
/// 8-byte prefix of `now + 1`.
fn due(index: &sled::Tree, now: Micros, batch: usize) -> Result<Vec<sled::IVec>, CatalogError> {
    let bound = (now.max(0) as u64).saturating_add(1).to_be_bytes();
    let mut keys = Vec::new();
    for entry in index.range(..bound.to_vec()).take(batch) {
        keys.push(entry?.0);
    }
    Ok(keys)
}

impl SledCatalog {
    /// Removes up to `batch` expired manifests, tokens and segments. Not
    /// durable until [`SledCatalog::flush`].
    pub fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError> {
        let mut report = SweepReport::default();
        for key in due(&self.manifest_expiry, now, batch)? {
            match self.manifests.get(&key[8..])? {
                Some(bytes) => {
                    let record = ManifestRecord::decode(&*bytes)
                        .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
                    self.delete_manifest(&record)?;
                }
                None => {
                    self.manifest_expiry.remove(&key)?;
                }
            }
            report.manifests += 1;
        }
        for key in due(&self.token_expiry, now, batch)? {
            // A token used again after it expired has a new answer and a
            // new expiry entry; this old entry must not take the new answer.
            let token_key = &key[8..];
            if self.token(token_key, now)?.is_none() {
                self.tokens.remove(token_key)?;
            }
            self.token_expiry.remove(&key)?;
            report.tokens += 1;
        }
        report.segments = self.sweep_segments(now, batch)?;
        Ok(report)
    }

    /// Drops each stream's oldest blocks while every segment in them has
    /// expired, with their idempotency entries.
    fn sweep_segments(&self, now: Micros, batch: usize) -> Result<usize, CatalogError> {
        let _guard = self
            .register_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut removed = 0;
        for entry in self.streams.iter() {
            let (_, value) = entry?;
            let stream = StreamRecord::decode(&*value)
                .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
            let prefix = stream.id.to_be_bytes();
            for block in self.segments.scan_prefix(prefix) {
                if removed >= batch {
                    return Ok(removed);
                }
                let (key, bytes) = block?;
                let minute = u64::from_be_bytes(key[8..16].try_into().expect("16-byte block key"));
                let mut segments: Vec<Segment> = Vec::new();
                codec::decode_block(block_base(minute), &bytes, |segment| segments.push(segment))
                    .map_err(|err| CatalogError::Corrupt(err.to_string()))?;
                if !segments.iter().all(|segment| expired(segment, now)) {
                    break;
                }
                self.remove_block(&stream, minute, &segments)?;
                // Under the register lock, like every other change of the count.
                self.segments_stored
                    .fetch_sub(segments.len() as u64, std::sync::atomic::Ordering::Relaxed);
                removed += segments.len();
            }
        }
        Ok(removed)
    }

    fn remove_block(
        &self,
        stream: &StreamRecord,
        minute: u64,
        segments: &[Segment],
    ) -> Result<(), CatalogError> {
        let key = block_key(stream.id, minute);
        let mut gone: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for segment in segments {
            let hash = object_hash(segment);
            gone.entry(object_index::bucket_of(hash, stream.index_depth))
                .or_default()
                .push(hash);
        }
        (&self.segments, &self.object_index)
            .transaction(|(blocks, index)| {
                blocks.remove(&key)?;
                for (bucket, hashes) in &gone {
                    let mut entries = read_bucket(index, stream.id, *bucket)?;
                    entries.retain(|(hash, at)| !(*at == minute && hashes.contains(hash)));
                    let bucket_key = object_index::bucket_key(stream.id, *bucket);
                    if entries.is_empty() {
                        index.remove(&bucket_key)?;
                    } else {
                        index.insert(&bucket_key, object_index::encode(&entries))?;
                    }
                }
                Ok::<_, ConflictableTransactionError<CatalogError>>(())
            })
            .map_err(CatalogError::from)
    }
}
