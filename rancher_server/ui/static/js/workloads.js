// A project's workloads: its namespaces (GET /v3/clusters/<id>/namespaces), and in each the
// Deployments and Pods with their status, read through the server's proxy as the logged-in user
// (so a project member sees exactly what Kubernetes RBAC lets them see); a pod's log streamed
// live (GET .../pods/<pod>/log?follow=true, read with fetch streaming).
import { get, kubeGet, kubeStream, list } from "./api.js";
import { h, replace } from "./dom.js";
import { ago } from "./format.js";

const REFRESH_MS = 3000; // workloads are re-read this often while the page is open
const LOG_TAIL_LINES = 200; // lines of history a log starts with
const LOG_KEEP_LINES = 2000; // lines kept in the page; older ones are dropped

function podStatus(p) {
  const st = p.status || {};
  const waiting = (st.containerStatuses || []).map((c) => c.state && c.state.waiting && c.state.waiting.reason).find(Boolean);
  if (p.metadata.deletionTimestamp) return "Terminating";
  return waiting || st.phase || "Pending";
}

function podReady(p) {
  const cs = (p.status && p.status.containerStatuses) || [];
  return `${cs.filter((c) => c.ready).length} / ${(p.spec.containers || []).length}`;
}

const restarts = (p) => ((p.status && p.status.containerStatuses) || []).reduce((n, c) => n + (c.restartCount || 0), 0);

function deploymentsTable(ns, items) {
  if (!items.length) return h("p", { class: "muted empty-line" }, `No Deployments in ${ns}.`);
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "deployments" },
    h("caption", {}, `Deployments in ${ns}`),
    h("thead", {}, h("tr", {}, ["Name", "Ready", "Up to date", "Available", "Images", "Age"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((d) => {
      const s = d.status || {};
      const want = d.spec.replicas ?? 1;
      const ok = (s.readyReplicas || 0) >= want;
      return h("tr", { dataset: { deployment: d.metadata.name } },
        h("th", { scope: "row" }, d.metadata.name),
        h("td", { class: ok ? "ok" : "bad", "data-testid": "deployment-ready" }, `${s.readyReplicas || 0} / ${want}`),
        h("td", {}, String(s.updatedReplicas || 0)),
        h("td", {}, String(s.availableReplicas || 0)),
        h("td", {}, h("ul", { class: "chips" }, d.spec.template.spec.containers.map((c) => h("li", { class: "chip" }, c.image)))),
        h("td", {}, ago(d.metadata.creationTimestamp)));
    }))));
}

function podsTable(ns, items, openLog) {
  if (!items.length) return h("p", { class: "muted empty-line" }, `No Pods in ${ns}.`);
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "pods" },
    h("caption", {}, `Pods in ${ns}`),
    h("thead", {}, h("tr", {}, ["Name", "Status", "Ready", "Restarts", "Node", "Age", "Log"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, items.map((p) => {
      const status = podStatus(p);
      return h("tr", { dataset: { pod: p.metadata.name } },
        h("th", { scope: "row" }, p.metadata.name),
        h("td", { class: status === "Running" ? "ok" : "bad", "data-testid": "pod-status" }, status),
        h("td", {}, podReady(p)),
        h("td", {}, String(restarts(p))),
        h("td", {}, p.spec.nodeName || "—"),
        h("td", {}, ago(p.metadata.creationTimestamp)),
        h("td", {}, h("button", { type: "button", class: "secondary small", "aria-label": `Log of pod ${p.metadata.name}`,
          onclick: () => openLog(ns, p) }, "Log")));
    }))));
}

