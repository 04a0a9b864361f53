//! The `record-index` binary as a process of one test: started on a
//! config of its own, restarted, terminated or killed, its log kept.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use record_index::proto::record_index_client::RecordIndexClient;
use tonic::transport::Channel;

use super::engines::{Engine, catalog_on};
use super::guard::{Guarded, guarded_command};

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
    /// Whether stderr lines are shown (forwarded to our stderr); a bench
    /// that makes thousands of requests keeps them only.
    echo: bool,
    /// RLIMIT_NOFILE (soft and hard) the process starts with, when a test
    /// runs it short of descriptors; otherwise it inherits the test's.
    open_files: Option<u64>,
    /// Environment variables set for the process on top of the test's.
    env: Vec<(String, String)>,
    /// The lines printed on stdout after the first: the side listeners'.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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

    /// Like [`Server::start`], with the catalog on `engine`: on PostgreSQL,
    /// a fresh database of the server this test binary shares, the same
    /// across restarts.
    pub async fn start_on(engine: Engine, extra_toml: &str) -> Server {
        Server::start_on_with_env(engine, extra_toml, &[]).await
    }

    /// Like [`Server::start_on`], with `env` set for the process.
    pub async fn start_on_with_env(
        engine: Engine,
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> Server {
        let (catalog, mut catalog_env) = catalog_on(engine).await;
        let (args, data_dir, dir) = configured(&format!("{extra_toml}{catalog}"));
        let mut server = Server::unstarted(args, data_dir, dir, None);
        catalog_env.extend(
            env.iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        server.env = catalog_env;
        server.spawn().await;
        server
    }

    /// Like [`Server::start_with_env`], the log kept but not shown: for
    /// benchmarks, whose every request writes a line.
    pub async fn start_with_env_quietly(
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> (Server, ServerLog) {
        let (args, data_dir, dir) = configured(extra_toml);
        let log = ServerLog::default();
        let mut server = Server::unstarted(args, data_dir, dir, Some(log.clone()));
        server.echo = false;
        server.env = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        server.spawn().await;
        (server, log)
    }

    /// Starts the server as a user does, with no config file, in an empty
    /// working directory, only moved to a free port.
    pub async fn start_local_mode() -> Server {
        let dir = server_dir();
        let args = vec![
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--playback-listen".into(),
            "127.0.0.1:0".into(),
        ];
        Server::launch(args, dir.path().join("data"), dir, None).await
    }

    /// Like [`Server::start`], with RLIMIT_NOFILE fixed at `limit` (soft
    /// and hard) for the server process.
    pub async fn start_with_open_files(extra_toml: &str, limit: u64) -> Server {
        let (args, data_dir, dir) = configured(extra_toml);
        let mut server = Server::unstarted(args, data_dir, dir, None);
        server.open_files = Some(limit);
        server.spawn().await;
        server
    }

    /// Like [`Server::start`], and the server's log is also kept for the
    /// test to read (it is still shown with a failing test), across
    /// restarts.
    pub async fn start_keeping_log(extra_toml: &str) -> (Server, ServerLog) {
        let (args, data_dir, dir) = configured(extra_toml);
        let log = ServerLog::default();
        let server = Server::launch(args, data_dir, dir, Some(log.clone())).await;
        (server, log)
    }

    /// Like [`Server::start_keeping_log`], with `env` set for the process
    /// (the variables a config's `url_env` names).
    pub async fn start_with_env(extra_toml: &str, env: &[(&str, &str)]) -> (Server, ServerLog) {
        let (args, data_dir, dir) = configured(extra_toml);
        let log = ServerLog::default();
        let mut server = Server::unstarted(args, data_dir, dir, Some(log.clone()));
        server.env = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        server.spawn().await;
        (server, log)
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
            echo: true,
            open_files: None,
            env: Vec::new(),
            stdout: Default::default(),
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
            .env_remove("RECORD_INDEX_PLAYBACK_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.env("GUARD_STATUS_FILE", self.workdir.join("exit-status"));
        command.envs(self.env.iter().map(|(name, value)| (name, value)));
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
        let echo = self.echo;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[record-index] {line}");
                }
                if let Some(log) = &log {
                    log.0.lock().unwrap().push(line);
                }
            }
        });
        let (first_line_tx, first_line_rx) = tokio::sync::oneshot::channel();
        self.stdout.lock().unwrap().clear();
        let stdout = self.stdout.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout_pipe).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = first_line_tx.send(first);
            }
            for line in lines {
                eprintln!("[record-index stdout] {line}");
                stdout.lock().unwrap().push(line);
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

    /// The address the playback listener says it listens on.
    pub async fn playback_addr(&self) -> SocketAddr {
        const PREFIX: &str = "record-index playback listening on ";
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find_map(|line| line.strip_prefix(PREFIX)?.trim().parse().ok());
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "record-index printed no \"{PREFIX}\" line within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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

    /// Sets `name` to `value` for the process from its next start on, or
    /// leaves it unset with None.
    pub fn set_env(&mut self, name: &str, value: Option<&str>) {
        self.env.retain(|(set, _)| set != name);
        if let Some(value) = value {
            self.env.push((name.to_string(), value.to_string()));
        }
    }

    /// Kills the server (SIGKILL: nothing is flushed on the way out) and
    /// leaves it stopped with its data dir, so the test can change the world
    /// around it before [`Server::start_again`].
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("the server is running");
        process.kill_keeping_files();
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

    /// Waits for the first line holding `needle` and returns it; fails the
    /// test when none has come after `within`.
    pub async fn await_line(&self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(line) = self.matching(needle).into_iter().next() {
                return line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no log line holding {needle:?} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
