"""Operations: liveness vs readiness, the worker's admin listener, systemd's notify protocol,
and the distributed-storage rule."""
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from harness import BIN, Skip, case, check, free_port, http_request

PG = os.environ.get("GENPULSE_TEST_PG_URL")
REDIS = os.environ.get("GENPULSE_TEST_REDIS_URL")


def _checks(body):
    return {c["name"]: c for c in body.get("checks", [])}


@case("basic")
def test_health_is_liveness_only(ctx):
    r = ctx.srv.get("/health")
    check(r.status == 200 and r.json["status"] == "ok", "GET /health: %r" % r)
    check("queue_depth" not in r.json, "/health must not touch the queue: %r" % r.json)


@case("basic")
def test_ready_embedded(ctx):
    r = ctx.srv.get("/ready")
    check(r.status == 200, "GET /ready: %r" % r)
    check(r.json["status"] == "ready", "status: %r" % r.json)
    checks = _checks(r.json)
    for name in ("store", "migrations", "queue", "storage", "workers"):
        check(checks.get(name, {}).get("status") == "ok", "check %s: %r" % (name, r.json))
    check(checks["migrations"]["applied"] == checks["migrations"]["expected"], "%r" % checks)
    check(r.headers.get("cache-control") == "no-store", "cache-control %r" % r.headers)


@case(own=True)
def test_ready_schema_newer_than_binary(ctx):
    srv = ctx.new_server(name="schema").start()
    check(srv.get("/ready").status == 200, "ready before")
    db = sqlite3.connect(os.path.join(srv.data_dir, "genpulse.db"), timeout=10)
    db.execute("INSERT INTO schema_migrations VALUES (999, 0)")
    db.commit()
    db.close()
    time.sleep(1.1)  # readiness results are shared for a second
    r = srv.get("/ready")
    check(r.status == 503, "a newer schema must make the process unready: %r" % r)
    m = _checks(r.json)["migrations"]
    check(m["status"] == "fail" and "newer" in m["error"] and m["applied"] == 999, "%r" % m)
    check(_checks(r.json)["store"]["status"] == "ok", "store itself answers: %r" % r.json)


def _notify_socket():
    path = tempfile.mktemp(prefix="notify-", suffix=".sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    return s, path


def _read_notify(sock, until, want):
    got = []
    while time.time() < until:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            continue
        got.append(msg)
        if want(got):
            break
    return got


@case(own=True)
def test_systemd_notify_ready_watchdog_stopping(ctx):
    sock, path = _notify_socket()
    try:
        srv = ctx.new_server(name="notify", env={"NOTIFY_SOCKET": path,
                                                 "WATCHDOG_USEC": "400000"}).start()
        got = _read_notify(sock, time.time() + 5,
                           lambda g: sum("WATCHDOG=1" in m for m in g) >= 3)
        ready = [m for m in got if "READY=1" in m]
        check(ready, "no READY=1 (got %r)" % got)
        check("STATUS=" in ready[0], "READY without STATUS: %r" % ready[0])
        check(sum("WATCHDOG=1" in m for m in got) >= 3, "watchdog keep-alives: %r" % got)
        srv.signal(signal.SIGTERM)
        got = _read_notify(sock, time.time() + 5, lambda g: any("STOPPING=1" in m for m in g))
        check(any("STOPPING=1" in m for m in got), "no STOPPING=1 on SIGTERM: %r" % got)
        check(srv.wait_exit(15), "server did not exit")
    finally:
        sock.close()
        os.unlink(path)


def _dist_env():
    return {"GENPULSE_DATABASE_URL": PG, "GENPULSE_QUEUE_URL": REDIS.rsplit("/", 1)[0] + "/7"}


@case(own=True)
def test_distributed_worker_refuses_unreachable_local_storage(ctx):
    if not (PG and REDIS):
        raise Skip("needs GENPULSE_TEST_PG_URL and GENPULSE_TEST_REDIS_URL")
    env = dict(os.environ, **_dist_env())
    env.pop("GENPULSE_PUBLIC_URL", None)
    env.pop("GENPULSE_STORAGE_URL", None)
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([BIN, "worker", "--data-dir", d], env=env, capture_output=True,
                           timeout=30)
    err = p.stderr.decode()
    check(p.returncode == 2, "exit %s: %s" % (p.returncode, err))
    check("--storage-url" in err and "--public-url" in err, "message: %s" % err)


@case(own=True)
def test_distributed_ready_and_worker_admin_port(ctx):
    if not (PG and REDIS):
        raise Skip("needs GENPULSE_TEST_PG_URL and GENPULSE_TEST_REDIS_URL")
    env = _dist_env()
    api = ctx.new_server(name="api", env=env, command="api").start()
    # A gateway whose Redis goes away is alive but not ready.
    rport = free_port()
    rdir = tempfile.mkdtemp(prefix="redis-")
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", rdir],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", rport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        own = dict(env, GENPULSE_QUEUE_URL="redis://127.0.0.1:%d/0" % rport)
        lonely = ctx.new_server(name="api-own-redis", env=own, command="api").start()
    finally:
        redis.kill()
        redis.wait()
    time.sleep(1.1)
    r = lonely.get("/ready")
    check(r.status == 503 and r.json["status"] == "not_ready", "dead redis: %r" % r)
    checks = _checks(r.json)
    check(checks["queue"]["status"] == "fail" and checks["queue"]["error"], "%r" % checks)
    check(checks["store"]["status"] == "ok", "store is fine: %r" % checks)
    check(lonely.get("/health").status == 200, "liveness must not depend on Redis")

    admin_port = free_port()
    wenv = dict(env, GENPULSE_PUBLIC_URL="http://127.0.0.1:%d" % api.port)
    worker = ctx.new_server(["--admin-port", str(admin_port)], data_dir=api.data_dir,
                            name="worker", env=wenv, command="worker").start()
    deadline = time.time() + 10
    r = None
    while time.time() < deadline:
        try:
            r = http_request(admin_port, "GET", "/health", timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    check(r is not None and r.status == 200 and r.json["status"] == "ok", "admin /health: %r" % r)
    check(r.json["workers"]["concurrency"] >= 1, "%r" % r.json)
    r = http_request(admin_port, "GET", "/ready", timeout=10)
    check(r.status == 200 and _checks(r.json)["workers"]["status"] == "ok", "worker /ready: %r" % r)
    r = http_request(admin_port, "GET", "/v1/tasks", timeout=5)
    check(r.status == 404 and r.json["error"]["code"] == "not_found", "admin port API: %r" % r)
    r = http_request(admin_port, "POST", "/ready", body=b"{}", timeout=5)
    check(r.status == 405, "POST /ready: %r" % r)
    # The gateway sees the worker through the shared registry within a beat or two.
    deadline = time.time() + 10
    while time.time() < deadline:
        r = api.get("/ready")
        if r.status == 200:
            break
        time.sleep(0.5)
    check(r.status == 200, "gateway /ready with a live worker: %r" % r)
    worker.stop()
