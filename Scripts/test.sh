#!/usr/bin/env bash
# Sets up, builds, and runs every test: Swift Testing, then the black-box Python tests
# (grpcio and raw HTTP/2 clients against servers this run starts on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh test

swift build --build-tests
swift test --skip-build

export ESAYLOV_BIN_DIR="$PWD/.build/debug"
python3 -m pytest -q Tests/blackbox
