#!/bin/sh
# check_client_lib.sh BUILD_DIR [CFLAGS] — the RPC client library exports only what
# include/genpulse/client.h declares, and a program linked against it alone (plus its external
# libraries) builds. Run by `make test`.
set -eu
build=${1:?usage: check_client_lib.sh BUILD_DIR [CFLAGS]}
flags=${2:-}
lib=$build/libgenpulse.a
extra=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | grep -v -x -f "$build/client-exports.txt" |
  grep -v '^__\(asan\|ubsan\|sancov\)' || true)
if [ -n "$extra" ]; then
  echo "check_client_lib: $lib exports symbols client.h does not declare:" >&2
  echo "$extra" >&2
  exit 1
fi
prog=$(mktemp -d)
trap 'rm -rf "$prog"' EXIT
cat > "$prog/host.c" <<'C'
#include <genpulse/client.h>
#include <stdio.h>
int main(void)
{
    char err[256];
    gp_client_t *c = gp_client_connect("redis://127.0.0.1:1/0", 200, err, sizeof err);
    if (c)
        gp_client_free(c);
    return 0;
}
C
# shellcheck disable=SC2086
cc $flags -Iinclude -o "$prog/host" "$prog/host.c" "$lib" -lhiredis -ljansson -pthread
"$prog/host"
echo "check_client_lib: $lib exports $(wc -l < "$build/client-exports.txt") gp_client_* symbols, links alone"
