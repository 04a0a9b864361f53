//! `record-index import`: reads an existing recording's playlist from
//! object storage and registers its segments with a running service over
//! gRPC. Registration is idempotent, so an interrupted import is resumed by
//! running it again.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use super::playlist::{self, ListedSegment};
use crate::manifest::range::SEGMENT_RETENTION;
use crate::manifest::{MICROS_PER_SECOND, time};
use crate::proto;
use crate::proto::record_index_client::RecordIndexClient;
use crate::storage::Storage;

/// Segments per Register call.
const BATCH: usize = 1000;

/// What to import and where to.
pub struct ImportJob {
    /// gRPC address of the service, `http://host:port`.
    pub server: String,
    pub api_key: Option<String>,
    pub domain: String,
    pub app: String,
    pub stream: String,
    /// Where the recording lies.
    pub endpoint: String,
    pub bucket: String,
    /// What to read the recording from.
    pub source: ImportSource,
    /// Object-storage requests in flight at once.
    pub concurrency: usize,
}

/// Where an import finds the segments of a recording.
pub enum ImportSource {
    /// A recorder's HLS media playlist (live or VOD), by key.
    Playlist(String),
    /// Every `.ts` object under a key prefix, each probed for its duration
    /// and dated by its Last-Modified (its upload) minus that duration.
    Prefix(String),
}

/// Counts for the closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub listed: usize,
    pub accepted: usize,
    pub duplicates: usize,
    /// Segments outside the 90 days the catalog keeps (or dated in the
    /// future), left out rather than failing the whole import.
    pub out_of_retention: usize,
}

/// Whether the catalog would take a segment starting at `start`: less than
/// 90 days old (with a minute of slack for the import's own run time) and
/// not in the future.
fn retainable(segment: &proto::Segment, now: i64) -> bool {
    match time::parse_segment_time(&segment.start_time) {
        Some(start) => {
            start + SEGMENT_RETENTION - 60 * MICROS_PER_SECOND > now
                && start <= now + 60 * MICROS_PER_SECOND
        }
        None => false,
    }
}

/// A segment's start: the playlist's PROGRAM-DATE-TIME, or else the
/// object's Last-Modified (its upload, so its end) minus its duration.
async fn start_of(
    storage: &Storage,
    job: &ImportJob,
    segment: &ListedSegment,
) -> Result<i64, String> {
    if let Some(start) = segment.start {
        return Ok(start);
    }
    let meta = storage
        .head(&job.endpoint, &job.bucket, &segment.key)
        .await
        .map_err(|err| format!("{}: {err}", segment.key))?;
    Ok(meta.last_modified - (segment.duration * MICROS_PER_SECOND as f64).round() as i64)
}

