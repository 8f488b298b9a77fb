/**
 * Kafka bridge: the link to Kafka (state and since when, the error, the brokers, what waits in
 * this node's outbox and whether it outlives a crash) and the mappings from MQTT topics to Kafka
 * topics with their counts, refreshed every few seconds. Admins add, edit and delete the mappings
 * added through the API, with the API's objections next to the fields; those of the config file
 * are read-only. Without `bridge.kafka.brokers` the page says so.
 *
 * @module
 */

import { api, segment } from "../api.js";
import {
  choice,
  clearErrors,
  facts,
  field,
  formMessage,
  h,
  pager,
  say,
  showErrors,
  table,
} from "../dom.js";
import { formatBytes, formatCount, formatDuration, formatTime } from "../format.js";
import { refresher } from "../refresh.js";

const PAGE_SIZE = 100;

/** How each state of the link looks: good, on its way (warn), or bad. */
const STATE_TONES = {
  connected: "good",
  connecting: "warn",
  retrying: "warn",
  disconnected: "bad",
  stopped: "bad",
};

/** The value column: the format, and for json how the payload is written; headers when off. */
function valueOf(mapping) {
  const parts = [mapping.format === "json" ? `json (${mapping.payloadEncoding})` : "raw"];
  if (!mapping.headers) parts.push("no headers");
  return parts.join(", ");
}

/** Records waiting for Kafka: how many, their bytes, and how long the oldest has waited. */
function bufferedOf(stats) {
  if (stats.bufferedMessages === 0) return "0";
  return `${formatCount(stats.bufferedMessages)} (${formatBytes(stats.bufferedBytes)}), oldest ${
    formatDuration(stats.oldestBufferedAgeSeconds)
  }`;
}

