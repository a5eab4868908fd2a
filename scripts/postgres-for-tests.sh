#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests and print its URL on stdout.
# Usage: url=$(scripts/postgres-for-tests.sh DIR)   (stop it with: pg_ctl -D DIR/data stop)
# A fresh DIR gets a fresh cluster on a free port (or SOGNI_TEST_POSTGRES_PORT).
set -euo pipefail
dir=${1:?usage: postgres-for-tests.sh DIR}
port=${SOGNI_TEST_POSTGRES_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (scripts/install.sh --test installs it)" >&2; exit 1; }
mkdir -p "$dir"
as_owner=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres user.
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
  "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust >"$dir/initdb.log" 2>&1
fi
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off" start >/dev/null
fi
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='sogni_test'" \
  | grep -q 1 || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres sogni_test
echo "postgresql://postgres@127.0.0.1:$port/sogni_test"
