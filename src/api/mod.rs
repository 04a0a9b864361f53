//! The gRPC adapter: each RPC takes the caller the gate admitted, hands the
//! request to [`IndexService`] and turns the result into a response or a
//! status. No rule lives here.

pub mod deadline;
pub mod gate;
pub mod status;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::error::{ApiError, ApiResult};
use crate::proto;
use crate::proto::record_index_server::RecordIndex;
use crate::service::IndexService;
use gate::RequestContext;
use status::{new_request_id, to_status};

#[derive(Clone)]
pub struct GrpcApi {
    service: Arc<IndexService>,
}

impl GrpcApi {
    pub fn new(service: Arc<IndexService>) -> Self {
        GrpcApi { service }
    }
}

/// The gate's findings; a request that reached a handler without passing
/// the gate is a wiring fault, not the client's.
fn context<T>(request: &Request<T>) -> Result<RequestContext, Status> {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .ok_or_else(|| {
            let err = ApiError::internal("request reached its handler without authentication");
            to_status(&err, &new_request_id())
        })
}

/// A response message, which the service leaves without its RequestId:
/// the id is the adapter's, and a ClientToken's stored answer must not
/// carry the id of the request that first made it.
trait Answer {
    fn with_request_id(self, request_id: String) -> Self;
}

macro_rules! answers {
    ($($response:ident),* $(,)?) => {$(
        impl Answer for proto::$response {
            fn with_request_id(self, request_id: String) -> Self {
                proto::$response { request_id, ..self }
            }
        }
    )*};
}

answers!(
    CreateLiveStreamRecordIndexFilesResponse,
    RegisterLiveStreamRecordSegmentsResponse,
    DescribeLiveStreamRecordIndexFileResponse,
    DescribeLiveStreamRecordIndexFilesResponse,
    DeleteLiveStreamRecordIndexFilesResponse,
    DescribeLiveStreamRecordContentResponse,
    SignPlaybackUrlResponse,
);

/// Finishes an RPC with the request id in the body (the gate puts it in
/// the `x-request-id` metadata and logs the outcome).
fn reply<R: Answer>(request_id: String, result: ApiResult<R>) -> Result<Response<R>, Status> {
    match result {
        Ok(answer) => Ok(Response::new(answer.with_request_id(request_id))),
        Err(err) => Err(to_status(&err, &request_id)),
    }
}

#[tonic::async_trait]
impl RecordIndex for GrpcApi {
    async fn create_live_stream_record_index_files(
        &self,
        request: Request<proto::CreateLiveStreamRecordIndexFilesRequest>,
    ) -> Result<Response<proto::CreateLiveStreamRecordIndexFilesResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .create(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn register_live_stream_record_segments(
        &self,
        request: Request<proto::RegisterLiveStreamRecordSegmentsRequest>,
    ) -> Result<Response<proto::RegisterLiveStreamRecordSegmentsResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .register(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn describe_live_stream_record_index_file(
        &self,
        request: Request<proto::DescribeLiveStreamRecordIndexFileRequest>,
    ) -> Result<Response<proto::DescribeLiveStreamRecordIndexFileResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .describe_file(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn describe_live_stream_record_index_files(
        &self,
        request: Request<proto::DescribeLiveStreamRecordIndexFilesRequest>,
    ) -> Result<Response<proto::DescribeLiveStreamRecordIndexFilesResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .describe_files(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn delete_live_stream_record_index_files(
        &self,
        request: Request<proto::DeleteLiveStreamRecordIndexFilesRequest>,
    ) -> Result<Response<proto::DeleteLiveStreamRecordIndexFilesResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .delete(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn describe_live_stream_record_content(
        &self,
        request: Request<proto::DescribeLiveStreamRecordContentRequest>,
    ) -> Result<Response<proto::DescribeLiveStreamRecordContentResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .describe_content(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }

    async fn sign_playback_url(
        &self,
        request: Request<proto::SignPlaybackUrlRequest>,
    ) -> Result<Response<proto::SignPlaybackUrlResponse>, Status> {
        let context = context(&request)?;
        let result = self
            .service
            .sign_playback_url(&context.caller, request.into_inner())
            .await;
        reply(context.request_id, result)
    }
}
