#!/usr/bin/env bash
# Installs what building and testing the platform needs on Debian 12, skipping what is present.
#   scripts/install-deps.sh          build + run needs (C libraries, code generators)
#   scripts/install-deps.sh --test   also the test peers (grpcio, nghttp2 tools, PostgreSQL)
#   scripts/install-deps.sh --bench  also the benchmarks' anchors (Redis)
set -euo pipefail

want_test=0 want_bench=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--bench" ] && want_test=1 want_bench=1

apt_packages=(
  pkg-config
  libprotobuf-c-dev       # libprotobuf-c: the protobuf runtime our messages are packed with
  protobuf-c-compiler     # protoc-c: generates the C code under Sources/C*Protos
  protobuf-compiler       # protoc + the well-known .proto files, runs the Swift generator plugin
  libnghttp2-dev          # libnghttp2: HTTP/2 framing
  libsqlite3-dev
  libjemalloc-dev         # the servers' allocator (see Package.swift)
  python3-pip
)
if ((want_test)); then
  apt_packages+=(
    nghttp2-client        # nghttp, h2load: raw HTTP/2 peers and load
    nghttp2-server        # nghttpd: the benchmark's C ceiling
    postgresql            # the shared store of several instances
    curl
    strace                # fsync counts in bench/claim-bench.sh
  )
fi
if ((want_bench)); then
  apt_packages+=(
    redis-server          # make claim-bench's in-memory anchor (../shared/peers/storage/redis_bench.sh)
    redis-tools           # redis-cli, redis-benchmark
  )
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python side: the code generator plugin needs `protobuf`; the tests need grpcio as a real peer.
py_packages=("protobuf>=4.25,<6")
((want_test)) && py_packages+=("grpcio>=1.60" "grpcio-tools>=1.60" "grpcio-reflection>=1.60" "grpcio-health-checking>=1.60"
  "grpcio-status>=1.60" "pytest>=7")
python3 - "${py_packages[@]}" <<'PY' || python3 -m pip install -q --disable-pip-version-check "${py_packages[@]}"
import sys, importlib.metadata as md
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    r = Requirement(spec)
    try:
        v = md.version(r.name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if not r.specifier.contains(v, prereleases=True):
        sys.exit(1)
PY
