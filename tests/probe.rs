//! The MPEG-TS probe against real media made by ffmpeg at test time, with
//! ffprobe as the reference for timestamps and keyframe positions.

use std::path::{Path, PathBuf};
use std::process::Command;

use record_index::media::{
    Keyframe, PACKET_SIZE, Probe, ProbeError, Summary, VideoCodec, probe, probe_head_tail,
    pts_delta,
};

const WRAP: i64 = 1 << 33;
const PAT_PID: u16 = 0;
const NULL_PID: u16 = 0x1FFF;
/// One frame at 25 fps, in microseconds.
const FRAME_MICROS: i64 = 40_000;

/// Runs a tool with whitespace-separated arguments and returns its stdout.
fn run(dir: &Path, program: &str, args: &str) -> Vec<u8> {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); install it: apt-get install -y ffmpeg")
        });
    assert!(
        out.status.success(),
        "{program} {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ffmpeg(dir: &Path, args: &str) {
    run(
        dir,
        "ffmpeg",
        &format!("-hide_banner -loglevel error -y {args}"),
    );
}

/// An H.264 test picture of `size` at 25 fps, a keyframe every second.
fn h264_ts(dir: &Path, name: &str, size: &str, seconds: &str, extra: &str) -> PathBuf {
    ffmpeg(
        dir,
        &format!(
            "-f lavfi -i testsrc2=size={size}:rate=25 -t {seconds} -c:v libx264 \
             -preset ultrafast -pix_fmt yuv420p -g 25 {extra} -f mpegts {name}"
        ),
    );
    dir.join(name)
}

/// 12 s of 640x360 H.264 cut by ffmpeg's HLS muxer into two 6 s segments.
fn hls_segments(dir: &Path) -> Vec<PathBuf> {
    ffmpeg(
        dir,
        "-f lavfi -i testsrc2=size=640x360:rate=25 -t 12 -c:v libx264 -preset ultrafast \
         -pix_fmt yuv420p -g 25 -f hls -hls_time 6 -hls_segment_filename seg_%d.ts seg.m3u8",
    );
    vec![dir.join("seg_0.ts"), dir.join("seg_1.ts")]
}

/// One video packet as ffprobe sees it: PTS (33-bit), byte position, keyframe.
struct FfPacket {
    pts: u64,
    pos: u64,
    key: bool,
}

fn ffprobe_video_packets(path: &Path) -> Vec<FfPacket> {
    let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap());
    let out = run(
        dir,
        "ffprobe",
        &format!(
            "-v error -select_streams v:0 -show_entries packet=pts,pos,flags -of csv=p=0 {}",
            name.to_str().unwrap()
        ),
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            // ffprobe unwraps timestamps that cross 2^33; the stream does not.
            let pts: i64 = fields[0].parse().unwrap();
            FfPacket {
                pts: pts.rem_euclid(WRAP) as u64,
                pos: fields[1].parse().unwrap(),
                key: fields[2].starts_with('K'),
            }
        })
        .collect()
}

/// First and last PTS in presentation order, and keyframes (pos, pts), as
/// ffprobe reports them.
fn ffprobe_expectations(path: &Path) -> (u64, u64, Vec<(u64, u64)>) {
    let packets = ffprobe_video_packets(path);
    let anchor = packets[0].pts;
    let rel = |pts: u64| pts_delta(anchor, pts);
    let first = packets.iter().min_by_key(|p| rel(p.pts)).unwrap().pts;
    let last = packets.iter().max_by_key(|p| rel(p.pts)).unwrap().pts;
    let keys = packets
        .iter()
        .filter(|p| p.key)
        .map(|p| (p.pos, p.pts))
        .collect();
    (first, last, keys)
}

/// Profile name and level of the video stream as ffprobe reports them
/// (level_idc for H.264, general_level_idc for H.265).
fn ffprobe_profile_level(path: &Path) -> (String, u32) {
    let (dir, name) = (path.parent().unwrap(), path.file_name().unwrap());
    let out = run(
        dir,
        "ffprobe",
        &format!(
            "-v error -select_streams v:0 -show_entries stream=profile,level -of csv=p=0 {}",
            name.to_str().unwrap()
        ),
    );
    // MPEG-TS streams are listed again under their program; the first line
    // is enough.
    let out = String::from_utf8(out).unwrap();
    let line = out.lines().next().unwrap_or_default();
    let (profile, level) = line.rsplit_once(',').expect("profile,level");
    (profile.to_string(), level.parse().unwrap())
}

