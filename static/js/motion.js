// Gliding markers: each new position starts a glide from where the athlete is drawn now
// to where it was reported, lasting about as long as that athlete's updates take to come,
// so the motion looks continuous instead of jumping once per update.

const FIRST_INTERVAL_MS = 600;
const MIN_INTERVAL_MS = 80;
const MAX_INTERVAL_MS = 4000;
// Further than this along the course, a glide would cut across the map: jump instead.
const JUMP_METRES = 1500;

class Track {
  constructor(lat, lon, dist, now) {
    this.lat = lat;
    this.lon = lon;
    this.dist = dist;
    this.fromLat = lat;
    this.fromLon = lon;
    this.fromDist = dist;
    this.toLat = lat;
    this.toLon = lon;
    this.toDist = dist;
    this.start = now;
    this.duration = 0;
    this.lastReport = now;
    this.interval = FIRST_INTERVAL_MS;
  }
}

export class Motion {
  constructor() {
    /** @type {Map<number, Track>} */
    this.tracks = new Map();
    this.active = new Set();
    this.settled = new Set(); // ids whose glide ended in the last advance()
  }

  /** A reported position; `jump` places it at once (first sight, a fresh page). */
  report(id, lat, lon, dist, now, jump = false) {
    if (lat == null || lon == null) return;
    const track = this.tracks.get(id);
    if (!track) {
      this.tracks.set(id, new Track(lat, lon, dist, now));
      this.active.add(id);
      return;
    }
    if (track.toLat === lat && track.toLon === lon && track.toDist === dist) return;
    const since = now - track.lastReport;
    track.lastReport = now;
    if (since > MIN_INTERVAL_MS && since < MAX_INTERVAL_MS) {
      track.interval = track.interval * 0.5 + since * 0.5;
    }
    if (jump || Math.abs(dist - track.dist) > JUMP_METRES) {
      Object.assign(track, { lat, lon, dist, fromLat: lat, fromLon: lon, fromDist: dist, duration: 0 });
    } else {
      track.fromLat = track.lat;
      track.fromLon = track.lon;
      track.fromDist = track.dist;
      track.duration = track.interval;
    }
    track.toLat = lat;
    track.toLon = lon;
    track.toDist = dist;
    track.start = now;
    this.active.add(id);
  }

  forget(id) {
    this.tracks.delete(id);
    this.active.delete(id);
  }

  clear() {
    this.tracks.clear();
    this.active.clear();
  }

  /** Moves every gliding athlete to where it is at `now`; returns the ids that moved. */
  advance(now) {
    const moved = [];
    this.settled.clear();
    for (const id of this.active) {
      const t = this.tracks.get(id);
      const f = t.duration > 0 ? Math.min(1, (now - t.start) / t.duration) : 1;
      t.lat = t.fromLat + (t.toLat - t.fromLat) * f;
      t.lon = t.fromLon + (t.toLon - t.fromLon) * f;
      t.dist = t.fromDist + (t.toDist - t.fromDist) * f;
      moved.push(id);
      if (f >= 1) {
        this.active.delete(id);
        this.settled.add(id);
      }
    }
    return moved;
  }

  get(id) {
    return this.tracks.get(id);
  }
}
