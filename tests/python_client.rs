//! A Python client generated from the public .proto with grpcio-tools talks
//! to the real server: the proto alone is enough to use the service from
//! another language, errors included.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The checks tests/python/client_check.py prints, in order; each must
/// appear, so a script that silently skipped one does not pass.
const CHECKS: &[&str] = &[
    "Register accepts every new segment",
    "Register's x-request-id matches its RequestId",
    "RecordId is a UUID",
    "OssObject is the expanded template",
    "RecordUrl is the file:// URL of the playlist",
    "StartTime and EndTime echo the request",
    "Duration covers the five segments",
    "Width and Height come from the segments",
    "Create's x-request-id matches its RequestId",
    "the playlist file is a complete M3U8",
    "the playlist lists the five segments",
    "a malformed StartTime is INVALID_ARGUMENT",
    "the message starts with InvalidStartTime.Malformed",
    "the error carries an upper-case x-request-id",
    "the error carries grpc-status-details-bin",
    "google.rpc.Status has the same code",
    "the details hold one google.rpc.ErrorInfo",
    "ErrorInfo.reason is the error code",
    "ErrorInfo.domain is recordindex",
    "ErrorInfo RequestId matches x-request-id",
    "ErrorInfo HttpStatus is 400",
];

/// Generates the Python modules exactly as a user of the proto would.
async fn generate_stubs(python: &Path, out: &Path) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = run(
        tokio::process::Command::new(python)
            .current_dir(crate_dir)
            .args(["-m", "grpc_tools.protoc", "-I", "proto"])
            .arg(format!("--python_out={}", out.display()))
            .arg(format!("--grpc_python_out={}", out.display()))
            .arg("proto/recordindex/v1/record_index.proto"),
        Duration::from_secs(60),
    )
    .await;
    assert!(
        output.status.success(),
        "grpc_tools.protoc failed on the public proto:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn generated_python_client_registers_creates_and_reads_errors() {
    let python = require_python_grpc();
    let stubs = tempfile::tempdir().expect("temp dir for stubs");
    generate_stubs(&python, stubs.path()).await;

    // No endpoints configured: the local directory store named `localhost`.
    let server = Server::start("").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_check.py");
    let output = run(
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg("--address")
            .arg(server.addr.to_string())
            .arg("--stubs")
            .arg(stubs.path())
            .arg("--objects-dir")
            .arg(server.data_dir.join("objects"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(120),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client_check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for check in CHECKS {
        assert!(
            stdout.lines().any(|line| line == format!("ok - {check}")),
            "client_check.py did not report `ok - {check}`:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.lines().any(|l| l == "all checks passed"), "{stdout}");
}
