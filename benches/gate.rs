//! What the gate (authentication, RAM check, rate limit) costs a request,
//! against the same requests without it, measured in the same run:
//! 1. the gate alone around a service that answers at once;
//! 2. the whole server over gRPC: 100 accounts with keys against local
//!    mode (no keys), on an RPC that fails validation right after the gate,
//!    so the figures are the server's own overhead and no I/O.
//!
//! Run with `cargo bench --bench gate`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use record_index::api::gate::{GateLayer, RequestContext};
use record_index::api::rate_limit::RateLimiter;
use record_index::auth::{Accounts, keys};
use record_index::config::Config;
use record_index::operations::Operation;
use record_index::proto::CreateLiveStreamRecordIndexFilesRequest;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::server::Server;
use tower::{Layer, Service, ServiceExt};

const ACCOUNTS: usize = 100;
const GATE_CALLS: usize = 200_000;
const CLIENTS: usize = 8;
const E2E_WINDOW: Duration = Duration::from_secs(2);
const PATH: &str = "/recordindex.v1.RecordIndex/CreateLiveStreamRecordIndexFiles";

/// A config with `ACCOUNTS` accounts of one key each, limits out of reach;
/// returns it with one key per account.
fn tenant_config(data_dir: &std::path::Path) -> (String, Vec<String>) {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[rate_limits]\nCreateLiveStreamRecordIndexFiles = 4000000000\n",
        data_dir.display()
    );
    let mut api_keys = Vec::new();
    for index in 0..ACCOUNTS {
        let id = format!("{}", 1_000_000 + index);
        let key = keys::generate().unwrap();
        text.push_str(&format!("[[accounts]]\nid = \"{id}\"\ndomains = [\"d{index}.example.com\"]\nbuckets = [\"b{index}\"]\n"));
        text.push_str(&keys::config_block(&id, &key));
        api_keys.push(key);
    }
    (text, api_keys)
}

fn request(key: Option<&str>) -> http::Request<tonic::body::Body> {
    let mut builder = http::Request::builder().uri(PATH);
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    builder.body(tonic::body::Body::default()).unwrap()
}

async fn gate_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (text, api_keys) = tenant_config(dir.path());
    let config = Config::from_toml(&text).unwrap().finish().unwrap();
    let accounts = Arc::new(Accounts::from_config(&config));
    let limiter = Arc::new(RateLimiter::new(&config, &accounts.account_ids()));
    // The handler's share of the gate's work: the RAM check on the domain.
    let answer = |request: http::Request<tonic::body::Body>| async move {
        if let Some(context) = request.extensions().get::<RequestContext>() {
            let domain = format!(
                "d{}.example.com",
                context.caller.account.id.parse::<usize>().unwrap() - 1_000_000
            );
            context
                .caller
                .authorize(Operation::CreateLiveStreamRecordIndexFiles, &domain)
                .unwrap();
        }
        Ok::<_, Infallible>(http::Response::new(tonic::body::Body::default()))
    };
    let bare = tower::service_fn(answer);
    let gated = GateLayer::new(accounts, limiter).layer(tower::service_fn(answer));

    let mut figures = Vec::new();
    for (name, mut service, keyed) in [
        (
            "without the gate",
            tower::util::BoxCloneService::new(bare),
            false,
        ),
        (
            "with the gate",
            tower::util::BoxCloneService::new(gated),
            true,
        ),
    ] {
        let started = Instant::now();
        for call in 0..GATE_CALLS {
            let key = keyed.then(|| api_keys[call % ACCOUNTS].as_str());
            let response = service
                .ready()
                .await
                .unwrap()
                .call(request(key))
                .await
                .unwrap();
            assert!(
                response.headers().get("grpc-status").is_none(),
                "{name}: refused"
            );
        }
        let per_call = started.elapsed() / GATE_CALLS as u32;
        println!(
            "  {name:<18} {:>8.0} ns/request  {:>10.0} requests/s",
            per_call.as_nanos(),
            1e9 / per_call.as_nanos() as f64
        );
        figures.push(per_call);
    }
    println!(
        "  gate overhead: {:.0} ns per request ({} accounts, 1 key each)",
        (figures[1].as_nanos() as f64 - figures[0].as_nanos() as f64),
        ACCOUNTS
    );
}

/// Requests/s of `CLIENTS` concurrent clients calling Create with a
/// malformed StartTime, which fails right after the gate.
async fn throughput(config_text: &str, api_keys: &[String]) -> f64 {
    let config = Config::from_toml(config_text).unwrap().finish().unwrap();
    let server = Server::bind(&config).await.unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let key = api_keys.get(client_index % api_keys.len().max(1)).cloned();
        let domain = format!("d{}.example.com", client_index % ACCOUNTS);
        tasks.push(tokio::spawn(async move {
            let mut client = RecordIndexClient::connect(format!("http://{address}"))
                .await
                .unwrap();
            let deadline = Instant::now() + E2E_WINDOW;
            let mut calls = 0u64;
            while Instant::now() < deadline {
                let mut request = tonic::Request::new(CreateLiveStreamRecordIndexFilesRequest {
                    renditions: Vec::new(),
                    clip_mode: String::new(),
                    client_token: String::new(),
                    domain_name: domain.clone(),
                    app_name: "live".into(),
                    stream_name: "bench".into(),
                    oss_endpoint: "localhost".into(),
                    oss_bucket: "b0".into(),
                    oss_object: "x.m3u8".into(),
                    start_time: "not a time".into(),
                    end_time: "2026-01-01T00:00:00Z".into(),
                    end_time_included: false,
                });
                if let Some(key) = &key {
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {key}").parse().unwrap());
                }
                let status = client
                    .create_live_stream_record_index_files(request)
                    .await
                    .unwrap_err();
                assert!(
                    status.message().starts_with("InvalidStartTime.Malformed"),
                    "{status:?}"
                );
                calls += 1;
            }
            calls
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    total as f64 / E2E_WINDOW.as_secs_f64()
}

async fn through_the_server() {
    let tenants_dir = tempfile::tempdir().unwrap();
    let (tenants, api_keys) = tenant_config(tenants_dir.path());
    let local_dir = tempfile::tempdir().unwrap();
    let local = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[rate_limits]\nCreateLiveStreamRecordIndexFiles = 4000000000\n",
        local_dir.path().display()
    );
    // Alternated, best of three each, so a busy moment of the machine does
    // not decide the ratio.
    let (mut without, mut with) = (0f64, 0f64);
    for _ in 0..3 {
        without = without.max(throughput(&local, &[]).await);
        with = with.max(throughput(&tenants, &api_keys).await);
    }
    println!("  local mode (no keys)             {without:>10.0} requests/s");
    println!(
        "  {ACCOUNTS} accounts with keys and RAM   {with:>10.0} requests/s  (ratio {:.3})",
        with / without
    );
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("gate bench: pass --bench (cargo bench) to measure");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    println!("gate (authentication + RAM + rate limit) alone, {GATE_CALLS} calls:");
    runtime.block_on(gate_alone());
    println!("whole server over gRPC, {CLIENTS} clients, {E2E_WINDOW:?} a run, best of 3:");
    runtime.block_on(through_the_server());
}
