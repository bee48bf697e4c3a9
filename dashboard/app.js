// app.js — the GenPulse dashboard: sign-in, pages (overview, tasks, task, failed, workers) and
// live updates. Plain DOM, no framework: everything the page needs is served by the binary.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const KEY_STORE = "genpulse.apiKey";

const state = {
  account: null,   // GET /v1/account
  admin: false,
  csrf: null,      // session sign-in: the token writes must echo
  taskTypes: [],
  live: null,      // the every-task stream (AbortController)
  taskStream: null,
  page: null,
  tasks: new Map(), // id → task row shown on the tasks page
  tasksCursor: null,
  refreshTimer: null,
};

// ---------------------------------------------------------------- API

function authHeaders(write) {
  const h = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h.Authorization = "Bearer " + key;
  if (write && state.csrf) h["X-CSRF-Token"] = state.csrf;
  return h;
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    const details = (e.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
    super((e.message || `HTTP ${status}`) + (details ? ` (${details})` : ""));
    this.status = status;
    this.code = e.code;
  }
}

async function api(method, path, body) {
  const write = method !== "GET" && method !== "HEAD";
  const opts = { method, headers: authHeaders(write), credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// Server-Sent Events over fetch: EventSource cannot send an Authorization header.
function sse(path, onEvent, onState) {
  const ctl = new AbortController();
  let stopped = false;
  (async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        const res = await fetch(path, { headers: authHeaders(false), credentials: "same-origin", signal: ctl.signal });
        if (!res.ok) throw new ApiError(res.status, null);
        onState && onState(true);
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let type = "message", data = "", id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) type = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
              else if (line.startsWith("id: ")) id = line.slice(4);
            }
            if (data) {
              try { onEvent(type, JSON.parse(data), id); } catch (e) { console.error(e); }
            }
          }
        }
        if (onState && onState(false) === "done") return; // a finished task's stream ends
      } catch (e) {
        if (stopped) return;
        onState && onState(false);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
  return { stop() { stopped = true; ctl.abort(); } };
}

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString([], { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function badge(status) { return el("span", { class: "badge " + status }, status); }

function progressBar(p) {
  const bar = el("div", { class: "progress" }, el("div"));
  setProgress(bar, p);
  return bar;
}
function setProgress(bar, p) {
  const inner = bar.firstChild;
  inner.style.width = Math.max(0, Math.min(100, p || 0)) + "%";
  bar.title = (p || 0) + "%";
  bar.dataset.progress = p || 0;
}

// UUIDv7s share their leading time bits: the random tail tells tasks apart.
function shortId(id) { return id.slice(0, 4) + "…" + id.slice(-8); }

function taskLink(id) { return el("a", { href: "#/task/" + id, class: "mono", title: id }, shortId(id)); }

// ---------------------------------------------------------------- sign-in

async function signIn() {
  try {
    state.account = await api("GET", "/v1/account");
  } catch (e) {
    state.account = null;
    if (e.status === 401 || e.status === 403) return showSignIn(sessionStorage.getItem(KEY_STORE) ? e.message : "");
    return showSignIn("the server did not answer: " + e.message);
  }
  const a = state.account;
  state.admin = (a.scopes || []).includes("admin");
  state.csrf = a.csrf_token || null;
  $("#signin").hidden = true;
  $("#main").hidden = false;
  $("#nav").hidden = false;
  $("#nav-workers").hidden = !state.admin;
  document.body.classList.toggle("is-admin", state.admin);
  const u = a.user || {};
  $("#who").textContent = `${u.email || u.display_name || u.id} · ${a.authenticated_by}${state.admin ? " · admin" : ""}`;
  $("#signout").hidden = a.authenticated_by === "local";
  try {
    state.taskTypes = (await api("GET", "/v1/task-types")).data || [];
  } catch (e) { state.taskTypes = []; }
  fillTaskTypes();
  startLive();
  route();
}

async function showSignIn(message) {
  $("#main").hidden = true;
  $("#nav").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message || "";
  // Offer the identity session only when the server has an issuer configured.
  try {
    const res = await fetch("/v1/auth/login?return_to=/dashboard", { redirect: "manual", credentials: "same-origin" });
    $("#signin-sso-box").hidden = !(res.type === "opaqueredirect" || res.status === 302);
  } catch (e) { $("#signin-sso-box").hidden = true; }
}

$("#signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("#signin-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  $("#signin-key").value = "";
  signIn();
});

$("#signout").addEventListener("click", async () => {
  const viaSession = state.account && state.account.authenticated_by !== "api_key";
  sessionStorage.removeItem(KEY_STORE);
  if (viaSession) { try { await api("POST", "/v1/auth/logout"); } catch (e) { /* already gone */ } }
  if (state.live) state.live.stop();
  state.csrf = null;
  showSignIn("");
});

// ---------------------------------------------------------------- live stream

const liveListeners = new Set();

function startLive() {
  if (state.live) state.live.stop();
  const badgeEl = $("#live");
  state.live = sse("/v1/events", (type, snap) => {
    for (const fn of liveListeners) fn(type, snap);
  }, (open) => {
    badgeEl.textContent = open ? "live" : "reconnecting";
    badgeEl.className = "live " + (open ? "on" : "off");
  });
}

// ---------------------------------------------------------------- router

function route() {
  if (!state.account) return;
  const hash = location.hash || "#/overview";
  const [, page, arg] = hash.match(/^#\/([a-z]+)\/?(.*)$/) || [, "overview", ""];
  for (const s of document.querySelectorAll(".page")) s.hidden = true;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page || (page === "task" && a.dataset.page === "tasks"));
  clearInterval(state.refreshTimer);
  if (state.taskStream) { state.taskStream.stop(); state.taskStream = null; }
  liveListeners.clear();
  state.page = page;
  const pages = { overview: showOverview, tasks: showTasks, task: showTask, failed: showFailed, workers: showWorkers };
  (pages[page] || showOverview)(decodeURIComponent(arg || ""));
}
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- overview

async function loadStats() {
  const [win, bucket] = $("#stats-window").value.split(",");
  let s;
  try {
    s = await api("GET", `/v1/stats?window=${win}&bucket=${bucket}`);
  } catch (e) {
    $("#stats-cards").replaceChildren(el("p", { class: "error" }, e.message));
    return;
  }
  const b = s.buckets, labels = b.map((x) => x.t);
  const sum = (k) => b.reduce((t, x) => t + x[k], 0);
  const done = sum("succeeded") + sum("failed");
  const last = b[b.length - 1] || {};
  const waits = b.filter((x) => x.started > 0);
  const avgWait = waits.length ? waits.reduce((t, x) => t + x.wait_avg_s * x.started, 0) / waits.reduce((t, x) => t + x.started, 0) : 0;
  const card = (label, value, cls) => el("div", { class: "card " + (cls || "") }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  $("#stats-cards").replaceChildren(
    card("created", sum("created")),
    card("succeeded", sum("succeeded"), "ok"),
    card("failed", sum("failed"), sum("failed") ? "bad" : ""),
    card("failure rate", done ? ((100 * sum("failed")) / done).toFixed(1) + "%" : "—"),
    card("pending now", last.pending ?? 0),
    card("running now", last.processing ?? 0),
    card("avg queue wait", avgWait.toFixed(2) + " s"),
    card("scope", s.all_users ? "all users" : "your tasks"),
  );
  Charts.draw($("#chart-throughput"), { kind: "bar", labels, series: [
    { name: "succeeded", color: "#2f9e62", values: b.map((x) => x.succeeded) },
    { name: "failed", color: "#d64545", values: b.map((x) => x.failed) },
    { name: "canceled", color: "#9aa3b2", values: b.map((x) => x.canceled) },
  ] });
  Charts.draw($("#chart-failure"), { kind: "line", labels, unit: "%", max: 100, series: [
    { name: "failed / finished", color: "#d64545", values: b.map((x) => (x.succeeded + x.failed ? (100 * x.failed) / (x.succeeded + x.failed) : null)) },
  ] });
  Charts.draw($("#chart-depth"), { kind: "line", labels, series: [
    { name: "pending", color: "#e09b2d", values: b.map((x) => x.pending) },
    { name: "processing", color: "#3973d6", values: b.map((x) => x.processing) },
  ] });
  Charts.draw($("#chart-wait"), { kind: "line", labels, unit: "s", series: [
    { name: "p50", color: "#3973d6", values: b.map((x) => (x.started ? x.wait_p50_s : null)) },
    { name: "average", color: "#8e5bd6", values: b.map((x) => (x.started ? x.wait_avg_s : null)) },
  ] });
}

function showOverview() {
  $("#page-overview").hidden = false;
  loadStats();
  state.refreshTimer = setInterval(loadStats, 10000);
  let pending = null; // events arrive in bursts: redraw at most once a second
  liveListeners.add(() => { if (!pending) pending = setTimeout(() => { pending = null; loadStats(); }, 1000); });
}
$("#stats-window").addEventListener("change", loadStats);
window.addEventListener("resize", () => { if (state.page === "overview") loadStats(); });

// ---------------------------------------------------------------- tasks

function fillTaskTypes() {
  const types = state.taskTypes;
  const search = $("#search-type"), submit = $("#submit-type");
  search.replaceChildren(el("option", { value: "" }, "any"), ...types.map((t) => el("option", {}, t.name)));
  submit.replaceChildren(...types.map((t) => el("option", {}, t.name)));
  const pick = types.find((t) => t.name === "text-to-image");
  if (pick) submit.value = pick.name;
  fillProviders();
}

function fillProviders() {
  const t = state.taskTypes.find((x) => x.name === $("#submit-type").value);
  const sel = $("#submit-provider");
  sel.replaceChildren(...((t && t.providers) || []).map((p) => el("option", {}, p.name)));
  if (t) sel.value = t.default_provider;
}
$("#submit-type").addEventListener("change", fillProviders);

$("#submit-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const msg = $("#submit-msg");
  let params;
  try { params = JSON.parse($("#submit-params").value || "{}"); } catch (e) { msg.textContent = "params: " + e.message; msg.className = "error"; return; }
  try {
    // The provider is one of the params (docs/api.md, POST /v1/tasks).
    if (!params.provider && $("#submit-provider").value) params.provider = $("#submit-provider").value;
    const t = await api("POST", "/v1/tasks", { task_type: $("#submit-type").value, params });
    msg.className = "";
    msg.replaceChildren("submitted ", taskLink(t.id));
    addTaskRow(t, true);
  } catch (e) { msg.textContent = e.message; msg.className = "error"; }
});

function searchQuery() {
  const f = new FormData($("#search-form"));
  const q = new URLSearchParams();
  for (const [k, v] of f.entries()) if (String(v).trim()) q.set(k, String(v).trim());
  return q;
}

function taskRow(t) {
  return el("tr", { "data-id": t.id },
    el("td", {}, taskLink(t.id)), el("td", {}, t.task_type), el("td", {}, t.provider),
    el("td", { class: "status" }, badge(t.status)), el("td", {}, progressBar(t.progress)), el("td", {}, when(t.created_at)));
}

function addTaskRow(t, top) {
  const body = $("#tasks-table tbody");
  const old = body.querySelector(`tr[data-id="${t.id}"]`);
  const row = taskRow(t);
  state.tasks.set(t.id, t);
  for (const e of body.querySelectorAll("tr.empty")) e.remove();
  if (old) old.replaceWith(row);
  else if (top) body.prepend(row);
  else body.append(row);
}

function updateTaskRow(snap) {
  const row = $(`#tasks-table tbody tr[data-id="${snap.id}"]`);
  if (!row) return false;
  row.querySelector(".status").replaceChildren(badge(snap.status));
  setProgress(row.querySelector(".progress"), snap.progress);
  return true;
}

async function loadTasks(more) {
  const q = searchQuery();
  q.set("limit", "50");
  if (more && state.tasksCursor) q.set("cursor", state.tasksCursor);
  $("#tasks-error").textContent = "";
  try {
    const page = await api("GET", "/v1/tasks?" + q.toString());
    if (!more) { $("#tasks-table tbody").replaceChildren(); state.tasks.clear(); }
    for (const t of page.data) addTaskRow(t, false);
    state.tasksCursor = page.next_cursor;
    $("#tasks-more").hidden = !page.next_cursor;
    if (!page.data.length && !more) $("#tasks-table tbody").append(el("tr", { class: "empty" }, el("td", { colspan: 6, class: "hint" }, "no task matches")));
  } catch (e) { $("#tasks-error").textContent = e.message; }
}

function showTasks() {
  $("#page-tasks").hidden = false;
  loadTasks(false);
  liveListeners.add(async (type, snap) => {
    if (updateTaskRow(snap)) return;
    // A task this page has not shown: show it if the search has no filter (newest first).
    if ([...searchQuery().keys()].length) return;
    try { addTaskRow(await api("GET", "/v1/tasks/" + snap.id), true); } catch (e) { /* gone */ }
  });
}
$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = new FormData(ev.target).get("id");
  if (id && /^[0-9a-f-]{36}$/.test(String(id).trim())) { location.hash = "#/task/" + String(id).trim(); return; }
  loadTasks(false);
});
$("#search-form").addEventListener("reset", () => setTimeout(() => loadTasks(false), 0));
$("#tasks-more").addEventListener("click", () => loadTasks(true));

