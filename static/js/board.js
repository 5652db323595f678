// The leaderboard: one keyed row per athlete, created once and updated in place.
// A frame only rewrites the cells whose text changed and moves only the rows whose
// place changed, so a 1,000-athlete board stays cheap at several frames a second.

import { gap, km, pace, duration, searchable, STATUS_LABELS } from "raceweb/format.js";

const COLUMNS = ["rank", "bib", "name", "cat", "dist", "pace", "gap", "split", "status"];
const RANK_FLASH_MS = 4000;
const PAGE_ROWS = 10;
const STATUS_ORDER = { finished: 0, running: 0, not_started: 1, dnf: 2 };

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
  constructor(athlete, onClick) {
    this.id = athlete.id;
    this.athlete = athlete;
    this.el = document.createElement("tr");
    this.el.tabIndex = -1;
    this.el.dataset.id = athlete.id;
    this.cells = {};
    this.text = {};
    for (const column of COLUMNS) {
      const td = document.createElement("td");
      td.className = `c-${column}`;
      this.el.append(td);
      this.cells[column] = td;
    }
    this.swatch = document.createElement("span");
    this.swatch.className = "swatch";
    this.name = document.createTextNode("");
    this.cells.name.append(this.swatch, this.name);
    this.badge = document.createElement("span");
    this.badge.className = "badge";
    this.cells.status.append(this.badge);
    this.el.addEventListener("click", () => onClick(this.id));
    this.shownRank = null;
    this.flashUntil = 0;
    this.visible = true;
    this.searchText = "";
  }

  /** Writes a cell only when its text changes. */
  set(column, text, node = this.cells[column]) {
    if (this.text[column] === text) return;
    this.text[column] = text;
    node.textContent = text;
  }
}

