#!/usr/bin/env bash
# The main job: build rr with the sql plugin, serve the example .rr.yaml (SQLite, PHP workers),
# push jobs from PHP and show them processed. Serves until Ctrl+C (or DEMO_SECONDS seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mkdir -p .bin
echo "building rr (RoadRunner $(grep -m1 'const version' cmd/rr/main.go | cut -d'"' -f2) + sql driver)..." >&2
(cd cmd/rr && CGO_ENABLED=0 go build -o ../../.bin/rr .)

.bin/rr serve -c .rr.yaml &
RR=$!
# SIGTERM: a background job of a non-interactive shell starts with SIGINT ignored.
trap 'kill -TERM $RR 2>/dev/null; wait $RR 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do php -r 'exit(@fsockopen("127.0.0.1", 6001) ? 0 : 1);' && break; sleep 0.1; done

php examples/push.php 20 emails
php examples/push.php 5 reports
sleep 1
.bin/rr workers -c .rr.yaml
echo "jobs persist in rr-jobs.db; watch live with: .bin/rr workers -i -c .rr.yaml" >&2
echo "dashboard: open http://127.0.0.1:8089/ (sql.dashboard in .rr.yaml)" >&2

if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait $RR
fi
