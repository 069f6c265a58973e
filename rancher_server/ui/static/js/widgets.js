// Small pieces shared by the views: labelled fields, selects, and forms that show the API's
// error message in place.
import { h } from "./dom.js";

let fieldSeq = 0;

export function field(label, input) {
  input.id = input.id || `f${++fieldSeq}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

export function select(options, value = "") {
  return h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// A form whose submit runs action(); the API's message appears under it, never in a dialog.
export function actionForm(title, fields, submitLabel, action) {
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit" }, submitLabel);
  const form = h("form", { class: "inline-form", "aria-label": title }, fields, button, error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await action();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// A button that runs action(); a failure is shown beside it.
export function actionButton(label, action, attrs = {}) {
  const error = h("span", { class: "error", role: "alert" });
  const button = h("button", { type: "button", class: "secondary small", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    error.textContent = "";
    try {
      await action();
    } catch (e) {
      error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "action" }, button, error);
}

export function subjectOf(b, users) {
  if (b.userId) {
    const u = users.get(b.userId);
    return u ? `${u.username}${u.name ? ` (${u.name})` : ""}` : b.userId;
  }
  return `group ${b.groupName}`;
}
