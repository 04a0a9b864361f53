//! The one error type of the service. Each variant is an error code of the
//! API pages; the gRPC adapter turns it into a status, nothing else does.

use std::fmt;

/// An error a request can end with, carrying the human-readable detail that
/// follows the code in the status message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("InvalidParams: {0}")]
    InvalidParams(String),
    #[error("InvalidStartTime.Malformed: {0}")]
    StartTimeMalformed(String),
    #[error("InvalidEndTime.Malformed: {0}")]
    EndTimeMalformed(String),
    #[error("InvalidStartTime.Mismatch: {0}")]
    StartTimeMismatch(String),
    #[error("InvalidEndTime.Mismatch: {0}")]
    EndTimeMismatch(String),
    #[error("InvalidOssEndpoint.Malformed: {0}")]
    OssEndpointMalformed(String),
    #[error("InvalidOssBucket.Malformed: {0}")]
    OssBucketMalformed(String),
    #[error("InvalidOssObject.Malformed: {0}")]
    OssObjectMalformed(String),
    #[error("InvalidBucket.NotFound: {0}")]
    BucketNotFound(String),
    #[error("InvalidStream.NotFound: {0}")]
    StreamNotFound(String),
    #[error("NoRecordContent: {0}")]
    NoRecordContent(String),
    #[error("OperationNotSupport: {0}")]
    OperationNotSupport(String),
    #[error("InvalidConfig.Changed: {0}")]
    ConfigChanged(String),
    #[error("RecordContentExceed: {0}")]
    RecordContentExceed(String),
    #[error("InvalidRecordId.NotFound: {0}")]
    RecordIdNotFound(String),
    #[error("InvalidAccessKeyId: {0}")]
    InvalidAccessKeyId(String),
    #[error("Forbidden.RAM: {0}")]
    ForbiddenRam(String),
    /// Over the account's request rate; `retry_after` says when the next
    /// request of the same kind will be accepted.
    #[error("Throttling.User: {message}")]
    Throttled {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The service failed; `unavailable` is set when a dependency (object
    /// storage) could not be reached, so clients know a retry may succeed.
    #[error("InternalError: {message}")]
    Internal { message: String, unavailable: bool },
}

/// The gRPC status class of an error code, as the design's table fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    InvalidArgument,
    NotFound,
    OutOfRange,
    FailedPrecondition,
    ResourceExhausted,
    Unauthenticated,
    PermissionDenied,
    Internal,
    Unavailable,
}

impl ApiError {
    pub fn internal(message: impl fmt::Display) -> Self {
        ApiError::Internal {
            message: message.to_string(),
            unavailable: false,
        }
    }

    pub fn unavailable(message: impl fmt::Display) -> Self {
        ApiError::Internal {
            message: message.to_string(),
            unavailable: true,
        }
    }

    /// The code string clients match on, verbatim from the API pages.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParams(_) => "InvalidParams",
            ApiError::StartTimeMalformed(_) => "InvalidStartTime.Malformed",
            ApiError::EndTimeMalformed(_) => "InvalidEndTime.Malformed",
            ApiError::StartTimeMismatch(_) => "InvalidStartTime.Mismatch",
            ApiError::EndTimeMismatch(_) => "InvalidEndTime.Mismatch",
            ApiError::OssEndpointMalformed(_) => "InvalidOssEndpoint.Malformed",
            ApiError::OssBucketMalformed(_) => "InvalidOssBucket.Malformed",
            ApiError::OssObjectMalformed(_) => "InvalidOssObject.Malformed",
            ApiError::BucketNotFound(_) => "InvalidBucket.NotFound",
            ApiError::StreamNotFound(_) => "InvalidStream.NotFound",
            ApiError::NoRecordContent(_) => "NoRecordContent",
            ApiError::OperationNotSupport(_) => "OperationNotSupport",
            ApiError::ConfigChanged(_) => "InvalidConfig.Changed",
            ApiError::RecordContentExceed(_) => "RecordContentExceed",
            ApiError::RecordIdNotFound(_) => "InvalidRecordId.NotFound",
            ApiError::InvalidAccessKeyId(_) => "InvalidAccessKeyId",
            ApiError::ForbiddenRam(_) => "Forbidden.RAM",
            ApiError::Throttled { .. } => "Throttling.User",
            ApiError::Internal { .. } => "InternalError",
        }
    }

    pub fn status_class(&self) -> StatusClass {
        match self {
            ApiError::InvalidParams(_)
            | ApiError::StartTimeMalformed(_)
            | ApiError::EndTimeMalformed(_)
            | ApiError::StartTimeMismatch(_)
            | ApiError::EndTimeMismatch(_)
            | ApiError::OssEndpointMalformed(_)
            | ApiError::OssBucketMalformed(_)
            | ApiError::OssObjectMalformed(_) => StatusClass::InvalidArgument,
            ApiError::BucketNotFound(_)
            | ApiError::StreamNotFound(_)
            | ApiError::NoRecordContent(_)
            | ApiError::RecordIdNotFound(_) => StatusClass::NotFound,
            ApiError::RecordContentExceed(_) => StatusClass::OutOfRange,
            ApiError::ConfigChanged(_) | ApiError::OperationNotSupport(_) => {
                StatusClass::FailedPrecondition
            }
            ApiError::Throttled { .. } => StatusClass::ResourceExhausted,
            ApiError::InvalidAccessKeyId(_) => StatusClass::Unauthenticated,
            ApiError::ForbiddenRam(_) => StatusClass::PermissionDenied,
            ApiError::Internal {
                unavailable: false, ..
            } => StatusClass::Internal,
            ApiError::Internal {
                unavailable: true, ..
            } => StatusClass::Unavailable,
        }
    }

    /// The HTTP status the API pages give for the code.
    pub fn http_status(&self) -> u16 {
        match self {
            ApiError::BucketNotFound(_) | ApiError::RecordIdNotFound(_) => 404,
            ApiError::InvalidAccessKeyId(_) => 401,
            ApiError::ForbiddenRam(_) => 403,
            ApiError::Throttled { .. } => 429,
            ApiError::Internal {
                unavailable: false, ..
            } => 500,
            ApiError::Internal {
                unavailable: true, ..
            } => 503,
            _ => 400,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_starts_with_the_code() {
        let err = ApiError::StartTimeMalformed("bad".into());
        assert!(err.to_string().starts_with(err.code()));
        let err = ApiError::unavailable("down");
        assert_eq!(err.to_string(), "InternalError: down");
        assert_eq!(err.status_class(), StatusClass::Unavailable);
    }
}
