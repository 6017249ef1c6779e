/* The sandbox page: the channel, threads, App Home and modals, live over server-sent events.
 *
 * The server holds the truth (what the bot posted, which modal is open); this
 * script only draws it and sends what the person does to /local-slack/*, from
 * where it reaches the bot as a signed Slack request.
 */
(function () {
  "use strict";
  const { el, render: md, plain } = window.Mrkdwn;
  const $ = (id) => document.getElementById(id);
  const S = {
    user: localStorage.getItem("ledgerops.sandbox.user"),
    state: null, tab: "channel", channel: null, thread: null, homeStatus: null,
    inputs: {}, shown: {}, nodes: new Map(), toasted: new Set(), source: null, first: true,
    lastKey: null,
  };

  // -- talking to the server ---------------------------------------------------------------
  async function post(path, body) {
    let data = {};
    try {
      const r = await fetch("/local-slack/" + path, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      data = await r.json().catch(() => ({}));
      if (!r.ok) toast(data.error || `The sandbox refused that (${r.status}).`);
    } catch (err) {
      toast("The sandbox server does not answer. Is `python app.py` still running?");
    }
    return data;
  }

  function connect() {
    if (S.source) S.source.close();
    S.source = new EventSource("/local-slack/stream?user=" + encodeURIComponent(S.user));
    S.source.onmessage = (ev) => apply(JSON.parse(ev.data));
    S.source.onopen = () => live(true);
    S.source.onerror = () => live(false); // EventSource reconnects by itself
  }

  function live(on) {
    const dot = $("live");
    dot.className = on ? "live on" : "live off";
    dot.textContent = on ? "live" : "reconnecting…";
  }

  /* Draw a part again only when what it shows changed. */
  function changed(key, value) {
    const json = JSON.stringify(value);
    if (S.shown[key] === json) return false;
    S.shown[key] = json;
    return true;
  }

  function apply(state) {
    S.state = state;
    live(true);
    if (!state.channels.some((c) => c.id === S.channel)) S.channel = state.channels[0].id;
    if (changed("users", [state.users, S.user])) drawUsers();
    if (changed("nav", [state.channels, S.tab, S.channel])) drawNav();
    drawMessages();
    drawThread();
    drawHome();
    drawModal();
    if (changed("panel", state.panel)) window.LedgerPanel.draw($("ledger-panel"), state.panel, post);
    if (changed("traffic", state.traffic)) drawTraffic();
    drawNotices();
  }

  function ctxFor(where, extra) {
    return Object.assign({
      people: S.state.people, usergroups: S.state.usergroups,
      act: (e, blockId, chosen, node) => act(where, e, blockId, chosen, node),
    }, extra || {});
  }

  async function act(where, e, blockId, chosen, node) {
    if (node) node.classList.add("busy");
    const body = { user: S.user, where, block_id: blockId, action_id: e.action_id, chosen };
    if (where.kind === "view") body.values = inputsOf(where.view_id);
    await post("act", body);
    if (node) node.classList.remove("busy");
  }

  // -- header and navigation ---------------------------------------------------------------
  function drawUsers() {
    const pick = $("user-picker");
    pick.replaceChildren();
    S.state.users.forEach((u) => {
      const o = el("option", null, `${u.real_name} — ${u.allowed ? "may act" : "not allowed"}`);
      o.value = u.id;
      o.selected = u.id === S.user;
      pick.appendChild(o);
    });
  }

  function drawNav() {
    const list = $("channel-list");
    list.replaceChildren();
    S.state.channels.forEach((c) => {
      const b = el("button", "nav-item" + (S.tab === "channel" && c.id === S.channel ? " active" : ""), "# " + c.name);
      b.type = "button";
      b.onclick = () => { S.tab = "channel"; S.channel = c.id; show(); };
      list.appendChild(el("li")).appendChild(b);
    });
    $("nav-home").classList.toggle("active", S.tab === "home");
    const channel = S.state.channels.find((c) => c.id === S.channel);
    $("channel-title").textContent = "# " + channel.name;
    $("composer-input").placeholder = `Message #${channel.name} — try ${S.state.command} status`;
  }

  function show() {
    $("channel-view").hidden = S.tab !== "channel";
    $("home-view").hidden = S.tab !== "home";
    S.shown = {}; // everything draws again for the new tab
    S.nodes.clear();
    $("messages").replaceChildren();
    $("thread-messages").replaceChildren();
    S.first = true;
    if (S.state) apply(S.state);
  }

  async function openHome() {
    S.tab = "home";
    show();
    const answer = await post("home", { user: S.user }); // app_home_opened, as Slack sends it
    S.homeStatus = answer.status;
    S.shown.home = null;
    if (S.state) drawHome();
  }

  // -- messages ----------------------------------------------------------------------------
  function author(id) {
    const p = S.state.people[id];
    return p ? p.real_name || p.name : id;
  }

  function timeOf(ts) {
    const d = new Date(parseFloat(ts) * 1000);
    return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  function messageNode(item, where, opts) {
    const eph = where.kind === "ephemeral";
    const art = el("article", "msg" + (eph ? " ephemeral" : ""));
    art.dataset.ts = item.ts;
    const who = eph ? item.author : item.user;
    const person = S.state.people[who] || {};
    const avatar = el("div", "avatar" + (person.is_bot ? " bot" : ""), (author(who) || "?").slice(0, 1).toUpperCase());
    avatar.setAttribute("aria-hidden", "true");
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    head.appendChild(el("span", "author", author(who)));
    if (person.is_bot && who !== "USLACKBOT") head.appendChild(el("span", "app-badge", "APP"));
    head.appendChild(el("time", "msg-time", timeOf(item.ts)));
    if (item.edited) head.appendChild(el("span", "edited", "(edited)"));
    body.appendChild(head);
    const content = el("div", "msg-content");
    if (item.blocks && item.blocks.length) {
      content.appendChild(window.BlockKit.render(item.blocks, ctxFor(where)));
    } else {
      const t = el("div", "bk-text");
      t.appendChild(md(item.text, S.state));
      content.appendChild(t);
    }
    (item.attachments || []).forEach((a) => {
      const box = el("div", "attachment");
      box.style.borderColor = /^#[0-9a-f]{3,6}$/i.test(a.color || "") ? a.color : "#ddd";
      box.appendChild(md(a.text || a.fallback || "", S.state));
      content.appendChild(box);
    });
    body.appendChild(content);
    const replies = (item.replies || []).length;
    if (replies && !(opts && opts.inThread)) {
      const link = el("button", "thread-link", `${replies} ${replies === 1 ? "reply" : "replies"}`);
      link.type = "button";
      link.onclick = () => { S.thread = item.ts; S.shown.thread = null; drawThread(); };
      body.appendChild(link);
    }
    if (eph) {
      const foot = el("div", "ephemeral-note");
      foot.appendChild(el("span", null, "👁 Only visible to you"));
      const dismiss = el("button", "link-button", "Dismiss");
      dismiss.type = "button";
      dismiss.onclick = () => post("dismiss", { user: S.user, ts: item.ts });
      foot.appendChild(dismiss);
      body.appendChild(foot);
    }
    art.append(avatar, body);
    return art;
  }

  function drawList(container, items, keyPrefix, opts) {
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    const seen = new Set();
    items.forEach((it, i) => {
      const key = keyPrefix + it.where.kind + it.item.ts;
      const json = JSON.stringify(it.item);
      let entry = S.nodes.get(key);
      if (!entry || entry.json !== json) {
        const node = messageNode(it.item, it.where, opts);
        if (entry) entry.node.replaceWith(node);
        entry = { json, node };
        S.nodes.set(key, entry);
      }
      seen.add(key);
      if (container.children[i] !== entry.node) container.insertBefore(entry.node, container.children[i] || null);
    });
    for (const [key, entry] of S.nodes) {
      if (key.startsWith(keyPrefix) && !seen.has(key)) { entry.node.remove(); S.nodes.delete(key); }
    }
    // Follow the channel only when a message arrives at the end: a message that changes in
    // place must not move what a person is about to click (the browser anchors the view).
    const last = items.length ? keyPrefix + items[items.length - 1].where.kind + items[items.length - 1].item.ts : null;
    if (container === box && last && (S.first || (atBottom && last !== S.lastKey))) {
      box.scrollTop = box.scrollHeight;
      S.first = false;
    }
    if (container === box) S.lastKey = last;
  }

  function drawMessages() {
    if (S.tab !== "channel") return;
    const channel = S.state.channels.find((c) => c.id === S.channel);
    const items = channel.messages.map((m) => ({ item: m, where: { kind: "message", channel: channel.id, ts: m.ts } }));
    S.state.ephemerals.filter((e) => e.channel === channel.id && !e.thread_ts)
      .forEach((e) => items.push({ item: e, where: { kind: "ephemeral", ts: e.ts } }));
    items.sort((a, b) => parseFloat(a.item.ts) - parseFloat(b.item.ts));
    $("empty-channel").hidden = items.length > 0;
    drawList($("messages"), items, "c:");
  }

  function drawThread() {
    const pane = $("thread-pane");
    const channel = S.state && S.state.channels.find((c) => c.id === S.channel);
    const parent = S.thread && channel && channel.messages.find((m) => m.ts === S.thread);
    if (!parent || S.tab !== "channel") { pane.hidden = true; return; }
    pane.hidden = false;
    const items = [{ item: parent, where: { kind: "message", channel: channel.id, ts: parent.ts } }];
    parent.replies.forEach((r) => items.push({ item: r, where: { kind: "message", channel: channel.id, ts: r.ts } }));
    S.state.ephemerals.filter((e) => e.thread_ts === S.thread)
      .forEach((e) => items.push({ item: e, where: { kind: "ephemeral", ts: e.ts } }));
    drawList($("thread-messages"), items, "t:", { inThread: true });
  }

  // -- App Home -----------------------------------------------------------------------------
  function drawHome() {
    const notes = S.state.ephemerals.filter((e) => e.channel === S.state.dm);
    if (S.tab !== "home" || !changed("home", [S.state.home, S.homeStatus, notes])) return;
    const box = $("home");
    box.replaceChildren();
    notes.forEach((e) => box.appendChild(messageNode(e, { kind: "ephemeral", ts: e.ts })));
    const home = S.state.home;
    if (home) {
      box.appendChild(window.BlockKit.render(home.view.blocks, ctxFor({ kind: "view", view_id: home.id })));
      return;
    }
    const empty = el("div", "empty");
    empty.appendChild(el("p", null, "ledgerops has not published a Home tab for you yet."));
    if (S.homeStatus !== null && S.homeStatus !== undefined) {
      empty.appendChild(el("p", "muted", `Opening this tab sent app_home_opened to the bot; it answered HTTP ${S.homeStatus || "nothing"}.`));
    }
    box.appendChild(empty);
  }

  // -- modals -------------------------------------------------------------------------------
  function inputsOf(viewId) { return S.inputs[viewId] || {}; }

  function drawModal() {
    const root = $("modal-root");
    const stack = S.state.modals;
    const top = stack[stack.length - 1];
    if (!changed("modal", top ? [top.id, top.hash, top.errors] : null)) return;
    root.replaceChildren();
    if (!top) return;
    const view = top.view;
    const values = (S.inputs[top.id] = S.inputs[top.id] || {});
    const overlay = el("div", "modal-overlay");
    const dialog = el("div", "modal");
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    const head = el("div", "modal-head");
    const title = el("h2", "modal-title");
    title.id = "modal-title";
    title.appendChild(plain(view.title));
    dialog.setAttribute("aria-labelledby", "modal-title");
    const x = el("button", "modal-x", "×");
    x.type = "button";
    x.setAttribute("aria-label", "Close");
    x.onclick = () => post("close", { user: S.user, view_id: top.id });
    head.append(title, x);
    const body = el("div", "modal-body");
    if (top.errors && top.errors[""]) body.appendChild(el("div", "bk-error general", top.errors[""]));
    body.appendChild(window.BlockKit.render(view.blocks, ctxFor({ kind: "view", view_id: top.id }, {
      errors: top.errors,
      input: {
        get: (b, a) => (values[b] || {})[a],
        set: (b, a, v) => { (values[b] = values[b] || {})[a] = v; },
      },
    })));
    const foot = el("div", "modal-foot");
    const close = el("button", "bk-button");
    close.type = "button";
    close.appendChild(plain(view.close || "Cancel"));
    close.onclick = x.onclick;
    foot.appendChild(close);
    if (view.submit) {
      const submit = el("button", "bk-button primary");
      submit.type = "button";
      submit.appendChild(plain(view.submit));
      submit.onclick = async () => {
        submit.classList.add("busy");
        await post("submit", { user: S.user, view_id: top.id, values });
        submit.classList.remove("busy");
      };
      foot.appendChild(submit);
    }
    overlay.onkeydown = (e) => { if (e.key === "Escape") x.onclick(); };
    dialog.append(head, body, foot);
    overlay.appendChild(dialog);
    root.appendChild(overlay);
    const wrong = dialog.querySelector(".has-error, .bk-error.general");
    const first = dialog.querySelector("input,select,textarea");
    if (wrong) wrong.scrollIntoView({ block: "center" }); // Slack shows the first problem
    else if (first) first.focus();
  }

  // -- traffic and toasts -------------------------------------------------------------------
  function drawTraffic() {
    const list = $("traffic");
    list.replaceChildren();
    S.state.traffic.slice().reverse().forEach((t) => {
      const ok = t.status === "ok" || t.status === "200";
      const li = el("li", ok ? "ok" : "bad");
      const d = new Date(t.at * 1000);
      li.appendChild(el("span", "t-time", d.toTimeString().slice(0, 8)));
      li.appendChild(el("span", "t-dir", t.direction === "bot" ? "→ bot" : "← API"));
      li.appendChild(el("span", "t-what", t.what));
      li.appendChild(el("span", "t-status", t.status));
      list.appendChild(li);
    });
  }

  function drawNotices() {
    S.state.notices.forEach((n) => {
      if (S.toasted.has(n.id) || Date.now() / 1000 - n.at > 30) return;
      S.toasted.add(n.id);
      toast(n.text);
    });
  }

  function toast(text) {
    const t = el("div", "toast", text);
    t.setAttribute("role", "status");
    $("toasts").appendChild(t);
    setTimeout(() => t.remove(), 8000);
  }

  // -- start --------------------------------------------------------------------------------
  $("composer").onsubmit = async (ev) => {
    ev.preventDefault();
    const input = $("composer-input");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await post(text.startsWith("/") ? "command" : "say", { user: S.user, channel: S.channel, text });
  };
  $("user-picker").onchange = (ev) => {
    S.user = ev.target.value;
    localStorage.setItem("ledgerops.sandbox.user", S.user);
    S.inputs = {};
    S.homeStatus = null;
    show();
    connect();
    if (S.tab === "home") openHome();
  };
  $("nav-home").onclick = openHome;
  $("thread-close").onclick = () => { S.thread = null; drawThread(); };

  fetch("/local-slack/state" + (S.user ? "?user=" + encodeURIComponent(S.user) : ""))
    .then((r) => (r.ok ? r.json() : fetch("/local-slack/state").then((x) => x.json())))
    .then((state) => {
      S.user = state.me;
      apply(state);
      connect();
    });
})();