fn progress_bar(len: usize) -> ProgressBar {
    let progress = ProgressBar::new(len as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} segments, {per_sec}, eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

fn segment_of(
    job: &ImportJob,
    key: String,
    start: i64,
    duration: f64,
    sequence: i64,
) -> proto::Segment {
    proto::Segment {
        oss_endpoint: job.endpoint.clone(),
        oss_bucket: job.bucket.clone(),
        oss_object: key,
        start_time: time::format_program_date_time(start),
        duration,
        sequence: sequence.max(0),
        format: "ts".into(),
        ..Default::default()
    }
}

/// The segments a recorder's playlist lists.
async fn from_playlist(
    storage: &Storage,
    job: &ImportJob,
    playlist_key: &str,
    progress: &ProgressBar,
) -> Result<Vec<proto::Segment>, String> {
    let text = storage
        .get(&job.endpoint, &job.bucket, playlist_key, None)
        .await
        .map_err(|err| format!("reading playlist {playlist_key}: {err}"))?;
    let text = String::from_utf8(text.body.to_vec())
        .map_err(|_| format!("{playlist_key} is not UTF-8 text"))?;
    let listed =
        playlist::parse(&text, playlist_key).map_err(|err| format!("{playlist_key}: {err}"))?;
    progress.set_length(listed.len() as u64);
    progress.set_message("reading start times");
    futures::stream::iter(listed.iter())
        .map(|segment| async move {
            let start = start_of(storage, job, segment).await?;
            progress.inc(1);
            Ok::<_, String>(segment_of(
                job,
                segment.key.clone(),
                start,
                segment.duration,
                segment.sequence,
            ))
        })
        .buffered(job.concurrency.max(1))
        .try_collect()
        .await
}

/// Every `.ts` object under a prefix, probed.
async fn from_prefix(
    storage: &Storage,
    job: &ImportJob,
    prefix: &str,
    progress: &ProgressBar,
) -> Result<Vec<proto::Segment>, String> {
    let objects = storage
        .list(&job.endpoint, &job.bucket, prefix)
        .await
        .map_err(|err| format!("listing {prefix}: {err}"))?;
    let objects: Vec<_> = objects
        .into_iter()
        .filter(|object| object.key.ends_with(".ts"))
        .collect();
    progress.set_length(objects.len() as u64);
    progress.set_message("probing");
    futures::stream::iter(objects.iter().enumerate())
        .map(|(index, object)| async move {
            let (summary, size) = crate::service::probing::probe_object(
                storage,
                &job.endpoint,
                &job.bucket,
                &object.key,
            )
            .await
            .map_err(|err| format!("{}: {err}", object.key))?;
            progress.inc(1);
            let start = object.meta.last_modified - summary.duration_micros;
            let mut segment = segment_of(
                job,
                object.key.clone(),
                start,
                summary.duration_micros as f64 / MICROS_PER_SECOND as f64,
                index as i64,
            );
            segment.width = summary.width as i32;
            segment.height = summary.height as i32;
            segment.size = size as i64;
            Ok::<_, String>(segment)
        })
        .buffered(job.concurrency.max(1))
        .try_collect()
        .await
}

pub async fn run(storage: &Storage, job: &ImportJob) -> Result<ImportSummary, String> {
    let started = Instant::now();
    let progress = progress_bar(0);
    let (source, segments) = match &job.source {
        ImportSource::Playlist(key) => (
            key.as_str(),
            from_playlist(storage, job, key, &progress).await?,
        ),
        ImportSource::Prefix(prefix) => (
            prefix.as_str(),
            from_prefix(storage, job, prefix, &progress).await?,
        ),
    };
    progress.set_position(0);
    let listed = segments.len();
    let now = chrono::Utc::now().timestamp_micros();
    let segments: Vec<proto::Segment> = segments
        .into_iter()
        .filter(|segment| retainable(segment, now))
        .collect();

    let mut client = RecordIndexClient::connect(job.server.clone())
        .await
        .map_err(|err| format!("connecting to {}: {err}", job.server))?;
    let mut summary = ImportSummary {
        listed,
        out_of_retention: listed - segments.len(),
        ..Default::default()
    };
    progress.set_message("registering");
    for batch in segments.chunks(BATCH) {
        let mut request = tonic::Request::new(proto::RegisterLiveStreamRecordSegmentsRequest {
            domain_name: job.domain.clone(),
            app_name: job.app.clone(),
            stream_name: job.stream.clone(),
            segments: batch.to_vec(),
            client_token: String::new(),
        });
        if let Some(key) = &job.api_key {
            let value = format!("Bearer {key}")
                .parse()
                .map_err(|_| "the API key is not valid header text".to_string())?;
            request.metadata_mut().insert("authorization", value);
        }
        let answer = client
            .register_live_stream_record_segments(request)
            .await
            .map_err(|status| format!("registering: {}", status.message()))?
            .into_inner();
        summary.accepted += answer.accepted as usize;
        summary.duplicates += answer.duplicates as usize;
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {}: {} segments listed, {} new, {} already registered, {} outside the 90 days kept, in {:.1} s ({:.0} segments/s)",
        source,
        summary.listed,
        summary.accepted,
        summary.duplicates,
        summary.out_of_retention,
        seconds,
        summary.listed as f64 / seconds.max(1e-9)
    );
    Ok(summary)
}
