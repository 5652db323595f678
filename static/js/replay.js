// Replay on the race page: a time slider over the race, play/pause at 1x to 500x, jumps to
// a checkpoint passage or a finish, a link that carries its time (#t=SECONDS).
//
// It draws nothing itself: each instant is the leaderboard the history API replays from
// the stored positions (/api/races/<slug>/leaderboard?at=S), shaped as a `snapshot` and
// handed to the page's own snapshot path, so markers, board, profile and the followed
// athlete move exactly as they do live. While it plays, live frames are left aside; "Live"
// asks the socket for a fresh snapshot.

import { clock } from "raceweb/format.js";

export const SPEEDS = [1, 10, 50, 100, 500];

export class Replay {
  /**
   * @param {object} options
   * @param {string} options.slug
   * @param {HTMLElement} options.bar the replay bar (its controls are looked up inside)
   * @param {() => object} options.state the page's RaceState
   * @param {(msg: object) => void} options.show the page's snapshot handler
   * @param {() => void} options.backToLive asks the socket for a fresh snapshot
   * @param {() => number|null} options.followed the followed athlete's id
   */
  constructor({ slug, bar, state, show, backToLive, followed }) {
    Object.assign(this, { slug, bar, state, show, backToLive, followed });
    this.active = false;
    this.playing = false;
    this.speed = 100;
    this.t = 0; // race seconds shown (or asked for)
    this.end = 0;
    this.inFlight = false;
    this.wanted = null; // race seconds to fetch once the request in flight is answered
    this.lastTick = 0;
    this.fetched = 0; // how many instants were shown (tests read it)
    this.final = null;
    const $ = (name) => bar.querySelector(`[data-replay="${name}"]`);
    this.ui = {
      open: document.querySelector('[data-replay="open"]'),
      slider: $("slider"), play: $("play"), speed: $("speed"), jump: $("jump"),
      time: $("time"), live: $("live"), share: $("share"),
    };
    for (const speed of SPEEDS) this.ui.speed.add(new Option(`${speed}×`, String(speed), speed === 100, speed === 100));
    this.ui.open?.addEventListener("click", () => this.enter(null));
    this.ui.slider.addEventListener("input", () => { this.pause(); this.seek(Number(this.ui.slider.value)); });
    this.ui.play.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.ui.speed.addEventListener("change", () => { this.speed = Number(this.ui.speed.value); });
    this.ui.jump.addEventListener("focus", () => this.fillJumps());
    this.ui.jump.addEventListener("change", () => {
      if (this.ui.jump.value !== "") { this.pause(); this.seek(Number(this.ui.jump.value)); }
      this.ui.jump.value = "";
    });
    this.ui.live.addEventListener("click", () => this.leave());
    this.loop = this.loop.bind(this);
  }

  /** The race seconds a link asks for (#t=S), or null. */
  static linkedTime(hash = location.hash) {
    const t = Number(new URLSearchParams(hash.slice(1)).get("t"));
    return Number.isFinite(t) && t >= 0 && new URLSearchParams(hash.slice(1)).has("t") ? t : null;
  }

  /** The page's hash with the replay time (when replaying) and these other parts. */
  link(parts = {}) {
    const params = new URLSearchParams();
    if (this.active) params.set("t", String(Math.round(this.t)));
    for (const [key, value] of Object.entries(parts)) if (value != null) params.set(key, value);
    const text = params.toString();
    return location.pathname + location.search + (text ? `#${text}` : "");
  }

  /** Enters replay at race second `t` (null: the middle... of what has happened so far). */
  enter(t) {
    const state = this.state();
    // The live state as it was when replay began: its splits make the jump targets.
    if (!this.active) this.final = new Map([...state.athletes].map(([id, a]) => [id, { ...a }]));
    this.end = Math.max(this.end, state.race?.clock_s ?? 0, t ?? 0);
    this.active = true;
    this.bar.hidden = false;
    document.body.classList.add("replaying");
    if (this.ui.open) this.ui.open.hidden = true;
    this.ui.slider.max = String(Math.ceil(this.end));
    this.seek(t ?? this.end / 2);
  }

  leave() {
    this.pause();
    this.active = false;
    this.bar.hidden = true;
    document.body.classList.remove("replaying");
    if (this.ui.open) this.ui.open.hidden = false;
    history.replaceState(null, "", this.link({}));
    this.backToLive();
  }

  play() {
    if (this.t >= this.end) this.seek(0);
    this.playing = true;
    this.ui.play.textContent = "❚❚";
    this.ui.play.setAttribute("aria-label", "Pause");
    this.lastTick = performance.now();
    requestAnimationFrame(this.loop);
  }

  pause() {
    this.playing = false;
    this.ui.play.textContent = "▶";
    this.ui.play.setAttribute("aria-label", "Play");
  }

  loop(now) {
    if (!this.playing || !this.active) return;
    const step = ((now - this.lastTick) / 1000) * this.speed;
    this.lastTick = now;
    const t = Math.min(this.t + step, this.end);
    this.seek(t);
    if (t >= this.end) this.pause();
    else requestAnimationFrame(this.loop);
  }

  /** Shows race second `t`: asks the history API, one request at a time, newest wins. */
  seek(t) {
    this.t = Math.max(0, Math.min(t, this.end));
    this.ui.slider.value = String(Math.round(this.t));
    this.ui.time.textContent = clock(this.t);
    if (this.inFlight) {
      this.wanted = this.t;
      return;
    }
    this.fetchAt(this.t);
  }

  async fetchAt(t) {
    this.inFlight = true;
    try {
      const response = await fetch(`/api/races/${encodeURIComponent(this.slug)}/leaderboard?at=${t.toFixed(1)}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const board = await response.json();
      if (this.active) this.showBoard(board);
    } catch (error) {
      console.warn("replay: instant not loaded", error);
    } finally {
      this.inFlight = false;
      if (this.wanted != null && this.active) {
        const next = this.wanted;
        this.wanted = null;
        this.fetchAt(next);
      }
    }
  }

  showBoard(board) {
    const state = this.state();
    // status "replay": the page's clock then shows the instant instead of running on.
    const race = { ...board.race, status: "replay", clock_s: board.clock_s };
    this.show({ type: "snapshot", frame: state.frame, race, course: state.course, athletes: board.athletes });
    this.fetched += 1;
    const id = this.followed();
    const bib = id == null ? null : state.athletes.get(id)?.bib;
    history.replaceState(null, "", this.link({ bib }));
    this.ui.share.href = this.link({ bib });
  }

  /** Jump targets: the followed athlete's passages (or the leader's), and the first finish. */
  fillJumps() {
    const final = this.final ?? new Map();
    const athletes = [...final.values()];
    const id = this.followed();
    const who = (id != null && final.get(id)) || athletes.find((a) => a.rank === 1) || athletes[0];
    const options = [new Option("Jump to…", "")];
    for (const split of who?.splits ?? []) {
      options.push(new Option(`${split.name} · ${who.name} · ${clock(split.split_s)}`, String(split.split_s)));
    }
    const finishes = athletes.filter((a) => a.status === "finished" && a.splits?.length)
      .map((a) => a.splits[a.splits.length - 1].split_s).sort((a, b) => a - b);
    if (finishes.length) options.push(new Option(`First finish · ${clock(finishes[0])}`, String(finishes[0])));
    if (finishes.length > 1) options.push(new Option(`Last finish · ${clock(finishes[finishes.length - 1])}`, String(finishes[finishes.length - 1])));
    this.ui.jump.replaceChildren(...options);
  }
}
