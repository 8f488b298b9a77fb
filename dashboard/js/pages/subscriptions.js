/**
 * Subscriptions: every subscription of every session, filtered by client id, filter, QoS or share
 * group; admins may unsubscribe one.
 *
 * @module
 */

import { api, newestOnly, segment } from "../api.js";
import { failure, field, formMessage, h, pager, say, table } from "../dom.js";

const PAGE_SIZE = 100;

/** Columns of a subscription list, shared with the client and session details. */
export function subscriptionColumns() {
  return [
    { label: "Filter", value: (s) => s.filter },
    { label: "QoS", value: (s) => String(s.qos) },
    {
      label: "Options",
      value: (s) =>
        [
          s.noLocal ? "no local" : null,
          s.retainAsPublished ? "retain as published" : null,
          s.retainHandling !== 0 ? `retain handling ${s.retainHandling}` : null,
        ].filter(Boolean).join(", ") || "–",
    },
    { label: "Subscription id", value: (s) => s.subscriptionId ?? "–" },
  ];
}

/** An "Unsubscribe" button that removes `subscription` from its session, then calls `done`. */
export function unsubscribeButton(subscription, message, done) {
  return h("button", {
    type: "button",
    class: "quiet danger",
    data: { action: "unsubscribe" },
    on: {
      click: async () => {
        if (!confirm(`Unsubscribe ${subscription.clientId} from ${subscription.filter}?`)) return;
        try {
          await api(
            `/sessions/${segment(subscription.clientId)}/subscriptions/${
              segment(subscription.filter)
            }`,
            { method: "DELETE" },
          );
          say(
            message,
            `Unsubscribed ${subscription.clientId} from ${subscription.filter}.`,
            "good",
          );
          await done();
        } catch (error) {
          say(message, error.message, "bad");
        }
      },
    },
  }, "Unsubscribe");
}

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const form = h(
      "form",
      { class: "filters", on: { submit: (event) => (event.preventDefault(), search(1)) } },
      field("Client id", "clientId", h("input", { name: "clientId", type: "search" })),
      field(
        "Filter",
        "filter",
        h("input", { name: "filter", type: "search", placeholder: "exactly as subscribed" }),
      ),
      field(
        "QoS",
        "qos",
        h(
          "select",
          { name: "qos" },
          h("option", { value: "", text: "any" }),
          [0, 1, 2].map((qos) => h("option", { value: qos, text: qos })),
        ),
      ),
      field("Share group", "share", h("input", { name: "share", type: "search" })),
      h("button", { type: "submit", text: "Search" }),
      formMessage(),
    );
    container.append(h("h1", { text: "Subscriptions" }), form, results);

    const searchRequests = newestOnly();
    async function search(page) {
      const current = searchRequests();
      try {
        const reply = await api("/subscriptions", {
          query: {
            clientId: form.clientId.value.trim(),
            filter: form.filter.value.trim(),
            qos: form.qos.value,
            share: form.share.value.trim(),
            page,
            limit: PAGE_SIZE,
          },
        });
        if (!current()) return;
        const columns = [
          { label: "Client id", value: (s) => s.clientId },
          ...subscriptionColumns(),
        ];
        if (canWrite) {
          columns.push({ label: "", value: (s) => unsubscribeButton(s, form, () => search(page)) });
        }
        results.replaceChildren(
          table(columns, reply.data, {
            key: (s) => `${s.clientId} ${s.filter}`,
            empty: "No subscription matches.",
          }),
          pager(reply.meta, search),
        );
      } catch (error) {
        if (!current()) return;
        results.replaceChildren(failure(error));
      }
    }

    search(1);
  },
};
