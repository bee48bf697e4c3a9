#!/usr/bin/python3
"""Fake OpenAI Images API: POST /v1/images/generations (research/genai_apis.md §4).

Usage: openai_images.py [--port N] [--key K]. Prints "fake-openai ready port=N".

Checks what the real API checks: `Authorization: Bearer K` (401 invalid_api_key otherwise),
a JSON object body with only known fields, prompt, model, n (dall-e-3: 1 only), size per
model, response_format (not accepted by gpt-image-1), quality, style. Errors use the
{"error": {"message", "type", "param", "code"}} envelope. Images are real PNGs of the asked
size (capped at 256 px a side to stay small), returned as b64_json or as a URL on this fake.

Config (POST /_fake/config), besides fail_429 / fail_500 / retry_after of fakebase:
  "reject": "message"   answer 400 content_policy_violation with this message
  "delay_s": S          hold each generation S seconds before answering (cancel tests)
  "images": N           return N images whatever n was (malformed-reply tests)
"""
import base64
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakebase  # noqa: E402

KNOWN_FIELDS = {"prompt", "model", "n", "size", "response_format", "quality", "style",
                "background", "moderation", "output_format", "output_compression", "user",
                "negative_prompt"}  # negative_prompt: the LocalAI extension
SIZES = {
    "dall-e-2": {"256x256", "512x512", "1024x1024"},
    "dall-e-3": {"1024x1024", "1792x1024", "1024x1792"},
    "gpt-image-1": {"1024x1024", "1536x1024", "1024x1536", "auto"},
}
PROMPT_MAX = {"dall-e-2": 1000, "dall-e-3": 4000, "gpt-image-1": 32000}


class Handler(fakebase.FakeHandler):
    def error_body(self, status, message, param=None, code=None, etype=None):
        if etype is None:
            etype = {401: "invalid_request_error", 429: "requests", 500: "server_error"}.get(
                status, "invalid_request_error")
        return {"error": {"message": message, "type": etype, "param": param, "code": code}}

    def bad(self, message, param=None, code=None):
        return self.reply(400, self.error_body(400, message, param, code))

    def api(self, method, path, query, raw):
        if path != "/v1/images/generations":
            return self.reply(404, self.error_body(404, "Invalid URL (%s %s)" % (method, path)))
        if method != "POST":
            return self.reply(405, self.error_body(405, "Method not allowed"))
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer " + self.opts.key:
            shown = auth[7:11] + "****" if auth.startswith("Bearer ") else "none"
            return self.reply(401, self.error_body(
                401, "Incorrect API key provided: %s. You can find your API key at "
                     "https://platform.openai.com/account/api-keys." % shown,
                code="invalid_api_key"))
        if "application/json" not in self.headers.get("Content-Type", ""):
            return self.bad("Content-Type must be application/json")
        try:
            import json
            body = json.loads(raw)
        except ValueError:
            return self.bad("We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return self.bad("The request body must be a JSON object.")
        for k in body:
            if k not in KNOWN_FIELDS:
                return self.bad("Unrecognized request argument supplied: %s" % k, param=k)

        model = body.get("model", "dall-e-2")
        if not isinstance(model, str) or not model:
            return self.bad("model must be a string", "model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return self.bad("You must provide a prompt.", "prompt")
        if len(prompt) > PROMPT_MAX.get(model, 32000):
            return self.bad("prompt is too long", "prompt")
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            return self.bad("n must be an integer between 1 and 10", "n")
        if model == "dall-e-3" and n != 1:
            return self.bad("You must provide n=1 for this model.", "n")
        size = body.get("size", "1024x1024")
        if not isinstance(size, str) or not (size == "auto" or re.match(r"^\d{1,5}x\d{1,5}$", size)):
            return self.bad("Invalid size %r" % (size,), "size")
        if model in SIZES and size not in SIZES[model]:
            return self.bad("'%s' is not one of %s - 'size'" % (size, sorted(SIZES[model])), "size")
        rf = body.get("response_format")
        if rf is not None:
            if model == "gpt-image-1":
                return self.bad("Unknown parameter: 'response_format'.", "response_format")
            if rf not in ("url", "b64_json"):
                return self.bad("'%s' is not one of ['url', 'b64_json'] - 'response_format'"
                                % (rf,), "response_format")
        if model == "gpt-image-1":
            rf = "b64_json"
        elif rf is None:
            rf = "url"  # the API's own default
        if body.get("quality") not in (None, "standard", "hd", "low", "medium", "high", "auto"):
            return self.bad("invalid quality", "quality")
        if body.get("style") not in (None, "vivid", "natural"):
            return self.bad("invalid style", "style")
        if "style" in body and model != "dall-e-3":
            return self.bad("style is only supported for dall-e-3", "style")
        if body.get("output_format") not in (None, "png", "jpeg", "webp"):
            return self.bad("invalid output_format", "output_format")

        delay = float(self.cfg("delay_s", 0) or 0)
        end = time.time() + delay
        while time.time() < end:
            time.sleep(0.02)
        reject = self.cfg("reject")
        if reject:
            return self.bad(reject, code="content_policy_violation")

        if size == "auto":
            w = h = 1024
        else:
            w, h = (int(x) for x in size.split("x"))
        w, h = max(1, min(w, 256)), max(1, min(h, 256))
        data = []
        for i in range(int(self.cfg("images", n))):
            img = fakebase.png(w, h, (40 * i % 256, 120, 200))
            self.record_output("image/png", img)
            item = {"revised_prompt": "A vivid rendering of: " + prompt}
            if rf == "url":
                item["url"] = self.serve_file("image/png", img)
            else:
                item["b64_json"] = base64.b64encode(img).decode()
            data.append(item)
        reply = {"created": int(time.time()), "data": data}
        if model == "gpt-image-1":
            reply.update({"output_format": "png", "size": size, "quality": "high",
                          "usage": {"input_tokens": 10, "output_tokens": 100,
                                    "total_tokens": 110,
                                    "input_tokens_details": {"image_tokens": 0,
                                                             "text_tokens": 10}}})
        return self.reply(200, reply)


if __name__ == "__main__":
    fakebase.serve(Handler, "openai",
                   extra_args=[(("--key",), {"default": "test-key"})])
