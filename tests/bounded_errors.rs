//! Errors about very long input stay small. Every string field of every
//! RPC, sent 64 KiB long with the rest of the request valid, through a
//! Python client generated with grpcio-tools and left with grpcio's default
//! channel options, which refuse a response whose metadata passes 8 KiB
//! (soft limit) or 16 KiB (hard limit). The client must see the error code
//! the validation order gives the field, in a status (message and details)
//! well under 8 KiB; no line of the server's log may grow with the input;
//! the SRS webhook's JSON answers stay as small.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ACCOUNT: &str = "111";
const DOMAIN: &str = "example.com";
const BUCKET: &str = "bounded-bucket";
const APP: &str = "live";
const STREAM: &str = "cam";
/// `live:*` on every domain of the account.
const ADMIN_KEY: &str = "rik_bounded-admin-4b8e2c7a9d1f3605";
/// `live:*` on `example.com` only, though the account owns `*.example.com`.
const SCOPED_KEY: &str = "rik_bounded-scoped-1e6d0a3c8f2b7954";
const WEBHOOK_SECRET: &str = "bounded-srs-secret";
/// The variable holding the account's playback key, and its value.
const PLAYBACK_KEY_ENV: &str = "BOUNDED_PLAYBACK_KEY";
const PLAYBACK_KEY: &str = "bounded-playback-key";

/// How long each long value is, in bytes.
const LONG: usize = 64 * 1024;
/// Bound on a whole status in the trailers: grpcio's soft metadata limit.
const MAX_STATUS_BYTES: usize = 8 * 1024;
/// Bound on a line of the server's log.
const MAX_LOG_LINE: usize = 4 * 1024;
/// Bound on a whole JSON answer of the SRS webhook.
const MAX_WEBHOOK_BODY: usize = 4 * 1024;
/// How long each long value of an SRS callback is: the listener reads
/// bodies of at most 64 KiB.
const LONG_CALLBACK: usize = 60 * 1024;

/// `unit` repeated to at least [`LONG`] bytes.
fn long(unit: &str) -> String {
    long_as(unit, LONG)
}

fn long_as(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes.div_ceil(unit.len()))
}

fn config(webhook_port: u16) -> String {
    let digest = |secret: &str| hex::encode(Sha256::digest(secret.as_bytes()));
    let limits = [
        "CreateLiveStreamRecordIndexFiles",
        "RegisterLiveStreamRecordSegments",
        "DescribeLiveStreamRecordIndexFile",
        "DescribeLiveStreamRecordIndexFiles",
        "DeleteLiveStreamRecordIndexFiles",
        "DescribeLiveStreamRecordContent",
        "SignPlaybackUrl",
    ]
    .map(|rpc| format!("{rpc} = 10000\n"))
    .concat();
    format!(
        "[rate_limits]\n{limits}\n\
         [srs_webhook]\nlisten = \"127.0.0.1:{webhook_port}\"\n\
         [[srs_webhook.sources]]\nsecret_sha256 = \"{}\"\naccount = \"{ACCOUNT}\"\n\
         domain = \"{DOMAIN}\"\nendpoint = \"localhost\"\nbucket = \"{BUCKET}\"\nkey_prefix = \"hls/\"\n\n\
         [[accounts]]\nid = \"{ACCOUNT}\"\ndomains = [\"{DOMAIN}\", \"*.{DOMAIN}\"]\nbuckets = [\"{BUCKET}\"]\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{ACCOUNT}:domain/*\"] }}]\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{ACCOUNT}:domain/{DOMAIN}\"] }}]\n\
         [accounts.playback]\nprimary_key_env = \"{PLAYBACK_KEY_ENV}\"\n",
        digest(WEBHOOK_SECRET),
        digest(ADMIN_KEY),
        digest(SCOPED_KEY),
    )
}

/// One request the Python client sends, and what it must get back.
struct Case {
    name: String,
    rpc: &'static str,
    request: Value,
    key: &'static str,
    expect: Expect,
}

