//! `record-index import`: reads an existing recording's playlist from
//! object storage and registers its segments with a running service over
//! gRPC. Registration is idempotent, so an interrupted import is resumed by
//! running it again.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};

use super::playlist::{self, ListedSegment};
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
    /// Key of the recorder's playlist.
    pub playlist: String,
    /// Object-storage requests in flight at once.
    pub concurrency: usize,
}

/// Counts for the closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub listed: usize,
    pub accepted: usize,
    pub duplicates: usize,
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

pub async fn run(storage: &Storage, job: &ImportJob) -> Result<ImportSummary, String> {
    let started = Instant::now();
    let text = storage
        .get(&job.endpoint, &job.bucket, &job.playlist, None)
        .await
        .map_err(|err| format!("reading playlist {}: {err}", job.playlist))?;
    let text = String::from_utf8(text.body.to_vec())
        .map_err(|_| format!("{} is not UTF-8 text", job.playlist))?;
    let listed =
        playlist::parse(&text, &job.playlist).map_err(|err| format!("{}: {err}", job.playlist))?;

    let progress = ProgressBar::new(listed.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} segments, {per_sec}, eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    progress.set_message("reading start times");
    let segments: Vec<proto::Segment> = futures::stream::iter(listed.iter())
        .map(|segment| async move {
            let start = start_of(storage, job, segment).await?;
            Ok::<_, String>(proto::Segment {
                oss_endpoint: job.endpoint.clone(),
                oss_bucket: job.bucket.clone(),
                oss_object: segment.key.clone(),
                start_time: time::format_program_date_time(start),
                duration: segment.duration,
                sequence: segment.sequence.max(0),
                format: "ts".into(),
                ..Default::default()
            })
        })
        .buffered(job.concurrency.max(1))
        .try_collect()
        .await?;

    let mut client = RecordIndexClient::connect(job.server.clone())
        .await
        .map_err(|err| format!("connecting to {}: {err}", job.server))?;
    let mut summary = ImportSummary {
        listed: listed.len(),
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
        "imported {}: {} segments listed, {} new, {} already registered, in {:.1} s ({:.0} segments/s)",
        job.playlist,
        summary.listed,
        summary.accepted,
        summary.duplicates,
        seconds,
        summary.listed as f64 / seconds.max(1e-9)
    );
    Ok(summary)
}
