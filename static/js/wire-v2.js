// The compact spectator protocol `raceweb.v2` (races/wire_v2.py has the layout): binary
// snapshots and updates decoded into the v1 messages that state.js merges, so the page
// holds exactly what a v1 page holds. An update is decoded against the state at the frame
// before it (its numbers are differences), so decode it just before applying it. Messages
// come deflated: `unpack` (async) first, in arrival order.

export const SUBPROTOCOL = "raceweb.v2";
export const UPDATE = 1;
export const SNAPSHOT = 2;
const DEFLATED = 0x80; // flag on the kind byte: the rest after the frame number is raw deflate

// [field, scale] in wire order; scale 0 = ISO time in ms. Mirrors wire_v2.FIELDS.
const FIELDS = [
  ["lat", 1e6], ["lon", 1e6], ["ele", 10], ["distance_m", 10], ["speed_mps", 100],
  ["elapsed_s", 10], ["pace_s_per_km", 10], ["eta_s", 1], ["gap_s", 10], ["time", 0],
  ["rank", 1], ["rank_gender", 1], ["rank_category", 1], ["eta_low_s", 1], ["eta_high_s", 1],
];
// A v1 pair of numbers travels as two fields of the table. Mirrors wire_v2.PAIRS.
const PAIRS = [["eta_range_s", "eta_low_s", "eta_high_s"]];
const PAIR_FIELDS = new Set(PAIRS.flatMap(([, low, high]) => [low, high]));

/** The athlete with each pair of numbers as its two fields (as wire_v2.flatten). */
function flatten(athlete) {
  let out = athlete;
  for (const [key, low, high] of PAIRS) {
    const value = athlete[key];
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === "number")) {
      if (out === athlete) out = { ...athlete };
      delete out[key];
      out[low] = value[0];
      out[high] = value[1];
    }
  }
  return out;
}

/** Decoded fields with the pair fields back as their pair (as wire_v2.unflatten). */
function unflatten(partial, known) {
  for (const [key, low, high] of PAIRS) {
    if (low in partial || high in partial) {
      const base = (known && known[key]) || [null, null];
      partial[key] = [low in partial ? partial[low] : base[0], high in partial ? partial[high] : base[1]];
      delete partial[low];
      delete partial[high];
    }
  }
  return partial;
}
const text = new TextDecoder();

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }

  /** An unsigned LEB128 varint (arithmetic, not bit operations: times pass 2^31). */
  varint() {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.bytes.length) throw new Error("raceweb.v2: message ends inside a number");
      const byte = this.bytes[this.at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  }

  zigzag() {
    const value = this.varint();
    return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
  }

  json(end = this.bytes.length) {
    return end > this.at ? JSON.parse(text.decode(this.bytes.subarray(this.at, end))) : {};
  }
}

// Athletes of one tick share a time: each distinct one is parsed and written once.
const timeTexts = new Map();
const timeNumbers = new Map();
const TIME_CACHE = 4096;

function timeText(ms) {
  let iso = timeTexts.get(ms);
  if (iso === undefined) {
    iso = new Date(ms).toISOString();
    if (ms % 1000 === 0) iso = iso.replace(".000Z", "Z");
    if (timeTexts.size > TIME_CACHE) timeTexts.clear();
    timeTexts.set(ms, iso);
  }
  return iso;
}

function timeNumber(iso) {
  let ms = timeNumbers.get(iso);
  if (ms === undefined) {
    ms = Date.parse(iso);
    if (timeNumbers.size > TIME_CACHE) timeNumbers.clear();
    timeNumbers.set(iso, ms);
  }
  return ms;
}

/** A value as the integer on the wire, or null (what the encoder would have sent as JSON). */
function coded(scale, value) {
  if (scale === 0) {
    const ms = typeof value === "string" ? timeNumber(value) : NaN;
    return Number.isNaN(ms) ? null : ms;
  }
  return typeof value === "number" ? Math.round(value * scale) : null;
}

function valueOf(scale, number) {
  if (scale === 0) return timeText(number);
  return scale === 1 ? number : number / scale;
}

function clockOf(tag, extras) {
  if (tag === 0) return null;
  if (tag === 1) return extras.clock_s ?? null;
  const number = tag - 2;
  return (number % 2 === 0 ? number / 2 : -(number + 1) / 2) / 1000;
}

/** {kind, frame, deflated, at} from the head of a message (Uint8Array). */
export function messageHead(bytes) {
  const reader = new Reader(bytes);
  reader.at = 1; // the kind is one byte, its top bit the deflate flag
  const frame = reader.varint();
  return { kind: bytes[0] & ~DEFLATED, frame, deflated: (bytes[0] & DEFLATED) !== 0, at: reader.at };
}

