/**
 * Small DOM builders. Text always goes in as text, never as HTML: client ids, topics and payloads
 * come from MQTT clients.
 *
 * @module
 */

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An HTML element. `props`: `text` (its text), `on` (event name to listener), `data` (dataset
 * entries); any other key is an attribute (true sets it empty; false, null and undefined leave it
 * out). Children are nodes, strings, numbers or arrays of them; null and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element, built like {@link h}. */
export function svg(tag, props = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function build(element, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, listener] of Object.entries(value)) {
        element.addEventListener(event, listener);
      }
    } else if (key === "data") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = String(value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/**
 * A table. `columns`: `{ label, value(row) }` where value gives text or a node. `onRow(row)` makes
 * rows clickable (and reachable with the keyboard); `key(row)` goes in each row's `data-key`.
 */
export function table(columns, rows, { onRow, key, empty = "Nothing to show." } = {}) {
  if (rows.length === 0) return h("p", { class: "muted empty", text: empty });
  const open = (row) => (event) => {
    if (event.target.closest("button, a, input, select")) return;
    if (event.type === "keydown" && event.key !== "Enter") return;
    onRow(row);
  };
  return h(
    "table",
    { class: onRow ? "list clickable" : "list" },
    h("thead", {}, h("tr", {}, columns.map((column) => h("th", { text: column.label })))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {
            data: key ? { key: key(row) } : undefined,
            tabindex: onRow ? "0" : undefined,
            on: onRow ? { click: open(row), keydown: open(row) } : undefined,
          },
          columns.map((column) => h("td", {}, column.value(row))),
        )
      ),
    ),
  );
}

/** "Page 2, 51–100 of 130" with previous and next buttons calling `go(page)`. */
export function pager(meta, go) {
  if (meta.count <= meta.limit) {
    return h("p", { class: "muted pager", text: `${meta.count} in all` });
  }
  const first = (meta.page - 1) * meta.limit + 1;
  const last = Math.min(meta.count, meta.page * meta.limit);
  return h(
    "p",
    { class: "pager" },
    h("button", {
      type: "button",
      class: "quiet",
      disabled: meta.page === 1,
      on: { click: () => go(meta.page - 1) },
    }, "Previous"),
    ` ${first}–${last} of ${meta.count} `,
    h("button", {
      type: "button",
      class: "quiet",
      disabled: !meta.hasNext,
      on: { click: () => go(meta.page + 1) },
    }, "Next"),
  );
}

/**
 * A labelled form control with a place for what the API says about it. `name` is the field as
 * the API names it in `issues` (e.g. `properties.contentType`).
 */
export function field(label, name, control, hint) {
  return h(
    "label",
    { class: "field", data: { field: name } },
    h("span", { class: "label", text: label }),
    control,
    hint ? h("small", { class: "hint", text: hint }) : null,
    h("span", { class: "error", data: { errorFor: name } }),
  );
}

/**
 * A select named `name`. Each option is a value, or `[value, label]`; `selected` is the value
 * chosen at first (and after the form's reset).
 */
export function choice(name, options, selected) {
  return h(
    "select",
    { name },
    options.map((option) => {
      const [value, label] = Array.isArray(option) ? option : [option, option];
      return h("option", { value, text: label, selected: String(value) === String(selected) });
    }),
  );
}

/** The line of a form where errors that belong to no field, and results, are shown. */
export function formMessage() {
  return h("p", { class: "form-message", role: "status" });
}

/** Clears what {@link showErrors} put on a form. */
export function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
  for (const control of form.querySelectorAll("[aria-invalid]")) {
    control.removeAttribute("aria-invalid");
  }
  const message = form.querySelector(".form-message");
  if (message) {
    message.textContent = "";
    message.classList.remove("bad", "good");
  }
}

/**
 * Shows an API error on a form: each issue next to its field (`properties.userProperties.1` falls
 * back to `properties.userProperties`), everything else in the form's message line.
 */
export function showErrors(form, error) {
  clearErrors(form);
  const slots = new Map(
    [...form.querySelectorAll("[data-error-for]")].map((slot) => [slot.dataset.errorFor, slot]),
  );
  const unplaced = [];
  for (const issue of error.issues ?? []) {
    const slot = slotFor(slots, issue.field);
    if (!slot) {
      unplaced.push(`${issue.field}: ${issue.message}`);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${issue.message}` : issue.message;
    slot.closest(".field")?.querySelector("input, select, textarea")
      ?.setAttribute("aria-invalid", "true");
  }
  if (unplaced.length > 0 || !error.issues?.length) {
    say(form, unplaced.length > 0 ? unplaced.join("; ") : error.message, "bad");
  }
}

function slotFor(slots, fieldPath) {
  const parts = fieldPath.split(".");
  while (parts.length > 0) {
    const slot = slots.get(parts.join("."));
    if (slot) return slot;
    parts.pop();
  }
  return undefined;
}

/** Puts `text` in a form's message line; `tone` is "good" or "bad". */
export function say(form, text, tone) {
  const message = form.querySelector(".form-message");
  message.textContent = text;
  message.classList.remove("bad", "good");
  if (tone) message.classList.add(tone);
}

/** A box telling what went wrong loading a page's data. */
export function failure(error) {
  return h("p", { class: "notice bad", role: "alert", text: error.message });
}

/** A definition list of `[term, value]` pairs; pairs whose value is null or undefined are skipped. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== null && value !== undefined).map(([term, value]) => [
      h("dt", { text: term }),
      h("dd", {}, value),
    ]),
  );
}
