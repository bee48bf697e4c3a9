#!/bin/sh
# test-services.sh start DIR | stop DIR — private PostgreSQL and Redis servers for the tests,
# on loopback ports chosen free at start, with all state under DIR. `start` writes DIR/env
# (GENPULSE_TEST_PG_URL, GENPULSE_TEST_REDIS_URL) for the tests to source.
set -eu
cmd=${1:?usage: test-services.sh start|stop DIR}
dir=${2:?usage: test-services.sh start|stop DIR}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

as_postgres() { # initdb/postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
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
  cat "$dir/env"
  ;;
stop)
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  [ -d "$dir/pg" ] && as_postgres "$pgbin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: test-services.sh start|stop DIR" >&2; exit 2 ;;
esac
