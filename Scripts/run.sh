#!/usr/bin/env bash
# Sets up, builds (release) and serves esaylov on 127.0.0.1:50051 (h2c) until Ctrl-C.
# Extra arguments go to the server, e.g. `Scripts/run.sh --port 0`.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh run
swift build -c release --product esaylov-server
exec .build/release/esaylov-server "$@"
