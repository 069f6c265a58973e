// The REST API, called with the session cookie (sent by the browser; the page never sees the
// token) and, on every change, the session's CSRF token in a header.

let csrf = "";
let onLoggedOut = () => {};

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function setSession(session) {
  csrf = session ? session.csrfToken : "";
}

export function whenLoggedOut(fn) {
  onLoggedOut = fn;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiFailure(0, "the server cannot be reached");
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    if (resp.status === 401 && !path.startsWith("/ui/session")) onLoggedOut();
    const message = (data && data.message) || `${resp.status} ${resp.statusText}`;
    throw new ApiFailure(resp.status, message);
  }
  return data;
}

export const get = (path) => api("GET", path);

// Whether the session cookie still names a live session; if not, the shell shows login.
export async function sessionAlive() {
  const s = await api("GET", "/ui/session");
  if (!s.loggedIn) onLoggedOut();
  return s.loggedIn;
}
export const list = async (path) => (await api("GET", path)).data || [];

// Reads of a cluster's Kubernetes API through the server's proxy (/k8s/clusters/<id>/...): the
// proxy takes the session cookie for GETs that carry the session's CSRF token (never a change).
export const kubePath = (clusterId, path) => `/k8s/clusters/${encodeURIComponent(clusterId)}${path}`;

async function kubeFetch(clusterId, path, signal) {
  let resp;
  try {
    resp = await fetch(kubePath(clusterId, path), {
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin", cache: "no-store", signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiFailure(0, "the server cannot be reached");
  }
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      message = (await resp.json()).message || message;
    } catch (e) { /* not JSON */ }
    if (resp.status === 401) onLoggedOut();
    throw new ApiFailure(resp.status, message);
  }
  return resp;
}

export async function kubeGet(clusterId, path) {
  return (await kubeFetch(clusterId, path)).json();
}

// Streams a text body (a pod's log with follow=true) line by line into onLine until the
// signal aborts or the server ends it.
export async function kubeStream(clusterId, path, onLine, signal) {
  const resp = await kubeFetch(clusterId, path, signal);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop();
    for (const line of lines) onLine(line);
  }
  if (rest) onLine(rest);
}
