// The leaderboard. Rows are keyed by athlete and updated in place, and only the rows in
// (or near) the visible window exist: a 1,000-athlete board costs the browser a few dozen
// rows per frame, not a 1,000-row table relayout. A row moves by changing its offset,
// never by re-creating it; a frame rewrites only the cells whose text changed.

import { clock, duration, gap, km, pace, searchable, STATUS_LABELS } from "raceweb/format.js";
import { finishPrediction } from "raceweb/prediction.js";

const COLUMNS = ["rank", "bib", "name", "cat", "dist", "pace", "gap", "finish", "split", "status"];
const ROW_HEIGHT = 38; // px, as .board-row in raceweb.css
const OVERSCAN = 8; // rows drawn above and below the visible ones
const RANK_FLASH_MS = 4000;
const PAGE_ROWS = 10;
const STATUS_ORDER = { finished: 0, running: 0, not_started: 1, dnf: 2, dns: 3 };

function bibNumber(bib) {
  const n = Number.parseInt(bib, 10);
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER;
}

/** Leaderboard order: ranked athletes by rank, then those not started, then DNF. */
export function boardOrder(a, b) {
  return (
    (STATUS_ORDER[a.status] ?? 3) - (STATUS_ORDER[b.status] ?? 3)
    || (a.rank ?? Infinity) - (b.rank ?? Infinity)
    || (a.status === "dnf" ? (b.distance_m ?? 0) - (a.distance_m ?? 0) : 0)
    || bibNumber(a.bib) - bibNumber(b.bib)
    || String(a.bib).localeCompare(String(b.bib))
  );
}

class Row {
  constructor(onClick) {
    this.el = document.createElement("div");
    this.el.className = "board-row";
    this.el.setAttribute("role", "row");
    this.el.tabIndex = -1;
    this.cells = {};
    for (const column of COLUMNS) {
      const cell = document.createElement("span");
      cell.className = `c-${column}`;
      cell.setAttribute("role", "cell");
      this.el.append(cell);
      this.cells[column] = cell;
    }
    this.swatch = document.createElement("span");
    this.swatch.className = "swatch";
    this.name = document.createTextNode("");
    this.cells.name.append(this.swatch, this.name);
    // The split's checkpoint name gives way (ellipsis) before its time does.
    this.splitName = document.createElement("span");
    this.splitName.className = "split-name";
    this.splitTime = document.createElement("span");
    this.splitTime.className = "split-time";
    this.cells.split.append(this.splitName, this.splitTime);
    this.badge = document.createElement("span");
    this.cells.status.append(this.badge);
    this.finishTime = document.createElement("span");
    this.finishTime.className = "t";
    this.finishBand = document.createElement("span");
    this.finishBand.className = "b";
    this.cells.finish.append(this.finishTime, this.finishBand);
    this.el.addEventListener("click", () => onClick(this.id));
    this.bind(null);
  }

  /** Shows another athlete from now on (a recycled row forgets what it showed). */
  bind(id) {
    this.id = id;
    this.text = {};
    this.attrs = {};
    this.index = -1;
    if (id != null) this.el.dataset.id = id;
  }

  /** Writes a cell only when its text changes. */
  set(column, text, node = this.cells[column]) {
    if (this.text[column] === text) return;
    this.text[column] = text;
    node.textContent = text;
  }

  /** Sets an attribute or property only when it changes. */
  attr(name, value, apply) {
    if (this.attrs[name] === value) return;
    this.attrs[name] = value;
    apply(value);
  }
}

