// The race page: wires the socket, the state and the views together, and runs the one
// animation loop that moves markers, redraws the profile and applies board changes.

import { Board } from "raceweb/board.js";
import { Colours } from "raceweb/colours.js";
import { FrameSocket, socketUrl } from "raceweb/connection.js";
import { Course } from "raceweb/course.js";
import { FollowCard } from "raceweb/follow.js";
import { clock, RACE_STATUS_LABELS } from "raceweb/format.js";
import { RaceMap } from "raceweb/map.js";
import { Motion } from "raceweb/motion.js";
import { Profile } from "raceweb/profile.js";
import { Ghosts } from "raceweb/ghosts.js";
import { Replay } from "raceweb/replay.js";
import { RaceState } from "raceweb/state.js";

const config = JSON.parse(document.getElementById("race-config").textContent);
const $ = (id) => document.getElementById(id);

const state = new RaceState();
const motion = new Motion();
const colours = new Colours();
// What the page measures about itself (read by the browser benchmark and the tests).
const metrics = { snapshots: [], frames: 0, frameMs: 0, animationFrames: 0, animationMs: 0 };
let course = null;
let checkpoints = [];
let followed = null;
let retryAt = null; // wall time of the next reconnect attempt, for the countdown
let stalledSince = null; // performance.now() of the last frame while frames stall
let followAfterSnapshot = new URLSearchParams(location.hash.slice(1)).get("bib");

const map = new RaceMap($("map"), {
  tileUrl: config.tile_url,
  tileAttribution: config.tile_attribution,
  bounds: config.bounds,
  athlete: (id) => state.athletes.get(id),
  colours,
  motion,
  onSelect: (id) => follow(id, { from: "map" }),
  onTilesFailed: () => {
    const notice = $("map-notice");
    notice.textContent = "No map tiles: showing the course only";
    notice.hidden = false;
  },
});

const board = new Board({
  body: $("board-body"),
  scroll: $("board-scroll"),
  empty: $("board-empty"),
  search: $("board-search"),
  gender: $("filter-gender"),
  category: $("filter-category"),
  colours,
  onSelect: (id) => follow(id, { from: "board" }),
  onEscape: () => follow(null),
});

const profile = new Profile($("profile"), {
  motion,
  athlete: (id) => state.athletes.get(id),
  colours,
  onSelect: (id) => follow(id, { from: "profile" }),
});

const ghosts = new Ghosts({
  raceMap: map, profile, board, strip: $("ghost-strip"), athletes: () => state.athletes.values(),
});

const card = new FollowCard($("follow"), { colours, onClose: () => follow(null) });

// ---- frames in ----------------------------------------------------------------------

function onSnapshot(msg) {
  const started = performance.now();
  const first = state.race == null;
  const athletes = state.applySnapshot(msg);
  const present = new Set(athletes.map((a) => a.id));
  for (const id of [...motion.tracks.keys()]) if (!present.has(id)) motion.forget(id);
  for (const a of athletes) report(a, started, first);
  checkpoints = msg.course?.checkpoints ?? checkpoints;
  if (msg.course) ghosts.set(msg.course.ghosts);
  if (!course && msg.course?.geojson_url) loadCourse(msg.course.geojson_url);
  refreshCategories();
  map.syncAthletes(athletes);
  board.reset(athletes);
  board.render();
  profile.setAthletes(athletes.map((a) => a.id));
  motion.advance(started);
  profile.draw();
  showRace();
  if (followAfterSnapshot) {
    const wanted = athletes.find((a) => String(a.bib) === followAfterSnapshot);
    followAfterSnapshot = null;
    if (wanted) follow(wanted.id, { from: "link" });
  } else if (followed != null) {
    if (present.has(followed)) follow(followed, { recentre: false });
    else follow(null);
  }
  const rendered = performance.now();
  // The snapshot is on screen once the browser has painted the frame after this one.
  requestAnimationFrame(() => setTimeout(() => {
    metrics.snapshots.push({
      athletes: athletes.length,
      bytes: msg.bytes,
      received_at: msg.receivedAt ?? started,
      render_ms: rendered - started,
      paint_ms: performance.now() - (msg.receivedAt ?? started),
    });
  }, 0));
}

