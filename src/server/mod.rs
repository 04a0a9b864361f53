//! Puts the parts together and runs the gRPC listener until shutdown.

mod background;
mod sides;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::admission::Admission;
use crate::api::GrpcApi;
use crate::api::gate::GateLayer;
use crate::auth::Accounts;
use crate::catalog::Catalog;
use crate::catalog::postgres::{PgCatalog, PgOptions};
use crate::catalog::sled_engine::{SledCatalog, SledEngine};
use crate::clock::{Clock, SystemClock};
use crate::config::{CatalogEngine, Config, ConnectionsConfig};
use crate::connections::side::SideLimits;
use crate::connections::{Incoming, Limits, TrackRequests};
use crate::playback::Playback;
use crate::proto::record_index_server::RecordIndexServer;
use crate::service::IndexService;
use crate::storage::Storage;
use crate::telemetry;
use crate::webhook::Webhook;

use background::{prune_forever, report_health, set_health, sweep_forever};
use sides::{
    bind_http, finish_sides, playback_listener, playback_signing, spawn_metrics, spawn_sides,
};

/// How often draining looks for the last request to finish.
const IDLE_CHECK: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the catalog in {path}: {message}")]
    Catalog { path: String, message: String },
    #[error("object storage: {0}")]
    Storage(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("SRS webhook: {0}")]
    Webhook(String),
    #[error("rate limits: {0}")]
    Limits(String),
    #[error("playback signing: {0}")]
    PlaybackKeys(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A bound, ready server; `run` serves until `shutdown` resolves.
pub struct Server {
    listener: TcpListener,
    api: GrpcApi,
    gate: GateLayer,
    admission: Arc<dyn Admission>,
    tls: Option<ServerTlsConfig>,
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    sweep_interval: Duration,
    sweep_batch: usize,
    /// The SRS callback listener, when configured.
    webhook: Option<(Arc<Webhook>, std::net::TcpListener)>,
    /// The playback listener, when configured.
    playback: Option<(Arc<Playback>, std::net::TcpListener)>,
    /// The Prometheus listener, when configured.
    metrics: Option<std::net::TcpListener>,
    storage: Storage,
    max_message_bytes: usize,
    shutdown_grace: Duration,
    connections: ConnectionsConfig,
    connection_limits: Limits,
}

/// Server reflection, v1 and v1alpha (grpcurl before 1.9 speaks only the
/// latter). google.rpc types are served too, so reflection clients can
/// decode the ErrorInfo details of errors.
fn reflection_services() -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");
    (v1, v1alpha)
}

/// Once draining begins, waits until no request is in flight or the grace
/// period is over: a request stuck past it must not keep the catalog from
/// being flushed before the orchestrator's SIGKILL. Sets `grace_ends`, which
/// the HTTP listeners' drains share.
async fn drain(
    gate: &GateLayer,
    grace: Duration,
    drain_begins: tokio::sync::oneshot::Receiver<Instant>,
    grace_ends: &std::sync::OnceLock<Instant>,
) {
    let Ok(began) = drain_begins.await else {
        return std::future::pending().await;
    };
    let _ = grace_ends.set(began + grace);
    tracing::info!(
        in_flight = gate.in_flight(),
        grace_secs = grace.as_secs_f64(),
        "draining: no new requests, waiting for those in flight"
    );
    // Connections a client keeps open without a request in flight hold
    // nothing worth waiting for.
    let idle = async {
        let mut idle_checks = 0;
        while idle_checks < 3 {
            tokio::time::sleep(IDLE_CHECK).await;
            idle_checks = if gate.in_flight() == 0 {
                idle_checks + 1
            } else {
                0
            };
        }
    };
    if tokio::time::timeout(grace, idle).await.is_err() {
        tracing::warn!(
            abandoned = gate.in_flight(),
            "shutdown grace period over: requests still in flight are abandoned"
        );
    }
}

fn load_tls(config: &Config) -> Result<Option<ServerTlsConfig>, StartError> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|err| StartError::Tls(format!("cannot read {}: {err}", path.display())))
    };
    let identity = Identity::from_pem(read(&tls.cert_path)?, read(&tls.key_path)?);
    let config = ServerTlsConfig::new().identity(identity);
    // Parsed here, so a bad certificate stops `serve` before it says it
    // is listening.
    tonic::transport::Server::builder().tls_config(config.clone()).map_err(|err| {
        StartError::Tls(format!(
            "certificate {} with key {} is not usable (PEM certificate chain and its private key expected): {err}",
            tls.cert_path.display(),
            tls.key_path.display()
        ))
    })?;
    Ok(Some(config))
}

