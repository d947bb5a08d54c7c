// A video's live status: `GET /v1/videos/{id}/stream` read with fetch() (so the token goes in
// the Authorization header, never the URL), Server-Sent Events parsed here, resumed with
// Last-Event-ID; when the stream cannot be had, polling at the API's Retry-After.

const TERMINAL = new Set(["completed", "failed", "cancelled", "timed_out", "rejected", "deleted"]);

export function isTerminal(status) {
  return TERMINAL.has(status);
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

// Calls `onEvent({event, id, data})` per complete event of an SSE byte stream.
export async function readEvents(body, onEvent, onRetry) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.data.length) onEvent({ ...event, data: event.data.join("\n") });
        event = { event: "message", data: [], id: null };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.event = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id") event.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) onRetry(Number(value));
    }
  }
}

// Watches one video until it is terminal or `stop()` is called; `onVideo(video)` per change.
export function watch(api, id, onVideo) {
  const control = new AbortController();
  const signal = control.signal;
  let lastId = null;
  let retryMs = 2000;
  let done = false;
  const seen = (video) => {
    onVideo(video);
    if (isTerminal(video.status)) done = true;
  };

  async function poll() {
    const { data, response } = await api.request(`/v1/videos/${id}`, { signal });
    seen(data);
    const after = Number(response.headers.get("Retry-After")) || 2;
    if (!done) await sleep(after * 1000, signal);
  }

  async function stream() {
    const headers = lastId === null ? {} : { "Last-Event-ID": lastId };
    const response = await api.raw(`/v1/videos/${id}/stream`, { headers, signal });
    if (response.status === 204) {
      done = true;
      return true;
    }
    if (!response.ok) {
      // e.g. 429 (too many open streams): poll instead, at the pace the API asks for.
      await response.body?.cancel();
      return false;
    }
    await readEvents(
      response.body,
      (event) => {
        if (event.id !== null) lastId = event.id;
        if (event.event === "status") seen(JSON.parse(event.data));
      },
      (ms) => {
        retryMs = ms;
      },
    );
    return true;
  }

  (async () => {
    let failures = 0;
    while (!done && !signal.aborted) {
      try {
        const streamed = failures < 3 && (await stream());
        if (done || signal.aborted) break;
        if (streamed) {
          await sleep(retryMs, signal); // the stream ended early: resume after lastId
        } else {
          failures += 1;
          await poll();
        }
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        await sleep(Math.min(retryMs * failures, 15000), signal);
      }
    }
  })();

  return { stop: () => control.abort() };
}