// ---------------------------------------------------------------- one task

function renderOutputs(t) {
  const box = $("#task-outputs");
  const assets = (t.result && t.result.assets) || [];
  if (!assets.length) {
    box.replaceChildren(el("p", { class: "hint" }, t.status === "succeeded" ? "no files" : ["failed", "canceled"].includes(t.status) ? "none" : "none yet"));
    if (t.result && Object.keys(t.result).length) box.append(el("pre", {}, JSON.stringify(t.result, null, 2)));
    return;
  }
  box.replaceChildren(...assets.map((a) => {
    const type = a.content_type || "";
    const fig = el("figure", { class: "output" });
    if (type.startsWith("image/")) {
      const frame = el("div", { class: "media-frame" });
      if (a.width && a.height) frame.style.aspectRatio = `${a.width} / ${a.height}`;
      const hash = a.blurhash || (assets.length === 1 && t.result.blurhash);
      if (hash) {
        const c = el("canvas", { class: "blurhash", "data-blurhash": hash });
        if (BlurHash.paint(c, hash)) frame.append(c);
      }
      const img = el("img", { alt: a.name, loading: "lazy" });
      img.addEventListener("load", () => frame.classList.add("loaded"));
      // The placeholder shows first; the image replaces it once it has arrived.
      img.src = a.url;
      frame.append(img);
      fig.append(el("a", { href: a.url, target: "_blank", rel: "noopener" }, frame));
    } else if (type.startsWith("video/")) {
      fig.append(el("video", { src: a.url, controls: true, preload: "metadata", poster: a.thumbnail_url || undefined }));
    } else if (type.startsWith("audio/")) {
      fig.append(el("audio", { src: a.url, controls: true, preload: "metadata" }));
    } else {
      fig.append(el("a", { href: a.url, target: "_blank", rel: "noopener" }, a.name));
    }
    const facts = [type, a.width && a.height ? `${a.width}×${a.height}` : null, a.duration ? `${a.duration} s` : null, a.bytes ? `${Math.round(a.bytes / 1024)} KiB` : null].filter(Boolean);
    fig.append(el("figcaption", {}, el("a", { href: a.url, target: "_blank", rel: "noopener" }, a.name), " · ", facts.join(" · ")));
    return fig;
  }));
}

