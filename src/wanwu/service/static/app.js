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

  let lang = store.get(LANG_KEY);
  if (!(lang in STRINGS)) lang = document.documentElement.lang in STRINGS ? document.documentElement.lang : "zh";

  const t = (key) => (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
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
    if (next) { lang = next; store.set(LANG_KEY, lang); }
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((node) => { node.placeholder = t(node.dataset.i18nPlaceholder); });
    document.querySelectorAll("[data-i18n-aria]").forEach((node) => { node.setAttribute("aria-label", t(node.dataset.i18nAria)); });
    document.querySelectorAll(".lang-switch [data-lang]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
    });
    document.title = t("title");
  }

  document.querySelectorAll(".lang-switch [data-lang]").forEach((button) => {
    button.addEventListener("click", () => applyLang(button.dataset.lang));
  });

  /* ---------- rendering ---------- */

  const extOf = (name) => ((name || "").includes(".") ? name.split(".").pop().slice(0, 5).toUpperCase() : "") || "IMG";
  const errorKey = (code) => ("err." + code in STRINGS.en ? "err." + code : "err.unknown");

  function labelNode(p) {
    const both = p.label_zh && p.label;
    return el("span", { class: both ? "pred-label both" : "pred-label" },
      p.label_zh ? el("span", { class: "zh" }, p.label_zh) : null,
      p.label ? el("span", { class: "en" }, p.label) : null);
  }

  function predictionsNode(predictions) {
    if (!predictions.length) return el("p", { class: "muted", i18n: "no_results" });
    const list = el("ol", { class: "preds" });
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
    card.className = "card is-" + job.state;
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
      body.append(predictionsNode(r.predictions || []));
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
      showPicker(data.loaded || []);
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

  applyLang();
  loadModel();
})();
