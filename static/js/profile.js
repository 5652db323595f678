// The elevation profile: the course's height along its length, every athlete as a dot at
// its distance, the followed one highlighted. One canvas; the course part is drawn once
// per size into an offscreen canvas and copied under the dots at each redraw.

const PAD = { left: 54, right: 14, top: 18, bottom: 20 };
const DOT_RADIUS = 3.5;
const PICK_PX = 10;
const REDRAW_MS = 66;
const LABEL_GAP_PX = 6; // least room between two checkpoint names
const EVERY_KM_NAME = /^\d+(\.\d+)? km$/; // a checkpoint the import placed every N km, not a named one

/** `text`, cut with an ellipsis to at most `width` px (a waypoint's name can be long). */
function shortened(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  let end = text.length;
  while (end > 1 && ctx.measureText(`${text.slice(0, end)}…`).width > width) end -= 1;
  return `${text.slice(0, end).trimEnd()}…`;
}

export class Profile {
  constructor(canvas, { motion, athlete, colours, onSelect }) {
    this.canvas = canvas;
    this.motion = motion;
    this.athlete = athlete;
    this.colours = colours;
    this.onSelect = onSelect;
    this.course = null;
    this.checkpoints = [];
    this.ids = [];
    this.followed = null;
    this.background = null;
    this.dots = []; // what the last redraw drew: [{id, x, y}], for picking (and tests)
    this.labels = []; // the texts of the course part: [{text, left, right, top, bottom}]
    this.ghosts = []; // ghost pacers: [{name, colour, distance}] (ghosts.js)
    this.needsDraw = true;
    this.moved = false;
    this.drawnAt = 0;
    new ResizeObserver(() => this.resize()).observe(canvas);
    canvas.addEventListener("click", (event) => this.pick(event));
  }

  setCourse(course, checkpoints) {
    this.course = course;
    this.checkpoints = checkpoints;
    this.background = null;
    this.needsDraw = true;
  }

  setAthletes(ids) {
    this.ids = ids;
    this.needsDraw = true;
  }

  /** Ghost pacers where the race clock puts them; redrawn when one moves a pixel. */
  setGhosts(ghosts) {
    const moved = ghosts.length !== this.ghosts.length || ghosts.some(
      (g, i) => Math.abs(this.x(g.distance) - this.x(this.ghosts[i].distance)) >= 0.5,
    );
    if (!moved) return;
    this.ghosts = ghosts;
    this.needsDraw = true;
  }

  setFollowed(id) {
    this.followed = id;
    this.needsDraw = true;
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = width;
    this.height = height;
    this.canvas.width = Math.max(1, Math.round(width * ratio));
    this.canvas.height = Math.max(1, Math.round(height * ratio));
    this.ratio = ratio;
    this.background = null;
    this.needsDraw = true;
    this.draw();
  }

  x(distance) {
    const span = this.course?.length || 1;
    return PAD.left + (distance / span) * (this.width - PAD.left - PAD.right);
  }

  y(elevation) {
    const c = this.course;
    const low = c.minEle;
    const range = Math.max(c.maxEle - low, 20);
    const inner = this.height - PAD.top - PAD.bottom;
    return PAD.top + inner - ((elevation - low) / range) * inner * 0.92 - inner * 0.04;
  }

  /** Redraws when something changed, at most every REDRAW_MS while athletes glide
   * (a dot moves a fraction of a pixel per frame here; the map shows the motion). */
  frame(moved, now = performance.now()) {
    if (moved.length) this.moved = true;
    if (this.needsDraw || (this.moved && now - this.drawnAt >= REDRAW_MS)) this.draw(now);
  }

