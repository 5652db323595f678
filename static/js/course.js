// The course geometry: points with cumulative distance, and lookups by distance.

const EARTH_RADIUS_M = 6378137; // as gpxpy, which measured the course on the server

function haversine(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The line strings of any GeoJSON object (FeatureCollection, Feature or geometry). */
function lineStrings(geojson) {
  if (!geojson) return [];
  switch (geojson.type) {
    case "FeatureCollection":
      return geojson.features.flatMap(lineStrings);
    case "Feature":
      return lineStrings(geojson.geometry);
    case "LineString":
      return [geojson.coordinates];
    case "MultiLineString":
      return geojson.coordinates;
    default:
      return [];
  }
}

/** Per-point distances published with the line, when the server sends them. */
function publishedDistances(geojson, count) {
  const feature = geojson?.type === "FeatureCollection"
    ? geojson.features.find((f) => f.geometry?.type?.endsWith("LineString"))
    : geojson;
  const distances = feature?.properties?.distances_m ?? feature?.properties?.distances;
  return Array.isArray(distances) && distances.length === count ? distances : null;
}

export class Course {
  /**
   * @param {object} geojson the course line; segments are joined, and the gaps between them
   *   add no distance (as on the server).
   * @param {number} lengthM the course length the server measured; computed distances are
   *   scaled to it so that an athlete's distance_m lands on the right spot.
   */
  constructor(geojson, lengthM) {
    const segments = lineStrings(geojson).filter((s) => s.length);
    const n = segments.reduce((sum, s) => sum + s.length, 0);
    this.lat = new Float64Array(n);
    this.lon = new Float64Array(n);
    this.ele = new Float64Array(n);
    this.dist = new Float64Array(n);
    this.segments = segments.map((s) => s.map(([lon, lat]) => [lat, lon]));
    let i = 0;
    let hasElevation = false;
    for (const segment of segments) {
      segment.forEach(([lon, lat, ele], j) => {
        this.lat[i] = lat;
        this.lon[i] = lon;
        this.ele[i] = Number.isFinite(ele) ? ele : NaN;
        hasElevation ||= Number.isFinite(ele);
        if (i > 0) {
          const step = j === 0 ? 0 : haversine(this.lat[i - 1], this.lon[i - 1], lat, lon);
          this.dist[i] = this.dist[i - 1] + step;
        }
        i += 1;
      });
    }
    const published = publishedDistances(geojson, n);
    if (published) this.dist.set(published);
    else if (lengthM && n > 1 && this.dist[n - 1] > 0) {
      const scale = lengthM / this.dist[n - 1];
      for (let k = 0; k < n; k += 1) this.dist[k] *= scale;
    }
    this.hasElevation = hasElevation;
    this.fillElevationGaps();
    this.length = n ? this.dist[n - 1] : 0;
    this.minEle = Infinity;
    this.maxEle = -Infinity;
    for (const e of this.ele) {
      if (e < this.minEle) this.minEle = e;
      if (e > this.maxEle) this.maxEle = e;
    }
    if (!hasElevation) this.minEle = this.maxEle = 0;
  }

  get size() {
    return this.dist.length;
  }

  /** Points without elevation take their neighbours' (or 0 when the course has none). */
  fillElevationGaps() {
    let last = NaN;
    for (let k = 0; k < this.ele.length; k += 1) {
      if (Number.isNaN(this.ele[k])) this.ele[k] = last;
      else last = this.ele[k];
    }
    last = NaN;
    for (let k = this.ele.length - 1; k >= 0; k -= 1) {
      if (Number.isNaN(this.ele[k])) this.ele[k] = Number.isNaN(last) ? 0 : last;
      else last = this.ele[k];
    }
  }

  /** Index i with dist[i] <= d < dist[i+1] (binary search). */
  indexAt(d) {
    let lo = 0;
    let hi = this.dist.length - 1;
    if (hi <= 0 || d <= 0) return 0;
    if (d >= this.dist[hi]) return hi;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.dist[mid] <= d) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** {lat, lon, ele} at a distance along the course. */
  at(d) {
    const i = this.indexAt(d);
    const j = Math.min(i + 1, this.dist.length - 1);
    const span = this.dist[j] - this.dist[i];
    const t = span > 0 ? Math.min(1, Math.max(0, (d - this.dist[i]) / span)) : 0;
    return {
      lat: this.lat[i] + (this.lat[j] - this.lat[i]) * t,
      lon: this.lon[i] + (this.lon[j] - this.lon[i]) * t,
      ele: this.ele[i] + (this.ele[j] - this.ele[i]) * t,
    };
  }

  elevationAt(d) {
    return this.at(d).ele;
  }
}