export class Board {
  constructor({ body, scroll, empty, search, gender, category, colours, onSelect, onEscape }) {
    this.body = body;
    this.scroll = scroll;
    this.empty = empty;
    this.searchInput = search;
    this.genderSelect = gender;
    this.categorySelect = category;
    this.colours = colours;
    this.onSelect = onSelect;
    this.onEscape = onEscape;
    /** @type {Map<number, Row>} */
    this.rows = new Map();
    this.order = [];
    this.dirty = new Set();
    this.orderDirty = false;
    this.filterDirty = false;
    this.followed = null;
    this.filter = { query: "", gender: "", category: "" };
    search.addEventListener("input", () => this.setFilter({ query: search.value }));
    gender.addEventListener("change", () => this.setFilter({ gender: gender.value }));
    category.addEventListener("change", () => this.setFilter({ category: category.value }));
    body.addEventListener("keydown", (event) => this.keydown(event));
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "Enter") {
        event.preventDefault();
        this.focusRow(this.visibleRows()[0]);
      }
    });
  }

  /** A fresh start (snapshot): rows for every athlete, reusing those that exist. */
  reset(athletes) {
    const keep = new Set(athletes.map((a) => a.id));
    for (const [id, row] of this.rows) {
      if (!keep.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    this.update(athletes);
    this.filterDirty = true;
  }

  /** Athletes whose data changed; drawn at the next render. */
  update(athletes) {
    for (const athlete of athletes) {
      let row = this.rows.get(athlete.id);
      if (!row) {
        row = new Row(athlete, (id) => this.onSelect(id));
        this.rows.set(athlete.id, row);
        this.filterDirty = true;
      }
      row.athlete = athlete;
      this.dirty.add(row);
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
    for (const row of this.rows.values()) this.dirty.add(row);
    this.render();
  }

  setFollowed(id, { scroll = false } = {}) {
    const previous = this.rows.get(this.followed);
    previous?.el.removeAttribute("aria-current");
    this.followed = id;
    const row = this.rows.get(id);
    if (!row) return;
    row.el.setAttribute("aria-current", "true");
    if (scroll) row.el.scrollIntoView({ block: "nearest" });
  }

  /** Applies everything pending: cell texts, order, filter. Call once per animation frame. */
  render(now = performance.now()) {
    if (!this.dirty.size && !this.orderDirty && !this.filterDirty) return;
    const focused = document.activeElement?.closest?.("tr[data-id]");
    if (this.filterDirty) this.applyFilter();
    for (const row of this.dirty) this.fill(row, now);
    this.dirty.clear();
    if (this.orderDirty) this.reorder();
    this.orderDirty = false;
    this.filterDirty = false;
    // Moving a focused row out of the DOM and back in loses its focus: give it back.
    if (focused && document.activeElement !== focused && this.body.contains(focused)) {
      focused.focus({ preventScroll: true });
    }
    this.ensureTabStop();
  }

  fill(row, now) {
    const a = row.athlete;
    const rank = this.rankOf(a);
    if (rank != null && row.shownRank != null && rank !== row.shownRank && !this.filterDirty) {
      row.el.classList.toggle("rank-up", rank < row.shownRank);
      row.el.classList.toggle("rank-down", rank > row.shownRank);
      row.flashUntil = now + RANK_FLASH_MS;
    } else if (row.flashUntil && now > row.flashUntil) {
      row.el.classList.remove("rank-up", "rank-down");
      row.flashUntil = 0;
    }
    row.shownRank = rank;
    row.set("rank", rank == null ? "" : String(rank));
    row.set("bib", String(a.bib));
    if (row.text.name !== a.name) row.cells.name.title = a.name;
    row.set("name", a.name, row.name);
    row.set("cat", a.category || "");
    row.set("dist", a.status === "not_started" ? "" : km(a.distance_m));
    row.set("pace", a.status === "running" || a.status === "finished" ? pace(a.pace_s_per_km) : "");
    row.set("gap", a.status === "running" || a.status === "finished" ? gap(a.gap_s) : "");
    const split = a.last_checkpoint;
    const splitText = split ? `${split.name} ${duration(split.split_s)}` : "";
    if (row.text.split !== splitText) row.cells.split.title = splitText;
    row.set("split", splitText);
    row.set("status", STATUS_LABELS[a.status] ?? a.status, row.badge);
    if (row.badgeClass !== a.status) {
      row.badge.className = `badge ${a.status}`;
      row.badgeClass = a.status;
    }
    const colour = this.colours.of(a);
    if (row.colour !== colour) {
      row.swatch.style.background = colour;
      row.colour = colour;
    }
  }

  rankOf(a) {
    if (this.filter.category) return a.rank_category ?? null;
    if (this.filter.gender) return a.rank_gender ?? null;
    return a.rank ?? null;
  }

  recolour() {
    for (const row of this.rows.values()) this.dirty.add(row);
    this.render();
  }

  applyFilter() {
    const query = searchable(this.filter.query.trim());
    let shown = 0;
    for (const row of this.rows.values()) {
      const a = row.athlete;
      const visible = (!this.filter.gender || a.gender === this.filter.gender)
        && (!this.filter.category || a.category === this.filter.category)
        && (!query || String(a.bib).toLowerCase() === query || String(a.bib).toLowerCase().startsWith(query)
          || searchable(a.name).includes(query));
      if (row.visible !== visible) {
        row.el.hidden = !visible;
        row.visible = visible;
      }
      if (visible) shown += 1;
    }
    this.empty.hidden = shown > 0;
  }

  reorder() {
    const rows = [...this.rows.values()].sort((x, y) => boardOrder(x.athlete, y.athlete));
    let cursor = this.body.firstChild;
    for (const row of rows) {
      if (row.el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        this.body.insertBefore(row.el, cursor);
      }
    }
    this.order = rows;
  }

  visibleRows() {
    return this.order.filter((row) => row.visible);
  }

  ensureTabStop() {
    const current = this.body.querySelector('tr[tabindex="0"]');
    if (current && !current.hidden) return;
    current?.setAttribute("tabindex", "-1");
    const first = this.visibleRows()[0];
    if (first) first.el.tabIndex = 0;
  }

  focusRow(row) {
    if (!row) return;
    for (const el of this.body.querySelectorAll('tr[tabindex="0"]')) el.tabIndex = -1;
    row.el.tabIndex = 0;
    row.el.focus();
    row.el.scrollIntoView({ block: "nearest" });
  }

  keydown(event) {
    const el = event.target.closest("tr[data-id]");
    if (!el) return;
    const rows = this.visibleRows();
    const i = rows.findIndex((row) => row.el === el);
    const move = {
      ArrowDown: i + 1,
      ArrowUp: i - 1,
      PageDown: i + PAGE_ROWS,
      PageUp: i - PAGE_ROWS,
      Home: 0,
      End: rows.length - 1,
    }[event.key];
    if (move !== undefined) {
      event.preventDefault();
      this.focusRow(rows[Math.max(0, Math.min(rows.length - 1, move))]);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.onSelect(Number(el.dataset.id));
    } else if (event.key === "Escape") {
      this.onEscape();
    }
  }
}
