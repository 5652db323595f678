// Predicted passage times, read from what the relay's predictor sent (races/relay/prediction.py):
// `eta_s` and `eta_range_s` ([low, high], the 80 % band) are seconds to the finish, and each
// checkpoint of the snapshot's course carries `effort`, the share of the course's effort done
// there. The predictor's passage at a distance is `elapsed + share * remaining`, where share
// is the part of the remaining effort up to there, and the effort done so far is
// elapsed / (elapsed + eta) (pace so far times effort): so the page needs no profile, no
// model and no extra bytes to show a passage time at every checkpoint ahead.

/** {at, low, high} race-clock seconds of the finish, or null when there is no prediction. */
export function finishPrediction(a) {
  return passagePrediction(a, 1);
}

/**
 * {at, low, high} race-clock seconds at the point where `effort` (0..1) of the course's
 * effort is done, or null (not running, no prediction yet, or already past it).
 */
export function passagePrediction(a, effort) {
  if (a.status !== "running" || a.eta_s == null || a.elapsed_s == null || effort == null) return null;
  const total = a.elapsed_s + a.eta_s;
  if (!(total > 0)) return null;
  const done = a.elapsed_s / total;
  if (effort <= done) return null;
  const share = done >= 1 ? 1 : Math.min(1, (effort - done) / (1 - done));
  const [low, high] = a.eta_range_s ?? [a.eta_s, a.eta_s];
  return {
    at: a.elapsed_s + share * a.eta_s,
    low: a.elapsed_s + share * low,
    high: a.elapsed_s + share * high,
  };
}
