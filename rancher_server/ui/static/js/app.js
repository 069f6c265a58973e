// The page's shell: the session, the header, and a hash router over the views.
import { api, sessionAlive, setSession, whenLoggedOut } from "./api.js";
import { h, replace } from "./dom.js";
import { homeView } from "./home.js";
import { clusterView } from "./cluster.js";
import { usersView, roleTemplatesView, tokensView } from "./admin.js";
import { workloadsView } from "./workloads.js";
import { settingsView } from "./settings.js";
import { authView } from "./auth.js";

const SESSION_CHECK_MS = 5000; // a token revoked elsewhere sends the page back to login
const main = document.getElementById("main");
const top = document.getElementById("top");
let session = null;
let cleanup = null;
let checkTimer = null;

const ROUTES = [
  [/^#?\/?$/, homeView],
  [/^#\/clusters\/([^/]+)\/projects\/([^/]+)$/, workloadsView],
  [/^#\/clusters\/([^/]+)(?:\/(\w+))?$/, clusterView],
  [/^#\/users$/, usersView],
  [/^#\/roletemplates$/, roleTemplatesView],
  [/^#\/tokens$/, tokensView],
  [/^#\/settings$/, settingsView],
  [/^#\/auth(?:\/(\w+))?$/, authView],
];

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  setTimeout(() => el.classList.remove("show"), 4000);
}

function stopView() {
  if (cleanup) cleanup();
  cleanup = null;
}

function header() {
  const here = (href) => location.hash === href || (href !== "#/" && location.hash.startsWith(`${href}/`));
  const link = (href, label) => h("a", { href, class: here(href) ? "current" : "" }, label);
  const nav = h("nav", { "aria-label": "Main" },
    link("#/", "Clusters"),
    session.isAdmin ? link("#/users", "Users") : null,
    link("#/roletemplates", "Role templates"),
    link("#/tokens", "API tokens"),
    session.isAdmin ? link("#/auth", "Authentication") : null,
    session.isAdmin ? link("#/settings", "Settings") : null);
  replace(top,
    h("a", { class: "brand", href: "#/" }, h("img", { src: "/ui/static/favicon.svg", alt: "" }), "Rancher"),
    nav,
    h("span", { class: "who" }, h("span", { "data-testid": "username" }, session.displayName || session.username)),
    h("button", { type: "button", class: "secondary", "data-testid": "logout", onclick: logout }, "Log out"));
  top.hidden = false;
}

function route() {
  if (!session) return;
  stopView();
  header();
  const hash = location.hash || "#/";
  for (const [re, view] of ROUTES) {
    const m = re.exec(hash);
    if (m) {
      cleanup = view(main, m.slice(1).map((x) => (x ? decodeURIComponent(x) : x)), { session, toast });
      return;
    }
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the clusters")));
}

function loginView(message) {
  stopView();
  session = null;
  setSession(null);
  clearInterval(checkTimer);
  top.hidden = true;
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, message || "");
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Log in");
  const providers = h("div", { class: "providers", role: "group", "aria-label": "Log in with" });
  const elsewhere = h("div", { class: "providers", role: "group", "aria-label": "Log in elsewhere" });
  let provider = "local";
  const form = h("form", { class: "login card", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to Rancher"), providers,
    h("label", { for: "username" }, "Username"), user,
    h("label", { for: "password" }, "Password"), pass,
    button, elsewhere, error);
  redirectProviders().then((found) => {
    // GitHub and OpenID Connect log in at the provider: a link, not a password form; the
    // provider sends the browser back to the server, which sets the session cookie.
    replace(elsewhere, found.map((p) => h("a", {
      class: "button secondary small", href: p.redirectUrl, dataset: { provider: p.id },
    }, `Log in with ${REDIRECT_PROVIDER_NAMES[p.id] || p.id}`)));
  });
  loginProviders().then((enabled) => {
    if (enabled.length < 2) return; // only local users: no choice to offer
    const choose = (id) => {
      provider = id;
      for (const b of providers.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.provider === id));
      button.textContent = `Log in with ${PROVIDER_NAMES[id] || id}`;
    };
    replace(providers, enabled.map((id) => h("button", {
      type: "button", class: "secondary small", dataset: { provider: id }, "aria-pressed": String(id === provider),
      onclick: () => { choose(id); user.focus(); } }, PROVIDER_NAMES[id] || id)));
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      started(await api("POST", "/ui/session", { username: user.value, password: pass.value, provider }));
    } catch (e) {
      error.textContent = e.message;
      pass.value = "";
      pass.focus();
    } finally {
      button.disabled = false;
    }
  });
  replace(main, form);
  user.focus();
}

// The enabled providers that log in with a username and password here (GET
// /v3-public/authProviders); the local users' first.
const PROVIDER_NAMES = { local: "Local user", openldap: "OpenLDAP", activedirectory: "Active Directory" };
async function loginProviders() {
  try {
    const all = (await api("GET", "/v3-public/authProviders")).data || [];
    return all.map((p) => p.id).filter((id) => id in PROVIDER_NAMES);
  } catch (e) {
    return ["local"];
  }
}

// The enabled providers that log in by a redirect to themselves (GitHub, OpenID Connect).
const REDIRECT_PROVIDER_NAMES = { github: "GitHub", oidc: "OpenID Connect" };
async function redirectProviders() {
  try {
    const all = (await api("GET", "/v3-public/authProviders")).data || [];
    return all.filter((p) => p.id in REDIRECT_PROVIDER_NAMES && typeof p.redirectUrl === "string"
      && p.redirectUrl.startsWith("/"));
  } catch (e) {
    return [];
  }
}

function started(s) {
  session = s;
  setSession(s);
  clearInterval(checkTimer);
  checkTimer = setInterval(checkSession, SESSION_CHECK_MS);
  route();
}

async function checkSession() {
  try {
    await sessionAlive();
  } catch (e) { /* the server is unreachable for now: the views say so */ }
}

async function logout() {
  // The view's live feeds go first: the server ends them when the token is revoked, and the
  // browser's reconnect would then fail with a 401.
  stopView();
  try {
    await api("DELETE", "/ui/session");
    history.replaceState(null, "", "#/"); // the next user starts at home, not on this user's page
    loginView("You are logged out.");
  } catch (e) {
    route();
    toast(`Log out failed: ${e.message}`);
  }
}

export function sessionEnded() {
  if (session) loginView("Your session has ended; log in again.");
}

whenLoggedOut(sessionEnded);
// The skip link moves focus to the content without touching the hash (the router's).
document.querySelector(".skip").addEventListener("click", (ev) => {
  ev.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);

(async () => {
  try {
    const s = await api("GET", "/ui/session");
    if (s.loggedIn) started(s); else loginView("");
  } catch (e) {
    loginView(e.message);
  }
})();