export default {
  render(container, { canWrite }) {
    const status = h("div");
    const results = h("div", { class: "results" });
    const message = h("form", {
      class: "actions",
      on: { submit: (event) => event.preventDefault() },
    }, formMessage());
    let page = 1;
    /** Name of the mapping being edited; undefined while adding. */
    let editing;

    const heading = h("h2", { text: "Add a mapping" });
    const submit = h("button", { type: "submit", text: "Add mapping" });
    const cancel = h("button", {
      type: "button",
      class: "quiet",
      hidden: true,
      on: { click: () => startAdding() },
    }, "Cancel");
    const format = choice("format", [["raw", "raw: the payload"], ["json", "json: an envelope"]]);
    const payloadEncoding = choice("payloadEncoding", ["base64", "utf8"]);
    format.addEventListener("change", () => (payloadEncoding.disabled = format.value !== "json"));
    const form = h(
      "form",
      { id: "mapping-form", class: "card", on: { submit: save } },
      heading,
      h(
        "div",
        { class: "row" },
        field(
          "Name",
          "name",
          h("input", { name: "name", autocomplete: "off", placeholder: "e.g. telemetry" }),
        ),
        field(
          "MQTT topic filter",
          "filter",
          h("input", { name: "filter", placeholder: "e.g. sensors/#" }),
          "Matched against the topic after $queue/",
        ),
        field(
          "Kafka topic",
          "kafkaTopic",
          h("input", { name: "kafkaTopic", placeholder: "e.g. telemetry" }),
        ),
      ),
      h(
        "div",
        { class: "row" },
        field(
          "Record key",
          "key",
          h("input", { name: "key" }),
          "{topic}, {clientId}, {username}; empty: no key",
        ),
        field("Value", "format", format),
        field("Payload in the envelope", "payloadEncoding", payloadEncoding),
      ),
      h(
        "div",
        { class: "row" },
        field(
          "Headers",
          "headers",
          h("input", { name: "headers", type: "checkbox" }),
          "MQTT 5 user properties as Kafka headers",
        ),
        field(
          "Copy",
          "copy",
          h("input", { name: "copy", type: "checkbox" }),
          "Ordinary publishes that match go to Kafka too, and still to subscribers",
        ),
      ),
      submit,
      cancel,
      formMessage(),
    );

    const mappingsHeading = h("h2", { text: "Mappings" });
    const refresh = refresher(load, { seconds: 5 });
    container.append(
      h("div", { class: "page-head" }, h("h1", { text: "Kafka bridge" }), refresh.controls),
      refresh.problem,
      status,
      mappingsHeading,
      message,
      results,
    );
    startAdding();

    function startAdding() {
      editing = undefined;
      form.reset();
      clearErrors(form);
      const control = (name) => form.elements.namedItem(name);
      control("key").value = "{topic}";
      control("headers").checked = true;
      control("name").disabled = false;
      payloadEncoding.disabled = true;
      heading.textContent = "Add a mapping";
      submit.textContent = "Add mapping";
      cancel.hidden = true;
    }

    function startEditing(mapping) {
      editing = mapping.name;
      clearErrors(form);
      const control = (name) => form.elements.namedItem(name);
      for (const name of ["name", "filter", "kafkaTopic", "key", "format", "payloadEncoding"]) {
        control(name).value = mapping[name];
      }
      control("headers").checked = mapping.headers;
      control("copy").checked = mapping.copy;
      control("name").disabled = true;
      payloadEncoding.disabled = mapping.format !== "json";
      heading.textContent = `Edit the mapping ${mapping.name}`;
      submit.textContent = "Save mapping";
      cancel.hidden = false;
      form.scrollIntoView({ block: "nearest" });
    }

    async function load() {
      let reply;
      try {
        reply = await api("/bridges", { query: { page, limit: PAGE_SIZE } });
      } catch (error) {
        // The API answers 409 to every request while the bridge is not configured.
        if (error.status !== 409) throw error;
        refresh.stop();
        status.replaceChildren(
          h("p", {
            class: "notice",
            data: { off: "bridge" },
            text:
              "The Kafka bridge is not configured on this node: set bridge.kafka.brokers in the configuration to send MQTT messages to Kafka.",
          }),
        );
        mappingsHeading.hidden = true;
        return;
      }
      const kafka = reply.kafka;
      status.replaceChildren(
        h(
          "div",
          { class: "card" },
          facts([
            [
              "Kafka",
              h(
                "span",
                {},
                h("strong", {
                  class: `state ${STATE_TONES[kafka.state]}`,
                  data: { bridgeState: kafka.state },
                  text: kafka.state,
                }),
                ` since ${formatTime(kafka.since)}`,
              ),
            ],
            ["Error", kafka.error],
            ["Brokers", kafka.brokers.join(", ")],
            [
              "Outbox",
              h(
                "span",
                {},
                h("span", { data: { stat: "buffered" }, text: formatCount(kafka.buffered) }),
                kafka.buffered === 1 ? " message waits" : " messages wait",
                kafka.durable
                  ? " for Kafka, kept by the backbone: they outlive a crash of this node"
                  : " for Kafka, in memory: lost if this process dies",
              ),
            ],
          ]),
        ),
      );
      const columns = [
        {
          label: "Name",
          value: (m) => [
            m.name,
            m.source === "config"
              ? h("span", {
                class: "badge",
                title: "From bridge.kafka.mappings in the config file: change it there",
                text: "config file",
              })
              : null,
          ],
        },
        { label: "MQTT filter", value: (m) => m.filter },
        { label: "Kafka topic", value: (m) => m.kafkaTopic },
        { label: "Key", value: (m) => m.key === "" ? "none" : m.key },
        { label: "Value", value: valueOf },
        { label: "Copy", value: (m) => m.copy ? "yes" : "no" },
        { label: "Produced", value: (m) => formatCount(m.stats.produced) },
        { label: "Failed", value: (m) => formatCount(m.stats.failed) },
        {
          label: "Dropped / refused",
          value: (m) => `${formatCount(m.stats.dropped)} / ${formatCount(m.stats.refused)}`,
        },
        { label: "Buffered", value: (m) => bufferedOf(m.stats) },
      ];
      if (canWrite) {
        columns.push({
          label: "",
          value: (m) =>
            m.source === "config" ? h("span", { class: "muted", text: "read-only" }) : h(
              "div",
              { class: "row-actions nowrap" },
              h("button", {
                type: "button",
                class: "quiet",
                data: { action: "edit-mapping" },
                on: { click: () => startEditing(m) },
              }, "Edit"),
              h("button", {
                type: "button",
                class: "quiet danger",
                data: { action: "delete-mapping" },
                on: { click: () => remove(m.name) },
              }, "Delete"),
            ),
        });
      }
      results.replaceChildren(
        table(columns, reply.data, {
          key: (m) => m.name,
          empty: "No mappings: publishes to $queue/... are handled like any other.",
        }),
        pager(reply.meta, (next) => {
          page = next;
          refresh.now();
        }),
      );
      if (canWrite && !form.isConnected) container.append(form);
    }

    /** The mapping the form describes, as the API takes it (without the name when editing). */
    function mappingOf() {
      const control = (name) => form.elements.namedItem(name);
      const mapping = {
        filter: control("filter").value,
        kafkaTopic: control("kafkaTopic").value,
        key: control("key").value,
        format: control("format").value,
        payloadEncoding: control("payloadEncoding").value,
        headers: control("headers").checked,
        copy: control("copy").checked,
      };
      return editing === undefined ? { name: control("name").value, ...mapping } : mapping;
    }

    async function save(event) {
      event.preventDefault();
      clearErrors(form);
      try {
        if (editing === undefined) {
          const added = await api("/bridges", { method: "POST", body: mappingOf() });
          say(message, `Added the mapping ${added.name}.`, "good");
        } else {
          await api(`/bridges/${segment(editing)}`, { method: "PUT", body: mappingOf() });
          say(message, `Saved the mapping ${editing}.`, "good");
        }
        startAdding();
        refresh.now();
      } catch (error) {
        showErrors(form, error);
      }
    }

    async function remove(name) {
      if (!confirm(`Delete the mapping ${name}? Records it already took still go to Kafka.`)) {
        return;
      }
      try {
        await api(`/bridges/${segment(name)}`, { method: "DELETE" });
        say(message, `Deleted the mapping ${name}.`, "good");
        if (editing === name) startAdding();
        refresh.now();
      } catch (error) {
        say(message, error.message, "bad");
      }
    }

    return refresh.stop;
  },
};
