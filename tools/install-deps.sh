#!/bin/sh
# Install the Debian 12 packages qeil needs. Idempotent: installs only what
# is missing, with sudo when not root.
#   sh tools/install-deps.sh          build: compiler, make, cJSON
#   sh tools/install-deps.sh --test   also the test oracles: PyTorch, NumPy and
#                                     SentencePiece (reference forward pass and
#                                     tokenizer oracle; those tests SKIP without them)
set -e
PKGS="build-essential libcjson-dev"
if [ "${1:-}" = "--test" ]; then
    PKGS="$PKGS python3 python3-torch python3-numpy python3-sentencepiece libopenblas0-pthread"
fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
