#!/bin/bash
# rootfs.sh WORKDIR — a stand-in for `docker build` + `docker run` where images cannot be
# pulled: makes Debian 12 root file systems with mmdebstrap (Debian packages only) and plays
# deploy/Dockerfile's two stages in them with chroot. Manual, not in `make test` (it downloads
# a few hundred MB of packages; 2-6 minutes). Root only.
#   1. build: a fresh Debian 12, the Dockerfile's build context (the files that
#      Dockerfile.dockerignore keeps), `sh tools/deps.sh build`, `make release`, strip;
#   2. runtime: a fresh Debian 12 with exactly the runtime stage's package list (read from
#      the Dockerfile), the stage's user-creating RUN line, the stripped binary;
#   3. smoke: as uid 10001 with the image's ENV, `serve` on PostgreSQL + S3 (the test
#      services) with the admin listener; the image's HEALTHCHECK command; audio, image and
#      video tasks whose output links are fetched; SIGTERM must exit 0.
set -euo pipefail
work=${1:?usage: deploy/check/rootfs.sh WORKDIR}
repo=$(cd "$(dirname "$0")/../.." && pwd)
dockerfile=$repo/deploy/Dockerfile
[ "$(id -u)" = 0 ] || { echo "rootfs.sh: needs root (mmdebstrap, chroot)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap
# The host's own apt sources (this machine is Debian 12), so no mirror is named here.
sources=
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  [ -s "$f" ] && { sources=$f; break; }
done
[ -n "$sources" ] || { echo "rootfs.sh: no apt sources on this host" >&2; exit 2; }
mkdir -p "$work"
say() { printf '== %s\n' "$*"; }

# The final stage of the Dockerfile, continuation lines joined.
final=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
pkgs=$(printf '%s\n' "$final" | grep -o 'apt-get install -y --no-install-recommends[^&]*' | sed 's/.*--no-install-recommends//' | xargs)
useradd_run=$(printf '%s\n' "$final" | grep '^RUN groupadd' | sed 's/^RUN //')
healthcheck=$(printf '%s\n' "$final" | grep '^HEALTHCHECK' | sed 's/.* CMD //')
image_env=$(printf '%s\n' "$final" | grep '^ENV ' | sed 's/^ENV //' | xargs)
[ -n "$pkgs" ] && [ -n "$useradd_run" ] && [ -n "$healthcheck" ] || { echo "rootfs.sh: cannot read the Dockerfile" >&2; exit 1; }

say "build stage: fresh Debian 12, tools/deps.sh build, make release"
rm -rf "$work/build" && mmdebstrap --quiet --variant=apt --mode=root bookworm "$work/build" "$sources"
cp /etc/resolv.conf "$work/build/etc/resolv.conf"
mkdir -p "$work/build/src"
(cd "$repo" && git ls-files --cached | grep -E '^(Makefile|include/.*|src/.*|tools/[^/]*\.sh)$' | xargs cp --parents -t "$work/build/src")
chroot "$work/build" sh -c 'cd /src && DEBIAN_FRONTEND=noninteractive sh tools/deps.sh build >/dev/null &&
  make -j2 release >/dev/null && install -D -m 0755 -s build-release/genpulse /out/usr/local/bin/genpulse &&
  /out/usr/local/bin/genpulse version'

say "runtime stage: fresh Debian 12 with: $pkgs"
rm -rf "$work/run" && mmdebstrap --quiet --variant=apt --mode=root --aptopt='APT::Install-Recommends "false"' \
  --include="$(echo $pkgs | tr ' ' ',')" bookworm "$work/run" "$sources"
chroot "$work/run" sh -c "$useradd_run"
cp -a "$work/build/out/." "$work/run/"
R=$work/run
if chroot "$R" ldd /usr/local/bin/genpulse | grep 'not found'; then exit 1; fi
echo "runtime root file system: $(du -sh --exclude=proc "$R" | cut -f1), $(chroot "$R" dpkg -l | grep -c '^ii') packages"

say "smoke: serve as uid 10001 on PostgreSQL + S3"
svc=$work/svc
sh "$repo/tools/test-services.sh" start "$svc" >/dev/null
trap 'sh "$repo/tools/test-services.sh" stop "$svc" >/dev/null 2>&1 || true' EXIT
set -a; . "$svc/env"; set +a
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port); admin=$(free_port)
db=deploy_rootfs_$$
psql -q "$GENPULSE_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
# exec all the way down (env, chroot), so that a background run's $! is genpulse itself.
run_exec() { exec env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin $image_env GENPULSE_PORT=$port \
  GENPULSE_ADMIN_PORT=$admin GENPULSE_DATABASE_URL="${GENPULSE_TEST_PG_URL%/*}/$db" \
  GENPULSE_STORAGE_URL="$GENPULSE_TEST_S3_URL" GENPULSE_LOG_FORMAT=json \
  GENPULSE_LINK_SECRET=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff \
  chroot --userspec=10001:10001 "$R" "$@"; }
run() { (run_exec "$@"); }
run genpulse migrate
run_exec genpulse serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { tail -3 "$work/serve.log"; say "rootfs: serve did not start"; exit 1; }
  sleep 0.2
done
run sh -c "$healthcheck" && echo "image HEALTHCHECK (admin port $admin): ok"
curl -fsS -o /dev/null -w "/ready: %{http_code}\n" "http://127.0.0.1:$admin/ready"
key=$(run genpulse keys create --user local --name rootfs | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
sleep 3 # a running server sees a new key within a few seconds
fail=0
for body in '{"task_type":"text-to-audio","params":{"text":"hello from the runtime image"}}' \
            '{"task_type":"text-to-image","params":{"prompt":"a lighthouse","width":256,"height":256}}' \
            '{"task_type":"text-to-video","params":{"prompt":"a fox","duration":1}}'; do
  id=$(curl -fsS -X POST "http://127.0.0.1:$port/v1/tasks" -H "Authorization: Bearer $key" \
       -H 'Content-Type: application/json' -d "$body" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  st=
  for _ in $(seq 300); do
    task=$(curl -fsS "http://127.0.0.1:$port/v1/tasks/$id" -H "Authorization: Bearer $key")
    st=$(printf '%s' "$task" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case $st in succeeded|failed|canceled) break ;; esac
    sleep 0.2
  done
  url=$(printf '%s' "$task" | /usr/bin/python3 -c 'import json,sys; print(((json.load(sys.stdin).get("result") or {}).get("assets") or [{}])[0].get("url", ""))')
  got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$url" || true)
  echo "$(printf '%s' "$body" | cut -d'"' -f4): $st, output link: $got bytes"
  [ "$st" = succeeded ] && [ "${got%% *}" = 200 ] || fail=1
done
kill -TERM "$pid"
wait "$pid" && echo "SIGTERM: exit 0" || { echo "SIGTERM: exit $?"; fail=1; }
psql -q "$GENPULSE_TEST_PG_URL" -c "DROP DATABASE $db" >/dev/null || true
[ $fail = 0 ] && say "rootfs: ok" || { say "rootfs: FAILED (log: $work/serve.log)"; exit 1; }
