#!/bin/sh
# deps.sh [build|test|bench] — installs the Debian 12 packages GenPulse needs, if missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu
build="gcc make pkg-config libmicrohttpd-dev libsystemd-dev libjansson-dev libsqlite3-dev libpng-dev libespeak-ng-dev espeak-ng-data libpq-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libvips-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev"
test="$build libcmocka-dev clang libclang-rt-14-dev python3 python3-celery python3-redis curl postgresql redis-server python3-websockets python3-jwt python3-cryptography ffmpeg prometheus chromium"
test="$test systemd python3-yaml python3-jsonschema docker-compose" # tools/check_deploy.sh
bench="$build wrk curl ffmpeg"
case "${1:-build}" in
  build) want=$build ;;
  test) want=$test ;;
  bench) want=$bench ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
missing=""
# s3rver (the S3 test server) runs on Node.js: any node/npm will do, Debian's if none.
if [ "${1:-build}" = test ] && ! command -v npm >/dev/null 2>&1; then
  want="$want nodejs npm"
fi
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: run: sudo apt-get install -y$missing" >&2
  exit 1
fi
