#!/usr/bin/env bash
# The embedded PostgreSQL 15 cluster of a development checkout.
#   Scripts/pg.sh start    initialise (first time) and start; a second start does nothing
#   Scripts/pg.sh stop     stop (fast shutdown)
#   Scripts/pg.sh status   say whether it runs
#   Scripts/pg.sh url      print the connection URL (postgresql://esaylov:…@127.0.0.1:PORT/esaylov)
#   Scripts/pg.sh env      print PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSFILE assignments, for
#                          tools that should not carry the password in their arguments
#   Scripts/pg.sh psql     open psql on it (extra arguments go to psql)
#   Scripts/pg.sh admin-psql  psql as the cluster's superuser over the local socket (tests, repairs)
# .data (the password, the cluster's location) is private to its owner (0700); the password
# file is made 0600 from the start and never appears in a command line or a logged statement.
# The cluster is owned by the `postgres` user and listens on 127.0.0.1 only, on port
# $ESAYLOV_PG_PORT when set, else the port it was made with (.data/pg-port), else 54329 when
# free and otherwise the first free one above it (a second checkout on one machine), recorded
# in .data/pg-port. It lives in .data/pg when the script runs as that user;
# run as root, `postgres` cannot enter a private .data, so it lives in /var/lib/esaylov/<id>/pg
# and .data/pg-location records where. fsync and synchronous_commit stay on.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PGBIN=/usr/lib/postgresql/15/bin
DATA=.data
mkdir -p "$DATA"

# Run as root, `postgres` may not be able to enter the checkout: its commands start in / (every
# path they are given is absolute), so that none of them depends on a directory it cannot read.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# An older checkout kept its cluster in .data/pg with .data open to `postgres`: move it out
# (stopped first) before .data becomes private.
if [ "$(id -u)" -eq 0 ] && [ -f "$DATA/pg/PG_VERSION" ] && [ ! -f "$DATA/pg-location" ]; then
  legacy="$ROOT/$DATA/pg"
  if [ -f "$legacy/postmaster.pid" ]; then as_postgres "$PGBIN/pg_ctl" -D "$legacy" -m fast -w stop >/dev/null 2>&1 || true; fi
  target="/var/lib/esaylov/$(echo -n "$ROOT" | sha256sum | cut -c1-16)/pg"
  mkdir -p "$(dirname "$target")"
  rm -rf "$target"
  mv "$legacy" "$target"
  chown -R postgres:postgres "$(dirname "$target")"
  echo "$target" > "$DATA/pg-location"
  echo "pg.sh: moved the cluster out of .data to $target" >&2
fi
chmod 700 "$DATA"

cluster_dir() {
  if [ -f "$DATA/pg-location" ]; then cat "$DATA/pg-location"; return; fi
  local dir="$ROOT/$DATA/pg"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
  chmod 700 "$dir"
  if as_postgres test -w "$dir" 2>/dev/null && as_postgres test -x "$dir" 2>/dev/null; then
    echo "$dir"
  else
    rmdir "$dir" 2>/dev/null || true
    dir="/var/lib/esaylov/$(echo -n "$ROOT" | sha256sum | cut -c1-16)/pg"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$(dirname "$dir")"
    echo "$dir" > "$DATA/pg-location"
    echo "pg.sh: $ROOT is not writable by postgres; the cluster lives in $dir" >&2
    echo "$dir"
  fi
}

PGDIR=$(cluster_dir)
SOCK="$PGDIR/sock"

# Whether something listens on 127.0.0.1:$1.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The cluster's port (see the header), recorded once chosen.
cluster_port() {
  if [ -n "${ESAYLOV_PG_PORT:-}" ]; then echo "$ESAYLOV_PG_PORT"; return; fi
  if [ -f "$DATA/pg-port" ]; then cat "$DATA/pg-port"; return; fi
  local p
  # A cluster made before the port was recorded keeps the one in its configuration.
  p=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$PGDIR/postgresql.conf" 2>/dev/null | tail -n1)
  if [ -z "$p" ]; then
    p=54329
    while port_taken "$p"; do
      p=$((p + 1))
      [ "$p" -le 54429 ] || { echo "pg.sh: ports 54329-54429 are all taken: set ESAYLOV_PG_PORT" >&2; exit 1; }
    done
  fi
  echo "$p" > "$DATA/pg-port"
  echo "$p"
}
PORT=$(cluster_port)
PASSFILE="$DATA/pg-password"

PGPASS="$DATA/pgpass"

