#!/usr/bin/python3
"""Fake VolcEngine visual API (Jimeng) (research/genai_apis.md §5.2).

Usage: volcengine.py [--port N] [--access-key AK] [--secret-key SK] [--region R]
[--service S]. Prints "fake-volcengine ready port=N".

Every request must be signed with VolcEngine's V4 variant; the signature is recomputed here
independently of GenPulse's C signer, following the official SDK (SignerV4.py):
  canonical request = METHOD \n path \n sorted RFC 3986 query \n "name:value\n" per signed
                      header \n signed;header;names \n hex sha256(body)
  string to sign    = "HMAC-SHA256" \n X-Date \n YYYYMMDD/region/service/request \n
                      hex sha256(canonical request)
  key               = HMAC(HMAC(HMAC(HMAC(SK, YYYYMMDD), region), service), "request")
  Authorization     = "HMAC-SHA256 Credential=AK/scope, SignedHeaders=..., Signature=..."
X-Content-Sha256 must match the body and be signed, as must host, x-date and content-type;
X-Date must be within 15 minutes of now. Failures answer 401 in the gateway's
ResponseMetadata.Error envelope (SignatureDoesNotMatch, InvalidAccessKey, ...).

  POST /?Action=CVSync2AsyncSubmitTask&Version=2022-08-31   {req_key, ...} -> data.task_id
  POST /?Action=CVSync2AsyncGetResult&Version=2022-08-31    {req_key, task_id, req_json}
       data.status: in_queue -> generating -> done (or not_found / expired); image_urls
       when req_json has return_url true, else binary_data_base64; video_url for t2v.

Config (POST /_fake/config), besides fail_429 / fail_500 / retry_after of fakebase (a 429
carries code 50429):
  "finish_after_s": S   time from submit to done (default 0.6)
  "task_fail": "msg"    tasks submitted from now on end with code 50511 and this message
  "never_finish": true  while set, no task finishes (they stay "generating")
  "expire": true        tasks submitted from now on end "expired"
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import random
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakebase  # noqa: E402

VERSION = "2022-08-31"
REQ_KEYS = {"jimeng_t2i_v31": "t2i", "jimeng_t2i_v30": "t2i", "jimeng_i2i_v30": "i2i",
            "jimeng_t2v_v30": "t2v"}


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def rfc3986(s):
    return urllib.parse.quote(s, safe="-_.~")


class Handler(fakebase.FakeHandler):
    def gateway_error(self, status, code, codeN, message):
        return self.reply(status, {"ResponseMetadata": {
            "RequestId": str(uuid.uuid4()), "Action": "", "Version": VERSION,
            "Service": self.opts.service, "Region": self.opts.region,
            "Error": {"CodeN": codeN, "Code": code, "Message": message}}})

    def envelope(self, code, message, data=None):
        return {"code": code, "data": data, "message": message,
                "request_id": str(uuid.uuid4()), "status": code, "time_elapsed": "1.2ms"}

    def error_body(self, status, message):
        if status == 429:
            return self.envelope(50429, "Request Has Reached API Limit, Please Try Later")
        return self.envelope(50500, "Internal Error")

    # -- signature --
    def check_signature(self, path, raw):
        """None when the request is signed correctly, else (code, codeN, message)."""
        h = {k.lower(): v for k, v in self.headers.items()}
        auth = h.get("authorization", "")
        if not auth.startswith("HMAC-SHA256 "):
            return "MissingAuthenticationToken", 100001, "Authorization is missing or not HMAC-SHA256"
        fields = {}
        for part in auth[len("HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        try:
            ak, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            given = fields["Signature"]
        except (KeyError, ValueError):
            return "InvalidAuthorization", 100002, "malformed Authorization header"
        if ak != self.opts.access_key:
            return "InvalidAccessKey", 100009, "The access key %s does not exist" % ak
        if term != "request" or region != self.opts.region or service != self.opts.service:
            return "InvalidCredential", 100010, "credential scope %s/%s/%s is wrong" % (
                region, service, term)
        for need in ("host", "x-date", "x-content-sha256", "content-type"):
            if need not in signed:
                return "SignatureDoesNotMatch", 100010, "header %s must be signed" % need
        if signed != sorted(signed):
            return "SignatureDoesNotMatch", 100010, "SignedHeaders are not sorted"
        xdate = h.get("x-date", "")
        try:
            when = datetime.datetime.strptime(xdate, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            return "InvalidTimestamp", 100011, "X-Date %r is malformed" % xdate
        if abs(time.time() - when) > 900 or xdate[:8] != date:
            return "InvalidTimestamp", 100011, "X-Date is too far from now or the scope date"
        if h.get("x-content-sha256") != sha256_hex(raw):
            return "SignatureDoesNotMatch", 100010, "X-Content-Sha256 does not match the body"
        query = urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                       keep_blank_values=True)
        cquery = "&".join("%s=%s" % (rfc3986(k), rfc3986(v)) for k, v in sorted(query))
        cheaders = "".join("%s:%s\n" % (n, " ".join(h.get(n, "").split())) for n in signed)
        canonical = "\n".join([self.command, path or "/", cquery, cheaders, ";".join(signed),
                               sha256_hex(raw)])
        scope = "%s/%s/%s/request" % (date, region, service)
        to_sign = "\n".join(["HMAC-SHA256", xdate, scope, sha256_hex(canonical.encode())])
        key = self.opts.secret_key.encode()
        for piece in (date, region, service, "request"):
            key = hmac256(key, piece)
        want = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, given):
            return ("SignatureDoesNotMatch", 100010,
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your Secret Access Key and signing method.")
        return None

    # -- helpers --
    def fetch_image(self, url):
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                head = r.read(16)
        except Exception as e:
            return "image %s cannot be downloaded: %s" % (url, e)
        if not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8\xff")):
            return "image %s is not a PNG or JPEG" % url
        return None

    def bad(self, message, code=50400):
        return self.reply(400, self.envelope(code, message))

    # -- API --
    def api(self, method, path, query, raw):
        problem = self.check_signature(path, raw)
        if problem:
            return self.gateway_error(401, *problem)
        action = query.get("Action", [""])[0]
        if query.get("Version", [""])[0] != VERSION:
            return self.gateway_error(400, "InvalidVersion", 100006, "Version must be " + VERSION)
        if method != "POST" or path != "/":
            return self.gateway_error(404, "InvalidActionOrVersion", 100008, "no such API")
        try:
            body = json.loads(raw)
        except ValueError:
            return self.bad("request body is not JSON")
        if not isinstance(body, dict):
            return self.bad("request body must be an object")
        if action == "CVSync2AsyncSubmitTask":
            return self.submit(body)
        if action == "CVSync2AsyncGetResult":
            return self.get_result(body)
        return self.gateway_error(404, "InvalidActionOrVersion", 100008,
                                  "Action %s does not exist" % action)

    def submit(self, body):
        kind = REQ_KEYS.get(body.get("req_key"))
        if kind is None:
            return self.bad("Invalid Request: req_key %r" % (body.get("req_key"),))
        prompt = body.get("prompt")
        if kind in ("t2i", "t2v") and (not isinstance(prompt, str) or not prompt):
            return self.bad("prompt is required")
        seed = body.get("seed", -1)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < -1:
            return self.bad("seed must be an integer >= -1")
        if kind == "t2i":
            for k in ("width", "height"):
                v = body.get(k, 1328)
                if not isinstance(v, int) or not 64 <= v <= 4096:
                    return self.bad("%s must be an integer" % k)
        if kind == "i2i":
            urls, b64s = body.get("image_urls"), body.get("binary_data_base64")
            if (urls is None) == (b64s is None):
                return self.bad("exactly one of image_urls and binary_data_base64 is required")
            if urls is not None:
                if not (isinstance(urls, list) and len(urls) == 1 and isinstance(urls[0], str)):
                    return self.bad("image_urls must hold one URL")
                problem = self.fetch_image(urls[0])
                if problem:
                    return self.bad(problem, 50411)
            else:
                try:
                    head = base64.b64decode(b64s[0], validate=True)[:8]
                except (ValueError, TypeError, IndexError, KeyError):
                    return self.bad("binary_data_base64 must hold one base64 image")
                if not head.startswith(b"\x89PNG"):
                    return self.bad("binary_data_base64[0] is not an image", 50411)
        if kind == "t2v":
            if body.get("frames", 121) not in (121, 241):
                return self.bad("frames must be 121 or 241")
            if body.get("aspect_ratio", "16:9") not in ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9"):
                return self.bad("aspect_ratio is not supported")
        if "scale" in body and (not isinstance(body["scale"], (int, float)) or
                                not 0 <= body["scale"] <= 1):
            return self.bad("scale must be in [0, 1]")
        with self.state.lock:
            tid = str(random.randrange(10 ** 18, 10 ** 19))
            cfg = self.state.config
            self.state.tasks[tid] = {
                "id": tid, "kind": kind, "req_key": body["req_key"], "created": time.time(),
                "body": body, "finish_after_s": float(cfg.get("finish_after_s", 0.6)),
                "fail": cfg.get("task_fail"),
                "expire": bool(cfg.get("expire"))}
        return self.reply(200, self.envelope(10000, "Success", {"task_id": tid}))

    def get_result(self, body):
        tid = body.get("task_id")
        if not isinstance(tid, str) or not isinstance(body.get("req_key"), str):
            return self.bad("req_key and task_id are required")
        return_url = False
        rj = body.get("req_json")
        if rj is not None:
            try:
                return_url = bool(json.loads(rj).get("return_url"))
            except (ValueError, AttributeError, TypeError):
                return self.bad("req_json must be a JSON object in a string")
        with self.state.lock:
            t = self.state.tasks.get(tid)
            if t is None or t["req_key"] != body["req_key"]:
                return self.reply(200, self.envelope(10000, "Success",
                                                     {"status": "not_found"}))
            age = time.time() - t["created"]
            if self.state.config.get("never_finish") or age < t["finish_after_s"]:
                status = "in_queue" if age < t["finish_after_s"] / 3 else "generating"
                return self.reply(200, self.envelope(10000, "Success", {"status": status}))
            if t["expire"]:
                return self.reply(200, self.envelope(10000, "Success", {"status": "expired"}))
            if t["fail"]:
                return self.reply(200, self.envelope(50511, t["fail"]))
            data = {"status": "done", "image_urls": None, "binary_data_base64": [],
                    "video_url": ""}
            if t["kind"] == "t2v":
                if "video" not in t:
                    video = fakebase.mp4()
                    if video is None:
                        return self.reply(200, self.envelope(50500, "fake has no ffmpeg"))
                    self.record_output("video/mp4", video)
                    t["video"] = self.serve_file("video/mp4", video)
                data["video_url"] = t["video"]
            else:
                if "image" not in t:
                    t["image"] = fakebase.png(24, 16, (250, 180, 20))
                    self.record_output("image/png", t["image"])
                if return_url:
                    data["image_urls"] = [self.serve_file("image/png", t["image"])]
                else:
                    data["binary_data_base64"] = [base64.b64encode(t["image"]).decode()]
        return self.reply(200, self.envelope(10000, "Success", data))


if __name__ == "__main__":
    fakebase.mp4()
    fakebase.serve(Handler, "volcengine", extra_args=[
        (("--access-key",), {"default": "test-ak"}),
        (("--secret-key",), {"default": "test-sk"}),
        (("--region",), {"default": "cn-north-1"}),
        (("--service",), {"default": "cv"}),
    ])
