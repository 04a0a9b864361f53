//! The test recording: MPEG-TS segments cut by ffmpeg once and kept under
//! the target dir.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;

use super::checks::Playlist;
use super::tools::{FFMPEG, require};

pub const MEDIA_WIDTH: i32 = 640;
pub const MEDIA_HEIGHT: i32 = 360;
pub const MEDIA_FPS: f64 = 25.0;

/// One MPEG-TS segment of the test recording.
pub struct MediaSegment {
    /// `segNNN.ts`
    pub file_name: String,
    pub bytes: Bytes,
    /// Seconds, as ffmpeg's own playlist states it.
    pub duration: f64,
}

impl MediaSegment {
    /// Video frames in the segment: the recording has a constant frame rate
    /// and cuts on whole GOPs.
    pub fn frames(&self) -> u64 {
        (self.duration * MEDIA_FPS).round() as u64
    }
}

/// About 60 s of 640x360 H.264 video at 25 fps, cut into 10 segments of 6 s
/// with a keyframe every second, as a live recorder would upload it.
pub struct Media {
    pub segments: Vec<MediaSegment>,
}

impl Media {
    /// Writes the segments as `dir/segNNN.ts`, as a recorder writing to a
    /// local directory leaves them.
    pub fn write_to(&self, dir: &Path) {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        for segment in &self.segments {
            let path = dir.join(&segment.file_name);
            fs::write(&path, &segment.bytes)
                .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        }
    }
}

static MEDIA: OnceLock<Media> = OnceLock::new();

pub fn media() -> &'static Media {
    MEDIA.get_or_init(load_media)
}

/// The media is kept under the target dir between runs (it never changes),
/// built into a scratch dir and renamed into place so concurrent test
/// binaries never read a half-written set.
fn load_media() -> Media {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cached = root.join("media-testsrc2-640x360-25fps-6s-x10");
    if !cached.join("index.m3u8").is_file() {
        let scratch = tempfile::Builder::new()
            .prefix("media-")
            .tempdir_in(root)
            .expect("scratch dir for media")
            .keep();
        generate_media(&scratch);
        if fs::rename(&scratch, &cached).is_err() {
            let _ = fs::remove_dir_all(&scratch);
        }
    }
    read_media(&cached)
}

fn generate_media(dir: &Path) {
    let ffmpeg = require(FFMPEG);
    let output = Command::new(ffmpeg)
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "60",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-b:v", "200k", "-pix_fmt", "yuv420p",
        ])
        .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        .args(["-f", "hls", "-hls_time", "6", "-hls_list_size", "0"])
        .args(["-hls_segment_filename", "seg%03d.ts", "index.m3u8"])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_media(dir: &Path) -> Media {
    let playlist = fs::read_to_string(dir.join("index.m3u8")).expect("ffmpeg's playlist");
    let playlist = Playlist::parse(&playlist);
    let segments: Vec<MediaSegment> = playlist
        .entries
        .iter()
        .map(|entry| MediaSegment {
            file_name: entry.uri.clone(),
            bytes: fs::read(dir.join(&entry.uri)).expect("segment file").into(),
            duration: entry.duration,
        })
        .collect();
    assert_eq!(
        segments.len(),
        10,
        "ffmpeg cut {} segments, expected 10",
        segments.len()
    );
    Media { segments }
}