enum Expect {
    /// The gRPC code and the error code (ErrorInfo.reason).
    Error(&'static str, &'static str),
    /// Delete answers, and says this of the (only) id.
    Deleted(&'static str),
}

/// A valid request of each RPC, in the proto's JSON names.
fn valid_request(rpc: &str) -> Value {
    let now = Utc::now();
    let start = utc_seconds(now - chrono::Duration::minutes(60));
    let end = utc_seconds(now - chrono::Duration::minutes(30));
    let record_id = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
    let names = json!({"DomainName": DOMAIN, "AppName": APP, "StreamName": STREAM});
    let own = match rpc {
        "CreateLiveStreamRecordIndexFiles" => json!({
            "OssEndpoint": "localhost", "OssBucket": BUCKET,
            "OssObject": "record/{AppName}/{StreamName}/{RecordId}.m3u8",
            "StartTime": start, "EndTime": end, "ClientToken": "token-1",
            "ClipMode": "SEGMENT", "Renditions": ["-hd"],
        }),
        "RegisterLiveStreamRecordSegments" => json!({
            "ClientToken": "token-1",
            "Segments": [{
                "OssEndpoint": "localhost", "OssBucket": BUCKET, "OssObject": "live/cam/0.ts",
                "StartTime": start, "Duration": 6.0, "Sequence": 0, "Width": 640,
                "Height": 360, "Format": "ts", "Size": 1000,
            }],
        }),
        "DescribeLiveStreamRecordIndexFile" => json!({"RecordId": record_id}),
        "DescribeLiveStreamRecordIndexFiles" => {
            json!({"StartTime": start, "EndTime": end, "Order": "asc"})
        }
        "DeleteLiveStreamRecordIndexFiles" => json!({"RecordId": [record_id]}),
        "DescribeLiveStreamRecordContent" => json!({"StartTime": start, "EndTime": end}),
        "SignPlaybackUrl" => json!({
            "StartTime": start, "EndTime": end, "ClipMode": "SEGMENT", "Renditions": ["-hd"],
        }),
        other => panic!("no valid request of {other}"),
    };
    let mut request = names;
    request
        .as_object_mut()
        .unwrap()
        .extend(own.as_object().unwrap().clone());
    request
}

/// `request` with the field at `path` (`Field`, `Field[0]` or
/// `Field[0].Inner`) set to `value`.
fn with_field(mut request: Value, path: &str, value: &str) -> Value {
    let mut slot = &mut request;
    for part in path.split('.') {
        slot = match part.split_once('[') {
            Some((field, index)) => {
                let index: usize = index.trim_end_matches(']').parse().unwrap();
                &mut slot[field][index]
            }
            None => &mut slot[part],
        };
    }
    assert!(
        slot.is_string(),
        "{path} is not a string field of {request}"
    );
    *slot = Value::String(value.to_string());
    request
}

const INVALID: &str = "INVALID_ARGUMENT";
const PARAMS: (&str, &str) = (INVALID, "InvalidParams");

/// The string fields of each RPC besides DomainName, each with the error
/// code a long value earns by the validation order, and the values sent.
fn own_fields(rpc: &str) -> Vec<(&'static str, (&'static str, &'static str), Vec<String>)> {
    let plain = || vec![long("a")];
    let start_malformed = (INVALID, "InvalidStartTime.Malformed");
    let end_malformed = (INVALID, "InvalidEndTime.Malformed");
    let names = vec![
        ("AppName", PARAMS, plain()),
        ("StreamName", PARAMS, vec![long("a"), long("段")]),
    ];
    let own = match rpc {
        "CreateLiveStreamRecordIndexFiles" => vec![
            (
                "OssEndpoint",
                (INVALID, "InvalidOssEndpoint.Malformed"),
                plain(),
            ),
            (
                "OssBucket",
                (INVALID, "InvalidOssBucket.Malformed"),
                plain(),
            ),
            (
                "OssObject",
                (INVALID, "InvalidOssObject.Malformed"),
                vec![
                    format!("{}.m3u8", "a".repeat(8192)),
                    format!("{}.m3u8", long("a")),
                    format!("{}.m3u8", long("段")),
                    format!("{{{}}}.m3u8", long("x")),
                    format!("{}/{{AppName}}.mp4", long("b")),
                    format!("{}\u{1}.m3u8", long("c")),
                ],
            ),
            ("StartTime", start_malformed, plain()),
            ("EndTime", end_malformed, plain()),
            ("ClientToken", PARAMS, plain()),
            ("ClipMode", PARAMS, plain()),
            ("Renditions[0]", PARAMS, plain()),
        ],
        "RegisterLiveStreamRecordSegments" => vec![
            ("ClientToken", PARAMS, plain()),
            ("Segments[0].OssEndpoint", PARAMS, plain()),
            ("Segments[0].OssBucket", PARAMS, plain()),
            ("Segments[0].OssObject", PARAMS, vec![long("a"), long("é")]),
            ("Segments[0].StartTime", PARAMS, plain()),
            ("Segments[0].Format", PARAMS, plain()),
        ],
        "DescribeLiveStreamRecordIndexFile" => vec![(
            "RecordId",
            ("NOT_FOUND", "InvalidRecordId.NotFound"),
            vec![long("a"), long("é"), long("\u{1}")],
        )],
        "DescribeLiveStreamRecordIndexFiles" => vec![
            ("StartTime", start_malformed, plain()),
            ("EndTime", end_malformed, plain()),
            ("Order", PARAMS, plain()),
        ],
        "DescribeLiveStreamRecordContent" => vec![
            ("StartTime", start_malformed, plain()),
            ("EndTime", end_malformed, plain()),
        ],
        "SignPlaybackUrl" => vec![
            ("StartTime", start_malformed, plain()),
            ("EndTime", end_malformed, plain()),
            ("ClipMode", PARAMS, plain()),
            ("Renditions[0]", PARAMS, vec![long("a"), long("段")]),
        ],
        _ => Vec::new(),
    };
    names.into_iter().chain(own).collect()
}

const RPCS: [&str; 7] = [
    "CreateLiveStreamRecordIndexFiles",
    "RegisterLiveStreamRecordSegments",
    "DescribeLiveStreamRecordIndexFile",
    "DescribeLiveStreamRecordIndexFiles",
    "DeleteLiveStreamRecordIndexFiles",
    "DescribeLiveStreamRecordContent",
    "SignPlaybackUrl",
];

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for rpc in RPCS {
        let case = |what: &str, path: &str, value: &str, key, expect| Case {
            name: format!("{rpc} {what}"),
            rpc,
            request: with_field(valid_request(rpc), path, value),
            key,
            expect,
        };
        let forbidden = Expect::Error("PERMISSION_DENIED", "Forbidden.RAM");
        let subdomain = format!("{}.{DOMAIN}", long("a"));
        cases.extend([
            // Not a domain of the account.
            case(
                "DomainName of another account",
                "DomainName",
                &long("a"),
                ADMIN_KEY,
                forbidden,
            ),
            // The account's (by `*.example.com`), not the key's.
            case(
                "DomainName outside the key's statements",
                "DomainName",
                &subdomain,
                SCOPED_KEY,
                Expect::Error("PERMISSION_DENIED", "Forbidden.RAM"),
            ),
            // Allowed, but no host name: its labels are too long.
            case(
                "DomainName",
                "DomainName",
                &subdomain,
                ADMIN_KEY,
                Expect::Error(PARAMS.0, PARAMS.1),
            ),
        ]);
        for (path, (grpc_code, error_code), values) in own_fields(rpc) {
            for (index, value) in values.iter().enumerate() {
                let what = format!("{path} #{index} ({} bytes)", value.len());
                let expect = Expect::Error(grpc_code, error_code);
                cases.push(case(&what, path, value, ADMIN_KEY, expect));
            }
        }
    }
    // An id Delete cannot find is answered in the list, not as an error.
    let delete = "DeleteLiveStreamRecordIndexFiles";
    for (index, unit) in ["a", "é"].into_iter().enumerate() {
        cases.push(Case {
            name: format!("{delete} RecordId[0] #{index}"),
            rpc: delete,
            request: with_field(valid_request(delete), "RecordId[0]", &long(unit)),
            key: ADMIN_KEY,
            expect: Expect::Deleted("FileNotFound"),
        });
    }
    cases
}

