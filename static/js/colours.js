// Athlete colours: by gender (default) or by category; the legend shows what is used.

export const GENDER_COLOURS = { female: "#d6336c", male: "#1c64f2", other: "#e08600" };
const GENDER_NAMES = { female: "Women", male: "Men", other: "Other" };
// Distinct, saturated, readable on the light map background (Tableau 10 family).
const CATEGORY_PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1",
  "#76b7b2", "#edc948", "#9c755f", "#ff6fa3", "#6b6ecf",
];
const UNKNOWN = "#64748b";

export class Colours {
  constructor() {
    this.mode = "gender";
    this.categories = [];
  }

  setCategories(categories) {
    this.categories = [...categories].sort(categoryOrder);
  }

  of(athlete) {
    if (this.mode === "category") {
      const i = this.categories.indexOf(athlete.category);
      return i < 0 ? UNKNOWN : CATEGORY_PALETTE[i % CATEGORY_PALETTE.length];
    }
    return GENDER_COLOURS[athlete.gender] ?? UNKNOWN;
  }

  /** [[label, colour], …] for the legend. */
  legend(present) {
    if (this.mode === "category") {
      return this.categories.map((c, i) => [c || "No category", CATEGORY_PALETTE[i % CATEGORY_PALETTE.length]]);
    }
    return Object.keys(GENDER_COLOURS)
      .filter((g) => present.has(g))
      .map((g) => [GENDER_NAMES[g], GENDER_COLOURS[g]]);
  }
}

/** W20, W30, …, M20, …: letters first, then the age as a number. */
export function categoryOrder(a, b) {
  const [, la = "", na = "0"] = /^(\D*)(\d*)/.exec(a) ?? [];
  const [, lb = "", nb = "0"] = /^(\D*)(\d*)/.exec(b) ?? [];
  return la.localeCompare(lb) || Number(na) - Number(nb) || a.localeCompare(b);
}
