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
#   Scripts/pg.sh standby start|stop|status|url|drop
#                          a hot standby streaming from the cluster (pg_basebackup, then WAL
#                          streaming as role esaylov_replication), on the next free port
#                          (.data/pg-standby-port); `url` is ESAYLOV_DATABASE_READ_URL; `drop`
#                          stops it and deletes its data
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

# Makes role $1 (attributes $2) unless it exists and gives it the password, then runs the
# statement $3 if any. The password reaches psql on its standard input, and this session logs
# no statement, even one that fails.
role() {
  local pw; pw=$(password)
  as_postgres "$PGBIN/psql" -h "$SOCK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -q <<SQL
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SELECT 'CREATE ROLE $1 $2' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1')\gexec
ALTER ROLE $1 PASSWORD '$pw';
${3:-}
SQL
}

# Starts the cluster in $1 (named $2 in a failure, which shows the end of its log).
pg_start() {
  if ! as_postgres "$PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start >/dev/null; then
    echo "pg.sh: $2 did not start; the end of $1/server.log:" >&2
    tail -n 20 "$1/server.log" >&2 || true
    exit 1
  fi
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
  pg_start "$PGDIR" PostgreSQL
  role esaylov LOGIN "SELECT 'CREATE DATABASE esaylov OWNER esaylov' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'esaylov')\\gexec"
}

# The standby lives beside the cluster.
SDIR="$(dirname "$PGDIR")/standby"
SSOCK="$SDIR/sock"
SPORTFILE="$DATA/pg-standby-port"

standby_running() {
  [ -f "$SDIR/postmaster.pid" ] || return 1
  local pid; pid=$(head -n1 "$SDIR/postmaster.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

standby_port() {
  if [ -f "$SPORTFILE" ]; then cat "$SPORTFILE"; return; fi
  local p=$((PORT + 1))
  while port_taken "$p"; do p=$((p + 1)); done
  echo "$p" > "$SPORTFILE"
  echo "$p"
}

standby_start() {
  start
  local sport; sport=$(standby_port)
  if standby_running; then return 0; fi
  if [ ! -f "$SDIR/PG_VERSION" ]; then
    local pw; pw=$(password)
    role esaylov_replication "REPLICATION LOGIN"
    # The replication password, readable by postgres only, for pg_basebackup and for streaming.
    local pass="$(dirname "$PGDIR")/replication.pgpass"
    (umask 077; echo "127.0.0.1:$PORT:replication:esaylov_replication:$pw" > "$pass")
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pass"
    rm -rf "$SDIR"
    as_postgres env PGPASSFILE="$pass" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U esaylov_replication -D "$SDIR" -X stream -c fast -R
    # Its own port and socket; streaming with the password file, not a password in the conf.
    sed -i "s|^port = [0-9]*\$|port = $sport|; s|^unix_socket_directories = '.*'\$|unix_socket_directories = '$SSOCK'|" "$SDIR/postgresql.conf"
    echo "primary_conninfo = 'host=127.0.0.1 port=$PORT user=esaylov_replication passfile=$pass application_name=esaylov_standby'" >> "$SDIR/postgresql.auto.conf"
    mkdir -p "$SSOCK"; [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$SDIR"
    chmod 700 "$SDIR"
  fi
  if port_taken "$sport"; then
    echo "pg.sh: port $sport for the standby is taken: remove $SPORTFILE to pick another" >&2
    exit 1
  fi
  rm -f "$SDIR/postmaster.pid"
  pg_start "$SDIR" "the standby"
}

standby() {
  case "${1:-}" in
    start) standby_start; echo "pg.sh: standby running on 127.0.0.1:$(standby_port) ($SDIR), streaming from 127.0.0.1:$PORT" ;;
    stop) if standby_running; then as_postgres "$PGBIN/pg_ctl" -D "$SDIR" -m fast -w stop >/dev/null; fi; echo "pg.sh: standby stopped" ;;
    status) if standby_running; then echo "pg.sh: standby running on 127.0.0.1:$(standby_port)"; else echo "pg.sh: standby stopped"; exit 3; fi ;;
    url) echo "postgresql://esaylov:$(password)@127.0.0.1:$(standby_port)/esaylov" ;;
    drop) if standby_running; then as_postgres "$PGBIN/pg_ctl" -D "$SDIR" -m fast -w stop >/dev/null; fi
      rm -rf "$SDIR" "$SPORTFILE"; echo "pg.sh: standby dropped" ;;
    *) echo "usage: Scripts/pg.sh standby start|stop|status|url|drop" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  standby) shift; standby "$@" ;;
  start) start; echo "pg.sh: running on 127.0.0.1:$PORT ($PGDIR)" ;;
  stop) if standby_running; then as_postgres "$PGBIN/pg_ctl" -D "$SDIR" -m fast -w stop >/dev/null; fi
    if running; then as_postgres "$PGBIN/pg_ctl" -D "$PGDIR" -m fast -w stop >/dev/null; fi; echo "pg.sh: stopped" ;;
  status) if running; then echo "pg.sh: running on 127.0.0.1:$PORT"; else echo "pg.sh: stopped"; exit 3; fi ;;
  url) url ;;
  env) env_vars ;;
  psql) shift; export $(env_vars); exec "$PGBIN/psql" "$@" ;;
  # The cluster's superuser over its local socket (peer authentication): for tests that must
  # get past the schema's own guards (tampering with the audit log) and make scratch databases.
  admin-psql) shift; unset PGUSER PGHOST PGPORT PGDATABASE PGPASSFILE
    if [ "$(id -u)" -eq 0 ]; then cd / && exec runuser -u postgres -- "$PGBIN/psql" -U postgres -h "$SOCK" -p "$PORT" "$@"; else exec "$PGBIN/psql" -h "$SOCK" -p "$PORT" "$@"; fi ;;
  *) echo "usage: Scripts/pg.sh start|stop|status|url|env|psql|admin-psql|standby" >&2; exit 2 ;;
esac
