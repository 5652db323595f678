// How numbers read on the page: race times, gaps, paces, distances.

const pad = (n) => String(n).padStart(2, "0");

/** Race-clock seconds as H:MM:SS (hours keep counting past 24). */
export function clock(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "--:--:--";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** A duration as M:SS, or H:MM:SS from an hour on. */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** The gap to the leader: "+1:05"; the leader shows "–". */
export function gap(seconds) {
  if (seconds == null || !Number.isFinite(seconds) || seconds <= 0) return "–";
  return `+${duration(seconds)}`;
}

/** Pace in seconds per km as M:SS. */
export function pace(secondsPerKm) {
  if (secondsPerKm == null || !Number.isFinite(secondsPerKm) || secondsPerKm <= 0) return "–";
  return duration(secondsPerKm);
}

/** Metres as kilometres: 5230.5 -> "5.23". */
export function km(metres, digits = 2) {
  if (metres == null || !Number.isFinite(metres)) return "–";
  return (metres / 1000).toFixed(digits);
}

export const STATUS_LABELS = {
  not_started: "Not started",
  running: "Running",
  finished: "Finished",
  dnf: "DNF",
  dns: "DNS",
};

export const RACE_STATUS_LABELS = {
  draft: "Draft",
  scheduled: "Scheduled",
  running: "Live",
  finished: "Finished",
  stopped: "Stopped",
  replay: "Replay",
};

/** Lower case, accents removed: "Müller" and "muller" find each other. */
export function searchable(text) {
  return String(text ?? "")
    .normalize("NFD")
    .replace(/\p{M}/gu, "")
    .toLowerCase();
}
