// The producer desk page: sign in, the stage timeline (SVG), booking actions, the outage
// re-plan preview and the render farm. No build step; talks to /api/v1 (docs/desk-api.md).
"use strict";

(function () {
  const I = window.I18N;
  const t = (key, params) => I.t(key, params);
  const API = "/api/v1";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;
  const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
  const CSRF_KEY = "stagectl.desk.csrf";

  const state = {
    user: null,
    role: null,
    csrf: null,
    view: "timeline",
    span: "week",
    date: null, // "YYYY-MM-DD", first day shown (in the first site's zone)
    stages: [],
    sites: [],
    bookings: [],
    waiting: [],
    selected: null,
    history: [],
    outagePreview: null,
    farm: null,
    lastError: null,
    lastFlash: null,
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c) node.append(c);
    return node;
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || `HTTP ${status}`);
      this.status = status;
      this.code = err.code || "";
      this.messageZh = err.message_zh || "";
      this.details = err.details || {};
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (UNSAFE.has(method) && state.csrf) headers["X-CSRF-Token"] = state.csrf;
    let resp;
    try {
      resp = await fetch(API + path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const err = new ApiError(0, null);
      err.network = String(e && e.message ? e.message : e);
      throw err;
    }
    let data = null;
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!resp.ok) {
      const err = new ApiError(resp.status, data);
      if (resp.status === 401 && path !== "/session") signedOut(true);
      throw err;
    }
    return data;
  }

  // ------------------------------------------------------------------ times

  const offsetCache = new Map();

  // Minutes east of UTC of `zone` at instant `ms`.
  function zoneOffset(ms, zone) {
    const key = zone + "|" + Math.floor(ms / 900000);
    if (offsetCache.has(key)) return offsetCache.get(key);
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(ms))) parts[p.type] = p.value;
    const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day,
      +parts.hour % 24, +parts.minute, +parts.second);
    const off = Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
    offsetCache.set(key, off);
    return off;
  }

  function offsetText(minutes) {
    const sign = minutes < 0 ? "-" : "+";
    const m = Math.abs(minutes);
    return `UTC${sign}${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  }

  // "Asia/Shanghai (UTC+08:00)"; full-width brackets in Chinese.
  function zoneName(zone, ms) {
    const off = offsetText(zoneOffset(ms === undefined ? Date.now() : ms, zone));
    return I.lang === "zh" ? `${zone}（${off}）` : `${zone} (${off})`;
  }

  // UTC ms of wall-clock time (y, m, d, h, min) in `zone`.
  function wallToUtc(y, mo, d, h, mi, zone) {
    const guess = Date.UTC(y, mo - 1, d, h, mi);
    let ms = guess - zoneOffset(guess, zone) * 60000;
    ms = guess - zoneOffset(ms, zone) * 60000;
    return ms;
  }

  function localParts(ms, zone) {
    const off = zoneOffset(ms, zone);
    const d = new Date(ms + off * 60000);
    return { y: d.getUTCFullYear(), m: d.getUTCMonth() + 1, d: d.getUTCDate(),
      h: d.getUTCHours(), mi: d.getUTCMinutes(), wd: d.getUTCDay(), off };
  }

  const pad = (n) => String(n).padStart(2, "0");

  // "2031-03-04T08:00:00+08:00" for a wall time in `zone` (the API's form).
  function isoInZone(ms, zone) {
    const p = localParts(ms, zone);
    const o = offsetText(p.off).slice(3);
    return `${p.y}-${pad(p.m)}-${pad(p.d)}T${pad(p.h)}:${pad(p.mi)}:00${o}`;
  }

  // A datetime-local value ("2031-03-04T08:00") read in `zone`, as ISO with offset.
  function localInputToIso(value, zone) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return null;
    if (!zone) return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:00`;
    return isoInZone(wallToUtc(+m[1], +m[2], +m[3], +m[4], +m[5], zone), zone);
  }

  function fmtTime(value, zone, withZone) {
    if (value === null || value === undefined || value === "") return t("dash");
    const ms = typeof value === "number" ? value : Date.parse(value);
    if (Number.isNaN(ms)) return String(value);
    const z = zone || "UTC";
    // the year is written when it is not this year's (a 2031 booking, a 2020 deadline)
    const otherYear = localParts(ms, z).y !== localParts(Date.now(), z).y;
    const text = new Intl.DateTimeFormat(I.lang === "zh" ? "zh-CN" : "en-GB", {
      timeZone: z, weekday: "short", month: "short", day: "numeric",
      year: otherYear ? "numeric" : undefined,
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).format(new Date(ms));
    return withZone ? `${text} ${zoneName(z, ms)}` : text;
  }

  function fmtDay(ms, zone, withWeekday) {
    return new Intl.DateTimeFormat(I.lang === "zh" ? "zh-CN" : "en-GB", {
      timeZone: zone, month: "short", day: "numeric",
      weekday: withWeekday ? "short" : undefined,
    }).format(new Date(ms));
  }

  function fmtDuration(minutes) {
    if (minutes === null || minutes === undefined) return t("dash");
    if (minutes % 60 === 0) return t("unit.hours", { n: minutes / 60 });
    if (minutes > 120) return t("unit.hours", { n: Math.round(minutes / 6) / 10 });
    return t("unit.minutes", { n: minutes });
  }

  // A length of time in words: "45 min", "3.5 h", "2 days".
  function fmtSpan(ms) {
    const minutes = Math.max(0, Math.round(ms / 60000));
    if (minutes < 60) return t("unit.minutes", { n: minutes });
    if (minutes < 48 * 60) return t("unit.hours", { n: Math.round(minutes / 30) / 2 });
    const days = minutes / 1440;
    return t("unit.days", { n: days < 10 ? Math.round(days * 10) / 10 : Math.round(days) });
  }

  function actionText(action) {
    const key = "action." + action;
    return t(key) === key ? action : t(key);
  }

  function fmtCny(value) {
    if (value === null || value === undefined || Number.isNaN(+value)) return t("dash");
    const v = +value;
    const digits = Math.abs(v) >= 1000 ? 0 : 2;
    return t("cny", { n: v.toLocaleString(I.lang === "zh" ? "zh-CN" : "en-GB", {
      minimumFractionDigits: digits, maximumFractionDigits: digits }) });
  }

  // ------------------------------------------------------------------ model helpers

  function primaryZone() {
    if (state.sites.length) return state.sites[0].timezone;
    if (state.stages.length) return state.stages[0].timezone;
    return "Asia/Shanghai";
  }

  function stageById(id) {
    return state.stages.find((s) => s.id === id) || null;
  }

  function zoneOfBooking(b) {
    if (b.timezone) return b.timezone;
    const s = stageById(b.stage);
    return s ? s.timezone : primaryZone();
  }

  function statusText(b) {
    if (b.status === "hold" && b.hold_rank) return t("status.hold_rank", { rank: b.hold_rank });
    const key = "status." + b.status;
    const txt = t(key);
    return txt === key ? b.status : txt;
  }

  function stageOutages(stage) {
    return (stage.outages || []).map((o) => {
      if (Array.isArray(o)) return { start: o[0], end: o[1], reason: o[2] || "" };
      return { start: o.start, end: o.end, reason: o.reason || "" };
    }).filter((o) => o.start && o.end);
  }

  function rangeMs() {
    const zone = primaryZone();
    const [y, m, d] = state.date.split("-").map(Number);
    const from = wallToUtc(y, m, d, 0, 0, zone);
    let to;
    if (state.span === "week") to = wallToUtc(y, m, d + 7, 0, 0, zone);
    else to = wallToUtc(y, m + 1, d, 0, 0, zone);
    return { from, to };
  }

  function todayIn(zone) {
    const p = localParts(Date.now(), zone);
    return `${p.y}-${pad(p.m)}-${pad(p.d)}`;
  }

  function shiftDate(days, months) {
    const [y, m, d] = state.date.split("-").map(Number);
    const dt = new Date(Date.UTC(y, m - 1 + (months || 0), d + (days || 0)));
    state.date = `${dt.getUTCFullYear()}-${pad(dt.getUTCMonth() + 1)}-${pad(dt.getUTCDate())}`;
  }

  // ------------------------------------------------------------------ messages

  function clearMessages() {
    state.lastError = null;
    state.lastFlash = null;
    renderMessages();
  }

  function flash(key, params, notes) {
    state.lastFlash = { key, params, notes: notes || [] };
    state.lastError = null;
    renderMessages();
  }

  function showError(err) {
    state.lastError = err;
    state.lastFlash = null;
    renderMessages();
  }

  function explanationOf(err) {
    const d = err.details || {};
    let items = I.lang === "zh" && d.explanation_zh ? d.explanation_zh : d.explanation;
    if (typeof items === "string") items = [items];
    return Array.isArray(items) ? items.map(String) : [];
  }

  function errorMessage(err) {
    if (err.network) return t("err.network", { message: err.network });
    if (I.lang === "zh" && err.messageZh) return err.messageZh;
    if (err.message && !/^HTTP \d+$/.test(err.message)) return err.message;
    return t("err.unknown", { status: err.status });
  }

  function renderMessages() {
    const box = $("error");
    box.replaceChildren();
    const err = state.lastError;
    if (err) {
      let why = explanationOf(err);
      const d = err.details || {};
      if (!why.length && Array.isArray(d.errors)) {
        why = d.errors.map((e) => (typeof e === "string" ? e
          : [e.field, e.reason].filter(Boolean).join(": ")));
      }
      const message = errorMessage(err);
      // "refused: <the first sentence>" says nothing the list does not
      const repeats = why.length && why.some((w) => message.includes(w));
      box.append(el("div", { class: "message error", "data-code": err.code || null },
        el("strong", { text: t("err.title") + (I.lang === "zh" ? "：" : ": ") }),
        repeats ? null : el("span", { class: "err-message", text: message }),
        d.field ? el("div", { class: "field", text: t("err.field", { field: d.field }) }) : null,
        why.length ? el("div", { class: "why" }, el("span", { text: t("err.why") }),
          el("ul", { class: "explanation" }, why.map((w) => el("li", { text: w })))) : null));
    }
    const fbox = $("flash");
    fbox.replaceChildren();
    const f = state.lastFlash;
    if (f) {
      fbox.append(el("div", { class: "message ok" },
        el("span", { text: t(f.key, f.params) }),
        f.notes.length ? el("ul", { class: "notes" },
          f.notes.map((n) => el("li", { text: n }))) : null));
    }
  }

  function notesOf(reply) {
    let notes = reply && (I.lang === "zh" && reply.notes_zh ? reply.notes_zh : reply.notes);
    if (typeof notes === "string") notes = [notes];
    return Array.isArray(notes) ? notes.map(String) : [];
  }

  // ------------------------------------------------------------------ session

  async function login(ev) {
    ev.preventDefault();
    clearMessages();
    const btn = $("login-submit");
    btn.disabled = true;
    btn.textContent = t("login.busy");
    try {
      const reply = await api("POST", "/session", {
        user: $("login-user").value, password: $("login-password").value,
      });
      $("login-password").value = "";
      signedIn(reply);
      clearMessages();
      await loadAll();
    } catch (err) {
      showError(err);
    } finally {
      btn.disabled = false;
      btn.textContent = t("login.submit");
    }
  }

  function signedIn(reply) {
    state.user = reply.user;
    state.role = reply.role;
    if (reply.csrf) {
      state.csrf = reply.csrf;
      try {
        window.sessionStorage.setItem(CSRF_KEY, reply.csrf);
      } catch (e) {
        // kept in memory only
      }
    }
    renderChrome();
  }

  function signedOut(expired) {
    state.user = null;
    state.role = null;
    state.csrf = null;
    try {
      window.sessionStorage.removeItem(CSRF_KEY);
    } catch (e) {
      // nothing stored
    }
    renderChrome();
    if (expired) flash("login.expired");
  }

  async function logout() {
    try {
      await api("DELETE", "/session");
    } catch (err) {
      // already gone
    }
    signedOut(false);
    clearMessages();
  }

  async function resume() {
    try {
      state.csrf = window.sessionStorage.getItem(CSRF_KEY);
    } catch (e) {
      state.csrf = null;
    }
    try {
      const me = await fetch(API + "/me", { credentials: "same-origin",
        headers: { Accept: "application/json" } });
      if (!me.ok) throw new Error("not signed in");
      const reply = await me.json();
      // a new tab shares the cookie but not this tab's CSRF token: without one nothing
      // could be changed, so sign in again (a new session) unless the desk sends it
      if (!reply.csrf && !state.csrf) throw new Error("no CSRF token in this tab");
      signedIn(reply);
      await loadAll();
    } catch (e) {
      signedOut(false);
    }
  }

  function canChange() {
    return ["producer", "engineer", "admin"].includes(state.role);
  }

  // ------------------------------------------------------------------ loading

  async function loadAll() {
    const [stages, sites] = await Promise.all([
      api("GET", "/stages"),
      api("GET", "/sites").catch(() => null),
    ]);
    state.stages = Array.isArray(stages) ? stages : (stages && stages.stages) || [];
    if (Array.isArray(sites) && sites.length) {
      state.sites = sites;
    } else {
      const seen = new Map();
      for (const s of state.stages) {
        const key = s.site || "";
        if (!seen.has(key)) seen.set(key, { site: key, timezone: s.timezone, stages: [] });
        seen.get(key).stages.push(s.id);
      }
      state.sites = [...seen.values()];
    }
    if (!state.date) {
      const fromHash = /date=(\d{4}-\d{2}-\d{2})/.exec(location.hash);
      state.date = fromHash ? fromHash[1] : todayIn(primaryZone());
    }
    const spanHash = /span=(week|month)/.exec(location.hash);
    if (spanHash) state.span = spanHash[1];
    fillForms();
    await loadBookings();
  }

  async function loadBookings() {
    const { from, to } = rangeMs();
    const zone = primaryZone();
    $("timeline").setAttribute("aria-busy", "true");
    try {
      const q = `?from=${encodeURIComponent(isoInZone(from, zone))}` +
        `&to=${encodeURIComponent(isoInZone(to, zone))}`;
      const [inRange, all] = await Promise.all([
        api("GET", "/bookings" + q),
        api("GET", "/bookings?status=requested"),
      ]);
      // requests not yet placed are listed on their own, not in the range
      state.bookings = (Array.isArray(inRange) ? inRange : []).filter((b) => b.start && b.stage);
      state.waiting = (Array.isArray(all) ? all : []).filter((b) => !b.start || !b.stage);
      if (state.selected) {
        const fresh = state.bookings.concat(state.waiting).find((b) => b.id === state.selected.id);
        if (fresh) state.selected = fresh;
      }
    } catch (err) {
      showError(err);
    } finally {
      $("timeline").removeAttribute("aria-busy");
    }
    renderTimeline();
    renderTable();
    renderSelected();
  }

  async function loadFarm() {
    state.farm = { loading: true };
    renderFarm();
    try {
      const jobs = await api("GET", "/farm/jobs");
      let cost = null;
      try {
        cost = await api("GET", "/farm/cost");
      } catch (e) {
        cost = null;
      }
      state.farm = { jobs, cost };
    } catch (err) {
      state.farm = { error: err };
    }
    renderFarm();
  }

  // ------------------------------------------------------------------ chrome

  function renderChrome() {
    const signed = !!state.user;
    $("login").hidden = signed;
    $("nav").hidden = !signed;
    $("who").hidden = !signed;
    $("logout").hidden = !signed;
    $("view-timeline").hidden = !signed || state.view !== "timeline";
    $("view-farm").hidden = !signed || state.view !== "farm";
    if (signed) {
      const rk = "role." + state.role;
      const role = t(rk) === rk ? state.role : t(rk);
      $("who").textContent = t("user.signed_in", { user: state.user, role });
    }
    for (const b of document.querySelectorAll("#nav .tab")) {
      b.setAttribute("aria-pressed", String(b.dataset.view === state.view));
    }
    $("tl-week").setAttribute("aria-pressed", String(state.span === "week"));
    $("tl-month").setAttribute("aria-pressed", String(state.span === "month"));
    for (const id of ["req-form", "out-form"]) {
      $(id).hidden = signed && !canChange();
    }
  }

  function renderAll() {
    I.apply(document);
    renderChrome();
    renderMessages();
    if (!state.user) return;
    fillForms();
    renderTimeline();
    renderTable();
    renderSelected();
    renderOutagePreview();
    if (state.view === "farm") renderFarm();
  }

  function setView(view) {
    state.view = view;
    renderChrome();
    if (view === "farm") loadFarm();
  }

  // ------------------------------------------------------------------ timeline (SVG)

  const LABEL_W = 120;
  const LANE_H = 22;
  const HEAD_H = 40;

  function lanesFor(bookings) {
    // lane 0: confirmed and first holds; lane r-1: hold rank r; wished-for requests below
    let holdLanes = 1;
    for (const b of bookings) {
      if (b.status === "hold" && b.hold_rank) holdLanes = Math.max(holdLanes, b.hold_rank);
    }
    const hasWish = bookings.some((b) => b.status === "requested");
    return { holdLanes, total: holdLanes + (hasWish ? 1 : 0) };
  }

  function laneOf(b, lanes) {
    if (b.status === "confirmed") return 0;
    if (b.status === "hold") return Math.max(0, (b.hold_rank || 1) - 1);
    return lanes.holdLanes;
  }

  function renderTimeline() {
    const box = $("timeline");
    box.replaceChildren();
    if (!state.date) return;
    const { from, to } = rangeMs();
    const zone = primaryZone();
    const lastDay = to - 1;
    $("tl-range").textContent = t("tl.range", {
      from: fmtDay(from, zone, true), to: fmtDay(lastDay, zone, true),
    });
    try {
      history.replaceState(null, "", `#date=${state.date}&span=${state.span}`);
    } catch (e) {
      // file: or sandboxed
    }
    if (!state.stages.length) {
      box.append(el("p", { text: t("tl.no_stages") }));
      return;
    }
    const width = Math.max(900, box.clientWidth || 1100);
    const plotW = width - LABEL_W - 8;
    const x = (ms) => LABEL_W + ((ms - from) / (to - from)) * plotW;
    const clampX = (ms) => Math.min(Math.max(x(ms), LABEL_W), LABEL_W + plotW);

    const visible = state.bookings.filter((b) =>
      b.stage && b.start && b.end &&
      ["hold", "confirmed", "requested"].includes(b.status));
    const byStage = new Map();
    for (const b of visible) {
      if (!byStage.has(b.stage)) byStage.set(b.stage, []);
      byStage.get(b.stage).push(b);
    }

    const rows = [];
    let y = 0;
    const body = [];
    for (const site of state.sites) {
      const siteStages = site.stages.map((id) => stageById(id) || { id, timezone: site.timezone })
        .filter(Boolean);
      const tz = site.timezone || primaryZone();
      // site header: name, zone, day ticks in the site's own zone
      const head = svg("g", { class: "site-head" });
      head.append(svg("rect", { x: 0, y, width, height: HEAD_H, class: "site-bg" }));
      head.append(svg("text", { x: 6, y: y + 16, class: "site-name",
        text: t("tl.site_zone", { site: site.site || "", zone: zoneName(tz, from) }) }));
      const startP = localParts(from, tz);
      for (let i = -1; i < 33; i++) {
        const dayMs = wallToUtc(startP.y, startP.m, startP.d + i, 0, 0, tz);
        if (dayMs < from - 1 || dayMs >= to) continue;
        const dx = x(dayMs);
        const week = state.span === "week";
        const label = week ? fmtDay(dayMs, tz, true) : String(localParts(dayMs, tz).d);
        const ticks = svg("text", { x: dx + 3, y: y + HEAD_H - 6, class: "day",
          text: label });
        head.append(svg("line", { x1: dx, x2: dx, y1: y + HEAD_H - 18, y2: y + HEAD_H,
          class: "tick" }), ticks);
        rows.push({ dayMs, dx });
      }
      body.push(head);
      y += HEAD_H;
      for (const stage of siteStages) {
        const bs = byStage.get(stage.id) || [];
        const lanes = lanesFor(bs);
        const h = lanes.total * LANE_H + 8;
        const g = svg("g", { class: "stage-row", "data-stage": stage.id });
        g.append(svg("rect", { x: 0, y, width, height: h, class: "row-bg" }));
        g.append(svg("text", { x: 8, y: y + 16, class: "stage-name", text: stage.id }));
        // day grid in the site's zone
        for (let i = -1; i < 33; i++) {
          const dayMs = wallToUtc(startP.y, startP.m, startP.d + i, 0, 0, tz);
          if (dayMs <= from || dayMs >= to) continue;
          g.append(svg("line", { x1: x(dayMs), x2: x(dayMs), y1: y, y2: y + h, class: "grid" }));
        }
        for (const o of stageOutages(stage)) {
          const s = Date.parse(o.start);
          const e = Date.parse(o.end);
          if (e <= from || s >= to) continue;
          const label = t("tl.outage_bar", { stage: stage.id,
            start: fmtTime(s, tz, true), end: fmtTime(e, tz, true) });
          g.append(svg("rect", { x: clampX(s), y: y + 2, width: Math.max(2, clampX(e) - clampX(s)),
            height: h - 4, class: "outage", role: "img", "aria-label": label },
          svg("title", { text: label + (o.reason ? ` (${o.reason})` : "") })));
        }
        for (const b of bs) {
          const s = Date.parse(b.start);
          const e = Date.parse(b.end);
          if (e <= from || s >= to) continue;
          const lane = laneOf(b, lanes);
          const by = y + 4 + lane * LANE_H;
          const co = b.status === "requested" ? 0 : (stage.changeover_minutes || 0);
          if (co > 0) {
            const ce = e + co * 60000;
            const label = t("tl.changeover_bar", { stage: stage.id, minutes: co });
            g.append(svg("rect", { x: clampX(e), y: by + 4, width: Math.max(1, clampX(ce) - clampX(e)),
              height: LANE_H - 10, class: "changeover" }, svg("title", { text: label })));
          }
          const bz = zoneOfBooking(b);
          const label = t("tl.bar", { production: b.production || b.id, status: statusText(b),
            stage: b.stage, start: fmtTime(s, bz, true), end: fmtTime(e, bz, false) });
          const sel = state.selected && state.selected.id === b.id;
          const bx = clampX(s);
          const bw = Math.max(3, clampX(e) - bx);
          const bar = svg("g", { class: `bar ${b.status}${sel ? " selected" : ""}`,
            tabindex: 0, role: "button", "aria-label": label, "aria-pressed": String(!!sel),
            "data-booking": b.id,
            onclick: () => select(b),
            onkeydown: (ev) => {
              if (ev.key === "Enter" || ev.key === " ") {
                ev.preventDefault();
                select(b);
              }
            } },
          svg("title", { text: label }),
          svg("rect", { x: bx, y: by, width: bw, height: LANE_H - 4, rx: 3 }));
          const short = (b.status === "hold" ? `${b.hold_rank || ""} ` : "") +
            (b.production || b.id);
          if (bw > 24) {
            // cut with an ellipsis: "Production 0" for "Production 05" would name another one
            const fits = Math.floor(bw / 7);
            bar.append(svg("text", { x: bx + 4, y: by + 13, class: "bar-text",
              text: short.length > fits ? short.slice(0, Math.max(fits - 1, 1)) + "\u2026" : short }));
          }
          g.append(bar);
        }
        body.push(g);
        y += h;
      }
    }
    // now line
    const now = Date.now();
    if (now > from && now < to) {
      body.push(svg("line", { x1: x(now), x2: x(now), y1: 0, y2: y, class: "now" }));
    }
    const root = svg("svg", { width, height: y, viewBox: `0 0 ${width} ${y}`, role: "group",
      "aria-label": t("tl.svg_label", { n: state.stages.length, from: fmtDay(from, zone, false),
        to: fmtDay(lastDay, zone, false) }) },
    svg("defs", {},
      svg("pattern", { id: "hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse",
        patternTransform: "rotate(45)" },
      svg("rect", { width: 8, height: 8, class: "hatch-bg" }),
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 8, class: "hatch-line" }))),
    body);
    box.append(root);
  }

  // ------------------------------------------------------------------ table, selection

  function bookingRow(b) {
    const z = zoneOfBooking(b);
    return el("tr", { "data-booking": b.id, class: state.selected && state.selected.id === b.id
      ? "selected" : null },
    el("td", { text: b.id }),
    el("td", { text: b.production || t("dash") }),
    el("td", {}, el("span", { class: `pill ${b.status}`, text: statusText(b) })),
    el("td", { text: b.stage || t("dash") }),
    el("td", { text: fmtTime(b.start || b.earliest_start, z) }),
    el("td", { text: fmtTime(b.end || b.latest_end, z) }),
    el("td", { text: zoneName(z, b.start ? Date.parse(b.start) : undefined) }),
    el("td", {}, el("button", { type: "button", class: "small",
      "aria-label": t("sel.select_label", { id: b.id }), onclick: () => select(b),
      text: t("sel.select") })));
  }

  function bookingTable(list, emptyKey) {
    if (!list.length) return el("p", { class: "hint", text: t(emptyKey) });
    return el("table", { class: "list" },
      el("thead", {}, el("tr", {},
        ["col.id", "col.production", "col.status", "col.stage", "col.start", "col.end",
          "col.zone", "col.actions"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, list.map(bookingRow)));
  }

  function renderTable() {
    const sorted = [...state.bookings].sort((a, b) =>
      String(a.start).localeCompare(String(b.start)) || a.id.localeCompare(b.id));
    $("tl-table").replaceChildren(bookingTable(sorted, "tl.table.none"));
    $("tl-waiting").replaceChildren(bookingTable(state.waiting, "tl.waiting.none"));
  }

  async function select(b) {
    state.selected = b;
    state.history = [];
    renderTimeline();
    renderTable();
    renderSelected();
    try {
      const rows = await api("GET", `/bookings/${encodeURIComponent(b.id)}/history`);
      if (state.selected && state.selected.id === b.id) {
        state.history = Array.isArray(rows) ? rows : [];
        renderHistory();
      }
    } catch (e) {
      // the booking itself is still shown
    }
  }

  function renderSelected() {
    const box = $("sel-body");
    const b = state.selected;
    if (!b) {
      box.replaceChildren(el("p", { class: "hint", text: t("sel.none") }));
      return;
    }
    const z = zoneOfBooking(b);
    const dl = el("dl", { class: "facts" });
    const fact = (k, v) => dl.append(el("dt", { text: t(k) }), el("dd", { text: v }));
    fact("col.id", b.id);
    fact("sel.production", b.production || t("dash"));
    fact("col.status", statusText(b));
    fact("col.stage", b.stage || t("dash"));
    fact(b.status === "requested" && b.start ? "req.wish_start" : "col.start",
      fmtTime(b.start, z, true));
    fact("col.end", fmtTime(b.end, z, false));
    fact("sel.duration", fmtDuration(b.duration_minutes));
    fact("sel.window", `${fmtTime(b.earliest_start, z)} – ${fmtTime(b.latest_end, z, true)}`);
    fact("sel.requires", (b.requires && b.requires.length) ? b.requires.join(", ")
      : t("sel.nothing"));
    if (b.status === "hold") fact("sel.expires", fmtTime(b.hold_expires, z, true));
    const parts = [dl];
    if (canChange()) {
      const actions = el("div", { class: "actions" });
      if (b.status === "requested" || b.status === "hold") {
        const stageSel = el("select", { id: "sel-hold-stage" },
          el("option", { value: "", text: t("sel.any_stage") }),
          state.stages.map((s) => el("option", { value: s.id, text: s.id })));
        const startIn = el("input", { id: "sel-hold-start", type: "datetime-local" });
        if (b.status === "requested") {
          actions.append(el("div", { class: "grid2" },
            el("div", {}, el("label", { for: "sel-hold-stage", text: t("sel.hold_stage") }),
              stageSel),
            el("div", {}, el("label", { for: "sel-hold-start", text: t("sel.hold_start") }),
              startIn)));
          actions.append(el("button", { type: "button", id: "act-hold", text: t("sel.hold"),
            onclick: () => {
              const body = {};
              if (stageSel.value) body.stage = stageSel.value;
              const zone = stageSel.value ? stageById(stageSel.value).timezone : z;
              if (startIn.value) body.start = localInputToIso(startIn.value, zone);
              act(b, "hold", body);
            } }));
        }
        if (b.status === "hold") {
          actions.append(el("button", { type: "button", id: "act-confirm",
            text: t("sel.confirm"), onclick: () => act(b, "confirm") }));
          actions.append(el("button", { type: "button", id: "act-release",
            text: t("sel.release"), onclick: () => act(b, "release") }));
        }
      }
      if (["requested", "hold", "confirmed"].includes(b.status)) {
        actions.append(el("button", { type: "button", id: "act-cancel", class: "danger",
          text: t("sel.cancel"), onclick: () => {
            if (window.confirm(t("sel.confirm_cancel", { id: b.id }))) act(b, "cancel");
          } }));
      }
      parts.push(actions);
    }
    parts.push(el("div", { id: "sel-history" }));
    box.replaceChildren(...parts);
    renderHistory();
  }

  // The selected booking's audit trail (its own node: the buttons above stay put).
  function renderHistory() {
    const box = $("sel-history");
    const b = state.selected;
    if (!box || !b) return;
    const z = zoneOfBooking(b);
    const rows = state.history.filter((h) => !h.booking || h.booking === b.id);
    box.replaceChildren(...(rows.length ? [el("h3", { text: t("sel.history") }),
      el("ol", { class: "history" }, rows.map((h) => el("li", {
        text: t("sel.history_row", { at: fmtTime(h.at, z), actor: h.actor,
          action: actionText(h.action) + (h.reason ? ` — ${h.reason}` : "") }) })))] : []));
  }

  async function act(b, action, body) {
    clearMessages();
    try {
      const reply = await api("POST", `/bookings/${encodeURIComponent(b.id)}/${action}`,
        body || {});
      state.selected = reply && reply.id ? reply : b;
      flash("act.done." + action, { id: b.id, status: reply ? statusText(reply) : "" },
        notesOf(reply));
      await loadBookings();
      select(state.selected);
    } catch (err) {
      showError(err);
    }
  }

  // ------------------------------------------------------------------ forms

  function sameZone(ids) {
    const zones = new Set(ids.map((id) => (stageById(id) || {}).timezone).filter(Boolean));
    return zones.size === 1 ? [...zones][0] : null;
  }

  function requestZone() {
    const wish = $("req-wish-stage").value;
    if (wish) return stageById(wish) ? stageById(wish).timezone : null;
    const allowed = [...document.querySelectorAll("#req-stages input:checked")]
      .map((c) => c.value);
    return sameZone(allowed.length ? allowed : state.stages.map((s) => s.id));
  }

  function updateZoneHints() {
    const rz = requestZone();
    $("req-zone").textContent = rz ? t("req.zone_hint", { zone: zoneName(rz) })
      : t("req.zone_any");
    const os = stageById($("out-stage").value);
    $("out-zone").textContent = os ? t("req.zone_hint", { zone: zoneName(os.timezone) }) : "";
  }

  function fillForms() {
    const caps = [...new Set(state.stages.flatMap((s) => s.capabilities || []))].sort();
    const keep = (box) => new Set([...box.querySelectorAll("input:checked")].map((c) => c.value));
    const reqBox = $("req-requires");
    const keptCaps = keep(reqBox);
    reqBox.replaceChildren(...caps.map((c) => el("label", { class: "inline" },
      el("input", { type: "checkbox", value: c, name: "requires", checked: keptCaps.has(c) }),
      el("span", { text: c }))));
    const stBox = $("req-stages");
    const keptStages = keep(stBox);
    stBox.replaceChildren(...state.stages.map((s) => el("label", { class: "inline" },
      el("input", { type: "checkbox", value: s.id, name: "stages", checked: keptStages.has(s.id) }),
      el("span", { text: s.id }))));
    for (const [id, first] of [["req-wish-stage", t("req.wish_none")], ["out-stage", null]]) {
      const sel = $(id);
      const was = sel.value;
      sel.replaceChildren(...(first ? [el("option", { value: "", text: first })] : []),
        ...state.stages.map((s) => el("option", { value: s.id, text: `${s.id} · ${s.site || ""}` })));
      if (was) sel.value = was;
    }
    if (state.date) {
      $("tl-date").value = state.date;
      for (const [id, h] of [["req-earliest", 8], ["out-start", 8]]) {
        if (!$(id).value) $(id).value = `${state.date}T${pad(h)}:00`;
      }
      const end = new Date(Date.parse(state.date + "T00:00:00Z") + 6 * DAY_MS);
      const endDay = end.toISOString().slice(0, 10);
      if (!$("req-latest").value) $("req-latest").value = `${endDay}T20:00`;
      if (!$("out-end").value) $("out-end").value = `${state.date}T20:00`;
    }
    updateZoneHints();
  }

  async function submitRequest(ev) {
    ev.preventDefault();
    clearMessages();
    const zone = requestZone();
    const spec = {
      production: $("req-production").value.trim(),
      duration_minutes: Math.round(parseFloat($("req-duration").value) * 60),
      earliest_start: localInputToIso($("req-earliest").value, zone),
      latest_end: localInputToIso($("req-latest").value, zone),
      priority: parseInt($("req-priority").value, 10) || 1,
    };
    const contact = $("req-contact").value.trim();
    if (contact) spec.contact = contact;
    const requires = [...document.querySelectorAll("#req-requires input:checked")]
      .map((c) => c.value);
    if (requires.length) spec.requires = requires;
    const stages = [...document.querySelectorAll("#req-stages input:checked")]
      .map((c) => c.value);
    if (stages.length) spec.stages = stages;
    const wish = $("req-wish-stage").value;
    if (wish) spec.stage = wish;
    if ($("req-wish-start").value) spec.start = localInputToIso($("req-wish-start").value, zone);
    try {
      const created = await api("POST", "/bookings", spec);
      let notes = notesOf(created);
      let shown = created;
      let key = "req.done";
      if ($("req-hold-now").checked) {
        try {
          shown = await api("POST", `/bookings/${encodeURIComponent(created.id)}/hold`, {});
          notes = notes.concat(notesOf(shown));
          key = "req.held";
        } catch (err) {
          state.selected = created;
          state.history = [];
          await loadBookings();
          showError(err);
          select(created);
          return;
        }
      }
      state.selected = shown;
      state.history = [];
      flash(key, { id: created.id, status: statusText(shown) }, notes);
      if (shown.start) jumpTo(shown);
      await loadBookings();
      select(state.selected);
    } catch (err) {
      showError(err);
    }
  }

  // Show the range that holds booking `b` (when it lies outside the one shown).
  function jumpTo(b) {
    const s = Date.parse(b.start);
    const { from, to } = rangeMs();
    if (s >= from && s < to) return;
    const p = localParts(s, primaryZone());
    state.date = `${p.y}-${pad(p.m)}-${pad(p.d)}`;
    $("tl-date").value = state.date;
  }

  function outageBody(apply) {
    const stage = $("out-stage").value;
    const zone = stageById(stage) ? stageById(stage).timezone : null;
    return {
      stage,
      start: localInputToIso($("out-start").value, zone),
      end: localInputToIso($("out-end").value, zone),
      reason: $("out-reason").value.trim(),
      apply,
    };
  }

  async function previewOutage(ev) {
    ev.preventDefault();
    clearMessages();
    state.outagePreview = null;
    $("out-apply").hidden = true;
    try {
      const body = outageBody(false);
      const reply = await api("POST", "/outages", body);
      state.outagePreview = { body, reply };
      clearMessages();
    } catch (err) {
      showError(err);
    }
    renderOutagePreview();
  }

  async function applyOutage() {
    if (!state.outagePreview) return;
    clearMessages();
    const body = { ...state.outagePreview.body, apply: true };
    try {
      const reply = await api("POST", "/outages", body);
      state.outagePreview = { body, reply, applied: true };
      flash("out.applied", {}, notesOf(reply));
      const st = await api("GET", "/stages");
      state.stages = Array.isArray(st) ? st : state.stages;
      await loadBookings();
    } catch (err) {
      showError(err);
    }
    renderOutagePreview();
  }

  function renderOutagePreview() {
    const box = $("out-result");
    const p = state.outagePreview;
    box.replaceChildren();
    $("out-apply").hidden = !p || p.applied || !["engineer", "admin"].includes(state.role);
    if (!p) return;
    const r = p.reply || {};
    const moved = r.moved || [];
    const unplaced = r.unplaced || [];
    const zoneOf = (sid) => (stageById(sid) || {}).timezone || primaryZone();
    if (!p.applied) box.append(el("p", { class: "hint", text: t("out.preview_note") }));
    if (!moved.length && !unplaced.length) box.append(el("p", { text: t("out.none") }));
    if (moved.length) {
      box.append(el("h3", { text: t("out.moved") }), el("ul", { class: "moved" },
        moved.map((m) => {
          const id = m.id || m.booking;
          const fromStage = m.from_stage || t("dash");
          const toStage = m.to_stage || m.stage;
          return el("li", { text: t("out.move_row", {
            id: m.production ? `${id} (${m.production})` : id,
            from_stage: fromStage, from_start: fmtTime(m.from_start, zoneOf(fromStage)),
            to_stage: toStage, to_start: fmtTime(m.to_start || m.start, zoneOf(toStage), true),
          }) });
        })));
    }
    if (unplaced.length) {
      box.append(el("h3", { text: t("out.unplaced") }), el("ul", { class: "unplaced" },
        unplaced.map((u) => {
          let reason = u.reason || u.explanation || "";
          if (Array.isArray(reason)) reason = reason.join(" ");
          return el("li", { text: t("out.unplaced_row", { id: u.id || u.booking, reason }) });
        })));
    }
    if (typeof r.kept === "number" && r.kept > 0) {
      box.append(el("p", { text: t("out.kept", { n: r.kept }) }));
    }
  }

  // ------------------------------------------------------------------ farm

  function farmJobs(reply) {
    if (Array.isArray(reply)) return { jobs: reply, zone: null };
    return { jobs: (reply && reply.jobs) || [], zone: reply && reply.timezone };
  }

  function pick(obj, ...keys) {
    for (const k of keys) if (obj && obj[k] !== undefined && obj[k] !== null) return obj[k];
    return null;
  }

  function timeOf(job, iso, utc) {
    const v = pick(job, iso);
    if (v !== null) return v;
    const u = pick(job, utc);
    return u === null ? null : u * 1000;
  }

  function renderFarm() {
    const box = $("farm-body");
    const f = state.farm;
    if (!f) return box.replaceChildren();
    if (f.loading) return box.replaceChildren(el("p", { text: t("farm.loading") }));
    if (f.error) {
      const msg = errorMessage(f.error);
      return box.replaceChildren(el("div", { class: "message warn", id: "farm-unavailable",
        role: "status" },
      el("strong", { text: t("farm.unavailable", { message: msg }) }),
      el("p", { text: t("farm.unavailable_hint") })));
    }
    const { jobs, zone: replyZone } = farmJobs(f.jobs);
    const zone = replyZone || primaryZone();
    const now = pick(f.jobs, "now");
    const parts = [el("p", { class: "hint", text: t("farm.zone", { zone: zoneName(zone) })
      + " " + t("farm.now", { at: fmtTime(now || Date.now(), zone) }) })];
    const costParts = [];
    if (f.cost) {
      const spent = pick(f.cost, "spent_cny", "cost_cny", "spent");
      const forecast = pick(f.cost, "forecast_cny", "forecast");
      const pools = Array.isArray(f.cost.pools) ? f.cost.pools : [];
      costParts.push(el("div", { class: "cost", id: "farm-cost" },
        el("h3", { text: t("farm.cost_title") }),
        el("dl", { class: "facts" },
          el("dt", { text: t("farm.cost_spent") }), el("dd", { text: fmtCny(spent) }),
          el("dt", { text: t("farm.cost_forecast") }), el("dd", { text: fmtCny(forecast) })),
        pools.length ? el("table", { class: "list pools" },
          el("thead", {}, el("tr", {}, ["farm.pool", "farm.price", "farm.cost_spent",
            "farm.cost_forecast"].map((k) => el("th", { scope: "col", text: t(k) })))),
          el("tbody", {}, pools.map((p) => el("tr", {},
            el("td", { text: p.pool || p.id || "" }),
            el("td", { class: "num", text: t("farm.per_gpu_hour", {
              price: fmtCny(p.cost_per_gpu_hour_cny) }) }),
            el("td", { class: "num", text: fmtCny(p.spent_cny) }),
            el("td", { class: "num", text: fmtCny(p.forecast_cny) }))))) : null));
    }
    if (!jobs.length) {
      parts.push(el("p", { text: t("farm.none") }));
      return box.replaceChildren(...parts, ...costParts);
    }
    const withCost = jobs.some((j) => pick(j, "cost_cny", "spent_cny") !== null);
    const rows = jobs.map((j) => {
      const progress = Math.max(0, Math.min(1, +pick(j, "progress") || 0));
      const pct = Math.round(progress * 100);
      const deadline = timeOf(j, "deadline", "deadline_utc");
      const done = j.state === "done";
      const finish = done ? timeOf(j, "finished", "finished_utc") || timeOf(j, "predicted_finish",
        "predicted_finish_utc") : timeOf(j, "predicted_finish", "predicted_finish_utc");
      const finMs = finish === null ? null : (typeof finish === "number" ? finish
        : Date.parse(finish));
      const dlMs = deadline === null ? null : (typeof deadline === "number" ? deadline
        : Date.parse(deadline));
      const late = j.late === true || (finMs !== null && dlMs !== null && finMs > dlMs);
      let outlook;
      if (dlMs === null) outlook = t("farm.no_deadline");
      else if (finMs === null) outlook = late ? t("farm.late") : t("farm.on_time");
      else if (late) outlook = t("farm.late_by", { span: fmtSpan(finMs - dlMs) });
      else outlook = t(done ? "farm.early_by" : "farm.spare", { span: fmtSpan(dlMs - finMs) });
      const sk = "farm.state." + j.state;
      const fill = el("div", { class: "fill" });
      fill.style.width = `${pct}%`;
      const cost = pick(j, "cost_cny", "spent_cny");
      return el("tr", { "data-job": j.id, class: late ? "late" : null },
        el("td", { text: j.id }),
        el("td", { text: t(sk) === sk ? j.state : t(sk) }),
        el("td", {}, el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0,
          "aria-valuemax": 100, "aria-valuenow": pct,
          "aria-label": t("farm.progress_label", { id: j.id, pct }) },
        fill),  el("span", { class: "pct",
          text: `${pct}%` })),
        el("td", { text: dlMs === null ? t("dash") : fmtTime(dlMs, zone) }),
        el("td", { text: finMs === null ? t("dash")
          : (done ? t("farm.finished", { at: fmtTime(finMs, zone) }) : fmtTime(finMs, zone)) }),
        el("td", {}, el("span", { class: `pill ${late ? "late" : "ok"}`, text: outlook }),
          j.warning ? el("div", { class: "hint", text: j.warning }) : null),
        withCost ? el("td", { class: "num", text: fmtCny(cost) }) : null);
    });
    const cols = ["farm.job", "farm.state", "farm.progress", "farm.deadline", "farm.finish",
      "farm.outlook"];
    if (withCost) cols.push("farm.cost");
    parts.push(el("table", { class: "list farm" },
      el("thead", {}, el("tr", {}, cols.map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, rows)));
    box.replaceChildren(...parts, ...costParts);
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("lang").addEventListener("click", () => {
      I.setLang(I.lang === "zh" ? "en" : "zh");
      $("lang").setAttribute("lang", I.lang === "zh" ? "en" : "zh-CN");
      renderAll();
    });
    for (const b of document.querySelectorAll("#nav .tab")) {
      b.addEventListener("click", () => setView(b.dataset.view));
    }
    $("tl-week").addEventListener("click", () => { state.span = "week"; renderChrome(); loadBookings(); });
    $("tl-month").addEventListener("click", () => { state.span = "month"; renderChrome(); loadBookings(); });
    $("tl-prev").addEventListener("click", () => {
      if (state.span === "week") shiftDate(-7); else shiftDate(0, -1);
      $("tl-date").value = state.date;
      loadBookings();
    });
    $("tl-next").addEventListener("click", () => {
      if (state.span === "week") shiftDate(7); else shiftDate(0, 1);
      $("tl-date").value = state.date;
      loadBookings();
    });
    $("tl-today").addEventListener("click", () => {
      state.date = todayIn(primaryZone());
      $("tl-date").value = state.date;
      loadBookings();
    });
    $("tl-date").addEventListener("change", () => {
      if (/^\d{4}-\d{2}-\d{2}$/.test($("tl-date").value)) {
        state.date = $("tl-date").value;
        loadBookings();
      }
    });
    $("tl-refresh").addEventListener("click", () => loadBookings());
    $("req-form").addEventListener("submit", submitRequest);
    $("req-form").addEventListener("change", updateZoneHints);
    $("out-form").addEventListener("submit", previewOutage);
    $("out-form").addEventListener("change", () => {
      updateZoneHints();
      if (state.outagePreview && !state.outagePreview.applied) {
        state.outagePreview = null;
        renderOutagePreview();
      }
    });
    $("out-apply").addEventListener("click", applyOutage);
    $("farm-refresh").addEventListener("click", loadFarm);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(renderTimeline, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    I.apply(document);
    $("lang").setAttribute("lang", I.lang === "zh" ? "en" : "zh-CN");
    wire();
    renderChrome();
    resume();
  });

  // for the tests and the console: what the page shows, read-only
  window.DESK = { state, zoneOffset, wallToUtc, isoInZone };
})();
