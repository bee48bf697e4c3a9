// docs.mjs — GET /docs in Debian's Chromium (playwright-core, no browser download). Started by
// tests/blackbox/test_openapi.py with GENPULSE_DOCS_TEST (JSON): {base, key, out}.
// Loads Swagger UI, checks that nothing comes from another origin and that the console stays
// clean, authorizes with the API key, then "Try it out" → Execute on GET /v1/task-types and
// POST /v1/tasks (the echo example) and reads the status codes the UI shows.
// Prints one line per check; exits non-zero at the first failure; screenshots go to out/.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const cfg = JSON.parse(process.env.GENPULSE_DOCS_TEST || "{}");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(cfg.out, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok -", what);
}

async function shot(page, name) {
  const file = path.join(cfg.out, name + ".png");
  await page.screenshot({ path: file, fullPage: false });
  console.log("screenshot", file);
}

// Expands an operation (ids are operations-<tag>-<operationId>), executes it as it is filled
// in, and returns the status code the UI shows.
async function execute(page, id) {
  const op = page.locator("#" + id);
  await op.locator(".opblock-summary").first().click();
  const run = op.locator("button.execute");
  await run.waitFor({ timeout: 10000 });
  await run.click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 15000 });
  return (await status.textContent()).trim();
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const problems = [];
  const foreign = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().includes("/v1/")) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(cfg.base) && !u.startsWith("data:") && !u.startsWith("blob:")) foreign.push(u);
  });

  const res = await page.goto(cfg.base + "/docs");
  check(res.status() === 200, "GET /docs answers 200");
  await page.waitForSelector(".swagger-ui .opblock", { timeout: 20000 });
  check((await page.textContent(".swagger-ui .info .title")).includes("GenPulse"),
        "Swagger UI rendered the GenPulse document");
  const ops = await page.locator(".opblock").count();
  check(ops >= 30, `every operation is listed (${ops})`);
  await shot(page, "01-docs");

  // Authorize with the key (the bearer scheme named apiKey).
  await page.click("button.authorize");
  const box = page.locator(".auth-container form", { hasText: "apiKey (http, Bearer)" });
  await box.locator("input").first().fill(cfg.key);
  await box.locator("button.authorize").click();
  await box.locator("button", { hasText: "Logout" }).waitFor({ timeout: 5000 });
  check(true, "authorized with the API key");
  await page.click(".modal-ux button.close-modal");

  const types = await execute(page, "operations-Discovery-listTaskTypes");
  check(types === "200", `GET /v1/task-types from the UI answered ${types}`);
  await shot(page, "02-task-types");

  const created = await execute(page, "operations-Tasks-createTask");
  check(created === "202" || created === "200", `POST /v1/tasks (echo example) answered ${created}`);
  await shot(page, "03-create");

  // More routes, as a person would try them: GETs without params, then one with a path param.
  for (const id of ["Tasks-listTasks", "Discovery-listProviders", "Account-getAccount",
                    "Account-getLedger", "Operations-getStats", "Operations-getHealth"]) {
    const st = await execute(page, "operations-" + id);
    check(st === "200", `${id} from the UI answered ${st}`);
  }
  const prov = page.locator("#operations-Discovery-getProvider");
  await prov.locator(".opblock-summary").first().click();
  await prov.locator("tr[data-param-name='name'] input").fill("echo");
  await prov.locator("button.execute").click();
  const provStatus = prov.locator(".live-responses-table .response .response-col_status").first();
  await provStatus.waitFor({ timeout: 15000 });
  check((await provStatus.textContent()).trim() === "200", "GET /v1/providers/{name} with name=echo");
  await shot(page, "04-provider");

  // persistAuthorization: a reload keeps the key.
  await page.reload();
  await page.waitForSelector(".swagger-ui .opblock", { timeout: 20000 });
  const again = await execute(page, "operations-Discovery-listTaskTypes");
  check(again === "200", `after a reload the key is still applied (${again})`);

  check(foreign.length === 0, "nothing loaded from another origin: " + foreign.join(", "));
  check(problems.length === 0, "no console errors: " + problems.join(" | "));
  console.log("all checks passed");
} catch (e) {
  console.log("FAILED:", e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
