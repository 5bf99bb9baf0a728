#!/bin/sh
# serve_test.sh — `qeil serve` end to end (issue #19): tests/serve_test.py
# (python3's http.client, curl when present, headless chromium when
# present) against the QEIL_BIN that tests/run.sh passes. SKIP without
# python3 or a binary that has no serve command.
set -u
BIN=${QEIL_BIN:-build/qeil}
# A directory without the CLI is no build (tests/run.sh's own test hands it
# an empty one): nothing to check.
if [ ! -x "$BIN" ]; then
    echo "# serve_test: no $BIN, nothing to check"
    exit 0
fi
if ! command -v python3 > /dev/null 2>&1; then
    echo "SKIP serve: python3 not found"
    exit 0
fi
if [ -n "${QEIL_TEST_RUNNER:-}" ]; then
    echo "SKIP serve: not under an emulator ($QEIL_TEST_RUNNER)"
    exit 0
fi
exec python3 "$(dirname "$0")/serve_test.py" "$BIN"
