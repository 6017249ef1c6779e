/* Slack mrkdwn -> DOM nodes, built with createElement/textContent only.
 *
 * Text from the bot is already escaped (&amp; &lt; &gt;); control sequences are
 * raw "<...>" only. So "<...>" is parsed first, and entities are decoded last,
 * into text nodes: "&lt;!channel&gt;" shows as the literal text "<!channel>"
 * and can never become markup. Nothing here ever assigns innerHTML.
 */
(function (global) {
  "use strict";

  const EMOJI = {
    red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡",
    large_orange_circle: "🟠", white_circle: "⚪", black_circle: "⚫",
    white_check_mark: "✅", heavy_check_mark: "✔️", ballot_box_with_check: "☑️",
    x: "❌", warning: "⚠️", no_entry: "⛔", no_entry_sign: "🚫", rotating_light: "🚨",
    arrows_counterclockwise: "🔄", repeat: "🔁", hourglass_flowing_sand: "⏳",
    hourglass: "⌛", stopwatch: "⏱️", double_vertical_bar: "⏸️", pause_button: "⏸️",
    arrow_forward: "▶️", lock: "🔒", unlock: "🔓", raised_hand: "✋", scroll: "📜",
    grey_question: "❔", question: "❓", exclamation: "❗", heavy_exclamation_mark: "❗",
    small_blue_diamond: "🔹", small_orange_diamond: "🔸", information_source: "ℹ️",
    bar_chart: "📊", chart_with_upwards_trend: "📈", inbox_tray: "📥", outbox_tray: "📤",
    moneybag: "💰", bank: "🏦", receipt: "🧾", calendar: "📅", date: "📅", memo: "📝",
    page_facing_up: "📄", file_folder: "📁", card_index_dividers: "🗂️", link: "🔗",
    bell: "🔔", eyes: "👀", tada: "🎉", wave: "👋", gear: "⚙️", hammer_and_wrench: "🛠️",
    mag: "🔎", zzz: "💤", rocket: "🚀", thumbsup: "👍", "+1": "👍", key: "🔑",
    busts_in_silhouette: "👥", bust_in_silhouette: "👤", construction: "🚧", fire: "🔥",
    sparkles: "✨", arrow_right: "➡️", arrow_left: "⬅️", heavy_plus_sign: "➕",
    heavy_minus_sign: "➖", clipboard: "📋", pushpin: "📌", bulb: "💡", robot_face: "🤖",
  };

  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const PLACEHOLDER = /[\uE000-\uF8FF]/;

  function decode(s) {
    return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emoji(s) {
    return s.replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function ordinal(n) {
    const s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function dayWord(d) {
    const today = new Date(); today.setHours(0, 0, 0, 0);
    const that = new Date(d); that.setHours(0, 0, 0, 0);
    const diff = Math.round((that - today) / 86400000);
    return diff === 0 ? "today" : diff === -1 ? "yesterday" : diff === 1 ? "tomorrow" : null;
  }

  /* <!date^1392734382^{date_short_pretty} {time}|fallback> in the reader's own zone */
  function formatDate(seconds, format) {
    const d = new Date(seconds * 1000);
    const short = `${MONTHS[d.getMonth()].slice(0, 3)} ${d.getDate()}, ${d.getFullYear()}`;
    const long = `${MONTHS[d.getMonth()]} ${ordinal(d.getDate())}, ${d.getFullYear()}`;
    const ago = () => {
      const s = Math.round((Date.now() - d.getTime()) / 1000);
      const a = Math.abs(s);
      const [n, unit] = a < 60 ? [a, "second"] : a < 3600 ? [Math.round(a / 60), "minute"]
        : a < 86400 ? [Math.round(a / 3600), "hour"] : [Math.round(a / 86400), "day"];
      const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return s >= 0 ? `${words} ago` : `in ${words}`;
    };
    const tokens = {
      date_num: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
      date: long, date_short: short, date_long: `${DAYS[d.getDay()]}, ${long}`,
      date_pretty: dayWord(d) || long, date_short_pretty: dayWord(d) || short,
      date_long_pretty: dayWord(d) || `${DAYS[d.getDay()]}, ${long}`,
      time: `${pad(d.getHours())}:${pad(d.getMinutes())}`,
      time_secs: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
      ago: ago(),
    };
    return format.replace(/\{(\w+)\}/g, (all, t) => (t in tokens ? tokens[t] : all));
  }

  /* One "<...>" control sequence -> a node. */
  function special(inner, ctx) {
    const [target, ...rest] = inner.split("|");
    const label = rest.join("|");
    if (target.startsWith("@")) {
      const person = (ctx.people || {})[target.slice(1)];
      const name = label || (person ? person.real_name || person.name : target.slice(1));
      return el("span", "mention", "@" + decode(name));
    }
    if (target.startsWith("#")) {
      return el("span", "mention", "#" + decode(label || target.slice(1)));
    }
    if (target.startsWith("!subteam^")) {
      const id = target.slice(9);
      const handle = label ? decode(label).replace(/^@/, "") : (ctx.usergroups || {})[id] || id;
      return el("span", "mention", "@" + handle);
    }
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const seconds = Number(parts[1]);
      const node = el("time", "date", Number.isFinite(seconds)
        ? formatDate(seconds, parts[2] || "{date_num} {time}") : decode(label));
      node.title = decode(label);
      return node;
    }
    if (target.startsWith("!")) {
      return el("span", "mention broadcast", "@" + target.slice(1).split("^")[0]);
    }
    if (/^(https?:|mailto:)/i.test(target)) {
      const a = el("a", "link", decode(label || target));
      a.href = target;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      return a;
    }
    return document.createTextNode(decode(label || target));
  }

  const EMPHASIS = [
    { mark: "*", tag: "strong" }, { mark: "_", tag: "em" }, { mark: "~", tag: "s" },
  ].map((e) => {
    const m = "\\" + e.mark;
    // Slack's rule of thumb: markers hug the text and stand at word edges.
    e.re = new RegExp(`(^|[\\s(\\[{"'\\u2014,.;:!?\\uE000-\\uF8FF-])${m}([^\\s${m}](?:[^${m}\\n]*?[^\\s${m}])?)${m}(?=$|[\\s)\\]}"'.,;:!?\\u2014\\uE000-\\uF8FF-])`);
    return e;
  });

  function text(s, ctx, parent, holders) {
    if (!s) return;
    if (!PLACEHOLDER.test(s)) {
      parent.appendChild(document.createTextNode(decode(emoji(s))));
      return;
    }
    let buf = "";
    for (const ch of s) {
      const code = ch.codePointAt(0);
      if (code >= 0xe000 && code <= 0xf8ff && holders[code - 0xe000]) {
        if (buf) parent.appendChild(document.createTextNode(decode(emoji(buf))));
        buf = "";
        parent.appendChild(holders[code - 0xe000].cloneNode(true));
      } else {
        buf += ch;
      }
    }
    if (buf) parent.appendChild(document.createTextNode(decode(emoji(buf))));
  }

  function emphasis(s, ctx, parent, holders) {
    let best = null;
    for (const e of EMPHASIS) {
      const m = e.re.exec(s);
      if (m && (!best || m.index < best.m.index)) best = { e, m };
    }
    if (!best) { text(s, ctx, parent, holders); return; }
    const { e, m } = best;
    text(s.slice(0, m.index) + m[1], ctx, parent, holders);
    const node = el(e.tag);
    emphasis(m[2], ctx, node, holders);
    parent.appendChild(node);
    emphasis(s.slice(m.index + m[0].length), ctx, parent, holders);
  }

  /* A line (no quote marker, no code fence): specials and code spans become placeholders
   * first, so emphasis may wrap a mention but never reaches inside one. */
  function inline(line, ctx, parent) {
    const holders = [];
    const hold = (node) => { holders.push(node); return String.fromCharCode(0xe000 + holders.length - 1); };
    const marked = line.replace(/<([^<>\n]+)>|`([^`\n]+)`/g, (all, sp, code) =>
      hold(sp !== undefined ? special(sp, ctx) : el("code", null, decode(code))));
    emphasis(marked, ctx, parent, holders);
  }

  /* Full mrkdwn text -> a fragment. */
  function render(source, ctx) {
    const frag = document.createDocumentFragment();
    const chunks = String(source || "").split("```");
    chunks.forEach((chunk, i) => {
      if (i % 2 === 1) {
        frag.appendChild(el("pre", "code-block", decode(chunk.replace(/^\n/, ""))));
        return;
      }
      let quote = null;
      chunk.split("\n").forEach((line, j, lines) => {
        const quoted = line.startsWith(">");
        if (quoted) {
          if (!quote) { quote = el("blockquote"); frag.appendChild(quote); }
          else quote.appendChild(el("br"));
          inline(line.slice(1).replace(/^ /, ""), ctx, quote);
          return;
        }
        quote = null;
        inline(line, ctx, frag);
        if (j < lines.length - 1 && !(lines[j + 1] || "").startsWith(">")) frag.appendChild(el("br"));
      });
    });
    return frag;
  }

  /* plain_text objects: no markup at all, but Slack still shows :emoji: when emoji is on. */
  function plain(obj) {
    const s = obj && typeof obj === "object" ? obj.text : obj;
    const withEmoji = obj && obj.emoji === false ? String(s || "") : emoji(String(s || ""));
    return document.createTextNode(decode(withEmoji));
  }

  /* A text object of either type. */
  function textObject(obj, ctx) {
    if (!obj) return document.createDocumentFragment();
    return obj.type === "mrkdwn" ? render(obj.text, ctx) : plain(obj);
  }

  global.Mrkdwn = { render, plain, textObject, decode, emoji, el };
})(window);
