#!/usr/bin/env bash
# Starts throwaway PostgreSQL 15 and MariaDB servers on loopback for the tests and prints the
# environment that points the tests at them. Needs root (servers run as postgres / mysql).
#   eval "$(scripts/db-servers.sh start)"     # exports SQLJOBS_POSTGRES_DSN, SQLJOBS_MYSQL_DSN
#   scripts/db-servers.sh stop
set -euo pipefail
STATE=${SQLJOBS_DB_DIR:-/tmp/sqljobs-db}
PG_PORT=${SQLJOBS_PG_PORT:-55432}
MY_PORT=${SQLJOBS_MYSQL_PORT:-53306}
# SQLJOBS_DB_DURABLE=1 (the benchmark): every commit flushed to disk, as in production. The tests
# run without the flushes.
if [ "${SQLJOBS_DB_DURABLE:-0}" = 1 ]; then PG_FSYNC=on MY_FLUSH=1; else PG_FSYNC=off MY_FLUSH=0; fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)

start() {
  mkdir -p "$STATE"
  # Liveness, not leftover files: a server killed with its machine leaves postmaster.pid and the
  # socket behind, and a later run on the same disk must start a new one.
  if [ -n "$PG_BIN" ] && ! pg-alive; then
    rm -rf "$STATE/pg"; mkdir -p "$STATE/pg"; chown postgres:postgres "$STATE/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$STATE/pg/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$STATE/pg-init.log"
    start-postgres
    pg-alive || fail "PostgreSQL did not start on 127.0.0.1:$PG_PORT" "$STATE/pg-init.log" "$STATE/pg/server.log"
  fi
  if command -v mariadbd >/dev/null && ! my-alive; then
    rm -rf "$STATE/my"; mkdir -p "$STATE/my"; chown mysql:mysql "$STATE/my"
    mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/my/data" --auth-root-authentication-method=normal --skip-test-db >"$STATE/my-init.log" 2>&1
    start-mysql
    my-alive || fail "MariaDB did not start on 127.0.0.1:$MY_PORT" "$STATE/my-init.log" "$STATE/my/err.log"
    mariadb --no-defaults --socket="$STATE/my/sock" -uroot -e \
      "CREATE USER IF NOT EXISTS 'rr'@'%' IDENTIFIED BY 'rr'; GRANT ALL ON *.* TO 'rr'@'%' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS rr;"
  fi
  [ -n "$PG_BIN" ] && echo "export SQLJOBS_POSTGRES_DSN='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'"
  command -v mariadbd >/dev/null && echo "export SQLJOBS_MYSQL_DSN='rr:rr@tcp(127.0.0.1:$MY_PORT)/rr'"
  return 0
}

pg-alive() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }
my-alive() { mariadb-admin --no-defaults --socket="$STATE/my/sock" -uroot ping >/dev/null 2>&1; }

# Says what failed on stderr, with the server's own logs, and stops the caller.
fail() {
  echo "db-servers.sh: $1" >&2; shift
  for log in "$@"; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }; done
  exit 1
}

stop() {
  pg-alive && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w stop >/dev/null || true
  my-alive && mariadb-admin --no-defaults --socket="$STATE/my/sock" -uroot shutdown || true
}

# The fault tests stop and start a server under load.
start-postgres() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -l "$STATE/pg/server.log" -w -t 30 \
    -o "-p $PG_PORT -k $STATE/pg -c listen_addresses=127.0.0.1 -c fsync=$PG_FSYNC -c max_connections=300" start >/dev/null
}
stop-postgres() {
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$STATE/pg/data" -m fast -w -t 30 stop >/dev/null
}
start-mysql() {
  mariadbd --no-defaults --user=mysql --datadir="$STATE/my/data" --socket="$STATE/my/sock" --pid-file="$STATE/my/pid" \
    --port="$MY_PORT" --bind-address=127.0.0.1 --skip-name-resolve --log-error="$STATE/my/err.log" \
    --innodb-flush-log-at-trx-commit=$MY_FLUSH --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 300); do mariadb-admin --no-defaults --socket="$STATE/my/sock" -uroot ping >/dev/null 2>&1 && break; sleep 0.1; done
}
stop-mysql() {
  mariadb-admin --no-defaults --socket="$STATE/my/sock" -uroot shutdown
  while [ -S "$STATE/my/sock" ]; do sleep 0.1; done
}

"${1:-start}"