/// tonic's server with the HTTP/2 settings of `[connections]`, and TLS.
fn grpc_builder(
    connections: &ConnectionsConfig,
    tls: Option<ServerTlsConfig>,
) -> Result<tonic::transport::Server, StartError> {
    let builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(ConnectionsConfig::optional(
            connections.keepalive_interval_secs,
        ))
        .http2_keepalive_timeout(Some(Duration::from_secs_f64(
            connections.keepalive_timeout_secs,
        )))
        .http2_max_header_list_size(connections.max_header_list_bytes);
    match tls {
        Some(tls) => builder
            .tls_config(tls)
            .map_err(|err| StartError::Tls(err.to_string())),
        None => Ok(builder),
    }
}

/// Warns of what the config allows but should not, checks that the
/// playback keys it names are in the environment, and loads the TLS files
/// it names.
fn check_config(config: &Config) -> Result<Option<ServerTlsConfig>, StartError> {
    if let Some(warning) = config.shared_bucket_warning() {
        tracing::warn!("{warning}");
    }
    crate::config::playback_keys(&config.accounts).map_err(StartError::PlaybackKeys)?;
    load_tls(config)
}

/// The catalog of the configured engine.
pub async fn open_catalog(config: &Config) -> Result<Arc<dyn Catalog>, StartError> {
    match config.catalog.engine {
        CatalogEngine::Sled => {
            let path = config.data_dir.join("catalog");
            let cache = config.cache_capacity_bytes;
            // Off the runtime: opening waits for sled's lock and counts
            // every block of the catalog.
            let opening = path.clone();
            let opened = tokio::task::spawn_blocking(move || SledCatalog::open(&opening, cache))
                .await
                .map_err(|err| err.to_string())
                .and_then(|opened| opened.map_err(|err| err.to_string()));
            let catalog = opened.map_err(|message| StartError::Catalog {
                path: path.display().to_string(),
                message,
            })?;
            Ok(Arc::new(SledEngine::new(catalog)))
        }
        CatalogEngine::Postgres => {
            let settings = &config.catalog;
            // Named by its variable only: the value may hold a password.
            let failed = |message: String| StartError::Catalog {
                path: format!("PostgreSQL (${})", settings.url_env),
                message,
            };
            let options = PgOptions::from_config(settings).map_err(failed)?;
            let catalog = PgCatalog::open(&options)
                .await
                .map_err(|err| failed(err.to_string()))?;
            Ok(Arc::new(catalog))
        }
    }
}

