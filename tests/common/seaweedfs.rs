//! SeaweedFS as the S3 server: one shared by the tests of a binary (each
//! test works in its own bucket), and one of a test's own for outages.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::guard::{Guarded, guarded_command, process_alive, tail};
use super::media::media;
use super::net::{HttpResponse, free_ports, http_request};
use super::requests::unique_name;
use super::tools::{WEED, require};

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

    /// Lets pages of `origins` read `bucket`'s objects (GET and HEAD, with
    /// a Range), as an operator sets a bucket's CORS rules with
    /// PutBucketCors: with rules, SeaweedFS answers those origins only
    /// (without any, it answers every origin).
    pub async fn allow_origins(&self, bucket: &str, origins: &[&str]) {
        let allowed: String = origins
            .iter()
            .map(|origin| format!("<AllowedOrigin>{origin}</AllowedOrigin>"))
            .collect();
        let rules = format!(
            "<CORSConfiguration><CORSRule>{allowed}\
             <AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>\
             <AllowedHeader>Range</AllowedHeader>\
             <ExposeHeader>Content-Length</ExposeHeader><ExposeHeader>Content-Range</ExposeHeader>\
             <ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3600</MaxAgeSeconds>\
             </CORSRule></CORSConfiguration>"
        );
        let url = format!("{}/{bucket}?cors", self.url());
        let response = http_request("PUT", &url, None, Some("application/xml"), rules.into()).await;
        assert_eq!(response.status, 200, "PUT {url}: {}", response.text());
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
    start_private_seaweedfs_for(None)
}

/// Like [`start_private_seaweedfs`], with one S3 identity: its buckets are
/// private, as a bucket without public reads is. Only requests signed with
/// `access_key_id` and `secret` (in headers or a presigned URL) may use
/// them; anonymous requests may only write the readiness probe's bucket.
pub fn start_private_seaweedfs_with_identity(
    access_key_id: &str,
    secret: &str,
) -> PrivateSeaweedFs {
    start_private_seaweedfs_for(Some((access_key_id, secret)))
}

fn start_private_seaweedfs_for(identity: Option<(&str, &str)>) -> PrivateSeaweedFs {
    let weed = require(WEED);
    let mut failures = Vec::new();
    // As for the shared one, a port taken between picking and binding is
    // cured by a fresh set.
    for _ in 0..3 {
        match try_start_private_seaweedfs(&weed, identity) {
            Ok(seaweedfs) => return seaweedfs,
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "a private SeaweedFS did not start:\n{}",
        failures.join("\n---\n")
    );
}

/// SeaweedFS's `-s3.config` of one identity allowed everything, and of
/// anonymous requests allowed the readiness probe's bucket only.
fn identities_json(access_key_id: &str, secret: &str) -> String {
    format!(
        r#"{{"identities": [
  {{"name": "anonymous", "actions": ["Admin:readiness-probe", "Write:readiness-probe"]}},
  {{"name": "owner", "credentials": [{{"accessKey": "{access_key_id}", "secretKey": "{secret}"}}],
   "actions": ["Read", "Write", "List", "Tagging", "Admin"]}}
]}}"#
    )
}

fn try_start_private_seaweedfs(
    weed: &Path,
    identity: Option<(&str, &str)>,
) -> Result<PrivateSeaweedFs, String> {
    let dir = tempfile::Builder::new()
        .prefix("record-index-seaweedfs-")
        .tempdir()
        .expect("temp dir for SeaweedFS")
        .keep();
    let ports: [u16; 8] = free_ports();
    let [_, master_grpc, _, volume_grpc, _, filer_grpc, s3, s3_grpc] = ports;
    let mut args = private_seaweedfs_args(&dir, ports);
    if let Some((access_key_id, secret)) = identity {
        let path = dir.join("s3.json");
        fs::write(&path, identities_json(access_key_id, secret)).expect("write s3.json");
        args.push(format!("-s3.config={}", path.display()).into());
    }
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
