#!/bin/sh
# Build the libFuzzer targets into build-fuzz/ (needs clang with
# -fsanitize=fuzzer; skipped cleanly when it is missing).
#
#   sh tests/fuzz/build.sh          build only
#   sh tests/fuzz/build.sh 60       build, then fuzz each target for 60 s
#
# A run writes new inputs to build-fuzz/corpus-<target>/ (not to the seed
# corpus in tests/fuzz/corpus/<target>/, which is committed and also runs as
# a plain regression test in `make test`). Crashes land in build-fuzz/ as
# crash-*; fix the bug, then copy the file into the seed corpus.
# The seed corpus is regenerated with: build/tests/test_gguf --write-corpus DIR
# (gguf); tasks' seeds are the committed samples of tests/data/eval (copied).
set -eu
cd "$(dirname "$0")/../.."

CC_FUZZ=${CC_FUZZ:-clang}
OUT=build-fuzz
SECONDS_TO_RUN=${1:-0}

if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
    echo "SKIP fuzz: $CC_FUZZ not found"
    exit 0
fi
mkdir -p "$OUT"
probe="$OUT/probe.c"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe"
if ! "$CC_FUZZ" -fsanitize=fuzzer "$probe" -o "$OUT/probe" >/dev/null 2>&1; then
    echo "SKIP fuzz: $CC_FUZZ has no libFuzzer (-fsanitize=fuzzer)"
    rm -f "$probe"
    exit 0
fi
rm -f "$probe" "$OUT/probe"

FLAGS="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -fno-omit-frame-pointer -pthread -Wall -Wextra -Iinclude -Isrc -D_DEFAULT_SOURCE
       -D_FILE_OFFSET_BITS=64"

# target name, then its sources beyond src/core
build() {
    name=$1; shift
    echo "CC $OUT/$name"
    # shellcheck disable=SC2086
    "$CC_FUZZ" $FLAGS "tests/fuzz/$name.c" src/core/*.c "$@" -lm -o "$OUT/$name"
}

build fuzz_gguf src/model/gguf.c src/model/gguf_write.c src/model/ggml_types.c
build fuzz_tasks src/runtime/tasks.c src/select/answer.c -lcjson

if [ "$SECONDS_TO_RUN" -gt 0 ]; then
    for t in fuzz_gguf fuzz_tasks; do
        seed="tests/fuzz/corpus/${t#fuzz_}"
        work="$OUT/corpus-${t#fuzz_}"
        mkdir -p "$work"
        echo "== $t for $SECONDS_TO_RUN s (seeds: $seed, new inputs: $work)"
        "$OUT/$t" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="$OUT/" "$work" "$seed"
    done
fi
