//! Tenancy through the real `record-index` binary: an API key identifies an
//! account, the account's domains and buckets bound what its keys reach, and
//! each key's statements bound what it may do.
//!
//! The same matrix of callers runs against every RPC of the service (the
//! `RPCS` table; a new RPC is one more entry there). After every refusal the
//! test checks that nothing changed: the object store holds exactly the
//! files it held before, and the catalog answers as before (the same
//! playlist for the same range, a stream that did not exist still does not).
//! No key ever shows in an error, its metadata, or the server's log.
//! What the allowed calls of each account write and read back runs on each
//! catalog engine (`on_sled::`, `on_postgres::`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BufMut};
use chrono::{DateTime, Utc};
use common::{
    Addressing, Engine, GRPCURL, assert_error, http_get, recording_start, require, run, seaweedfs,
    utc_millis, utc_seconds,
};
use prost::Message;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, DeleteLiveStreamRecordIndexFilesRequest,
    DescribeLiveStreamRecordContentRequest, DescribeLiveStreamRecordIndexFileRequest,
    DescribeLiveStreamRecordIndexFilesRequest, RecordInfo, RegisterLiveStreamRecordSegmentsRequest,
    RegisterLiveStreamRecordSegmentsResponse, Segment, SignPlaybackUrlRequest,
};
use sha2::{Digest, Sha256};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

// ---------------------------------------------------------------------------
// Accounts and keys
// ---------------------------------------------------------------------------

const DOMAIN_A: &str = "a.example.com";
const DOMAIN_OTHER: &str = "other.example.com";
const DOMAIN_B: &str = "b.example.com";
/// Account 222 also owns every host under b.example.com: a wildcard next to
/// account 111's exact names, which no host matches both of.
const DOMAINS_UNDER_B: &str = "*.b.example.com";
const HOST_UNDER_B: &str = "live.b.example.com";
const BUCKET_A: &str = "a-bucket";
const BUCKET_B: &str = "b-bucket";
/// A well-formed bucket that no account owns.
const BUCKET_NOBODY: &str = "nobody-bucket";
const APP: &str = "live";
const STREAM: &str = "s1";
/// The endpoint of the local directory store the server offers by default.
const LOCAL_ENDPOINT: &str = "localhost";

/// An API key as a client holds it.
#[derive(Clone, Copy, Debug)]
struct Key {
    name: &'static str,
    secret: &'static str,
}

/// `live:*` on every domain of account 111.
const ADMIN_111: Key = Key {
    name: "account 111's admin key",
    secret: "rik_tenancy-admin-111-6c1f0e9a2b7d43c8",
};
/// Only `live:RegisterLiveStreamRecordSegments`, on every domain of 111.
const INGEST_111: Key = Key {
    name: "account 111's ingest-only key",
    secret: "rik_tenancy-ingest-111-9e2d4a7f0c3b51e6",
};
/// Only `live:Describe*`: none of the service's writing RPCs.
const READER_111: Key = Key {
    name: "account 111's describe-only key",
    secret: "rik_tenancy-reader-111-3a8b6c1d9f0e27a4",
};
/// `live:*`, but only on `other.example.com`, another domain of 111.
const SCOPED_111: Key = Key {
    name: "account 111's key scoped to other.example.com",
    secret: "rik_tenancy-scoped-111-0f5e7d2c4b9a8136",
};
/// `live:*` on every domain of account 222.
const ADMIN_222: Key = Key {
    name: "account 222's admin key",
    secret: "rik_tenancy-admin-222-7b3c9d0e1f2a64d5",
};
const KEYS: [Key; 5] = [ADMIN_111, INGEST_111, READER_111, SCOPED_111, ADMIN_222];
/// A well-formed key no account has.
const UNKNOWN_KEY: &str = "rik_tenancy-unknown-5d4c3b2a1f0e9d8c";

fn bearer(key: Key) -> String {
    format!("Bearer {}", key.secret)
}

fn key_block(key: Key, actions: &[&str], resources: &[&str]) -> String {
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|item| format!("\"{item}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[[accounts.keys]]\nsha256 = \"{}\"\nallow = [{{ actions = [{}], resources = [{}] }}]\n",
        hex::encode(Sha256::digest(key.secret.as_bytes())),
        quoted(actions),
        quoted(resources)
    )
}

/// The two accounts, owning `bucket_a` and `bucket_b`. Create's limit is
/// raised so the probes after each refusal never meet it; limits are
/// tests/rate_limits.rs's subject.
fn accounts_toml(bucket_a: &str, bucket_b: &str) -> String {
    let all_of_111 = ["acs:cdn:*:111:domain/*"];
    format!(
        "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 1000\n\n\
         [[accounts]]\nid = \"111\"\ndomains = [\"{DOMAIN_A}\", \"{DOMAIN_OTHER}\"]\nbuckets = [\"{bucket_a}\"]\n\
         {}{}{}{}\n\
         [[accounts]]\nid = \"222\"\ndomains = [\"{DOMAIN_B}\", \"{DOMAINS_UNDER_B}\"]\nbuckets = [\"{bucket_b}\"]\n{}",
        key_block(ADMIN_111, &["live:*"], &all_of_111),
        key_block(
            INGEST_111,
            &["live:RegisterLiveStreamRecordSegments"],
            &all_of_111
        ),
        key_block(READER_111, &["live:Describe*"], &all_of_111),
        key_block(
            SCOPED_111,
            &["live:*"],
            &["acs:cdn:*:111:domain/other.example.com"]
        ),
        key_block(ADMIN_222, &["live:*"], &["acs:cdn:*:222:domain/*"]),
    )
}

// ---------------------------------------------------------------------------
// The server, with its log kept for inspection
// ---------------------------------------------------------------------------

/// Runs the server in the background and SIGKILLs it when our end of its
/// stdin closes: when the fixture drops, and also when the test binary dies
/// without dropping anything.
const GUARD_SCRIPT: &str = r#"
"$@" &
child=$!
exec >/dev/null
read line
kill -KILL "$child"
wait "$child"
"#;

