#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only when missing.
# Idempotent and quiet when everything is there; needs root (or sudo) otherwise.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  liblz4-dev lz4          # LZ4 frames (native encoder; the lz4 tool for the vector cross-check)
  libcurl4-openssl-dev    # upload thread
  libbenchmark-dev        # native micro-benchmarks
  libgtest-dev            # native unit tests
  postgresql              # real PostgreSQL server for the tests
  python3-venv            # S3-compatible test server (moto) lives in a venv
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
