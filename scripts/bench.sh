#!/usr/bin/env bash
# Runs the benchmarks; each prints its figures next to a baseline measured in
# the same run. SeaweedFS, PostgreSQL and Redis are started by the benchmarks
# themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-tools.sh
cargo bench --bench create
cargo bench --bench gate
cargo bench --bench load
cargo bench --bench harvest
cargo bench --bench scale
cargo bench --bench engines
cargo bench --bench presign
cargo bench --bench playback
