#!/usr/bin/env bash
# The benchmark: one rr binary, memory / boltdb / sql on SQLite, PostgreSQL and MariaDB, the same
# no-op PHP workers. Writes docs/bench/results.md and docs/bench/rates.png.
# The database servers are the benchmark's own (not the tests'), with every commit flushed to disk.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --servers
export SQLJOBS_DB_DIR=/tmp/sqljobs-bench-db SQLJOBS_PG_PORT=55442 SQLJOBS_MYSQL_PORT=53316 SQLJOBS_DB_DURABLE=1
servers_env=$(scripts/db-servers.sh start)  # an assignment, so that set -e stops on a failed start
eval "$servers_env"
trap 'scripts/db-servers.sh stop' EXIT
export SQLJOBS_POSTGRES_DSN SQLJOBS_MYSQL_DSN
(cd bench && go run . "$@")
