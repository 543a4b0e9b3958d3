// wecom-bot gateway console: status, open alerts, history, dead letters, template playground,
// config.
// No framework, nothing from the network but this gateway's /api/v1. Safety rule: every string
// goes into the page through textContent; the only HTML inserted is the `html` field of the
// API, message fragments drawn and escaped on the server by wecom_bot.preview.
// Every text it draws comes from the page's catalogue (wecom_bot/locales, in the page's
// language, handed over in a <meta> tag): t(key, {name: value}).
"use strict";

(() => {
  const API = "/api/v1";
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const cell = (row, text, className) => row.append(el("td", className, text));
  const TEXTS = (() => {
    const meta = document.querySelector('meta[name="wecom-bot-i18n"]');
    try {
      return JSON.parse(meta ? meta.content : "{}");
    } catch (_) {
      return {};
    }
  })();
  const t = (key, params = {}) => String(key in TEXTS ? TEXTS[key] : key).replace(
    /\{([a-z_][a-z0-9_]*)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  // A value of a known set (a state, a source, an event) in words, or as it is when unknown.
  const term = (family, value) => (`${family}${value}` in TEXTS ? t(`${family}${value}`) : String(value));
  const state = { view: "status", timer: null, historyCursor: null, selected: null };

  // Times are shown in the gateway's time zone (its config's `timezone`, the zone its mute
  // intervals and messages use), with the offset: a browser elsewhere reads the same clock.
  const clock = { zone: undefined, format: null };

  function setZone(zone) {
    if (typeof zone !== "string" || zone === clock.zone) return;
    try {
      clock.format = new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "longOffset",
      });
      clock.zone = zone;
    } catch (_) {
      clock.format = null; // a zone this browser does not know: its own, with its offset
    }
  }

  function wall(seconds) {
    const d = new Date(seconds * 1000);
    if (clock.format) {
      const p = Object.fromEntries(clock.format.formatToParts(d).map((x) => [x.type, x.value]));
      const offset = p.timeZoneName === "GMT" ? "+00:00" : p.timeZoneName.replace("GMT", "");
      return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}:${p.second}`, offset };
    }
    const pad = (n) => String(Math.abs(n)).padStart(2, "0");
    const minutes = -d.getTimezoneOffset();
    return {
      date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
      offset: `${minutes < 0 ? "-" : "+"}${pad(Math.trunc(minutes / 60))}:${pad(minutes % 60)}`,
    };
  }

  function when(seconds) {
    if (typeof seconds !== "number") return "—";
    const w = wall(seconds);
    return `${w.date} ${w.time} ${w.offset}`;
  }

  // A <input type=datetime-local> value ("2026-12-07T09:00") read in the gateway's zone.
  function epochOfWall(value) {
    const [date, time] = value.split("T");
    const [y, mo, d] = date.split("-").map(Number);
    const [h, mi] = (time || "0:0").split(":").map(Number);
    const asUtc = Date.UTC(y, mo - 1, d, h, mi) / 1000;
    const offsetAt = (t) => {
      const [sign, hh, mm] = /([+-])(\d\d):(\d\d)/.exec(wall(t).offset).slice(1);
      return (sign === "-" ? -1 : 1) * (Number(hh) * 3600 + Number(mm) * 60);
    };
    const first = asUtc - offsetAt(asUtc);
    return asUtc - offsetAt(first); // again at the instant itself: right across a DST change
  }

  function wallOfEpoch(seconds) {
    const w = wall(seconds);
    return `${w.date}T${w.time.slice(0, 5)}`;
  }

  function bytes(size, limit) {
    return limit ? t("console.bytes_of", { size, limit }) : t("console.bytes", { size });
  }

  async function call(path, options = {}) {
    const init = { cache: "no-store", headers: {}, ...options };
    if (options.body !== undefined) {
      init.method = init.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const answer = await fetch(API + path, init);
    let data = null;
    try {
      data = await answer.json();
    } catch (_) {
      data = null;
    }
    if (data && typeof data.timezone === "string") setZone(data.timezone);
    setConn(answer.status === 401 ? "denied" : "ok");
    if (!answer.ok) {
      const message = data && data.error ? data.error : (data && data.message) || t("console.http", { status: answer.status });
      const error = new Error(typeof message === "string" ? message : JSON.stringify(message));
      error.status = answer.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function setConn(stateName) {
    const conn = $("gc-conn");
    conn.dataset.state = stateName;
    conn.textContent = term("console.conn.", stateName);
  }

  // Server-drawn message fragments: the one place HTML is inserted (see the header).
  function preview(html) {
    const wrap = el("div", "gc-preview");
    wrap.innerHTML = html;
    for (const node of wrap.querySelectorAll("[data-wb-aspect-ratio]")) {
      node.style.aspectRatio = node.dataset.wbAspectRatio;
    }
    return wrap;
  }

  function result(id, text, ok) {
    const node = $(id);
    node.textContent = text;
    node.dataset.ok = ok ? "true" : "false";
  }

  // What the server says (a reload's result, an error, an event, a render's warning) comes
  // with a `code` and `params` beside its English text: the page says it in its own words, the
  // catalogue's console.server.<code>. Free text it carries (`params.detail`: an error in its
  // writer's words, WeCom's errmsg, a config error) and a message whose code the page does not
  // know are shown as they are, marked as quoted (<q data-quoted>), never as the page's words.
  const SERVER = "console.server.";

  function quoted(text) {
    const node = el("q", "gc-quoted", text);
    node.dataset.quoted = "true";
    return node;
  }

  function said(node, code, params, fallback) {
    node.replaceChildren();
    if (code && `${SERVER}${code}` in TEXTS) {
      node.append(t(`${SERVER}${code}`, params || {}));
      if (params && params.detail) node.append(" ", quoted(params.detail));
    } else if (fallback) {
      node.append(quoted(fallback));
    }
    return node;
  }

  // A failed call, in the result line `id`: the server's answer said (see said); an answer
  // with no text of the server's ("HTTP 502") is the page's own.
  function failed(id, error) {
    const node = $(id);
    const data = error.data || {};
    if (data.code || data.error || data.message || error.status === undefined) {
      said(node, data.code, data.params, error.message);
    } else {
      node.textContent = error.message;
    }
    node.dataset.ok = "false";
  }

  // -- navigation ------------------------------------------------------------------------------

  function show(view) {
    state.view = view;
    if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
    for (const button of document.querySelectorAll(".gc-tab")) {
      button.classList.toggle("gc-tab--on", button.dataset.view === view);
    }
    for (const section of document.querySelectorAll(".gc-view")) {
      section.hidden = section.id !== `view-${view}`;
    }
    refresh();
  }

  function refresh() {
    const loaders = {
      status: loadStatus, alerts: loadAlerts, history: () => loadHistory(false), dead: loadDead,
      playground: loadPlayground, config: loadConfig,
    };
    loaders[state.view]().catch((error) => {
      if (error.status === undefined) setConn("down");
    });
  }

  // The tabs' badges (open alerts, dead letters) stay current whichever view is open.
  function refreshBadges() {
    if (state.view !== "alerts") loadAlerts().catch(() => {});
    if (state.view !== "dead" && state.view !== "status") {
      call("/dead-letters?limit=1").then((data) => setBadge(data.total)).catch(() => {});
    }
  }

  // -- status ----------------------------------------------------------------------------------

  async function loadStatus() {
    const data = await call("/status");
    const body = $("st-bots").tBodies[0];
    body.replaceChildren();
    let dead = 0;
    for (const bot of data.bots) {
      dead += bot.dead_letters;
      const row = el("tr");
      row.dataset.bot = bot.name;
      cell(row, bot.name, "gc-strong");
      cell(row, bot.keys.join(", "), "gc-mono");
      cell(row, bot.queue_depth);
      const window = bot.window;
      const meter = el("td");
      const bar = el("div", "gc-meter");
      const fill = el("div", "gc-meter-fill");
      fill.style.width = `${Math.min(100, (100 * window.used) / Math.max(window.limit, 1))}%`;
      bar.append(fill);
      meter.append(bar, el("span", "gc-small", t("console.status.window", window)));
      row.append(meter);
      cell(row, when(bot.last_success_at));
      const failure = bot.last_failure_at
        ? `${when(bot.last_failure_at)}${bot.last_errcode !== null && bot.last_errcode !== undefined ? ` · ${t("console.errcode", { code: bot.last_errcode })}` : ""}`
        : "—";
      const failed = el("td", bot.last_failure_at ? "gc-bad" : "", failure);
      if (bot.last_error) {
        failed.title = bot.last_error; // the reason in its writer's words: quoted data
        failed.dataset.quotedTitle = "true";
      }
      row.append(failed);
      cell(row, bot.dead_letters, bot.dead_letters ? "gc-bad" : "");
      body.append(row);
    }
    const routes = $("st-routes").tBodies[0];
    routes.replaceChildren();
    for (const route of data.routes) {
      const row = el("tr");
      cell(row, route.name, "gc-strong");
      const muted = route.muted;
      const text = muted
        ? t("console.status.route_muted", { action: term("console.mute_action.", muted.action), reason: mutedWhy(muted) }) +
          (muted.resumes_at ? ` · ${t("console.status.until", { time: when(muted.resumes_at) })}` : "")
        : t("console.status.route_active");
      cell(row, text, muted ? "gc-warn" : "gc-good");
      cell(row, route.bots.join(", "));
      cell(row, route.oncall || "—");
      routes.append(row);
    }
    loadHeartbeats(data.heartbeats || []);
    const reload = data.last_reload || {};
    $("st-meta").replaceChildren(t("console.status.meta", {
      store: data.store.location,
      answering: t(data.store.ok ? "console.status.store_ok" : "console.status.store_down"),
      rate: data.rate,
      zone: clock.zone || t("console.status.browser_zone"),
      time: when(reload.at),
    }), " ", said(el("span"), reload.code, reload.params, reload.message));
    setBadge(dead + data.inbox.dead_letters); // as the dead-letters view counts them
  }

  // Each heartbeat (dead man's switch): its state as the store holds it.
  const BEAT_TONES = { ok: "gc-good", waiting: "gc-warn", missing: "gc-bad", unknown: "" };

  function loadHeartbeats(beats) {
    $("st-heartbeats-box").hidden = !beats.length;
    const body = $("st-heartbeats").tBodies[0];
    body.replaceChildren();
    for (const beat of beats) {
      const row = el("tr");
      row.dataset.heartbeat = beat.name;
      cell(row, beat.title, "gc-strong");
      cell(row, t("console.heartbeat." + beat.state), BEAT_TONES[beat.state] || "");
      const seen = !beat.last_seen ? t("console.heartbeat.never")
        : beat.source ? t("console.heartbeat.seen", { time: when(beat.last_seen), source: beat.source })
          : when(beat.last_seen);
      cell(row, seen);
      cell(row, beat.expected_by ? when(beat.expected_by) : "—", beat.state === "missing" ? "gc-bad" : "");
      body.append(row);
    }
  }

  // Why a route is muted, from the interval names (a record from before they were kept: the
  // server's own words).
  function mutedWhy(muting) {
    let why;
    if (muting.inside && muting.inside.length) {
      why = t("console.muted.inside", { names: muting.inside.join(", ") });
    } else if (muting.outside && muting.outside.length) {
      why = t("console.muted.outside", { names: muting.outside.join(", ") });
    } else {
      return muting.reason || t("console.alerts.state.interval");
    }
    return muting.endless ? why + t("console.muted.endless") : why;
  }

  function setBadge(count) {
    const badge = $("gc-dead-badge");
    badge.hidden = !count;
    badge.textContent = String(count);
  }

  // -- open alerts -----------------------------------------------------------------------------

  const NAME_KEY = "wecom-bot-console-name";
  const SILENCE_FOR = [["1h", "console.alerts.for_1h"], ["4h", "console.alerts.for_4h"], ["24h", "console.alerts.for_24h"]];

  function since(seconds, now) {
    const total = Math.max(0, Math.floor(now - seconds));
    const d = Math.floor(total / 86400), h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    if (d) return t("console.duration.dh", { d, h });
    if (h) return t("console.duration.hm", { h, m });
    return m ? t("console.duration.m", { m }) : t("console.duration.s", { s: total });
  }

  function nextText(next) {
    if (!next) return "—";
    const what = next.kind === "remind" ? t("console.next.remind") : t("console.next.escalation", { step: next.step + 1 });
    // "@all" is WeCom's own name for everyone: it keeps its one "@".
    const who = next.mention && next.mention.users && next.mention.users.length
      ? ` · ${next.mention.users.map((u) => (u.startsWith("@") ? u : `@${u}`)).join(", ")}` : "";
    return t("console.next.at", { what, time: when(next.at), route: next.route }) + who;
  }

  function stateText(group) {
    if (group.state === "silenced") {
      return t("console.alerts.state.silenced", { time: when(group.silenced_until), by: group.acknowledged_by });
    }
    if (group.state === "acknowledged") {
      const [first, ...others] = group.acknowledgers.length
        ? group.acknowledgers : [{ by: group.acknowledged_by, at: group.acknowledged_at }];
      const also = others.length
        ? ` · ${t("console.alerts.state.also", { names: others.map((a) => t("console.alerts.state.by_at", { by: a.by, time: when(a.at) })).join(", ") })}`
        : "";
      return t("console.alerts.state.acknowledged", { by: first.by, time: when(first.at) }) + also;
    }
    const held = group.held;
    if ((group.state === "muted" || group.state === "deferred") && held) {
      const until = held.until ? t("console.alerts.state.until", { time: when(held.until) }) : "";
      const dropped = held.action === "drop" ? t("console.alerts.state.dropped") : "";
      const intervals = mutedWhy({ ...held, reason: held.intervals });
      const key = group.state === "muted" ? "console.alerts.state.held_muted" : "console.alerts.state.held_deferred";
      return t(key, { until, dropped, intervals });
    }
    return t("console.alerts.state.open");
  }

  async function loadAlerts() {
    const data = await call("/alerts");
    const body = $("al-list").tBodies[0];
    body.replaceChildren();
    $("al-empty").hidden = data.groups.length > 0;
    // Only what needs a human: held (muted, deferred), silenced and acknowledged groups are not.
    setOpenBadge(data.needs_human);
    for (const group of data.groups) {
      const row = el("tr");
      row.dataset.group = group.id;
      const name = el("td");
      name.append(el("div", "gc-strong", group.name || t("console.alerts.unnamed")));
      const labels = group.labels.filter(([n]) => n !== "alertname").map(([n, v]) => `${n}=${v}`);
      name.append(el("div", "gc-small", `${labels.join(" ")}${labels.length ? " · " : ""}` +
        `${t("console.alerts.count", { count: group.alerts })} · ${group.routes.join(", ")}`));
      row.append(name);
      cell(row, `${when(group.firing_since)} (${since(group.firing_since, data.now)})`);
      cell(row, stateText(group), `gc-state gc-state--${group.state}`);
      cell(row, nextText(group.next));
      const act = el("td", "gc-act");
      // A group acknowledged already: a second person adds their name, quietly.
      const again = group.state === "acknowledged";
      const ack = el("button", "", t(again ? "console.alerts.add_name" : "console.alerts.acknowledge"));
      ack.type = "button";
      ack.disabled = !(group.state === "open" || again);
      if (again) ack.title = t("console.alerts.add_name_title");
      ack.addEventListener("click", () => alertAction(group, "acknowledge"));
      const choice = el("select");
      for (const [d, key] of SILENCE_FOR) choice.append(new Option(t(key), d));
      const silence = el("button", "", t("console.alerts.silence"));
      silence.type = "button";
      silence.disabled = !group.can_silence || group.state === "silenced";
      if (!group.can_silence) silence.title = t("console.alerts.no_alertmanager");
      silence.addEventListener("click", () => alertAction(group, "silence", choice.value));
      act.append(ack, choice, silence);
      row.append(act);
      body.append(row);
    }
  }

  function setOpenBadge(count) {
    const badge = $("gc-open-badge");
    badge.hidden = !count;
    badge.textContent = String(count);
  }

  async function alertAction(group, kind, duration) {
    const name = $("al-name").value.trim();
    if (!name) {
      result("al-result", t("console.alerts.need_name"), false);
      $("al-name").focus();
      return;
    }
    try { localStorage.setItem(NAME_KEY, name); } catch (_) { /* storage off: ask again */ }
    const body = kind === "silence" ? { name, duration } : { name };
    try {
      const data = await call(`/alerts/${encodeURIComponent(group.id)}/${kind}`, { body });
      result("al-result", kind === "silence"
        ? t("console.alerts.silenced", { name: group.name, time: when(data.ends_at), id: data.silence_id })
        : data.first ? t("console.alerts.acknowledged", { name: group.name })
          : t("console.alerts.added", {
            name: group.name, by: data.acknowledgers[0].by, time: when(data.acknowledgers[0].at),
          }), true);
    } catch (error) {
      failed("al-result", error);
    }
    await loadAlerts();
  }

  // -- history ---------------------------------------------------------------------------------

  function historyQuery(more) {
    const params = new URLSearchParams();
    const label = $("hi-label").value.trim();
    if (label) for (const part of label.split(",")) if (part.trim()) params.append("label", part.trim());
    for (const [id, name] of [["hi-bot", "bot"], ["hi-state", "state"], ["hi-source", "source"], ["hi-q", "q"]]) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    const since = $("hi-since").value;
    if (since) params.set("since", String(epochOfWall(since)));
    const until = $("hi-until").value;
    if (until) params.set("until", String(epochOfWall(until)));
    if (more && state.historyCursor !== null) params.set("until", String(state.historyCursor));
    params.set("limit", "50");
    return params;
  }

  // A storm summary links here (#history?label=alertname=X&since=EPOCH): fill the filters.
  function applyHistoryFilters(params) {
    const label = params.getAll("label").join(", ");
    if (label) $("hi-label").value = label;
    for (const [id, name] of [["hi-q", "q"], ["hi-state", "state"], ["hi-source", "source"]]) {
      if (params.has(name)) $(id).value = params.get(name);
    }
    const since = Number(params.get("since"));
    if (since > 0) $("hi-since").value = wallOfEpoch(since);
  }

  async function loadHistory(more) {
    const data = await call(`/history?${historyQuery(more)}`);
    const body = $("hi-list").tBodies[0];
    if (!more) body.replaceChildren();
    for (const entry of data.entries) {
      const row = el("tr", "gc-click");
      row.dataset.id = entry.id;
      row.tabIndex = 0;
      cell(row, when(entry.received_at));
      cell(row, term("console.state.", entry.state), `gc-state gc-state--${entry.state}`);
      cell(row, term("console.source.", entry.source));
      cell(row, entry.title);
      cell(row, entry.routes.join(", "));
      cell(row, entry.messages);
      row.addEventListener("click", () => openEntry(entry.id));
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") openEntry(entry.id); });
      body.append(row);
    }
    state.historyCursor = data.next_until;
    $("hi-more").hidden = data.next_until === null;
    if (!more && state.selected) openEntry(state.selected).catch(() => {});
    if (!more) await fillBots();
  }

  async function fillBots() {
    const select = $("hi-bot");
    if (select.options.length > 1) return;
    const data = await call("/playground");
    for (const bot of data.bots) select.append(new Option(bot, bot));
  }

  async function openEntry(id) {
    state.selected = id;
    const entry = await call(`/history/${encodeURIComponent(id)}`);
    const panel = $("hi-detail");
    panel.hidden = false;
    panel.replaceChildren();
    panel.dataset.id = id;
    panel.append(el("h2", "", entry.title || entry.id));
    const facts = el("dl", "gc-facts");
    const fact = (name, value) => facts.append(el("dt", "", name), el("dd", "", value));
    fact(t("console.detail.state"), term("console.state.", entry.state));
    fact(t("console.detail.received"), when(entry.received_at));
    fact(t("console.detail.source"), `${term("console.source.", entry.source)} · ${term("console.firing.", entry.status)} · ` +
      t("console.alerts.count", { count: entry.alerts }));
    const cut = entry.detail && entry.detail.cut;
    if (cut) fact(t("console.detail.cut"), t("console.detail.cut_text", { alerts: cut.alerts, values: cut.values }));
    fact(t("console.detail.routes"), entry.routes.join(", ") || "—");
    fact(t("console.detail.bots"), entry.bots.join(", ") || "—");
    fact(t("console.detail.labels"), entry.labels.map(([n, v]) => `${n}=${v}`).join(" ") || "—");
    panel.append(facts);
    panel.append(el("h3", "", t("console.detail.messages", { count: entry.messages.length })));
    const records = new Map(entry.records.map((r) => [r.id, r]));
    for (const message of entry.messages) {
      const box = el("div", "gc-message");
      const record = records.get(message.record_id);
      let line = `${message.bot} · ${message.msgtype} · ${t("console.detail.part", { part: message.part, parts: message.parts })}` +
        ` · ${bytes(message.size, message.limit)}`;
      if (message.record_id !== null) line += ` · #${message.record_id}`;
      if (record) {
        line += ` · ${record.replaced_by ? t("console.detail.folded", { id: record.replaced_by }) : term("console.record.", record.status)}`;
      }
      if (message.muted) line += ` · ${t("console.detail.muted", { action: term("console.mute_action.", message.muted.action) })}`;
      box.append(el("div", "gc-small", line), preview(message.html));
      panel.append(box);
    }
    if (entry.digests.length) {
      panel.append(el("h3", "", t("console.detail.digests")));
      for (const digest of entry.digests) {
        const box = el("div", "gc-message");
        const kind = digest.kind === "image" ? ` · ${t("console.detail.graph_image")}` : "";
        box.append(el("div", "gc-small", `#${digest.id} · ${digest.bot}${kind} · ${term("console.record.", digest.status)}`), preview(digest.html));
        panel.append(box);
      }
    }
    panel.append(el("h3", "", t("console.detail.events")));
    const list = el("ol", "gc-events");
    for (const event of entry.events) {
      const item = el("li", `gc-event gc-event--${event.kind}`);
      let text = `${when(event.at)} · ${term("console.event.", event.kind)}`;
      if (event.record_id !== null) text += ` · #${event.record_id}`;
      if (event.bot) text += ` · ${event.bot}`;
      if (event.errcode !== null && event.errcode !== undefined) text += ` · ${t("console.errcode", { code: event.errcode })}`;
      item.append(el("span", "", text));
      if (event.detail) item.append(eventDetail(event));
      list.append(item);
    }
    panel.append(list);
  }

  // An event's detail in the page's words (see said); why it was held, from its intervals.
  function eventDetail(event) {
    const params = event.params || {};
    if (event.code === "event.muting" && ((params.inside || []).length || (params.outside || []).length)) {
      return el("div", "gc-small", mutedWhy(params));
    }
    return said(el("div", "gc-small"), event.code, params, event.detail);
  }

  // -- dead letters ----------------------------------------------------------------------------

  async function loadDead() {
    const data = await call("/dead-letters?limit=500");
    const list = $("dl-list");
    const checked = new Set([...list.querySelectorAll("input:checked")].map((i) => i.value));
    list.replaceChildren();
    $("dl-empty").hidden = data.dead_letters.length > 0;
    setBadge(data.total);
    for (const letter of data.dead_letters) {
      const item = el("li", "gc-dead-item");
      item.dataset.id = String(letter.id);
      const head = el("label", "gc-dead-head");
      const box = el("input");
      box.type = "checkbox";
      box.value = String(letter.id);
      box.checked = checked.has(box.value);
      head.append(box, el("span", "gc-strong", `#${letter.id} · ${letter.bot} · ${letter.kind}`));
      head.append(el("span", "gc-small", ` ${t("console.dead.since", { time: when(letter.updated_at), attempts: letter.attempts })}`));
      item.append(head);
      const reason = el("div", "gc-bad gc-small");
      // The reason usually names its errcode already: say it once. It is quoted as recorded
      // (WeCom's errmsg, a transport or render error: the words of whoever wrote it).
      const text = letter.last_error || "";
      const code = letter.errcode !== null && !text.includes(String(letter.errcode)) ? ` ${t("console.errcode", { code: letter.errcode })}:` : "";
      reason.append(`${t("console.dead.reason")}${code} `);
      if (text) reason.append(quoted(text));
      item.append(reason, preview(letter.html));
      list.append(item);
    }
  }

  async function deadAction(kind) {
    const ids = [...$("dl-list").querySelectorAll("input:checked")].map((i) => Number(i.value));
    if (!ids.length) {
      result("dl-result", t("console.dead.select_first"), false);
      return;
    }
    try {
      const data = await call(`/dead-letters/${kind}`, { body: { ids } });
      const count = kind === "requeue" ? data.requeued : data.discarded;
      result("dl-result", t(kind === "requeue" ? "console.dead.requeued" : "console.dead.discarded", { count }), true);
    } catch (error) {
      failed("dl-result", error);
    }
    $("dl-all").checked = false;
    await loadDead();
  }

  // -- playground ------------------------------------------------------------------------------

  let playgroundLoaded = false;

  async function loadPlayground() {
    if (playgroundLoaded) return;
    const data = await call("/playground");
    const route = $("pg-route");
    state.routes = data.routes;
    for (const item of data.routes) route.append(new Option(`${item.name} (${item.template})`, item.name));
    for (const name of data.templates) $("pg-template").append(new Option(name, name));
    for (const name of data.msgtypes) $("pg-msgtype").append(new Option(name, name));
    for (const bot of data.bots) $("pg-bot").append(new Option(bot, bot));
    describeDefaults();
    for (const sample of data.samples) {
      $("pg-sample").append(new Option(`${sample.name} (${term("console.source.", sample.source)})`, sample.name));
    }
    playgroundLoaded = true;
    if (!$("pg-payload").value) await loadSample();
  }

  // An empty choice stands for what the gateway picks, which depends on the route: say it.
  function describeDefaults() {
    const route = (state.routes || []).find((r) => r.name === $("pg-route").value);
    $("pg-template").options[0].text = route
      ? t("console.playground.template_route", { template: route.template }) : t("console.playground.template_default");
    $("pg-msgtype").options[0].text = route && route.msgtype
      ? t("console.playground.msgtype_route", { msgtype: route.msgtype }) : t("console.playground.msgtype_bot");
    // The bot is always named (a send needs one): the route's first, as a render without one.
    if (route && route.bots.length) $("pg-bot").value = route.bots[0];
  }

  async function loadSample() {
    const name = $("pg-sample").value;
    if (!name) return;
    const data = await call(`/playground/samples/${encodeURIComponent(name)}`);
    $("pg-payload").value = JSON.stringify(data.payload, null, 2);
    $("pg-source").value = data.source;
  }

  function playgroundBody() {
    let payload;
    try {
      payload = JSON.parse($("pg-payload").value);
    } catch (error) {
      throw new Error(t("console.playground.bad_json", { error: error.message }));
    }
    const body = { source: $("pg-source").value, payload };
    const pick = (id, name) => { const v = $(id).value; if (v) body[name] = v; };
    pick("pg-route", "route");
    pick("pg-template", "template");
    pick("pg-msgtype", "msgtype");
    pick("pg-bot", "bot");
    const source = $("pg-template-source").value;
    if (source.trim()) body.template_source = source;
    return body;
  }

  // The template editor: line numbers beside the textarea, and the line of an error marked
  // (a red number, a band over the line, the caret put there) until the text changes.
  const LINE_PX = 18;
  const editor = { error: null };

  function editorLines() {
    const text = $("pg-template-source").value;
    const count = text.split("\n").length;
    const gutter = $("pg-gutter");
    if (gutter.childElementCount !== count) {
      const numbers = [];
      for (let n = 1; n <= count; n += 1) numbers.push(el("span", "", n));
      gutter.replaceChildren(...numbers);
    }
    for (const number of gutter.querySelectorAll(".gc-gutter-line--error")) {
      number.classList.remove("gc-gutter-line--error");
    }
    const line = editor.error;
    if (line !== null && line <= count) gutter.children[line - 1].classList.add("gc-gutter-line--error");
    editorScrolled();
  }

  function editorScrolled() {
    const area = $("pg-template-source");
    $("pg-gutter").scrollTop = area.scrollTop;
    const mark = $("pg-mark");
    const line = editor.error;
    if (line === null) {
      mark.hidden = true;
      return;
    }
    const inset = area.clientTop + parseFloat(getComputedStyle(area).paddingTop);
    const top = inset + (line - 1) * LINE_PX - area.scrollTop;
    mark.hidden = top < area.clientTop || top + LINE_PX > area.clientTop + area.clientHeight;
    mark.style.top = `${top}px`;
  }

  function markLine(line, column) {
    const area = $("pg-template-source");
    const lines = area.value.split("\n");
    editor.error = line >= 1 && line <= lines.length ? line : null;
    if (editor.error !== null) {
      $("pg-template-box").open = true;
      const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
      const at = start + Math.min(Math.max((column || 1) - 1, 0), lines[line - 1].length);
      area.setSelectionRange(at, at);
      area.scrollTop = Math.max(0, (line - 1) * LINE_PX - area.clientHeight / 2);
    }
    editorLines();
  }

  function clearTemplateError() {
    $("pg-error").hidden = true;
    $("pg-summary").dataset.error = "false";
    editor.error = null;
    editorLines();
  }

  // Shown right under the editor, from the answer's fields (its text is never parsed).
  function showTemplateError(error) {
    const place = error.in_template_source
      ? t("console.template_error.here") : t("console.template_error.in", { template: error.template });
    const at = [];
    if (error.line !== null && error.line !== undefined) at.push(t("console.template_error.line", { line: error.line }));
    if (error.column !== null && error.column !== undefined) at.push(t("console.template_error.column", { column: error.column }));
    $("pg-error-where").textContent = at.length ? `${place} · ${at.join(", ")}` : place;
    // The template's own error, quoting the template: data, marked as quoted.
    $("pg-error-what").replaceChildren(quoted(error.message));
    $("pg-error").hidden = false;
    $("pg-summary").textContent = t(error.in_template_source
      ? "console.template_error.nothing_source" : "console.template_error.nothing_template");
    $("pg-summary").dataset.error = "true";
    if (error.in_template_source && error.line) markLine(error.line, error.column);
  }

  async function render() {
    const out = $("pg-output");
    out.replaceChildren();
    $("pg-warnings").replaceChildren();
    clearTemplateError();
    try {
      const data = await call("/playground/render", { body: playgroundBody() });
      $("pg-summary").textContent =
        `${t("console.playground.as", { template: data.used_template, msgtype: data.msgtype })} · ${bytes(data.size, data.limit)}` +
        ` · ${data.fits ? t("console.playground.fits") : t("console.playground.split", { count: data.parts.length })}`;
      $("pg-summary").dataset.fits = String(data.fits);
      data.warnings.forEach((warning, index) => {
        const coded = (data.warning_codes || [])[index];
        $("pg-warnings").append(said(el("li"), coded && coded.code, coded && coded.params, warning));
      });
      data.parts.forEach((part, index) => {
        const box = el("div", "gc-part");
        box.append(el("div", "gc-small", `${t("console.detail.part", { part: index + 1, parts: data.parts.length })} · ${bytes(part.size, part.limit)}`));
        box.append(preview(part.html));
        out.append(box);
      });
      result("pg-result", "", true);
    } catch (error) {
      $("pg-summary").textContent = "";
      const detail = error.data && error.data.template_error;
      if (detail) {
        result("pg-result", "", false);
        showTemplateError(detail);
      } else {
        failed("pg-result", error);
      }
    }
  }

  // The image a route sends after the alert's text (issue 28), drawn by the gateway itself.
  async function previewGraph() {
    try {
      const data = await call("/playground/graph", { body: playgroundBody() });
      const box = el("div", "gc-part");
      const chart = data.chart;
      const what = chart
        ? t("console.playground.graph_series", { count: chart.series.length, source: data.from })
        : t("console.playground.graph_fetched", { source: data.from });
      box.append(el("div", "gc-small", `${t("console.playground.graph_caption")} · ${what} · ${bytes(data.bytes, 2097152)}`), preview(data.html));
      $("pg-output").append(box);
      result("pg-result", "", true);
    } catch (error) {
      failed("pg-result", error);
    }
  }

  // A test send goes to a real group: it is confirmed first, naming the bot.
  function confirmSend() {
    const bot = $("pg-bot").value;
    if (!bot) {
      result("pg-result", t("console.playground.need_bot"), false);
      return;
    }
    $("pg-confirm-bot").textContent = bot;
    $("pg-confirm-send").textContent = t("console.confirm.send", { bot });
    $("pg-confirm").showModal();
  }

  async function send() {
    $("pg-confirm").close();
    clearTemplateError();
    try {
      const data = await call("/playground/send", { body: playgroundBody() });
      result("pg-result", t("console.playground.queued", {
        count: data.queued.length, bot: data.bot, marker: t("console.test_marker"), id: data.notification_id,
      }), true);
    } catch (error) {
      const detail = error.data && error.data.template_error;
      if (detail) result("pg-result", t("console.playground.not_sent"), false);
      else failed("pg-result", error);
      if (detail) showTemplateError(detail);
    }
  }

  // -- config ----------------------------------------------------------------------------------

  async function loadConfig() {
    const data = await call("/config");
    $("cf-text").textContent = JSON.stringify(data.config, null, 2);
    const reload = data.last_reload || {};
    $("cf-meta").replaceChildren(t("console.config.meta", {
      path: data.path || t("console.config.no_file"),
      time: when(reload.at),
      result: t(reload.ok ? "console.config.ok" : "console.config.failed"),
    }), " ", said(el("span"), reload.code, reload.params, reload.message));
  }

  async function reloadConfig() {
    try {
      const data = await call("/config/reload", { body: {} });
      said($("cf-result"), data.code, data.params, data.message).dataset.ok = "true";
    } catch (error) {
      failed("cf-result", error);
    }
    await loadConfig();
  }

  // -- wiring ----------------------------------------------------------------------------------

  // The language switch keeps the open view: the server remembers the choice in a cookie.
  function wireLanguages() {
    for (const link of document.querySelectorAll("#gc-lang a[data-lang]")) {
      if (link.dataset.lang === document.documentElement.lang) link.setAttribute("aria-current", "true");
      link.addEventListener("click", (event) => {
        event.preventDefault();
        location.href = `${location.pathname}?lang=${encodeURIComponent(link.dataset.lang)}${location.hash}`;
      });
    }
  }

  function start() {
    wireLanguages();
    for (const button of document.querySelectorAll(".gc-tab")) {
      button.addEventListener("click", () => show(button.dataset.view));
    }
    $("hi-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.historyCursor = null;
      loadHistory(false).catch((error) => setConn(error.status ? "ok" : "down"));
    });
    $("hi-more").addEventListener("click", () => loadHistory(true));
    $("dl-all").addEventListener("change", () => {
      for (const box of $("dl-list").querySelectorAll("input[type=checkbox]")) box.checked = $("dl-all").checked;
    });
    $("dl-requeue").addEventListener("click", () => deadAction("requeue"));
    $("dl-discard").addEventListener("click", () => deadAction("discard"));
    $("pg-load").addEventListener("click", () => loadSample());
    $("pg-route").addEventListener("change", () => describeDefaults());
    $("pg-render").addEventListener("click", () => render());
    $("pg-graph").addEventListener("click", () => previewGraph());
    $("pg-send").addEventListener("click", () => confirmSend());
    $("pg-confirm-send").addEventListener("click", () => send());
    $("pg-confirm-cancel").addEventListener("click", () => $("pg-confirm").close());
    $("pg-template-source").addEventListener("input", () => {
      editor.error = null;
      editorLines();
    });
    $("pg-template-source").addEventListener("scroll", editorScrolled);
    editorLines();
    $("cf-reload").addEventListener("click", () => reloadConfig());
    try { $("al-name").value = localStorage.getItem(NAME_KEY) || ""; } catch (_) { /* off */ }
    const views = ["status", "alerts", "history", "dead", "playground", "config"];
    const fromHash = () => {
      const [view, query] = (location.hash || "").slice(1).split("?", 2);
      if (view === "history" && query) applyHistoryFilters(new URLSearchParams(query));
      return views.includes(view) ? view : "status";
    };
    window.addEventListener("hashchange", () => {
      const view = fromHash();
      if (view !== state.view || view === "history") show(view);
    });
    // The gateway's time zone comes with the page, before the first view draws a time.
    const zone = document.querySelector('meta[name="gateway-timezone"]');
    if (zone && zone.content) setZone(zone.content);
    show(fromHash());
    refreshBadges();
    // Live views are polled; the playground and config change only when asked.
    state.timer = setInterval(() => {
      if (document.hidden) return;
      if (state.view === "status" || state.view === "alerts" || state.view === "dead") refresh();
      refreshBadges();
    }, POLL_MS);
  }

  start();
})();
