//! RegisterLiveStreamRecordSegments: validate a batch as a whole, store it
//! in one atomic step, acknowledge once durable.

use super::idempotency::{PendingToken, fingerprint, settle};
use super::{IndexService, stream_name};
use crate::auth::Caller;
use crate::catalog::{RegisterOutcome, StreamName};
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

/// The answer to a Register, as the client and a ClientToken see it.
fn response_of(outcome: &RegisterOutcome) -> proto::RegisterLiveStreamRecordSegmentsResponse {
    proto::RegisterLiveStreamRecordSegmentsResponse {
        request_id: String::new(),
        accepted: outcome.accepted as i32,
        duplicates: outcome.duplicates as i32,
    }
}

/// The rules of a batch that need no I/O: names, size, each segment, and
/// the buckets, which must all be the account's: segments in another
/// tenant's bucket would let one account index, and so read, another's
/// recordings.
fn check_batch(
    request: &proto::RegisterLiveStreamRecordSegmentsRequest,
    max_batch: usize,
    now: Micros,
    account: &str,
    owns_bucket: impl Fn(&str) -> bool,
) -> ApiResult<Vec<Described>> {
    names::check_stream_names(
        &request.domain_name,
        &request.app_name,
        &request.stream_name,
    )?;
    if request.segments.is_empty() || request.segments.len() > max_batch {
        return Err(ApiError::InvalidParams(format!(
            "Segments holds {} segments; a request carries 1 to {max_batch} (max_register_batch)",
            request.segments.len(),
        )));
    }
    let described = request
        .segments
        .iter()
        .enumerate()
        .map(|(index, segment)| parse_segment(index, segment, now))
        .collect::<ApiResult<Vec<_>>>()?;
    if let Some((index, described)) = described
        .iter()
        .enumerate()
        .find(|(_, d)| !owns_bucket(&d.segment.bucket))
    {
        return Err(ApiError::BucketNotFound(format!(
            "Segments[{index}].OssBucket: bucket {} does not belong to account {account}",
            quote(&described.segment.bucket),
        )));
    }
    Ok(described)
}

impl Described {
    fn needs_probe(&self) -> bool {
        self.missing_duration || self.missing_size
    }
}

/// Segments already registered are duplicates whatever their media says:
/// they are not read again (their objects may even be gone). `known`
/// answers, in order, for each segment that [`Described::needs_probe`].
fn skip_known(described: Vec<Described>, known: Vec<bool>) -> Vec<Described> {
    let mut known = known.into_iter();
    described
        .into_iter()
        .map(|mut d| {
            if d.needs_probe() && known.next() == Some(true) {
                // The catalog keeps the stored copy: nothing to probe, and
                // any valid length will do.
                if d.missing_duration {
                    d.segment.duration = MIN_SEGMENT_MICROS;
                }
                d.missing_duration = false;
                d.missing_size = false;
            }
            d
        })
        .collect()
}

impl IndexService {
    pub async fn register(
        &self,
        caller: &Caller,
        mut request: proto::RegisterLiveStreamRecordSegmentsRequest,
    ) -> ApiResult<proto::RegisterLiveStreamRecordSegmentsResponse> {
        let operation = Operation::RegisterLiveStreamRecordSegments;
        caller.authorize(operation, &request.domain_name)?;
        let token = std::mem::take(&mut request.client_token);
        let request_fingerprint = fingerprint(&request);
        self.once(caller, operation, &token, request_fingerprint, |token| {
            self.register_new(caller, request, token)
        })
        .await
    }

    async fn register_new(
        &self,
        caller: &Caller,
        request: proto::RegisterLiveStreamRecordSegmentsRequest,
        token: Option<PendingToken>,
    ) -> ApiResult<proto::RegisterLiveStreamRecordSegmentsResponse> {
        let now = self.clock.now();
        let described = check_batch(
            &request,
            self.max_register_batch,
            now,
            &caller.account.id,
            |bucket| caller.owns_bucket(bucket),
        )?;
        let name = stream_name(
            &request.domain_name,
            &request.app_name,
            &request.stream_name,
        );
        let candidates: Vec<Segment> = described
            .iter()
            .filter(|d| d.needs_probe())
            .map(|d| d.segment.clone())
            .collect();
        // Most batches carry their metadata: nothing to look up for them.
        let known = if candidates.is_empty() {
            Vec::new()
        } else {
            self.catalog.registered(&name, &candidates, now).await?
        };
        let segments = self
            .complete_from_media(skip_known(described, known))
            .await?;
        self.commit_batch(name, segments, now, token).await
    }

    /// Stores the batch and its ClientToken answer in one durable commit.
    async fn commit_batch(
        &self,
        name: StreamName,
        segments: Vec<Segment>,
        now: Micros,
        token: Option<PendingToken>,
    ) -> ApiResult<proto::RegisterLiveStreamRecordSegmentsResponse> {
        let answer = token
            .as_ref()
            .map(|token| token.register_answer(response_of));
        let commit = self.catalog.register(&name, segments, now, answer).await?;
        super::fault::after_commit("register");
        settle(commit, token.as_ref(), |outcome| response_of(&outcome))
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

    fn request(segments: usize) -> proto::RegisterLiveStreamRecordSegmentsRequest {
        proto::RegisterLiveStreamRecordSegmentsRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "cam".into(),
            segments: (0..segments)
                .map(|i| proto::Segment {
                    oss_endpoint: "localhost:8333".into(),
                    oss_bucket: "records".into(),
                    oss_object: format!("live/cam/{i}.ts"),
                    start_time: format!("2026-11-25T10:00:{:02}Z", i * 6),
                    duration: if i == 1 { 0.0 } else { 6.0 },
                    width: 640,
                    height: 360,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn now() -> Micros {
        time::parse_request_time("2026-11-25T11:00:00Z").unwrap()
    }

    #[test]
    fn a_batch_is_checked_names_size_segments_then_buckets() {
        let owned = |_: &str| true;
        let foreign = |_: &str| false;
        let described = check_batch(&request(3), 10, now(), "1", owned).unwrap();
        assert_eq!(described.len(), 3);
        let probed: Vec<bool> = described.iter().map(Described::needs_probe).collect();
        assert_eq!(probed, [false, true, false]);
        let code = |result: ApiResult<Vec<Described>>| result.err().unwrap().code();
        let mut bad_name = request(3);
        bad_name.stream_name = "cam*".into();
        assert_eq!(
            code(check_batch(&bad_name, 0, now(), "1", foreign)),
            "InvalidParams"
        );
        assert_eq!(
            code(check_batch(&request(3), 2, now(), "1", owned)),
            "InvalidParams"
        );
        let mut bad_segment = request(3);
        bad_segment.segments[2].sequence = -1;
        let err = check_batch(&bad_segment, 10, now(), "1", foreign)
            .err()
            .unwrap();
        assert!(err.to_string().contains("Segments[2].Sequence"), "{err}");
        assert_eq!(
            code(check_batch(&request(3), 10, now(), "1", foreign)),
            "InvalidBucket.NotFound"
        );
    }

    #[test]
    fn known_segments_are_not_probed() {
        let described = check_batch(&request(3), 10, now(), "1", |_| true).unwrap();
        let kept = skip_known(described, vec![true]);
        assert!(kept.iter().all(|d| !d.needs_probe()));
        assert_eq!(kept[1].segment.duration, MIN_SEGMENT_MICROS);
        let described = check_batch(&request(3), 10, now(), "1", |_| true).unwrap();
        let kept = skip_known(described, vec![false]);
        assert!(kept[1].missing_duration);
    }
}
