"""Black-box test harness for the GenPulse server (Python 3 standard library only).

Starts `genpulse serve` processes on free ports with fresh data directories, speaks HTTP and
Server-Sent Events to them, and watches their stderr for sanitizer reports.
"""
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("GENPULSE_BIN", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "genpulse"))
SANITIZER_MARKERS = ["ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer"]
if os.environ.get("BLACKBOX_LEAKS") == "1":
    SANITIZER_MARKERS.append("ERROR: LeakSanitizer")

HOST = "127.0.0.1"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")
STATUSES = ("pending", "processing", "succeeded", "failed", "canceled")
TERMINAL = ("succeeded", "failed", "canceled")

# Everything this run creates lives under one directory, removed at the end unless kept.
RUN_DIR = tempfile.mkdtemp(prefix="genpulse-blackbox-")


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test whose prerequisites are missing; reported as skipped, not passed."""


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def short(b, n=400):
    if isinstance(b, (bytes, bytearray)):
        b = b.decode("utf-8", "replace")
    b = str(b)
    return b if len(b) <= n else b[:n] + "...(%d chars)" % len(b)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_time(s):
    check(isinstance(s, str) and TIME_RE.match(s), "bad RFC 3339 UTC time %r" % (s,))
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body
        self.json = None
        ctype = headers.get("content-type", "")
        if body and ("json" in ctype or body[:1] in (b"{", b"[")):
            try:
                self.json = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self.json = None

    def __repr__(self):
        return "HTTP %s %s" % (self.status, short(self.body, 300))


def http_request(port, method, path, body=None, headers=None, content_type="application/json",
                 timeout=15):
    hdrs = {}
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if content_type is not None:
            hdrs["Content-Type"] = content_type
    if headers:
        hdrs.update(headers)
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw_request(port, data, timeout=10, send_timeout=None):
    """Send raw bytes (request line, headers, body) and read one response until the server
    closes or the response is complete. Returns (Resp or None, send_error or None)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    send_err = None
    try:
        try:
            s.sendall(data)
        except OSError as e:  # the server may answer early and close
            send_err = e
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                resp = _parse_full_response(buf)
                if resp is not None:
                    return resp, send_err
        except OSError as e:
            if not buf:
                return None, send_err or e
        return _parse_full_response(buf, eof=True), send_err
    finally:
        s.close()