export class Board {
  constructor({ body, scroll, empty, search, gender, category, colours, onSelect, onEscape }) {
    this.body = body;
    this.scroll = scroll;
    this.table = scroll;
    this.empty = empty;
    this.categorySelect = category;
    this.colours = colours;
    this.onSelect = onSelect;
    this.onEscape = onEscape;
    /** @type {Map<number, object>} athlete id -> athlete */
    this.athletes = new Map();
    /** @type {Map<number, Row>} rows on screen, by athlete id */
    this.rows = new Map();
    this.spare = [];
    this.order = []; // every athlete, leaderboard order
    this.visible = []; // those that pass the filter, in order
    this.position = new Map(); // athlete id -> index in visible
    this.ranks = new Map(); // athlete id -> the rank shown last time (for the flash)
    this.flashes = new Map(); // athlete id -> [direction, until]
    this.changed = new Set();
    this.orderDirty = false;
    this.filterDirty = false;
    this.windowDirty = true;
    this.followed = null;
    this.cutoffM = null; // where the cut-off ghost is (ghosts.js): running athletes behind it are marked
    this.tabStop = null; // the athlete whose row takes the keyboard focus (roving tabindex)
    this.filter = { query: "", gender: "", category: "" };
    search.addEventListener("input", () => this.setFilter({ query: search.value }));
    gender.addEventListener("change", () => this.setFilter({ gender: gender.value }));
    category.addEventListener("change", () => this.setFilter({ category: category.value }));
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "Enter") {
        event.preventDefault();
        this.focusIndex(0);
      }
    });
    body.addEventListener("keydown", (event) => this.keydown(event));
    scroll.addEventListener("scroll", () => {
      this.windowDirty = true;
    }, { passive: true });
    new ResizeObserver(() => {
      this.windowDirty = true;
    }).observe(scroll);
  }

  /** A fresh start (snapshot): exactly these athletes. */
  reset(athletes) {
    this.athletes.clear();
    this.update(athletes);
    this.filterDirty = true;
  }

  /** Athletes whose data changed; drawn at the next render. */
  update(athletes) {
    for (const athlete of athletes) {
      if (!this.athletes.has(athlete.id)) this.filterDirty = true;
      this.athletes.set(athlete.id, athlete);
      this.changed.add(athlete.id);
    }
    if (athletes.length) this.orderDirty = true;
  }

  setCategories(categories) {
    const select = this.categorySelect;
    const current = select.value;
    const known = [...select.options].slice(1).map((o) => o.value);
    if (known.join("\n") === categories.join("\n")) return;
    select.length = 1;
    for (const category of categories) select.add(new Option(category, category));
    select.value = categories.includes(current) ? current : "";
  }

  setFilter(change) {
    Object.assign(this.filter, change);
    this.filterDirty = true;
    this.ranks.clear(); // ranks within another filter are no news
    this.scroll.scrollTop = 0;
    this.render();
  }

  /** scroll: false, "nearest" (just into view) or "center". */
  setFollowed(id, { scroll = false } = {}) {
    this.followed = id;
    this.windowDirty = true;
    if (id != null) this.tabStop = id;
    this.render();
    if (scroll && id != null) this.scrollToAthlete(id, { center: scroll === "center" });
  }

  recolour() {
    for (const row of this.rows.values()) row.attrs.colour = null;
    this.windowDirty = true;
    this.render();
  }

  /** The cut-off ghost's distance (null: none); rows on screen are re-marked. */
  setCutoff(distance) {
    if (distance === this.cutoffM) return;
    this.cutoffM = distance;
    this.windowDirty = true;
  }

  /** Applies everything pending. Call once per animation frame. */
  render(now = performance.now()) {
    if (this.orderDirty) {
      this.order = [...this.athletes.values()].sort(boardOrder);
      this.filterDirty = true;
    }
    if (this.filterDirty) this.applyFilter();
    if (this.orderDirty || this.filterDirty || this.windowDirty || this.changed.size || this.flashes.size) {
      this.draw(now);
    }
    this.orderDirty = this.filterDirty = this.windowDirty = false;
    this.changed.clear();
  }

  applyFilter() {
    const { gender, category } = this.filter;
    const query = searchable(this.filter.query.trim());
    this.visible = this.order.filter((a) => (!gender || a.gender === gender)
      && (!category || a.category === category)
      && (!query || String(a.bib).toLowerCase().startsWith(query) || searchable(a.name).includes(query)));
    this.position = new Map(this.visible.map((a, i) => [a.id, i]));
    this.body.style.height = `${this.visible.length * ROW_HEIGHT}px`;
    this.table.setAttribute("aria-rowcount", String(this.visible.length + 1));
    this.empty.hidden = this.visible.length > 0;
    if (this.tabStop == null || !this.position.has(this.tabStop)) this.tabStop = this.visible[0]?.id ?? null;
  }

  /** Which athletes get a row now: those in the window, plus the keyboard and followed ones. */
  wanted() {
    const top = this.scroll.scrollTop - this.body.offsetTop;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + this.scroll.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    const ids = new Set(this.visible.slice(first, last).map((a) => a.id));
    for (const id of [this.tabStop, this.followed]) if (this.position.has(id)) ids.add(id);
    return ids;
  }

  draw(now) {
    const wanted = this.wanted();
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        this.rows.delete(id);
        row.el.remove();
        row.bind(null);
        this.spare.push(row);
      }
    }
    for (const id of wanted) {
      let row = this.rows.get(id);
      if (!row) {
        row = this.spare.pop() ?? new Row((athleteId) => this.onSelect(athleteId));
        row.bind(id);
        this.rows.set(id, row);
        this.body.append(row.el);
      }
      this.fill(row, this.athletes.get(id), this.position.get(id), now);
    }
  }

  fill(row, a, index, now) {
    if (row.index !== index) {
      row.index = index;
      row.el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      row.el.setAttribute("aria-rowindex", String(index + 2));
    }
    const rank = this.rankOf(a);
    const before = this.ranks.get(a.id);
    if (rank != null && before != null && rank !== before) {
      this.flashes.set(a.id, [rank < before ? "rank-up" : "rank-down", now + RANK_FLASH_MS]);
    }
    if (rank != null) this.ranks.set(a.id, rank);
    const flash = this.flashes.get(a.id);
    if (flash && now > flash[1]) this.flashes.delete(a.id);
    const flashClass = flash && now <= flash[1] ? flash[0] : "";
    row.attr("flash", flashClass, (value) => {
      row.el.classList.remove("rank-up", "rank-down");
      if (value) row.el.classList.add(value);
    });
    const behind = this.cutoffM != null && a.status === "running" && (a.distance_m ?? 0) < this.cutoffM;
    row.attr("behindCutoff", behind, (value) => {
      row.el.classList.toggle("behind-cutoff", value);
      row.cells.dist.title = value ? "Behind the cut-off ghost" : "";
    });
    row.attr("current", a.id === this.followed, (value) => {
      if (value) row.el.setAttribute("aria-current", "true");
      else row.el.removeAttribute("aria-current");
    });
    row.attr("tabindex", a.id === this.tabStop ? 0 : -1, (value) => {
      row.el.tabIndex = value;
    });
    row.set("rank", rank == null ? "" : String(rank));
    row.set("bib", String(a.bib));
    row.attr("title", a.name, (value) => {
      row.cells.name.title = value;
    });
    row.set("name", a.name, row.name);
    row.set("cat", a.category || "");
    row.set("dist", a.status === "not_started" ? "" : km(a.distance_m));
    const racing = a.status === "running" || a.status === "finished";
    row.set("pace", racing ? pace(a.pace_s_per_km) : "");
    row.set("gap", racing ? gap(a.gap_s) : "");
    this.fillFinish(row, a);
    const split = a.last_checkpoint;
    const splitText = split ? `${split.name} ${duration(split.split_s)}` : "";
    row.attr("splitTitle", splitText, (value) => {
      row.cells.split.title = value;
    });
    row.set("split", split ? split.name : "", row.splitName);
    row.set("splitTime", split ? duration(split.split_s) : "", row.splitTime);
    row.set("status", STATUS_LABELS[a.status] ?? a.status, row.badge);
    row.attr("badge", a.status, (value) => {
      row.badge.className = `badge ${value}`;
      row.el.dataset.status = value; // the narrow layouts show it without the badge
    });
    row.attr("colour", this.colours.of(a), (value) => {
      row.swatch.style.background = value;
    });
  }

  /** Finish time, or the predicted one (≈) with its 80 % band as a second, smaller line
   * (offsets from the prediction; the title says the band's race times). */
  fillFinish(row, a) {
    const p = finishPrediction(a);
    let text = "";
    let band = "";
    let title = "";
    if (a.status === "finished") text = clock(a.splits?.at(-1)?.split_s ?? a.elapsed_s);
    else if (p) {
      text = `≈${clock(p.at)}`;
      // The band as offsets from the prediction: it fits the narrow column.
      band = `−${duration(p.at - p.low)} +${duration(p.high - p.at)}`;
      title = `Predicted finish ${clock(p.at)}; 80 % between ${clock(p.low)} and ${clock(p.high)}`;
    }
    row.set("finish", text, row.finishTime);
    row.set("finishBand", band, row.finishBand);
    row.attr("finishTitle", title, (value) => {
      row.cells.finish.title = value;
    });
  }

  rankOf(a) {
    if (this.filter.category) return a.rank_category ?? null;
    if (this.filter.gender) return a.rank_gender ?? null;
    return a.rank ?? null;
  }

  /** Scrolls so that the athlete's row is in view (if the filter shows it): just in
   * view (keyboard moves), or in the middle (following someone). */
  scrollToAthlete(id, { center = false } = {}) {
    const index = this.position.get(id);
    if (index == null) return;
    const top = this.body.offsetTop + index * ROW_HEIGHT;
    const header = this.body.offsetTop;
    const view = this.scroll;
    if (center) view.scrollTop = top - header - (view.clientHeight - header - ROW_HEIGHT) / 2;
    else if (top - header < view.scrollTop) view.scrollTop = top - header;
    else if (top + ROW_HEIGHT > view.scrollTop + view.clientHeight) {
      view.scrollTop = top + ROW_HEIGHT - view.clientHeight;
    }
    this.windowDirty = true;
    this.render();
  }

  focusIndex(index) {
    const athlete = this.visible[Math.max(0, Math.min(this.visible.length - 1, index))];
    if (!athlete) return;
    this.tabStop = athlete.id;
    this.scrollToAthlete(athlete.id);
    this.windowDirty = true;
    this.render();
    this.rows.get(athlete.id)?.el.focus({ preventScroll: true });
  }

  keydown(event) {
    const el = event.target.closest?.(".board-row[data-id]");
    if (!el) return;
    const id = Number(el.dataset.id);
    const i = this.position.get(id) ?? 0;
    const move = {
      ArrowDown: i + 1,
      ArrowUp: i - 1,
      PageDown: i + PAGE_ROWS,
      PageUp: i - PAGE_ROWS,
      Home: 0,
      End: this.visible.length - 1,
    }[event.key];
    if (move !== undefined) {
      event.preventDefault();
      this.focusIndex(move);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.onSelect(id);
    } else if (event.key === "Escape") {
      this.onEscape();
    }
  }
}
