// The race list: cards rendered by the server, kept current over the race-list socket
// (status changes, athletes running and finished), running races first.

import { FrameSocket, socketUrl } from "raceweb/connection.js";
import { RACE_STATUS_LABELS } from "raceweb/format.js";

const ORDER = ["running", "scheduled", "finished", "stopped", "draft"];
const list = document.getElementById("race-cards");
const empty = document.getElementById("race-list-empty");

/** The race summaries a message carries, whatever its type. */
function summaries(msg) {
  if (Array.isArray(msg.races)) return msg.races;
  if (msg.race && typeof msg.race === "object") return [msg.race];
  if (msg.slug) return [msg];
  return [];
}

function cardFor(race) {
  let card = list.querySelector(`li[data-slug="${CSS.escape(race.slug)}"]`);
  if (card || !race.name) return card;
  card = document.createElement("li");
  card.className = "race-card";
  card.dataset.slug = race.slug;
  const top = document.createElement("div");
  top.className = "card-top";
  const h2 = document.createElement("h2");
  const a = document.createElement("a");
  a.href = race.url ?? `/races/${encodeURIComponent(race.slug)}/`;
  a.textContent = race.name;
  h2.append(a);
  const pill = document.createElement("span");
  pill.dataset.field = "status";
  top.append(h2, pill);
  const facts = document.createElement("div");
  facts.className = "facts";
  const athletes = document.createElement("strong");
  athletes.dataset.field = "athletes";
  const span = document.createElement("span");
  span.hidden = true; // until a message says how many
  span.append(athletes, " athletes");
  facts.append(span);
  const progress = document.createElement("div");
  progress.className = "progress";
  for (const kind of ["finished", "running"]) {
    const bar = document.createElement("span");
    bar.className = kind;
    bar.dataset.bar = kind;
    progress.append(bar);
  }
  const counts = document.createElement("div");
  counts.className = "counts";
  counts.dataset.field = "counts";
  card.append(top, facts, progress, counts);
  list.append(card);
  return card;
}

function apply(msg) {
  let moved = false;
  for (const race of summaries(msg)) {
    const card = cardFor(race);
    if (!card) continue;
    if (race.status && card.dataset.status !== race.status) {
      card.dataset.status = race.status;
      const pill = card.querySelector('[data-field="status"]');
      pill.className = `status-pill status-${race.status}`;
      pill.textContent = RACE_STATUS_LABELS[race.status] ?? race.status;
      moved = true;
    }
    card.hidden = race.status === "draft";
    // athletes: a number, or {total, running, finished, dnf}
    const counts = typeof race.athletes === "object" && race.athletes ? race.athletes : race.counts ?? race;
    const total = typeof race.athletes === "number" ? race.athletes : counts.total ?? race.athlete_count;
    if (total != null) {
      const count = card.querySelector('[data-field="athletes"]');
      count.textContent = String(total);
      count.parentElement.hidden = false;
    }
    showProgress(card, race, counts, total);
  }
  if (moved) sortCards();
  empty.hidden = list.querySelector("li:not([hidden])") != null;
}

function showProgress(card, race, counts, knownTotal) {
  const { running, finished, dnf } = counts;
  if (running == null && finished == null) return;
  const total = knownTotal ?? Number(card.querySelector('[data-field="athletes"]').textContent);
  const share = (n) => (total ? `${(100 * (n ?? 0)) / total}%` : "0");
  card.querySelector('[data-bar="finished"]').style.width = share(finished);
  card.querySelector('[data-bar="running"]').style.width = share(running);
  const parts = [];
  if (running) parts.push(`${running} running`);
  if (finished) parts.push(`${finished} finished`);
  if (dnf) parts.push(`${dnf} DNF`);
  const text = parts.join(" · ") || (race.status === "running" ? "Live now" : null);
  if (text) card.querySelector('[data-field="counts"]').textContent = text;
}

function sortCards() {
  const cards = [...list.children];
  const rank = (card) => {
    const i = ORDER.indexOf(card.dataset.status);
    return i < 0 ? ORDER.length : i;
  };
  const sorted = cards
    .map((card, i) => ({ card, i }))
    .sort((x, y) => rank(x.card) - rank(y.card) || x.i - y.i)
    .map(({ card }) => card);
  if (sorted.some((card, i) => card !== cards[i])) list.append(...sorted);
}

function onState(connection) {
  const box = document.getElementById("connection");
  box.dataset.state = connection;
  document.getElementById("connection-text").textContent =
    { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", closed: "Offline" }[connection];
}

const socket = new FrameSocket(socketUrl("/ws/races/"), {
  onSnapshot: apply,
  onFrame: apply,
  onOther: (msg) => {
    apply(msg);
    socket.markLive();
  },
  onState,
});
window.raceweb = { socket, apply, loadedAt: performance.now() };
socket.start();
