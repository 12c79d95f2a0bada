#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL (Debian's server binaries) for tests, on a loopback port,
# in a temporary directory, with trust authentication and a database "ondol".
#   postgres.sh start DIR PORT   → prints the database URL; the server runs until `stop`
#   postgres.sh stop DIR         fast shutdown (the data directory stays; `start` again reuses it)
#   postgres.sh kill DIR         immediate shutdown (a crash, as far as clients can tell)
# PostgreSQL refuses to run as root: when run as root, the server runs as the user `nobody`
# (runuser), which owns DIR. Sockets live in DIR, so nothing touches /var/run/postgresql.
set -euo pipefail
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "postgresql is not installed (apt-get install postgresql)" >&2; exit 2; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}
case $cmd in
  start)
    port=$3
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown nobody: "$dir"
      chmod o+x "$(dirname "$dir")"  # nobody must reach DIR (temp dirs are 0700)
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$dir/data" -A trust -U ondol -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c full_page_writes=off" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    if ! as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U ondol -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'ondol'" | grep -q 1; then
      as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U ondol ondol
    fi
    echo "postgresql://ondol@127.0.0.1:$port/ondol"
    ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
  kill) as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true ;;
  *) echo "usage: $0 start DIR PORT | stop DIR | kill DIR" >&2; exit 2 ;;
esac
