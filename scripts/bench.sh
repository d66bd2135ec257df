#!/usr/bin/env bash
# The benchmark: one rr binary, memory / boltdb / sql on SQLite, PostgreSQL and MariaDB, the same
# no-op PHP workers. Writes docs/bench/results.md and docs/bench/rates.png.
# The database servers are the benchmark's own (not the tests'), with every commit flushed to disk.
# Flags go to the bench (bench/main.go), e.g.:
#   scripts/bench.sh -groups-only    the fairness rows (group_by) alone: docs/bench/groups.md
#   scripts/bench.sh -monitor-only   jobs.Stat, the metrics scrape, sql.Stats and sql.Groups timed
#                                    against 10k and 1M queued jobs: docs/bench/monitoring.md
#   scripts/bench.sh -flush-only     push latency on another pipeline while sql.Flush deletes 1M
#                                    waiting jobs, and the flush's duration: docs/bench/flush.md
#   scripts/bench.sh -churn          producer and workers together for -churn-duration (10m) on each
#                                    database, autovacuum on, nothing settled: docs/bench/churn.md
#   scripts/bench.sh -batch-only     batches of 100 and 1,000 jobs through sql.PushBatch (one commit a
#                                    batch) against jobs.PushBatch, memory's included: docs/bench/batch.md
#   scripts/bench.sh -dashboard-only each dashboard page timed against 1M queued jobs (10 pipelines), and
#                                    the database statements per second while a page is left open:
#                                    docs/bench/dashboard.md
#   -before-rr PATH                  with -monitor-only or -flush-only: an older rr measured beside
#   -rr PATH                         measure a prebuilt rr instead of building cmd/rr
#   -only REGEXP                     only the targets whose name matches, e.g. '^sql/sqlite$'
# BENCH_QUICK=1 passes -quick: every size and duration shortened (churn 1m, monitoring at 10k and
# 100k, a flush of 100k, one drain round), to check that the bench works, not for figures.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --servers
export SQLJOBS_DB_DIR=/tmp/sqljobs-bench-db SQLJOBS_PG_PORT=55442 SQLJOBS_MYSQL_PORT=53316 SQLJOBS_DB_DURABLE=1
servers_env=$(scripts/db-servers.sh start)  # an assignment, so that set -e stops on a failed start
eval "$servers_env"
trap 'scripts/db-servers.sh stop' EXIT
export SQLJOBS_POSTGRES_DSN SQLJOBS_MYSQL_DSN
quick=()
if [[ "${BENCH_QUICK:-}" == 1 ]]; then quick=(-quick); fi
(cd bench && go run . "${quick[@]}" "$@")
