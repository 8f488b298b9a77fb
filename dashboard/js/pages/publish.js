/**
 * Publish (admins): a message as the broker itself, with topic, QoS, retain, a text or base64
 * payload and the MQTT 5 properties; the API's objections are shown next to the fields.
 *
 * @module
 */

import { api } from "../api.js";
import { clearErrors, field, formMessage, h, say, showErrors } from "../dom.js";

function userPropertyRow() {
  const row = h(
    "div",
    { class: "pair" },
    h("input", { class: "name", "aria-label": "Property name", placeholder: "name" }),
    h("input", { class: "value", "aria-label": "Property value", placeholder: "value" }),
    h("button", { type: "button", class: "quiet", on: { click: () => row.remove() } }, "Remove"),
  );
  return row;
}

/** The request body from the form: properties only when some are set. */
function bodyOf(form) {
  const value = (name) => form.elements.namedItem(name).value;
  const properties = {};
  if (value("payloadFormatIndicator") !== "") {
    properties.payloadFormatIndicator = Number(value("payloadFormatIndicator"));
  }
  if (value("messageExpiryInterval") !== "") {
    properties.messageExpiryInterval = Number(value("messageExpiryInterval"));
  }
  if (value("contentType") !== "") properties.contentType = value("contentType");
  if (value("responseTopic") !== "") properties.responseTopic = value("responseTopic");
  if (value("correlationData") !== "") properties.correlationData = value("correlationData");
  const pairs = [...form.querySelectorAll(".pair")]
    .map((row) => [row.querySelector(".name").value, row.querySelector(".value").value])
    .filter(([name, val]) => name !== "" || val !== "");
  if (pairs.length > 0) properties.userProperties = pairs;
  return {
    topic: value("topic"),
    qos: Number(value("qos")),
    retain: form.elements.namedItem("retain").checked,
    payload: value("payload"),
    encoding: value("encoding"),
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
  };
}

export default {
  render(container) {
    const userProperties = h("div", { class: "pairs" });
    const form = h(
      "form",
      { class: "card publish", on: { submit: send } },
      field(
        "Topic",
        "topic",
        h("input", { name: "topic", required: true, placeholder: "e.g. alerts/fire" }),
      ),
      h(
        "div",
        { class: "row" },
        field(
          "QoS",
          "qos",
          h(
            "select",
            { name: "qos" },
            [0, 1, 2].map((qos) => h("option", { value: qos, text: qos })),
          ),
        ),
        field("Retain", "retain", h("input", { name: "retain", type: "checkbox" })),
        field(
          "Payload is",
          "encoding",
          h(
            "select",
            { name: "encoding" },
            h("option", { value: "utf8", text: "text" }),
            h("option", { value: "base64", text: "base64" }),
          ),
        ),
      ),
      field("Payload", "payload", h("textarea", { name: "payload", rows: 5 })),
      h(
        "fieldset",
        {},
        h("legend", { text: "MQTT 5 properties (optional)" }),
        h(
          "div",
          { class: "row" },
          field(
            "Payload format",
            "properties.payloadFormatIndicator",
            h(
              "select",
              { name: "payloadFormatIndicator" },
              h("option", { value: "", text: "not set" }),
              h("option", { value: "0", text: "0: bytes" }),
              h("option", { value: "1", text: "1: UTF-8" }),
            ),
          ),
          field(
            "Message expiry (s)",
            "properties.messageExpiryInterval",
            h("input", { name: "messageExpiryInterval", type: "number", min: 0, step: 1 }),
          ),
          field(
            "Content type",
            "properties.contentType",
            h("input", { name: "contentType", placeholder: "e.g. application/json" }),
          ),
        ),
        h(
          "div",
          { class: "row" },
          field(
            "Response topic",
            "properties.responseTopic",
            h("input", { name: "responseTopic" }),
          ),
          field(
            "Correlation data (base64)",
            "properties.correlationData",
            h("input", { name: "correlationData" }),
          ),
        ),
        field("User properties", "properties.userProperties", userProperties),
        h("button", {
          type: "button",
          class: "quiet",
          on: { click: () => userProperties.append(userPropertyRow()) },
        }, "Add user property"),
      ),
      h("button", { type: "submit", text: "Publish" }),
      formMessage(),
    );
    container.append(h("h1", { text: "Publish a message" }), form);

    async function send(event) {
      event.preventDefault();
      clearErrors(form);
      try {
        const result = await api("/publish", { method: "POST", body: bodyOf(form) });
        say(form, `Published: ${result.reason} (reason code ${result.reasonCode}).`, "good");
      } catch (error) {
        showErrors(form, error);
      }
    }
  },
};
