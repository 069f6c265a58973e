// Authentication (administrators): the auth providers (OpenLDAP, Active Directory, GitHub, OpenID
// Connect), each enabled or disabled on its own, configured through /v3/authconfigs/<provider>
// (GET, PUT), with the API's connection test and group refresh. The form's fields are the ones
// the API's GET answer carries; secrets are write-only: never pre-filled, "set" when the API says
// one is stored, and an empty input keeps the stored one. Every change is audited by the API.
import { api, get } from "./api.js";
import { badge, h, replace } from "./dom.js";
import { ago, when } from "./format.js";
import { actionButton, actionForm, field, select } from "./widgets.js";

const PROVIDERS = [["openldap", "OpenLDAP"], ["activedirectory", "Active Directory"], ["github", "GitHub"], ["oidc", "OpenID Connect"]];
const DIRECTORY = new Set(["openldap", "activedirectory"]); // their test can also log a user in
// What the GET answer says about itself, not settings: never sent back.
const READ_ONLY = new Set(["type", "id", "enabled", "lastRefresh", "passwordSet", "secretSet", "effectivePort", "redirectUrl", "callbackPath", "apiUrl", "links", "actions"]);
// Write-only secrets and the field of the GET answer that says whether one is stored.
const SECRETS = { serviceAccountPassword: "passwordSet", clientSecret: "secretSet" };
const LABELS = {
  servers: "Servers (host names or addresses, comma-separated)", port: "Port (0: the TLS mode's default)", tls: "TLS",
  certificate: "CA certificate (PEM; empty: the system's)", serviceAccountDistinguishedName: "Service account DN",
  serviceAccountPassword: "Service account password", userSearchBase: "User search base", userSearchFilter: "User search filter",
  userLoginAttribute: "Login attribute", userNameAttribute: "Display name attribute", userObjectClass: "User object class",
  userMemberAttribute: "User's group attribute", groupSearchBase: "Group search base (empty: the user search base)",
  groupSearchFilter: "Group search filter", groupObjectClass: "Group object class", groupNameAttribute: "Group name attribute",
  groupMemberMappingAttribute: "Group member attribute", groupMemberUserAttribute: "User's value in the member attribute",
  nestedGroupMembershipEnabled: "Nested groups", tokenGroupsEnabled: "Groups from tokenGroups (Active Directory)",
  allowedPrincipalIds: "Allowed users and groups (principal ids, one a line; empty: everyone)", refreshIntervalS: "Group refresh interval (s)",
  clientId: "Client ID", clientSecret: "Client secret", hostname: "Host (github.com or a GitHub Enterprise host)", tlsEnabled: "HTTPS",
  apiPath: "API path (GitHub Enterprise)", issuer: "Issuer URL", scopes: "Scopes", groupsClaim: "Groups claim", nameClaim: "Name claim",
};
const GROUPS = [
  ["Connection", ["servers", "port", "tls", "certificate", "hostname", "tlsEnabled", "apiPath", "issuer"]],
  ["Credentials", ["serviceAccountDistinguishedName", "serviceAccountPassword", "clientId", "clientSecret", "scopes"]],
  ["Users", ["userSearchBase", "userSearchFilter", "userLoginAttribute", "userNameAttribute", "userObjectClass", "userMemberAttribute", "nameClaim"]],
  ["Groups", ["groupSearchBase", "groupSearchFilter", "groupObjectClass", "groupNameAttribute", "groupMemberMappingAttribute",
    "groupMemberUserAttribute", "nestedGroupMembershipEnabled", "tokenGroupsEnabled", "groupsClaim", "refreshIntervalS"]],
  ["Access", ["allowedPrincipalIds"]],
];
const TLS_MODES = [["ldaps", "LDAPS"], ["starttls", "StartTLS"], ["none", "None (passwords travel in clear)"]];
const nameOf = (id) => (PROVIDERS.find(([p]) => p === id) || [id, id])[1];
const pathOf = (id) => `/v3/authconfigs/${encodeURIComponent(id)}`;
const labelOf = (key) => LABELS[key] || key;