/** Feeds an athlete's position to the glide; those not started yet wait at the start. */
function report(a, now, jump = false) {
  if (a.lat != null && a.lon != null) {
    motion.report(a.id, a.lat, a.lon, a.distance_m ?? 0, now, jump);
  } else if (course?.size) {
    const start = course.at(0);
    motion.report(a.id, start.lat, start.lon, 0, now, true);
  }
}

function onFrame(msg) {
  const now = performance.now();
  const changed = state.applyUpdate(msg);
  let newCategory = false;
  for (const a of changed) {
    report(a, now);
    newCategory ||= a.category && !colours.categories.includes(a.category);
  }
  if (newCategory) refreshCategories();
  map.syncAthletes(changed);
  board.update(changed);
  if (followed != null && changed.some((a) => a.id === followed)) updateCard();
  showRace();
  metrics.frames += 1;
  metrics.frameMs += performance.now() - now;
}

function onOther(msg) {
  if (msg.type === "race") {
    state.applyRace(msg);
    showRace();
  }
}

function onConnectionState(connection, detail) {
  const box = $("connection");
  box.dataset.state = connection;
  retryAt = detail.retryAt ?? null;
  stalledSince = connection === "stalled" ? detail.lastFrameAt : null;
  const text = {
    connecting: "Connecting…",
    live: "Live",
    stalled: stalledText(performance.now()),
    reconnecting: "Reconnecting…",
    closed: CLOSED_TEXT[detail.code]?.[0] ?? "Offline",
  }[connection];
  $("connection-text").textContent = text;
  const explanation = connection === "closed" ? CLOSED_TEXT[detail.code]?.[1] : null;
  if (explanation) {
    const notice = $("map-notice");
    notice.textContent = explanation;
    notice.classList.add("map-notice-stop");
    notice.hidden = false;
  }
}

/** While frames stall the indicator counts the seconds since the last one. */
function stalledText(now) {
  const seconds = Math.max(0, Math.floor((now - stalledSince) / 1000));
  return `Delayed — last update ${seconds} s ago`;
}

// Close codes the page explains (races/wire.py; docs/ARCHITECTURE.md "Close codes").
const CLOSED_TEXT = {
  4404: ["Race not found", null],
  4401: ["Link expired", "Your share link has expired, so live updates stopped. Ask the organizer for a new link."],
  4403: ["Link withdrawn", "The organizer has withdrawn your share link, so live updates stopped. Ask them for a new link."],
};

// ---- course -------------------------------------------------------------------------

async function loadCourse(url, attempt = 1) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/geo+json, application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    course = new Course(await response.json(), state.course?.length_m ?? config.length_m);
  } catch (error) {
    console.warn("course not loaded, retrying", error);
    setTimeout(() => loadCourse(url, attempt + 1), Math.min(30000, 1000 * 2 ** attempt));
    return;
  }
  map.setCourse(course, checkpoints);
  profile.setCourse(course, checkpoints);
  ghosts.setCourse(course);
  const waiting = [...state.athletes.values()].filter((a) => a.lat == null);
  for (const a of waiting) report(a, performance.now(), true);
  map.syncAthletes(waiting);
  profile.draw();
}

// ---- what the page shows ---------------------------------------------------------------

function refreshCategories() {
  colours.setCategories(state.categories);
  board.setCategories(colours.categories);
  showLegend();
}

function showLegend() {
  const present = new Set([...state.athletes.values()].map((a) => a.gender));
  const items = colours.legend(present).map(([label, colour]) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    li.append(swatch, document.createTextNode(label));
    return li;
  });
  $("legend-items").replaceChildren(...items);
}

function setColourMode(mode) {
  colours.mode = mode;
  for (const button of document.querySelectorAll("[data-colour-by]")) {
    button.setAttribute("aria-checked", String(button.dataset.colourBy === mode));
  }
  map.restyleAll();
  board.recolour();
  profile.needsDraw = true;
  showLegend();
  updateCard();
}

for (const button of document.querySelectorAll("[data-colour-by]")) {
  button.addEventListener("click", () => setColourMode(button.dataset.colourBy));
}

