// wecom-bot emulator page: the groups in a sidebar, the selected one as a WeCom chat view,
// kept live by the Server-Sent Events of /api/events. No framework, no network beyond this
// server. Safety rule: the only strings inserted as HTML are the server-rendered preview
// fragments (escaped by wecom_bot.preview); everything else goes in through textContent.
// Every text it draws comes from the page's catalogue (wecom_bot/locales, in the page's
// language, handed over in a <meta> tag): t(key, {name: value}).
"use strict";

(() => {
  const ENTRY_PAGE = 200;
  const RAW_STRING_CAP = 2000;
  const GROUP_ID = /^[0-9a-f]{8}$/;

  const $ = (id) => document.getElementById(id);
  const el = (tag, className, text) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const number = (n) => Number(n).toLocaleString("en-US");
  const TEXTS = (() => {
    const meta = document.querySelector('meta[name="wecom-bot-i18n"]');
    try {
      return JSON.parse(meta ? meta.content : "{}");
    } catch {
      return {};
    }
  })();
  const t = (key, params = {}) =>
    String(key in TEXTS ? TEXTS[key] : key).replace(/\{([a-z_][a-z0-9_]*)\}/g, (whole, name) =>
      name in params ? String(params[name]) : whole,
    );

  const state = {
    groups: [], // as /api/groups returns them, in its order
    unread: new Map(), // group id -> entries arrived while the group was not shown
    selected: null,
    lastShown: 0, // id of the newest entry drawn in the chat view
    loadToken: 0, // bumps on every selection, so stale answers are dropped
    fetching: false,
    tailNext: false, // the next fetch asks for the newest page (a fresh selection)
    fetchAgain: false,
    lastEventId: Number(document.body.dataset.lastEntryId) || 0,
    source: null,
    retryDelay: 1000,
    groupsTimer: null,
    pinned: true, // the chat is scrolled to its end and should stay there as it grows
  };

  async function getJSON(path, options) {
    const answer = await fetch(path, { cache: "no-store", ...options });
    if (!answer.ok) {
      const error = new Error(t("emulator.http", { path, status: answer.status }));
      error.status = answer.status;
      throw error;
    }
    return answer.json();
  }

  // -- sidebar ----------------------------------------------------------------------------

  function counters(group) {
    const parts = [t("emulator.sent", { count: number(group.accepted) })];
    if (group.rejected_total) parts.push(t("emulator.rejected", { count: number(group.rejected_total) }));
    if (group.rate_limited) parts.push(t("emulator.rate_limited", { count: number(group.rate_limited) }));
    if (group.faults_injected) parts.push(t("emulator.faults", { count: number(group.faults_injected) }));
    return parts.join(" · ");
  }

  function clock(seconds, withSeconds = true) {
    if (typeof seconds !== "number") return "";
    const date = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    const minutes = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
    return withSeconds ? `${minutes}:${pad(date.getSeconds())}` : minutes;
  }

  function renderSidebar() {
    const list = $("ep-groups");
    const items = state.groups.map((group) => {
      const item = el("li", "ep-group");
      item.dataset.groupId = group.id;
      item.tabIndex = 0;
      item.setAttribute("role", "button");
      if (group.id === state.selected) {
        item.classList.add("ep-group--selected");
        item.setAttribute("aria-current", "true");
      }
      const avatar = el("div", "ep-group-avatar", group.masked_key.slice(0, 1).toUpperCase());
      const unread = state.unread.get(group.id) || 0;
      if (unread > 0) {
        avatar.append(el("span", "ep-badge", unread > 99 ? "99+" : unread));
      }
      const info = el("div", "ep-group-info");
      const top = el("div", "ep-group-top");
      top.append(
        el("span", "ep-group-key", group.masked_key),
        el("span", "ep-group-time", clock(group.last_activity_at, false)),
      );
      info.append(top, el("div", "ep-group-counts", counters(group)));
      item.append(avatar, info);
      return item;
    });
    list.replaceChildren(...items);
    $("ep-side-empty").hidden = state.groups.length > 0;
    renderHeader();
  }

  function renderHeader() {
    const group = state.groups.find((g) => g.id === state.selected);
    $("ep-head").hidden = !group;
    if (!group) return;
    $("ep-head-title").textContent = group.masked_key;
    const stats = $("ep-head-stats");
    stats.replaceChildren(
      el("span", "ep-stat", t("emulator.group", { id: group.id })),
      el("span", "ep-stat", t("emulator.sent", { count: number(group.accepted) })),
      el(
        "span",
        group.rejected_total ? "ep-stat ep-stat--bad" : "ep-stat",
        t("emulator.rejected", { count: number(group.rejected_total) }),
      ),
    );
    if (group.rate_limited) {
      stats.append(
        el("span", "ep-stat ep-stat--bad", t("emulator.rate_limited", { count: number(group.rate_limited) })),
      );
    }
  }

  async function loadGroups() {
    const answer = await getJSON("/api/groups");
    state.groups = Array.isArray(answer.groups) ? answer.groups : [];
    const known = new Set(state.groups.map((g) => g.id));
    for (const id of state.unread.keys()) if (!known.has(id)) state.unread.delete(id);
    if (state.selected && !known.has(state.selected)) deselect();
    if (!state.selected) {
      const wanted = location.hash.slice(1);
      const fallback = [...state.groups].sort(
        (a, b) => (b.last_activity_at || b.created_at) - (a.last_activity_at || a.created_at),
      )[0];
      const pick = known.has(wanted) ? wanted : fallback && fallback.id;
      if (pick) {
        select(pick);
        return;
      }
    }
    renderSidebar();
  }

  function scheduleGroups() {
    if (state.groupsTimer !== null) return;
    state.groupsTimer = setTimeout(() => {
      state.groupsTimer = null;
      loadGroups().catch(() => {});
    }, 150);
  }

  // -- chat view ----------------------------------------------------------------------------

  function deselect() {
    state.selected = null;
    state.loadToken += 1;
    state.lastShown = 0;
    state.tailNext = false;
    $("ep-chat").replaceChildren();
    $("ep-chat").hidden = true;
    $("ep-welcome").hidden = false;
    $("ep-jump").hidden = true;
  }

  function select(id) {
    if (!GROUP_ID.test(id)) return;
    state.selected = id;
    state.loadToken += 1;
    state.lastShown = 0;
    state.unread.delete(id);
    if (location.hash.slice(1) !== id) history.replaceState(null, "", `#${id}`);
    const chat = $("ep-chat");
    chat.replaceChildren();
    chat.hidden = false;
    $("ep-welcome").hidden = true;
    $("ep-jump").hidden = true;
    state.tailNext = true;
    resetClear();
    renderSidebar();
    fetchNew();
  }

  function nearBottom() {
    const scroller = $("ep-scroll");
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function toBottom() {
    const scroller = $("ep-scroll");
    scroller.scrollTop = scroller.scrollHeight;
    state.pinned = true;
    $("ep-jump").hidden = true;
  }

  // Fetches are serialised: an event (or a new selection) that arrives during a fetch asks for
  // one more round once it ends.
  async function fetchNew() {
    if (!state.selected) return;
    if (state.fetching) {
      state.fetchAgain = true;
      return;
    }
    state.fetching = true;
    const token = state.loadToken;
    try {
      for (;;) {
        state.fetchAgain = false;
        const tail = state.tailNext;
        state.tailNext = false;
        const query = `since_id=${state.lastShown}&limit=${ENTRY_PAGE}${tail ? "&tail=true" : ""}`;
        const answer = await getJSON(`/page/groups/${state.selected}/entries?${query}`);
        if (token !== state.loadToken) return;
        const stick = tail || state.pinned;
        if (tail && answer.skipped > 0) {
          $("ep-chat").append(
            el("div", "ep-system", t("emulator.skipped", { count: number(answer.skipped) })),
          );
        }
        appendEntries(answer.entries);
        if (stick) toBottom();
        else if (answer.entries.length) $("ep-jump").hidden = false;
        if (!answer.more && !state.fetchAgain) break;
      }
    } catch (error) {
      if (error.status === 404 && token === state.loadToken) scheduleGroups();
    } finally {
      state.fetching = false;
      if (state.selected && (state.fetchAgain || token !== state.loadToken)) fetchNew();
    }
  }

  function appendEntries(entries) {
    const chat = $("ep-chat");
    for (const entry of entries) {
      if (entry.id <= state.lastShown) continue;
      state.lastShown = entry.id;
      chat.append(entry.status === "accepted" ? messageNode(entry) : rejectedNode(entry));
    }
  }

  function sizeNode(entry) {
    if (typeof entry.size !== "number") return null;
    const text =
      typeof entry.size_limit === "number"
        ? t("emulator.size_of", { size: number(entry.size), limit: number(entry.size_limit) })
        : t("emulator.size", { size: number(entry.size) });
    const node = el("span", entry.over_limit ? "ep-size ep-size--over" : "ep-size", text);
    node.title =
      typeof entry.size_limit === "number"
        ? t("emulator.size_title")
        : t("emulator.size_title_body");
    return node;
  }

  function timeNode(entry) {
    const node = el("time", "ep-time", clock(entry.received_at));
    node.dateTime = entry.received_at_iso || "";
    node.title = entry.received_at_iso || "";
    return node;
  }

  // Long strings (an image's base64) are shortened in the view; the API has them whole.
  function rawText(entry) {
    if (entry.payload === null || entry.payload === undefined) {
      return entry.raw_text === null || entry.raw_text === undefined
        ? t("emulator.no_body")
        : String(entry.raw_text);
    }
    return JSON.stringify(
      entry.payload,
      (key, value) =>
        typeof value === "string" && value.length > RAW_STRING_CAP
          ? `${value.slice(0, RAW_STRING_CAP)}… ${t("emulator.characters", { count: number(value.length) })}`
          : value,
      2,
    );
  }

  function rawToggle(entry, article) {
    const button = el("button", "ep-raw-toggle", t("emulator.raw"));
    button.type = "button";
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
      let pre = article.querySelector(".ep-raw");
      if (!pre) {
        pre = el("pre", "ep-raw", rawText(entry));
        pre.hidden = true;
        article.append(pre);
      }
      pre.hidden = !pre.hidden;
      button.setAttribute("aria-expanded", String(!pre.hidden));
      button.classList.toggle("ep-raw-toggle--open", !pre.hidden);
    });
    return button;
  }

  function messageNode(entry) {
    const article = el("article", "ep-entry ep-entry--accepted");
    article.dataset.entryId = String(entry.id);
    article.dataset.msgtype = entry.msgtype || "";
    const meta = el("div", "ep-meta");
    meta.append(timeNode(entry), el("span", "ep-type", entry.msgtype || "?"));
    const size = sizeNode(entry);
    if (size) meta.append(size);
    for (const media of Array.isArray(entry.media) ? entry.media : []) {
      if (!media || typeof media.media_id !== "string") continue;
      const link = el("a", "ep-download", t("emulator.download", { name: media.filename || media.type || t("emulator.media") }));
      link.href = `/api/media/${encodeURIComponent(media.media_id)}`;
      link.setAttribute("download", "");
      meta.append(link);
    }
    meta.append(rawToggle(entry, article));
    const rendered = el("div", "ep-render");
    // The one innerHTML of this page: a fragment drawn and escaped by wecom_bot.preview.
    rendered.innerHTML = typeof entry.html === "string" ? entry.html : "";
    applyAspectRatios(rendered);
    article.append(meta, rendered);
    const warnings = warningsNode(entry);
    if (warnings) article.append(warnings);
    return article;
  }

  // What the request relied on that only live WeCom's leniency lets through: a yellow note.
  function warningsNode(entry) {
    const warnings = Array.isArray(entry.warnings) ? entry.warnings : [];
    if (!warnings.length) return null;
    const note = el("div", "ep-warnings");
    note.setAttribute("role", "note");
    note.append(el("span", "ep-warnings-icon", "!"));
    const list = el("ul", "ep-warnings-list");
    for (const warning of warnings) {
      const item = el("li", "ep-warning", warning && warning.message);
      item.dataset.kind = String((warning && warning.kind) || "");
      list.append(item);
    }
    note.append(list);
    note.title = t("emulator.lenient");
    return note;
  }

  function applyAspectRatios(root) {
    for (const node of root.querySelectorAll("[data-wb-aspect-ratio]")) {
      const ratio = Number(node.dataset.wbAspectRatio);
      if (Number.isFinite(ratio) && ratio > 0.1 && ratio < 10) {
        node.style.aspectRatio = String(ratio);
      }
    }
  }

  function rejectedNode(entry) {
    const article = el("article", "ep-entry ep-entry--rejected");
    article.dataset.entryId = String(entry.id);
    article.dataset.errcode = String(entry.errcode);
    const line = el("div", "ep-rejected");
    const upload = entry.endpoint === "upload_media";
    const what = entry.msgtype
      ? t(upload ? "emulator.upload_rejected_type" : "emulator.rejected_type", { msgtype: entry.msgtype })
      : t(upload ? "emulator.upload_rejected" : "emulator.rejected_entry");
    line.append(
      el("span", "ep-rejected-icon", "!"),
      el("span", "ep-rejected-what", what),
      el("span", "ep-errcode", t("emulator.errcode", { code: entry.errcode })),
      el("span", "ep-reason", entry.reason || entry.errmsg || ""),
    );
    if (entry.injected) line.append(el("span", "ep-injected", t("emulator.injected")));
    const meta = el("div", "ep-meta ep-meta--system");
    meta.append(timeNode(entry));
    const size = sizeNode(entry);
    if (size) meta.append(size);
    meta.append(rawToggle(entry, article));
    article.append(line, meta);
    const warnings = warningsNode(entry);
    if (warnings) article.append(warnings);
    return article;
  }

  // -- clear button (two clicks, no dialog) ----------------------------------------------------

  let clearTimer = null;

  function resetClear() {
    const button = $("ep-clear");
    button.textContent = t("emulator.clear");
    button.classList.remove("ep-clear--armed");
    if (clearTimer !== null) clearTimeout(clearTimer);
    clearTimer = null;
  }

  async function onClear() {
    const button = $("ep-clear");
    if (!state.selected) return;
    if (!button.classList.contains("ep-clear--armed")) {
      button.classList.add("ep-clear--armed");
      button.textContent = t("emulator.clear_again");
      clearTimer = setTimeout(resetClear, 4000);
      return;
    }
    resetClear();
    const id = state.selected;
    try {
      await getJSON(`/api/groups/${id}`, { method: "DELETE" });
    } catch (error) {
      if (error.status !== 404) return;
    }
    if (state.selected === id) deselect();
    state.unread.delete(id);
    await loadGroups().catch(() => {});
  }

  // -- live events -------------------------------------------------------------------------

  function setConnection(name, text) {
    const node = $("ep-conn");
    node.dataset.state = name;
    node.querySelector(".ep-conn-text").textContent = text;
  }

  function onEntry(event) {
    let entry;
    try {
      entry = JSON.parse(event.data);
    } catch {
      return;
    }
    const id = Number(event.lastEventId);
    if (Number.isFinite(id) && id > state.lastEventId) state.lastEventId = id;
    if (!entry || typeof entry.group_id !== "string") return;
    scheduleGroups();
    if (entry.group_id === state.selected) {
      fetchNew();
    } else {
      state.unread.set(entry.group_id, (state.unread.get(entry.group_id) || 0) + 1);
      renderSidebar();
    }
  }

  function onCleared(event) {
    let data = {};
    try {
      data = JSON.parse(event.data) || {};
    } catch {
      data = {};
    }
    if (data.group_id === null || data.group_id === undefined) {
      state.unread.clear();
      deselect();
    } else {
      state.unread.delete(data.group_id);
      if (data.group_id === state.selected) deselect();
    }
    scheduleGroups();
  }

  function connect() {
    if (state.source) state.source.close();
    const source = new EventSource(`/api/events?since_id=${state.lastEventId}`);
    state.source = source;
    source.addEventListener("open", () => {
      state.retryDelay = 1000;
      setConnection("live", t("emulator.conn.live"));
      // Whatever happened while disconnected (a reset, new groups) shows up now.
      scheduleGroups();
      if (state.selected) fetchNew();
    });
    source.addEventListener("entry", onEntry);
    source.addEventListener("cleared", onCleared);
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (server down or an error answer): retry ourselves, backing off.
        setConnection("down", t("emulator.conn.reconnecting"));
        const delay = state.retryDelay;
        state.retryDelay = Math.min(state.retryDelay * 2, 15000);
        setTimeout(() => {
          if (state.source === source) connect();
        }, delay);
      } else {
        setConnection("connecting", t("emulator.conn.reconnecting"));
      }
    });
  }

  // -- start -------------------------------------------------------------------------------

  // The language switch keeps the selected group: the server remembers the choice.
  function wireLanguages() {
    for (const link of document.querySelectorAll("#ep-lang a[data-lang]")) {
      if (link.dataset.lang === document.documentElement.lang) link.setAttribute("aria-current", "true");
      link.addEventListener("click", (event) => {
        event.preventDefault();
        location.href = `${location.pathname}?lang=${encodeURIComponent(link.dataset.lang)}${location.hash}`;
      });
    }
  }

  function start() {
    wireLanguages();
    const example = $("ep-example");
    example.textContent =
      `curl '${location.origin}/cgi-bin/webhook/send?key=YOUR-KEY' \\\n` +
      `  -H 'Content-Type: application/json' \\\n` +
      `  -d '${JSON.stringify({ msgtype: "text", text: { content: t("emulator.example_text") } })}'`;
    $("ep-groups").addEventListener("click", (event) => {
      const item = event.target.closest(".ep-group");
      if (item) select(item.dataset.groupId);
    });
    $("ep-groups").addEventListener("keydown", (event) => {
      const item = event.target.closest(".ep-group");
      if (item && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        select(item.dataset.groupId);
      }
    });
    $("ep-clear").addEventListener("click", () => {
      onClear();
    });
    $("ep-jump").addEventListener("click", toBottom);
    $("ep-scroll").addEventListener("scroll", () => {
      state.pinned = nearBottom();
      if (state.pinned) $("ep-jump").hidden = true;
    });
    // Pictures load after their message is drawn and make it taller: stay at the end.
    new ResizeObserver(() => {
      if (state.pinned && state.selected) toBottom();
    }).observe($("ep-chat"));
    window.addEventListener("hashchange", () => {
      const id = location.hash.slice(1);
      if (id !== state.selected && state.groups.some((g) => g.id === id)) select(id);
    });
    loadGroups().catch(() => setConnection("down", t("emulator.conn.unreachable")));
    connect();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
