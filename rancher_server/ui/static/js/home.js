// Home: every cluster at a glance (GET /v3/clustersummary, versions from GET /v3/clusters),
// kept live from the feed of all clusters (GET /v3/feed).
import { get, list } from "./api.js";
import { badge, bar, h, replace } from "./dom.js";
import { ago, bytes, cpu, when } from "./format.js";
import { debounce, follow } from "./live.js";
import { importForm } from "./import.js";

const REFRESH_MS = 250; // a burst of changes becomes one re-read of the summary
const WARNINGS_SHOWN = 3;
const WARNING_FETCH_MAX_CLUSTERS = 50;

export function versionOf(cluster) {
  const nodes = (cluster.agentReport && cluster.agentReport.nodes) || [];
  const found = [...new Set(nodes.map((n) => n.kubeletVersion).filter(Boolean))].sort();
  return found.join(", ");
}

export function stateLine(c) {
  if (c.state === "active") return null;
  const since = c.stateSince ? ` since ${ago(c.stateSince)}` : "";
  const reason = c.transitioningMessage || (c.state === "pending" ? "waiting for its agent to connect" : "");
  return h("p", { class: `reason reason-${c.state}`, title: when(c.stateSince), "data-testid": "reason" },
    `${reason}${since}`);
}

function card(c, version, warnings) {
  const warn = warnings || [];
  return h("article", { class: `card cluster state-${c.state}`, dataset: { clusterId: c.id }, "aria-labelledby": `name-${c.id}` },
    h("div", { class: "card-head" },
      h("h2", { id: `name-${c.id}` }, h("a", { href: `#/clusters/${encodeURIComponent(c.id)}` }, c.name)),
      badge(c.state)),
    stateLine(c),
    h("dl", { class: "facts" },
      h("div", {}, h("dt", {}, "Kubernetes"), h("dd", {}, version || "—")),
      h("div", {}, h("dt", {}, "Nodes ready"), h("dd", { "data-testid": "nodes" }, `${c.nodesReady} / ${c.nodeCount}`))),
    bar("CPU", c.requested.cpu, c.used ? c.used.cpu : null, c.allocatable.cpu, cpu),
    bar("Memory", c.requested.memory, c.used ? c.used.memory : null, c.allocatable.memory, bytes),
    h("div", { class: "warnings" },
      h("h3", {}, `Warning events: ${c.warningEvents || 0}`),
      warn.length ? h("ul", {}, warn.slice(0, WARNINGS_SHOWN).map((e) =>
        h("li", {}, h("strong", {}, e.reason), " ", e.message, " ", h("span", { class: "muted" }, ago(e.lastSeen)))))
        : null));
}

export function homeView(main, _params, ctx) {
  const clusters = new Map();
  const versions = new Map();
  const warnings = new Map();
  let totals = null;
  const grid = h("div", { class: "grid", "data-testid": "clusters" });
  const head = h("p", { class: "totals" });
  const error = h("p", { class: "error", role: "alert" });
  const importBox = h("div");
  replace(main,
    h("div", { class: "page-head" }, h("h1", {}, "Clusters"), head,
      h("button", { type: "button", "data-testid": "import-open", onclick: () => replace(importBox, importForm(ctx, () => replace(importBox), () => later())) }, "Import a cluster")),
    importBox, error, grid);

  const render = () => {
    const all = [...clusters.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (totals) {
      replace(head, `${totals.clusters} clusters · ${totals.active} active · ${totals.unavailable} unavailable · `
        + `${totals.pending} pending · nodes ${totals.nodesReady} / ${totals.nodes} ready`);
    }
    if (!all.length) {
      replace(grid, h("div", { class: "empty" }, h("p", {}, "No clusters yet."),
        h("p", {}, "Import one with the button above, or ask an administrator for access to one.")));
      return;
    }
    replace(grid, all.map((c) => card(c, versions.get(c.id), warnings.get(c.id))));
  };

  const loadWarnings = async (ids) => {
    await Promise.all(ids.slice(0, WARNING_FETCH_MAX_CLUSTERS).map(async (id) => {
      try {
        warnings.set(id, (await get(`/v3/clusters/${encodeURIComponent(id)}/events?type=Warning&limit=${WARNINGS_SHOWN}`)).data);
      } catch (e) { /* a cluster that went away meanwhile */ }
    }));
  };
  const loadVersions = async () => {
    // The summary carries the versions; the full cluster list only for an older server.
    if ([...clusters.values()].every((c) => Array.isArray(c.kubernetesVersions))) {
      for (const c of clusters.values()) versions.set(c.id, c.kubernetesVersions.join(", "));
      return;
    }
    for (const c of await list("/v3/clusters")) versions.set(c.id, versionOf(c));
  };
  const refresh = async () => {
    try {
      const summary = await get("/v3/clustersummary");
      totals = summary.totals;
      clusters.clear();
      for (const c of summary.data) clusters.set(c.id, c);
      error.textContent = "";
      render();
    } catch (e) {
      error.textContent = `Could not read the clusters: ${e.message}`;
    }
  };
  const later = debounce(refresh, REFRESH_MS);
  const laterVersions = debounce(async () => { await loadVersions(); render(); }, REFRESH_MS * 4);

  (async () => {
    await refresh();
    try {
      await loadVersions();
      await loadWarnings([...clusters.values()].filter((c) => c.warningEvents).map((c) => c.id));
    } catch (e) {
      error.textContent = e.message;
    }
    render();
  })();

  const stop = follow("/v3/feed", {
    snapshot: () => later(),
    change: (item) => {
      const c = clusters.get(item.cluster);
      if (item.kind === "state" && c && item.data) {
        Object.assign(c, item.data);
        render();
      }
      if (item.kind === "event" && item.data && item.data.eventType === "Warning") {
        warnings.set(item.cluster, [item.data, ...(warnings.get(item.cluster) || [])].slice(0, WARNINGS_SHOWN));
      }
      if (item.kind === "node") laterVersions();
      later();
    },
  });
  return stop;
}
