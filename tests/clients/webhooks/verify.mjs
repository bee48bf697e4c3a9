// Verifies webhook deliveries with the official Standard Webhooks library (npm
// standardwebhooks, pinned in package-lock.json). stdin: a JSON list of
// {"secret", "headers": {"webhook-id", "webhook-timestamp", "webhook-signature"}, "body"};
// stdout: a JSON list of {"ok": true} or {"ok": false, "error": "..."} in the same order.
import { Webhook } from "standardwebhooks";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ secret, headers, body }) => {
    try {
      new Webhook(secret).verify(body, headers);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: String(e && e.message ? e.message : e) };
    }
  });
  process.stdout.write(JSON.stringify(out));
});
