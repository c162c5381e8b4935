#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages when missing, starts it on 127.0.0.1, makes a
# role and a database for the tests, and prints their URL on stdout.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >&2
pg_ctlcluster "$version" main start >&2 2>/dev/null || true  # already running is fine
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
as_postgres() { su postgres -c "$1" >&2; }
as_postgres "psql -q -p $port -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zoho') THEN CREATE ROLE zoho LOGIN SUPERUSER PASSWORD 'zoho'; END IF; END \\\$\\\$;\""
su postgres -c "psql -p $port -lqt" | cut -d'|' -f1 | grep -qw zoho_test \
  || as_postgres "createdb -p $port -O zoho zoho_test"
echo "postgresql://zoho:zoho@127.0.0.1:$port/zoho_test"
