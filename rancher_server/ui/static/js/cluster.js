// One cluster: nodes, events (live, filterable), health, projects and namespaces, members, the
// kubeconfig download and the authorized endpoint switch. Live from /v3/clusters/<id>/feed.
import { api, get, list } from "./api.js";
import { badge, bar, h, replace } from "./dom.js";
import { ago, bytes, cpu, quantity, when } from "./format.js";
import { debounce, follow } from "./live.js";
import { stateLine, versionOf } from "./home.js";
import { membersPanel } from "./members.js";
import { projectsPanel } from "./projects.js";

const TABS = [["nodes", "Nodes"], ["events", "Events"], ["health", "Health"], ["projects", "Projects"], ["members", "Members"]];
const EVENTS_PAGE = 100;
const EVENTS_KEPT = 500;
const REFRESH_MS = 250;
const NORMAL_WHEN_FALSE = new Set(["MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"]);

function conditionProblems(node) {
  return (node.conditions || []).filter((c) =>
    c.type === "Ready" ? c.status !== "True" : NORMAL_WHEN_FALSE.has(c.type) && c.status !== "False");
}

function roles(node) {
  return Object.keys(node.labels || {}).filter((l) => l.startsWith("node-role.kubernetes.io/"))
    .map((l) => l.split("/")[1]).join(", ") || "worker";
}

function nodeRow(n) {
  const s = n.stats || {};
  const problems = conditionProblems(n);
  const cap = n.capacity || {};
  return h("tr", { dataset: { node: n.name } },
    h("th", { scope: "row" }, n.name, h("div", { class: "muted small" }, roles(n))),
    h("td", {}, h("span", { class: `badge badge-${n.ready ? "active" : "unavailable"}`, "data-testid": "node-status" }, n.ready ? "Ready" : "NotReady"),
      n.unschedulable ? h("span", { class: "badge badge-pending" }, "cordoned") : null),
    h("td", { class: "conditions" }, problems.length
      ? h("ul", {}, problems.map((c) => h("li", { title: c.message || "" }, h("strong", {}, c.type), `: ${c.status}`, c.reason ? ` (${c.reason})` : "",
        c.lastTransitionTime ? h("span", { class: "muted" }, ` ${ago(c.lastTransitionTime)}`) : null)))
      : h("span", { class: "muted" }, "no problems")),
    h("td", { class: "small" }, `${cpu(quantity(cap.cpu))} CPU`, h("br"), bytes(quantity(cap.memory)), h("br"), `${cap.pods || 0} pods`),
    h("td", { class: "bars" },
      bar("CPU", s.cpu_requested || 0, s.cpu_used ?? null, s.cpu_allocatable || quantity((n.allocatable || {}).cpu), cpu),
      bar("Memory", s.memory_requested_bytes || 0, s.memory_used_bytes ?? null, s.memory_allocatable_bytes || quantity((n.allocatable || {}).memory), bytes),
      bar("Pods", s.pods || 0, null, s.pods_allocatable || quantity((n.allocatable || {}).pods), (v) => `${Math.round(v)}`)),
    h("td", {}, (n.taints || []).length
      ? h("ul", { class: "chips" }, n.taints.map((t) => h("li", { class: "chip" }, `${t.key}${t.value ? `=${t.value}` : ""}:${t.effect}`)))
      : h("span", { class: "muted" }, "none")),
    h("td", { class: "small" }, n.kubeletVersion || ""));
}

function nodesPanel(nodes) {
  const all = [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (!all.length) return h("p", { class: "empty" }, "No nodes reported yet: the cluster's agent sends them when it connects.");
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "nodes-table" },
    h("caption", { class: "sr-only" }, "Nodes"),
    h("thead", {}, h("tr", {}, ["Node", "Status", "Conditions", "Capacity", "Requested / used", "Taints", "Kubelet"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, all.map(nodeRow))));
}

function eventMatches(e, f) {
  const obj = e.involvedObject || {};
  if (f.type && e.eventType !== f.type) return false;
  if (f.namespace && e.namespace !== f.namespace) return false;
  if (f.kind && obj.kind !== f.kind) return false;
  if (f.name && obj.name !== f.name) return false;
  if (f.text && !`${e.reason} ${e.message}`.toLowerCase().includes(f.text.toLowerCase())) return false;
  return true;
}

