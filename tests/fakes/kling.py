#!/usr/bin/python3
"""Fake Kling AI video API (research/genai_apis.md §5.1).

Usage: kling.py [--port N] [--access-key AK] [--secret-key SK]. Prints "fake-kling ready
port=N".

Every API request must carry `Authorization: Bearer <JWT>`: an HS256 token signed with SK
whose claims have iss = AK, nbf <= now and now < exp (a few seconds of leeway). Anything else
gets HTTP 401 with Kling's envelope and codes 1001 (no token), 1002 (malformed), 1003 (not yet
valid), 1004 (expired) or 1000 (bad signature / unknown issuer).

  POST /v1/videos/text2video | image2video   create; body fields checked (unknown ones,
                                             prompt, mode, duration "5"|"10", aspect_ratio,
                                             cfg_scale 0..1, external_task_id unique, image
                                             as a reachable http(s) URL of an image, or raw
                                             base64 of one)
  GET  /v1/videos/<kind>/<task_id>           submitted -> processing -> succeed | failed
  GET  /v1/videos/<kind>?pageNum=&pageSize=  the task list, newest first

Task ids are 18-digit strings. A finished task's video is a real 1 s MP4 made with ffmpeg
(no ffmpeg: the task fails with "fake has no ffmpeg").

Config (POST /_fake/config), besides fail_429 / fail_500 / retry_after of fakebase:
  "finish_after_s": S   time from create to the end (default 0.6)
  "task_fail": "msg"    tasks created from now on fail with task_status_msg = msg
  "never_finish": true  while set, no task finishes (they stay "processing")
  "reject": "msg"       creates answer 400 with code 1301 and this message
"""
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakebase  # noqa: E402

LEEWAY_S = 10
CREATE_FIELDS = {"model_name", "prompt", "negative_prompt", "cfg_scale", "mode", "aspect_ratio",
                 "duration", "camera_control", "callback_url", "external_task_id"}
