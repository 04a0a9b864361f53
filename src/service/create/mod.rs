//! CreateLiveStreamRecordIndexFiles in steps: a pure [`plan`] of the
//! request (rules 1 to 3, then 4 to 6 against the catalog's streams),
//! [`select`]ion of segments (rule 7), [`clip`]ping, which reads media, a
//! pure [`render`] of the playlists and the manifest record, and the
//! [`commit`] of both.

pub(super) mod clip;
mod commit;
mod plan;
pub(super) mod render;
mod select;

pub(super) use render::record_info;

use super::IndexService;
use super::idempotency::{PendingToken, fingerprint};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::operations::Operation;
use crate::proto;
use plan::Plan;

impl IndexService {
    pub async fn create(
        &self,
        caller: &Caller,
        mut request: proto::CreateLiveStreamRecordIndexFilesRequest,
    ) -> ApiResult<proto::CreateLiveStreamRecordIndexFilesResponse> {
        let operation = Operation::CreateLiveStreamRecordIndexFiles;
        caller.authorize(operation, &request.domain_name)?;
        let token = std::mem::take(&mut request.client_token);
        let request_fingerprint = fingerprint(&request);
        self.once(caller, operation, &token, request_fingerprint, |token| {
            self.create_new(caller, request, token)
        })
        .await
    }

    async fn create_new(
        &self,
        caller: &Caller,
        request: proto::CreateLiveStreamRecordIndexFilesRequest,
        token: Option<PendingToken>,
    ) -> ApiResult<proto::CreateLiveStreamRecordIndexFilesResponse> {
        let plan = Plan::new(request, uuid::Uuid::new_v4(), |endpoint| {
            self.storage.has_endpoint(endpoint)
        })?;
        let now = self.clock.now();
        let found = self
            .find_streams(&plan.domain_name, &plan.app_name, &plan.streams)
            .await?;
        let streams = plan.admit(found, now, &caller.account.id, |bucket| {
            caller.owns_bucket(bucket)
        })?;
        let window = plan.window();
        let selected = self.select_all(&window, &streams, now).await?;
        let clips = self.clip_all(&window, &selected).await;
        render::check_aligned(&clips)?;
        // Nothing is read when there is no master.
        let probes = if plan.master {
            self.probe_firsts(&clips).await
        } else {
            Vec::new()
        };
        let url_of =
            |endpoint: &str, bucket: &str, key: &str| self.storage.url(endpoint, bucket, key);
        let rendered = render::render(&plan, &clips, &probes, streams[0].id, now, &url_of);
        let (segments, duration) = (rendered.record.segment_count, rendered.record.duration);
        let response = self.commit(rendered, token).await?;
        // The request's own log line says it succeeded; this adds what.
        tracing::debug!(record_id = %plan.record_id, segments, duration, "manifest created");
        Ok(response)
    }
}
