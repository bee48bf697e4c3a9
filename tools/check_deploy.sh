#!/bin/sh
# check_deploy.sh [GENPULSE_BINARY] — checks deploy/ as far as this machine allows: the
# compose file against the Compose Specification schema and docker-compose's own parser,
# the Dockerfile (linted; runtime packages against the binary's NEEDED libraries; build
# context), the systemd units (systemd-analyze verify and security, sysusers). It builds and
# pulls no image and starts no unit; those are reported as skipped. Run by `make test`.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/genpulse}
exec /usr/bin/python3 deploy/check/check_deploy.py . "$bin"
