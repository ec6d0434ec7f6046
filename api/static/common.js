// larmkedja — shared page code: language, login with a token, API calls, the live stream.
"use strict";

const LK = (() => {
  const TEXT = {
    sv: {
      login_title: "Logga in", token: "Token", login: "Logga in", logout: "Logga ut",
      lang: "English", denied: "Din roll ({role}) har inte tillgång till den här sidan.",
      bad_token: "Token är ogiltig eller har gått ut.", connecting: "Ansluter…",
      live: "Live", offline: "Ingen förbindelse – försöker igen…",
      operator_title: "Larmcentral – kö", patrol_title: "Nattpatrull", supervisor_title: "Arbetsledare",
      queue_empty: "Inga öppna larm.", incident: "Händelse", many_devices: "flera enheter",
      answer_all: "Svara alla", resolve_all: "Avsluta alla", priority: "Prio", kind: "Typ", device: "Enhet", site: "Område",
      waiting: "Väntat", presses: "Tryck", state: "Status", device_state: "Enhetsstatus",
      actions: "Åtgärder", answer: "Svara", escalate: "Skicka patrull", resolve: "Avsluta",
      reset: "Återställt vid enheten", mean: "Medelsvarstid", target: "mål", within60: "Inom 60 s",
      oldest: "Äldsta väntande", none: "–", reason: "Orsak (inga portkoder eller nyckelkoder: texten skickas till nattpatrullens system)", outcome: "Utfall", cancel: "Avbryt",
      ok: "OK", online: "online", offline_dev: "OFFLINE", mains: "nät", battery: "batteri",
      new_alarm: "NYTT LARM", raised: "obesvarat", answered: "besvarat", escalated: "eskalerat",
      resolved: "avslutat", keys: "Tangenter: ↑/↓ välj · A svara · E patrull · R avsluta",
      escalations_empty: "Inga öppna uppdrag.", ack: "Kvittera", arrive: "Framme", complete: "Klar",
      deadline: "Kvittera senast", overdue: "FÖRSENAD", reference: "Referens",
      open: "ny", acknowledged: "kvitterad", arrived: "framme", completed: "klar", cancelled: "avbruten",
      chart_title: "Svarstid per timme, senaste 24 h", share60: "Andel inom 60 s",
      night_title: "Senaste nattens tillsyn", planned: "Planerade", done: "Gjorda i tid",
      rechecked: "Omtittade ok", missed: "Missade", escalated_checks: "Eskalerade",
      escalations: "Uppdrag", arrival: "Tid till framme (p50 / p90 / max)", paused: "Pausade planer",
      alarms_24h: "Larm besvarade senaste 24 h", no_data: "Inga data",
    },
    en: {
      login_title: "Sign in", token: "Token", login: "Sign in", logout: "Sign out",
      lang: "Svenska", denied: "Your role ({role}) has no access to this page.",
      bad_token: "The token is not valid or has expired.", connecting: "Connecting…",
      live: "Live", offline: "No connection – retrying…",
      operator_title: "Alarm centre – queue", patrol_title: "Night patrol", supervisor_title: "Supervisor",
      queue_empty: "No open alarms.", incident: "Incident", many_devices: "many devices",
      answer_all: "Answer all", resolve_all: "Resolve all", priority: "Prio", kind: "Kind", device: "Device", site: "Site",
      waiting: "Waiting", presses: "Presses", state: "State", device_state: "Device state",
      actions: "Actions", answer: "Answer", escalate: "Send patrol", resolve: "Resolve",
      reset: "Reset at device", mean: "Mean answer time", target: "target", within60: "Within 60 s",
      oldest: "Oldest waiting", none: "–", reason: "Reason (no door or key codes: the text is sent to the patrol's system)", outcome: "Outcome", cancel: "Cancel",
      ok: "OK", online: "online", offline_dev: "OFFLINE", mains: "mains", battery: "battery",
      new_alarm: "NEW ALARM", raised: "unanswered", answered: "answered", escalated: "escalated",
      resolved: "resolved", keys: "Keys: ↑/↓ select · A answer · E patrol · R resolve",
      escalations_empty: "No open tasks.", ack: "Acknowledge", arrive: "Arrived", complete: "Done",
      deadline: "Acknowledge by", overdue: "OVERDUE", reference: "Reference",
      open: "new", acknowledged: "acknowledged", arrived: "arrived", completed: "done", cancelled: "cancelled",
      chart_title: "Answer time by hour, last 24 h", share60: "Share within 60 s",
      night_title: "Last night's supervision", planned: "Planned", done: "Done on time",
      rechecked: "Re-checked ok", missed: "Missed", escalated_checks: "Escalated",
      escalations: "Tasks", arrival: "Time to arrival (p50 / p90 / max)", paused: "Paused plans",
      alarms_24h: "Alarms answered, last 24 h", no_data: "No data",
    },
  };
  let lang = localStorage.getItem("lk_lang") || "sv";

  function t(key, vars) {
    let s = (TEXT[lang] && TEXT[lang][key]) || TEXT.sv[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
    return s;
  }

  function applyText(root) {
    document.documentElement.lang = lang;
    (root || document).querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  }

  function setLang(next) { lang = next; localStorage.setItem("lk_lang", lang); applyText(); }

  function token() { return sessionStorage.getItem("lk_token"); }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: `Bearer ${token()}` } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && (data.message || data.detail)) || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return t("none");
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}` : `${m}:${String(r).padStart(2, "0")}`;
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString(lang === "sv" ? "sv-SE" : "en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // Sign in, check the role, then call start(me). Shows the login form when needed.
  async function page({ roles, start }) {
    applyText();
    document.getElementById("lang").addEventListener("click", () => setLang(lang === "sv" ? "en" : "sv"));
    document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem("lk_token"); location.reload(); });
    const login = document.getElementById("login");
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("lk_token", login.querySelector("input").value.trim());
      await check();
    });
    async function check() {
      const msg = document.getElementById("login-msg");
      if (!token()) { login.hidden = false; return; }
      let me;
      try { me = await api("GET", "/api/v1/me"); } catch (e) {
        sessionStorage.removeItem("lk_token"); login.hidden = false; msg.textContent = t("bad_token"); return;
      }
      if (!roles.includes(me.role)) { login.hidden = false; msg.textContent = t("denied", { role: me.role }); return; }
      login.hidden = true;
      document.getElementById("who").textContent = `${me.name} (${me.role})`;
      document.getElementById("main").hidden = false;
      start(me);
    }
    await check();
  }

  // The live stream, reconnecting by itself with backoff; handler(message) for each message.
  function stream(handler, onStatus) {
    let delay = 500;
    function connect() {
      const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/stream`;
      const ws = new WebSocket(url, ["larmkedja.v1", `bearer.${token()}`]);
      onStatus("connecting");
      ws.onopen = () => { delay = 500; onStatus("live"); };
      ws.onmessage = (ev) => handler(JSON.parse(ev.data));
      ws.onclose = () => { onStatus("offline"); setTimeout(connect, delay); delay = Math.min(delay * 2, 10000); };
    }
    connect();
  }

  function status(state) {
    const node = document.getElementById("live");
    node.textContent = t(state === "live" ? "live" : state === "connecting" ? "connecting" : "offline");
    node.className = `live ${state}`;
  }

  // Ask for a line of text in a <dialog>; resolves to the text or null.
  function ask(label) {
    const dialog = document.getElementById("ask");
    dialog.querySelector("label span").textContent = label;
    const input = dialog.querySelector("input");
    input.value = "";
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => {
      dialog.onclose = () => resolve(dialog.returnValue === "ok" && input.value.trim() ? input.value.trim() : null);
    });
  }

  return { t, applyText, api, el, duration, clock, page, stream, status, ask, lang: () => lang };
})();
