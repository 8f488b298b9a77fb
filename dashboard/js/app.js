/**
 * The dashboard's shell: logging in (an API user's password traded for a login token, or a token
 * pasted as is), the navigation for the caller's role, and the pages behind `#/name`.
 *
 * @module
 */

import { api, ApiError, forgetToken, storedToken, storeToken, whenUnauthorized } from "./api.js";
import { field, formMessage, h, say, showErrors } from "./dom.js";
import acl from "./pages/acl.js";
import agents from "./pages/agents.js";
import bridges from "./pages/bridges.js";
import clients from "./pages/clients.js";
import overview from "./pages/overview.js";
import publish from "./pages/publish.js";
import retained from "./pages/retained.js";
import sessions from "./pages/sessions.js";
import subscriptions from "./pages/subscriptions.js";
import users from "./pages/users.js";

/** The pages in navigation order; `writes` pages are for admins only. */
const PAGES = [
  { name: "overview", title: "Overview", page: overview },
  { name: "clients", title: "Clients", page: clients },
  { name: "agents", title: "Agents", page: agents },
  { name: "sessions", title: "Sessions", page: sessions },
  { name: "subscriptions", title: "Subscriptions", page: subscriptions },
  { name: "retained", title: "Retained", page: retained },
  { name: "publish", title: "Publish", page: publish, writes: true },
  { name: "bridges", title: "Kafka bridge", page: bridges },
  { name: "users", title: "Users", page: users },
  { name: "acl", title: "ACL", page: acl },
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const logout = document.getElementById("logout");

/** The caller as `GET /me` describes it; undefined while logged out. */
let me;
/** Stops the shown page's timers. */
let leavePage = () => {};

function showLogin(message) {
  leavePage();
  leavePage = () => {};
  me = undefined;
  nav.hidden = true;
  logout.hidden = true;
  who.textContent = "";
  const passwordForm = h(
    "form",
    { id: "login-password", class: "card", on: { submit: logInWithPassword } },
    h("h2", { text: "Log in" }),
    field(
      "User name",
      "username",
      h("input", { id: "username", name: "username", autocomplete: "username" }),
    ),
    field(
      "Password",
      "password",
      h("input", {
        id: "password",
        name: "password",
        type: "password",
        autocomplete: "current-password",
      }),
    ),
    h("button", { type: "submit", text: "Log in" }),
    formMessage(),
  );
  const tokenForm = h(
    "form",
    { id: "login-token", class: "card", on: { submit: logInWithToken } },
    h("h2", { text: "Or use an API token" }),
    field(
      "Token",
      "token",
      h("input", { id: "token", name: "token", type: "password", autocomplete: "off" }),
      "A token from admin.tokens",
    ),
    h("button", { type: "submit", text: "Use token" }),
    formMessage(),
  );
  main.replaceChildren(
    h(
      "section",
      { class: "login" },
      message ? h("p", { class: "notice", role: "status", text: message }) : null,
      passwordForm,
      tokenForm,
    ),
  );
}

async function logInWithPassword(event) {
  event.preventDefault();
  const form = event.currentTarget;
  try {
    const { token } = await api("/login", {
      method: "POST",
      body: { username: form.username.value, password: form.password.value },
    });
    storeToken(token);
    await enter();
  } catch (error) {
    showErrors(form, error);
  }
}

async function logInWithToken(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (form.token.value === "") return say(form, "Paste a token first", "bad");
  storeToken(form.token.value);
  try {
    await enter();
  } catch (error) {
    forgetToken();
    showErrors(form, error);
  }
}

/** Asks who the stored token (or an open API) makes us, then shows the pages for that role. */
async function enter() {
  me = await api("/me");
  nav.replaceChildren(
    ...PAGES.filter((entry) => !entry.writes || me.role === "admin").map((entry) =>
      h("a", { href: `#/${entry.name}`, data: { page: entry.name }, text: entry.title })
    ),
  );
  nav.hidden = false;
  who.textContent = `${me.name} · ${me.role}`;
  logout.hidden = !me.authenticated;
  route();
}

function route() {
  if (!me) return;
  const name = location.hash.replace(/^#\/?/, "") || "overview";
  const entry = PAGES.find((page) => page.name === name);
  if (!entry || (entry.writes && me.role !== "admin")) {
    location.hash = "#/overview";
    return;
  }
  for (const link of nav.children) {
    link.classList.toggle("active", link.dataset.page === name);
  }
  document.title = `${entry.title} · Perch`;
  leavePage();
  const container = h("section", { class: "page", data: { page: name } });
  main.replaceChildren(container);
  leavePage = entry.page.render(container, { canWrite: me.role === "admin", me }) ?? (() => {});
}

whenUnauthorized(() => {
  if (!me) return;
  forgetToken();
  showLogin("Your login has expired or was revoked: log in again.");
});
logout.addEventListener("click", () => {
  forgetToken();
  showLogin("Logged out.");
});
addEventListener("hashchange", route);

try {
  await enter();
} catch (error) {
  if (!(error instanceof ApiError) || error.status !== 401) {
    main.replaceChildren(h("p", { class: "notice bad", role: "alert", text: error.message }));
  } else {
    const expired = storedToken() !== undefined;
    forgetToken();
    showLogin(expired ? "Your login has expired: log in again." : undefined);
  }
}
