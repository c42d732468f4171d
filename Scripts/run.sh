#!/usr/bin/env bash
# Sets up, builds (release), starts the embedded PostgreSQL cluster (unless
# ESAYLOV_DATABASE_URL names another database), migrates, loads the demo directory, and serves
# esaylov on 127.0.0.1:50051 (h2c) until Ctrl-C. Extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh run
swift build -c release --product esaylov-server
swift build -c release --product esaylovctl
if [ -z "${ESAYLOV_DATABASE_URL:-}" ]; then
  Scripts/pg.sh start
  ESAYLOV_DATABASE_URL=$(Scripts/pg.sh url)
  export ESAYLOV_DATABASE_URL
  .build/release/esaylovctl migrate
  .build/release/esaylovctl seed demo
fi
exec .build/release/esaylov-server "$@"
