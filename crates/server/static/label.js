// The annotator's page: asks for the next item (a server-rendered fragment), builds the answer
// from the schema's controls, and submits it through the JSON API. An answer is written to
// localStorage before it is sent and removed only when the server acknowledged the commit, so a
// network error, a closed tab or a restarted server never loses it: the page retries with the
// same idempotency key, and the server stores it once.
"use strict";

(() => {
  const root = document.getElementById("label-page");
  if (!root) return;
  const form = document.getElementById("answer-form");
  const skipForm = document.getElementById("skip-form");
  const slot = document.getElementById("item-slot");
  const statusLine = document.getElementById("save-status");
  const goldBox = document.getElementById("gold-feedback");
  const panel = document.getElementById("guideline-panel");
  const questions = Array.from(form.querySelectorAll("fieldset.question"));
  const pendingKey = root.dataset.pendingKey;
  const draftKey = pendingKey + ".draft";

  // { itemId, title, guidelineVersionId, shownAt, reservedUntil, supersedes }; `supersedes`
  // is set while the annotator corrects their last answer (undo).
  let current = null;
  let lastSaved = null; // { annotationId, title }: what the Undo button reopens
  let reservationTimer = null;
  let active = 0;
  let busy = false;
  // The next item's slot, when it came back with the last answer (one request, not two).
  let arrivedNext = null;
  let digits = "";
  let digitTimer = null;

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const csrf = () => document.body.dataset.csrf || "";

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.dataset.kind = kind || "";
  }

  /** A random key; `crypto.randomUUID` exists only in secure contexts, this works everywhere. */
  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function readStored(key) {
    try {
      return JSON.parse(localStorage.getItem(key) || "null");
    } catch {
      return null;
    }
  }

  function signInAgain() {
    const next = encodeURIComponent(location.pathname);
    statusLine.replaceChildren(
      "Your session has ended. Your answer is kept in this browser and will be sent when you ",
      Object.assign(document.createElement("a"), { href: `/login?next=${next}`, textContent: "sign in again" }),
      ".",
    );
    statusLine.dataset.kind = "error";
  }

  /**
   * POSTs JSON until the server gives an answer that is not a transient failure. Returns
   * { ok, status, payload }; never throws. Network errors and 5xx are retried with backoff.
   */
  async function postUntilAnswered(url, body, what) {
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(body),
        });
        if (response.status < 500 && response.status !== 429 && response.status !== 408) {
          const payload = await response.json().catch(() => null);
          return { ok: response.ok, status: response.status, payload };
        }
        say(`${what}: the server answered ${response.status}. Retrying (attempt ${attempt + 1}); your answer is kept.`, "warn");
      } catch {
        say(`${what}: the server cannot be reached. Retrying (attempt ${attempt + 1}); your answer is kept.`, "warn");
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  }

  // ------------------------------------------------------------------ items

  async function loadNext() {
    current = null;
    form.hidden = true;
    skipForm.hidden = true;
    showCorrecting(false);
    if (arrivedNext !== null) {
      slot.innerHTML = arrivedNext;
      arrivedNext = null;
      showItem();
      return;
    }
    slot.setAttribute("aria-busy", "true");
    let delay = 500;
    for (;;) {
      try {
        const response = await fetch(root.dataset.nextUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf() },
        });
        if (response.redirected && new URL(response.url).pathname === "/login") {
          signInAgain();
          return;
        }
        if (response.ok) {
          slot.innerHTML = await response.text();
          break;
        }
        if (response.status < 500) {
          say(`The next item could not be loaded (${response.status}). Reload the page to try again.`, "error");
          return;
        }
      } catch {
        // fall through to the retry
      }
      say("The server cannot be reached; asking again for the next item…", "warn");
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
    slot.setAttribute("aria-busy", "false");
    showItem();
  }

  /** Takes the item the slot now shows: a leased item, or the last answer's item to correct. */
  function showItem() {
    const article = slot.querySelector("[data-status]");
    const status = article ? article.dataset.status : "";
    if (status !== "leased" && status !== "correcting") return;
    const correcting = status === "correcting";
    current = {
      itemId: Number(article.dataset.itemId),
      title: (article.querySelector("h1") || {}).textContent || "",
      guidelineVersionId: article.dataset.guidelineVersionId ? Number(article.dataset.guidelineVersionId) : null,
      shownAt: performance.now(),
      reservedUntil: correcting ? null : performance.now() + Number(article.dataset.secondsLeft || 0) * 1000,
      supersedes: correcting ? Number(article.dataset.supersedes) : null,
    };
    showReservation();
    resetForm();
    if (correcting) prefill(JSON.parse(article.dataset.previous || "{}"));
    else restoreDraft();
    showCorrecting(correcting);
    showCategoriesInPlay();
    form.hidden = false;
    // Start at the first question without an answer (all of them, unless a draft was restored).
    const open = questions.findIndex((q) => !q.querySelector("input:checked"));
    activate(open < 0 ? 0 : open);
  }

  /** Opens the guideline examples of every category the answer names, closes the others. */
  function showCategoriesInPlay() {
    const chosen = new Set(Array.from(form.querySelectorAll("input:checked"), (i) => i.value));
    panel.querySelectorAll("details[data-category]").forEach((details) => {
      const inPlay = chosen.has(details.dataset.category);
      details.open = inPlay;
      details.classList.toggle("in-play", inPlay);
    });
  }

  /** How long the item stays reserved; after that an answer is still kept, marked late. */
  function showReservation() {
    clearTimeout(reservationTimer);
    const line = slot.querySelector(".reservation");
    if (!current || !line || current.reservedUntil === null) return;
    const left = Math.round((current.reservedUntil - performance.now()) / 1000);
    if (left > 0) {
      line.textContent = left >= 120
        ? `Reserved for you for ${Math.floor(left / 60)} more minutes.`
        : `Reserved for you for ${left} more seconds.`;
      reservationTimer = setTimeout(showReservation, left > 120 ? 30_000 : 1_000);
    } else {
      line.textContent = "Your reservation has ended: you can still submit, and the answer is kept (marked late).";
    }
  }

  function resetForm() {
    form.reset();
    form.querySelectorAll(".field-error, .form-error").forEach((e) => { e.hidden = true; });
  }

  // A half-finished answer survives a reload of the page (the lease resumes the same item).
  function saveDraft() {
    if (!current || current.supersedes) return; // a correction starts from the stored answer
    const checked = Array.from(form.querySelectorAll("input:checked"), (i) => [i.name, i.value]);
    const rationale = form.elements.rationale ? form.elements.rationale.value : "";
    localStorage.setItem(draftKey, JSON.stringify({ itemId: current.itemId, checked, rationale }));
  }

  function restoreDraft() {
    const draft = readStored(draftKey);
    if (!draft || draft.itemId !== current.itemId) return;
    for (const [name, value] of draft.checked || []) {
      const input = Array.from(form.querySelectorAll("input")).find((i) => i.name === name && i.value === value);
      if (input) input.checked = true;
    }
    if (form.elements.rationale) form.elements.rationale.value = draft.rationale || "";
  }

  /** Fills the form with an answer given earlier (the one being corrected). */
  function prefill(previous) {
    const answer = previous.answer || {};
    for (const q of questions) {
      const value = answer[q.dataset.question];
      const codes = Array.isArray(value) ? value : value === undefined ? [] : [value];
      q.querySelectorAll("input").forEach((input) => { input.checked = codes.includes(input.value); });
    }
    if (form.elements.rationale) form.elements.rationale.value = previous.rationale || "";
    const flags = previous.flags || [];
    form.querySelectorAll('input[name="flag"]').forEach((input) => { input.checked = flags.includes(input.value); });
  }

  /** While correcting, only a full label can be sent: unsure and skip belong to new items. */
  function showCorrecting(on) {
    document.getElementById("unsure").hidden = on;
    document.getElementById("skip").hidden = on;
    document.getElementById("keep-answer").hidden = !on;
  }

  // ------------------------------------------------------------------ saved state and undo

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  /** "Saved ✓ 12:04 — Undo": the status line (aria-live) says the answer is stored. */
  function saySaved(text, annotationId, title) {
    lastSaved = { annotationId, title };
    const undo = Object.assign(document.createElement("button"), {
      type: "button", id: "undo-answer", className: "link",
    });
    undo.dataset.undo = "";
    undo.append("Undo ", Object.assign(document.createElement("kbd"), { textContent: "Z" }));
    statusLine.replaceChildren(`${text} ✓ ${clock()} — `, undo);
    statusLine.dataset.kind = "ok";
  }

  /** Reopens the last answer's item with that answer filled in; submitting corrects it. */
  async function undoLast() {
    if (!lastSaved || busy || readStored(pendingKey)) return;
    busy = true;
    let response = null;
    try {
      response = await fetch(root.dataset.undoUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ annotation_id: String(lastSaved.annotationId) }),
      });
    } catch {
      // answered below
    }
    busy = false;
    if (!response) {
      say("Undo: the server cannot be reached. Your answer stands; try again.", "error");
      return;
    }
    if (response.redirected && new URL(response.url).pathname === "/login") {
      signInAgain();
      return;
    }
    const html = await response.text();
    if (!response.ok) {
      const page = document.createElement("template");
      page.innerHTML = html;
      const reason = page.content.querySelector("[data-undo-refused]");
      say(`Cannot undo: ${reason ? reason.textContent : `the server answered ${response.status}`}`, "error");
      if (response.status === 409) lastSaved = null;
      return;
    }
    closeSkip();
    slot.innerHTML = html;
    say(`Correcting your answer on “${lastSaved.title}”.`, "");
    showItem();
  }

  /** Leaves a correction unsent: the stored answer stands, the queue goes on. */
  function keepAnswer() {
    if (!current || !current.supersedes || busy) return;
    say("Your answer was kept as it was.", "ok");
    loadNext();
  }

  // ------------------------------------------------------------------ answers

  function activate(index) {
    if (!questions.length) return;
    active = Math.max(0, Math.min(index, questions.length - 1));
    questions.forEach((q, i) => q.classList.toggle("active", i === active));
    questions[active].scrollIntoView({ block: "nearest" });
  }

  function pick(number) {
    const question = questions[active];
    if (!question) return;
    const inputs = question.querySelectorAll("input");
    const input = inputs[number - 1];
    if (!input) return;
    if (input.type === "checkbox") {
      input.checked = !input.checked;
    } else {
      input.checked = true;
      if (active < questions.length - 1) activate(active + 1);
    }
    question.querySelector(".field-error").hidden = true;
    saveDraft();
    showCategoriesInPlay();
  }

  function typeDigit(d) {
    const question = questions[active];
    if (!question) return;
    const count = question.querySelectorAll("input").length;
    clearTimeout(digitTimer);
    if (count <= 9) {
      if (d > 0) pick(d);
      return;
    }
    if (digits) {
      const combined = Number(digits + d);
      digits = "";
      if (combined <= count) pick(combined);
      return;
    }
    if (d * 10 > count) {
      if (d > 0) pick(d);
      return;
    }
    // 1 could start 10–19: wait briefly for a second digit.
    digits = String(d);
    digitTimer = setTimeout(() => {
      const single = Number(digits);
      digits = "";
      if (single > 0) pick(single);
    }, 600);
  }

  function collectAnswer() {
    const answer = {};
    for (const q of questions) {
      const key = q.dataset.question;
      if (q.dataset.kind === "multi") {
        const codes = Array.from(q.querySelectorAll("input:checked"), (i) => i.value);
        if (codes.length) answer[key] = codes;
      } else {
        const chosen = q.querySelector("input:checked");
        if (chosen) answer[key] = chosen.value;
      }
    }
    return answer;
  }

  /** Names the first missing piece; returns false when the answer is incomplete. */
  function checkComplete(answer) {
    for (const [index, q] of questions.entries()) {
      const error = q.querySelector(".field-error");
      if (q.dataset.required !== undefined && !(q.dataset.question in answer)) {
        error.textContent = "This question needs an answer.";
        error.hidden = false;
        activate(index);
        return false;
      }
      error.hidden = true;
    }
    const rationale = form.elements.rationale;
    if (rationale && rationale.dataset.required !== undefined && !rationale.value.trim()) {
      const error = form.querySelector('[data-error-for="rationale"]');
      error.textContent = "This project asks for a rationale.";
      error.hidden = false;
      rationale.focus();
      return false;
    }
    return true;
  }

  function labelOf(question, code) {
    const q = questions.find((f) => f.dataset.question === question);
    const input = q && Array.from(q.querySelectorAll("input")).find((i) => i.value === code);
    const text = input && input.parentElement.querySelector(".option-label");
    return text ? text.textContent : code;
  }

  function describeAnswer(answer) {
    return Object.entries(answer || {})
      .map(([question, value]) => {
        const codes = Array.isArray(value) ? value : [value];
        return `${question}: ${codes.map((c) => labelOf(question, c)).join(", ") || "none"}`;
      })
      .join("; ");
  }

  function showOutcome(outcome, title) {
    if (outcome.calibration) {
      // A calibration answer is not a production label: there is nothing to undo.
      lastSaved = null;
      statusLine.replaceChildren(`Saved to the calibration round ✓ ${clock()}`);
      statusLine.dataset.kind = "ok";
      return;
    }
    const late = outcome.late ? " (after your reservation ended: kept, and marked late)" : "";
    saySaved(outcome.replayed ? `Saved (the server already had this answer)${late}` : `Saved${late}`,
      outcome.annotation_id, title);
    if (outcome.gold) {
      goldBox.hidden = false;
      goldBox.dataset.correct = String(outcome.gold.correct);
      goldBox.textContent = outcome.gold.correct
        ? `Gold check on “${title}”: your answer matched the reference answer.`
        : `Gold check on “${title}”: your answer did not match. Reference answer — ${describeAnswer(outcome.gold.expected)}.`;
    } else {
      goldBox.hidden = true;
    }
  }

  /** Sends the stored pending submission; resolves to whether a new item should be loaded. */
  async function sendPending() {
    const pending = readStored(pendingKey);
    if (!pending) return true;
    busy = true;
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    say("Saving…", "");
    const { ok, status, payload } = await postUntilAnswered(pending.url, pending.body, "Not saved yet");
    busy = false;
    form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    if (status === 401) {
      signInAgain();
      return false;
    }
    if (status === 403) {
      // A stale security token (signed in again elsewhere) or a changed role: keep the answer.
      const message = payload && payload.error ? payload.error.message : "forbidden";
      say(`Not saved: ${message}. Your answer is kept in this browser and sent when you reload the page.`, "error");
      return false;
    }
    localStorage.removeItem(pendingKey);
    if (!ok) {
      if (current) form.hidden = false;
      const message = payload && payload.error ? payload.error.message : `the server refused it (${status})`;
      const error = form.querySelector(".form-error");
      error.textContent = `Not saved: ${message}`;
      error.hidden = false;
      say(`Not saved: ${message}`, "error");
      // The item is still on screen when the refusal is about this answer: fix and resend.
      return !current || current.itemId !== pending.body.item_id;
    }
    localStorage.removeItem(draftKey);
    if (pending.kind === "skip") {
      say("Skipped.", "ok");
      goldBox.hidden = true;
    } else if (pending.kind === "correct") {
      saySaved("Corrected", payload.outcome.annotation_id, pending.title || "");
      goldBox.hidden = true;
    } else {
      showOutcome(payload.outcome, pending.title || "");
      if (typeof payload.next_html === "string") arrivedNext = payload.next_html;
    }
    return true;
  }

  async function submitAnswer(kind) {
    if (!current || busy) return;
    const answer = collectAnswer();
    if (kind === "label" && !checkComplete(answer)) return;
    const flags = Array.from(form.querySelectorAll('input[name="flag"]:checked'), (i) => i.value);
    if (current.supersedes) {
      // A correction of the last answer (undo): the earlier answer stays in the history.
      const correction = {
        item_id: current.itemId,
        answer,
        rationale: form.elements.rationale ? form.elements.rationale.value.trim() : "",
        flags,
        guideline_version_id: current.guidelineVersionId,
        time_spent_ms: Math.round(performance.now() - current.shownAt),
        supersedes: current.supersedes,
        idempotency_key: newKey(),
      };
      localStorage.setItem(pendingKey, JSON.stringify({
        url: root.dataset.correctUrl, body: correction, title: current.title, kind: "correct",
      }));
      if (await sendPending()) await loadNext();
      return;
    }
    const body = {
      item_id: current.itemId,
      kind,
      answer,
      rationale: form.elements.rationale ? form.elements.rationale.value.trim() : "",
      flags,
      guideline_version_id: current.guidelineVersionId,
      time_spent_ms: Math.round(performance.now() - current.shownAt),
      idempotency_key: newKey(),
    };
    localStorage.setItem(pendingKey, JSON.stringify({ url: root.dataset.submitUrl, body, title: current.title, kind }));
    if (await sendPending()) await loadNext();
  }

  // ------------------------------------------------------------------ skip

  function openSkip() {
    if (!current || busy || current.supersedes) return;
    form.hidden = true;
    skipForm.hidden = false;
    skipForm.elements.reason.focus();
  }

  function closeSkip() {
    // Focus must not stay on the hidden select: keys typed there would not reach the shortcuts.
    if (skipForm.contains(document.activeElement)) document.activeElement.blur();
    skipForm.hidden = true;
    skipForm.querySelector(".form-error").hidden = true;
    if (current) form.hidden = false;
  }

  async function submitSkip() {
    if (!current || busy) return;
    let reason = skipForm.elements.reason.value;
    if (reason === "other") reason = skipForm.elements.other.value.trim();
    if (!reason) {
      const error = skipForm.querySelector(".form-error");
      error.textContent = "Say why you skip this item.";
      error.hidden = false;
      skipForm.elements.other.focus();
      return;
    }
    localStorage.setItem(pendingKey, JSON.stringify({
      url: root.dataset.skipUrl, body: { item_id: current.itemId, reason }, title: current.title, kind: "skip",
    }));
    skipForm.hidden = true;
    if (await sendPending()) await loadNext();
  }

  skipForm.elements.reason.addEventListener("change", () => {
    skipForm.querySelector(".other-reason").hidden = skipForm.elements.reason.value !== "other";
  });
  skipForm.addEventListener("submit", (event) => {
    event.preventDefault();
    submitSkip();
  });
  skipForm.querySelector("[data-cancel-skip]").addEventListener("click", closeSkip);

  // ------------------------------------------------------------------ wiring

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitAnswer("label");
  });
  // `input` fires for text, radios and checkboxes alike: one draft save per edit.
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", showCategoriesInPlay);
  form.addEventListener("focusin", (event) => {
    const index = questions.indexOf(event.target.closest("fieldset.question"));
    if (index >= 0 && index !== active) activate(index);
  });
  document.getElementById("unsure").addEventListener("click", () => submitAnswer("unsure"));
  document.getElementById("keep-answer").addEventListener("click", keepAnswer);
  statusLine.addEventListener("click", (event) => {
    if (event.target.closest("[data-undo]")) undoLast();
  });
  document.getElementById("skip").addEventListener("click", openSkip);
  slot.addEventListener("click", (event) => {
    if (event.target.closest("[data-reveal-cover]")) revealCover();
  });

  function revealCover() {
    const cover = slot.querySelector("img[data-cover]");
    if (cover) cover.classList.remove("blurred");
    const button = slot.querySelector("[data-reveal-cover]");
    if (button) button.hidden = true;
  }

  function loadMedia() {
    const button = slot.querySelector("[data-load-media]");
    if (button && !button.hidden) button.click();
  }

  // The `?` overlay: every shortcut, copied from the list under the form.
  const help = document.getElementById("shortcut-help");
  const helpList = document.querySelector(".shortcuts dl");
  if (help && helpList) {
    help.querySelector("[data-shortcut-copy]").appendChild(helpList.cloneNode(true));
    help.querySelector("[data-close-help]").addEventListener("click", () => help.close());
  }

  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.metaKey) return;
    const target = event.target;
    if (help && help.open) {
      if (event.key === "?") {
        event.preventDefault();
        help.close();
      }
      return; // Esc closes the dialog; nothing else reaches the form behind it
    }
    const typing = target.matches("textarea, input:not([type=radio]):not([type=checkbox]), select");
    if (!skipForm.hidden) {
      if (event.key === "Escape") {
        event.preventDefault();
        closeSkip();
      } else if (event.key === "Enter" && target.tagName !== "BUTTON") {
        event.preventDefault();
        submitSkip();
      }
      return;
    }
    if (typing) {
      if (event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        submitAnswer("label");
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (event.key === "?" && !event.ctrlKey) {
      event.preventDefault();
      toggleHelp();
      return;
    }
    if (event.ctrlKey) return;
    if (event.key === "z" || event.key === "Z") {
      // No item needed: the last answer can be undone even when the queue is empty.
      event.preventDefault();
      undoLast();
      return;
    }
    if (event.key === "Escape" && current && current.supersedes) {
      event.preventDefault();
      keepAnswer();
      return;
    }
    if (!current) return;
    const key = event.key;
    if (/^[0-9]$/.test(key)) {
      event.preventDefault();
      typeDigit(Number(key));
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      if (target.matches("input[type=radio]")) return; // the browser moves between options
      event.preventDefault();
      activate(active + (key === "ArrowDown" ? 1 : -1));
    } else if (key === "Enter") {
      if (target.matches("button, a, summary")) return;
      event.preventDefault();
      submitAnswer("label");
    } else {
      const actions = {
        u: () => { if (!current.supersedes) submitAnswer("unsure"); },
        s: openSkip,
        r: () => form.elements.rationale && form.elements.rationale.focus(),
        v: revealCover,
        p: loadMedia,
        g: () => { panel.hidden = !panel.hidden; },
      };
      const action = actions[key.toLowerCase()];
      if (action) {
        event.preventDefault();
        action();
      }
    }
  });

  (async () => {
    if (readStored(pendingKey)) say("Sending the answer you gave earlier…", "");
    await sendPending();
    await loadNext();
  })();
})();
