// The spectator socket: snapshot, then numbered frames; reconnects on its own.
//
// - A lost connection is retried with exponential backoff and full jitter, forever
//   (a spectator keeps the page open for hours; it must never need a reload). The new
//   socket asks for what it missed (`?resume=N`, N = last frame applied); the server
//   answers with the missed frames, or a fresh snapshot when it no longer has them.
// - Frames are applied in order only. A frame number that skips ahead means frames
//   were lost: ask again with {"type": "resume", "seq": last}. Frames already seen
//   are dropped.
// - A ping every few seconds; a socket that stays silent past the deadline is closed
//   and reconnected (a half-open TCP connection never reports itself).
// - While the race runs, frames come at a steady pace. An open socket that answers pings
//   but brings no frame for several frame intervals (the broker behind the server is
//   down) is "stalled": the page must not claim to be live. The first frame ends it.

import { SNAPSHOT, SUBPROTOCOL, decodeSnapshot, decodeUpdate, messageHead, unpack } from "raceweb/wire-v2.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 10000;
const SILENCE_LIMIT_MS = 25000;
const RESUME_RETRY_MS = 2000;
const STALL_INTERVALS = 4; // frames missed in a row before the page says it is delayed
const STALL_MIN_MS = 3000; // never sooner (a frame every 250 ms would otherwise flicker)
const ASSUMED_INTERVAL_MS = 5000; // until two frames have shown the real interval
const STALL_CHECK_MS = 500;
const INTERVALS_KEPT = 9;
// Close codes after which trying again cannot help: unknown race, share link expired or
// revoked (races/wire.py).
const FINAL_CLOSE_CODES = new Set([4404, 4401, 4403]);

