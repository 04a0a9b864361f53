//! The server run inside the test's own process, on 127.0.0.1:0 with the
//! local directory store and a clock the test sets: for rules that depend
//! on "now" (time windows, expiry, retention) without waiting for them.
//!
//! Its catalog is on either engine ([`Engine`]): sled in the data dir, or
//! a fresh database of the PostgreSQL server the test binary shares. The
//! PostgreSQL catalog is opened here and handed to the server, so tests
//! running side by side in one process need no environment variable each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use record_index::catalog::Catalog;
use record_index::catalog::postgres::{PgCatalog, PgOptions};
use record_index::clock::FixedClock;
use record_index::config::{CatalogEngine, Config};
use record_index::proto::RecordInfo;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::server::{Server, StartError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::engines::Engine;
use super::pg_server::shared_database;
use super::requests::NOW;

/// Connections one in-process server keeps at most: tests run side by
/// side against one PostgreSQL server, and none needs more.
const PG_POOL_SIZE: usize = 4;

/// A server running in this process. Dropping it stops the server.
pub struct InProcess {
    pub client: RecordIndexClient<Channel>,
    /// Starts at [`NOW`]; the server reads every time from it.
    pub clock: Arc<FixedClock>,
    /// Root of the local store: one sub-directory per bucket.
    pub objects: PathBuf,
    pub config: Config,
    /// Where the catalog is when it is in PostgreSQL; restarts reopen it.
    postgres: Option<PgOptions>,
    /// The SRS callback listener, when the config has one.
    pub webhook: Option<SocketAddr>,
    /// None only while restarting.
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

/// The task serving, and the sender whose message (or drop) stops it as a
/// signal would.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartError>>,
}

impl InProcess {
    /// Starts the server with a fresh data dir and `extra_config` (accounts,
    /// endpoints, limits) after the listen address, its clock at [`NOW`],
    /// its catalog in sled.
    pub async fn start(extra_config: &str) -> InProcess {
        InProcess::start_on(Engine::Sled, extra_config).await
    }

    /// As [`InProcess::start`], with the catalog on `engine`.
    pub async fn start_on(engine: Engine, extra_config: &str) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra_config}",
            dir.path().join("data").display()
        );
        let mut config = Config::from_toml(&text).unwrap().finish().unwrap();
        let postgres = match engine {
            Engine::Sled => None,
            Engine::Postgres => {
                config.catalog.engine = CatalogEngine::Postgres;
                Some(PgOptions {
                    url: shared_database("in_process").await,
                    pool_size: PG_POOL_SIZE,
                    statement_timeout_ms: config.catalog.statement_timeout_ms,
                })
            }
        };
        let objects = config
            .endpoint("localhost")
            .and_then(|e| e.path.clone())
            .unwrap_or_default();
        let clock = Arc::new(FixedClock::new(NOW));
        let (client, webhook, running) = launch(&config, postgres.as_ref(), &clock).await;
        InProcess {
            client,
            clock,
            objects,
            config,
            postgres,
            webhook,
            running: Some(running),
            _dir: dir,
        }
    }

    /// Stops the server, waits until it has shut down cleanly, and starts it
    /// again on the same data dir, with the clock where it is now.
    pub async fn restart(&mut self) {
        // The catalog is locked by the running server until it stops.
        let Running { stop, task } = self.running.take().unwrap();
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        let (client, webhook, running) =
            launch(&self.config, self.postgres.as_ref(), &self.clock).await;
        self.client = client;
        self.webhook = webhook;
        self.running = Some(running);
    }

    /// Where the local store keeps the playlist a Create wrote.
    pub fn playlist_path(&self, info: &RecordInfo) -> PathBuf {
        self.objects.join(&info.oss_bucket).join(&info.oss_object)
    }
}

async fn launch(
    config: &Config,
    postgres: Option<&PgOptions>,
    clock: &Arc<FixedClock>,
) -> (RecordIndexClient<Channel>, Option<SocketAddr>, Running) {
    let server = match postgres {
        None => Server::bind_with_clock(config, clock.clone()).await,
        Some(options) => {
            let catalog: Arc<dyn Catalog> = Arc::new(PgCatalog::open(options).await.unwrap());
            Server::bind_with_catalog(config, catalog, clock.clone()).await
        }
    }
    .unwrap();
    let address = server.local_addr().unwrap();
    let webhook = server.webhook_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = RecordIndexClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    (client, webhook, Running { stop, task })
}
