#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer (LeakSanitizer
# on) and runs each for SECONDS (default 60) from the seed corpus in
# fuzz/corpus/<target> (copied: the committed seeds are not changed). A crash,
# a hang (> 10 s per input), a leak or a broken property fails the run; the
# input that did it is kept in fuzz/findings/.
#   fuzz/run.sh [SECONDS] [SEED]   make fuzz-quick (60 s each, fixed seed), make fuzz (FUZZ_SECONDS, default
#                                  600, a new seed each run)
# The quick run in `make test` uses a fixed seed, so that CI explores the same
# inputs first each time; `make fuzz` draws a new seed to find new ones.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
seed="${2:-0}"
export PATH=/opt/swift/usr/bin:$PATH
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld 2>&1 \
  | grep -vE "warning: public import|^\s*\||^\s*$" || true
bin=.build/release
[ -x "$bin/FuzzProtobuf" ] || { echo "the fuzz targets did not build" >&2; exit 1; }
mkdir -p findings
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for target in FuzzProtobuf FuzzJSON FuzzFramer; do
  corpus="$(echo "${target#Fuzz}" | tr '[:upper:]' '[:lower:]')"
  mkdir -p "$work/$corpus"
  cp corpus/"$corpus"/* "$work/$corpus/"
  echo "== $target for ${seconds}s"
  if SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1 "$bin/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -seed="$seed" -artifact_prefix=findings/ -print_final_stats=1 "$work/$corpus" \
    >"$work/$target.log" 2>&1; then
    grep -E "^Done|stat::number_of_executed_units" "$work/$target.log" | head -2
  else
    status=1
    grep -vE "^\s*$" "$work/$target.log" | grep -E "violated|ERROR|SUMMARY|Test unit written|Fatal" | head -10
    echo "$target FAILED (input kept in fuzz/findings/)"
  fi
done
exit $status
