//! DeleteLiveStreamRecordIndexFiles: metadata first, made durable, then the
//! playlists, so no metadata ever points at a deleted playlist.

use super::{IndexService, check_required};
use crate::auth::Caller;
use crate::catalog::ManifestRecord;
use crate::error::{ApiError, ApiResult};
use crate::manifest::Micros;
use crate::operations::Operation;
use crate::proto;
use crate::storage::StorageError;

pub const MAX_RECORD_IDS: usize = 20;

/// What becomes of one listed RecordId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Removed,
    /// The manifest is the stream's, its bucket another account's.
    AccessDenied,
    /// No such live manifest of this stream.
    FileNotFound,
}

impl Verdict {
    /// A manifest is removed only by the stream it was made of, and only
    /// by the account that owns its bucket.
    fn of(
        record: Option<&ManifestRecord>,
        request: &proto::DeleteLiveStreamRecordIndexFilesRequest,
        owns_bucket: impl Fn(&str) -> bool,
    ) -> Verdict {
        match record {
            Some(record)
                if record.domain_name == request.domain_name
                    && record.app_name == request.app_name
                    && record.stream_name == request.stream_name =>
            {
                if owns_bucket(&record.oss_bucket) {
                    Verdict::Removed
                } else {
                    Verdict::AccessDenied
                }
            }
            _ => Verdict::FileNotFound,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Verdict::Removed => "OK",
            Verdict::AccessDenied => "AccessDenied",
            Verdict::FileNotFound => "FileNotFound",
        }
    }
}

/// Rule 1 of a Delete.
fn check_request(request: &proto::DeleteLiveStreamRecordIndexFilesRequest) -> ApiResult<()> {
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
    Ok(())
}

impl IndexService {
    /// The catalog side of a Delete: the listed manifests looked up at
    /// once, those their verdict says removed in one durable commit, then
    /// the removed manifests whose playlists no other live manifest points
    /// at (a template without {RecordId} writes the same key twice), when
    /// the request asks for the files to go too.
    async fn remove_manifests(
        &self,
        request: &proto::DeleteLiveStreamRecordIndexFilesRequest,
        owns_bucket: impl Fn(&str) -> bool,
        now: Micros,
    ) -> ApiResult<(Vec<proto::RecordDeleteInfo>, Vec<ManifestRecord>)> {
        // An id that is no UUID names no manifest: the nil UUID stands in.
        let ids: Vec<uuid::Uuid> = request
            .record_id
            .iter()
            .map(|id| uuid::Uuid::parse_str(id).unwrap_or(uuid::Uuid::nil()))
            .collect();
        let found = self.catalog.manifests(&ids, now).await?;
        let mut outcomes = Vec::with_capacity(request.record_id.len());
        let mut removed: Vec<ManifestRecord> = Vec::new();
        for (id, record) in request.record_id.iter().zip(found) {
            // A manifest listed twice is gone by its second mention.
            let record =
                record.filter(|record| !removed.iter().any(|r| r.record_id == record.record_id));
            let verdict = Verdict::of(record.as_ref(), request, &owns_bucket);
            if let (Verdict::Removed, Some(record)) = (verdict, record) {
                removed.push(record);
            }
            outcomes.push(proto::RecordDeleteInfo {
                record_id: id.clone(),
                message: verdict.message().to_string(),
            });
        }
        if removed.is_empty() {
            return Ok((outcomes, removed));
        }
        self.catalog.delete_manifests(&removed).await?;
        let mut unreferenced = Vec::new();
        if request.remove_file {
            let shared = self.catalog.playlists_shared(&removed, now).await?;
            for (record, shared) in removed.into_iter().zip(shared) {
                if !shared {
                    unreferenced.push(record);
                }
            }
        }
        Ok((outcomes, unreferenced))
    }

    pub async fn delete(
        &self,
        caller: &Caller,
        request: proto::DeleteLiveStreamRecordIndexFilesRequest,
    ) -> ApiResult<proto::DeleteLiveStreamRecordIndexFilesResponse> {
        caller.authorize(
            Operation::DeleteLiveStreamRecordIndexFiles,
            &request.domain_name,
        )?;
        check_request(&request)?;
        let now = self.clock.now();
        let (outcomes, unreferenced) = self
            .remove_manifests(&request, |bucket| caller.owns_bucket(bucket), now)
            .await?;
        self.remove_playlists(&unreferenced).await;
        Ok(proto::DeleteLiveStreamRecordIndexFilesResponse {
            request_id: String::new(),
            code: "OK".into(),
            message: "OK".into(),
            record_delete_info_list: outcomes,
        })
    }

    async fn remove_playlists(&self, records: &[ManifestRecord]) {
        for record in records {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> proto::DeleteLiveStreamRecordIndexFilesRequest {
        proto::DeleteLiveStreamRecordIndexFilesRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            record_id: vec![uuid::Uuid::nil().to_string()],
            ..Default::default()
        }
    }

    fn record(stream_name: &str, bucket: &str) -> ManifestRecord {
        ManifestRecord {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: stream_name.into(),
            oss_bucket: bucket.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_manifest_goes_only_from_its_stream_and_owner() {
        let request = request();
        let owns = |bucket: &str| bucket == "mine";
        let verdict = |record: Option<ManifestRecord>| Verdict::of(record.as_ref(), &request, owns);
        assert_eq!(verdict(Some(record("cam", "mine"))), Verdict::Removed);
        assert_eq!(
            verdict(Some(record("cam", "theirs"))),
            Verdict::AccessDenied
        );
        assert_eq!(
            verdict(Some(record("other", "theirs"))),
            Verdict::FileNotFound
        );
        assert_eq!(verdict(None), Verdict::FileNotFound);
    }

    #[test]
    fn a_request_lists_one_to_twenty_ids() {
        assert!(check_request(&request()).is_ok());
        for count in [0, MAX_RECORD_IDS + 1] {
            let request = proto::DeleteLiveStreamRecordIndexFilesRequest {
                record_id: vec!["x".into(); count],
                ..request()
            };
            assert_eq!(check_request(&request).unwrap_err().code(), "InvalidParams");
        }
    }
}