// The log panel: one stream at a time; a new pod's log or leaving the page ends the last one.
function logPanel(clusterId) {
  const title = h("h2", { id: "log-title" }, "Pod log");
  const state = h("p", { class: "status", role: "status" });
  const out = h("pre", { class: "log", "data-testid": "pod-log", tabindex: "0", "aria-labelledby": "log-title" });
  const root = h("section", { class: "card log-card", "aria-labelledby": "log-title", hidden: true }, title, state, out);
  let abort = null;
  const stop = () => { if (abort) abort.abort(); abort = null; };
  const open = (ns, pod) => {
    stop();
    const controller = new AbortController();
    abort = controller;
    const container = pod.spec.containers[0].name;
    replace(title, `Log of ${pod.metadata.name} (${container}), live`);
    replace(out);
    root.hidden = false;
    state.textContent = "Following…";
    const path = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod.metadata.name)}/log`
      + `?follow=true&tailLines=${LOG_TAIL_LINES}&container=${encodeURIComponent(container)}`;
    kubeStream(clusterId, path, (line) => {
      out.append(h("span", { class: "log-line" }, line), "\n");
      while (out.childNodes.length > 2 * LOG_KEEP_LINES) { out.firstChild.remove(); out.firstChild.remove(); }
      out.scrollTop = out.scrollHeight;
    }, controller.signal).then(() => {
      if (abort === controller) state.textContent = "The log ended (the container stopped or the pod went away).";
    }, (e) => {
      if (e.name !== "AbortError") state.textContent = `Could not follow the log: ${e.message}`;
    });
    root.scrollIntoView({ block: "nearest" });
  };
  return { root, open, stop };
}

export function workloadsView(main, [clusterId, projectId], ctx) {
  const enc = encodeURIComponent(clusterId);
  const title = h("h1", {}, "Workloads");
  const error = h("p", { class: "error", role: "alert" });
  const body = h("div", { "data-testid": "workloads" }, h("p", { class: "muted" }, "Loading workloads…"));
  const log = logPanel(clusterId);
  replace(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Clusters"), " / ",
      h("a", { href: `#/clusters/${enc}/projects` }, clusterId), " / project"),
    h("div", { class: "page-head" }, title), error, body, log.root);
  let stopped = false;
  let timer = null;
  let namespaces = [];

  const load = async () => {
    try {
      const [project, all] = await Promise.all([
        get(`/v3/projects/${encodeURIComponent(projectId)}`), list(`/v3/clusters/${enc}/namespaces`)]);
      replace(title, `Workloads of ${project.name}`);
      namespaces = all.filter((n) => n.projectId === projectId).map((n) => n.name).sort();
    } catch (e) {
      error.textContent = `Could not read the project: ${e.message}`;
      return;
    }
    if (!namespaces.length) {
      replace(body, h("div", { class: "empty" }, h("p", {}, "This project has no namespaces yet."),
        h("p", {}, "A cluster owner can move a namespace into it on the cluster's Projects tab.")));
      return;
    }
    await refresh();
  };

  const refresh = async () => {
    const sections = await Promise.all(namespaces.map(async (ns) => {
      const base = `/namespaces/${encodeURIComponent(ns)}`;
      try {
        const [deps, pods] = await Promise.all([
          kubeGet(clusterId, `/apis/apps/v1${base}/deployments`), kubeGet(clusterId, `/api/v1${base}/pods`)]);
        const byName = (a, b) => a.metadata.name.localeCompare(b.metadata.name);
        return h("section", { class: "namespace-block", dataset: { namespace: ns }, "aria-label": `Namespace ${ns}` },
          h("h2", {}, "Namespace ", h("span", { class: "ns" }, ns)),
          deploymentsTable(ns, deps.items.sort(byName)), podsTable(ns, pods.items.sort(byName), log.open));
      } catch (e) {
        return h("section", { class: "namespace-block", dataset: { namespace: ns } },
          h("h2", {}, "Namespace ", h("span", { class: "ns" }, ns)),
          h("p", { class: "error", role: "alert" }, `Could not read the workloads of ${ns}: ${e.message}`));
      }
    }));
    if (stopped) return;
    error.textContent = "";
    replace(body, sections);
  };

  const tick = async () => {
    if (stopped) return;
    if (namespaces.length) await refresh();
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  };
  load().then(() => { if (!stopped) timer = setTimeout(tick, REFRESH_MS); });
  return () => {
    stopped = true;
    clearTimeout(timer);
    log.stop();
  };
}
