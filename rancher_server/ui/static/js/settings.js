// Global settings (administrators): the server's public URL (GET/PUT /v3/settings/server-url),
// and the audit log (GET /v3/auditlogs, newest first) where every change made anywhere shows.
import { api, get } from "./api.js";
import { h, replace } from "./dom.js";
import { ago, when } from "./format.js";
import { actionForm, field } from "./widgets.js";

const AUDIT_PAGE = 50; // entries per page of the audit log

function serverUrlCard(ctx, changed) {
  const root = h("section", { class: "card", "aria-labelledby": "server-url-title" }, h("p", { class: "muted" }, "Loading…"));
  const load = async () => {
    let s;
    try {
      s = await get("/v3/settings/server-url");
    } catch (e) {
      replace(root, h("p", { class: "error", role: "alert" }, e.message));
      return;
    }
    const input = h("input", { type: "url", required: true, value: s.value, autocomplete: "off", size: "40", "data-testid": "server-url" });
    replace(root,
      h("h2", { id: "server-url-title" }, "Server URL"),
      h("p", { class: "muted" }, "The address agents and users reach this server at: used in import commands, agent manifests and kubeconfigs. ",
        s.source === "setting" ? "Set here." : "From the server's --server-url (not set here yet)."),
      s.warning ? h("p", { class: "warning", role: "note", "data-testid": "server-url-warning" }, s.warning) : null,
      actionForm("Server URL", [field("Public URL (https://HOST[:PORT])", input)], "Save", async () => {
        await api("PUT", "/v3/settings/server-url", { value: input.value.trim() });
        ctx.toast("Server URL saved.");
        await load();
        changed();
      }));
  };
  load();
  return root;
}

function auditCard() {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const root = h("section", { class: "card", "aria-labelledby": "audit-title" },
    h("h2", { id: "audit-title" }, "Audit log"), h("p", { class: "muted" }, "Every login and change, newest first."), body);
  let pages = [null]; // the "before" cursor of each page shown
  const load = async () => {
    const before = pages[pages.length - 1];
    let entries;
    try {
      entries = (await get(`/v3/auditlogs?limit=${AUDIT_PAGE}${before ? `&before=${before}` : ""}`)).data || [];
    } catch (e) {
      replace(body, h("p", { class: "error", role: "alert" }, `Could not read the audit log: ${e.message}`));
      return;
    }
    const older = entries.length === AUDIT_PAGE ? h("button", { type: "button", class: "secondary small", onclick: () => { pages.push(entries[entries.length - 1].id); load(); } }, "Older entries") : null;
    const newer = pages.length > 1 ? h("button", { type: "button", class: "secondary small", onclick: () => { pages.pop(); load(); } }, "Newer entries") : null;
    replace(body, entries.length ? h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "audit" },
      h("caption", { class: "sr-only" }, "Audit log"),
      h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "Result", "From"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, entries.map((e) => h("tr", { dataset: { action: e.action } },
        h("td", { title: when(e.ts) }, ago(e.ts)), h("td", {}, e.userId || "—"), h("td", {}, e.action),
        h("td", { class: "ns" }, e.target), h("td", {}, e.result), h("td", {}, e.remote || "—"))))))
      : h("p", { class: "empty" }, "No entries."), h("div", { class: "row-actions" }, newer, older));
  };
  load();
  return { root, reload: () => { pages = [null]; load(); } };
}

export function settingsView(main, _params, ctx) {
  const audit = auditCard();
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Settings")), serverUrlCard(ctx, audit.reload), audit.root);
  return () => {};
}
