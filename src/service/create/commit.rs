//! The writes of a Create: the playlists to object storage, then the
//! manifest and its ClientToken answer to the catalog.

use bytes::Bytes;

use super::super::idempotency::{PendingToken, settle};
use super::super::{IndexService, fault};
use super::render::Rendered;
use crate::catalog::{Commit, ManifestRecord, TokenAnswer};
use crate::error::{ApiError, ApiResult};
use crate::proto;
use crate::storage::{PLAYLIST_CONTENT_TYPE, StorageError};

fn storage_failure(err: StorageError) -> ApiError {
    let message = format!("writing the playlist failed: {err}");
    match err {
        StorageError::Unreachable(_) => ApiError::unavailable(message),
        StorageError::Transient(_) | StorageError::NotFound | StorageError::Rejected(_) => {
            ApiError::internal(message)
        }
    }
}

impl IndexService {
    /// Makes `rendered` durable and returns its answer, which `token`, when
    /// there is one, keeps with the manifest.
    pub(super) async fn commit(
        &self,
        rendered: Rendered,
        token: Option<PendingToken>,
    ) -> ApiResult<proto::CreateLiveStreamRecordIndexFilesResponse> {
        let answer = token.as_ref().map(|token| token.answer(&rendered.response));
        let commit = self
            .store_with_playlists(&rendered.record, answer, &rendered.writes)
            .await?;
        settle(commit, token.as_ref(), |()| rendered.response)
    }

    /// Writes the playlists, then the manifest with its ClientToken's
    /// answer in one transaction, acknowledged once it is flushed: an
    /// acknowledged manifest survives a crash, no manifest names a playlist
    /// that was not written, and a retry with the token finds the manifest
    /// whenever it exists. A crash in between leaves a playlist without a
    /// manifest, which the client was never told of.
    async fn store_with_playlists(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
        writes: &[(String, String)],
    ) -> ApiResult<Commit<()>> {
        for (key, text) in writes {
            self.write_playlist(&record.oss_endpoint, &record.oss_bucket, key, text.clone())
                .await?;
        }
        let commit = self.catalog.put_manifest(record, answer).await?;
        fault::after_commit("create");
        Ok(commit)
    }

    async fn write_playlist(
        &self,
        endpoint: &str,
        bucket: &str,
        key: &str,
        text: String,
    ) -> ApiResult<()> {
        self.storage
            .put(
                endpoint,
                bucket,
                key,
                Bytes::from(text),
                PLAYLIST_CONTENT_TYPE,
            )
            .await
            .map_err(storage_failure)
    }
}
