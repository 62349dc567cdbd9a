#!/usr/bin/env bash
# Makes sure a PostgreSQL server (initdb, postgres) and psql are on this
# machine, from Debian's packages, for the database-engine tests; prints the
# server's bin directory. Installs `postgresql` with apt-get when missing
# (as root; the tests start their own server as an unprivileged user, and
# the package's own cluster is neither needed nor started here).
set -euo pipefail

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/psql" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

if ! dir="$(find_bin)"; then
  echo "installing PostgreSQL from Debian's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: PostgreSQL is missing and installing it needs root (apt-get install postgresql)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # policy-rc.d: do not start the package's own cluster.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.secrets-sync
  chmod +x /usr/sbin/policy-rc.d.secrets-sync
  had_policy=0
  [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ "$had_policy" = 0 ] && cp /usr/sbin/policy-rc.d.secrets-sync /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends postgresql >&2
  [ "$had_policy" = 0 ] && rm -f /usr/sbin/policy-rc.d
  rm -f /usr/sbin/policy-rc.d.secrets-sync
  dir="$(find_bin)" || { echo "error: apt-get installed postgresql but no initdb/postgres/psql was found" >&2; exit 1; }
fi
"$dir/postgres" --version >&2
echo "$dir"
