#!/usr/bin/env bash
# Run HERE (Debian bookworm, with apt): downloads the Debian packages the GPU build needs into
# .dev/debs (gitignored), to be carried to the GPU machine, which has no internet and no Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .dev/debs
cd .dev/debs
apt-get download libcli11-dev nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 \
  libsentencepiece-dev libsentencepiece0 catch2 libpcre2-dev libpcre2-8-0 libpcre2-16-0 \
  libpcre2-32-0 libpcre2-posix3 zlib1g-dev libssl-dev libssl3
ls -la
