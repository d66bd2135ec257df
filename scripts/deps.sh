#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine: php-cli (the PHP workers)
# and, for the tests, mariadb-server (PostgreSQL 15 is part of the machine image; installed here too
# if it is missing). Runs apt only for what is missing.
set -euo pipefail
want=()
command -v php >/dev/null || want+=(php-cli)
if [ "${1:-}" = "--servers" ]; then
  command -v mariadbd >/dev/null || want+=(mariadb-server)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
fi
if [ ${#want[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing: ${want[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi
