// Following a server-sent-events feed of the server (/v3/feed, /v3/clusters/<id>/feed): the
// browser sends the session cookie; a closed feed (the session ended) asks the shell.
import { sessionAlive } from "./api.js";

const RECONNECT_MS = 2000;

export function follow(path, { snapshot, change }) {
  let source = null;
  let stopped = false;
  let timer = null;
  const open = () => {
    source = new EventSource(path);
    source.addEventListener("snapshot", (ev) => snapshot(JSON.parse(ev.data)));
    source.addEventListener("change", (ev) => change(JSON.parse(ev.data)));
    source.addEventListener("resync", () => { source.close(); open(); });
    source.addEventListener("error", async () => {
      if (stopped || source.readyState !== EventSource.CLOSED) return; // the browser retries
      try {
        if (await sessionAlive()) timer = setTimeout(() => { if (!stopped) open(); }, RECONNECT_MS);
      } catch (e) {
        timer = setTimeout(() => { if (!stopped) open(); }, RECONNECT_MS); // server unreachable
      }
    });
  };
  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
  };
}

// Runs fn once at the end of a burst of calls (at most once per interval).
export function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}
