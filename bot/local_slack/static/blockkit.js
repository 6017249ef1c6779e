/* Block Kit -> DOM: the blocks and elements ledgerops uses, on messages, modals and App Home.
 *
 * Interactive elements call ctx.act(element, blockId, chosen) (a block_actions
 * payload on the server); elements inside input blocks only remember their value
 * through ctx.input until the modal is submitted, as in Slack.
 */
(function (global) {
  "use strict";
  const { el, textObject, plain } = global.Mrkdwn;

  function confirmDialog(confirm, ctx) {
    return new Promise((resolve) => {
      const overlay = el("div", "bk-confirm-overlay");
      const box = el("div", "bk-confirm");
      box.setAttribute("role", "alertdialog");
      box.setAttribute("aria-modal", "true");
      const title = el("h2", "bk-confirm-title");
      title.appendChild(plain(confirm.title || "Are you sure?"));
      box.setAttribute("aria-label", (confirm.title && confirm.title.text) || "Are you sure?");
      const body = el("div", "bk-confirm-text");
      body.appendChild(textObject(confirm.text, ctx));
      const row = el("div", "bk-confirm-buttons");
      const deny = el("button", "bk-button");
      deny.type = "button";
      deny.appendChild(plain(confirm.deny || "Cancel"));
      const ok = el("button", "bk-button " + (confirm.style === "danger" ? "danger" : "primary"));
      ok.type = "button";
      ok.appendChild(plain(confirm.confirm || "Yes"));
      const done = (answer) => { overlay.remove(); resolve(answer); };
      deny.onclick = () => done(false);
      ok.onclick = () => done(true);
      overlay.onkeydown = (e) => { if (e.key === "Escape") done(false); };
      row.append(deny, ok);
      box.append(title, body, row);
      overlay.appendChild(box);
      document.body.appendChild(overlay);
      ok.focus();
    });
  }

  function optionLabel(opt) {
    const t = opt && opt.text;
    return String(t && typeof t === "object" ? t.text : t || "");
  }

  function allOptions(e) {
    const out = (e.options || []).slice();
    (e.option_groups || []).forEach((g) => out.push(...(g.options || [])));
    return out;
  }

  function fillSelect(select, e, chosen) {
    const chosenSet = new Set([].concat(chosen || []));
    const add = (parent, opt) => {
      const o = el("option", null, Mrkdwn.decode(optionLabel(opt)));
      o.value = opt.value;
      o.selected = chosenSet.has(opt.value);
      parent.appendChild(o);
    };
    (e.options || []).forEach((opt) => add(select, opt));
    (e.option_groups || []).forEach((g) => {
      const group = el("optgroup");
      group.label = optionLabel({ text: g.label });
      (g.options || []).forEach((opt) => add(group, opt));
      select.appendChild(group);
    });
  }

  function initial(e) {
    if (e.initial_option) return e.initial_option.value;
    if (e.initial_options) return e.initial_options.map((o) => o.value);
    if (e.initial_date) return e.initial_date;
    if (e.initial_time) return e.initial_time;
    return e.initial_value;
  }

  /* One element. inInput: it belongs to an input block (remember, do not send). */
  function element(e, blockId, ctx, inInput, dispatch) {
    const send = (chosen, node) => {
      if (inInput) ctx.input.set(blockId, e.action_id, chosen);
      if (!inInput || dispatch) ctx.act(e, blockId, chosen, node);
    };
    const remembered = inInput ? ctx.input.get(blockId, e.action_id) : undefined;
    const value = remembered !== undefined ? remembered : initial(e);
    switch (e.type) {
      case "button": {
        const b = el("button", "bk-button" + (e.style ? " " + e.style : ""));
        b.type = "button";
        b.appendChild(plain(e.text));
        if (e.accessibility_label) b.setAttribute("aria-label", e.accessibility_label);
        b.onclick = async () => {
          if (e.confirm && !(await confirmDialog(e.confirm, ctx))) return;
          if (e.url && /^https?:/i.test(e.url)) window.open(e.url, "_blank", "noopener");
          send(undefined, b);
        };
        return b;
      }
      case "static_select": case "external_select": {
        const s = el("select", "bk-select");
        if (!inInput) s.setAttribute("aria-label", optionLabel({ text: e.placeholder }) || "Choose");
        const ph = el("option", null, optionLabel({ text: e.placeholder }) || "Select an item");
        ph.value = "";
        s.appendChild(ph);
        fillSelect(s, e, value);
        if (value === undefined || value === null) ph.selected = true;
        s.onchange = () => send(s.value || null, s);
        return s;
      }
      case "multi_static_select": case "multi_external_select": {
        const s = el("select", "bk-select bk-multi");
        s.multiple = true;
        if (!inInput) s.setAttribute("aria-label", optionLabel({ text: e.placeholder }) || "Choose");
        fillSelect(s, e, value);
        s.onchange = () => send(Array.from(s.selectedOptions).map((o) => o.value), s);
        return s;
      }
      case "overflow": {
        const wrap = el("span", "bk-overflow");
        const b = el("button", "bk-button bk-overflow-button", "⋯");
        b.type = "button";
        b.setAttribute("aria-label", "More actions");
        const menu = el("div", "bk-menu");
        menu.hidden = true;
        (e.options || []).forEach((opt) => {
          const item = el("button", "bk-menu-item", Mrkdwn.decode(optionLabel(opt)));
          item.type = "button";
          item.onclick = async () => {
            menu.hidden = true;
            if (e.confirm && !(await confirmDialog(e.confirm, ctx))) return;
            send(opt.value, b);
          };
          menu.appendChild(item);
        });
        b.onclick = () => { menu.hidden = !menu.hidden; };
        wrap.append(b, menu);
        return wrap;
      }
      case "datepicker": case "timepicker": {
        const i = el("input", "bk-date");
        i.type = e.type === "datepicker" ? "date" : "time";
        i.value = value || "";
        if (!inInput) i.setAttribute("aria-label", optionLabel({ text: e.placeholder }) || "Pick a date");
        i.onchange = () => send(i.value || null, i);
        return i;
      }
      case "checkboxes": case "radio_buttons": {
        const group = el("div", "bk-choices");
        const chosenSet = new Set([].concat(value || []));
        const name = `${blockId}:${e.action_id}:${Math.random().toString(36).slice(2)}`;
        (e.options || []).forEach((opt) => {
          const label = el("label", "bk-choice");
          const box = el("input");
          box.type = e.type === "checkboxes" ? "checkbox" : "radio";
          box.name = name;
          box.value = opt.value;
          box.checked = chosenSet.has(opt.value);
          box.onchange = () => {
            const picked = Array.from(group.querySelectorAll("input:checked")).map((x) => x.value);
            send(e.type === "checkboxes" ? picked : picked[0] || null, box);
          };
          const text = el("span");
          text.appendChild(textObject(opt.text, ctx));
          label.append(box, text);
          if (opt.description) {
            const d = el("span", "bk-choice-desc");
            d.appendChild(textObject(opt.description, ctx));
            label.appendChild(d);
          }
          group.appendChild(label);
        });
        return group;
      }
      case "plain_text_input": {
        const i = el(e.multiline ? "textarea" : "input", "bk-text-input");
        if (!e.multiline) i.type = "text";
        i.value = value || "";
        if (e.placeholder) i.placeholder = optionLabel({ text: e.placeholder });
        if (e.max_length) i.maxLength = e.max_length;
        i.oninput = () => { if (inInput) ctx.input.set(blockId, e.action_id, i.value); };
        i.onchange = () => send(i.value, i);
        return i;
      }
      case "image": {
        const span = el("span", "bk-image-alt", "🖼 " + (e.alt_text || "image"));
        span.title = "Images are not loaded in the sandbox";
        return span;
      }
      default:
        return el("span", "bk-unsupported", `[${e.type} is not shown in the sandbox]`);
    }
  }

  function section(b, ctx) {
    const node = el("div", "bk-section");
    const main = el("div", "bk-section-main");
    if (b.text) {
      const t = el("div", "bk-text");
      t.appendChild(textObject(b.text, ctx));
      main.appendChild(t);
    }
    if (b.fields && b.fields.length) {
      const grid = el("div", "bk-fields");
      b.fields.forEach((f) => {
        const cell = el("div", "bk-field");
        cell.appendChild(textObject(f, ctx));
        grid.appendChild(cell);
      });
      main.appendChild(grid);
    }
    node.appendChild(main);
    if (b.accessory) {
      const acc = el("div", "bk-accessory");
      acc.appendChild(element(b.accessory, b.block_id, ctx, false));
      node.appendChild(acc);
    }
    return node;
  }

  function input(b, ctx) {
    const node = el("div", "bk-input");
    const label = el("label", "bk-label");
    label.appendChild(plain(b.label));
    if (b.optional) label.appendChild(el("span", "bk-optional", " (optional)"));
    node.appendChild(label);
    const control = element(b.element || {}, b.block_id, ctx, true, b.dispatch_action);
    node.appendChild(control);
    const focusable = control.matches("input,select,textarea") ? control : control.querySelector("input,select,textarea");
    if (focusable) {
      focusable.id = `in-${b.block_id}`;
      label.htmlFor = focusable.id;
    }
    if (b.hint) {
      const hint = el("div", "bk-hint");
      hint.appendChild(plain(b.hint));
      node.appendChild(hint);
    }
    return node;
  }

  function block(b, ctx) {
    switch (b.type) {
      case "header": {
        const h = el("div", "bk-header");
        h.setAttribute("role", "heading");
        h.setAttribute("aria-level", "3");
        h.appendChild(plain(b.text));
        return h;
      }
      case "section": return section(b, ctx);
      case "divider": return el("hr", "bk-divider");
      case "context": {
        const c = el("div", "bk-context");
        (b.elements || []).forEach((e) => {
          const part = el("span", "bk-context-part");
          part.appendChild(e.type === "image" ? element(e, b.block_id, ctx, false) : textObject(e, ctx));
          c.appendChild(part);
        });
        return c;
      }
      case "actions": {
        const a = el("div", "bk-actions");
        (b.elements || []).forEach((e) => a.appendChild(element(e, b.block_id, ctx, false)));
        return a;
      }
      case "input": return input(b, ctx);
      case "image": {
        const i = el("div", "bk-image");
        if (b.title) i.appendChild(plain(b.title));
        i.appendChild(element({ type: "image", alt_text: b.alt_text }, b.block_id, ctx, false));
        return i;
      }
      case "rich_text": {
        const t = el("div", "bk-text");
        const walk = (n) => (n.elements || []).map((x) => x.text || walk(x)).join("");
        t.textContent = walk(b);
        return t;
      }
      default:
        return el("div", "bk-unsupported", `[${b.type} block is not shown in the sandbox]`);
    }
  }

  /* Blocks -> a fragment; ctx.errors[block_id] shows under its block (modals). */
  function render(blocks, ctx) {
    const frag = document.createDocumentFragment();
    (blocks || []).forEach((b) => {
      const node = block(b, ctx);
      node.dataset.blockId = b.block_id || "";
      const wrap = el("div", "bk-block bk-" + b.type);
      wrap.appendChild(node);
      const err = ctx.errors && ctx.errors[b.block_id];
      if (err) {
        wrap.classList.add("has-error");
        wrap.appendChild(el("div", "bk-error", err));
      }
      frag.appendChild(wrap);
    });
    return frag;
  }

  global.BlockKit = { render, confirmDialog };
})(window);
