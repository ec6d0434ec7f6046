// The case panel beside the queue: the person behind the selected alarm, how to get in, whom
// to call in order (and whether now is inside their window), every step of the case with who
// and when, and the forms that add a call attempt or a note. Read when a person selects an
// alarm (each read is audited), never by a timer.
"use strict";

LK.casePanel = (() => {
  const { t, label, api, el, clock } = LK;
  let root = null, current = null, canCall = false, canMark = false, timer = null, last = null, callable = false;

  // "08:00-21:00" (may wrap midnight) against the time in Stockholm now.
  function insideWindow(window) {
    if (!window) return true;
    const [from, until] = window.split("-");
    const now = clock(new Date().toISOString()).slice(0, 5);
    return from <= until ? from <= now && now < until : now >= from || now < until;
  }

  function field(key, value) {
    if (value === null || value === undefined || value === "") return [];
    return [el("dt", {}, t(key)), el("dd", {}, value)];
  }

  function personPart(p, state) {
    // A resolved alarm's person is shown for a day only (read_person_of_alarm): say so.
    if (!p) return [el("section", { class: "case-part" }, el("h3", {}, t("person")), el("p", {}, t(state === "resolved" ? "no_person_shown" : "no_person")))];
    const care = p.home_care ? [p.home_care.provider, p.home_care.team].filter(Boolean).join(" · ") : null;
    const away = (p.absences || []).filter((a) => new Date(a.until) > new Date());
    return [
      el("section", { class: "case-part person" },
        el("h3", {}, t("person")),
        el("p", { class: "name" }, p.name),
        el("p", {}, p.address),
        el("dl", { class: "facts" },
          field("phone", p.phone), field("language", p.language),
          field("area_type", p.area_type && label("area", p.area_type)),
          field("home_care", care), field("person_notes", p.notes),
          away.map((a) => field("absence", `${clock(a.from, true)} – ${clock(a.until, true)} ${a.reason || ""}`)).flat())),
      accessPart(p.access || [], p.access_notes),
      contactsPart(p.contacts || []),
    ];
  }

  // How to get in: shared with the patrol page.
  function accessPart(access, notes) {
    return el("section", { class: "case-part access-part" },
      el("h3", {}, t("access_title")),
      access.length
        ? el("ul", { class: "access" }, access.map((a) =>
          el("li", {}, el("b", {}, label("access", a.kind)), ` ${a.ref || ""}`, a.where ? ` – ${a.where}` : "")))
        : el("p", {}, el("span", { class: "tag bad" }, t("no_access"))),
      notes ? el("p", { class: "access-notes" }, notes) : null);
  }

  function contactsPart(contacts) {
    const items = contacts.map((c) => {
      const inside = insideWindow(c.call_window);
      const who = `${c.name}${c.relation ? ` (${c.relation})` : ""}`;
      return el("li", { class: inside ? "contact" : "contact outside" },
        el("span", { class: "who" }, who), " ",
        el("a", { href: `tel:${c.phone}` }, c.phone), " ",
        el("small", {}, c.call_window ? `${t("call_window")} ${c.call_window}${inside ? "" : ` – ${t("outside_window")}`}` : t("any_time")),
        callable ? el("span", { class: "buttons" },
          el("button", { type: "button", class: "reached", "aria-label": `${t("reached")}: ${who}`, onclick: () => call(c.name, true) }, t("reached")),
          el("button", { type: "button", class: "not-reached", "aria-label": `${t("not_reached")}: ${who}`, onclick: () => call(c.name, false) }, t("not_reached"))) : null);
    });
    return el("section", { class: "case-part" },
      el("h3", {}, t("contacts")),
      items.length ? el("ol", { class: "contacts" }, items) : el("p", {}, t("no_contacts")));
  }

  function detailText(step) {
    const d = step.detail || {};
    if (step.action === "call") return `${d.contact} – ${d.reached ? t("reached") : t("not_reached")}`;
    if (step.action === "resolved" && d.outcome) return [label("outcome", d.outcome), d.note].filter(Boolean).join(" – ");
    return [d.text, d.reason, d.outcome, d.code && label("outcome", d.code), d.from && `${t("from")} ${d.from}`].filter(Boolean).join(" – ");
  }

  function logPart(steps) {
    return el("section", { class: "case-part" },
      el("h3", {}, t("case_log")),
      el("ol", { class: "case-log" }, steps.map((s) =>
        el("li", { "data-action": s.action },
          el("time", { datetime: s.at }, clock(s.at)), " ",
          el("b", {}, label("action", s.action)), ` ${t("by")} ${s.by}`,
          detailText(s) ? el("div", { class: "detail" }, detailText(s)) : null))));
  }

  function notesPart(notes) {
    if (!notes || !notes.length) return null;
    return el("section", { class: "case-part" },
      el("h3", {}, t("handover_notes")),
      el("ul", { class: "handover" }, notes.map((n) => el("li", {}, n.text, " ",
        el("small", {}, n.acknowledged_at
          ? `${t("acknowledged")} ${clock(n.acknowledged_at, true)} ${t("by")} ${n.acknowledged_by}`
          : t("not_acknowledged"))))));
  }

  // "Follow up": the person is on the hand-over list, with who marked them, until cleared.
  function followUpPart(c) {
    if (!c.person || !canMark) return null;
    const ref = encodeURIComponent(c.person.person_ref);
    const f = c.follow_up;
    const mark = async () => {
      const reason = await LK.ask(t("follow_up_reason"));
      if (reason) await personStep("PUT", `/api/v1/persons/${ref}/follow-up`, { reason });
    };
    const clear = () => personStep("DELETE", `/api/v1/persons/${ref}/follow-up`);
    return el("section", { class: "case-part follow-up" },
      el("h3", {}, t("follow_up")),
      f ? el("p", {}, el("span", { class: "tag warn" }, t("follow_up_marked")), " ", f.reason, " ",
        el("small", {}, `${t("by")} ${f.marked_by} ${clock(f.marked_at, true)}`)) : null,
      el("button", { type: "button", class: f ? "follow-up-clear" : "follow-up-mark", onclick: f ? clear : mark },
        t(f ? "follow_up_done" : "follow_up_mark")));
  }

  async function personStep(method, path, body) {
    try { await api(method, path, body); } catch (e) { alert(e.message); }
    await load();
  }

  function noteForm() {
    const area = el("textarea", { id: "note-text", maxlength: "500", rows: "2", required: true });
    return el("form", { class: "case-note", onsubmit: async (ev) => {
      ev.preventDefault();
      const text = area.value.trim();
      if (!text) return;
      await step("notes", { text });
    } },
    el("label", { for: "note-text" }, t("note")), area,
    el("button", { type: "submit", class: "add-note" }, t("add_note")));
  }

  function draw(c) {
    callable = canCall && ["answered", "escalated"].includes(c.state); // else a call is refused
    const flags = [
      c.test ? el("span", { class: "tag warn" }, t("test")) : null,
      c.absent ? el("span", { class: "tag warn" }, t("absent")) : null,
    ];
    root.replaceChildren(
      el("h2", { id: "case-title" }, `${c.kind} · ${c.device_id}`, " ", ...flags),
      el("p", { class: "meta" }, `${t(c.state)} · ${t("raised_at")} ${clock(c.raised_at, true)}`),
      ...[...personPart(c.person, c.state), followUpPart(c), notesPart(c.handover_notes), logPart(c.case || []), noteForm()]
        .filter(Boolean));
    root.hidden = false;
  }

  async function load() {
    if (!current) return;
    try { last = await api("GET", `/api/v1/alarms/${current}`); draw(last); }
    catch (e) { root.replaceChildren(el("p", { class: "msg", role: "alert" }, e.message)); root.hidden = false; }
  }

  async function step(what, body) {
    try { await api("POST", `/api/v1/alarms/${current}/${what}`, body); }
    catch (e) { alert(e.message); }
    await load();
  }

  function call(contact, reached) { return step("calls", { contact, reached }); }

  // Show the case of alarm `id` (after a short pause, so arrowing through the queue reads only
  // the alarm the operator stops at). `null` closes the panel.
  function show(id) {
    clearTimeout(timer);
    if (id === current && last) return;
    current = id;
    last = null;
    if (!id) { root.hidden = true; root.replaceChildren(); return; }
    timer = setTimeout(load, 250);
  }

  function init(node, options) {
    root = node;
    canCall = Boolean(options && options.canCall);
    canMark = Boolean(options && options.canMark);
    document.addEventListener("lk-lang", () => { if (last) draw(last); });
  }

  return { init, show, reload: load, accessPart };
})();
