/**
 * Clients: the connected clients, searched by part of the client id, user name or address; one
 * client's details (protocol, keep-alive, inflight, queued, subscriptions, and an agent's host
 * facts); kick it, and ban it for a while (admins). Below them the bans in force, which admins add
 * to and lift.
 *
 * @module
 */

import { api, ApiError, newestOnly, segment } from "../api.js";
import {
  choice,
  clearErrors,
  facts,
  failure,
  field,
  formMessage,
  h,
  pager,
  say,
  showErrors,
  table,
} from "../dom.js";
import { formatBytes, formatCount, formatTime, protocolName } from "../format.js";
import { agentFacts } from "./agents.js";
import { subscriptionColumns } from "./subscriptions.js";

const PAGE_SIZE = 50;

/** How long a ban may last, in seconds, as the forms offer it. */
const BAN_DURATIONS = [
  [600, "10 minutes"],
  [3_600, "1 hour"],
  [86_400, "1 day"],
  [604_800, "1 week"],
  [2_592_000, "30 days"],
];

/** What a ban matches, as the API names it and as the page does. */
const BAN_KINDS = [
  ["clientId", "client id"],
  ["username", "user name"],
  ["address", "address or range"],
];

const kindLabel = (kind) => BAN_KINDS.find(([name]) => name === kind)?.[1] ?? kind;

/**
 * The client's agent record when it is an agent (subscribed to `agents/{its client id}`, and agent
 * mode on); undefined otherwise.
 */
