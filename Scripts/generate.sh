#!/usr/bin/env bash
# Regenerates every piece of generated code from the .proto contracts.
# Output is committed; CI reruns this script and fails when the tree changes.
set -euo pipefail
cd "$(dirname "$0")/.."

GRPC_PROTO=/usr/share/grpc-proto
WKT=/usr/include

need() { command -v "$1" >/dev/null || { echo "generate.sh: $1 not found (run Scripts/setup.sh)" >&2; exit 1; }; }
need protoc; need protoc-c; need python3
case "$(protoc --version)" in "libprotoc 3.21."*) ;; *) echo "generate.sh: need protoc 3.21.x, found $(protoc --version)" >&2; exit 1;; esac
case "$(protoc-c --version | head -n1)" in "protobuf-c 1.4.1") ;; *) echo "generate.sh: need protoc-c 1.4.1, found $(protoc-c --version | head -n1)" >&2; exit 1;; esac
[ -f "$GRPC_PROTO/grpc/health/v1/health.proto" ] || { echo "generate.sh: grpc-proto package missing" >&2; exit 1; }
python3 -c 'import google.protobuf' 2>/dev/null || { echo "generate.sh: python3 protobuf package missing" >&2; exit 1; }

PLUGIN=Scripts/generator/protoc-gen-esaylov-swift
WKT_FILES=(google/protobuf/timestamp.proto google/protobuf/duration.proto google/protobuf/empty.proto)
GRPC_FILES=(grpc/health/v1/health.proto grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)

# gen C_DIR SWIFT_DIR MODULE C_MODULE ACCESSOR DEP_MODULE -I… -- FILES…
gen() {
  local c_dir=$1 swift_dir=$2 module=$3 c_module=$4 accessor=$5 dep_module=$6; shift 6
  local includes=() files=()
  while [ "$1" != "--" ]; do includes+=("$1"); shift; done; shift
  files=("$@")
  local stage; stage=$(mktemp -d)
  mkdir -p "$stage/c"; protoc "${includes[@]}" --c_out="$stage/c" "${files[@]}"
  mkdir -p "$stage/swift"
  protoc "${includes[@]}" --plugin=protoc-gen-esaylov-swift="$PLUGIN" \
    --esaylov-swift_out="module=$module,c_module=$c_module,accessor=$accessor,dep_module=$dep_module:$stage/swift" "${files[@]}"
  rm -rf "$c_dir/include" "$c_dir"/*.c "$swift_dir"/*.pb.swift
  mkdir -p "$c_dir/include" "$swift_dir"
  # Headers keep their proto paths under include/ so that protoc-c's includes resolve;
  # sources are flattened into the target root.
  (cd "$stage/c" && find . -name '*.pb-c.h') | while read -r h; do
    mkdir -p "$c_dir/include/$(dirname "$h")"; mv "$stage/c/$h" "$c_dir/include/$h"
  done
  # protoc-c marks fields of deprecated proto fields with a C attribute; Swift would warn at
  # every generated conversion. The proto keeps the deprecation; the C attribute goes.
  find "$c_dir/include" -name '*.pb-c.h' -exec sed -i 's/ PROTOBUF_C__DEPRECATED;/;/' {} +
  (cd "$stage/c" && find . -name '*.pb-c.c') | while read -r f; do
    mv "$stage/c/$f" "$c_dir/$(echo "${f#./}" | tr '/' '_')"
  done
  mv "$stage/swift/${accessor}_descriptors.h" "$c_dir/include/"
  mv "$stage/swift/${accessor}_descriptors.c" "$c_dir/"
  mv "$stage/swift/"*.pb.swift "$swift_dir/"
  rm -rf "$stage"
}

gen Sources/ESaylovProtoC Sources/ESaylovAPI ESaylovAPI ESaylovProtoC esaylov_pb "" \
  -I"$WKT" -I"$GRPC_PROTO" -IProtos -- "${WKT_FILES[@]}" "${GRPC_FILES[@]}"
gen Tests/FixtureProtoC Tests/FixtureAPI FixtureAPI FixtureProtoC esaylov_fixture_pb ESaylovAPI \
  -I"$WKT" -ITests/Fixtures -- fixture.proto

# Golden wire bytes for the codec tests, encoded by protoc itself (an independent encoder).
for t in Tests/Fixtures/golden/*.txtpb; do
  [ -e "$t" ] || continue
  msg=$(sed -n 's/^# message: *//p' "$t" | head -n1)
  protoc -I"$WKT" -ITests/Fixtures --encode="$msg" fixture.proto < "$t" > "${t%.txtpb}.bin"
done

# Descriptor set of everything served, for reflection and for the black-box tests.
mkdir -p Protos/descriptors
protoc -I"$WKT" -I"$GRPC_PROTO" -IProtos --include_imports --include_source_info \
  --descriptor_set_out=Protos/descriptors/served.pb "${GRPC_FILES[@]}"
echo "generate.sh: done"
