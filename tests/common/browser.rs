//! Playlists as players on the web see them: a real browser (Debian's
//! Chromium, headless, driven by Playwright for Python) playing them
//! through hls.js, and npm's hls-parser reading them in strict mode. Both
//! npm packages live in `tests/js`; the page and its driver in
//! `tests/browser`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use super::tools::{CHROMIUM, NODE, require, require_npm_packages, require_playwright, run};

/// What the test page saw while hls.js played a playlist.
#[derive(Debug)]
pub struct BrowserPlay {
    /// The video element's `currentTime` when playback stopped: at `ended`,
    /// where the media ends.
    pub current_time: f64,
    /// hls.js `FRAG_LOADED` events: segments fetched and handed on.
    pub fragments_loaded: usize,
    /// Seconds from the start of the timeline to the first buffered media,
    /// where playback starts: the first picture's delay after its
    /// fragment's start (two frames with the test media's B-frames), more
    /// when leading frames could not be decoded.
    pub start_gap: f64,
    /// In order: every hls.js `ERROR` event (fatal or not), errors of the
    /// video element, a refused `play()` and uncaught exceptions, but for
    /// the stalls below.
    pub errors: Vec<String>,
    /// hls.js `bufferStalledError`s with the media a second ahead of the
    /// playhead (or up to the end) already buffered: the browser's decoder
    /// falling behind on a busy machine, which says nothing of the media
    /// or the playlist. A stall short of media is in `errors`.
    pub stalls: Vec<String>,
    /// The video element fired `ended` before the deadline.
    pub ended: bool,
    /// The page's console lines (the browser's own account of a refused
    /// request, say), for failure messages.
    pub console: Vec<String>,
}

/// How [`play_in_browser_with`] plays.
#[derive(Clone, Debug)]
pub struct PlayOptions {
    /// Whether the browser enforces the same-origin policy (on by
    /// default). The test page is served from an origin of its own, as a
    /// player's page is, while the playlists come from the playback
    /// listener and the segments from SeaweedFS or the listener: with it
    /// on, they play only when each answers the page's origin with CORS
    /// headers.
    pub web_security: bool,
    /// The port of the page's origin, `http://127.0.0.1:{port}`, for a
    /// test whose servers must name that origin in their CORS rules
    /// (see [`page_origin`]); any free port when `None`.
    pub page_port: Option<u16>,
    /// Media seconds played per second. Real time (1) by default: faster,
    /// the decoder of a busy machine falls behind and hls.js reports
    /// stalls with the whole range buffered.
    pub playback_rate: f64,
    /// How long playing may take before the page's state is read as it is
    /// (`ended` false); the browser's start comes on top.
    pub deadline: Duration,
}

impl Default for PlayOptions {
    fn default() -> PlayOptions {
        PlayOptions {
            web_security: true,
            page_port: None,
            playback_rate: 1.0,
            deadline: Duration::from_secs(60),
        }
    }
}

impl PlayOptions {
    /// The defaults, with the page on `http://127.0.0.1:{page_port}`.
    pub fn on_page_port(page_port: u16) -> PlayOptions {
        PlayOptions {
            page_port: Some(page_port),
            ..PlayOptions::default()
        }
    }
}

/// The origin of a test page served on `page_port`, as the browser sends
/// it in `Origin` and CORS rules name it.
pub fn page_origin(page_port: u16) -> String {
    format!("http://127.0.0.1:{page_port}")
}

/// Plays `playlist_url` in headless Chromium through hls.js, muted and
/// started by itself, from a page on `page_port` (see [`page_origin`]),
/// until the video ends, a fatal error stops it, or the deadline of
/// [`PlayOptions::default`] passes.
pub async fn play_in_browser(playlist_url: &str, page_port: u16) -> BrowserPlay {
    play_in_browser_with(playlist_url, &PlayOptions::on_page_port(page_port)).await
}

