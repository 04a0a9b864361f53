//! The Prometheus endpoint: `GET /metrics` on its own HTTP listener, so
//! scrapes never share a port (or the API keys) with the gRPC service.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper::{Body, Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::connections::side::{self, SideLimits};

use super::{ALL, Kind, LATENCY_BUCKETS};

/// How often histograms drop samples older than their window.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's recorder. The `metrics` facade takes one global recorder,
/// so servers started in one process share it.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        for (name, kind, help) in ALL {
            match kind {
                Kind::Counter => metrics::describe_counter!(name, help),
                Kind::Gauge => metrics::describe_gauge!(name, help),
                Kind::Histogram => {
                    metrics::describe_histogram!(name, metrics::Unit::Seconds, help)
                }
            }
        }
        handle
    })
}

/// Turns metrics on for this process: from here on the service's counters
/// record.
pub fn install() {
    handle();
}

fn answer(request: Request<Body>, refresh: &(dyn Fn() + Send + Sync)) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            refresh();
            Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(Body::from(handle().render()))
                .expect("static headers are valid")
        }
        (_, "/metrics") => Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .body(Body::from("GET only\n"))
            .expect("static headers are valid"),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("metrics are at /metrics\n"))
            .expect("static headers are valid"),
    }
}

/// Serves `/metrics` on `listener` until `shutdown` resolves. `refresh`
/// sets the gauges that are read rather than counted (records stored)
/// just before each scrape, so a scrape is never stale. A connection that
/// has not sent a whole request head within the limits' header timeout (a
/// new one, or one kept alive between scrapes) is closed.
pub async fn serve(
    listener: std::net::TcpListener,
    limits: SideLimits,
    refresh: impl Fn() + Send + Sync + 'static,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    install();
    let upkeep = tokio::spawn(async {
        let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            ticks.tick().await;
            handle().run_upkeep();
        }
    });
    let refresh: Arc<dyn Fn() + Send + Sync> = Arc::new(refresh);
    let handle = move |request| {
        let response = answer(request, refresh.as_ref());
        async move { response }
    };
    let result = side::serve(listener, limits, "metrics", handle, shutdown).await;
    upkeep.abort();
    result
}
