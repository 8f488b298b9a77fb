/**
 * Clients: the connected clients, searched by part of the client id, user name or address; one
 * client's details (protocol, keep-alive, inflight, queued, subscriptions); kick it (admins).
 *
 * @module
 */

import { api, newestOnly, segment } from "../api.js";
import { facts, failure, field, formMessage, h, pager, say, table } from "../dom.js";
import { formatBytes, formatCount, formatTime, protocolName } from "../format.js";
import { subscriptionColumns } from "./subscriptions.js";

const PAGE_SIZE = 50;

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const details = h("div", { class: "details" });
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
    container.append(h("h1", { text: "Clients" }), form, results, details);

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
      try {
        client = await api(`/clients/${segment(clientId)}`);
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
        actions.append(
          h("button", {
            type: "button",
            class: "danger",
            data: { action: "kick" },
            on: { click: () => kick(clientId, actions) },
          }, "Kick"),
          h("small", {
            class: "muted",
            text: " MQTT 5 clients get DISCONNECT 0x98; the session stays for its expiry interval.",
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
          h("h3", { text: `Subscriptions (${client.session.subscriptionList.length})` }),
          table(subscriptionColumns(), client.session.subscriptionList, {
            empty: "No subscriptions.",
          }),
          actions,
        ),
      );
    }

    async function kick(clientId, actions) {
      if (!confirm(`Disconnect ${clientId}?`)) return;
      try {
        await api(`/clients/${segment(clientId)}`, { method: "DELETE" });
        say(actions, `Disconnected ${clientId}.`, "good");
        await search(1);
      } catch (error) {
        say(actions, error.message, "bad");
      }
    }

    search(1);
  },
};
