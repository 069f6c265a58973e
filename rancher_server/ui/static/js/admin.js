// Administration: users (create, disable, reset password, delete), role templates (built-ins
// and custom ones), API tokens (list, revoke). Every change goes through the REST API, which
// writes it to the audit log; its refusals are shown in place.
import { api, list } from "./api.js";
import { h, replace } from "./dom.js";
import { ago, when } from "./format.js";
import { actionButton, actionForm, field, select } from "./widgets.js";

function page(main, title, intro) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  replace(main, h("div", { class: "page-head" }, h("h1", {}, title)), intro ? h("p", { class: "muted" }, intro) : null, body);
  return body;
}

function table(caption, cols, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap", tabindex: "0" }, h("table", {}, h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))), h("tbody", {}, rows)));
}

export function usersView(main, _params, ctx) {
  const body = page(main, "Users");
  const load = async () => {
    let users;
    try {
      users = await list("/v3/users");
    } catch (e) {
      replace(body, h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    const rows = users.map((u) => {
      const pw = h("input", { type: "password", autocomplete: "new-password", "aria-label": `New password for ${u.username}` });
      return h("tr", { dataset: { user: u.username } },
        h("th", { scope: "row" }, u.username), h("td", {}, u.name || ""),
        h("td", {}, u.enabled ? "enabled" : "disabled"), h("td", {}, u.admin ? "administrator" : "user"),
        h("td", { title: when(u.created) }, ago(u.created)),
        h("td", { class: "row-actions" },
          actionButton(u.enabled ? "Disable" : "Enable", async () => {
            await api("PUT", `/v3/users/${encodeURIComponent(u.id)}`, { enabled: !u.enabled });
            load();
          }, { "aria-label": `${u.enabled ? "Disable" : "Enable"} ${u.username}` }),
          h("span", { class: "reset" }, pw, actionButton("Set password", async () => {
            await api("POST", `/v3/users/${encodeURIComponent(u.id)}?action=setpassword`, { newPassword: pw.value });
            pw.value = "";
            ctx.toast(`Password of ${u.username} changed.`);
          }, { "aria-label": `Set password of ${u.username}` })),
          actionButton("Delete", async () => {
            await api("DELETE", `/v3/users/${encodeURIComponent(u.id)}`);
            load();
          }, { "aria-label": `Delete ${u.username}` })));
    });
    const username = h("input", { required: true, autocomplete: "off" });
    const name = h("input", {});
    const password = h("input", { type: "password", required: true, autocomplete: "new-password" });
    const admin = h("input", { type: "checkbox" });
    const create = actionForm("Create a user", [field("Username", username), field("Display name", name),
      field("Password", password), h("div", { class: "field check" }, admin, h("label", { for: (admin.id = "new-admin") }, "Administrator"))],
    "Create user", async () => {
      await api("POST", "/v3/users", { username: username.value.trim(), name: name.value, password: password.value, admin: admin.checked });
      ctx.toast(`User ${username.value} created.`);
      load();
    });
    replace(body, table("Users", ["Username", "Name", "State", "Role", "Created", "Actions"], rows, "No users."),
      h("h2", {}, "New user"), create);
  };
  load();
  return () => {};
}

const splitList = (s) => s.split(",").map((x) => x.trim()).filter((x) => x !== "" || s.trim() === "");

export function roleTemplatesView(main, _params, ctx) {
  const body = page(main, "Role templates", "Built-in templates are read-only; custom ones may be created and deleted.");
  const load = async () => {
    let templates;
    try {
      templates = await list("/v3/roletemplates");
    } catch (e) {
      replace(body, h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    const rows = templates.map((t) => h("tr", { dataset: { template: t.id } },
      h("th", { scope: "row" }, t.name, h("div", { class: "muted small" }, t.id)), h("td", {}, t.context),
      h("td", {}, [t.builtin ? "built-in" : "custom", t.locked ? "locked" : "", t.external ? "external" : ""].filter(Boolean).join(", ")),
      h("td", {}, t.description || ""),
      h("td", {}, h("details", {}, h("summary", {}, `${(t.rules || []).length} rules`),
        h("ul", { class: "rules" }, (t.rules || []).map((r) => h("li", {}, h("code", {}, JSON.stringify(r))))),
        (t.roleTemplateIds || []).length ? h("p", {}, `Inherits: ${t.roleTemplateIds.join(", ")}`) : null)),
      h("td", {}, t.builtin ? "" : actionButton("Delete", async () => {
        await api("DELETE", `/v3/roletemplates/${encodeURIComponent(t.id)}`);
        load();
      }, { "aria-label": `Delete ${t.name}` }))));
    const name = h("input", { required: true });
    const context = select([["cluster", "cluster"], ["project", "project"], ["global", "global"]], "project");
    const groups = h("input", { value: "", placeholder: "'' is the core group; e.g. apps" });
    const resources = h("input", { required: true, placeholder: "pods, configmaps" });
    const verbs = h("input", { required: true, placeholder: "get, list, watch" });
    const create = actionForm("Create a role template", [field("Name", name), field("Context", context),
      field("API groups (comma-separated)", groups), field("Resources", resources), field("Verbs", verbs)],
    "Create template", async () => {
      await api("POST", "/v3/roletemplates", {
        name: name.value.trim(), context: context.value,
        rules: [{ apiGroups: splitList(groups.value), resources: splitList(resources.value), verbs: splitList(verbs.value) }],
      });
      ctx.toast(`Role template ${name.value} created.`);
      load();
    });
    replace(body, table("Role templates", ["Template", "Context", "Kind", "Description", "Rules", ""], rows, "No role templates."),
      h("h2", {}, "New role template"), create);
  };
  load();
  return () => {};
}

export function tokensView(main, _params, ctx) {
  const body = page(main, "API tokens", "Revoking a token ends every session and kubeconfig that uses it.");
  const load = async () => {
    let tokens;
    try {
      tokens = await list(ctx.session.isAdmin ? "/v3/tokens?all=true" : "/v3/tokens");
    } catch (e) {
      replace(body, h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    const rows = tokens.map((t) => h("tr", { dataset: { token: t.id } },
      h("th", { scope: "row" }, t.id, t.current ? h("span", { class: "badge badge-active" }, "this session") : null),
      h("td", {}, t.userId), h("td", {}, t.kind), h("td", {}, t.description || ""),
      h("td", { title: when(t.created) }, ago(t.created)), h("td", {}, t.expiresAt ? when(t.expiresAt) : "never"),
      h("td", {}, t.lastUsedAt ? ago(t.lastUsedAt) : "—"),
      h("td", {}, actionButton("Revoke", async () => {
        await api("DELETE", `/v3/tokens/${encodeURIComponent(t.id)}`);
        load();
      }, { "aria-label": `Revoke ${t.id}` }))));
    replace(body, table("API tokens", ["Token", "User", "Kind", "Description", "Created", "Expires", "Last used", ""], rows, "No tokens."));
  };
  load();
  return () => {};
}
