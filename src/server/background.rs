//! What the server runs beside its listeners: health reports, the
//! expiry sweep, and admission's pruning.

use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::storage::Storage;
use crate::telemetry;

/// How often admission forgets accounts whose budget is full again.
const ADMISSION_PRUNE_INTERVAL: Duration = Duration::from_secs(30);

/// Forgets, now and then, accounts whose rate budget is full again.
pub(super) async fn prune_forever(admission: Arc<dyn Admission>) {
    let mut ticks = tokio::time::interval(ADMISSION_PRUNE_INTERVAL);
    loop {
        ticks.tick().await;
        admission.prune();
    }
}

/// Reports SERVING on grpc.health.v1.Health once the catalog and every
/// object store have answered, checking again every few seconds, so a load
/// balancer sends traffic only where it can succeed.
pub(super) async fn report_health(
    reporter: tonic_health::server::HealthReporter,
    catalog: Arc<dyn Catalog>,
    storage: Storage,
) {
    use tonic_health::ServingStatus;
    let mut last = None;
    loop {
        let catalog_ok = catalog.check().await.is_ok();
        let storage_ok = storage.check_all().await;
        telemetry::ready(catalog_ok && storage_ok.is_ok());
        let status = if catalog_ok && storage_ok.is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            match (&storage_ok, catalog_ok) {
                (Ok(()), true) => tracing::info!("ready: catalog and object storage answer"),
                (Err(err), _) => {
                    tracing::warn!(error = %err, "not ready: object storage does not answer")
                }
                (Ok(()), false) => tracing::warn!("not ready: the catalog cannot be read"),
            }
            set_health(&reporter, status).await;
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The name health checks use for this service.
const HEALTH_SERVICE_NAME: &str = "recordindex.v1.RecordIndex";

/// Sets the status of the server ("") and of this service alike: a probe
/// may ask for either.
pub(super) async fn set_health(
    reporter: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(HEALTH_SERVICE_NAME, status)
        .await;
}

/// Removes expired records in the background: a bounded batch at a time,
/// again at once while batches come back full.
pub(super) async fn sweep_forever(
    catalog: Arc<dyn Catalog>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    batch: usize,
) {
    loop {
        let more = match catalog.sweep(clock.now(), batch).await {
            Ok(report) => {
                if report != Default::default() {
                    if let Err(err) = catalog.sync().await {
                        tracing::error!(error = %err, "flush after sweep failed");
                    }
                    tracing::info!(
                        manifests = report.manifests,
                        segments = report.segments,
                        tokens = report.tokens,
                        "expired records removed"
                    );
                }
                telemetry::swept(report.segments, report.manifests, report.tokens);
                report.maybe_more(batch)
            }
            Err(err) => {
                tracing::error!(error = %err, "sweep failed");
                false
            }
        };
        if !more {
            tokio::time::sleep(interval).await;
        }
    }
}
