//! The README's quickstart, run as a user would paste it: the server in
//! local mode in one directory, the quickstart's commands in another
//! terminal in that same directory. If the README drifts from the binary,
//! this fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// The line that marks the quickstart's fenced bash block in README.md.
const MARKER: &str = "<!-- quickstart -->";
/// The address the quickstart's commands use: the server's default.
const DEFAULT_ADDRESS: &str = "localhost:50051";
/// The playback listener's address in local mode, as the quickstart's
/// playback URL names it.
const DEFAULT_PLAYBACK: &str = "127.0.0.1:8080";

/// The commands of the quickstart: every fenced bash block that follows a
/// marker line, in order, minus the `cargo run` that starts the server (the
/// test starts the built binary itself).
fn quickstart_commands() -> String {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", readme_path.display()));
    let mut commands = String::new();
    let mut blocks = 0;
    let mut lines = readme.lines();
    while lines.by_ref().any(|line| line.trim() == MARKER) {
        assert_eq!(
            lines.next().map(str::trim),
            Some("```bash"),
            "the line after `{MARKER}` must open a ```bash block"
        );
        let mut closed = false;
        for line in lines.by_ref() {
            if line.trim() == "```" {
                closed = true;
                break;
            }
            // The test starts the server itself; other `cargo run` lines run
            // the binary the test was built with.
            let line = line.trim_start();
            if line.starts_with("cargo run --release -- serve") {
                continue;
            }
            let line = match line.strip_prefix("cargo run --release --") {
                Some(rest) => format!("{:?}{rest}", env!("CARGO_BIN_EXE_record-index")),
                None => line.to_string(),
            };
            commands.push_str(&line);
            commands.push('\n');
        }
        assert!(closed, "a quickstart block is not closed with ```");
        blocks += 1;
    }
    assert!(
        blocks > 0,
        "README.md has no `{MARKER}` line before its quickstart"
    );
    assert!(
        commands.contains(DEFAULT_ADDRESS),
        "the quickstart never talks to {DEFAULT_ADDRESS}:\n{commands}"
    );
    commands
}

/// The playlist path in the `"RecordUrl": "file://..."` line grpcurl printed.
fn record_url_path(stdout: &str) -> PathBuf {
    let url = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("\"RecordUrl\": \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the quickstart printed no RecordUrl:\n{stdout}"));
    let path = url
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("RecordUrl {url:?} of the local store is not a file:// URL"));
    PathBuf::from(percent_decode(path))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).expect("UTF-8 path")
}

#[tokio::test]
async fn readme_quickstart_runs_and_writes_a_playlist() {
    let commands = quickstart_commands();
    require(GRPCURL);
    let makes_media = commands.contains("ffmpeg");
    if makes_media {
        require(FFMPEG);
        require(FFPROBE);
    }
    if commands.contains("curl ") {
        require(CURL);
    }
    let server = Server::start_local_mode().await;
    let playback = server.playback_addr().await.to_string();
    let script = commands
        .replace(DEFAULT_ADDRESS, &server.addr.to_string())
        .replace(DEFAULT_PLAYBACK, &playback);

    // Twice in the same directory: a user who runs it again must get the
    // same result, not an error from what the first run left behind.
    let mut last_stdout = String::new();
    for attempt in 1..=2 {
        let output = run(
            tokio::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(&server.workdir),
            Duration::from_secs(120),
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "run {attempt} of the quickstart failed ({}):\n--- script ---\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            output.status
        );
        assert!(
            stdout.contains("#EXT-X-ENDLIST"),
            "run {attempt} of the quickstart did not print a complete playlist:\n{stdout}\n{stderr}"
        );
        last_stdout = stdout.into_owned();
        if attempt == 1 {
            // `date +%s` must move on, so the second run names a new stream.
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    let stdout = last_stdout;

    let playlist_path = record_url_path(&stdout);
    let data_dir = server
        .workdir
        .join("data")
        .canonicalize()
        .expect("./data exists");
    assert!(
        playlist_path.starts_with(&data_dir) || playlist_path.starts_with(&server.workdir),
        "the playlist {} is not under ./data",
        playlist_path.display()
    );
    // What `cat` printed is a whole playlist of the three segments.
    assert_eq!(stdout.matches("#EXTINF:6.000,").count() % 3, 0, "{stdout}");
    assert!(stdout.contains("#EXTM3U\n#EXT-X-VERSION:3\n"), "{stdout}");

    // A quickstart that records real media promises a playlist that plays:
    // its own ffprobe read the whole 18 s through the playlist.
    if makes_media {
        assert!(
            stdout.contains("duration=18.000000"),
            "ffprobe did not play 18 s:\n{stdout}"
        );
    }

    // The playback URL: the playlist made per request points at segments
    // the listener serves, and ffprobe played all of them over HTTP.
    if commands.contains(DEFAULT_PLAYBACK) {
        assert!(
            makes_media,
            "the playback step plays media the quickstart makes"
        );
        let segment_uris: Vec<&str> = stdout
            .lines()
            .filter(|line| line.starts_with("/objects/localhost/demo-bucket/live/demo-"))
            .collect();
        assert_eq!(segment_uris.len(), 3, "{stdout}");
        assert!(
            segment_uris.iter().all(|uri| uri.ends_with(".ts")),
            "{stdout}"
        );
        assert!(stdout.contains("nb_read_frames=450\n"), "{stdout}");
        assert_eq!(
            stdout.matches("duration=18.000000").count(),
            2,
            "the file and the HTTP playlist both play 18 s:\n{stdout}"
        );
    }

    // The import registered ffmpeg's own playlist of the recording.
    if commands.contains(" import ") {
        assert!(
            stdout.contains("3 segments listed, 3 new, 0 already registered"),
            "{stdout}"
        );
    }
    if commands.contains("keys new") {
        assert!(
            stdout.contains("[[accounts.keys]]\nsha256 = \""),
            "{stdout}"
        );
    }

    // The lifecycle calls saw the recording and the manifest, and the
    // delete with RemoveFile took the playlist away but left the media.
    if commands.contains("DeleteLiveStreamRecordIndexFiles") {
        assert!(stdout.contains("\"RecordContentInfoList\""), "{stdout}");
        assert!(stdout.contains("\"Duration\": 18"), "{stdout}");
        assert!(stdout.contains("\"RecordIndexInfo\""), "{stdout}");
        assert!(stdout.contains("\"TotalNum\": 1"), "{stdout}");
        assert!(stdout.contains("\"Message\": \"OK\""), "{stdout}");
        assert!(
            !playlist_path.exists(),
            "{} survived RemoveFile",
            playlist_path.display()
        );
        if makes_media {
            assert!(playlist_path.with_file_name("000.ts").exists());
        }
    } else {
        let playlist = std::fs::read_to_string(&playlist_path).expect("read the playlist");
        assert!(
            stdout.contains(&playlist),
            "the quickstart printed another playlist than it wrote:\n{playlist}"
        );
    }
}
