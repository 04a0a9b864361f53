#!/usr/bin/env bash
# Runs the benchmarks; each prints its figures next to a baseline measured in
# the same run. SeaweedFS is started by the benchmark itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-tools.sh
cargo bench --bench create
cargo bench --bench gate
cargo bench --bench load
cargo bench --bench harvest
cargo bench --bench scale
