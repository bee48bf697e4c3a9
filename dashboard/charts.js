// charts.js — small canvas charts for the overview: lines or stacked bars over time buckets.
"use strict";

const Charts = (() => {
  const AXIS = "#8a94a6", GRID = "#e4e8ef", TEXT = "#3b4455";

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function fmt(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    if (Number.isInteger(v)) return String(v);
    if (v < 0.1) return v.toFixed(3);
    if (v < 1) return v.toFixed(2);
    return v < 10 ? v.toFixed(1) : v.toFixed(0);
  }

  function timeLabel(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // opts: {labels: [iso...], series: [{name, color, values}], kind: "line"|"bar", unit, max}
  function draw(canvas, opts) {
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 480, cssH = canvas.clientHeight || 200;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = "11px system-ui, sans-serif";
    const left = 40, right = 8, top = 22, bottom = 20;
    const w = cssW - left - right, h = cssH - top - bottom;
    const n = opts.labels.length;
    const stacked = opts.kind === "bar";
    let maxV = 0;
    for (let i = 0; i < n; i++) {
      if (stacked) maxV = Math.max(maxV, opts.series.reduce((s, se) => s + (se.values[i] || 0), 0));
      else for (const se of opts.series) maxV = Math.max(maxV, se.values[i] || 0);
    }
    const max = opts.max || niceMax(maxV);
    // grid and y labels
    ctx.strokeStyle = GRID; ctx.fillStyle = AXIS; ctx.lineWidth = 1;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let k = 0; k <= 4; k++) {
      const y = top + h - (h * k) / 4;
      ctx.beginPath(); ctx.moveTo(left, Math.round(y) + 0.5); ctx.lineTo(left + w, Math.round(y) + 0.5); ctx.stroke();
      ctx.fillText(fmt((max * k) / 4) + (opts.unit || ""), left - 4, y);
    }
    // x labels: about five
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    const step = Math.max(1, Math.ceil(n / 5));
    for (let i = 0; i < n; i += step) ctx.fillText(timeLabel(opts.labels[i]), left + ((i + 0.5) * w) / n, top + h + 4);
    const x = (i) => left + ((i + 0.5) * w) / n;
    const y = (v) => top + h - (h * Math.min(v, max)) / max;
    if (stacked) {
      const bw = Math.max(1, (w / n) * 0.8);
      for (let i = 0; i < n; i++) {
        let base = 0;
        for (const se of opts.series) {
          const v = se.values[i] || 0;
          if (v <= 0) continue;
          ctx.fillStyle = se.color;
          ctx.fillRect(x(i) - bw / 2, y(base + v), bw, y(base) - y(base + v));
          base += v;
        }
      }
    } else {
      for (const se of opts.series) {
        ctx.strokeStyle = se.color; ctx.lineWidth = 2; ctx.beginPath();
        let started = false;
        for (let i = 0; i < n; i++) {
          const v = se.values[i];
          if (v === null || v === undefined) { started = false; continue; }
          if (!started) { ctx.moveTo(x(i), y(v)); started = true; } else ctx.lineTo(x(i), y(v));
        }
        ctx.stroke();
        // Dots too: a lone point (one busy bucket) draws no line segment.
        ctx.fillStyle = se.color;
        for (let i = 0; i < n; i++) {
          const v = se.values[i];
          if (v === null || v === undefined) continue;
          const lone = (i === 0 || se.values[i - 1] == null) && (i === n - 1 || se.values[i + 1] == null);
          if (lone || n <= 60) { ctx.beginPath(); ctx.arc(x(i), y(v), lone ? 3 : 1.5, 0, 2 * Math.PI); ctx.fill(); }
        }
      }
    }
    // legend
    ctx.textAlign = "left"; ctx.textBaseline = "middle";
    let lx = left;
    for (const se of opts.series) {
      ctx.fillStyle = se.color; ctx.fillRect(lx, 6, 10, 10);
      ctx.fillStyle = TEXT; ctx.fillText(se.name, lx + 14, 11);
      lx += 24 + ctx.measureText(se.name).width;
    }
  }

  return { draw };
})();
