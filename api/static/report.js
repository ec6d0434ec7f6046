// The supervisor's printable service-level report (issue 20): a site and a period (a day, a
// week, a month or any from–to, in Stockholm time), every figure of
// GET /api/v1/reports/service-level, the breaches with a link to each case, the CSV, and three
// charts: the answer-time distribution against 60 s and 180 s, arrivals against the promise of
// each area type, and the alarms by hour of day.
//
// The charts are inline SVG drawn below in a few lines each, not by a chart library: the pages
// load nothing from elsewhere and have no build step (the CSP allows only our own scripts), a
// library would be one more dependency to pin and audit for three bar charts, and SVG prints
// sharply at any size. Each chart has its numbers beside it in a table (its text alternative)
// and a short summary as its accessible name.
"use strict";

(() => {
  const { t, api, el, clock } = LK;
  const ZONE = "Europe/Stockholm";
  const SVG = "http://www.w3.org/2000/svg";
  let report = null, params = null, me = null;

  // --- The period: local midnights in Stockholm, whatever the browser's own zone. ----------

  // Minutes east of UTC in Stockholm at the instant `ms`.
  function offsetAt(ms) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: ZONE, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }).formatToParts(new Date(ms));
    const get = (type) => Number(parts.find((p) => p.type === type).value);
    const local = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
    return Math.round((local - Math.floor(ms / 1000) * 1000) / 60000);
  }

  // The instant of local midnight starting the day [y, m, d] (m 1-12).
  function midnight([y, m, d]) {
    const wall = Date.UTC(y, m - 1, d);
    return wall - offsetAt(wall - offsetAt(wall) * 60000) * 60000;
  }

  // RFC 3339 with Stockholm's offset, e.g. 2026-11-01T00:00:00+01:00.
  function iso(ms) {
    const off = offsetAt(ms), a = Math.abs(off);
    const wall = new Date(ms + off * 60000).toISOString().slice(0, 19);
    return `${wall}${off < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
  }

  const ymd = (text) => text.split("-").map(Number);
  function addDays([y, m, d], n) {
    const at = new Date(Date.UTC(y, m - 1, d + n));
    return [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate()];
  }

  // {since, until} of a day, the ISO week (Monday first), the month, or from–to (both days in).
  function period(kind, from, to) {
    const day = ymd(from);
    let first = day, next;
    if (kind === "day") next = addDays(day, 1);
    else if (kind === "week") {
      first = addDays(day, -((new Date(Date.UTC(day[0], day[1] - 1, day[2])).getUTCDay() + 6) % 7));
      next = addDays(first, 7);
    } else if (kind === "month") {
      first = [day[0], day[1], 1];
      next = day[1] === 12 ? [day[0] + 1, 1, 1] : [day[0], day[1] + 1, 1];
    } else next = addDays(ymd(to || from), 1);
    return { since: iso(midnight(first)), until: iso(midnight(next)) };
  }

  const today = () => new Date().toLocaleDateString("sv-SE", { timeZone: ZONE });

  // --- Figures as the reader reads them. ----------------------------------------------------

  const locale = () => (LK.lang() === "sv" ? "sv-SE" : "en-GB");
  const num = (v, digits) => new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
  const FORMAT = {
    count: (v) => num(v, 0),
    s: (v) => `${num(v, 1)}\u00a0s`,
    min: (v) => `${num(v / 60, 1)}\u00a0min`,
    pct: (v) => `${num(v * 100, 1)}\u00a0%`,
    // h:mm:ss, always with the hours: a breach may be seconds or days.
    hms: (v) => { const x = Math.floor(v); return `${Math.floor(x / 3600)}:${String(Math.floor((x % 3600) / 60)).padStart(2, "0")}:${String(x % 60).padStart(2, "0")}`; },
  };
  // A promise, as people say it: "30 min".
  const minutes = (v) => (Number.isInteger(v / 60) ? `${num(v / 60, 0)}\u00a0min` : FORMAT.min(v));
  const shown = (v, kind) => (v === null || v === undefined ? t("none") : FORMAT[kind](v));

  // A figure's cell: what the page shows, and where it came from (the browser test compares).
  function figure(tag, path, value, kind, attrs) {
    return el(tag, { ...attrs, "data-figure": path, "data-kind": kind }, shown(value, kind));
  }

  function figures(id, section, list) {
    const node = document.getElementById(id);
    node.replaceChildren(...list.flatMap(([name, kind, value]) => [
      el("dt", {}, t(`fig.${section}.${name}`)),
      figure("dd", `${section}/${name}`, value === undefined ? report[section][name] : value, kind),
    ]));
  }

  function countRows(tableId, path, counts, labelOf) {
    const rows = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    document.querySelector(`#${tableId} tbody`).replaceChildren(...rows.map(([key, n]) =>
      el("tr", {}, el("th", { scope: "row" }, labelOf(key)), figure("td", `${path}/${key}`, n, "count", { class: "num" }))));
  }

  // --- Charts. -----------------------------------------------------------------------------

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Bars of stacked segments ({value, cls}) with a label under each, and dashed lines after
  // bar `after` ({after, text}): the bound a bar is read against.
  function barChart({ bars, lines, name, height }) {
    const W = 720, H = height || 230, L = 40, R = 10, T = 34, B = 34;
    const top = Math.max(1, ...bars.map((b) => b.segments.reduce((s, x) => s + x.value, 0)));
    const step = (W - L - R) / bars.length;
    const y = (v) => H - B - (v / top) * (H - B - T);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": name, class: "bars" });
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    root.append(svg("text", { x: L - 6, y: y(top) + 4, "text-anchor": "end" }, num(top, 0)));
    root.append(svg("text", { x: L - 6, y: H - B + 4, "text-anchor": "end" }, "0"));
    bars.forEach((b, i) => {
      const x = L + i * step;
      let base = 0;
      for (const seg of b.segments) {
        if (seg.value > 0) root.append(svg("rect", { class: `bar ${seg.cls}`, x: x + 2, y: y(base + seg.value), width: Math.max(1, step - 4), height: y(base) - y(base + seg.value) }));
        base += seg.value;
      }
      if (base > 0) root.append(svg("text", { x: x + step / 2, y: y(base) - 3, "text-anchor": "middle" }, num(base, 0)));
      if (b.label) root.append(svg("text", { x: x + step / 2, y: H - B + 15, "text-anchor": "middle" }, b.label));
    });
    for (const line of lines || []) {
      const x = L + (line.after + 1) * step;
      root.append(svg("line", { class: "bound", x1: x, x2: x, y1: 4, y2: H - B }));
      root.append(svg("text", { class: "bound-label", x: x + 4, y: 14 }, line.text));
    }
    return root;
  }

  function legend(items) {
    return el("ul", { class: "legend" }, items.map(([cls, text]) =>
      el("li", {}, el("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), text)));
  }

  const seconds = (v) => `${num(v, 0)}`;
  function binLabel(b, scale, unit) {
    if (b.to_s === null) return `>\u00a0${seconds(b.from_s / scale)}${unit}`;
    if (b.from_s === 0) return `≤\u00a0${seconds(b.to_s / scale)}${unit}`;
    return `${seconds(b.from_s / scale)}–${seconds(b.to_s / scale)}${unit}`;
  }

  // One row of counts per series, one column per bin: compact enough for A4.
  function binTable(caption, bins, series, scale, unit) {
    return el("table", { class: "list bins" },
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, `${t("r_bin")} (${unit})`),
        bins.map((b) => el("th", { scope: "col", class: "num" }, binLabel(b, scale, ""))))),
      el("tbody", {}, series.map(([label, path, offset]) => el("tr", {}, el("th", { scope: "row" }, label),
        bins.map((b, i) => figure("td", `${path}/${offset + i}/count`, b.count, "count", { class: "num" }))))));
  }

  const cls = (to, first, second) => (to !== null && to <= first ? "good" : to !== null && to <= second ? "warn" : "bad");
  const lineAfter = (bins, bound) => bins.findIndex((b) => b.to_s === bound);

  function answerChart() {
    const a = report.answer, bins = a.histogram;
    const name = t("r_answer_summary", { n: shown(a.count, "count"), p60: shown(a.within_60s_ratio, "pct"), p180: shown(a.within_180s_ratio, "pct") });
    const bars = bins.map((b) => ({ label: binLabel(b, 1, ""), segments: [{ value: b.count, cls: cls(b.to_s, 60, 180) }] }));
    const lines = [[60, "60 s"], [180, "180 s"]].map(([bound, text]) => ({ after: lineAfter(bins, bound), text })).filter((l) => l.after >= 0);
    document.getElementById("chart-answer").replaceChildren(
      el("figcaption", { id: "cap-answer" }, t("r_answer_chart")),
      barChart({ bars, lines, name }),
      legend([["good", t("r_within_60")], ["warn", t("r_within_180")], ["bad", t("r_over_180")]]),
      binTable(t("r_answer_table"), bins, [[t("r_answers"), "answer/histogram", 0]], 1, "s"));
  }

  function arrivalCharts() {
    const all = report.arrival.histogram, parts = [];
    const areaTable = el("table", { class: "list" }, el("caption", {}, t("r_by_area")),
      el("thead", {}, el("tr", {}, ["r_area_type", "r_promise", "fig.arrival.count", "fig.arrival.p50_s", "fig.arrival.p90_s", "fig.arrival.max_s", "fig.arrival.within_promise_ratio"]
        .map((k, i) => el("th", { scope: "col", class: i > 0 ? "num" : null }, t(k))))),
      el("tbody", {}, report.arrival.by_area.map((a, i) => el("tr", {}, el("th", { scope: "row" }, LK.label("area", a.area_type)),
        [["promise_s", "min"], ["count", "count"], ["p50_s", "min"], ["p90_s", "min"], ["max_s", "min"], ["within_promise_ratio", "pct"]]
          .map(([k, kind]) => figure("td", `arrival/by_area/${i}/${k}`, a[k], kind, { class: "num" }))))));
    parts.push(areaTable);
    report.arrival.by_area.forEach((area) => {
      const offset = all.findIndex((b) => b.area_type === area.area_type);
      const bins = all.filter((b) => b.area_type === area.area_type);
      const areaName = LK.label("area", area.area_type), promise = minutes(area.promise_s);
      const bars = bins.map((b) => ({ label: binLabel(b, 60, ""), segments: [{ value: b.count, cls: b.to_s !== null && b.to_s <= area.promise_s ? "good" : "bad" }] }));
      const name = t("r_arrival_summary", { area: areaName, n: shown(area.count, "count"), promise, share: shown(area.within_promise_ratio, "pct") });
      parts.push(el("figure", { class: "chart", "data-area": area.area_type },
        el("figcaption", {}, t("r_arrival_chart", { area: areaName, promise })),
        barChart({ bars, lines: [{ after: lineAfter(bins, area.promise_s), text: t("r_promise_line", { promise }) }], name, height: 180 }),
        legend([["good", t("r_within_promise")], ["bad", t("r_beyond_promise")]]),
        binTable(t("r_arrival_table", { area: areaName }), bins, [[t("r_arrivals"), "arrival/histogram", offset]], 60, "min")));
    });
    document.getElementById("chart-arrival").replaceChildren(...parts);
  }

  function hoursChart() {
    const byHour = new Map(report.by_hour.map((h, i) => [h.hour, [h, i]]));
    const bars = [...Array(24).keys()].map((hour) => {
      const [h] = byHour.get(hour) || [{ alarms: 0, answered: 0, within_60s: 0, within_180s: 0 }];
      return { label: hour % 2 ? "" : String(hour).padStart(2, "0"), segments: [
        { value: h.within_60s, cls: "good" }, { value: h.within_180s - h.within_60s, cls: "warn" },
        { value: h.answered - h.within_180s, cls: "bad" }, { value: h.alarms - h.answered, cls: "none" }] };
    });
    const rows = [...Array(24).keys()].map((hour) => {
      const found = byHour.get(hour);
      const cells = ["alarms", "answered", "within_60s", "within_180s", "mean_answer_s"].map((k) => (found
        ? figure("td", `by_hour/${found[1]}/${k}`, found[0][k], k === "mean_answer_s" ? "s" : "count", { class: "num" })
        : el("td", { class: "num" }, k === "mean_answer_s" ? t("none") : "0")));
      return el("tr", {}, el("th", { scope: "row" }, `${String(hour).padStart(2, "0")}–${String((hour + 1) % 24).padStart(2, "0")}`), cells);
    });
    document.getElementById("chart-hours").replaceChildren(
      el("figcaption", { id: "cap-hours" }, t("r_hour_chart")),
      barChart({ bars, lines: [], name: t("r_hour_summary", { n: shown(report.by_hour.reduce((s, h) => s + h.alarms, 0), "count") }) }),
      legend([["good", t("r_within_60")], ["warn", t("r_within_180")], ["bad", t("r_over_180")], ["none", t("r_unanswered")]]),
      el("table", { class: "list hours" }, el("caption", {}, t("r_hour_table")),
        el("thead", {}, el("tr", {}, ["r_hour", "fig.by_hour.alarms", "fig.by_hour.answered", "fig.by_hour.within_60s", "fig.by_hour.within_180s", "fig.by_hour.mean_answer_s"]
          .map((k, i) => el("th", { scope: "col", class: i ? "num" : null }, t(k))))),
        el("tbody", {}, rows)));
  }

  // --- The breaches, each with its case. ----------------------------------------------------

  function breaches() {
    const list = report.breaches;
    document.getElementById("breach-count").textContent = `(${num(list.length, 0)})`;
    document.getElementById("breaches-empty").hidden = list.length > 0;
    document.getElementById("t-breaches").hidden = list.length === 0;
    document.querySelector("#t-breaches tbody").replaceChildren(...list.map((b, i) => {
      const target = b.alarm_id ? `alarm=${b.alarm_id}` : `check=${b.check_id}`;
      return el("tr", { "data-what": b.what },
        el("td", {}, el("time", { datetime: b.at }, clock(b.at, true))),
        el("td", {}, LK.label("breach", b.what)),
        figure("td", `breaches/${i}/value_s`, b.value_s, "hms", { class: "num" }),
        el("td", { class: "ref" }, b.alarm_id ? b.alarm_id.slice(0, 8) : `#${b.check_id}`),
        el("td", { class: "no-print" }, el("a", { href: `#${target}`, class: "case-link" }, t(b.alarm_id ? "r_open_case" : "r_open_check"))));
    }));
  }

  async function showCheck(checkId) {
    const aside = document.getElementById("case");
    const breach = report.breaches.find((b) => String(b.check_id) === checkId);
    if (!breach) return;
    const noon = new Date(new Date(breach.at).getTime() - 12 * 3600e3).toLocaleDateString("sv-SE", { timeZone: ZONE });
    const site = params.get("site");
    const checks = await api("GET", `/api/v1/supervision/checks?night=${noon}${site ? `&site=${encodeURIComponent(site)}` : ""}`);
    const c = checks.find((x) => String(x.check_id) === checkId);
    aside.replaceChildren(el("h2", { id: "case-title" }, `${t("r_check")} #${checkId}`),
      c ? el("dl", { class: "facts" }, [["plan", c.plan_id], ["device", c.device_id], ["r_scheduled", clock(c.scheduled_for, true)],
        ["state", LK.label("check", c.state)], ["r_operator", c.operator], ["outcome", c.outcome]]
        .filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, v)])) : el("p", {}, t("no_data")));
    aside.hidden = false;
  }

  function investigate() {
    const [kind, id] = location.hash.slice(1).split("=");
    const aside = document.getElementById("case");
    if (!report || !id) { aside.hidden = true; return; }
    LK.casePanel.show(null); // whichever was open before
    if (kind === "alarm") LK.casePanel.show(id);
    else if (kind === "check") showCheck(id);
    setTimeout(() => { aside.focus(); aside.scrollIntoView({ block: "nearest" }); }, 400);
  }

  // --- Loading and drawing. -----------------------------------------------------------------

  function draw() {
    if (!report) return;
    const since = clock(report.since, true).slice(0, 16), until = clock(report.until, true).slice(0, 16);
    document.getElementById("r-site").textContent = report.site ? `– ${report.site}` : `– ${t("all_sites")}`;
    document.getElementById("r-period").textContent = t("r_period", { since, until });
    document.title = `larmkedja – ${t("report_title")} ${report.site || ""} ${since}–${until}`;
    figures("fig-alarms", "alarms", [["count", "count"]]);
    countRows("t-kinds", "alarms/by_kind", report.alarms.by_kind, (k) => k);
    countRows("t-priorities", "alarms/by_priority", report.alarms.by_priority, (k) => k);
    figures("fig-answer", "answer", [["count", "count"], ["mean_s", "s"], ["p50_s", "s"], ["p90_s", "s"], ["p95_s", "s"], ["max_s", "s"], ["within_60s_ratio", "pct"], ["within_180s_ratio", "pct"]]);
    figures("fig-arrival", "arrival", [["count", "count"], ["p50_s", "min"], ["p90_s", "min"], ["max_s", "min"], ["within_promise_ratio", "pct"]]);
    figures("fig-night", "night", ["planned", "done_in_time", "rechecked", "missed", "escalated"].map((k) => [k, "count"]));
    figures("fig-availability", "availability", [["online_ratio", "pct"], ["offline_episodes", "count"]]);
    answerChart();
    arrivalCharts();
    hoursChart();
    breaches();
    document.getElementById("r-printed").textContent = t("r_printed", { at: clock(new Date().toISOString(), true).slice(0, 16), by: me.name });
    document.getElementById("report-body").hidden = false;
  }

  function query() {
    const q = new URLSearchParams(location.search);
    const kind = ["day", "week", "month", "range"].includes(q.get("period")) ? q.get("period") : "month";
    const valid = (d) => /^\d{4}-\d{2}-\d{2}$/.test(d || "") && !Number.isNaN(Date.parse(d))
      && new Date(`${d}T00:00:00Z`).toISOString().slice(0, 10) === d; // not 2026-02-30
    const from = valid(q.get("from")) ? q.get("from") : today();
    const to = valid(q.get("to")) ? q.get("to") : from;
    const site = /^[a-z0-9-]{1,32}$/.test(q.get("site") || "") ? q.get("site") : "";
    return { kind, from, to, site };
  }

  function fillForm({ kind, from, to, site }) {
    document.getElementById("f-site").value = site;
    document.getElementById("f-period").value = kind;
    document.getElementById("f-from").value = from;
    document.getElementById("f-to").value = to;
    toggleTo();
  }

  function toggleTo() {
    const range = document.getElementById("f-period").value === "range";
    document.getElementById("f-to-field").hidden = !range;
    document.getElementById("f-to").required = range;
    document.getElementById("f-from-label").textContent = t(range ? "period_from" : "period_date");
  }

  async function downloadCsv(ev) {
    ev.preventDefault();
    try {
      const res = await fetch(`/api/v1/reports/service-level.csv?${params}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem("lk_token")}` } });
      if (!res.ok) throw new Error(res.statusText);
      const name = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
      const link = el("a", { href: URL.createObjectURL(await res.blob()), download: name ? name[1] : "service-level.csv" });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (e) { document.getElementById("r-error").textContent = e.message; }
  }

  async function load() {
    const q = query();
    fillForm(q);
    if (q.kind === "range" && q.to < q.from) { document.getElementById("r-error").textContent = t("r_bad_range"); return; }
    const { since, until } = period(q.kind, q.from, q.to);
    params = new URLSearchParams({ since, until });
    if (q.site) params.set("site", q.site);
    try { report = await api("GET", `/api/v1/reports/service-level?${params}`); }
    catch (e) { document.getElementById("r-error").textContent = e.message; return; }
    draw();
    investigate();
  }

  LK.reportPeriod = period; // for the browser test's check of the local midnights

  LK.page({
    roles: ["supervisor"],
    start(who) {
      me = who;
      LK.status("live");
      LK.casePanel.init(document.getElementById("case"), { canCall: false, canMark: me.permissions.includes("persons.follow_up") });
      document.getElementById("f-period").addEventListener("change", toggleTo);
      document.getElementById("csv").addEventListener("click", downloadCsv);
      document.getElementById("print").addEventListener("click", () => window.print());
      window.addEventListener("hashchange", investigate);
      document.addEventListener("lk-lang", () => { toggleTo(); draw(); });
      load();
    },
  });
})();
