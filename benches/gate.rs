//! What the gate (authentication, RAM check, rate limit) costs a request,
//! against the same requests without it, measured in the same run:
//! 1. the gate alone around a service that answers at once;
//! 2. the whole server over gRPC: 100 accounts with keys against local
//!    mode (no keys), on a Create that fails validation right after the
//!    gate (the server's own overhead, no I/O), and on real Creates into the
//!    local store, each flushed before it is answered.
//!
//! Run with `cargo bench --bench gate`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use record_index::admission::InProcessLimiter;
use record_index::api::gate::{GateLayer, RequestContext};
use record_index::auth::{Accounts, keys};
use record_index::clock::SystemClock;
use record_index::config::Config;
use record_index::operations::Operation;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
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
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[rate_limits]\nCreateLiveStreamRecordIndexFiles = 4000000000\nRegisterLiveStreamRecordSegments = 4000000000\n",
        data_dir.display()
    );
    let mut api_keys = Vec::new();
    for index in 0..ACCOUNTS {
        let id = format!("{}", 1_000_000 + index);
        let key = keys::generate().unwrap();
        text.push_str(&format!("[[accounts]]\nid = \"{id}\"\ndomains = [\"d{index}.example.com\"]\nbuckets = [\"bucket-{index}\"]\n"));
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
    let limiter = Arc::new(InProcessLimiter::new(
        &config,
        &accounts.account_ids(),
        Arc::new(SystemClock),
    ));
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

/// What the clients send: a Create that fails validation right after the
/// gate (the server's own overhead), or a real one that selects, renders
/// and writes a playlist to the local store and flushes the catalog.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Refused,
    Created,
}

/// Registers 10 segments of stream `bench` in each account's domain.
async fn register_streams(
    address: std::net::SocketAddr,
    api_keys: &[String],
    start: chrono::DateTime<chrono::Utc>,
) {
    let mut client = RecordIndexClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    for index in 0..ACCOUNTS {
        let segments = (0..10)
            .map(|i| Segment {
                oss_endpoint: "localhost".into(),
                oss_bucket: format!("bucket-{index}"),
                oss_object: format!("live/bench/{i:03}.ts"),
                start_time: (start + chrono::Duration::seconds(6 * i))
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
                duration: 6.0,
                ..Default::default()
            })
            .collect();
        let mut request = tonic::Request::new(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: format!("d{index}.example.com"),
            app_name: "live".into(),
            stream_name: "bench".into(),
            segments,
            client_token: String::new(),
        });
        if let Some(key) = api_keys.get(index) {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        client
            .register_live_stream_record_segments(request)
            .await
            .unwrap();
    }
}

/// Requests/s of `CLIENTS` concurrent clients calling Create, each call for
/// the next of the `ACCOUNTS` accounts in turn.
async fn throughput(config_text: &str, api_keys: &[String], load: Load) -> f64 {
    // A catalog of its own each run, so runs do not see each other's data.
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(config_text).unwrap();
    config.data_dir = data_dir.path().to_path_buf();
    let config = config.finish().unwrap();
    let server = Server::bind(&config).await.unwrap();
    let address = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    // Whole seconds, so the range below selects exactly the ten segments.
    let start = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 1800, 0).unwrap();
    if load == Load::Created {
        register_streams(address, api_keys, start).await;
    }
    let at = |seconds: i64| {
        (start + chrono::Duration::seconds(seconds))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let (valid_start, valid_end) = (at(-1), at(61));
    let mut tasks = Vec::new();
    for client_index in 0..CLIENTS {
        let api_keys = api_keys.to_vec();
        let (valid_start, valid_end) = (valid_start.clone(), valid_end.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = RecordIndexClient::connect(format!("http://{address}"))
                .await
                .unwrap();
            let deadline = Instant::now() + E2E_WINDOW;
            let mut calls = 0u64;
            while Instant::now() < deadline {
                let account = (client_index + calls as usize * CLIENTS) % ACCOUNTS;
                let mut request = tonic::Request::new(CreateLiveStreamRecordIndexFilesRequest {
                    domain_name: format!("d{account}.example.com"),
                    app_name: "live".into(),
                    stream_name: "bench".into(),
                    oss_endpoint: "localhost".into(),
                    oss_bucket: format!("bucket-{account}"),
                    oss_object: "live/bench/index.m3u8".into(),
                    start_time: match load {
                        Load::Refused => "not a time".into(),
                        Load::Created => valid_start.clone(),
                    },
                    end_time: valid_end.clone(),
                    ..Default::default()
                });
                if let Some(key) = api_keys.get(account) {
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {key}").parse().unwrap());
                }
                let answer = client.create_live_stream_record_index_files(request).await;
                match load {
                    Load::Refused => {
                        let status = answer.unwrap_err();
                        assert!(
                            status.message().starts_with("InvalidStartTime.Malformed"),
                            "{status:?}"
                        );
                    }
                    Load::Created => {
                        let info = answer.unwrap().into_inner().record_info.unwrap();
                        assert_eq!(info.duration, 60.0, "the ten segments");
                    }
                }
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

async fn through_the_server(load: Load) {
    let tenants_dir = tempfile::tempdir().unwrap();
    let (tenants, api_keys) = tenant_config(tenants_dir.path());
    let local_dir = tempfile::tempdir().unwrap();
    let local = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[rate_limits]\nCreateLiveStreamRecordIndexFiles = 4000000000\nRegisterLiveStreamRecordSegments = 4000000000\n",
        local_dir.path().display()
    );
    // Alternated, best of three each, so a busy moment of the machine does
    // not decide the ratio.
    let (mut without, mut with) = (0f64, 0f64);
    for _ in 0..3 {
        without = without.max(throughput(&local, &[], load).await);
        with = with.max(throughput(&tenants, &api_keys, load).await);
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
    println!(
        "whole server over gRPC, Create refused after the gate, {CLIENTS} clients, {E2E_WINDOW:?} a run, best of 3:"
    );
    runtime.block_on(through_the_server(Load::Refused));
    println!(
        "whole server over gRPC, Create of a 10-segment playlist into the local store (durable), {CLIENTS} clients, {E2E_WINDOW:?} a run, best of 3:"
    );
    runtime.block_on(through_the_server(Load::Created));
}
