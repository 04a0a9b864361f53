//! Filling in what a registration left out (Duration, Width and Height)
//! from the segment's own bytes: two ranged reads of its ends, probed.

use futures::{StreamExt, TryStreamExt};

use super::IndexService;
use super::register::{Described, checked_duration};
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::{Segment, SegmentMedia};
use crate::media;
use crate::storage::{ByteRange, Storage, StorageError};

/// Bytes read from each end of a segment: enough for the tables and SPS at
/// the start and the last PES headers at the end of any common bitrate.
const PROBE_SPAN: u64 = 256 * 1024;
/// Segments of one batch probed at once.
const PROBES_IN_FLIGHT: usize = 8;

/// Names the missing field, as every InvalidParams of a batch does: only a
/// missing Duration makes a probe a must.
fn probe_error(index: usize, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidParams(format!(
        "Segments[{index}].Duration: missing, and probing the media for it failed: {reason}"
    ))
}

fn read_error(index: usize, segment: &Segment, err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound => probe_error(
            index,
            format!(
                "{} is not in bucket {}",
                quote(&segment.object),
                quote(&segment.bucket)
            ),
        ),
        StorageError::Rejected(reason) => probe_error(index, reason),
        // Not the client's fault: object storage did not answer.
        StorageError::Unreachable(reason) | StorageError::Transient(reason) => {
            ApiError::unavailable(format!(
                "Segments[{index}]: reading the media to probe it failed: {reason}"
            ))
        }
    }
}

/// Why an object could not be probed.
#[derive(Debug)]
pub enum ProbeFailure {
    NoEndpoint,
    Read(StorageError),
    Media(media::ProbeError),
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeFailure::NoEndpoint => f.write_str("its endpoint is not configured"),
            ProbeFailure::Read(err) => write!(f, "{err}"),
            ProbeFailure::Media(err) => write!(f, "{err}"),
        }
    }
}

/// Probes an object from its two ends (one read when it is small), and
/// returns what the media says with the object's size.
pub async fn probe_object(
    storage: &Storage,
    endpoint: &str,
    bucket: &str,
    key: &str,
) -> Result<(media::Summary, u64), ProbeFailure> {
    if !storage.has_endpoint(endpoint) {
        return Err(ProbeFailure::NoEndpoint);
    }
    let read = |range| storage.get(endpoint, bucket, key, range);
    let head = read(Some(ByteRange::First(PROBE_SPAN)))
        .await
        .map_err(ProbeFailure::Read)?;
    let total = head.total_len;
    let tail = if head.body.len() as u64 >= total {
        head.body.clone()
    } else {
        read(Some(ByteRange::Last(PROBE_SPAN)))
            .await
            .map_err(ProbeFailure::Read)?
            .body
    };
    // Parsing half a megabyte is CPU work: off the async runtime.
    let summary =
        tokio::task::spawn_blocking(move || media::probe_head_tail(&head.body, &tail, total))
            .await
            .map_err(|err| {
                ProbeFailure::Read(StorageError::Transient(format!("probe task failed: {err}")))
            })?;
    summary
        .map(|summary| (summary, total))
        .map_err(ProbeFailure::Media)
}

impl IndexService {
    /// Probes the segments that need it, a few at a time.
    pub(super) async fn complete_from_media(
        &self,
        described: Vec<Described>,
    ) -> ApiResult<Vec<Segment>> {
        futures::stream::iter(described.into_iter().enumerate())
            .map(|(index, described)| async move {
                if described.missing_duration {
                    return self.probe_into(index, described).await;
                }
                if described.missing_size {
                    return Ok(self.size_from_media(described.segment).await);
                }
                Ok(described.segment)
            })
            .buffered(PROBES_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// Width and Height of 0 mean "unknown", which a registration may
    /// rightly say: the media fills them in when it can be read, and a
    /// segment that cannot be probed is kept as registered.
    async fn size_from_media(&self, mut segment: Segment) -> Segment {
        if let Ok((summary, total)) = probe_object(
            &self.storage,
            &segment.endpoint,
            &segment.bucket,
            &segment.object,
        )
        .await
        {
            take_media(&mut segment, &summary, total, true);
        }
        segment
    }

    async fn probe_into(&self, index: usize, described: Described) -> ApiResult<Segment> {
        let Described {
            mut segment,
            missing_size,
            ..
        } = described;
        let (summary, total) = probe_object(
            &self.storage,
            &segment.endpoint,
            &segment.bucket,
            &segment.object,
        )
        .await
        .map_err(|failure| match failure {
            ProbeFailure::NoEndpoint => probe_error(
                index,
                format!(
                    "endpoint {} is not one this service reads from",
                    quote(&segment.endpoint)
                ),
            ),
            ProbeFailure::Read(err) => read_error(index, &segment, err),
            ProbeFailure::Media(err) => probe_error(index, err),
        })?;
        segment.duration = checked_duration(index, summary.duration_micros as f64 / 1e6)?;
        take_media(&mut segment, &summary, total, missing_size);
        Ok(segment)
    }
}

/// What a probe tells of a segment: its size in bytes when unregistered,
/// its picture size when `with_size`, and the codec and first PTS by which
/// breaks in the media are found.
fn take_media(segment: &mut Segment, summary: &crate::media::Summary, total: u64, with_size: bool) {
    if with_size {
        segment.width = summary.width;
        segment.height = summary.height;
    }
    if segment.size == 0 {
        segment.size = total;
    }
    segment.media = Some(SegmentMedia {
        codec: summary.codec,
        first_pts: summary.first_pts,
    });
}
