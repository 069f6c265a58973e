// Import a cluster: create it, then show the commands that bring its agent, with copy buttons.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { actionForm, field } from "./widgets.js";

function copyable(label, text) {
  const code = h("code", {}, text);
  const button = h("button", { type: "button", class: "secondary small", "aria-label": `Copy: ${label}` }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (e) {
      button.textContent = "Select and copy by hand";
    }
  });
  return h("div", { class: "copy" }, h("p", {}, label), h("pre", {}, code), button);
}

export function importForm(ctx, close) {
  const root = h("section", { class: "card import", "aria-labelledby": "import-title" });
  const name = h("input", { required: true, pattern: "[a-z0-9][a-z0-9-]*", placeholder: "prod" });
  replace(root, h("h2", { id: "import-title" }, "Import a cluster"),
    actionForm("Import a cluster", [field("Cluster name", name)], "Create", async () => {
      const c = await api("POST", "/v3/clusters", { name: name.value.trim() });
      replace(root, h("h2", { id: "import-title" }, `Import ${c.name}`),
        h("p", {}, "Run one of these against the cluster; this page shows it Active when its agent connects. The registration token is shown only now."),
        copyable("Inside the cluster, when this server's certificate is trusted:", c.importCommand),
        copyable("Inside the cluster, with this server's self-signed certificate:", `curl --insecure -sfL ${c.manifestUrl} | kubectl apply -f -`),
        copyable("From your machine, with the kubeconfig you use for the cluster:", `${c.command} import --kubeconfig ~/.kube/config`),
        h("button", { type: "button", class: "secondary", onclick: close }, "Done"));
      ctx.toast(`Cluster ${c.name} created.`);
    }),
    h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"));
  return root;
}