function healthPanel(c) {
  const hl = c.health;
  const rows = hl ? [
    ["API server", hl.healthy ? "healthy" : `unhealthy${hl.detail ? `: ${hl.detail}` : ""}`],
    ["Failing checks", (hl.failingChecks || []).join(", ") || "none"],
    ["Agent version", hl.agentVersion || "—"],
    ["Tunnel round trip", hl.tunnelRttMs != null ? `${hl.tunnelRttMs.toFixed(1)} ms` : "—"],
    ["Last heartbeat", hl.heartbeatAt ? `${ago(hl.heartbeatAt)} (${when(hl.heartbeatAt)})` : "—"],
  ] : [["Health", "no report yet from the cluster's agent"]];
  return h("div", { class: "health" },
    h("dl", { class: "facts wide", "data-testid": "health" }, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))),
    h("h3", {}, "Conditions"),
    h("div", { class: "table-wrap", tabindex: "0" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Condition", "Status", "Reason", "Since"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, (c.conditions || []).map((x) => h("tr", {},
        h("th", { scope: "row" }, x.type), h("td", {}, x.status), h("td", {}, [x.reason, x.message].filter(Boolean).join(": ") || "—"),
        h("td", { title: when(x.lastTransitionTime) }, ago(x.lastTransitionTime))))))));
}

