#!/usr/bin/env bash
# Run HERE (Debian bookworm, with apt): downloads the Debian packages the GPU build needs into
# .dev/debs (gitignored), to be carried to the GPU machine, which has no internet and no Debian.
# Each package is then rebuilt without what the build never reads — static libraries (but
# Catch2's, which its CMake package names), documentation, manual pages — 9.1 MB -> 4.4 MB, so
# that a shared mini (scripts/gpu/pack_model.py) travels beside the tree within the 64 MiB limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .dev/debs
cd .dev/debs
apt-get download libcli11-dev nlohmann-json3-dev libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 \
  libsentencepiece-dev libsentencepiece0 catch2 libpcre2-dev libpcre2-8-0 libpcre2-16-0 \
  libpcre2-32-0 libpcre2-posix3 zlib1g-dev libssl-dev libssl3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in *.deb; do
  case "$d" in catch2_*) continue ;; esac
  dpkg-deb -R "$d" "$tmp/pkg"
  find "$tmp/pkg" -name '*.a' -delete
  rm -rf "$tmp/pkg/usr/share/doc" "$tmp/pkg/usr/share/man"
  dpkg-deb -Zxz -b "$tmp/pkg" "$d" > /dev/null
  rm -rf "$tmp/pkg"
done
du -sh .
