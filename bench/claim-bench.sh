#!/usr/bin/env bash
# The sale core's claim rate: our load generator (a distinct user and idempotency
# key per call) against `flashsale serve` on a fresh store, holds counted from
# the store afterwards; then the sold-out path; then fsyncs per hold (strace).
#   bench/claim-bench.sh       env: SECS=10 CONCURRENCY=512 CONNECTIONS=4 UNITS=5000000
# Anchors on this machine (../shared/peers/storage): PostgreSQL one SKIP LOCKED
# claim per transaction ~2,300/s (pg_bench.sh); Redis Lua decrement, not
# durable, ~74,000/s (redis_bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-10}"; CONCURRENCY="${CONCURRENCY:-512}"; CONNECTIONS="${CONNECTIONS:-4}"; UNITS="${UNITS:-5000000}"
swift build -c release --product flashsale >/dev/null
swift build -c release --product flashsale-load >/dev/null
BIN=.build/release
D="$(mktemp -d /tmp/flashsale-claim-bench.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT

start_server() {  # extra prefix command (e.g. strace), store file
  "$@" "$BIN/flashsale" serve --grpc-port 0 --service-token bench --role inventory --role booking \
    --store "sqlite:$D/claims.db" --log-level warning >"$D/server.out" 2>"$D/server.err" &
  PID=$!
  for _ in $(seq 300); do
    PORT="$(sed -n 's/^listening on [^ ]*:\([0-9]*\)$/\1/p' "$D/server.out")"
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  cat "$D/server.err"; echo "server did not start" >&2; exit 1
}
stop_server() {  # the server, not a strace wrapped around it
  local child; child="$(pgrep -P "$PID" -f "flashsale serve" || true)"
  kill -TERM "${child:-$PID}" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}
load() { "$BIN/flashsale-load" --target "127.0.0.1:$PORT" --service-token bench --concurrency "$CONCURRENCY" \
  --connections "$CONNECTIONS" "$@"; }

echo "== claims: sale of $UNITS units, $SECS s, $CONCURRENCY calls in flight over $CONNECTIONS connections (SQLite, WAL, synchronous=FULL)"
start_server env
load --create-sale "$UNITS" --duration "$SECS" | tee "$D/load.txt"
SALE="$(sed -n 's/^created sale \([^ ]*\) .*/\1/p' "$D/load.txt")"
ACKED="$(sed -n 's/.*"HELD":\([0-9]*\).*/\1/p' "$D/load.txt")"
stop_server
STORED="$(sqlite3 "$D/claims.db" "select count(*) from bookings where sale_id='$SALE' and status='hold'")"
echo "holds acknowledged: ${ACKED:-0}; holds in the store: $STORED"
"$BIN/flashsale" audit --store "sqlite:$D/claims.db" --sale "$SALE" | tail -1

echo "== sold out: a sale of 1 unit, then $SECS s of Book calls (answered SOLD_OUT_FOR_NOW)"
start_server env
load --create-sale 1 --duration "$SECS"
stop_server

echo "== fsyncs: 3 s of claims under strace -f -c -e trace=fsync,fdatasync"
rm -f "$D"/claims.db*
start_server strace -f -c -e trace=fsync,fdatasync -o "$D/strace.txt"
load --create-sale 1000000 --duration 3 | grep -E "calls in|outcomes"
stop_server
sleep 0.5
grep -E "fsync|fdatasync|total" "$D/strace.txt" || cat "$D/strace.txt"
