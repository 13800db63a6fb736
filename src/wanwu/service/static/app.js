/* 万物识别 / Recognize Anything — progressive enhancement of the server-rendered page.
   Vanilla JS, no build step, no network access beyond this server. */
(() => {
  "use strict";

  const STRINGS = JSON.parse(document.getElementById("i18n").textContent);
  const LANG_KEY = "wanwu.lang";
  const API_KEY = "wanwu.apiKey";
  const TOP_K = 5;
  const MAX_PARALLEL = 4;
  const RETRYABLE = new Set(["overloaded", "not_ready", "network", "inference_failed"]);
  const STATUS_CODES = { 401: "unauthorized", 413: "payload_too_large", 415: "unsupported_media_type", 503: "overloaded" };

  const store = {
    get(key) { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set(key, value) { try { localStorage.setItem(key, value); } catch (_) { /* private mode */ } },
  };

  /* The server picked the page's language: ?lang=, else the remembered choice (cookie), else Accept-Language.
     A choice remembered only here (before the cookie existed) still wins, and is copied to the cookie. */
  const LANG_COOKIE = "wanwu_lang";
  const cookieLang = (document.cookie.match(/(?:^|;\s*)wanwu_lang=(zh|en)(?:;|$)/) || [])[1];
  const asked = new URLSearchParams(location.search).get("lang");
  let lang = document.documentElement.lang in STRINGS ? document.documentElement.lang : "zh";
  const legacy = store.get(LANG_KEY);
  let remembered = null;
  if (asked in STRINGS) remembered = lang;
  else if (!cookieLang && legacy in STRINGS) remembered = lang = legacy;

  function remember(value) {
    store.set(LANG_KEY, value);
    document.cookie = `${LANG_COOKIE}=${value}; path=/; max-age=31536000; samesite=lax`;
  }

  const t = (key, vars) => {
    let text = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
    for (const [name, value] of Object.entries(vars || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  };
  const $ = (selector, root = document) => root.querySelector(selector);

  /** Build an element: el("p", {class: "x"}, "text", child). Text is always set as text, never HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "i18n") { node.dataset.i18n = value; node.textContent = t(value); }
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const form = $("#upload-form");
  const input = $("#file-input");
  const cards = $("#cards");
  const results = $(".results");
  const notice = $("#notice");
  const keyPanel = $("#api-key-panel");
  const keyForm = $("#api-key-form");
  const keyInput = $("#api-key-input");
  const modelValue = $("#model-value");

  /* ---------- language ---------- */

  function applyLang(next) {
    if (next) { lang = next; remember(lang); }
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      let vars = null;
      try { vars = node.dataset.i18nVars ? JSON.parse(node.dataset.i18nVars) : null; } catch (_) { /* plain text */ }
      node.textContent = t(node.dataset.i18n, vars);
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => { node.placeholder = t(node.dataset.i18nPlaceholder); });
    document.querySelectorAll("[data-i18n-aria]").forEach((node) => { node.setAttribute("aria-label", t(node.dataset.i18nAria)); });
    document.querySelectorAll(".lang-switch [data-lang]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    });
    document.title = t("title");
    if (form) form.setAttribute("action", lang === "en" ? "/?lang=en" : "/");
  }

  document.querySelectorAll(".lang-switch [data-lang]").forEach((button) => {
    button.addEventListener("click", () => applyLang(button.dataset.lang));
  });

  /* ---------- rendering ---------- */

  const extOf = (name) => ((name || "").includes(".") ? name.split(".").pop().slice(0, 5).toUpperCase() : "") || "IMG";
  const errorKey = (code) => ("err." + code in STRINGS.en ? "err." + code : "err.unknown");

  const HEADLINE_SCORE = 0.5;  // wanwu.categories.HEADLINE_SCORE
  const NOT_SURE = { label: "not sure", label_zh: "不确定" };
  const percent = (score) => { const v = score * 100; return (v >= 1 || v === 0 ? v.toFixed(0) : v.toFixed(1)) + " %"; };
  const hasHan = (text) => /[\u4e00-\u9fff]/.test(text);

  /** Both languages, each in its span; one span when they are the same ("mammals mammals") or only one is given. */
  function labelNode(p, cls = "pred-label") {
    const zh = p.label_zh, en = p.label;
    if (zh && en && zh !== en) {
      return el("span", { class: cls + " both" }, el("span", { class: "zh" }, zh), " ", el("span", { class: "en" }, en));
    }
    const only = zh || en || "";
    return el("span", { class: cls }, el("span", { class: hasHan(only) ? "zh" : "en" }, only));
  }

  const scored = (item, cls) => [labelNode(item, cls), " ", el("span", { class: "pct" }, percent(Number(item.score) || 0))];

  /** Each listed category's depth from its parents (a parent scores at least its child, so it is listed too). */
  function depths(categories) {
    const byId = new Map(categories.map((c) => [c.id, c]));
    const out = new Map();
    for (const c of categories) {
      let depth = 0, parent = c.parent;
      while (byId.has(parent) && depth < categories.length) { depth += 1; parent = byId.get(parent).parent; }
      out.set(c.id, depth);
    }
    return out;
  }

  /** The most specific category scoring at least 0.5, else the best one: the server's summary rule. */
  function headline(categories) {
    if (!categories.length) return null;
    const depth = depths(categories);
    let best = null;
    for (const c of categories.filter((x) => x.score >= HEADLINE_SCORE)) {
      const d = depth.get(c.id), bd = best ? depth.get(best.id) : -1;
      if (!best || d > bd || (d === bd && c.score > best.score)) best = c;
    }
    return best || categories[0];
  }

  function summaryNode(r) {
    const categories = r.categories || [], predictions = r.predictions || [];
    const notSure = el("span", { class: "sum-head" }, labelNode(NOT_SURE, "sum-label"));
    const parts = [];
    const top = r.unknown ? null : headline(categories);
    if (r.unknown) parts.push(notSure);
    else if (top) parts.push(el("span", { class: "sum-head" }, ...scored(top, "sum-label")));
    if (predictions.length && parts.length) {  // the top class as a "maybe"; alone (a trained model's answer), the headline
      parts.push(el("span", { class: "sum-maybe" }, el("span", { class: "maybe", i18n: "maybe" }), ...scored(predictions[0], "sum-label")));
    } else if (predictions.length) {
      parts.push(el("span", { class: "sum-head" }, ...scored(predictions[0], "sum-label")));
    }
    if (!parts.length) parts.push(notSure);
    const line = el("p", { class: r.unknown ? "summary is-unknown" : "summary" });
    parts.forEach((part, i) => { if (i) line.append(el("span", { class: "sep" }, " · ")); line.append(part); });
    return line;
  }

  /** The headline, the other most specific categories by score, then the parents of listed ones (de-emphasised). */
  function chipsNode(categories) {
    if (!categories.length) return null;
    const head = headline(categories);
    const depth = depths(categories);
    const parents = new Set(categories.map((c) => c.parent));
    const leaves = categories.filter((c) => !parents.has(c.id) && c !== head);
    const rest = categories.filter((c) => parents.has(c.id) && c !== head).sort((a, b) => depth.get(b.id) - depth.get(a.id));
    const list = el("ul", { class: "chips", "data-i18n-aria": "categories", "aria-label": t("categories") });
    const chip = (c, role) => el("li", { class: "chip " + role, "data-id": c.id }, ...scored(c, "chip-label"));
    if (head) list.append(chip(head, "head"));
    leaves.forEach((c) => list.append(chip(c, "leaf")));
    rest.forEach((c) => list.append(chip(c, "parent")));
    return list;
  }

  /** Summary, chips, fine labels; under "best guesses", de-emphasised, when the answer is unknown. */
  function answerNodes(r) {
    const details = [chipsNode(r.categories || []), predictionsNode(r.predictions || [])].filter(Boolean);
    if (!r.unknown) return [summaryNode(r), ...details];
    const hint = r.out_of_set ? "out_of_set_hint" : "not_sure_hint"; // a trained version: like none of its classes
    return [summaryNode(r), el("p", { class: "not-sure-hint", i18n: hint }),
      el("div", { class: "guesses" }, el("h4", { class: "guesses-title", i18n: "best_guesses" }), ...details)];
  }

  function predictionsNode(predictions) {
    if (!predictions.length) return el("p", { class: "muted", i18n: "no_results" });
    const list = el("ol", { class: "preds", "data-i18n-aria": "fine_labels", "aria-label": t("fine_labels") });
    predictions.forEach((p, rank) => {
      const score = Math.max(0, Math.min(1, Number(p.score) || 0));
      const fill = el("span");
      fill.style.width = (score * 100).toFixed(1) + "%";
      list.append(el("li", { class: rank === 0 ? "pred top" : "pred" },
        el("div", { class: "pred-line" }, labelNode(p), el("span", { class: "pct" }, (score * 100).toFixed(1) + "%")),
        el("div", { class: "bar", role: "presentation" }, fill)));
    });
    return list;
  }

  function errorNode(error, job) {
    const box = el("div", { class: "error-box", role: "alert", "data-code": error.code || "" },
      el("p", { class: "error-title", i18n: errorKey(error.code) }));
    if (error.message) {
      box.append(el("p", { class: "error-detail" }, el("span", { i18n: "server_message" }), ": ",
        el("span", { class: "server-message" }, error.message)));
    }
    if (job && RETRYABLE.has(error.code)) {
      const retry = el("button", { type: "button", class: "link-btn", i18n: "retry" });
      retry.addEventListener("click", () => enqueue(job));
      box.append(retry);
    }
    return box;
  }

  function render(job) {
    const card = job.card;
    card.className = "card is-" + job.state + (job.state === "done" && job.result.unknown ? " is-unknown" : "");
    const body = $(".card-content", card);
    const meta = $(".card-meta", card);
    body.replaceChildren();
    meta.replaceChildren();
    if (job.state === "pending") {
      body.append(el("p", { class: "pending-text muted", i18n: "pending" }));
    } else if (job.state === "error") {
      body.append(errorNode(job.error, job));
    } else {
      const r = job.result;
      body.append(...answerNodes(r));
      const timings = r.timings_ms || {};
      const total = typeof timings.total === "number" ? timings.total : job.clientMs;
      if (job.model) meta.append(el("span", { class: "model-name" }, job.model));
      if (typeof total === "number") {
        const detail = ["decode", "queue", "inference"].filter((k) => typeof timings[k] === "number")
          .map((k) => `${k} ${timings[k].toFixed(1)} ms`);
        if (typeof job.clientMs === "number") detail.push(`round trip ${job.clientMs.toFixed(0)} ms`);
        meta.append(el("span", { class: "latency", title: detail.join(" · ") },
          el("span", { i18n: "latency" }), ` ${total.toFixed(total < 10 ? 1 : 0)} ms`));
      }
      if (r.cached) meta.append(el("span", { class: "badge", i18n: "cached" }));
    }
  }

  function createCard(file) {
    const name = file.name || "image";
    const thumb = el("div", { class: "thumb" });
    const showPlaceholder = () => {
      thumb.classList.add("no-thumb");
      thumb.replaceChildren(el("span", { class: "thumb-ext" }, extOf(name)), el("span", { class: "spinner", "aria-hidden": "true" }));
    };
    let url = null;
    if (!file.type || file.type.startsWith("image/")) {
      url = URL.createObjectURL(file);
      const img = el("img", { src: url, alt: name, loading: "lazy" });
      img.addEventListener("error", showPlaceholder, { once: true });
      thumb.append(img, el("span", { class: "spinner", "aria-hidden": "true" }));
    } else {
      showPlaceholder();
    }
    const card = el("article", { class: "card is-pending" }, thumb,
      el("div", { class: "card-body" },
        el("h3", { class: "filename", title: name }, name),
        el("div", { class: "card-content" }),
        el("footer", { class: "card-meta" })));
    return { file, name, url, card, state: "pending" };
  }

  /* ---------- requests ---------- */

  const queue = [];
  const waitingForKey = [];
  let active = 0;

  function authHeaders() {
    const key = store.get(API_KEY);
    return key ? { "X-API-Key": key } : {};
  }

  function enqueue(job) {
    job.state = "pending";
    render(job);
    queue.push(job);
    pump();
  }

  function pump() {
    while (active < MAX_PARALLEL && queue.length) {
      const job = queue.shift();
      active += 1;
      classify(job).finally(() => { active -= 1; pump(); });
    }
  }

  async function classify(job) {
    const body = new FormData();
    body.append("image", job.file, job.name);
    const started = performance.now();
    let response;
    let data = null;
    try {
      const picker = $("#model-picker");
      const model = picker && picker.value ? `&model=${encodeURIComponent(picker.value)}` : "";
      response = await fetch(`/v1/classify?top_k=${TOP_K}${model}`, { method: "POST", body, headers: authHeaders() });
      data = await response.json().catch(() => null);
    } catch (err) {
      return finish(job, { code: "network", message: String((err && err.message) || err) });
    }
    job.clientMs = performance.now() - started;
    if (response.status === 401) {
      waitingForKey.push(job);
      showKeyPanel();
      return finish(job, (data && data.error) || { code: "unauthorized", message: "" });
    }
    if (!response.ok || !data) {
      const fallback = { code: STATUS_CODES[response.status] || "unknown", message: `HTTP ${response.status}` };
      return finish(job, (data && data.error) || fallback);
    }
    const result = (data.results || [])[0];
    if (!result) return finish(job, { code: "unknown", message: "empty response" });
    if (result.error) return finish(job, result.error);
    job.model = data.model;
    job.result = result;
    job.state = "done";
    render(job);
  }

  function finish(job, error) {
    job.state = "error";
    job.error = error;
    render(job);
  }

  function addFiles(fileList) {
    const files = Array.from(fileList || []).filter((f) => f && f.size !== undefined);
    if (!files.length) return;
    notice.replaceChildren();
    const jobs = files.map(createCard);
    const fragment = document.createDocumentFragment();
    jobs.forEach((job) => fragment.append(job.card));
    cards.prepend(fragment);
    results.classList.add("has-cards");
    jobs.forEach(enqueue);
  }

  /* ---------- choose, drop, paste ---------- */

  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  form.addEventListener("submit", (event) => { event.preventDefault(); addFiles(input.files); input.value = ""; });

  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    form.classList.add("is-dragging");
  });
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) form.classList.remove("is-dragging");
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    form.classList.remove("is-dragging");
    addFiles(event.dataTransfer.files);
  });

  document.addEventListener("paste", (event) => {
    if (event.target === keyInput || !event.clipboardData) return;
    const files = Array.from(event.clipboardData.items || [])
      .filter((item) => item.kind === "file")
      .map((item) => item.getAsFile())
      .filter(Boolean);
    if (!files.length) return;
    event.preventDefault();
    addFiles(files);
  });

  $("#clear-btn").addEventListener("click", () => {
    cards.querySelectorAll("img[src^='blob:']").forEach((img) => URL.revokeObjectURL(img.src));
    cards.replaceChildren();
    results.classList.remove("has-cards");
    notice.replaceChildren();
  });

  /* ---------- API key ---------- */

  function showKeyPanel() {
    keyPanel.hidden = false;
    if (document.activeElement !== keyInput) keyInput.focus({ preventScroll: false });
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    store.set(API_KEY, key);
    keyInput.value = "";
    keyPanel.hidden = true;
    waitingForKey.splice(0).forEach(enqueue);
    loadModel();
  });

  /* ---------- model header ---------- */

  let modelTries = 0;
  let loadedModels = [];

  /* "1000 ImageNet classes", or the picked (else the default) model's own name and class count. */
  function showSubtitle() {
    const node = $("#subtitle");
    const picker = $("#model-picker");
    const label = $("#model-picker-label");
    const picked = picker && label && !label.hidden ? loadedModels.find((x) => x.name === picker.value) : null;
    const m = picked || loadedModels.find((x) => x.default);
    if (!node || !m || typeof m.classes !== "number") return;
    const vars = m.imagenet ? null : { model: m.model, n: m.classes };
    node.dataset.i18n = m.imagenet ? "subtitle" : "subtitle_trained";
    if (vars) node.dataset.i18nVars = JSON.stringify(vars); else delete node.dataset.i18nVars;
    node.textContent = t(node.dataset.i18n, vars);
  }
  async function loadModel() {
    try {
      const response = await fetch("/v1/models", { headers: authHeaders() });
      if (response.status === 401) { showKeyPanel(); return; }
      const data = await response.json();
      const m = data && data.active;
      if (!m) {
        if (modelTries++ < 60) setTimeout(loadModel, 2000);
        return;
      }
      loadedModels = data.loaded || [];
      showPicker(loadedModels);
      showSubtitle();
      modelValue.removeAttribute("data-i18n");
      modelValue.textContent = `${m.model} · ${m.engine}`;
      modelValue.title = `${m.model} · ${m.engine} · ${m.precision} · ${m.threads} threads · ${String(m.weights_sha256 || "").slice(0, 12)}`;
    } catch (_) { /* offline header only; classification reports its own errors */ }
  }

  /* With several models loaded, the form offers a picker (rendered by the server; refreshed here). */
  function showPicker(loaded) {
    const picker = $("#model-picker");
    const label = $("#model-picker-label");
    if (!picker || !label || loaded.length < 2) return;
    const chosen = picker.value;
    picker.replaceChildren(...loaded.map((m) => el("option", { value: m.name }, m.model)));
    picker.value = loaded.some((m) => m.name === chosen) ? chosen : (loaded.find((m) => m.default) || loaded[0]).name;
    label.hidden = false;
  }

  const pickerNode = $("#model-picker");
  if (pickerNode) pickerNode.addEventListener("change", showSubtitle);

  if (remembered) remember(remembered);
  applyLang();
  loadModel();
})();