/// [`play_in_browser`] with options.
pub async fn play_in_browser_with(playlist_url: &str, options: &PlayOptions) -> BrowserPlay {
    let chromium = require(CHROMIUM);
    let python = require_playwright();
    let npm = require_npm_packages(&["hls.js"]);
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");

    // The page and hls.js in a directory of their own, which the driver
    // serves on a loopback port.
    let page = tempfile::Builder::new()
        .prefix("record-index-player-")
        .tempdir()
        .expect("temp dir for the test page");
    copy(
        &browser_dir.join("player.html"),
        &page.path().join("player.html"),
    );
    copy(
        &npm.join("node_modules/hls.js/dist/hls.min.js"),
        &page.path().join("hls.min.js"),
    );

    let mut command = tokio::process::Command::new(python);
    command
        .arg(browser_dir.join("play.py"))
        .arg("--chromium")
        .arg(&chromium)
        .arg("--page-dir")
        .arg(page.path())
        .args(["--playlist", playlist_url])
        .args(["--rate", &options.playback_rate.to_string()])
        .args(["--deadline", &options.deadline.as_secs_f64().to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if !options.web_security {
        command.arg("--disable-web-security");
    }
    if let Some(port) = options.page_port {
        command.args(["--page-port", &port.to_string()]);
    }
    // Starting Chromium on a busy machine takes seconds of its own.
    let output = run(&mut command, options.deadline + Duration::from_secs(60)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser did not run ({}):\n{stdout}\n{stderr}",
        output.status
    );

    #[derive(Deserialize)]
    struct Reported {
        ended: bool,
        current_time: f64,
        fragments: Vec<serde_json::Value>,
        start_gap: f64,
        errors: Vec<String>,
        stalls: Vec<String>,
        console: Vec<String>,
    }
    let reported: Reported = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the browser driver printed no state ({e}):\n{stdout}\n{stderr}")
    });
    for stall in &reported.stalls {
        eprintln!("[browser] {playlist_url}: {stall}");
    }
    BrowserPlay {
        current_time: reported.current_time,
        fragments_loaded: reported.fragments.len(),
        start_gap: reported.start_gap,
        errors: reported.errors,
        stalls: reported.stalls,
        ended: reported.ended,
        console: reported.console,
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

/// The kind of playlist a text must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistKind {
    /// Segments (RFC 8216 section 4.3.3).
    Media,
    /// Variants pointing at media playlists (section 4.3.4).
    Master,
}

/// What hls-parser, in strict mode, made of a playlist.
#[derive(Debug, Deserialize)]
pub struct HlsParse {
    /// Why the parser refused the playlist, or it is not of the kind asked
    /// for; empty when it was accepted.
    pub errors: Vec<String>,
    /// `#EXT-X-VERSION`.
    pub version: Option<u32>,
    /// Media playlists: segments, `#EXT-X-PLAYLIST-TYPE`, `#EXT-X-ENDLIST`,
    /// `#EXT-X-TARGETDURATION`, and segments with `#EXT-X-BYTERANGE`.
    pub segments: usize,
    pub playlist_type: Option<String>,
    pub endlist: bool,
    pub target_duration: Option<f64>,
    pub byte_ranges: usize,
    /// `#EXT-X-I-FRAMES-ONLY`, and the segments an `#EXT-X-MAP` applies to.
    pub iframes_only: bool,
    pub maps: usize,
    /// Master playlists: the variants' URIs, and those of the I-frame
    /// playlists (`#EXT-X-I-FRAME-STREAM-INF`).
    pub variants: Vec<String>,
    pub iframe_variants: Vec<String>,
}

/// Parses `text` with hls-parser in strict mode (`setOptions({strictMode:
/// true})`), where any violation of RFC 8216 it knows is an error, and
/// checks it is a playlist of `kind` with at least one segment or variant.
pub async fn hls_parse(text: &str, kind: PlaylistKind) -> HlsParse {
    use tokio::io::AsyncWriteExt;

    let node = require(NODE);
    let script = require_npm_packages(&["hls-parser"]).join("parse-playlist.js");
    let kind = match kind {
        PlaylistKind::Media => "media",
        PlaylistKind::Master => "master",
    };
    let mut child = tokio::process::Command::new(node)
        .arg(&script)
        .arg(kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not run node {}: {e}", script.display()));
    let mut stdin = child.stdin.take().expect("node's stdin");
    let parse = async {
        stdin.write_all(text.as_bytes()).await?;
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(Duration::from_secs(30), parse)
        .await
        .expect("hls-parser did not finish within 30 s")
        .expect("run hls-parser");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{} printed no result ({e}): {stdout}", script.display()))
}

/// [`hls_parse`], failing the test with the parser's errors and the
/// playlist when it refuses it.
pub async fn assert_strict_hls(text: &str, kind: PlaylistKind) -> HlsParse {
    let parsed = hls_parse(text, kind).await;
    assert!(
        parsed.errors.is_empty(),
        "hls-parser (strict) refused a {kind:?} playlist: {:?}\n{text}",
        parsed.errors
    );
    parsed
}
