//! DescribeLiveStreamRecordContent: the continuous recordings of a range,
//! from the segments whose time overlaps it.

use super::{IndexService, check_required, listing_window, stream_name};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::spans::{Span, spans};
use crate::manifest::{MICROS_PER_SECOND, time};
use crate::operations::Operation;
use crate::proto;

impl IndexService {
    pub async fn describe_content(
        &self,
        caller: &Caller,
        request: proto::DescribeLiveStreamRecordContentRequest,
    ) -> ApiResult<proto::DescribeLiveStreamRecordContentResponse> {
        caller.authorize(
            Operation::DescribeLiveStreamRecordContent,
            &request.domain_name,
        )?;
        check_required(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
            &[
                ("StartTime", &request.start_time),
                ("EndTime", &request.end_time),
            ],
        )?;
        let now = self.clock.now();
        let (start, end) = listing_window(&request.start_time, &request.end_time, now)?;
        let name = stream_name(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        );
        let stream = self.catalog.stream(&name).await?.ok_or_else(|| {
            let path = format!(
                "{}/{}/{}",
                request.domain_name, request.app_name, request.stream_name
            );
            ApiError::StreamNotFound(format!(
                "no segment was ever registered for {}",
                quote(&path)
            ))
        })?;
        // A segment overlapping the range ends after StartTime and at most
        // one segment after EndTime.
        let scan_until = end.saturating_add(stream.longest_segment);
        let mut segments = self
            .catalog
            .scan_all(stream.id, start, scan_until, now, Vec::new())
            .await?;
        // Those that end by EndTime's segment but start after EndTime
        // are outside the range.
        segments.retain(|segment| segment.start < end);
        segments.sort_by_key(|segment| (segment.start, segment.end()));
        Ok(proto::DescribeLiveStreamRecordContentResponse {
            request_id: String::new(),
            record_content_info_list: spans(&segments, self.span_gap)
                .into_iter()
                .map(content_info)
                .collect(),
        })
    }
}

/// A span as the API shows it: EndTime in whole seconds, rounded up so the
/// span's last moment is inside it.
fn content_info(span: Span) -> proto::RecordContentInfo {
    proto::RecordContentInfo {
        start_time: time::format_request_time(span.start),
        end_time: time::format_request_time(span.end + MICROS_PER_SECOND - 1),
        duration: span.duration_seconds(),
        oss_endpoint: span.endpoint,
        oss_bucket: span.bucket,
        oss_object_prefix: span.object_prefix,
    }
}