function renderTask(t) {
  $("#task-id").textContent = t.id;
  const facts = [["status", badge(t.status)], ["type", t.task_type], ["provider", t.provider], ["attempts", `${t.attempts} (max retries ${t.max_retries})`],
    ["priority", t.priority], ["created", when(t.created_at)], ["started", when(t.started_at)], ["completed", when(t.completed_at)]];
  if (t.error) facts.push(["error", el("span", { class: "error" }, `${t.error.code}: ${t.error.message}`)]);
  $("#task-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  setProgress($("#task-progress").parentNode, t.progress);
  $("#task-step").textContent = t.step ? `step: ${t.step}` : "";
  $("#task-params").textContent = JSON.stringify(t.params, null, 2);
  $("#task-retry").hidden = t.status !== "failed";
  $("#task-cancel").hidden = t.status !== "pending" && t.status !== "processing";
  renderOutputs(t);
}

async function loadAttempts(id) {
  const body = $("#task-attempts tbody");
  try {
    const a = await api("GET", `/v1/tasks/${id}/attempts`);
    body.replaceChildren(...a.data.map((x) => el("tr", {},
      el("td", {}, x.attempt), el("td", { class: "mono" }, x.worker_id || "—"), el("td", {}, when(x.started_at)),
      el("td", {}, x.duration_s !== null && x.duration_s !== undefined ? x.duration_s.toFixed(2) + " s" : "—"),
      el("td", {}, x.status ? badge(x.status) : "—"), el("td", {}, x.error ? `${x.error.code}: ${x.error.message}` : ""))));
    if (!a.data.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "hint" }, "not started yet")));
  } catch (e) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "hint" }, e.status === 404 || e.status === 405 ? "this server keeps no attempt history" : e.message)));
  }
}

