#!/usr/bin/env bash
# Start a real PostgreSQL (Debian's package) for tests, benchmarks and CI: a private cluster in
# one folder, listening only on a Unix socket inside it (no TCP port, nothing reachable from
# outside), owned by the `postgres` system user when run as root. Idempotent: a running cluster
# is left alone. Prints, as its last line, the URL of a role and database `stagectl` that may
# create databases (the tests make one per test from a migrated template). See docs/desk.md.
#
# Settings (environment):
#   STAGECTL_PG_DIR          cluster folder               [/tmp/stagectl-pg]
#   STAGECTL_PG_NO_INSTALL=1 never run apt-get (fail if PostgreSQL is missing)
# Exit codes: 0 ready (URL printed), 1 failure, 2 bad settings.
set -euo pipefail

DIR=${STAGECTL_PG_DIR:-/tmp/stagectl-pg}
say() { echo "postgres-up: $*" >&2; }
die() { echo "postgres-up: error: $1" >&2; exit "${2:-1}"; }
[[ "$DIR" = /* ]] || die "STAGECTL_PG_DIR must be an absolute path, got '$DIR'" 2

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
BIN=$(bindir || true)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    [ "${STAGECTL_PG_NO_INSTALL:-0}" = 1 ] && die "PostgreSQL is not installed (apt-get install postgresql)"
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; run as root to install it, or: sudo apt-get install postgresql"
    say "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >&2
    BIN=$(bindir)
fi

RUNAS=()
OWNER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$DIR" --shell /bin/sh postgres
    RUNAS=(runuser -u postgres --)
    OWNER=postgres
fi
mkdir -p "$DIR"
[ "$(id -u)" -eq 0 ] && chown "$OWNER" "$DIR"
DATA="$DIR/data"
SOCK="$DIR"
URL="postgresql://stagectl@/stagectl?host=$SOCK"

if [ ! -f "$DATA/PG_VERSION" ]; then
    say "creating a cluster in $DATA"
    "${RUNAS[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SOCK'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
timezone = 'UTC'
log_min_messages = warning
CONF
fi

if ! "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    rm -f "$DATA/postmaster.pid"
    "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start >/dev/null \
        || { tail -20 "$DIR/server.log" >&2; die "the server did not start (log: $DIR/server.log)"; }
fi

psql_su() { "${RUNAS[@]}" "$BIN/psql" -h "$SOCK" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"; }
if [ "$(psql_su -c "SELECT 1 FROM pg_roles WHERE rolname = 'stagectl'")" != 1 ]; then
    psql_su -c "CREATE ROLE stagectl LOGIN CREATEDB"
fi
if [ "$(psql_su -c "SELECT 1 FROM pg_database WHERE datname = 'stagectl'")" != 1 ]; then
    psql_su -c "CREATE DATABASE stagectl OWNER stagectl"
fi
say "ready"
echo "$URL"
