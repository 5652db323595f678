// What the page knows about the race: built from the snapshot, patched by update frames.

const RACE_SECONDS_AHEAD_LIMIT = 30; // wall seconds the clock may run on without news

export class RaceState {
  constructor() {
    this.race = null;
    this.course = null;
    /** @type {Map<number, object>} athlete id -> latest ATHLETE (merged) */
    this.athletes = new Map();
    this.frame = null;
    this.clockS = null;
    this.clockAt = 0; // performance.now() when clockS was reported
    this.categories = new Set();
  }

  /** Replaces everything; returns every athlete. */
  applySnapshot(msg) {
    this.race = { ...msg.race };
    this.course = msg.course ?? this.course;
    this.frame = msg.frame;
    this.athletes.clear();
    this.categories.clear();
    for (const athlete of msg.athletes ?? []) this.put(athlete);
    this.setClock(msg.race?.clock_s);
    return [...this.athletes.values()];
  }

  /**
   * Merges an update as races/wire.py's merge_update does: each athlete by id, only the
   * fields it carries (a frame leaves out what did not change); the race's clock_s is
   * replaced. Returns the changed athletes.
   */
  applyUpdate(msg) {
    this.frame = msg.frame;
    if (this.race) this.race.clock_s = msg.clock_s ?? null;
    if (msg.clock_s != null) this.setClock(msg.clock_s);
    if (msg.status) this.race.status = msg.status;
    return (msg.athletes ?? []).map((athlete) => this.put(athlete));
  }

  applyRace(msg) {
    if (!this.race) return;
    if (msg.status) this.race.status = msg.status;
    for (const key of ["started_at", "time_compression", "clock_s", "name"]) {
      if (msg[key] !== undefined) this.race[key] = msg[key];
    }
    if (msg.clock_s != null) this.setClock(msg.clock_s);
  }

  put(athlete) {
    const known = this.athletes.get(athlete.id);
    const merged = known ? Object.assign(known, athlete) : { ...athlete };
    if (!merged.splits) merged.splits = merged.last_checkpoint ? [merged.last_checkpoint] : [];
    this.athletes.set(merged.id, merged);
    if (merged.category) this.categories.add(merged.category);
    return merged;
  }

  setClock(seconds) {
    if (seconds == null) return;
    this.clockS = seconds;
    this.clockAt = performance.now();
  }

  /** The race clock now: the last reported time, run on at the race's pace while live. */
  clockNow(now = performance.now()) {
    if (this.clockS == null) return this.clockFromStart();
    if (this.race?.status !== "running") return this.clockS;
    const wall = Math.min((now - this.clockAt) / 1000, RACE_SECONDS_AHEAD_LIMIT);
    return this.clockS + wall * (this.race.time_compression || 1);
  }

  /** Before the first position: the race clock from its start time (this device's clock). */
  clockFromStart() {
    const started = Date.parse(this.race?.started_at ?? "");
    if (this.race?.status !== "running" || Number.isNaN(started)) return null;
    return Math.max(0, ((Date.now() - started) / 1000) * (this.race.time_compression || 1));
  }

  counts() {
    const counts = { total: 0, running: 0, finished: 0, dnf: 0, not_started: 0 };
    for (const a of this.athletes.values()) {
      counts.total += 1;
      counts[a.status] = (counts[a.status] ?? 0) + 1;
    }
    return counts;
  }
}
