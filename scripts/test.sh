#!/usr/bin/env bash
# Every test: unit tests, the store conformance suite and the integration suites on SQLite,
# PostgreSQL and MariaDB (throwaway servers on loopback), the rr binary's tests, and the benchmark's
# own (its charts and report).
# The suites that run the real spiral/roadrunner-jobs PHP client find it through RR_PHP_CLIENT
# (default: ../shared/php-client when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --servers
servers_env=$(scripts/db-servers.sh start)  # an assignment, so that set -e stops on a failed start
eval "$servers_env"
trap 'scripts/db-servers.sh stop' EXIT
export SQLJOBS_POSTGRES_DSN SQLJOBS_MYSQL_DSN
if [ -z "${RR_PHP_CLIENT:-}" ] && [ -f ../shared/php-client/autoload.php ]; then
  RR_PHP_CLIENT=$(cd ../shared/php-client && pwd)
fi
export RR_PHP_CLIENT=${RR_PHP_CLIENT:-}

status=0
go vet ./... && (cd tests && go vet ./...) && (cd cmd/rr && go vet ./...) && (cd bench && go vet ./...) || status=1
# php -l on every PHP file: the package (php/), the test workers and scripts, the examples.
while IFS= read -r php; do
  php -l "$php" >/dev/null || { echo "php -l $php failed" >&2; status=1; }
done < <(find php tests/php examples -name '*.php' | sort)
go test -race -count=1 ./... || status=1
(cd tests && go test -race -count=1 -timeout 45m ./...) || status=1
(cd cmd/rr && go test -count=1 -timeout 20m ./...) || status=1
(cd bench && go test -count=1 ./...) || status=1
exit $status