/// The codec string agrees with ffprobe's profile and level: for H.264
/// `avc1.` then profile_idc, constraint flags and level_idc as hex, for H.265
/// `hvc1.` then profile, compatibility flags, tier and level, then
/// constraint bytes in hex.
fn assert_codec_string_like_ffprobe(path: &Path, probe: &Probe) {
    let (profile, level) = ffprobe_profile_level(path);
    let s = &probe.codec_string;
    match probe.codec {
        VideoCodec::H264 => {
            let hex = s.strip_prefix("avc1.").unwrap_or_else(|| panic!("{s}"));
            assert_eq!(hex.len(), 6, "{s}");
            assert_eq!(hex, hex.to_uppercase(), "{s}");
            let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
            let profile_idc = match profile.as_str() {
                "Baseline" | "Constrained Baseline" => 66,
                "Main" => 77,
                "High" => 100,
                other => panic!("unexpected H.264 profile {other} of {path:?}"),
            };
            assert_eq!(byte(0), profile_idc, "{s} is not {profile}");
            if profile == "Constrained Baseline" {
                assert_ne!(byte(1) & 0x40, 0, "{s}: constraint_set1_flag");
            }
            assert_eq!(u32::from(byte(2)), level, "{s} vs ffprobe level {level}");
        }
        VideoCodec::H265 => {
            assert_eq!(profile, "Main", "{path:?}");
            let prefix = format!("hvc1.1.6.L{level}");
            let rest = s
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{s} does not start with {prefix}"));
            // Constraint bytes, if any: each `.` and one or two hex digits,
            // the last not zero.
            let bytes: Vec<&str> = rest.split('.').skip(1).collect();
            assert!(rest.is_empty() || rest.starts_with('.'), "{s}");
            for byte in &bytes {
                assert!(
                    (1..=2).contains(&byte.len())
                        && byte
                            .chars()
                            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
                    "{s}"
                );
            }
            assert_ne!(bytes.last(), Some(&"0"), "{s}");
        }
    }
}

fn assert_like_ffprobe(path: &Path, probe: &Probe) {
    assert_codec_string_like_ffprobe(path, probe);
    let (first, last, keys) = ffprobe_expectations(path);
    assert_eq!(probe.first_pts, first, "first PTS of {path:?}");
    assert_eq!(probe.last_pts, last, "last PTS of {path:?}");
    let ours: Vec<(u64, u64)> = probe.keyframes.iter().map(|k| (k.offset, k.pts)).collect();
    assert_eq!(ours, keys, "keyframes of {path:?}");
    assert_ends_like_ffprobe(path, probe);
}

/// Each keyframe's PES ends where ffprobe's next video packet starts (its
/// `pos` is the TS packet that opens the PES), the last one at the end of
/// the file.
fn assert_ends_like_ffprobe(path: &Path, probe: &Probe) {
    let packets = ffprobe_video_packets(path);
    let len = std::fs::metadata(path).unwrap().len();
    for key in &probe.keyframes {
        let at = packets
            .iter()
            .position(|p| p.pos == key.offset)
            .unwrap_or_else(|| panic!("no video packet at {} in {path:?}", key.offset));
        let next = packets.get(at + 1).map_or(len, |p| p.pos);
        assert_eq!(
            key.end, next,
            "end of the keyframe at {} of {path:?}",
            key.offset
        );
    }
}

/// `tables_offset..tables_end` of every keyframe is a PAT, then the PMT
/// ending in the range's last packet: what a decoder needs to read the
/// keyframe alone.
fn assert_tables_are_pat_then_pmt(ts: &[u8], probe: &Probe) {
    let pmt = pmt_pid(ts);
    for key in &probe.keyframes {
        assert_eq!(
            key.tables_offset.is_some(),
            key.tables_end.is_some(),
            "{key:?}"
        );
        let (Some(start), Some(end)) = (key.tables_offset, key.tables_end) else {
            continue;
        };
        let (start, end) = (start as usize, end as usize);
        assert!(end <= key.offset as usize && start < end, "{key:?}");
        assert_eq!(end % PACKET_SIZE, 0, "{key:?}");
        let pat = &ts[start..start + PACKET_SIZE];
        assert!(pid(pat) == PAT_PID && unit_start(pat), "{key:?}");
        let last = &ts[end - PACKET_SIZE..end];
        assert_eq!(pid(last), pmt, "{key:?}");
    }
}

