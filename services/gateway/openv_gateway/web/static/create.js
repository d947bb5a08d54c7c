// The create form: counters, the frames a length maps to, one Idempotency-Key per intended
// video (reused when the same request is retried), and the API's errors beside their field.

import { ApiProblem, waitText } from "./api.js";
import { FIELD_OF, MAX_TEXT, bodyOf, framesFor, secondsOf } from "./params.js";

// The API's message as a sentence, so more can follow it.
const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

export function setUpCreate(form, { api, onCreated, announce, usage }) {
  const button = form.querySelector("#create-button");
  const message = form.querySelector("#create-message");
  let key = null;
  let keyFor = null;

  for (const name of ["prompt", "negative_prompt"]) {
    const counter = form.querySelector(`#${name}-count`);
    const update = () => {
      counter.textContent = `${form[name].value.length} / ${MAX_TEXT}`;
    };
    form[name].addEventListener("input", update);
    update();
  }
  const frames = form.querySelector("#length-frames");
  const showFrames = () => {
    const n = framesFor(form.length.value || 0);
    frames.textContent = `${n} frames (${secondsOf(n).toFixed(2)} s)`;
  };
  form.length.addEventListener("input", showFrames);
  showFrames();

  function clearErrors() {
    message.textContent = "";
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  }

  function showProblem(problem) {
    let placed = false;
    for (const error of problem.errors) {
      const control = FIELD_OF[error.field];
      if (!control) continue;
      const slot = form.querySelector(`#err-${control}`);
      slot.textContent = slot.textContent ? `${slot.textContent}; ${error.message}` : error.message;
      form[control].setAttribute("aria-invalid", "true");
      if (!placed) form[control].focus();
      placed = true;
    }
    if (problem.code === "concurrency_limit") {
      message.textContent = `${sentence(problem.message)} Try again ${waitText(problem.retryAfter)}.`;
    } else if (problem.code === "quota_exceeded") {
      const reset = usage.resetsAt();
      const when = reset ? `after ${reset.toLocaleString()}` : waitText(problem.retryAfter);
      message.textContent = `${sentence(problem.message)} Your quota resets; try again ${when}.`;
    } else if (problem.code === "rate_limited" || problem.code === "unavailable") {
      message.textContent = `${sentence(problem.message)} Try again ${waitText(problem.retryAfter)}.`;
    } else if (!placed) {
      const extra = problem.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
      message.textContent = extra ? `${problem.message} (${extra})` : problem.message;
    }
    if (message.textContent) announce(message.textContent);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button.disabled) return; // a double click makes one request
    clearErrors();
    const body = bodyOf(form);
    const text = JSON.stringify(body);
    if (key === null || keyFor !== text) {
      key = crypto.randomUUID();
      keyFor = text;
    }
    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const { data } = await api.request("/v1/videos", {
        method: "POST",
        body,
        headers: { "Idempotency-Key": key },
      });
      key = null; // made: the next create is a new video
      form.prompt.value = "";
      form.prompt.dispatchEvent(new Event("input"));
      onCreated(data);
    } catch (error) {
      if (error instanceof ApiProblem) {
        // A definite answer: a changed request is a new intent. 5xx: retry with this key.
        if (error.status < 500) key = null;
        showProblem(error);
        usage.refresh();
      } else {
        message.textContent = "The network failed; press Create again to retry (it will not make two).";
        announce(message.textContent);
      }
    } finally {
      button.disabled = false;
      button.textContent = "Create video";
    }
  });
}
