//! What the service reports about itself: Prometheus metrics, recorded
//! through the `metrics` facade so the code that counts does not know
//! whether anyone scrapes. Without `[metrics]` in the config no recorder is
//! installed and every call here is a no-op.
//!
//! The names below are the public list operators alert on; `docs/metrics.md`
//! documents each one and a test keeps the two in step.

pub mod exporter;

use std::time::Duration;

use metrics::{counter, gauge, histogram};

/// Requests answered, by `rpc` and `code` (the API's error code, or `OK`).
pub const REQUESTS: &str = "record_index_requests_total";
/// Time from a request's arrival to its answer, by `rpc`.
pub const REQUEST_SECONDS: &str = "record_index_request_duration_seconds";
/// Requests being handled now.
pub const REQUESTS_IN_FLIGHT: &str = "record_index_requests_in_flight";
/// Requests refused with Throttling.User, by `account` and `rpc`.
pub const THROTTLED: &str = "record_index_rate_limited_total";
/// Object-storage calls, by `endpoint` and `operation` (one per attempt).
pub const STORE_SECONDS: &str = "record_index_object_store_request_duration_seconds";
/// Failed object-storage calls, by `endpoint`, `operation` and `kind`.
pub const STORE_ERRORS: &str = "record_index_object_store_errors_total";
/// Segments in the catalog, expired ones included until swept.
pub const SEGMENTS_STORED: &str = "record_index_segments_stored";
/// Manifests in the catalog, expired ones included until swept.
pub const MANIFESTS_STORED: &str = "record_index_manifests_stored";
/// Sweeps of expired records run.
pub const SWEEPS: &str = "record_index_sweeps_total";
/// Records the sweeper removed, by `kind` (segment, manifest, token).
pub const SWEPT: &str = "record_index_swept_records_total";
/// 1 while the catalog and every object store answer, else 0.
pub const READY: &str = "record_index_ready";
/// With `[limits] backend = "redis"`: 1 while limits are shared through
/// Redis, 0 while this replica limits on its own.
pub const LIMITS_SHARED: &str = "record_index_limits_shared";

/// Every metric, with its type and help text, in the order `/metrics`
/// documents them.
pub const ALL: [(&str, Kind, &str); 12] = [
    (
        REQUESTS,
        Kind::Counter,
        "Requests answered, by rpc and code (the API's error code, or OK).",
    ),
    (
        REQUEST_SECONDS,
        Kind::Histogram,
        "Seconds from a request's arrival to its answer, by rpc.",
    ),
    (
        REQUESTS_IN_FLIGHT,
        Kind::Gauge,
        "Requests being handled now.",
    ),
    (
        THROTTLED,
        Kind::Counter,
        "Requests refused with Throttling.User, by account and rpc.",
    ),
    (
        STORE_SECONDS,
        Kind::Histogram,
        "Seconds per object-storage call attempt, by endpoint and operation.",
    ),
    (
        STORE_ERRORS,
        Kind::Counter,
        "Failed object-storage call attempts, by endpoint, operation and kind.",
    ),
    (
        SEGMENTS_STORED,
        Kind::Gauge,
        "Segments in the catalog (expired ones until the sweeper removes them).",
    ),
    (
        MANIFESTS_STORED,
        Kind::Gauge,
        "Manifests in the catalog (expired ones until the sweeper removes them).",
    ),
    (SWEEPS, Kind::Counter, "Sweeps of expired records run."),
    (
        SWEPT,
        Kind::Counter,
        "Expired records the sweeper removed, by kind (segment, manifest, token).",
    ),
    (
        READY,
        Kind::Gauge,
        "1 while the catalog and every object store answer, else 0.",
    ),
    (
        LIMITS_SHARED,
        Kind::Gauge,
        "1 while rate limits are shared through Redis, 0 while this replica limits on its own.",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Bucket bounds, in seconds, of the latency histograms: from a cached
/// Describe (~100 µs) to an object store at its timeout.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub fn request_started() {
    gauge!(REQUESTS_IN_FLIGHT).increment(1.0);
}

pub fn request_finished(rpc: &'static str, code: &str, elapsed: Duration) {
    gauge!(REQUESTS_IN_FLIGHT).decrement(1.0);
    counter!(REQUESTS, "rpc" => rpc, "code" => code.to_string()).increment(1);
    histogram!(REQUEST_SECONDS, "rpc" => rpc).record(elapsed.as_secs_f64());
}

pub fn throttled(account: &str, rpc: &'static str) {
    counter!(THROTTLED, "account" => account.to_string(), "rpc" => rpc).increment(1);
}

/// One attempt of an object-storage call; `error` names the failure kind.
pub fn store_call(
    endpoint: &str,
    operation: &'static str,
    elapsed: Duration,
    error: Option<&'static str>,
) {
    histogram!(STORE_SECONDS, "endpoint" => endpoint.to_string(), "operation" => operation)
        .record(elapsed.as_secs_f64());
    if let Some(kind) = error {
        counter!(
            STORE_ERRORS,
            "endpoint" => endpoint.to_string(),
            "operation" => operation,
            "kind" => kind
        )
        .increment(1);
    }
}

pub fn stored(segments: u64, manifests: u64) {
    gauge!(SEGMENTS_STORED).set(segments as f64);
    gauge!(MANIFESTS_STORED).set(manifests as f64);
}

pub fn swept(segments: usize, manifests: usize, tokens: usize) {
    counter!(SWEEPS).increment(1);
    for (kind, count) in [
        ("segment", segments),
        ("manifest", manifests),
        ("token", tokens),
    ] {
        counter!(SWEPT, "kind" => kind).increment(count as u64);
    }
}

pub fn ready(ready: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// Whether rate limits are decided in Redis for the fleet (true) or by
/// this replica alone because Redis cannot be reached (false).
pub fn limits_shared(shared: bool) {
    gauge!(LIMITS_SHARED).set(if shared { 1.0 } else { 0.0 });
}