fn pid(packet: &[u8]) -> u16 {
    u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2])
}

fn unit_start(packet: &[u8]) -> bool {
    packet[1] & 0x40 != 0
}

/// PMT PID of the first program, read straight from the first PAT packet.
fn pmt_pid(ts: &[u8]) -> u16 {
    let pat = ts
        .chunks(PACKET_SIZE)
        .find(|p| pid(p) == PAT_PID && unit_start(p))
        .expect("a PAT packet");
    let section = &pat[5 + usize::from(pat[4])..];
    u16::from(section[10] & 0x1F) << 8 | u16::from(section[11])
}

/// Where a decoder could start before `offset`, computed independently of
/// the probe: the last PAT packet followed by a PMT packet, both before it.
fn expected_tables_offset(ts: &[u8], offset: u64) -> Option<u64> {
    let pmt = pmt_pid(ts);
    let (mut last_pat, mut confirmed) = (None, None);
    for (i, packet) in ts.chunks(PACKET_SIZE).enumerate() {
        let at = (i * PACKET_SIZE) as u64;
        if at >= offset {
            break;
        }
        if unit_start(packet) && pid(packet) == PAT_PID {
            last_pat = Some(at);
        }
        if unit_start(packet) && pid(packet) == pmt && last_pat.is_some() {
            confirmed = last_pat;
        }
    }
    confirmed
}

fn null_packet() -> Vec<u8> {
    let [high, low] = NULL_PID.to_be_bytes();
    let mut packet = vec![0x47, high, low, 0x10];
    packet.resize(PACKET_SIZE, 0xFF);
    packet
}

/// Replaces the packets `which` selects (by packet index) with null packets.
fn null_out(ts: &[u8], which: impl Fn(usize, &[u8]) -> bool) -> Vec<u8> {
    ts.chunks(PACKET_SIZE)
        .enumerate()
        .flat_map(|(i, p)| {
            if which(i, p) {
                null_packet()
            } else {
                p.to_vec()
            }
        })
        .collect()
}

fn is_table(ts: &[u8], packet: &[u8]) -> bool {
    let p = pid(packet);
    p == PAT_PID || p == pmt_pid(ts)
}

fn assert_six_seconds(probe: &Probe) {
    assert!(
        (probe.duration_micros - 6_000_000).abs() <= FRAME_MICROS,
        "duration {} µs",
        probe.duration_micros
    );
}

#[test]
fn h264_hls_segments_match_ffprobe() {
    let dir = tempfile::tempdir().unwrap();
    for path in hls_segments(dir.path()) {
        let ts = std::fs::read(&path).unwrap();
        let probe = probe(&ts).unwrap();
        assert_eq!(probe.codec, VideoCodec::H264);
        assert_eq!((probe.width, probe.height), (640, 360));
        // x264's ultrafast preset uses no CABAC, B-frames or 8x8
        // transforms: Constrained Baseline, level 3.0 for 640x360 at 25 fps.
        assert_eq!(probe.codec_string, "avc1.42C01E");
        assert_eq!(probe.frames, 150);
        assert_six_seconds(&probe);
        assert_eq!(pts_delta(probe.first_pts, probe.last_pts), 149 * 3600);
        assert_eq!(probe.keyframes.len(), 6, "{:?}", probe.keyframes);
        let mut previous: Option<&Keyframe> = None;
        for key in &probe.keyframes {
            let tables = key.tables_offset.expect("PAT/PMT before every keyframe");
            assert!(tables < key.offset);
            assert_eq!(key.tables_offset, expected_tables_offset(&ts, key.offset));
            assert_eq!(key.offset % PACKET_SIZE as u64, 0);
            if let Some(previous) = previous {
                assert!(key.offset > previous.offset);
                assert!(pts_delta(previous.pts, key.pts) > 0);
            }
            previous = Some(key);
        }
        // The segment opens with its tables, then the first keyframe.
        let first = &probe.keyframes[0];
        assert!(first.tables_offset.unwrap() < 3 * PACKET_SIZE as u64);
        assert_eq!(first.pts, probe.first_pts);
        // ffmpeg writes the PAT and the PMT in two packets side by side.
        for key in &probe.keyframes {
            let tables = key.tables_offset.unwrap();
            assert_eq!(key.tables_end, Some(tables + 2 * PACKET_SIZE as u64));
            assert!(key.end > key.offset && key.end % PACKET_SIZE as u64 == 0);
        }
        assert_tables_are_pat_then_pmt(&ts, &probe);
        assert_like_ffprobe(&path, &probe);
    }
}