fn cases_json(cases: &[Case]) -> Value {
    Value::Array(
        cases
            .iter()
            .map(|case| {
                json!({
                    "name": case.name,
                    "rpc": case.rpc,
                    "request": case.request,
                    "authorization": format!("Bearer {}", case.key),
                })
            })
            .collect(),
    )
}

/// Runs the Python client over `cases` and returns its result per case.
async fn send_from_python(server: &Server, cases: &[Case]) -> Vec<Value> {
    let python = require_python_grpc();
    let work = tempfile::tempdir().expect("temp dir for stubs and cases");
    generate_python_stubs(&python, work.path()).await;
    let cases_file = work.path().join("cases.json");
    std::fs::write(&cases_file, cases_json(cases).to_string()).expect("write cases");
    let output = run_python_client(
        &python,
        "bounded_errors.py",
        server.addr,
        work.path(),
        &["--cases".as_ref(), cases_file.as_os_str()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.lines().any(|line| line == "all cases sent"),
        "bounded_errors.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("result "))
        .map(|json| serde_json::from_str(json).expect("a result line is JSON"))
        .collect()
}

/// What of a case's expectations the client did not see, if anything.
fn mismatch(case: &Case, result: &Value) -> Option<String> {
    let mut missed = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            missed.push(what);
        }
    };
    match case.expect {
        Expect::Error(grpc_code, error_code) => {
            expect(
                result["code"] == grpc_code,
                format!("gRPC code {grpc_code}"),
            );
            expect(
                result["reason"] == error_code,
                format!("reason {error_code}"),
            );
            expect(
                result["message_starts_with_reason"] == true,
                "a message starting with the code".into(),
            );
            expect(
                result["request_id_matches"] == true,
                "ErrorInfo RequestId matching x-request-id".into(),
            );
            let bytes = result["status_bytes"].as_u64().unwrap_or(u64::MAX);
            expect(
                bytes < MAX_STATUS_BYTES as u64,
                format!("a status under {MAX_STATUS_BYTES} bytes"),
            );
        }
        Expect::Deleted(message) => {
            expect(result["code"] == "OK", "an answer".into());
            expect(
                result["delete_messages"] == json!([message]),
                format!("the id answered {message}"),
            );
        }
    }
    (!missed.is_empty()).then(|| {
        format!(
            "{}: expected {}; the client saw {result}",
            case.name,
            missed.join(", ")
        )
    })
}

