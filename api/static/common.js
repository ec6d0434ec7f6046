// larmkedja — shared page code: language, login with a token, API calls, the live stream.
"use strict";

const LK = (() => {
  // One message catalogue per language (api/static/i18n/*.json); Swedish first, and the
  // fallback for a key a catalogue lacks.
  const TEXT = {};
  const ZONE = "Europe/Stockholm";
  let lang = localStorage.getItem("lk_lang") || "sv";

  async function load(which) {
    if (TEXT[which]) return;
    const res = await fetch(`/ui/static/i18n/${which}.json`);
    TEXT[which] = res.ok ? await res.json() : {};
  }

  function t(key, vars) {
    let s = (TEXT[lang] && TEXT[lang][key]) || TEXT.sv[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
    return s;
  }

  function applyText(root) {
    document.documentElement.lang = lang;
    (root || document).querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  }

  async function setLang(next) {
    await load(next);
    lang = next;
    localStorage.setItem("lk_lang", lang);
    applyText();
    document.dispatchEvent(new Event("lk-lang"));
  }

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

  // Times as the municipality reads them: 24-hour, Europe/Stockholm, whatever the browser's zone.
  function clock(iso, withDate) {
    const opts = { timeZone: ZONE, hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
    return new Date(iso).toLocaleString(lang === "sv" ? "sv-SE" : "en-GB", opts);
  }

  // A code the API keeps (an outcome, a case action, a state) shown by its translated label.
  function label(group, code) {
    const key = `${group}.${code}`;
    const s = t(key);
    return s === key ? code : s;
  }

  // Sign in, check the role, then call start(me). Shows the login form when needed.
  async function page({ roles, start }) {
    await Promise.all([load("sv"), load(lang)]);
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

  // Choose one of `options` ([{value, text}]) in a <dialog>; resolves to the value or null.
  function choose(text, options) {
    const dialog = document.getElementById("choose");
    dialog.querySelector("label span").textContent = text;
    const select = dialog.querySelector("select");
    select.replaceChildren(...options.map((o) => el("option", { value: o.value }, o.text)));
    dialog.showModal();
    select.focus();
    return new Promise((resolve) => {
      dialog.onclose = () => resolve(dialog.returnValue === "ok" ? select.value : null);
    });
  }

  return { t, label, choose, applyText, api, el, duration, clock, page, stream, status, ask, lang: () => lang };
})();
