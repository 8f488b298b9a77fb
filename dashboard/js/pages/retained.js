/**
 * Retained messages: browse by topic prefix, view a payload as text, pretty-printed JSON or hex
 * with its MQTT 5 properties, and delete one (admins).
 *
 * @module
 */

import { api, newestOnly, segment } from "../api.js";
import {
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
import { formatBytes, prefixFilter } from "../format.js";
import { base64ToBytes, bestView, hexDump, prettyJson, textOf } from "../payload.js";

const PAGE_SIZE = 100;

/** The payload viewer: a tab per view, the best one chosen first. */
function payloadViewer(bytes) {
  const text = textOf(bytes);
  const json = prettyJson(text);
  const views = {
    text: text ?? "(not UTF-8 text: see Hex)",
    json: json ?? "(not JSON)",
    hex: bytes.length === 0 ? "(empty)" : hexDump(bytes),
  };
  const shown = h("pre", { class: "payload" });
  const tabs = h("div", { class: "tabs", role: "tablist" });
  const choose = (view) => {
    shown.textContent = views[view];
    shown.dataset.view = view;
    for (const tab of tabs.children) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    }
  };
  for (const [view, label] of [["text", "Text"], ["json", "JSON"], ["hex", "Hex"]]) {
    tabs.append(
      h("button", {
        type: "button",
        role: "tab",
        class: "tab",
        data: { view },
        on: { click: () => choose(view) },
      }, label),
    );
  }
  choose(bestView(bytes));
  return h("div", { class: "viewer" }, tabs, shown);
}

export default {
  render(container, { canWrite }) {
    const results = h("div", { class: "results" });
    const details = h("div", { class: "details" });
    const form = h(
      "form",
      { class: "filters", on: { submit: (event) => (event.preventDefault(), browse(1)) } },
      field(
        "Topic prefix",
        "filter",
        h("input", { name: "prefix", type: "search", placeholder: "e.g. sensors/ (empty: all)" }),
        "Wildcards + and # are used as a filter",
      ),
      h("button", { type: "submit", text: "Browse" }),
      formMessage(),
    );
    container.append(h("h1", { text: "Retained messages" }), form, results, details);

    const browseRequests = newestOnly();
    async function browse(page) {
      const current = browseRequests();
      try {
        const reply = await api("/retained", {
          query: { filter: prefixFilter(form.prefix.value), page, limit: PAGE_SIZE },
        });
        if (!current()) return;
        clearErrors(form);
        results.replaceChildren(
          table(
            [
              { label: "Topic", value: (m) => m.topic },
              { label: "QoS", value: (m) => String(m.qos) },
              { label: "Size", value: (m) => formatBytes(m.payloadSize) },
              { label: "Publisher", value: (m) => m.publisher || "(broker)" },
              { label: "Content type", value: (m) => m.properties?.contentType ?? "–" },
              {
                label: "Expires in",
                value: (m) =>
                  m.properties?.messageExpiryInterval === undefined
                    ? "never"
                    : `${m.properties.messageExpiryInterval} s`,
              },
            ],
            reply.data,
            {
              key: (m) => m.topic,
              onRow: (m) => show(m.topic),
              empty: "No retained message under this prefix.",
            },
          ),
          pager(reply.meta, browse),
        );
      } catch (error) {
        if (!current()) return;
        results.replaceChildren();
        showErrors(form, error);
      }
    }

    const showRequests = newestOnly();
    async function show(topic) {
      const current = showRequests();
      let message;
      try {
        message = await api(`/retained/${segment(topic)}`, { query: { encoding: "base64" } });
        if (!current()) return;
      } catch (error) {
        if (!current()) return;
        details.replaceChildren(failure(error));
        return;
      }
      const bytes = base64ToBytes(message.payload);
      const p = message.properties ?? {};
      const actions = h("form", {
        class: "actions",
        on: { submit: (event) => event.preventDefault() },
      });
      if (canWrite) {
        actions.append(h("button", {
          type: "button",
          class: "danger",
          data: { action: "delete-retained" },
          on: { click: () => remove(topic, actions) },
        }, "Delete"));
      }
      actions.append(formMessage());
      details.replaceChildren(
        h(
          "article",
          { class: "card", data: { topic } },
          h("h2", { text: message.topic }),
          facts([
            ["QoS", String(message.qos)],
            ["Size", formatBytes(message.payloadSize)],
            ["Publisher", message.publisher || "(broker)"],
            [
              "Payload format",
              p.payloadFormatIndicator === undefined
                ? undefined
                : p.payloadFormatIndicator === 1
                ? "UTF-8"
                : "bytes",
            ],
            ["Content type", p.contentType],
            [
              "Expires in",
              p.messageExpiryInterval === undefined ? undefined : `${p.messageExpiryInterval} s`,
            ],
            ["Response topic", p.responseTopic],
            [
              "Correlation data",
              p.correlationData === undefined ? undefined : `${p.correlationData} (base64)`,
            ],
            [
              "User properties",
              p.userProperties?.map(([name, value]) => `${name}=${value}`).join(", "),
            ],
          ]),
          payloadViewer(bytes),
          actions,
        ),
      );
    }

    async function remove(topic, actions) {
      if (!confirm(`Delete the retained message on ${topic}?`)) return;
      try {
        await api(`/retained/${segment(topic)}`, { method: "DELETE" });
        details.replaceChildren(
          h("p", {
            class: "notice good",
            role: "status",
            text: `Deleted the retained message on ${topic}.`,
          }),
        );
        await browse(1);
      } catch (error) {
        say(actions, error.message, "bad");
      }
    }

    browse(1);
  },
};