/** The message with its body inflated (the browser's own DecompressionStream). */
export async function unpack(bytes) {
  const head = messageHead(bytes);
  if (!head.deflated) return bytes;
  const stream = new Blob([bytes.subarray(head.at)]).stream()
    .pipeThrough(new DecompressionStream("deflate-raw"));
  const body = new Uint8Array(await new Response(stream).arrayBuffer());
  const out = new Uint8Array(head.at + body.length);
  out.set(bytes.subarray(0, head.at));
  out[0] = head.kind;
  out.set(body, head.at);
  return out;
}

/**
 * The v1 `update` a v2 update stands for.
 * @param {Uint8Array} bytes
 * @param {Map<number, object>} athletes what the page holds at the frame before
 */
export function decodeUpdate(bytes, athletes) {
  const reader = new Reader(bytes);
  if (reader.varint() !== UPDATE) throw new Error("raceweb.v2: not an update");
  const frame = reader.varint();
  const clockTag = reader.varint();
  const partials = new Map();
  let id = 0;
  for (let n = reader.varint(); n > 0; n--) {
    id += reader.varint();
    const mask = reader.varint();
    const held = athletes.get(id);
    if (!held) throw new Error(`raceweb.v2: athlete ${id} is not in the previous frame`);
    const known = flatten(held);
    const partial = { id };
    for (let bit = 0; bit < FIELDS.length; bit++) {
      if (!(mask & (1 << bit))) continue;
      const [name, scale] = FIELDS[bit];
      const base = coded(scale, known[name]);
      if (base == null) throw new Error(`raceweb.v2: athlete ${id} has no ${name} to add to`);
      partial[name] = valueOf(scale, base + reader.zigzag());
    }
    partials.set(id, partial);
  }
  const extras = reader.json();
  for (const extra of extras.athletes ?? []) {
    partials.set(extra.id, Object.assign(partials.get(extra.id) ?? {}, extra));
  }
  for (const [id, partial] of partials) unflatten(partial, athletes.get(id));
  return { type: "update", frame, clock_s: clockOf(clockTag, extras), athletes: [...partials.values()] };
}

/** The v1 `snapshot` a v2 snapshot stands for. */
export function decodeSnapshot(bytes) {
  const reader = new Reader(bytes);
  if (reader.varint() !== SNAPSHOT) throw new Error("raceweb.v2: not a snapshot");
  const frame = reader.varint();
  reader.varint(); // the clock: the header's race object carries it
  const rows = [];
  const bases = FIELDS.map(() => 0);
  let id = 0;
  for (let n = reader.varint(); n > 0; n--) {
    id += reader.zigzag();
    const row = { id, gender: reader.varint(), category: reader.varint(), status: reader.varint() };
    const mask = reader.varint();
    row.values = {};
    for (let bit = 0; bit < FIELDS.length; bit++) {
      if (!(mask & (1 << bit))) continue;
      bases[bit] += reader.zigzag();
      row.values[FIELDS[bit][0]] = valueOf(FIELDS[bit][1], bases[bit]);
    }
    row.splits = [];
    let time = 0;
    for (let k = reader.varint(); k > 0; k--) {
      const checkpoint = reader.varint();
      time += reader.zigzag();
      row.splits.push([checkpoint, time]);
    }
    rows.push(row);
  }
  const length = reader.varint();
  const header = reader.json(reader.at + length);
  const others = new Map(header.others);
  const athletes = rows.map((row, index) => {
    const splits = row.splits.map(([c, time]) => ({
      name: header.checkpoints[c][0], distance_m: header.checkpoints[c][1], split_s: time / 10,
    }));
    const athlete = {
      id: row.id, bib: header.bibs[index], name: header.names[index],
      gender: header.genders[row.gender], category: header.categories[row.category],
      status: header.statuses[row.status],
      last_checkpoint: splits.length ? splits[splits.length - 1] : null, splits,
    };
    for (const [name] of FIELDS) {
      if (!PAIR_FIELDS.has(name)) athlete[name] = row.values[name] ?? null;
    }
    for (const [key, low, high] of PAIRS) {
      athlete[key] = low in row.values && high in row.values ? [row.values[low], row.values[high]] : null;
    }
    return Object.assign(athlete, others.get(index) ?? {});
  });
  return { type: "snapshot", frame, race: header.race, course: header.course, athletes };
}
