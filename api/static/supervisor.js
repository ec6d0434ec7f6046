// The supervisor: answer time by hour for the last 24 h against the target, last night, and
// the devices due a test call (a person away is shown as away, not as due).
"use strict";

(() => {
  const { t, api, el } = LK;
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(buckets, target) {
    const W = 720, H = 260, L = 40, B = 30, now = Date.now();
    const hours = [...Array(24).keys()].map((i) => new Date(now - (23 - i) * 3600e3));
    const byHour = new Map(buckets.map((b) => [new Date(b.start).toISOString().slice(0, 13), b]));
    const max = Math.max(target * 1.5, ...buckets.map((b) => b.mean_s || 0));
    const y = (v) => H - B - (v / max) * (H - B - 10);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("chart_title") });
    const step = (W - L) / 24;
    hours.forEach((h, i) => {
      const b = byHour.get(h.toISOString().slice(0, 13));
      const x = L + i * step;
      if (b && b.mean_s !== null) {
        root.append(svg("rect", { class: `bar${b.mean_s > target ? " above" : ""}`, x: x + 2, y: y(b.mean_s),
          width: step - 4, height: H - B - y(b.mean_s), "data-hour": h.toISOString() },
        ));
        root.append(svg("text", { x: x + step / 2, y: y(b.mean_s) - 3, "text-anchor": "middle" }, `${Math.round(b.mean_s)}`));
      }
      if (i % 3 === 0) root.append(svg("text", { x: x + step / 2, y: H - 10, "text-anchor": "middle" }, LK.clock(h.toISOString()).slice(0, 2)));
    });
    root.append(svg("line", { class: "target", x1: L, x2: W, y1: y(target), y2: y(target) }));
    root.append(svg("text", { x: 2, y: y(target) + 4 }, `${target} s`));
    return root;
  }

  function lastNight() {
    // The night is named by its evening's date and ends at 12:00; 12 h ago lies in the last one.
    const ago = new Date(Date.now() - 12 * 3600e3);
    const local = ago.toLocaleString("sv-SE", { timeZone: "Europe/Stockholm", hour12: false });
    const [day, time] = local.split(" ");
    const date = new Date(`${day}T00:00:00Z`);
    if (Number(time.slice(0, 2)) < 12) date.setUTCDate(date.getUTCDate() - 1);
    return date.toISOString().slice(0, 10);
  }

  async function testsDue() {
    const due = await api("GET", "/api/v1/reports/tests-due");
    const when = (iso) => (iso ? LK.clock(iso, true) : t("none"));
    document.getElementById("tests-due").replaceChildren(...due.map((d) => el("tr", { "data-device": d.device_id, class: d.away ? "away" : "due" },
      el("td", {}, d.device_id), el("td", {}, d.site), el("td", {}, when(d.last_alarm_at)), el("td", {}, when(d.due_since)),
      el("td", { class: "test-state" }, d.away
        ? el("span", { class: "tag" }, t("away_until", { until: when(d.away_until) }))
        : el("span", { class: "tag warn" }, t("test_due"))))));
    document.getElementById("tests-table").hidden = !due.length;
    document.getElementById("tests-empty").hidden = Boolean(due.length);
  }

  async function load() {
    testsDue();
    const since = new Date(Date.now() - 24 * 3600e3).toISOString();
    const kpi = await api("GET", `/api/v1/kpi/answer-time?since=${encodeURIComponent(since)}&bucket=hour`);
    document.getElementById("chart").replaceChildren(chart(kpi.buckets || [], kpi.target_mean_s));
    document.getElementById("day-count").textContent = String(kpi.count);
    document.getElementById("day-mean").textContent = kpi.mean_s === null ? t("no_data") : `${kpi.mean_s.toFixed(1)} s`;
    document.getElementById("day-60").textContent = kpi.within_60s_ratio === null ? t("no_data") : `${Math.round(kpi.within_60s_ratio * 100)} %`;
    const night = lastNight();
    document.getElementById("night").textContent = night;
    const r = await api("GET", `/api/v1/supervision/report?night=${night}`);
    const fmt = (v) => (v === null ? "–" : `${Math.round(v / 60)} min`);
    const rows = [["planned", r.planned], ["done", r.done_on_time], ["rechecked", r.rechecked_ok],
      ["missed", r.missed], ["escalated_checks", r.escalated_checks], ["paused", r.paused_plans],
      ["escalations", r.escalations], ["arrival", `${fmt(r.arrival_p50_s)} / ${fmt(r.arrival_p90_s)} / ${fmt(r.arrival_max_s)}`]];
    document.getElementById("report").replaceChildren(...rows.flatMap(([k, v]) =>
      [el("dt", { "data-t": k }, t(k)), el("dd", { "data-report": k }, String(v))]));
  }

  LK.page({
    roles: ["supervisor"],
    start() { LK.status("live"); load(); setInterval(load, 60000); },
  });
})();
