#!/bin/sh
# Like the official postgres image's entrypoint, in small: on first start initdb with
# POSTGRES_PASSWORD (scram-sha-256 for TCP), then exec the server with the given arguments
# (`postgres -p 5433 -c listen_addresses=127.0.0.1`).
set -e
: "${PGDATA:=/var/lib/postgresql/data}"
if [ "$1" = postgres ]; then shift; fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "$POSTGRES_PASSWORD" ]; then
    echo "error: POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth-local=trust \
    --auth-host=scram-sha-256 --locale=C --encoding=UTF8 --no-sync >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 127.0.0.1/32 scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" "$@"
