// A cluster's projects and their namespaces: create a project, move namespaces in and out.
import { api, list } from "./api.js";
import { h, replace } from "./dom.js";
import { actionForm, field, select } from "./widgets.js";

export function projectsPanel(clusterId, ctx) {
  const enc = encodeURIComponent(clusterId);
  const root = h("div", { class: "projects" }, h("p", { class: "muted" }, "Loading projects…"));
  const load = async () => {
    let projects;
    let namespaces;
    try {
      [projects, namespaces] = await Promise.all([
        list(`/v3/projects?clusterId=${enc}`), list(`/v3/clusters/${enc}/namespaces`)]);
    } catch (e) {
      replace(root, h("p", { class: "error", role: "alert" }, `Could not read the projects: ${e.message}`));
      return;
    }
    const choices = [["", "No project"], ...projects.map((p) => [p.id, p.name])];
    const move = (ns) => {
      const s = select(choices, ns.projectId);
      s.setAttribute("aria-label", `Project of namespace ${ns.name}`);
      const error = h("span", { class: "error", role: "alert" });
      s.addEventListener("change", async () => {
        error.textContent = "";
        try {
          await api("PUT", `/v3/clusters/${enc}/namespaces/${encodeURIComponent(ns.name)}`, { projectId: s.value });
          ctx.toast(`Namespace ${ns.name} moved.`);
          load();
        } catch (e) {
          s.value = ns.projectId;
          error.textContent = e.message;
        }
      });
      return h("li", { dataset: { namespace: ns.name } }, h("span", { class: "ns" }, ns.name), s, error);
    };
    const group = (title, items, desc, projectId) => h("article", { class: "card project" },
      h("h3", {}, title), desc ? h("p", { class: "muted" }, desc) : null,
      projectId ? h("p", {}, h("a", { href: `#/clusters/${enc}/projects/${encodeURIComponent(projectId)}`, "data-testid": "workloads-link" },
        `Workloads of ${title}`)) : null,
      items.length ? h("ul", { class: "namespaces" }, items.map(move)) : h("p", { class: "muted" }, "No namespaces."));
    const name = h("input", { required: true, pattern: "[A-Za-z0-9][A-Za-z0-9 ._\\-]*" });
    const create = actionForm("Create a project", [field("New project name", name)], "Create project", async () => {
      await api("POST", "/v3/projects", { clusterId, name: name.value.trim() });
      ctx.toast(`Project ${name.value} created.`);
      load();
    });
    replace(root, create, h("div", { class: "grid" },
      projects.map((p) => group(p.name, namespaces.filter((n) => n.projectId === p.id), p.description, p.id)),
      group("Not in a project", namespaces.filter((n) => !n.projectId), "Without the project annotation (default counts as Default's, the platform's as System's).")));
  };
  load();
  return root;
}
