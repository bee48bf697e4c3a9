// dashboard.mjs — drives the dashboard in Debian's Chromium (no browser download: playwright-core
// with executablePath). Started by tests/blackbox/test_dashboard.py, which runs the servers
// and passes what it made in GENPULSE_DASHBOARD_TEST (JSON):
//   {base, admin_key, out, scenario: "embedded" | "workers", ...}
// Prints one line per check and exits non-zero at the first failure; screenshots go to out/.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const cfg = JSON.parse(process.env.GENPULSE_DASHBOARD_TEST || "{}");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(cfg.out, { recursive: true });

let failures = 0;
function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok -", what);
}

async function shot(page, name) {
  const file = path.join(cfg.out, name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  console.log("screenshot", file);
}

async function api(method, p, key, body) {
  const res = await fetch(cfg.base + p, {
    method,
    headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function until(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("timed out: " + what);
}

function watchErrors(page, label) {
  page.on("pageerror", (e) => { failures++; console.log(`${label}: page error: ${e.message}`); });
}

async function signInWithKey(page, key) {
  await page.goto(cfg.base + "/dashboard");
  await page.waitForSelector("#signin:not([hidden])");
  await page.fill("#signin-key", key);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#main:not([hidden])");
}

// ---------------------------------------------------------------- embedded scenario

async function embedded(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watchErrors(page, "admin");

  // 1. sign in with a pasted admin key
  await page.goto(cfg.base + "/dashboard");
  await page.waitForSelector("#signin:not([hidden])");
  await shot(page, "01-signin");
  await signInWithKey(page, cfg.admin_key);
  check((await page.textContent("#who")).includes("admin"), "signed in with the admin key");
  check(await page.isVisible("#nav-workers"), "an admin sees the Workers page");
  await until(() => page.$eval("#live", (e) => e.textContent === "live"), 5000, "live stream open");
  check(true, "the live stream (GET /v1/events) is open");

  // 2. submit a slow task from the form and watch its progress move without a reload
  await page.click('a[data-page="tasks"]');
  await page.waitForSelector("#page-tasks:not([hidden])");
  await page.click("#submit-box summary");
  await page.selectOption("#submit-type", "text-to-image");
  await page.fill("#submit-params", JSON.stringify({ prompt: "a lighthouse at dusk", width: 256, height: 192, steps: 10, delay_ms: 3000 }));
  await page.click("#submit-form button[type=submit]");
  await page.waitForSelector("#submit-msg a, #submit-msg.error");
  const link = await page.$("#submit-msg a");
  check(link, "the form submitted: " + (await page.textContent("#submit-msg")));
  const tid = (await link.getAttribute("href")).split("/").pop();
  check(/^[0-9a-f-]{36}$/.test(tid), "the form created task " + tid);
  const row = `#tasks-table tbody tr[data-id="${tid}"]`;
  const seen = new Set();
  let midShot = false;
  await until(async () => {
    const p = Number(await page.$eval(row + " .progress", (e) => e.dataset.progress).catch(() => -1));
    if (p >= 0) seen.add(p);
    if (p > 0 && p < 100 && !midShot) { midShot = true; await shot(page, "02-tasks-progress"); }
    return (await page.$eval(row + " .status", (e) => e.textContent).catch(() => "")) === "succeeded";
  }, 20000, "the task row reached succeeded");
  const mids = [...seen].filter((p) => p > 0 && p < 100);
  check(mids.length >= 2, `progress moved on the page by SSE: ${[...seen].sort((a, b) => a - b).join(",")}`);

  // 3. open the output: BlurHash placeholder first, then the image
  await page.click(row + " a");
  await page.waitForSelector("#page-task:not([hidden])");
  await page.waitForSelector("#task-outputs .media-frame canvas.blurhash");
  const hashPainted = await page.$eval("#task-outputs canvas.blurhash", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let min = 255, max = 0;
    for (let i = 0; i < d.length; i += 4) { min = Math.min(min, d[i]); max = Math.max(max, d[i]); }
    return c.width > 0 && max > 0;
  });
  check(hashPainted, "the BlurHash placeholder is painted");
  await until(() => page.$eval("#task-outputs .media-frame", (f) => f.classList.contains("loaded") && f.querySelector("img").naturalWidth === 256), 10000, "image loaded");
  check(true, "the output image loaded inline (256 px wide)");
  const events = await page.$$eval("#task-events li", (l) => l.length);
  check(events >= 1, `the event timeline shows ${events} event(s)`);
  await shot(page, "03-task-output");

  // 4. a failed task: the dead-letter view retries it
  const failed = await api("POST", "/v1/tasks", cfg.admin_key, { task_type: "text-to-image", params: { prompt: "bad", width: 64, height: 64, fail: "simulated boom" } });
  check(failed.status === 202, "submitted a task that fails");
  const fid = failed.json.id;
  const firstEnd = await until(async () => {
    const t = (await api("GET", "/v1/tasks/" + fid, cfg.admin_key)).json;
    return t.status === "failed" && t.completed_at;
  }, 10000, "task failed");
  await page.click('a[data-page="failed"]');
  await page.waitForSelector(`#failed-table tr[data-id="${fid}"]`);
  await until(() => page.$eval("#failed-code", (s) => [...s.options].some((o) => o.value === "simulated_failure")), 5000, "error code offered");
  await page.selectOption("#failed-code", "simulated_failure");
  await page.waitForSelector(`#failed-table tr[data-id="${fid}"]`);
  await page.check(`#failed-table tr[data-id="${fid}"] .pick`);
  await shot(page, "04-failed");
  await page.click("#failed-retry");
  await until(() => page.$eval("#failed-msg", (e) => /retry: 1 done/.test(e.textContent)), 5000, "retry reported");
  await until(async () => {
    const t = (await api("GET", "/v1/tasks/" + fid, cfg.admin_key)).json;
    return t.status === "failed" && Date.parse(t.completed_at) > Date.parse(firstEnd) && t.attempts === 1;
  }, 10000, "retried task failed again");
  check(true, "retry from the dead-letter view ran the task again (it fails again by design)");
  await shot(page, "05-failed-after-retry");
  // its page: attempts (worker, error, duration) when the server keeps that history
  await page.goto(cfg.base + "/dashboard#/task/" + fid);
  await page.waitForSelector("#page-task:not([hidden]) #task-attempts tbody tr");
  await page.waitForTimeout(300);
  const attempts = await page.$$eval("#task-attempts tbody tr", (rs) => rs.map((r) => r.textContent));
  if (attempts.some((t) => /keeps no attempt history/.test(t))) console.log("note - this build has no GET /v1/tasks/{id}/attempts");
  else check(attempts.length >= 1 && attempts.every((t) => /simulated_failure/.test(t)), `attempts listed with worker and error: ${attempts.length} row(s)`);
  check(await page.isVisible("#task-retry"), "a failed task's page offers Retry");
  await shot(page, "05b-failed-task");

  // 5. the overview draws its charts from GET /v1/stats
  await page.click('a[data-page="overview"]');
  await page.waitForSelector("#stats-cards .card");
  await page.waitForTimeout(500);
  const inked = await page.$$eval(".charts canvas", (cs) => cs.map((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.abs(d[i] - d[i + 1]) > 40) coloured++;
    return coloured;
  }));
  check(inked.length === 4 && inked.every((n) => n > 0), "four charts drawn with data: " + inked.join(","));
  const created = Number(await page.textContent("#stats-cards .card .value"));
  check(created >= 2, `the overview counts ${created} created task(s)`);
  await shot(page, "06-overview");

  // 6. a browser session through the identity issuer: an ordinary user sees only their own
  const uctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const upage = await uctx.newPage();
  watchErrors(upage, "user");
  await upage.goto(cfg.base + "/dashboard");
  await upage.waitForSelector("#signin-sso-box:not([hidden])");
  await Promise.all([upage.waitForURL(/\/dashboard/), upage.click("#signin-sso")]);
  await upage.waitForSelector("#main:not([hidden])");
  const who = await upage.textContent("#who");
  check(/session|oidc/.test(who) && !who.includes("admin"), "signed in through the issuer: " + who);
  check(!(await upage.isVisible("#nav-workers")), "an ordinary user has no Workers page");
  await upage.click('a[data-page="tasks"]');
  await upage.waitForSelector("#page-tasks:not([hidden])");
  await upage.waitForSelector("#tasks-table tbody tr");
  check(!(await upage.$(row)), "the admin's task is not in the user's list");
  await upage.click("#submit-box summary");
  await upage.selectOption("#submit-type", "echo");
  await upage.fill("#submit-params", JSON.stringify({ message: "from the session" }));
  await upage.click("#submit-form button[type=submit]");
  const ulink = await upage.waitForSelector("#submit-msg a", { timeout: 5000 }).catch(() => null);
  check(ulink, "a session write (with X-CSRF-Token) created a task: " + (await upage.textContent("#submit-msg")));
  const uid = (await ulink.getAttribute("href")).split("/").pop();
  await until(() => upage.$eval(`#tasks-table tr[data-id="${uid}"] .status`, (e) => e.textContent === "succeeded").catch(() => false), 10000, "user's task succeeded live");
  check(true, "the user's task went to succeeded on the page without reload");
  // the admin's page hears of the user's task too (admin stream carries every user)
  await page.click('a[data-page="tasks"]');
  await page.waitForSelector(`#tasks-table tr[data-id="${uid}"]`, { timeout: 5000 });
  check(true, "the admin's list shows the user's task");
  // and a task the admin submits now never reaches the user's page
  const other = await api("POST", "/v1/tasks", cfg.admin_key, { task_type: "echo", params: { message: "admin only" } });
  await page.waitForSelector(`#tasks-table tr[data-id="${other.json.id}"]`, { timeout: 5000 });
  await upage.waitForTimeout(1000);
  check(!(await upage.$(`#tasks-table tr[data-id="${other.json.id}"]`)), "the user's live view did not get the admin's new task");
  await shot(upage, "07-user-tasks");
  await uctx.close();
  await ctx.close();
}

// ---------------------------------------------------------------- distributed: a worker lost

async function workers(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 700 } });
  const page = await ctx.newPage();
  watchErrors(page, "workers");
  await page.goto(cfg.base + "/dashboard#/workers");
  await page.waitForSelector("#main:not([hidden])");
  await page.goto(cfg.base + "/dashboard#/workers");
  await page.waitForSelector("#page-workers:not([hidden])");
  await until(() => page.$$eval("#workers-table tbody tr.alive", (r) => r.length >= 2), 15000, "two live workers");
  check(true, "the Workers page lists two live workers");
  // slow tasks, so the running column has something to show
  for (let i = 0; i < 3; i++) {
    await fetch(cfg.base + "/v1/tasks", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ task_type: "text-to-image", params: { prompt: "slow " + i, width: 64, height: 64, steps: 4, delay_ms: 20000 } }) });
  }
  await until(() => page.$$eval("#workers-table tbody tr.alive td:last-child a", (a) => a.length >= 2), 15000, "running tasks shown");
  check(true, "the Workers page shows the running tasks");
  await shot(page, "08-workers-alive");
  // the test kills the worker whose id it names, then tells us through a file
  fs.writeFileSync(path.join(cfg.out, "ready-to-kill"), "");
  console.log("ready-to-kill");
  await until(() => fs.existsSync(path.join(cfg.out, "killed")), 15000, "the worker was killed");
  const pid = fs.readFileSync(path.join(cfg.out, "killed"), "utf8").trim();
  const t0 = Date.now();
  await until(() => page.$$eval("#workers-table tbody tr.lost", (rs, p) => rs.some((r) => r.children[3].textContent === p), pid), 60000, "the killed worker marked lost");
  check(true, `the killed worker (pid ${pid}) is marked lost after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const aliveLeft = await page.$$eval("#workers-table tbody tr.alive", (r) => r.length);
  check(aliveLeft === 1, "the other worker is still alive");
  await shot(page, "09-workers-lost");
  await ctx.close();
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  if (cfg.scenario === "workers") await workers(browser);
  else await embedded(browser);
  if (failures) throw new Error(`${failures} page error(s)`);
  console.log("dashboard browser test: all checks passed");
} catch (e) {
  console.log("FAIL:", e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
