#!/usr/bin/env bash
# Drops the plugin's tables from the throwaway test servers (during development, after a schema change).
set -euo pipefail
STATE=${SQLJOBS_DB_DIR:-/tmp/sqljobs-db}
psql -h 127.0.0.1 -p "${SQLJOBS_PG_PORT:-55432}" -U postgres -qc "DROP TABLE IF EXISTS rr_jobs, rr_failed_jobs, rr_nodes, rr_pipelines, rr_schema_migrations CASCADE; DROP FUNCTION IF EXISTS rr_jobs_notify CASCADE" postgres 2>/dev/null || true
mariadb --no-defaults --socket="$STATE/my/sock" -uroot rr -e "DROP TABLE IF EXISTS rr_jobs, rr_failed_jobs, rr_nodes, rr_pipelines, rr_schema_migrations" || true
