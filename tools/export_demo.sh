#!/bin/sh
# export_demo.sh — build tools/export_demo.c and tools/check_demo.c against
# the library (build/libqeil.a, from `make`), write the demo GGUF from
# tools/train_demo.py's dump and check it against PyTorch (docs/demo-model.md).
#
#   tools/export_demo.sh [DUMP_DIR] [OUT.gguf]     defaults /tmp/demo models/qeil-demo.gguf
set -eu
cd "$(dirname "$0")/.."
DUMP=${1:-/tmp/demo}
OUT=${2:-models/qeil-demo.gguf}
CC=${CC:-cc}
CFLAGS="-std=c11 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -D_DEFAULT_SOURCE -Iinclude -Isrc"
[ -f build/libqeil.a ] || make build/libqeil.a
mkdir -p build/demo
$CC $CFLAGS tools/export_demo.c build/libqeil.a -lcjson -lm -pthread -o build/demo/export_demo
$CC $CFLAGS tools/check_demo.c build/libqeil.a -lcjson -lm -pthread -o build/demo/check_demo
mkdir -p "$(dirname "$OUT")"
build/demo/export_demo "$DUMP" "$OUT"
build/demo/check_demo "$OUT" "$DUMP"