/// Runs ffprobe on `name` in `dir` and returns, per decoded video frame,
/// whether it is a keyframe and its picture type.
fn ffprobe_frames(dir: &Path, name: &str) -> Vec<(bool, String)> {
    let out = run(
        dir,
        "ffprobe",
        &format!(
            "-v error -select_streams v:0 -show_entries frame=key_frame,pict_type -of csv=p=0 {name}"
        ),
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',').filter(|f| !f.is_empty());
            let key = fields.next()?;
            Some((key == "1", fields.next().unwrap_or_default().to_string()))
        })
        .collect()
}

#[test]
fn each_keyframe_with_its_tables_decodes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let codecs = [
        ("avc.ts", "libx264"),
        ("hevc.ts", "libx265 -x265-params log-level=error"),
    ];
    for (name, codec) in codecs {
        ffmpeg(
            dir.path(),
            &format!(
                "-f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine=duration=3 -t 3 \
                 -c:v {codec} -preset ultrafast -pix_fmt yuv420p -g 25 -c:a aac -f mpegts {name}"
            ),
        );
        let ts = std::fs::read(dir.path().join(name)).unwrap();
        let probe = probe(&ts).unwrap();
        assert_eq!(probe.keyframes.len(), 3, "{name}");
        for (i, key) in probe.keyframes.iter().enumerate() {
            // What an I-frame playlist's entry hands a player: the tables of
            // EXT-X-MAP, then the keyframe's byte range.
            let tables = key.tables_offset.unwrap() as usize..key.tables_end.unwrap() as usize;
            let mut alone = ts[tables].to_vec();
            alone.extend_from_slice(&ts[key.offset as usize..key.end as usize]);
            let file = format!("{name}.key{i}.ts");
            std::fs::write(dir.path().join(&file), &alone).unwrap();
            let frames = ffprobe_frames(dir.path(), &file);
            assert_eq!(frames, [(true, "I".to_string())], "{file}");
        }
        assert_like_ffprobe(&dir.path().join(name), &probe);
    }
}

#[test]
fn h265_size_comes_from_the_conformance_window() {
    let encoders =
        String::from_utf8(run(Path::new("."), "ffmpeg", "-hide_banner -encoders")).unwrap();
    assert!(
        encoders.contains("libx265"),
        "this ffmpeg has no libx265; install Debian's ffmpeg: apt-get install -y ffmpeg"
    );
    let dir = tempfile::tempdir().unwrap();
    // HEVC codes 360 lines as 368 (a multiple of 8 at least) and crops.
    let path = dir.path().join("hevc.ts");
    ffmpeg(
        dir.path(),
        "-f lavfi -i testsrc2=size=640x360:rate=25 -t 2 -c:v libx265 -preset ultrafast \
         -x265-params log-level=error -g 25 -f mpegts hevc.ts",
    );
    let ts = std::fs::read(&path).unwrap();
    let probe = probe(&ts).unwrap();
    assert_eq!(probe.codec, VideoCodec::H265);
    assert_eq!((probe.width, probe.height), (640, 360));
    // Main (compatible with Main and Main 10), main tier; the level is
    // x265's choice, checked against ffprobe's in assert_like_ffprobe.
    assert!(
        probe.codec_string.starts_with("hvc1.1.6.L"),
        "{}",
        probe.codec_string
    );
    assert_eq!(probe.frames, 50);
    assert!((probe.duration_micros - 2_000_000).abs() <= FRAME_MICROS);
    assert!(!probe.keyframes.is_empty());
    assert!(probe.keyframes.iter().all(|k| k.tables_offset.is_some()));
    assert_like_ffprobe(&path, &probe);
}