// One setting as a labelled control, and how to read it back for the API (undefined: not sent).
function control(key, value, cfg) {
  if (key in SECRETS) {
    const stored = cfg[SECRETS[key]] === true;
    const input = h("input", { type: "password", autocomplete: "new-password", value: "", "data-secret": key });
    const note = h("span", { class: "muted small", id: `${key}-state`, "data-testid": `${key}-state` }, stored ? "set" : "not set");
    input.setAttribute("aria-describedby", note.id);
    const wrap = field(labelOf(key), input);
    wrap.append(h("span", { class: "muted small" }, "Stored: ", note, stored ? " (leave empty to keep it)" : ""));
    return { el: wrap, read: () => input.value || undefined };
  }
  if (typeof value === "boolean") {
    const input = h("input", { type: "checkbox", checked: value, id: `cfg-${key}` });
    return { el: h("div", { class: "field check" }, input, h("label", { for: input.id }, labelOf(key))), read: () => input.checked };
  }
  if (typeof value === "number") {
    const input = h("input", { type: "number", value, min: "0", step: "1", inputmode: "numeric" });
    return { el: field(labelOf(key), input), read: () => (input.value.trim() === "" ? undefined : Number(input.value)) };
  }
  if (Array.isArray(value)) {
    if (key === "servers") {
      const input = h("input", { value: value.join(", "), autocomplete: "off" });
      return { el: field(labelOf(key), input), read: () => input.value.split(/[\s,]+/).filter(Boolean) };
    }
    const area = h("textarea", { rows: "3", autocomplete: "off", spellcheck: "false" }, value.join("\n"));
    return { el: field(labelOf(key), area), read: () => area.value.split("\n").map((s) => s.trim()).filter(Boolean), wide: true };
  }
  if (key === "tls" && TLS_MODES.some(([m]) => m === value)) {
    const input = select(TLS_MODES, value);
    return { el: field(labelOf(key), input), read: () => input.value };
  }
  if (key === "certificate") {
    const area = h("textarea", { rows: "4", class: "mono", autocomplete: "off", spellcheck: "false" }, value || "");
    return { el: field(labelOf(key), area), read: () => area.value, wide: true };
  }
  const input = h("input", { value: value ?? "", autocomplete: "off", spellcheck: "false" });
  return { el: field(labelOf(key), input), read: () => input.value };
}

// The settings of one provider, grouped; read() is the body for PUT and testConnection.
function settingsControls(cfg) {
  const keys = Object.keys(cfg).filter((k) => !READ_ONLY.has(k) && (cfg[k] === null || typeof cfg[k] !== "object" || Array.isArray(cfg[k])));
  const controls = new Map(keys.map((k) => [k, control(k, cfg[k], cfg)]));
  const grouped = new Set(GROUPS.flatMap(([, ks]) => ks));
  const sets = [...GROUPS, ["Other", keys.filter((k) => !grouped.has(k))]].map(([legend, ks]) => {
    const here = ks.filter((k) => controls.has(k));
    if (!here.length) return null;
    return h("fieldset", { class: "settings-group" }, h("legend", {}, legend),
      here.map((k) => { const c = controls.get(k); if (c.wide) c.el.classList.add("wide"); return c.el; }));
  });
  const read = () => {
    const body = {};
    for (const [k, c] of controls) {
      const v = c.read();
      if (v !== undefined) body[k] = v;
    }
    return body;
  };
  // What the form changed (Save sends only that, so the audit log names what an admin changed).
  const shown = JSON.stringify(read());
  const changed = () => {
    const before = JSON.parse(shown);
    return Object.fromEntries(Object.entries(read()).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(before[k])));
  };
  return { sets, read, changed };
}

function stepsList(result) {
  return h("ol", { class: "steps" }, (result.steps || []).map((s) => h("li", { class: s.ok ? "step-ok" : "step-bad", dataset: { stage: s.stage } },
    h("span", { class: "step-mark", "aria-hidden": "true" }, s.ok ? "✓" : "✗"),
    h("strong", {}, s.stage), h("span", { class: "sr-only" }, s.ok ? " succeeded" : " failed"), `: ${s.message}`)));
}

function testResult(result) {
  return [result.ok
    ? h("p", { class: "status", "data-testid": "test-summary" }, "Every step succeeded.")
    : h("p", { class: "error", "data-testid": "test-summary" }, `Failed at ${result.stage}: ${result.message}`), stepsList(result)];
}

function refreshFacts(r) {
  const fact = (k, v) => h("div", {}, h("dt", {}, k), h("dd", {}, v));
  return h("dl", { class: "facts" }, fact("Users", String(r.users)), fact("Changed", String(r.changed ?? 0)),
    fact("Disabled", String(r.disabled ?? 0)), fact("Took", `${r.durationS} s`),
    r.startedAt ? h("div", { title: when(r.startedAt) }, h("dt", {}, "When"), h("dd", {}, ago(r.startedAt))) : null,
    r.error ? fact("Failed", `${r.stage}: ${r.error}`) : null);
}

