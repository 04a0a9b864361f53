//! A real `redis-server` of one test, on a free loopback port with no
//! persistence, in a directory of its own; killed (and started again on
//! the same port) at the test's will, and always when dropped.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::guard::{Guarded, guarded_command};
use super::net::free_ports;
use super::tools::{Tool, require};

pub const REDIS_SERVER: Tool = Tool {
    program: "redis-server",
    install: "apt-get install -y redis-server",
};

pub struct Redis {
    pub port: u16,
    /// Declared before `dir` so the server is dead before its directory goes.
    process: Option<Guarded>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let [port] = free_ports::<1>();
        let dir = tempfile::Builder::new()
            .prefix("record-index-redis-")
            .tempdir()
            .expect("redis temp dir");
        let mut redis = Redis {
            port,
            process: None,
            dir,
        };
        redis.start_again();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        let mut process = self.process.take().expect("redis-server is running");
        process.kill_keeping_files();
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.process.is_none(), "redis-server is still running");
        let program = require(REDIS_SERVER);
        let args: Vec<OsString> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.dir.path().display().to_string(),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let mut command = guarded_command(&program, &args);
        command
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        self.process = Some(Guarded::spawn(command, None, &[]));
        wait_for_pong(self.port, self.dir.path());
    }
}

/// Waits until the server on `port` answers PING; fails the test after
/// ten seconds.
fn wait_for_pong(port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ping(port) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} (in {}) did not answer PING within 10 s",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
