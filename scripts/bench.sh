#!/usr/bin/env bash
# The benchmark: one rr binary, memory / boltdb / sql on SQLite, PostgreSQL and MariaDB, the same
# no-op PHP workers. Writes docs/bench/results.md and docs/bench/rates.png.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --servers
servers_env=$(scripts/db-servers.sh start)  # an assignment, so that set -e stops on a failed start
eval "$servers_env"
export SQLJOBS_POSTGRES_DSN SQLJOBS_MYSQL_DSN
cd cmd/rr && go run ./bench "$@"
