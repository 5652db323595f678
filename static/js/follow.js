// The followed athlete's card: who, where, how fast, splits, and when they will finish.
// Built once with DOM nodes; every update only sets texts (names are data: textContent).

import { clock, duration, gap, km, pace, STATUS_LABELS } from "raceweb/format.js";
import { finishPrediction, passagePrediction } from "raceweb/prediction.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function stat(label) {
  const box = el("div", "stat");
  const value = el("span", "v", "–");
  const sub = el("span", "s", "");
  box.append(el("span", "k", label), value, sub);
  return { box, value, sub };
}

/** "1:02:10 – 1:04:30": an 80 % band on the race clock. */
function bandText(p) {
  return `${clock(p.low)} – ${clock(p.high)}`;
}

/**
 * The band drawn to scale: a bar from the earliest to the latest likely time, the
 * prediction as a tick, over the stretch from now (elapsed) to the latest.
 */
function bandBar() {
  const bar = el("div", "band-bar");
  const range = el("span", "band-range");
  const tick = el("span", "band-tick");
  bar.append(range, tick);
  bar.setAttribute("aria-hidden", "true");
  return { bar, range, tick };
}

/** A checkpoint ahead: its predicted passage and, below, the 80 % band. */
function predictedCell(p) {
  const td = el("td", "predicted");
  if (!p) {
    td.textContent = "–";
    return td;
  }
  td.title = "Predicted passage; 80 % of athletes pass within the range below";
  td.append(el("span", "eta", `≈ ${clock(p.at)}`), el("span", "band", bandText(p)));
  return td;
}

export class FollowCard {
  constructor(root, { colours, onClose }) {
    this.root = root;
    this.colours = colours;
    this.id = null;
    const top = el("div", "follow-top");
    this.bib = el("div", "follow-bib");
    const who = el("div", "follow-who");
    this.name = el("div", "follow-name");
    this.meta = el("div", "follow-meta");
    who.append(this.name, this.meta);
    const close = el("button", "follow-close", "✕");
    close.type = "button";
    close.title = "Stop following";
    close.setAttribute("aria-label", "Stop following");
    close.addEventListener("click", onClose);
    top.append(this.bib, who, close);
    this.stats = { rank: stat("Rank"), dist: stat("Distance"), pace: stat("Pace"), eta: stat("Finish") };
    this.band = bandBar();
    this.stats.eta.box.append(this.band.bar);
    const grid = el("div", "follow-stats");
    grid.append(...Object.values(this.stats).map((s) => s.box));
    this.next = el("p", "follow-next");
    this.splits = el("table", "splits");
    const head = el("thead");
    const headRow = el("tr");
    for (const h of ["Checkpoint", "km", "Split / predicted", "Leg pace"]) headRow.append(el("th", null, h));
    head.append(headRow);
    this.splitBody = el("tbody");
    this.splits.append(head, this.splitBody);
    this.heading = el("h2", "visually-hidden", "Followed athlete");
    root.replaceChildren(this.heading, top, grid, this.next, this.splits);
  }

  show(athlete, race, checkpoints, clockNow) {
    this.id = athlete.id;
    this.root.hidden = false;
    this.update(athlete, race, checkpoints, clockNow);
  }

  hide() {
    this.id = null;
    this.root.hidden = true;
  }

  update(a, race, checkpoints, clockNow) {
    this.course = race;
    const colour = this.colours.of(a);
    this.root.style.setProperty("--athlete", colour);
    this.bib.textContent = a.bib;
    this.name.textContent = a.name;
    const gender = { female: "Women", male: "Men", other: "Other" }[a.gender] ?? "";
    this.meta.textContent = [a.category, gender, STATUS_LABELS[a.status] ?? a.status].filter(Boolean).join(" · ");
    const s = this.stats;
    s.rank.value.textContent = a.rank ? `${a.rank}` : "–";
    s.rank.sub.textContent = a.rank
      ? [a.rank_gender && `${gender} ${a.rank_gender}`, a.rank_category && `${a.category} ${a.rank_category}`]
        .filter(Boolean).join(" · ")
      : "";
    s.dist.value.textContent = `${km(a.distance_m)} km`;
    s.dist.sub.textContent = race?.length_m ? `of ${km(race.length_m, 1)} km` : "";
    s.pace.value.textContent = a.pace_s_per_km ? `${pace(a.pace_s_per_km)} /km` : "–";
    s.pace.sub.textContent = a.status === "running" ? `gap ${gap(a.gap_s)}` : "";
    this.fillFinish(a, clockNow);
    this.fillNext(a, checkpoints);
    this.fillSplits(a, checkpoints);
  }

