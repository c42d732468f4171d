#!/usr/bin/env bash
# Sets up, starts the embedded PostgreSQL cluster, builds, and runs every test: Swift Testing
# (with storage tests against that cluster), then the black-box Python tests (grpcio, Go and
# raw HTTP/2 clients against servers this run starts on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh test
Scripts/pg.sh start
ESAYLOV_DATABASE_URL=$(Scripts/pg.sh url)
export ESAYLOV_DATABASE_URL

swift build --build-tests
.build/debug/esaylovctl migrate
.build/debug/esaylovctl seed demo
.build/debug/esaylovctl pki init
.build/debug/esaylovctl pki issue-demo
swift test --skip-build

export ESAYLOV_BIN_DIR="$PWD/.build/debug"
python3 -m pytest -q Tests/blackbox