let currentTask = null;

async function showTask(id) {
  $("#page-task").hidden = false;
  $("#task-error").textContent = "";
  $("#task-events").replaceChildren();
  let t;
  try { t = await api("GET", "/v1/tasks/" + id); } catch (e) {
    $("#task-error").textContent = e.message;
    return;
  }
  currentTask = t;
  renderTask(t);
  loadAttempts(id);
  const timeline = $("#task-events");
  state.taskStream = sse(`/v1/tasks/${id}/events`, async (type, snap, seq) => {
    timeline.append(el("li", { class: snap.status },
      el("time", {}, new Date().toLocaleTimeString()), " ", el("b", {}, type), " ", badge(snap.status),
      ` ${snap.progress}%`, snap.step ? ` · ${snap.step}` : "", snap.error ? ` · ${snap.error.code}` : "", seq && seq !== "0" ? el("span", { class: "hint" }, ` #${seq}`) : ""));
    if (type === "status" || snap.status !== currentTask.status || snap.result) {
      try { currentTask = await api("GET", "/v1/tasks/" + id); renderTask(currentTask); loadAttempts(id); } catch (e) { /* keep */ }
    } else {
      setProgress($("#task-progress").parentNode, snap.progress);
      $("#task-step").textContent = snap.step ? `step: ${snap.step}` : "";
    }
  }, (open) => (open || !["succeeded", "failed", "canceled"].includes(currentTask.status) ? undefined : "done"));
}