/// A running `record-index serve` whose stderr (its log) goes to a file.
struct Service {
    addr: SocketAddr,
    channel: Channel,
    /// Every line the server printed on stdout (its listeners).
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Root of the local object store: one sub-directory per bucket.
    objects: PathBuf,
    log: PathBuf,
    guard: Child,
    /// Closing it stops the server.
    guard_stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start(extra_toml: &str) -> Service {
        Service::start_on(Engine::Sled, extra_toml).await
    }

    async fn start_on(engine: Engine, extra_toml: &str) -> Service {
        let (catalog, catalog_env) = common::catalog_on(engine).await;
        let dir = tempfile::Builder::new()
            .prefix("record-index-tenancy-")
            .tempdir()
            .unwrap();
        let data_dir = dir.path().join("data");
        let config = dir.path().join("record-index.toml");
        fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n{extra_toml}{catalog}",
                data_dir.display()
            ),
        )
        .unwrap();
        let log = dir.path().join("server.log");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_record-index"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            // The log as an operator gets it by default.
            .env_remove("RUST_LOG")
            .env_remove("RECORD_INDEX_CONFIG")
            .env_remove("RECORD_INDEX_LISTEN")
            .env_remove("RECORD_INDEX_DATA_DIR")
            .env("TEST_S3_KEY", "record-index-test")
            .env("TEST_S3_SECRET", "record-index-test-secret")
            .envs(catalog_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut guard = command.spawn().expect("spawn record-index under sh");
        let guard_stdin = guard.stdin.take();
        let stdout = guard.stdout.take().expect("piped stdout");
        let (first_line_tx, first_line_rx) = tokio::sync::oneshot::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = printed.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = first_line_tx.send(first);
            }
            lines.for_each(|line| kept.lock().unwrap().push(line));
        });
        let mut service = Service {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            channel: Channel::from_static("http://127.0.0.1:1").connect_lazy(),
            stdout: printed,
            objects: data_dir.join("objects"),
            log,
            guard,
            guard_stdin,
            _dir: dir,
        };
        let first_line = tokio::time::timeout(Duration::from_secs(30), first_line_rx)
            .await
            .expect("record-index printed nothing on stdout within 30 s")
            .unwrap_or_else(|_| {
                panic!(
                    "record-index exited before listening; its log:\n{}",
                    service.log_text()
                )
            });
        service.addr = first_line
            .strip_prefix("record-index listening on ")
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first stdout line {first_line:?}"));
        assert!(service.addr.ip().is_loopback(), "{}", service.addr);
        service.channel = Channel::from_shared(format!("http://{}", service.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect to record-index");
        service
    }

    fn client(&self) -> RecordIndexClient<Channel> {
        RecordIndexClient::new(self.channel.clone())
    }

    /// The address of the SRS webhook listener, from the line `serve`
    /// prints after its gRPC listening line.
    async fn webhook_addr(&self) -> SocketAddr {
        const PREFIX: &str = "record-index SRS webhook listening on ";
        for _ in 0..100 {
            let printed = self.stdout.lock().unwrap().clone();
            if let Some(addr) = printed
                .iter()
                .find_map(|line| line.strip_prefix(PREFIX)?.trim().parse().ok())
            {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no SRS webhook listening line on stdout");
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every file of the local object store, with its content.
    fn objects_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let content = fs::read(&path).unwrap_or_default();
                    out.insert(path, content);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.objects, &mut out);
        out
    }

    /// The server's log shows what it refused, and never a key.
    fn assert_log_free_of_keys(&self) {
        let log = self.log_text();
        assert!(
            log.contains("request refused") || log.contains("request failed"),
            "the server logged no refusal; is its log captured? log:\n{log}"
        );
        for key in KEYS {
            assert!(
                !log.contains(key.secret),
                "{} appears in the server's log:\n{log}",
                key.name
            );
        }
        assert!(!log.contains(UNKNOWN_KEY), "a sent key is in the log");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("record-index log:\n{}", self.log_text());
        }
        drop(self.guard_stdin.take());
        let _ = self.guard.wait();
    }
}

// ---------------------------------------------------------------------------
// The RPCs, as the matrix drives them
// ---------------------------------------------------------------------------

/// One call of the matrix: who calls, on which domain, naming which bucket.
#[derive(Clone, Debug)]
struct Call {
    /// The `authorization` metadata sent, if any.
    authorization: Option<String>,
    domain: String,
    /// The bucket under test: Create's OssBucket, the last segment's bucket
    /// of a Register.
    bucket: String,
    /// The calling account's own bucket, for the rest of a Register batch.
    own_bucket: String,
    endpoint: String,
    /// Makes the objects this call names differ from every other call's.
    tag: String,
    /// Start of the recording the stream under test holds.
    t0: DateTime<Utc>,
}

type CallFuture = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// An RPC of the service and how to call it.
struct Rpc {
    /// The method name, as in the gRPC path.
    name: &'static str,
    /// Keys of account 111 whose statements do not allow this RPC.
    keys_without_the_action: &'static [Key],
    /// Whether the request names a bucket (so a bucket of another account
    /// is refused), and the field an InvalidBucket.NotFound names beyond it.
    names_a_bucket: bool,
    bucket_field: Option<&'static str>,
    call: fn(Channel, Call) -> CallFuture,
}

