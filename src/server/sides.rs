//! The HTTP listeners beside the gRPC one (playback, SRS callbacks,
//! metrics): bound before the service says it listens, run until the
//! gRPC side drains, and given what is left of its grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::StartError;
use crate::auth::Accounts;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::connections::side::SideLimits;
use crate::playback::Playback;
use crate::service::{IndexService, PlaybackSigning};
use crate::telemetry;
use crate::webhook::Webhook;

/// Binds an HTTP side listener (webhook, metrics) before the service says
/// it is listening, so a taken port stops `serve` at once.
pub(super) fn bind_http(address: SocketAddr) -> Result<std::net::TcpListener, StartError> {
    let bind = || {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    bind().map_err(|source| StartError::Listen { address, source })
}

/// How playback URLs are signed: the accounts' keys, and where players
/// reach the playback listener bound as `bound`.
pub(super) fn playback_signing(
    config: &Config,
    bound: Option<&std::net::TcpListener>,
) -> Result<PlaybackSigning, StartError> {
    let address = bound.and_then(|listener| listener.local_addr().ok());
    Ok(PlaybackSigning {
        keys: crate::config::playback_keys(&config.accounts).map_err(StartError::PlaybackKeys)?,
        local_mode: config.is_local_mode(),
        origin: config.playback.origin(address),
    })
}

/// The playback listener `[playback]` asks for, on `bound`, with what it
/// serves.
pub(super) fn playback_listener(
    config: &Config,
    service: &Arc<IndexService>,
    accounts: &Arc<Accounts>,
    admission: &Arc<dyn crate::admission::Admission>,
    bound: std::net::TcpListener,
) -> (Arc<Playback>, std::net::TcpListener) {
    let playback = Playback {
        service: service.clone(),
        accounts: accounts.clone(),
        admission: admission.clone(),
        live_idle: config.playback.live_idle(),
        cors: crate::playback::answer::Cors::new(&config.playback.cors_origins),
        objects: config.is_local_mode().then(|| {
            crate::playback::objects::Objects::for_local_mode(
                service.storage.clone(),
                admission.clone(),
            )
        }),
    };
    (Arc::new(playback), bound)
}

/// Runs an HTTP side listener (SRS callbacks, playback) until it stops.
fn spawn_side(
    name: &'static str,
    serving: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = serving.await {
            tracing::error!(error = %err, listener = name, "HTTP listener failed");
        }
    })
}

/// Starts the SRS callback and playback listeners that are configured;
/// each stops once `stopped` changes.
pub(super) fn spawn_sides(
    webhook: Option<(Arc<Webhook>, std::net::TcpListener)>,
    playback: Option<(Arc<Playback>, std::net::TcpListener)>,
    limits: SideLimits,
    stopped: tokio::sync::watch::Receiver<()>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut sides = Vec::new();
    if let Some((hook, listener)) = webhook {
        let stop = stop_signal(stopped.clone());
        sides.push(spawn_side(
            "SRS webhook",
            hook.serve(listener, limits, stop),
        ));
    }
    if let Some((playback, listener)) = playback {
        let stop = stop_signal(stopped);
        sides.push(spawn_side(
            "playback",
            playback.serve(listener, limits, stop),
        ));
    }
    sides
}

/// Resolves once the gRPC side starts draining.
async fn stop_signal(mut stopped: tokio::sync::watch::Receiver<()>) {
    let _ = stopped.changed().await;
}

/// Serves `/metrics` until `stopped` resolves, the catalog's counts
/// refreshed at each scrape.
pub(super) fn spawn_metrics(
    listener: std::net::TcpListener,
    catalog: Arc<dyn Catalog>,
    limits: SideLimits,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    let refresh = move || {
        let stored = catalog.stored();
        telemetry::stored(stored.segments, stored.manifests);
    };
    tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        if let Err(err) = telemetry::exporter::serve(listener, limits, refresh, stopped).await {
            tracing::error!(error = %err, "metrics listener failed");
        }
    })
}

/// Lets in-flight callbacks finish until `deadline`, what is left of the
/// grace period: a stuck client does not keep the service from flushing
/// and exiting.
pub(super) async fn finish_sides(sides: Vec<tokio::task::JoinHandle<()>>, deadline: Instant) {
    for side in sides {
        if tokio::time::timeout_at(deadline, side).await.is_err() {
            tracing::warn!("HTTP connections still open at shutdown");
        }
    }
}
