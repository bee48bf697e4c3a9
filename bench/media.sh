#!/bin/bash
# bench/media.sh — media analysis and link-signing figures (release build of the core).
# Needs ffmpeg (test inputs) and the release library: make release first (make bench does).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f build-release/libgenpulse-core.a ]] || make -s release
mkdir -p bench/build
PKGS="libmicrohttpd jansson sqlite3 libpng libpq hiredis libcurl libcrypto vips libavformat libavcodec libavutil libswscale"
cc -O2 -std=gnu17 -D_GNU_SOURCE -Iinclude -Isrc $(pkg-config --cflags $PKGS) -o bench/build/media \
  bench/media.c build-release/libgenpulse-core.a $(pkg-config --libs $PKGS) -lespeak-ng -lm -pthread
ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=1024x1024" -frames:v 1 bench/build/in.png
ffmpeg -loglevel error -y -f lavfi -i "testsrc2=duration=2:size=1280x720:rate=24" \
  -c:v libx264 -preset ultrafast -pix_fmt yuv420p bench/build/in.mp4
bench/build/media bench/build/in.png bench/build/in.mp4 "${1:-20}"
