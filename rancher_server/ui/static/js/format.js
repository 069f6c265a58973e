// Figures as people read them.

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

export function cpu(cores) {
  if (!cores) return "0";
  return cores < 1 ? `${Math.round(cores * 1000)}m` : `${+cores.toFixed(2)}`;
}

export function bytes(n) {
  if (!n) return "0";
  return n >= GIB ? `${+(n / GIB).toFixed(1)} GiB` : `${Math.round(n / MIB)} MiB`;
}

// Kubernetes quantities ("16288892Ki", "500m", "4") to numbers.
const SUFFIX = { Ki: 1024, Mi: MIB, Gi: GIB, Ti: 1024 * GIB, k: 1e3, M: 1e6, G: 1e9, m: 1e-3 };
export function quantity(q) {
  if (q === undefined || q === null) return 0;
  const m = /^([0-9.]+)([A-Za-z]*)$/.exec(String(q));
  if (!m) return 0;
  return parseFloat(m[1]) * (SUFFIX[m[2]] || 1);
}

export function toDate(t) {
  if (t === null || t === undefined || t === "") return null;
  return typeof t === "number" ? new Date(t * 1000) : new Date(t);
}

export function ago(t) {
  const d = toDate(t);
  if (!d || isNaN(d)) return "";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function when(t) {
  const d = toDate(t);
  return d && !isNaN(d) ? d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "";
}
