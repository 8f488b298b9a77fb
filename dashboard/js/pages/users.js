/**
 * Users: the MQTT users of the password file. Everyone sees the list; admins add users, change a
 * password and delete users, with the API's objections next to the fields.
 *
 * @module
 */

import { api, segment } from "../api.js";
import {
  clearErrors,
  failure,
  field,
  formMessage,
  h,
  pager,
  say,
  showErrors,
  table,
} from "../dom.js";

const PAGE_SIZE = 100;

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const message = h("form", {
      class: "actions",
      on: { submit: (event) => event.preventDefault() },
    }, formMessage());
    container.append(
      h("h1", { text: "Users" }),
      h("p", {
        class: "muted",
        text:
          "MQTT users of the password file; passwords are stored as SCRAM-SHA-256 verifiers and never shown.",
      }),
    );
    if (canWrite) {
      const form = h(
        "form",
        { id: "add-user", class: "card inline", on: { submit: add } },
        h("h2", { text: "Add a user" }),
        field("User name", "username", h("input", { name: "username", autocomplete: "off" })),
        field(
          "Password",
          "password",
          h("input", { name: "password", type: "password", autocomplete: "new-password" }),
        ),
        h("button", { type: "submit", text: "Add user" }),
        formMessage(),
      );
      container.append(form);
    }
    container.append(message, results);

    async function list(page) {
      try {
        const reply = await api("/users", { query: { page, limit: PAGE_SIZE } });
        const columns = [{ label: "User name", value: (u) => u.username }];
        if (canWrite) columns.push({ label: "", value: (u) => userActions(u.username) });
        results.replaceChildren(
          table(columns, reply.data, { key: (u) => u.username, empty: "No users yet." }),
          pager(reply.meta, list),
        );
      } catch (error) {
        results.replaceChildren(failure(error));
      }
    }

    function userActions(username) {
      const passwordForm = h(
        "form",
        {
          class: "inline",
          hidden: true,
          on: { submit: (event) => changePassword(event, username) },
        },
        field(
          "New password",
          "password",
          h("input", { name: "password", type: "password", autocomplete: "new-password" }),
        ),
        h("button", { type: "submit", text: "Save" }),
        formMessage(),
      );
      return h(
        "div",
        { class: "row-actions" },
        h("button", {
          type: "button",
          class: "quiet",
          data: { action: "change-password" },
          on: { click: () => (passwordForm.hidden = !passwordForm.hidden) },
        }, "Change password"),
        h("button", {
          type: "button",
          class: "quiet danger",
          data: { action: "delete-user" },
          on: { click: () => remove(username) },
        }, "Delete"),
        passwordForm,
      );
    }

    async function add(event) {
      event.preventDefault();
      const form = event.currentTarget;
      clearErrors(form);
      const username = form.elements.namedItem("username").value;
      try {
        await api("/users", {
          method: "POST",
          body: { username, password: form.elements.namedItem("password").value },
        });
        form.reset();
        say(form, `Added ${username}.`, "good");
        await list(1);
      } catch (error) {
        showErrors(form, error);
      }
    }

    async function changePassword(event, username) {
      event.preventDefault();
      const form = event.currentTarget;
      clearErrors(form);
      try {
        await api(`/users/${segment(username)}`, {
          method: "PUT",
          body: { password: form.elements.namedItem("password").value },
        });
        form.reset();
        say(form, "Changed.", "good");
      } catch (error) {
        showErrors(form, error);
      }
    }

    async function remove(username) {
      if (!confirm(`Delete the user ${username}?`)) return;
      try {
        await api(`/users/${segment(username)}`, { method: "DELETE" });
        say(message, `Deleted ${username}.`, "good");
        await list(1);
      } catch (error) {
        say(message, error.message, "bad");
      }
    }

    list(1);
  },
};
