// The night patrol, phone first: the hand-over notes from home care for its area, to
// acknowledge when the shift starts; open escalations with where to go and how to get in;
// acknowledge, arrived, done. The page's area is `?site=` (all sites without it).
"use strict";

(() => {
  const { t, api, el, clock } = LK;
  const tasks = new Map();
  const visits = new Map(); // escalation_id -> the visit (person, case, notes); null while loading
  const site = new URLSearchParams(location.search).get("site");
  let notes = [];

  async function act(task, action) {
    let body;
    if (action === "complete") { const o = await LK.ask(t("outcome")); if (!o) return; body = { outcome: o }; }
    try { upsert(await api("POST", `/api/v1/escalations/${task.escalation_id}/${action}`, body)); }
    catch (e) { alert(e.message); }
    render();
  }

  function upsert(e) {
    if (e.state === "completed" || e.state === "cancelled") { tasks.delete(e.escalation_id); visits.delete(e.escalation_id); }
    else tasks.set(e.escalation_id, e);
  }

  // The person, how to get in and the notes: read once per escalation (each read is audited).
  async function loadVisit(id) {
    visits.set(id, null);
    try { visits.set(id, await api("GET", `/api/v1/escalations/${id}/visit`)); }
    catch (e) { visits.set(id, false); return; } // tried again when the escalation changes
    render();
  }

  function visitPart(e) {
    if (!visits.has(e.escalation_id)) { loadVisit(e.escalation_id); return null; }
    const v = visits.get(e.escalation_id);
    if (!v || !v.person) return null;
    const p = v.person;
    const said = (v.case || []).filter((s) => s.action === "note" && s.detail && s.detail.text);
    return el("div", { class: "visit" },
      el("p", { class: "who" }, el("b", {}, p.name), ` – ${p.address}`),
      LK.casePanel.accessPart(p.access || [], p.access_notes),
      p.notes ? el("p", { class: "person-notes" }, p.notes) : null,
      said.length ? el("section", { class: "case-part" },
        el("h4", {}, t("case_notes")),
        el("ul", { class: "case-notes" }, said.map((s) =>
          el("li", {}, s.detail.text, " ", el("small", {}, `${s.by} ${clock(s.at)}`))))) : null,
      v.handover_notes.length ? el("section", { class: "case-part" },
        el("h4", {}, t("handover_notes")),
        el("ul", {}, v.handover_notes.map((n) => el("li", {}, n.text)))) : null);
  }

  function card(e) {
    const overdue = e.state === "open" && new Date(e.ack_deadline) < new Date();
    const ref = [e.site, e.device_id, e.plan_id || e.alarm_id].filter(Boolean).join(" · ");
    return el("li", { class: `task ${e.state}${overdue ? " overdue" : ""}`, "data-escalation": e.escalation_id },
      el("h3", {}, e.reason, " ", e.no_access ? el("span", { class: "tag bad no-access" }, t("no_access")) : null),
      el("div", { class: "meta" }, `${t("reference")}: ${ref}`),
      el("div", { class: "meta" },
        el("span", { class: "state" }, t(e.state)), " · ",
        overdue ? el("b", { class: "tag bad" }, t("overdue")) : `${t("deadline")} ${clock(e.ack_deadline)}`),
      visitPart(e),
      el("div", { class: "buttons" },
        e.state === "open" ? el("button", { class: "ack", onclick: () => act(e, "ack") }, t("ack")) : null,
        e.state !== "arrived" ? el("button", { class: "arrive", onclick: () => act(e, "arrive") }, t("arrive")) : null,
        el("button", { class: "complete", onclick: () => act(e, "complete") }, t("complete"))));
  }

  function render() {
    const list = [...tasks.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    document.getElementById("tasks").replaceChildren(...list.map(card));
    document.getElementById("empty").hidden = list.length > 0;
  }

  // The hand-over notes: every note of the night for the area, the ones not acknowledged first.
  async function loadNotes() {
    try { notes = await api("GET", `/api/v1/handover-notes${site ? `?site=${encodeURIComponent(site)}` : ""}`); }
    catch (e) { return; }
    renderNotes();
  }

  async function ackNote(note) {
    try { await api("POST", `/api/v1/handover-notes/${note.note_id}/ack`); }
    catch (e) { alert(e.message); }
    loadNotes();
  }

  function noteItem(n) {
    const late = !n.acknowledged_at && new Date(n.due_at) < new Date();
    return el("li", { class: `note${n.acknowledged_at ? " done" : ""}${late ? " overdue" : ""}`, "data-note": n.note_id },
      el("p", { class: "who" }, el("b", {}, n.name), ` – ${n.address}`),
      el("p", { class: "text" }, n.text),
      el("p", { class: "meta" }, n.acknowledged_at
        ? `${t("acknowledged")} ${clock(n.acknowledged_at)} ${t("by")} ${n.acknowledged_by}`
        : [late ? el("b", { class: "tag bad" }, t("overdue")) : null, `${t("ack_by")} ${clock(n.due_at)} · ${t("from")} ${n.created_by}`]),
      n.acknowledged_at ? null : el("button", { type: "button", class: "ack-note", "aria-label": `${t("ack")}: ${n.name}`, onclick: () => ackNote(n) }, t("ack")));
  }

  function renderNotes() {
    document.getElementById("notes").replaceChildren(...notes.map(noteItem));
    document.getElementById("notes-empty").hidden = notes.length > 0;
  }

  LK.page({
    roles: ["patrol", "supervisor"],
    start() {
      LK.stream((msg) => {
        if (msg.type === "snapshot.escalations") { tasks.clear(); msg.escalations.forEach(upsert); }
        else if (msg.type === "escalation") { upsert(msg.escalation); visits.delete(msg.escalation.escalation_id); }
        else return;
        render();
      }, LK.status);
      document.addEventListener("lk-lang", () => { render(); renderNotes(); });
      loadNotes();
      setInterval(render, 15000);
      setInterval(loadNotes, 300000);
    },
  });
})();
