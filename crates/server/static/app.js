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
