#!/usr/bin/env bash
# The RPC runtime's benchmark: `flashsale serve` (generated API, default limits,
# Prometheus metrics on) answering grpc.health.v1.Health/Check, which decodes
# and re-encodes a real protobuf message, side by side with the reference
# servers of ../shared/peers in one run.
#
#   bench/rpc-compare.sh            (make bench)
#
# 1. ../shared/peers/compare.sh with flashsale as its extra target: the same
#    h2load load against grpc-swift-2, grpcio, nghttpd and us (its table).
# 2. Our own interleaved pass against nghttpd and flashsale with every request
#    carrying `grpc-timeout` and a custom header (compare.sh sends neither), and
#    the ratio of the medians; p50/p99 from one extra --log-file run each.
#    A third row runs flashsale with its default of one event loop per core.
#
# flashsale serves on one event-loop thread (THREADS=1), as nghttpd does by
# default: the two servers get the same resources, and h2load (-t1) has the
# other core of a 2-core machine. With a loop per core, the server's second
# loop shares a core with h2load (the third row shows what that costs).
#
# Env: PEERS_DIR (../shared/peers), ROUNDS (3), DURATION (10), CONNS (8), STREAMS (32),
#      THREADS (event loop threads of flashsale; default 1), SKIP_COMPARE=1 to run only part 2.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PEERS_DIR=${PEERS_DIR:-$root/../shared/peers}
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}; CONNS=${CONNS:-8}; STREAMS=${STREAMS:-32}; THREADS=${THREADS:-1}
run=$(mktemp -d /tmp/flashsale-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT

swift build -c release --product flashsale >/dev/null
# HealthCheckRequest {service: "flashsale.v1.Inventory"}
python3 -c "
m = bytes([0x0a, 22]) + b'flashsale.v1.Inventory'
open('$run/msg.bin', 'wb').write(m)
open('$run/body.bin', 'wb').write(b'\x00' + len(m).to_bytes(4, 'big') + m)
r = bytes([0x08, 0x01])  # HealthCheckResponse {status: SERVING}
import os; os.makedirs('$run/htdocs/grpc.health.v1.Health', exist_ok=True)
open('$run/htdocs/grpc.health.v1.Health/Check', 'wb').write(b'\x00' + len(r).to_bytes(4, 'big') + r)
"

serve() {  # name [flags]: starts flashsale serve; sets `served` to its port
  # (not printed for a $(...): the PID must be recorded in this shell, or the
  # cleanup never stops the server)
  local name=$1; shift
  .build/release/flashsale serve --grpc-port 0 --metrics-port 0 --service-token bench --store "sqlite:$run/$name.db" "$@" \
    >"$run/$name.serve.out" 2>"$run/$name.serve.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$run/$name.serve.out" && break; sleep 0.1; done
  served=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$run/$name.serve.out")
}
serve flashsale --event-loop-threads "$THREADS"
port=$served
[ -n "$port" ] || { cat "$run/flashsale.serve.err"; exit 1; }
echo "flashsale serve on 127.0.0.1:$port, $THREADS event loop thread(s) ($(nproc) cores; loadavg $(cut -d' ' -f1-3 /proc/loadavg))"

if [ "${SKIP_COMPARE:-0}" != 1 ]; then
  echo "== part 1: ../shared/peers/compare.sh, the same h2load load against every peer and flashsale"
  # compare.sh exits non-zero when any peer misbehaves (it checks them all);
  # its table is still printed, and part 2 runs regardless.
  ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS STREAMS=$STREAMS PORT_BASE=50561 \
    bash "$PEERS_DIR/compare.sh" "127.0.0.1:$port" /grpc.health.v1.Health/Check --msg "$run/msg.bin" ||
    echo "compare.sh reported a problem (see above); its table is kept, continuing"
fi

echo
echo "== part 2: every request with grpc-timeout and a custom header; nghttpd serves the same response bytes"
nghttpd --no-tls -a 127.0.0.1 -d "$run/htdocs" --trailer 'grpc-status: 0' 50599 >/dev/null 2>&1 &
pids+=($!)
serve percore
percore=$served
[ -n "$percore" ] || { cat "$run/percore.serve.err"; exit 1; }
sleep 0.5
h2() {  # port out [extra args]
  local p=$1 out=$2; shift 2
  h2load -t1 -c "$CONNS" -m "$STREAMS" -D "$DURATION" --warm-up-time=1 -d "$run/body.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' -H 'grpc-timeout: 5S' -H 'x-request-id: bench-0001' \
    "$@" "http://127.0.0.1:$p/grpc.health.v1.Health/Check" >"$out" 2>&1
  grep -q " 0 failed, 0 errored, 0 timeout" "$out" || { echo "h2load failures against $p:"; cat "$out"; exit 1; }
}
for r in $(seq "$ROUNDS"); do
  for t in nghttpd:50599 flashsale:$port percore:$percore; do
    h2 "${t#*:}" "$run/${t%%:*}.$r.out"
    printf '  round %s %-9s %s\n' "$r" "${t%%:*}" "$(grep -E '^finished in' "$run/${t%%:*}.$r.out")"
  done
done
for t in nghttpd:50599 flashsale:$port percore:$percore; do h2 "${t#*:}" "$run/${t%%:*}.pct.out" --log-file="$run/${t%%:*}.log"; done
# Every call must have been a gRPC success, not only HTTP 200.
out=$(nghttp -nv -d "$run/body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://127.0.0.1:$port/grpc.health.v1.Health/Check" 2>&1)
echo "$out" | grep -q "grpc-status: 0" || { echo "flashsale did not answer grpc-status 0"; exit 1; }
python3 - "$run" "$ROUNDS" <<'PY'
import re, statistics, sys
run, rounds = sys.argv[1], int(sys.argv[2])
def rps(name):
    vals = []
    for r in range(1, rounds + 1):
        m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", open(f"{run}/{name}.{r}.out").read())
        vals.append(float(m.group(1)))
    return statistics.median(vals), min(vals), max(vals)
def pct(name):
    d = sorted(int(l.split()[2]) for l in open(f"{run}/{name}.log") if l.strip())
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))] / 1000
    return q(0.5), q(0.9), q(0.99), q(0.999)
rows = {n: (rps(n), pct(n)) for n in ("nghttpd", "flashsale", "percore")}
names = {"nghttpd": "nghttpd", "flashsale": "flashsale, 1 event loop", "percore": "flashsale, 1 event loop per core"}
print()
print("| target | req/s median (min..max) | p50 / p90 / p99 / p99.9 ms |")
print("| --- | --- | --- |")
for n, ((med, lo, hi), (p50, p90, p99, p999)) in rows.items():
    print(f"| {names[n]} | {med:.0f} ({lo:.0f}..{hi:.0f}) | {p50:.2f} / {p90:.2f} / {p99:.2f} / {p999:.2f} |")
ratio = rows["flashsale"][0][0] / rows["nghttpd"][0][0]
print(f"\nflashsale / nghttpd = {ratio:.2f}x req/s; p99 {rows['flashsale'][1][2]:.2f} ms vs {rows['nghttpd'][1][2]:.2f} ms")
print(f"(one loop per core: {rows['percore'][0][0] / rows['nghttpd'][0][0]:.2f}x req/s, p99 {rows['percore'][1][2]:.2f} ms)")
PY