/// Every RPC of `recordindex.v1.RecordIndex`;
/// `reflection_needs_no_key_and_lists_every_rpc` checks that this list and
/// the served service agree.
const RPCS: &[Rpc] = &[
    Rpc {
        name: "CreateLiveStreamRecordIndexFiles",
        keys_without_the_action: &[INGEST_111, READER_111],
        names_a_bucket: true,
        bucket_field: None,
        call: call_create,
    },
    Rpc {
        name: "RegisterLiveStreamRecordSegments",
        keys_without_the_action: &[READER_111],
        names_a_bucket: true,
        bucket_field: Some("Segments[2].OssBucket"),
        call: call_register,
    },
    Rpc {
        name: "DescribeLiveStreamRecordIndexFile",
        keys_without_the_action: &[INGEST_111],
        names_a_bucket: false,
        bucket_field: None,
        call: call_describe_file,
    },
    Rpc {
        name: "DescribeLiveStreamRecordIndexFiles",
        keys_without_the_action: &[INGEST_111],
        names_a_bucket: false,
        bucket_field: None,
        call: call_describe_files,
    },
    Rpc {
        name: "DeleteLiveStreamRecordIndexFiles",
        keys_without_the_action: &[INGEST_111, READER_111],
        names_a_bucket: false,
        bucket_field: None,
        call: call_delete,
    },
    Rpc {
        name: "DescribeLiveStreamRecordContent",
        keys_without_the_action: &[INGEST_111],
        names_a_bucket: false,
        bucket_field: None,
        call: call_content,
    },
    // A signed URL hands out the media: `live:Describe*` does not allow it.
    Rpc {
        name: "SignPlaybackUrl",
        keys_without_the_action: &[INGEST_111, READER_111],
        names_a_bucket: false,
        bucket_field: None,
        call: call_sign,
    },
];

