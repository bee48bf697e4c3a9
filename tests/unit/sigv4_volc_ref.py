#!/usr/bin/env python3
"""Independent reference for the VolcEngine V4 vector in test_sigv4.c.

Written from the description of VolcEngine's signer (HMAC-SHA256, no "AWS4" key prefix, scope
terminator "request", X-Date / X-Content-Sha256 headers), without looking at sigv4.c, so that
the C result is checked against a second implementation. Run: python3 tests/unit/sigv4_volc_ref.py
"""
import hashlib
import hmac
from urllib.parse import quote

AK, SK = "AKLTEXAMPLEACCESSKEY", "EXAMPLEsecretKEY/abc+def=="
REGION, SERVICE = "cn-north-1", "cv"
X_DATE = "20240102T030405Z"
HOST = "visual.volcengineapi.com"
METHOD, PATH = "POST", "/"
QUERY = {"Action": "CVSync2AsyncSubmitTask", "Version": "2022-08-31"}
BODY = b'{"req_key":"jimeng_high_aes_general_v21_L","prompt":"a red fox"}'


def h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


body_hash = hashlib.sha256(BODY).hexdigest()
headers = {"content-type": "application/json", "host": HOST, "x-content-sha256": body_hash,
           "x-date": X_DATE}
signed = ";".join(sorted(headers))
canon_headers = "".join("%s:%s\n" % (k, headers[k].strip()) for k in sorted(headers))
canon_query = "&".join("%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
                       for k, v in sorted(QUERY.items()))
canonical = "\n".join([METHOD, PATH, canon_query, canon_headers, signed, body_hash])
scope = "%s/%s/%s/request" % (X_DATE[:8], REGION, SERVICE)
sts = "\n".join(["HMAC-SHA256", X_DATE, scope, hashlib.sha256(canonical.encode()).hexdigest()])
k = h(h(h(h(SK.encode(), X_DATE[:8]), REGION), SERVICE), "request")
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
print("body sha256  ", body_hash)
print("signature    ", sig)
print("Authorization: HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
      % (AK, scope, signed, sig))
