#!/usr/bin/env bash
# Every test: unit tests, the store conformance suite and the integration suites on SQLite,
# PostgreSQL and MariaDB (throwaway servers on loopback), and the rr binary's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --servers
servers_env=$(scripts/db-servers.sh start)  # an assignment, so that set -e stops on a failed start
eval "$servers_env"
trap 'scripts/db-servers.sh stop' EXIT
export SQLJOBS_POSTGRES_DSN SQLJOBS_MYSQL_DSN

status=0
go vet ./... && (cd tests && go vet ./...) && (cd cmd/rr && go vet ./...) || status=1
go test -race -count=1 ./... || status=1
(cd tests && go test -count=1 -timeout 30m ./...) || status=1
(cd cmd/rr && go test -count=1 -timeout 15m ./...) || status=1
exit $status
