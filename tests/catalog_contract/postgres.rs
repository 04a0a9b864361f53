//! The PostgreSQL engine, against a server this test binary starts once
//! from the Debian package's binaries, with a database of its own for
//! each test so tests run in parallel.
//!
//! The server lives in a fresh temporary directory on a free port and is
//! killed by the kernel when this process exits (a parent-death signal),
//! so a run never meets the server of an earlier one.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use record_index::catalog::Catalog;
use record_index::catalog::postgres::{PgCatalog, PgOptions};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const DIR_PREFIX: &str = "record-index-pg-";

struct Server {
    port: u16,
}

static SERVER: OnceLock<Server> = OnceLock::new();
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

fn free_port() -> u16 {
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

fn start() -> Server {
    remove_stale_dirs();
    let (initdb, postgres) = (binary("initdb"), binary("postgres"));
    let user = server_user();
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .unwrap()
        .keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    let data = dir.join("data");
    let status = as_server_user(&mut Command::new(initdb), user)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync")
        .stdout(Stdio::null())
        .status()
        .expect("initdb");
    assert!(status.success(), "initdb failed");
    let port = free_port();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut command = Command::new(postgres);
    as_server_user(&mut command, user)
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
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
    spawn_from_lasting_thread(command);
    Server { port }
}

/// The parent-death signal follows the thread that spawned the child: a
/// test's runtime thread ends with its test, this one with the process.
fn spawn_from_lasting_thread(mut command: Command) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = command.spawn();
        sender.send(child.map(|_| ())).unwrap();
        loop {
            std::thread::park();
        }
    });
    receiver.recv().unwrap().expect("postgres did not start");
}

fn url(port: u16, database: &str) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname={database}")
}

/// A new empty database on the shared server, once it answers.
async fn create_database() -> String {
    let port = SERVER.get_or_init(start).port;
    let database = format!("contract_{}", NEXT_DATABASE.fetch_add(1, Ordering::SeqCst));
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        match tokio_postgres::connect(&url(port, "postgres"), tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            Err(err) if Instant::now() > deadline => panic!("postgres did not answer: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    client
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    url(port, &database)
}

async fn open_at(url: &str) -> Arc<dyn Catalog> {
    let options = PgOptions {
        url: url.to_string(),
        pool_size: 8,
        statement_timeout_ms: 30_000,
    };
    Arc::new(PgCatalog::open(&options).await.unwrap())
}

pub struct Postgres {
    url: String,
    catalog: Option<Arc<dyn Catalog>>,
}

#[async_trait]
impl crate::Engine for Postgres {
    async fn open() -> Self {
        let url = create_database().await;
        let catalog = Some(open_at(&url).await);
        Postgres { url, catalog }
    }

    fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone().expect("open")
    }

    async fn reopen(&mut self) {
        let closing = self.catalog.take().expect("open");
        assert_eq!(
            Arc::strong_count(&closing),
            1,
            "a handle of the catalog is still held"
        );
        drop(closing);
        self.catalog = Some(open_at(&self.url).await);
    }
}

contract_suite!(Postgres);

/// Beyond the contract's fixtures, which carry no probed media: every
/// field of a segment comes back as it was sent, in its own columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_fields_round_trip() {
    use record_index::manifest::{Format, SegmentMedia};
    use record_index::media::VideoCodec;

    use crate::Engine;
    use crate::fixtures::*;

    let engine = <Postgres as crate::Engine>::open().await;
    let catalog = engine.catalog();
    let mut segments = back_to_back("live/media", NOW - 600 * SECOND, 4);
    segments[0].media = Some(SegmentMedia {
        codec: VideoCodec::H264,
        first_pts: (1 << 33) - 1,
    });
    segments[1].media = Some(SegmentMedia {
        codec: VideoCodec::H265,
        first_pts: 0,
    });
    segments[1].format = Format::Cmaf;
    segments[2].format = Format::Flv;
    segments[2].size = u64::MAX;
    segments[3].format = Format::Mp4;
    segments[3].width = u32::MAX;
    segments[3].sequence = i64::MIN;
    register(&*catalog, "media", segments.clone(), NOW).await;
    let id = stream_id(&*catalog, "media").await;
    assert_eq!(scan(&*catalog, id, 0, NOW, NOW).await, segments);
}

/// The partitions of the segments table in the database at `url`.
async fn partitions(url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'segments'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| row.get(0)).collect()
}

/// Weekly partitions are made ahead of the sweep's clock and dropped once
/// past retention, but never while they still hold a segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_follow_the_clock() {
    use crate::Engine;
    use crate::fixtures::*;

    const WEEK: i64 = 7 * DAY;
    let week_name = |at: i64| format!("segments_w{}", at.div_euclid(WEEK));
    let engine = <Postgres as Engine>::open().await;
    let catalog = engine.catalog();
    let later = NOW + 200 * DAY;
    // Far enough from the wall clock that open made none of these.
    let old = segment("live/p/a.ts", later - 7 * DAY, 6 * SECOND);
    catalog.sweep(old.start, 100).await.unwrap();
    assert!(
        partitions(&engine.url)
            .await
            .contains(&week_name(old.end()))
    );
    register(&*catalog, "p", vec![old.clone()], old.start).await;

    let gone = old.end() + 120 * DAY;
    // A sweep of nothing leaves the segment, so its week stays.
    catalog.sweep(gone, 0).await.unwrap();
    let held = partitions(&engine.url).await;
    assert!(held.contains(&week_name(old.end())), "{held:?}");
    assert!(held.contains(&week_name(gone + 4 * WEEK)), "{held:?}");
    // Emptied, it goes at the next week's upkeep.
    assert_eq!(catalog.sweep(gone, 100).await.unwrap().segments, 1);
    catalog.sweep(gone + WEEK, 100).await.unwrap();
    let held = partitions(&engine.url).await;
    assert!(!held.contains(&week_name(old.end())), "{held:?}");
    assert!(held.contains(&"segments_default".to_string()));
}

/// The connection string may hold a password: an error opening the
/// catalog says why, never what the string was.
#[tokio::test]
async fn errors_keep_the_connection_string_out() {
    let port = free_port();
    for url in [
        format!("postgres://indexer:hunter2-secret@127.0.0.1:{port}/catalog"),
        "postgres://indexer:hunter2-secret@[::1".to_string(),
    ] {
        let options = PgOptions {
            url,
            pool_size: 1,
            statement_timeout_ms: 1000,
        };
        let err = match PgCatalog::open(&options).await {
            Ok(_) => panic!("opened a catalog with no server"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.starts_with("catalog storage failed: postgres: "),
            "{err}"
        );
        assert!(
            !err.contains("hunter2") && !err.contains("indexer"),
            "{err}"
        );
    }
}

/// Replicas that start together on a new database apply each migration
/// once: the advisory lock makes them take turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let url = create_database().await;
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { open_at(&url).await })
        })
        .collect();
    for replica in opening {
        replica.await.unwrap().check().await.unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 1);
}