function providerCard(id, cfg, ctx, reload) {
  const name = nameOf(id);
  const { sets, read, changed } = settingsControls(cfg);
  const save = actionForm(`${name} settings`, sets, "Save", async () => {
    await api("PUT", pathOf(id), changed());
    ctx.toast(`${name} settings saved.`);
    reload();
  });
  save.classList.add("settings-form");
  const toggle = actionButton(cfg.enabled ? "Disable" : "Enable", async () => {
    // Enabling saves what the form shows with it: the provider is turned on as seen.
    await api("PUT", pathOf(id), cfg.enabled ? { enabled: false } : { ...changed(), enabled: true });
    ctx.toast(`${name} ${cfg.enabled ? "disabled" : "enabled"}.`);
    reload();
  }, { class: cfg.enabled ? "secondary small" : "small", "data-testid": "toggle", "aria-label": `${cfg.enabled ? "Disable" : "Enable"} ${name}` });

  const result = h("div", { class: "test-result", role: "status", "aria-live": "polite", "data-testid": "test-result" });
  const testFields = [];
  let user = null;
  let pass = null;
  if (DIRECTORY.has(id)) {
    user = h("input", { autocomplete: "off" });
    pass = h("input", { type: "password", autocomplete: "new-password" });
    testFields.push(field("Test username (optional)", user), field("Test user's password", pass));
  }
  const test = actionForm(`Test the ${name} connection`, testFields, "Test connection", async () => {
    replace(result, h("p", { class: "muted" }, "Testing…"));
    const body = { ...read() };
    if (user && user.value) Object.assign(body, { username: user.value, password: pass.value });
    try {
      replace(result, testResult(await api("POST", `${pathOf(id)}?action=testConnection`, body)));
    } catch (e) {
      replace(result);
      throw e;
    }
  });

  const refreshed = h("div", { role: "status", "aria-live": "polite", "data-testid": "refresh-result" },
    cfg.lastRefresh ? [h("p", { class: "muted small" }, "Last refresh:"), refreshFacts(cfg.lastRefresh)] : null);
  const refresh = actionButton("Refresh groups", async () => {
    const report = await api("POST", `${pathOf(id)}?action=refreshGroups`);
    replace(refreshed, h("p", { class: "status" }, `Refreshed ${report.users} ${report.users === 1 ? "user" : "users"}.`), refreshFacts(report));
  }, { "data-testid": "refresh", "aria-label": `Refresh groups of ${name}` });

  const callback = cfg.callbackPath ? h("p", { class: "muted" }, "Callback URL to register at the provider: ",
    h("code", { "data-testid": "callback-url" }, `${location.origin}${cfg.callbackPath}`)) : null;
  return h("section", { class: "card provider", "aria-labelledby": `provider-${id}-title`, dataset: { provider: id } },
    h("div", { class: "card-head" }, h("h2", { id: `provider-${id}-title` }, name, " ", badge(cfg.enabled ? "enabled" : "disabled")), toggle),
    callback, save,
    h("h3", {}, "Test the connection"),
    h("p", { class: "muted small" }, "Tests what the form shows (saved or not), step by step; nothing is saved.",
      DIRECTORY.has(id) ? " With a username and password it also logs that user in." : ""),
    test, result,
    h("h3", {}, "Group refresh"),
    h("p", { class: "muted small" }, "Reads every user of this provider from it now: their groups, and whether they still exist."),
    refresh, refreshed);
}

export function authView(main, params, ctx) {
  const selected = PROVIDERS.some(([p]) => p === params[0]) ? params[0] : PROVIDERS[0][0];
  const listBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const detail = h("div", {});
  replace(main, h("div", { class: "page-head" }, h("h1", {}, "Authentication")),
    h("p", { class: "muted" }, "Local users can always log in. Each provider is enabled or disabled on its own; its users log in on the login page."),
    listBox, detail);
  let gone = false;
  const load = async () => {
    const found = await Promise.all(PROVIDERS.map(([id]) => get(pathOf(id)).then((cfg) => ({ id, cfg }), (e) => ({ id, e }))));
    if (gone) return;
    const rows = found.map(({ id, cfg, e }) => h("tr", { dataset: { provider: id } },
      h("th", { scope: "row" }, h("a", { href: `#/auth/${id}`, "aria-current": id === selected ? "page" : false }, nameOf(id))),
      h("td", {}, e ? h("span", { class: "error" }, e.message) : badge(cfg.enabled ? "enabled" : "disabled")),
      h("td", { class: "small" }, cfg && cfg.lastRefresh ? `${cfg.lastRefresh.users} users, ${ago(cfg.lastRefresh.startedAt)}` : "—")));
    replace(listBox, h("div", { class: "table-wrap", tabindex: "0" }, h("table", { "data-testid": "providers" },
      h("caption", { class: "sr-only" }, "Auth providers"),
      h("thead", {}, h("tr", {}, ["Provider", "State", "Last group refresh"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows))));
    const mine = found.find((f) => f.id === selected);
    replace(detail, mine.e ? h("p", { class: "error", role: "alert" }, mine.e.message) : providerCard(selected, mine.cfg, ctx, load));
  };
  load();
  return () => { gone = true; };
}
