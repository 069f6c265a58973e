// Import a cluster: create it (POST /v3/clusters), then show the commands the API returned for
// its agent, with copy buttons; the home page turns the new card Active when the agent connects.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { actionForm, field } from "./widgets.js";

function copyable(label, text, testid) {
  const code = h("code", { "data-testid": testid }, text);
  const button = h("button", { type: "button", class: "secondary small", "aria-label": `Copy: ${label}` }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (e) {
      button.textContent = "Select and copy by hand";
    }
  });
  return h("div", { class: "copy" }, h("p", {}, label), h("pre", { tabindex: "0" }, code), button);
}

// What the API answered on create, shown as it is: the page never builds a command itself.
function commands(c, close) {
  const warnings = (c.warnings || []).map((w) => h("p", { class: "warning", role: "note", "data-testid": "import-warning" }, w));
  return [
    h("h2", { id: "import-title" }, `Import ${c.name}`),
    warnings,
    h("p", {}, "Run one of these against the cluster; this page shows it Active when its agent connects. The registration token is shown only now."),
    copyable("Inside the cluster, when this server's certificate is trusted:", c.importCommand, "import-command"),
    copyable("Inside the cluster, with this server's self-signed certificate (the agent still pins its CA):", c.insecureImportCommand, "insecure-import-command"),
    copyable("From your machine, with the kubeconfig you use for the cluster:", `${c.command} import --kubeconfig ~/.kube/config`, "agent-command"),
    h("button", { type: "button", class: "secondary", onclick: close }, "Done"),
  ];
}

// created() runs once the cluster exists, so the caller can show its card (Pending) at once.
export function importForm(ctx, close, created = () => {}) {
  const root = h("section", { class: "card import", "aria-labelledby": "import-title", "data-testid": "import" });
  const name = h("input", { required: true, pattern: "[a-z0-9][a-z0-9\\-]*", placeholder: "prod", autocomplete: "off" });
  replace(root, h("h2", { id: "import-title" }, "Import a cluster"),
    actionForm("Import a cluster", [field("Cluster name", name)], "Create", async () => {
      const c = await api("POST", "/v3/clusters", { name: name.value.trim() });
      replace(root, commands(c, close));
      created(c);
      ctx.toast(`Cluster ${c.name} created.`);
    }),
    h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"));
  setTimeout(() => name.focus(), 0);
  return root;
}