async function downloadKubeconfig(c, status) {
  status.textContent = "";
  try {
    const out = await api("POST", `/v3/clusters/${encodeURIComponent(c.id)}?action=generateKubeconfig`);
    const url = URL.createObjectURL(new Blob([out.config], { type: "application/yaml" }));
    const a = h("a", { href: url, download: `${c.name}.yaml` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    status.textContent = `Kubeconfig downloaded (a new API token, ${out.tokenId}).`;
  } catch (e) {
    status.textContent = `Kubeconfig: ${e.message}`;
  }
}

function endpointSwitch(c, ace, status, reload) {
  const box = h("input", { type: "checkbox", id: "ace-enabled", checked: !!ace.enabled, "data-testid": "ace-switch" });
  const fqdn = h("input", { id: "ace-fqdn", value: ace.fqdn || "", placeholder: "optional FQDN", size: 24 });
  const save = async () => {
    box.disabled = true;
    try {
      await api("PUT", `/v3/clusters/${encodeURIComponent(c.id)}/authorizedendpoint`, { enabled: box.checked, fqdn: fqdn.value });
      status.textContent = `Authorized endpoint ${box.checked ? "enabled" : "disabled"}.`;
      reload();
    } catch (e) {
      box.checked = !box.checked;
      status.textContent = `Authorized endpoint: ${e.message}`;
    } finally {
      box.disabled = false;
    }
  };
  box.addEventListener("change", save);
  return h("div", { class: "switch" }, box, h("label", { for: "ace-enabled" }, "Authorized cluster endpoint"),
    h("label", { for: "ace-fqdn", class: "sr-only" }, "Authorized endpoint FQDN"), fqdn);
}

export function clusterView(main, [id, initialTab], ctx) {
  const enc = encodeURIComponent(id);
  let tab = TABS.some(([t]) => t === initialTab) ? initialTab : "nodes";
  let cluster = null;
  let ace = { enabled: false };
  const nodes = new Map();
  let events = [];
  const filter = { type: "", namespace: "", kind: "", name: "", text: "" };
  const head = h("div", { class: "cluster-head" });
  const actions = h("div", { class: "actions" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": "Cluster sections" });
  const panel = h("section", { class: "panel", role: "tabpanel", id: "cluster-panel", tabindex: "0" });
  let panelState = {};
  replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Clusters"), " / ", id), head, actions, status, error, tabList, panel);

  const renderHead = () => {
    if (!cluster) return;
    replace(head,
      h("div", { class: "page-head" }, h("h1", {}, cluster.name), badge(cluster.state)),
      stateLine(cluster),
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, "Kubernetes"), h("dd", {}, cluster.version || "—")),
        h("div", {}, h("dt", {}, "Nodes ready"), h("dd", { "data-testid": "nodes-ready" }, `${cluster.nodesReady ?? 0} / ${cluster.nodeCount ?? 0}`)),
        h("div", {}, h("dt", {}, "Your role"), h("dd", {}, cluster.myRole || "—"))),
      cluster.allocatable ? h("div", { class: "bars wide" },
        bar("CPU", cluster.requested.cpu, cluster.used ? cluster.used.cpu : null, cluster.allocatable.cpu, cpu),
        bar("Memory", cluster.requested.memory, cluster.used ? cluster.used.memory : null, cluster.allocatable.memory, bytes)) : null);
    replace(actions,
      h("button", { type: "button", "data-testid": "kubeconfig", onclick: () => downloadKubeconfig(cluster, status) }, "Download kubeconfig"),
      endpointSwitch(cluster, ace, status, loadAce));
  };

  const renderTabs = () => replace(tabList, TABS.map(([t, label]) => h("button", {
    type: "button", role: "tab", id: `tab-${t}`, "aria-selected": t === tab ? "true" : "false",
    "aria-controls": "cluster-panel", tabindex: t === tab ? "0" : "-1",
    onclick: () => select(t),
    onkeydown: (ev) => {
      const i = TABS.findIndex(([x]) => x === tab);
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        const next = TABS[(i + (ev.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length][0];
        select(next);
        document.getElementById(`tab-${next}`).focus();
      }
    },
  }, label)));

  const eventsFilters = () => {
    const field = (key, label, input) => {
      input.id = `ev-${key}`;
      input.value = filter[key];
      input.addEventListener("change", () => { filter[key] = input.value.trim(); loadEvents(); });
      return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
    };
    const type = h("select", {}, h("option", { value: "" }, "All"), h("option", { value: "Warning" }, "Warning"), h("option", { value: "Normal" }, "Normal"));
    return h("form", { class: "filters", "aria-label": "Filter events", onsubmit: (ev) => ev.preventDefault() },
      field("type", "Type", type), field("namespace", "Namespace", h("input", {})),
      field("kind", "Object kind", h("input", {})), field("name", "Object name", h("input", {})),
      field("text", "Reason or message contains", h("input", { type: "search" })));
  };

  const eventsTable = () => {
    const shown = events.filter((e) => eventMatches(e, filter));
    if (!shown.length) return h("p", { class: "empty", "data-testid": "events-empty" }, "No events match.");
    return h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "events-table" },
      h("thead", {}, h("tr", {}, ["Last seen", "Type", "Reason", "Object", "Message", "Count"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, shown.map((e) => h("tr", { class: e.eventType === "Warning" ? "warning" : "" },
        h("td", { title: when(e.lastSeen) }, ago(e.lastSeen)), h("td", {}, e.eventType), h("td", {}, e.reason),
        h("td", {}, `${(e.involvedObject || {}).kind || ""}/${(e.involvedObject || {}).name || ""}`, e.namespace ? h("div", { class: "muted small" }, e.namespace) : null),
        h("td", {}, e.message), h("td", {}, e.count))))));
  };

  const renderPanel = () => {
    panel.setAttribute("aria-labelledby", `tab-${tab}`);
    if (tab === "nodes") replace(panel, nodesPanel(nodes));
    else if (tab === "events") {
      if (!panelState.events) panelState.events = { filters: eventsFilters(), table: h("div") };
      replace(panelState.events.table, eventsTable());
      if (!panel.contains(panelState.events.filters)) replace(panel, panelState.events.filters, panelState.events.table);
    } else if (tab === "health") replace(panel, cluster ? healthPanel(cluster) : "");
    else if (tab === "projects") replace(panel, projectsPanel(id, ctx));
    else if (tab === "members") replace(panel, membersPanel(id, ctx));
  };
  const renderLive = () => { if (tab === "nodes" || tab === "events" || tab === "health") renderPanel(); };

  const select = (t) => {
    tab = t;
    panelState = {};
    history.replaceState(null, "", `#/clusters/${enc}/${t}`);
    renderTabs();
    renderPanel();
  };

  const loadCluster = async () => {
    try {
      const c = await get(`/v3/clusters/${enc}`);
      c.version = versionOf(c);
      cluster = c;
      error.textContent = "";
      renderHead();
      if (tab === "health") renderPanel();
    } catch (e) {
      error.textContent = `Could not read the cluster: ${e.message}`;
    }
  };
  async function loadAce() {
    try {
      ace = await get(`/v3/clusters/${enc}/authorizedendpoint`);
      renderHead();
    } catch (e) { /* shown as off */ }
  }
  async function loadEvents() {
    const q = new URLSearchParams({ limit: String(EVENTS_PAGE) });
    if (filter.type) q.set("type", filter.type);
    if (filter.namespace) q.set("namespace", filter.namespace);
    if (filter.kind) q.set("involvedObject.kind", filter.kind);
    if (filter.name) q.set("involvedObject.name", filter.name);
    try {
      events = await list(`/v3/clusters/${enc}/events?${q}`);
      renderLive();
    } catch (e) {
      error.textContent = `Could not read the events: ${e.message}`;
    }
  }
  const laterCluster = debounce(loadCluster, REFRESH_MS);
  const laterRender = debounce(renderLive, 50);

  renderTabs();
  loadCluster().then(loadAce);
  loadEvents();
  const stop = follow(`/v3/clusters/${enc}/feed`, {
    snapshot: (snap) => {
      nodes.clear();
      for (const n of snap.nodes) nodes.set(n.name, n);
      if (cluster) Object.assign(cluster, snap.status);
      renderHead();
      renderLive();
    },
    change: (item) => {
      if (item.kind === "node") {
        if (item.data) nodes.set(item.key, item.data); else nodes.delete(item.key);
        laterRender();
      } else if (item.kind === "nodeStats") {
        const n = nodes.get(item.key);
        if (n && item.data) { n.stats = item.data; laterRender(); }
      } else if (item.kind === "event") {
        events = events.filter((e) => e.id !== item.key);
        if (item.data) events = [item.data, ...events].slice(0, EVENTS_KEPT);
        if (tab === "events") laterRender();
      } else if (item.kind === "state" && cluster && item.data) {
        Object.assign(cluster, item.data);
        renderHead();
      }
      if (item.kind === "stats" || item.kind === "health" || item.kind === "node") laterCluster();
    },
  });
  renderPanel();
  return stop;
}
