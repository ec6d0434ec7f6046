// The night patrol, phone first: open escalations; acknowledge, arrived, done.
"use strict";

(() => {
  const { t, api, el, clock } = LK;
  const tasks = new Map();

  async function act(task, action) {
    let body;
    if (action === "complete") { const o = await LK.ask(t("outcome")); if (!o) return; body = { outcome: o }; }
    try { upsert(await api("POST", `/api/v1/escalations/${task.escalation_id}/${action}`, body)); }
    catch (e) { alert(e.message); }
    render();
  }

  function upsert(e) {
    if (e.state === "completed" || e.state === "cancelled") tasks.delete(e.escalation_id);
    else tasks.set(e.escalation_id, e);
  }

  function card(e) {
    const overdue = e.state === "open" && new Date(e.ack_deadline) < new Date();
    const ref = [e.site, e.device_id, e.plan_id || e.alarm_id].filter(Boolean).join(" · ");
    return el("li", { class: `task ${e.state}${overdue ? " overdue" : ""}`, "data-escalation": e.escalation_id },
      el("h3", {}, e.reason),
      el("div", { class: "meta" }, `${t("reference")}: ${ref}`),
      el("div", { class: "meta" },
        el("span", { class: "state" }, t(e.state)), " · ",
        overdue ? el("b", { class: "tag bad" }, t("overdue")) : `${t("deadline")} ${clock(e.ack_deadline)}`),
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

  LK.page({
    roles: ["patrol", "supervisor"],
    start() {
      LK.stream((msg) => {
        if (msg.type === "snapshot.escalations") { tasks.clear(); msg.escalations.forEach(upsert); }
        else if (msg.type === "escalation") upsert(msg.escalation);
        else return;
        render();
      }, LK.status);
      setInterval(render, 15000);
    },
  });
})();
