//! A Python client generated from the public .proto with grpcio-tools talks
//! to the real server: the proto alone is enough to use every RPC of the
//! service from another language, errors included, and the standard
//! grpc.health.v1 proto is enough to ask whether it is ready.

mod common;

use common::*;

/// The checks tests/python/client_check.py prints besides the documented
/// errors below; each must appear, so a script that silently skipped one
/// does not pass.
const CHECKS: &[&str] = &[
    "Health/Check reports recordindex.v1.RecordIndex SERVING",
    "Health/Check reports the server SERVING",
    "Register accepts every new segment",
    "Register's x-request-id matches its RequestId",
    "Register again counts every segment as a duplicate",
    "RecordId is a UUID",
    "OssObject is the expanded template",
    "RecordUrl is the file:// URL of the playlist",
    "StartTime and EndTime echo the request",
    "Duration covers the five segments",
    "Width and Height come from the segments",
    "RecordInfo names the stream and the playlist's bucket",
    "Create's x-request-id matches its RequestId",
    "the playlist file is a complete M3U8",
    "the playlist lists the five segments",
    "a second Create writes another manifest of three segments",
    "the second playlist file exists",
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
    "DescribeFile returns the RecordInfo Create gave",
    "DescribeFile's x-request-id matches its RequestId",
    "DescribeFile of an unknown RecordId: ErrorInfo HttpStatus is 404",
    "DescribeFiles lists both manifests oldest first, as Create gave them",
    "DescribeFiles reports the page, its size, the order and the totals",
    "DescribeFiles' x-request-id matches its RequestId",
    "DescribeFiles with Order desc lists the newest first",
    "DescribeFiles' page after the last is empty",
    "Content finds one continuous recording",
    "Content's span runs from the first segment's start to the last one's end",
    "Content's span lasts the five segments",
    "Content's span names the segments' endpoint, bucket and key prefix",
    "Content's x-request-id matches its RequestId",
    "SignPlaybackUrl names the range's index.m3u8, unsigned in local mode",
    "SignPlaybackUrl's PlaybackUrl is on the playback listener",
    "SignPlaybackUrl's x-request-id matches its RequestId",
    "the playback listener answers the signed URL with the five segments",
    "Delete removes the manifest and reports the unknown id FileNotFound",
    "Delete's x-request-id matches its RequestId",
    "Delete with RemoveFile removes the playlist file",
    "the other manifest's playlist file stays",
    "DescribeFiles no longer lists the deleted manifest",
];

/// One documented error per RPC the script provokes: what it sends, the
/// gRPC code, and the error code the message and ErrorInfo.reason carry.
/// (Create's malformed StartTime is checked field by field in CHECKS.)
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "Register without StreamName",
        "INVALID_ARGUMENT",
        "InvalidParams",
    ),
    (
        "DescribeFile of an unknown RecordId",
        "NOT_FOUND",
        "InvalidRecordId.NotFound",
    ),
    (
        "DescribeFiles with a malformed EndTime",
        "INVALID_ARGUMENT",
        "InvalidEndTime.Malformed",
    ),
    (
        "Content with StartTime after EndTime",
        "INVALID_ARGUMENT",
        "InvalidEndTime.Mismatch",
    ),
    (
        "DescribeFile of a deleted manifest",
        "NOT_FOUND",
        "InvalidRecordId.NotFound",
    ),
    (
        "Delete without a RecordId",
        "INVALID_ARGUMENT",
        "InvalidParams",
    ),
    (
        "SignPlaybackUrl with ClipMode FAST",
        "INVALID_ARGUMENT",
        "InvalidParams",
    ),
];

/// Every line the script must print: CHECKS, and the checks of each error
/// in ERRORS.
fn expected_checks() -> Vec<String> {
    let mut expected: Vec<String> = CHECKS.iter().map(|check| check.to_string()).collect();
    for (what, grpc_code, error_code) in ERRORS {
        expected.extend([
            format!("{what} is {grpc_code}"),
            format!("{what}: the message starts with {error_code}"),
            format!("{what}: grpc-status-details-bin holds the status and one ErrorInfo"),
            format!("{what}: ErrorInfo.reason is {error_code}"),
            format!("{what}: ErrorInfo RequestId matches x-request-id"),
        ]);
    }
    expected
}

#[tokio::test]
async fn generated_python_client_drives_every_rpc_and_health() {
    let python = require_python_grpc();
    let stubs = tempfile::tempdir().expect("temp dir for stubs");
    generate_python_stubs(&python, stubs.path()).await;

    // No endpoints configured: the local directory store named `localhost`.
    // No accounts: local mode, whose playback URLs need no signature.
    let server = Server::start("[playback]\nlisten = \"127.0.0.1:0\"\n").await;
    let objects = server.data_dir.join("objects");
    let output = run_python_client(
        &python,
        "client_check.py",
        server.addr,
        stubs.path(),
        &["--objects-dir".as_ref(), objects.as_os_str()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client_check.py failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for check in expected_checks() {
        assert!(
            stdout.lines().any(|line| line == format!("ok - {check}")),
            "client_check.py did not report `ok - {check}`:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.lines().any(|l| l == "all checks passed"), "{stdout}");
}
