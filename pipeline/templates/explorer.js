// zhtopics explorer: topics, documents and words of one run, from the data embedded above.
// Texts are data: every string reaches the page through textContent or an attribute value,
// never as markup. Views are chosen by the location hash (#topics, #topic/3, #doc/ID, #word/W).
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const K = DATA.topics.length;
  const N = DATA.meta.documents;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39",
    "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1"];
  const color = (k) => PALETTE[k % PALETTE.length];

  function decode(b64, bytesPer) {
    const raw = atob(b64);
    const n = raw.length / bytesPer;
    const out = bytesPer === 1 ? new Uint8Array(n) : bytesPer === 2 ? new Uint16Array(n) : new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let b = bytesPer - 1; b >= 0; b--) v = v * 256 + raw.charCodeAt(i * bytesPer + b);
      out[i] = v;
    }
    return out;
  }
  const THETA = decode(DATA.theta, 2); // documents x topics, shares * 65535
  const LENGTHS = decode(DATA.lengths, 4);
  const FILTERS = DATA.filters.map((f) => Object.assign({}, f, { codes: decode(f.codes, f.bytes) }));
  const TERM_INDEX = new Map(DATA.terms.map((t, i) => [t, i]));
  const DOC_BY_ID = new Map(DATA.docs.map((d) => [d.id, d]));
  const state = { filter: FILTERS.map((f) => (f.time ? { from: 0, to: f.groups.length - 1 } : { value: -1 })),
    sort: { key: "topic", dir: 1 }, lambda: 0.6 };
  let mask = null; // Uint8Array of documents in the filter, or null for all
  let active = 0; // documents in the filter

  // ---- DOM helpers: text only ----
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child != null) node.append(child);
    return node;
  }
  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const node = document.createElementNS(svgNS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    return node;
  }
  function link(text, hash, cls) {
    const a = el("a", { class: cls || "link", href: "#" + hash, text: text });
    return a;
  }
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const fmt = (x, d) => {
    if (x == null) return "";
    const text = Number(x).toFixed(d == null ? 3 : d);
    return /^-0\.?0*$/.test(text) ? text.slice(1) : text; // no "-0.000"
  };
  const topicName = (k) => "Topic " + k + ": " + DATA.topics[k].label;
  const docLabel = (d) => (d.title || d.id) + (d.meta.part != null ? " · " + d.meta.part : "") +
    (d.meta.paragraph != null ? " ¶" + d.meta.paragraph : "");

  // ---- filters ----
  function computeMask() {
    const on = state.filter.some((f, i) => (FILTERS[i].time ? f.from > 0 || f.to < FILTERS[i].groups.length - 1 : f.value >= 0));
    if (!on) { mask = null; active = N; return; }
    mask = new Uint8Array(N);
    active = 0;
    for (let d = 0; d < N; d++) {
      let keep = 1;
      for (let i = 0; i < FILTERS.length && keep; i++) {
        const code = FILTERS[i].codes[d], f = state.filter[i];
        keep = FILTERS[i].time ? (code >= f.from && code <= f.to) : (f.value < 0 || code === f.value);
      }
      mask[d] = keep;
      active += keep;
    }
  }
  const inFilter = (row) => mask === null || mask[row] === 1;
  function filterText() {
    const parts = [];
    state.filter.forEach((f, i) => {
      const F = FILTERS[i];
      if (F.time && (f.from > 0 || f.to < F.groups.length - 1)) parts.push(F.column + " " + F.groups[f.from] + "–" + F.groups[f.to]);
      if (!F.time && f.value >= 0) parts.push(F.column + " = " + F.groups[f.value]);
    });
    return parts.join(", ");
  }
  function buildFilters() {
    const box = document.getElementById("filters");
    FILTERS.forEach((F, i) => {
      if (F.groups.length < 2) return; // nothing to choose
      if (F.time) {
        const from = el("select", { id: "filter-" + F.column + "-from", "aria-label": F.column + " from" });
        const to = el("select", { id: "filter-" + F.column + "-to", "aria-label": F.column + " to" });
        F.groups.forEach((g, j) => { from.append(el("option", { value: j, text: g })); to.append(el("option", { value: j, text: g })); });
        to.value = F.groups.length - 1;
        const change = () => {
          let a = +from.value, b = +to.value;
          if (a > b) [a, b] = [b, a];
          state.filter[i] = { from: a, to: b };
          refresh();
        };
        from.addEventListener("change", change);
        to.addEventListener("change", change);
        box.append(el("label", {}, F.column + " from ", from, " to ", to));
      } else {
        const select = el("select", { id: "filter-" + F.column, "aria-label": F.column });
        select.append(el("option", { value: -1, text: "all" }));
        F.groups.forEach((g, j) => select.append(el("option", { value: j, text: g })));
        select.addEventListener("change", () => { state.filter[i] = { value: +select.value }; refresh(); });
        box.append(el("label", {}, F.column + " ", select));
      }
    });
    if (FILTERS.some((F) => F.groups.length > 1)) {
      box.append(el("button", { type: "button", id: "filter-reset", text: "Reset filters", onclick: () => {
        state.filter = FILTERS.map((f) => (f.time ? { from: 0, to: f.groups.length - 1 } : { value: -1 }));
        FILTERS.forEach((F) => {
          if (F.groups.length < 2) return;
          if (F.time) { document.getElementById("filter-" + F.column + "-from").value = 0; document.getElementById("filter-" + F.column + "-to").value = F.groups.length - 1; }
          else document.getElementById("filter-" + F.column).value = -1;
        });
        refresh();
      } }));
    }
  }

  // ---- numbers under the filter ----
  function prevalence() {
    // Token-weighted share of each topic (as topics.parquet), over the documents in the filter.
    if (mask === null) return DATA.topics.map((t) => t.prevalence);
    const sums = new Float64Array(K);
    let total = 0;
    for (let d = 0; d < N; d++) {
      if (!mask[d]) continue;
      const len = LENGTHS[d];
      total += len;
      for (let k = 0; k < K; k++) sums[k] += THETA[d * K + k] * len;
    }
    return Array.from(sums, (s) => (total ? s / total / 65535 : 0));
  }
  function groupMeans(fi, k) {
    // Mean share of topic k per group of filter fi with a normal 95% interval, in the filter;
    // without a filter, topic_prevalence.parquet's rows (bootstrap intervals) where it has them.
    const F = FILTERS[fi];
    const table = mask === null ? DATA.prevalence[F.column] || {} : {};
    const G = F.groups.length;
    const n = new Float64Array(G), s = new Float64Array(G), s2 = new Float64Array(G);
    for (let d = 0; d < N; d++) {
      if (mask !== null && !mask[d]) continue;
      const g = F.codes[d], x = THETA[d * K + k] / 65535;
      n[g] += 1; s[g] += x; s2[g] += x * x;
    }
    return F.groups.map((g, j) => {
      const row = table[g];
      if (row) return { group: g, n: row.n, mean: row.topics[k][0], low: row.topics[k][1], high: row.topics[k][2] };
      if (!n[j]) return { group: g, n: 0 };
      const mean = s[j] / n[j];
      const sd = n[j] > 1 ? Math.sqrt(Math.max(0, (s2[j] - n[j] * mean * mean) / (n[j] - 1))) : 0;
      const half = 1.96 * sd / Math.sqrt(n[j]);
      return { group: g, n: n[j], mean: mean, low: Math.max(0, mean - half), high: Math.min(1, mean + half) };
    });
  }
  const timeFilter = () => FILTERS.findIndex((f) => f.time && f.groups.some((g) => g !== "(missing)"));

  // ---- charts ----
  function trendChart(fi, k, w, h, small) {
    const rows = groupMeans(fi, k).filter((r) => r.n > 0 && r.group !== "(missing)");
    const box = svg("svg", { width: w, height: h, class: small ? "spark" : "trend", role: "img",
      "aria-label": "topic " + k + " by " + FILTERS[fi].column });
    if (!rows.length) return box;
    const pad = small ? 2 : 30;
    const top = Math.max(...rows.map((r) => r.high)) || 1;
    const x = (i) => pad + (rows.length === 1 ? (w - 2 * pad) / 2 : i * (w - 2 * pad) / (rows.length - 1));
    const y = (v) => h - pad - v / top * (h - 2 * pad);
    const band = rows.map((r, i) => x(i) + "," + y(r.high)).concat(rows.slice().reverse().map((r, i) => x(rows.length - 1 - i) + "," + y(r.low)));
    box.append(svg("polygon", { points: band.join(" "), fill: color(k), "fill-opacity": 0.2, class: "band" }));
    box.append(svg("polyline", { points: rows.map((r, i) => x(i) + "," + y(r.mean)).join(" "), fill: "none", stroke: color(k), "stroke-width": small ? 1.5 : 2 }));
    if (small) rows.forEach((r, i) => box.append(svg("circle", { cx: x(i), cy: y(r.mean), r: 2, fill: color(k) })));
    if (!small) {
      rows.forEach((r, i) => {
        box.append(svg("circle", { cx: x(i), cy: y(r.mean), r: 3, fill: color(k) }));
        box.append(svg("text", { x: x(i), y: h - 8, "text-anchor": "middle", text: r.group }));
      });
      box.append(svg("text", { x: 2, y: 12, text: pct(top) }));
      box.append(svg("line", { x1: pad, x2: w - pad, y1: h - pad, y2: h - pad, stroke: "#999" }));
    }
    return box;
  }
  function groupBars(fi, k) {
    const rows = groupMeans(fi, k).filter((r) => r.n > 0);
    const top = Math.max(...rows.map((r) => r.high), 1e-9);
    const table = el("table", { class: "groups" }, el("tr", {}, el("th", { text: FILTERS[fi].column }), el("th", { text: "documents" }), el("th", { text: "mean share (95% interval)" })));
    for (const r of rows) {
      const chart = svg("svg", { width: 260, height: 14 });
      chart.append(svg("rect", { x: 0, y: 3, width: 250 * r.mean / top, height: 8, fill: color(k) }));
      chart.append(svg("line", { x1: 250 * r.low / top, x2: 250 * r.high / top, y1: 7, y2: 7, stroke: "#222" }));
      table.append(el("tr", {}, el("td", { text: r.group }), el("td", { class: "num", text: r.n }),
        el("td", {}, chart, " " + pct(r.mean) + " (" + pct(r.low) + "–" + pct(r.high) + ")")));
    }
    return table;
  }

  // ---- views ----
  const view = () => document.getElementById("view");
  function setView(...nodes) { const v = view(); v.replaceChildren(...nodes); }

  function topicsView() {
    const prev = prevalence();
    const tf = timeFilter();
    const columns = [["topic", "#"], ["label", "label"], ["prevalence", "prevalence"], ["coherence", "coherence (c_npmi)"]];
    const head = el("tr", {});
    for (const [key, name] of columns) {
      const th = el("th", { class: "sortable" + (state.sort.key === key ? (state.sort.dir > 0 ? " sorted-asc" : " sorted-desc") : ""), "data-key": key, text: name });
      th.addEventListener("click", () => { state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : (key === "topic" || key === "label" ? 1 : -1) }; topicsView(); });
      head.append(th);
    }
    if (tf >= 0) {
      const key = "trend";
      const th = el("th", { class: "sortable" + (state.sort.key === key ? (state.sort.dir > 0 ? " sorted-asc" : " sorted-desc") : ""), "data-key": key,
        text: "trend by " + FILTERS[tf].column, title: "sorts by the change from the first to the last period" });
      th.addEventListener("click", () => { state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : -1 }; topicsView(); });
      head.append(th);
    }
    head.append(el("th", { text: "top terms" }));
    const change = (k) => {
      const r = groupMeans(tf, k).filter((g) => g.n > 0 && g.group !== "(missing)");
      return r.length ? r[r.length - 1].mean - r[0].mean : 0;
    };
    const rows = DATA.topics.map((t) => ({ topic: t.topic, label: t.label, prevalence: prev[t.topic], coherence: t.coherence,
      trend: tf >= 0 ? change(t.topic) : 0 }));
    const { key, dir } = state.sort;
    rows.sort((a, b) => (a[key] < b[key] ? -dir : a[key] > b[key] ? dir : a.topic - b.topic));
    const table = el("table", { id: "topics-table" }, head);
    for (const r of rows) {
      const terms = DATA.topics[r.topic].terms.slice(0, 8).map((t) => DATA.terms[t[0]]).join(" ");
      const tr = el("tr", { "data-topic": r.topic },
        el("td", { class: "num", text: r.topic }),
        el("td", {}, el("span", { class: "swatch", style: "display:inline-block;width:10px;height:10px;margin-right:4px;background:" + color(r.topic) }), link(r.label, "topic/" + r.topic)),
        el("td", { class: "num prevalence", text: pct(r.prevalence) }),
        el("td", { class: "num", text: fmt(r.coherence) }));
      if (tf >= 0) tr.append(el("td", {}, trendChart(tf, r.topic, 120, 28, true)));
      tr.append(el("td", { text: terms }));
      table.append(tr);
    }
    setView(el("h2", { text: K + " topics" }),
      el("p", { class: "status", text: "Prevalence: share of the model's tokens in the documents of the filter. Click a column to sort." }),
      table);
  }

  function relevanceTerms(k, lambda, n) {
    return DATA.topics[k].terms.map(([i, p, rank]) => {
      const pw = Math.max(DATA.term_share[i], 1e-12), lp = Math.log(Math.max(p, 1e-300));
      return { term: DATA.terms[i], p: p, pw: pw, rank: rank, score: lambda * lp + (1 - lambda) * (lp - Math.log(pw)) };
    }).sort((a, b) => b.score - a.score || a.rank - b.rank).slice(0, n);
  }

  function docsOfTopic(k, n) {
    const docs = DATA.docs.filter((d) => inFilter(d.row));
    const share = (d) => THETA[d.row * K + k];
    return docs.sort((a, b) => share(b) - share(a) || a.row - b.row).slice(0, n).filter((d) => share(d) > 0);
  }

  function highlighted(doc, terms, chars) {
    // The document's text with the given terms in <mark>, cut after ``chars`` characters.
    const box = el("span", { class: "snippet" });
    let used = 0;
    for (const [piece, topic] of doc.segments) {
      if (used >= chars) break;
      const text = piece.slice(0, chars - used);
      used += text.length;
      box.append(terms.has(piece) ? el("mark", { text: text }) : document.createTextNode(text));
    }
    if (used >= chars) box.append("…");
    return box;
  }

  function topicView(k) {
    if (!(k >= 0 && k < K)) return notFound("no topic " + k);
    const t = DATA.topics[k];
    const prev = prevalence()[k];
    const slider = el("input", { type: "range", id: "lambda", min: 0, max: 1, step: 0.01, value: state.lambda, "aria-label": "relevance lambda" });
    const lambdaValue = el("span", { id: "lambda-value", text: state.lambda.toFixed(2) });
    const termsBox = el("div", { id: "topic-terms" });
    const drawTerms = () => {
      const rows = relevanceTerms(k, state.lambda, 30);
      const top = Math.max(...rows.map((r) => r.p), 1e-12);
      const table = el("table", {}, el("tr", {}, el("th", { text: "rank" }), el("th", { text: "term" }), el("th", { text: "p(term | topic)" }), el("th", { text: "rank by probability" })));
      rows.forEach((r, i) => table.append(el("tr", { class: "term-row" },
        el("td", { class: "num", text: i + 1 }), el("td", {}, link(r.term, "word/" + encodeURIComponent(r.term))),
        el("td", {}, el("span", { class: "bar", style: "width:" + Math.round(160 * r.p / top) + "px" }), " " + fmt(r.p, 4)),
        el("td", { class: "num", text: r.rank }))));
      termsBox.replaceChildren(table);
    };
    slider.addEventListener("input", () => { state.lambda = +slider.value; lambdaValue.textContent = state.lambda.toFixed(2); drawTerms(); });
    drawTerms();
    const highlight = new Set(relevanceTerms(k, 0.6, 30).map((r) => r.term).concat(t.terms.slice(0, 30).map((x) => DATA.terms[x[0]])));
    const docList = el("div", { id: "topic-docs" });
    for (const d of docsOfTopic(k, 10)) {
      docList.append(el("div", { class: "doc-item" },
        link(docLabel(d), "doc/" + encodeURIComponent(d.id)),
        el("span", { class: "muted", text: "  " + pct(THETA[d.row * K + k] / 65535) + (d.date ? " · " + d.date : "") }),
        el("div", {}, highlighted(d, highlight, 220))));
    }
    if (!docList.childNodes.length) docList.append(el("p", { class: "muted", text: "No sampled document in the filter." }));
    const parts = [el("h2", { id: "topic-title", text: topicName(k) }),
      el("p", { class: "status", text: "prevalence " + pct(prev) + " · coherence c_npmi " + fmt(t.coherence) }),
      el("div", { class: "cols" },
        el("div", {}, el("h3", { text: "Top terms" }),
          el("div", { class: "slider" }, "relevance λ ", slider, lambdaValue),
          el("p", { class: "status", text: "λ = 1: by probability; λ → 0: terms specific to the topic (Sievert & Shirley 2014)." }), termsBox),
        el("div", { style: "flex:1;min-width:380px" }, el("h3", { text: "Representative documents (sample)" }), docList))];
    const tf = timeFilter();
    if (tf >= 0) {
      parts.push(el("h3", { text: "Trend by " + FILTERS[tf].column + " with 95% interval" }), trendChart(tf, k, 640, 200, false));
    }
    FILTERS.forEach((F, fi) => { if (!F.time) parts.push(el("h3", { text: "Prevalence by " + F.column }), groupBars(fi, k)); });
    parts.push(...contrastsOf(k), ...keynessFor(k, highlight));
    setView(...parts);
  }

  function contrastsOf(k) {
    // topic_contrasts.parquet (the compare stage): this topic in each group against the rest.
    const rows = DATA.contrasts.filter((r) => r[2] === k);
    if (!rows.length) return [];
    const table = el("table", { id: "topic-contrasts" }, el("tr", {}, el("th", { text: "column" }), el("th", { text: "group" }),
      el("th", { text: "documents" }), el("th", { text: "share vs the rest (points, 95% interval)" })));
    const points = (x) => (x >= 0 ? "+" : "") + (100 * x).toFixed(1);
    for (const [column, group, , n, diff, low, high] of rows) {
      table.append(el("tr", {}, el("td", { text: column }), el("td", { text: group }), el("td", { class: "num", text: n }),
        el("td", { class: "num", text: points(diff) + " (" + points(low) + " to " + points(high) + ")" })));
    }
    return [el("h3", { text: "Topic differences between groups (topic_contrasts)" }), table];
  }

  function keynessFor(k, topicTerms) {
    // keyness.parquet (the compare stage): each group's key terms; this topic's terms marked.
    const columns = Object.keys(DATA.keyness);
    if (!columns.length) return [];
    const table = el("table", { id: "keyness" }, el("tr", {}, el("th", { text: "column" }), el("th", { text: "group" }),
      el("th", { text: "key terms (G², marked: among this topic's terms)" })));
    for (const column of columns) {
      for (const [group, terms] of Object.entries(DATA.keyness[column])) {
        const cell = el("td", {});
        terms.forEach(([term, g2, , significant], i) => {
          if (i) cell.append(" ");
          const word = link(term, "word/" + encodeURIComponent(term));
          cell.append(topicTerms.has(term) ? el("mark", {}, word) : word);
          if (!significant) cell.append(el("span", { class: "muted", text: "(n.s.)" }));
        });
        table.append(el("tr", {}, el("td", { text: column }), el("td", { text: group }), cell));
      }
    }
    return [el("h3", { text: "Key terms of groups against the rest (keyness)" }), table];
  }

  function docView(id) {
    const d = DOC_BY_ID.get(id);
    if (!d) return notFound("document " + id + " is not in the explorer's sample");
    const meta = el("table", { id: "doc-meta" });
    const rows = [["doc_id", d.id], ["date", d.date || ""]].concat(Object.entries(d.meta));
    for (const [key, value] of rows) meta.append(el("tr", {}, el("th", { text: key }), el("td", { text: String(value) })));
    const bar = el("div", { class: "mix", id: "doc-mix" });
    const legend = el("div", { class: "legend" });
    for (const [k, w] of d.mix) {
      bar.append(el("span", { style: "width:" + (100 * w).toFixed(2) + "%;background:" + color(k), title: topicName(k) + " " + pct(w), "data-topic": k }));
      legend.append(el("span", {}, el("span", { class: "swatch", style: "background:" + color(k) }), link(topicName(k) + " " + pct(w), "topic/" + k)));
    }
    const kw = el("p", { id: "doc-keywords" });
    d.keywords.forEach(([term, w], i) => { if (i) kw.append(" · "); kw.append(link(term, "word/" + encodeURIComponent(term)), el("span", { class: "muted", text: " " + fmt(w, 2) })); });
    const text = el("div", { class: "text", id: "doc-text" });
    for (const [piece, topic] of d.segments) {
      text.append(topic >= 0 ? el("span", { class: "tok", style: "border-color:" + color(topic), title: topicName(topic), "data-topic": topic, text: piece }) : document.createTextNode(piece));
    }
    if (d.cut) text.append(el("span", { class: "muted", text: " … (" + d.chars + " characters, the first " + DATA.meta.sample.text_chars + " shown)" }));
    setView(el("h2", { id: "doc-title", text: d.title || d.id }), meta,
      el("h3", { text: "Topic mix" }), bar, legend,
      el("h3", { text: "TF-IDF keywords" }), kw,
      el("h3", { text: "Text, each content word underlined in the colour of its topic" }), text);
  }

  function wordView(word) {
    const input = document.getElementById("search");
    input.value = word;
    if (!word) {
      return setView(el("h2", { text: "Words" }), el("p", { text: "Type a word (Chinese or other) in the search box: its topics, the sampled documents that use it most, and its contexts." }));
    }
    const parts = [el("h2", { id: "word-title", text: "“" + word + "”" })];
    const i = TERM_INDEX.get(word);
    const topics = el("table", { id: "word-topics" }, el("tr", {}, el("th", { text: "topic" }), el("th", { text: "rank by probability" }), el("th", { text: "p(term | topic)" })));
    let found = 0;
    if (i !== undefined) {
      DATA.topics.map((t) => [t.topic, t.terms.find((x) => x[0] === i)]).filter((x) => x[1])
        .sort((a, b) => a[1][2] - b[1][2]).forEach(([k, x]) => {
          found++;
          topics.append(el("tr", { "data-topic": k }, el("td", {}, link(topicName(k), "topic/" + k)), el("td", { class: "num", text: x[2] }), el("td", { class: "num", text: fmt(x[1], 5) })));
        });
    }
    parts.push(el("h3", { text: "Topics" }));
    parts.push(found ? topics : el("p", { class: "muted", id: "word-topics-none", text: "Not among the " + DATA.meta.sample.topic_terms + " most probable terms of any topic." }));
    const uses = [];
    const lines = [];
    for (const d of DATA.docs) {
      if (!inFilter(d.row)) continue;
      const text = d.segments.map((s) => s[0]).join("");
      let at = text.indexOf(word), n = 0;
      while (at >= 0) {
        n++;
        if (lines.length < 60) lines.push([text.slice(Math.max(0, at - 24), at), word, text.slice(at + word.length, at + word.length + 24), d]);
        at = text.indexOf(word, at + word.length);
      }
      if (n) uses.push([n, d]);
    }
    uses.sort((a, b) => b[0] - a[0] || a[1].row - b[1].row);
    const docs = el("table", { id: "word-docs" }, el("tr", {}, el("th", { text: "uses" }), el("th", { text: "document" }), el("th", { text: "date" })));
    uses.slice(0, 20).forEach(([n, d]) => docs.append(el("tr", {}, el("td", { class: "num", text: n }), el("td", {}, link(docLabel(d), "doc/" + encodeURIComponent(d.id))), el("td", { text: d.date || "" }))));
    parts.push(el("h3", { text: "Sampled documents that use it most (" + uses.length + " in the filter)" }), uses.length ? docs : el("p", { class: "muted", text: "No sampled document in the filter contains it." }));
    const kwic = el("table", { class: "kwic", id: "concordance" });
    for (const [left, hit, right, d] of lines) {
      kwic.append(el("tr", {}, el("td", { class: "left", text: left }), el("td", { class: "hit", text: hit }), el("td", { text: right }), el("td", {}, link("→", "doc/" + encodeURIComponent(d.id)))));
    }
    parts.push(el("h3", { text: "Concordance" }), lines.length ? kwic : el("p", { class: "muted", text: "No context in the sample." }));
    setView(...parts);
  }

  function notFound(message) { setView(el("h2", { text: "Not found" }), el("p", { id: "not-found", text: message })); }

  // ---- routing ----
  function route() {
    let hash = location.hash.slice(1);
    try { hash = decodeURIComponent(hash); } catch (e) { /* a malformed hash stays as typed */ }
    const [kind, ...rest] = hash.split("/");
    const arg = rest.join("/");
    if (kind === "topic") topicView(Number(arg));
    else if (kind === "doc") docView(arg);
    else if (kind === "word") wordView(arg);
    else topicsView();
    window.scrollTo(0, 0);
  }
  function refresh() {
    computeMask();
    const note = filterText();
    document.getElementById("status").textContent = (note ? "Filter: " + note + " · " : "") + active + " of " + N + " documents";
    document.getElementById("status").setAttribute("data-active", active);
    route();
  }

  function start() {
    const s = DATA.meta.sample;
    const M = DATA.meta.modelled;
    document.getElementById("sample-note").textContent =
      (M > N ? "The numbers and filters count " + N + " of the " + M + " modelled documents (the sampled ones and a random choice of the others, explorer.max_shares = " + DATA.meta.max_shares + " topic shares)"
        : "All " + N + " modelled documents count in the numbers and filters") + "; texts are embedded for a sample of " + DATA.meta.sampled +
      " documents: the " + s.docs_per_topic + " with the largest share of each topic, " + s.docs_per_group + " of each filter group and " +
      s.random_docs + " at random (seed " + s.random_state + "), each cut to " + s.text_chars + " characters. Each topic embeds its " +
      s.topic_terms + " most probable terms and the " + s.relevance_terms + " best by relevance at λ = 0, 0.05, …, 1. " +
      "A word's topic in a text is the largest p(word | topic) × p(topic | document).";
    document.getElementById("search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const word = document.getElementById("search").value.trim();
      location.hash = "word/" + encodeURIComponent(word);
    });
    buildFilters();
    window.addEventListener("hashchange", route);
    refresh();
    document.body.setAttribute("data-ready-ms", Math.round(performance.now()));
    document.body.setAttribute("data-ready", "1");
  }
  start();
})();
