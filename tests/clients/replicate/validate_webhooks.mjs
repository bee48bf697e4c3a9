// validate_webhooks.mjs — the official Replicate client's webhook check on deliveries GenPulse
// sent: the secret comes from replicate.webhooks.default.secret.get() (GET
// /v1/webhooks/default/secret), each delivery goes through validateWebhook(). Input on stdin:
// {"base", "key", "deliveries": [{"headers": {...}, "body": "<raw>"}]}. Prints a JSON list of
// booleans; exits 1 when the secret cannot be read.
import Replicate, { validateWebhook } from "replicate";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const cfg = JSON.parse(Buffer.concat(chunks).toString());
const replicate = new Replicate({ auth: cfg.key, baseUrl: cfg.base + "/v1" });
const { key } = await replicate.webhooks.default.secret.get();
const out = [];
for (const d of cfg.deliveries) out.push(await validateWebhook({ headers: d.headers, body: d.body }, key));
console.log(JSON.stringify({ secret: key, valid: out }));
