#!/usr/bin/env bash
# Sets up, builds (release), starts the embedded PostgreSQL cluster (unless
# ESAYLOV_DATABASE_URL names another database), migrates, loads the demo directory and the
# development CA's certificates, and serves
# esaylov on 127.0.0.1:50051 (h2c) and 127.0.0.1:50443 (TLS, with the development CA's
# certificate for localhost and 127.0.0.1) until Ctrl-C. Extra arguments go to the server.
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
  # The development CA: a key and certificate for every demo head and commission officer
  # under .data/pki/people/<person_id>/, trusted by the server.
  .build/release/esaylovctl pki init
  .build/release/esaylovctl pki issue-demo
fi
PKI=${ESAYLOV_PKI_DIR:-.data/pki}
IDENTITY=()
[ -d "$PKI/trust" ] && IDENTITY+=(--trust-store "$PKI/trust")
[ -f "$PKI/server/key.pem" ] && IDENTITY+=(--signing-key "$PKI/server/key.pem" --signing-cert "$PKI/server/cert.pem")
[ -f "$PKI/tls/key.pem" ] && IDENTITY+=(--tls-cert "$PKI/tls/cert.pem" --tls-key "$PKI/tls/key.pem")
mkdir -p -m 0700 .data/sms
exec .build/release/esaylov-server "${IDENTITY[@]}" --sms-outbox .data/sms/outbox.jsonl "$@"
