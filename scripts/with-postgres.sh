#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster (Debian's postgresql
# package; initdb under /tmp, loopback port, trust auth), removed afterwards.
# The command sees FLASHSALE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/flashsale.
#   scripts/with-postgres.sh make unit integration      env: PGPORT_TEST (default 55433)
set -euo pipefail
PORT="${PGPORT_TEST:-55433}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$BIN" ] || { echo "PostgreSQL is not installed (scripts/install-deps.sh --test installs it)" >&2; exit 1; }
D="$(mktemp -d /tmp/flashsale-pg.XXXXXX)"
as_postgres() {  # initdb refuses to run as root
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$D"
chmod 755 "$D"
stop() {
  as_postgres "$BIN/pg_ctl -D $D/data -m immediate -w stop" >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap stop EXIT
as_postgres "$BIN/initdb -D $D/data -A trust -U postgres" >"$D/initdb.log" 2>&1 || { cat "$D/initdb.log"; exit 1; }
as_postgres "$BIN/pg_ctl -D $D/data -l $D/pg.log -o '-p $PORT -k $D -c listen_addresses=127.0.0.1 -c max_connections=200' -w start" >/dev/null \
  || { cat "$D/pg.log"; exit 1; }
"$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE flashsale" >/dev/null
export FLASHSALE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/flashsale"
echo "PostgreSQL $("$BIN/psql" -X -Atq -h 127.0.0.1 -p "$PORT" -U postgres -c 'show server_version') on 127.0.0.1:$PORT (throwaway, $D)"
"$@"
