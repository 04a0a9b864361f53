#!/usr/bin/env bash
# Runs every test. The integration tests drive real outside tools (SeaweedFS,
# ffmpeg/ffprobe, grpcurl, a Python gRPC client, Chromium playing through
# hls.js, a strict HLS parser); whichever is missing is installed first, so a
# fresh Debian machine needs nothing but this script (run as root for the apt,
# pip and npm installs).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/install-tools.sh

# The benchmarks are compiled (so they cannot rot) but not run here:
# `scripts/bench.sh` runs them. Doc tests first, so the summary of the
# full run is the last thing printed.
cargo build --benches
cargo test --doc
cargo test --lib --bins --tests
