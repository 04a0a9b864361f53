//! The gRPC adapter: each RPC authenticates the caller, hands the request to
//! [`IndexService`] and turns the result into a response or a status. No
//! rule lives here.

pub mod status;

use std::sync::Arc;
use std::time::Instant;

use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::accounts::{Account, Accounts};
use crate::error::ApiResult;
use crate::proto;
use crate::proto::record_index_server::RecordIndex;
use crate::service::IndexService;
use status::{REQUEST_ID_HEADER, new_request_id, to_status};

#[derive(Clone)]
pub struct GrpcApi {
    service: Arc<IndexService>,
    accounts: Arc<Accounts>,
}

impl GrpcApi {
    pub fn new(service: Arc<IndexService>, accounts: Arc<Accounts>) -> Self {
        GrpcApi { service, accounts }
    }

    fn caller<T>(&self, request: &Request<T>) -> ApiResult<Arc<Account>> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        self.accounts.authenticate(authorization)
    }
}

/// Finishes an RPC: logs it, and puts the request id in the body (through
/// `with_id`) and in the `x-request-id` metadata of success and error alike.
fn reply<T, R>(
    rpc: &'static str,
    request_id: String,
    started: Instant,
    result: ApiResult<T>,
    with_id: impl FnOnce(T, String) -> R,
) -> Result<Response<R>, Status> {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(value) => {
            tracing::info!(rpc, request_id, elapsed_ms, code = "OK", "request served");
            let mut response = Response::new(with_id(value, request_id.clone()));
            if let Ok(header) = MetadataValue::try_from(request_id.as_str()) {
                response.metadata_mut().insert(REQUEST_ID_HEADER, header);
            }
            Ok(response)
        }
        Err(err) => {
            tracing::info!(rpc, request_id, elapsed_ms, code = err.code(), error = %err, "request failed");
            Err(to_status(&err, &request_id))
        }
    }
}

#[tonic::async_trait]
impl RecordIndex for GrpcApi {
    async fn create_live_stream_record_index_files(
        &self,
        request: Request<proto::CreateLiveStreamRecordIndexFilesRequest>,
    ) -> Result<Response<proto::CreateLiveStreamRecordIndexFilesResponse>, Status> {
        let (request_id, started) = (new_request_id(), Instant::now());
        let result = match self.caller(&request) {
            Ok(caller) => self.service.create(&caller, request.into_inner()).await,
            Err(err) => Err(err),
        };
        reply(
            "CreateLiveStreamRecordIndexFiles",
            request_id,
            started,
            result,
            |info, request_id| proto::CreateLiveStreamRecordIndexFilesResponse {
                request_id,
                record_info: Some(info),
            },
        )
    }

    async fn register_live_stream_record_segments(
        &self,
        request: Request<proto::RegisterLiveStreamRecordSegmentsRequest>,
    ) -> Result<Response<proto::RegisterLiveStreamRecordSegmentsResponse>, Status> {
        let (request_id, started) = (new_request_id(), Instant::now());
        let result = match self.caller(&request) {
            Ok(caller) => self.service.register(&caller, request.into_inner()).await,
            Err(err) => Err(err),
        };
        reply(
            "RegisterLiveStreamRecordSegments",
            request_id,
            started,
            result,
            |outcome, request_id| proto::RegisterLiveStreamRecordSegmentsResponse {
                request_id,
                accepted: outcome.accepted as i32,
                duplicates: outcome.duplicates as i32,
            },
        )
    }
}
