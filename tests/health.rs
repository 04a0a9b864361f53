//! What a load balancer and a log collector see: grpc.health.v1 through
//! grpcurl, ready only when object storage answers, and JSON log lines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn health(address: &str, service: &str) -> String {
    let output = Command::new(require(GRPCURL))
        .args([
            "-plaintext",
            "-d",
            &format!("{{\"service\":\"{service}\"}}"),
            address,
            "grpc.health.v1.Health/Check",
        ])
        .output()
        .expect("run grpcurl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn serving_once_object_storage_answers() {
    let server = Server::start("").await;
    let address = server.addr.to_string();
    let mut answer = String::new();
    for _ in 0..50 {
        answer = health(&address, "recordindex.v1.RecordIndex");
        if answer.contains("\"SERVING\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.contains("\"status\": \"SERVING\""), "{answer}");
    assert!(health(&address, "").contains("\"SERVING\""));
}

#[tokio::test]
async fn not_serving_while_object_storage_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (server, log) = Server::start_keeping_log(&format!(
        "[[endpoints]]\nname = \"down.test\"\nkind = \"s3\"\nurl = \"http://{closed}\"\n\
         access_key_id_env = \"TEST_S3_KEY\"\nsecret_access_key_env = \"TEST_S3_SECRET\"\nrequest_timeout_secs = 1\n"
    ))
    .await;
    // The server says NOT_SERVING before its first check too, so only the
    // line it logs once a check has found storage down makes the answer
    // below the outcome of a check.
    log.await_line(
        "not ready: object storage does not answer",
        Duration::from_secs(20),
    )
    .await;
    let answer = health(&server.addr.to_string(), "recordindex.v1.RecordIndex");
    assert!(answer.contains("\"status\": \"NOT_SERVING\""), "{answer}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--playback-listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a log line").unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let line: serde_json::Value =
        serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["message"], "serving");
}
