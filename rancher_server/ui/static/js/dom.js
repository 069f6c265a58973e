// Building the page from data without innerHTML: every string from the API becomes a text node.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A bar of used and requested against allocatable; widths set through the CSSOM (allowed by the
// Content-Security-Policy, unlike style attributes in markup).
export function bar(label, requested, used, allocatable, fmt) {
  const pct = (v) => (allocatable > 0 ? Math.min(100, (100 * v) / allocatable) : 0);
  const req = h("span", { class: "bar-req" });
  req.style.width = `${pct(requested)}%`;
  const track = h("span", { class: "bar-track" }, req);
  let usedText = "";
  if (used !== null && used !== undefined) {
    const u = h("span", { class: "bar-used" });
    u.style.width = `${pct(used)}%`;
    track.append(u);
    usedText = `, used ${fmt(used)}`;
  }
  const text = `${label}: requested ${fmt(requested)}${usedText} of ${fmt(allocatable)}`;
  return h("div", { class: "bar", role: "img", "aria-label": text, title: text },
    h("span", { class: "bar-label" }, label), track,
    h("span", { class: "bar-figure" }, `${Math.round(pct(requested))}%`));
}

export function badge(state) {
  return h("span", { class: `badge badge-${state}` }, state);
}
