#!/bin/sh
# Run every test executable (and tests/*_test.sh CLI suites) of each build
# directory given, and finish with one line: "N passed, N failed, N skipped".
# A binary that crashes or exits non-zero without reporting a FAIL counts as
# one failure, so a crash can never pass silently. A build directory with no
# test executables (e.g. after a plain `make`, which builds none) counts as
# one failure too: a runner that ran nothing has not passed.
# QEIL_TEST_RUNNER, when set, prefixes every command (test binaries and the
# CLI suites' QEIL_BIN), e.g. "qemu-aarch64-static -L /" for a cross build
# (make test-arm); QEIL_TESTS, when set, names the test binaries to run
# (e.g. "test_kernels test_engine"), all of them otherwise.
# QEIL_TEST_TOTALS=FILE appends this run's three counts to FILE, and
# `sh tests/run.sh --sum FILE` prints their sum as the one closing line
# (make test: the x86 builds and the aarch64 runs under qemu together),
# failing when any run failed or none was recorded.
set -u
# the counts file is this run's: the tests it starts (a test of run.sh
# itself among them) must not write to it
totals=${QEIL_TEST_TOTALS:-}
unset QEIL_TEST_TOTALS
if [ "${1:-}" = "--sum" ]; then
    [ $# -eq 2 ] && [ -s "$2" ] || { echo "run.sh --sum: no counts in ${2:-(none)}"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
    awk '{p += $1; f += $2; s += $3} END {printf "%d passed, %d failed, %d skipped\n", p, f, s; exit f > 0}' "$2"
    exit $?
fi
runner=${QEIL_TEST_RUNNER:-}
export QEIL_TEST_RUNNER="$runner" # tests that cannot hold under an emulator SKIP
[ $# -ge 1 ] || set -- build
pass=0; fail=0; skip=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
for dir in "$@"; do
    ran=0
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        if [ -n "${QEIL_TESTS:-}" ]; then
            case " $QEIL_TESTS " in *" ${t##*/} "*) ;; *) continue ;; esac
        fi
        ran=$((ran + 1))
        echo "== $t"
        $runner "$t" >"$log" 2>&1; rc=$?
        cat "$log"
        p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL $t: exited with status $rc"; f=1
        fi
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    done
    if [ "$ran" -eq 0 ]; then
        echo "FAIL $dir: no test executables in $dir/tests (build them with 'make tests')"
        fail=$((fail + 1))
    fi
    for t in tests/*_test.sh; do
        [ -f "$t" ] || continue
        [ -z "${QEIL_TESTS:-}" ] || continue
        echo "== $t ($dir)"
        QEIL_BIN="$dir/qeil" sh "$t" >"$log" 2>&1; rc=$?
        cat "$log"
        p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL $t: exited with status $rc"; f=1
        fi
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    done
done
echo "$pass passed, $fail failed, $skip skipped"
[ -z "$totals" ] || echo "$pass $fail $skip" >>"$totals"
[ "$fail" -eq 0 ]
