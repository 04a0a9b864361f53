//! The operations of the service, free of gRPC transport: each takes the
//! caller and a request, applies the design's rules in order and returns a
//! result or an [`ApiError`](crate::error::ApiError).
//!
//! The boundary, for every RPC alike: an operation takes the RPC's request
//! message and returns its response message with `request_id` left empty;
//! it never sees tonic or builds a status. The adapters (`api` for gRPC,
//! `webhook` for recorders' callbacks) fill in the RequestId and turn an
//! [`ApiError`](crate::error::ApiError) into their own errors. The
//! messages are the operations' own types rather than a copy in domain
//! types because a ClientToken is defined on them: a request's fingerprint
//! is its encoding and a token's stored answer is the encoded response,
//! replayed as it was first sent. Inside an operation the rules work on
//! domain types (a Create's `Plan`, the catalog's records), and the
//! messages are read at the start and built at the end.

mod content;
mod create;
mod delete;
mod describe;
mod fault;
mod idempotency;
pub mod iframes;
pub mod keyframes;
pub mod playback;
pub mod probing;
mod register;
mod sign;
pub mod window;

use create::record_info;
pub use idempotency::TokenLocks;
pub use sign::PlaybackSigning;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::storage::Storage;

pub struct IndexService {
    pub catalog: Arc<dyn Catalog>,
    pub storage: Storage,
    pub clock: Arc<dyn Clock>,
    /// Cap on the segments of one manifest.
    pub max_segments_per_manifest: usize,
    /// Most segments one Register request may carry.
    pub max_register_batch: usize,
    /// Longest hole inside one recorded span of DescribeLiveStreamRecordContent.
    pub span_gap: crate::manifest::Micros,
    /// Serializes requests that share a ClientToken.
    pub token_locks: TokenLocks,
    /// The accounts' playback keys, and where players reach the listener.
    pub playback_signing: PlaybackSigning,
    /// Segments' keyframes, probed once and kept for clips and I-frame
    /// playlists.
    pub keyframes: keyframes::KeyframeCache,
}

/// Rule 1 of every request: required fields present, names valid.
fn check_required(
    domain: &str,
    app: &str,
    stream: &str,
    fields: &[(&str, &str)],
) -> crate::error::ApiResult<()> {
    for (field, value) in fields {
        if value.is_empty() {
            return Err(crate::error::ApiError::InvalidParams(format!(
                "{field} is required"
            )));
        }
    }
    crate::manifest::names::check_stream_names(domain, app, stream)
}

/// Rule 2 of every ranged request: both times exactly `yyyy-MM-ddTHH:mm:ssZ`.
fn parse_range(
    start: &str,
    end: &str,
) -> crate::error::ApiResult<(crate::manifest::Micros, crate::manifest::Micros)> {
    use crate::error::ApiError;
    use crate::manifest::time::parse_request_time;
    let start = parse_request_time(start).ok_or_else(|| {
        ApiError::StartTimeMalformed("StartTime must be yyyy-MM-ddTHH:mm:ssZ".into())
    })?;
    let end = parse_request_time(end)
        .ok_or_else(|| ApiError::EndTimeMalformed("EndTime must be yyyy-MM-ddTHH:mm:ssZ".into()))?;
    Ok((start, end))
}

/// Rules 2 and 4 of a listing of a stream's past: both times well formed,
/// the range at most 4 days and within the 180 days records are kept.
fn listing_window(
    start_time: &str,
    end_time: &str,
    now: crate::manifest::Micros,
) -> crate::error::ApiResult<(crate::manifest::Micros, crate::manifest::Micros)> {
    let (start, end) = parse_range(start_time, end_time)?;
    crate::manifest::range::check_window(
        start,
        end,
        now,
        crate::manifest::range::MANIFEST_RETENTION,
    )?;
    Ok((start, end))
}

fn stream_name(domain: &str, app: &str, stream: &str) -> crate::catalog::StreamName {
    crate::catalog::StreamName {
        domain: domain.to_string(),
        app: app.to_string(),
        stream: stream.to_string(),
    }
}
