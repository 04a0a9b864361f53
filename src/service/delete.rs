//! DeleteLiveStreamRecordIndexFiles: metadata first, made durable, then the
//! playlists, so no metadata ever points at a deleted playlist.

use super::{IndexService, blocking, check_required};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::operations::Operation;
use crate::proto;
use crate::storage::StorageError;

pub const MAX_RECORD_IDS: usize = 20;

impl IndexService {
    pub async fn delete(
        &self,
        caller: &Caller,
        request: proto::DeleteLiveStreamRecordIndexFilesRequest,
    ) -> ApiResult<proto::DeleteLiveStreamRecordIndexFilesResponse> {
        caller.authorize(
            Operation::DeleteLiveStreamRecordIndexFiles,
            &request.domain_name,
        )?;
        check_required(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
            &[],
        )?;
        if request.record_id.is_empty() || request.record_id.len() > MAX_RECORD_IDS {
            return Err(ApiError::InvalidParams(format!(
                "RecordId must list 1 to {MAX_RECORD_IDS} ids"
            )));
        }
        let now = self.clock.now();
        // Lookups, deletions and the flush are catalog work: off the async
        // runtime, in one go.
        let catalog = self.catalog.clone();
        let caller = caller.clone();
        let (outcomes, unreferenced) = blocking(move || {
            let mut outcomes = Vec::with_capacity(request.record_id.len());
            let mut removed = Vec::new();
            for id in &request.record_id {
                let record = match uuid::Uuid::parse_str(id) {
                    Ok(uuid) => catalog.manifest(&uuid, now)?,
                    Err(_) => None,
                };
                let message = match record {
                    Some(record)
                        if record.domain_name == request.domain_name
                            && record.app_name == request.app_name
                            && record.stream_name == request.stream_name =>
                    {
                        if caller.owns_bucket(&record.oss_bucket) {
                            catalog.delete_manifest(&record)?;
                            removed.push(record);
                            "OK"
                        } else {
                            "AccessDenied"
                        }
                    }
                    _ => "FileNotFound",
                };
                outcomes.push(proto::RecordDeleteInfo {
                    record_id: id.clone(),
                    message: message.to_string(),
                });
            }
            if !removed.is_empty() {
                catalog.flush_blocking()?;
            }
            // A playlist another live manifest still points at stays (a
            // template without {RecordId} wrote the same key twice).
            let mut unreferenced = Vec::new();
            if request.remove_file {
                for record in removed {
                    if !catalog.playlist_shared(&record, now)? {
                        unreferenced.push(record);
                    }
                }
            }
            Ok((outcomes, unreferenced))
        })
        .await?;
        for record in &unreferenced {
            match self
                .storage
                .delete(&record.oss_endpoint, &record.oss_bucket, &record.oss_object)
                .await
            {
                Ok(()) | Err(StorageError::NotFound) => {}
                // The metadata is gone already; an orphaned playlist is
                // harmless and the bucket's lifecycle rules reclaim it.
                Err(err) => tracing::warn!(
                    record_id = %record.uuid(),
                    bucket = record.oss_bucket,
                    key = record.oss_object,
                    error = %err,
                    "manifest deleted, its playlist could not be removed"
                ),
            }
        }
        Ok(proto::DeleteLiveStreamRecordIndexFilesResponse {
            request_id: String::new(),
            code: "OK".into(),
            message: "OK".into(),
            record_delete_info_list: outcomes,
        })
    }
}
