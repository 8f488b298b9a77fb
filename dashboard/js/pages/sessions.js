/**
 * Sessions: every session this node holds, connected or not, filtered by part of the client id
 * and by whether its client is connected; one session's subscriptions; admins may end a session
 * or remove one of its subscriptions.
 *
 * @module
 */

import { api, newestOnly, segment } from "../api.js";
import { facts, failure, field, formMessage, h, pager, say, table } from "../dom.js";
import { formatCount, formatTime, protocolName } from "../format.js";
import { subscriptionColumns, unsubscribeButton } from "./subscriptions.js";

const PAGE_SIZE = 50;

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const details = h("div", { class: "details" });
    const form = h(
      "form",
      { class: "filters", on: { submit: (event) => (event.preventDefault(), search(1)) } },
      field("Client id contains", "like", h("input", { name: "like", type: "search" })),
      field(
        "Client",
        "connected",
        h(
          "select",
          { name: "connected" },
          h("option", { value: "", text: "connected or not" }),
          h("option", { value: "true", text: "connected" }),
          h("option", { value: "false", text: "disconnected" }),
        ),
      ),
      h("button", { type: "submit", text: "Search" }),
      formMessage(),
    );
    container.append(h("h1", { text: "Sessions" }), form, results, details);

    const searchRequests = newestOnly();
    async function search(page) {
      const current = searchRequests();
      try {
        const reply = await api("/sessions", {
          query: {
            like: form.like.value.trim(),
            connected: form.connected.value,
            page,
            limit: PAGE_SIZE,
          },
        });
        if (!current()) return;
        results.replaceChildren(
          table(
            [
              { label: "Client id", value: (s) => s.clientId },
              { label: "Client", value: (s) => s.connected ? "connected" : "disconnected" },
              { label: "MQTT", value: (s) => protocolName(s.protocolVersion) },
              { label: "Expiry", value: (s) => `${s.expiryInterval} s` },
              { label: "Subscriptions", value: (s) => formatCount(s.subscriptions) },
              { label: "Inflight", value: (s) => formatCount(s.inflight) },
              { label: "Queued", value: (s) => formatCount(s.queued) },
              {
                label: "Disconnected at",
                value: (s) => s.disconnectedAt ? formatTime(s.disconnectedAt) : "–",
              },
            ],
            reply.data,
            {
              key: (s) => s.clientId,
              onRow: (s) => show(s.clientId),
              empty: "No session matches.",
            },
          ),
          pager(reply.meta, search),
        );
      } catch (error) {
        if (!current()) return;
        results.replaceChildren(failure(error));
      }
    }

    const showRequests = newestOnly();
    async function show(clientId) {
      const current = showRequests();
      let session;
      try {
        session = await api(`/sessions/${segment(clientId)}`);
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
      const columns = subscriptionColumns();
      if (canWrite) {
        columns.push({
          label: "",
          value: (s) => unsubscribeButton(s, actions, () => show(clientId)),
        });
        actions.append(
          h("button", {
            type: "button",
            class: "danger",
            data: { action: "end-session" },
            on: { click: () => end(clientId, actions) },
          }, "End session"),
          h("small", {
            class: "muted",
            text: " A connected client is disconnected; its will is sent.",
          }),
        );
      }
      actions.append(formMessage());
      details.replaceChildren(
        h(
          "article",
          { class: "card", data: { session: clientId } },
          h("h2", { text: session.clientId }),
          facts([
            [
              "Client",
              session.connected
                ? "connected"
                : `disconnected ${formatTime(session.disconnectedAt)}`,
            ],
            ["Protocol", `MQTT ${protocolName(session.protocolVersion)}`],
            ["Session expiry", `${session.expiryInterval} s`],
            ["Inflight", formatCount(session.inflight)],
            ["Queued", formatCount(session.queued)],
          ]),
          h("h3", { text: `Subscriptions (${session.subscriptionList.length})` }),
          table(columns, session.subscriptionList, { empty: "No subscriptions." }),
          actions,
        ),
      );
    }

    async function end(clientId, actions) {
      if (!confirm(`End the session of ${clientId}?`)) return;
      try {
        await api(`/sessions/${segment(clientId)}`, { method: "DELETE" });
        details.replaceChildren(
          h("p", { class: "notice good", text: `Ended the session of ${clientId}.` }),
        );
        await search(1);
      } catch (error) {
        say(actions, error.message, "bad");
      }
    }

    search(1);
  },
};
