// The map: tiles (optional), the course, checkpoints, and every athlete on one canvas.

const L = window.L;

// From this zoom on, every athlete is a bubble with its bib; below it, a small dot.
export const LABEL_ZOOM = 15;
const DOT_RADIUS = 5.5;
const FOLLOW_MARGIN = 0.2; // keep the followed athlete this far inside the map's edges
const USER_PAN_GRACE_MS = 8000; // after the spectator drags the map, do not pull it back

/** A circle marker that, when labelled, draws its bib inside on the canvas. */
const AthleteMarker = L.CircleMarker.extend({
  _updatePath() {
    this._renderer._updateCircle(this);
    const renderer = this._renderer;
    if (!this.options.labelled || !renderer._drawing || this._empty()) return;
    const ctx = renderer._ctx;
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#fff";
    ctx.font = `700 ${this._radius > 12 ? 11 : 10}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(this.options.bib, this._point.x, this._point.y + 0.5);
  },
});

function bubbleRadius(bib) {
  return Math.max(10, 3.4 * String(bib).length + 4);
}

export class RaceMap {
  /**
   * @param {HTMLElement} element
   * @param {object} options tileUrl, tileAttribution, bounds ([s, w, n, e] or null),
   *   athlete(id) -> the athlete's state, colours (a Colours), motion (a Motion),
   *   onSelect(id), onTilesFailed()
   */
  constructor(element, options) {
    const { tileUrl, tileAttribution, bounds, onTilesFailed } = options;
    this.athlete = options.athlete;
    this.colours = options.colours;
    this.motion = options.motion;
    this.onSelect = options.onSelect;
    this.markers = new Map();
    this.followed = null;
    this.userPannedAt = -Infinity;
    this.map = L.map(element, { zoomSnap: 0.5, preferCanvas: true, worldCopyJump: false });
    this.map.createPane("athletes").style.zIndex = 450;
    this.renderer = L.canvas({ pane: "athletes", padding: 0.25, tolerance: 5 });
    this.courseRenderer = L.svg({ padding: 0.5 });
    if (tileUrl) {
      let failed = false;
      L.tileLayer(tileUrl, { attribution: tileAttribution, maxZoom: 19, crossOrigin: true })
        .on("tileerror", () => {
          if (!failed) onTilesFailed?.();
          failed = true;
        })
        .addTo(this.map);
    }
    this.courseBounds = bounds ? L.latLngBounds([bounds[0], bounds[1]], [bounds[2], bounds[3]]) : null;
    if (this.courseBounds) this.map.fitBounds(this.courseBounds, { padding: [24, 24] });
    else this.map.setView([0, 0], 2);
    this.addFitControl();
    this.map.on("zoomend", () => this.restyleAll());
    this.map.on("dragstart", () => {
      this.userPannedAt = performance.now();
    });
    // While the map pans or zooms (an animation, the spectator), following waits.
    this.moving = false;
    this.map.on("movestart zoomstart", () => {
      this.moving = true;
    });
    this.map.on("moveend zoomend", () => {
      this.moving = false;
    });
  }

  addFitControl() {
    const FitControl = L.Control.extend({
      onAdd: () => {
        const button = L.DomUtil.create("button", "map-button");
        button.type = "button";
        button.title = "Show the whole course";
        button.setAttribute("aria-label", "Show the whole course");
        button.textContent = "⤢";
        const box = L.DomUtil.create("div", "leaflet-bar");
        box.append(button);
        L.DomEvent.disableClickPropagation(box);
        button.addEventListener("click", () => this.fitCourse({ byUser: true }));
        return box;
      },
    });
    new FitControl({ position: "topleft" }).addTo(this.map);
  }

  fitCourse({ byUser = false } = {}) {
    if (!this.courseBounds) return;
    // The spectator asked for this view: following leaves it alone for a while.
    if (byUser) this.userPannedAt = performance.now();
    this.map.fitBounds(this.courseBounds, { padding: [24, 24] });
  }

  /** The course line with its start, finish and checkpoints. */
  setCourse(course, checkpoints) {
    this.courseLayer?.remove();
    const group = L.layerGroup();
    const style = { renderer: this.courseRenderer, interactive: false, lineJoin: "round" };
    L.polyline(course.segments, { ...style, color: "#ffffff", weight: 8, opacity: 0.95 }).addTo(group);
    L.polyline(course.segments, { ...style, color: "#ff5a1f", weight: 4, opacity: 1 }).addTo(group);
    for (const marker of this.checkpointMarkers(course, checkpoints)) marker.addTo(group);
    this.courseLayer = group.addTo(this.map);
    const line = L.polyline(course.segments);
    if (course.size > 1) {
      this.courseBounds = line.getBounds();
      if (!this.fitted && this.followed == null) this.fitCourse();
    }
    this.fitted = true;
  }

  checkpointMarkers(course, checkpoints) {
    if (!course.size) return [];
    const start = checkpoints.find((cp) => cp.kind === "start");
    const finish = checkpoints.find((cp) => cp.kind === "finish");
    const startPoint = course.at(start?.distance_m ?? 0);
    const finishPoint = course.at(finish?.distance_m ?? course.length);
    // A loop course starts where it finishes: one marker for both.
    const loop = this.map.distance([startPoint.lat, startPoint.lon], [finishPoint.lat, finishPoint.lon]) < 60;
    const markers = [];
    let n = 0;
    for (const cp of checkpoints) {
      if (cp.kind === "checkpoint") n += 1;
      if (loop && cp.kind === "finish") continue;
      const kind = loop && cp.kind === "start" ? "startfinish" : cp.kind;
      const text = { start: "", finish: "", startfinish: "", checkpoint: String(n) }[kind];
      const point = course.at(cp.distance_m);
      const icon = L.divIcon({
        className: "",
        html: `<div class="cp-icon cp-${kind}">${text}</div>`,
        iconSize: kind === "checkpoint" ? [22, 22] : [28, 28],
      });
      const marker = L.marker([point.lat, point.lon], { icon, keyboard: false, zIndexOffset: kind === "checkpoint" ? 0 : 100 });
      const label = loop && cp.kind === "start" ? "Start / Finish" : `${cp.name} · ${(cp.distance_m / 1000).toFixed(1)} km`;
      marker.bindTooltip(textElement(label), { direction: "top", offset: [0, -12] });
      markers.push(marker);
    }
    return markers;
  }

  /** Creates or restyles the markers of the athletes given. */
  syncAthletes(athletes) {
    for (const athlete of athletes) {
      const track = this.motion.get(athlete.id);
      if (!track) continue;
      let marker = this.markers.get(athlete.id);
      if (!marker) {
        marker = new AthleteMarker([track.lat, track.lon], {
          renderer: this.renderer,
          radius: DOT_RADIUS,
          color: "#ffffff",
          weight: 1.5,
          fillOpacity: 1,
          bib: athlete.bib,
          labelled: false,
        });
        marker.athleteId = athlete.id;
        marker.on("click", () => this.onSelect(athlete.id));
        marker.addTo(this.map);
        this.markers.set(athlete.id, marker);
      }
      this.style(marker, athlete);
    }
  }

  restyle(id) {
    const marker = this.markers.get(id);
    const athlete = this.athlete(id);
    if (marker && athlete) this.style(marker, athlete);
  }

  restyleAll() {
    for (const id of this.markers.keys()) this.restyle(id);
  }

  style(marker, athlete) {
    const colours = this.colours;
    const followed = marker.athleteId === this.followed;
    const labelled = followed || this.map.getZoom() >= LABEL_ZOOM;
    const out = athlete.status === "dnf";
    const style = {
      fillColor: out ? "#94a3b8" : colours.of(athlete),
      fillOpacity: athlete.status === "finished" || out ? 0.75 : 1,
      color: followed ? "#0f1b2d" : "#ffffff",
      weight: followed ? 3 : 1.5,
      labelled,
    };
    const radius = labelled ? bubbleRadius(athlete.bib) + (followed ? 2 : 0) : DOT_RADIUS;
    const o = marker.options;
    if (o.fillColor !== style.fillColor || o.color !== style.color || o.labelled !== labelled
        || o.fillOpacity !== style.fillOpacity || o.weight !== style.weight) {
      marker.setStyle(style);
    }
    if (marker.getRadius() !== radius) marker.setRadius(radius);
  }

  clearAthletes() {
    for (const marker of this.markers.values()) marker.remove();
    this.markers.clear();
  }

  /** Moves the markers of the athletes that glided this frame. */
  move(ids) {
    // A marker that moved less than a third of a pixel is not redrawn (at the zoom of a
    // whole course, most frames of most athletes): the canvas is redrawn less often.
    const step = (0.33 * 360) / (256 * 2 ** this.map.getZoom());
    const settled = this.motion.settled;
    for (const id of ids) {
      const marker = this.markers.get(id);
      const track = this.motion.get(id);
      if (!marker || !track) continue;
      const at = marker.getLatLng();
      if (Math.abs(track.lat - at.lat) < step && Math.abs(track.lon - at.lng) < step && !settled.has(id)) {
        continue;
      }
      marker.setLatLng([track.lat, track.lon]);
    }
    if (this.followed != null && ids.length) this.keepInView();
  }

  follow(id) {
    const previous = this.followed;
    this.followed = id;
    this.tooltip?.remove();
    this.tooltip = null;
    if (previous != null) this.restyle(previous);
    const marker = this.markers.get(id);
    const athlete = this.athlete(id);
    if (!marker || !athlete) return;
    this.restyle(id);
    marker.bringToFront();
    const label = document.createElement("span");
    label.textContent = `${athlete.bib} · ${athlete.name}`;
    this.tooltip = L.tooltip({ permanent: true, direction: "top", offset: [0, -14], className: "bib-tip", interactive: false })
      .setContent(label)
      .setLatLng(marker.getLatLng())
      .addTo(this.map);
    const track = this.motion.get(id);
    if (track) {
      this.userPannedAt = -Infinity;
      this.map.setView([track.lat, track.lon], Math.max(this.map.getZoom(), 14), { animate: true });
    }
  }

  unfollow() {
    const previous = this.followed;
    this.followed = null;
    this.tooltip?.remove();
    this.tooltip = null;
    if (previous != null) this.restyle(previous);
  }

  keepInView() {
    const track = this.motion.get(this.followed);
    if (!track) return;
    const at = L.latLng(track.lat, track.lon);
    this.tooltip?.setLatLng(at);
    if (this.moving || performance.now() - this.userPannedAt < USER_PAN_GRACE_MS) return;
    if (this.map.getBounds().pad(-FOLLOW_MARGIN).contains(at)) return;
    this.map.panTo(at, { animate: true, duration: 0.6 });
  }
}

function textElement(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}
