// The API's bounds for a create (gateway schemas: num_frames 7-127 with (n - 1) % 6 == 0 at
// 24 fps; steps 10-65; guidance 1-20; seed 0..2^31-1; texts up to 500 characters).

export const FPS = 24;
export const MIN_FRAMES = 7;
export const MAX_FRAMES = 127;
export const MAX_TEXT = 500;

// The valid frame count closest to `seconds`.
export function framesFor(seconds) {
  const steps = Math.round((Number(seconds) * FPS) / 6);
  return Math.min(MAX_FRAMES, Math.max(MIN_FRAMES, steps * 6 + 1));
}

export function secondsOf(frames) {
  return frames / FPS;
}

// The API's field names -> the form control their error belongs beside.
export const FIELD_OF = {
  prompt: "prompt",
  negative_prompt: "negative_prompt",
  width: "size",
  height: "size",
  num_frames: "length",
  seed: "seed",
  steps: "steps",
  cfg: "cfg",
};

// The request body the form asks for (numbers as entered: the API judges them).
export function bodyOf(form) {
  const [width, height] = form.size.value.split("x").map(Number);
  const body = {
    prompt: form.prompt.value,
    negative_prompt: form.negative_prompt.value,
    width,
    height,
    num_frames: framesFor(form.length.value || 0),
    steps: Number(form.steps.value),
    cfg: Number(form.cfg.value),
  };
  if (form.seed.value !== "") body.seed = Number(form.seed.value);
  return body;
}