/// The reading and deleting RPCs name the stream under test and, where
/// they need one, a RecordId no manifest has: what they are refused for is
/// the caller, never the record.
fn call_describe_file(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let request = DescribeLiveStreamRecordIndexFileRequest {
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            record_id: "00000000-0000-4000-8000-000000000000".into(),
        };
        RecordIndexClient::new(channel)
            .describe_live_stream_record_index_file(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

fn call_describe_files(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let (start_time, end_time) = range(call.t0);
        let request = DescribeLiveStreamRecordIndexFilesRequest {
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time,
            end_time,
            ..Default::default()
        };
        RecordIndexClient::new(channel)
            .describe_live_stream_record_index_files(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

fn call_delete(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let request = DeleteLiveStreamRecordIndexFilesRequest {
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            record_id: vec!["00000000-0000-4000-8000-000000000000".into()],
            remove_file: true,
        };
        RecordIndexClient::new(channel)
            .delete_live_stream_record_index_files(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

fn call_content(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let (start_time, end_time) = range(call.t0);
        let request = DescribeLiveStreamRecordContentRequest {
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time,
            end_time,
        };
        RecordIndexClient::new(channel)
            .describe_live_stream_record_content(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

/// The accounts have no playback keys: a caller that passes the checks of
/// its key is told so, which the matrix never reaches.
fn call_sign(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let (start_time, end_time) = range(call.t0);
        let request = SignPlaybackUrlRequest {
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time,
            end_time,
            ..Default::default()
        };
        RecordIndexClient::new(channel)
            .sign_playback_url(with_authorization(request, call.authorization.as_deref()))
            .await
            .map(drop)
    })
}

fn with_authorization<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("ASCII metadata"));
    }
    request
}

fn seconds_after(t0: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(seconds)
}

/// The range every Create of the stream under test asks for: the five
/// baseline segments, and room for any segment a refused Register might
/// have slipped in.
fn range(t0: DateTime<Utc>) -> (String, String) {
    (
        utc_seconds(seconds_after(t0, -1)),
        utc_seconds(seconds_after(t0, 60)),
    )
}

fn segment(endpoint: &str, bucket: &str, object: String, start: DateTime<Utc>) -> Segment {
    Segment {
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: object,
        start_time: utc_millis(start),
        duration: 6.0,
        sequence: 0,
        width: 640,
        height: 360,
        format: "ts".into(),
        size: 1000,
    }
}

fn create_request(
    domain: &str,
    endpoint: &str,
    bucket: &str,
    object: &str,
    t0: DateTime<Utc>,
) -> CreateLiveStreamRecordIndexFilesRequest {
    let (start_time, end_time) = range(t0);
    CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        client_token: String::new(),
        domain_name: domain.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        oss_endpoint: endpoint.into(),
        oss_bucket: bucket.into(),
        oss_object: object.into(),
        start_time,
        end_time,
        end_time_included: false,
    }
}

fn call_create(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let request = create_request(
            &call.domain,
            &call.endpoint,
            &call.bucket,
            &format!("refused/{}.m3u8", call.tag),
            call.t0,
        );
        RecordIndexClient::new(channel)
            .create_live_stream_record_index_files(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

/// Three segments inside the range of the stream under test, the last one in
/// `call.bucket`.
fn call_register(channel: Channel, call: Call) -> CallFuture {
    Box::pin(async move {
        let segments = (0..3)
            .map(|i| {
                let bucket = if i == 2 {
                    &call.bucket
                } else {
                    &call.own_bucket
                };
                segment(
                    &call.endpoint,
                    bucket,
                    format!("{APP}/{STREAM}/{}-{i}.ts", call.tag),
                    seconds_after(call.t0, 30 + 6 * i),
                )
            })
            .collect();
        let request = RegisterLiveStreamRecordSegmentsRequest {
            client_token: String::new(),
            domain_name: call.domain.clone(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            segments,
        };
        RecordIndexClient::new(channel)
            .register_live_stream_record_segments(with_authorization(
                request,
                call.authorization.as_deref(),
            ))
            .await
            .map(drop)
    })
}

// ---------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Refusal {
    Unauthenticated,
    Forbidden,
    BucketNotFound,
}

impl Refusal {
    fn codes(self) -> (Code, &'static str) {
        match self {
            Refusal::Unauthenticated => (Code::Unauthenticated, "InvalidAccessKeyId"),
            Refusal::Forbidden => (Code::PermissionDenied, "Forbidden.RAM"),
            Refusal::BucketNotFound => (Code::NotFound, "InvalidBucket.NotFound"),
        }
    }
}

/// A caller the service must refuse.
struct Case {
    what: String,
    authorization: Option<String>,
    domain: &'static str,
    bucket: &'static str,
    refusal: Refusal,
}

fn case(
    what: impl Into<String>,
    authorization: Option<String>,
    domain: &'static str,
    bucket: &'static str,
    refusal: Refusal,
) -> Case {
    Case {
        what: what.into(),
        authorization,
        domain,
        bucket,
        refusal,
    }
}

fn unauthenticated_cases() -> Vec<Case> {
    let refused = |what: &str, authorization: Option<String>| {
        case(
            what,
            authorization,
            DOMAIN_A,
            BUCKET_A,
            Refusal::Unauthenticated,
        )
    };
    vec![
        refused("no authorization metadata", None),
        refused(
            "a key no account has",
            Some(format!("Bearer {UNKNOWN_KEY}")),
        ),
        refused("the Basic scheme", Some("Basic x".into())),
        refused(
            "a valid key under the Basic scheme",
            Some(format!("Basic {}", ADMIN_111.secret)),
        ),
        refused(
            "a valid key without a scheme",
            Some(ADMIN_111.secret.into()),
        ),
        refused("Bearer without a key", Some("Bearer".into())),
        refused("Bearer and blanks", Some("Bearer    ".into())),
        refused(
            "Bearer glued to a valid key",
            Some(format!("Bearer{}", ADMIN_111.secret)),
        ),
    ]
}

fn forbidden_cases(rpc: &Rpc) -> Vec<Case> {
    let mut cases = vec![
        case(
            "account 222's key on account 111's domain",
            Some(bearer(ADMIN_222)),
            DOMAIN_A,
            BUCKET_B,
            Refusal::Forbidden,
        ),
        case(
            "account 111's admin key on account 222's domain",
            Some(bearer(ADMIN_111)),
            DOMAIN_B,
            BUCKET_A,
            Refusal::Forbidden,
        ),
        case(
            "account 111's admin key on a host of account 222's wildcard",
            Some(bearer(ADMIN_111)),
            HOST_UNDER_B,
            BUCKET_A,
            Refusal::Forbidden,
        ),
        case(
            "a key scoped to another domain of the account",
            Some(bearer(SCOPED_111)),
            DOMAIN_A,
            BUCKET_A,
            Refusal::Forbidden,
        ),
    ];
    for key in rpc.keys_without_the_action {
        cases.push(case(
            format!("{}, which lacks the action", key.name),
            Some(bearer(*key)),
            DOMAIN_A,
            BUCKET_A,
            Refusal::Forbidden,
        ));
    }
    cases
}

fn bucket_cases() -> Vec<Case> {
    vec![
        case(
            "account 111's admin key naming account 222's bucket",
            Some(bearer(ADMIN_111)),
            DOMAIN_A,
            BUCKET_B,
            Refusal::BucketNotFound,
        ),
        case(
            "account 111's admin key naming a bucket no account owns",
            Some(bearer(ADMIN_111)),
            DOMAIN_A,
            BUCKET_NOBODY,
            Refusal::BucketNotFound,
        ),
    ]
}

/// No key may be echoed anywhere in a status: message, metadata, details.
fn assert_no_key_in(status: &Status, context: &str) {
    let mut texts = vec![status.message().to_string()];
    for entry in status.metadata().iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(name, value) = entry {
            texts.push(format!("{}: {}", name, value.to_str().unwrap_or("")));
        }
    }
    texts.push(String::from_utf8_lossy(status.details()).into_owned());
    if let Some(info) = status.get_details_error_info() {
        texts.extend(info.metadata.values().cloned());
    }
    for text in texts {
        for key in KEYS {
            assert!(
                !text.contains(key.secret),
                "{context}: {} is echoed in {text:?}",
                key.name
            );
        }
        assert!(
            !text.contains(UNKNOWN_KEY),
            "{context}: the sent key is echoed in {text:?}"
        );
    }
}

/// A server with both accounts, and the state every refusal must leave
/// alone: account 111's stream a.example.com/live/s1 with five segments,
/// its playlist over the test range, and no stream s1 on b.example.com.
struct Tenancy {
    service: Service,
    t0: DateTime<Utc>,
    /// The playlist of the range, as first written.
    baseline_playlist: String,
    baseline_objects: BTreeMap<PathBuf, Vec<u8>>,
}

impl Tenancy {
    async fn start() -> Tenancy {
        Tenancy::start_with("").await
    }

    /// The two accounts and `extra_toml` (more listeners).
    async fn start_with(extra_toml: &str) -> Tenancy {
        let service = Service::start(&format!(
            "{extra_toml}\n{}",
            accounts_toml(BUCKET_A, BUCKET_B)
        ))
        .await;
        let t0 = recording_start(Duration::from_secs(20 * 60));
        let segments = (0..5)
            .map(|i| {
                segment(
                    LOCAL_ENDPOINT,
                    BUCKET_A,
                    format!("{APP}/{STREAM}/seg{i}.ts"),
                    seconds_after(t0, 6 * i),
                )
            })
            .collect();
        let registered = register(&service, ADMIN_111, DOMAIN_A, STREAM, segments)
            .await
            .expect("account 111's admin key registers on its domain");
        assert_eq!((registered.accepted, registered.duplicates), (5, 0));
        let mut tenancy = Tenancy {
            service,
            t0,
            baseline_playlist: String::new(),
            baseline_objects: BTreeMap::new(),
        };
        tenancy.baseline_playlist = tenancy
            .probe_playlist()
            .await
            .expect("account 111's admin key creates the playlist of its stream");
        let uris: Vec<&str> = tenancy
            .baseline_playlist
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .collect();
        assert_eq!(
            uris,
            (0..5)
                .map(|i| format!("../{APP}/{STREAM}/seg{i}.ts"))
                .collect::<Vec<_>>()
        );
        tenancy.baseline_objects = tenancy.service.objects_snapshot();
        tenancy.assert_unchanged("after the baseline").await;
        tenancy
    }

    /// Writes the playlist of the test range with account 111's admin key,
    /// always to the same key, and reads it back.
    async fn probe_playlist(&self) -> Result<String, Status> {
        let request = create_request(DOMAIN_A, LOCAL_ENDPOINT, BUCKET_A, "probe/s1.m3u8", self.t0);
        let info = create(&self.service, ADMIN_111, request).await?;
        Ok(fs::read_to_string(
            self.service
                .objects
                .join(&info.oss_bucket)
                .join(&info.oss_object),
        )
        .expect("the probe playlist is in the local store"))
    }

    /// Nothing written, and the catalog answers as it did.
    async fn assert_unchanged(&self, context: &str) {
        assert!(
            self.service.objects_snapshot() == self.baseline_objects,
            "{context}: the object store changed: now {:?}, before {:?}",
            self.service.objects_snapshot().keys().collect::<Vec<_>>(),
            self.baseline_objects.keys().collect::<Vec<_>>()
        );
        match self.probe_playlist().await {
            Ok(playlist) => assert_eq!(
                playlist, self.baseline_playlist,
                "{context}: the same range now gives another playlist"
            ),
            Err(status) => panic!(
                "{context}: the playlist of the same range can no longer be written: {status:?}"
            ),
        }
        let request = create_request(DOMAIN_B, LOCAL_ENDPOINT, BUCKET_B, "probe/s1.m3u8", self.t0);
        match create(&self.service, ADMIN_222, request).await {
            Ok(info) => panic!("{context}: b.example.com now has a stream s1: {info:?}"),
            Err(status) => assert_error(&status, Code::NotFound, "InvalidStream.NotFound"),
        };
        assert!(
            self.service.objects_snapshot() == self.baseline_objects,
            "{context}: the probes changed the object store"
        );
    }

    fn call(&self, rpc: &Rpc, case: &Case, index: usize) -> CallFuture {
        (rpc.call)(
            self.service.channel.clone(),
            Call {
                authorization: case.authorization.clone(),
                domain: case.domain.into(),
                bucket: case.bucket.into(),
                own_bucket: BUCKET_A.into(),
                endpoint: LOCAL_ENDPOINT.into(),
                tag: format!("{}-{index}", rpc.name),
                t0: self.t0,
            },
        )
    }

    /// Runs every case against every RPC: each is refused with its code, the
    /// status carries no key, and nothing changed.
    async fn run_matrix(&self, cases_of: impl Fn(&Rpc) -> Vec<Case>) {
        let mut ran = 0;
        for rpc in RPCS {
            for (index, case) in cases_of(rpc).iter().enumerate() {
                let context = format!("{} with {}", rpc.name, case.what);
                let status = self
                    .call(rpc, case, index)
                    .await
                    .expect_err(&format!("{context}: the call must be refused"));
                let (code, error_code) = case.refusal.codes();
                assert_error(&status, code, error_code);
                assert_no_key_in(&status, &context);
                if let Refusal::BucketNotFound = case.refusal {
                    let message = status.message();
                    assert!(
                        message.contains(case.bucket),
                        "{context}: {message:?} does not name the bucket"
                    );
                    if let Some(field) = rpc.bucket_field {
                        assert!(
                            message.contains(field),
                            "{context}: {message:?} does not name {field}"
                        );
                    }
                }
                self.assert_unchanged(&context).await;
                ran += 1;
            }
        }
        assert!(ran >= 2, "the matrix ran {ran} cases");
    }
}

async fn register(
    service: &Service,
    key: Key,
    domain: &str,
    stream: &str,
    segments: Vec<Segment>,
) -> Result<RegisterLiveStreamRecordSegmentsResponse, Status> {
    let request = RegisterLiveStreamRecordSegmentsRequest {
        client_token: String::new(),
        domain_name: domain.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        segments,
    };
    service
        .client()
        .register_live_stream_record_segments(with_authorization(request, Some(&bearer(key))))
        .await
        .map(|response| response.into_inner())
}

async fn create(
    service: &Service,
    key: Key,
    request: CreateLiveStreamRecordIndexFilesRequest,
) -> Result<RecordInfo, Status> {
    service
        .client()
        .create_live_stream_record_index_files(with_authorization(request, Some(&bearer(key))))
        .await
        .map(|response| {
            response
                .into_inner()
                .record_info
                .expect("RecordInfo in the response")
        })
}

#[tokio::test]
async fn calls_without_a_valid_key_are_unauthenticated() {
    let tenancy = Tenancy::start().await;
    tenancy.run_matrix(|_| unauthenticated_cases()).await;
    tenancy.service.assert_log_free_of_keys();
}

#[tokio::test]
async fn keys_are_confined_to_their_account_actions_and_domains() {
    let tenancy = Tenancy::start().await;
    tenancy.run_matrix(forbidden_cases).await;
    // The keys the matrix refuses SignPlaybackUrl to are refused for their
    // statements: those allowed it get past them, to the account's lack of
    // playback keys.
    let sign = RPCS
        .iter()
        .find(|rpc| rpc.name == "SignPlaybackUrl")
        .expect("SignPlaybackUrl is in the matrix");
    for (key, domain) in [(ADMIN_111, DOMAIN_A), (SCOPED_111, DOMAIN_OTHER)] {
        let allowed = case(
            key.name,
            Some(bearer(key)),
            domain,
            BUCKET_A,
            Refusal::Forbidden,
        );
        let status = tenancy
            .call(sign, &allowed, 0)
            .await
            .expect_err("an account without playback keys signs nothing");
        assert_error(&status, Code::FailedPrecondition, "OperationNotSupport");
    }
    tenancy.service.assert_log_free_of_keys();
}

#[tokio::test]
async fn buckets_of_another_account_are_not_found() {
    let tenancy = Tenancy::start().await;
    tenancy
        .run_matrix(|rpc| {
            if rpc.names_a_bucket {
                bucket_cases()
            } else {
                Vec::new()
            }
        })
        .await;
    tenancy.service.assert_log_free_of_keys();
}

// What each account's keys may reach of the catalog, and that streams of
// the same names on two accounts' domains stay apart, on both engines.
on_both_engines!(each_key_does_what_its_statements_allow);

async fn each_key_does_what_its_statements_allow(engine: Engine) {
    let service = Service::start_on(engine, &accounts_toml(BUCKET_A, BUCKET_B)).await;
    let t0 = recording_start(Duration::from_secs(20 * 60));
    let segments = |bucket: &str, prefix: &str| -> Vec<Segment> {
        (0..3)
            .map(|i| {
                segment(
                    LOCAL_ENDPOINT,
                    bucket,
                    format!("{prefix}/seg{i}.ts"),
                    seconds_after(t0, 6 * i),
                )
            })
            .collect()
    };
    let playlist_uris = |info: &RecordInfo| -> Vec<String> {
        let path = service
            .objects
            .join(&info.oss_bucket)
            .join(&info.oss_object);
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(str::to_string)
            .collect()
    };

    // The ingest-only key registers; the admin key of the same account
    // indexes what it registered.
    let registered = register(
        &service,
        INGEST_111,
        DOMAIN_A,
        STREAM,
        segments(BUCKET_A, "ingest"),
    )
    .await
    .expect("the ingest-only key registers");
    assert_eq!((registered.accepted, registered.duplicates), (3, 0));
    let info = create(
        &service,
        ADMIN_111,
        create_request(DOMAIN_A, LOCAL_ENDPOINT, BUCKET_A, "index/a.m3u8", t0),
    )
    .await
    .expect("the admin key creates");
    assert_eq!(
        playlist_uris(&info),
        [
            "../ingest/seg0.ts",
            "../ingest/seg1.ts",
            "../ingest/seg2.ts"
        ]
    );

    // The scoped key does everything on its own domain.
    register(
        &service,
        SCOPED_111,
        DOMAIN_OTHER,
        STREAM,
        segments(BUCKET_A, "other"),
    )
    .await
    .expect("the scoped key registers on its domain");
    let info = create(
        &service,
        SCOPED_111,
        create_request(DOMAIN_OTHER, LOCAL_ENDPOINT, BUCKET_A, "index/o.m3u8", t0),
    )
    .await
    .expect("the scoped key creates on its domain");
    assert_eq!(playlist_uris(&info).len(), 3);

    // Account 222 works in its own domain and bucket, and its stream of the
    // same app and stream name is its own.
    register(
        &service,
        ADMIN_222,
        DOMAIN_B,
        STREAM,
        segments(BUCKET_B, "b")[..2].to_vec(),
    )
    .await
    .expect("account 222 registers on its domain");
    let info = create(
        &service,
        ADMIN_222,
        create_request(DOMAIN_B, LOCAL_ENDPOINT, BUCKET_B, "index/b.m3u8", t0),
    )
    .await
    .expect("account 222 creates in its bucket");
    assert_eq!(playlist_uris(&info), ["../b/seg0.ts", "../b/seg1.ts"]);
    assert!(
        service
            .objects
            .join(BUCKET_B)
            .join("index/b.m3u8")
            .is_file()
    );
    let log = service.log_text();
    for key in KEYS {
        assert!(!log.contains(key.secret), "{} is in the log", key.name);
    }
}

// ---------------------------------------------------------------------------
// S3: a refused request leaves another account's bucket untouched
// ---------------------------------------------------------------------------

/// Keys of the objects in an S3 bucket, from a ListObjects answer.
async fn s3_keys(url: &str) -> BTreeSet<String> {
    let response = http_get(url).await;
    assert_eq!(response.status, 200, "GET {url}: {}", response.text());
    response
        .text()
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
        .collect()
}

#[tokio::test]
async fn another_accounts_s3_bucket_is_never_written() {
    let s3 = seaweedfs();
    let bucket_a = s3.create_bucket().await;
    let bucket_b = s3.create_bucket().await;
    let endpoint = s3.endpoint_name(Addressing::Path);
    let service = Service::start(&format!(
        "{}{}",
        s3.endpoint_toml(Addressing::Path),
        accounts_toml(&bucket_a, &bucket_b)
    ))
    .await;
    let t0 = recording_start(Duration::from_secs(20 * 60));
    let segments: Vec<Segment> = (0..5)
        .map(|i| {
            segment(
                &endpoint,
                &bucket_a,
                format!("{APP}/{STREAM}/seg{i}.ts"),
                seconds_after(t0, 6 * i),
            )
        })
        .collect();
    register(&service, ADMIN_111, DOMAIN_A, STREAM, segments)
        .await
        .expect("account 111 registers segments in its S3 bucket");
    let listing_b = format!("{}/{bucket_b}", s3.url());
    assert!(s3_keys(&listing_b).await.is_empty());

    for rpc in RPCS.iter().filter(|rpc| rpc.names_a_bucket) {
        let status = (rpc.call)(
            service.channel.clone(),
            Call {
                authorization: Some(bearer(ADMIN_111)),
                domain: DOMAIN_A.into(),
                bucket: bucket_b.clone(),
                own_bucket: bucket_a.clone(),
                endpoint: endpoint.clone(),
                tag: format!("s3-{}", rpc.name),
                t0,
            },
        )
        .await
        .expect_err("account 222's S3 bucket is not account 111's");
        assert_error(&status, Code::NotFound, "InvalidBucket.NotFound");
        assert!(status.message().contains(&bucket_b), "{status:?}");
        assert!(
            s3_keys(&listing_b).await.is_empty(),
            "{}: a refused call wrote to account 222's bucket",
            rpc.name
        );
    }

    // Account 111's own playlist holds only what it registered.
    let info = create(
        &service,
        ADMIN_111,
        create_request(DOMAIN_A, &endpoint, &bucket_a, "index/a.m3u8", t0),
    )
    .await
    .expect("account 111 creates in its S3 bucket");
    let playlist = s3.get_object(&bucket_a, &info.oss_object).await;
    assert_eq!(playlist.status, 200);
    let uris: Vec<String> = playlist
        .text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_string)
        .collect();
    assert_eq!(
        uris,
        (0..5)
            .map(|i| format!("../{APP}/{STREAM}/seg{i}.ts"))
            .collect::<Vec<_>>()
    );

    // Account 222 writes its own bucket, which the listing then shows.
    register(
        &service,
        ADMIN_222,
        DOMAIN_B,
        STREAM,
        vec![segment(&endpoint, &bucket_b, "b/seg0.ts".into(), t0)],
    )
    .await
    .expect("account 222 registers in its bucket");
    create(
        &service,
        ADMIN_222,
        create_request(DOMAIN_B, &endpoint, &bucket_b, "index/b.m3u8", t0),
    )
    .await
    .expect("account 222 creates in its bucket");
    assert_eq!(
        s3_keys(&listing_b).await,
        BTreeSet::from(["index/b.m3u8".to_string()])
    );
    service.assert_log_free_of_keys();
}

// ---------------------------------------------------------------------------
// Reflection, and bodies that are not messages of the RPC
// ---------------------------------------------------------------------------

#[tokio::test]
async fn reflection_needs_no_key_and_lists_every_rpc() {
    let service = Service::start(&accounts_toml(BUCKET_A, BUCKET_B)).await;
    let grpcurl = require(GRPCURL);
    let address = service.addr.to_string();

    let output = run(
        tokio::process::Command::new(&grpcurl).args(["-plaintext", &address, "list"]),
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "grpcurl list: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|line| line == "recordindex.v1.RecordIndex"),
        "grpcurl list printed:\n{stdout}"
    );

    // The served service has exactly the RPCs the matrix covers.
    let output = run(
        tokio::process::Command::new(&grpcurl).args([
            "-plaintext",
            &address,
            "describe",
            "recordindex.v1.RecordIndex",
        ]),
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "grpcurl describe: {stdout}");
    let served: BTreeSet<&str> = stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rpc "))
        .filter_map(|rest| rest.split('(').next())
        .map(str::trim)
        .collect();
    let covered: BTreeSet<&str> = RPCS.iter().map(|rpc| rpc.name).collect();
    assert_eq!(served, covered, "grpcurl describe printed:\n{stdout}");

    // The v1alpha protocol directly, without a key.
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(service.channel.clone())
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection without a key")
        .into_inner();
    let reply = replies
        .message()
        .await
        .expect("a reflection reply")
        .expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply {reply:?}");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "recordindex.v1.RecordIndex"),
        "{list:?}"
    );

    // A user calling through grpcurl sends the key as a header.
    let body = register_json(
        &utc_millis(recording_start(Duration::from_secs(600))),
        "grpcurl/seg0.ts",
    );
    let method = "recordindex.v1.RecordIndex/RegisterLiveStreamRecordSegments";
    let output = run(
        tokio::process::Command::new(&grpcurl).args(["-plaintext", "-d", &body, &address, method]),
        Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("Unauthenticated") && stderr.contains("InvalidAccessKeyId"),
        "grpcurl without a key: {stderr}"
    );
    let header = format!("authorization: {}", bearer(INGEST_111));
    let output = run(
        tokio::process::Command::new(&grpcurl).args([
            "-plaintext",
            "-H",
            &header,
            "-d",
            &body,
            &address,
            method,
        ]),
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "grpcurl with the ingest key: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("\"Accepted\": 1"), "{stdout}");
    service.assert_log_free_of_keys();
}

