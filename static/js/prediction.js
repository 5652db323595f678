// Predicted passage times, read from what the relay's predictor sent (races/relay/prediction.py):
// `eta_s` and `eta_range_s` ([low, high], the 80 % band) are seconds to the finish, each
// checkpoint of the snapshot's course carries `effort` (the share of the course's effort
// done there) and the course `stop_s` (the stop the predictor expects at each checkpoint).
// The predictor's model is elapsed = K * f + stop * passed and eta = K * (1 - f) + stop *
// ahead (K: the athlete's time for the whole course's effort, f: the share done), so the
// page recovers K and f from eta_s and computes the passage at every checkpoint ahead as
// the relay's `prediction.passages` does: no profile, no model, no extra bytes.

/** {at, low, high} race-clock seconds of the finish, or null when there is no prediction. */
export function finishPrediction(a) {
  if (a.status !== "running" || a.eta_s == null || a.elapsed_s == null) return null;
  const [low, high] = a.eta_range_s ?? [a.eta_s, a.eta_s];
  return { at: a.elapsed_s + a.eta_s, low: a.elapsed_s + low, high: a.elapsed_s + high };
}

/**
 * {at, low, high} race-clock seconds at checkpoint `target` ({distance_m, effort}) of
 * `course` (the snapshot's), or null (not running, no prediction yet, or already past it).
 */
export function passagePrediction(a, target, course) {
  const finish = finishPrediction(a);
  if (!finish || target?.effort == null || target.distance_m <= (a.distance_m ?? 0)) return null;
  const stop = course?.stop_s ?? 0;
  const stops = (course?.checkpoints ?? []).filter((cp) => cp.kind === "checkpoint");
  const passed = stops.filter((cp) => cp.distance_m <= a.distance_m + 0.5).length;
  const ahead = stops.length - passed;
  let moving = a.elapsed_s - stop * passed;
  if (moving <= 0.5 * a.elapsed_s) moving = a.elapsed_s; // as prediction.pace_factor
  const whole = moving + a.eta_s - stop * ahead; // K, the whole course's effort
  if (!(whole > 0) || !(a.eta_s > 0)) return null;
  const done = moving / whole;
  const between = stops.filter((cp) => cp.distance_m > a.distance_m + 0.5 && cp.distance_m < target.distance_m).length;
  const part = whole * Math.max(0, target.effort - done) + stop * between;
  const share = Math.min(1, part / a.eta_s);
  return {
    at: a.elapsed_s + share * a.eta_s,
    low: a.elapsed_s + share * (finish.low - a.elapsed_s),
    high: a.elapsed_s + share * (finish.high - a.elapsed_s),
  };
}