#[tokio::test]
async fn every_long_string_field_gets_its_code_in_a_small_status() {
    let [webhook_port] = free_ports::<1>();
    let env = [(PLAYBACK_KEY_ENV, PLAYBACK_KEY)];
    let (server, log) = Server::start_with_env(&config(webhook_port), &env).await;
    let cases = cases();
    let results = send_from_python(&server, &cases).await;
    assert_eq!(results.len(), cases.len(), "one result per case");
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(&results) {
        assert_eq!(result["name"], case.name.as_str(), "results in case order");
        failures.extend(mismatch(case, result));
    }
    let largest = results
        .iter()
        .filter_map(|result| result["status_bytes"].as_u64())
        .max()
        .unwrap_or(0);
    eprintln!(
        "{} cases; largest status: {largest} bytes in the trailers",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let webhook = format!("http://127.0.0.1:{webhook_port}/?secret={WEBHOOK_SECRET}");
    check_webhook_answers(&webhook).await;

    let errors = cases
        .iter()
        .filter(|case| matches!(case.expect, Expect::Error(..)))
        .count();
    assert_log_lines_bounded(&log, errors).await;
}

/// SRS callbacks whose fields are long: each is refused with InvalidParams
/// in a small JSON answer.
async fn check_webhook_answers(url: &str) {
    let callback = |field: &str, value: Value| {
        let mut body = json!({
            "action": "on_hls", "app": APP, "stream": STREAM, "duration": 6.0,
            "url": "live/cam/1.ts", "seq_no": 1,
        });
        body[field] = value;
        (format!("{field} ({} bytes)", body.to_string().len()), body)
    };
    let long = |unit| long_as(unit, LONG_CALLBACK);
    let cases = [
        callback("action", json!(long("a"))),
        callback("duration", json!(long("1"))),
        callback("app", json!(long("a"))),
        callback("stream", json!(long("段"))),
        callback("url", json!(format!("{}.ts", long("a")))),
        callback("seq_no", json!(long("9"))),
    ];
    for (what, body) in cases {
        let answer = http_request(
            "POST",
            url,
            None,
            Some("application/json"),
            body.to_string().into(),
        )
        .await;
        let text = answer.text();
        assert_eq!(answer.status, 400, "webhook {what}: {text:.300}");
        assert!(
            answer.body.len() < MAX_WEBHOOK_BODY,
            "webhook {what}: a {} byte answer: {text:.300}",
            answer.body.len()
        );
        let json: Value = serde_json::from_str(&text).expect("the answer is JSON");
        assert_eq!(json["code"], 400, "webhook {what}: {text}");
        assert!(
            json["msg"]
                .as_str()
                .is_some_and(|msg| msg.starts_with("InvalidParams: ")),
            "webhook {what}: {text}"
        );
    }
}

/// No line of the server's log is long, and every refused request did log
/// its line.
async fn assert_log_lines_bounded(log: &ServerLog, refused: usize) {
    // The log is read by another thread: give it the last lines.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = log.lines();
    let longest = lines.iter().map(String::len).max().unwrap_or(0);
    eprintln!("longest server log line: {longest} bytes");
    for line in &lines {
        assert!(
            line.len() <= MAX_LOG_LINE,
            "a {} byte log line: {:.300}…",
            line.len(),
            line
        );
    }
    let failed = lines
        .iter()
        .filter(|line| line.contains("request failed"))
        .count();
    assert!(
        failed >= refused,
        "{failed} `request failed` lines for {refused} refused requests"
    );
}