/// A Register request in the JSON grpcurl takes, as the API pages show it.
fn register_json(start_time: &str, object: &str) -> String {
    format!(
        r#"{{"DomainName": "{DOMAIN_A}", "AppName": "{APP}", "StreamName": "{STREAM}",
            "Segments": [{{"OssEndpoint": "{LOCAL_ENDPOINT}", "OssBucket": "{BUCKET_A}",
            "OssObject": "{object}", "StartTime": "{start_time}", "Duration": 6}}]}}"#
    )
}

/// Sends and receives message bodies as they are, so a test can send bytes
/// that are no message of the RPC.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut body = vec![0; src.remaining()];
        src.copy_to_slice(&mut body);
        Ok(Some(body))
    }
}

async fn raw_call(
    channel: Channel,
    method: &str,
    body: Vec<u8>,
    authorization: Option<&str>,
) -> Result<tonic::Response<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let path: http::uri::PathAndQuery = format!("/recordindex.v1.RecordIndex/{method}")
        .parse()
        .unwrap();
    grpc.unary(with_authorization(body, authorization), path, RawCodec)
        .await
}

#[tokio::test]
async fn a_body_that_is_no_message_of_the_rpc_is_invalid_params() {
    let service = Service::start(&accounts_toml(BUCKET_A, BUCKET_B)).await;
    // Each is invalid as either request: field 1 is a string in both.
    let bodies: [(&str, Vec<u8>); 5] = [
        ("a varint that never ends", vec![0xff; 8]),
        ("field number 0", vec![0x00, 0x01]),
        ("a string field sent as a varint", vec![0x08, 0x01]),
        ("a length beyond the body", vec![0x0a, 0x05, b'a']),
        ("a string that is not UTF-8", vec![0x0a, 0x02, 0xc3, 0x28]),
    ];
    let admin = bearer(ADMIN_111);
    for rpc in RPCS {
        for (what, body) in &bodies {
            let context = format!("{} with {what}", rpc.name);
            let status = raw_call(
                service.channel.clone(),
                rpc.name,
                body.clone(),
                Some(&admin),
            )
            .await
            .expect_err(&context);
            assert_error(&status, Code::InvalidArgument, "InvalidParams");
            // The gate answers before the body is read.
            let status = raw_call(service.channel.clone(), rpc.name, body.clone(), None)
                .await
                .expect_err(&context);
            assert_error(&status, Code::Unauthenticated, "InvalidAccessKeyId");
        }
    }
    assert!(service.objects_snapshot().is_empty());

    // The same path with a valid message works: the body was the fault.
    let t0 = recording_start(Duration::from_secs(600));
    let valid = RegisterLiveStreamRecordSegmentsRequest {
        client_token: String::new(),
        domain_name: DOMAIN_A.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        segments: vec![segment(LOCAL_ENDPOINT, BUCKET_A, "raw/seg0.ts".into(), t0)],
    };
    let response = raw_call(
        service.channel.clone(),
        "RegisterLiveStreamRecordSegments",
        valid.encode_to_vec(),
        Some(&admin),
    )
    .await
    .expect("a valid message through the raw codec");
    common::request_id(response.metadata());
    let reply = RegisterLiveStreamRecordSegmentsResponse::decode(response.into_inner().as_slice())
        .expect("a Register reply");
    assert_eq!(reply.accepted, 1);
    service.assert_log_free_of_keys();
}