/** Delay before reconnect attempt n (1, 2, …): full jitter over an exponential cap. */
export function backoffDelay(attempt, random = Math.random) {
  const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** The ws:// or wss:// URL of a path on this page's host. */
export function socketUrl(path, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** A binary `raceweb.v2` message: a decoded snapshot, or an update left encoded until it is
 * applied (its numbers are differences to the frame before). */
function compactMessage(bytes) {
  const head = messageHead(bytes);
  if (head.kind === SNAPSHOT) return decodeSnapshot(bytes);
  return { type: "update", frame: head.frame, compact: bytes };
}

export class FrameSocket {
  /**
   * @param {string} url
   * @param {object} handlers
   * @param {(msg: object) => void} handlers.onSnapshot
   * @param {(msg: object) => void} handlers.onFrame numbered frames, in order, no repeats
   * @param {(msg: object) => void} [handlers.onOther] unnumbered messages other than pong
   * @param {(state: string, detail: object) => void} [handlers.onState]
   *   connecting | live | stalled | reconnecting | closed
   * @param {() => boolean} [handlers.expectFrames] whether frames should be flowing now
   *   (the race is running); without it the socket is never "stalled"
   * @param {() => Map<number, object>} [handlers.compact] ask for `raceweb.v2`; gives
   *   the athletes the page holds (a v2 update is decoded against them when applied)
   */
  constructor(url, {
    onSnapshot, onFrame, onOther = () => {}, onState = () => {}, compact = null, expectFrames = () => false,
  }) {
    this.url = url;
    this.compact = compact;
    this.onSnapshot = onSnapshot;
    this.onFrame = onFrame;
    this.onOther = onOther;
    this.onState = onState;
    this.expectFrames = expectFrames;
    this.lastFrame = null;
    this.lastFrameAt = 0; // performance.now() of the last snapshot or frame applied
    this.intervals = []; // ms between the last frames, for what "stalled" means
    this.attempt = 0;
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    this.resumeAskedFor = null;
    this.resumeAskedAt = 0;
    this.stopped = false;
    this.stats = { connects: 0, resumes: 0, gaps: 0, dropped: 0, snapshots: 0 };
    window.addEventListener("online", () => this.retryNow());
    this.stallTimer = null;
  }

  start() {
    this.stopped = false;
    clearInterval(this.stallTimer);
    this.stallTimer = setInterval(() => this.checkStall(), STALL_CHECK_MS);
    this.open();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    clearInterval(this.stallTimer);
    this.socket?.close(1000);
  }

  open() {
    clearTimeout(this.retryTimer);
    this.setState(this.stats.connects ? "reconnecting" : "connecting", { attempt: this.attempt });
    // Resuming in the URL spares the server a full snapshot when it still has the frames.
    const resume = this.lastFrame == null ? "" : `${this.url.includes("?") ? "&" : "?"}resume=${this.lastFrame}`;
    const socket = this.compact
      ? new WebSocket(this.url + resume, [SUBPROTOCOL])
      : new WebSocket(this.url + resume);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.addEventListener("open", () => this.opened(socket));
    socket.addEventListener("message", (event) => this.arrived(socket, event));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  opened(socket) {
    if (socket !== this.socket) return;
    this.stats.connects += 1;
    this.lastHeard = performance.now();
    this.resumeAskedFor = null;
    // A resumed socket may have nothing to say yet (no frame missed): it is live now, and
    // the wait for the next frame starts afresh.
    this.openedAt = this.lastHeard;
    if (this.lastFrame != null) this.markLive();
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.keepAlive(socket), PING_EVERY_MS);
  }

  /** raceweb.v2 messages are inflated asynchronously: every message waits its turn. */
  arrived(socket, event) {
    if (socket !== this.socket) return;
    const at = performance.now();
    this.lastHeard = at;
    this.attempt = 0; // the server talks: the next failure starts the backoff afresh
    if (typeof event.data === "string" && this.inbox === undefined) {
      this.received(socket, event.data, event.data, at);
      return;
    }
    const data = typeof event.data === "string" ? event.data : unpack(new Uint8Array(event.data));
    this.inbox = (this.inbox ?? Promise.resolve())
      .then(async () => this.received(socket, await data, event.data, at))
      .catch(() => {}); // a message that does not inflate is dropped like bad JSON
  }

  received(socket, data, raw, at) {
    if (socket !== this.socket) return;
    let msg;
    try {
      msg = typeof data === "string" ? JSON.parse(data) : compactMessage(data);
    } catch {
      return;
    }
    if (msg.type === "pong") return;
    if (msg.type === "snapshot") {
      this.lastFrame = msg.frame;
      this.resumeAskedFor = null;
      this.stats.snapshots += 1;
      msg.receivedAt = at;
      msg.bytes = raw.length ?? raw.byteLength;
      this.lastFrameAt = at;
      this.intervals = [];
      this.markLive();
      this.onSnapshot(msg);
      return;
    }
    if (typeof msg.frame !== "number") {
      this.onOther(msg);
      return;
    }
    if (this.lastFrame == null || msg.frame <= this.lastFrame) {
      this.stats.dropped += 1; // before the snapshot, or seen already
      return;
    }
    if (msg.frame > this.lastFrame + 1) {
      this.askAgain();
      return;
    }
    if (msg.compact) {
      try {
        msg = decodeUpdate(msg.compact, this.compact());
      } catch {
        this.askAgain(); // does not fit what the page holds: the server resends or snapshots
        return;
      }
    }
    this.lastFrame = msg.frame;
    this.resumeAskedFor = null;
    this.frameArrived(at);
    this.markLive();
    this.onFrame(msg);
  }

  askAgain() {
    const now = performance.now();
    if (this.resumeAskedFor === this.lastFrame && now - this.resumeAskedAt < RESUME_RETRY_MS) return;
    this.stats.gaps += 1;
    this.resumeAskedFor = this.lastFrame;
    this.resumeAskedAt = now;
    this.send({ type: "resume", seq: this.lastFrame });
  }

  markLive() {
    if (this.state !== "live") this.setState("live", {});
  }

  frameArrived(at) {
    if (this.lastFrameAt) this.intervals.push(at - this.lastFrameAt);
    if (this.intervals.length > INTERVALS_KEPT) this.intervals.shift();
    this.lastFrameAt = at;
  }

  /** How long without a frame means the frames stall: a few of the usual intervals (the
   * median of the last ones, so one late frame or a burst of resent ones does not skew it). */
  stallLimit() {
    const sorted = [...this.intervals].sort((a, b) => a - b);
    const usual = sorted.length >= 2 ? sorted[Math.floor(sorted.length / 2)] : ASSUMED_INTERVAL_MS;
    return Math.max(STALL_MIN_MS, STALL_INTERVALS * usual);
  }

  checkStall(now = performance.now()) {
    if (this.state !== "live" || !this.lastFrameAt || !this.expectFrames()) return;
    if (now - Math.max(this.lastFrameAt, this.openedAt ?? 0) > this.stallLimit()) {
      this.setState("stalled", { lastFrameAt: this.lastFrameAt });
    }
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    clearInterval(this.pingTimer);
    this.socket = null;
    if (this.stopped) return;
    if (FINAL_CLOSE_CODES.has(event.code)) {
      this.setState("closed", { code: event.code, reason: event.reason });
      return;
    }
    this.attempt += 1;
    const delay = backoffDelay(this.attempt);
    this.setState("reconnecting", { attempt: this.attempt, delay, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Try at once (the browser says the network is back). */
  retryNow() {
    if (this.stopped || this.socket) return;
    this.open();
  }

  keepAlive(socket) {
    if (performance.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      socket.close(4000, "silent");
      // Some browsers delay the close event of a dead socket for minutes: act now.
      this.closed(socket, { code: 4000 });
      return;
    }
    this.send({ type: "ping" });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) {
      if (message.type === "resume") this.stats.resumes += 1;
      this.socket.send(JSON.stringify(message));
    }
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }
}