#[test]
fn h264_sizes_that_need_cropping() {
    let dir = tempfile::tempdir().unwrap();
    for (size, expected) in [("426x240", (426, 240)), ("1920x1080", (1920, 1080))] {
        let path = h264_ts(dir.path(), &format!("{size}.ts"), size, "0.4", "");
        let probe = probe(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((probe.width, probe.height), expected, "{size}");
        assert_eq!(probe.frames, 10);
        assert_codec_string_like_ffprobe(&path, &probe);
    }
}

#[test]
fn h264_high_profile_codec_string() {
    let dir = tempfile::tempdir().unwrap();
    // libx264's default preset codes High profile; it picks the level from
    // the picture size and rate.
    for (size, level) in [("640x360", "1E"), ("1920x1080", "28")] {
        let name = format!("high_{size}.ts");
        ffmpeg(
            dir.path(),
            &format!(
                "-f lavfi -i testsrc2=size={size}:rate=25 -t 0.4 -c:v libx264 \
                 -pix_fmt yuv420p -g 25 -f mpegts {name}"
            ),
        );
        let path = dir.path().join(&name);
        let ts = std::fs::read(&path).unwrap();
        let probe = probe(&ts).unwrap();
        assert_eq!(probe.codec_string, format!("avc1.6400{level}"), "{size}");
        assert_codec_string_like_ffprobe(&path, &probe);
        let summary = probe_head_tail(&ts, &ts, ts.len() as u64).unwrap();
        assert_eq!(summary.codec_string, probe.codec_string);
    }
}

#[test]
fn pts_wrapping_inside_a_segment_keeps_the_duration() {
    let dir = tempfile::tempdir().unwrap();
    // 2^33 / 90 kHz = 95443.7177 s; ffmpeg starts PTS 1.4 s after the
    // offset, so this wraps the clock about 3 s into the segment.
    let path = h264_ts(
        dir.path(),
        "wrap.ts",
        "320x180",
        "6",
        "-output_ts_offset 95439.3",
    );
    let ts = std::fs::read(&path).unwrap();
    let probe = probe(&ts).unwrap();
    assert!(
        probe.last_pts < probe.first_pts,
        "expected a wrap: {} .. {}",
        probe.first_pts,
        probe.last_pts
    );
    assert!(probe.first_pts > (1 << 33) - 6 * 90_000);
    assert_eq!(probe.frames, 150);
    assert_six_seconds(&probe);
    assert_eq!(pts_delta(probe.first_pts, probe.last_pts), 149 * 3600);
    assert_eq!(probe.keyframes.len(), 6);
    assert_like_ffprobe(&path, &probe);

    let summary = probe_head_tail(
        &ts[..64 * 1024],
        &ts[ts.len() - 64 * 1024..],
        ts.len() as u64,
    );
    assert_eq!(summary, Ok(Summary::from(&probe)));
}

#[test]
fn tables_offsets_with_and_without_resend_headers() {
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [
        ("default.ts", ""),
        ("resend.ts", "-mpegts_flags +resend_headers"),
    ] {
        let path = h264_ts(dir.path(), name, "320x180", "4", extra);
        let ts = std::fs::read(&path).unwrap();
        let probe = probe(&ts).unwrap();
        assert_eq!(probe.keyframes.len(), 4, "{name}");
        for key in &probe.keyframes {
            assert!(key.tables_offset.is_some(), "{name}: {key:?}");
            assert_eq!(
                key.tables_offset,
                expected_tables_offset(&ts, key.offset),
                "{name}"
            );
        }
        assert_like_ffprobe(&path, &probe);
    }
}

#[test]
fn later_tables_nulled_leave_the_first_as_start_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = h264_ts(dir.path(), "a.ts", "320x180", "4", "");
    let ts = std::fs::read(&path).unwrap();
    let original = probe(&ts).unwrap();
    let first_pat = original.keyframes[0].tables_offset.unwrap();
    let first_key = original.keyframes[0].offset as usize / PACKET_SIZE;

    // Only the PAT and PMT before the first keyframe survive.
    let stripped = null_out(&ts, |i, p| i > first_key && is_table(&ts, p));
    let pats = stripped
        .chunks(PACKET_SIZE)
        .filter(|p| pid(p) == PAT_PID)
        .count();
    assert_eq!(pats, 1);
    let probe = probe(&stripped).unwrap();
    assert_eq!(probe.keyframes.len(), original.keyframes.len());
    for (key, before) in probe.keyframes.iter().zip(&original.keyframes) {
        assert_eq!((key.offset, key.pts), (before.offset, before.pts));
        assert_eq!(key.tables_offset, Some(first_pat));
        assert_eq!(key.tables_end, original.keyframes[0].tables_end);
        // Nulled tables are other packets, not the end of a PES.
        assert_eq!(key.end, before.end);
    }
    assert_tables_are_pat_then_pmt(&stripped, &probe);
    assert_eq!(probe.frames, original.frames);
    assert_eq!(probe.duration_micros, original.duration_micros);
}