def _parse_full_response(buf, eof=False):
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buf[:head_end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = buf[head_end + 4:]
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(body) < n:
            return Resp(status, headers, body) if eof else None
        return Resp(status, headers, body[:n])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, pos = b"", 0
        while True:
            le = body.find(b"\r\n", pos)
            if le < 0:
                return Resp(status, headers, out) if eof else None
            size = int(body[pos:le].split(b";")[0], 16)
            if size == 0:
                return Resp(status, headers, out)
            if len(body) < le + 2 + size + 2:
                return Resp(status, headers, out) if eof else None
            out += body[le + 2:le + 2 + size]
            pos = le + 2 + size + 2
    return Resp(status, headers, body) if eof else None


# --------------------------------------------------------------------------------------------
# Server-Sent Events
# --------------------------------------------------------------------------------------------

class SSEStream:
    """A raw-socket event-stream reader with its own chunked decoder."""

    def __init__(self, port, path, last_event_id=None, timeout=10):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n" % (path, HOST, port)
        if last_event_id is not None:
            req += "Last-Event-ID: %s\r\n" % last_event_id
        req += "\r\n"
        self.sock.sendall(req.encode())
        self.raw = b""
        self.buf = b""  # decoded body bytes not yet split into lines
        self.closed = False
        self.chunked = False
        self.body_done = False
        self.remaining = None  # content-length left, if any
        self._read_head(time.time() + timeout)

    def _recv(self, deadline):
        left = deadline - time.time()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
        return data

    def _read_head(self, deadline):
        while b"\r\n\r\n" not in self.raw:
            d = self._recv(deadline)
            if not d:
                raise TestFailure("event stream closed before response headers")
            self.raw += d
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ", 2)[1])
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        if "content-length" in self.headers:
            self.remaining = int(self.headers["content-length"])
        self._decode()

    def _decode(self):
        if not self.chunked:
            if self.remaining is not None:
                take = self.raw[:self.remaining]
                self.remaining -= len(take)
                if self.remaining == 0:
                    self.body_done = True
            else:
                take = self.raw
            self.buf += take
            self.raw = b""
            return
        while not self.body_done:
            le = self.raw.find(b"\r\n")
            if le < 0:
                return
            size = int(self.raw[:le].split(b";")[0] or b"0", 16)
            if size == 0:
                self.body_done = True
                return
            if len(self.raw) < le + 2 + size + 2:
                return
            self.buf += self.raw[le + 2:le + 2 + size]
            self.raw = self.raw[le + 2 + size + 2:]

    def _fill(self, deadline):
        """Read more body bytes; False at end of stream."""
        if self.body_done or self.closed:
            return False
        d = self._recv(deadline)
        if not d:
            return False
        self.raw += d
        self._decode()
        return True

    def read_body(self, deadline):
        while self._fill(deadline):
            pass
        return self.buf

    def lines(self, deadline):
        """Yields (time, line) until the stream ends; socket.timeout at the deadline."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.endswith(b"\r"):
                    line = line[:-1]
                yield time.time(), line.decode("utf-8", "replace")
            if not self._fill(deadline):
                if self.buf:
                    line, self.buf = self.buf, b""
                    yield time.time(), line.decode("utf-8", "replace")
                return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def sse_collect(port, task_id, last_event_id=None, max_time=20, stop_after=None):
    """Reads a task's event stream. Returns a dict: status, headers, body (non-200), events
    (list of {event, id, data, json, t}), comments (list of (t, text)), ended (server closed),
    timed_out."""
    st = SSEStream(port, "/v1/tasks/%s/events" % task_id, last_event_id)
    out = {"status": st.status, "headers": st.headers, "events": [], "comments": [],
           "ended": False, "timed_out": False, "body": b"", "t0": time.time()}
    deadline = time.time() + max_time
    try:
        if st.status != 200:
            try:
                out["body"] = st.read_body(deadline)
            except socket.timeout:
                out["body"] = st.buf
            out["json"] = None
            try:
                out["json"] = json.loads(out["body"].decode())
            except (ValueError, UnicodeDecodeError):
                pass
            return out
        cur = {}
        data_lines = []
        try:
            for t, line in st.lines(deadline):
                if line == "":
                    # Per the SSE spec a block without data lines (e.g. only "retry:") dispatches
                    # nothing.
                    if data_lines:
                        ev = {"event": cur.get("event", "message"), "id": cur.get("id"),
                              "data": "\n".join(data_lines), "t": t}
                        try:
                            ev["json"] = json.loads(ev["data"])
                        except ValueError:
                            ev["json"] = None
                        out["events"].append(ev)
                        cur, data_lines = {}, []
                        if stop_after is not None and len(out["events"]) >= stop_after:
                            return out
                    cur, data_lines = {}, []
                    continue
                if line.startswith(":"):
                    out["comments"].append((t, line))
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    data_lines.append(value)
                elif field in ("event", "id", "retry"):
                    cur[field] = value
            out["ended"] = True
        except socket.timeout:
            out["timed_out"] = True
        return out
    finally:
        st.close()


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------

class Server:
    def __init__(self, args=(), data_dir=None, env=None, name="server", command="serve"):
        self.command = command  # serve | api | worker (a worker has no HTTP port)
        self.args = list(args)
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="data-", dir=RUN_DIR)
        self.stderr_path = tempfile.mktemp(prefix="stderr-%s-" % name, suffix=".log", dir=RUN_DIR)
        self.env = env
        self.proc = None
        self.port = None
        self.checked_offset = 0  # sanitizer scan position in the stderr file
        self.exit_code = None

    # -- lifecycle --
    def start(self, port=None, timeout=10):
        if not os.path.exists(BIN):
            raise TestFailure("server binary %s does not exist" % BIN)
        self.port = port or free_port()
        cmd = [BIN, self.command, "--data-dir", self.data_dir] + self.args
        if self.command != "worker":
            cmd[2:2] = ["--port", str(self.port)]
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0")
        if self.env:
            env.update(self.env)
        with open(self.stderr_path, "ab") as errf:
            # Secrets are not echoed: tests check that the server never logs them.
            envs = " ".join("%s=%s" % (k, "(secret)" if any(w in k for w in ("KEY", "TOKEN", "SECRET")) else v)
                            for k, v in sorted((self.env or {}).items()))
            errf.write(("\n=== start: %s%s\n" % (envs + " " if envs else "", " ".join(cmd))).encode())
            errf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                         env=env)
        self.exit_code = None
        if self.command == "worker":
            time.sleep(0.3)
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise TestFailure("worker exited during start-up with code %s" % self.exit_code)
            return self
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise TestFailure("server exited during start-up with code %s" % self.proc.returncode)
            try:
                r = http_request(self.port, "GET", "/health", timeout=2)
                if r.status == 200:
                    return self
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise TestFailure("server did not answer GET /health with 200 within %ss (last: %r)"
                          % (timeout, last))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        """SIGTERM, wait up to 10 s, then SIGKILL. Returns a problem string or None."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            self.exit_code = self.proc.returncode
            return None
        self.proc.send_signal(signal.SIGTERM)
        if self.wait_exit(10):
            return None
        self.dump_stacks()
        self.proc.kill()
        self.proc.wait()
        self.exit_code = self.proc.returncode
        return "server did not exit within 10 s of SIGTERM (killed)"

    def dump_stacks(self):
        """A hung server's thread stacks into its log (gdb, when installed), before it is killed."""
        if not shutil.which("gdb"):
            return
        try:
            out = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                  "thread apply all bt 20"], capture_output=True, timeout=60)
            with open(self.stderr_path, "ab") as f:
                f.write(b"\n=== stacks at the SIGTERM timeout ===\n" + out.stdout[-20000:])
        except (OSError, subprocess.SubprocessError):
            pass

    def kill9(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
            self.exit_code = self.proc.returncode

    # -- logs --
    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def new_sanitizer_reports(self):
        text = self.stderr_text()
        fresh = text[self.checked_offset:]
        self.checked_offset = len(text)
        found = [m for m in SANITIZER_MARKERS if m in fresh]
        if not found:
            return None
        i = min(fresh.find(m) for m in found)
        line = fresh[i:].splitlines()[0] if fresh[i:] else ""
        return "sanitizer report in server stderr: %s" % line.strip()[:300]

    def stderr_tail(self, n=30):
        return self.stderr_text().splitlines()[-n:]

    # -- HTTP helpers --
    def req(self, method, path, body=None, **kw):
        return http_request(self.port, method, path, body, **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body, **kw)

    def create(self, task_type, params=None, expect=202, **envelope):
        body = {"task_type": task_type, "params": params if params is not None else {}}
        headers = envelope.pop("headers", None)
        body.update(envelope)
        r = self.post("/v1/tasks", body, headers=headers)
        check(r.status == expect and isinstance(r.json, dict),
              "POST /v1/tasks %s: expected %s, got %r" % (short(json.dumps(body), 200), expect, r))
        return r.json

    def task(self, tid):
        r = self.get("/v1/tasks/%s" % tid)
        check(r.status == 200 and isinstance(r.json, dict),
              "GET /v1/tasks/%s: expected 200, got %r" % (tid, r))
        return r.json

    def wait_for(self, tid, pred, timeout, what):
        deadline = time.time() + timeout
        t = None
        while time.time() < deadline:
            t = self.task(tid)
            if pred(t):
                return t
            time.sleep(0.03)
        raise TestFailure("task %s not %s within %ss (last: status=%s progress=%s attempts=%s "
                          "error=%s)" % (tid, what, timeout, t and t.get("status"),
                                         t and t.get("progress"), t and t.get("attempts"),
                                         t and t.get("error")))

    def wait_status(self, tid, statuses, timeout=10):
        if isinstance(statuses, str):
            statuses = (statuses,)
        return self.wait_for(tid, lambda t: t.get("status") in statuses, timeout,
                             "in status %s" % "/".join(statuses))

    def wait_terminal(self, tid, timeout=15):
        return self.wait_status(tid, TERMINAL, timeout)

    def list_all(self, query="", limit=100, max_pages=1000):
        """Follows next_cursor; returns the list of tasks seen (in order)."""
        seen = []
        cursor = None
        for _ in range(max_pages):
            q = "limit=%d" % limit
            if query:
                q += "&" + query
            if cursor is not None:
                q += "&cursor=" + urlquote(cursor)
            r = self.get("/v1/tasks?" + q)
            check(r.status == 200 and isinstance(r.json, dict),
                  "GET /v1/tasks?%s: expected 200, got %r" % (q, r))
            seen.extend(r.json.get("data", []))
            cursor = r.json.get("next_cursor")
            if cursor is None:
                return seen
        raise TestFailure("pagination did not end after %d pages" % max_pages)


def urlquote(s):
    import urllib.parse
    return urllib.parse.quote(str(s), safe="")


def url_path(url):
    import urllib.parse
    check(isinstance(url, str) and re.match(r"^https?://[^/]+/", url),
          "expected an absolute URL, got %r" % (url,))
    p = urllib.parse.urlsplit(url)
    return p.path + ("?" + p.query if p.query else "")


# --------------------------------------------------------------------------------------------
# Shape checks
# --------------------------------------------------------------------------------------------

TASK_KEYS = ("id", "task_type", "provider", "status", "progress", "step", "params", "result",
             "error", "attempts", "max_retries", "priority", "created_at", "started_at",
             "completed_at", "urls")


def check_task_shape(t, where="task"):
    check(isinstance(t, dict), "%s is not an object: %r" % (where, t))
    missing = [k for k in TASK_KEYS if k not in t]
    check(not missing, "%s lacks keys %s: %s" % (where, missing, short(json.dumps(t))))
    check(isinstance(t["id"], str) and UUID_RE.match(t["id"]), "%s: id not a UUID: %r" % (where, t["id"]))
    check(t["status"] in STATUSES, "%s: bad status %r" % (where, t["status"]))
    check(isinstance(t["progress"], int) and not isinstance(t["progress"], bool)
          and 0 <= t["progress"] <= 100, "%s: progress not an int 0..100: %r" % (where, t["progress"]))
    check(t["step"] is None or isinstance(t["step"], str), "%s: bad step %r" % (where, t["step"]))
    check(isinstance(t["params"], dict), "%s: params not an object" % where)
    check(t["params"].get("provider") == t["provider"],
          "%s: params.provider %r != provider %r" % (where, t["params"].get("provider"), t["provider"]))
    check(t["result"] is None or isinstance(t["result"], dict), "%s: bad result %r" % (where, t["result"]))
    if t["error"] is not None:
        check(isinstance(t["error"], dict) and isinstance(t["error"].get("code"), str)
              and isinstance(t["error"].get("message"), str),
              "%s: error must be null or {code, message}: %r" % (where, t["error"]))
    for k in ("attempts", "max_retries", "priority"):
        check(isinstance(t[k], int) and not isinstance(t[k], bool) and t[k] >= 0,
              "%s: %s not a non-negative int: %r" % (where, k, t[k]))
    created = parse_time(t["created_at"])
    if t["started_at"] is not None:
        check(parse_time(t["started_at"]) >= created - 0.001,
              "%s: started_at before created_at" % where)
    if t["completed_at"] is not None:
        done = parse_time(t["completed_at"])
        check(done >= created - 0.001, "%s: completed_at before created_at" % where)
        if t["started_at"] is not None:
            check(done >= parse_time(t["started_at"]) - 0.001, "%s: completed_at %s before started_at %s"
                  % (where, t["completed_at"], t["started_at"]))
    if t["status"] == "pending":
        check(t["completed_at"] is None, "%s: pending task has completed_at" % where)
    if t["status"] in TERMINAL:
        check(t["completed_at"] is not None, "%s: %s task has no completed_at" % (where, t["status"]))
    if t["status"] in ("processing", "succeeded"):
        check(t["started_at"] is not None, "%s: %s task has no started_at" % (where, t["status"]))
    urls = t["urls"]
    check(isinstance(urls, dict), "%s: urls not an object" % where)
    for k, suffix in (("get", "/v1/tasks/%s" % t["id"]), ("cancel", "/v1/tasks/%s/cancel" % t["id"]),
                      ("events", "/v1/tasks/%s/events" % t["id"])):
        p = url_path(urls.get(k))
        check(p == suffix, "%s: urls.%s path %r, expected %r" % (where, k, p, suffix))


def check_error(r, status, code, fields=(), what=""):
    """Checks an error response: status, JSON envelope, code, and that every field in `fields`
    appears in error.details[].field."""
    label = (what + ": ") if what else ""
    check(r.status == status, "%sexpected HTTP %d %s, got %r" % (label, status, code, r))
    check(isinstance(r.json, dict) and isinstance(r.json.get("error"), dict),
          "%sno JSON error envelope: %r (content-type %r)" % (label, r, r.headers.get("content-type")))
    check("application/json" in r.headers.get("content-type", ""),
          "%serror content-type is %r" % (label, r.headers.get("content-type")))
    e = r.json["error"]
    check(e.get("code") == code, "%sexpected error.code %r, got %r (%s)" % (label, code, e.get("code"), short(r.body)))
    check(isinstance(e.get("message"), str) and e.get("message"),
          "%serror.message missing/empty: %s" % (label, short(r.body)))
    details = e.get("details")
    check(isinstance(details, list), "%serror.details not a list: %s" % (label, short(r.body)))
    got = set()
    for d in details:
        check(isinstance(d, dict) and isinstance(d.get("field"), str) and isinstance(d.get("message"), str),
              "%sbad details entry %r" % (label, d))
        got.add(d["field"])
    missing = [f for f in fields if f not in got]
    check(not missing, "%serror.details lacks field(s) %s; got fields %s (%s)"
          % (label, missing, sorted(got), short(r.body)))
    return e


def npm_ci(directory, skip_on_failure=False):
    """Installs directory's npm packages as its package-lock.json pins them (npm ci, again only
    when the lock file changed). Raises Skip without node/npm; an install failure fails the
    test, or skips it with skip_on_failure (a browser tool may not install everywhere)."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise Skip("no node/npm")
    lock = os.path.join(directory, "package-lock.json")
    stamp = os.path.join(directory, "node_modules", ".package-lock.json")
    if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return
    p = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
                       cwd=directory, capture_output=True, timeout=300)
    if p.returncode != 0:
        msg = "npm ci in %s failed: %s" % (directory, p.stderr.decode()[-600:])
        if skip_on_failure:
            raise Skip(msg)
        raise TestFailure(msg)


def cleanup_run_dir():
    if os.environ.get("BLACKBOX_KEEP") == "1":
        print("(kept %s)" % RUN_DIR)
        return
    shutil.rmtree(RUN_DIR, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Test registry
# --------------------------------------------------------------------------------------------

# Shared server groups: tests in the same group run against one server, started once.
GROUPS = {
    "basic": ["--retry-base-ms", "10", "--retry-max-ms", "50", "--allow-private-inputs", "1"],
    "serial": ["--concurrency", "1", "--retry-base-ms", "10"],
}

TESTS = []


class Ctx:
    """What a test gets: ctx.srv (its group's or its own server, or None) and new_server()."""

    def __init__(self, srv):
        self.srv = srv
        self.servers = [srv] if srv else []

    def new_server(self, args=(), data_dir=None, name="extra", env=None, command="serve"):
        s = Server(args, data_dir=data_dir, name=name, env=env, command=command)
        self.servers.append(s)
        return s


def case(group=None, args=None, own=False):
    """group: name in GROUPS (shared server); args: own server with these flags;
    own=True: no server given, the test starts its own with ctx.new_server()."""
    def deco(fn):
        name = fn.__name__[5:] if fn.__name__.startswith("test_") else fn.__name__
        TESTS.append({"name": name, "fn": fn, "group": group,
                      "args": args, "own": own})
        return fn
    return deco