function showRace() {
  const race = state.race;
  if (!race) return;
  const pill = $("race-status");
  const label = RACE_STATUS_LABELS[race.status] ?? race.status;
  if (pill.textContent !== label) {
    pill.textContent = label;
    pill.className = `status-pill status-${race.status}`;
  }
  const c = state.counts();
  const parts = [`${c.total} athletes`];
  if (c.running) parts.push(`${c.running} running`);
  if (c.finished) parts.push(`${c.finished} finished`);
  if (c.dnf) parts.push(`${c.dnf} DNF`);
  const text = parts.join(" · ");
  if ($("race-counts").textContent !== text) $("race-counts").textContent = text;
  const summary = state.course
    ? `${(state.course.length_m / 1000).toFixed(1)} km · ${Math.round(state.course.climb_m ?? 0)} m climb`
    : "";
  if ($("course-summary").textContent !== summary) $("course-summary").textContent = summary;
}

// ---- follow -----------------------------------------------------------------------------

/** Follows an athlete (id null: nobody). `from` says where the spectator picked it: the
 * board then only keeps the row in view; from elsewhere it centres the row. */
function follow(id, { from = "board", recentre = true } = {}) {
  const athlete = id == null ? null : state.athletes.get(id);
  if (!athlete) {
    followed = null;
    map.unfollow();
    board.setFollowed(null);
    profile.setFollowed(null);
    card.hide();
    history.replaceState(null, "", replay.link({}));
    return;
  }
  const changed = followed !== id;
  followed = id;
  if (changed || recentre) map.follow(id);
  // The card first: it takes room from the board, which then scrolls to the athlete.
  card.show(athlete, state.course, checkpoints, state.clockNow());
  const scroll = !changed ? false : from === "board" ? "nearest" : "center";
  board.setFollowed(id, { scroll });
  profile.setFollowed(id);
  history.replaceState(null, "", replay.link({ bib: athlete.bib }));
}

function updateCard() {
  const athlete = followed == null ? null : state.athletes.get(followed);
  if (athlete) card.update(athlete, state.course, checkpoints, state.clockNow());
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && followed != null && !event.target.closest?.("input, select")) follow(null);
});

// ---- the animation loop --------------------------------------------------------------------

let shownClock = "";
let shownRetry = "";

function animate(now) {
  const started = performance.now();
  const moved = motion.advance(now);
  map.move(moved);
  const running = state.race?.status !== "scheduled" && state.race?.status !== "draft";
  ghosts.frame(running ? state.clockNow(now) : 0, now);
  profile.frame(moved, now);
  board.render(now);
  const text = state.race?.status === "scheduled" || state.race?.status === "draft"
    ? "0:00:00"
    : clock(state.clockNow(now));
  if (text !== shownClock) {
    $("race-clock").textContent = text;
    shownClock = text;
  }
  if (retryAt) {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    const retry = seconds ? `Reconnecting in ${seconds} s…` : "Reconnecting…";
    if (retry !== shownRetry) {
      $("connection-text").textContent = retry;
      shownRetry = retry;
    }
  } else if (stalledSince != null) {
    const stalled = stalledText(now);
    if (stalled !== shownRetry) {
      $("connection-text").textContent = stalled;
      shownRetry = stalled;
    }
  } else {
    shownRetry = "";
  }
  metrics.animationFrames += 1;
  metrics.animationMs += performance.now() - started;
  requestAnimationFrame(animate);
}

// The compact protocol (raceweb.v2) unless the address asks for the JSON one (?protocol=v1).
const compact = new URLSearchParams(window.location.search).get("protocol") !== "v1";

// Replay feeds the history's snapshots into onSnapshot; live frames wait meanwhile.
let linkedTime = Replay.linkedTime();
const replay = new Replay({
  slug: config.slug,
  bar: $("replay"),
  state: () => state,
  show: onSnapshot,
  followed: () => followed,
  backToLive: () => {
    socket.lastFrame = null; // a fresh snapshot, not a resume
    socket.stop();
    socket.start();
  },
});

const socket = new FrameSocket(socketUrl(config.socket_path), {
  compact: compact ? () => state.athletes : null,
  onSnapshot: (msg) => {
    if (replay.active) return;
    onSnapshot(msg);
    if (linkedTime != null) replay.enter(linkedTime);
    linkedTime = null;
  },
  onFrame: (msg) => replay.active || onFrame(msg),
  onOther,
  onState: onConnectionState,
  expectFrames: () => state.race?.status === "running" && !replay.active,
});

// For the browser tests and the benchmark: a handle on the live page (not an API).
window.raceweb = {
  state, motion, map, board, profile, ghosts, socket, metrics, follow, replay, loadedAt: performance.now(),
};

requestAnimationFrame(animate);
socket.start();
