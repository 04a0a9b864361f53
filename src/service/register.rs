//! RegisterLiveStreamRecordSegments: validate a batch as a whole, store it
//! in one atomic step, acknowledge once durable.

use super::idempotency::{PendingToken, fingerprint};
use super::{IndexService, blocking, stream_name};
use crate::auth::Caller;
use crate::catalog::RegisterOutcome;
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{Format, MICROS_PER_SECOND, Micros, Segment, names, time};
use crate::operations::Operation;
use crate::proto;

/// Longest segment accepted, in seconds.
pub const MAX_SEGMENT_SECONDS: f64 = 3600.0;
/// Shortest segment accepted: one unit of EXTINF's three decimals. A
/// shorter one would be written as `#EXTINF:0.000`, an entry no player can
/// use.
pub const MIN_SEGMENT_MICROS: Micros = 1000;
/// How far a segment may start ahead of this machine's clock: recorders'
/// clocks drift.
const CLOCK_SKEW: Micros = 60 * MICROS_PER_SECOND;
const MAX_DIMENSION: i32 = 65_535;

fn field_error(index: usize, field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidParams(format!("Segments[{index}].{field}: {reason}"))
}

/// A segment length in seconds as the catalog keeps it: given by the
/// request or read from the media, held to the same bounds.
pub(super) fn checked_duration(index: usize, seconds: f64) -> ApiResult<Micros> {
    let in_bounds = seconds.is_finite()
        && seconds <= MAX_SEGMENT_SECONDS
        && (seconds * MICROS_PER_SECOND as f64).round() >= MIN_SEGMENT_MICROS as f64;
    if !in_bounds {
        return Err(field_error(
            index,
            "Duration",
            format!("is {seconds} seconds; a segment lasts 0.001 to {MAX_SEGMENT_SECONDS} seconds"),
        ));
    }
    Ok((seconds * MICROS_PER_SECOND as f64).round() as Micros)
}

/// A segment as the request describes it, and whether its media must be
/// probed for what the request left out.
pub(super) struct Described {
    pub segment: Segment,
    pub missing_duration: bool,
    pub missing_size: bool,
}

/// Checks one segment and converts it to the catalog's form.
fn parse_segment(index: usize, segment: &proto::Segment, now: Micros) -> ApiResult<Described> {
    if !names::is_endpoint(&segment.oss_endpoint) {
        return Err(field_error(
            index,
            "OssEndpoint",
            "must be a host name, optionally with :port",
        ));
    }
    if !names::is_bucket(&segment.oss_bucket) {
        return Err(field_error(
            index,
            "OssBucket",
            "must be 3 to 63 characters of [a-z0-9-]",
        ));
    }
    names::check_object_key(&segment.oss_object)
        .map_err(|reason| field_error(index, "OssObject", reason))?;
    let start = time::parse_segment_time(&segment.start_time)
        .ok_or_else(|| field_error(index, "StartTime", "must be yyyy-MM-ddTHH:mm:ss[.fff]Z"))?;
    if start + SEGMENT_RETENTION <= now {
        return Err(field_error(
            index,
            "StartTime",
            "is older than the 90 days segments are kept",
        ));
    }
    if start > now + CLOCK_SKEW {
        return Err(field_error(index, "StartTime", "is in the future"));
    }
    // No Duration (0 in proto3) means: probe the media for it.
    let missing_duration = segment.duration == 0.0;
    let duration = if missing_duration {
        0
    } else {
        checked_duration(index, segment.duration)?
    };
    if segment.sequence < 0 {
        return Err(field_error(index, "Sequence", "must not be negative"));
    }
    for (field, value) in [("Width", segment.width), ("Height", segment.height)] {
        if !(0..=MAX_DIMENSION).contains(&value) {
            return Err(field_error(
                index,
                field,
                format!("must be 0 to {MAX_DIMENSION}"),
            ));
        }
    }
    let format = Format::parse(&segment.format)
        .ok_or_else(|| field_error(index, "Format", "must be one of ts, flv, mp4, cmaf"))?;
    if segment.size < 0 {
        return Err(field_error(index, "Size", "must not be negative"));
    }
    let segment_out = Segment {
        endpoint: segment.oss_endpoint.clone(),
        bucket: segment.oss_bucket.clone(),
        object: segment.oss_object.clone(),
        start,
        duration,
        sequence: segment.sequence,
        width: segment.width as u32,
        height: segment.height as u32,
        format,
        size: segment.size as u64,
        media: None,
    };
    let missing_size = segment.width == 0 && segment.height == 0;
    Ok(Described {
        segment: segment_out,
        missing_duration,
        missing_size,
    })
}