// ---------------------------------------------------------------------------
// Hosts belong to one account
// ---------------------------------------------------------------------------

/// Runs `serve` on a config that must be refused: it exits with status 2
/// before listening, and its stderr is returned.
fn serve_refused(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("record-index.toml");
    fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n{toml}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env_remove("RECORD_INDEX_CONFIG")
        .env_remove("RECORD_INDEX_LISTEN")
        .env_remove("RECORD_INDEX_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run record-index serve");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stdout.contains("listening"), "it listened:\n{stdout}");
    assert!(
        !dir.path().join("data").join("catalog").exists(),
        "a refused config opened a catalog"
    );
    stderr
}

#[test]
fn accounts_whose_domain_patterns_overlap_are_refused_at_start() {
    let account = |id: &str, domain: &str, key: Key| {
        format!(
            "[[accounts]]\nid = \"{id}\"\ndomains = [\"{domain}\"]\nbuckets = [\"bucket-{id}\"]\n{}",
            key_block(key, &["live:*"], &[&format!("acs:cdn:*:{id}:domain/*")])
        )
    };
    for (exact_or_wild, wildcard) in [
        ("a.example.com", "*.example.com"),
        ("*.example.com", "*.com"),
        ("a.example.com", "a.example.com"),
    ] {
        let stderr = serve_refused(&format!(
            "{}{}",
            account("1000000001", exact_or_wild, ADMIN_111),
            account("3000000003", wildcard, ADMIN_222)
        ));
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| line.contains("3000000003"))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        for named in ["1000000001", exact_or_wild, wildcard] {
            assert!(
                lines[0].contains(&format!("\"{named}\"")),
                "{exact_or_wild} vs {wildcard}: {named} is not named in {:?}",
                lines[0]
            );
        }
    }
}

