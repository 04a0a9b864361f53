//! Checking what a user sees: what a player reads through a playlist,
//! errors as a client matches on them, and health as a load balancer asks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_types::{ErrorInfo, StatusExt};

use super::tools::{FFPROBE, require, run};

/// What ffprobe, standing in for a player, reads through a playlist.
#[derive(Debug)]
pub struct Probe {
    pub duration: f64,
    pub frames: u64,
    pub width: i32,
    pub height: i32,
    /// Errors ffprobe reported while reading, e.g. a segment it could not
    /// fetch.
    pub errors: String,
}

pub async fn ffprobe(url: &str) -> Probe {
    let ffprobe = require(FFPROBE);
    let output = run(
        tokio::process::Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-protocol_whitelist",
                "file,http,https,tcp,tls,crypto",
            ])
            .args(["-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=nb_read_frames,width,height:format=duration",
            ])
            .args(["-of", "default=noprint_wrappers=1", url]),
        Duration::from_secs(120),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "ffprobe {url} failed: {errors}");
    // An HLS input lists its streams twice (per program and overall); the
    // first value of each key is the one.
    let mut values = BTreeMap::new();
    for line in stdout.lines() {
        if let Some((key, value)) = line.split_once('=') {
            values
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    let field = |key: &str| {
        values
            .get(key)
            .unwrap_or_else(|| panic!("ffprobe {url} printed no {key}:\n{stdout}\n{errors}"))
            .clone()
    };
    Probe {
        duration: field("duration").parse().expect("duration in seconds"),
        frames: field("nb_read_frames").parse().expect("frame count"),
        width: field("width").parse().expect("width"),
        height: field("height").parse().expect("height"),
        errors,
    }
}

/// A video frame ffprobe decoded through a playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    pub key_frame: bool,
    /// `I`, `P` or `B`.
    pub pict_type: String,
}

/// Every video frame ffprobe decodes reading `url` as a player would, and
/// the errors it reported.
pub async fn ffprobe_frames(url: &str) -> (Vec<DecodedFrame>, String) {
    let ffprobe = require(FFPROBE);
    let output = run(
        tokio::process::Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-protocol_whitelist",
                "file,http,https,tcp,tls,crypto",
            ])
            .args(["-select_streams", "v:0"])
            .args(["-show_entries", "frame=key_frame,pict_type"])
            .args(["-of", "csv=p=0", url]),
        Duration::from_secs(120),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "ffprobe {url} failed: {errors}");
    // A frame's line may end in an empty field (its side data); lines of
    // side data alone are empty.
    let frames = stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',').filter(|field| !field.is_empty());
            let key_frame = fields.next()?;
            Some(DecodedFrame {
                key_frame: key_frame == "1",
                pict_type: fields.next().unwrap_or_default().to_string(),
            })
        })
        .collect();
    (frames, errors)
}

/// One media segment line of an M3U8 playlist with the tags before it.
#[derive(Debug, Clone)]
pub struct PlaylistEntry {
    pub duration: f64,
    pub uri: String,
    /// `#EXT-X-DISCONTINUITY` precedes this segment.
    pub discontinuity: bool,
    pub program_date_time: Option<String>,
}

/// The parts of an M3U8 playlist the tests check.
#[derive(Debug)]
pub struct Playlist {
    pub lines: Vec<String>,
    pub entries: Vec<PlaylistEntry>,
}

impl Playlist {
    pub fn parse(text: &str) -> Playlist {
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect();
        let mut entries = Vec::new();
        let (mut duration, mut discontinuity, mut program_date_time) = (None, false, None);
        for line in &lines {
            if let Some(extinf) = line.strip_prefix("#EXTINF:") {
                let seconds = extinf.split(',').next().unwrap_or_default();
                duration = Some(
                    seconds
                        .parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad EXTINF line {line:?}")),
                );
            } else if line == "#EXT-X-DISCONTINUITY" {
                discontinuity = true;
            } else if let Some(time) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                program_date_time = Some(time.to_string());
            } else if !line.is_empty() && !line.starts_with('#') {
                let duration = duration
                    .take()
                    .unwrap_or_else(|| panic!("segment {line:?} has no #EXTINF"));
                entries.push(PlaylistEntry {
                    duration,
                    uri: line.clone(),
                    discontinuity,
                    program_date_time: program_date_time.take(),
                });
                discontinuity = false;
            }
        }
        Playlist { lines, entries }
    }

    /// The value of the first `#TAG:value` line.
    pub fn tag(&self, tag: &str) -> Option<&str> {
        let prefix = format!("{tag}:");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    pub fn has_line(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    pub fn total_duration(&self) -> f64 {
        self.entries.iter().map(|e| e.duration).sum()
    }

    pub fn uris(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.uri.as_str()).collect()
    }
}

/// The request id a response or error carried in its `x-request-id`
/// metadata: an upper-case UUID.
pub fn request_id(metadata: &tonic::metadata::MetadataMap) -> String {
    let id = metadata
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in response metadata {metadata:?}"))
        .to_str()
        .expect("x-request-id is ASCII")
        .to_string();
    assert_upper_case_uuid(&id);
    id
}

pub fn assert_upper_case_uuid(id: &str) {
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id:?} is not a UUID");
    assert_eq!(id, id.to_uppercase(), "request id {id:?} is not upper case");
}

/// Checks an error the way a client matches on it: the gRPC code, the
/// message starting with the error code, and the ErrorInfo detail carrying
/// that code, the domain, and the same request id as the metadata.
pub fn assert_error(status: &tonic::Status, code: tonic::Code, error_code: &str) -> ErrorInfo {
    assert_eq!(status.code(), code, "gRPC code of {status:?}");
    assert!(
        status.message().starts_with(&format!("{error_code}: ")) || status.message() == error_code,
        "message {:?} does not start with {error_code:?}",
        status.message()
    );
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no google.rpc.ErrorInfo in the details of {status:?}"));
    assert_eq!(info.reason, error_code, "ErrorInfo.reason");
    assert_eq!(info.domain, "recordindex", "ErrorInfo.domain");
    let id = request_id(status.metadata());
    assert_eq!(
        info.metadata.get("RequestId"),
        Some(&id),
        "ErrorInfo RequestId vs x-request-id"
    );
    assert!(
        info.metadata
            .get("HttpStatus")
            .is_some_and(|s| s.parse::<u16>().is_ok()),
        "ErrorInfo metadata has no numeric HttpStatus: {:?}",
        info.metadata
    );
    info
}

// ---------------------------------------------------------------------------
// Health, as a load balancer asks
// ---------------------------------------------------------------------------

pub use tonic_health::pb::health_check_response::ServingStatus;

/// What the server at `url` answers to grpc.health.v1 `Check` for the
/// RecordIndex service, through the standard health client; an error when
/// it cannot be asked (not listening, no answer within 5 s).
pub async fn health_status(url: &str) -> Result<ServingStatus, String> {
    let check = async {
        let channel = Channel::from_shared(url.to_string())
            .map_err(|e| format!("{url}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let answer = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: "recordindex.v1.RecordIndex".into(),
            })
            .await
            .map_err(|status| format!("{status:?}"))?
            .into_inner();
        ServingStatus::try_from(answer.status).map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(5), check)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

/// Asks the health of the server at `url` every 100 ms until it is
/// `wanted`, and returns how long that took; fails the test when it still
/// is not after `within`.
pub async fn await_health(url: &str, wanted: ServingStatus, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = health_status(url).await;
        if status == Ok(wanted) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "grpc health of {url} is {status:?}, not {wanted:?}, {within:?} after asking"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