async function act(id, what) {
  return api("POST", `/v1/tasks/${id}/${what}`);
}

$("#task-retry").addEventListener("click", async () => {
  try { renderTask(currentTask = await act(currentTask.id, "retry")); route(); } catch (e) { $("#task-error").textContent = e.message; }
});
$("#task-cancel").addEventListener("click", async () => {
  try { renderTask(currentTask = await act(currentTask.id, "cancel")); } catch (e) { $("#task-error").textContent = e.message; }
});

// ---------------------------------------------------------------- failed tasks

async function loadFailed() {
  const code = $("#failed-code").value;
  const q = new URLSearchParams({ status: "failed", limit: "100" });
  if (code) q.set("error_code", code);
  const body = $("#failed-table tbody");
  try {
    const page = await api("GET", "/v1/tasks?" + q.toString());
    const codes = new Set([...$("#failed-code").options].map((o) => o.value).filter(Boolean));
    for (const t of page.data) if (t.error && !codes.has(t.error.code)) { codes.add(t.error.code); $("#failed-code").append(el("option", {}, t.error.code)); }
    body.replaceChildren(...page.data.map((t) => el("tr", { "data-id": t.id },
      el("td", {}, el("input", { type: "checkbox", class: "pick", value: t.id, "aria-label": "select " + t.id })),
      el("td", {}, taskLink(t.id)), el("td", {}, t.task_type), el("td", {}, t.provider),
      el("td", {}, t.error ? el("span", { title: t.error.message }, el("code", {}, t.error.code), " ", t.error.message) : ""),
      el("td", {}, t.attempts), el("td", {}, when(t.completed_at)),
      el("td", {}, el("button", { class: "small", onclick: () => bulk("retry", [t.id]) }, "Retry")))));
    if (!page.data.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "hint" }, "no failed task" + (code ? " with this code" : ""))));
  } catch (e) { $("#failed-msg").textContent = e.message; }
  $("#failed-all").checked = false;
  pickChanged();
}

