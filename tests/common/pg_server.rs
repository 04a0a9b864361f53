//! A PostgreSQL 15 server for the tests, started from the Debian
//! package's binaries: one shared per test binary ([`shared_database`]),
//! with a database of its own for each test so tests run in parallel, or
//! one a test owns ([`PgServer::start`]) to stop and start it again.
//!
//! A server lives in a fresh temporary directory on a free port and is
//! killed by the kernel when the test process exits (a parent-death
//! signal), so a run never meets the server of an earlier one.
//!
//! Self-contained: test binaries that use nothing else of `common`
//! include this file alone.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const DIR_PREFIX: &str = "record-index-pg-";

/// A running (or stopped) server and the directory of its data.
pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    user: Option<(u32, u32)>,
    /// Receives once the server process has exited.
    exited: Option<Mutex<mpsc::Receiver<()>>>,
    pid: Option<u32>,
}

static SHARED: OnceLock<PgServer> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

fn binary(name: &str) -> PathBuf {
    let path = Path::new(BIN).join(name);
    assert!(
        path.exists(),
        "{} is missing: the PostgreSQL tests need PostgreSQL 15; \
         run `apt-get install postgresql` (scripts/install-tools.sh does)",
        path.display()
    );
    path
}

/// The uid and gid to run the server as: initdb refuses root, so root
/// runs it as the package's `postgres` user.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8(out.stdout)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    };
    Some((
        id("-u").expect("no postgres user"),
        id("-g").expect("no postgres group"),
    ))
}

fn as_server_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Removes the directories of earlier runs whose server is gone. A
/// directory younger than a few minutes may be another run's that has
/// not started its server yet.
fn remove_stale_dirs() {
    let settled = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600))
    };
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) || !settled(&entry) {
            continue;
        }
        let pid_file = entry.path().join("data/postmaster.pid");
        let alive = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
            // SAFETY: signal 0 only asks whether the process exists.
            .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl PgServer {
    /// A new cluster on a free port, started.
    pub fn start() -> PgServer {
        remove_stale_dirs();
        let user = server_user();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .unwrap()
            .keep();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let status = as_server_user(&mut Command::new(binary("initdb")), user)
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let mut server = PgServer {
            port: free_port(),
            dir,
            user,
            exited: None,
            pid: None,
        };
        server.start_again();
        server
    }

    /// Starts the server on its data directory and port, after
    /// [`PgServer::stop_immediate`].
    pub fn start_again(&mut self) {
        assert!(self.pid.is_none(), "the server is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let mut command = Command::new(binary("postgres"));
        as_server_user(&mut command, self.user)
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args(["-c", "max_connections=300"])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it runs after the uid change,
        // which would otherwise clear it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let (pid, exited) = spawn_from_lasting_thread(command);
        self.pid = Some(pid);
        self.exited = Some(Mutex::new(exited));
    }

    /// Stops the server as a crash does (`pg_ctl stop -m immediate`:
    /// SIGQUIT, no checkpoint) and waits until it has exited.
    pub fn stop_immediate(&mut self) {
        let pid = self.pid.take().expect("the server is running");
        // SAFETY: kill has no memory preconditions; the pid is our child's,
        // reaped only by the thread that waits on it below.
        unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
        let exited = self.exited.take().expect("running");
        exited
            .into_inner()
            .unwrap()
            .recv_timeout(Duration::from_secs(30))
            .expect("postgres did not stop within 30 s");
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }

    /// A new empty database, once the server answers.
    pub async fn create_database(&self, prefix: &str) -> String {
        let database = format!("{prefix}_{}", NEXT_DATABASE.fetch_add(1, Ordering::SeqCst));
        let client = self.connect("postgres").await;
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        self.url(&database)
    }

    /// A connection to `database`, waiting up to a minute for the server.
    pub async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(connection);
                    return client;
                }
                Err(err) if Instant::now() > deadline => panic!("postgres did not answer: {err}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// A new empty database on the server this test binary shares.
pub async fn shared_database(prefix: &str) -> String {
    SHARED
        .get_or_init(PgServer::start)
        .create_database(prefix)
        .await
}

/// A client of the database at `url`.
pub async fn connect_url(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The parent-death signal follows the thread that spawned the child: a
/// test's runtime thread ends with its test, this one only once the
/// child has exited (it reaps it, so no zombie outlives a stop).
fn spawn_from_lasting_thread(mut command: Command) -> (u32, mpsc::Receiver<()>) {
    let (started, receiver) = mpsc::channel();
    let (exited, exit) = mpsc::channel();
    std::thread::spawn(move || match command.spawn() {
        Ok(mut child) => {
            started.send(Ok(child.id())).unwrap();
            let _ = child.wait();
            let _ = exited.send(());
        }
        Err(err) => started.send(Err(err)).unwrap(),
    });
    let pid = receiver.recv().unwrap().expect("postgres did not start");
    (pid, exit)
}