  draw(now = performance.now()) {
    this.needsDraw = false;
    this.moved = false;
    this.drawnAt = now;
    const ctx = this.canvas.getContext("2d");
    if (!this.width || !this.height) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.course?.size) return;
    if (!this.background) this.background = this.drawBackground();
    ctx.drawImage(this.background, 0, 0);
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    this.drawGhosts(ctx);
    this.drawDots(ctx);
  }

  drawBackground() {
    const off = document.createElement("canvas");
    off.width = this.canvas.width;
    off.height = this.canvas.height;
    const ctx = off.getContext("2d");
    ctx.scale(this.ratio, this.ratio);
    const c = this.course;
    const bottom = this.height - PAD.bottom;
    const step = Math.max(1, Math.floor(c.size / (this.width * 2)));
    ctx.beginPath();
    ctx.moveTo(this.x(0), bottom);
    for (let i = 0; i < c.size; i += step) ctx.lineTo(this.x(c.dist[i]), this.y(c.ele[i]));
    ctx.lineTo(this.x(c.length), this.y(c.ele[c.size - 1]));
    ctx.lineTo(this.x(c.length), bottom);
    ctx.closePath();
    const fill = ctx.createLinearGradient(0, PAD.top, 0, bottom);
    fill.addColorStop(0, "rgba(255, 90, 31, 0.30)");
    fill.addColorStop(1, "rgba(255, 90, 31, 0.04)");
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.beginPath();
    for (let i = 0; i < c.size; i += step) ctx[i ? "lineTo" : "moveTo"](this.x(c.dist[i]), this.y(c.ele[i]));
    ctx.lineTo(this.x(c.length), this.y(c.ele[c.size - 1]));
    ctx.strokeStyle = "#ff5a1f";
    ctx.lineWidth = 1.75;
    ctx.stroke();
    this.drawAxes(ctx, bottom);
    return off;
  }

  drawAxes(ctx, bottom) {
    const c = this.course;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#56657a";
    this.labels = [];
    ctx.strokeStyle = "#e2e8f0";
    ctx.lineWidth = 1;
    // distance ticks at a round step that leaves room for the labels
    const km = c.length / 1000;
    const room = Math.max(1, Math.floor((this.width - PAD.left - PAD.right) / 56));
    const stepKm = [0.5, 1, 2, 5, 10, 20, 25, 50, 100].find((s) => km / s <= room) ?? 200;
    for (let d = 0; d <= km + 1e-9; d += stepKm) {
      const x = this.x(d * 1000);
      this.label(ctx, `${Number(d.toFixed(1))} km`, x, bottom + 5, "center", "top");
      ctx.beginPath();
      ctx.moveTo(x + 0.5, bottom);
      ctx.lineTo(x + 0.5, bottom + 3);
      ctx.stroke();
    }
    ctx.beginPath();
    ctx.moveTo(PAD.left, bottom + 0.5);
    ctx.lineTo(this.width - PAD.right, bottom + 0.5);
    ctx.stroke();
    if (c.hasElevation) {
      for (const e of [c.minEle, c.maxEle]) this.label(ctx, `${Math.round(e)} m`, PAD.left - 6, this.y(e), "right", "middle");
    } else {
      this.label(ctx, "no elevation", PAD.left + 110, PAD.top + 6, "right", "middle");
    }
    // checkpoints: a dashed line, and the name on top where it has room
    ctx.setLineDash([3, 3]);
    ctx.strokeStyle = "#94a3b8";
    for (const cp of this.checkpoints) {
      if (cp.kind !== "checkpoint") continue;
      const x = this.x(cp.distance_m);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, PAD.top);
      ctx.lineTo(x + 0.5, bottom);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.fillStyle = "#334155";
    for (const box of this.checkpointLabels(ctx)) this.label(ctx, box.text, box.left, PAD.top - 5, "left", "alphabetic");
  }

  /** Which checkpoint names fit: start and finish first, then named checkpoints (an
   * organizer's waypoints), then the every-N-km ones, each only where it overlaps no name
   * already placed. On a 170 km course with a checkpoint every 5 km that keeps a readable
   * subset instead of a smear of overlapping names. */
  checkpointLabels(ctx) {
    const rank = (cp) => (cp.kind === "checkpoint" ? (EVERY_KM_NAME.test(cp.name) ? 2 : 1) : 0);
    const byPriority = [...this.checkpoints].sort((a, b) => rank(a) - rank(b));
    const placed = [];
    const widest = Math.max(80, (this.width - PAD.left - PAD.right) / 3);
    for (const cp of byPriority) {
      const text = shortened(ctx, cp.name, widest);
      const width = ctx.measureText(text).width;
      const centre = this.x(cp.distance_m);
      const left = Math.min(Math.max(centre - width / 2, 0), this.width - width);
      const box = { text, left, right: left + width };
      if (placed.every((p) => box.right + LABEL_GAP_PX <= p.left || box.left >= p.right + LABEL_GAP_PX)) {
        placed.push(box);
      }
    }
    return placed;
  }

  /** Draws a text and keeps its box (this.labels: what the tests check for overlaps). */
  label(ctx, text, x, y, align, baseline) {
    ctx.textAlign = align;
    ctx.textBaseline = baseline;
    ctx.fillText(text, x, y);
    const m = ctx.measureText(text);
    this.labels.push({
      text,
      left: x - m.actualBoundingBoxLeft,
      right: x + m.actualBoundingBoxRight,
      top: y - m.actualBoundingBoxAscent,
      bottom: y + m.actualBoundingBoxDescent,
    });
  }

  drawDots(ctx) {
    const dots = [];
    let followed = null;
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#ffffff";
    for (const id of this.ids) {
      const track = this.motion.get(id);
      const athlete = this.athlete(id);
      if (!track || !athlete || athlete.status === "dnf") continue;
      const x = this.x(track.dist);
      const y = this.y(this.course.elevationAt(track.dist));
      dots.push({ id, x, y });
      if (id === this.followed) {
        followed = { x, y, athlete };
        continue;
      }
      ctx.fillStyle = this.colours.of(athlete);
      ctx.beginPath();
      ctx.arc(x, y, DOT_RADIUS, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
    if (followed) this.drawFollowed(ctx, followed);
    this.dots = dots;
  }

  /** Each ghost: a dashed line down to the axis and its name on a pill at the top. */
  drawGhosts(ctx) {
    const bottom = this.height - PAD.bottom;
    ctx.font = "600 10.5px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const { name, colour, distance } of this.ghosts) {
      if (distance == null) continue;
      const x = this.x(distance);
      const y = this.y(this.course.elevationAt(distance));
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x, PAD.top + 4);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#ffffff";
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
      const w = ctx.measureText(name).width + 10;
      const lx = Math.min(Math.max(x - w / 2, 2), this.width - w - 2);
      ctx.globalAlpha = 0.92;
      ctx.fillStyle = colour;
      ctx.beginPath();
      ctx.roundRect(lx, 2, w, 15, 7);
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#ffffff";
      ctx.fillText(name, lx + w / 2, 10);
    }
  }

  drawFollowed(ctx, { x, y, athlete }) {
    const bottom = this.height - PAD.bottom;
    ctx.strokeStyle = "#0f1b2d";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x, bottom);
    ctx.stroke();
    ctx.fillStyle = this.colours.of(athlete);
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, Math.PI * 2);
    ctx.fill();
    ctx.lineWidth = 3;
    ctx.stroke();
    const label = String(athlete.bib);
    ctx.font = "700 12px system-ui, sans-serif";
    const w = ctx.measureText(label).width + 12;
    const lx = Math.min(Math.max(x - w / 2, 2), this.width - w - 2);
    const ly = Math.max(y - 32, 0);
    ctx.fillStyle = "#0f1b2d";
    ctx.beginPath();
    ctx.roundRect(lx, ly, w, 18, 5);
    ctx.fill();
    ctx.fillStyle = "#ffffff";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(label, lx + w / 2, ly + 9.5);
  }

  pick(event) {
    const rect = this.canvas.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    let best = null;
    let bestDistance = PICK_PX;
    for (const dot of this.dots) {
      const d = Math.hypot(dot.x - px, dot.y - py);
      if (d < bestDistance) {
        best = dot;
        bestDistance = d;
      }
    }
    if (best) this.onSelect(best.id);
  }
}
