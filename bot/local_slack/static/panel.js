/* The ledger panel: the far side of the bot. Not Slack; switches that make the sandbox
 * ledger misbehave, its vouchers, and the bot's latest attempts against it. */
(function (global) {
  "use strict";
  const { el } = global.Mrkdwn;
  const LATENCIES = [[0, "none"], [300, "300 ms"], [1000, "1 s"], [3000, "3 s"], [8000, "8 s"]];
  const STATE_ORDER = ["synced", "pending", "in_flight", "retrying", "waiting", "failed", "booked", "ignored"];

  function clock(iso) {
    if (!iso) return "";
    return new Date(iso).toTimeString().slice(0, 8);
  }

  function button(label, cls, onclick) {
    const b = el("button", "bk-button small" + (cls ? " " + cls : ""), label);
    b.type = "button";
    b.onclick = onclick;
    return b;
  }

  function ledgerBox(l, post) {
    const send = (op, value) => post("ledger", { integration: l.name, op, value });
    const box = el("section", "ledger");
    box.dataset.ledger = l.name;
    box.appendChild(el("h3", null, `Sandbox ledger · ${l.name}`));

    const reach = el("div", "switch-row");
    const status = el("span", "ledger-status " + (l.reachable ? "up" : "down"),
      l.reachable ? "Reachable" : "Unreachable");
    status.setAttribute("role", "status");
    reach.append(status, l.reachable
      ? button("Make unreachable", "danger", () => send("reachable", false))
      : button("Make reachable", "primary", () => send("reachable", true)));
    box.appendChild(reach);

    const slow = el("div", "switch-row");
    const label = el("label", null, "Latency ");
    const select = el("select", "bk-select small");
    select.setAttribute("aria-label", "Ledger latency");
    LATENCIES.forEach(([ms, text]) => {
      const o = el("option", null, text);
      o.value = String(ms);
      o.selected = ms === l.latency_ms;
      select.appendChild(o);
    });
    if (!LATENCIES.some(([ms]) => ms === l.latency_ms)) {
      const o = el("option", null, `${l.latency_ms} ms`);
      o.selected = true;
      select.appendChild(o);
    }
    select.onchange = () => send("latency_ms", Number(select.value));
    label.appendChild(select);
    slow.append(label, button(l.fail_next ? `Failing next ${l.fail_next}…` : "Fail next call (503)", "",
      () => send("fail_next", l.fail_next + 1)));
    box.appendChild(slow);

    const counts = el("div", "counts");
    const parts = STATE_ORDER.filter((s) => l.postings[s]).map((s) => `${l.postings[s]} ${s.replace("_", " ")}`);
    counts.textContent = "Postings: " + (parts.join(" · ") || "none yet");
    if (l.next_retry) counts.textContent += ` · next retry ${clock(l.next_retry)}`;
    box.appendChild(counts);

    box.appendChild(el("h4", null, `Vouchers (${l.voucher_count})`));
    const table = el("table", "vouchers");
    l.vouchers.forEach((v) => {
      const tr = el("tr");
      tr.dataset.ref = v.ref;
      tr.append(el("td", "ref", v.ref), el("td", "vtext", v.text), el("td", "amount", v.amount));
      const cell = el("td", "vstatus");
      cell.appendChild(v.booked ? el("span", "booked", "🔒 booked")
        : button("Book", "", () => send("book", v.ref)));
      tr.appendChild(cell);
      table.appendChild(tr);
    });
    if (!l.vouchers.length) box.appendChild(el("p", "muted", "No vouchers yet."));
    else box.appendChild(table);

    box.appendChild(el("h4", null, "Latest attempts"));
    const list = el("ol", "attempts");
    l.attempts.forEach((a) => {
      const li = el("li", "attempt " + a.outcome);
      li.appendChild(el("span", "a-time", clock(a.at)));
      li.appendChild(el("span", "a-what", `${a.document} · ${a.posting} · ${a.trigger}`));
      li.appendChild(el("span", "a-outcome", a.outcome + (a.ref ? ` ${a.ref}` : "")));
      if (a.message) li.appendChild(el("div", "a-message", a.message));
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  }

  function draw(root, panel, post) {
    root.replaceChildren();
    if (panel.demo) {
      const demo = el("p", "demo-status", panel.demo);
      demo.setAttribute("role", "note");
      root.appendChild(demo);
    }
    panel.ledgers.forEach((l) => root.appendChild(ledgerBox(l, post)));
    if (!panel.ledgers.length) root.appendChild(el("p", "muted", "No sandbox integrations configured."));
  }

  global.LedgerPanel = { draw };
})(window);