password() {
  if [ ! -f "$PASSFILE" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$PASSFILE.new" && mv "$PASSFILE.new" "$PASSFILE")
  fi
  cat "$PASSFILE"
}

url() { echo "postgresql://esaylov:$(password)@127.0.0.1:$PORT/esaylov"; }

# A libpq password file (0600), so that psql and pgbench find the password without it in argv.
pgpass() {
  # Any database of the cluster: the role owns the scratch databases tests and benches make.
  (umask 077; echo "127.0.0.1:$PORT:*:esaylov:$(password)" > "$PGPASS.new" && mv "$PGPASS.new" "$PGPASS")
  echo "$ROOT/$PGPASS"
}

env_vars() {
  echo "PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=esaylov PGDATABASE=esaylov PGPASSFILE=$(pgpass)"
}

# Running means a live postmaster: in a container nothing may reap a killed one, and a zombie
# still answers kill -0, so pg_ctl alone would call it running.
running() {
  [ -f "$PGDIR/postmaster.pid" ] || return 1
  local pid; pid=$(head -n1 "$PGDIR/postmaster.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

start() {
  [ -x "$PGBIN/initdb" ] || { echo "pg.sh: PostgreSQL 15 is not installed (run Scripts/setup.sh)" >&2; exit 1; }
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    as_postgres "$PGBIN/initdb" -D "$PGDIR" --encoding=UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >/dev/null
    mkdir -p "$SOCK"; [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$SOCK"
    cat >> "$PGDIR/postgresql.conf" <<CONF
# esaylov embedded cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
fsync = on
synchronous_commit = on
CONF
  fi
  # The socket lives in the cluster's directory, wherever that is now (a cluster moved out of
  # .data keeps working).
  if ! grep -qx "unix_socket_directories = '$SOCK'" "$PGDIR/postgresql.conf"; then
    sed -i "s|^unix_socket_directories = '.*'\$|unix_socket_directories = '$SOCK'|" "$PGDIR/postgresql.conf"
    mkdir -p "$SOCK"; [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$SOCK"
  fi
  # The port chosen now (ESAYLOV_PG_PORT, or the one recorded) is the one it listens on.
  if ! grep -qx "port = $PORT" "$PGDIR/postgresql.conf"; then sed -i "s|^port = [0-9]*\$|port = $PORT|" "$PGDIR/postgresql.conf"; fi
  if running; then return 0; fi
  if port_taken "$PORT"; then
    echo "pg.sh: port $PORT on 127.0.0.1 is taken by another process (another checkout's cluster?): stop it, or set ESAYLOV_PG_PORT to a free port" >&2
    exit 1
  fi
  # A crashed cluster leaves postmaster.pid behind (and perhaps a zombie): clear it, let the
  # orphaned backends notice their postmaster is gone, and start; PostgreSQL recovers from WAL.
  if [ -f "$PGDIR/postmaster.pid" ]; then
    rm -f "$PGDIR/postmaster.pid" "$SOCK/.s.PGSQL.$PORT.lock" "$SOCK/.s.PGSQL.$PORT"
    for _ in $(seq 50); do pgrep -u postgres -f -- "-D $PGDIR" >/dev/null || break; sleep 0.1; done
  fi
  if ! as_postgres "$PGBIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w -t 60 start >/dev/null; then
    echo "pg.sh: PostgreSQL did not start; the end of $PGDIR/server.log:" >&2
    tail -n 20 "$PGDIR/server.log" >&2 || true
    exit 1
  fi
  local pw; pw=$(password)
  # The password reaches psql on its standard input, and this session logs no statement, even
  # one that fails.
  as_postgres "$PGBIN/psql" -h "$SOCK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -q <<SQL
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT 'CREATE ROLE esaylov LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'esaylov')\gexec
ALTER ROLE esaylov PASSWORD '$pw';
SELECT 'CREATE DATABASE esaylov OWNER esaylov' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'esaylov')\gexec
SQL
}

case "${1:-}" in
  start) start; echo "pg.sh: running on 127.0.0.1:$PORT ($PGDIR)" ;;
  stop) if running; then as_postgres "$PGBIN/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null; fi; echo "pg.sh: stopped" ;;
  status) if running; then echo "pg.sh: running on 127.0.0.1:$PORT"; else echo "pg.sh: stopped"; exit 3; fi ;;
  url) url ;;
  env) env_vars ;;
  psql) shift; export $(env_vars); exec "$PGBIN/psql" "$@" ;;
  # The cluster's superuser over its local socket (peer authentication): for tests that must
  # get past the schema's own guards (tampering with the audit log) and make scratch databases.
  admin-psql) shift; unset PGUSER PGHOST PGPORT PGDATABASE PGPASSFILE
    if [ "$(id -u)" -eq 0 ]; then cd / && exec runuser -u postgres -- "$PGBIN/psql" -U postgres -h "$SOCK" -p "$PORT" "$@"; else exec "$PGBIN/psql" -h "$SOCK" -p "$PORT" "$@"; fi ;;
  *) echo "usage: Scripts/pg.sh start|stop|status|url|env|psql|admin-psql" >&2; exit 2 ;;
esac
