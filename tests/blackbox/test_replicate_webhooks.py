"""Webhooks of predictions made on the Replicate-compatible routes: the body is the prediction
(as GET /v1/predictions/{id} shows it, what Replicate sends), signed by the Standard Webhooks
scheme with the account's default secret, checked here and by the official client's
validateWebhook (npm replicate, tests/clients/replicate)."""
import json
import os
import shutil
import subprocess

from harness import case, check, npm_ci
from test_webhooks import FAST, Receiver, py_verify

CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "replicate")


def _js_validate(port, deliveries):
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    npm_ci(CLIENT_DIR)
    payload = {"base": "http://127.0.0.1:%d" % port, "key": "",
               "deliveries": [{"headers": {k: c["headers"][k] for k in
                                           ("webhook-id", "webhook-timestamp", "webhook-signature")},
                               "body": c["body"].decode()} for c in deliveries]}
    p = subprocess.run(["node", os.path.join(CLIENT_DIR, "validate_webhooks.mjs")], cwd=CLIENT_DIR,
                       input=json.dumps(payload).encode(), capture_output=True, timeout=60)
    check(p.returncode == 0, "validate_webhooks.mjs: %s" % (p.stdout + p.stderr).decode()[-800:])
    return json.loads(p.stdout)


@case(args=FAST + ["--webhook-allow-private", "1"])
def test_replicate_prediction_webhook(ctx):
    srv = ctx.srv
    recv = Receiver()
    try:
        r = srv.post("/v1/models/genpulse/echo/predictions",
                     {"input": {"message": "hooked"}, "webhook": recv.url("/r"),
                      "webhook_events_filter": ["start", "completed"]})
        check(r.status == 201, "create: %r" % (r,))
        pid = r.json["id"]
        calls = recv.wait(2, path="/r")
        bodies = [c["json"] for c in calls]
        final = [b for b in bodies if b.get("status") == "succeeded"]
        check(final, "no succeeded prediction among %r" % [b.get("status") for b in bodies])
        p = final[0]
        for k in ("id", "model", "version", "input", "output", "logs", "error", "status",
                  "created_at", "urls", "metrics"):
            check(k in p, "webhook prediction lacks %r: %s" % (k, sorted(p)))
        check(p["id"] == pid and p["model"] == "genpulse/echo", "prediction %r" % p)
        check(isinstance(p["output"], dict) and p["output"].get("message") == "hooked",
              "output %r" % p["output"])
        check("type" not in p and "data" not in p, "a Replicate webhook is the bare prediction")
        got = srv.get("/v1/predictions/" + pid).json
        for k in ("id", "model", "version", "input", "output", "error", "status", "created_at",
                  "started_at", "completed_at", "metrics"):
            check(p[k] == got[k], "webhook %s %r differs from GET's %r" % (k, p[k], got[k]))
        sec = srv.get("/v1/webhooks/default/secret")
        check(sec.status == 200 and sec.json["key"].startswith("whsec_"), "secret %r" % sec)
        for c in calls:
            py_verify(sec.json["key"], c["headers"], c["body"])
        js = _js_validate(srv.port, calls)
        if js is not None:
            check(js["secret"] == sec.json["key"], "the JS client read another secret")
            check(js["valid"] == [True] * len(calls), "validateWebhook: %r" % js["valid"])
    finally:
        recv.close()
