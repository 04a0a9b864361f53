//! The server run inside the test's own process, on 127.0.0.1:0 with the
//! local directory store and a clock the test sets: for rules that depend
//! on "now" (time windows, expiry, retention) without waiting for them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use record_index::clock::FixedClock;
use record_index::config::Config;
use record_index::proto::RecordInfo;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::server::{Server, StartError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::requests::NOW;

/// A server running in this process. Dropping it stops the server.
pub struct InProcess {
    pub client: RecordIndexClient<Channel>,
    /// Starts at [`NOW`]; the server reads every time from it.
    pub clock: Arc<FixedClock>,
    /// Root of the local store: one sub-directory per bucket.
    pub objects: PathBuf,
    pub config: Config,
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
    /// endpoints, limits) after the listen address, its clock at [`NOW`].
    pub async fn start(extra_config: &str) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{extra_config}",
            dir.path().join("data").display()
        );
        let config = Config::from_toml(&text).unwrap().finish().unwrap();
        let objects = config
            .endpoint("localhost")
            .and_then(|e| e.path.clone())
            .unwrap_or_default();
        let clock = Arc::new(FixedClock::new(NOW));
        let (client, webhook, running) = launch(&config, &clock).await;
        InProcess {
            client,
            clock,
            objects,
            config,
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
        let (client, webhook, running) = launch(&self.config, &self.clock).await;
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
    clock: &Arc<FixedClock>,
) -> (RecordIndexClient<Channel>, Option<SocketAddr>, Running) {
    let server = Server::bind_with_clock(config, clock.clone())
        .await
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