function picked() { return [...document.querySelectorAll("#failed-table .pick:checked")].map((c) => c.value); }
function pickChanged() {
  const n = picked().length;
  $("#failed-retry").disabled = n === 0;
  $("#failed-cancel").disabled = n === 0;
}

async function bulk(what, ids) {
  const msg = $("#failed-msg");
  msg.textContent = `${what}: ${ids.length} task(s)…`;
  const results = await Promise.allSettled(ids.map((id) => act(id, what)));
  const ok = results.filter((r) => r.status === "fulfilled").length;
  const bad = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  msg.textContent = `${what}: ${ok} done` + (bad.length ? `, ${bad.length} refused (${[...new Set(bad)].join("; ")})` : "");
  loadFailed();
}

function showFailed() {
  $("#page-failed").hidden = false;
  $("#failed-msg").textContent = "";
  loadFailed();
  let pending = null;
  liveListeners.add((type, snap) => {
    if (type !== "status") return;
    if (!pending) pending = setTimeout(() => { pending = null; loadFailed(); }, 500);
  });
}
$("#failed-code").addEventListener("change", loadFailed);
$("#failed-table").addEventListener("change", (ev) => { if (ev.target.classList.contains("pick")) pickChanged(); });
$("#failed-all").addEventListener("change", (ev) => {
  for (const c of document.querySelectorAll("#failed-table .pick")) c.checked = ev.target.checked;
  pickChanged();
});
$("#failed-retry").addEventListener("click", () => bulk("retry", picked()));
$("#failed-cancel").addEventListener("click", () => bulk("cancel", picked()));

// ---------------------------------------------------------------- workers

async function loadWorkers() {
  const body = $("#workers-table tbody");
  try {
    const w = await api("GET", "/v1/workers");
    $("#workers-error").textContent = "";
    const alive = w.data.filter((x) => x.status === "alive").length;
    $("#workers-summary").textContent = `${alive} alive, ${w.data.length - alive} lost`;
    body.replaceChildren(...w.data.map((x) => el("tr", { "data-id": x.id, class: x.status },
      el("td", { class: "mono", title: x.id }, x.id), el("td", { class: "worker-status" }, badge(x.status)), el("td", {}, x.host), el("td", {}, x.pid),
      el("td", {}, x.version), el("td", {}, `${x.busy}/${x.concurrency}`), el("td", {}, (x.queues || []).join(", ")),
      el("td", {}, ago(x.heartbeat_age_s)), el("td", {}, ...(x.running || []).flatMap((id) => [taskLink(id), " "])))));
    if (!w.data.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "hint" }, "no worker has registered")));
  } catch (e) {
    $("#workers-error").textContent = e.status === 404 ? "this server does not list workers" : e.message;
  }
}

function showWorkers() {
  $("#page-workers").hidden = false;
  loadWorkers();
  state.refreshTimer = setInterval(loadWorkers, 2000);
}

signIn();
