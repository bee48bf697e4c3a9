#!/bin/sh
# test-services.sh start DIR | stop DIR — private PostgreSQL, Redis and S3 (s3rver) servers
# for the tests, on loopback ports chosen free at start, with all state under DIR. `start`
# writes DIR/env (GENPULSE_TEST_PG_URL, GENPULSE_TEST_REDIS_URL, GENPULSE_TEST_S3_URL) for the
# tests to source. s3rver is an npm package pinned in tools/s3rver/package-lock.json; without
# node/npm the S3 server is left out with a warning and the S3 tests skip.
set -eu
cmd=${1:?usage: test-services.sh start|stop DIR}
dir=${2:?usage: test-services.sh start|stop DIR}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
s3dir=$(cd "$(dirname "$0")" && pwd)/s3rver

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_postgres() { # initdb/postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_open() {
  /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.5)' "$1" 2>/dev/null
}

# s3rver (S3 API with SigV4 checks; credentials S3RVER/S3RVER) with bucket genpulse-test.
start_s3rver() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "test-services.sh: node and npm not found (Debian: apt-get install nodejs npm):" \
      "no S3 server, the S3 storage tests will skip" >&2
    return 0
  fi
  if [ ! -x "$s3dir/node_modules/.bin/s3rver" ]; then
    npm ci --prefix "$s3dir" --silent --no-audit --no-fund >"$dir/npm.log" 2>&1 || {
      echo "test-services.sh: npm ci in $s3dir failed (see below): no S3 server" >&2
      tail -20 "$dir/npm.log" >&2
      return 0
    }
  fi
  s3port=$(free_port)
  mkdir -p "$dir/s3"
  nohup node "$s3dir/node_modules/s3rver/bin/s3rver.js" -d "$dir/s3" -a 127.0.0.1 -p "$s3port" \
    --silent --configure-bucket genpulse-test >"$dir/s3rver.log" 2>&1 &
  echo $! >"$dir/s3rver.pid"
  for _ in $(seq 100); do port_open "$s3port" && break; sleep 0.1; done
  if ! port_open "$s3port"; then
    echo "test-services.sh: s3rver did not start (log: $dir/s3rver.log)" >&2
    return 0
  fi
  echo "GENPULSE_TEST_S3_URL='s3://S3RVER:S3RVER@127.0.0.1:$s3port/genpulse-test?tls=false&path_style=true'" >>"$dir/env"
}

case "$cmd" in
start)
  mkdir -p "$dir"
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir" 2>/dev/null || true
  pgport=$(free_port); redisport=$(free_port)
  as_postgres "$pgbin/initdb" -D "$dir/pg" -A trust -U genpulse --no-locale -E UTF8 >"$dir/initdb.log" 2>&1
  as_postgres "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t 30 \
    -o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off" start >/dev/null
  as_postgres "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U genpulse genpulse_test
  redis-server --port "$redisport" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 50); do redis-cli -p "$redisport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  {
    echo "GENPULSE_TEST_PG_URL=postgres://genpulse@127.0.0.1:$pgport/genpulse_test"
    echo "GENPULSE_TEST_REDIS_URL=redis://127.0.0.1:$redisport/0"
    echo "GENPULSE_TEST_REDIS_RESTART='redis-server --port $redisport --bind 127.0.0.1 --save \"\" --appendonly no --daemonize yes --pidfile $dir/redis.pid --logfile $dir/redis.log --dir $dir'"
    echo "GENPULSE_TEST_REDIS_PIDFILE=$dir/redis.pid"
    echo "GENPULSE_TEST_PG_CTL=$pgbin/pg_ctl"
    echo "GENPULSE_TEST_PG_DATA=$dir/pg"
    echo "GENPULSE_TEST_PG_OPTIONS='-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off'"
  } >"$dir/env"
  start_s3rver
  cat "$dir/env"
  ;;
stop)
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  [ -d "$dir/pg" ] && as_postgres "$pgbin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: test-services.sh start|stop DIR" >&2; exit 2 ;;
esac