impl Server {
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        Server::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn bind_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        // The checks of the file come first: a mistake in it is reported
        // without reaching for the database.
        let tls = check_config(config)?;
        let catalog = open_catalog(config).await?;
        Server::assemble(config, tls, catalog, clock).await
    }

    /// Serves `catalog`, opened by the caller, in place of the one
    /// `[catalog]` names: for a process that embeds the service and
    /// reaches its catalog by other means than an environment variable
    /// (the PostgreSQL connection string is read from one otherwise).
    pub async fn bind_with_catalog(
        config: &Config,
        catalog: Arc<dyn Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        let tls = check_config(config)?;
        Server::assemble(config, tls, catalog, clock).await
    }

    async fn assemble(
        config: &Config,
        tls: Option<ServerTlsConfig>,
        catalog: Arc<dyn Catalog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        let storage = Storage::from_config(config).map_err(StartError::Storage)?;
        // Bound first: where players reach it goes into the URLs signed.
        let playback_bound = config.playback.listen.map(bind_http).transpose()?;
        let playback_signing = playback_signing(config, playback_bound.as_ref())?;
        let clock_for_sweeper = clock.clone();
        let service_storage = storage.clone();
        let service = Arc::new(IndexService {
            catalog: catalog.clone(),
            storage,
            clock,
            max_segments_per_manifest: config.max_segments_per_manifest,
            max_register_batch: config.max_register_batch,
            span_gap: (config.span_gap_seconds * 1e6).round() as crate::manifest::Micros,
            token_locks: Default::default(),
            playback_signing,
            keyframes: Default::default(),
        });
        let accounts = Arc::new(Accounts::from_config(config));
        // Before anything reports a metric, so none is lost.
        let metrics = match &config.metrics {
            Some(metrics) => {
                let listener = bind_http(metrics.listen)?;
                telemetry::exporter::install();
                Some(listener)
            }
            None => None,
        };
        let admission = crate::admission::from_config(
            config,
            &accounts.account_ids(),
            clock_for_sweeper.clone(),
        )
        .await
        .map_err(StartError::Limits)?;
        let webhook = match &config.srs_webhook {
            Some(webhook_config) => {
                let hook = Webhook::new(
                    webhook_config,
                    &accounts,
                    service.clone(),
                    admission.clone(),
                    clock_for_sweeper.clone(),
                )
                .map_err(StartError::Webhook)?;
                Some((Arc::new(hook), bind_http(webhook_config.listen)?))
            }
            None => None,
        };
        let playback = playback_bound
            .map(|bound| playback_listener(config, &service, &accounts, &admission, bound));
        let gate = GateLayer::new(accounts, admission.clone());
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    address: config.listen,
                    source,
                })?;
        let side_count = [webhook.is_some(), playback.is_some(), metrics.is_some()]
            .into_iter()
            .filter(|&on| on)
            .count();
        Ok(Server {
            listener,
            api: GrpcApi::new(service.clone()),
            gate,
            admission,
            tls,
            catalog,
            clock: clock_for_sweeper,
            sweep_interval: Duration::from_secs_f64(config.sweep_interval_secs),
            sweep_batch: config.sweep_batch,
            webhook,
            playback,
            metrics,
            storage: service_storage,
            max_message_bytes: config.max_message_bytes,
            shutdown_grace: Duration::from_secs_f64(config.shutdown_grace_secs),
            connections: config.connections.clone(),
            connection_limits: Limits::apply(&config.connections, side_count),
        })
    }

    /// Address of the Prometheus listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Address of the playback listener, when configured.
    pub fn playback_addr(&self) -> Option<SocketAddr> {
        self.playback
            .as_ref()
            .and_then(|(_, listener)| listener.local_addr().ok())
    }

    /// Address of the SRS callback listener, when configured.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook
            .as_ref()
            .and_then(|(_, listener)| listener.local_addr().ok())
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let (reflection_v1, reflection_v1alpha) = reflection_services();
        let service = RecordIndexServer::new(self.api)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes);
        self.connection_limits.log(&self.connections);
        let incoming = Incoming::new(self.listener, self.connection_limits);
        let pruner = tokio::spawn(prune_forever(self.admission.clone()));
        let sweeper = tokio::spawn(sweep_forever(
            self.catalog.clone(),
            self.clock.clone(),
            self.sweep_interval,
            self.sweep_batch,
        ));
        let (reporter, health) = tonic_health::server::health_reporter();
        // Not serving until the first check passes.
        set_health(&reporter, tonic_health::ServingStatus::NotServing).await;
        let health_checks = tokio::spawn(report_health(
            reporter.clone(),
            self.catalog.clone(),
            self.storage.clone(),
        ));
        // Dropping the sender tells every listener to stop.
        let (stopping, stopped) = tokio::sync::watch::channel(());
        // The HTTP listeners close connections that send no request head
        // in time, as the gRPC listener closes those without a handshake,
        // and each holds a share of the connection cap.
        let side_limits = SideLimits::of(&self.connection_limits);
        let sides = spawn_sides(self.webhook, self.playback, side_limits, stopped);
        // Scrapes go on while requests drain; the listener stops last.
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.map(|listener| {
            spawn_metrics(listener, self.catalog.clone(), side_limits, metrics_stopped)
        });
        let draining = reporter.clone();
        let (drain_started, drain_begins) = tokio::sync::oneshot::channel::<Instant>();
        // Set when draining begins: the gRPC drain and the HTTP listeners' share
        // one grace period.
        let grace_ends = std::sync::OnceLock::new();
        let shutdown = async move {
            shutdown.await;
            // Draining: load balancers stop sending while in-flight requests
            // finish.
            set_health(&draining, tonic_health::ServingStatus::NotServing).await;
            drop(stopping);
            let _ = drain_started.send(Instant::now());
        };
        let builder = grpc_builder(&self.connections, self.tls)?;
        let gate = self.gate.clone();
        let serving = builder
            .layer(TrackRequests)
            .layer(self.gate)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown);
        let grace = self.shutdown_grace;
        let grace_over = drain(&gate, grace, drain_begins, &grace_ends);
        let result = tokio::select! {
            result = serving => result,
            () = grace_over => Ok(()),
        };
        pruner.abort();
        sweeper.abort();
        health_checks.abort();
        let deadline = grace_ends.get().copied();
        finish_sides(sides, deadline.unwrap_or_else(|| Instant::now() + grace)).await;
        if let Err(err) = self.catalog.sync().await {
            tracing::error!(error = %err, "final catalog flush failed");
        }
        let _ = metrics_stop.send(());
        if let Some(metrics) = metrics {
            let _ = tokio::time::timeout(Duration::from_secs(1), metrics).await;
        }
        tracing::info!("stopped: catalog flushed");
        Ok(result?)
    }
}
