// The operator console: the live queue, answer / escalate / resolve, the answer-time strip.
"use strict";

(() => {
  const { t, api, el, duration } = LK;
  const alarms = new Map(); // alarm_id -> {alarm, base: waiting_s at receipt, at: ms at receipt}
  const devices = new Map(); // device_id -> {data, at}
  const seen = new Set();
  let selected = null;
  let audio = null;

  function beep() {
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start(); osc.stop(audio.currentTime + 0.35);
    } catch (e) { /* no sound device: the visual cue remains */ }
  }

  function cue() {
    beep();
    const flash = document.getElementById("flash");
    flash.hidden = false;
    clearTimeout(cue.timer);
    cue.timer = setTimeout(() => { flash.hidden = true; }, 5000);
  }

  function upsert(alarm) {
    if (alarm.state === "resolved") { alarms.delete(alarm.alarm_id); return; }
    const isNew = !seen.has(alarm.alarm_id);
    seen.add(alarm.alarm_id);
    alarms.set(alarm.alarm_id, { alarm, base: alarm.waiting_s, at: performance.now(), isNew });
    if (isNew && alarm.state === "raised") cue();
  }

  function ordered() {
    return [...alarms.values()].sort((a, b) =>
      a.alarm.priority - b.alarm.priority || a.alarm.raised_at.localeCompare(b.alarm.raised_at));
  }

  function waitingOf(entry) {
    return entry.alarm.state === "raised" ? entry.base + (performance.now() - entry.at) / 1000 : entry.alarm.waiting_s;
  }

  function deviceCell(deviceId) {
    const d = devices.get(deviceId);
    if (!d || !d.data) return el("td", {}, t("none"));
    const x = d.data;
    return el("td", {},
      el("span", { class: x.online ? "tag" : "tag bad" }, x.online ? t("online") : t("offline_dev")),
      el("span", { class: x.on_mains ? "tag" : "tag warn" }, x.on_mains ? t("mains") : t("battery")),
      x.battery_percent === null ? null : el("span", { class: "tag" }, `${Math.round(x.battery_percent)} %`));
  }

  async function refreshDevices() {
    const now = Date.now();
    for (const { alarm } of alarms.values()) {
      if (alarm.incident_id) continue; // one row for many: no device column
      const known = devices.get(alarm.device_id);
      if (known && now - known.at < 30000) continue;
      devices.set(alarm.device_id, { data: known && known.data, at: now });
      try { devices.get(alarm.device_id).data = await api("GET", `/api/v1/devices/${encodeURIComponent(alarm.device_id)}?poll=true`); }
      catch (e) { /* site alarms have no device row */ }
    }
    render();
  }

  let outcomes = [];

  async function act(alarm, action) {
    let body;
    if (action === "escalate") { const r = await LK.ask(t("reason")); if (!r) return; body = { reason: r }; }
    if (action === "resolve") { const o = await outcomeCode(); if (!o) return; body = { outcome: o }; }
    try {
      upsert(await api("POST", `/api/v1/alarms/${alarm.alarm_id}/${action}`, body));
    } catch (e) {
      alert(e.message);
    }
    render();
    refreshKpi();
    if (alarm.alarm_id === selected) LK.casePanel.reload();
  }

  // What the operator must see before answering: a test, a reset at the device, a person with
  // no recorded way in, a person away (an alarm anyway). No names in the queue itself.
  function flags(a) {
    return [
      a.test ? el("span", { class: "tag test" }, t("test")) : null,
      a.reset_at_device ? el("span", { class: "tag warn" }, t("reset")) : null,
      a.no_access ? el("span", { class: "tag bad no-access" }, t("no_access")) : null,
      a.absent ? el("span", { class: "tag warn" }, t("absent")) : null,
    ];
  }

  function select(id) {
    selected = id;
    render();
    LK.casePanel.show(id);
  }

  function row(entry) {
    const a = entry.alarm;
    const tr = el("tr", {
      class: [a.state, a.alarm_id === selected ? "selected" : "", entry.isNew && a.state === "raised" ? "new" : ""].join(" "),
      "data-alarm": a.alarm_id, onclick: () => select(a.alarm_id),
    },
      el("td", {}, String(a.priority)),
      el("td", {}, a.kind, " ", ...flags(a)),
      el("td", {}, a.device_id), el("td", {}, a.site),
      el("td", { class: "waiting" }, duration(waitingOf(entry))),
      el("td", { class: "presses" }, String(a.event_count)),
      el("td", { class: "state" }, t(a.state)),
      deviceCell(a.device_id),
      el("td", {},
        a.state === "raised" ? el("button", { class: "answer", onclick: (ev) => { ev.stopPropagation(); act(a, "answer"); } }, t("answer")) : null,
        a.state !== "escalated" ? el("button", { class: "escalate", onclick: (ev) => { ev.stopPropagation(); act(a, "escalate"); } }, t("escalate")) : null,
        a.state !== "raised" ? el("button", { class: "resolve", onclick: (ev) => { ev.stopPropagation(); act(a, "resolve"); } }, t("resolve")) : null));
    entry.isNew = false;
    return tr;
  }

  // Flood mode: the alarms of one incident (a burst of technical alarms) are one row, where its
  // most urgent alarm would be; safety alarms are never part of one.
  function rows(list) {
    const groups = new Map();
    const out = [];
    for (const entry of list) {
      const id = entry.alarm.incident_id;
      if (!id) { out.push(row(entry)); continue; }
      if (!groups.has(id)) { const group = []; groups.set(id, group); out.push(group); }
      groups.get(id).push(entry);
    }
    return out.map((x) => (Array.isArray(x) ? incidentRow(x) : x));
  }

  function incidentRow(group) {
    const a = group[0].alarm, id = a.incident_id;
    const raised = group.filter((e) => e.alarm.state === "raised").length;
    return el("tr", { class: "incident", "data-incident": id },
      el("td", {}, String(a.priority)),
      el("td", {}, `${group.length} × ${a.kind} `, el("span", { class: "tag warn" }, t("incident"))),
      el("td", {}, t("many_devices")), el("td", {}, a.site),
      el("td", {}, duration(Math.max(...group.map(waitingOf)))),
      el("td", {}, String(group.length)),
      el("td", { class: "state" }, `${raised} ${t("raised")}`),
      el("td", {}, t("none")),
      el("td", {},
        raised ? el("button", { class: "answer", onclick: () => actIncident(id, "answer") }, t("answer_all")) : null,
        raised < group.length ? el("button", { class: "resolve", onclick: () => actIncident(id, "resolve") }, t("resolve_all")) : null));
  }

  async function outcomeCode() {
    // The municipality's outcome codes (GET /api/v1/outcomes), shown by their labels; the API
    // refuses any other.
    const codes = outcomes.length ? outcomes : (outcomes = await api("GET", "/api/v1/outcomes"));
    return LK.choose(t("outcome"), codes.map((c) => ({ value: c, text: LK.label("outcome", c) })));
  }

  async function actIncident(id, action) {
    let body;
    if (action === "resolve") { const o = await outcomeCode(); if (!o) return; body = { outcome: o }; }
    try {
      (await api("POST", `/api/v1/incidents/${id}/${action}`, body)).forEach(upsert);
    } catch (e) {
      alert(e.message);
    }
    render();
  }

  function render() {
    const body = document.getElementById("queue");
    const list = ordered();
    body.replaceChildren(...rows(list));
    document.getElementById("empty").hidden = list.length > 0;
    const waiting = list.filter((e) => e.alarm.state === "raised").map(waitingOf);
    document.getElementById("kpi-oldest").textContent = waiting.length ? duration(Math.max(...waiting)) : t("none");
  }

  function tick() {
    document.querySelectorAll("#queue tr").forEach((tr) => {
      const entry = alarms.get(tr.dataset.alarm);
      if (entry) tr.querySelector(".waiting").textContent = duration(waitingOf(entry));
    });
    const waiting = ordered().filter((e) => e.alarm.state === "raised").map(waitingOf);
    document.getElementById("kpi-oldest").textContent = waiting.length ? duration(Math.max(...waiting)) : t("none");
  }

  async function refreshKpi() {
    try {
      const k = await api("GET", "/api/v1/kpi/answer-time");
      const mean = document.getElementById("kpi-mean");
      mean.textContent = k.mean_s === null ? t("none") : `${k.mean_s.toFixed(1)} s (${k.count})`;
      mean.className = k.mean_above_target ? "bad" : "good";
      document.getElementById("kpi-target").textContent = String(k.target_mean_s);
      document.getElementById("kpi-60").textContent = k.within_60s_ratio === null ? t("none") : `${Math.round(k.within_60s_ratio * 100)} %`;
    } catch (e) { /* shown as stale; retried */ }
  }

  function onKey(ev) {
    if (document.querySelector("dialog[open]") || ["INPUT", "TEXTAREA"].includes(ev.target.tagName)) return;
    const list = ordered();
    if (!list.length) return;
    let index = list.findIndex((e) => e.alarm.alarm_id === selected);
    if (ev.key === "ArrowDown" || ev.key === "j") index = Math.min(list.length - 1, index + 1);
    else if (ev.key === "ArrowUp" || ev.key === "k") index = Math.max(0, index - 1);
    else {
      const current = index >= 0 ? list[index].alarm : (list.find((e) => e.alarm.state === "raised") || list[0]).alarm;
      const action = { a: "answer", e: "escalate", r: "resolve" }[ev.key.toLowerCase()];
      if (action) { ev.preventDefault(); act(current, action); }
      return;
    }
    ev.preventDefault();
    select(list[index].alarm.alarm_id);
  }

  LK.page({
    roles: ["operator", "supervisor"],
    start(me) {
      LK.casePanel.init(document.getElementById("case"), { canCall: me.permissions.includes("alarms.act"), canMark: me.permissions.includes("persons.follow_up") });
      LK.stream((msg) => {
        if (msg.type === "snapshot.alarms") {
          alarms.clear();
          msg.alarms.forEach((a) => { seen.add(a.alarm_id); upsert(a); });
        } else if (msg.type === "alarm") {
          upsert(msg.alarm);
          if (msg.alarm.answered_at) refreshKpi();
        } else return;
        render();
        refreshDevices();
      }, LK.status);
      document.addEventListener("keydown", onKey);
      refreshKpi();
      setInterval(tick, 1000);
      setInterval(refreshKpi, 10000);
      setInterval(refreshDevices, 15000);
    },
  });
})();
