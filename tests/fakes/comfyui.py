#!/usr/bin/python3
"""A fake ComfyUI server for GenPulse's black-box tests (Python 3 standard library only).

It follows ComfyUI's HTTP + WebSocket protocol (Comfy-Org/ComfyUI server.py, execution.py,
main.py; summarised in shared/research/genai_apis.md §3) closely enough that a client that
works against it should work against the real server, but it "executes" a graph by walking
its nodes: samplers report `steps` progress ticks, SaveImage nodes write a real PNG whose size
comes from the graph's EmptyLatentImage. Every route also answers under /api/.

    /usr/bin/python3 tests/fakes/comfyui.py [--port N]     prints "PORT <n>" when listening

Fault injection and inspection (not part of ComfyUI):
    POST /_fake/config   merge keys into the config (see DEFAULT_CONFIG)
    POST /_fake/reset    config back to defaults, forget requests, history, uploads
    GET  /_fake/requests every request seen: {method, path, query, headers, json}
    GET  /_fake/state    history ids, queue, uploads, connected websocket client ids
"""
import argparse
import base64
import copy
import hashlib
import json
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

DEFAULT_CONFIG = {
    "steps": 4,                # progress ticks per sampler node
    "step_delay": 0.02,        # seconds per tick
    "history_delay": 0.05,     # execution_success goes out this long before /history has it
    "execution_error": None,   # {"node_id"?, "exception_message", "exception_type"?}
    "ws_silent_after": None,   # after N progress events, send nothing more on the socket
    "ws_drop_after": None,     # after N progress events, close the socket without a close frame
    "require_token": None,     # when set, every route wants "Authorization: Bearer <token>"
}

# class_type → (required inputs, is output node). Enough of nodes.py for the test graphs.
NODE_CLASSES = {
    "CheckpointLoaderSimple": (["ckpt_name"], False),
    "CLIPTextEncode": (["text", "clip"], False),
    "EmptyLatentImage": (["width", "height", "batch_size"], False),
    "EmptySD3LatentImage": (["width", "height", "batch_size"], False),
    "KSampler": (["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "model",
                  "positive", "negative", "latent_image"], False),
    "KSamplerAdvanced": (["add_noise", "noise_seed", "steps", "cfg", "sampler_name", "scheduler",
                          "positive", "negative", "latent_image", "start_at_step", "end_at_step",
                          "return_with_leftover_noise", "model"], False),
    "VAEDecode": (["samples", "vae"], False),
    "VAEEncode": (["pixels", "vae"], False),
    "LoadImage": (["image"], False),
    "ConditioningZeroOut": (["conditioning"], False),
    "SaveImage": (["images"], True),
    "PreviewImage": (["images"], True),
}
SAMPLERS = ("KSampler", "KSamplerAdvanced")


def png_bytes(width, height, seed):
    """A real RGB PNG: a gradient tinted by the seed."""
    r0, g0, b0 = (seed * 97) % 256, (seed * 57) % 256, (seed * 13) % 256
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes(((r0 + x) % 256, (g0 + y) % 256, b0))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def execution_order(graph):
    """Inputs before the nodes that use them, as ComfyUI's ExecutionList does."""
    order, seen = [], set()

    def visit(node_id):
        if node_id in seen or node_id not in graph:
            return
        seen.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list) and len(value) == 2:
                visit(str(value[0]))
        order.append(node_id)
    for node_id in sorted(graph, key=lambda k: (len(k), k)):
        visit(node_id)
    return order


def now_ms():
    return int(time.time() * 1000)


