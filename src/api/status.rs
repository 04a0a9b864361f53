//! How an [`ApiError`] travels: a gRPC status whose message starts with the
//! code, with google.rpc.ErrorInfo details and the request id.

use std::collections::HashMap;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{ApiError, StatusClass};

/// Domain of every ErrorInfo the service sends.
pub const ERROR_DOMAIN: &str = "recordindex";
/// Response metadata carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub fn grpc_code(class: StatusClass) -> Code {
    match class {
        StatusClass::InvalidArgument => Code::InvalidArgument,
        StatusClass::NotFound => Code::NotFound,
        StatusClass::OutOfRange => Code::OutOfRange,
        StatusClass::FailedPrecondition => Code::FailedPrecondition,
        StatusClass::ResourceExhausted => Code::ResourceExhausted,
        StatusClass::Unauthenticated => Code::Unauthenticated,
        StatusClass::PermissionDenied => Code::PermissionDenied,
        StatusClass::Internal => Code::Internal,
        StatusClass::Unavailable => Code::Unavailable,
    }
}

/// A fresh request id: a UUID in upper case, as the API pages show.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

pub fn to_status(err: &ApiError, request_id: &str) -> Status {
    let metadata = HashMap::from([
        ("RequestId".to_string(), request_id.to_string()),
        ("HttpStatus".to_string(), err.http_status().to_string()),
    ]);
    let mut details = ErrorDetails::with_error_info(err.code(), ERROR_DOMAIN, metadata);
    if let ApiError::Throttled { retry_after, .. } = err {
        details.set_retry_info(Some(*retry_after));
    }
    let mut status =
        Status::with_error_details(grpc_code(err.status_class()), err.message(), details);
    if let Ok(value) = MetadataValue::try_from(request_id) {
        status.metadata_mut().insert(REQUEST_ID_HEADER, value);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_code_details_and_request_id() {
        let err = ApiError::BucketNotFound("bucket b does not belong to account a".into());
        let status = to_status(&err, "ABC-123");
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().starts_with("InvalidBucket.NotFound: "));
        assert_eq!(status.metadata().get(REQUEST_ID_HEADER).unwrap(), "ABC-123");
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "InvalidBucket.NotFound");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["RequestId"], "ABC-123");
        assert_eq!(info.metadata["HttpStatus"], "404");
        assert!(status.get_details_retry_info().is_none());
    }

    #[test]
    fn a_long_message_is_cut_and_keeps_its_code() {
        let detail = format!("unknown variable {{{}}}", "段".repeat(50_000));
        let status = to_status(&ApiError::OssObjectMalformed(detail), "ID");
        assert!(
            status
                .message()
                .starts_with("InvalidOssObject.Malformed: unknown variable {段")
        );
        assert!(status.message().len() <= crate::error::MAX_MESSAGE_BYTES);
        assert!(status.message().ends_with('…'));
        // The details repeat the message: both stay far under the 8 KiB
        // clients accept in metadata.
        assert!(status.details().len() < 2 * crate::error::MAX_MESSAGE_BYTES);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "InvalidOssObject.Malformed");
    }

    #[test]
    fn throttling_says_when_to_retry() {
        let err = ApiError::Throttled {
            message: "slow down".into(),
            retry_after: std::time::Duration::from_millis(22),
        };
        let status = to_status(&err, "ID");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            "Throttling.User"
        );
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(22))
        );
    }
}