#[test]
fn first_tables_nulled() {
    let dir = tempfile::tempdir().unwrap();
    let path = h264_ts(dir.path(), "a.ts", "320x180", "4", "");
    let ts = std::fs::read(&path).unwrap();
    let original = probe(&ts).unwrap();
    let first_key = original.keyframes[0].offset as usize / PACKET_SIZE;

    // ffmpeg repeats the tables before each keyframe, so the probe finds
    // the program later on; the first keyframe has no start point before it.
    let headless = null_out(&ts, |i, p| i < first_key && is_table(&ts, p));
    let probe = probe(&headless).unwrap();
    assert_eq!(probe.frames, original.frames);
    assert_eq!(probe.keyframes.len(), original.keyframes.len());
    assert_eq!(probe.keyframes[0].tables_offset, None);
    assert_eq!(probe.keyframes[0].tables_end, None);
    assert_tables_are_pat_then_pmt(&headless, &probe);
    for key in &probe.keyframes[1..] {
        assert_eq!(
            key.tables_offset,
            expected_tables_offset(&headless, key.offset)
        );
        assert!(key.tables_offset.is_some());
    }

    // Tables only at the start, and those nulled: nothing says what is here.
    let only_first = null_out(&ts, |i, p| i > first_key && is_table(&ts, p));
    let no_tables = null_out(&only_first, |_, p| is_table(&ts, p));
    assert_eq!(probe_result(&no_tables), Err(ProbeError::NoPat));
    let pmt = pmt_pid(&ts);
    let no_pmt = null_out(&ts, |_, p| pid(p) == pmt);
    assert_eq!(probe_result(&no_pmt), Err(ProbeError::NoPmt { program: 1 }));
}

fn probe_result(ts: &[u8]) -> Result<(), ProbeError> {
    probe(ts).map(|_| ())
}

#[test]
fn wrong_pids_and_streams_without_video() {
    let dir = tempfile::tempdir().unwrap();
    let path = h264_ts(dir.path(), "a.ts", "320x180", "1", "");
    let ts = std::fs::read(&path).unwrap();
    let video_pid = probe(&ts).unwrap().video_pid;
    // The PMT still names the video PID, but its packets moved elsewhere.
    let moved: Vec<u8> = ts
        .chunks(PACKET_SIZE)
        .flat_map(|p| {
            let mut p = p.to_vec();
            if pid(&p) == video_pid {
                p[1] = (p[1] & 0xE0) | 0x07;
                p[2] = 0x77;
            }
            p
        })
        .collect();
    let err = probe(&moved).unwrap_err();
    assert_eq!(err, ProbeError::NoPts { pid: video_pid });
    assert_eq!(
        err.to_string(),
        format!("no PTS on the video PID {video_pid:#06x}")
    );

    ffmpeg(
        dir.path(),
        "-f lavfi -i sine=frequency=440:duration=1 -c:a aac -f mpegts audio.ts",
    );
    let audio = std::fs::read(dir.path().join("audio.ts")).unwrap();
    let err = probe(&audio).unwrap_err();
    assert_eq!(err, ProbeError::NoVideo { program: 1 });
    assert!(
        err.to_string()
            .starts_with("no video stream (H.264/H.265) in the PMT")
    );
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncated_garbage_and_empty_input_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = h264_ts(dir.path(), "a.ts", "320x180", "2", "");
    let ts = std::fs::read(&path).unwrap();
    let whole = probe(&ts).unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);

    assert_eq!(probe(&[]), Err(ProbeError::Empty));
    assert_eq!(probe(&[]).unwrap_err().to_string(), "empty input");

    // Cut anywhere: inside a packet it is always an error; on a packet
    // boundary it is a shorter stream, which may or may not say enough.
    for _ in 0..60 {
        let cut = rng.below(ts.len());
        let result = probe(&ts[..cut]);
        if cut == 0 {
            assert_eq!(result, Err(ProbeError::Empty));
        } else if !cut.is_multiple_of(PACKET_SIZE) {
            assert_eq!(result, Err(ProbeError::Truncated { len: cut as u64 }));
        } else if let Ok(p) = result {
            assert!(p.frames <= whole.frames);
        }
        let packet_cut = cut - cut % PACKET_SIZE;
        let _ = probe(&ts[..packet_cut]);
        let _ = probe(&ts[packet_cut..]);
    }
    // A cut within the first tables leaves nothing to go on.
    assert_eq!(probe(&ts[..PACKET_SIZE]), Err(ProbeError::NoPat));

    // Pure noise, then noise with sync bytes where packets start so that the
    // packet layer accepts it and the layers above see garbage.
    for round in 0..40 {
        let len = rng.below(40) * PACKET_SIZE + if round % 2 == 0 { 0 } else { rng.below(187) };
        let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(probe(&noise).is_err());
        for packet in noise.chunks_mut(PACKET_SIZE) {
            packet[0] = 0x47;
            // Few PIDs, so tables and PES on them actually get reassembled.
            packet[1] &= 0xE0;
            packet[2] %= 4;
        }
        let _ = probe(&noise);
        let total = noise.len() as u64;
        let _ = probe_head_tail(&noise, &noise, total);
    }
    let text = vec![b'x'; 10 * PACKET_SIZE];
    assert_eq!(
        probe(&text).unwrap_err().to_string(),
        "not MPEG-TS: no sync byte at offset 0"
    );

    // Real media with bytes flipped: deep in every layer, never a panic.
    for _ in 0..40 {
        let mut damaged = ts.clone();
        for _ in 0..1 + rng.below(64) {
            let at = rng.below(damaged.len());
            damaged[at] ^= 1 << rng.below(8);
        }
        let _ = probe(&damaged);
        let head = rng.below(damaged.len()) + 1;
        let tail = rng.below(damaged.len());
        let _ = probe_head_tail(
            &damaged[..head],
            &damaged[damaged.len() - tail..],
            damaged.len() as u64,
        );
    }
}

