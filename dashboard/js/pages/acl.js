/**
 * ACL: the default decision and every rule in the order they are checked (first match wins):
 * those of the configuration (read-only), then those of the rules file, which admins add to, edit
 * and delete from, with the API's objections next to the fields.
 *
 * @module
 */

import { api } from "../api.js";
import {
  choice,
  clearErrors,
  facts,
  failure,
  field,
  formMessage,
  h,
  say,
  showErrors,
  table,
} from "../dom.js";
import { nameList } from "../format.js";

/** The rule a form describes, as the API takes it. */
function ruleOf(form) {
  const value = (name) => form.elements.namedItem(name).value;
  const rule = { permission: value("permission"), action: value("action"), topic: value("topic") };
  const users = nameList(value("users"));
  const clients = nameList(value("clients"));
  if (users) rule.users = users;
  if (clients) rule.clients = clients;
  return rule;
}

export default {
  render(container, { canWrite }) {
    const summary = h("div");
    const results = h("div", { class: "results" });
    const message = h("form", {
      class: "actions",
      on: { submit: (event) => event.preventDefault() },
    }, formMessage());
    /** Index in the rules file of the rule being edited; undefined while adding. */
    let editing;
    const heading = h("h2", { text: "Add a rule" });
    const submit = h("button", { type: "submit", text: "Add rule" });
    const cancel = h("button", {
      type: "button",
      class: "quiet",
      hidden: true,
      on: { click: () => startAdding() },
    }, "Cancel");
    const position = field(
      "Position in the file",
      "position",
      h("input", { name: "position", type: "number", min: 0, step: 1, placeholder: "end" }),
    );
    const form = h(
      "form",
      { id: "rule-form", class: "card", on: { submit: save } },
      heading,
      h(
        "div",
        { class: "row" },
        field("Permission", "permission", choice("permission", ["allow", "deny"])),
        field("Action", "action", choice("action", ["publish", "subscribe", "both"])),
        field(
          "Topic filter",
          "topic",
          h("input", { name: "topic", placeholder: "e.g. devices/%c/#" }),
          "%u: user name, %c: client id",
        ),
      ),
      h(
        "div",
        { class: "row" },
        field(
          "Users",
          "users",
          h("input", { name: "users", placeholder: "all" }),
          "Comma-separated; empty: everyone",
        ),
        field(
          "Clients",
          "clients",
          h("input", { name: "clients", placeholder: "all" }),
          "Comma-separated; empty: every client",
        ),
        position,
      ),
      submit,
      cancel,
      formMessage(),
    );
    container.append(h("h1", { text: "ACL rules" }), summary, message, results);

    function startAdding() {
      editing = undefined;
      form.reset();
      clearErrors(form);
      heading.textContent = "Add a rule";
      submit.textContent = "Add rule";
      cancel.hidden = true;
      position.hidden = false;
    }

    function startEditing(rule) {
      editing = rule.index;
      clearErrors(form);
      const set = (name, value) => (form.elements.namedItem(name).value = value);
      set("permission", rule.permission);
      set("action", rule.action);
      set("topic", rule.topic);
      set("users", (rule.users ?? []).join(", "));
      set("clients", (rule.clients ?? []).join(", "));
      heading.textContent = `Edit rule ${rule.index} of the file`;
      submit.textContent = "Save rule";
      cancel.hidden = false;
      position.hidden = true;
      form.scrollIntoView({ block: "nearest" });
    }

    async function load() {
      let acl;
      try {
        acl = await api("/acl");
      } catch (error) {
        results.replaceChildren(failure(error));
        return;
      }
      const editable = canWrite && acl.file !== null;
      summary.replaceChildren(
        facts([
          ["Default", h("strong", { data: { default: acl.default }, text: acl.default })],
          ["Rules file", acl.file ?? "none: set acl.file to edit rules here"],
        ]),
        h("p", {
          class: "muted",
          text: "Rules are checked in this order; the first that matches decides.",
        }),
      );
      const columns = [
        { label: "#", value: (r) => String(acl.rules.indexOf(r) + 1) },
        { label: "Source", value: (r) => `${r.source} ${r.index}` },
        {
          label: "Permission",
          value: (r) => h("span", { class: `permission ${r.permission}`, text: r.permission }),
        },
        { label: "Action", value: (r) => r.action },
        { label: "Topic", value: (r) => r.topic },
        { label: "Users", value: (r) => r.users?.join(", ") ?? "all" },
        { label: "Clients", value: (r) => r.clients?.join(", ") ?? "all" },
      ];
      if (editable) {
        columns.push({
          label: "",
          value: (r) =>
            r.source !== "file" ? h("span", { class: "muted", text: "config" }) : h(
              "div",
              { class: "row-actions" },
              h("button", {
                type: "button",
                class: "quiet",
                data: { action: "edit-rule" },
                on: { click: () => startEditing(r) },
              }, "Edit"),
              h("button", {
                type: "button",
                class: "quiet danger",
                data: { action: "delete-rule" },
                on: { click: () => remove(r.index) },
              }, "Delete"),
            ),
        });
      }
      results.replaceChildren(
        table(columns, acl.rules, {
          key: (r) => `${r.source}-${r.index}`,
          empty: `No rules: every request gets the default, ${acl.default}.`,
        }),
      );
      if (editable && !form.isConnected) container.append(form);
    }

    async function save(event) {
      event.preventDefault();
      clearErrors(form);
      const rule = ruleOf(form);
      try {
        if (editing === undefined) {
          const at = form.elements.namedItem("position").value;
          const added = await api("/acl/rules", {
            method: "POST",
            body: at === "" ? rule : { ...rule, position: Number(at) },
          });
          say(message, `Added rule ${added.index} of the file.`, "good");
        } else {
          await api(`/acl/rules/${editing}`, { method: "PUT", body: rule });
          say(message, `Saved rule ${editing} of the file.`, "good");
        }
        startAdding();
        await load();
      } catch (error) {
        showErrors(form, error);
      }
    }

    async function remove(index) {
      if (!confirm(`Delete rule ${index} of the rules file?`)) return;
      try {
        await api(`/acl/rules/${index}`, { method: "DELETE" });
        say(message, `Deleted rule ${index} of the file.`, "good");
        if (editing !== undefined) startAdding();
        await load();
      } catch (error) {
        say(message, error.message, "bad");
      }
    }

    load();
  },
};
