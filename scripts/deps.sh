#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine: php-cli (the PHP workers)
# and, for the tests (--servers), PHP's PDO drivers, mariadb-server (PostgreSQL 15 is part of the
# machine image; installed here too if it is missing) and chromium (the dashboard's browser tests).
# Runs apt only for what is missing.
set -euo pipefail
want=()
command -v php >/dev/null || want+=(php-cli)
if [ "${1:-}" = "--servers" ]; then
  # PDO drivers: the transactional-enqueue test inserts jobs from PHP.
  for pair in pdo_sqlite:php-sqlite3 pdo_pgsql:php-pgsql pdo_mysql:php-mysql; do
    php -m 2>/dev/null | grep -qx "${pair%%:*}" || want+=("${pair#*:}")
  done
  command -v mariadbd >/dev/null || want+=(mariadb-server)
  command -v chromium >/dev/null || want+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
fi
if [ ${#want[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing: ${want[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
