// concord's few behaviours that need JavaScript. Everything else is plain HTML forms and htmx.
"use strict";

function csrfToken() {
  return document.body.dataset.csrf || "";
}

document.addEventListener("click", (event) => {
  const addRow = event.target.closest("[data-add-row]");
  if (addRow) {
    const body = document.getElementById(addRow.dataset.addRow);
    const template = body && body.querySelector(".template-row");
    if (template) {
      const row = template.cloneNode(true);
      row.querySelectorAll("input").forEach((input) => { input.value = ""; });
      body.appendChild(row);
      const first = row.querySelector("input");
      if (first) first.focus();
    }
    return;
  }
  // Third-party media is fetched only when the user asks: the URL leaves the page only now.
  const loadMedia = event.target.closest("[data-load-media]");
  if (loadMedia) {
    const slot = loadMedia.parentElement.querySelector(".media-slot");
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = loadMedia.dataset.loadMedia;
    slot.replaceChildren(audio);
    loadMedia.hidden = true;
    audio.focus();
    // "Load and play" on the label page: the annotator asked for sound, so start it.
    if (loadMedia.dataset.autoplay !== undefined) audio.play().catch(() => {});
  }
});

// Moving in from another tool: the export goes as the body, the server answers the report
// as a fragment (what maps, what does not), for a dry run and for the real import alike.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id !== "foreign-form") return;
  event.preventDefault();
  const file = form.elements.file.files[0];
  if (!file) return;
  const params = new URLSearchParams({
    source: form.elements.source.value,
    dry_run: event.submitter && event.submitter.value === "false" ? "false" : "true",
    item_type: form.elements.item_type.value,
    mapping: form.elements.mapping.value,
    filename: file.name,
  });
  const slot = document.getElementById("foreign-slot");
  form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const response = await fetch(form.dataset.endpoint + "?" + params, {
      method: "POST",
      body: file,
      headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/octet-stream" },
      credentials: "same-origin",
    });
    slot.innerHTML = await response.text();
  } catch (e) {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = "The upload failed: " + e.message;
    slot.replaceChildren(p);
  } finally {
    form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.id !== "import-form") return;
  event.preventDefault();
  const error = form.querySelector(".error");
  error.hidden = true;
  const file = form.elements.file.files[0];
  if (!file) return;
  const params = new URLSearchParams({
    kind: form.elements.kind.value,
    on_conflict: form.elements.on_conflict.value,
    filename: file.name,
  });
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch(form.dataset.endpoint + "?" + params, {
      method: "POST",
      body: file,
      headers: { "X-CSRF-Token": csrfToken(), "Content-Type": file.type || "application/octet-stream" },
      credentials: "same-origin",
    });
    const payload = await response.json();
    if (!response.ok) throw new Error(payload.error ? payload.error.message : response.statusText);
    const fragment = await fetch(form.dataset.jobBase + payload.job.id, { credentials: "same-origin" });
    const slot = document.getElementById("job-slot");
    slot.innerHTML = await fragment.text();
    if (window.htmx) window.htmx.process(slot);
    form.reset();
  } catch (e) {
    error.textContent = "The upload failed: " + e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

// Charts (charts.rs): the number of the bar or point under the pointer or the keyboard focus,
// read from the mark's <title>, in a tooltip beside it. The title stays the mark's accessible
// name, so screen readers hear the same number.
const chartMark = (target) => (target instanceof Element ? target.closest("svg.chart [data-value]") : null);

function chartTip() {
  let tip = document.getElementById("chart-tip");
  if (!tip) {
    tip = document.createElement("div");
    tip.id = "chart-tip";
    tip.className = "chart-tip";
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    document.body.appendChild(tip);
  }
  return tip;
}

function showChartTip(mark) {
  const title = mark.querySelector("title");
  if (!title) return;
  const tip = chartTip();
  tip.textContent = title.textContent;
  tip.hidden = false;
  const box = mark.getBoundingClientRect();
  const room = document.documentElement.clientWidth;
  const left = Math.max(4, Math.min(box.left + box.width / 2 - tip.offsetWidth / 2, room - tip.offsetWidth - 4));
  const top = box.top - tip.offsetHeight - 6 < 0 ? box.bottom + 6 : box.top - tip.offsetHeight - 6;
  tip.style.left = `${window.scrollX + left}px`;
  tip.style.top = `${window.scrollY + top}px`;
}

function hideChartTip() {
  const tip = document.getElementById("chart-tip");
  if (tip) tip.hidden = true;
}

for (const [on, off] of [["pointerover", "pointerout"], ["focusin", "focusout"]]) {
  document.addEventListener(on, (event) => {
    const mark = chartMark(event.target);
    if (mark) showChartTip(mark);
  });
  document.addEventListener(off, (event) => {
    if (chartMark(event.target)) hideChartTip();
  });
}
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") hideChartTip();
});

// A region that scrolls inside the page (a wide table or code on a narrow screen) takes the
// keyboard focus when it scrolls and has nothing focusable inside, so that the arrow keys can
// scroll it (WCAG 2.1.1). Checked on load, on resize and after htmx swaps.
const SCROLLERS = "main table, main pre, main .scroll-x";
function focusableScrollers() {
  for (const el of document.querySelectorAll(SCROLLERS)) {
    const style = getComputedStyle(el);
    const scrolls =
      (/(auto|scroll)/.test(style.overflowX) && el.scrollWidth > el.clientWidth + 1) ||
      (/(auto|scroll)/.test(style.overflowY) && el.scrollHeight > el.clientHeight + 1);
    const added = el.dataset.scrollFocus !== undefined;
    if (scrolls && !added && !el.hasAttribute("tabindex") && !el.querySelector("a[href], button, input, select, textarea, [tabindex]")) {
      el.setAttribute("tabindex", "0");
      el.dataset.scrollFocus = "";
    } else if (!scrolls && added) {
      el.removeAttribute("tabindex");
      delete el.dataset.scrollFocus;
    }
  }
}
document.addEventListener("DOMContentLoaded", focusableScrollers);
window.addEventListener("resize", focusableScrollers);
document.addEventListener("htmx:afterSettle", focusableScrollers);

// The item browser's bulk form: "select all on this page" and the count of selected items.
(() => {
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const all = form.querySelector("[data-select-all]");
  const boxes = () => Array.from(form.querySelectorAll('input[name="item"]'));
  const count = form.querySelector("[data-selected-count]");
  const show = () => {
    const chosen = boxes().filter((b) => b.checked).length;
    count.textContent = chosen ? `(${chosen} selected)` : "";
    if (all) {
      all.checked = chosen > 0 && chosen === boxes().length;
      all.indeterminate = chosen > 0 && chosen < boxes().length;
    }
  };
  form.addEventListener("change", (event) => {
    if (event.target === all) boxes().forEach((b) => { b.checked = all.checked; });
    show();
  });
  show();
})();