async function agentOf(client) {
  const topic = `agents/${client.clientId}`;
  if (!client.session.subscriptionList.some((s) => s.filter === topic)) return undefined;
  try {
    return await api(`/agents/${segment(client.clientId)}`);
  } catch (error) {
    // 404: agent mode is off, or the registry has not recorded it yet.
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const details = h("div", { class: "details" });
    const bans = h("div", { class: "bans" });
    const form = h(
      "form",
      { class: "filters", on: { submit: (event) => (event.preventDefault(), search(1)) } },
      field("Client id contains", "like", h("input", { name: "like", type: "search" })),
      field("User name", "username", h("input", { name: "username", type: "search" })),
      field(
        "Address",
        "address",
        h("input", { name: "address", type: "search", placeholder: "IP address" }),
      ),
      h("button", { type: "submit", text: "Search" }),
      formMessage(),
    );
    const banMessage = h("form", {
      class: "actions",
      on: { submit: (event) => event.preventDefault() },
    }, formMessage());
    container.append(
      h("h1", { text: "Clients" }),
      form,
      results,
      details,
      h("h2", { text: "Bans" }),
      h("p", {
        class: "muted",
        text:
          "A banned client id, user name or address is refused at CONNECT (0x8A Banned; MQTT 3.1.1: return code 5) until the ban ends or is lifted. Bans are this node's own and kept in memory: other nodes of a cluster do not refuse them, and a restart forgets them.",
      }),
    );
    if (canWrite) {
      container.append(
        h(
          "form",
          { id: "add-ban", class: "card inline", on: { submit: addBan } },
          h("h3", { text: "Add a ban" }),
          field("Ban by", "kind", choice("kind", BAN_KINDS)),
          field(
            "Value",
            "value",
            h("input", { name: "value", autocomplete: "off", placeholder: "e.g. 203.0.113.0/24" }),
          ),
          field(
            "For",
            "duration",
            choice("duration", [["", "until lifted"], ...BAN_DURATIONS], 3_600),
          ),
          field("Reason", "reason", h("input", { name: "reason", autocomplete: "off" })),
          h("button", { type: "submit", text: "Ban" }),
          formMessage(),
        ),
      );
    }
    container.append(banMessage, bans);

    const searchRequests = newestOnly();
    async function search(page) {
      const current = searchRequests();
      try {
        const reply = await api("/clients", {
          query: {
            like: form.like.value.trim(),
            username: form.username.value.trim(),
            address: form.address.value.trim(),
            page,
            limit: PAGE_SIZE,
          },
        });
        if (!current()) return;
        results.replaceChildren(
          table(
            [
              { label: "Client id", value: (c) => c.clientId },
              { label: "Node", value: (c) => c.node },
              { label: "User", value: (c) => c.username ?? "–" },
              { label: "Address", value: (c) => `${c.remoteAddress}:${c.remotePort}` },
              { label: "MQTT", value: (c) => protocolName(c.protocolVersion) },
              { label: "Transport", value: (c) => c.transport },
              { label: "Connected", value: (c) => formatTime(c.connectedAt) },
              { label: "Subscriptions", value: (c) => formatCount(c.subscriptions) },
              { label: "Inflight", value: (c) => formatCount(c.inflight) },
              { label: "Queued", value: (c) => formatCount(c.queued) },
            ],
            reply.data,
            {
              key: (c) => c.clientId,
              onRow: (c) => show(c.clientId),
              empty: "No connected client matches.",
            },
          ),
          pager(reply.meta, search),
          ...reply.missing.map((node) =>
            h("p", {
              class: "notice bad",
              role: "alert",
              text: `Not listed: the clients of node ${node}, which did not answer in time.`,
            })
          ),
        );
      } catch (error) {
        if (!current()) return;
        results.replaceChildren(failure(error));
      }
    }

    const showRequests = newestOnly();
    async function show(clientId) {
      const current = showRequests();
      let client;
      let agent;
      try {
        client = await api(`/clients/${segment(clientId)}`);
        agent = await agentOf(client);
        if (!current()) return;
      } catch (error) {
        if (!current()) return;
        details.replaceChildren(failure(error));
        return;
      }
      const actions = h("form", {
        class: "actions",
        on: { submit: (event) => event.preventDefault() },
      });
      if (canWrite) {
        const kickButton = h("button", {
          type: "button",
          class: "danger",
          data: { action: "kick" },
          on: { click: () => kick(clientId, actions) },
        }, "Kick");
        const banFor = choice("ban", [["", "no ban"], ...BAN_DURATIONS]);
        banFor.addEventListener("change", () => {
          kickButton.textContent = banFor.value === "" ? "Kick" : "Kick and ban";
        });
        actions.append(
          h(
            "div",
            { class: "row-actions" },
            field("Ban for", "ban", banFor),
            field("Ban by", "banBy", choice("banBy", BAN_KINDS)),
            kickButton,
          ),
          h("small", {
            class: "muted",
            text: "MQTT 5 clients get DISCONNECT 0x98; the session stays for its expiry interval.",
          }),
        );
      }
      actions.append(formMessage());
      details.replaceChildren(
        h(
          "article",
          { class: "card", data: { client: clientId } },
          h("h2", { text: client.clientId }),
          facts([
            ["Node", client.node],
            ["User", client.username ?? "–"],
            ["Address", `${client.remoteAddress}:${client.remotePort} (${client.transport})`],
            ["Protocol", `MQTT ${protocolName(client.protocolVersion)}`],
            ["Connected since", formatTime(client.connectedAt)],
            ["Keep-alive", client.keepAlive === 0 ? "none" : `${client.keepAlive} s`],
            ["Session expiry", `${client.expiryInterval} s`],
            ["Inflight", formatCount(client.inflight)],
            ["Queued", formatCount(client.queued)],
            ["Unsent bytes", formatBytes(client.bufferedBytes)],
            ["Certificate", client.certificateCommonName],
          ]),
          agent
            ? [
              h("h3", { text: `Agent (${agent.state})` }),
              h("div", { data: { agentFacts: agent.clientId } }, facts(agentFacts(agent))),
            ]
            : null,
          h("h3", { text: `Subscriptions (${client.session.subscriptionList.length})` }),
          table(subscriptionColumns(), client.session.subscriptionList, {
            empty: "No subscriptions.",
          }),
          actions,
        ),
      );
    }

    async function kick(clientId, actions) {
      const ban = actions.elements.namedItem("ban").value;
      const banBy = actions.elements.namedItem("banBy").value;
      const banned = ban === "" ? "" : ` and ban its ${kindLabel(banBy)}`;
      if (!confirm(`Disconnect ${clientId}${banned}?`)) return;
      clearErrors(actions);
      try {
        const added = await api(`/clients/${segment(clientId)}`, {
          method: "DELETE",
          query: ban === "" ? undefined : { ban, banBy },
        });
        say(
          actions,
          added
            ? `Disconnected ${clientId}; its ${kindLabel(added.kind)} is banned until ${
              formatTime(added.until)
            }.`
            : `Disconnected ${clientId}.`,
          "good",
        );
        await search(1);
        if (added) await listBans(1);
      } catch (error) {
        showErrors(actions, error);
      }
    }

    async function listBans(page) {
      try {
        const reply = await api("/bans", { query: { page, limit: PAGE_SIZE } });
        const columns = [
          { label: "Ban by", value: (b) => kindLabel(b.kind) },
          { label: "Value", value: (b) => b.value },
          { label: "Ends", value: (b) => b.until === null ? "when lifted" : formatTime(b.until) },
          { label: "Reason", value: (b) => b.reason ?? "–" },
          { label: "Added", value: (b) => formatTime(b.createdAt) },
          { label: "By", value: (b) => b.createdBy },
        ];
        if (canWrite) {
          columns.push({
            label: "",
            value: (b) =>
              h("button", {
                type: "button",
                class: "quiet danger",
                data: { action: "lift-ban" },
                on: { click: () => lift(b) },
              }, "Lift"),
          });
        }
        bans.replaceChildren(
          table(columns, reply.data, {
            key: (b) => `${b.kind} ${b.value}`,
            empty: "No bans.",
          }),
          pager(reply.meta, listBans),
        );
      } catch (error) {
        bans.replaceChildren(failure(error));
      }
    }

    async function addBan(event) {
      event.preventDefault();
      const banForm = event.currentTarget;
      clearErrors(banForm);
      const value = (name) => banForm.elements.namedItem(name).value;
      const body = { kind: value("kind"), value: value("value").trim() };
      if (value("duration") !== "") body.duration = Number(value("duration"));
      if (value("reason").trim() !== "") body.reason = value("reason").trim();
      try {
        const added = await api("/bans", { method: "POST", body });
        banForm.reset();
        say(
          banForm,
          `Banned the ${kindLabel(added.kind)} ${added.value}` +
            (added.disconnected > 0 ? `; disconnected ${added.disconnected}.` : "."),
          "good",
        );
        await listBans(1);
        if (added.disconnected > 0) await search(1);
      } catch (error) {
        showErrors(banForm, error);
      }
    }

    async function lift(ban) {
      if (!confirm(`Lift the ban on the ${kindLabel(ban.kind)} ${ban.value}?`)) return;
      try {
        await api(`/bans/${segment(ban.kind)}/${segment(ban.value)}`, { method: "DELETE" });
        say(banMessage, `Lifted the ban on the ${kindLabel(ban.kind)} ${ban.value}.`, "good");
        await listBans(1);
      } catch (error) {
        say(banMessage, error.message, "bad");
      }
    }

    search(1);
    listBans(1);
  },
};
