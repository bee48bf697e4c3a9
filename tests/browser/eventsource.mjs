// eventsource.mjs — a stock EventSource (Chromium's own) on a task's event stream. Started by
// tests/blackbox/test_wait.py with GENPULSE_EVENTSOURCE_TEST = {"base", "task_id", "ms"}.
// Prints one JSON line: how often the stream opened, the events it got, its final readyState.
// The stream of a finished task must end and stay ended: the reconnect gets 204, which makes
// an EventSource stop (readyState CLOSED) instead of reconnecting every `retry` forever.
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.env.GENPULSE_EVENTSOURCE_TEST || "{}");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  await page.goto(cfg.base + "/health");
  const result = await page.evaluate(
    ({ id, ms }) =>
      new Promise((resolve) => {
        const seen = { opens: 0, events: [], errors: 0 };
        const es = new EventSource("/v1/tasks/" + id + "/events");
        es.onopen = () => seen.opens++;
        es.onerror = () => seen.errors++;
        for (const name of ["status", "progress"])
          es.addEventListener(name, (e) =>
            seen.events.push({ type: name, id: e.lastEventId, status: JSON.parse(e.data).status }),
          );
        setTimeout(() => {
          seen.readyState = es.readyState;
          es.close();
          resolve(seen);
        }, ms);
      }),
    { id: cfg.task_id, ms: cfg.ms || 5000 },
  );
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
