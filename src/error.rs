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

/// Characters of a value an error quotes; the rest is only counted.
pub const QUOTED_CHARS: usize = 64;

/// Bytes of an error's text as it leaves the service (status message, JSON
/// answer, log line). Clients refuse whole responses whose metadata passes
/// 8 KiB, and the status travels twice (grpc-message and the google.rpc.Status
/// of the details), percent-encoded.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A value of a request as an error quotes it: in double quotes, escaped
/// like `{:?}`, and when longer than [`QUOTED_CHARS`] characters, cut there
/// and followed by its whole length: `"aaaa…" (8197 bytes)`. Requests may
/// carry megabytes in one field; the error must still fit in the response
/// headers and a log line.
pub fn quote(value: &str) -> Quoted<'_> {
    Quoted(value)
}

/// See [`quote`].
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.0;
        let Some((cut, _)) = value.char_indices().nth(QUOTED_CHARS) else {
            return write!(f, "{value:?}");
        };
        let escaped = format!("{:?}", &value[..cut]);
        let open = escaped.strip_suffix('"').unwrap_or(&escaped);
        write!(f, "{open}…\" ({} bytes)", value.len())
    }
}

/// `text` cut to at most `max_bytes` bytes on a character boundary, with
/// `…` in place of what was cut.
pub fn shorten(text: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max_bytes {
        return text.into();
    }
    let room = max_bytes.saturating_sub('…'.len_utf8());
    let cut = (0..=room)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &text[..cut]).into()
}

impl ApiError {
    /// The error as it is sent and logged: the code first, then the detail,
    /// cut to [`MAX_MESSAGE_BYTES`]. Details quote values through [`quote`];
    /// this bound holds whatever a detail says.
    pub fn message(&self) -> String {
        shorten(&self.to_string(), MAX_MESSAGE_BYTES).into_owned()
    }
}

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

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(quote("no-such-id").to_string(), "\"no-such-id\"");
        assert_eq!(quote("").to_string(), "\"\"");
        assert_eq!(quote("a\"b\n").to_string(), format!("{:?}", "a\"b\n"));
        let exactly = "段".repeat(QUOTED_CHARS);
        assert_eq!(quote(&exactly).to_string(), format!("{exactly:?}"));
    }

    #[test]
    fn long_values_are_cut_and_counted() {
        let value = format!("{}.m3u8", "a".repeat(8192));
        assert_eq!(
            quote(&value).to_string(),
            format!("\"{}…\" (8197 bytes)", "a".repeat(QUOTED_CHARS))
        );
        // Cut between characters, never inside one.
        let wide = "段".repeat(30_000);
        assert_eq!(
            quote(&wide).to_string(),
            format!("\"{}…\" (90000 bytes)", "段".repeat(QUOTED_CHARS))
        );
        // Control characters are escaped, so one cannot end the line.
        let controls = "\u{1}".repeat(1000);
        let quoted = quote(&controls).to_string();
        assert!(quoted.starts_with("\"\\u{1}\\u{1}"), "{quoted}");
        assert!(quoted.ends_with("\\u{1}…\" (1000 bytes)"), "{quoted}");
        assert!(quoted.len() < 512);
    }

    #[test]
    fn shorten_cuts_on_a_character_boundary() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghij", 10), "abcdefghij");
        assert_eq!(shorten("abcdefghijk", 10), "abcdefg…");
        // "段" is 3 bytes: 7 bytes of room hold two of them.
        let wide = "段".repeat(10);
        let cut = shorten(&wide, 10);
        assert_eq!(cut, "段段…");
        assert!(cut.len() <= 10);
    }

    #[test]
    fn messages_keep_the_code_and_stay_bounded() {
        let err = ApiError::OssObjectMalformed(format!("key {}", "a".repeat(100_000)));
        let message = err.message();
        assert!(message.starts_with("InvalidOssObject.Malformed: key aaa"));
        assert!(message.len() <= MAX_MESSAGE_BYTES);
        assert!(message.ends_with('…'));
        let err = ApiError::RecordIdNotFound("no manifest \"x\" of this stream".into());
        assert_eq!(err.message(), err.to_string());
    }
}
