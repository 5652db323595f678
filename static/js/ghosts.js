// Ghost pacers: the cut-off, the course record, target times. Each comes once, in the
// snapshot's course (`course.ghosts`: a schedule of [distance_m, race_s] points from the
// server, races/spectators/snapshots.py), and moves with the race clock here: its position
// is a pure function of race time, so no frame carries it. Ghosts are not athletes: they
// are drawn on the map and the profile and listed above the board, never ranked.

const L = window.L;

export const GHOST_COLOURS = { cutoff: "#dc2626", record: "#b45309", target: "#7c3aed" };
const STRIP_EVERY_MS = 500;

/** Distance along the course at race second `clockS` (linear between schedule points). */
export function ghostDistance(schedule, clockS) {
  if (!schedule?.length || clockS == null) return null;
  if (clockS <= schedule[0][1]) return schedule[0][0];
  const last = schedule[schedule.length - 1];
  if (clockS >= last[1]) return last[0];
  let lo = 0;
  let hi = schedule.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (schedule[mid][1] <= clockS) lo = mid;
    else hi = mid;
  }
  const [d0, t0] = schedule[lo];
  const [d1, t1] = schedule[hi];
  return t1 > t0 ? d0 + ((clockS - t0) / (t1 - t0)) * (d1 - d0) : d1;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

export class Ghosts {
  /**
   * @param {object} options raceMap (a RaceMap), profile (a Profile), strip (the element
   *   above the board), athletes() -> the athletes the page holds, board (a Board: its
   *   rows of running athletes behind the cut-off ghost are marked)
   */
  constructor({ raceMap, profile, strip, athletes, board }) {
    this.raceMap = raceMap;
    this.board = board;
    this.profile = profile;
    this.strip = strip;
    this.athletes = athletes;
    this.ghosts = [];
    this.course = null;
    this.markers = new Map();
    this.chips = new Map();
    this.stripAt = -Infinity;
    this.distances = new Map(); // ghost id -> distance at the last frame (tests read it)
    raceMap.map.createPane("ghosts").style.zIndex = 440; // under the athletes (450)
  }

  /** The ghosts of a snapshot's course (a snapshot replaces them all). */
  set(ghosts) {
    const same = JSON.stringify(ghosts ?? []) === JSON.stringify(this.ghosts);
    if (same) return;
    this.ghosts = ghosts ?? [];
    for (const marker of this.markers.values()) marker.remove();
    this.markers.clear();
    this.chips.clear();
    this.strip.replaceChildren();
    this.strip.hidden = this.ghosts.length === 0;
    for (const ghost of this.ghosts) this.strip.append(this.chip(ghost));
    this.stripAt = -Infinity;
  }

  setCourse(course) {
    this.course = course;
  }

  chip(ghost) {
    const colour = GHOST_COLOURS[ghost.kind] ?? GHOST_COLOURS.target;
    const box = el("div", `ghost-chip ${ghost.kind}`);
    box.style.setProperty("--ghost", colour);
    box.title = `${ghost.name}: a ghost pacer, not an athlete (never ranked)`;
    const where = el("span", "ghost-where", "");
    const count = el("span", "ghost-count", "");
    box.append(el("span", "ghost-swatch"), el("span", "ghost-name", ghost.name), where, count);
    this.chips.set(ghost.id, { box, where, count });
    return box;
  }

  marker(ghost) {
    let marker = this.markers.get(ghost.id);
    if (!marker) {
      const colour = GHOST_COLOURS[ghost.kind] ?? GHOST_COLOURS.target;
      const icon = L.divIcon({
        className: "ghost-marker",
        html: `<span class="ghost-dot" style="--ghost:${colour}"></span>`
          + `<span class="ghost-label" style="--ghost:${colour}"></span>`,
        iconSize: [18, 18],
        iconAnchor: [9, 9],
      });
      marker = L.marker([0, 0], { icon, pane: "ghosts", interactive: false, keyboard: false });
      marker.addTo(this.raceMap.map);
      marker.getElement().querySelector(".ghost-label").textContent = ghost.name;
      this.markers.set(ghost.id, marker);
    }
    return marker;
  }

  /** Moves every ghost to where the race clock puts it. */
  frame(clockS, now = performance.now()) {
    if (!this.ghosts.length) return;
    const onProfile = [];
    for (const ghost of this.ghosts) {
      const distance = ghostDistance(ghost.schedule, clockS ?? 0);
      this.distances.set(ghost.id, distance);
      onProfile.push({ name: ghost.name, colour: GHOST_COLOURS[ghost.kind], distance });
      if (this.course?.size) {
        const at = this.course.at(distance);
        this.marker(ghost).setLatLng([at.lat, at.lon]);
      }
    }
    this.profile.setGhosts(onProfile);
    if (now - this.stripAt >= STRIP_EVERY_MS) {
      this.stripAt = now;
      this.fillStrip();
    }
  }

  /** Each ghost's distance and how many running athletes are ahead of it and behind it. */
  fillStrip() {
    const running = [...this.athletes()].filter((a) => a.status === "running");
    const cutoff = this.ghosts.find((g) => g.kind === "cutoff");
    this.board?.setCutoff(cutoff ? this.distances.get(cutoff.id) : null);
    for (const ghost of this.ghosts) {
      const chip = this.chips.get(ghost.id);
      const distance = this.distances.get(ghost.id);
      if (!chip || distance == null) continue;
      const ahead = running.filter((a) => (a.distance_m ?? 0) >= distance).length;
      const behind = running.length - ahead;
      chip.where.textContent = `${(distance / 1000).toFixed(2)} km`;
      chip.count.textContent = running.length ? `${ahead} ahead · ${behind} behind` : "";
      chip.box.classList.toggle("has-behind", ghost.kind === "cutoff" && behind > 0);
    }
  }
}