#[test]
fn head_and_tail_give_what_the_whole_file_gives() {
    let dir = tempfile::tempdir().unwrap();
    let segments = hls_segments(dir.path());
    let ts = std::fs::read(&segments[1]).unwrap();
    let whole = Summary::from(&probe(&ts).unwrap());
    let total = ts.len() as u64;
    let kib64 = 64 * 1024;
    assert!(
        ts.len() > 4 * kib64,
        "the segment must be larger than head + tail"
    );

    let summary = probe_head_tail(&ts[..kib64], &ts[ts.len() - kib64..], total).unwrap();
    assert_eq!(summary, whole);

    // A head shorter than the first keyframe's PES still holds its SPS.
    let summary = probe_head_tail(&ts[..4096], &ts[ts.len() - kib64..], total);
    assert_eq!(summary, Ok(whole.clone()));

    // Unaligned tail lengths: the tail is aligned by total_len.
    for tail_len in [kib64 + 1, kib64 + 187, 3 * kib64 - 5] {
        let summary = probe_head_tail(&ts[..kib64 + 77], &ts[ts.len() - tail_len..], total);
        assert_eq!(summary, Ok(whole.clone()), "tail of {tail_len} bytes");
    }

    // A small file read whole, as head and tail both.
    let small = h264_ts(dir.path(), "small.ts", "320x180", "1", "");
    let small = std::fs::read(small).unwrap();
    let expected = Summary::from(&probe(&small).unwrap());
    let len = small.len() as u64;
    assert_eq!(probe_head_tail(&small, &small, len), Ok(expected.clone()));
    // Overlapping halves.
    let two_thirds = small.len() * 2 / 3;
    assert_eq!(
        probe_head_tail(
            &small[..two_thirds],
            &small[small.len() - two_thirds..],
            len
        ),
        Ok(expected)
    );

    assert_eq!(
        probe_head_tail(&ts[..kib64], &[], total),
        Err(ProbeError::NoPtsInTail { len: 0 })
    );
    assert_eq!(
        probe_head_tail(&ts[..kib64], &ts[..kib64], total - 1),
        Err(ProbeError::Truncated { len: total - 1 })
    );
    assert!(matches!(
        probe_head_tail(&ts, &ts, total - 1),
        Err(ProbeError::RangeMismatch { .. })
    ));
    assert_eq!(probe_head_tail(&[], &ts, total), Err(ProbeError::Empty));
}
