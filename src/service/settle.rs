//! Settling manifests a crash left staged. Create stages a manifest
//! (durable, invisible) while it writes the playlists, and commits it
//! without a flush once they are written; after a crash, the playlist in
//! object storage says which happened: the staged bytes are there (the
//! Create was acknowledged, or could have been) and the manifest is kept,
//! or they are not and it is dropped.

use sha2::{Digest, Sha256};

use super::{IndexService, blocking};
use crate::error::ApiResult;
use crate::storage::StorageError;

/// The digest a staged manifest keeps of its last playlist.
pub fn digest(playlist: &[u8]) -> [u8; 32] {
    Sha256::digest(playlist).into()
}

impl IndexService {
    /// Settles every staged manifest whose playlist object storage can
    /// tell about; returns how many are left for a later try.
    pub async fn settle_staged(&self) -> ApiResult<usize> {
        let catalog = self.catalog.clone();
        let staged = blocking(move || Ok(catalog.staged_manifests()?)).await?;
        if staged.is_empty() {
            return Ok(0);
        }
        let mut left = 0;
        for (record, staged_digest) in staged {
            let read = self
                .storage
                .get(
                    &record.oss_endpoint,
                    &record.oss_bucket,
                    &record.oss_object,
                    None,
                )
                .await;
            let written = match read {
                Ok(object) => digest(&object.body) == staged_digest,
                Err(StorageError::NotFound) => false,
                Err(err) => {
                    tracing::warn!(object = record.oss_object, error = %err, "a staged manifest waits: its playlist cannot be read");
                    left += 1;
                    continue;
                }
            };
            let record_id = uuid::Uuid::from_bytes(record.id_bytes());
            let catalog = self.catalog.clone();
            if written {
                tracing::info!(%record_id, "staged manifest kept: its playlist was written");
                blocking(move || Ok(catalog.put_manifest(&record)?)).await?;
            } else {
                tracing::info!(%record_id, "staged manifest dropped: its playlist was not written");
                blocking(move || Ok(catalog.discard_manifest(&record)?)).await?;
            }
        }
        self.catalog.flush().await?;
        Ok(left)
    }
}
