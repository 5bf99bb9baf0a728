#!/bin/sh
# Install the Debian 12 packages qeil needs. Idempotent: installs only what
# is missing, with sudo when not root.
#   sh tools/install-deps.sh          build: compiler, make, cJSON, libmicrohttpd
#                                     (qeil serve's HTTP server, CLI only), Vulkan headers
#                                     and glslc (the shader compiler; Vulkan itself
#                                     is dlopened at run time, docs/vulkan.md)
#   sh tools/install-deps.sh --test   also lavapipe (mesa-vulkan-drivers: Vulkan on
#                                     the CPU for tests/test_vulkan*.c), chromium
#                                     (headless: the page test of tests/serve_test.sh;
#                                     it SKIPs without) and the
#                                     test oracles: PyTorch, NumPy and
#                                     SentencePiece (reference forward pass and
#                                     tokenizer oracle; those tests SKIP without them),
#                                     jq (tools/paper-table.sh and its test)
#                                     and, where node >= 20 and npm are present,
#                                     llama.cpp's prebuilt library from the npm
#                                     package node-llama-cpp into build-oracle/
#                                     (tests/test_oracle_llamacpp.c SKIPs without it)
#                                     and, on x86_64, the aarch64 cross build and
#                                     its runner (make test-arm): gcc-aarch64-linux-gnu,
#                                     libcjson-dev:arm64 and libmicrohttpd-dev:arm64
#                                     (multiarch: the aarch64 CLI links both) and
#                                     qemu-user-static;
#                                     and headless Chromium, which renders the SVG
#                                     pictures in tests/test_cli.c (SKIP without it)
set -e
PKGS="build-essential libcjson-dev libvulkan-dev glslc libmicrohttpd-dev"
if [ "${1:-}" = "--test" ]; then
    PKGS="$PKGS mesa-vulkan-drivers python3 python3-torch python3-numpy python3-sentencepiece libopenblas0-pthread chromium jq"
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# The arm64 cJSON and libmicrohttpd come through Debian multiarch (both are
# Multi-Arch: same; libmicrohttpd-dev:arm64 brings libgnutls28-dev:arm64 and
# moves the amd64 libraries they share to the same version): the architecture is
# added once (dpkg remembers it), then the package list is refreshed below.
if [ "${1:-}" = "--test" ] && [ "$(uname -m)" = "x86_64" ]; then
    PKGS="$PKGS gcc-aarch64-linux-gnu qemu-user-static libcjson-dev:arm64 libmicrohttpd-dev:arm64 libc6:arm64"
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
[ "${1:-}" = "--test" ] || exit 0

# llama.cpp oracle: the prebuilt llama.cpp of node-llama-cpp (pinned), from
# the npm registry, into build-oracle/ (gitignored). --ignore-scripts: its
# install script would look for or build other binaries; the linux-x64
# package already holds them, so nothing is downloaded at test time.
ORACLE_VERSION=3.22.1
ORACLE_DIR="$(cd "$(dirname "$0")/.." && pwd)/build-oracle"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "note: the llama.cpp oracle needs linux x86_64; its test will SKIP" >&2
elif ! command -v npm > /dev/null 2>&1 || ! command -v node > /dev/null 2>&1 ||
     ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
    echo "note: node >= 20 and npm not found: the llama.cpp oracle test will SKIP" >&2
elif ! grep -qs "\"version\": \"$ORACLE_VERSION\"" "$ORACLE_DIR/node_modules/node-llama-cpp/package.json" ||
     ! [ -f "$ORACLE_DIR/node_modules/@node-llama-cpp/linux-x64/package.json" ]; then
    echo "installing node-llama-cpp@$ORACLE_VERSION into $ORACLE_DIR" >&2
    mkdir -p "$ORACLE_DIR"
    npm install --prefix "$ORACLE_DIR" --no-save --ignore-scripts --omit=optional --no-audit \
        --no-fund "node-llama-cpp@$ORACLE_VERSION" "@node-llama-cpp/linux-x64@$ORACLE_VERSION" >&2 ||
        echo "warning: npm install failed: the llama.cpp oracle test will SKIP" >&2
fi