IMAGE_FIELDS = {"image", "image_tail", "static_mask", "dynamic_masks"}
MODELS = {"kling-v1", "kling-v1-5", "kling-v1-6", "kling-v2-master", "kling-v2-1-master",
          "kling-v2-5-turbo", "kling-v2-6"}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Handler(fakebase.FakeHandler):
    def envelope(self, code, message, data=None):
        return {"code": code, "message": message, "request_id": str(uuid.uuid4()), "data": data}

    def error_body(self, status, message):
        code = {429: 1302, 500: 5000}.get(status, 1200)
        return self.envelope(code, message)

    def fail(self, status, code, message):
        return self.reply(status, self.envelope(code, message))

    # -- auth --
    def check_jwt(self):
        """None when the token is good, else (code, message)."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return 1001, "Authorization is empty"
        if not auth.startswith("Bearer "):
            return 1002, "Authorization is invalid"
        parts = auth[7:].split(".")
        if len(parts) != 3:
            return 1002, "Authorization is invalid: not a JWT"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
        except ValueError:
            return 1002, "Authorization is invalid: bad base64url or JSON"
        if header != {"alg": "HS256", "typ": "JWT"}:
            return 1002, "Authorization is invalid: header %r" % (header,)
        want = b64url(hmac.new(self.opts.secret_key.encode(),
                               (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, parts[2]):
            return 1000, "Authentication failed: signature mismatch"
        if claims.get("iss") != self.opts.access_key:
            return 1000, "Authentication failed: unknown access key"
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int) or not isinstance(nbf, int):
            return 1002, "Authorization is invalid: exp and nbf must be integers"
        if nbf > now + LEEWAY_S:
            return 1003, "Authorization is not yet valid"
        if exp <= now - LEEWAY_S:
            return 1004, "Authorization has expired"
        if exp - nbf > 24 * 3600:
            return 1002, "Authorization is invalid: lifetime too long"
        return None

    # -- helpers --
    def check_image(self, image):
        if not isinstance(image, str) or not image:
            return "image is required"
        if image.startswith("data:"):
            return "image must be a URL or raw base64 without the data: prefix"
        if image.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(image, timeout=5) as r:
                    head = r.read(16)
            except Exception as e:
                return "image url cannot be downloaded: %s" % e
        else:
            try:
                head = base64.b64decode(image, validate=True)[:16]
            except ValueError:
                return "image is neither an http(s) URL nor base64"
        if not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff")):
            return "image is not a PNG or JPEG"
        return None

    def task_view(self, t):
        now = time.time()
        age = now - t["created"]
        finish = t["finish_after_s"]
        if self.state.config.get("never_finish") or age < finish:
            status = "submitted" if age < min(0.2, finish / 3) else "processing"
        else:
            status = "failed" if t["fail"] else "succeed"
        if status == "succeed" and "videos" not in t:
            video = fakebase.mp4()
            if video is None:
                t["fail"] = "fake has no ffmpeg to make a video"
                status = "failed"
            else:
                self.record_output("video/mp4", video)
                t["videos"] = [{"id": str(uuid.uuid4()), "url": self.serve_file("video/mp4", video),
                                "duration": t["duration"] + ".1"}]
        view = {"task_id": t["id"], "task_status": status,
                "task_info": {"external_task_id": t["external_task_id"]},
                "created_at": int(t["created"] * 1000), "updated_at": int(now * 1000)}
        if status == "failed":
            view["task_status_msg"] = t["fail"]
        if status == "succeed":
            view["task_result"] = {"videos": t["videos"]}
        return view

    # -- API --
    def api(self, method, path, query, raw):
        problem = self.check_jwt()
        if problem:
            return self.fail(401, *problem)
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v1", "videos"] or parts[2] not in ("text2video",
                                                                                "image2video"):
            return self.fail(404, 1203, "resource does not exist: %s" % path)
        kind = parts[2]
        if method == "POST" and len(parts) == 3:
            return self.create(kind, raw)
        if method == "GET" and len(parts) == 4:
            with self.state.lock:
                t = self.state.tasks.get(parts[3])
                if t is None or t["kind"] != kind:
                    return self.fail(404, 1203, "task %s does not exist" % parts[3])
                view = self.task_view(t)
            return self.reply(200, self.envelope(0, "SUCCEED", view))
        if method == "GET" and len(parts) == 3:
            try:
                page = int(query.get("pageNum", ["1"])[0])
                size = int(query.get("pageSize", ["30"])[0])
            except ValueError:
                return self.fail(400, 1201, "pageNum and pageSize must be integers")
            if not (1 <= page and 1 <= size <= 500):
                return self.fail(400, 1201, "pageNum >= 1, pageSize 1..500")
            with self.state.lock:
                mine = sorted((t for t in self.state.tasks.values() if t["kind"] == kind),
                              key=lambda t: -t["created"])
                views = [self.task_view(t) for t in mine[(page - 1) * size:page * size]]
            return self.reply(200, self.envelope(0, "SUCCEED", views))
        return self.fail(405, 1202, "invalid request method")

    def create(self, kind, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            return self.fail(400, 1200, "request body is not JSON")
        if not isinstance(body, dict):
            return self.fail(400, 1200, "request body must be an object")
        allowed = CREATE_FIELDS | (IMAGE_FIELDS if kind == "image2video" else set())
        for k in body:
            if k not in allowed:
                return self.fail(400, 1201, "unknown parameter %s" % k)
        model = body.get("model_name", "kling-v1")
        if model not in MODELS:
            return self.fail(400, 1201, "model_name %r is not supported" % (model,))
        prompt = body.get("prompt")
        if kind == "text2video" and (not isinstance(prompt, str) or not prompt):
            return self.fail(400, 1201, "prompt is required")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2500):
            return self.fail(400, 1201, "prompt must be a string of at most 2500 characters")
        neg = body.get("negative_prompt")
        if neg is not None and (not isinstance(neg, str) or len(neg) > 2500):
            return self.fail(400, 1201, "negative_prompt must be at most 2500 characters")
        if body.get("mode", "std") not in ("std", "pro"):
            return self.fail(400, 1201, "mode must be std or pro")
        duration = body.get("duration", "5")
        if duration not in ("5", "10"):
            return self.fail(400, 1201, "duration must be the string \"5\" or \"10\"")
        if kind == "text2video" and body.get("aspect_ratio", "16:9") not in ("16:9", "9:16", "1:1"):
            return self.fail(400, 1201, "aspect_ratio must be 16:9, 9:16 or 1:1")
        cfg = body.get("cfg_scale")
        if cfg is not None and (isinstance(cfg, bool) or not isinstance(cfg, (int, float))
                                or not 0 <= cfg <= 1):
            return self.fail(400, 1201, "cfg_scale must be a number in [0, 1]")
        if cfg is not None and model.startswith("kling-v2"):
            return self.fail(400, 1201, "cfg_scale is not supported by %s" % model)
        if kind == "image2video":
            problem = self.check_image(body.get("image"))
            if problem:
                return self.fail(400, 1201, problem)
        ext = body.get("external_task_id")
        if ext is not None and (not isinstance(ext, str) or not ext):
            return self.fail(400, 1201, "external_task_id must be a non-empty string")
        reject = self.cfg("reject")
        if reject:
            return self.fail(400, 1301, reject)
        with self.state.lock:
            if ext is not None and any(t["external_task_id"] == ext
                                       for t in self.state.tasks.values()):
                return self.fail(400, 1201, "external_task_id %s already exists" % ext)
            tid = str(random.randrange(10 ** 17, 10 ** 18))
            t = {"id": tid, "kind": kind, "created": time.time(), "external_task_id": ext,
                 "duration": duration, "body": body,
                 "finish_after_s": float(self.state.config.get("finish_after_s", 0.6)),
                 "fail": self.state.config.get("task_fail")}
            self.state.tasks[tid] = t
            view = self.task_view(t)
        return self.reply(200, self.envelope(0, "SUCCEED", view))


if __name__ == "__main__":
    fakebase.mp4()  # made once up front, not under the state lock of the first poll
    fakebase.serve(Handler, "kling", extra_args=[
        (("--access-key",), {"default": "test-ak"}),
        (("--secret-key",), {"default": "test-sk"}),
    ])
