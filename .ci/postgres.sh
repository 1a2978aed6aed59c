#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (the same recipe as tests/pg_server.py, for CI and shells).
#   eval "$(.ci/postgres.sh start)"   # prints: export DERMASCAN_TEST_PG_URL=... DERMASCAN_CI_PG_DIR=...
#   .ci/postgres.sh stop "$DERMASCAN_CI_PG_DIR"
# initdb + pg_ctl into a temporary folder, sockets only, trust authentication; as root the server runs as
# `nobody`, because PostgreSQL refuses to run as root.
set -euo pipefail

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n | tail -1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then su -s /bin/sh nobody -c "$*"; else sh -c "$*"; fi
}

case "${1:-}" in
  start)
    bin=$(bin_dir) || { echo "postgres.sh: initdb/pg_ctl not found (apt-get install postgresql)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/dermascan-ci-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown nobody "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "'$bin/initdb' -D '$dir/data' -U postgres -A trust -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 \
      || { tail -5 "$dir/initdb.log" >&2; exit 1; }
    as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
      -o \"-k $dir -p $port -c listen_addresses='' -c fsync=off -c max_connections=300\" start" >/dev/null \
      || { tail -5 "$dir/server.log" >&2; exit 1; }
    echo "export DERMASCAN_TEST_PG_URL='postgresql://postgres@/postgres?host=$dir&port=$port'"
    echo "export DERMASCAN_CI_PG_DIR='$dir'"
    ;;
  stop)
    dir=${2:?usage: postgres.sh stop DIR}
    bin=$(bin_dir) || exit 0
    [ -d "$dir/data" ] && as_owner "'$bin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
