// Race control: the athletes live over the spectator socket and frames (connection.js,
// state.js: the same merge), the alerts the relay keeps (polled), durations ticking.

import { boardOrder } from "raceweb/board.js";
import { FrameSocket, socketUrl } from "raceweb/connection.js";
import { clock, duration, km, RACE_STATUS_LABELS, STATUS_LABELS } from "raceweb/format.js";
import { RaceState } from "raceweb/state.js";

const config = JSON.parse(document.getElementById("race-config").textContent);
const $ = (id) => document.getElementById(id);
const ALERTS_EVERY_MS = 2000;

const state = new RaceState();
let alerts = config.alerts ?? [];
let devices = config.devices ?? {}; // a tracked race's trackers, by athlete id
const LOW_BATTERY_PCT = 20;
let dirty = true;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

/** Race time now, as a Date: the race clock from its start (what alerts' `since` uses). */
function raceNow() {
  const started = Date.parse(state.race?.started_at ?? config.started_at ?? "");
  const clockS = state.clockNow();
  if (Number.isNaN(started) || clockS == null) return null;
  return started + clockS * 1000;
}

function since(iso) {
  const now = raceNow();
  const at = Date.parse(iso ?? "");
  if (now == null || Number.isNaN(at)) return "–";
  return duration(Math.max(0, (now - at) / 1000));
}

function renderAthletes() {
  const body = $("athletes-body");
  body.replaceChildren();
  const athletes = [...state.athletes.values()].sort(boardOrder);
  for (const a of athletes) {
    const row = body.insertRow();
    row.dataset.athlete = a.id;
    row.dataset.status = a.status;
    cell(row, a.rank ?? "");
    cell(row, a.bib, "bib");
    cell(row, a.name);
    const status = cell(row);
    const badge = document.createElement("span");
    badge.className = `badge ${a.status}`;
    badge.textContent = STATUS_LABELS[a.status] ?? a.status;
    status.append(badge);
    if (a.decision?.reason) status.append(` ${a.decision.reason}`);
    cell(row, a.status === "not_started" || a.status === "dns" ? "" : km(a.distance_m));
    cell(row, a.time ? `${since(a.time)} ago` : "–", "since");
    if (config.tracked) deviceCells(row, devices[a.id]);
  }
  const c = state.counts();
  const parts = [`${c.running} running`, `${c.finished} finished`];
  if (c.dnf) parts.push(`${c.dnf} DNF`);
  if (c.dns) parts.push(`${c.dns} DNS`);
  $("athlete-counts").textContent = `· ${parts.join(" · ")}`;
}

/** Tracker, battery and newest fix of a tracked race's athlete (wall clock: real time). */
function deviceCells(row, device) {
  cell(row, device?.source ?? "–", "tracker");
  const battery = cell(row, device?.battery_pct == null ? "–" : `${device.battery_pct}%`, "battery");
  if (device?.battery_pct != null && device.battery_pct < LOW_BATTERY_PCT) battery.classList.add("low");
  const at = Date.parse(device?.fix_time ?? "");
  const fix = cell(row, Number.isNaN(at) ? "–" : `${duration(Math.max(0, (Date.now() - at) / 1000))} ago`, "fix");
  if (device?.accuracy_m != null) fix.title = `± ${device.accuracy_m} m`;
}

function renderAlerts() {
  const body = $("alerts-body");
  body.replaceChildren();
  for (const alert of alerts) {
    const row = body.insertRow();
    row.dataset.athlete = alert.athlete_id;
    row.dataset.kind = alert.kind;
    cell(row, alert.bib, "bib");
    cell(row, alert.name);
    const what = cell(row);
    const kind = document.createElement("span");
    kind.className = `alert-kind ${alert.kind}`;
    kind.textContent = alert.label ?? alert.kind;
    what.append(kind, ` ${alert.detail}`);
    cell(row, since(alert.since), "since");
    const where = cell(row);
    where.textContent = `km ${km(alert.distance_m)}`;
    if (alert.lat != null) {
      where.title = `${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}`;
      where.append(document.createElement("br"), `${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}`);
    }
    const act = cell(row);
    const pick = document.createElement("button");
    pick.type = "button";
    pick.textContent = "Decide…";
    pick.addEventListener("click", () => {
      $("decide-bib").value = alert.bib;
      $("decide-kind").value = "dnf";
      $("decide-reason").focus();
    });
    if ($("decide-form")) act.append(pick);
  }
  $("alert-count").textContent = alerts.length;
  $("alert-count").hidden = alerts.length === 0;
  $("alerts-empty").hidden = alerts.length > 0;
}

async function pollAlerts() {
  try {
    const response = await fetch(config.alerts_url, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const feed = await response.json();
      alerts = feed.alerts;
      devices = feed.devices ?? {};
      renderAlerts();
      dirty = true;
    }
  } catch {
    // offline: the connection box says so; the next poll tries again
  }
}

function showRace() {
  const race = state.race;
  if (!race) return;
  const pill = $("race-status");
  pill.textContent = RACE_STATUS_LABELS[race.status] ?? race.status;
  pill.className = `status-pill status-${race.status}`;
}

const socket = new FrameSocket(socketUrl(config.socket_path), {
  onSnapshot: (msg) => {
    state.applySnapshot(msg);
    showRace();
    dirty = true;
  },
  onFrame: (msg) => {
    state.applyUpdate(msg);
    dirty = true;
  },
  onOther: (msg) => {
    if (msg.type === "race") {
      state.applyRace(msg);
      showRace();
    }
  },
  onState: (connection) => {
    $("connection").dataset.state = connection;
    $("connection-text").textContent =
      { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", closed: "Offline" }[connection];
  },
});

function tick() {
  $("race-clock").textContent = clock(state.clockNow());
  if (dirty) {
    dirty = false;
    renderAthletes();
  }
}

renderAlerts();
setInterval(pollAlerts, ALERTS_EVERY_MS);
setInterval(() => {
  tick();
  for (const td of document.querySelectorAll("#alerts-body .since")) {
    const alert = alerts[td.parentElement.rowIndex - 1];
    if (alert) td.textContent = since(alert.since);
  }
}, 1000);
setInterval(tick, 250);
window.raceControl = { state, socket };
socket.start();
