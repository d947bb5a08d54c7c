// A third-party frontend on its own origin, as README's "Third-party frontends" describes it:
// fetch with the Authorization header to create, then a short-lived stream token so that a
// plain EventSource can follow the video. What happens is written to #out for the test.
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get("api");
const token = params.get("token");
const out = document.getElementById("out");
const log = (line) => { out.textContent += `${line}\n`; };

async function main() {
  const auth = { Authorization: `Bearer ${token}` };
  const created = await fetch(`${api}/v1/videos`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
    body: JSON.stringify({ prompt: "a fox seen from another origin", width: 640, height: 640, num_frames: 13 }),
  });
  const video = await created.json();
  log(`created ${created.status} location=${created.headers.get("Location") !== null}`);
  const minted = await fetch(`${api}/v1/videos/${video.id}/stream-tokens`, { method: "POST", headers: auth });
  const grant = await minted.json();
  log(`stream-token ${minted.status}`);
  const source = new EventSource(new URL(grant.url, api));
  source.addEventListener("status", (event) => {
    const status = JSON.parse(event.data).status;
    log(`status ${status}`);
    if (["completed", "failed", "cancelled", "timed_out", "rejected", "deleted"].includes(status)) {
      source.close();
      log("done");
    }
  });
  source.onerror = () => log("stream error");
}

main().catch((error) => log(`refused: ${error.name}`));
