// The official Replicate JavaScript client (npm replicate, pinned in package-lock.json) against
// GenPulse, with only the base URL and the token changed. Run by
// tests/blackbox/test_replicate_api.py: GENPULSE_REPLICATE_TEST = {"base", "key", "min_predictions"}.
// Prints one line per step and "ALL OK" at the end; exits 1 at the first failure.
import Replicate from "replicate";

const cfg = JSON.parse(process.env.GENPULSE_REPLICATE_TEST);
const replicate = new Replicate({ auth: cfg.key, baseUrl: cfg.base + "/v1" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

async function step(name, fn) {
  const t0 = Date.now();
  await fn();
  console.log(`ok ${name} (${Date.now() - t0} ms)`);
}

try {
  await step("run genpulse/echo (Prefer: wait)", async () => {
    const out = await replicate.run("genpulse/echo", { input: { message: "hello" } });
    check(out && out.message === "hello", "echo output " + JSON.stringify(out));
  });

  await step("run a mapped catalog name", async () => {
    const out = await replicate.run("black-forest-labs/flux-schnell", {
      input: { prompt: "a red fox", num_outputs: 1, aspect_ratio: "1:1", go_fast: true },
    });
    check(Array.isArray(out) && out.length === 1, "flux output " + JSON.stringify(out));
    const url = String(out[0]);
    check(url.startsWith(cfg.base + "/files/"), "output link " + url);
    const res = await fetch(url); // no Authorization, as FileOutput fetches
    check(res.ok && (res.headers.get("content-type") || "").startsWith("image/png"),
      "output fetch " + res.status);
  });

  await step("models.get and a pinned version", async () => {
    const model = await replicate.models.get("genpulse", "echo");
    check(model.owner === "genpulse" && model.name === "echo", "model " + JSON.stringify(model));
    const v = model.latest_version;
    check(/^[0-9a-f]{64}$/.test(v.id), "version id " + v.id);
    check(v.openapi_schema.components.schemas.Input.properties.message, "Input schema");
    const got = await replicate.models.versions.get("genpulse", "echo", v.id);
    check(got.id === v.id, "versions.get");
    const out = await replicate.run(`genpulse/echo:${v.id}`, { input: { message: "pinned" } });
    check(out.message === "pinned", "pinned output " + JSON.stringify(out));
  });

  await step("run with polling and progress", async () => {
    const seen = [];
    const out = await replicate.run(
      "genpulse/echo",
      { input: { message: "poll", sleep_ms: 700 }, wait: { mode: "poll", interval: 100 } },
      (p) => seen.push(p.status)
    );
    check(out.message === "poll", "polled output");
    check(seen.length >= 2 && seen[seen.length - 1] === "succeeded", "progress " + seen);
  });

  await step("Prefer: wait that runs out answers starting, then wait()", async () => {
    const p = await replicate.predictions.create({
      model: "genpulse/echo",
      input: { message: "slow", sleep_ms: 2500 },
      wait: 1,
    });
    check(p.status === "starting", "status after a wait that ran out: " + p.status);
    const done = await replicate.wait(p, { interval: 200 });
    check(done.status === "succeeded" && done.output.message === "slow", "wait() " + done.status);
    check(typeof done.metrics.predict_time === "number", "metrics");
  });

  await step("predictions.create/get/cancel", async () => {
    const p = await replicate.predictions.create({
      version: "genpulse/echo",
      input: { message: "cancel me", sleep_ms: 30000 },
    });
    check(p.status === "starting" && p.urls.get && p.urls.cancel, "created " + JSON.stringify(p));
    for (let i = 0; i < 50; i++) {
      const g = await replicate.predictions.get(p.id);
      if (g.status === "processing") break;
      await sleep(100);
    }
    const c = await replicate.predictions.cancel(p.id);
    check(c.id === p.id, "cancel answer");
    const done = await replicate.wait(c, { interval: 100 });
    check(done.status === "canceled", "after cancel: " + done.status);
  });

  await step("a failed prediction throws", async () => {
    let err = null;
    try {
      await replicate.run("black-forest-labs/flux-schnell", {
        input: { prompt: "x", fail: "no luck today" },
      });
    } catch (e) {
      err = e;
    }
    check(err && /no luck today/.test(String(err.message)), "error " + (err && err.message));
  });

  await step("predictions.list and paginate", async () => {
    const page = await replicate.predictions.list();
    check(Array.isArray(page.results) && page.results.length > 0, "list");
    let n = 0, pages = 0;
    const ids = new Set();
    for await (const results of replicate.paginate(replicate.predictions.list)) {
      pages++;
      for (const p of results) ids.add(p.id);
      n += results.length;
    }
    check(n === ids.size, "duplicates across pages");
    check(n >= cfg.min_predictions, `paginated ${n} < ${cfg.min_predictions}`);
    check(pages >= 2, "pages " + pages);
  });

  await step("stream()", async () => {
    const events = [];
    for await (const ev of replicate.stream("genpulse/echo", {
      input: { message: "streamed", sleep_ms: 300 },
    })) {
      events.push(ev.event);
      check(ev.id, "event without id");
    }
    check(events.includes("output") && events[events.length - 1] === "done",
      "events " + events);
  });

  await step("a bad token is an ApiError with a problem body", async () => {
    const bad = new Replicate({ auth: "gp_not_a_real_key", baseUrl: cfg.base + "/v1" });
    let err = null;
    try {
      await bad.predictions.get("01a2425a-36e5-7e14-8333-f64490adda2d");
    } catch (e) {
      err = e;
    }
    check(err && err.response && err.response.status === 401, "status " + (err && err.message));
    check(/"title"/.test(err.message) && /"detail"/.test(err.message), "body " + err.message);
  });

  console.log("ALL OK");
} catch (e) {
  console.log("FAILED: " + (e && e.stack ? e.stack : e));
  process.exit(1);
}