class WsConn:
    def __init__(self, sock, client_id):
        self.sock = sock
        self.client_id = client_id
        self.lock = threading.Lock()
        self.alive = True
        self.silent = False

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n <= 125:
            head = bytes([0x80 | opcode, n])
        elif n <= 0xFFFF:
            head = bytes([0x80 | opcode, 126]) + struct.pack(">H", n)
        else:
            head = bytes([0x80 | opcode, 127]) + struct.pack(">Q", n)
        with self.lock:
            if not self.alive:
                return
            try:
                self.sock.sendall(head + payload)
            except OSError:
                self.alive = False

    def send_json(self, obj):
        if not self.silent:
            self.send_frame(0x1, json.dumps(obj).encode())

    def drop(self):
        """Vanish without a close frame, as a crashed proxy would."""
        with self.lock:
            self.alive = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Fake:
    def __init__(self):
        self.lock = threading.Condition()
        self.reset()
        threading.Thread(target=self.worker, daemon=True).start()

    def reset(self):
        with self.lock:
            self.config = copy.deepcopy(DEFAULT_CONFIG)
            self.requests = []
            self.history = {}
            self.queue = []          # pending: dicts {number, prompt_id, prompt, client_id}
            self.running = None
            self.interrupt = False
            self.uploads = {}        # name → bytes (type "input")
            self.outputs = {}        # filename → bytes (type "output")
            self.counter = 0
            self.number = 0
            self.sockets = []        # WsConn

    # -- websocket fan-out --------------------------------------------------------------------

    def send_to(self, client_id, event, data):
        """Execution events go only to the prompt's own client_id, as in ComfyUI."""
        if client_id is None:
            return
        with self.lock:
            targets = [c for c in self.sockets if c.client_id == client_id and c.alive]
        for c in targets:
            c.send_json({"type": event, "data": data})

    def broadcast_status(self):
        with self.lock:
            remaining = len(self.queue) + (1 if self.running else 0)
            targets = [c for c in self.sockets if c.alive]
        for c in targets:
            c.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}}}})

    def after_progress(self, client_id, count):
        silent_after = self.config.get("ws_silent_after")
        drop_after = self.config.get("ws_drop_after")
        with self.lock:
            targets = [c for c in self.sockets if c.client_id == client_id]
        for c in targets:
            if silent_after is not None and count >= silent_after:
                c.silent = True
            if drop_after is not None and count >= drop_after:
                c.drop()

    # -- execution ----------------------------------------------------------------------------

    def worker(self):
        while True:
            with self.lock:
                while not self.queue:
                    self.lock.wait()
                item = self.queue.pop(0)
                self.running = item
                self.interrupt = False
            try:
                self.execute(item)
            finally:
                with self.lock:
                    self.running = None
                self.broadcast_status()

    def execute(self, item):
        pid, cid, graph = item["prompt_id"], item["client_id"], item["prompt"]
        cfg = self.config
        messages = []

        def emit(event, data, record=False):
            if record:
                messages.append([event, data])
            self.send_to(cid, event, data)

        self.broadcast_status()
        emit("execution_start", {"prompt_id": pid, "timestamp": now_ms()}, True)
        emit("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": now_ms()}, True)
        outputs, executed, progress_count = {}, [], 0
        width, height, seed = 64, 64, 0
        for node in graph.values():
            if node["class_type"] in ("EmptyLatentImage", "EmptySD3LatentImage"):
                width, height = int(node["inputs"]["width"]), int(node["inputs"]["height"])
            if node["class_type"] == "KSampler":
                seed = int(node["inputs"]["seed"])
            elif node["class_type"] == "KSamplerAdvanced":
                seed = int(node["inputs"]["noise_seed"])
        fail = cfg.get("execution_error")
        fail_node = None
        if fail:
            fail_node = fail.get("node_id") or next(
                (k for k, v in graph.items() if v["class_type"] in SAMPLERS), None)
        status = "success"
        for node_id in execution_order(graph):
            node = graph[node_id]
            ctype = node["class_type"]
            emit("executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
            if node_id == fail_node:
                data = {"prompt_id": pid, "node_id": node_id, "node_type": ctype,
                        "executed": executed, "exception_message": fail.get("exception_message", "boom"),
                        "exception_type": fail.get("exception_type", "RuntimeError"),
                        "traceback": ["Traceback (most recent call last):\n", "RuntimeError\n"],
                        "current_inputs": {}, "current_outputs": {}, "timestamp": now_ms()}
                emit("execution_error", data, True)
                status = "error"
                break
            if ctype in SAMPLERS:
                steps = int(cfg.get("steps", 4))
                stop = False
                for step in range(1, steps + 1):
                    time.sleep(float(cfg.get("step_delay", 0.02)))
                    with self.lock:
                        stop = self.interrupt
                    if stop:
                        break
                    emit("progress", {"value": step, "max": steps, "prompt_id": pid, "node": node_id})
                    emit("progress_state", {"prompt_id": pid, "nodes": {node_id: {
                        "value": step, "max": steps, "state": "running", "node_id": node_id,
                        "prompt_id": pid, "display_node_id": node_id, "parent_node_id": None,
                        "real_node_id": node_id}}})
                    progress_count += 1
                    self.after_progress(cid, progress_count)
                if stop:
                    emit("execution_interrupted", {"prompt_id": pid, "node_id": node_id, "node_type": ctype,
                                                   "executed": executed, "timestamp": now_ms()}, True)
                    status = "error"
                    break
            if ctype in ("SaveImage", "PreviewImage"):
                with self.lock:
                    self.counter += 1
                    prefix = str(node["inputs"].get("filename_prefix", "ComfyUI")).replace("/", "_")
                    name = "%s_%05d_.png" % (prefix, self.counter)
                    kind = "output" if ctype == "SaveImage" else "temp"
                    self.outputs[(kind, name)] = png_bytes(min(width, 1024), min(height, 1024), seed)
                ui = {"images": [{"filename": name, "subfolder": "", "type": kind}]}
                outputs[node_id] = ui
                emit("executed", {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": pid})
            executed.append(node_id)
        if status == "success":
            emit("execution_success", {"prompt_id": pid, "timestamp": now_ms()}, True)
        # ComfyUI sends execution_success from inside execute() and records the history
        # afterwards (PromptQueue.task_done): a client must not expect it at once.
        time.sleep(float(cfg.get("history_delay", 0.05)))
        with self.lock:
            self.history[pid] = {
                "prompt": [item["number"], pid, graph, {"client_id": cid}, item["outputs"]],
                "outputs": outputs,
                "status": {"status_str": status, "completed": status == "success", "messages": messages},
                "meta": {k: {"node_id": k, "display_node": k, "parent_node": None, "real_node_id": k}
                         for k in outputs},
            }
        emit("executing", {"node": None, "prompt_id": pid})

    # -- validation (execution.py::validate_prompt, simplified) -----------------------------

    def validate(self, prompt):
        def err(etype, message, details="", extra=None):
            return {"type": etype, "message": message, "details": details, "extra_info": extra or {}}

        if not isinstance(prompt, dict):
            return err("invalid_prompt", "Cannot execute because the prompt is not an object."), {}
        outputs = []
        for node_id, node in prompt.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return err("invalid_prompt",
                           "Cannot execute because a node is missing the class_type property.",
                           "Node ID '#%s'" % node_id, {"node_id": node_id}), {}
            ctype = node["class_type"]
            if ctype not in NODE_CLASSES:
                return err("invalid_prompt", "Cannot execute because node %s does not exist." % ctype,
                           "Node ID '#%s'" % node_id,
                           {"node_id": node_id, "class_type": ctype,
                            "node_title": (node.get("_meta") or {}).get("title", ctype)}), {}
            if not isinstance(node.get("inputs"), dict):
                return err("invalid_prompt", "Cannot execute because node %s has no inputs." % node_id,
                           "Node ID '#%s'" % node_id, {"node_id": node_id}), {}
            if NODE_CLASSES[ctype][1]:
                outputs.append(node_id)
        if not outputs:
            return err("prompt_no_outputs", "Prompt has no outputs"), []
        node_errors = {}
        for node_id, node in prompt.items():
            errors = []
            for name in NODE_CLASSES[node["class_type"]][0]:
                value = node["inputs"].get(name)
                if value is None:
                    errors.append(err("required_input_missing", "Required input is missing", name,
                                      {"input_name": name}))
                elif isinstance(value, list) and (len(value) != 2 or str(value[0]) not in prompt):
                    errors.append(err("invalid_input_type", "Bad linked input, must be a length-2 list of [string, int]",
                                      name, {"input_name": name}))
            if node["class_type"] == "LoadImage":
                image = node["inputs"].get("image")
                with self.lock:
                    known = sorted(self.uploads)
                if isinstance(image, str) and image not in self.uploads:
                    errors.append(err("value_not_in_list", "Value not in list",
                                      "image: '%s' not in %s" % (image, known),
                                      {"input_name": "image", "received_value": image}))
            if errors:
                node_errors[node_id] = {"errors": errors, "dependent_outputs": outputs,
                                        "class_type": node["class_type"]}
        if node_errors:
            return err("prompt_outputs_failed_validation", "Prompt outputs failed validation"), node_errors
        return None, outputs


FAKE = Fake()


def parse_multipart(body, content_type):
    boundary = None
    for part in content_type.split(";"):
        part = part.strip()
        if part.startswith("boundary="):
            boundary = part[len("boundary="):].strip('"')
    if not boundary:
        return None
    fields = {}
    for chunk in body.split(b"--" + boundary.encode()):
        chunk = chunk.strip(b"\r\n")
        if not chunk or chunk == b"--":
            continue
        head, _, data = chunk.partition(b"\r\n\r\n")
        disp = {}
        ctype = "application/octet-stream"
        for line in head.decode("utf-8", "replace").split("\r\n"):
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-disposition":
                for item in v.split(";"):
                    a, _, b = item.strip().partition("=")
                    disp[a] = b.strip('"')
            elif k.strip().lower() == "content-type":
                ctype = v.strip()
        if "name" in disp:
            fields[disp["name"]] = {"filename": disp.get("filename"), "data": data, "content_type": ctype}
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    # -- plumbing -------------------------------------------------------------------------------

    def reply(self, status, body=b"", ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def route(self):
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if path.startswith("/api/"):
            path = path[4:]
        return path, urllib.parse.parse_qs(parsed.query)

    def record(self, path, query, body):
        data = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
        entry = {"method": self.command, "path": path, "query": {k: v[0] for k, v in query.items()},
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "json": data,
                 "bytes": len(body), "t": time.time()}
        with FAKE.lock:
            FAKE.requests.append(entry)

    def authorized(self, path):
        token = FAKE.config.get("require_token")
        if not token or path.startswith("/_fake/"):
            return True
        return self.headers.get("Authorization") == "Bearer " + token

    # -- methods ------------------------------------------------------------------------------

    def do_GET(self):
        path, query = self.route()
        if path != "/_fake/requests" and path != "/_fake/state":
            self.record(path, query, b"")
        if not self.authorized(path):
            return self.reply(401, {"error": "unauthorized"})
        if path == "/ws":
            return self.websocket(query)
        if path == "/_fake/requests":
            with FAKE.lock:
                return self.reply(200, list(FAKE.requests))
        if path == "/_fake/state":
            with FAKE.lock:
                return self.reply(200, {
                    "history": sorted(FAKE.history), "queue": [q["prompt_id"] for q in FAKE.queue],
                    "running": FAKE.running and FAKE.running["prompt_id"],
                    "uploads": sorted(FAKE.uploads),
                    "sockets": [c.client_id for c in FAKE.sockets if c.alive]})
        if path == "/history":
            with FAKE.lock:
                return self.reply(200, dict(FAKE.history))
        if path.startswith("/history/"):
            pid = urllib.parse.unquote(path[len("/history/"):])
            with FAKE.lock:
                h = FAKE.history.get(pid)
                return self.reply(200, {pid: h} if h is not None else {})
        if path == "/queue":
            with FAKE.lock:
                def row(q):
                    return [q["number"], q["prompt_id"], q["prompt"], {"client_id": q["client_id"]}, q["outputs"]]
                return self.reply(200, {"queue_running": [row(FAKE.running)] if FAKE.running else [],
                                        "queue_pending": [row(q) for q in FAKE.queue]})
        if path == "/prompt":
            with FAKE.lock:
                return self.reply(200, {"exec_info": {"queue_remaining": len(FAKE.queue)}})
        if path == "/view":
            filename = query.get("filename", [""])[0]
            kind = query.get("type", ["output"])[0]
            subfolder = query.get("subfolder", [""])[0]
            if not filename or filename.startswith("/") or ".." in filename:
                return self.reply(400, b"", "text/plain")
            if ".." in subfolder or subfolder.startswith("/"):
                return self.reply(403, b"", "text/plain")
            with FAKE.lock:
                data = FAKE.uploads.get(filename) if kind == "input" else FAKE.outputs.get((kind, filename))
            if data is None:
                return self.reply(404, b"", "text/plain")
            return self.reply(200, data, "image/png")
        return self.reply(404, b"404: Not Found", "text/plain")

    def do_POST(self):
        path, query = self.route()
        body = self.read_body()
        if not path.startswith("/_fake/"):
            self.record(path, query, body if path != "/upload/image" else b"")
        if not self.authorized(path):
            return self.reply(401, {"error": "unauthorized"})
        data = None
        if path != "/upload/image" and body:
            try:
                data = json.loads(body)
            except ValueError:
                return self.reply(400, {"error": "invalid json"})
        if path == "/_fake/config":
            with FAKE.lock:
                FAKE.config.update(data or {})
            return self.reply(200, FAKE.config)
        if path == "/_fake/reset":
            FAKE.reset()
            return self.reply(200, {})
        if path == "/prompt":
            return self.post_prompt(data)
        if path == "/history":
            with FAKE.lock:
                if isinstance(data, dict) and data.get("clear"):
                    FAKE.history.clear()
                for pid in (data or {}).get("delete", []) if isinstance(data, dict) else []:
                    FAKE.history.pop(pid, None)
            return self.reply(200, b"", "text/plain")
        if path == "/queue":
            with FAKE.lock:
                if isinstance(data, dict) and data.get("clear"):
                    FAKE.queue.clear()
                if isinstance(data, dict) and isinstance(data.get("delete"), list):
                    FAKE.queue = [q for q in FAKE.queue if q["prompt_id"] not in data["delete"]]
            return self.reply(200, b"", "text/plain")
        if path == "/interrupt":
            with FAKE.lock:
                target = data.get("prompt_id") if isinstance(data, dict) else None
                if FAKE.running and (target is None or target == FAKE.running["prompt_id"]):
                    FAKE.interrupt = True
            return self.reply(200, b"", "text/plain")
        if path == "/upload/image":
            fields = parse_multipart(body, self.headers.get("Content-Type", ""))
            if not fields or "image" not in fields or not fields["image"]["filename"]:
                return self.reply(400, b"", "text/plain")
            name = fields["image"]["filename"]
            if "/" in name or ".." in name:
                return self.reply(400, b"", "text/plain")
            overwrite = fields.get("overwrite", {}).get("data", b"") in (b"true", b"1")
            data_bytes = fields["image"]["data"]
            with FAKE.lock:
                if not overwrite and name in FAKE.uploads and FAKE.uploads[name] != data_bytes:
                    base, dot, ext = name.rpartition(".")
                    i = 1
                    while "%s (%d).%s" % (base, i, ext) in FAKE.uploads:
                        i += 1
                    name = "%s (%d).%s" % (base, i, ext)
                FAKE.uploads[name] = data_bytes
            subfolder = fields.get("subfolder", {}).get("data", b"").decode()
            return self.reply(200, {"name": name, "subfolder": subfolder, "type": "input"})
        return self.reply(404, b"404: Not Found", "text/plain")

    def post_prompt(self, data):
        if not isinstance(data, dict) or "prompt" not in data:
            return self.reply(400, {"error": {"type": "no_prompt", "message": "No prompt provided",
                                              "details": "No prompt provided", "extra_info": {}},
                                    "node_errors": {}})
        error, result = FAKE.validate(data["prompt"])
        if error is not None:
            return self.reply(400, {"error": error, "node_errors": result})
        pid = data.get("prompt_id") or str(uuid.uuid4())
        with FAKE.lock:
            FAKE.number += 1
            item = {"number": FAKE.number, "prompt_id": pid, "prompt": data["prompt"],
                    "client_id": data.get("client_id"), "outputs": result}
            FAKE.queue.append(item)
            FAKE.lock.notify_all()
        return self.reply(200, {"prompt_id": pid, "number": item["number"], "node_errors": {}})

    # -- websocket ----------------------------------------------------------------------------

    def websocket(self, query):
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade", "").lower() != "websocket" or not key
                or self.headers.get("Sec-WebSocket-Version") != "13"):
            return self.reply(400, b"not a websocket request", "text/plain")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        client_id = query.get("clientId", [uuid.uuid4().hex])[0]
        conn = WsConn(self.connection, client_id)
        with FAKE.lock:
            FAKE.sockets.append(conn)
            remaining = len(FAKE.queue) + (1 if FAKE.running else 0)
        conn.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": remaining}},
                                                   "sid": client_id}})
        try:
            self.ws_read_loop(conn)
        finally:
            conn.alive = False
            with FAKE.lock:
                if conn in FAKE.sockets:
                    FAKE.sockets.remove(conn)

    def ws_read_loop(self, conn):
        rfile = self.rfile
        while conn.alive:
            try:
                head = rfile.read(2)
            except OSError:
                return
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            masked = head[1] & 0x80
            if n == 126:
                n = struct.unpack(">H", rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", rfile.read(8))[0]
            if not masked or n > (1 << 20):
                conn.send_frame(0x8, struct.pack(">H", 1002))
                return
            mask = rfile.read(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(rfile.read(n)))
            if opcode == 0x8:
                conn.send_frame(0x8, payload[:2])
                return
            if opcode == 0x9:
                conn.send_frame(0xA, payload)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