/// The answer to a Register, as a ClientToken keeps it.
fn response_of(outcome: &RegisterOutcome) -> proto::RegisterLiveStreamRecordSegmentsResponse {
    proto::RegisterLiveStreamRecordSegmentsResponse {
        request_id: String::new(),
        accepted: outcome.accepted as i32,
        duplicates: outcome.duplicates as i32,
    }
}

impl IndexService {
    pub async fn register(
        &self,
        caller: &Caller,
        mut request: proto::RegisterLiveStreamRecordSegmentsRequest,
    ) -> ApiResult<RegisterOutcome> {
        let operation = Operation::RegisterLiveStreamRecordSegments;
        caller.authorize(operation, &request.domain_name)?;
        let token = std::mem::take(&mut request.client_token);
        let request_fingerprint = fingerprint(&request);
        let answer = self
            .once(
                caller,
                operation,
                &token,
                request_fingerprint,
                |token| async {
                    let outcome = self.register_new(caller, request, token).await?;
                    Ok(response_of(&outcome))
                },
            )
            .await?;
        Ok(RegisterOutcome {
            accepted: answer.accepted as u32,
            duplicates: answer.duplicates as u32,
        })
    }

    async fn register_new(
        &self,
        caller: &Caller,
        request: proto::RegisterLiveStreamRecordSegmentsRequest,
        token: Option<PendingToken>,
    ) -> ApiResult<RegisterOutcome> {
        names::check_stream_names(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        )?;
        if request.segments.is_empty() || request.segments.len() > self.max_register_batch {
            return Err(ApiError::InvalidParams(format!(
                "Segments holds {} segments; a request carries 1 to {} (max_register_batch)",
                request.segments.len(),
                self.max_register_batch
            )));
        }
        let now = self.clock.now();
        let described = request
            .segments
            .iter()
            .enumerate()
            .map(|(index, segment)| parse_segment(index, segment, now))
            .collect::<ApiResult<Vec<_>>>()?;
        // Segments in another tenant's bucket would let one account index,
        // and so read, another's recordings.
        if let Some((index, described)) = described
            .iter()
            .enumerate()
            .find(|(_, d)| !caller.owns_bucket(&d.segment.bucket))
        {
            return Err(ApiError::BucketNotFound(format!(
                "Segments[{index}].OssBucket: bucket {} does not belong to account {}",
                quote(&described.segment.bucket),
                caller.account.id
            )));
        }
        // Segments already registered are duplicates whatever their media
        // says: they are not read again (their objects may even be gone).
        let name = stream_name(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        );
        let catalog = self.catalog.clone();
        let lookup_name = name.clone();
        let probe_candidates: Vec<Segment> = described
            .iter()
            .filter(|d| d.missing_duration || d.missing_size)
            .map(|d| d.segment.clone())
            .collect();
        let known =
            blocking(move || Ok(catalog.registered(&lookup_name, &probe_candidates, now)?)).await?;
        let mut known = known.into_iter();
        let described = described
            .into_iter()
            .map(|mut d| {
                if (d.missing_duration || d.missing_size) && known.next() == Some(true) {
                    // The catalog keeps the stored copy: nothing to probe,
                    // and any valid length will do.
                    if d.missing_duration {
                        d.segment.duration = MIN_SEGMENT_MICROS;
                    }
                    d.missing_duration = false;
                    d.missing_size = false;
                }
                d
            })
            .collect();
        let segments = self.complete_from_media(described).await?;
        let catalog = self.catalog.clone();
        let outcome = blocking(move || {
            let answer = token
                .map(|token| move |outcome: &RegisterOutcome| token.answer(&response_of(outcome)));
            let answer = answer.as_ref().map(|f| f as &dyn Fn(&RegisterOutcome) -> _);
            Ok(catalog.register_answering(&name, segments, now, answer)?)
        })
        .await?;
        // Flushed even for duplicates: the first copy may still be on its way
        // to disk from a concurrent request.
        self.catalog.flush().await?;
        super::fault::after_commit("register");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_below_a_millisecond_are_refused() {
        for seconds in [
            0.0004,
            0.0005,
            0.000_999,
            -1.0,
            0.0,
            f64::NAN,
            f64::INFINITY,
            3600.5,
        ] {
            let err = checked_duration(3, seconds).unwrap_err();
            assert_eq!(err.code(), "InvalidParams", "{seconds}");
            assert!(err.to_string().contains("Segments[3].Duration"), "{err}");
        }
        assert_eq!(checked_duration(0, 0.001).unwrap(), 1000);
        assert_eq!(checked_duration(0, 3600.0).unwrap(), 3_600_000_000);
    }
}