  fillFinish(a, clockNow) {
    const { value, sub } = this.stats.eta;
    if (a.status === "finished") {
      const finish = a.splits?.at(-1)?.split_s ?? a.elapsed_s;
      value.textContent = clock(finish);
      sub.textContent = a.gap_s ? `${gap(a.gap_s)} behind` : "winner time";
    } else if (a.status === "running" && a.eta_s != null) {
      value.textContent = `in ${duration(a.eta_s)}`;
      const p = finishPrediction(a);
      const at = (a.elapsed_s ?? clockNow ?? 0) + a.eta_s;
      sub.textContent = p ? bandText(p) : `≈ ${clock(at)} race time`;
      sub.title = `Predicted finish ≈ ${clock(at)} race time; 80 % of finishes fall in this range`;
      this.showBand(p, a.elapsed_s);
      return;
    } else {
      value.textContent = a.status === "dnf" ? "DNF" : "–";
      sub.textContent = "";
    }
    this.showBand(null);
  }

  showBand(p, now) {
    const { bar, range, tick } = this.band;
    bar.hidden = !p;
    if (!p) return;
    // Scale: from the earliest likely finish minus its spread to the latest plus it.
    const pad = Math.max(p.high - p.low, 60);
    const lo = Math.max(now ?? 0, p.low - pad);
    const span = Math.max(p.high + pad - lo, 1);
    const x = (t) => `${(100 * (t - lo)) / span}%`;
    range.style.left = x(p.low);
    range.style.width = `${(100 * (p.high - p.low)) / span}%`;
    tick.style.left = x(p.at);
  }

  fillNext(a, checkpoints) {
    const next = checkpoints.find((cp) => cp.kind !== "start" && cp.distance_m > (a.distance_m ?? 0) + 1);
    if (a.status !== "running" || !next) {
      this.next.hidden = true;
      return;
    }
    this.next.hidden = false;
    const metres = next.distance_m - a.distance_m;
    const p = passagePrediction(a, next, this.course);
    const when = p ? `, at ≈ ${clock(p.at)} (${bandText(p)})` : "";
    this.next.textContent = `Next: ${next.name} in ${km(metres)} km${when}`;
  }

  fillSplits(a, checkpoints) {
    const passed = new Map((a.splits ?? []).map((s) => [s.name, s]));
    const rows = [];
    let previous = { distance_m: 0, split_s: 0 };
    for (const cp of checkpoints) {
      if (cp.kind === "start") continue;
      const split = passed.get(cp.name);
      const tr = el("tr", split ? null : "pending");
      const predicted = split ? null : passagePrediction(a, cp, this.course);
      let legPace = "";
      if (split) {
        const legKm = (split.distance_m - previous.distance_m) / 1000;
        if (legKm > 0) legPace = pace((split.split_s - previous.split_s) / legKm);
        previous = split;
      }
      tr.append(
        el("td", null, cp.name),
        el("td", null, km(cp.distance_m, 1)),
        split ? el("td", null, clock(split.split_s)) : predictedCell(predicted),
        el("td", null, legPace || "–"),
      );
      rows.push(tr);
    }
    const key = rows.map((r) => r.textContent).join("|");
    if (key !== this.splitKey) {
      this.splitBody.replaceChildren(...rows);
      this.splitKey = key;
    }
  }
}
