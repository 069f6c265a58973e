// A cluster's members: cluster role template bindings and the bindings of its projects, with
// forms to add and remove them.
import { api, list } from "./api.js";
import { h, replace } from "./dom.js";
import { actionButton, actionForm, field, select, subjectOf } from "./widgets.js";

async function optional(path) {
  try {
    return await list(path);
  } catch (e) {
    return []; // not allowed to list them: the forms take ids instead
  }
}

export function membersPanel(clusterId, ctx) {
  const enc = encodeURIComponent(clusterId);
  const root = h("div", { class: "members" }, h("p", { class: "muted" }, "Loading members…"));
  const load = async () => {
    let crtbs;
    let prtbs;
    let projects;
    try {
      [crtbs, prtbs, projects] = await Promise.all([
        list(`/v3/clusterroletemplatebindings?clusterId=${enc}`),
        list("/v3/projectroletemplatebindings"),
        list(`/v3/projects?clusterId=${enc}`)]);
    } catch (e) {
      replace(root, h("p", { class: "error", role: "alert" }, `Could not read the members: ${e.message}`));
      return;
    }
    const [userList, templates] = await Promise.all([optional("/v3/users"), optional("/v3/roletemplates")]);
    const users = new Map(userList.map((u) => [u.id, u]));
    const projectNames = new Map(projects.map((p) => [p.id, p.name]));
    prtbs = prtbs.filter((b) => projectNames.has(b.projectId));
    const tpl = (context) => templates.filter((t) => t.context === context && !t.locked).map((t) => [t.id, `${t.name} (${t.id})`]);
    const userInput = () => (userList.length
      ? select(userList.map((u) => [u.id, u.username]))
      : h("input", { required: true, placeholder: "user id (u-xxxxx)" }));

    const clusterRows = crtbs.map((b) => h("tr", { dataset: { binding: b.id } },
      h("th", { scope: "row" }, subjectOf(b, users)), h("td", {}, b.roleTemplateId),
      h("td", { class: "small" }, (b.downstreamClusterRoles || []).join(", ")),
      h("td", {}, actionButton("Remove", async () => {
        await api("DELETE", `/v3/clusterroletemplatebindings/${encodeURIComponent(b.id)}`);
        load();
      }, { "aria-label": `Remove ${subjectOf(b, users)} as ${b.roleTemplateId}` }))));
    const projectRows = prtbs.map((b) => h("tr", { dataset: { binding: b.id } },
      h("th", { scope: "row" }, projectNames.get(b.projectId)), h("td", {}, subjectOf(b, users)), h("td", {}, b.roleTemplateId),
      h("td", {}, actionButton("Remove", async () => {
        await api("DELETE", `/v3/projectroletemplatebindings/${encodeURIComponent(b.id)}`);
        load();
      }, { "aria-label": `Remove ${subjectOf(b, users)} from ${projectNames.get(b.projectId)}` }))));

    const cu = userInput();
    const cr = select(tpl("cluster"), "cluster-member");
    const addCluster = actionForm("Add a cluster member", [field("User", cu), field("Cluster role", cr)], "Add member", async () => {
      await api("POST", "/v3/clusterroletemplatebindings", { clusterId, userId: cu.value.trim(), roleTemplateId: cr.value });
      load();
    });
    const pp = select(projects.map((p) => [p.id, p.name]));
    const pu = userInput();
    const pr = select(tpl("project"), "project-member");
    const addProject = actionForm("Add a project member", [field("Project", pp), field("User", pu), field("Project role", pr)], "Add to project", async () => {
      await api("POST", "/v3/projectroletemplatebindings", { projectId: pp.value, userId: pu.value.trim(), roleTemplateId: pr.value });
      load();
    });
    const table = (caption, cols, rows, empty) => (rows.length
      ? h("div", { class: "table-wrap", tabindex: "0" }, h("table", {}, h("caption", {}, caption),
        h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)))
      : h("p", { class: "empty" }, empty));
    replace(root,
      h("h3", {}, "Cluster members"),
      table("Cluster role template bindings", ["Member", "Role template", "Downstream roles", ""], clusterRows, "No cluster members."),
      addCluster,
      h("h3", {}, "Project members"),
      table("Project role template bindings", ["Project", "Member", "Role template", ""], projectRows, "No project members."),
      addProject);
  };
  load();
  return root;
}
