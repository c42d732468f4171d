#!/usr/bin/env bash
# The esaylov.v1 contract's guard rails.
#   Scripts/contract.sh check     house rules (comments, statuses, enum zero values, options,
#                                 no proto3 optional) and no breaking change against the
#                                 released descriptor set; run by .ci/run
#   Scripts/contract.sh release   record the current contract as released (at a release only)
set -euo pipefail
cd "$(dirname "$0")/.."
RELEASED=Protos/released/esaylov.v1.pb
FILES=(Protos/esaylov/v1/*.proto)
current=$(mktemp)
trap 'rm -f "$current"' EXIT
protoc -I/usr/include -IProtos --include_imports --include_source_info --descriptor_set_out="$current" "${FILES[@]}"
case "${1:-check}" in
  check)
    python3 Scripts/protos.py lint "$current"
    python3 Scripts/protos.py compat "$RELEASED" "$current"
    ;;
  release)
    mkdir -p "$(dirname "$RELEASED")"
    protoc -I/usr/include -IProtos --include_imports --descriptor_set_out="$RELEASED" "${FILES[@]}"
    echo "contract.sh: recorded $RELEASED"
    ;;
  *) echo "usage: Scripts/contract.sh check|release" >&2; exit 2 ;;
esac