/// `[srs_webhook]` with one SRS source of account 222 on its own domain.
fn webhook_toml(domain: &str) -> String {
    let digest = hex::encode(Sha256::digest(WEBHOOK_SECRET.as_bytes()));
    format!(
        "[srs_webhook]\nlisten = \"127.0.0.1:0\"\n\
         [[srs_webhook.sources]]\nsecret_sha256 = \"{digest}\"\naccount = \"222\"\n\
         domain = \"{domain}\"\nendpoint = \"{LOCAL_ENDPOINT}\"\nbucket = \"{BUCKET_B}\"\n"
    )
}

const WEBHOOK_SECRET: &str = "srs-source-of-account-222";

#[test]
fn an_srs_source_on_another_accounts_domain_is_refused_at_start() {
    for domain in [DOMAIN_A, DOMAIN_OTHER] {
        let stderr = serve_refused(&format!(
            "{}\n{}",
            webhook_toml(domain),
            accounts_toml(BUCKET_A, BUCKET_B)
        ));
        assert!(
            stderr.contains("\"222\"") && stderr.contains(&format!("\"{domain}\"")),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn srs_callbacks_register_only_on_their_sources_domain() {
    let tenancy = Tenancy::start_with(&webhook_toml(HOST_UNDER_B)).await;
    let webhook = tenancy.service.webhook_addr().await;
    let stream = "hooked";
    // SRS names account 111's domain as its vhost: the source's domain,
    // not what the callback says, decides where the segment goes.
    let body = format!(
        r#"{{"action":"on_hls","vhost":"{DOMAIN_A}","app":"{APP}","stream":"{stream}",
            "duration":6.0,"url":"{APP}/{stream}-0.ts","seq_no":0}}"#
    );
    let answer = common::http_request(
        "POST",
        &format!("http://{webhook}/api/v1/hls?secret={WEBHOOK_SECRET}"),
        None,
        Some("application/json"),
        body.into(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let content = |key: Key, domain: &str| {
        let now = Utc::now();
        let request = DescribeLiveStreamRecordContentRequest {
            domain_name: domain.into(),
            app_name: APP.into(),
            stream_name: stream.into(),
            start_time: utc_seconds(now - chrono::Duration::minutes(10)),
            end_time: utc_seconds(now + chrono::Duration::minutes(1)),
        };
        let mut client = tenancy.service.client();
        async move {
            client
                .describe_live_stream_record_content(with_authorization(
                    request,
                    Some(&bearer(key)),
                ))
                .await
                .map(|answer| answer.into_inner().record_content_info_list.len())
        }
    };
    assert_eq!(content(ADMIN_222, HOST_UNDER_B).await.unwrap(), 1);
    let status = content(ADMIN_111, DOMAIN_A).await.unwrap_err();
    assert_error(&status, Code::NotFound, "InvalidStream.NotFound");
    let status = content(ADMIN_222, DOMAIN_A).await.unwrap_err();
    assert_error(&status, Code::PermissionDenied, "Forbidden.RAM");
    tenancy
        .assert_unchanged("after an SRS callback naming account 111's domain")
        .await;
}
