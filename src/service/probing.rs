//! Filling in what a registration left out (Duration, Width and Height)
//! from the segment's own bytes: two ranged reads of its ends, probed.

use futures::{StreamExt, TryStreamExt};

use super::IndexService;
use super::register::{Described, checked_duration};
use crate::error::{ApiError, ApiResult};
use crate::manifest::{Segment, SegmentMedia};
use crate::media;
use crate::storage::{ByteRange, StorageError};

/// Bytes read from each end of a segment: enough for the tables and SPS at
/// the start and the last PES headers at the end of any common bitrate.
const PROBE_SPAN: u64 = 256 * 1024;
/// Segments of one batch probed at once.
const PROBES_IN_FLIGHT: usize = 8;

/// Names the first missing field, as every InvalidParams of a batch does.
fn probe_error(index: usize, field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidParams(format!(
        "Segments[{index}].{field}: missing, and probing the media for it failed: {reason}"
    ))
}

fn read_error(index: usize, field: &str, segment: &Segment, err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound => probe_error(
            index,
            field,
            format!("{} is not in bucket {}", segment.object, segment.bucket),
        ),
        StorageError::Rejected(reason) => probe_error(index, field, reason),
        // Not the client's fault: object storage did not answer.
        StorageError::Unreachable(reason) | StorageError::Transient(reason) => {
            ApiError::unavailable(format!(
                "Segments[{index}]: reading the media to probe it failed: {reason}"
            ))
        }
    }
}

impl IndexService {
    /// Probes the segments that need it, a few at a time.
    pub(super) async fn complete_from_media(
        &self,
        described: Vec<Described>,
    ) -> ApiResult<Vec<Segment>> {
        futures::stream::iter(described.into_iter().enumerate())
            .map(|(index, described)| async move {
                // Only a missing Duration makes the media a must: Width and
                // Height of 0 mean "unknown", and are filled in when a probe
                // runs anyway.
                if !described.missing_duration {
                    return Ok(described.segment);
                }
                self.probe_into(index, described).await
            })
            .buffered(PROBES_IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn probe_into(&self, index: usize, described: Described) -> ApiResult<Segment> {
        let Described {
            mut segment,
            missing_size,
            ..
        } = described;
        let field = "Duration";
        if !self.storage.has_endpoint(&segment.endpoint) {
            return Err(probe_error(
                index,
                field,
                format!(
                    "endpoint {} is not one this service reads from",
                    segment.endpoint
                ),
            ));
        }
        let read = |range| {
            self.storage
                .get(&segment.endpoint, &segment.bucket, &segment.object, range)
        };
        let head = read(Some(ByteRange::First(PROBE_SPAN)))
            .await
            .map_err(|err| read_error(index, field, &segment, err))?;
        let total = head.total_len;
        let summary = if head.body.len() as u64 >= total {
            media::probe_head_tail(&head.body, &head.body, total)
        } else {
            let tail = read(Some(ByteRange::Last(PROBE_SPAN)))
                .await
                .map_err(|err| read_error(index, field, &segment, err))?;
            media::probe_head_tail(&head.body, &tail.body, total)
        }
        .map_err(|err| probe_error(index, field, err))?;
        segment.duration = checked_duration(index, summary.duration_micros as f64 / 1e6)?;
        if missing_size {
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
        Ok(segment)
    }
}
