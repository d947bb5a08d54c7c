// The user's videos, newest first, a page at a time ("Load more"); each card follows its
// video live (live.js) and offers play, download, cancel and delete.

import { ApiProblem, waitText } from "./api.js";
import { isTerminal, watch } from "./live.js";

const PAGE = 12;
const LABELS = {
  pending: "Received",
  queued: "Queued",
  submitted: "Submitted",
  running: "Rendering",
  completed: "Ready",
  failed: "Failed",
  cancelled: "Cancelled",
  timed_out: "Timed out",
  rejected: "Refused",
  deleted: "Deleted",
};

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function short(prompt) {
  return prompt.length > 40 ? `${prompt.slice(0, 40)}…` : prompt;
}

export function setUpGallery(root, { api, announce, usage, dialog }) {
  const list = root.querySelector("#video-list");
  const more = root.querySelector("#load-more");
  const empty = root.querySelector("#empty");
  const cards = new Map();
  let cursor = null;

  function detail(video) {
    const parts = [];
    if (video.queue_position !== null && video.queue_position !== undefined) {
      parts.push(`position ${video.queue_position} in the queue`);
    }
    if (video.progress !== null && video.progress !== undefined && !isTerminal(video.status)) {
      parts.push(`${video.progress}%`);
    }
    if (video.error) parts.push(video.error.message);
    if (video.status === "deleted") parts.push(video.file_deleted ? "file deleted" : "deleting the file…");
    parts.push(`${video.duration_seconds.toFixed(2)} s · ${video.params.width}×${video.params.height}`);
    return parts.join(" · ");
  }

  async function refetch(card) {
    // A playback URL that expired (or failed): GET the video for a fresh one.
    if (Date.now() - card.refetchedAt < 10000) return;
    card.refetchedAt = Date.now();
    try {
      const { data } = await api.request(`/v1/videos/${card.id}`);
      card.player = null;
      update(data);
    } catch {
      // the card keeps what it shows
    }
  }

  function media(card, video) {
    const box = card.node.querySelector(".media");
    const file = video.status === "completed" ? video.video : null;
    if (!file) {
      box.replaceChildren(el("div", { class: `still ${video.status}` }, LABELS[video.status] || video.status));
      card.player = null;
      card.download.hidden = true;
      return;
    }
    card.download.href = file.url;
    card.download.hidden = false;
    const expired = new Date(file.expires_at).getTime() <= Date.now() + 30000;
    if (card.player && !expired) return; // keep the playing element (a new URL each GET)
    const player = el("video", {
      controls: "",
      preload: "metadata",
      playsinline: "",
      src: file.url,
      "aria-label": `Video: ${short(video.prompt)}`,
    });
    if (video.poster_url) player.setAttribute("poster", video.poster_url);
    player.addEventListener("error", () => refetch(card));
    player.addEventListener("play", () => {
      if (new Date(card.expiresAt).getTime() <= Date.now()) refetch(card);
    });
    card.expiresAt = file.expires_at;
    card.player = player;
    box.replaceChildren(player);
  }

  function update(video) {
    let card = cards.get(video.id);
    if (!card) return;
    const changed = card.status !== video.status;
    card.status = video.status;
    card.video = video;
    const node = card.node;
    node.dataset.status = video.status;
    node.querySelector(".badge").textContent = LABELS[video.status] || video.status;
    node.querySelector(".detail").textContent = detail(video);
    const bar = node.querySelector("progress");
    bar.hidden = isTerminal(video.status);
    if (video.progress !== null && video.progress !== undefined) bar.value = video.progress;
    else bar.removeAttribute("value");
    card.cancel.hidden = isTerminal(video.status);
    card.remove.hidden = video.status === "deleted";
    media(card, video);
    if (changed && card.announced) {
      announce(`Video “${short(video.prompt)}”: ${LABELS[video.status] || video.status}.`);
      if (isTerminal(video.status)) usage.refresh();
    }
    card.announced = true;
  }

  function add(video, { atTop }) {
    if (cards.has(video.id)) return update(video);
    const node = el("li", { class: "card", id: `video-${video.id}` });
    const body = el("div", { class: "body" });
    const status = el("p", { class: "status" });
    status.append(el("span", { class: "badge" }), " ", el("span", { class: "detail" }));
    const actions = el("div", { class: "actions" });
    const download = el("a", { class: "button quiet", download: `openv-${video.id}.mp4` }, "Download");
    const cancel = el("button", { type: "button", class: "quiet" }, "Cancel");
    const remove = el("button", { type: "button", class: "danger" }, "Delete");
    cancel.setAttribute("aria-label", `Cancel video: ${short(video.prompt)}`);
    remove.setAttribute("aria-label", `Delete video: ${short(video.prompt)}`);
    actions.append(download, cancel, remove);
    body.append(el("p", { class: "prompt" }, video.prompt), status, el("progress", { max: "100" }), actions);
    node.append(el("div", { class: "media" }), body);
    const card = { id: video.id, node, download, cancel, remove, player: null, refetchedAt: 0 };
    cards.set(video.id, card);
    cancel.addEventListener("click", () => cancelVideo(card));
    remove.addEventListener("click", () => deleteVideo(card));
    if (atTop) list.prepend(node);
    else list.append(node);
    empty.hidden = true;
    update(video);
    if (!isTerminal(video.status)) card.watcher = watch(api, video.id, update);
  }

  async function cancelVideo(card) {
    card.cancel.disabled = true;
    try {
      const { data } = await api.request(`/v1/videos/${card.id}/cancel`, { method: "POST" });
      update(data);
    } catch (error) {
      if (error instanceof ApiProblem) announce(`Could not cancel: ${error.message}`);
    } finally {
      card.cancel.disabled = false;
    }
  }

  async function deleteVideo(card) {
    const confirmed = await dialog.confirm(card.video.prompt);
    if (!confirmed) return card.remove.focus();
    card.remove.disabled = true;
    try {
      let { data } = await api.request(`/v1/videos/${card.id}?wait=10`, { method: "DELETE" });
      card.watcher?.stop();
      update(data);
      for (let i = 0; i < 30 && !data.file_deleted; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        ({ data } = await api.request(`/v1/videos/${card.id}`));
        update(data);
      }
      announce(data.file_deleted ? `Video “${short(data.prompt)}” deleted; file deleted.` : "Deleted; the file is still being removed.");
      usage.refresh();
    } catch (error) {
      if (error instanceof ApiProblem) {
        announce(`Could not delete: ${error.message} Try again ${waitText(error.retryAfter)}.`);
      }
    } finally {
      card.remove.disabled = false;
    }
  }

  async function loadPage() {
    more.disabled = true;
    try {
      const query = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const { data } = await api.request(`/v1/videos?limit=${PAGE}${query}`);
      for (const video of data.data) add(video, { atTop: false });
      cursor = data.next_cursor;
      more.hidden = cursor === null;
      empty.hidden = cards.size > 0;
    } catch (error) {
      if (error instanceof ApiProblem) announce(`Could not load videos: ${error.message}`);
    } finally {
      more.disabled = false;
    }
  }

  more.addEventListener("click", loadPage);

  return {
    load: () => {
      for (const card of cards.values()) card.watcher?.stop();
      cards.clear();
      list.replaceChildren();
      cursor = null;
      return loadPage();
    },
    created: (video) => {
      add(video, { atTop: true });
      announce(`Video “${short(video.prompt)}” created: ${LABELS[video.status] || video.status}.`);
      usage.refresh();
    },
    stopAll: () => {
      for (const card of cards.values()) card.watcher?.stop();
    },
  };
}
