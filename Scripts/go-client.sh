#!/usr/bin/env bash
# Builds the Go client of esaylov.v1 the way an integration team would, with Debian's stock
# tools only (protoc-gen-go, protoc-gen-go-grpc, golang-google-grpc-dev), in GOPATH mode,
# offline: generates the stubs from Protos/, compiles them and Tests/goclient.
#   Scripts/go-client.sh [OUT_DIR]   (default .build-go); the program is OUT_DIR/goclient
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-.build-go}")
rm -rf "$out/src/esaylov.uz"
mkdir -p "$out/src"
protoc -I/usr/include -IProtos --go_out="$out/src" --go-grpc_out="$out/src" Protos/esaylov/v1/*.proto
export GOPATH="$out:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOPROXY=off GOCACHE="$out/cache"
go vet esaylov.uz/api/esaylov/v1
go build -o "$out/goclient" ./Tests/goclient
echo "go-client.sh: built $out/goclient"
